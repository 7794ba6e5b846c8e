"""Model and weight loading, and the layer summary."""

import socket

import numpy as np
import pytest

from helpers import small_model
from montage.errors import MontageError
from montage.graph import conv_layers, find_layers
from montage.models import load_model
from montage.render_layers import summary


def test_summary_lists_conv_layers_like_the_tutorial():
    loaded = load_model("vgg16", "random", seed=1)
    text = summary(loaded.model)
    assert "block1_conv2" in text and "(3, 3, 64, 64)" in text and "(None, 224, 224, 64)" in text
    assert "36,928" in text                       # block1_conv2's parameter count, as in the tutorial
    assert "13 conv layers" in text and "1,634,496 kernels" in text


def test_random_weights_follow_the_seed():
    a = load_model("vgg16", "random", seed=3).model.get_layer("block1_conv1").get_weights()[0]
    b = load_model("vgg16", "random", seed=3).model.get_layer("block1_conv1").get_weights()[0]
    c = load_model("vgg16", "random", seed=4).model.get_layer("block1_conv1").get_weights()[0]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_imagenet_offline_fails_with_one_clear_line(monkeypatch, tmp_path, capsys):
    import keras.src.backend.config as cfg

    monkeypatch.setattr(cfg, "_KERAS_DIR", str(tmp_path))   # no cached weights

    def offline(*args, **kwargs):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(socket.socket, "connect", offline)
    monkeypatch.setattr(socket, "create_connection", offline)
    with pytest.raises(MontageError) as e:
        load_model("vgg16", "imagenet")
    msg = str(e.value)
    assert "\n" not in msg and "hed" in msg and "random" in msg and "PATH" in msg
    assert "Network is unreachable" in msg and "offline?" in msg
    assert capsys.readouterr().out == ""   # Keras' download line goes to stderr: stdout is for tables


def test_weights_file_round_trip(tmp_path):
    loaded = load_model("vgg16", "random", seed=5)
    path = tmp_path / "w.weights.h5"
    loaded.model.save_weights(path)
    again = load_model("vgg16", str(path))
    np.testing.assert_array_equal(again.model.get_layer("block5_conv3").get_weights()[0],
                                  loaded.model.get_layer("block5_conv3").get_weights()[0])
    assert again.weights["source"] == "file"


def test_model_file_and_its_errors(tmp_path):
    m = small_model()
    path = tmp_path / "small.keras"
    m.save(path)
    loaded = load_model(str(path))
    assert [x.name for x in conv_layers(loaded.model)] == ["conv_a", "conv_b", "conv_c"]
    np.testing.assert_array_equal(loaded.model.get_layer("conv_b").get_weights()[0],
                                  m.get_layer("conv_b").get_weights()[0])

    lam = tmp_path / "lambda.keras"
    small_model(with_lambda=True).save(lam)
    with pytest.raises(MontageError, match="Lambda.*--unsafe"):
        load_model(str(lam))
    assert load_model(str(lam), unsafe=True).model.get_layer("double") is not None

    bad = tmp_path / "corrupt.keras"
    bad.write_bytes(b"not a zip file at all")
    with pytest.raises(MontageError, match="could not read model"):
        load_model(str(bad))
    with pytest.raises(MontageError, match="neither a built-in model"):
        load_model(str(tmp_path / "missing.keras"))
    with pytest.raises(MontageError, match="for built-in models"):
        load_model(str(path), "hed")


def test_find_layers_names_the_choices():
    m = small_model()
    assert [x.name for x in find_layers(m, "all")] == ["conv_a", "conv_b", "conv_c"]
    with pytest.raises(MontageError, match="unknown layer 'nope': the conv layers are conv_a, conv_b, conv_c"):
        find_layers(m, ["nope"])
    with pytest.raises(MontageError, match="'pool' is a MaxPooling2D"):
        find_layers(m, ["pool"])
