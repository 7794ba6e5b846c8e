"""Receptive fields of ONNX graphs: every Conv and pooling node states its kernel, strides,
dilations and pads, so each tensor's field follows from the graph alone, node by node in the
graph's (topological) order, with the rules of :mod:`montage.receptive`.

Elementwise nodes (activations, BatchNormalization, Add, Mul, ... with any constant operands)
keep or join their inputs' fields; Concat and Split along channels join or keep them; Pad in
constant mode shifts them; Shape and Size depend on no pixel. Any other node on the way from
the image (Resize, ConvTranspose, Reshape, Slice, InstanceNormalization, ...) leaves the
field unknown, and the node is named.
"""

from __future__ import annotations

from ..errors import MontageError
from ..receptive import CONST, Field, join, shift, start, window
from ..receptive import Unknown as _Unknown

# nodes whose output pixel (y, x) depends on their inputs' pixel (y, x) only (constant operands aside)
ELEMENTWISE = {
    "Relu", "LeakyRelu", "PRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Elu", "Selu", "Celu",
    "Gelu", "Mish", "Softplus", "Softsign", "ThresholdedRelu", "Clip", "BatchNormalization", "Dropout",
    "Identity", "Cast", "CastLike", "Abs", "Neg", "Exp", "Log", "Sqrt", "Reciprocal", "Erf", "Floor", "Ceil",
    "Round", "Sign", "Not", "IsNaN", "IsInf", "LRN", "QuantizeLinear", "DequantizeLinear", "Shrink",
    "Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean", "Where", "Equal", "Greater", "Less",
    "GreaterOrEqual", "LessOrEqual", "And", "Or", "Xor", "Mod"}
POOLS = {"MaxPool", "AveragePool", "LpPool"}
GLOBAL_POOLS = {"GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool"}
NO_PIXELS = {"Shape", "Size"}


def _attrs(node):
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _consts(graph):
    """{name: dims} of the graph's stored tensors (initializers and Constant nodes)."""
    out = {t.name: list(t.dims) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            out[node.output[0]] = list(node.attribute[0].t.dims)
    return out


def _values(graph, name):
    """The stored tensor ``name`` as a list of numbers, or None."""
    from onnx import numpy_helper

    for t in graph.initializer:
        if t.name == name:
            return numpy_helper.to_array(t).ravel().tolist()
    for node in graph.node:
        if node.op_type == "Constant" and node.output[0] == name and node.attribute[0].name == "value":
            return numpy_helper.to_array(node.attribute[0].t).ravel().tolist()
    return None


def _pads(a, auto, k, s, d, pads, i, rank):
    """(before, after) pixels of padding along spatial axis ``i`` of ``rank``."""
    span = (k - 1) * d + 1
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        if a.n is None:
            raise MontageError("auto_pad SAME needs a fixed input size")
        out = -(-a.n // s)
        total = max((out - 1) * s + span - a.n, 0)
        before = total // 2 if auto == "SAME_UPPER" else total - total // 2
        return before, total - before
    if auto == "VALID":
        return 0, 0
    return (pads[i], pads[i + rank]) if pads else (0, 0)


def _slide(f, node, a, kernel, sizes):
    """A Conv's or pooling node's field from its input's ``f``; ``sizes`` the output's (H, W)
    where shape inference knows them."""
    rank = len(kernel)
    if rank != len(f.axes):
        raise MontageError(f"{node.op_type} node {node.name!r} has a {rank}-D window over a 2-D map")
    auto = a.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    strides, dil = a.get("strides") or [1] * rank, a.get("dilations") or [1] * rank
    axes = []
    for i, ax in enumerate(f.axes):
        k, s, d = int(kernel[i]), int(strides[i]), int(dil[i])
        before, after = _pads(ax, auto, k, s, d, a.get("pads"), i, rank)
        out = sizes[i] if sizes else None
        if out is None and ax.n is not None and a.get("ceil_mode"):
            out = -(-(ax.n + before + after - (k - 1) * d - 1) // s) + 1
            out -= (out - 1) * s >= ax.n + before       # the last window must start inside
        axes.append(window(ax, k, s, d, before, after, out))
    return Field(tuple(axes))



def _step(node, fields, graph, consts, sizes):
    """The field of ``node``'s outputs from its inputs' ``fields``."""
    op, a = node.op_type, _attrs(node)
    known = [f for f in fields if f is not None]
    if op in NO_PIXELS or all(f is CONST for f in known):
        return CONST
    if op in ELEMENTWISE:
        return join(known, f"{node.op_type} node {node.name!r}")
    if op == "Concat" and a.get("axis") in (1, -3):
        return join(known, f"{node.op_type} node {node.name!r}")
    data = fields[0]
    if data is CONST or any(f is not CONST for f in fields[1:] if f is not None):
        raise MontageError(f"{op} node {node.name!r} takes pixels in more than its data input")
    if op == "Conv":
        return _slide(data, node, a, a.get("kernel_shape") or consts[node.input[1]][2:], sizes)
    if op in POOLS:
        return _slide(data, node, a, a["kernel_shape"], sizes)
    if op in GLOBAL_POOLS:
        return Field(tuple(window(x, x.n, out=1) for x in data.axes))
    if op == "Split" and a.get("axis", 0) in (1, -3):
        return data
    if op == "Pad" and a.get("mode", b"constant") in (b"constant", "constant"):
        pads = a.get("pads") or (_values(graph, node.input[1]) if len(node.input) > 1 else None)
        if pads is not None and len(pads) == 8 and len(node.input) < 4:
            return Field(tuple(shift(x, int(pads[2 + i]), int(pads[6 + i])) for i, x in enumerate(data.axes)))
    raise MontageError(f"{op} node {node.name!r} lies on the way from the input (resizing, transpose convs, "
                       "reshapes, slices and spatial normalisations have no fixed field)")


def fields(graph, image, input_size, inferred):
    """{tensor name: its :class:`montage.receptive.Field`, ``CONST``, or why it has none}.

    Parameters
    ----------
    graph : onnx.GraphProto
    image : str
        The image input's name.
    input_size : (int, int)
        (height, width) fed.
    inferred : dict
        {tensor name: (element type, dims or None)} from ONNX's shape inference, for the sizes of
        maps a ``ceil_mode`` pooling gives (may be empty).
    """
    consts = _consts(graph)
    out = {name: CONST for name in consts}
    out[image] = start(input_size)
    for i in graph.input:
        out.setdefault(i.name, _Unknown(f"it depends on another graph input, {i.name!r}"))
    for node in graph.node:
        ins = [out.get(x, _Unknown(f"input {x!r} of node {node.name!r} is unknown")) if x else None
               for x in node.input]
        bad = next((f for f in ins if isinstance(f, _Unknown)), None)
        if bad is None:
            dims = inferred.get(node.output[0], (None, None))[1] if node.output else None
            sizes = dims[2:] if dims and len(dims) == 4 and None not in dims[2:] else None
            try:
                bad = _step(node, ins, graph, consts, sizes)
            except MontageError as e:
                bad = _Unknown(str(e))
        for o in node.output:
            out[o] = bad
    return out


def field_of(table, tensor, path):
    """The field of layer ``path`` (tensor ``tensor``) from :func:`fields`' ``table``."""
    f = table.get(tensor, _Unknown(f"no tensor {tensor!r}"))
    if f is CONST:
        raise MontageError(f"layer {path!r} depends on no pixel of the image: it has no receptive field")
    if isinstance(f, _Unknown):
        raise MontageError(f"the receptive field of {path!r} is unknown: {f}")
    return f
