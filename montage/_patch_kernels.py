"""Numba kernels for examples' pictures: patches cut from decoded images, scaled into cells.

Dumb on purpose, like :mod:`montage._kernels`: they trust their arguments (``montage.patches``
builds and checks them), write only into arrays the caller allocated, and raise nothing.
"""

import numpy as np

from ._kernels import _kernel


@_kernel(nogil=True)
def cut_cells(sat, which, boxes, cell, fill, cells):
    """``cells[k]`` (cell, cell, 3) from image ``which[k]`` inside ``boxes[k]`` (top, left,
    bottom, right; ``fill`` where the box leaves the image), read from the images' summed-area
    tables ``sat`` (n, H + 1, W + 1, 3): ``sat[i, y, x] = rgbs[i, :y, :x].sum((0, 1))``.

    The patch (h, w) is averaged in blocks of (max(1, h // cell), max(1, w // cell)) pixels
    (the last partial block dropped), then sampled by nearest neighbour: row ``(y * h') // cell``
    of the h' block rows; means round half to even. Each block's sum is four reads of the table
    whatever its size (deep layers' fields are hundreds of pixels wide), exact in integers: the
    same pixels as numpy's block means and ``np.round``.
    """
    H, W = sat.shape[1] - 1, sat.shape[2] - 1
    for k in range(which.shape[0]):
        t = sat[which[k]]
        top, left, bottom, right = boxes[k, 0], boxes[k, 1], boxes[k, 2], boxes[k, 3]
        h, w = bottom - top, right - left
        fy, fx = max(1, h // cell), max(1, w // cell)
        h2, w2 = h // fy, w // fx
        n = fy * fx
        inv = 1.0 / n
        for oy in range(cell):
            y0 = top + ((oy * h2) // cell) * fy
            a, b = min(max(y0, 0), H), min(max(y0 + fy, 0), H)
            ra, rb = t[a], t[b]
            for ox in range(cell):
                x0 = left + ((ox * w2) // cell) * fx
                c, d = min(max(x0, 0), W), min(max(x0 + fx, 0), W)
                outside = n - (b - a) * (d - c)
                for ch in range(3):
                    s = (np.int64(rb[d, ch]) - np.int64(ra[d, ch]) - np.int64(rb[c, ch]) + np.int64(ra[c, ch])
                         + outside * np.int64(fill[ch]))
                    # s / n rounded half to even, in integers (exact); the float product only guesses q
                    q = np.int64(s * inv)
                    rem = s - q * n
                    if rem < 0:
                        q -= 1
                        rem += n
                    elif rem >= n:
                        q += 1
                        rem -= n
                    if 2 * rem > n or (2 * rem == n and q & 1):
                        q += 1
                    cells[k, oy, ox, ch] = np.uint8(q)


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
