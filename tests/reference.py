"""Plain numpy references for the kernels: slow, obvious, and the truth the tests compare to."""

import numpy as np


def lut_index(values, lo, hi, const_index=0):
    """matplotlib's colormap index of ``values`` in range (lo, hi); 256 marks NaN."""
    v = np.asarray(values, np.float64)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        inv = 256.0 / (np.float64(hi) - np.float64(lo))
        if not (np.isfinite(inv) and inv > 0):
            inv = 0.0
        x = (v - np.float64(lo)) * inv
    idx = np.clip(np.floor(np.nan_to_num(x, nan=0.0, posinf=255, neginf=0)), 0, 255).astype(int)
    if inv == 0.0:
        idx[:] = const_index
    idx[v == np.inf] = 255
    idx[v == -np.inf] = 0
    idx[np.isnan(v)] = 256
    return idx


def grid_reference(src, rows, cols, scale, gap, lo, hi, lut, bands, const_index=0):
    """The canvas of a grid, built cell by cell with np.kron."""
    if src.ndim == 3:
        src = src[..., None]
    h, w, n, samples = src.shape
    ch, cw = h * scale, w * scale
    height, width = rows * (ch + gap) - gap, cols * (cw + gap) - gap
    out = np.empty((height, width, bands), np.uint8)
    out[...] = lut[257, :bands]  # gap colour
    for k in range(rows * cols):
        r, c = divmod(k, cols)
        y, x = r * (ch + gap), c * (cw + gap)
        if k >= n:
            out[y:y + ch, x:x + cw] = lut[258, :bands]
            continue
        cell = np.empty((h, w, bands), np.uint8)
        for b in range(bands):
            idx = lut_index(src[:, :, k, b if samples > 1 else 0], lo[k], hi[k], const_index)
            cell[:, :, b] = lut[idx, b]
        out[y:y + ch, x:x + cw] = np.kron(cell, np.ones((scale, scale, 1), np.uint8))
    return out


def cell_reference(rgb, box, cell, fill):
    """An example's cell, pixel by pixel: the patch inside ``box`` (top, left, bottom, right;
    ``fill`` outside the image), averaged in blocks of (max(1, h // cell), max(1, w // cell))
    pixels (a last partial block dropped), sampled by nearest neighbour, rounded half to even."""
    top, left, bottom, right = (int(v) for v in box)
    h, w = bottom - top, right - left
    fy, fx = max(1, h // cell), max(1, w // cell)
    out = np.empty((cell, cell, 3), np.uint8)
    for oy in range(cell):
        by = (oy * (h // fy)) // cell
        for ox in range(cell):
            bx = (ox * (w // fx)) // cell
            block = [[rgb[y, x] if 0 <= y < rgb.shape[0] and 0 <= x < rgb.shape[1] else fill
                      for x in range(left + bx * fx, left + bx * fx + fx)]
                     for y in range(top + by * fy, top + by * fy + fy)]
            out[oy, ox] = np.round(np.asarray(block, np.float64).mean(axis=(0, 1)))
    return out
