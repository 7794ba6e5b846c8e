"""Run the forward pass: one multi-output model over batches of images."""

from __future__ import annotations

import contextlib
import re
import weakref
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from .backend import keras
from .errors import MontageError
from .graph import all_layers, slug


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


def predict(ext, x):
    """List of float32 arrays (batch, H, W, C), one per output."""
    out = ext.predict_on_batch(x)
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


def activations(model: Any, images: Any, layers: Sequence[str] | None = None, batch_size: int = 8,
                size: int | None = None, weights: str | None = None,
                preprocess: Any = None) -> Iterator[tuple[list, dict]]:
    """Yield ``(paths, {layer name: float32 array (batch, H, W, C)})`` for images, batch by batch.

    Parameters
    ----------
    model : str or keras.Model
        'vgg16', a model file, or a Keras model.
    images : path, list of paths, folders or globs, or None for the sample photograph
    layers : list of str, optional
        Layer names ('all' adds pooling layers); default every conv layer.
    batch_size : int
    size : int, optional
        Input side for a model that takes any size (default 224).
    weights : str, optional
        As for :func:`montage.models.load_model`.
    preprocess : str or callable, optional
        As for :func:`montage.images.preprocess`; default: a built-in model's own, else none.

    Examples
    --------
    >>> for paths, acts in montage.activations("vgg16", "photos/", ["block1_conv1"]):  # doctest: +SKIP
    ...     print(paths[0], acts["block1_conv1"].shape)
    """
    from . import images as imgs
    from .models import load_model
    from .plan import prepare

    loaded = load_model(model, weights, size=size)
    fwd = prepare(loaded, layers, size, batch_size, preprocess=preprocess)
    for batch, outs in fwd.run(imgs.find_images(images)):
        yield batch.paths, dict(zip(fwd.names, outs))
