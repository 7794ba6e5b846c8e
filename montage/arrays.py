"""Arrays in, one canvas out: :func:`grid`, the ``make_grid`` of montage (no files, no model)."""

from __future__ import annotations

import numbers

import numpy as np

from .canvas import allocate, paint
from .colormap import colormap_lut, extended_lut, identity_lut, parse_color
from .errors import MontageError
from .kernel_cells import filter_cells
from .layout import Grid, near_square, scale_at_least
from .normalize import GRID_MODES, const_index, grid_ranges


def _as_numpy(array):
    """A float array from numpy, a Keras/TF/JAX tensor, a torch tensor (on any device), or anything
    with ``__array__``."""
    if _torch_like(array):   # off the GPU, out of autograd
        array = array.detach().cpu()
    a = np.asarray(array)
    if a.dtype.kind not in "fiub":
        raise MontageError(f"grid() takes numbers, got an array of {a.dtype}")
    return a if a.dtype.kind == "f" else a.astype(np.float32)


def _torch_like(array):
    """A torch tensor: its images are channels first (N, C, H, W), as torchvision's."""
    return hasattr(array, "detach") and hasattr(array, "cpu")


def _gap_colour(pad_value, gap_color):
    """torchvision's ``pad_value`` (a level in 0..1) or montage's ``gap_color``."""
    if pad_value is None:
        return parse_color(gap_color)
    if isinstance(pad_value, numbers.Real):
        level = int(round(min(max(float(pad_value), 0.0), 1.0) * 255))
        return (level, level, level)
    return parse_color(pad_value)


def _images(a, torch_like):
    """Images as (N, H, W, C): (H, W) is one map; (N, H, W) N maps (a torch tensor (C, H, W)
    with C 1 or 3 is one image, as torchvision's ``make_grid`` reads it); 4-D is (N, H, W, C)
    or (N, C, H, W) by where a 1 or a 3 stands (a torch tensor: channels first when both fit)."""
    if a.ndim == 2:
        return a[None, :, :, None]
    if a.ndim == 3:
        return a.transpose(1, 2, 0)[None] if torch_like and a.shape[0] in (1, 3) else a[..., None]
    if a.ndim == 4:
        last, first = a.shape[3] in (1, 3), a.shape[1] in (1, 3)
        if first and (torch_like or not last):
            return a.transpose(0, 2, 3, 1)
        if last:
            return a
    n = a.shape[0] if a.ndim else 0
    hint = f"; each channel a map: a.reshape(-1, {a.shape[-2]}, {a.shape[-1]})" if a.ndim == 4 else ""
    raise MontageError(f"grid() takes (H, W), (N, H, W), (N, H, W, C) or (N, C, H, W) images with C 1 or 3, "
                       f"or a conv kernel with kernel=True; got shape {a.shape}{hint if n else ''}")


def _cells(a, kernel, nrow):
    """(cells (h, w, n, samples), rows, cols) of images or a kernel."""
    if kernel:
        if a.ndim != 4:
            raise MontageError(f"a conv kernel is (kh, kw, in, out), got shape {a.shape}")
        kh, kw, cin, cout = a.shape
        return filter_cells(a.astype(np.float32), "filters", "rgb"), cout, cin
    n = a.shape[0]
    cols = max(1, min(int(nrow), n)) if nrow else near_square(n)[1]
    return np.ascontiguousarray(a.transpose(1, 2, 0, 3)), -(-n // cols), cols


def _ranges(src, mode, normalize, value_range, cols, clip):
    """(lo, hi) per cell: one fixed ``value_range`` (torchvision's), else a montage mode."""
    n = src.shape[2]
    if mode not in GRID_MODES and value_range is None:
        raise MontageError(f"unknown normalisation {normalize!r}: choose one of {', '.join(GRID_MODES)}")
    if value_range is not None:
        return (np.full(n, float(v)) for v in value_range)
    lo, hi, _, _ = grid_ranges(src, mode, cols, float(clip))
    return lo, hi


def grid(array, *, kernel: bool = False, nrow: int | None = None, normalize: str | bool = "global",
         value_range: tuple | None = None, scale_each: bool = False, clip: float = 0.0, cmap: str = "gray",
         cell: int | None = None, padding: int | None = None, gap: int = 1, pad_value=None,
         gap_color="white", nan_color="magenta") -> np.ndarray:
    """Tile maps, images or a conv kernel into one RGB canvas, through the same kernels as the CLI.

    Parameters
    ----------
    array : array-like
        ``(H, W)``, ``(N, H, W)`` maps, or ``(N, H, W, C)`` / ``(N, C, H, W)`` images, C 1
        (colour-mapped) or 3 (RGB); channels first as :func:`_images` tells (a torch tensor's
        always, as ``make_grid``). With ``kernel=True`` a conv kernel ``(kh, kw, in, out)`` (row
        i = filter i, column j = input channel j). Numpy, Keras/TF/JAX, torch (detached, to CPU).
    kernel : bool
        Read a 4-D ``array`` as a conv kernel, not as images.
    nrow : int, optional
        Cells per row (torchvision's name); default a near-square grid. Ignored for kernels.
    normalize : str or bool
        A mode of ``montage filters`` ('global', 'filter', 'channel', 'cell', 'symmetric'; filter
        and channel mean grid rows and columns). torchvision's ``True`` is 'global' (or 'cell' with
        ``scale_each``); ``False`` takes values as they are in [0, 1] (``value_range`` (0, 1)).
    value_range : (float, float), optional
        One fixed range for every cell (torchvision's name); overrides ``normalize``.
    scale_each : bool
        Each cell on its own range (torchvision's name): the same as ``normalize='cell'``.
    clip : float
        Percentile clipped at each end of each normalisation group.
    cmap : str
        Any matplotlib colormap, for single-channel cells.
    cell : int, optional
        Pixels on a cell's longer side, at least (integer pixel repeat); default 1 per value.
    padding, gap : int
        Pixels between cells (``padding`` is torchvision's name; there is no outer border).
    pad_value, gap_color : optional
        Colour between cells: torchvision's level in 0..1, or a colour name, '#rrggbb' or 'r,g,b'.
    nan_color : colour
        Colour of NaN values (+-Inf take the colormap's ends).

    Returns
    -------
    ndarray, shape (height, width, 3), uint8

    Examples
    --------
    >>> import numpy as np, montage
    >>> montage.grid(np.random.rand(16, 8, 8), nrow=4, padding=2).shape
    (38, 38, 3)
    """
    a = _as_numpy(array)
    if a.size == 0:
        raise MontageError(f"grid() got an empty array (shape {a.shape}): nothing to draw")
    gap = int(padding if padding is not None else gap)
    if gap < 0:
        raise MontageError(f"padding {gap} must be 0 or more pixels")
    src, rows, cols = _cells(a if kernel else _images(a, _torch_like(array)), kernel, nrow)
    h, w, n, samples = src.shape
    mode = "cell" if scale_each else ("global" if normalize is True else normalize)
    if normalize is False and value_range is None:
        value_range = (0.0, 1.0)
    lo, hi = _ranges(src, mode, normalize, value_range, cols, clip)
    scale = scale_at_least(cell, h, w) if cell else 1
    g = Grid(rows, cols, n, h, w, scale, gap)
    gap_rgb = _gap_colour(pad_value, gap_color)
    colors = identity_lut() if samples == 3 else colormap_lut(cmap)
    lut = extended_lut(colors, nan_color, gap_rgb, gap_rgb)
    canvas = allocate(g.height, g.width, 3, fill=gap_rgb)
    paint(src, g, lo, hi, lut, canvas, const_index=const_index(mode if value_range is None else "global"),
          engine="auto")
    return np.ascontiguousarray(canvas[..., :3])
