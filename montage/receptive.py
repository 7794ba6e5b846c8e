"""Receptive fields: which input pixels a unit of a layer's map sees, exactly, from the graph.

Along each spatial axis, unit ``i`` of a map sees input pixels ``start + i * jump`` up to (not
including) ``start + i * jump + size``. The input itself is ``(jump 1, start 0, size 1)``;
a conv or pooling layer with kernel ``k``, stride ``s``, dilation ``d`` and ``p`` pixels of
padding before the map (Keras' ``same``: ``max((out - 1) * s + (k - 1) * d + 1 - n, 0) // 2``;
``valid``: 0; ``causal``: ``(k - 1) * d``) gives ``jump * s``, ``start - p * jump`` and
``size + (k - 1) * d * jump``. Padding and cropping layers shift ``start``; layers that work
pixel by pixel (activations, normalisation over channels, dropout, ...) keep the field;
where branches meet (Add, Concatenate, ...), the field is the smallest box holding every
branch's (their jumps must agree). Nested models are followed inside. Anything else on the
way (upsampling, transpose convs, resizing, reshapes, custom layers) has no such field:
:func:`field` then raises :class:`montage.errors.MontageError` naming the layer.

A box may reach past the image (padding): drawn, those pixels get the gap colour. Clipped to
the image, it is exactly the bounding box of the pixels whose change changes the unit, except
where a dilated window with padding skips a map's border unit while its padded taps lie where
that unit's field would reach the image (a shallow dilated conv): there it holds a few pixels more.

:func:`window`, :func:`shift` and :func:`union` are the rules themselves, for every framework:
PyTorch's and ONNX's readers walk their own graphs with them (see
:mod:`montage.readers.torch.fields`, :mod:`montage.readers.onnx_fields`).
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import MontageError

CONV = {"Conv1D", "Conv2D", "Conv3D", "DepthwiseConv1D", "DepthwiseConv2D", "SeparableConv1D",
        "SeparableConv2D"}
POOL = {"MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D", "AveragePooling2D",
        "AveragePooling3D"}
PIXELWISE = {"Activation", "ReLU", "LeakyReLU", "PReLU", "ELU", "ThresholdedReLU", "Softmax",
             "BatchNormalization", "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D",
             "GaussianNoise", "GaussianDropout", "AlphaDropout", "Rescaling", "Identity", "ActivityRegularization"}
CHANNEL_NORMS = {"LayerNormalization", "Normalization", "UnitNormalization", "GroupNormalization"}
MERGE = {"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate"}


@dataclass(frozen=True)
class Axis:
    """One spatial axis: unit i sees ``[start + i * jump, start + i * jump + size)``; ``n`` units."""

    jump: int
    start: int
    size: int
    n: int | None


@dataclass(frozen=True)
class Field:
    """A map's receptive field along its spatial axes (H, W for images)."""

    axes: tuple

    def box(self, *index):
        """``[top, left, bottom, right]`` (bottom, right exclusive) of the unit at ``index``
        (y, x) in input pixels; may reach past the image."""
        lo = [a.start + i * a.jump for a, i in zip(self.axes, index)]
        return lo + [s + a.size for s, a in zip(lo, self.axes)]

    @property
    def size(self):
        return tuple(a.size for a in self.axes)


def _class(op):
    return type(op).__name__


def _tuple(v, rank):
    return tuple(v) if isinstance(v, (list, tuple)) else (v,) * rank


def start(input_size):
    """The field of the input itself: each pixel sees itself."""
    return Field(tuple(Axis(1, 0, 1, int(n)) for n in input_size))


def window(axis, k, s=1, d=1, before=0, after=0, out=None):
    """The field after a window of ``k`` taps, stride ``s``, dilation ``d``, over the map padded
    with ``before`` and ``after`` pixels; ``out`` units (default: the floor rule)."""
    span = (k - 1) * d + 1
    if out is None and axis.n is not None:
        out = (axis.n + before + after - span) // s + 1
    return Axis(axis.jump * s, axis.start - before * axis.jump, axis.size + (span - 1) * axis.jump, out)


def shift(axis, before, after):
    """The field after ``before``/``after`` pixels of padding (negative: cropping)."""
    return Axis(axis.jump, axis.start - before * axis.jump, axis.size,
                None if axis.n is None else axis.n + before + after)


def _slide(axis, k, s, d, padding):
    """The field after a Keras window of ``k`` taps, stride ``s``, dilation ``d``."""
    n = axis.n
    span = (k - 1) * d + 1
    if padding == "valid":
        return window(axis, k, s, d)
    if padding == "causal":
        return window(axis, k, s, d, (k - 1) * d, out=None if n is None else (n - 1) // s + 1)
    if padding != "same":
        raise ValueError(padding)
    if n is None:
        raise MontageError("the receptive field of a 'same'-padded layer needs a fixed input size")
    out = (n - 1) // s + 1
    return window(axis, k, s, d, max((out - 1) * s + span - n, 0) // 2, out=out)


CONST = "const"     # a tensor of a traced graph that depends on no pixel of the image


class Unknown(str):
    """Why a traced tensor has no field (kept, not raised: it may lie off the way asked for)."""


def join(fields, what):
    """Where several inputs' fields meet in a traced graph (elementwise ops, concatenation)."""
    maps = [f for f in fields if f is not CONST]
    if not maps:
        return CONST
    if len({tuple(x.n for x in f.axes) for f in maps}) > 1 and any(all(x.n == 1 for x in f.axes) for f in maps):
        return Unknown(f"a map pooled to 1 x 1 meets it at {what}: each unit sees the whole image")
    return union(maps, what)


def union(fields, what):
    """The smallest field holding every branch's, where branches meet at ``what``."""
    axes = []
    for parts in zip(*(f.axes for f in fields)):
        if len({a.jump for a in parts}) != 1 or len({a.n for a in parts}) != 1:
            raise MontageError(f"the branches meeting at {what} have different strides or sizes: no single "
                               "receptive field")
        lo = min(a.start for a in parts)
        end = max(a.start + a.size for a in parts)
        axes.append(Axis(parts[0].jump, lo, end - lo, parts[0].n))
    return Field(tuple(axes))


def _through(op, inputs):
    """The field of ``op``'s output from its inputs' fields."""
    cls = _class(op)
    if cls in MERGE:
        return union(inputs, f"{op.name!r} ({cls})")
    if len(inputs) != 1:
        raise MontageError(f"layer {op.name!r} ({cls}) takes {len(inputs)} inputs: its receptive field is unknown")
    (f,) = inputs
    rank = len(f.axes)
    if cls in PIXELWISE:
        return f
    if cls in CHANNEL_NORMS:
        axis = getattr(op, "axis", -1)
        axis = tuple(axis) if isinstance(axis, (list, tuple)) else (axis,)
        if cls == "GroupNormalization" or axis in ((-1,), (rank + 1,)):
            return f
    if cls in CONV or cls in POOL:
        if cls in CONV:
            k = _tuple(op.kernel_size, rank)
            s, d = _tuple(op.strides, rank), _tuple(op.dilation_rate, rank)
        else:
            k = _tuple(op.pool_size, rank)
            s, d = _tuple(op.strides if op.strides is not None else op.pool_size, rank), (1,) * rank
        return Field(tuple(_slide(a, k[i], s[i], d[i], op.padding) for i, a in enumerate(f.axes)))
    if cls in ("ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D", "Cropping1D", "Cropping2D", "Cropping3D"):
        pads = op.padding if cls.startswith("Zero") else op.cropping
        pads = [tuple(p) if isinstance(p, (list, tuple)) else (p, p) for p in
                (pads if isinstance(pads[0], (list, tuple)) or rank > 1 else [pads])]
        sign = 1 if cls.startswith("Zero") else -1
        return Field(tuple(shift(a, sign * p[0], sign * p[1]) for a, p in zip(f.axes, pads)))
    raise MontageError(f"the receptive field of this layer is unknown: {op.name!r} ({cls}) lies on the way "
                       "from the input (upsampling, transpose convs, resizing, reshapes and custom layers have "
                       "no fixed field)")


def _tensor_field(tensor, known, memo):
    """Field of a symbolic tensor, following its history back to tensors in ``known``."""
    if id(tensor) in known:
        return known[id(tensor)]
    if id(tensor) in memo:
        return memo[id(tensor)]
    op, node_index, tensor_index = tensor._keras_history
    if _class(op) == "InputLayer":
        raise MontageError(f"input {op.name!r} is not the model's image input")
    node = op._inbound_nodes[node_index]
    fields = [_tensor_field(t, known, memo) for t in node.input_tensors]
    if hasattr(op, "layers"):       # a nested model: follow it inside
        g = getattr(op, "_functional", None) or op
        inner = {id(t): f for t, f in zip(g.inputs, fields)}
        out = g.outputs[tensor_index] if isinstance(g.outputs, (list, tuple)) else g.outputs
        result = _tensor_field(out, inner, {})
    else:
        result = _through(op, fields)
    memo[id(tensor)] = result
    return result


def field(model, path, input_size):
    """The receptive field of layer ``path`` (``outer/inner`` in nested models) of ``model``.

    Parameters
    ----------
    model : keras.Model
        Functional (or built Sequential) with one image input.
    path : str
        The layer, as :func:`montage.graph.walk` names it.
    input_size : (int, int)
        (height, width) fed to the model.
    """
    graph = getattr(model, "_functional", None) or model
    known = {id(graph.inputs[0]): start(input_size)}
    names = path.split("/")
    owner = graph
    for i, name in enumerate(names):
        layer = owner.get_layer(name)
        if i == len(names) - 1:
            return _tensor_field(layer._inbound_nodes[0].output_tensors[0], known, {})
        # into a nested model: its input's field in the outer graph
        outer = _tensor_field(layer._inbound_nodes[0].input_tensors[0], known, {})
        owner = getattr(layer, "_functional", None) or layer
        known = {id(owner.inputs[0]): outer}
    raise MontageError(f"no layer {path!r}")
