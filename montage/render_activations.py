"""Feature maps as arrays (``montage.activations``): the forward pass without pictures."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from . import images as imgs
from .input_options import FedOptions
from .models import load_model, prepare


def activations(model: Any, images: Any, layers: Sequence[str] | None = None, batch_size: int = 8,
                size: int | None = None, weights: str | None = None,
                preprocess: Any = None, mean: Any = None, std: Any = None, bgr: bool = False,
                resize: str = "stretch") -> Iterator[tuple[list, dict]]:
    """Yield ``(paths, {layer name: float32 array (batch, H, W, C)})`` for images, batch by batch.

    Parameters
    ----------
    model : str or keras.Model
        'vgg16', a model file, or a Keras model.
    images : path, list of paths, folders or globs, or None for the sample photograph
    layers : list of str, optional
        Layer names ('all' adds pooling layers); default every conv layer.
    batch_size : int
    size : int or (int, int), optional
        Input side, or (height, width), for a model that takes any size (default 224).
    weights : str, optional
        As for :func:`montage.models.load_model`.
    preprocess, mean, std, bgr, resize
        As for :func:`montage.features`; default: a built-in model's own preprocessing, else
        none, the pictures stretched.

    Examples
    --------
    >>> for paths, acts in montage.activations("vgg16", "photos/", ["block1_conv1"]):  # doctest: +SKIP
    ...     print(paths[0], acts["block1_conv1"].shape)
    """
    feed = FedOptions(model=model, size=size, preprocess=preprocess, mean=mean, std=std, bgr=bgr,
                      resize=resize).feed     # the checks of features' options
    loaded = load_model(model, weights, size=size)
    fwd = prepare(loaded, layers, size, batch_size, feed=feed)
    for batch, outs in fwd.run(imgs.find_images(images)):
        yield batch.paths, dict(zip(fwd.names, outs))
