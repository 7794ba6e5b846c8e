"""Forward passes of PyTorch and ONNX models: the same :class:`Forward` contract as Keras'
(:mod:`montage.plan`), so features, examples and activations work on them unchanged.

A :class:`Net` is a model read from PyTorch or ONNX whose ``layers`` are
:class:`montage.static.Layer` objects (kernels in Keras' layout, see :mod:`montage.oihw`), flat,
named by their module path (``layer1.0.conv1``) or, in ONNX, the node's. Its forward pass
takes and gives channels-first arrays; :meth:`Forward.run` yields channels last, like Keras'.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import static
from .errors import MontageError
from .graph import find_layers, is_conv
from .images import DEFAULT_SIZE


class Net(static.Model):
    """A PyTorch or ONNX model as montage's layers, with what its forward pass needs.

    Subclasses provide ``input_geometry()``, ``trace(h, w, c)`` and ``runner(names)`` (see
    each), ``device`` (where it runs, in words), ``fixed_batch`` (a batch size the model
    insists on, or None) and ``POOLS`` (class names of its pooling layers).
    """

    POOLS = ()
    fixed_batch = None
    _default = None

    def default_shapes(self):
        """Every layer's output shape, Keras style, at the model's default input size (once)."""
        from .oihw import keras_shape

        if self._default is None:
            try:
                h, w, c = self.input_geometry()
                self._default = {k: keras_shape(v) for k, v in self.trace(h or DEFAULT_SIZE, w or DEFAULT_SIZE, c,
                                                                        quick=True).items()}
            except MontageError:
                self._default = {}
        return self._default


@dataclass
class Forward:
    """A ready forward pass of a :class:`Net` (see :class:`montage.plan.Forward`).

    ``call`` takes a float32 batch (n, C, H, W) and gives one array (n, C', H', W') per layer.
    """

    loaded: object
    layers: list
    input_shape: tuple
    shapes: list
    batch_size: int
    call: object = None
    device: str = "cpu"
    channels_first: bool = False

    @property
    def names(self):
        return [n.name for n in self.layers]

    def outputs(self, x):
        """The layers' maps (n, H, W, C) for a preprocessed batch ``x`` (n, H, W, C)."""
        outs = self.call(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
        return [np.ascontiguousarray(np.asarray(o, np.float32).transpose(0, 2, 3, 1)) for o in outs]

    def run(self, paths):
        """Yield ``(batch, outputs)`` as :meth:`montage.plan.Forward.run` does."""
        from . import images as imgs

        h, w, c = self.input_shape
        for batch in imgs.batches(paths, (h, w), self.batch_size, self.loaded.preprocess, c):
            yield batch, self.outputs(batch.x)

    def reduced(self, paths, score):
        """As :meth:`montage.plan.Forward.reduced`; the maps come to the host and are reduced there."""
        for batch, outs in self.run(paths):
            yield batch, reduce(outs, score)


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


def prepare(loaded, names=None, size=None, batch_size=None, budget=None, note=lambda msg: None,
            preprocess=None, mean=None, std=None):
    """:func:`montage.plan.prepare` for a :class:`Net`: one traced pass gives every map's shape."""
    from .plan import fed_size, settle

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
    sizes = sorted(4 * int(np.prod(s)) for s in maps.values())
    per_image = 2 * sum(4 * int(np.prod(s)) for s in shapes) + sum(sizes[-2:]) + 4 * h * w * c
    if net.fixed_batch:
        if batch_size not in (None, net.fixed_batch):
            note(f"the model takes batches of {net.fixed_batch} only: --batch-size {batch_size} is not used")
        batch_size = net.fixed_batch
    bs, loaded = settle(loaded, c, per_image, budget, batch_size, note, preprocess, mean, std)
    if net.fixed_batch and bs != net.fixed_batch:
        raise MontageError(f"the model takes batches of {net.fixed_batch}, which need {net.fixed_batch * per_image / 1e9:.1f} "
                           "GB for the forward pass: use a smaller --size or fewer layers (--layer)")
    return Forward(loaded, chosen, (h, w, c), shapes, bs, net.runner([n.name for n in chosen]), net.device)


def reduce(outs, score):
    """Per layer ``(score, flat argmax, spatial max)``, each (n, C), from maps (n, H, W, C): what
    :func:`montage.topk.reducer` computes on the device for Keras, here on the host."""
    result = []
    for o in outs:
        flat = o.reshape(o.shape[0], -1, o.shape[-1])
        seen = np.where(np.isnan(flat), -np.inf, flat)     # NaN is no response, as on the device
        peak = seen.max(axis=1)
        arg = seen.argmax(axis=1).astype(np.int32)       # the first of equals, row-major y * W + x
        result.append((peak if score == "max" else flat.mean(axis=1, dtype=np.float64).astype(np.float32), arg, peak))
    return result
