"""PyTorch and ONNX models: the same layers, filters, features and page as Keras models.

Kernels are checked pixel by pixel against the module's own weights, read by PyTorch's layout
rules alone; feature maps against outputs the test takes itself (forward hooks, onnxruntime).
"""

import importlib
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed (the 'torch' extra)")
nn = torch.nn

import montage  # noqa: E402
from helpers import hooked_outputs, random_images, read_dzi_level  # noqa: E402
from montage.colormap import colormap_lut, parse_color  # noqa: E402
from montage.images import read_rgb  # noqa: E402
from montage.layout import Grid, locate  # noqa: E402
from montage.style import GAP_COLOR  # noqa: E402
from reference import lut_index  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
GAP = parse_color(GAP_COLOR)[0]
SIDE = 32


class Kinds(nn.Module):
    """Every conv kind PyTorch has, a BatchNorm and a pool between them, a Conv1d at the end."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 6, 3, padding=1)
        self.grouped = nn.Conv2d(6, 8, (3, 2), groups=2, padding=1)
        self.act = nn.ReLU()
        self.bn = nn.BatchNorm2d(8)
        self.block = nn.Sequential(nn.Conv2d(8, 16, 3, groups=8, padding=1),      # depthwise, multiplier 2
                                   nn.ConvTranspose2d(16, 4, 3, stride=2))
        self.up = nn.ConvTranspose2d(4, 6, 2, groups=2, bias=False)
        self.pool = nn.MaxPool2d(2)
        self.line = nn.Conv1d(6, 5, 3)

    def forward(self, x):
        x = self.bn(self.act(self.grouped(self.stem(x))))
        x = self.pool(self.up(self.block(x)))
        n, c, h, w = x.shape
        return self.line(x.reshape(n, c, h * w))


def kinds_module(seed=0):
    torch.manual_seed(seed)
    m = Kinds().eval()
    with torch.no_grad():      # statistics of its own, so that BatchNorm does something
        m.bn.running_mean.uniform_(-1, 1)
        m.bn.running_var.uniform_(0.5, 2)
    return m


CONVS = ["stem", "grouped", "block.0", "block.1", "up", "line"]


def run(*args, **env):
    return subprocess.run([sys.executable, "-m", "montage", *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **env})


def _weight_at(module, block, row, col, cy, cx):
    """The weight drawn at (cell row, col, y, x), from PyTorch's layouts alone."""
    w = module.weight.detach().numpy()
    g = block["grid"]
    if isinstance(module, nn.ConvTranspose2d):     # (in, out / groups, kh, kw); rows = outputs
        groups = module.groups
        cin_g, cout_g = w.shape[0] // groups, w.shape[1]
        return w[(row // cout_g) * cin_g + col, row % cout_g, cy, cx]
    if block["kind"] == "depthwise":               # cell k = output channel k
        return w[row * g["cols"] + col, 0, cy, cx]
    if isinstance(module, nn.Conv1d):              # a cell is 1 x k
        return w[row, col, cx]
    return w[row, col, cy, cx]                     # (out, in / groups, kh, kw)


def _check_pixels(out, m, modules):
    lut = colormap_lut("gray")[:, 0]
    view = m["views"][0]
    for block, tile in zip(view["blocks"], view["tiles"]):
        module = modules[block["layer"]]
        w = module.weight.detach().numpy()
        g = Grid(**block["grid"])
        canvas = read_dzi_level(out, tile)[..., 0]
        assert canvas.shape == (g.height, g.width)
        lo, hi = float(w.min()), float(w.max())
        for y in range(g.height):
            for x in range(g.width):
                hit = locate(g, y, x)
                if hit is None:
                    assert canvas[y, x] == GAP, (block["layer"], y, x)
                    continue
                v = _weight_at(module, block, *hit)
                assert canvas[y, x] == lut[lut_index([v], lo, hi)[0]], (block["layer"], y, x, hit)


def test_every_torch_conv_kind_is_drawn_pixel_exact(tmp_path):
    module = kinds_module()
    m = montage.filters(module, "all", tmp_path / "o", normalize="global", clip=0, cmap="gray", quiet=True)
    blocks = {b["layer"]: b for b in m["views"][0]["blocks"]}
    assert list(blocks) == CONVS
    assert (blocks["grouped"]["groups"], blocks["grouped"]["kernel_shape"]) == (2, [3, 2, 3, 8])
    assert (blocks["block.0"]["kind"], blocks["block.0"]["op"], blocks["block.0"]["multiplier"]) == \
        ("depthwise", "DepthwiseConv2D", 2)
    assert (blocks["block.1"]["op"], blocks["block.1"]["kernel_shape"]) == ("Conv2DTranspose", [3, 3, 4, 16])
    assert (blocks["up"]["groups"], blocks["up"]["kernel_shape"]) == (2, [2, 2, 6, 2])
    assert blocks["line"]["op"] == "Conv1D" and blocks["line"]["grid"]["cell_h"] == 1
    assert m["model"]["name"] == "Kinds" and m["weights"] == {"source": "as given"}
    _check_pixels(tmp_path / "o", m, dict(module.named_modules()))


def test_layers_table_of_a_torch_module():
    table = str(montage.layers(kinds_module()))
    for needle in ("stem", "block.0", "DepthwiseConv2D  ", "(3, 3, 8, 2)", "(None, 224, 224, 6)",
                   "Conv2DTranspose", "(None, 449, 451, 4)", "Conv1D", "(3, 6, 5)", "(None, 50848, 5)",
                   "not drawn: 1 layer with weights whose class is not a convolution (BatchNorm2d)"):
        assert needle in table, (needle, table)


def test_rgb_first_layer_is_red_green_blue(tmp_path):
    module = nn.Sequential(nn.Conv2d(3, 2, 3))
    with torch.no_grad():
        module[0].weight.zero_()
        module[0].weight[0, 0] = 1.0   # filter 0 looks at input channel 0: red (torch models take RGB)
        module[0].weight[1, 2] = 1.0   # filter 1 at channel 2: blue
    m = montage.filters(module, "0", tmp_path / "rgb", rgb=True, cell=3, gap=0, quiet=True)
    block = m["views"][0]["blocks"][0]
    assert block["kind"] == "rgb" and block["channel_order"] == "RGB"
    canvas = read_dzi_level(tmp_path / "rgb", m["views"][0]["tiles"][0])
    assert tuple(canvas[1, 1]) == (255, 0, 0) and tuple(canvas[1, 4]) == (0, 0, 255)



def _close(got, want):
    """Equal up to float32 rounding (batches of other sizes may take other conv algorithms)."""
    want = np.asarray(want)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=2e-6 * max(1.0, float(np.abs(want).max())))


def _values(out, block):
    """A block's activations as the page reads them (the values script, every part)."""
    from montage.manifest import read_values

    return read_values(Path(out) / block["values"])


def test_features_of_a_torch_module_are_its_hooked_outputs(tmp_path):
    module = kinds_module()
    imgs = random_images(tmp_path / "in", 3, side=40)
    names = ["stem", "block.0", "block.1", "bn", "pool"]    # bn, pool: any module with 2-D maps
    m = montage.features(module, [str(p) for p in imgs], tmp_path / "o", layers=names, size=SIDE, batch_size=2,
                         values=-1, quiet=True)
    x = np.stack([read_rgb(p, SIDE) for p in imgs]).astype(np.float32).transpose(0, 3, 1, 2)   # raw 0..255
    want = hooked_outputs(module, np.ascontiguousarray(x), names)
    assert m["model"]["preprocess"] == "none" and m["device"] == "torch on cpu"
    for j, view in enumerate(m["views"]):
        assert [b["layer"] for b in view["blocks"]] == names
        for block, w in zip(view["blocks"], want):
            assert block["map_shape"] == list(w.shape[2:]) + [w.shape[1]]
            _close(_values(tmp_path / "o", block), w[j].transpose(1, 2, 0))
    assert module.training is False and next(module.parameters()).device.type == "cpu"   # left as it was
    got = list(montage.activations(module, [str(imgs[0])], ["up"], size=SIDE))
    _close(got[0][1]["up"][0], hooked_outputs(module, np.ascontiguousarray(x[:1]), ["up"])[0][0].transpose(1, 2, 0))


def test_examples_of_a_torch_module_rank_by_the_hooked_means(tmp_path):
    module = kinds_module()
    imgs = [str(p) for p in random_images(tmp_path / "in", 5, side=40)]
    m = montage.examples(module, imgs, tmp_path / "o", layers=["stem", "block.0"], score="mean", top=3, size=SIDE,
                         batch_size=2, overlay=True, quiet=True)
    x = np.stack([read_rgb(p, SIDE) for p in imgs]).astype(np.float32).transpose(0, 3, 1, 2)
    for block, maps in zip(m["views"][0]["blocks"], hooked_outputs(module, np.ascontiguousarray(x), ["stem", "block.0"])):
        means = maps.mean(axis=(2, 3))                        # (images, channels)
        for c, row in enumerate(block["examples"]):
            order = np.argsort(-means[:, c], kind="stable")[:3]
            assert [e["image"] for e in row] == [imgs[i] for i in order], (block["layer"], c)
            np.testing.assert_allclose([e["score"] for e in row], means[order, c], rtol=1e-5, atol=1e-4)
            assert all(e["box"] == [0, 0, SIDE, SIDE] for e in row)     # the whole image
    m = montage.examples(module, imgs, tmp_path / "max", layers=["stem", "up"], size=SIDE, quiet=True)  # --score max
    stem, up = m["views"][0]["blocks"]
    assert stem["field"] == {"jump": [1, 1], "start": [-1, -1], "size": [3, 3]}     # receptive fields (torch.fx)
    assert up["field"] is None     # after a transpose conv: whole images


def _torchvision_loads():
    try:
        importlib.import_module("torchvision")
        return True
    except (ImportError, RuntimeError):
        return False


def needs_torchvision():
    """Skip where torchvision is missing or cannot load (PyPI's links CUDA builds of torch: it fails
    to import beside a CPU-only torch wheel)."""
    try:
        importlib.import_module("torchvision")
    except (ImportError, RuntimeError) as e:
        pytest.skip(f"torchvision cannot be imported here ({type(e).__name__}: {str(e)[:80]})")


@pytest.fixture(scope="module")
def resnet18():
    needs_torchvision()
    return montage.load_model("torchvision:resnet18", "random", seed=3)


def test_torchvision_resnet18_filters_and_features(resnet18, tmp_path):
    import torchvision

    torch.manual_seed(3)
    own = torchvision.models.resnet18(weights=None).eval()      # the same seed: the same weights
    modules = dict(own.named_modules())
    layers = ["layer1.0.conv1", "layer2.0.downsample.0", "layer4.1.conv2"]
    m = montage.filters(resnet18, layers, tmp_path / "f", normalize="global", clip=0, cmap="gray", quiet=True)
    assert m["weights"] == {"source": "random", "seed": 3, "detail": "torchvision's default initialisers"}
    small = [b for b in m["views"][0]["blocks"] if b["layer"] != "layer4.1.conv2"]   # 512 x 512 cells: too slow
    _check_pixels(tmp_path / "f", {**m, "views": [{"blocks": small, "tiles": [
        t for b, t in zip(m["views"][0]["blocks"], m["views"][0]["tiles"]) if b in small]}]}, modules)
    big = m["views"][0]["blocks"][-1]
    canvas = read_dzi_level(tmp_path / "f", m["views"][0]["tiles"][-1])[..., 0]
    w = modules["layer4.1.conv2"].weight.detach().numpy()
    lut, g = colormap_lut("gray")[:, 0], Grid(**big["grid"])
    for row, col in [(0, 0), (7, 300), (511, 511), (200, 3)]:
        y, x = row * g.pitch_y, col * g.pitch_x
        cell = canvas[y:y + g.cell_h * g.scale:g.scale, x:x + g.cell_w * g.scale:g.scale]
        np.testing.assert_array_equal(cell, lut[lut_index(w[row, col], w.min(), w.max())])
    img = random_images(tmp_path / "in", 1, side=64)
    m = montage.features(resnet18, [str(img[0])], tmp_path / "o", layers=["conv1", "layer3.1.conv2", "maxpool"],
                         values=-1, quiet=True)
    assert m["model"] == {"name": "torchvision:resnet18", "source": "torchvision.models.resnet18", "input_order": "rgb",
                          "preprocess": "torch", "bgr": False, "resize": "stretch"} and m["input_size"] == 224
    rgb = read_rgb(img[0], 224).astype(np.float32) / 255
    x = ((rgb - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]).astype(np.float32).transpose(2, 0, 1)[None]
    want = hooked_outputs(own, np.ascontiguousarray(x), ["conv1", "layer3.1.conv2", "maxpool"])
    for block, w in zip(m["views"][0]["blocks"], want):
        _close(_values(tmp_path / "o", block), w[0].transpose(1, 2, 0))


# ---- ONNX ----

@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    pytest.importorskip("onnx", reason="onnx is not installed (the 'onnx' extra)")
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (the 'onnx' extra)")

    path = tmp_path_factory.mktemp("onnx") / "kinds.onnx"
    module = kinds_module()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, torch.zeros(1, 3, SIDE, SIDE), str(path), dynamo=False,
                          input_names=["image"], dynamic_axes={"image": {0: "batch"}})
    return module, path


def test_onnx_kernels_are_the_initializers_and_match_torch(exported, tmp_path):
    import onnx
    from onnx import numpy_helper

    module, path = exported
    proto = onnx.load(str(path))
    inits = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    convs = [n for n in proto.graph.node if n.op_type in ("Conv", "ConvTranspose")]
    m = montage.filters(str(path), "all", tmp_path / "o", normalize="global", clip=0, cmap="gray", quiet=True)
    blocks = m["views"][0]["blocks"]
    assert [b["layer"] for b in blocks] == CONVS    # named after the module paths the export kept
    assert len(convs) == len(blocks)
    for node, block in zip(convs, blocks):     # the graph's own weights, and they are the module's
        np.testing.assert_array_equal(inits[node.input[1]], dict(module.named_modules())[block["layer"]].weight
                                      .detach().numpy())
    _check_pixels(tmp_path / "o", m, dict(module.named_modules()))
    a = montage.filters(module, "all", tmp_path / "t", quiet=True)
    assert [(b["kind"], b["kernel_shape"], b["grid"]) for b in a["views"][0]["blocks"]] == \
        [(b["kind"], b["kernel_shape"], b["grid"]) for b in montage.filters(str(path), "all", tmp_path / "x",
                                                                             quiet=True)["views"][0]["blocks"]]
    table = str(montage.layers(str(path)))
    assert "(None, 65, 67, 4)" in table and "(None, 32, 33, 16)" in table   # at the size it was exported


def test_onnx_features_are_onnxruntimes_and_torchs(exported, tmp_path):
    import onnx
    import onnxruntime as ort

    module, path = exported
    imgs = random_images(tmp_path / "in", 3, side=40)
    names = ["stem", "grouped", "block.0"]
    m = montage.features(str(path), [str(p) for p in imgs], tmp_path / "o", layers=names, batch_size=2,
                         values=-1, quiet=True)
    assert m["device"] == "onnxruntime on CPU" and m["input_size"] == SIDE
    x = np.ascontiguousarray(np.stack([read_rgb(p, SIDE) for p in imgs]).astype(np.float32).transpose(0, 3, 1, 2))
    proto = onnx.load(str(path))     # the test's own session, giving the conv nodes' outputs
    tensors = [n.output[0] for n in proto.graph.node if n.op_type in ("Conv", "ConvTranspose")][:3]
    proto.graph.output.extend(onnx.helper.make_tensor_value_info(t, onnx.TensorProto.FLOAT, None) for t in tensors)
    runtime = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    by_ort = runtime.run(tensors, {"image": x})
    by_torch = hooked_outputs(module, x, names)
    for j, view in enumerate(m["views"]):
        for block, a, b in zip(view["blocks"], by_ort, by_torch):
            got = _values(tmp_path / "o", block)
            np.testing.assert_array_equal(got, a[j].transpose(1, 2, 0))
            _close(got, b[j].transpose(1, 2, 0))


def test_onnx_node_scopes_are_module_paths(tmp_path):
    pytest.importorskip("onnx", reason="onnx is not installed (the 'onnx' extra)")
    from montage.readers.onnx_names import scoped as _scoped

    assert _scoped("/conv1/Conv") == "conv1"
    assert _scoped("/layer1/layer1.0/conv1/Conv") == "layer1.0.conv1"
    assert _scoped("/layer2/layer2.0/downsample/downsample.0/Conv") == "layer2.0.downsample.0"
    assert _scoped("/features/features.3/block/block.0/block.0.0/Conv") == "features.3.block.0.0"
    needs_torchvision()
    import torchvision

    module = torchvision.models.resnet18().eval()   # BatchNorm folded: the weights lose their names
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, torch.zeros(1, 3, 64, 64), str(tmp_path / "r18.onnx"), dynamo=False)
    got = [b.name for b in montage.load_model(str(tmp_path / "r18.onnx")).model.layers
           if b.class_name == "Conv2D"]
    assert got == [n for n, m in module.named_modules() if isinstance(m, nn.Conv2d)]


# ---- bad input, and what is never imported ----

def test_bad_torch_and_onnx_files_are_one_line(exported, tmp_path):
    module, path = exported
    torch.save(module, tmp_path / "pickled.pt")
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(path.read_bytes()[:300])
    import onnx

    g = onnx.helper.make_graph([onnx.helper.make_node("Relu", ["x"], ["y"], name="relu")], "noconv",
                               [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3, 8, 8])],
                               [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 3, 8, 8])])
    onnx.save(onnx.helper.make_model(g), tmp_path / "noconv.onnx")
    torch.save(module.state_dict(), tmp_path / "state.pth")
    cases = [(("filters", "--model", str(tmp_path / "pickled.pt")), "pickled module: loading it runs code"),
             (("filters", "--model", str(corrupt)), "could not read ONNX model"),
             (("features", "--model", str(tmp_path / "noconv.onnx")), "has no Conv or ConvTranspose node"),
             (("filters", "--model", str(tmp_path / "state.pth")), "holds a state dict"),
             (("filters", "--model", "torchvision:resnet_nope", "--weights", "random"),
              "torchvision has no model" if _torchvision_loads() else "torchvision that fits the installed torch"),
             (("filters", "--model", str(path), "--weights", "random"), "brings its own weights")]
    for args, needle in cases:
        r = run(*args, "--out", str(tmp_path / "out"))
        assert r.returncode == 2, (args, r.stderr[-2000:])
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("montage: error: ") and needle in lines[0], (args, r.stderr)
    assert not (tmp_path / "out").exists()
    r = run("layers", "--model", str(tmp_path / "pickled.pt"), "--unsafe")      # trusted, but Kinds is not importable
    assert r.returncode == 2 and "No module named 'test_torch_onnx'" in r.stderr and "must be importable" in r.stderr
    r = run("layers", "--model", str(tmp_path / "pickled.pt"), "--unsafe", PYTHONPATH=f"{ROOT}{os.pathsep}{ROOT / 'tests'}")
    assert r.returncode == 0 and "block.0" in r.stdout and "model file weights" in r.stdout, r.stderr


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")
def test_trusted_torchscript_archives_give_kernels_and_say_why_not_features(tmp_path):
    module = kinds_module()
    torch.jit.script(module).save(str(tmp_path / "kinds.pt"))
    a = montage.filters(str(tmp_path / "kinds.pt"), "all", tmp_path / "a", quiet=True, unsafe=True)
    b = montage.filters(module, "all", tmp_path / "b", quiet=True)
    assert [x["grid"] for x in a["views"][0]["blocks"]] == [x["grid"] for x in b["views"][0]["blocks"]]
    assert a["weights"]["detail"] == "TorchScript"
    r = run("features", "--model", str(tmp_path / "kinds.pt"), "--unsafe", "--out", str(tmp_path / "c"))
    assert r.returncode == 2 and "cannot be tapped for feature maps" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_imagenet_weights_offline_is_one_line(tmp_path):
    needs_torchvision()
    r = run("layers", "--model", "torchvision:squeezenet1_0", "--weights", "imagenet",
            TORCH_HOME=str(tmp_path / "hub"), HTTPS_PROXY="http://127.0.0.1:9", https_proxy="http://127.0.0.1:9")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "could not get torchvision's ImageNet weights for squeezenet1_0" in r.stderr and "--weights random" in r.stderr


def test_torchvision_after_tensorflow_in_one_process(tmp_path):
    needs_torchvision()      # triton, imported after TensorFlow, would crash the process
    code = ("import tensorflow, montage\n"
            f"m = montage.features('torchvision:resnet18', None, {str(tmp_path / 'o')!r}, weights='random', size=64, quiet=True)\n"
            "print(len(m['views'][0]['blocks']))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0 and r.stdout.strip() == "20", r.stderr[-2000:]


def test_help_and_keras_runs_import_no_torch(tmp_path):
    from helpers import small_model

    small_model().save(tmp_path / "small.keras")
    code = ("import sys, montage.cli\n"
            "try:\n    montage.cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
            f"assert montage.cli.main(['filters', '--model', {str(tmp_path / 'small.keras')!r}, '--out', "
            f"{str(tmp_path / 'a')!r}, '--quiet']) == 0\n"
            "assert montage.cli.main(['layers']) == 0\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'torchvision', 'onnx', 'onnxruntime'}))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                       env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "[]"


def test_torch_preprocessing_is_keras_mode_torch_without_keras():
    from montage.preprocess import preprocess

    keras = pytest.importorskip("keras")
    x = np.random.default_rng(0).integers(0, 256, (2, 5, 4, 3)).astype(np.uint8)
    want = keras.applications.imagenet_utils.preprocess_input(x.astype(np.float32), mode="torch")
    np.testing.assert_array_equal(preprocess(x, "torch"), want)
