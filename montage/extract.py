"""One multi-output model, batched forward passes: activations per batch."""

import weakref

import numpy as np

from .errors import MontageError


def feature_layers(model, names=None):
    """Layers to show: every conv layer by default; 'all' adds the pooling layers."""
    import keras

    from .models import find_layers, is_conv

    def conv_or_pool(layer):
        return is_conv(layer) or isinstance(layer, (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D))

    if names is None:
        return find_layers(model, "all")
    if list(names) == ["all"]:
        return find_layers(model, "all", allow=conv_or_pool, what="conv and pooling layers")
    return find_layers(model, names, allow=conv_or_pool, what="conv and pooling layers")


_EXTRACTORS = weakref.WeakKeyDictionary()


def extractor(model, layers):
    """A Keras model with one output per layer, sharing the model's weights.

    Cached per model and layer list, so that repeated calls reuse the traced forward pass.
    """
    import keras

    cache = _EXTRACTORS.setdefault(model, {})
    key = tuple(layer.name for layer in layers)
    if key not in cache:
        try:
            cache[key] = keras.Model(model.inputs, [layer.output for layer in layers])
        except Exception as e:
            raise MontageError(f"cannot read activations of {model.name!r} by layer "
                               f"({type(e).__name__}): use a functional or built Sequential model") from None
    return cache[key]


def device():
    """Where Keras runs the forward pass, in words (e.g. 'tensorflow on GPU:0')."""
    import keras

    backend = keras.backend.backend()
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_logical_devices("GPU")
            return f"tensorflow on {gpus[0].name if gpus else 'CPU'}"
        if backend == "jax":
            import jax

            return f"jax on {jax.devices()[0]}"
        if backend == "torch":
            import torch

            return f"torch on {'cuda:' + torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu'}"
    except Exception:
        pass
    return backend


def predict(ext, x):
    """List of float32 arrays (batch, H, W, C), one per output."""
    out = ext.predict_on_batch(x)
    if not isinstance(out, (list, tuple)):
        out = [out]
    return [np.asarray(o, dtype=np.float32) for o in out]


def default_batch_size(layers, size, budget_bytes):
    """Images per batch so that activations (x3 for the model's own buffers) fit ``budget_bytes``."""
    per_image = 0
    for layer in layers:
        shape = layer.output.shape
        h, w, c = (size if d is None else d for d in shape[1:4])
        per_image += int(h) * int(w) * int(c) * 4
    return int(max(1, min(32, budget_bytes // max(1, 3 * per_image))))


def activations(model, images, layers=None, batch_size=8, size=None, weights=None):
    """Yield ``(paths, {layer name: array (batch, H, W, C)})`` for images, batch by batch.

    Parameters
    ----------
    model : str or keras.Model
        'vgg16', a model file, or a Keras model.
    images : path, list of paths, folders or globs, or None for the sample photograph
    layers : list of str, optional
        Layer names ('all' adds pooling layers); default every conv layer.
    batch_size : int
    size : int, optional
        Input side (default: the model's, 224 for vgg16).

    Examples
    --------
    >>> for paths, acts in montage.activations("vgg16", "photos/", ["block1_conv1"]):  # doctest: +SKIP
    ...     print(paths[0], acts["block1_conv1"].shape)
    """
    from . import images as imgs
    from .models import load_model

    loaded = load_model(model, weights, size=size or 224)
    chosen = feature_layers(loaded.model, layers)
    ext = extractor(loaded.model, chosen)
    side = size or input_side(loaded.model)
    paths = imgs.find_images(images)
    for batch in imgs.batches(paths, side, batch_size, loaded.preprocess):
        outs = predict(ext, batch.x)
        yield batch.paths, {layer.name: o for layer, o in zip(chosen, outs)}


def input_side(model, default=224):
    shape = model.input_shape
    if isinstance(shape, list):
        shape = shape[0]
    side = shape[1] if len(shape) == 4 else None
    return int(side) if side else default
