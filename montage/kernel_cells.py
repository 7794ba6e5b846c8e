"""A conv kernel as grid cells: row i = filter (output channel) i, column j = input channel j of
its group (or, for depthwise kernels, one cell per output channel), each cell a (kh, kw) map."""

from __future__ import annotations

import numpy as np

from .layout import Grid, near_square, scale_at_most

DEFAULT_SCALE = 2   # pixels per weight: the page magnifies further, crisply


def filter_grid(shape, rgb, cell, gap):
    """Grid and kind of a conv kernel of shape (kh, kw, in, out).

    Kind 'filters': row i = filter i, column j = input channel j. Kind 'rgb' (a
    3-channel layer with ``rgb``): cell i = filter i, its three channels as colour.
    """
    kh, kw, cin, cout = shape
    scale = DEFAULT_SCALE if cell is None else scale_at_most(cell, kh, kw)
    if rgb and cin == 3:
        rows, cols = near_square(cout)
        return Grid(rows, cols, cout, kh, kw, scale, gap), "rgb"
    return Grid(cout, cin, cout * cin, kh, kw, scale, gap), "filters"


def filter_cells(kernel, kind, input_order):
    """The kernel as cells (kh, kw, n, samples): cell ``i * in + j`` is filter i, channel j."""
    kh, kw, cin, cout = kernel.shape
    if kind == "rgb":
        order = [2, 1, 0] if input_order == "bgr" else [0, 1, 2]   # show R, G, B whatever is stored
        return np.ascontiguousarray(kernel[:, :, order, :].transpose(0, 1, 3, 2))
    return np.ascontiguousarray(kernel.transpose(0, 1, 3, 2)).reshape(kh, kw, cout * cin, 1)


def kernel_grid(k, rgb, cell, gap):
    """(grid, kind) of a kernel block (:class:`montage.graph.Kernel`).

    1x1 kernels are a matrix (one weight per pixel, no gap); depthwise kernels a near-square
    grid of output channels; a 3-D kernel's cell shows its depth slices side by side, one
    column apart.
    """
    w = k.weights
    scale = DEFAULT_SCALE if cell is None else scale_at_most(cell, w.shape[-4], w.shape[-3])
    if k.kind == "depthwise":
        kh, kw, cin, mult = w.shape
        rows, cols = near_square(cin * mult)
        return Grid(rows, cols, cin * mult, kh, kw, scale, gap), "depthwise"
    if w.ndim == 5:
        kd, kh, kw, cin, cout = w.shape
        return Grid(cout, cin, cout * cin, kh, kd * (kw + 1) - 1, scale, gap), "filters"
    if w.shape[:2] == (1, 1):
        cout, cin = w.shape[3], w.shape[2]
        return Grid(cout, cin, cout * cin, 1, 1, 1, 0), "filters"
    return filter_grid(w.shape, rgb and k.groups == 1, cell, gap)


def cell_rounding(cell, chosen, grids):
    """The note for a ``--cell`` that is not a whole number of pixels per weight of every kernel
    (it is rounded down, to 1 at least), or None. 1x1 kernels are a matrix at 1 pixel, as always."""
    if cell is None:
        return None
    drawn = {}
    for k, (g, _) in zip(chosen, grids):
        kh, kw = k.weights.shape[-4:-2] if k.weights.ndim >= 4 else (1, k.weights.shape[0])
        side = max(kh, kw) * g.scale
        if (kh, kw) != (1, 1) and side != int(cell):
            drawn[(kh, kw)] = f"{kh}x{kw} kernels {side} px ({g.scale} per weight{'' if side < cell else ': the least'})"
    if not drawn:
        return None
    return f"--cell {cell} is not a whole number of pixels per weight: " + ", ".join(drawn[s] for s in sorted(drawn))


def kernel_cells(k, kind, input_order="rgb"):
    """The block's cells (cell_h, cell_w, n, samples) for :func:`kernel_grid`'s grid; a 3-D kernel's
    slices are one NaN column apart (painted over with the gap colour, see :func:`_separate`)."""
    w = k.weights
    if k.kind == "depthwise":
        kh, kw, cin, mult = w.shape
        return np.ascontiguousarray(w.reshape(kh, kw, cin * mult, 1))
    if w.ndim == 5:
        kd, kh, kw, cin, cout = w.shape
        cells = np.full((kh, kd * (kw + 1) - 1, cout * cin, 1), np.nan, np.float32)
        for d in range(kd):
            cells[:, d * (kw + 1):d * (kw + 1) + kw, :, 0] = filter_cells(w[d], "filters", input_order)[..., 0]
        return cells
    return filter_cells(w, kind, input_order)
