"""Receptive fields of PyTorch modules, from their ``torch.fx`` graph: node by node in the
traced order, with the rules of :mod:`montage.receptive`.

A module's field is that of what a forward hook on it sees (the output of its first call), so a
container (``layer1``, a residual block) has the field of its last node. torch.nn's convs and
poolings (and their functional forms, which is what a subclass with its own ``forward`` traces
to, as EfficientNet's ``Conv2dStaticSamePadding`` does) slide windows; activations, batch norm,
dropout and elementwise arithmetic keep or join fields; ``torch.cat``/``chunk``/``split`` along
channels join or keep them; zero padding shifts them. Anything else on the way from the image
(upsampling, transpose convs, reshapes, slicing, spatial normalisations, padding modes other than
zeros), or a module ``torch.fx`` cannot trace, leaves the field unknown, saying why.
"""

from __future__ import annotations

from ...errors import MontageError
from ...receptive import CONST, Field, join, shift, start, window
from ...receptive import Unknown as _Unknown

# functions, methods and modules whose output pixel (y, x) depends on their inputs' pixel (y, x) only
POINTWISE = {
    "relu", "relu_", "relu6", "leaky_relu", "leaky_relu_", "gelu", "silu", "mish", "hardswish", "hardsigmoid",
    "hardtanh", "hardtanh_", "elu", "selu", "celu", "sigmoid", "sigmoid_", "tanh", "softplus", "clamp", "clamp_",
    "clip", "clamp_min", "clamp_max", "dropout", "dropout2d", "batch_norm", "exp", "log", "abs", "neg", "sqrt",
    "rsqrt", "reciprocal", "erf", "sign", "floor", "round", "square", "contiguous", "float", "half", "double",
    "to", "type_as", "clone", "detach", "local_response_norm", "channel_shuffle",
    "add", "add_", "iadd", "sub", "sub_", "rsub", "mul", "mul_", "imul", "truediv", "div", "div_", "floordiv",
    "maximum", "minimum", "where", "pow", "addcmul", "lerp"}
MODULES = {
    "ReLU", "ReLU6", "LeakyReLU", "PReLU", "RReLU", "ELU", "SELU", "CELU", "GELU", "SiLU", "Mish", "Sigmoid",
    "Tanh", "Hardswish", "Hardsigmoid", "Hardtanh", "Softplus", "Softsign", "Tanhshrink", "Threshold",
    "Identity", "Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout",
    "BatchNorm2d", "SyncBatchNorm", "Softmax2d", "LocalResponseNorm", "ChannelShuffle"}
NO_PIXELS = {"size", "dim", "getattr"}     # x.size(), x.dim(), x.shape: no pixel's value
SIGNATURES = {
    "conv2d": ("input", "weight", "bias", "stride", "padding", "dilation", "groups"),
    "max_pool2d": ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode"),
    "avg_pool2d": ("input", "kernel_size", "stride", "padding", "ceil_mode"),
    "adaptive_avg_pool2d": ("input", "output_size"), "adaptive_max_pool2d": ("input", "output_size"),
    "pad": ("input", "pad", "mode", "value"),
    "cat": ("tensors", "dim"), "concat": ("tensors", "dim"), "concatenate": ("tensors", "dim"),
    "chunk": ("input", "chunks", "dim"), "split": ("input", "split_size", "dim"),
    "softmax": ("input", "dim"), "log_softmax": ("input", "dim"),
}


class _Parts:
    """The tuple ``chunk``/``split`` give: each part has the field of the whole."""

    def __init__(self, field):
        self.field = field


def _pair(v):
    return tuple(int(x) for x in v) if isinstance(v, (list, tuple)) else (int(v), int(v))


def _slide(f, k, s, p, d, ceil_mode=False):
    """A 2-D window (kernel ``k``, stride ``s``, padding ``p``: pairs, or 'same'/'valid') over ``f``."""
    k, s, d = _pair(k), _pair(s if s not in (None, (), []) else k), _pair(d)
    axes = []
    for i, a in enumerate(f.axes):
        span = (k[i] - 1) * d[i] + 1
        if p == "same":
            before, after = (span - 1) // 2, span - 1 - (span - 1) // 2
        else:
            before = after = 0 if p == "valid" else _pair(p)[i]
        out = None
        if ceil_mode and a.n is not None:
            out = -(-(a.n + 2 * before - span) // s[i]) + 1
            out -= (out - 1) * s[i] >= a.n + before      # the last window must start inside
        axes.append(window(a, k[i], s[i], d[i], before, after, out))
    return Field(tuple(axes))


def _adaptive(f, size):
    """An adaptive pooling: a plain window where the output divides the input, else unknown."""
    size = _pair(size) if not isinstance(size, (list, tuple)) else tuple(size)
    axes = []
    for a, o in zip(f.axes, size):
        o = a.n if o is None else int(o)
        if a.n is None or a.n % o:
            raise MontageError(f"an adaptive pooling from {a.n} to {o} has windows of unequal sizes")
        axes.append(window(a, a.n // o, a.n // o, out=o))
    return Field(tuple(axes))



def _bound(name, args, kwargs):
    names = SIGNATURES.get(name, ())
    return {**dict(zip(names, args)), **kwargs}


def _module_step(m, f, what):
    """The field after a leaf module ``m`` of torch.nn."""
    cls = type(m).__name__
    if cls in MODULES or (cls in ("Softmax", "LogSoftmax") and m.dim in (1, -3)):
        return f
    if cls == "Conv2d":
        if m.padding_mode != "zeros":
            raise MontageError(f"{what} pads with {m.padding_mode!r}, not zeros")
        return _slide(f, m.kernel_size, m.stride, m.padding, m.dilation)
    if cls == "MaxPool2d":
        return _slide(f, m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode)
    if cls == "AvgPool2d":
        return _slide(f, m.kernel_size, m.stride, m.padding, 1, m.ceil_mode)
    if cls in ("AdaptiveAvgPool2d", "AdaptiveMaxPool2d"):
        return _adaptive(f, m.output_size)
    if cls in ("ZeroPad2d", "ConstantPad2d"):
        left, right, top, bottom = m.padding
        return Field((shift(f.axes[0], top, bottom), shift(f.axes[1], left, right)))
    raise MontageError(f"{what} lies on the way from the input")


def _function_step(name, what, args, kw, weight_shape):
    """The field after a function or method call ``name``, its arguments' nodes replaced by
    their values; ``weight_shape`` that of a conv's weight."""
    b = _bound(name, args, kw)
    if name in ("cat", "concat", "concatenate"):
        if b.get("dim", 0) not in (1, -3):
            raise MontageError(f"{what} joins along dim {b.get('dim', 0)}, not channels")
        return join(list(b["tensors"]), what)
    tensors = [v for v in list(args) + list(kw.values()) if isinstance(v, Field) or v is CONST]
    if name in POINTWISE or (name in ("softmax", "log_softmax") and b.get("dim") in (1, -3)):
        return join(tensors, what)
    f = b.get("input")
    if not isinstance(f, Field) or any(isinstance(t, Field) for t in tensors if t is not f):
        raise MontageError(f"{what} lies on the way from the input")
    if name in ("chunk", "split") and b.get("dim", 0) in (1, -3):
        return _Parts(f)
    if name == "conv2d" and weight_shape is not None:
        return _slide(f, weight_shape[2:], b.get("stride", 1), b.get("padding", 0), b.get("dilation", 1))
    if name in ("max_pool2d", "avg_pool2d"):
        return _slide(f, b["kernel_size"], b.get("stride"), b.get("padding", 0), b.get("dilation", 1),
                      b.get("ceil_mode", False))
    if name in ("adaptive_avg_pool2d", "adaptive_max_pool2d"):
        return _adaptive(f, b["output_size"])
    if name == "pad" and b.get("mode", "constant") == "constant" and len(b["pad"]) >= 4:
        left, right, top, bottom = b["pad"][:4]
        return Field((shift(f.axes[0], top, bottom), shift(f.axes[1], left, right)))
    raise MontageError(f"{what} lies on the way from the input")


def _name(node):
    t = node.target
    return t if isinstance(t, str) else getattr(t, "__name__", str(t))


def _shape(node):
    meta = node.meta.get("tensor_meta") if hasattr(node, "meta") else None
    return tuple(meta.shape) if meta is not None and hasattr(meta, "shape") else None


def _sized(value, node):
    """``value`` with each axis' unit count as the traced pass found it (exact: ceil modes and all)."""
    shape = _shape(node)
    if not isinstance(value, Field) or shape is None or len(shape) != 2 + len(value.axes):
        return value
    return Field(tuple(type(a)(a.jump, a.start, a.size, int(n)) for a, n in zip(value.axes, shape[2:])))


def _value(node, values, root, size, map_arg):
    """The field (or ``CONST``, :class:`_Parts`, :class:`_Unknown`) of one traced node."""
    if node.op == "placeholder":
        first = next(n for n in node.graph.nodes if n.op == "placeholder") is node
        return start(size) if first else _Unknown(f"it depends on another input, {node.name!r}")
    if node.op == "get_attr":
        return CONST
    ins = [values[n] for n in node.all_input_nodes]
    bad = next((v for v in ins if isinstance(v, _Unknown)), None)
    name = _name(node) if node.op != "call_module" else node.target
    if bad is not None or node.op == "output":
        return bad
    if name in NO_PIXELS or all(v is CONST for v in ins):     # factories (torch.zeros) too
        return CONST
    what = f"{node.name} ({name})"
    if node.op == "call_module":
        f = values[node.args[0]] if node.args else None
        if not isinstance(f, Field):
            raise MontageError(f"{what} takes no map")
        m = root.get_submodule(node.target)
        return _module_step(m, f, f"{what}, a {type(m).__name__}")
    if name == "getitem":
        src = values[node.args[0]]
        if isinstance(src, _Parts):
            return src.field
        raise MontageError(f"{what} takes a slice of a map")
    args = map_arg(node.args, lambda n: values[n])
    kw = map_arg(node.kwargs, lambda n: values[n])
    w = node.args[1] if len(node.args) > 1 else node.kwargs.get("weight")
    return _function_step(name, what, list(args), dict(kw), _shape(w) if hasattr(w, "meta") else None)


def _tracer(fx):
    class Tracer(fx.Tracer):
        """torch.fx's tracer, noting the node each module's first call gives (what a hook sees)."""

        def __init__(self):
            super().__init__()
            self.first = {}

        def call_module(self, m, forward, args, kwargs):
            out = super().call_module(m, forward, args, kwargs)
            try:
                path = self.path_of_module(m)
            except NameError:
                return out
            if isinstance(out, fx.Proxy):
                self.first.setdefault(path, out.node)
            return out
    return Tracer()


def fields(torch, module, size, channels):
    """{module path: its map's field, or why it has none} at input ``size`` (h, w): one
    ``torch.fx`` trace and one pass over a blank image (for every node's exact size)."""
    from torch.fx.passes.shape_prop import ShapeProp

    tracer, training = _tracer(torch.fx), module.training
    try:
        module.eval()
        graph = tracer.trace(module)
        p = next(iter(module.parameters()), None)
        dtype = p.dtype if p is not None and p.dtype.is_floating_point else torch.float32
        with torch.no_grad():
            ShapeProp(torch.fx.GraphModule(tracer.root, graph)).propagate(
                torch.zeros((1, channels, *size), dtype=dtype, device=p.device if p is not None else "cpu"))
    except Exception as e:
        why = _Unknown(f"torch.fx cannot trace {type(module).__name__} ({type(e).__name__}: "
                       f"{str(e).strip().splitlines()[0][:120] if str(e).strip() else ''})")
        return {}, why
    finally:
        module.train(training)
    values = {}
    for node in graph.nodes:
        try:
            values[node] = _sized(_value(node, values, tracer.root, size, torch.fx.node.map_arg), node)
        except MontageError as e:
            values[node] = _Unknown(str(e))
    return {path: values[n] for path, n in tracer.first.items()}, None


def field_of(table, path):
    """The field of module ``path`` from :func:`fields`' ``table`` (its result: table, why not)."""
    found, why = table
    f = found.get(path, why or _Unknown(f"no call of {path!r} was traced"))
    if f is CONST or isinstance(f, _Parts):
        raise MontageError(f"the receptive field of {path!r} is unknown: its output is no single map")
    if isinstance(f, _Unknown):
        raise MontageError(f"the receptive field of {path!r} is unknown: {f}")
    return f
