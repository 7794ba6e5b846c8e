"""Keras forward passes: one multi-output model over batches of images, planned before any
image is read (input size, map shapes, memory), its per-channel reduction run on the device."""

from __future__ import annotations

import contextlib
import dataclasses
import re
import weakref

import numpy as np

from ...backend import device, keras
from ...errors import MontageError
from ...graph import all_layers, feature_layers, is_map, slug, walk
from ...net import Forward, fed_size, forward_bytes, raw_note, settle, too_small
from ...preprocess import Feed
from ...receptive import field
from .channels_last import nchw_runs, to_channels_last

_EXTRACTORS = weakref.WeakKeyDictionary()


def _graph_of(model):
    """The functional graph a model runs (a built Sequential keeps one inside), or None."""
    if hasattr(model, "_run_through_graph") and hasattr(model, "_nodes_by_depth"):
        return model
    inner = getattr(model, "_functional", None)
    return inner if inner is not None and hasattr(inner, "_run_through_graph") else None


def _tapped_outputs(model, inputs, wanted):
    """Run ``model``'s graph on symbolic ``inputs``, going into nested models that hold wanted
    layers; returns {id(layer): its output in this one graph}."""
    taps = {}
    inside = {id(m): any(id(x) in wanted for x in all_layers(m)) for m in all_layers(model)
              if hasattr(m, "layers")}

    def run(graph, args):
        def wrap(op):
            nested = _graph_of(op) if inside.get(id(op)) else None

            def call(*a, **kw):
                out = run(nested, a[0] if len(a) == 1 else list(a)) if nested is not None else op(*a, **kw)
                if id(op) in wanted:   # a layer called twice: its first call, as .output gives it
                    taps.setdefault(id(op), out)
                return out
            return call
        return graph._run_through_graph(args, operation_fn=wrap)

    run(_graph_of(model), inputs)
    return taps


def extractor(model, nodes):
    """A Keras model with one output per layer (:class:`montage.graph.Node`), sharing the model's
    weights: one forward pass gives them all, nested models' layers included.

    Cached per model and layer list, so that repeated calls reuse the traced forward pass.
    """
    cache = _EXTRACTORS.setdefault(model, {})
    key = tuple(n.name for n in nodes)
    if key not in cache:
        try:
            top = {id(x) for x in model.layers}
            if all(id(n.layer) in top for n in nodes):
                outputs = [n.layer.output for n in nodes]
            else:   # a layer inside a nested model: its .output belongs to the inner graph only
                taps = _tapped_outputs(model, model.inputs, {id(n.layer) for n in nodes})
                outputs = [taps[id(n.layer)] for n in nodes]
            cache[key] = keras().Model(model.inputs, outputs)
        except Exception as e:
            raise MontageError(f"cannot read activations of {model.name!r} by layer "
                               f"({type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''}): "
                               "use a functional or built Sequential model") from None
    return cache[key]


def _predicted(ext, x):
    """The outputs of one batch, as the backend holds them where it can say so."""
    if keras().backend.backend() == "tensorflow":
        # predict_on_batch copies each output (``tensor.numpy()``): for VGG16's 13 conv layers at
        # batches of 32, 1.7 GB of fresh memory a batch, as long as the pass itself. The tensors'
        # own buffers are read in place instead (np.asarray shares them, read-only).
        ext.make_predict_function()
        return ext.predict_function([(x,)])
    return ext.predict_on_batch(x)


def predict(ext, x):
    """List of float32 arrays (batch, H, W, C), one per output (read-only: they may be the
    framework's own buffers)."""
    out = _predicted(ext, x)
    if not isinstance(out, (list, tuple)):
        out = [out]
    return [np.asarray(o, dtype=np.float32) for o in out]


_SCOPE_OK = re.compile(r"[A-Za-z0-9_.\\/>-]*")


@contextlib.contextmanager
def runnable_names(model):
    """Let layers whose names TensorFlow refuses as scope names (e.g. with spaces) run.

    Keras opens a name scope per layer call; TensorFlow allows only ``[A-Za-z0-9_./>-]``
    there. Such layers are renamed for the duration and given their names back.
    """
    renamed = []
    for layer in all_layers(model):
        if not _SCOPE_OK.fullmatch(layer.name):
            renamed.append((layer, layer.name))
            layer.name = slug(layer.name) + f"__montage{len(renamed)}"
    try:
        yield
    finally:
        for layer, name in renamed:
            layer.name = name


def reducer(ext, channels_first, score):
    """A model from the extractor's input to, per layer, ``score`` (n, C), the flat argmax of
    the map (n, C; row-major y * W + x, first of equals) and its spatial maximum (n, C)."""
    ops = keras().ops
    outputs = []
    for o in ext.outputs:
        if channels_first:
            o = ops.transpose(o, (0, 2, 3, 1))
        flat = keras().layers.Reshape((-1, o.shape[-1]))(o)     # (n, H * W, C); H, W may be free
        # NaN is no response: ignored by the maximum and its position (all NaN: -inf, last)
        seen = ops.where(ops.isnan(flat), float("-inf"), flat)
        peak = ops.max(seen, axis=1)
        arg = ops.cast(ops.argmax(seen, axis=1), "int32")
        s = peak if score == "max" else ops.mean(flat, axis=1)
        outputs += [s, arg, peak]
    return keras().Model(ext.inputs, outputs)


def starts_with_scaling(model):
    """True when the model's first layer rescales or normalises its input (keras.applications'
    MobileNetV3, EfficientNet and ConvNeXt do): raw 0..255 values are then right."""
    L = keras().layers
    for node in walk(model):
        if isinstance(node.layer, L.InputLayer) or hasattr(node.layer, "layers"):
            continue
        return isinstance(node.layer, (L.Rescaling, L.Normalization))
    return False


def channels_first(model):
    """True when the model's image layers take (n, C, H, W) (their ``data_format``)."""
    for node in walk(model):
        fmt = getattr(node.layer, "data_format", None)
        if fmt in ("channels_first", "channels_last"):
            return fmt == "channels_first"
    return False


def input_geometry(model):
    """(height, width, channels) of the model's image input; None for a free size.

    Raises MontageError for a model without a known 4-D input (an unbuilt Sequential).
    """
    try:
        shape = model.input_shape
    except (AttributeError, ValueError):
        shape = None
    if isinstance(shape, list) and len(shape) == 1:
        shape = shape[0]
    if not isinstance(shape, tuple):
        raise MontageError(_no_input_shape(model, shape))
    if len(shape) == 4 and channels_first(model):
        shape = (shape[0], shape[2], shape[3], shape[1])
    if len(shape) != 4 or shape[3] is None:
        raise MontageError(f"model {model.name!r} takes input of shape {shape}, not images (H, W, channels)")
    return shape[1], shape[2], int(shape[3])


def _no_input_shape(model, shape):
    """Why a model without one input shape has no feature maps, and what works."""
    if isinstance(shape, (list, dict)):
        inputs = "; ".join(f"{getattr(t, 'name', '?')} {tuple(t.shape)}" for t in model.inputs)
        return (f"model {model.name!r} takes {len(model.inputs)} inputs ({inputs}): montage feeds one image tensor, so "
                "it shows this model's layers and filters but not its feature maps")
    if _graph_of(model) is None and not isinstance(model, keras().Sequential):
        return (f"model {model.name!r} is a subclassed keras.Model ({type(model).__name__}): its call() is Python "
                "code, not a graph of layers, so the maps inside it cannot be tapped; `montage layers` and `filters` "
                "show its kernels; for feature maps, rebuild it functionally (x = keras.Input((H, W, C)), then its "
                "layers called in order) and pass that model")
    return (f"model {model.name!r} has no input shape (an unbuilt Sequential): start it with keras.Input((H, W, C)), "
            "or call model.build((None, H, W, C)) before saving it")


def map_shapes(model, nodes, height, width, channels):
    """(H, W, C) of each layer's output for one (height, width, channels) input, as Keras computes them."""
    first = channels_first(model)
    shape = (1, channels, height, width) if first else (1, height, width, channels)
    specs = extractor(model, nodes).compute_output_spec(keras().KerasTensor(shape))
    if not isinstance(specs, (list, tuple)):
        specs = [specs]
    shapes = [tuple(int(d) for d in s.shape[1:]) for s in specs]
    return [(s[1], s[2], s[0]) if first and len(s) == 3 else s for s in shapes]


def runnable_layout(loaded):
    """``loaded`` with a channels-first model swapped for its channels-last twin on TensorFlow,
    whose CPU kernels run NCHW only with oneDNN (see :mod:`montage.channels_last`): one path on
    every CPU. A model with no known twin runs as it is where the backend can."""
    if not channels_first(loaded.model) or keras().backend.backend() != "tensorflow":
        return loaded
    try:
        return dataclasses.replace(loaded, model=to_channels_last(loaded.model))
    except MontageError:
        if nchw_runs():
            return loaded
        raise


def _raw_note(loaded, channels):
    if starts_with_scaling(loaded.model):
        return None
    return raw_note(loaded.name, channels, "it has no Rescaling or Normalization layer at its input")


def _runner(model, nodes, first):
    """The forward pass's functions: maps (NHWC in and out) and the device-side reduction."""
    ext = extractor(model, nodes)

    def feed(x):
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2)) if first else x

    def maps(x):
        with runnable_names(model):
            outs = predict(ext, feed(x))
        if first:   # NCHW out, NHWC on: the rest of montage sees one layout
            outs = [np.ascontiguousarray(o.transpose(0, 2, 3, 1)) for o in outs]
        return outs

    reducers = {}

    def reduce(x, score):
        if score not in reducers:
            reducers[score] = reducer(ext, first, score)
        with runnable_names(model):
            outs = [np.asarray(o) for o in reducers[score].predict_on_batch(feed(x))]
        return [tuple(outs[3 * j:3 * j + 3]) for j in range(len(nodes))]
    return maps, reduce


def prepare(loaded, names=None, size=None, batch_size=None, budget=None, note=lambda msg: None,
            feed=Feed()):
    """A :class:`montage.net.Forward` for a Keras model (see :func:`montage.models.prepare`)."""
    loaded = runnable_layout(loaded)
    model = loaded.model
    h, w, c = fed_size(model.name, input_geometry(model), size, note)
    chosen = feature_layers(model, names)

    def sized(side_h, side_w):
        shapes = map_shapes(model, chosen, side_h, side_w, c)
        if any(len(s) == 3 and min(s) <= 0 for s in shapes):
            raise ValueError("a map of size 0")
        return shapes

    def works(side):
        try:
            return bool(sized(side, side))
        except Exception:
            return False

    with runnable_names(model):
        try:
            shapes = sized(h, w)
            all4d = [n for n in walk(model) if is_map(n.layer)]
            per_image = forward_bytes(shapes, map_shapes(model, all4d, h, w, c), h, w, c)
        except MontageError:
            raise
        except Exception:
            why = too_small(model.name, h, w, works, None in input_geometry(model)[:2])
            raise MontageError(why or f"model {model.name!r} cannot take {w} x {h} (width x height) images: "
                               "give another --size") from None
    for node, shape in zip(chosen, shapes):
        if len(shape) != 3:
            raise MontageError(f"layer {node.name!r} outputs shape {shape}, not (height, width, channels) "
                               "maps: choose another layer (montage layers --model ... lists them)")
    bs, loaded = settle(loaded, c, per_image, budget, batch_size, note, feed, _raw_note(loaded, c))
    maps, reduce = _runner(model, chosen, channels_first(model))
    return Forward(loaded, chosen, (h, w, c), shapes, bs, device(), maps, reduce,
                   field=lambda name: field(model, name, (h, w)))
