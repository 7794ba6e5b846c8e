"""Feature visualisation's method, framework-free: the picture's parameters, the random
transformations of each step, the model's input and the objective, written once against a tiny
array namespace (``ops``: ``einsum``, ``take``, ``reshape``, ``sigmoid``) that numpy, Keras
(``keras.ops``, every backend) and PyTorch all provide, so one formula runs under every
framework's gradients and, in numpy, is the reference the tests hold them to.

Defaults are Lucid's (``lucid.optvis``) and its PyTorch port Lucent's:

- **fourier** (default): the picture is a real 2-D spectrum per colour channel, each frequency
  scaled by 1 / max(frequency, 1 / side) (so noise starts pink, not white) and by sqrt(h * w),
  brought back by the inverse real FFT written as two matrix products (exact, any side, every
  backend) and divided by 4; its three channels are mixed by ImageNet's colour correlation
  (the square root from its SVD, columns scaled to unit norm at most); a sigmoid maps it to 0..1.
  Initial spectrum: normal, sd 0.01. **pixel**: plain pixels through a sigmoid, no decorrelation.
- **transforms** each step (one draw for the whole batch, from the seed and the step): Lucid's
  ``standard_transforms`` (pad 12 with grey, jitter 8, scale 0.90 ... 1.10, rotate -10 ... 10
  degrees, jitter 4) composed into one bilinear resampling at the model's input size, grey
  (0.5) beyond the picture.
- Adam, learning rate 0.05 (see :mod:`montage.ascent`).
"""

from __future__ import annotations

import types
from dataclasses import dataclass

import numpy as np

from .preprocess import LUMA

COLOUR_SVD_SQRT = np.array([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], np.float32)
COLOUR = COLOUR_SVD_SQRT / np.max(np.linalg.norm(COLOUR_SVD_SQRT, axis=0))
SD = 0.01
DECAY = 1.0
PAD, JITTERS = 12, (8, 4)
SCALES = tuple(1 + (i - 5) / 50 for i in range(11))
ANGLES = tuple(range(-10, 11)) + (0,) * 5      # Lucid's list: no rotation a little more often
PARAMS = ("fourier", "pixel")
OBJECTIVES = ("channel", "neuron")
_INIT, _STEP = 0, 1      # streams of one seed: a channel's start, a step's transformation


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


NUMPY = types.SimpleNamespace(einsum=np.einsum, take=np.take, reshape=np.reshape, sigmoid=_sigmoid)


@dataclass(frozen=True)
class Method:
    """What turns noise into a picture: parameterisation, objective, steps, learning rate,
    transformations on or off, seed."""

    param: str = "fourier"
    objective: str = "channel"
    steps: int = 256
    lr: float = 0.05
    transforms: bool = True
    seed: int = 0

    def describe(self):
        d = {"param": self.param, "objective": self.objective, "steps": self.steps, "lr": self.lr,
             "seed": self.seed, "optimizer": "adam (0.9, 0.999, 1e-8)"}
        if self.param == "fourier":
            d.update(decay_power=DECAY, init_sd=SD, colour="imagenet decorrelated")
        else:
            d.update(init_sd=SD, colour="rgb")
        d["transforms"] = ({"pad": PAD, "jitter": list(JITTERS), "scales": [round(s, 2) for s in SCALES],
                            "degrees": [min(ANGLES), max(ANGLES)], "fill": 0.5} if self.transforms else None)
        return d


# ---- the picture ----

def fourier_basis(h, w):
    """(Y (h, 2, h), X (2F, 2, w), scale (h, 2F)): ``image = Y . (X . (p * scale))`` is
    ``numpy.fft.irfft2(p[..., :F] + 1j * p[..., F:], s=(h, w))`` on a spectrum ``p`` (..., h, 2F)
    times sqrt(h * w) / max(frequency, 1 / max(h, w)) ** DECAY (F = w // 2 + 1)."""
    F = w // 2 + 1
    v, x = np.arange(F)[:, None], np.arange(w)[None, :]
    twice = np.where((v == 0) | ((w % 2 == 0) & (v == w // 2)), 1.0, 2.0)   # the half spectrum's mirror
    ax = 2 * np.pi * v * x / w
    fxr, fxi = twice * np.cos(ax) / w, twice * np.sin(ax) / w             # (F, w)
    X = np.stack([np.concatenate([fxr, -fxi]), np.concatenate([fxi, fxr])], axis=1)   # (2F, 2, w)
    ay = 2 * np.pi * np.arange(h)[:, None] * np.arange(h)[None, :] / h     # (y, u)
    Y = np.stack([np.cos(ay) / h, -np.sin(ay) / h], axis=1)              # (h, 2, h)
    fy, fx = np.fft.fftfreq(h)[:, None], np.fft.rfftfreq(w)[None, :]
    scale = np.sqrt(h * w) / np.maximum(np.sqrt(fy * fy + fx * fx), 1.0 / max(h, w)) ** DECAY
    return Y.astype(np.float32), X.astype(np.float32), np.concatenate([scale, scale], 1).astype(np.float32)


def start(method, channels, h, w):
    """The parameters (n, 3, h, 2F) or (n, 3, h, w) float32 for ``channels``: each channel's
    from its own stream of the seed (the same whatever shares its batch)."""
    shape = (3, h, 2 * (w // 2 + 1)) if method.param == "fourier" else (3, h, w)
    return np.stack([np.random.default_rng([method.seed, _INIT, int(c)]).normal(0.0, SD, shape)
                     for c in channels]).astype(np.float32)


def constants(method, h, w):
    """The arrays :func:`draw` needs besides the parameters."""
    if method.param != "fourier":
        return {}
    Y, X, scale = fourier_basis(h, w)
    return {"Y": Y, "X": X, "scale": scale, "colour": COLOUR.astype(np.float32)}


def draw(ops, p, a):
    """Parameters -> pictures (n, h, w, 3) in 0..1."""
    if "Y" not in a:
        return ops.sigmoid(ops.einsum("ncyx->nyxc", p))
    q = ops.einsum("ncuv,vkx->nckux", p * a["scale"], a["X"])
    image = ops.einsum("yku,nckux->ncyx", a["Y"], q) / 4.0
    return ops.sigmoid(ops.einsum("dc,ncyx->nyxd", a["colour"], image))


def pictures(method, p, h, w):
    """The final pictures as drawn, (n, h, w, 3) uint8 RGB (numpy)."""
    rgb = draw(NUMPY, p, constants(method, h, w))
    return np.asarray(np.round(np.clip(rgb, 0.0, 1.0) * 255.0), np.uint8)


# ---- the transformations ----

def resampling(h, w, shift=(0.0, 0.0), scale=1.0, degrees=0.0):
    """Bilinear resampling of an h x w picture, turned by ``degrees`` and scaled by ``scale``
    about its centre, then shifted: {"idx": (h*w, 4) int32, "wt": (h*w, 4), "grey": (h*w,)};
    corners outside the picture give their weight to grey."""
    y, x = np.mgrid[0:h, 0:w].reshape(2, -1).astype(np.float64)
    cy, cx = (h - 1) / 2, (w - 1) / 2
    t = np.deg2rad(degrees)
    dy, dx = (y - cy) / scale, (x - cx) / scale
    sy = cy + np.cos(t) * dy + np.sin(t) * dx - shift[0]
    sx = cx - np.sin(t) * dy + np.cos(t) * dx - shift[1]
    y0, x0 = np.floor(sy), np.floor(sx)
    fy, fx = sy - y0, sx - x0
    idx, wt = [], []
    for oy, ox, weight in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx), (1, 0, fy * (1 - fx)), (1, 1, fy * fx)):
        yy, xx = y0 + oy, x0 + ox
        inside = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
        idx.append(np.where(inside, np.clip(yy, 0, h - 1) * w + np.clip(xx, 0, w - 1), 0))
        wt.append(np.where(inside, weight, 0.0))
    wt = np.stack(wt, 1)
    return {"idx": np.stack(idx, 1).astype(np.int32), "wt": wt.astype(np.float32),
            "grey": (0.5 * (1.0 - wt.sum(1))).astype(np.float32)}


def step_transform(method, step, h, w):
    """Step ``step``'s transformation (the same for every channel): Lucid's pad, jitters, scale and
    rotation as one resampling; the identity where transforms are off."""
    if not method.transforms:
        return resampling(h, w)
    rng = np.random.default_rng([method.seed, _STEP, int(step)])
    shift = sum(rng.integers(0, j + 1, size=2) - j / 2 for j in JITTERS)
    shift = np.clip(shift, -PAD, PAD)
    return resampling(h, w, tuple(shift), float(rng.choice(SCALES)), float(rng.choice(ANGLES)))


def warp(ops, rgb, a):
    """Pictures (n, h, w, 3) resampled by ``a``'s idx/wt/grey (from :func:`resampling`)."""
    h, w = rgb.shape[1], rgb.shape[2]     # the batch may be unknown while a graph is traced
    flat = ops.reshape(rgb, (-1, h * w, 3))
    got = ops.take(flat, ops.reshape(a["idx"], (-1,)), axis=1)       # (n, h*w*4, 3)
    got = ops.reshape(got, (-1, h * w, 4, 3))
    out = ops.einsum("npkc,pk->npc", got, a["wt"]) + ops.reshape(a["grey"], (1, h * w, 1))
    return ops.reshape(out, (-1, h, w, 3))


# ---- the model's side ----

def feeding(prep, channels):
    """(mix (3, C), offset (C,)) such that the model's input is ``rgb01 . mix + offset``, from
    ``prep`` (RGB 0..255 (n, h, w, 3) -> the model's input (n, h, w, C), as montage feeds pictures),
    probed on exact values; None where ``prep`` is not affine (a user's function). A grey model's
    luma is taken unrounded (the pictures' own path rounds it to whole values)."""
    def fed(rgb255):
        return np.asarray(prep(np.asarray(rgb255, np.float32)), np.float64)[:, 0, 0, :]

    if channels == 1:    # grey probes: the luma of (v, v, v) is v exactly
        lo, hi = fed(np.zeros((1, 1, 1, 3))), fed(np.full((1, 1, 1, 3), 255.0))
        offset, mix = lo[0], LUMA[:, None].astype(np.float64) * (hi[0] - lo[0])
        slack = 0.51 * np.abs(hi[0] - lo[0]) / 255.0
    else:
        probe = np.zeros((4, 1, 1, 3))
        probe[1, ..., 0], probe[2, ..., 1], probe[3, ..., 2] = 255.0, 255.0, 255.0
        out = fed(probe)
        offset, mix, slack = out[0], out[1:] - out[0], 0.0
    test = np.random.default_rng(0).integers(0, 256, (3, 1, 1, 3)).astype(np.float32)
    if not np.allclose(fed(test), test[:, 0, 0, :] / 255.0 @ mix + offset, rtol=1e-4, atol=1e-3 + np.max(slack)):
        return None
    return mix.astype(np.float32), offset.astype(np.float32)


def feed(ops, rgb, a):
    """Pictures 0..1 (n, h, w, 3) -> the model's input (n, h, w, C)."""
    return ops.einsum("nyxd,dc->nyxc", rgb, a["mix"]) + a["offset"]


def where(objective, shape):
    """Weights over a map (H, W) whose sum with the map is the objective: the mean (``channel``),
    or the unit at the centre (``neuron``); None for a layer without a map, (n, C)."""
    if len(shape) == 1:
        return None
    h, w = shape[0], shape[1]
    if objective == "channel":
        return np.full((h, w), 1.0 / (h * w), np.float32)
    at = np.zeros((h, w), np.float32)
    at[h // 2, w // 2] = 1.0
    return at


def score(ops, out, a):
    """Each item's objective (n,) from its layer's output (n, H, W, C) or (n, C): its channel
    (``a['onehot']`` (n, C)), weighted over the map by ``a['where']``."""
    if "where" not in a:
        return ops.einsum("nc,nc->n", out, a["onehot"])
    return ops.einsum("nhwc,hw,nc->n", out, a["where"], a["onehot"])
