"""Forward passes of graphs traced at one input size (PyTorch, ONNX): one :class:`montage.net.Forward`
as for Keras, so features, examples and activations work on them unchanged.

A :class:`Net` is a model read from PyTorch or ONNX whose ``layers`` are :class:`montage.net.Layer`
records (kernels in Keras' layout, see :mod:`montage.readers.oihw`), flat, named by their module
path (``layer1.0.conv1``) or, in ONNX, the node's. Its forward pass takes and gives channels-first
arrays; the :class:`montage.net.Forward` it plans takes and gives channels last, like Keras'.
"""

from __future__ import annotations

import numpy as np

from ..errors import MontageError
from ..graph import find_layers, is_conv
from ..images import DEFAULT_SIZE
from ..net import Forward, Model, fed_size, forward_bytes, settle
from .oihw import keras_shape


class Net(Model):
    """A PyTorch or ONNX model as montage's layers, with what its forward pass needs.

    Subclasses provide ``input_geometry()``, ``trace(h, w, c)`` and ``runner(names)`` (see
    each), ``device`` (where it runs, in words), ``fixed_batch`` (a batch size the model
    insists on, or None) and ``POOLS`` (class names of its pooling layers).
    """

    POOLS = ()
    fixed_batch = None
    _default = None

    def field(self, path, size):
        """The receptive field (:class:`montage.receptive.Field`) of layer ``path``'s map at input
        ``size`` (h, w); raises :class:`montage.errors.MontageError` where it is unknown."""
        raise MontageError(f"model {self.name!r}: montage works out no receptive fields for it")

    def default_shapes(self):
        """Every layer's output shape, Keras style, at the model's default input size (once)."""
        if self._default is None:
            try:
                h, w, c = self.input_geometry()
                self._default = {k: keras_shape(v) for k, v in self.trace(h or DEFAULT_SIZE, w or DEFAULT_SIZE, c,
                                                                        quick=True).items()}
            except MontageError:
                self._default = {}
        return self._default


def _choose(net, names, maps):
    """The layers to show (:func:`montage.graph.feature_layers`' rules) given which have 2-D maps."""
    def conv_like(layer):
        return is_conv(layer) and layer.name in maps

    names = [names] if isinstance(names, str) else names
    if names is None:
        return find_layers(net, "all", allow=conv_like, what="conv layers with 2-D maps")
    if list(names) == ["all"]:
        return find_layers(net, "all", allow=lambda x: conv_like(x) or (x.class_name in net.POOLS and x.name in maps),
                           what="conv and pooling layers")
    return find_layers(net, names, allow=lambda x: x.name in maps, what="layers with 2-D maps (conv, pooling, ...)")


def _maps(call):
    """The forward pass in montage's layout: NHWC in, NHWC out, around a channels-first ``call``."""
    def maps(x):
        outs = call(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
        return [np.ascontiguousarray(np.asarray(o, np.float32).transpose(0, 2, 3, 1)) for o in outs]
    return maps


def raw_note(loaded):
    """What to tell a user whose PyTorch or ONNX model gets raw values: no layer says what it expects."""
    return (f"model {loaded.name} is fed raw RGB values 0..255: if it expects otherwise, pass --preprocess "
            "torch (ImageNet mean/std on [0, 1], torchvision's), caffe or tf, or --mean/--std")


def prepare(loaded, names=None, size=None, batch_size=None, budget=None, note=lambda msg: None,
            preprocess=None, mean=None, std=None):
    """A :class:`montage.net.Forward` for a :class:`Net`: one traced pass gives every map's shape."""
    net = loaded.model
    h, w, c = fed_size(net.name, net.input_geometry(), size, note)
    traced = net.trace(h, w, c)
    maps = {k: (s[1], s[2], s[0]) for k, s in traced.items() if len(s) == 3}   # (C, H, W) -> (H, W, C)
    chosen = _choose(net, names, maps)
    shapes = [maps[n.name] for n in chosen]
    for node, shape in zip(chosen, shapes):
        if 0 in shape:
            raise MontageError(f"layer {node.name!r} outputs shape {shape} at this input size: choose another "
                               "layer or a larger --size")
    per_image = forward_bytes(shapes, maps.values(), h, w, c)
    if net.fixed_batch:
        if batch_size not in (None, net.fixed_batch):
            note(f"the model takes batches of {net.fixed_batch} only: --batch-size {batch_size} is not used")
        batch_size = net.fixed_batch
    bs, loaded = settle(loaded, c, per_image, budget, batch_size, note, preprocess, mean, std, raw_note(loaded))
    if net.fixed_batch and bs != net.fixed_batch:
        raise MontageError(f"the model takes batches of {net.fixed_batch}, which need {net.fixed_batch * per_image / 1e9:.1f} "
                           "GB for the forward pass: use a smaller --size or fewer layers (--layer)")
    return Forward(loaded, chosen, (h, w, c), shapes, bs, net.device, _maps(net.runner([n.name for n in chosen])),
                   field=lambda name: net.field(name, (h, w)))
