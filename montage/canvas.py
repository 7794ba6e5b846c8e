"""Canvases: allocate them within memory, and paint grids of cells into them.

The Python side of the numba kernels: validate, then dispatch.
"""

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from . import _numpy_kernels
from .colormap import LUT_ROWS
from .errors import MontageError
from .normalize import inverse_span


def available_memory():
    """Bytes of memory available to this process now (MemAvailable on Linux)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _gb(nbytes):
    return f"{nbytes / 1e9:.1f} GB"


def check_fits(height, width, bands, what="canvas"):
    """Raise MontageError when a (height, width, bands) uint8 canvas would not fit in memory."""
    nbytes = int(height) * int(width) * int(bands)
    # Leave room for the writer's buffers and everything else in the process.
    budget = int(available_memory() * 0.75)
    if nbytes > budget:
        raise MontageError(
            f"{what} of {width} x {height} pixels needs {_gb(nbytes)} but only {_gb(budget)} "
            "of memory can be spared: use a smaller --cell or --gap, or fewer layers at once"
        )


def allocate(height, width, bands, fill=None, what="canvas"):
    """A C-contiguous uint8 canvas: (height, width, 1) grey or (height, width, 4) colour.

    A colour canvas (``bands=3``) carries a fourth byte, always 255, so that each pixel
    is one 32-bit store for the kernel; the writers drop it. Filled with the RGB
    ``fill`` if given. Raises MontageError, before allocating, when it would not fit.
    """
    if bands not in (1, 3):
        raise ValueError("bands must be 1 (grey) or 3 (colour)")
    stored = 1 if bands == 1 else 4
    check_fits(height, width, stored, what)
    out = np.empty((height, width, stored), np.uint8)
    if fill is not None:
        clear(out, fill)
    return out


BIG = 1 << 26   # bytes: canvases from here on are filled on every core


def cores():
    """CPU cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:   # pragma: no cover - macOS, Windows
        return max(1, os.cpu_count() or 1)


def clear(canvas, fill):
    """Fill a canvas from :func:`allocate` with an RGB colour (one 32-bit store per pixel);
    a big one in row bands on every core (numpy's fill releases the GIL, first touches fault
    pages in parallel)."""
    threads = min(cores(), canvas.shape[0]) if canvas.nbytes >= BIG else 1
    if threads > 1:
        bands = np.linspace(0, canvas.shape[0], threads + 1).astype(int)
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda i: _fill(canvas[bands[i]:bands[i + 1]], fill), range(threads)))
        return canvas
    return _fill(canvas, fill)


def _fill(canvas, fill):
    if canvas.shape[2] == 1:
        canvas[...] = fill[0]
    else:
        r, g, b = (int(c) for c in fill[:3])
        canvas.view("<u4")[...] = r | (g << 8) | (b << 16) | (255 << 24)
    return canvas


def _packed(lut, bands):
    """LUT as one value per pixel: uint8 grey, or uint32 R | G << 8 | B << 16 | 255 << 24."""
    if bands == 1:
        return np.ascontiguousarray(lut[:, 0]), np.zeros((len(lut), 3), np.uint8)
    c = lut.astype(np.uint32)
    packed = c[:, 0] | (c[:, 1] << 8) | (c[:, 2] << 16) | np.uint32(0xFF000000)
    per_band = np.stack([c[:, 0] | np.uint32(0xFF000000), c[:, 1] << 8, c[:, 2] << 16], axis=1)
    return packed, np.ascontiguousarray(per_band)


SMALL_PIXELS = 1 << 22   # at most this many grid pixels: numpy (no numba start-up) when engine="auto"
# A run painting more pixels than this in all uses numba: here numpy's kernels cost about 1.7 s
# more per gigapixel than numba's, and loading numba's cached kernels about 0.6 s.
NUMBA_RUN_PIXELS = 400_000_000


def run_engine(pixels):
    """The kernels for a run that paints ``pixels`` in all: numba's past ``NUMBA_RUN_PIXELS``."""
    return "numba" if pixels > NUMBA_RUN_PIXELS else "numpy"


def paint(src, grid, lo, hi, lut, out, origin=(0, 0), const_index=0, engine="numba"):
    """Normalise, colour-map and paint cells into ``out`` in place.

    Parameters
    ----------
    src : ndarray, shape (h, w, n) or (h, w, n, samples)
        Cell ``k`` is ``src[:, :, k]``; ``samples`` is 1 (colour-mapped) or 3 (one value
        per band, each through its own LUT column: RGB kernels on a colour canvas).
    grid : montage.layout.Grid
    lo, hi : array_like, shape (n,)
        Each cell's value range, mapped to the first and last LUT entries.
    lut : ndarray, shape (259, 3), uint8
        Colormap plus NaN, gap and empty colours (see ``montage.colormap``).
    out : ndarray, shape (H, W, 1) or (H, W, 4), uint8, C-contiguous
        The canvas from :func:`allocate`; only the grid's pixels are written.
    origin : (int, int)
        (y, x) of the grid's top-left pixel in ``out``.
    const_index : int
        LUT entry for cells whose range is empty.
    engine : {'numba', 'numpy', 'auto'}
        The kernels: numba's (parallel, for large and repeated work), numpy's (no start-up,
        no compiler), or numpy's for grids of at most ``SMALL_PIXELS`` pixels. Same pixels.

    Returns
    -------
    out
    """
    src = np.asarray(src)
    if src.ndim == 3:
        src = src[..., None]
    if src.ndim != 4:
        raise ValueError(f"src must have 3 or 4 dimensions, got shape {src.shape}")
    if src.dtype not in (np.float32, np.float64):
        src = src.astype(np.float32)
    h, w, n, samples = src.shape
    if (h, w, n) != (grid.cell_h, grid.cell_w, grid.n):
        raise ValueError(f"src shape {src.shape} does not match {grid}")
    if n > grid.rows * grid.cols:
        raise ValueError(f"{n} cells do not fit a {grid.rows} x {grid.cols} grid")
    if not (isinstance(out, np.ndarray) and out.dtype == np.uint8 and out.ndim == 3
            and out.shape[2] in (1, 4) and out.flags.c_contiguous):
        raise ValueError("out must be a C-contiguous (H, W, 1) or (H, W, 4) uint8 canvas from allocate()")
    bands = 1 if out.shape[2] == 1 else 3
    if samples not in (1, 3) or (samples == 3 and bands == 1):
        raise ValueError(f"{samples} samples per pixel cannot fill a {bands}-band canvas")
    if lut.shape != (LUT_ROWS, 3) or lut.dtype != np.uint8:
        raise ValueError(f"lut must be ({LUT_ROWS}, 3) uint8")
    oy, ox = (int(v) for v in origin)
    if oy < 0 or ox < 0 or oy + grid.height > out.shape[0] or ox + grid.width > out.shape[1]:
        raise ValueError(f"grid of {grid.height} x {grid.width} at {origin} leaves canvas {out.shape}")
    if not 0 <= const_index < 256:
        raise ValueError("const_index must be in 0..255")
    lo = np.ascontiguousarray(np.broadcast_to(np.asarray(lo, np.float64), (n,)))
    inv = inverse_span(lo, np.broadcast_to(np.asarray(hi, np.float64), (n,)))
    if engine not in ("numba", "numpy", "auto"):
        raise ValueError(f"engine must be 'numba', 'numpy' or 'auto', not {engine!r}")
    if grid.rows and grid.cols:
        if engine == "numba" or (engine == "auto" and grid.height * grid.width > SMALL_PIXELS):
            from . import _kernels    # numba: its import and compilation pay only on large canvases
        else:
            _kernels = _numpy_kernels
        lutp, lut3 = _packed(lut, bands)
        pixels = out[:, :, 0] if bands == 1 else out.view("<u4")[:, :, 0]
        idx = np.empty((samples, h, n, w), np.uint16)
        _kernels.lut_indices(src, lo, inv, int(const_index), idx)
        _kernels.paint_grid(idx, lutp, lut3, pixels, oy, ox, grid.rows, grid.cols, grid.scale, grid.gap)
    return out
