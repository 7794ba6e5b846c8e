"""montage.grid: arrays in, one canvas out, against plain numpy references."""

import numpy as np
import pytest

import montage
from montage.colormap import colormap_lut, extended_lut, identity_lut
from reference import grid_reference


def _lut(cmap="gray", gap=(255, 255, 255)):
    return extended_lut(colormap_lut(cmap), "magenta", gap, gap)


def _ranges(values, groups):
    """(lo, hi) per cell: min/max of the finite values of each cell's group."""
    lo, hi = np.empty(len(groups)), np.empty(len(groups))
    for k, g in enumerate(groups):
        v = values[g]
        v = v[np.isfinite(v)]
        lo[k], hi[k] = (v.min(), v.max()) if v.size else (0.0, 0.0)
    return lo, hi


@pytest.mark.parametrize("shape,nrow", [((7, 5, 3), None), ((12, 4, 6, 1), 5), ((1, 9, 9), None), ((6, 3, 3), 2)])
def test_maps_match_the_reference(shape, nrow):
    rng = np.random.default_rng(0)
    a = rng.normal(size=shape).astype(np.float32)
    a.flat[3] = np.nan
    got = montage.grid(a, nrow=nrow, padding=2, cmap="viridis")
    n = shape[0]
    cols = nrow or int(np.ceil(np.sqrt(n)))
    rows = -(-n // cols)
    src = a.reshape(n, shape[1], shape[2]).transpose(1, 2, 0)
    lo, hi = _ranges(src.ravel(), [slice(None)] * n)
    want = grid_reference(src, rows, cols, 1, 2, lo, hi, _lut("viridis"), 3)
    np.testing.assert_array_equal(got, want)


def test_torch_style_options():
    rng = np.random.default_rng(1)
    a = rng.random((6, 4, 4)).astype(np.float32) * 3 - 1
    src = a.transpose(1, 2, 0)
    each = montage.grid(a, nrow=3, scale_each=True, padding=1, pad_value=0.0)
    lo, hi = _ranges(src.reshape(-1, 6).T.ravel(), [slice(k * 16, k * 16 + 16) for k in range(6)])
    np.testing.assert_array_equal(each, grid_reference(src, 2, 3, 1, 1, lo, hi, _lut(gap=(0, 0, 0)), 3))
    fixed = montage.grid(a, nrow=3, value_range=(-1, 2), padding=0)
    np.testing.assert_array_equal(fixed, grid_reference(src, 2, 3, 1, 0, np.full(6, -1.0), np.full(6, 2.0),
                                                        _lut(), 3))
    raw = montage.grid(np.clip(a, 0, 1), nrow=3, normalize=False, padding=0)
    np.testing.assert_array_equal(raw, grid_reference(np.clip(src, 0, 1), 2, 3, 1, 0, np.zeros(6), np.ones(6),
                                                      _lut(), 3))


def test_rgb_images_and_cell_size():
    rng = np.random.default_rng(2)
    a = rng.random((3, 5, 4, 3)).astype(np.float32)
    got = montage.grid(a, normalize=False, cell=10, gap=3, gap_color="#102030")
    src = a.transpose(1, 2, 0, 3)
    lut = extended_lut(identity_lut(), "magenta", (16, 32, 48), (16, 32, 48))
    want = grid_reference(src, 2, 2, 2, 3, np.zeros(3), np.ones(3), lut, 3)   # ceil(10 / 5) = 2
    np.testing.assert_array_equal(got, want)


def test_conv_kernel_rows_are_filters():
    rng = np.random.default_rng(3)
    k = rng.normal(size=(3, 3, 4, 5)).astype(np.float32)
    got = montage.grid(k, kernel=True, normalize="filter", gap=1)
    src = k.transpose(0, 1, 3, 2).reshape(3, 3, 20)
    lo, hi = _ranges(np.concatenate([src[:, :, i * 4:(i + 1) * 4].ravel() for i in range(5)]),
                     [slice(i * 36, (i + 1) * 36) for i in range(5) for _ in range(4)])
    np.testing.assert_array_equal(got, grid_reference(src, 5, 4, 1, 1, lo, hi, _lut(), 3))


def test_constant_and_infinite_cells_and_bad_input():
    a = np.ones((2, 3, 3), np.float32)
    a[1, 0, 0] = np.inf
    got = montage.grid(a, scale_each=True, padding=0)
    assert (got[:, :3] == 0).all()                           # a constant cell: the colormap's start
    assert tuple(got[0, 3]) == (255, 255, 255)               # +Inf: its end
    with pytest.raises(montage.MontageError, match=r"kernel=True; got shape \(2, 4, 3, 5\); each channel a map: "
                                                   r"a.reshape\(-1, 3, 5\)"):
        montage.grid(np.zeros((2, 4, 3, 5)))
    with pytest.raises(montage.MontageError, match="numbers"):
        montage.grid(np.array([["a"]]))
    with pytest.raises(montage.MontageError, match="normalisation"):
        montage.grid(np.zeros((2, 3, 3)), normalize="bogus")


def test_torch_tensors():
    torch = pytest.importorskip("torch", reason="torch is not installed (an optional extra)")
    a = torch.rand(4, 6, 6)
    np.testing.assert_array_equal(montage.grid(a), montage.grid(a.numpy()))


def test_channels_first_and_a_single_map_as_make_grid_takes_them():
    rng = np.random.default_rng(3)
    maps = rng.random((16, 28, 28)).astype(np.float32)
    np.testing.assert_array_equal(montage.grid(maps[:, None]), montage.grid(maps))         # (N, 1, H, W)
    rgb = rng.random((5, 3, 8, 6)).astype(np.float32)
    np.testing.assert_array_equal(montage.grid(rgb), montage.grid(rgb.transpose(0, 2, 3, 1)))   # (N, 3, H, W)
    np.testing.assert_array_equal(montage.grid(maps[0]), montage.grid(maps[:1]))           # (H, W): one map
    assert montage.grid(maps[0], padding=0).shape == (28, 28, 3)


def test_torch_tensors_channels_first_with_grad():
    torch = pytest.importorskip("torch", reason="torch is not installed (an optional extra)")
    t = torch.rand(16, 3, 32, 32, requires_grad=True)
    want = montage.grid(t.detach().numpy().transpose(0, 2, 3, 1), nrow=8, padding=2)
    np.testing.assert_array_equal(montage.grid(t, nrow=8, padding=2), want)
    one = torch.rand(3, 9, 7)                   # make_grid's one image (C, H, W)
    np.testing.assert_array_equal(montage.grid(one), montage.grid(one.numpy().transpose(1, 2, 0)[None]))
    assert montage.grid(torch.rand(1, 9, 7), padding=0).shape == (9, 7, 3)
