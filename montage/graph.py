"""A model's layers: walk nested models, find layers by path, read kernels (any framework's).

A layer inside a nested model (a base model inside a transfer-learning model, at any
depth) is named by its path, ``outer/inner``; a unique inner name alone finds it too.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

import numpy as np

from .errors import MontageError
from .net import Layer

# Keras class name -> montage's conv family (see conv_family); PyTorch and ONNX convs are read
# as records under these names (montage.readers.oihw). A subclass of any of them (Keras 3's bases
# included) is found through its MRO, with its own class name.
FAMILY = {
    **dict.fromkeys(("Conv1D", "Conv2D", "Conv3D", "BaseConv"), "conv"),
    **dict.fromkeys(("Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose", "BaseConvTranspose"), "transpose"),
    **dict.fromkeys(("DepthwiseConv1D", "DepthwiseConv2D", "BaseDepthwiseConv"), "depthwise"),
    **dict.fromkeys(("SeparableConv1D", "SeparableConv2D", "BaseSeparableConv"), "separable"),
}


@dataclass(frozen=True)
class Node:
    """A layer and its path in the model (``outer/inner`` for nested layers)."""

    name: str
    layer: object


def walk(model, prefix=""):
    """Every layer of ``model`` with its path, a nested model before its own layers."""
    for layer in model.layers:
        path = prefix + layer.name
        yield Node(path, layer)
        if hasattr(layer, "layers") and layer is not model:
            yield from walk(layer, path + "/")


def all_layers(model):
    """Every layer of ``model``, nested ones included, in order."""
    return [n.layer for n in walk(model)]


@dataclass(frozen=True)
class Kernel:
    """One drawable block of a layer's weights.

    ``kind`` is 'filters' (row i = filter i, column j = input channel j of its group,
    cell = ``weights[..., j, i]`` in montage's order) or 'depthwise' (cell k = output
    channel k = input channel ``k // multiplier``). ``weights`` is the kernel in montage's
    order: (kh, kw, in, out) for 'filters', (kh, kw, in, multiplier) for 'depthwise',
    (kd, kh, kw, in, out) for a 3-D convolution.
    """

    name: str
    kind: str
    op: str
    weights: np.ndarray
    stored_shape: tuple
    groups: int = 1


def _classes(layer):
    """The names of the layer's class and its bases (a Keras layer's subclass keeps its kind)."""
    return [c.__name__ for c in type(layer).__mro__]


def class_name(layer):
    """The layer's Keras class name (also for a layer read from a file)."""
    return layer.class_name if isinstance(layer, Layer) else type(layer).__name__


def op_name(layer):
    """The layer's class or op as its framework names it (Keras' Conv2D, torch's Conv2dSame, ONNX's
    Conv); for an ONNX module path that names a node's output, that op and the node."""
    if not isinstance(layer, Layer):
        return type(layer).__name__
    cfg = layer.config
    op = cfg.get("torch_class") or cfg.get("onnx_op") or layer.class_name
    return f"{op} (= {cfg['alias_of']})" if "alias_of" in cfg else op


def conv_family(layer):
    """'conv', 'transpose', 'depthwise', 'separable', or None for a layer without conv kernels."""
    if isinstance(layer, Layer):    # read from a file, no Keras class
        return FAMILY.get(layer.class_name)
    return next((FAMILY[n] for n in _classes(layer) if n in FAMILY), None)


def kernels(node):
    """The drawable kernel blocks of a layer (two for a separable conv, none for other layers)."""
    layer, family = node.layer, conv_family(node.layer)
    op = class_name(layer)
    as2d = lambda w: w[None] if w.ndim == 3 else w  # noqa: E731 (1-D kernels: cells 1 x k)
    if family == "separable":
        dw, pw = (np.asarray(w, np.float32) for w in (layer.depthwise_kernel, layer.pointwise_kernel))
        return [Kernel(node.name + "/depthwise", "depthwise", op, as2d(dw), dw.shape),
                Kernel(node.name + "/pointwise", "filters", op, as2d(pw), pw.shape)]
    if family is None:
        return []
    stored = np.asarray(layer.kernel, np.float32)
    if family == "depthwise":
        return [Kernel(node.name, "depthwise", op, as2d(stored), stored.shape)]
    w = stored
    if family == "transpose":     # Keras stores (..., out, in): rows must be output channels
        w = np.swapaxes(w, -1, -2)
    return [Kernel(node.name, "filters", op, as2d(w), stored.shape, int(getattr(layer, "groups", 1) or 1))]


def is_conv(layer):
    """True for a layer with conv kernels montage draws (every conv kind)."""
    return conv_family(layer) is not None


def conv_layers(model):
    """The model's conv layers of every kind, in order (nested models included)."""
    return [n.layer for n in walk(model) if is_conv(n.layer)]


def find_layers(model, names, allow=is_conv, what="conv layers"):
    """Nodes by path (or unique inner name); 'all' means every layer ``allow`` accepts.

    Unknown names list the choices.
    """
    nodes = list(walk(model))
    ok = [n for n in nodes if allow(n.layer)]
    names = [names] if isinstance(names, str) else list(names)
    if names == ["all"]:
        if not ok:
            raise MontageError(f"model {model.name!r} has no {what}")
        return ok
    by_path = {n.name: n for n in nodes}
    by_leaf = {}
    for n in nodes:
        by_leaf.setdefault(n.layer.name, []).append(n)
    choices = _choices(ok)
    found = []
    for name in names:
        node = by_path.get(name) or (by_leaf[name][0] if len(by_leaf.get(name, [])) == 1 else None)
        if node is None:
            if len(by_leaf.get(name, [])) > 1:
                raise MontageError(f"layer name {name!r} is in several nested models: give its path, one of "
                                   f"{', '.join(n.name for n in by_leaf[name])}")
            raise MontageError(f"unknown layer {name!r}: the {what} are {choices}")
        if not allow(node.layer):
            raise MontageError(f"layer {name!r} is a {class_name(node.layer)}, not one of the {what}: "
                               f"choose from {choices}")
        found.append(node)
    return found


def _choices(nodes, most=40):
    names = [n.name for n in nodes]
    more = f" and {len(names) - most} more (see `montage layers`)" if len(names) > most else ""
    return (", ".join(names[:most]) + more) or "(none)"


def output_rank(layer):
    """Number of dimensions of the layer's output (batch included), or None if unknown."""
    try:
        return len(layer.output.shape)
    except Exception:   # a layer never called in a graph, or with several outputs
        return None


def is_map(layer):
    """True for a layer whose output is a batch of 2-D maps (batch, H, W, C)."""
    return output_rank(layer) == 4 and "InputLayer" not in _classes(layer)


def feature_layers(model, names=None):
    """Layers to show as feature maps: by default every conv-like layer with 2-D maps; 'all' adds
    the pooling layers; by name, any layer whose output is 2-D maps."""
    def is_pool(layer):
        return any(n in ("MaxPooling2D", "AveragePooling2D") for n in _classes(layer))

    def conv_like(layer):
        return is_conv(layer) and is_map(layer)

    names = [names] if isinstance(names, str) else names
    if names is None:
        return find_layers(model, "all", allow=conv_like, what="conv layers with 2-D maps")
    if list(names) == ["all"]:
        return find_layers(model, "all", allow=lambda x: conv_like(x) or is_pool(x),
                           what="conv and pooling layers")
    return find_layers(model, names, allow=is_map, what="layers with 2-D maps (conv, pooling, ...)")


def kernel_of(layer):
    """A conv layer's kernel as Keras stores it, float32."""
    return np.asarray(layer.get_weights()[0], dtype=np.float32)


def output_shape(layer):
    try:
        return tuple(layer.output.shape)
    except Exception:  # a layer never called in a graph has no symbolic output
        return None


def skipped(model):
    """One line naming the layers with weights that montage does not draw, or ''."""
    left = Counter(class_name(n.layer) for n in walk(model)
                   if not is_conv(n.layer) and not hasattr(n.layer, "layers") and n.layer.weights)
    if not left:
        return ""
    kinds = ", ".join(f"{k} x{v}" if v > 1 else k for k, v in left.items())
    n = sum(left.values())
    # said of the class, not the weights: a conv written from scratch (F.conv2d on its own weight) lands here
    return f"not drawn: {n} layer{'s' if n > 1 else ''} with weights whose class is not a convolution ({kinds})"


def slug(name):
    """A file-system-safe form of a layer name."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:80] or "layer"
