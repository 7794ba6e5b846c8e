"""Numba kernels for examples' pictures: patches cut from decoded images, scaled into cells.

Dumb on purpose, like :mod:`montage._kernels`: they trust their arguments (``montage.patches``
builds and checks them), write only into arrays the caller allocated, and raise nothing.
"""

import numpy as np

from ._kernels import _kernel


@_kernel(nogil=True)
def cut_cells(rgbs, which, boxes, cell, fill, cells):
    """``cells[k]`` (cell, cell, 3) from ``rgbs[which[k]]`` (n, H, W, 3) inside ``boxes[k]``
    (top, left, bottom, right; ``fill`` where the box leaves the image).

    The patch (h, w) is averaged in blocks of (max(1, h // cell), max(1, w // cell)) pixels
    (the last partial block dropped), then sampled by nearest neighbour: row ``(y * h') // cell``
    of the h' block rows; means round half to even. The same pixels as numpy's block means and
    ``np.round`` (the sums are exact in float64).
    """
    H, W = rgbs.shape[1], rgbs.shape[2]
    for k in range(which.shape[0]):
        img = which[k]
        top, left, bottom, right = boxes[k, 0], boxes[k, 1], boxes[k, 2], boxes[k, 3]
        h, w = bottom - top, right - left
        fy, fx = max(1, h // cell), max(1, w // cell)
        h2, w2 = h // fy, w // fx
        n = float(fy * fx)
        for oy in range(cell):
            y0 = top + ((oy * h2) // cell) * fy
            for ox in range(cell):
                x0 = left + ((ox * w2) // cell) * fx
                for ch in range(3):
                    s = 0.0
                    for dy in range(fy):
                        iy = y0 + dy
                        for dx in range(fx):
                            ix = x0 + dx
                            if 0 <= iy < H and 0 <= ix < W:
                                s += rgbs[img, iy, ix, ch]
                            else:
                                s += fill[ch]
                    v = s / n
                    r = np.floor(v)
                    d = v - r
                    if d > 0.5 or (d == 0.5 and r % 2.0 == 1.0):
                        r += 1.0
                    cells[k, oy, ox, ch] = np.uint8(r)


@_kernel(nogil=True)
def place_cells(cells, index, dest, out):
    """``out[y:y + cell, x:x + cell, :3] = cells[index[k]]`` for ``(y, x) = dest[k]``."""
    cell = cells.shape[1]
    for k in range(index.shape[0]):
        src = index[k]
        y, x = dest[k, 0], dest[k, 1]
        for oy in range(cell):
            for ox in range(cell):
                for ch in range(3):
                    out[y + oy, x + ox, ch] = cells[src, oy, ox, ch]
