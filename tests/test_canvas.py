"""The tiling kernel against the numpy reference, on random data."""

import numpy as np
import pytest

from montage.canvas import allocate, paint
from montage.colormap import colormap_lut, extended_lut, identity_lut
from montage.layout import Grid, locate, near_square
from montage.normalize import grid_ranges
from reference import lut_index, grid_reference

LUT = extended_lut(colormap_lut("viridis"), "magenta", "white", "black")


@pytest.fixture(params=["numba", "numpy"])
def engine(request):
    """Both kernel sets: numba's, and the numpy one that small canvases use."""
    return request.param


def _render(src, rows, cols, scale, gap, lo, hi, lut, bands, const_index=0, engine="numba"):
    h, w, n = src.shape[:3]
    grid = Grid(rows, cols, n, h, w, scale, gap)
    out = allocate(grid.height, grid.width, bands, (1, 2, 3))
    paint(src, grid, lo, hi, lut, out, const_index=const_index, engine=engine)
    if bands == 3:
        assert (out[..., 3] == 255).all()   # the padding byte
    return out[..., :bands]


@pytest.mark.parametrize("h,w,n,rows,cols,scale,gap", [
    (3, 3, 12, 3, 4, 1, 1),
    (3, 3, 12, 4, 3, 5, 2),
    (5, 2, 7, 3, 3, 3, 1),     # odd shapes, empty trailing cells
    (1, 1, 1, 1, 1, 4, 0),
    (7, 4, 30, 5, 6, 2, 0),
])
def test_grid_matches_reference(h, w, n, rows, cols, scale, gap, engine):
    rng = np.random.default_rng(h * 100 + n)
    src = rng.normal(size=(h, w, n)).astype(np.float32)
    lo = rng.normal(size=n) - 1.0
    hi = lo + rng.uniform(0.1, 3.0, size=n)
    got = _render(src, rows, cols, scale, gap, lo, hi, LUT, 3, engine=engine)
    want = grid_reference(src, rows, cols, scale, gap, lo, hi, LUT, 3)
    np.testing.assert_array_equal(got, want)


def test_nan_inf_and_constant_cells(engine):
    rng = np.random.default_rng(1)
    src = rng.uniform(-1, 1, size=(3, 3, 6)).astype(np.float32)
    src[0, 0, 0] = np.nan
    src[1, 1, 1] = np.inf
    src[2, 2, 2] = -np.inf
    src[:, :, 3] = 0.25  # constant cell
    lo, hi, _, _ = grid_ranges(src[..., None], "cell", cols=3)
    assert lo[3] == hi[3] == np.float32(0.25)
    got = _render(src, 2, 3, 2, 1, lo, hi, LUT, 3, const_index=17, engine=engine)
    want = grid_reference(src, 2, 3, 2, 1, lo, hi, LUT, 3, const_index=17)
    np.testing.assert_array_equal(got, want)
    assert (got[0:2, 0:2] == LUT[256]).all()            # NaN colour
    assert (got[2:4, 7 + 2:7 + 4] == LUT[255]).all()  # +inf: top of the map (cell 1 starts at x=7)
    assert (got[7:13, 0:6] == LUT[17]).all()            # constant cell -> const_index


def test_all_nan_cell_and_degenerate_range(engine):
    src = np.full((2, 2, 2), np.nan, np.float32)
    src[:, :, 1] = np.array([[1e-30, 2e-30], [3e-30, 1e30]], np.float32)
    lo, hi = np.array([0.0, 0.0]), np.array([0.0, 1e-320])  # denormal span overflows 256/span
    got = _render(src, 1, 2, 1, 1, lo, hi, LUT, 3, engine=engine)
    want = grid_reference(src, 1, 2, 1, 1, lo, hi, LUT, 3)
    np.testing.assert_array_equal(got, want)


def test_rgb_cells_use_one_value_per_band(engine):
    rng = np.random.default_rng(2)
    src = rng.uniform(-2, 2, size=(3, 3, 5, 3)).astype(np.float32)
    src[1, 1, 4, 2] = np.nan
    lut = extended_lut(identity_lut(), "magenta", "black", "gray")
    lo, hi = np.full(5, -1.5), np.full(5, 1.5)
    got = _render(src, 2, 3, 3, 1, lo, hi, lut, 3, engine=engine)
    want = grid_reference(src, 2, 3, 3, 1, lo, hi, lut, 3)
    np.testing.assert_array_equal(got, want)
    # band b of a pixel is the index of sample b, as the identity LUT promises
    np.testing.assert_array_equal(got[0, 0], lut_index(src[0, 0, 0], -1.5, 1.5))


def test_single_band_canvas(engine):
    rng = np.random.default_rng(3)
    src = rng.normal(size=(3, 3, 4)).astype(np.float64)
    gray = extended_lut(colormap_lut("gray"), "gray", "white", "black")
    lo, hi, _, _ = grid_ranges(src[..., None], "global", cols=2)
    got = _render(src, 2, 2, 4, 1, lo, hi, gray, 1, engine=engine)
    want = grid_reference(src, 2, 2, 4, 1, lo, hi, gray, 1)
    np.testing.assert_array_equal(got, want)


def test_paint_at_origin_leaves_the_rest_untouched(engine):
    rng = np.random.default_rng(4)
    src = rng.normal(size=(2, 3, 5)).astype(np.float32)
    grid = Grid(2, 3, 5, 2, 3, 2, 1)
    canvas = allocate(grid.height + 10, grid.width + 7, 3, (9, 9, 9))
    paint(src, grid, -1.0, 1.0, LUT, canvas, origin=(4, 3), engine=engine)
    out = canvas[..., :3]
    want = grid_reference(src, 2, 3, 2, 1, np.full(5, -1.0), np.full(5, 1.0), LUT, 3)
    np.testing.assert_array_equal(out[4:4 + grid.height, 3:3 + grid.width], want)
    mask = np.ones(out.shape[:2], bool)
    mask[4:4 + grid.height, 3:3 + grid.width] = False
    assert (out[mask] == 9).all()


@pytest.mark.parametrize("bands", [1, 3])
@pytest.mark.parametrize("shape", [(1, 5), (7, 3), (131, 77)])
def test_big_canvases_filled_on_threads_equal_numpy(monkeypatch, bands, shape):
    import montage.canvas as canvas

    monkeypatch.setattr(canvas, "BIG", 64)   # every case but the tiniest takes the big path
    monkeypatch.setattr(canvas, "cores", lambda: 3)
    fill = (200, 17, 5)
    out = allocate(*shape, bands, fill)
    want = np.empty(shape + ((1, 4)[bands == 3],), np.uint8)
    want[...] = (fill[0],) if bands == 1 else fill + (255,)
    assert out.flags.c_contiguous and out.flags.writeable and out.shape == want.shape
    assert np.array_equal(out, want)
    out[...] = 9                            # reused: cleared again, in bands
    assert np.array_equal(canvas.clear(out, fill), want)


def test_paint_rejects_bad_arguments():
    grid = Grid(1, 2, 2, 3, 3, 1, 1)
    src = np.ones((3, 3, 2), np.float32)
    with pytest.raises(ValueError, match="does not match"):
        paint(np.ones((3, 3, 3), np.float32), grid, 0, 1, LUT, np.zeros((3, 7, 3), np.uint8))
    with pytest.raises(ValueError, match="leaves canvas"):
        paint(src, grid, 0, 1, LUT, np.zeros((3, 6, 4), np.uint8))
    with pytest.raises(ValueError, match="C-contiguous"):
        paint(src, grid, 0, 1, LUT, np.zeros((3, 7, 4), np.float32))
    with pytest.raises(ValueError, match="C-contiguous"):
        paint(src, grid, 0, 1, LUT, np.zeros((3, 7, 3), np.uint8))
    with pytest.raises(ValueError, match="cannot fill"):
        paint(np.ones((3, 3, 2, 3), np.float32), grid, 0, 1, LUT, np.zeros((3, 7, 1), np.uint8))


@pytest.mark.parametrize("steps", ["default", "tiny"])
def test_engines_agree_on_random_layers_with_nan_inf_and_constant_cells(monkeypatch, steps):
    if steps == "tiny":   # the numpy kernels' steps: many value chunks and bands of grid rows, last ones partial
        import montage._numpy_kernels as nk

        monkeypatch.setattr(nk, "CHUNK", 7)
        monkeypatch.setattr(nk, "BAND_PIXELS", 500)
    rng = np.random.default_rng(7)
    for h, w, n, bands, samples in [(3, 3, 64 * 37, 3, 1), (7, 1, 301, 1, 1), (3, 3, 50, 3, 3), (2, 5, 23, 1, 1)]:
        src = rng.normal(size=(h, w, n, samples)).astype(np.float32) * 3
        src.reshape(-1)[rng.choice(src.size, 40, replace=False)] = np.nan
        src.reshape(-1)[rng.choice(src.size, 20, replace=False)] = np.inf
        src.reshape(-1)[rng.choice(src.size, 20, replace=False)] = -np.inf
        src[:, :, 5] = 1.5
        rows, cols = near_square(n)
        grid = Grid(rows, cols, n, h, w, 2, 1)
        lo, hi, _, _ = grid_ranges(src, "cell", cols=cols)
        lut = LUT if samples == 1 else extended_lut(identity_lut(), "magenta", "black", "gray")
        got = {e: paint(src, grid, lo, hi, lut, allocate(grid.height, grid.width, bands, (9, 9, 9)),
                        const_index=99, engine=e) for e in ("numba", "numpy", "auto")}
        np.testing.assert_array_equal(got["numba"], got["numpy"])
        np.testing.assert_array_equal(got["numba"], got["auto"])
    with pytest.raises(ValueError, match="engine"):
        paint(src, grid, lo, hi, lut, allocate(grid.height, grid.width, 3), engine="cuda")


def test_locate_inverts_the_layout():
    rng = np.random.default_rng(5)
    for _ in range(20):
        h, w = rng.integers(1, 5, size=2)
        n = int(rng.integers(1, 30))
        rows, cols = near_square(n)
        scale, gap = int(rng.integers(1, 4)), int(rng.integers(0, 3))
        grid = Grid(rows, cols, n, int(h), int(w), scale, gap)
        # Every sample value is unique, so a pixel names its cell and position.
        src = np.arange(h * w * n, dtype=np.float64).reshape(n, h, w).transpose(1, 2, 0)
        ids = np.full((grid.height, grid.width), -1)
        for k in range(n):
            r, c = divmod(k, cols)
            y, x = r * grid.pitch_y, c * grid.pitch_x
            ids[y:y + h * scale, x:x + w * scale] = np.kron(src[:, :, k], np.ones((scale, scale)))
        for y in range(grid.height):
            for x in range(grid.width):
                hit = locate(grid, y, x)
                if hit is None:
                    assert ids[y, x] == -1
                else:
                    r, c, cy, cx = hit
                    assert ids[y, x] == src[cy, cx, r * cols + c]


def test_shelf_pack_places_blocks_apart_and_inside():
    from montage.layout import shelf_pack

    rng = np.random.default_rng(6)
    for _ in range(30):
        sizes = [tuple(int(v) for v in rng.integers(1, 60, size=2)) for _ in range(int(rng.integers(1, 14)))]
        gap = int(rng.integers(0, 5))
        origins, (H, W) = shelf_pack(sizes, gap)
        occupied = np.zeros((H + gap, W + gap), int)
        for (y, x), (h, w) in zip(origins, sizes):
            assert 0 <= y and 0 <= x and y + h <= H and x + w <= W
            occupied[y:y + h + gap, x:x + w + gap] += 1     # a block and its gap own their pixels
        assert occupied.max() == 1
        assert H * W >= sum(h * w for h, w in sizes)
