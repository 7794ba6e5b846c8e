"""Filters end to end: written pixels, geometry and files, read back."""

import numpy as np
import pytest

import montage
from helpers import read_dzi_level, small_model
from montage.colormap import colormap_lut, extended_lut, parse_color
from montage.layout import Grid, locate
from montage.normalize import grid_ranges
from montage.style import GAP_COLOR
from reference import grid_reference

GAP = parse_color(GAP_COLOR)[0]   # grey: one band


@pytest.fixture(scope="module")
def model():
    return small_model()


def _expected(kernel, mode, cmap, gap, scale, clip=0.0, bands=3):
    kh, kw, cin, cout = kernel.shape
    src = kernel.transpose(0, 1, 3, 2).reshape(kh, kw, cout * cin, 1)
    lo, hi, _, _ = grid_ranges(src, mode, cin, clip)
    lut = extended_lut(colormap_lut(cmap), "magenta", GAP_COLOR, GAP_COLOR)
    return grid_reference(src, cout, cin, scale, gap, lo, hi, lut, bands,
                          const_index=128 if mode == "symmetric" else 0)


@pytest.mark.parametrize("mode,cmap,bands,clip", [("global", "gray", 1, 0.0), ("cell", "viridis", 3, None),
                                                  ("symmetric", "RdBu_r", 3, 2.5), ("filter", "magma", 3, None)])
def test_dzi_and_tiff_round_trip(model, tmp_path, mode, cmap, bands, clip):
    out = tmp_path / "o"
    given = {} if clip is None else {"clip": clip}   # None: the default, 1 percentile
    m = montage.filters(model, ["conv_a", "conv_b", "conv_c"], out, cmap=cmap, normalize=mode,
                        cell=9, gap=2, tiff=True, quiet=True, **given)
    view = m["views"][0]
    for block, tile in zip(view["blocks"], view["tiles"]):
        kernel = model.get_layer(block["layer"]).get_weights()[0]
        want = _expected(kernel, mode, cmap, 2, 9 // max(kernel.shape[:2]), 1.0 if clip is None else clip,
                         bands=bands)
        np.testing.assert_array_equal(read_dzi_level(out, tile), want)
        import pyvips
        tif = pyvips.Image.new_from_file(str(out / block["tiff"])).numpy()
        np.testing.assert_array_equal(tif.reshape(want.shape), want)


def test_manifest_maps_pixels_to_filter_and_channel(model, tmp_path):
    """Each kernel gets a unique flat value; every pixel must lead back to it."""
    kernel = np.zeros((3, 3, 5, 7), np.float32)
    for i in range(7):
        for j in range(5):
            kernel[:, :, j, i] = i * 5 + j           # filter i, channel j
    layer = model.get_layer("conv_b")
    saved = layer.get_weights()
    layer.set_weights([kernel, saved[1]])
    try:
        m = montage.filters(model, "conv_b", tmp_path / "o", cmap="gray", cell=6, clip=0, quiet=True)
    finally:
        layer.set_weights(saved)
    block, tile = m["views"][0]["blocks"][0], m["views"][0]["tiles"][0]
    assert (block["grid"]["rows"], block["grid"]["cols"]) == (7, 5)   # rows = filters
    canvas = read_dzi_level(tmp_path / "o", tile)[..., 0]
    grid = Grid(**block["grid"])
    lut = colormap_lut("gray")[:, 0]
    seen = set()
    for y in range(canvas.shape[0]):
        for x in range(canvas.shape[1]):
            hit = locate(grid, y, x)
            if hit is None:
                assert canvas[y, x] == GAP          # the default gap colour
                continue
            f, c = hit[0], hit[1]
            value = f * 5 + c
            idx = min(int(value * 256 / 34), 255)  # global range 0..34
            assert canvas[y, x] == lut[idx], (y, x, f, c)
            seen.add((f, c))
    assert len(seen) == 35


def test_rgb_shows_red_green_blue_from_bgr_weights(tmp_path):
    """VGG16 (caffe preprocessing) stores B, G, R: the page must show R, G, B."""
    import keras

    import montage.net as mm

    inp = keras.Input((8, 8, 3))
    conv = keras.layers.Conv2D(2, 3, name="first")
    model = keras.Model(inp, conv(inp))
    k = np.zeros((3, 3, 3, 2), np.float32)
    k[:, :, 0, 0] = 1.0   # filter 0 looks at input channel 0 (= blue in BGR)
    k[:, :, 2, 1] = 1.0   # filter 1 looks at channel 2 (= red in BGR)
    conv.set_weights([k, np.zeros(2, np.float32)])
    loaded = mm.Loaded(model, "m", "test", {"source": "test"}, input_order="bgr")
    m = montage.filters(loaded, "first", tmp_path / "rgb", rgb=True, cell=3, gap=0, quiet=True)
    block = m["views"][0]["blocks"][0]
    assert block["kind"] == "rgb" and block["channel_order"] == "RGB"
    canvas = read_dzi_level(tmp_path / "rgb", m["views"][0]["tiles"][0])
    assert tuple(canvas[1, 1]) == (0, 0, 255)       # filter 0: blue
    assert tuple(canvas[1, 4]) == (255, 0, 0)       # filter 1: red


def test_flat_png_has_24px_kernels(model, tmp_path):
    m = montage.filters(model, "conv_b", tmp_path / "o", quiet=True)
    block = m["views"][0]["blocks"][0]
    import pyvips
    png = pyvips.Image.new_from_file(str(tmp_path / "o" / block["png"]))
    assert png.width == 5 * 24 + 4 and png.height == 7 * 24 + 6


def test_hed_weights_are_the_trained_vgg16_conv_stack():
    from montage.readers.applications import read_hed_kernels
    from montage.models import load_model

    loaded = load_model("vgg16", "hed")
    saved = read_hed_kernels()
    assert len(saved) == 13
    for name, (kernel, bias) in saved.items():
        got = loaded.model.get_layer(name).get_weights()
        np.testing.assert_array_equal(got[0], kernel)
        np.testing.assert_array_equal(got[1], bias)
    assert saved["block1_conv2"][0].shape == (3, 3, 64, 64)
    assert loaded.weights["source"] == "hed" and loaded.input_order == "bgr"
    assert float(np.abs(saved["block1_conv1"][0]).max()) > 0.1   # trained, not an initialiser


def test_output_replaces_only_when_complete(model, tmp_path):
    out = tmp_path / "o"
    montage.filters(model, "conv_c", out, quiet=True)
    first = (out / "manifest.json").read_bytes()
    with pytest.raises(montage.MontageError, match="not empty"):
        montage.filters(model, "conv_a", out, quiet=True)
    with pytest.raises(montage.MontageError, match="colormap"):
        montage.filters(model, "conv_a", out, cmap="nope", overwrite=True, quiet=True)
    assert (out / "manifest.json").read_bytes() == first
    montage.filters(model, "conv_a", out, overwrite=True, quiet=True)
    assert b"conv_a" in (out / "manifest.json").read_bytes() and (out / "index.html").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["o"]   # no temporary folders or lock left behind
