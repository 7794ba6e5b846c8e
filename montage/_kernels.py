"""Numba kernels: normalise, colour-map and pixel-repeat cells straight into a canvas.

The kernels are dumb on purpose: they trust their arguments (``montage.tile``
validates them), write only into the ``out`` array the caller allocated, and
raise nothing.

Colours come from an extended look-up table ``lut`` of shape (259, bands):
rows 0..255 are the colormap, then the three special colours below.
"""

import numpy as np
from numba import njit, prange

NAN_ROW = 256
GAP_ROW = 257
EMPTY_ROW = 258
LUT_ROWS = 259

# One place for the numba options; cache=True keeps compilation out of later runs.
_SERIAL = dict(nogil=True, cache=True)
_PARALLEL = dict(nogil=True, cache=True, parallel=True)


@njit(**_SERIAL)
def _index(v, lo, inv, const_index):
    """LUT row of value ``v`` in a cell with range start ``lo`` and ``inv = 256 / (hi - lo)``.

    matplotlib's rule: ``floor((v - lo) / (hi - lo) * 256)`` clipped to 0..255.
    ``inv == 0`` marks an empty range (constant cell).
    """
    if v != v:
        return NAN_ROW
    if v == np.inf:
        return 255
    if v == -np.inf:
        return 0
    if inv == 0.0:
        return const_index
    x = (np.float64(v) - lo) * inv
    if x < 0.0:
        return 0
    if x >= 255.0:
        return 255
    return np.int64(x)


@njit(**_SERIAL)
def _fill_row(out, y, x0, x1, lut, row):
    for x in range(x0, x1):
        for b in range(out.shape[2]):
            out[y, x, b] = lut[row, b]


@njit(**_PARALLEL)
def tile_grid(src, lo, inv, const_index, lut, out, oy, ox, rows, cols, scale, gap):
    """Tile cells ``src[:, :, k, :]`` into a ``rows`` x ``cols`` grid of ``out``.

    Cell ``k`` sits at grid row ``k // cols``, column ``k % cols``; each value becomes a
    ``scale`` x ``scale`` block. ``src`` has 1 sample per pixel (colour-mapped through
    ``lut``) or as many samples as ``out`` has bands (each through its own LUT column,
    e.g. an RGB kernel). Grid cells past ``src.shape[2]`` get the empty colour; the
    ``gap`` pixels between cells the gap colour. Pixels outside the grid are untouched.
    """
    h, w, n, s = src.shape
    bands = out.shape[2]
    ch = h * scale
    cw = w * scale
    grid_w = cols * cw + (cols - 1) * gap
    for r in prange(rows):
        y0 = oy + r * (ch + gap)
        for yy in range(h):
            y = y0 + yy * scale
            for c in range(cols):
                k = r * cols + c
                x0 = ox + c * (cw + gap)
                if k < n:
                    l = lo[k]
                    iv = inv[k]
                    for xx in range(w):
                        xb = x0 + xx * scale
                        if s == 1:
                            i = _index(src[yy, xx, k, 0], l, iv, const_index)
                            for sx in range(scale):
                                for b in range(bands):
                                    out[y, xb + sx, b] = lut[i, b]
                        else:
                            for b in range(bands):
                                i = _index(src[yy, xx, k, b], l, iv, const_index)
                                for sx in range(scale):
                                    out[y, xb + sx, b] = lut[i, b]
                else:
                    _fill_row(out, y, x0, x0 + cw, lut, EMPTY_ROW)
                if c < cols - 1:
                    _fill_row(out, y, x0 + cw, x0 + cw + gap, lut, GAP_ROW)
            for sy in range(1, scale):
                out[y + sy, ox:ox + grid_w, :] = out[y, ox:ox + grid_w, :]
        if r < rows - 1:
            for y in range(y0 + ch, y0 + ch + gap):
                _fill_row(out, y, ox, ox + grid_w, lut, GAP_ROW)
