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
from .graph import all_layers


_EXTRACTORS = weakref.WeakKeyDictionary()


def extractor(model, layers):
    """A Keras model with one output per layer, sharing the model's weights.

    Cached per model and layer list, so that repeated calls reuse the traced forward pass.
    """
    cache = _EXTRACTORS.setdefault(model, {})
    key = tuple(layer.name for layer in layers)
    if key not in cache:
        try:
            cache[key] = keras().Model(model.inputs, [layer.output for layer in layers])
        except Exception as e:
            raise MontageError(f"cannot read activations of {model.name!r} by layer "
                               f"({type(e).__name__}): use a functional or built Sequential model") from None
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
            layer.name = re.sub(r"[^A-Za-z0-9_.-]", "_", layer.name) + f"__montage{len(renamed)}"
    try:
        yield
    finally:
        for layer, name in renamed:
            layer.name = name


def activations(model: Any, images: Any, layers: Sequence[str] | None = None, batch_size: int = 8,
                size: int | None = None, weights: str | None = None) -> Iterator[tuple[list, dict]]:
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

    Examples
    --------
    >>> for paths, acts in montage.activations("vgg16", "photos/", ["block1_conv1"]):  # doctest: +SKIP
    ...     print(paths[0], acts["block1_conv1"].shape)
    """
    from . import images as imgs
    from .models import load_model
    from .images import DEFAULT_SIZE
    from .plan import prepare

    loaded = load_model(model, weights, size=size or DEFAULT_SIZE)
    fwd = prepare(loaded, layers, size, batch_size)
    for batch, outs in fwd.run(imgs.find_images(images)):
        yield batch.paths, dict(zip(fwd.names, outs))
