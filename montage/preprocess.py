"""Model input from pictures: channel count, and the ImageNet conventions (caffe, tf, torch) or a
mean and std, as each model was trained."""

import numpy as np

from .backend import keras
from .errors import MontageError

# ITU-R BT.601 luma, as PIL's convert("L") and Keras' load_img(color_mode="grayscale")
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def to_channels(rgb, channels):
    """RGB uint8 images (..., 3) as float32 with the model's channel count.

    1: luma; 3: as is; 4: RGB plus an opaque alpha of 255.
    """
    x = rgb.astype(np.float32)
    if channels == 1:
        return np.round(x @ LUMA)[..., None]
    if channels == 4:
        return np.concatenate([x, np.full(x.shape[:-1] + (1,), 255, np.float32)], axis=-1)
    return x


PREPROCESS_MODES = ("caffe", "tf", "torch", "none")
# ImageNet's mean and std on [0, 1]: torchvision's, and keras.applications' mode 'torch'
TORCH_MEAN = np.array([0.485, 0.456, 0.406], np.float32)


TORCH_STD = np.array([0.229, 0.224, 0.225], np.float32)


def preprocess(batch, mode, channels=3):
    """Model input (float32, the model's channel count) from RGB uint8 images (n, H, W, 3).

    ``mode``: 'none' (values 0..255); 'caffe', 'tf' or 'torch' (the ImageNet conventions of
    ``keras.applications.imagenet_utils``: BGR minus the mean, [-1, 1], or mean/std on
    [0, 1]); 'keras.applications.MODULE' (that module's own ``preprocess_input``); a dict
    ``{'mean': (r, g, b), 'std': (r, g, b)}`` on 0..255 values; or a callable taking and
    returning an array (n, H, W, C).
    """
    x = to_channels(batch, channels)
    if callable(mode):
        x = mode(x)
    elif isinstance(mode, dict):
        x = (x - np.asarray(mode.get("mean", 0.0), np.float32)) / np.asarray(mode.get("std", 1.0), np.float32)
    elif mode == "torch":   # numpy, so that PyTorch models never load Keras; the same float32 steps
        x = (x / np.float32(255.0) - TORCH_MEAN) / TORCH_STD
    elif mode in ("caffe", "tf"):
        x = keras().applications.imagenet_utils.preprocess_input(x, mode=mode)
    elif str(mode).startswith("keras.applications."):
        x = getattr(keras().applications, mode.rsplit(".", 1)[1]).preprocess_input(x)
    elif mode != "none":
        raise MontageError(f"unknown preprocessing {mode!r}: choose one of {', '.join(PREPROCESS_MODES)}")
    return np.ascontiguousarray(np.asarray(x, np.float32))


def describe_preprocess(mode):
    """What :func:`preprocess` does, for the manifest."""
    if callable(mode):
        return f"callable {getattr(mode, '__qualname__', type(mode).__name__)}"
    if isinstance(mode, dict):
        return {k: [float(v) for v in np.atleast_1d(mode[k])] for k in ("mean", "std") if k in mode}
    return mode
