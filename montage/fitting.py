"""Fitting a picture to a model's input: the input size, and stretch, crop or letterbox."""

import numpy as np

DEFAULT_SIZE = 224   # input side for models that take any size (VGG16's own)


def sides(size):
    """(height, width) of ``size``: a side, (height, width), or None (224 square)."""
    if size is None:
        return DEFAULT_SIZE, DEFAULT_SIZE
    return (int(size), int(size)) if np.isscalar(size) else (int(size[0]), int(size[1]))


CROP_PCT = 0.875      # torchvision's and timm's eval crop: 224 out of 256
LETTERBOX_FILL = 114  # YOLO's grey


def fitted(im, h, w, resize):
    """A libvips image scaled (and cropped or padded) to ``h`` x ``w`` as ``resize`` says."""
    if resize == "stretch":
        return im.resize(w / im.width, vscale=h / im.height)
    k = max(h / im.height, w / im.width) / CROP_PCT if resize == "crop" else min(h / im.height, w / im.width)
    nh, nw = max(1, round(im.height * k)), max(1, round(im.width * k))
    if resize == "crop":
        nh, nw = max(nh, h), max(nw, w)
    else:
        nh, nw = min(nh, h), min(nw, w)
    im = im.resize(nw / im.width, vscale=nh / im.height)
    nh, nw = min(im.height, nh), min(im.width, nw)   # resize can round a side to size +- 1
    if resize == "crop":
        top, left = int(round((im.height - h) / 2.0)), int(round((im.width - w) / 2.0))
        return im.crop(max(0, left), max(0, top), min(w, im.width), min(h, im.height))
    return im.crop(0, 0, nw, nh).embed((w - nw) // 2, (h - nh) // 2, w, h, extend="background",
                                       background=[LETTERBOX_FILL] * 3)


def fit_exactly(a, height, width):
    """``a`` (h, w, 3+) cut or edge-padded to exactly (height, width, 3): libvips may round a side."""
    out = np.zeros((height, width, 3), np.uint8)
    h, w = min(height, a.shape[0]), min(width, a.shape[1])
    out[:h, :w] = a[:h, :w, :3]
    if h < height:
        out[h:] = out[h - 1:h]
    if w < width:
        out[:, w:] = out[:, w - 1:w]
    return out
