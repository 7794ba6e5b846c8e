"""Gradient ascent for feature visualisation: one batch of channels of one layer, each batch item
its own channel, from noise to the picture the channel responds to most.

The method (:mod:`montage.fvis`) is written once; the reader's ``gradient`` runs it under its
framework's autodiff. Each item's objective depends on its own parameters only, and Adam
updates elementwise, so a channel's picture does not depend on which channels share its batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ._lock import check_stop
from .errors import MontageError
from .fvis import constants, draw, feed, pictures, resampling, start, step_transform, warp, where

BETAS, EPS = (0.9, 0.999), 1e-8


def render(ops, p, a):
    """Parameters -> the model's input: drawn, transformed, preprocessed."""
    return feed(ops, warp(ops, draw(ops, p, a), a), a)


class Adam:
    """Adam ascending (PyTorch's defaults, Lucid's learning rate), on the host: the parameters
    and their gradient cross to the device and back once a step."""

    def __init__(self, p, lr):
        self.lr, self.t = lr, 0
        self.m, self.v = np.zeros_like(p), np.zeros_like(p)

    def step(self, p, g):
        self.t += 1
        b1, b2 = BETAS
        self.m = b1 * self.m + (1 - b1) * g
        self.v = b2 * self.v + (1 - b2) * g * g
        mhat = self.m / (1 - b1 ** self.t)
        vhat = self.v / (1 - b2 ** self.t)
        return (p + self.lr * mhat / (np.sqrt(vhat) + EPS)).astype(np.float32)


def arrays(method, shape, channels, count, mix, offset, h, w):
    """Everything :func:`render` and :func:`montage.fvis.score` read besides the parameters and
    the step's transformation: the basis, the feed, which channel each item scores, and where."""
    a = {**constants(method, h, w), "mix": mix, "offset": offset,
         "onehot": np.eye(count, dtype=np.float32)[np.asarray(channels)]}
    at = where(method.objective, shape)
    if at is not None:
        a["where"] = at
    return a


def ascend(fn, method, shape, channels, count, feeding, input_hw, bar=None):
    """Optimise ``channels`` (of ``count``) of one layer whose output is ``shape`` (H, W, C) or
    (C,), in one batch.

    Parameters
    ----------
    fn : callable
        ``fn(p, arrays) -> (values (n,), d sum(values) / d p)``, numpy: a plan's
        ``gradient(j, render, score)``.
    feeding : (mix (3, C), offset (C,)) from :func:`montage.fvis.feeding`.

    Returns
    -------
    (pictures (n, h, w, 3) uint8, objective at the start (n,), at the end (n,)), the objective
    taken without transformations.
    """
    h, w = input_hw
    a = arrays(method, shape, channels, count, *feeding, h, w)
    p = start(method, channels, h, w)
    still = {**a, **resampling(h, w)}
    first, _ = fn(p, still)
    adam = Adam(p, method.lr)
    for t in range(method.steps):
        check_stop()
        values, g = fn(p, {**a, **step_transform(method, t, h, w)})
        if not np.all(np.isfinite(g)):
            raise MontageError("the objective's gradient is not finite (NaN or Inf) for some channel: the model "
                               "gives non-finite values for its input; try --param pixel or a lower --steps")
        p = adam.step(p, g)
        if bar is not None:
            bar.update(1)
            if hasattr(bar, "set_postfix_str"):
                bar.set_postfix_str(f"objective {float(np.mean(values)):.3g}", refresh=False)
    last, _ = fn(p, still)
    return pictures(method, p, h, w), np.asarray(first, np.float32), np.asarray(last, np.float32)


@dataclass
class Plan:
    """A reader's plan for gradient ascent: the chosen layers, their output shapes ((H, W, C) or
    (C,)), the input, the batch size, where it runs, and ``gradient(j, render, score) -> fn``
    for layer ``j`` (see :func:`ascend`)."""

    loaded: object
    layers: list
    input_shape: tuple
    shapes: list
    batch_size: int
    device: str
    gradient: Callable

    @property
    def names(self):
        return [n.name for n in self.layers]


CHANNEL_AXIS = "layers with a channel axis (conv, pooling, dense, ...)"

