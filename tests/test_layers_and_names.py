"""Finding every layer of real models, and names that mean what their user thinks (issue 24):
conv subclasses, TorchScript under any name, graphs with several inputs, built subclassed Keras
models, ONNX module paths that name what a forward hook sees, and ``layers --maps``.

Kernels are checked against the frameworks' own weights, maps against their own forward passes
(PyTorch forward hooks, Keras' functional outputs).
"""

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed (the 'torch' extra)")
nn, F = torch.nn, torch.nn.functional

import montage  # noqa: E402
from helpers import hooked_outputs, one_line, random_images  # noqa: E402
from montage.graph import kernels, walk  # noqa: E402
from montage.images import read_rgb  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def run(*args):
    return subprocess.run([sys.executable, "-m", "montage", *args], capture_output=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})



def _close(got, want):
    want = np.asarray(want)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(want).max())))


# ---- conv subclasses (PyTorch) ----

class StaticSame(nn.Conv2d):
    """EfficientNet-PyTorch's Conv2dStaticSamePadding: a padding module inside the conv."""

    def __init__(self, cin, cout, k, **kw):
        super().__init__(cin, cout, k, **kw)
        self.static_padding = nn.ZeroPad2d((1, 1, 1, 1))

    def forward(self, x):
        return F.conv2d(self.static_padding(x), self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class Same(nn.Conv2d):
    """timm's Conv2dSame: pads in its forward."""

    def forward(self, x):
        return F.conv2d(F.pad(x, (0, 1, 0, 1)), self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class StdConv(nn.Conv2d):
    """A weight-standardised conv: the stored weight is what is drawn."""

    def forward(self, x):
        w = self.weight
        w = (w - w.mean(dim=(1, 2, 3), keepdim=True)) / (w.std(dim=(1, 2, 3), keepdim=True) + 1e-5)
        return F.conv2d(x, w, self.bias, self.stride, self.padding, self.dilation, self.groups)


class Up(nn.ConvTranspose2d):
    pass


class Subclassed(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = StaticSame(3, 6, 3, stride=2)
        self.same = Same(6, 8, 2, groups=2)
        self.std = StdConv(8, 8, 3, padding=1, groups=8)      # depthwise
        self.act = nn.SiLU()
        self.up = Up(8, 4, 2, stride=2)
        self.head = nn.BatchNorm2d(4)

    def forward(self, x):
        return self.head(self.up(self.act(self.std(self.same(self.stem(x))))))


class Plain(Subclassed):
    """The same weights in torch.nn's own classes."""

    def __init__(self, other):
        super().__init__()
        self.stem, self.same = nn.Conv2d(3, 6, 3, stride=2), nn.Conv2d(6, 8, 2, groups=2)
        self.std, self.up = nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.ConvTranspose2d(8, 4, 2, stride=2)
        self.load_state_dict(other.state_dict(), strict=False)


def _kernels(model, **kw):
    return {k.name: (k.kind, k.op, k.weights) for n in walk(montage.load_model(model, **kw).model) for k in kernels(n)}


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")
def test_conv_subclasses_are_found_read_and_run(tmp_path):
    torch.manual_seed(0)
    module = Subclassed().eval()
    got, want = _kernels(module), _kernels(Plain(module).eval())
    assert list(got) == ["stem", "same", "std", "up"] == list(want)
    for name in got:     # read as their torch.nn base class is read, from the same stored weights
        assert got[name][:2] == want[name][:2] and got[name][0] in ("filters", "depthwise")
        np.testing.assert_array_equal(got[name][2], want[name][2])
    table = montage.layers(module)
    assert [r["kind"] for r in table.records] == ["Conv2D", "Conv2D", "DepthwiseConv2D", "Conv2DTranspose"]
    assert "4 conv layers" in table and "not drawn: 1 layer with weights whose class is not a convolution " \
        "(BatchNorm2d)" in table
    img = random_images(tmp_path / "in", 1, side=40)[0]
    names = ["stem", "same", "std", "act", "up"]
    (_, maps), = montage.activations(module, [str(img)], names, size=32)
    x = read_rgb(img, 32).astype(np.float32).transpose(2, 0, 1)[None]
    for name, want in zip(names, hooked_outputs(module, x, names)):    # the subclasses' own forward
        _close(maps[name][0], want[0].transpose(1, 2, 0))

    # compiled, saved as .jit: found by what the archive holds, its subclasses by their attributes
    path = tmp_path / "sub.jit"
    torch.jit.script(module).save(str(path))
    one_line(run("layers", "--model", str(path)), "is a TorchScript archive", "--unsafe")
    r = run("layers", "--model", str(path), "--unsafe")
    assert r.returncode == 0 and "4 conv layers" in r.stdout.decode(), r.stderr.decode()[-2000:]
    scripted = _kernels(str(path), unsafe=True)
    assert [(k, v[:2]) for k, v in scripted.items()] == [(k, v[:2]) for k, v in got.items()]
    for name in got:
        np.testing.assert_array_equal(scripted[name][2], got[name][2])
    m = montage.filters(str(path), "all", tmp_path / "f", unsafe=True, quiet=True)
    assert [b["layer"] for b in m["views"][0]["blocks"]] == ["stem", "same", "std", "up"]
    one_line(run("features", "--model", str(path), "--unsafe", "--out", str(tmp_path / "o")),
             "cannot be tapped for feature maps")


# ---- ONNX: module paths name what a forward hook sees ----

class Conv(nn.Module):
    """YOLOv8's Conv: conv, batch norm, SiLU (exported as Sigmoid then Mul)."""

    def __init__(self, cin, cout, k=3, s=1):
        super().__init__()
        self.conv, self.bn, self.act = nn.Conv2d(cin, cout, k, s, k // 2, bias=False), nn.BatchNorm2d(cout), nn.SiLU()

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class Bottleneck(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.cv1, self.cv2 = Conv(c, c), Conv(c, c)

    def forward(self, x):
        return x + self.cv2(self.cv1(x))


class C2f(nn.Module):
    """YOLOv8's C2f: a Split first, its block's output last."""

    def __init__(self, cin, cout):
        super().__init__()
        self.c = cout // 2
        self.cv1, self.cv2 = Conv(cin, cout, 1), Conv(3 * self.c, cout, 1)
        self.m = nn.ModuleList([Bottleneck(self.c)])

    def forward(self, x):
        y = list(self.cv1(x).split((self.c, self.c), 1))
        y.extend(m(y[-1]) for m in self.m)
        return self.cv2(torch.cat(y, 1))


class Yolo(nn.Module):
    def __init__(self):
        super().__init__()
        self.model = nn.Sequential(Conv(3, 8, 3, 2), Conv(8, 16, 3, 2), C2f(16, 16), nn.MaxPool2d(2))

    def forward(self, x):
        return self.model(x)


@pytest.fixture(scope="module")
def yolo(tmp_path_factory):
    pytest.importorskip("onnx", reason="onnx is not installed (the 'onnx' extra)")
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (the 'onnx' extra)")
    torch.manual_seed(1)
    module = Yolo().eval()
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2)
    path = tmp_path_factory.mktemp("yolo") / "yolo.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, torch.zeros(1, 3, 32, 32), str(path), dynamo=False, input_names=["images"])
    return module, path


HOOKED = ["model.0.act", "model.0", "model.2.cv1", "model.2.m.0", "model.2", "model.3", "model"]


def test_onnx_module_paths_are_what_forward_hooks_see(yolo, tmp_path):
    import onnx

    module, path = yolo
    ops = {n.name: n.op_type for n in onnx.load(str(path)).graph.node}
    assert ops["/model/model.2/Split"] == "Split" and ops["/model/model.0/act/Sigmoid"] == "Sigmoid"
    img = random_images(tmp_path / "in", 1, side=40)[0]
    x = (read_rgb(img, 32).astype(np.float32) / 255).transpose(2, 0, 1)[None]
    names = HOOKED + ["model.0.act/Sigmoid", "model.2/Split"]
    (_, maps), = montage.activations(str(path), [str(img)], names, preprocess=lambda a: a / 255)
    want = dict(zip(HOOKED + ["model.0.bn"], hooked_outputs(module, x, HOOKED + ["model.0.bn"])))
    for name in HOOKED:
        _close(maps[name][0], want[name][0].transpose(1, 2, 0))
    assert maps["model.2"].shape[-1] == 16 and maps["model.2/Split"].shape[-1] == 8   # the block, not its Split
    _close(maps["model.0.act/Sigmoid"][0], 1 / (1 + np.exp(-want["model.0.bn"][0].transpose(1, 2, 0))))

    rows = {r["layer"]: r for r in montage.layers(str(path), maps=True).records}
    assert rows["model.2"] == {"layer": "model.2", "op": "Mul (= model.2.cv2.act)", "output": "(None, 8, 8, 16)"}
    assert rows["model.0.act"]["op"] == "Mul" and rows["model.0.act/Sigmoid"]["op"] == "Sigmoid"
    assert rows["model.2/Split"]["output"] == "(None, 8, 8, 8)" and rows["model.2.cv2.conv"]["op"] == "Conv"
    assert rows["model"] == {"layer": "model", "op": "MaxPool (= model.3)", "output": "(None, 4, 4, 16)"}
    loaded = montage.load_model(str(path))
    chosen = montage.models.prepare(loaded, "all").names      # a pool named twice is drawn once
    assert "model.3" in chosen and "model" not in chosen and len(chosen) == len(set(chosen)) == 7


# ---- graphs with several inputs ----

class ThreeInputs(nn.Module):
    """An audio-model-like signature: (input, state, sr)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, input, state, sr):
        return self.conv(input) * sr.float() + state.mean()


def test_a_graph_with_several_inputs_shows_layers_and_filters(tmp_path):
    pytest.importorskip("onnx", reason="onnx is not installed (the 'onnx' extra)")
    torch.manual_seed(2)
    module, path = ThreeInputs().eval(), tmp_path / "three.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.zeros(1, 3, 16, 16), torch.zeros(2, 1, 8), torch.tensor(16000)), str(path),
                          dynamo=False, input_names=["input", "state", "sr"])
    r = run("layers", "--model", str(path))
    assert r.returncode == 0 and "1 conv layer," in r.stdout.decode(), r.stderr.decode()[-2000:]
    r = run("layers", "--model", str(path), "--maps")
    assert r.returncode == 0 and "(None, 16, 16, 4)" in r.stdout.decode(), r.stderr.decode()[-2000:]
    (name, (kind, op, w)), = _kernels(str(path)).items()
    np.testing.assert_array_equal(w, module.conv.weight.detach().numpy().transpose(2, 3, 1, 0))
    m = montage.filters(str(path), "all", tmp_path / "f", quiet=True)
    assert [b["layer"] for b in m["views"][0]["blocks"]] == [name]
    one_line(run("features", "--model", str(path), "--out", str(tmp_path / "o")), "takes 3 inputs",
             "input [1, 3, 16, 16] float", "state [2, 1, 8] float", "sr [] int64", "layers and filters")
    assert not (tmp_path / "o").exists()


# ---- layers --maps on PyTorch and Keras; Keras subclasses ----

def test_layers_maps_of_a_torch_module():
    torch.manual_seed(0)
    table = montage.layers(Subclassed().eval(), maps=True)
    rows = {r["layer"]: (r["op"], r["output"]) for r in table.records}
    assert rows == {"stem": ("StaticSame", "(None, 112, 112, 6)"),
                    "stem.static_padding": ("ZeroPad2d", "(None, 226, 226, 3)"),
                    "same": ("Same", "(None, 112, 112, 8)"), "std": ("StdConv", "(None, 112, 112, 8)"),
                    "act": ("SiLU", "(None, 112, 112, 8)"), "up": ("Up", "(None, 224, 224, 4)"),
                    "head": ("BatchNorm2d", "(None, 224, 224, 4)")}
    assert "7 layers with 2-D maps" in table


def _keras_models():
    import keras

    class StdConv2D(keras.layers.Conv2D):
        def call(self, x):
            return super().call(x) * 2.0

    class Net(keras.Model):
        def __init__(self):
            super().__init__(name="subnet")
            self.c1, self.c2 = keras.layers.Conv2D(4, 3, name="c1"), StdConv2D(5, 3, name="c2")

        def call(self, x):
            return self.c2(self.c1(x))

    keras.utils.set_random_seed(0)
    i = keras.Input((12, 12, 3), name="image")
    x = StdConv2D(4, 3, padding="same", name="std")(i)
    x = keras.layers.MaxPooling2D(name="pool")(keras.layers.Conv2D(6, 3, name="plain")(x))
    functional = keras.Model(i, x, name="functional")
    extra = keras.Input((4,), name="meta")
    two = keras.Model([i, extra], [x, keras.layers.Dense(2, name="head")(extra)], name="two")
    sub = Net()
    sub(np.zeros((1, 10, 10, 3), np.float32))      # built: by calling it
    return functional, two, sub


def test_keras_subclasses_and_models_montage_cannot_tap(tmp_path):
    keras = pytest.importorskip("keras")
    functional, two, sub = _keras_models()
    table = montage.layers(functional)
    assert [(r["layer"], r["kind"]) for r in table.records] == [("std", "StdConv2D"), ("plain", "Conv2D")]
    np.testing.assert_array_equal(_kernels(functional)["std"][2], np.asarray(functional.get_layer("std").kernel))
    maps = {r["layer"]: (r["op"], r["output"]) for r in montage.layers(functional, maps=True).records}
    assert maps == {"std": ("StdConv2D", "(None, 12, 12, 4)"), "plain": ("Conv2D", "(None, 10, 10, 6)"),
                    "pool": ("MaxPooling2D", "(None, 5, 5, 6)")}
    img = random_images(tmp_path / "in", 1, side=40)[0]
    (_, got), = montage.activations(functional, [str(img)], ["std"])      # the subclass's own call()
    want = keras.Model(functional.input, functional.get_layer("std").output)(read_rgb(img, 12).astype(np.float32)[None])
    np.testing.assert_allclose(got["std"][0], np.asarray(want)[0], rtol=1e-5, atol=1e-4)

    with pytest.raises(montage.MontageError, match=r"takes 2 inputs \(image \(None, 12, 12, 3\); meta \(None, 4\)\)"):
        montage.features(two, [str(img)], tmp_path / "two", quiet=True)
    assert [r["layer"] for r in montage.layers(sub).records] == ["c1", "c2"]      # its kernels: they work
    with pytest.raises(montage.MontageError, match=r"is a subclassed keras.Model \(Net\).*rebuild it functionally") \
            as e:
        montage.features(sub, [str(img)], tmp_path / "sub", quiet=True)
    assert "unbuilt" not in str(e.value) and "\n" not in str(e.value)
    assert "no layer's output shape is known" in montage.layers(sub, maps=True)


def test_layers_maps_from_the_command_line(tmp_path):
    pytest.importorskip("keras")
    from helpers import small_model

    small_model().save(tmp_path / "small.keras")
    r = run("layers", "--model", str(tmp_path / "small.keras"), "--maps")
    out = r.stdout.decode()
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    lines = [x.split() for x in out.splitlines()[3:-1]]
    assert [x[:2] for x in lines] == [["conv_a", "Conv2D"], ["conv_b", "Conv2D"], ["pool", "MaxPooling2D"],
                                      ["conv_c", "Conv2D"]]
    assert "(None, 8, 8, 4)" in out and "4 layers with 2-D maps" in out and "image" not in out
