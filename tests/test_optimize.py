"""Feature visualisation (``montage optimize``): the method's pieces against plain numpy, probes whose
optimum is known, on every Keras backend and on PyTorch, and what bad input gets."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import montage
from montage import fvis
from montage.ascent import ascend, render
from montage.errors import MontageError
from montage.preprocess import Feed, preprocess

ROOT = Path(__file__).resolve().parents[1]


# ---- the method, against plain numpy ----

@pytest.mark.parametrize("h, w", [(8, 8), (7, 9), (16, 5), (1, 1), (6, 7)])
def test_fourier_basis_is_the_inverse_real_fft(h, w):
    Y, X, scale = fvis.fourier_basis(h, w)
    F = w // 2 + 1
    p = np.random.default_rng(h * 10 + w).normal(size=(2, 3, h, 2 * F)).astype(np.float32)
    got = np.einsum("yku,nckux->ncyx", Y, np.einsum("ncuv,vkx->nckux", p, X))
    np.testing.assert_allclose(got, np.fft.irfft2(p[..., :F] + 1j * p[..., F:], s=(h, w)), atol=1e-5)
    # Lucid's spectrum scale: sqrt(h w) / max(|f|, 1 / max(h, w))
    f = np.hypot(np.fft.fftfreq(h)[:, None], np.fft.rfftfreq(w)[None, :])
    np.testing.assert_allclose(scale[:, :F], np.sqrt(h * w) / np.maximum(f, 1 / max(h, w)), rtol=1e-6)


def _bilinear_reference(img, sy, sx, fill):
    """Sample ``img`` (h, w, 3) at (sy, sx) bilinearly, ``fill`` beyond it: loops, no tricks."""
    h, w = img.shape[:2]
    pad = np.full((h + 4, w + 4, 3), fill, np.float64)
    pad[2:-2, 2:-2] = img
    out = np.empty(sy.shape + (3,))
    for i in np.ndindex(sy.shape):
        y, x = sy[i] + 2, sx[i] + 2
        if not (0 <= y < h + 3 and 0 <= x < w + 3):
            out[i] = fill
            continue
        y0, x0 = int(np.floor(y)), int(np.floor(x))
        fy, fx = y - y0, x - x0
        out[i] = ((1 - fy) * (1 - fx) * pad[y0, x0] + (1 - fy) * fx * pad[y0, x0 + 1]
                  + fy * (1 - fx) * pad[y0 + 1, x0] + fy * fx * pad[y0 + 1, x0 + 1])
    return out


@pytest.mark.parametrize("h, w, shift, scale, degrees", [(7, 9, (0, 0), 1.0, 0.0), (7, 9, (1.5, -2), 0.9, 7.0),
                                                         (12, 5, (-3, 1), 1.1, -10.0), (6, 6, (0, 0), 1.0, 90.0)])
def test_resampling_is_plain_bilinear_with_grey_beyond_the_picture(h, w, shift, scale, degrees):
    img = np.random.default_rng(1).uniform(size=(2, h, w, 3)).astype(np.float32)
    table = fvis.resampling(h, w, shift, scale, degrees)
    got = fvis.warp(fvis.NUMPY, img[:1], table)[0]
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    cy, cx, t = (h - 1) / 2, (w - 1) / 2, np.deg2rad(degrees)
    dy, dx = (y - cy) / scale, (x - cx) / scale
    sy = cy + np.cos(t) * dy + np.sin(t) * dx - shift[0]
    sx = cx - np.sin(t) * dy + np.cos(t) * dx - shift[1]
    np.testing.assert_allclose(got, _bilinear_reference(img[0], sy, sx, 0.5), atol=1e-5)
    if (shift, scale, degrees) == ((0, 0), 1.0, 0.0):
        np.testing.assert_array_equal(fvis.warp(fvis.NUMPY, img, table), img)    # the identity, exactly


def test_a_steps_transformation_depends_on_the_seed_and_step_only():
    m = fvis.Method(seed=3)
    a, b = fvis.step_transform(m, 5, 16, 16), fvis.step_transform(m, 5, 16, 16)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    c = fvis.step_transform(m, 6, 16, 16)
    assert not all(np.array_equal(a[k], c[k]) for k in a)
    off = fvis.step_transform(fvis.Method(transforms=False), 5, 16, 16)
    assert np.array_equal(off["idx"][:, 0], np.arange(256)) and np.all(off["wt"][:, 0] == 1)


@pytest.mark.parametrize("mode, channels, bgr", [("none", 3, False), ("caffe", 3, False), ("tf", 3, False),
                                                 ("torch", 3, True), ({"mean": (10.0, 20.0, 30.0), "std": (2.0,)}, 3, False),
                                                 ({"mean": (127.5,), "std": (127.5,)}, 1, False), ("tf", 4, True)])
def test_the_feed_is_montages_preprocessing(mode, channels, bgr):
    mix, offset = fvis.feeding(lambda x: preprocess(x, mode, channels, bgr), channels)
    rgb = np.random.default_rng(2).integers(0, 256, (3, 4, 5, 3)).astype(np.uint8)
    want = preprocess(rgb, mode, channels, bgr)
    got = fvis.feed(fvis.NUMPY, rgb / 255.0, {"mix": mix, "offset": offset})
    # a grey model's luma is rounded on the pictures' path only
    tol = 0.51 * abs(mix.sum()) / 1.0 if channels == 1 else 1e-3
    np.testing.assert_allclose(got, want, atol=tol + 1e-3, rtol=1e-5)


def test_a_preprocessing_that_is_not_affine_is_recognised():
    assert fvis.feeding(lambda x: np.sqrt(x), 3) is None


def test_draw_under_keras_ops_equals_numpy():
    import keras

    ops = keras.ops
    ns = type("ops", (), {"einsum": staticmethod(ops.einsum), "take": staticmethod(ops.take),
                          "reshape": staticmethod(ops.reshape), "sigmoid": staticmethod(ops.sigmoid)})
    m = fvis.Method()
    p = fvis.start(m, [0, 5], 12, 10) * 50      # far from grey: the colour mixing shows
    a = {**fvis.constants(m, 12, 10), **fvis.step_transform(m, 1, 12, 10),
         "mix": np.eye(3, dtype=np.float32) * 255, "offset": np.zeros(3, np.float32)}
    want = render(fvis.NUMPY, p, a)
    got = np.asarray(render(ns, ops.convert_to_tensor(p), {k: ops.convert_to_tensor(v) for k, v in a.items()}))
    np.testing.assert_allclose(got, want, atol=2e-3)
    assert want.std() > 10


# ---- probes with known optima ----

def _linear_probe():
    import keras

    keras.utils.set_random_seed(4)
    inp = keras.Input((None, None, 3))
    out = keras.layers.Conv2D(4, 1, name="mix")(inp)
    model = keras.Model(inp, out, name="probe")
    k = np.array([[1.0, -1.0, 0.5, -0.2], [-0.8, 0.6, 1.0, -1.0], [0.3, 0.9, -1.0, 1.0]], np.float32)
    model.get_layer("mix").set_weights([k[None, None], np.zeros(4, np.float32)])
    return model, k


def _check_probe(pictures, k):
    """Each channel's picture leans, colour by colour, to the side of grey its weights' signs say."""
    mean = pictures.reshape(len(pictures), -1, 3).mean(1) - 127.5
    for c in range(k.shape[1]):
        strong = np.abs(k[:, c]) >= 0.5
        assert np.all(np.sign(mean[c][strong]) == np.sign(k[strong, c])), (c, mean[c], k[:, c])
        assert np.all(np.abs(mean[c][strong]) > 10), (c, mean[c])


@pytest.mark.parametrize("param", ["fourier", "pixel"])
def test_linear_probe_leans_to_its_weights_signs(tmp_path, param):
    model, k = _linear_probe()
    # the decorrelated basis reaches colours off the grey axis slowly: a larger step than Lucid's
    r = montage.optimize(model, tmp_path / "o", layers="mix", size=8, steps=256, lr=0.2, param=param,
                         preprocess="none", quiet=True)
    _check_probe(r.arrays("mix"), k)
    b = r["views"][0]["blocks"][0]
    assert b["channels"] == [0, 1, 2, 3]
    assert all(e > s for s, e in zip(b["objective"]["start"], b["objective"]["end"]))
    assert r["method"]["param"] == param and r["method"]["steps"] == 256 and r["method"]["lr"] == 0.2


def _twin_pictures(model, out, layer, **kw):
    """Fourier pictures after a few steps: a backend's or framework's must equal TensorFlow's."""
    r = montage.optimize(model, out, layers=layer, size=12, steps=12, preprocess="none", quiet=True, **kw)
    return r.arrays(layer)


PROBE_SCRIPT = """
import sys, numpy as np
sys.path.insert(0, {tests!r})
from test_optimize import _linear_probe, _check_probe, _twin_pictures
import montage
model, k = _linear_probe()
r = montage.optimize(model, {out!r}, layers="mix", size=8, steps=64, lr=0.2, param="pixel", preprocess="none",
                     quiet=True)
_check_probe(r.arrays("mix"), k)
np.save({npy!r}, _twin_pictures(model, {out!r} + "-twin", "mix"))
print("device", r["device"])
"""


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_linear_probe_on_other_keras_backends(tmp_path, backend):
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(ROOT)}
    code = PROBE_SCRIPT.format(tests=str(ROOT / "tests"), out=str(tmp_path / "o"), npy=str(tmp_path / "twin.npy"))
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert f"device {backend} on" in run.stdout
    want = _twin_pictures(_linear_probe()[0], tmp_path / "tf", "mix")     # the same run on TensorFlow
    assert np.abs(np.load(tmp_path / "twin.npy").astype(int) - want).max() <= 2


def test_linear_probe_on_a_pytorch_module(tmp_path):
    sys.modules.setdefault("triton", None)
    import torch

    keras_model, k = _linear_probe()
    conv = torch.nn.Conv2d(3, 4, 1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(k.T[:, :, None, None].copy()))
    module = torch.nn.Sequential(conv, torch.nn.Identity())
    r = montage.optimize(module, tmp_path / "o", layers="0", size=8, steps=64, lr=0.2, param="pixel",
                         preprocess="none", quiet=True)
    _check_probe(r.arrays("0"), k)
    assert r["device"].startswith("torch on")
    got = _twin_pictures(module, tmp_path / "twin", "0")
    assert np.abs(got.astype(int) - _twin_pictures(keras_model, tmp_path / "tf", "mix")).max() <= 2


def _random_net(seed=5):
    import keras

    keras.utils.set_random_seed(seed)
    inp = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(6, 3, activation="relu", name="c1")(inp)
    x = keras.layers.Conv2D(7, 3, strides=2, name="c2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = keras.layers.Dense(5, name="logits")(x)
    return keras.Model(inp, x, name="net")


def test_every_channel_gains_and_dense_logits_work(tmp_path):
    net = _random_net()
    r = montage.optimize(net, tmp_path / "o", layers="c2", size=24, steps=32, preprocess="tf", quiet=True)
    # a logit reads the whole picture: the grey that the transformations show at its borders competes with
    # the objective there, so its gain is checked on the picture's own ascent
    logits = montage.optimize(net, tmp_path / "l", layers="logits", size=24, steps=32, preprocess="tf", quiet=True,
                              transforms=False)
    for b in r["views"][0]["blocks"] + logits["views"][0]["blocks"]:
        start, end = np.array(b["objective"]["start"]), np.array(b["objective"]["end"])
        assert np.all(end > start + 0.1 * np.abs(start).mean()), (b["layer"], start, end)
    assert r["views"][0]["blocks"][0]["map_shape"] == [10, 10, 7]
    assert logits["views"][0]["blocks"][0]["map_shape"] == [5] and logits["method"]["transforms"] is None
    assert logits.arrays("logits").shape == (5, 24, 24, 3)


def test_a_channel_alone_equals_its_picture_in_a_batch(tmp_path):
    model = _random_net()
    both = montage.optimize(model, tmp_path / "all", layers="c2", size=20, steps=24, preprocess="tf", quiet=True,
                            objective="neuron", batch_size=4)      # 7 channels: a batch of 4, then one of 3
    alone = montage.optimize(model, tmp_path / "one", layers="c2", channels="4", size=20, steps=24, preprocess="tf",
                             quiet=True, objective="neuron", batch_size=1)
    a, b = both.arrays("c2")[4].astype(int), alone.arrays("c2")[0].astype(int)
    assert np.abs(a - b).mean() < 0.5 and np.abs(a - b).max() <= 6
    assert alone["views"][0]["blocks"][0]["channels"] == [4]


def test_ascend_returns_what_is_drawn(tmp_path):
    model, k = _linear_probe()
    r = montage.optimize(model, tmp_path / "o", layers="mix", channels="1,3", size=12, steps=8, preprocess="none",
                         quiet=True, cell=24, gap=2)
    from montage.models import load_model, plan_ascent

    plan = plan_ascent(load_model(model), ["mix"], 12, feed=Feed("none"))
    method = fvis.Method(steps=8)
    fed = fvis.feeding(lambda x: x, 3)
    pics, _, _ = ascend(plan.gradient(0, render, fvis.score), method, (12, 12, 4), [1, 3], 4, fed, (12, 12))
    np.testing.assert_array_equal(r.arrays("mix"), pics)
    assert r.canvas("mix").shape == (24, 50, 3)     # two cells of 24, a gap of 2


# ---- bad input ----

def _cli(*args, cwd=None):
    from montage.cli import main

    return main([str(a) for a in args])


@pytest.mark.parametrize("args, says", [
    (["--steps", "0"], "--steps 0 must be at least 1"),
    (["--channels", "3-1"], "--channels '3-1' should be"),
    (["--channels", "0-99"], "has channels 0-5, not 99"),
    (["--layer", "nope"], "unknown layer 'nope'"),
    (["--layer", "flat"], "is a Reshape, not one of the layers with a channel axis"),
    (["--cmap", "magma"], "--cmap does not apply to optimize"),
])
def test_bad_options_get_one_line_and_nothing_is_written(tmp_path, capsys, args, says):
    import keras

    inp = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(6, 3, name="c")(inp)
    x = keras.layers.Reshape((6, 6 * 6), name="flat")(x)
    path = tmp_path / "m.keras"
    keras.Model(inp, x).save(path)
    rc = _cli("optimize", "--model", path, "--out", tmp_path / "o", "--steps", "2", "--preprocess", "none", *args)
    err = capsys.readouterr().err
    assert rc == 2 and says in err and err.count("\n") == 1, err
    assert not (tmp_path / "o").exists()


def test_onnx_and_non_affine_preprocessing_are_refused(tmp_path, capsys):
    sys.modules.setdefault("triton", None)
    import torch

    onnx_path = tmp_path / "m.onnx"
    torch.onnx.export(torch.nn.Sequential(torch.nn.Conv2d(3, 2, 3)), torch.zeros(1, 3, 16, 16), str(onnx_path),
                      dynamo=False)
    assert _cli("optimize", "--model", onnx_path, "--out", tmp_path / "o") == 2
    assert "ONNX graphs have no gradients in onnxruntime" in capsys.readouterr().err
    with pytest.raises(MontageError, match="is not affine"):
        montage.optimize(_random_net(), tmp_path / "o", preprocess=lambda x: np.sqrt(x), steps=1, quiet=True)
    assert not (tmp_path / "o").exists()


# ---- the page ----

def test_page_readout_names_the_channel_and_its_objective(tmp_path):
    pytest.importorskip("playwright")
    from test_viewer import ARGS, CHROMIUM, hover, open_page, readout, zoom_to_block
    from playwright.sync_api import sync_playwright

    model, _ = _linear_probe()
    r = montage.optimize(model, tmp_path / "o", layers="mix", channels="1-3", size=16, steps=4, preprocess="none",
                         quiet=True, cell=48)
    block = r["views"][0]["blocks"][0]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = open_page(browser, (tmp_path / "o" / "index.html").as_uri())
        zoom_to_block(page, block)
        hover(page, block, 2)
        got = readout(page)
        browser.close()
    assert got["data"]["channel"] == "3" and got["data"]["layer"] == "mix"
    assert "start" in got["text"] and "end" in got["text"]
    assert float(got["data"]["end"]) == pytest.approx(block["objective"]["end"][2], rel=1e-3)
    assert page.errors == []
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert manifest["kind"] == "optimize" and manifest["method"]["transforms"]["pad"] == 12


# ---- shards ----

def test_merged_shards_equal_a_single_run(tmp_path, capsys):
    model = _random_net()
    kw = dict(layers=["c1", "c2"], channels="0-5", size=16, steps=8, preprocess="tf", quiet=True)
    single = montage.optimize(model, tmp_path / "single", **kw)
    parts = [montage.optimize(model, tmp_path / f"s{i}", shard=(i, 4), **kw) for i in range(4)]
    assert "partial optimize" in repr(parts[0]) and parts[0]["channels"] == 4     # channels 0 and 4 of each layer
    with pytest.raises(MontageError, match="do not cover every channel: shards 3/4 are missing"):
        montage.optimize(None, tmp_path / "m", merge=[tmp_path / f"s{i}" for i in range(3)])
    rc = _cli("optimize", "--merge", *[tmp_path / f"s{i}" for i in (2, 0, 3, 1)], "--out", tmp_path / "m", "--quiet")
    assert rc == 0, capsys.readouterr().err
    merged = json.loads((tmp_path / "m" / "manifest.json").read_text())
    for a, b in zip(single["views"][0]["blocks"], merged["views"][0]["blocks"]):
        assert a["channels"] == b["channels"] == [0, 1, 2, 3, 4, 5]
        np.testing.assert_allclose(a["objective"]["end"], b["objective"]["end"], rtol=1e-3, atol=1e-3)
    got = montage.open(tmp_path / "m")
    for layer in ("c1", "c2"):
        assert np.abs(got.arrays(layer).astype(int) - single.arrays(layer)).max() <= 2
    assert merged["method"] == single["method"] and merged["model"]["name"] == single["model"]["name"]


def test_a_tampered_partial_is_refused_in_one_line(tmp_path, capsys):
    model = _random_net()
    kw = dict(layers="c1", size=12, steps=2, preprocess="tf", quiet=True)
    for i in range(2):
        montage.optimize(model, tmp_path / f"s{i}", shard=(i, 2), **kw)
    meta = json.loads((tmp_path / "s1" / "manifest.json").read_text())
    meta["identity"]["channels"][0] = [0, 1, 2, 3, 4, 99]           # past the layer's 6 channels
    (tmp_path / "s1" / "manifest.json").write_text(json.dumps(meta))
    assert _cli("optimize", "--merge", tmp_path / "s0", tmp_path / "s1", "--out", tmp_path / "m") == 2
    err = capsys.readouterr().err
    assert "is not a partial result of `montage optimize --shard`" in err and err.count("\n") == 1
    (tmp_path / "s1" / "partial.npz").unlink()
    (tmp_path / "s1" / "partial.npz").symlink_to(tmp_path / "s0" / "partial.npz")
    assert _cli("optimize", "--merge", tmp_path / "s0", tmp_path / "s1", "--out", tmp_path / "m") == 2
    assert "is not a partial result" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("command", ["features", "optimize"])
def test_a_builtin_model_below_its_floor_is_one_line(tmp_path, capsys, command):
    assert _cli(command, "--size", "16", "--out", tmp_path / "o", "--quiet") == 2
    err = capsys.readouterr().err
    assert "VGG16 cannot take 16 x 16" in err and "at least 32x32" in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_a_channels_first_model_is_optimised_as_its_twin(tmp_path):
    import keras

    _, k = _linear_probe()
    inp = keras.Input((3, None, None))
    out = keras.layers.Conv2D(4, 1, data_format="channels_first", name="mix")(inp)
    model = keras.Model(inp, out, name="probe_cf")
    model.get_layer("mix").set_weights([k[None, None], np.zeros(4, np.float32)])
    r = montage.optimize(model, tmp_path / "o", layers="mix", size=8, steps=64, lr=0.2, param="pixel",
                         preprocess="none", quiet=True)
    _check_probe(r.arrays("mix"), k)
    assert r["views"][0]["blocks"][0]["map_shape"] == [8, 8, 4]


def test_batchnorm_and_dropout_run_in_inference_mode(tmp_path):
    import keras

    keras.utils.set_random_seed(6)
    inp = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(4, 3, name="c")(inp)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.Dropout(0.5, name="drop")(x)
    x = keras.layers.Conv2D(3, 1, name="top")(x)
    model = keras.Model(inp, x)
    bn = model.get_layer("bn")
    bn.set_weights([w + np.random.default_rng(i).normal(size=w.shape).astype(np.float32) ** 2
                    for i, w in enumerate(bn.get_weights())])
    before = [w.copy() for w in bn.get_weights()]
    a = montage.optimize(model, tmp_path / "a", layers="top", size=12, steps=6, preprocess="tf", quiet=True)
    b = montage.optimize(model, tmp_path / "b", layers="top", size=12, steps=6, preprocess="tf", quiet=True)
    np.testing.assert_array_equal(a.arrays("top"), b.arrays("top"))      # no dropout noise
    for w0, w1 in zip(before, bn.get_weights()):
        np.testing.assert_array_equal(w0, w1)                            # moving statistics untouched


def test_a_model_xla_cannot_compile_is_optimised(tmp_path):
    """Only the picture's part of a step is compiled by XLA: a model with an op it cannot compile runs."""
    import keras
    import tensorflow as tf

    inp = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(4, 1, name="c")(inp)
    host = lambda t: t + tf.reshape(tf.stop_gradient(tf.numpy_function(np.zeros_like, [t], tf.float32)),  # noqa: E731
                                    tf.shape(t))
    x = keras.layers.Lambda(host, output_shape=lambda s: s, name="host")(x)   # runs on the host: no XLA
    x = keras.layers.Conv2D(3, 1, name="top")(x)
    r = montage.optimize(keras.Model(inp, x), tmp_path / "o", layers="top", size=12, steps=8, preprocess="tf",
                         quiet=True)
    o = r["views"][0]["blocks"][0]["objective"]
    assert all(e > s for s, e in zip(o["start"], o["end"]))


# ---- beside the dataset examples ----

def test_examples_put_each_channels_optimum_before_its_examples(tmp_path):
    """``examples --optimum``: row = channel, its feature visualisation first (the one ``optimize`` draws
    at the same settings), then its top images; the page reads the optimum cell out."""
    from helpers import read_dzi_level
    from test_examples import probe_model, spot_images
    from test_viewer import ARGS, CHROMIUM, hover, open_page, readout, zoom_to_block
    from playwright.sync_api import sync_playwright

    spot_images(tmp_path / "in", n=5)
    model = probe_model()           # 32 x 32 input; "wide": 40 channels in column bands
    m = montage.examples(model, [str(tmp_path / "in")], tmp_path / "o", layers=["wide"], top=2, cell=64,
                         preprocess="none", quiet=True, optimum=True, optimum_steps=6)
    b = m["views"][0]["blocks"][0]
    rows, g = b["band_rows"], b["grid"]
    assert g["cols"] == -(-40 // rows) * (1 + 2 + 1) - 1 and m["method"]["steps"] == 6
    want = montage.optimize(model, tmp_path / "opt", layers="wide", steps=6, preprocess="none", quiet=True)
    pics = want.arrays("wide")                                       # (40, 32, 32, 3)
    canvas = read_dzi_level(tmp_path / "o", m["views"][0]["tiles"][0])
    for ch in (0, rows - 1, rows, 39):
        y0, x0 = (ch % rows) * 65, (ch // rows) * 4 * 65
        cell = canvas[y0:y0 + 64, x0:x0 + 64, :3].astype(int)
        assert np.abs(cell - np.repeat(np.repeat(pics[ch], 2, 0), 2, 1)).max() <= 2, ch
        ex = b["examples"][ch][0]                                    # rank 0 now sits one column on
        assert ex["image"] and not np.array_equal(canvas[y0:y0 + 64, x0 + 65:x0 + 129], canvas[y0:y0 + 64, x0:x0 + 64])
    np.testing.assert_allclose(b["optimum"]["end"], want["views"][0]["blocks"][0]["objective"]["end"], rtol=1e-3)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = open_page(browser, (tmp_path / "o" / "index.html").as_uri())
        zoom_to_block(page, b)
        ch = rows + 1
        hover(page, b, (ch % rows) * g["cols"] + (ch // rows) * 4)          # the optimum of channel rows + 1
        r = readout(page)
        hover(page, b, (ch % rows) * g["cols"] + (ch // rows) * 4 + 2)      # its rank 1 example
        r1 = readout(page)["data"]
        browser.close()
    assert (r["data"]["channel"], r["data"]["rank"]) == (str(ch), "-1") and "optimum" in r["text"]
    assert float(r["data"]["end"]) == pytest.approx(b["optimum"]["end"][ch], rel=1e-3)
    assert (r1["channel"], r1["rank"]) == (str(ch), "1") and r1["image"] == b["examples"][ch][1]["image"]
    assert page.errors == []


def test_examples_optimum_is_drawn_by_the_merge_not_by_a_shard(tmp_path, capsys):
    assert _cli("examples", "--optimum", "--shard", "0/2", "--out", tmp_path / "o") == 2
    err = capsys.readouterr().err
    assert "--optimum draws pictures, which a --shard run does not: give it to the --merge run" in err
    assert err.count("\n") == 1 and not (tmp_path / "o").exists()
