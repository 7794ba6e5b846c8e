"""Flat channels: a group whose range is negligible against its layer's is drawn as one colour
and listed, in grids, filters and features; the kernels against plain numpy references."""

import json

import numpy as np
import pytest

import montage
from montage.canvas import allocate, paint
from montage.colormap import colormap_lut, extended_lut
from montage.layout import Grid
from montage.normalize import FLAT_RELATIVE, const_index, flat_groups, grid_ranges
from reference import grid_reference

LUT = extended_lut(colormap_lut("viridis"), "magenta", "white", "black")
TINY = np.finfo(np.float32).tiny


def _group_of(mode, n, cols):
    k = np.arange(n)
    return {"cell": k, "filter": k // cols, "channel": k % cols, "global": 0 * k, "symmetric": 0 * k}[mode]


def _reference(src, mode, cols, clip):
    """(lo, hi per cell as drawn, flat groups), group by group in plain numpy."""
    group = _group_of(mode, src.shape[2], cols)
    glo, ghi = [], []
    for g in range(group.max() + 1):
        v = src[:, :, group == g].ravel()
        v = np.abs(v) if mode == "symmetric" else v
        v = v[np.isfinite(v)]
        if v.size == 0:
            lo = hi = 0.0
        else:
            lo, hi = (np.percentile(v, clip), np.percentile(v, 100 - clip)) if clip else (v.min(), v.max())
        glo.append(-hi if mode == "symmetric" else lo)
        ghi.append(hi)
    glo, ghi = np.array(glo), np.array(ghi)
    span, layer = ghi - glo, ghi.max() - glo.min()
    flat = [] if mode in ("global", "symmetric") else \
        [g for g in range(len(glo)) if span[g] <= FLAT_RELATIVE * layer or span[g] < TINY]
    hi_drawn = ghi.copy()
    hi_drawn[flat] = glo[flat]
    return glo[group], hi_drawn[group], flat


def _data(mode, h, w, rows, cols, seed):
    """Random maps (range ~60); group 0 dead (~1e-33), 1 constant, 2 spans ~4e-6 (flat), 3 ~4e-2 (not),
    with NaN, +-Inf and an all-NaN cell about."""
    rng = np.random.default_rng(seed)
    n = rows * cols
    src = rng.normal(size=(h, w, n, 1)).astype(np.float32) * 10
    group = _group_of(mode, n, cols)
    for g, offset, scale in ((0, 0.0, 1e-33), (1, 3.0, 0.0), (2, 0.0, 1e-6), (3, 0.0, 1e-2)):
        cells = group == g
        src[:, :, cells] = offset + scale * rng.normal(size=src[:, :, cells].shape).astype(np.float32)
    src[0, 0, 0, 0] = np.nan
    src[h - 1, 0, 1, 0] = np.inf
    src[0, w - 1, 2, 0] = -np.inf
    src[:, :, n - 1] = np.nan
    return src


@pytest.mark.parametrize("engine", ["numba", "numpy"])
@pytest.mark.parametrize("mode", ["cell", "filter", "channel", "global", "symmetric"])
@pytest.mark.parametrize("h,w,rows,cols,clip", [(3, 5, 6, 7, 0.0), (1, 1, 5, 5, 0.0), (4, 3, 6, 5, 2.0)])
def test_flat_groups_are_drawn_as_one_colour_as_the_reference_says(engine, mode, h, w, rows, cols, clip):
    src = _data(mode, h, w, rows, cols, seed=h * 10 + cols)
    lo, hi, glo, ghi = grid_ranges(src, mode, cols, clip)
    want_lo, want_hi, want_flat = _reference(src, mode, cols, clip)
    np.testing.assert_allclose(lo, want_lo, rtol=1e-12, atol=0)
    np.testing.assert_allclose(hi, want_hi, rtol=1e-12, atol=0)
    assert flat_groups(glo, ghi, mode).tolist() == want_flat
    if mode not in ("global", "symmetric") and (mode != "cell" or h * w > 1):   # a 1 x 1 cell is flat
        assert {0, 1, 2} <= set(want_flat) and 3 not in want_flat
    grid = Grid(rows, cols, rows * cols, h, w, 2, 1)
    out = allocate(grid.height, grid.width, 3, (1, 2, 3))
    paint(src, grid, lo, hi, LUT, out, const_index=const_index(mode), engine=engine)
    want = grid_reference(src, rows, cols, 2, 1, want_lo, want_hi, LUT, 3, const_index(mode))
    np.testing.assert_array_equal(out[..., :3], want)


def test_a_constant_layer_and_one_group_are_flat_only_where_negligible():
    assert flat_groups([0.0, 0.0], [1.0, 1e-6], "cell").tolist() == [1]
    assert flat_groups([0.0, 0.0], [1.0, 1.1e-6], "cell").tolist() == []
    assert flat_groups([1e-33, 2e-33], [3e-33, 4e-33], "cell").tolist() == []     # all tiny alike: drawn
    assert flat_groups([0.0], [1e-39], "cell").tolist() == [0]                    # subnormal
    assert flat_groups([0.0, 0.0], [1.0, 0.0], "global").tolist() == []


def test_grid_draws_a_dead_map_flat():
    rng = np.random.default_rng(0)
    maps = rng.normal(size=(4, 5, 6)).astype(np.float32)
    maps[2] = 1e-33 * rng.normal(size=(5, 6))
    got = montage.grid(maps, nrow=4, normalize="cell", gap=0)
    assert (got[:, 12:18] == got[0, 12]).all() and (got[0, 12] == colormap_lut("gray")[0]).all()
    assert len(np.unique(got[:, :6].reshape(-1, 3), axis=0)) > 10


def test_features_and_filters_list_flat_channels(tmp_path):
    torch = pytest.importorskip("torch")
    from helpers import random_images

    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3)).eval()
    with torch.no_grad():
        m[0].weight[1] *= 1e-35                     # a dead filter: its map is the bias plus ~1e-33
        m[0].bias[1] = 0.0
    imgs = [str(p) for p in random_images(tmp_path / "in", 1, side=32)]
    r = montage.features(m, imgs, tmp_path / "f", size=32, quiet=True)
    block = r["views"][0]["blocks"][0]
    assert block["normalize"]["flat"] == [1]
    r = montage.filters(m, out=tmp_path / "k", normalize="filter", quiet=True)
    assert r["views"][0]["blocks"][0]["normalize"]["flat"] == [1]
    manifest = json.loads((tmp_path / "k" / "manifest.json").read_text())
    assert manifest["views"][0]["blocks"][0]["normalize"]["flat"] == [1]
    r = montage.filters(m, out=tmp_path / "g", normalize="global", quiet=True)
    assert "flat" not in r["views"][0]["blocks"][0]["normalize"]
