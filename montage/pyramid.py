"""Deep Zoom pyramids with PNG tiles, written straight from a numpy canvas.

libvips' ``dzsave`` pays about a millisecond of set-up per tile (a save pipeline each), which
is most of the cost for the hundreds of small pyramids of a model's layers. Here the levels are
halved with numpy and each tile is one deflate call, in the same layout and with the same
pixels as ``dzsave`` (2x2 means rounded half up, the last row and column repeated on odd
sides, overlapping tiles cut from each level); the tests hold the two equal tile by tile.
Deflate comes from ISA-L (the ``isal`` package) where installed, about 5x zlib's speed at
the same size.
"""

import os
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor, wait

import numpy as np

from .canvas import cores

try:
    from isal import isal_zlib as _deflate
    LEVEL = 2   # ISA-L's default: as fast as its level 1 and a little smaller
except ImportError:   # pragma: no cover - isal is a dependency; plain zlib gives the same pixels
    import zlib as _deflate
    LEVEL = 1

# Under this many bytes a tile goes through zlib: ISA-L's streams for tiny inputs (a 7x7 tile)
# were seen to differ from run to run (the same pixels; the same bytes are what the tests and
# users compare), and there its speed buys nothing.
SMALL = 1 << 16

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

DZI_XML = """<?xml version="1.0" encoding="UTF-8"?>
<Image xmlns="http://schemas.microsoft.com/deepzoom/2008"
  Format="{fmt}"
  Overlap="{overlap}"
  TileSize="{tile_size}"
  >
  <Size 
    Height="{height}"
    Width="{width}"
  />
</Image>
"""


def _sum4(a00, a10, a01, a11):
    s = a00.astype(np.uint16)
    s += a10
    s += a01
    s += a11
    s += 2
    s >>= 2
    return s


STRIP = 128   # output rows per step of the packed halving: its scratch stays small and in cache


def _halve_packed(body, out):
    """2x2 means of a (2h, 2w, 4) uint8 ``body`` (pixels 4 bytes apart) into ``out`` (h, w, 4).

    Each pixel's four bands become the 16-bit lanes of one uint64 (sums stay under 1,024: no
    carry between lanes), so every numpy loop runs over whole rows instead of 3 or 4 bytes at
    a time; the byte each lane ends with is its rounded mean.
    """
    h2, w2 = out.shape[:2]
    for y0 in range(0, h2, STRIP):
        y1 = min(y0 + STRIP, h2)
        v = body[2 * y0:2 * y1:2].astype(np.uint16)
        v += body[2 * y0 + 1:2 * y1:2]
        q = v.view(np.uint64).reshape(y1 - y0, 2 * w2)
        s = q[:, 0::2] + q[:, 1::2]
        s += np.uint64(0x0002000200020002)
        s >>= np.uint64(2)       # bits shifted in from the next lane land above the low byte
        np.copyto(out[y0:y1], s.view(np.uint16).reshape(y1 - y0, w2, 4), casting="unsafe")


def halve(a):
    """The next Deep Zoom level: each 2x2 block's mean, rounded half up.

    An odd side repeats its last row or column first, so the level is ``ceil(side / 2)``
    (done on the edge alone: no padded copy of the level).
    """
    h, w = a.shape[:2]
    h2, w2 = h // 2, w // 2
    out = np.empty((h - h2, w - w2) + a.shape[2:], np.uint8)
    body = a[:2 * h2, :2 * w2]
    if a.ndim == 3 and a.shape[2] == 4 and a.strides[1:] == (4, 1):
        _halve_packed(body, out[:h2, :w2])
    else:   # a band at a time: numpy's loops then run along rows, not over 3 bytes
        for c in range(a.shape[2] if a.ndim == 3 else 1):
            at = (..., c) if a.ndim == 3 else ...
            b = body[at]
            out[:h2, :w2][at] = _sum4(b[0::2, 0::2], b[1::2, 0::2], b[0::2, 1::2], b[1::2, 1::2])
    if w % 2:    # the last column, repeated: (top + bottom) twice
        col = a[:2 * h2, w - 1]
        out[:h2, w2] = _sum4(col[0::2], col[1::2], col[0::2], col[1::2])
    if h % 2:
        row = a[h - 1, :2 * w2]
        out[h2, :w2] = _sum4(row[0::2], row[1::2], row[0::2], row[1::2])
    if h % 2 and w % 2:
        out[h2, w2] = a[h - 1, w - 1]
    return out


def top_level(height, width):
    """The Deep Zoom level number of the full resolution: ``ceil(log2(longest side))``, exactly."""
    return (max(int(height), int(width), 1) - 1).bit_length()


def levels(canvas):
    """Every level from the full resolution down to one pixel, as (level number, array)."""
    top = top_level(canvas.shape[0], canvas.shape[1])
    a = canvas
    yield top, a
    for level in range(top - 1, -1, -1):
        a = halve(a)
        yield level, a


def _chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", _deflate.crc32(data, _deflate.crc32(kind)))


def encode_png(a, level=LEVEL):
    """PNG bytes of a (H, W, 1|3) uint8 array: grey or RGB, 8 bits, no row filter."""
    h, w, bands = a.shape
    if bands not in (1, 3) or not h or not w or a.dtype != np.uint8:
        raise ValueError(f"a PNG holds a non-empty (H, W, 1|3) uint8 array, not {a.shape} {a.dtype}")
    rows = np.empty((h, 1 + w * bands), np.uint8)
    rows[:, 0] = 0                                 # each row starts with its filter byte, 0 = none
    pixels = rows[:, 1:].reshape(h, w, bands)
    for c in range(bands):                         # a band at a time: long loops, not 3-byte ones
        pixels[:, :, c] = a[:, :, c]
    head = struct.pack(">IIBBBBB", w, h, 8, 0 if bands == 1 else 2, 0, 0, 0)
    body = zlib.compress(rows, 6) if rows.nbytes < SMALL else _deflate.compress(rows, level)
    return b"".join([PNG_SIGNATURE, _chunk(b"IHDR", head), _chunk(b"IDAT", body), _chunk(b"IEND", b"")])


_POOL = []


def _pool():
    """One pool of tile encoders per process, a thread per core (ISA-L's deflate, numpy's copies
    and the file writes release the GIL)."""
    if not _POOL:
        _POOL.append(ThreadPoolExecutor(cores(), thread_name_prefix="montage-tiles"))
    return _POOL[0]


def _write_tile(path, tile):
    data = encode_png(tile[:, :, :3])   # a 4th band (montage's canvases carry one) is not written
    with open(path, "wb") as f:
        f.write(data)


def _tiles(a, tile_size, overlap):
    """(col, row, tile, pixels of the level it covers) of one level."""
    lh, lw = a.shape[:2]
    for row in range(-(-lh // tile_size)):
        y0, y1 = max(row * tile_size - overlap, 0), min((row + 1) * tile_size + overlap, lh)
        for col in range(-(-lw // tile_size)):
            x0, x1 = max(col * tile_size - overlap, 0), min((col + 1) * tile_size + overlap, lw)
            pixels = (min(y1, (row + 1) * tile_size) - row * tile_size) * (min(x1, (col + 1) * tile_size)
                                                                           - col * tile_size)
            yield col, row, a[y0:y1, x0:x1], pixels


def _retire(jobs, on_tile):
    while jobs:
        job, pixels = jobs.pop(0)
        job.result()
        if on_tile is not None:
            on_tile(pixels)


def write_png_pyramid(canvas, base, tile_size, overlap, on_tile=None):
    """Write ``base + '.dzi'`` and ``base + '_files/LEVEL/COL_ROW.png'`` for a (H, W, 1|3|4)
    canvas (a 4th band, as :func:`montage.canvas.allocate` gives, is halved along but not written).

    Tiles are encoded on every core while the next level is halved; ``on_tile(pixels)`` is
    called (on this thread) after each tile with the pixels of its level it covers. The files
    are the same bytes as one thread writes.
    """
    base = os.fspath(base)
    h, w = canvas.shape[:2]
    files = base + "_files"
    os.mkdir(files)
    pool, earlier, jobs = _pool(), [], []
    try:
        for level, a in levels(canvas):    # halving the next level overlaps this level's encoding
            _retire(earlier, on_tile)      # at most two levels' tiles in flight
            folder = os.path.join(files, str(level))
            os.mkdir(folder)
            earlier, jobs = jobs, []
            for col, row, tile, pixels in _tiles(a, tile_size, overlap):
                jobs.append((pool.submit(_write_tile, os.path.join(folder, f"{col}_{row}.png"), tile), pixels))
        _retire(earlier, on_tile)
        _retire(jobs, on_tile)
    finally:   # after an error: nothing left writing into a folder the caller may remove
        for job, _ in earlier + jobs:
            job.cancel()
        wait([job for job, _ in earlier + jobs])
    with open(base + ".dzi", "w") as f:
        f.write(DZI_XML.format(fmt="png", overlap=overlap, tile_size=tile_size, height=h, width=w))


def level_pixels(height, width):
    """Pixels in all levels of a pyramid, for progress."""
    total = 0
    for k in range(top_level(height, width) + 1):
        total += -(-height // 2 ** k) * -(-width // 2 ** k)
    return total
