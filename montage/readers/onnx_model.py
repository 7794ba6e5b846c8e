"""ONNX models: kernels read from the graph's initializers with ``onnx`` (no runtime for
``layers`` and ``filters``), feature maps from ``onnxruntime`` with the chosen layers' outputs
added as graph outputs, so one session run per batch gives them all (on CUDA where
onnxruntime has its CUDA execution provider).

Every node is a layer, named as :mod:`.onnx_names` says: a module path names what a PyTorch
forward hook on that module would see (``model.0.act`` is a SiLU's ``Mul``, ``model.2`` a
block's output), and the modules around a node are extra layers that share its output. Kernels
are rearranged into Keras' layout (:mod:`montage.readers.oihw`); a kernel that is computed in the
graph rather than stored is not drawn. A graph with several inputs shows its layers and
filters; its feature maps need one image input, and are refused naming the inputs.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np

from ..errors import MontageError
from ..net import Loaded
from ..paths import shown
from .oihw import Output, conv_layer, keras_shape, plain_layer
from .onnx_fields import field_of, fields
from .onnx_names import node_names
from .traced import Net, prepare

__all__ = ["load", "prepare"]   # the reader: prepare plans a traced Net's forward pass

EXTRA = "pip install 'montage[onnx]'"
# why `montage optimize` cannot run on an ONNX graph (montage.models.plan_ascent)
NO_GRADIENT = ("ONNX graphs have no gradients in onnxruntime, which montage runs them with: feature visualisation "
               "needs the model in Keras or PyTorch (e.g. the PyTorch module it was exported from)")


def _onnx():
    try:
        import onnx
    except ImportError:
        raise MontageError(f"ONNX models need the onnx package: {EXTRA}") from None
    return onnx


def _runtime():
    try:
        import onnxruntime
    except ImportError:
        raise MontageError(f"feature maps of ONNX models need onnxruntime: {EXTRA}") from None
    return onnxruntime


def _attrs(node):
    onnx = _onnx()
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _consts(graph):
    """{tensor name: TensorProto} of what the graph stores: initializers, Constant nodes, and
    Identity nodes that pass them on."""
    consts = {t.name: t for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            consts[node.output[0]] = node.attribute[0].t
        elif node.op_type == "Identity" and node.input[0] in consts:
            consts[node.output[0]] = consts[node.input[0]]
    return consts


def _layer(node, path, consts, out):
    """A node as a conv layer (stored kernel) or a plain one."""
    from onnx import numpy_helper

    array = lambda key: numpy_helper.to_array(consts[key])  # noqa: E731
    weight = node.input[1] if len(node.input) > 1 else None
    if node.op_type in ("Conv", "ConvTranspose") and weight in consts:
        a = _attrs(node)
        bias = array(node.input[2]) if len(node.input) > 2 and node.input[2] in consts else None
        config = {"onnx_op": node.op_type, "node": node.name,
                  **{k: list(v) if isinstance(v, (list, tuple)) else v for k, v in a.items()
                     if k in ("strides", "pads", "dilations", "auto_pad", "output_padding")}}
        try:
            return conv_layer(path, array(weight), bias, transpose=node.op_type == "ConvTranspose",
                              groups=int(a.get("group", 1)), config=config, output=out)
        except ValueError:
            pass   # not a kernel montage can draw: listed as a plain node
    held = [array(x) for x in node.input if x in consts and consts[x].data_type in _FLOATS]
    layer = plain_layer(path, node.op_type, held, out)
    layer.config["node"] = node.name
    return layer


def _described(value_info):
    """An input as ``name [1, 3, H, W] float``."""
    t = value_info.type.tensor_type
    dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in t.shape.dim]
    return f"{value_info.name} {dims} {_TYPES.get(t.elem_type, 'type ' + str(t.elem_type))}"


class OnnxNet(Net):
    """An ONNX graph as montage's flat list of layers (one per node, and one per module path that
    names a node's output too: ``config['alias_of']`` names the node)."""

    POOLS = ("MaxPool", "AveragePool")
    _fields = None

    def __init__(self, proto, name):
        self.proto, graph = proto, proto.graph
        consts = _consts(graph)
        self.inputs = [i for i in graph.input if i.name not in consts]
        self.input = self.inputs[0] if len(self.inputs) == 1 else None   # the image, where there is one
        layers, self.outputs = [], {}
        names, aliases = node_names(graph.node, consts)
        for i, (node, path) in enumerate(zip(graph.node, names)):
            if node.output and node.output[0] in consts:    # a constant, not a layer
                continue
            self.outputs[path] = node.output[0]
            layers.append(_layer(node, path, consts, Output(self, path)))
            for alias in aliases.get(i, ()):     # the modules this node ends: a hook on them sees its output
                self.outputs[alias] = node.output[0]
                layers.append(plain_layer(alias, node.op_type, (), Output(self, alias)))
                layers[-1].config.update(alias_of=path, node=node.name)
        super().__init__(name, "ONNX", layers)
        if not any(x.class_name.startswith(("Conv", "Depthwise")) for x in layers):
            raise MontageError(f"ONNX model {name!r} has no Conv or ConvTranspose node with stored weights: "
                               "montage draws conv kernels; export a convolutional network")
        dims = self.input.type.tensor_type.shape.dim if self.input is not None else []
        self._dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in dims]
        self.fixed_batch = self._dims[0] if self._dims else None

    def input_geometry(self):
        """(height, width, channels) from the input's (N, C, H, W); None where the size is free.
        Kernels need none of it: a 1-D or 3-D model's ``layers`` and ``filters`` work, and so do
        those of a graph with several inputs."""
        if self.input is None:
            raise MontageError(f"ONNX model {self.name!r} takes {len(self.inputs)} inputs "
                               f"({'; '.join(_described(i) for i in self.inputs) or 'none'}): montage feeds one "
                               "image tensor, so it shows this model's layers and filters but not its feature maps")
        if len(self._dims) != 4:
            raise MontageError(f"ONNX model {self.name!r} takes input of rank {len(self._dims)}, not images "
                               "(N, C, H, W): its layers and filters can be shown, not feature maps")
        _, c, h, w = self._dims
        if c is None:
            raise MontageError(f"ONNX model {self.name!r} does not fix its input's channels (N, C, H, W)")
        return h, w, int(c)

    @property
    def device(self):
        providers = _providers()
        return f"onnxruntime on {'CUDA' if providers[0].startswith('CUDA') else 'CPU'}"

    def _sized(self, h, w, c, outputs):
        """A copy of the graph fed (batch, c, h, w) and giving ``outputs`` ({tensor name: element type})."""
        onnx = _onnx()
        model = onnx.ModelProto()
        model.CopyFrom(self.proto)
        dims = [] if self.input is None else \
            model.graph.input[[i.name for i in model.graph.input].index(self.input.name)].type.tensor_type.shape.dim
        for d, v in zip(dims[1:], (c, h, w)):
            d.Clear()
            d.dim_value = int(v)
        del model.graph.output[:]
        model.graph.output.extend(onnx.helper.make_tensor_value_info(o, t, None) for o, t in outputs.items())
        return model

    def _inferred(self, h, w, c):
        """{tensor name: (element type, dims or None)} by ONNX's shape inference (no runtime)."""
        onnx = _onnx()
        try:
            inferred = onnx.shape_inference.infer_shapes(self._sized(h, w, c, {}))
        except Exception:
            return {}
        out = {}
        for v in list(inferred.graph.value_info) + list(inferred.graph.output):
            t = v.type.tensor_type
            dims = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim] if t.HasField("shape") else None
            out[v.name] = (t.elem_type, dims)
        return out

    def trace(self, h, w, c, quick=False):
        """{layer: output shape without the batch}: by ONNX's shape inference for ``quick`` (no
        runtime), else from one onnxruntime pass over a blank image with every float output exposed."""
        info = self._inferred(h, w, c)
        if quick:
            known = {layer: tuple(info[t][1][1:]) for layer, t in self.outputs.items()
                     if t in info and info[t][1] and None not in info[t][1][1:]}
            if all(n in known for n, t in self.outputs.items() if info.get(t, (FLOAT,))[0] == FLOAT) \
                    or importlib.util.find_spec("onnxruntime") is None:
                return known
            try:     # shapes that inference leaves open (a Split sized by the data): from one run, where it can
                return {**known, **self.trace(h, w, c)}
            except MontageError:
                return known
        maps = {x.name for x in self.layers if x.class_name.startswith(("Conv", "Depthwise"))
                or x.class_name in self.POOLS}
        names = [n for n, t in self.outputs.items() if info.get(t, (0,))[0] == FLOAT or (t not in info and n in maps)]
        try:
            outs = self.runner(names)(np.zeros((self.fixed_batch or 1, c, h, w), np.float32))
        except Exception as e:
            raise MontageError(f"ONNX model {self.name!r} cannot take a {w} x {h} image of {c} channels "
                               f"({type(e).__name__}: {str(e).strip().splitlines()[0][:160] if str(e).strip() else ''}): "
                               "give another --size") from None
        return {n: tuple(o.shape[1:]) for n, o in zip(names, outs) if isinstance(o, np.ndarray)}

    def default_shapes(self):
        """:meth:`Net.default_shapes`; for a graph with several inputs, what shape inference finds
        at the sizes the graph states."""
        if self._default is None and self.input is None:
            info = self._inferred(None, None, None)
            self._default = {layer: keras_shape(info[t][1][1:]) for layer, t in self.outputs.items()
                             if t in info and info[t][1] and None not in info[t][1][1:]}
        return super().default_shapes()

    def field(self, path, size):
        """The receptive field of layer ``path`` at input ``size`` (h, w), from the graph's
        attributes (see :mod:`montage.readers.onnx_fields`); every node's at once, kept per size."""
        if self._fields is None or self._fields[0] != tuple(size):
            h, w, c = size[0], size[1], self.input_geometry()[2]
            self._fields = (tuple(size), fields(self.proto.graph, self.input.name, (h, w), self._inferred(h, w, c)))
        return field_of(self._fields[1], self.outputs[path], path)

    def _session(self, h, w, c, names):
        ort = _runtime()
        model = self._sized(h, w, c, {self.outputs[n]: FLOAT for n in names})
        options = ort.SessionOptions()
        options.log_severity_level = 3
        return ort.InferenceSession(model.SerializeToString(), options, providers=_providers())

    def runner(self, names):
        """A function from a batch (n, C, H, W) to the named nodes' outputs, from one session run."""
        sessions = {}

        tensors = [self.outputs[n] for n in names]
        unique = list(dict.fromkeys(tensors))      # a module path and its node share one tensor

        def call(x):
            key = x.shape[1:]
            if key not in sessions:        # one session per input size (the graph is sized for it)
                sessions.clear()
                sessions[key] = self._session(x.shape[2], x.shape[3], x.shape[1], names)
            outs = dict(zip(unique, sessions[key].run(unique, {self.input.name: x})))
            return [outs[t] for t in tensors]
        return call


_FLOATS = {1, 10, 11, 16}     # float, float16, double, bfloat16
_TYPES = {1: "float", 2: "uint8", 3: "int8", 6: "int32", 7: "int64", 9: "bool", 10: "float16", 11: "double"}
FLOAT = 1                     # onnx.TensorProto.FLOAT


def _providers():
    ort = _runtime()
    have = ort.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in have] or have


def _external_data(proto, path, unsafe):
    """Load the tensors a graph keeps in other files, only with ``unsafe``: the file names them, and
    any file in the model's folder would become kernels and pixels."""
    from onnx.external_data_helper import _get_all_tensors, load_external_data_for_model, uses_external_data

    files = sorted({e.value for t in _get_all_tensors(proto) if uses_external_data(t)
                    for e in t.external_data if e.key == "location"})
    if not files:
        return
    if not unsafe:
        raise MontageError(f"ONNX model {shown(path)} keeps its weights in other files ({', '.join(files[:3])}"
                           f"{', ...' if len(files) > 3 else ''}), which a model file may name freely: montage reads "
                           "them only with --unsafe; pass it if you trust where the model came from")
    load_external_data_for_model(proto, str(Path(path).resolve().parent))


def load(model, weights=None, seed=0, unsafe=False, size=None):
    """A :class:`montage.net.Loaded` for an ``.onnx`` file or an ``onnx.ModelProto``."""
    if weights is not None:
        raise MontageError(f"--weights {weights}: an ONNX model brings its own weights; leave out --weights")
    onnx = _onnx()
    if not isinstance(model, (str, os.PathLike)):
        return Loaded(OnnxNet(model, model.graph.name or "onnx"), model.graph.name or "onnx", "object",
                      {"source": "as given"}, "rgb", "none", reader="onnx")
    p = Path(model)
    if not p.is_file():
        raise MontageError(f"model {shown(model)!r} is not an existing .onnx file")
    try:
        proto = onnx.load(str(p), load_external_data=False)
        _external_data(proto, p, unsafe)
        onnx.checker.check_model(proto)
    except MontageError:
        raise
    except Exception as e:
        raise MontageError(f"could not read ONNX model {shown(p)} (corrupt, or not ONNX?): {type(e).__name__}: "
                           f"{str(e).strip().splitlines()[0][:160] if str(e).strip() else ''}") from None
    return Loaded(OnnxNet(proto, p.stem), p.stem, str(p.resolve()), {"source": "model file", "file": str(p.resolve())},
                  "rgb", "none", reader="onnx")

