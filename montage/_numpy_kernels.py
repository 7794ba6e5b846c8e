"""The kernels of :mod:`montage._kernels` in vectorised numpy.

Same signatures, same arguments, same pixels (the tests hold all three to the plain
reference). A canvas of a few megapixels costs numpy milliseconds, less than importing
numba and loading its compiled kernels (about 0.6 s), let alone compiling them on a
first run (several seconds): ``montage.canvas.paint`` picks these below ``SMALL_PIXELS``
with ``engine='auto'``, and filters for runs under ``NUMBA_RUN_PIXELS``. Both work in
steps of a few megabytes, so their extra memory stays small beside the canvas.
"""

import numpy as np

from .colormap import EMPTY_ROW, GAP_ROW, NAN_ROW


CHUNK = 1 << 16   # values per step: the float64 temporaries stay in cache


def lut_indices(src, lo, inv, const_index, idx):
    """LUT rows of every value: ``idx[b, y, k, x]`` for ``src[y, x, k, b]`` (see ``_kernels``).

    In steps of about ``CHUNK`` values, each one pass of float64 arithmetic in place.
    """
    h, w, n, s = src.shape
    step = max(1, CHUNK // max(w, 1))
    const = inv == 0.0
    any_const = bool(const.any())
    t = np.empty(w * min(step, n), np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        for b in range(s):
            for y in range(h):
                for k0 in range(0, n, step):
                    k1 = min(k0 + step, n)
                    v = src[y, :, k0:k1, b]                                   # (w, cells)
                    tv = t[:v.size].reshape(v.shape)
                    np.subtract(v, lo[k0:k1], out=tv, dtype=np.float64)
                    tv *= inv[k0:k1]
                    np.clip(tv, 0.0, 255.0, out=tv)                           # NaN stays NaN
                    out = idx[b, y, k0:k1, :].T                               # (w, cells) view
                    np.copyto(out, tv, casting="unsafe")
                    nan = np.isnan(v)
                    if nan.any():
                        out[nan] = NAN_ROW
                    if any_const and const[k0:k1].any():
                        c = np.flatnonzero(const[k0:k1])
                        vc = v[:, c]
                        fix = np.where(vc == np.inf, 255, np.where(vc == -np.inf, 0, const_index))
                        out[:, c] = np.where(np.isnan(vc), NAN_ROW, fix)


BAND_PIXELS = 1 << 22   # canvas pixels per band of grid rows: temporaries stay a few MB


def paint_grid(idx, lutp, lut3, out, oy, ox, rows, cols, scale, gap):
    """Paint cells into a ``rows`` x ``cols`` grid of the 2-D canvas ``out`` (see ``_kernels``).

    In bands of grid rows (so the temporaries stay small whatever the canvas), each canvas row
    is built once (cells widened ``scale`` times, gap columns included) and stored ``scale``
    times through a strided view of the canvas; then the gap rows.
    """
    s, h, n, w = idx.shape
    ch, cw = h * scale, w * scale
    width = cols * (cw + gap) - gap
    r, i = out.strides
    band = max(1, BAND_PIXELS // max(1, h * cols * (cw + gap) * scale))
    for r0 in range(0, rows, band):
        r1 = min(r0 + band, rows)
        k0, k1 = r0 * cols, min(r1 * cols, n)
        line = np.empty((r1 - r0, h, cols, cw + gap), out.dtype)   # each canvas row once, gaps included
        line[..., cw:] = lutp[GAP_ROW]
        px = np.full((h, (r1 - r0) * cols, w), lutp[EMPTY_ROW], out.dtype)   # cells past n: empty
        if k1 > k0:
            if s == 1:
                px[:, :k1 - k0] = lutp[idx[0, :, k0:k1]]
            else:
                px[:, :k1 - k0] = lut3[idx[0, :, k0:k1], 0] | lut3[idx[1, :, k0:k1], 1] | lut3[idx[2, :, k0:k1], 2]
        cells = px.reshape(h, r1 - r0, cols, w).transpose(1, 0, 2, 3)     # (rows, y, col, x)
        line[..., :cw] = cells if scale == 1 else np.repeat(cells, scale, axis=3)
        rows_view = np.lib.stride_tricks.as_strided(                    # (row, y, repeat, x): long runs
            out[oy + r0 * (ch + gap):, ox:], (r1 - r0, h, scale, width), ((ch + gap) * r, scale * r, r, i),
            writeable=True)
        rows_view[...] = line.reshape(r1 - r0, h, cols * (cw + gap))[:, :, None, :width]
    if gap and rows > 1:
        gap_rows = np.lib.stride_tricks.as_strided(out[oy + ch:, ox:], (rows - 1, gap, width),
                                                   ((ch + gap) * r, r, i), writeable=True)
        gap_rows[...] = lutp[GAP_ROW]
