"""A model's layers: walk nested models, find layers by name, read kernels, the summary table."""

import re

import numpy as np

from .backend import keras
from .errors import MontageError


def all_layers(model):
    """Every layer of ``model``, nested models' layers after the nested model, in order."""
    out = []
    for layer in model.layers:
        out.append(layer)
        if hasattr(layer, "layers") and layer is not model:
            out.extend(all_layers(layer))
    return out


def is_conv(layer):
    return isinstance(layer, keras().layers.Conv2D)


def conv_layers(model):
    """The model's 2-D convolution layers, in order (nested models included)."""
    return [layer for layer in all_layers(model) if is_conv(layer)]


def find_layers(model, names, allow=is_conv, what="conv layers"):
    """Layers by name; 'all' means every layer ``allow`` accepts. Unknown names list the choices."""
    layers = all_layers(model)
    ok = [layer for layer in layers if allow(layer)]
    if isinstance(names, str):
        names = [names]
    names = list(names)
    if names == ["all"]:
        if not ok:
            raise MontageError(f"model {model.name!r} has no {what}")
        return ok
    by_name = {layer.name: layer for layer in layers}
    choices = ", ".join(layer.name for layer in ok) or "(none)"
    found = []
    for n in names:
        layer = by_name.get(n)
        if layer is None:
            raise MontageError(f"unknown layer {n!r}: the {what} are {choices}")
        if not allow(layer):
            raise MontageError(f"layer {n!r} is a {type(layer).__name__}, not one of the {what}: "
                               f"choose from {choices}")
        found.append(layer)
    return found


def feature_layers(model, names=None):
    """Layers to show: every conv layer by default; 'all' adds the pooling layers."""
    pools = (keras().layers.MaxPooling2D, keras().layers.AveragePooling2D)

    def conv_or_pool(layer):
        return is_conv(layer) or isinstance(layer, pools)

    if names is None:
        return find_layers(model, "all")
    if list(names) == ["all"]:
        return find_layers(model, "all", allow=conv_or_pool, what="conv and pooling layers")
    return find_layers(model, names, allow=conv_or_pool, what="conv and pooling layers")


def kernel_of(layer):
    """The layer's kernel as a float32 array (kh, kw, in_channels, filters)."""
    return np.asarray(layer.get_weights()[0], dtype=np.float32)


def output_shape(layer):
    try:
        return tuple(layer.output.shape)
    except Exception:  # a layer never called in a graph has no symbolic output
        return None


def summary(model="vgg16", weights=None) -> str:
    """The tutorial's table: conv layer, kernel shape, output shape, parameters.

    ``model`` is anything :func:`montage.models.load_model` takes (a name, a file, a Keras model).
    """
    from .models import load_model

    model = load_model(model, weights).model
    rows = [("layer", "kernel (h, w, in, out)", "output", "params")]
    total = 0
    for layer in conv_layers(model):
        k = tuple(layer.kernel.shape)
        params = int(layer.count_params())
        total += params
        rows.append((layer.name, str(k), str(output_shape(layer)), f"{params:,}"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
             for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    kernels = sum(int(np.prod(layer.kernel.shape[2:])) for layer in conv_layers(model))
    lines.append(f"{len(rows) - 1} conv layers, {kernels:,} kernels, {total:,} parameters")
    return "\n".join(lines)


def slug(name):
    """A file-system-safe form of a layer name."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:80] or "layer"
