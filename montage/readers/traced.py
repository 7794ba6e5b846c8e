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
from ..fitting import DEFAULT_SIZE
from ..net import Forward, Model, fed_size, forward_bytes, raw_note, settle, too_small
from ..preprocess import Feed
from .oihw import keras_shape


class Net(Model):
    """A PyTorch or ONNX model as montage's layers, with what its forward pass needs.

    Subclasses provide ``input_geometry()``, ``trace(h, w, c)`` and ``runner(names)`` (see
    each), ``device`` (where it runs, in words), ``fixed_batch`` (a batch size the model
    insists on, or None) and ``POOLS`` (class names of its pooling layers).
    """

    POOLS = ()
    fixed_batch = None
    shape_error = None    # why the layers' output shapes are unknown, where they are
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
            except MontageError as e:
                self._default, self.shape_error = {}, str(e)
        return self._default


def _choose(net, names, maps):
    """The layers to show (:func:`montage.graph.feature_layers`' rules) given which have 2-D maps."""
    def conv_like(layer):
        return is_conv(layer) and layer.name in maps

    names = [names] if isinstance(names, str) else names
    if names is None:
        return find_layers(net, "all", allow=conv_like, what="conv layers with 2-D maps")
    if list(names) == ["all"]:     # a module path that names a pool node too (ONNX) is not drawn twice
        return find_layers(net, "all", allow=lambda x: conv_like(x) or (x.class_name in net.POOLS and x.name in maps
                                                                        and "alias_of" not in x.config),
                           what="conv and pooling layers")
    return find_layers(net, names, allow=lambda x: x.name in maps, what="layers with 2-D maps (conv, pooling, ...)")


def _maps(call):
    """The forward pass in montage's layout: NHWC in, NHWC out, around a channels-first ``call``."""
    def maps(x):
        outs = call(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
        return [np.ascontiguousarray(np.asarray(o, np.float32).transpose(0, 2, 3, 1)) for o in outs]
    return maps


def prepare(loaded, names=None, size=None, batch_size=None, budget=None, note=lambda msg: None,
            feed=Feed()):
    """A :class:`montage.net.Forward` for a :class:`Net`: one traced pass gives every map's shape."""
    net = loaded.model
    geometry = net.input_geometry()
    h, w, c = fed_size(net.name, geometry, size, note)

    def works(side):
        try:
            return min(min(s) for s in net.trace(side, side, c, quick=True).values() if len(s) == 3) > 0
        except (MontageError, ValueError):
            return False
    try:
        traced = net.trace(h, w, c)
    except MontageError:
        why = too_small(net.name, h, w, works, None in geometry[:2])
        if why is None:
            raise
        raise MontageError(why) from None
    maps = {k: (s[1], s[2], s[0]) for k, s in traced.items() if len(s) == 3}   # (C, H, W) -> (H, W, C)
    chosen = _choose(net, names, maps)
    shapes = [maps[n.name] for n in chosen]
    if any(min(shape) <= 0 for shape in shapes):
        raise MontageError(too_small(net.name, h, w, works, None in geometry[:2])
                           or f"a layer's maps are empty at {w} x {h} (width x height): give a larger --size")
    per_image = forward_bytes(shapes, maps.values(), h, w, c)
    if net.fixed_batch:
        if batch_size not in (None, net.fixed_batch):
            note(f"the model takes batches of {net.fixed_batch} only: --batch-size {batch_size} is not used")
        batch_size = net.fixed_batch
    bs, loaded = settle(loaded, c, per_image, budget, batch_size, note, feed,
                        raw_note(loaded.name, c, "no layer of a PyTorch or ONNX model says what it expects"))
    if net.fixed_batch and bs != net.fixed_batch:
        raise MontageError(f"the model takes batches of {net.fixed_batch}, which need {net.fixed_batch * per_image / 1e9:.1f} "
                           "GB for the forward pass: use a smaller --size or fewer layers (--layer)")
    return Forward(loaded, chosen, (h, w, c), shapes, bs, net.device, _maps(net.runner([n.name for n in chosen])),
                   field=lambda name: net.field(name, (h, w)))
