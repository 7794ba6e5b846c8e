"""The kernels of :mod:`montage._kernels` in vectorised numpy, for small canvases.

Same signatures, same arguments, same pixels (the tests hold all three to the plain
reference). A canvas of a few megapixels costs numpy milliseconds, less than importing
numba and loading its compiled kernels (about 0.5 s), let alone compiling them on a
first run (several seconds): ``montage.canvas.paint`` picks these below
``SMALL_PIXELS``.
"""

import numpy as np

from .colormap import EMPTY_ROW, GAP_ROW, NAN_ROW


def lut_indices(src, lo, inv, const_index, idx):
    """LUT rows of every value: ``idx[b, y, k, x]`` for ``src[y, x, k, b]`` (see ``_kernels``)."""
    v = np.asarray(src, np.float64).transpose(3, 0, 2, 1)          # (b, y, k, x)
    lo_k, inv_k = lo[None, None, :, None], inv[None, None, :, None]
    with np.errstate(invalid="ignore", over="ignore"):
        t = np.minimum(np.maximum((v - lo_k) * inv_k, 0.0), 255.0)
        i = np.where(np.isnan(t), 0, t).astype(np.int32)
    const = np.where(v == np.inf, 255, np.where(v == -np.inf, 0, const_index))
    i = np.where(inv_k != 0.0, i, const)
    idx[...] = np.where(np.isnan(v), NAN_ROW, i).astype(np.uint16)


def paint_grid(idx, lutp, lut3, out, oy, ox, rows, cols, scale, gap):
    """Paint cells into a ``rows`` x ``cols`` grid of the 2-D canvas ``out`` (see ``_kernels``)."""
    s, h, n, w = idx.shape
    if s == 1:
        px = lutp[idx[0]]                                              # (h, n, w)
    else:
        px = lut3[idx[0], 0] | lut3[idx[1], 1] | lut3[idx[2], 2]
    cells = np.full((rows * cols, h, w), lutp[EMPTY_ROW], out.dtype)
    cells[:n] = px.transpose(1, 0, 2)
    cells = cells.reshape(rows, cols, h, w).repeat(scale, axis=2).repeat(scale, axis=3)
    ch, cw = h * scale, w * scale
    block = np.full((rows, ch + gap, cols, cw + gap), lutp[GAP_ROW], out.dtype)
    block[:, :ch, :, :cw] = cells.transpose(0, 2, 1, 3)
    height, width = rows * (ch + gap) - gap, cols * (cw + gap) - gap
    out[oy:oy + height, ox:ox + width] = block.reshape(rows * (ch + gap), cols * (cw + gap))[:height, :width]
