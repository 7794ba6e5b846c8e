"""Any CNN a user brings: every conv kind, nested models, built-in model names, the right input."""

import re
import subprocess
import sys

import numpy as np
import pytest

import montage
from helpers import kinds_model, random_images, read_dzi_level, read_manifest
from montage.colormap import colormap_lut, parse_color
from montage.images import read_rgb
from montage.layout import Grid, locate
from montage.style import GAP_COLOR

GAP = parse_color(GAP_COLOR)[0]   # grey: one band
from reference import lut_index


def run(*args):
    return subprocess.run([sys.executable, "-m", "montage", *args], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def kinds():
    return kinds_model()


def _cell_value(kernel, op, block, row, col, cy, cx):
    """The weight drawn at (cell row, col, y, x), from the documented layout rules alone."""
    g = block["grid"]
    if block["kind"] == "depthwise":
        k = row * g["cols"] + col
        mult = kernel.shape[3]
        return kernel[cy, cx, k // mult, k % mult]
    if op == "Conv2DTranspose":          # stored (kh, kw, out, in): rows = output channels
        return kernel[cy, cx, row, col]
    return kernel[cy, cx, col, row]      # (kh, kw, in / groups, out): cell (filter row, channel col)


def test_every_kind_is_drawn_pixel_exact(kinds, tmp_path):
    model, inner = kinds
    m = montage.filters(model, "all", tmp_path / "o", normalize="global", clip=0, cmap="gray", quiet=True)
    view = m["views"][0]
    got = {b["layer"]: (b, t) for b, t in zip(view["blocks"], view["tiles"])}
    assert sorted(got) == sorted(["c13", "grouped", "dw", "sep/depthwise", "sep/pointwise", "tr", "tall", "pw",
                                  "base/inner_conv", "base/inner_dw", "post"])
    lut = colormap_lut("gray")[:, 0]
    layers = {**{x.name: x for x in model.layers}, **{"base/" + x.name: x for x in inner.layers}}
    for name, (block, tile) in got.items():
        layer = layers[name.split("/sep")[0] if not name.startswith("sep/") else "sep"]
        op = type(layer).__name__
        kernel = {"sep/depthwise": lambda: np.asarray(layer.depthwise_kernel),
                  "sep/pointwise": lambda: np.asarray(layer.pointwise_kernel)}.get(name, lambda: layer.get_weights()[0])()
        g = Grid(**block["grid"])
        if kernel.shape[:2] == (1, 1):   # a matrix: one weight per pixel, no gap
            assert (g.scale, g.gap, g.cell_h, g.cell_w) == (1, 0, 1, 1)
        if block["layer"] == "grouped":
            assert block["groups"] == 2 and kernel.shape == (3, 3, 2, 8)
        canvas = read_dzi_level(tmp_path / "o", tile)[..., 0]
        assert canvas.shape == (g.height, g.width)
        lo, hi = float(np.min(kernel)), float(np.max(kernel))
        for y in range(g.height):
            for x in range(g.width):
                hit = locate(g, y, x)
                if hit is None:
                    assert canvas[y, x] == GAP, (name, y, x)      # the default gap colour
                    continue
                v = _cell_value(kernel, op, block, *hit)
                assert canvas[y, x] == lut[lut_index([v], lo, hi)[0]], (name, y, x, hit)


def test_conv1d_and_conv3d_cells(tmp_path):
    import keras

    keras.utils.set_random_seed(2)
    i1, i3 = keras.Input((30, 2)), keras.Input((6, 6, 6, 2))
    model = keras.Model([i1, i3], [keras.layers.Conv1D(3, 5, name="c1d")(i1),
                                   keras.layers.Conv3D(3, (2, 3, 4), name="c3d")(i3)])
    m = montage.filters(model, "all", tmp_path / "o", normalize="global", clip=0, cmap="gray", gap=1,
                        quiet=True)
    lut = colormap_lut("gray")[:, 0]
    for block, tile in zip(m["views"][0]["blocks"], m["views"][0]["tiles"]):
        kernel = model.get_layer(block["layer"]).get_weights()[0]
        g = Grid(**block["grid"])
        canvas = read_dzi_level(tmp_path / "o", tile)[..., 0]
        lo, hi = float(kernel.min()), float(kernel.max())
        for y in range(g.height):
            for x in range(g.width):
                hit = locate(g, y, x)
                if hit is None:
                    assert canvas[y, x] == GAP
                    continue
                row, col, cy, cx = hit
                if block["layer"] == "c1d":      # a cell is 1 x k
                    assert (g.cell_h, g.cell_w) == (1, 5)
                    v = kernel[cx, col, row]
                else:                            # depth slices of 3 x 4, one gap column apart
                    assert block["depth"] == 2 and (g.cell_h, g.cell_w) == (3, 9)
                    d, xx = divmod(cx, 5)
                    if xx == 4:
                        assert canvas[y, x] == GAP, (y, x)
                        continue
                    v = kernel[d, cy, xx, col, row]
                assert canvas[y, x] == lut[lut_index([v], lo, hi)[0]], (block["layer"], y, x)


def test_nested_layers_come_from_one_forward_pass(kinds, tmp_path):
    import keras

    model, inner = kinds
    img = random_images(tmp_path / "in", 2, side=40)
    names = ["base/inner_dw", "inner_conv", "dw", "post", "tr"]
    got = {}
    for paths, acts in montage.activations(model, [str(p) for p in img], names, batch_size=2):
        assert list(acts) == ["base/inner_dw", "base/inner_conv", "dw", "post", "tr"]   # full paths
        got = dict(zip(names, acts.values()))
    x = np.stack([read_rgb(p, 20) for p in img]).astype(np.float32)
    x = np.concatenate([x, np.full(x.shape[:-1] + (1,), 255, np.float32)], -1)   # the model takes RGBA
    pw = keras.Model(model.inputs, model.get_layer("pw").output)(x)
    want = {"base/inner_dw": keras.Model(inner.inputs, inner.get_layer("inner_dw").output)(pw),
            "inner_conv": keras.Model(inner.inputs, inner.get_layer("inner_conv").output)(pw),
            "dw": keras.Model(model.inputs, model.get_layer("dw").output)(x),
            "post": keras.Model(model.inputs, model.get_layer("post").output)(x),
            "tr": keras.Model(model.inputs, model.get_layer("tr").output)(x)}
    for name in names:
        np.testing.assert_allclose(got[name], np.asarray(want[name]), rtol=1e-4, atol=1e-4)
    m = montage.features(model, [str(img[0])], tmp_path / "o", layers=names, quiet=True)
    assert [b["layer"] for b in m["views"][0]["blocks"]] == ["base/inner_dw", "base/inner_conv", "dw",
                                                             "post", "tr"]   # as asked
    assert m["views"][0]["blocks"][-1]["map_shape"] == [41, 41, 3]


def test_layers_lists_every_kind_and_what_it_skips(kinds, tmp_path):
    model, _ = kinds
    model.save(tmp_path / "kinds.keras")
    r = run("layers", "--model", str(tmp_path / "kinds.keras"))
    assert r.returncode == 0, r.stderr[-2000:]
    assert "DepthwiseConv2D (depthwise)" not in r.stdout     # the kind only where the op does not say it
    for needle in ("sep/depthwise", "sep/pointwise", "DepthwiseConv2D", "Conv2DTranspose",
                   "base/inner_dw", "(3, 3, 2, 8)",
                   "not drawn: 1 layer with weights whose class is not a convolution (Dense)"):
        assert needle in r.stdout, (needle, r.stdout)
    r = run("filters", "--model", str(tmp_path / "kinds.keras"), "--layer", "inner_dw", "nope", "--out",
            str(tmp_path / "o"))
    assert r.returncode == 2 and "unknown layer 'nope'" in r.stderr and "base/inner_dw" in r.stderr


def _transfer(tmp_path, rescaling):
    import keras

    keras.utils.set_random_seed(0)
    base = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(64, 64, 3), alpha=0.35)
    inp = keras.Input((64, 64, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inp) if rescaling else inp
    out = keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(base(x)))
    path = tmp_path / f"transfer{int(rescaling)}.keras"
    keras.Model(inp, out).save(path)
    return str(path), base.name


def test_transfer_learning_model_file(tmp_path):
    path, base = _transfer(tmp_path, rescaling=True)
    r = run("filters", "--model", path, "--out", str(tmp_path / "f"), "--quiet")
    assert r.returncode == 0, r.stderr[-2000:]
    blocks = read_manifest(tmp_path / "f")["views"][0]["blocks"]
    assert sum(b["kind"] == "depthwise" for b in blocks) == 17
    assert all(b["layer"].startswith(base + "/") for b in blocks)
    r = run("features", "--model", path, "--out", str(tmp_path / "m"), "--layer", "block_1_depthwise",
            f"{base}/out_relu")
    assert r.returncode == 0 and "raw RGB" not in r.stderr, r.stderr[-2000:]
    m = read_manifest(tmp_path / "m")
    assert [b["layer"] for b in m["views"][0]["blocks"]] == [f"{base}/block_1_depthwise", f"{base}/out_relu"]
    assert m["model"]["preprocess"] == "none"
    path, _ = _transfer(tmp_path, rescaling=False)
    r = run("features", "--model", path, "--out", str(tmp_path / "n"), "--layer", "block_1_depthwise")
    assert r.returncode == 0 and "is fed raw RGB values 0..255" in r.stderr and "--preprocess" in r.stderr


def test_builtin_models_by_name_offline(tmp_path):
    r = run("layers", "--model", "MobileNetV2")     # no --weights: a table of shapes downloads nothing
    assert r.returncode == 0 and len(re.findall(r"\bDepthwiseConv2D\b", r.stdout)) == 17, r.stderr[-2000:]
    assert r.stdout.startswith("mobilenetv2: the architecture alone") and "Downloading" not in r.stderr
    r = run("features", "--model", "resnet50", "--weights", "random", "--size", "64", "--out",
            str(tmp_path / "r"), "--quiet")
    assert r.returncode == 0, r.stderr[-2000:]
    m = read_manifest(tmp_path / "r")
    assert m["model"]["preprocess"] == "keras.applications.resnet" and m["model"]["input_order"] == "bgr"
    assert len(m["views"][0]["blocks"]) == 53 and m["input_size"] == 64
    r = run("filters", "--model", "resnet50", "--weights", "hed", "--out", str(tmp_path / "x"))
    assert r.returncode == 2 and "VGG16's" in r.stderr


@pytest.mark.parametrize("how", [("--preprocess", "torch"), ("--mean", "100,110,120", "--std", "50,60,70")])
def test_preprocessing_is_applied_and_recorded(tmp_path, how):
    import keras

    inp = keras.Input((32, 32, 3))
    model = keras.Model(inp, keras.layers.Conv2D(1, 1, use_bias=False, kernel_initializer="ones", name="sum")(inp))
    model.save(tmp_path / "sum.keras")
    img = random_images(tmp_path / "in", 1, side=32)[0]
    r = run("features", "--model", str(tmp_path / "sum.keras"), "--image", str(img), "--out", str(tmp_path / "o"),
            "--normalize", "layer", "--quiet", *how)
    assert r.returncode == 0, r.stderr[-2000:]
    rgb = read_rgb(img, 32).astype(np.float64)
    if how[0] == "--preprocess":
        x = (rgb / 255 - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
    else:
        x = (rgb - [100, 110, 120]) / [50, 60, 70]
    want = x.sum(-1)
    m = read_manifest(tmp_path / "o")
    n = m["views"][0]["blocks"][0]["normalize"]
    np.testing.assert_allclose([n["lo"][0], n["hi"][0]], [want.min(), want.max()], rtol=1e-4, atol=1e-4)
    assert m["model"]["preprocess"] == ("torch" if how[0] == "--preprocess" else
                                        {"mean": [100.0, 110.0, 120.0], "std": [50.0, 60.0, 70.0]})


def test_defaults_are_legible_in_every_layer(tmp_path):
    """1st..99th percentile of drawn values spans at least half the colormap, in every layer."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(32, 32, 3), alpha=0.35)
    m = montage.filters(model, "all", tmp_path / "o", quiet=True)
    for block, tile in zip(m["views"][0]["blocks"], m["views"][0]["tiles"]):
        g = Grid(**block["grid"])
        canvas = read_dzi_level(tmp_path / "o", tile)[..., 0]
        ys, xs = np.arange(g.height), np.arange(g.width)
        inside = ((ys % g.pitch_y < g.cell_h * g.scale)[:, None] & (xs % g.pitch_x < g.cell_w * g.scale)[None, :]
                  & ((ys // g.pitch_y)[:, None] * g.cols + (xs // g.pitch_x)[None, :] < g.n))
        p1, p99 = np.percentile(canvas[inside], [1, 99])
        assert p99 - p1 >= 128, (block["layer"], p1, p99)


def test_one_d_depthwise_and_separable_and_dotted_names(tmp_path):
    import keras

    keras.utils.set_random_seed(4)
    i = keras.Input((30, 4))
    outs = [keras.layers.DepthwiseConv1D(3, depth_multiplier=2, name="dw1d")(i),
            keras.layers.SeparableConv1D(5, 3, name="sep1d")(i), keras.layers.Conv1D(2, 3, name="conv.1")(i)]
    model = keras.Model(i, outs)
    m = montage.filters(model, "all", tmp_path / "o", quiet=True)
    blocks = {b["layer"]: b for b in m["views"][0]["blocks"]}
    assert blocks["dw1d"]["kind"] == "depthwise" and blocks["dw1d"]["grid"]["n"] == 8
    assert blocks["sep1d/pointwise"]["grid"]["cell_w"] == 1 and blocks["dw1d"]["grid"]["cell_h"] == 1
    for b in blocks.values():   # a dot in a name keeps every file (PNG, values) where the manifest says
        assert (tmp_path / "o" / b["png"]).is_file() and (tmp_path / "o" / b["values"]).is_file()


def test_rgb_preprocessing_on_a_grey_model_is_one_line(tmp_path):
    import keras

    inp = keras.Input((32, 32, 1))
    keras.Model(inp, keras.layers.Conv2D(2, 3, name="c")(inp)).save(tmp_path / "grey.keras")
    r = run("features", "--model", str(tmp_path / "grey.keras"), "--preprocess", "caffe", "--out",
            str(tmp_path / "o"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "for 3 channels; the model takes 1" in r.stderr, r.stderr
