"""Numba kernels: normalise, colour-map and pixel-repeat cells straight into a canvas.

The kernels are dumb on purpose: they trust their arguments (``montage.canvas``
validates them), write only into the ``out`` array the caller allocated, and
raise nothing.

``out`` is 2-D: one ``uint32`` per pixel (R, G, B, 255 packed little-endian: a
(H, W, 4) uint8 canvas viewed as uint32) or one ``uint8`` per pixel (grey). One
store per pixel is what lets the kernel run near memory speed. Colours come from
a packed look-up table ``lutp`` of 259 entries: rows 0..255 are the colormap, then
the three special colours below.
"""

import numpy as np
from numba import config, njit, prange

from .colormap import EMPTY_ROW, GAP_ROW, NAN_ROW
from .paths import private_dir


def _kernel(**options):
    """``njit`` with an on-disk cache where one can be written, else compiled per process.

    The cache keeps compilation out of later runs; it is an optimisation, never a
    requirement.
    """
    def wrap(fn):
        try:
            return njit(cache=True, **options)(fn)
        except RuntimeError:   # numba: "cannot cache function ...: no locator available"
            pass
        if not config.CACHE_DIR and (path := private_dir("numba")):
            config.CACHE_DIR = path
            try:
                return njit(cache=True, **options)(fn)
            except RuntimeError:
                pass
        return njit(cache=False, **options)(fn)
    return wrap


# Helpers are inlined into the kernel: a real call per cell would cost more than the cell.
_PARALLEL = dict(nogil=True, parallel=True)
_INLINE = dict(nogil=True, inline="always")


@_kernel(**_PARALLEL)
def lut_indices(src, lo, inv, const_index, idx):
    """LUT rows of every value: ``idx[b, y, k, x]`` for ``src[y, x, k, b]``.

    matplotlib's rule, ``floor((v - lo) / (hi - lo) * 256)`` clipped to 0..255, with
    ``inv = 256 / (hi - lo)`` per cell; NaN gets its own row, +-Inf the ends, a constant
    cell (``inv[k] == 0``) ``const_index``. Branch-free selects over cells that lie next to
    each other in memory, so LLVM vectorises the loop. The cell-major output makes the
    next stage read each cell's row in one run.
    """
    h, w, n, s = src.shape
    for p in prange(h * w):
        y = p // w
        x = p - y * w
        for b in range(s):
            for k in range(n):
                v = src[y, x, k, b]
                iv = inv[k]
                t = min(max((np.float64(v) - lo[k]) * iv, 0.0), 255.0)
                i = np.int32(t)
                inf_i = np.int32(255) if v == np.inf else np.int32(0)
                i = i if iv != 0.0 else (inf_i if (v == np.inf or v == -np.inf) else np.int32(const_index))
                idx[b, y, k, x] = np.uint16(NAN_ROW) if v != v else np.uint16(i)


@_kernel(**_INLINE)
def _fill(row, x0, x1, value):
    for x in range(x0, x1):
        row[x] = value


@_kernel(**_PARALLEL)
def paint_grid(idx, lutp, lut3, out, oy, ox, rows, cols, scale, gap):
    """Paint cells into a ``rows`` x ``cols`` grid of the 2-D canvas ``out``.

    ``idx[b, y, k, x]`` (from :func:`lut_indices`) holds LUT rows of cell ``k``, which
    sits at grid row ``k // cols``, column ``k % cols``; each value becomes a ``scale`` x
    ``scale`` block. With 1 sample per pixel, the colour is ``lutp[i]``; with 3 (an RGB
    kernel) each band goes through its own column of ``lut3`` (uint32, already shifted
    into place). Grid cells past ``n`` get the empty colour, the ``gap`` pixels between
    cells the gap colour; pixels outside the grid are untouched. One store per pixel; the
    ``scale - 1`` repeats of a row are row copies.
    """
    s, h, n, w = idx.shape
    ch = h * scale
    cw = w * scale
    grid_w = cols * cw + (cols - 1) * gap
    gap_px = lutp[GAP_ROW]
    empty_px = lutp[EMPTY_ROW]
    for r in prange(rows):
        y0 = oy + r * (ch + gap)
        for yy in range(h):
            y = y0 + yy * scale
            row = out[y]
            for c in range(cols):
                k = r * cols + c
                x0 = ox + c * (cw + gap)
                if k < n:
                    if s == 1:
                        cell = idx[0, yy, k]
                        if scale == 1:
                            for xx in range(w):
                                row[x0 + xx] = lutp[cell[xx]]
                        elif scale == 2:   # the default for filters: two stores, no inner loop
                            for xx in range(w):
                                p = lutp[cell[xx]]
                                row[x0 + 2 * xx] = p
                                row[x0 + 2 * xx + 1] = p
                        else:
                            for xx in range(w):
                                p = lutp[cell[xx]]
                                x = x0 + xx * scale
                                for sx in range(scale):
                                    row[x + sx] = p
                    else:
                        for xx in range(w):
                            p = lut3[idx[0, yy, k, xx], 0] | lut3[idx[1, yy, k, xx], 1] | lut3[idx[2, yy, k, xx], 2]
                            x = x0 + xx * scale
                            for sx in range(scale):
                                row[x + sx] = p
                else:
                    _fill(row, x0, x0 + cw, empty_px)
                if c < cols - 1:
                    _fill(row, x0 + cw, x0 + cw + gap, gap_px)
            for sy in range(1, scale):
                out[y + sy, ox:ox + grid_w] = row[ox:ox + grid_w]
        if r < rows - 1:
            for y in range(y0 + ch, y0 + ch + gap):
                _fill(out[y], ox, ox + grid_w, gap_px)
