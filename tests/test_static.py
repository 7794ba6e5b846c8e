"""Kernels read straight from files (no Keras) give exactly what the Keras path gives, or defer to it."""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import montage
from helpers import kinds_model, small_model
from montage.readers import keras_file as static
from montage.models import load_kernels, load_model

ROOT = Path(__file__).resolve().parents[1]


def _files(folder):
    """Every file's bytes, by relative path (libvips' properties file holds a date)."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(Path(folder).rglob("*"))
            if p.is_file() and p.name != "vips-properties.xml"}


def _same_both_ways(path_or_name, tmp_path, layers="all", **options):
    """Render with the fast path and with Keras; assert the same tables and the same bytes."""
    fast = load_kernels(path_or_name)
    assert isinstance(fast.model, static.Model), "the fast path was not taken"
    slow = load_model(path_or_name)
    assert str(montage.layers(fast)) == str(montage.layers(slow))
    a = montage.filters(fast, layers, tmp_path / "fast", quiet=True, **options)
    b = montage.filters(slow, layers, tmp_path / "keras", quiet=True, **options)
    assert a.manifest == b.manifest
    fa, fb = _files(tmp_path / "fast"), _files(tmp_path / "keras")
    assert fa.keys() == fb.keys() and len(fa) > 5
    assert [k for k in fa if fa[k] != fb[k]] == []
    return fast


def _sequential():
    import keras

    keras.utils.set_random_seed(3)
    L = keras.layers
    return keras.Sequential([keras.Input((12, 9, 2)), L.Conv2D(4, 3, strides=2, name="s1"),
                             L.BatchNormalization(name="bn"), L.Conv2D(3, (2, 3), padding="same",
                                                                        use_bias=False, name="s2"),
                             L.Conv2DTranspose(2, 3, strides=3, padding="same", name="up"),
                             L.SeparableConv2D(5, 3, depth_multiplier=2, use_bias=False, name="sep"),
                             L.Reshape((-1, 5)), L.Conv1D(3, 2, name="c1d"),
                             L.DepthwiseConv1D(2, depth_multiplier=2, name="dw1d")], name="seq")


@pytest.mark.parametrize("make", ["kinds", "small", "sequential"])
def test_keras_files_read_without_keras_match_the_keras_path(tmp_path, make):
    model = {"kinds": lambda: kinds_model()[0], "small": small_model, "sequential": _sequential}[make]()
    path = tmp_path / f"{make}.keras"
    model.save(path)
    fast = _same_both_ways(path, tmp_path, rgb=True)
    if make == "kinds":          # the nested model is there, by path
        from montage.graph import walk

        assert {"base/inner_conv", "base/inner_dw"} <= {n.name for n in walk(fast.model)}


def test_mobilenet_file_matches_the_keras_path(tmp_path):
    import keras

    keras.utils.set_random_seed(0)
    path = tmp_path / "mnv2.keras"
    keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(96, 96, 3), alpha=0.35).save(path)
    _same_both_ways(path, tmp_path, layers=["Conv1", "block_1_depthwise", "block_16_project"])


def test_vgg16_with_hed_weights_matches_the_keras_path(tmp_path):
    _same_both_ways("vgg16", tmp_path, layers=["block1_conv1", "block3_conv1", "block5_conv3"], rgb=True)


def test_vgg16_with_a_weights_file_matches_the_keras_path(tmp_path):
    path = tmp_path / "vgg.weights.h5"
    load_model("vgg16", "random", seed=4).model.save_weights(path)
    fast = load_kernels("vgg16", str(path))
    assert isinstance(fast.model, static.Model) and fast.weights["source"] == "file"
    slow = load_model("vgg16", str(path))
    assert str(montage.layers(fast)) == str(montage.layers(slow))
    a = montage.filters(fast, ["block1_conv1", "block4_conv2"], tmp_path / "fast", quiet=True, rgb=True)
    b = montage.filters(slow, ["block1_conv1", "block4_conv2"], tmp_path / "keras", quiet=True, rgb=True)
    assert a.manifest == b.manifest and _files(tmp_path / "fast") == _files(tmp_path / "keras")
    other = tmp_path / "other.weights.h5"      # another architecture's weights: Keras explains
    small_model().save_weights(other)
    assert static.read_vgg16_weights(other) is None and static.load("vgg16", str(other)) is None
    with pytest.raises(montage.MontageError, match="could not load weights"):
        load_kernels("vgg16", str(other))


def _rewrite(src, dst, config=None, weights=None):
    """Copy a .keras file, changing its config (a function of the dict) or its weights file."""
    with zipfile.ZipFile(src) as z, zipfile.ZipFile(dst, "w") as out:
        for item in z.infolist():
            data = z.read(item)
            if item.filename == "config.json" and config:
                data = json.dumps(config(json.loads(data))).encode()
            if item.filename == "model.weights.h5" and weights:
                data = weights(data)
            out.writestr(item, data)


def _retarget(cfg, **change):
    for layer in cfg["config"]["layers"]:
        if layer["config"]["name"] == "conv_b":
            layer.update(change)
    return cfg


def test_anything_not_understood_with_certainty_goes_to_keras(tmp_path):
    small_model().save(tmp_path / "small.keras")
    small_model(with_lambda=True).save(tmp_path / "lambda.keras")
    src = tmp_path / "small.keras"
    custom = tmp_path / "custom.keras"
    _rewrite(src, custom, config=lambda c: _retarget(c, module="mypackage.layers", class_name="Fancy"))
    lying = tmp_path / "lying.keras"      # the config says 9 filters, the weights hold 7
    _rewrite(src, lying, config=lambda c: _retarget(c, config={**_conf(c, "conv_b"), "filters": 9}))
    old = tmp_path / "old.keras"
    with zipfile.ZipFile(src) as z, zipfile.ZipFile(old, "w") as out:
        for item in z.infolist():
            data = z.read(item)
            if item.filename == "metadata.json":
                data = json.dumps({"keras_version": "4.0.0"}).encode()
            out.writestr(item, data)
    broken = tmp_path / "broken.keras"
    broken.write_bytes(src.read_bytes()[:2000])
    for path in (tmp_path / "lambda.keras", custom, lying, old, broken):
        assert static.read_keras(path) is None, path.name
    assert static.load(src, "random") is None and static.load("vgg16", "random") is None
    assert static.load("resnet50", None) is None
    # ... and Keras then explains in one line, as before
    with pytest.raises(montage.MontageError, match="Lambda"):
        load_kernels(tmp_path / "lambda.keras")
    with pytest.raises(montage.MontageError, match="Fancy"):
        load_kernels(custom)
    with pytest.raises(montage.MontageError, match="corrupt|could not read"):
        load_kernels(broken)
    with pytest.raises(montage.MontageError, match="seed"):
        load_kernels("vgg16", seed=-1)


def _conf(cfg, name):
    return next(x["config"] for x in cfg["config"]["layers"] if x["config"]["name"] == name)


def test_conv_output_shapes_follow_keras():
    import keras

    L = keras.layers
    cases = [(L.Conv2D, dict(filters=3, kernel_size=(3, 2), strides=(2, 3), padding="valid", dilation_rate=1)),
             (L.Conv2D, dict(filters=3, kernel_size=3, strides=2, padding="same")),
             (L.Conv2D, dict(filters=3, kernel_size=3, dilation_rate=2, padding="valid")),
             (L.Conv1D, dict(filters=2, kernel_size=4, padding="causal", strides=3)),
             (L.Conv2DTranspose, dict(filters=2, kernel_size=3, strides=2, padding="valid")),
             (L.Conv2DTranspose, dict(filters=2, kernel_size=3, strides=3, padding="same")),
             (L.Conv2DTranspose, dict(filters=2, kernel_size=2, strides=3, padding="valid", dilation_rate=1)),
             (L.DepthwiseConv2D, dict(kernel_size=3, depth_multiplier=3, strides=2, padding="valid")),
             (L.Conv3D, dict(filters=2, kernel_size=(2, 3, 1), strides=(1, 2, 2), padding="same"))]
    for cls, kw in cases:
        layer = cls(**kw)
        rank = len(layer.kernel_size)
        shape = (None, *[11 + i for i in range(rank)], 4)
        want = tuple(layer.compute_output_shape(shape))
        config = json.loads(json.dumps(layer.get_config()))
        assert static.conv_output_shape(cls.__name__, config, list(shape)) == want, (cls.__name__, kw)


def test_filters_and_layers_of_a_file_never_import_keras(tmp_path):
    small_model().save(tmp_path / "small.keras")
    code = ("import sys, montage.cli\n"
            f"assert montage.cli.main(['layers', '--model', {str(tmp_path / 'small.keras')!r}]) == 0\n"
            f"assert montage.cli.main(['filters', '--model', {str(tmp_path / 'small.keras')!r}, '--out', "
            f"{str(tmp_path / 'a')!r}, '--quiet']) == 0\n"
            f"assert montage.cli.main(['filters', '--layer', 'block1_conv2', '--out', {str(tmp_path / 'b')!r}, "
            "'--quiet']) == 0\n"
            "assert montage.cli.main(['layers']) == 0\n"
            "print(sorted({m.split('.')[0] for m in sys.modules}\n"
            "             & {'tensorflow', 'keras', 'numba', 'jax', 'torch', 'matplotlib', 'tqdm'}))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                       env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "[]"     # nor numba (small canvases), matplotlib (gray), tqdm (quiet)
    assert (tmp_path / "a" / "index.html").is_file() and (tmp_path / "b" / "index.html").is_file()
    assert "conv_b" in r.stdout and "block5_conv3" in r.stdout


def _shared_and_prebuilt():
    """A conv called twice at two sizes, and one built for 10 x 10 but called at 20 x 20."""
    import keras

    keras.utils.set_random_seed(5)
    L = keras.layers
    i = keras.Input((20, 20, 3))
    shared = L.Conv2D(3, 3, name="shared")
    pre = L.Conv2D(2, 3, name="pre")
    pre.build((None, 10, 10, 3))
    a = shared(i)
    b = shared(L.MaxPooling2D(name="p")(a))
    return keras.Model(i, [pre(i), b], name="shapes")


def test_shared_and_prebuilt_layers_report_keras_output_shapes(tmp_path):
    _shared_and_prebuilt().save(tmp_path / "s.keras")
    _same_both_ways(tmp_path / "s.keras", tmp_path)


def test_custom_objects_inside_a_config_go_to_keras(tmp_path):
    import keras

    @keras.saving.register_keras_serializable(package="mine")
    def myact(x):
        return keras.ops.relu(x) * 2.0

    i = keras.Input((8, 8, 3))
    keras.Model(i, keras.layers.Conv2D(2, 3, activation=myact, name="c")(i)).save(tmp_path / "c.keras")
    assert static.read_keras(tmp_path / "c.keras") is None     # Keras (with the code imported) decides
