"""Channels-first Keras models on any CPU: TensorFlow runs NCHW convolutions on the CPU only with
oneDNN, so montage runs them as a channels-last twin (see montage.readers.keras.channels_last).
These tests hold with and without oneDNN (TF_ENABLE_ONEDNN_OPTS=0): their references are numpy and
JAX."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import montage
from helpers import random_images
from montage.errors import MontageError
from montage.images import read_rgb


def _conv_valid(x, kernel, bias):
    """A 'valid' Conv2D in plain numpy: x (H, W, C), kernel (kh, kw, C, F)."""
    kh, kw = kernel.shape[:2]
    win = np.lib.stride_tricks.sliding_window_view(x.astype(np.float64), (kh, kw), axis=(0, 1))
    return np.einsum("hwcij,ijcf->hwf", win, kernel.astype(np.float64)) + bias


def test_channels_first_maps_equal_a_numpy_convolution(tmp_path):
    import keras

    keras.utils.set_random_seed(3)
    inp = keras.Input((3, 36, 36))
    x = keras.layers.Conv2D(4, 3, data_format="channels_first", name="c")(inp)
    model = keras.Model(inp, keras.layers.MaxPooling2D(data_format="channels_first", name="p")(x))
    img = random_images(tmp_path / "in", 1, side=40)[0]
    acts = next(montage.activations(model, [str(img)], ["c", "p"]))[1]
    kernel, bias = model.get_layer("c").get_weights()
    want = _conv_valid(read_rgb(img, 36).astype(np.float32), kernel, bias)
    np.testing.assert_allclose(acts["c"][0], want, rtol=1e-4, atol=1e-3)
    pooled = want[:34, :34].reshape(17, 2, 17, 2, 4).max(axis=(1, 3))
    np.testing.assert_allclose(acts["p"][0], pooled, rtol=1e-4, atol=1e-3)
    m = montage.features(model, [str(img)], tmp_path / "o", layers=["c", "p"], quiet=True)
    assert [b["map_shape"] for b in m["views"][0]["blocks"]] == [[34, 34, 4], [17, 17, 4]]


def _rich_model(keras):
    """Channels-first conv, batch norm on axis 1, concatenation on axis 1, a channels-first
    Flatten and a Dense head: each must keep its meaning in the twin."""
    keras.utils.set_random_seed(5)
    inp = keras.Input((3, 20, 20), name="img")
    a = keras.layers.Conv2D(4, 3, padding="same", data_format="channels_first", name="a")(inp)
    b = keras.layers.BatchNormalization(axis=1, name="bn")(a)
    c = keras.layers.Conv2D(2, 1, data_format="channels_first", activation="relu", name="c")(inp)
    cat = keras.layers.Concatenate(axis=1, name="cat")([b, c])
    p = keras.layers.MaxPooling2D(2, data_format="channels_first", name="p")(cat)
    out = keras.layers.Dense(5, name="head")(keras.layers.Flatten(data_format="channels_first", name="flat")(p))
    model = keras.Model(inp, out)
    bn = model.get_layer("bn")   # a trained-looking batch norm: moving statistics away from 0 and 1
    bn.set_weights([np.linspace(0.5, 2, 4), np.linspace(-1, 1, 4), np.linspace(-0.3, 0.4, 4), np.linspace(0.5, 3, 4)])
    return model


JAX_REFERENCE = """
import json, sys, numpy as np, keras
model = keras.saving.load_model(sys.argv[1], compile=False)
x = np.load(sys.argv[2])
names = ["a", "bn", "cat", "p"]
outs = keras.Model(model.inputs, [model.get_layer(n).output for n in names] + [model.output])(x)
np.savez(sys.argv[3], **{n: np.asarray(o) for n, o in zip(names + ["head"], outs)})
"""


def test_channels_first_twin_matches_jax_running_nchw(tmp_path):
    """JAX runs NCHW on the CPU: the reference the twin must equal, maps and the Dense head."""
    import keras

    pytest.importorskip("jax")
    from montage.readers.keras.channels_last import to_channels_last

    model = _rich_model(keras)
    model.save(tmp_path / "cf.keras")
    x = np.random.default_rng(0).uniform(0, 255, (2, 3, 20, 20)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    r = subprocess.run([sys.executable, "-c", JAX_REFERENCE, str(tmp_path / "cf.keras"), str(tmp_path / "x.npy"),
                        str(tmp_path / "ref.npz")], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    ref = np.load(tmp_path / "ref.npz")
    twin = to_channels_last(model)
    assert twin.input_shape == (None, 20, 20, 3)
    names = ["a", "bn", "cat", "p"]
    outs = keras.Model(twin.inputs, [twin.get_layer(n).output for n in names] + [twin.output])(
        x.transpose(0, 2, 3, 1))
    for name, out in zip(names, outs[:4]):
        np.testing.assert_allclose(np.asarray(out), ref[name].transpose(0, 2, 3, 1), rtol=1e-4, atol=1e-3,
                                   err_msg=name)
    np.testing.assert_allclose(np.asarray(outs[4]), ref["head"], rtol=1e-4, atol=1e-2)


def test_channels_first_file_from_the_command_line(tmp_path):
    import keras

    _rich_model(keras).save(tmp_path / "cf.keras")
    img = random_images(tmp_path / "in", 1, side=40)[0]
    r = subprocess.run([sys.executable, "-m", "montage", "features", "--model", str(tmp_path / "cf.keras"),
                        "--image", str(img), "--layer", "a", "cat", "--out", str(tmp_path / "o"), "--quiet"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert [b["map_shape"] for b in m["views"][0]["blocks"]] == [[20, 20, 4], [20, 20, 6]]


TWINLESS = {   # layers whose meaning would change in a channels-last twin: refused, never rebuilt wrong
    "'perm' (Permute)": lambda L, x: L.Permute((2, 1, 3), name="perm")(x),
    "'flat' (Flatten) flattens channels first": lambda L, x: L.Dense(2)(L.Flatten(name="flat")(x)),
    "'soft' (Activation) has activation 'softmax'": lambda L, x: L.Activation("softmax", name="soft")(x),
    "'cs' (Conv2D) has activation 'softmax'":
        lambda L, x: L.Conv2D(2, 1, data_format="channels_first", activation="softmax", name="cs")(x),
}


@pytest.mark.parametrize("needle", TWINLESS)
def test_channels_first_without_a_twin_is_one_line_where_nchw_cannot_run(tmp_path, monkeypatch, needle):
    """Where the backend cannot run NCHW either, one line names the layer and says what works."""
    import keras

    import montage.readers.keras.forward as keras_forward

    inp = keras.Input((3, 12, 12))
    x = keras.layers.Conv2D(2, 3, data_format="channels_first", name="c")(inp)
    model = keras.Model(inp, TWINLESS[needle](keras.layers, x))
    monkeypatch.setattr(keras_forward, "nchw_runs", lambda: False)
    img = random_images(tmp_path / "in", 1, side=40)[0]
    with pytest.raises(MontageError) as e:
        montage.features(model, [str(img)], tmp_path / "o", layers=["c"], quiet=True)
    assert "\n" not in str(e.value) and needle in str(e.value) and "KERAS_BACKEND=jax" in str(e.value)
    assert not (tmp_path / "o").exists()
