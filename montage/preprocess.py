"""Model input from pictures: channel count, channel order, and the ImageNet conventions (caffe,
tf, torch) or a mean and std, as each model was trained.

Every step is numpy, in float32, in the order ``keras.applications.imagenet_utils`` takes them
(so a PyTorch or ONNX model never loads Keras, and the values are Keras' own to the bit).
"""

from dataclasses import dataclass

import numpy as np

from .backend import keras
from .errors import MontageError

# ITU-R BT.601 luma, as PIL's convert("L") and Keras' load_img(color_mode="grayscale")
LUMA = np.array([0.299, 0.587, 0.114], np.float32)

PREPROCESS_MODES = ("caffe", "tf", "torch", "none")
RESIZE_MODES = ("stretch", "crop", "letterbox")
# ImageNet's mean and std on [0, 1]: torchvision's, and keras.applications' mode 'torch'
TORCH_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
TORCH_STD = np.array([0.229, 0.224, 0.225], np.float32)
# ImageNet's BGR means on 0..255: keras.applications' mode 'caffe'
CAFFE_MEAN = np.array([103.939, 116.779, 123.68], np.float32)


@dataclass(frozen=True)
class Feed:
    """How pictures become a model's input, as the user asked (None: the model's own).

    Attributes
    ----------
    preprocess : str or callable, optional
        One of :data:`PREPROCESS_MODES`, 'keras.applications.MODULE', or a callable.
    mean, std : tuple of float, optional
        On 0..255 values: one number (every channel) or one per channel, in the model's order.
    bgr : bool
        Reverse the colour channels (RGB -> BGR) before anything else.
    resize : str
        How a picture is fitted to the input: one of :data:`RESIZE_MODES`.
    """

    preprocess: object = None
    mean: tuple = None
    std: tuple = None
    bgr: bool = False
    resize: str = "stretch"


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


def mode_problem(mode, channels, bgr=False):
    """Why ``mode`` cannot feed a model of ``channels`` channels (with ``bgr``), or None."""
    if mode in ("caffe", "torch") and channels != 3:
        fit = {1: "for a grey model trained on [-1, 1] give --mean 127.5 --std 127.5, on [0, 1] --std 255",
               4: "give --mean/--std with four numbers"}.get(channels, "give --mean/--std")
        return (f"--preprocess {mode} is ImageNet's RGB means, for 3 channels; the model takes {channels}: "
                f"{fit} (or --preprocess tf, [-1, 1])")
    if bgr and (mode == "caffe" or str(mode).startswith("keras.applications.")):
        return (f"--bgr with {mode} preprocessing: it sets the channel order itself (caffe already feeds "
                "BGR): leave out --bgr, or give --mean/--std")
    if bgr and channels == 1:
        return "--bgr reverses colour channels: the model takes 1 (grey); leave it out"
    return None


def per_channel(values, channels, name):
    """``values`` (one number, or one per channel) as float32, or one line if their count does not
    fit ``channels``."""
    v = np.asarray(values, np.float32).reshape(-1)
    if v.size not in (1, channels):
        raise MontageError(f"--{name} has {v.size} numbers but the model takes {channels} channel(s): give one "
                           f"number (every channel) or {channels}")
    return v


def preprocess(batch, mode, channels=3, bgr=False):
    """Model input (float32, the model's channel count) from RGB uint8 images (n, H, W, 3).

    ``mode``: 'none' (values 0..255); 'caffe', 'tf' or 'torch' (the ImageNet conventions of
    ``keras.applications.imagenet_utils``: BGR minus the mean, [-1, 1], or mean/std on
    [0, 1]); 'keras.applications.MODULE' (that module's own ``preprocess_input``); a dict
    ``{'mean': ..., 'std': ...}`` on 0..255 values (one number or one per channel); or a
    callable taking and returning an array (n, H, W, C). ``bgr`` reverses the colour
    channels first (the alpha of 4 channels stays last).
    """
    x = to_channels(batch, channels)
    if bgr:
        x = np.concatenate([x[..., 2::-1], x[..., 3:]], axis=-1)
    why = mode_problem(None if callable(mode) or isinstance(mode, dict) else mode, channels, bgr)
    if why:
        raise MontageError(why)
    if callable(mode):
        x = mode(x)
    elif isinstance(mode, dict):
        x = (x - per_channel(mode.get("mean", 0.0), channels, "mean")) / per_channel(mode.get("std", 1.0),
                                                                                      channels, "std")
    elif mode == "torch":
        mean, std = (TORCH_MEAN[::-1], TORCH_STD[::-1]) if bgr else (TORCH_MEAN, TORCH_STD)
        x = (x / np.float32(255.0) - mean) / std
    elif mode == "tf":
        x = x / np.float32(127.5) - np.float32(1.0)
    elif mode == "caffe":
        x = x[..., ::-1] - CAFFE_MEAN
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
