"""Normalisation ranges against plain numpy, on random data with NaN and Inf."""

import numpy as np
import pytest

from montage.errors import MontageError
from montage.normalize import grid_ranges, percentiles


def _finite_range(a, clip=0.0, symmetric=False):
    a = a[np.isfinite(a)]
    if a.size == 0:
        return 0.0, 0.0
    if symmetric:
        m = np.percentile(np.abs(a), 100 - clip) if clip else np.abs(a).max()
        return -m, m
    if clip:
        return np.percentile(a, clip), np.percentile(a, 100 - clip)
    return a.min(), a.max()


def _data(seed, h=3, w=2, rows=4, cols=5, s=1):
    rng = np.random.default_rng(seed)
    src = rng.normal(size=(h, w, rows * cols, s)).astype(np.float32) * rng.uniform(0.1, 5)
    src[0, 0, 3, 0] = np.nan
    src[1, 1, 7, 0] = np.inf
    src[2, 0, 11, 0] = -np.inf
    src[:, :, 8, :] = np.nan   # a cell with no finite value
    return src, rows, cols


@pytest.mark.parametrize("clip", [0.0, 2.5])
@pytest.mark.parametrize("mode", ["global", "filter", "channel", "cell", "symmetric"])
def test_grid_ranges_match_numpy(mode, clip):
    src, rows, cols = _data(7)
    lo, hi, glo, ghi = grid_ranges(src, mode, cols, clip)
    for k in range(rows * cols):
        r, c = divmod(k, cols)
        if mode in ("global", "symmetric"):
            sel = src
        elif mode == "filter":
            sel = src[:, :, r * cols:(r + 1) * cols]
        elif mode == "channel":
            sel = src[:, :, c::cols]
        else:
            sel = src[:, :, k]
        want = _finite_range(sel, clip, symmetric=(mode == "symmetric"))
        np.testing.assert_allclose([lo[k], hi[k]], want, rtol=1e-6)
    assert len(glo) == {"global": 1, "symmetric": 1, "filter": rows, "channel": cols, "cell": rows * cols}[mode]


def test_global_is_the_tutorials_formula():
    rng = np.random.default_rng(3)
    w = rng.normal(size=(3, 3, 6, 1)).astype(np.float32)
    lo, hi, _, _ = grid_ranges(w, "global", 3)
    assert lo[0] == w.min() and hi[0] == w.max()


def test_rgb_samples_share_their_cell_range():
    rng = np.random.default_rng(4)
    src = rng.normal(size=(3, 3, 4, 3))
    lo, hi, _, _ = grid_ranges(src, "cell", 2)
    np.testing.assert_allclose(lo, src.min(axis=(0, 1, 3)))
    np.testing.assert_allclose(hi, src.max(axis=(0, 1, 3)))


def test_bad_clip_and_mode():
    src, rows, cols = _data(1)
    with pytest.raises(MontageError, match="clip"):
        grid_ranges(src, "global", cols, clip=50)
    with pytest.raises(MontageError, match="unknown normalisation"):
        grid_ranges(src, "bogus", cols)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_percentiles_equal_numpys_exactly(dtype):
    """One partition for both ends gives np.percentile's values bit for bit (ties, odd sizes,
    several reduced axes, every clip), and leaves the input alone."""
    rng = np.random.default_rng(11)
    for trial in range(300):
        shape = tuple(int(k) for k in rng.integers(1, 9, size=3))
        v = (rng.normal(size=shape) * rng.uniform(0.01, 100)).astype(dtype)
        if trial % 4 == 0:
            v = np.round(v)
        before = v.copy()
        clip = float(rng.choice([0.5, 1.0, 2.5, 25.0, 49.9, rng.uniform(0, 50)]))
        for axes in [(0,), (0, 2), (1,), (0, 1, 2)]:
            lo, hi = percentiles(v, [clip], 100.0 - clip, axes)
            want_lo, want_hi = np.percentile(v, clip, axis=axes), np.percentile(v, 100.0 - clip, axis=axes)
            assert lo.dtype == want_lo.dtype and np.array_equal(lo, want_lo), (shape, clip, axes)
            assert np.array_equal(hi, want_hi), (shape, clip, axes)
            assert percentiles(v, [], 100.0 - clip, axes)[0] is None
        assert np.array_equal(v, before)


def test_percentiles_of_large_groups_equal_numpys_exactly():
    """Large single groups take the bracketing path (clip near 50 falls back to a partition):
    still np.percentile bit for bit, with ties, pruned zeros, sorted and constant data."""
    from montage.normalize import BRACKET_FROM

    rng = np.random.default_rng(12)
    n = BRACKET_FROM + 12345
    cases = [rng.normal(size=n).astype(np.float32), np.round(rng.normal(size=n) * 3).astype(np.float32),
             np.where(rng.random(n) < 0.7, 0, rng.normal(size=n)).astype(np.float32),
             np.sort(rng.normal(size=n)).astype(np.float32)[::-1], np.full(n, 2.5, np.float32),
             rng.standard_cauchy(n), rng.normal(size=n).astype(np.float16)]
    for v in cases:
        before = v.copy()
        for clip in [0.01, 1.0, 5.0, 30.0, 45.0]:
            for x in (v, v.reshape(-1, 1)):
                lo, hi = percentiles(x, [clip], 100.0 - clip, (0,))
                assert np.array_equal(lo, np.percentile(x, clip, axis=(0,))), (v.dtype, clip)
                assert np.array_equal(hi, np.percentile(x, 100.0 - clip, axis=(0,))), (v.dtype, clip)
                assert np.shape(hi) == np.shape(np.percentile(x, clip, axis=(0,)))
        assert np.array_equal(v, before)
