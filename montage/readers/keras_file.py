"""Conv kernels read straight from model files (zip, JSON, HDF5), without Keras or TensorFlow.

``filters`` and ``layers`` need only arrays that sit in a file, not a framework: VGG16 with
HED's weights or with a ``.weights.h5`` saved from Keras' VGG16, and Keras 3 ``.keras``
files, are read here in a fraction of a second. Legacy ``.h5`` models go through Keras: their
configs do not record each layer's input shape, which the layers table needs. The
result stands in for a Keras model where montage walks layers (:mod:`montage.graph`): layers
with ``name``, ``kernel``, ``weights``, ``count_params()``, ``output.shape`` and, for nested
models, ``layers``.

Only what is understood with certainty is read: any doubt (a class that is not one of Keras'
own layers, a Lambda, a layer whose variables do not have the shapes its config implies, a
weights layout other than Keras 3's) gives None, and the caller loads the model with Keras.
Tests check that both ways give the same output, byte for byte.
"""

from __future__ import annotations

import io
import json
import os
import re
import zipfile
from pathlib import Path

import numpy as np

from ..errors import MontageError
from ..graph import FAMILY
from ..net import Layer, Loaded, Model
from ..untrusted import check_hdf5, check_zip
from .applications import hed_description, hed_weights_file, read_hed_kernels

MODELS = ("Functional", "Sequential")


class Unsure(Exception):
    """The file is not understood with certainty: load it with Keras instead."""


def _snake(name):
    """Keras' ``to_snake_case``, which names each layer's group in a ``.weights.h5``."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _tuple(v, rank):
    return tuple(v) if isinstance(v, (list, tuple)) else (v,) * rank


def conv_output_shape(cls, config, input_shape):
    """A conv layer's output shape, by Keras' own rules (``compute_conv_output_shape`` and
    its transpose counterpart); None where they do not apply with certainty."""
    ks = tuple(config["kernel_size"])
    rank = len(ks)
    last = config.get("data_format", "channels_last") == "channels_last"
    spatial = list(input_shape[1:-1] if last else input_shape[2:])
    cin = input_shape[-1] if last else input_shape[1]
    strides, dil = _tuple(config.get("strides", 1), rank), _tuple(config.get("dilation_rate", 1), rank)
    padding = config.get("padding", "valid")
    family = FAMILY[cls]
    filters = cin * config.get("depth_multiplier", 1) if family == "depthwise" else config["filters"]
    if len(spatial) != rank or padding not in ("valid", "same", "causal"):
        raise Unsure(cls)
    out = []
    for i, d in enumerate(spatial):
        if d is None:
            out.append(None)
        elif family == "transpose":
            if padding not in ("valid", "same") or config.get("output_padding") is not None:
                raise Unsure("transpose with output_padding")
            k = (ks[i] - 1) * dil[i] + 1
            out.append((d - 1) * strides[i] + k + max(k, strides[i]) - k if padding == "valid" else d * strides[i])
        elif padding == "valid":
            n = (d - dil[i] * (ks[i] - 1) - 1) // strides[i] + 1
            if n <= 0:
                raise Unsure("empty output")
            out.append(n)
        else:
            out.append((d - 1) // strides[i] + 1)
    return (input_shape[0], *out, filters) if last else (input_shape[0], filters, *out)


def _expected(cls, config, input_shape):
    """Shapes of a conv layer's variables, in Keras' order, from its config and input shape."""
    ks = tuple(config["kernel_size"])
    last = config.get("data_format", "channels_last") == "channels_last"
    cin = input_shape[-1] if last else input_shape[1]
    family, bias = FAMILY[cls], bool(config.get("use_bias", True))
    if cin is None:
        raise Unsure("unknown input channels")
    if family == "separable":
        dm = config["depth_multiplier"]
        shapes = [(*ks, cin, dm), ((1,) * len(ks)) + (cin * dm, config["filters"])]
        return shapes + [(config["filters"],)] * bias
    if family == "depthwise":
        dm = config["depth_multiplier"]
        return [(*ks, cin, dm)] + [(cin * dm,)] * bias
    if family == "transpose":
        return [(*ks, config["filters"], cin)] + [(config["filters"],)] * bias
    groups = int(config.get("groups", 1) or 1)
    if cin % groups:
        raise Unsure("channels not divisible by groups")
    return [(*ks, cin // groups, config["filters"])] + [(config["filters"],)] * bias


class _Declared:
    """A variable that montage does not draw: its shape and size, its data left unread."""

    def __init__(self, dataset):
        self.shape, self.dtype = tuple(dataset.shape), dataset.dtype
        self.size = int(np.prod(self.shape, dtype=np.int64))


def _variables(group):
    """A layer's variables from its HDF5 group (``vars/0``, ``vars/1``, ...), as datasets not yet read."""
    if group is None:
        return []
    if set(group.keys()) - {"vars"}:     # weights held by sub-objects (wrappers, ...): not a plain layer
        raise Unsure(f"nested state in {group.name}")
    v = group.get("vars")
    if v is None:
        return []
    if sorted(v.keys(), key=int) != [str(i) for i in range(len(v))]:
        raise Unsure(f"unexpected variables in {group.name}")
    return [v[str(i)] for i in range(len(v))]


def _keras_only(obj):
    """Every object serialized inside a config is one of Keras' own (a custom activation,
    initializer or regularizer needs its code, which Keras would refuse without it)."""
    if isinstance(obj, dict):
        if "module" in obj and (not str(obj.get("module") or "").startswith("keras")
                                or obj.get("registered_name") not in (None, obj.get("class_name"))):
            raise Unsure(f"custom object {obj.get('class_name')!r}")
        for v in obj.values():
            _keras_only(v)
    elif isinstance(obj, list):
        for v in obj:
            _keras_only(v)


def _input_shape(entry):
    """The shape a layer was first called on: its first inbound node's tensor (what Keras'
    ``layer.output`` follows), or in a Sequential the shape it was built for."""
    nodes = entry.get("inbound_nodes")
    if nodes:
        arg = nodes[0]["args"][0]
        if not isinstance(arg, dict) or arg.get("class_name") != "__keras_tensor__":
            raise Unsure("an inbound node that is not one tensor")
        return list(arg["config"]["shape"])
    return (entry.get("build_config") or {}).get("input_shape")


def _layer(entry, group):
    cls, config = entry["class_name"], entry["config"]
    if entry.get("module") != "keras.layers" or cls == "Lambda" or "__lambda__" in json.dumps(config):
        raise Unsure(f"layer class {cls}")
    _keras_only(config)
    variables = _variables(group)
    output = None
    if cls not in FAMILY:   # only conv kernels are drawn: the rest is never read
        variables = [_Declared(v) for v in variables]
    else:
        shape = _input_shape(entry)
        built = (entry.get("build_config") or {}).get("input_shape")
        if not shape or not built or config.get("lora_rank") or config.get("quantization_config"):
            raise Unsure(f"{cls} not built, or adapted")
        expected = _expected(cls, config, built)
        if [tuple(v.shape) for v in variables] != expected or \
                any(not np.issubdtype(v.dtype, np.floating) for v in variables):
            raise Unsure(f"variables of {config['name']}")
        variables = [v[()] for v in variables]     # read once their shapes are known to fit the config
        output = conv_output_shape(cls, config, shape)
    return Layer(config["name"], cls, config, variables, output)


def _model(entry, group):
    """A Functional or Sequential model and its layers, as Keras lists and saves them."""
    cls, config = entry["class_name"], entry["config"]
    if cls not in MODELS or not str(entry.get("module", "")).startswith("keras"):
        raise Unsure(f"model class {cls}")
    if group is not None and (set(group.keys()) - {"layers", "vars"} or len(group.get("vars", ()))):
        raise Unsure("model state besides its layers")
    entries = config["layers"]
    if cls == "Sequential":   # Sequential.layers leaves out its InputLayer
        entries = [e for e in entries if e["class_name"] != "InputLayer"]
    held = group.get("layers") if group is not None else None
    used, layers, seen = {}, [], set()
    for e in entries:
        key = _snake(e["class_name"])
        used[key] = used.get(key, -1) + 1
        key = f"{key}_{used[key]}" if used[key] else key     # Keras' _get_unique_name
        seen.add(key)
        sub = held.get(key) if held is not None else None
        layers.append(_model(e, sub) if e["class_name"] in MODELS else _layer(e, sub))
    if held is not None and set(held.keys()) - seen:
        raise Unsure("weights of layers the config does not name")
    return Model(config["name"], cls, layers)


def read_keras(path):
    """A ``.keras`` file (Keras 3) as a :class:`Model`, or None when not understood with certainty."""
    import h5py

    try:
        with zipfile.ZipFile(path) as z:
            check_zip(z, path)
            meta = json.loads(z.read("metadata.json"))
            if not str(meta.get("keras_version", "")).startswith("3."):
                return None
            config = json.loads(z.read("config.json"))
            data = z.read("model.weights.h5")
        with h5py.File(io.BytesIO(data), "r") as f:
            check_hdf5(f, path)
            return _model(config, f)
    except MontageError:
        raise
    except Exception:   # Unsure, or corrupt (zlib, an unknown compression, bad JSON, ...)
        return None     # Keras reads it, or explains in one line why it cannot


def vgg16(kernels, size=224):
    """VGG16 without its head (keras.applications' layer names and order), from
    ``{'block1_conv1': (kernel, bias), ...}``."""
    widths = (64, 128, 256, 512, 512)
    layers, side, cin = [], size, 3
    for b, width in enumerate(widths, start=1):
        for i in range(1, 3 if b < 3 else 4):
            name = f"block{b}_conv{i}"
            kernel, bias = kernels[name]
            if kernel.shape != (3, 3, cin, width) or bias.shape != (width,):
                raise Unsure(name)
            config = {"name": name, "filters": width, "kernel_size": [3, 3], "padding": "same"}
            layers.append(Layer(name, "Conv2D", config, [kernel, bias], (None, side, side, width)))
            cin = width
        layers.append(Layer(f"block{b}_pool", "MaxPooling2D", {}, []))
        side //= 2
    return Model("vgg16", "Functional", layers)


def read_vgg16_weights(path):
    """``{'block1_conv1': (kernel, bias), ...}`` from a ``.weights.h5`` that Keras 3 saved from
    keras.applications' VGG16 without its head, or None when the file is anything else."""
    import h5py

    names = [f"block{b}_conv{i}" for b in range(1, 6) for i in range(1, 3 if b < 3 else 4)]
    convs = ["conv2d"] + [f"conv2d_{k}" for k in range(1, len(names))]   # model.layers order
    expected = {"input_layer", *convs, "max_pooling2d", *(f"max_pooling2d_{k}" for k in range(1, 5))}
    try:
        with h5py.File(path, "r") as f:
            check_hdf5(f, path)
            if set(f.keys()) - {"layers", "vars"} or len(f.get("vars", ())) or set(f["layers"].keys()) != expected:
                return None
            out = {}
            for name, key in zip(names, convs):
                variables = _variables(f["layers"][key])
                if len(variables) != 2:
                    return None
                out[name] = tuple(v[()] for v in variables)
            return out
    except MontageError:
        raise
    except Exception:   # Unsure, or not this layout (groups where datasets should be, ...)
        return None


def load(model, weights):
    """A :class:`montage.net.Loaded` read without Keras, or None where Keras is needed."""
    if not isinstance(model, (str, os.PathLike)):
        return None
    name = str(model)
    if name.lower() == "vgg16" and not os.path.exists(name):
        if weights in (None, "hed"):
            path = hed_weights_file()
            kernels = read_hed_kernels(path)
            info, order, prep = hed_description(path)
        elif isinstance(weights, (str, os.PathLike)) and str(weights).endswith(".weights.h5") \
                and os.path.isfile(weights):
            kernels, order, prep = read_vgg16_weights(weights), "bgr", "keras.applications.vgg16"
            info = {"source": "file", "file": str(Path(weights).resolve())}
        else:
            return None
        try:
            net = vgg16(kernels)
        except (Unsure, KeyError, TypeError):    # TypeError: no kernels (None)
            return None
        return Loaded(net, "vgg16", "keras.applications.VGG16 (include_top=False)", info, order, prep)
    p = Path(name)
    if weights is not None or p.suffix != ".keras" or not p.is_file():
        return None
    net = read_keras(p)
    if net is None:
        return None
    return Loaded(net, p.stem, str(p.resolve()), {"source": "model file", "file": str(p.resolve())}, "rgb", "none")
