"""Receptive fields of PyTorch modules and ONNX graphs against the footprint of each unit (the
input pixels whose change changes it), as tests/test_receptive.py does for Keras."""

import sys

import numpy as np
import pytest

if "tensorflow" in sys.modules:
    sys.modules.setdefault("triton", None)     # torch's triton crashes beside TensorFlow's LLVM
torch = pytest.importorskip("torch", reason="torch is not installed (the 'torch' extra)")
nn, F = torch.nn, torch.nn.functional

import montage  # noqa: E402
from helpers import random_images  # noqa: E402
from montage.errors import MontageError  # noqa: E402
from montage.readers.torch.net import TorchNet  # noqa: E402

SIDE = 23            # odd: 'same' padding splits unevenly
BIG = 1e4            # a max pooling passes a change on where the changed unit becomes the maximum


def _boxes(changed, shape):
    """{(y, x): bounding box of the pixels whose change changed unit (y, x)} from (pixel, H, W)."""
    boxes = {}
    for y in range(shape[0]):
        for x in range(shape[1]):
            pix = np.flatnonzero(changed[:, y, x])
            ys, xs = pix // SIDE, pix % SIDE
            boxes[(y, x)] = [ys.min(), xs.min(), ys.max() + 1, xs.max() + 1] if len(pix) else None
    return boxes


def _footprints(run, channels=1):
    """Footprints of every unit of each map ``run`` gives (a function from NCHW batches to a list
    of NCHW maps): one input pixel at a time moved by +BIG and by -BIG."""
    rng = np.random.default_rng(0)
    base = rng.normal(size=(1, channels, SIDE, SIDE))
    batch = np.repeat(base, 2 * SIDE * SIDE + 1, axis=0)
    for p in range(SIDE * SIDE):
        batch[1 + 2 * p, :, p // SIDE, p % SIDE] += BIG
        batch[2 + 2 * p, :, p // SIDE, p % SIDE] -= BIG
    result = []
    for out in run(batch):
        out = np.asarray(out, np.float64)
        diff = np.abs(out[1:] - out[:1]) > 1e-4 * (1 + np.abs(out[:1]))
        changed = diff.any(axis=1).reshape(SIDE * SIDE, 2, *out.shape[2:]).any(axis=1)
        result.append(_boxes(changed, out.shape[2:]))
    return result


def _check(field, boxes, shape, allow_empty=False):
    assert (field.axes[0].n, field.axes[1].n) == tuple(shape)
    for (y, x), want in boxes.items():
        box = field.box(y, x)
        if want is None:             # a unit that sees only padding sees no pixel
            assert allow_empty, (y, x, box)
            continue
        assert [max(box[0], 0), max(box[1], 0), min(box[2], SIDE), min(box[3], SIDE)] == want, (y, x, box, want)


# ---- PyTorch ----

class SamePadConv(nn.Conv2d):
    """A conv subclass with its own forward (as timm's Conv2dSame): traced into F.pad and F.conv2d."""

    def forward(self, x):
        return F.conv2d(F.pad(x, (1, 0, 2, 1)), self.weight, self.bias, self.stride, 0, self.dilation)


class Res(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.one, self.three = nn.Conv2d(c, 2, 1), nn.Conv2d(c, 2, 3, padding=1)

    def forward(self, x):
        return self.one(x) + 0.5 * self.three(x)


class Join(nn.Module):
    def __init__(self):
        super().__init__()
        self.mix = nn.Conv2d(5, 4, 1)

    def forward(self, g, b):
        h = torch.cat([g, F.leaky_relu(F.max_pool2d(b, 3, 1, 1), 0.5)], dim=1)
        p, q = self.mix(h).chunk(2, dim=1)
        return p - q * 2


class Probe(nn.Module):
    """Strides, dilation, 'same', ceil-mode and padded pooling, a conv subclass, zero padding,
    an adaptive pooling, a residual add, a concat and a channel split; only piecewise-linear
    pointwise ops (a change always passes)."""

    def __init__(self):
        super().__init__()
        self.s2 = nn.Conv2d(1, 3, 3, stride=2, padding=1)
        self.dil = nn.Conv2d(3, 3, (3, 2), dilation=2)
        self.act = nn.LeakyReLU(0.5)
        self.pool = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.avg = nn.AvgPool2d(2, padding=1)
        self.same = nn.Conv2d(3, 2, (3, 4), padding="same")
        self.sub = SamePadConv(3, 2, 3, stride=(1, 2))
        self.pad = nn.ZeroPad2d((2, 1, 1, 0))
        self.res = Res(3)
        self.bn = nn.BatchNorm2d(2)
        self.join = Join()
        self.adapt = nn.AdaptiveAvgPool2d((4, 5))

    def forward(self, x):
        b = self.act(self.dil(self.s2(x)))
        e = self.avg(self.same(self.pool(b)))
        f = self.pad(self.sub(b))
        g = self.bn(self.res(b))
        return e, f, self.join(g, b), self.adapt(b)


LAYERS = ["s2", "dil", "act", "pool", "avg", "same", "sub", "pad", "res", "res.three", "bn", "join", "join.mix",
          "adapt"]


def _probe():
    torch.manual_seed(0)
    m = Probe().double().eval()
    with torch.no_grad():
        m.bn.running_mean.normal_()
        m.bn.running_var.uniform_(0.5, 2)
    return m


def _hooked(module, names):
    def run(x):
        mods, got = dict(module.named_modules()), {}
        hooks = [mods[n].register_forward_hook(lambda m, a, o, n=n: got.setdefault(n, o)) for n in names]
        with torch.no_grad():
            module(torch.from_numpy(x))
        for h in hooks:
            h.remove()
        return [got[n].numpy() for n in names]
    return run


def test_torch_fields_equal_the_footprint_of_every_unit():
    m = _probe()
    net = TorchNet(m, "probe", own=False)
    for name, boxes, out in zip(LAYERS, _footprints(_hooked(m, LAYERS)),
                                _hooked(m, LAYERS)(np.zeros((1, 1, SIDE, SIDE)))):
        _check(net.field(name, (SIDE, SIDE)), boxes, out.shape[2:], allow_empty=name == "pad")
    assert [a.jump for a in net.field("adapt", (SIDE, SIDE)).axes] == [4, 4]


class Unknown(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(3, 4, 3)
        self.up = nn.Upsample(scale_factor=2)
        self.after = nn.Conv2d(4, 4, 3)
        self.se = nn.Conv2d(4, 4, 1)

    def forward(self, x):
        y = self.after(self.up(self.c(x)))
        return y * torch.sigmoid(self.se(F.adaptive_avg_pool2d(y, 1)))


def test_torch_ops_without_a_field_are_named():
    net = TorchNet(Unknown().eval(), "u", own=False)
    assert net.field("c", (16, 16)).size == (3, 3)
    with pytest.raises(MontageError, match="'after' is unknown: .*Upsample"):
        net.field("after", (16, 16))
    with pytest.raises(MontageError, match="torch.fx cannot trace"):
        TorchNet(Untraceable().eval(), "v", own=False).field("c", (8, 8))


class Untraceable(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(3, 2, 3)

    def forward(self, x):
        return self.c(x) if x.sum() > 0 else -self.c(x)      # control flow on values: fx cannot trace it


def test_examples_of_torch_and_onnx_models_cut_the_fields(tmp_path):
    imgs = [str(p) for p in random_images(tmp_path / "in", 3, side=40)]
    torch.manual_seed(1)
    m = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Upsample(scale_factor=2),
                      nn.Conv2d(4, 2, 3)).eval()
    r = montage.examples(m, imgs, tmp_path / "t", layers=["0", "2", "4"], top=2, size=32, quiet=True)
    blocks = r["views"][0]["blocks"]
    assert blocks[1]["field"] == {"jump": [4, 4], "start": [-1, -1], "size": [5, 5]}
    for e in blocks[1]["examples"][0]:
        assert e["box"] == [-1 + 4 * e["y"], -1 + 4 * e["x"], 4 + 4 * e["y"], 4 + 4 * e["x"]]
    assert blocks[2]["field"] is None and all(e["box"] == [0, 0, 32, 32] for e in blocks[2]["examples"][0])
    path = tmp_path / "m.onnx"
    torch.onnx.export(m, torch.zeros(1, 3, 32, 32), str(path), dynamo=False, input_names=["input"])
    r = montage.examples(str(path), imgs, tmp_path / "o", layers=["0"], top=2, quiet=True)
    assert r["views"][0]["blocks"][0]["field"] == {"jump": [2, 2], "start": [-1, -1], "size": [3, 3]}


# ---- ONNX ----

def _onnx_probe():
    """A graph by hand: auto_pad SAME_UPPER/SAME_LOWER, asymmetric pads, dilation, ceil-mode
    pooling, a Pad node, a residual Add, a Concat and a Split along channels; then what has no
    field (a squeeze-excite Mul after a global pooling, a Resize)."""
    onnx = pytest.importorskip("onnx")
    h, T = onnx.helper, onnx.TensorProto
    rng = np.random.default_rng(1)
    inits = []

    def conv(name, x, cin, cout, k, **attrs):
        weight = rng.normal(size=(cout, cin, *k)).astype(np.float32)
        inits.append(onnx.numpy_helper.from_array(weight, f"{name}.weight"))
        return h.make_node("Conv", [x, f"{name}.weight"], [name], name=name, **attrs)

    inits.append(onnx.numpy_helper.from_array(np.array([0, 0, 1, 2, 0, 0, 0, 1], np.int64), "pads"))
    inits.append(onnx.numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales"))
    nodes = [
        conv("a", "x", 1, 3, (3, 3), strides=[2, 2], auto_pad="SAME_UPPER"),
        conv("b", "a", 3, 3, (3, 2), dilations=[2, 2]),
        h.make_node("MaxPool", ["b"], ["pool"], name="pool", kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1),
        h.make_node("AveragePool", ["pool"], ["avg"], name="avg", kernel_shape=[2, 3], strides=[1, 2],
                    auto_pad="SAME_LOWER"),
        h.make_node("Pad", ["b", "pads"], ["pad"], name="pad", mode="constant"),
        conv("c", "pad", 3, 2, (2, 2), strides=[1, 2]),
        conv("one", "b", 3, 2, (1, 1)),
        conv("three", "b", 3, 2, (3, 3), pads=[1, 2, 1, 0]),
        h.make_node("Add", ["one", "three"], ["add"], name="add"),
        h.make_node("LeakyRelu", ["b"], ["leaky"], name="leaky", alpha=0.5),
        h.make_node("Concat", ["add", "leaky"], ["cat"], name="cat", axis=1),
        conv("mix", "cat", 5, 4, (1, 1)),
        h.make_node("Split", ["mix"], ["s0", "s1"], name="split", axis=1, num_outputs=2),
        h.make_node("Sub", ["s0", "s1"], ["sub"], name="sub"),
        h.make_node("GlobalAveragePool", ["sub"], ["gap"], name="gap"),
        h.make_node("Mul", ["sub", "gap"], ["se"], name="se"),
        h.make_node("Resize", ["sub", "", "scales"], ["up"], name="up"),
        conv("after", "up", 2, 2, (3, 3)),
    ]
    outs = [h.make_tensor_value_info(n, T.FLOAT, None) for n in ("avg", "c", "sub", "se", "after")]
    graph = h.make_graph(nodes, "probe", [h.make_tensor_value_info("x", T.FLOAT, [None, 1, SIDE, SIDE])], outs, inits)
    return h.make_model(graph, opset_imports=[h.make_opsetid("", 18)])


def test_onnx_fields_equal_the_footprint_of_every_unit():
    pytest.importorskip("onnxruntime")
    from montage.readers.onnx_model import load

    net = load(_onnx_probe()).model
    names = ["a", "b", "pool", "avg", "pad", "c", "add", "cat", "mix", "sub"]
    run = net.runner(names)
    shapes = [o.shape[2:] for o in run(np.zeros((1, 1, SIDE, SIDE), np.float32))]
    for name, boxes, shape in zip(names, _footprints(lambda x: run(x.astype(np.float32))), shapes):
        _check(net.field(name, (SIDE, SIDE)), boxes, shape, allow_empty=name in ("pad", "c"))
    with pytest.raises(MontageError, match="'se' is unknown: .*whole image"):
        net.field("se", (SIDE, SIDE))
    with pytest.raises(MontageError, match="'after' is unknown: Resize node 'up'"):
        net.field("after", (SIDE, SIDE))
