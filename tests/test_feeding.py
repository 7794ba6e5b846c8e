"""The right input for each model: preprocessing for any channel count, channel order, sizes
of any shape, how pictures are fitted, and the model's own size floor (issue 24)."""

import json
import sys

import numpy as np
import pytest

import montage
from helpers import one_line, read_manifest, run, write_image
from montage.images import read_rgb
from montage.preprocess import LUMA, preprocess


def _grey_model(path, side=28):
    """A 28 x 28 grey classifier's first layers, as every MNIST tutorial builds them."""
    import keras

    keras.utils.set_random_seed(3)
    inp = keras.Input((side, side, 1))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="c1")(inp)
    x = keras.layers.Conv2D(6, 3, name="c2")(x)
    model = keras.Model(inp, x, name="mnistish")
    model.save(path)
    return model


def test_numpy_preprocessing_is_keras_own_to_the_bit():
    keras = pytest.importorskip("keras")
    x = np.random.default_rng(0).integers(0, 256, (3, 5, 7, 3)).astype(np.uint8)
    for mode in ("caffe", "tf", "torch"):
        want = keras.applications.imagenet_utils.preprocess_input(x.astype(np.float32), mode=mode)
        np.testing.assert_array_equal(preprocess(x, mode), np.asarray(want, np.float32))
    # one number for every channel, or one per channel; BGR reverses before the numbers
    got = preprocess(x, {"mean": (10.0, 20.0, 30.0), "std": (2.0,)}, bgr=True)
    np.testing.assert_array_equal(got, (x[..., ::-1].astype(np.float32) - [10, 20, 30]) / np.float32(2.0))
    np.testing.assert_array_equal(preprocess(x, "tf", channels=1),
                                  np.round(x.astype(np.float32) @ LUMA)[..., None] / np.float32(127.5) - 1)
    rgba = preprocess(x, "none", channels=4, bgr=True)
    np.testing.assert_array_equal(rgba[..., :3], x[..., ::-1]) and np.testing.assert_array_equal(rgba[..., 3], 255)


def test_a_grey_28_pixel_model_takes_28_pixel_images_and_every_fitting_mode(tmp_path):
    model = _grey_model(tmp_path / "grey.keras")
    img = write_image(tmp_path / "digit.png", np.random.default_rng(1).integers(0, 256, (28, 28, 3), np.uint8))
    grey = np.round(read_rgb(img, 28).astype(np.float32) @ LUMA)[None, ..., None]
    for kw, x in ((dict(preprocess="tf"), grey / np.float32(127.5) - 1),
                  (dict(mean=127.5, std=127.5), (grey - np.float32(127.5)) / np.float32(127.5)),
                  (dict(mean=(0.0,), std=(255.0,)), grey / np.float32(255))):
        (_, acts), = montage.activations(str(tmp_path / "grey.keras"), [str(img)], ["c2"], **kw)
        np.testing.assert_allclose(acts["c2"], model.predict(x, verbose=0), rtol=1e-5, atol=1e-5)
    r = run("features", "--model", str(tmp_path / "grey.keras"), "--image", str(img), "--preprocess", "tf",
            "--out", str(tmp_path / "o"), "--quiet")
    assert r.returncode == 0, r.stderr
    m = read_manifest(tmp_path / "o")
    assert m["input_size"] == 28 and m["model"]["preprocess"] == "tf" and m["model"]["resize"] == "stretch"
    one_line(run("features", "--model", str(tmp_path / "grey.keras"), "--image", str(img), "--preprocess", "torch",
                 "--out", str(tmp_path / "x")), "ImageNet's RGB means", "--mean 127.5 --std 127.5")
    one_line(run("features", "--model", str(tmp_path / "grey.keras"), "--image", str(img), "--mean", "1,2,3",
                 "--out", str(tmp_path / "x")), "--mean has 3 numbers", "1 channel")
    one_line(run("features", "--model", str(tmp_path / "grey.keras"), "--image", str(img), "--bgr",
                 "--out", str(tmp_path / "x")), "--bgr", "grey")
    assert not (tmp_path / "x").exists()


def test_bgr_non_square_sizes_and_the_model_s_own_floor(tmp_path):
    import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((None, None, 3))
    x = inp
    for i in range(3):      # valid 3x3 convs of stride 2: the smallest input that runs is 15
        x = keras.layers.Conv2D(2, 3, strides=2, name=f"s{i}")(x)
    keras.Model(inp, x, name="strided").save(tmp_path / "strided.keras")
    img = write_image(tmp_path / "a.png", np.random.default_rng(2).integers(0, 256, (50, 70, 3), np.uint8))
    (_, acts), = montage.activations(str(tmp_path / "strided.keras"), [str(img)], ["s0"], size=(48, 80),
                                     mean=(10.0, 20.0, 30.0), std=(2.0,), bgr=True)
    rgb = read_rgb(img, (48, 80)).astype(np.float32)
    want = keras.models.load_model(tmp_path / "strided.keras").get_layer("s0")((rgb[None, ..., ::-1] - [10, 20, 30]) / 2)
    np.testing.assert_allclose(acts["s0"], np.asarray(want), rtol=1e-5, atol=1e-4)
    assert acts["s0"].shape == (1, 23, 39, 2)
    one_line(run("features", "--model", str(tmp_path / "strided.keras"), "--image", str(img), "--size", "8",
                 "--out", str(tmp_path / "x")), "cannot take 8 x 8", "need at least 15 x 15", "--size 15")
    r = run("features", "--model", str(tmp_path / "strided.keras"), "--image", str(img), "--size", "15",
            "--bgr", "--mean", "127.5", "--std", "127.5", "--out", str(tmp_path / "o"), "--quiet")
    assert r.returncode == 0, r.stderr
    assert read_manifest(tmp_path / "o")["model"]["bgr"] is True
    one_line(run("features", "--model", str(tmp_path / "strided.keras"), "--image", str(img), "--bgr",
                 "--preprocess", "caffe", "--out", str(tmp_path / "x")), "--bgr", "caffe already feeds BGR")
    assert not (tmp_path / "x").exists()


def test_a_fixed_non_square_bgr_onnx_model_is_fed_at_its_own_size(tmp_path):
    """A text recogniser's shape: 48 x 96, BGR, (x / 255 - 0.5) / 0.5, as PaddleOCR feeds it."""
    if "tensorflow" in sys.modules:
        sys.modules.setdefault("triton", None)
    torch = pytest.importorskip("torch")
    ort = pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(4, 5, 3))
    torch.onnx.export(net.eval(), torch.zeros(1, 3, 48, 96), str(tmp_path / "rec.onnx"), dynamo=False,
                      input_names=["x"])
    img = write_image(tmp_path / "line.png", np.random.default_rng(4).integers(0, 256, (30, 200, 3), np.uint8))
    r = run("features", "--model", str(tmp_path / "rec.onnx"), "--image", str(img), "--bgr", "--mean", "127.5",
            "--std", "127.5", "--size", "64", "--out", str(tmp_path / "o"), "--quiet")
    assert r.returncode == 0, r.stderr
    m = read_manifest(tmp_path / "o")
    assert m["input_size"] == 48 and m["model"]["bgr"] is True
    x = (read_rgb(img, (48, 96))[..., ::-1].astype(np.float32) - np.float32(127.5)) / np.float32(127.5)
    (_, acts), = montage.activations(str(tmp_path / "rec.onnx"), [str(img)], None, bgr=True, mean=127.5, std=127.5)
    sess = ort.InferenceSession(str(tmp_path / "rec.onnx"))
    out = sess.run(None, {"x": np.ascontiguousarray(x.transpose(2, 0, 1)[None])})[0]
    last = list(acts)[-1]
    np.testing.assert_allclose(acts[last], out.transpose(0, 2, 3, 1), rtol=1e-5, atol=1e-5)


def test_crop_and_letterbox_fit_pictures_as_torchvision_and_yolo_do(tmp_path):
    a = np.zeros((40, 80, 3), np.uint8)
    a[:, :40] = (255, 0, 0)      # left half red, right half blue
    a[:, 40:] = (0, 0, 255)
    img = write_image(tmp_path / "wide.png", a)
    box = read_rgb(img, 32, "letterbox")      # 0.4 x: 16 x 32, centred, grey 114 above and below
    assert (box[:8] == 114).all() and (box[24:] == 114).all()
    assert (box[8:24, :12] == (255, 0, 0)).all() and (box[8:24, 20:] == (0, 0, 255)).all()   # lanczos rings 3 px
    crop = read_rgb(img, 32, "crop")          # 0.8 / 0.875 x: 37 x 73, the centre 32 x 32
    assert crop.shape == (32, 32, 3) and (crop[:, :13] == (255, 0, 0)).all() and (crop[:, 20:] == (0, 0, 255)).all()
    stretch = read_rgb(img, 32)
    assert (stretch[:, :12] == (255, 0, 0)).all() and (stretch[:, 20:] == (0, 0, 255)).all()
    tall = write_image(tmp_path / "tall.png", np.ascontiguousarray(a.transpose(1, 0, 2)))
    box = read_rgb(tall, (32, 64), "letterbox")   # 80 x 40 into 32 x 64: 32 x 16, centred
    assert (box[:, :24] == 114).all() and (box[:, 40:] == 114).all() and not (box[:, 25:39] == 114).all()


def test_resize_is_recorded_and_examples_patches_come_from_the_fitted_picture(tmp_path):
    import keras

    inp = keras.Input((32, 32, 3))
    keras.Model(inp, keras.layers.Conv2D(2, 3, padding="same", name="c")(inp)).save(tmp_path / "m.keras")
    (tmp_path / "in").mkdir()
    imgs = [write_image(tmp_path / "in" / f"{i}.png",
                        np.random.default_rng(i).integers(0, 256, (40, 80, 3), np.uint8)) for i in range(2)]
    r = run("examples", "--model", str(tmp_path / "m.keras"), "--image", str(tmp_path / "in"), "--resize",
            "letterbox", "--score", "mean", "--top", "1", "--cell", "32", "--out", str(tmp_path / "o"), "--quiet")
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert m["model"]["resize"] == "letterbox" and m["model"]["bgr"] is False
    # each cell is the fitted picture: 16 of its 32 rows are the letterbox's grey
    canvas = montage.examples(str(tmp_path / "m.keras"), [str(tmp_path / "in")], None, resize="letterbox",
                              score="mean", top=1, cell=32, quiet=True).canvas("c")
    grey = (canvas[..., :3] == 114).all(-1).sum()
    assert grey >= 2 * 16 * 32, grey
    # a merge takes the fitting from its partial results: no --resize needed, a different one named
    kw = dict(resize="letterbox", score="mean", top=1, cell=32, quiet=True)
    montage.examples(str(tmp_path / "m.keras"), [str(tmp_path / "in")], tmp_path / "p0", shard=(0, 1), **kw)
    merged = montage.examples(None, [str(tmp_path / "in")], tmp_path / "merged", merge=[str(tmp_path / "p0")],
                              cell=32, quiet=True)
    assert merged["model"]["resize"] == "letterbox"
    np.testing.assert_array_equal(merged.canvas("c"), canvas)
    with pytest.raises(montage.MontageError, match="--resize differs"):
        montage.examples(None, [str(tmp_path / "in")], tmp_path / "m2", merge=[str(tmp_path / "p0")],
                         resize="crop", quiet=True)
    one_line(run("features", "--model", str(tmp_path / "m.keras"), "--image", str(imgs[0]), "--resize", "squash",
                 "--out", str(tmp_path / "x")), "--resize")
    one_line(run("features", "--model", str(tmp_path / "m.keras"), "--image", str(imgs[0]), "--size", "4,5,6",
                 "--out", str(tmp_path / "x")), "--size")


def test_counts_are_channels_and_a_wrong_model_name_is_refused_before_any_framework(tmp_path):
    import keras

    inp = keras.Input((16, 16, 3))
    keras.Model(inp, keras.layers.Conv2D(300, 1, name="wide")(inp)).save(tmp_path / "wide.keras")
    imgs = [write_image(tmp_path / f"{i}.png", np.random.default_rng(i).integers(0, 256, (16, 16, 3), np.uint8))
            for i in range(2)]
    m = montage.examples(str(tmp_path / "wide.keras"), [str(p) for p in imgs], None, score="mean", top=2, cell=4,
                         quiet=True, preprocess="none")
    block = m["views"][0]["blocks"][0]
    assert block["grid"]["rows"] != 300 and "300 channels of 1 layer" in repr(m)   # bands: rows are not channels
    r = run("layers", "--model", str(tmp_path / "fake.xyz"), env={"PYTHONWARNINGS": "error::ImportWarning"})
    one_line(r, "fake.xyz", "neither a built-in model")
    code = ("import sys\nfrom montage.cli import main\nmain(['layers', '--model', 'fake.xyz'])\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'torch')))")
    r = __import__("subprocess").run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert r.stdout.strip().endswith("[]"), r.stdout + r.stderr
