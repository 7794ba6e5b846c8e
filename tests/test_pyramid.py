"""montage's PNG pyramid writer against libvips' dzsave, tile by tile."""

import os
import zlib
from pathlib import Path

import numpy as np
import pytest
import pyvips

from montage import pyramid
from montage.write import OVERLAP, TILE_SIZE, write_block, write_dzi, write_png


def _tiles(folder):
    return {p.relative_to(folder).as_posix(): p for p in Path(folder).rglob("*.png")}


def _pixels(path):
    a = pyvips.Image.new_from_file(str(path)).numpy()
    return a[:, :, None] if a.ndim == 2 else a


SHAPES = [(1, 1, 1), (2, 1, 1), (3, 5, 1), (37, 1001, 1), (509, 511, 1), (512, 1023, 4), (1021, 77, 4),
          (2, 1500, 1), (1531, 1539, 1), (700, 700, 3), (1024, 1024, 4)]


@pytest.mark.parametrize("h, w, bands", SHAPES)
def test_every_tile_equals_dzsave(tmp_path, h, w, bands):
    rng = np.random.default_rng(h * 7919 + w)
    canvas = rng.integers(0, 256, (h, w, bands), dtype=np.uint8)
    canvas[: h // 3] = rng.integers(0, 2, (h // 3, w, bands), dtype=np.uint8) * 255   # rounding halves
    vips = pyvips.Image.new_from_array(canvas)
    vips = vips.extract_band(0, n=3) if bands == 4 else vips
    vips.dzsave(str(tmp_path / "v"), suffix=".png", tile_size=TILE_SIZE, overlap=OVERLAP, depth="onepixel")
    dzi = write_dzi(canvas, tmp_path / "m")
    theirs, ours = _tiles(tmp_path / "v_files"), _tiles(tmp_path / "m_files")
    assert sorted(ours) == sorted(theirs)
    for name in theirs:
        a, b = _pixels(theirs[name]), _pixels(ours[name])
        assert a.shape == b.shape and np.array_equal(a, b), name
    assert (tmp_path / "m.dzi").read_text() == (tmp_path / "v.dzi").read_text()
    assert dzi["Size"] == {"Width": str(w), "Height": str(h)} and dzi["Format"] == "png"


def test_halve_is_the_rounded_mean_with_edges_repeated():
    """Every band count (4 bands are halved as packed lanes, in strips: 301 rows cross two)."""
    rng = np.random.default_rng(3)
    for (h, w), bands in zip([(5, 7), (6, 4), (1, 9), (9, 1), (1, 1), (301, 9), (300, 10), (7, 3)] * 4,
                             [1] * 8 + [2] * 8 + [3] * 8 + [4] * 8):
        a = rng.integers(0, 256, (h, w, bands), dtype=np.uint8)
        a[::3] = rng.integers(0, 2, (len(a[::3]), w, bands)) * 255     # ties: means ending in .5
        p = np.pad(a, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge").astype(int)
        want = np.empty(((h + 1) // 2, (w + 1) // 2, bands), int)
        for y in range(want.shape[0]):
            for x in range(want.shape[1]):
                want[y, x] = (p[2 * y:2 * y + 2, 2 * x:2 * x + 2].sum(axis=(0, 1)) + 2) // 4
        assert np.array_equal(pyramid.halve(a), want)


@pytest.mark.parametrize("deflate", ["isal", "zlib"])
def test_png_decodes_with_zlib_alone(monkeypatch, deflate):
    """A plain PNG: any decoder reads it, whichever deflate wrote it (ISA-L, or zlib without it)."""
    if deflate == "zlib":
        monkeypatch.setattr(pyramid, "_deflate", zlib)
    rng = np.random.default_rng(4)
    for h, w in [(13, 29), (150, 160)]:    # under and over pyramid.SMALL (tiny tiles always take zlib)
        a = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        _check_png(pyramid.encode_png(a, 1), a)


def _check_png(data, a):
    h, w = a.shape[:2]
    assert data[:8] == pyramid.PNG_SIGNATURE
    i, idat = 8, b""
    while i < len(data):
        n = int.from_bytes(data[i:i + 4], "big")
        kind, body, crc = data[i + 4:i + 8], data[i + 8:i + 8 + n], data[i + 8 + n:i + 12 + n]
        assert int.from_bytes(crc, "big") == zlib.crc32(kind + body)
        idat += body if kind == b"IDAT" else b""
        i += 12 + n
    rows = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, 1 + w * 3)
    assert (rows[:, 0] == 0).all() and np.array_equal(rows[:, 1:].reshape(h, w, 3), a)
    assert np.array_equal(_pixels_of(data), a)


def _pixels_of(data):
    a = pyvips.Image.new_from_buffer(data, "").numpy()
    return a[:, :, None] if a.ndim == 2 else a


def test_tiny_tiles_are_the_same_bytes_whatever_came_before():
    """Tiny tiles go through zlib: the same pixels give the same file in any run."""
    rng = np.random.default_rng(6)
    tiny = rng.integers(0, 3, (7, 7, 1), dtype=np.uint8) * 40
    first = pyramid.encode_png(tiny)
    for _ in range(20):
        pyramid.encode_png(rng.integers(0, 256, (300, 300, 3), dtype=np.uint8))
        assert pyramid.encode_png(tiny) == first
    rows = np.concatenate([np.zeros((7, 1), np.uint8), tiny[:, :, 0]], axis=1)   # filter byte 0, then pixels
    assert first[37:41] == b"IDAT" and first[41:41 + int.from_bytes(first[33:37], "big")] == zlib.compress(rows, 6)


def test_progress_reaches_100_percent(tmp_path):
    class Bar:
        n = 0

        def update(self, k):
            assert k > 0
            self.n += k

    bar = Bar()
    write_dzi(np.zeros((1100, 900, 1), np.uint8), tmp_path / "p", bar=bar)
    assert bar.n == 100


def test_every_level_reads_back(tmp_path):
    """Down to the 1x1 level (a 1x1 grey tile comes back from pyvips as a 0-d array)."""
    from montage.result import read_level

    rng = np.random.default_rng(9)
    for bands in (1, 3):
        canvas = rng.integers(0, 256, (700, 515, bands), dtype=np.uint8)
        dzi = write_dzi(canvas, tmp_path / f"r{bands}")
        for level, want in pyramid.levels(canvas):
            assert np.array_equal(read_level(tmp_path, {"dzi": dzi}, level), want), (bands, level)


def test_bad_canvas_and_existing_folder_are_refused(tmp_path):
    for bad in [np.zeros((4, 4), np.uint8), np.zeros((0, 5, 1), np.uint8), np.zeros((5, 0, 3), np.uint8)]:
        with pytest.raises(ValueError):
            write_dzi(bad, tmp_path / "a")
        with pytest.raises(ValueError):
            write_png(bad, tmp_path / "a.png")
    for size, overlap in [(0, 1), (510, -1)]:
        with pytest.raises(ValueError, match="tile_size"):
            write_dzi(np.zeros((4, 4, 1), np.uint8), tmp_path / "t", tile_size=size, overlap=overlap)
    with pytest.raises(ValueError, match="PNG"):
        pyramid.encode_png(np.zeros((2, 3, 4), np.uint8))
    assert not any(tmp_path.iterdir())
    with pytest.raises(ValueError):
        write_dzi(np.zeros((4, 4, 1), np.float32), tmp_path / "b")
    (tmp_path / "c_files").mkdir()
    (tmp_path / "c_files" / "mine.txt").write_text("keep")
    with pytest.raises(FileExistsError):
        write_block(np.zeros((4, 4, 1), np.uint8), tmp_path / "c")
    assert (tmp_path / "c_files" / "mine.txt").read_text() == "keep"
    assert os.listdir(tmp_path / "c_files") == ["mine.txt"]


def test_tiles_written_on_threads_equal_one_thread_and_an_error_stops_the_rest(tmp_path, monkeypatch):
    """Tiles are encoded on a pool of threads: every tile holds its pixels of its level, and a
    failing tile raises its error after every tile already queued has finished or been cancelled."""
    rng = np.random.default_rng(5)
    canvas = np.ascontiguousarray((rng.integers(0, 6, (700, 1100, 3)) * 40).astype(np.uint8))
    pyramid.write_png_pyramid(canvas, tmp_path / "t", 128, 1)
    for level, a in pyramid.levels(canvas):
        for col, row, tile, _ in pyramid._tiles(a, 128, 1):
            got = pyvips.Image.new_from_file(str(tmp_path / f"t_files/{level}/{col}_{row}.png")).numpy()
            np.testing.assert_array_equal(got.reshape(tile.shape), tile)
    calls, encode = [], pyramid.encode_png

    def flaky(a, *rest):
        calls.append(1)
        if len(calls) == 7:
            raise OSError("disk full")
        return encode(a, *rest)

    monkeypatch.setattr(pyramid, "encode_png", flaky)
    with pytest.raises(OSError, match="disk full"):
        pyramid.write_png_pyramid(canvas, tmp_path / "u", 128, 1)
    n = len(calls)
    pyramid._pool().submit(lambda: None).result()   # the pool still serves, and nothing is still writing
    assert len(calls) == n and not (tmp_path / "u.dzi").exists()
