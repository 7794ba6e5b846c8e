"""The model side's one interface: what every framework's reader gives the rest of montage.

A reader (:mod:`montage.readers`) turns a model spec into a :class:`Loaded` (the network, where
it and its weights came from, what input it takes). Its layers are walked by attribute, as
Keras layers are: ``name``, ``weights``, ``count_params()``, ``output.shape`` and, for nested
models, ``layers``; frameworks without Keras layers give :class:`Layer` and :class:`Model`
records with kernels in Keras' layout. A reader's ``prepare`` returns one :class:`Forward`:
a batch in (n, H, W, C), the chosen layers' maps out (n, H, W, C), their per-channel reduction
(for examples), and, where the framework has gradients, room for an objective's gradient.

This module imports no framework and no reader.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import images as imgs
from .canvas import available_memory
from .errors import MontageError
from .fitting import sides
from .preprocess import describe_preprocess, mode_problem, per_channel

# ---- the loaded network ----

@dataclass
class Loaded:
    """A model with where it and its weights came from, and the reader that runs it."""

    model: object
    name: str
    source: str
    weights: dict
    input_order: str = "rgb"          # channel order of the first layer's input
    preprocess: object = "none"       # see montage.preprocess.preprocess
    reader: str = "keras"             # key of montage.readers.READERS that plans its forward pass
    bgr: bool = False                 # pictures' channels reversed before ``preprocess``
    resize: str = "stretch"           # how a picture is fitted to the input (montage.images.read_rgb)

    def describe(self):
        return {"name": self.name, "source": self.source, "input_order": self.input_order,
                "preprocess": describe_preprocess(self.preprocess), "bgr": self.bgr, "resize": self.resize}


class _Output:
    def __init__(self, shape):
        self.shape = shape


class Layer:
    """A layer read without its framework: Keras class name, config and variables (Keras' order)."""

    built = True

    def __init__(self, name, class_name, config, variables, output_shape=None):
        self.name, self.class_name, self.config = name, class_name, config
        self.weights = list(variables)
        self.output = None if output_shape is None else _Output(tuple(output_shape))

    @property
    def kernel(self):
        return self.weights[0]

    @property
    def depthwise_kernel(self):
        return self.weights[0]

    @property
    def pointwise_kernel(self):
        return self.weights[1]

    @property
    def groups(self):
        return int(self.config.get("groups", 1) or 1)

    def count_params(self):
        return int(sum(w.size for w in self.weights))

    def get_weights(self):
        return list(self.weights)


class Model(Layer):
    """A model (or a nested one) of :class:`Layer` records: ``layers`` in the framework's order."""

    def __init__(self, name, class_name, layers):
        super().__init__(name, class_name, {}, [])
        self.layers = layers

    def count_params(self):
        return sum(layer.count_params() for layer in self.layers)


# ---- the forward pass ----

def host_reduce(outs, score):
    """Per layer ``(score, flat argmax, spatial max)``, each (n, C), from maps (n, H, W, C), on the
    host: what a reader whose framework cannot reduce on the device gives examples."""
    result = []
    for o in outs:
        flat = o.reshape(o.shape[0], -1, o.shape[-1])
        seen = np.where(np.isnan(flat), -np.inf, flat)     # NaN is no response, as on the device
        peak = seen.max(axis=1)
        arg = seen.argmax(axis=1).astype(np.int32)       # the first of equals, row-major y * W + x
        result.append((peak if score == "max" else flat.mean(axis=1, dtype=np.float64).astype(np.float32), arg, peak))
    return result


@dataclass
class Forward:
    """A ready forward pass: chosen layers, their map shapes, the batch size, and the reader's
    functions that run it.

    Attributes
    ----------
    loaded : Loaded
        With the preprocessing chosen.
    layers : list of :class:`montage.graph.Node`
    input_shape : (height, width, channels) fed to the model
    shapes : list of (H, W, C), one per layer
    batch_size : int
    device : str
        Where the pass runs, in words.
    maps : callable
        A preprocessed batch (n, H, W, C) float32 -> one float32 array (n, H', W', C') per layer.
    reduce : callable, optional
        ``(batch, score)`` -> per layer ``(score, flat argmax, spatial max)``, each (n, C), computed
        where the maps are (the device); default :func:`host_reduce` of ``maps``.
    gradient : callable, optional
        ``(batch, objective)`` -> d objective / d batch, where the framework has gradients.
    field : callable, optional
        A layer's path -> the :class:`montage.receptive.Field` of its map at this input size,
        raising :class:`montage.errors.MontageError` where it is unknown; None: the reader knows none.
    """

    loaded: Loaded
    layers: list
    input_shape: tuple
    shapes: list
    batch_size: int
    device: str
    maps: Callable
    reduce: Callable | None = None
    gradient: Callable | None = None
    field: Callable | None = None

    @property
    def names(self):
        """The layers' paths (``outer/inner`` in nested models)."""
        return [n.name for n in self.layers]

    def outputs(self, x):
        """One float32 array (n, H, W, C) per layer for a preprocessed batch ``x`` (n, H, W, C)."""
        return self.maps(x)

    def _batches(self, paths):
        h, w, c = self.input_shape
        return imgs.batches(paths, (h, w), self.batch_size, self.loaded, c)

    def run(self, paths):
        """Yield ``(batch, outputs)``: a :class:`montage.images.Batch` and one float32 array
        (n, H, W, C) per layer, from one forward pass per batch."""
        for batch in self._batches(paths):
            yield batch, self.maps(batch.x)

    def reduced(self, paths, score):
        """Yield ``(batch, [(score, flat argmax, spatial max) per layer])``, each (n, C)."""
        for batch in self._batches(paths):
            if self.reduce is not None:
                yield batch, self.reduce(batch.x, score)
            else:
                yield batch, host_reduce(self.maps(batch.x), score)


# ---- planning: input size, memory, batch size, preprocessing ----

def fed_size(name, geometry, size=None, note=lambda msg: None, default=None):
    """(height, width, channels) to feed a model of ``geometry`` (None for a free side): ``size``
    (a side or (height, width); default ``default``, else 224) where the model takes any, its own
    otherwise (saying so if ``size`` differs)."""
    h, w, c = geometry
    asked = sides(size if size is not None else default)
    if h is None or w is None:
        h, w = h or asked[0], w or asked[1]
    elif size is not None and asked != (h, w):
        note(f"the model takes {w} x {h} (width x height) images: --size {size if np.isscalar(size) else '%d,%d' % tuple(size)} "
             "is not used")
    if c not in (1, 3, 4):
        raise MontageError(f"model {name!r} takes {c}-channel input: montage can feed images of "
                           "1 (grey), 3 (RGB) or 4 (RGBA) channels")
    return h, w, c


def too_small(name, h, w, works, free):
    """One line for a model that cannot run at ``h`` x ``w`` but can at a larger square side (the
    smallest, found by ``works(side) -> bool`` up to 1024 where the size is ``free``), else None."""
    if not free:
        return None
    lo = hi = max(h, w)
    while not works(hi):
        if hi >= 1024:
            return None     # not a matter of size: the reader's own error says what is wrong
        lo, hi = hi, min(hi * 2, 1024)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if works(mid) else (mid, hi)
    return (f"model {name!r} cannot take {w} x {h} (width x height) images: its layers need at least "
            f"{hi} x {hi}: give --size {hi} or more")


def default_batch_size(per_image, budget_bytes, asked=None):
    """Images per batch that fit ``budget_bytes``: ``asked`` if it fits, else at most 32.

    Returns
    -------
    (batch size, whether ``asked`` was too large)
    """
    fits = int(budget_bytes // max(1, per_image))
    if fits < 1:
        raise MontageError(f"the forward pass needs about {per_image / 1e9:.1f} GB per image but only "
                           f"{budget_bytes / 1e9:.1f} GB of memory can be spared: use a smaller --size "
                           "or fewer layers (--layer)")
    if asked:
        return min(int(asked), fits), int(asked) > fits
    return min(32, fits), False


def choose_preprocess(loaded, feed, channels=3, raw_note=None, note=lambda msg: None):
    """The preprocessing to feed ``loaded`` (a :class:`montage.preprocess.Feed`'s): what the user
    asked for, else a built-in model's own, else none (saying ``raw_note``, the reader's word on
    raw input, when it has one). Refuses, in one line, a mode that cannot feed ``channels``."""
    if feed.preprocess is not None:
        prep = feed.preprocess
    elif feed.mean is not None or feed.std is not None:
        prep = {"mean": tuple(feed.mean) if feed.mean is not None else (0.0,),
                "std": tuple(feed.std) if feed.std is not None else (1.0,)}
        for key, v in prep.items():    # refused now, before any image is read
            per_channel(v, channels, key)
    elif loaded.preprocess != "none":
        prep = loaded.preprocess
    else:
        prep = "none"
    why = mode_problem(None if callable(prep) or isinstance(prep, dict) else prep, channels, feed.bgr)
    if why:
        raise MontageError(f"model {loaded.name!r}: {why}")
    if prep == "none" and feed.preprocess is None and raw_note:
        note(raw_note)
    return prep


def raw_note(name, channels, why):
    """What to tell a user whose model gets raw values 0..255 (``why``: what the file does not
    say), with the flags that fit the common cases for its channel count."""
    if channels == 1:
        fits = "for [0, 1] pass --std 255, for [-1, 1] --preprocess tf (or --mean 127.5 --std 127.5)"
    elif channels == 3:
        fits = ("pass --preprocess torch (ImageNet mean/std on [0, 1], torchvision's), tf ([-1, 1]) or caffe "
                "(BGR minus ImageNet's means), or --mean/--std (one number or one per channel; --bgr for "
                "models trained on OpenCV's BGR)")
    else:
        fits = f"pass --preprocess tf ([-1, 1]) or --mean/--std (one number or {channels})"
    kind = {1: "grey", 3: "RGB"}.get(channels, f"{channels}-channel")
    return f"model {name} is fed raw {kind} values 0..255 ({why}): if it expects otherwise, {fits}"


def settle(loaded, channels, per_image, budget, batch_size, note, feed, raw_note=None):
    """(batch size, ``loaded`` with its feed chosen): the batch that fits ``budget`` (default
    half the available memory), saying so when ``batch_size`` had to shrink."""
    budget = available_memory() // 2 if budget is None else budget
    bs, shrunk = default_batch_size(per_image, budget, batch_size)
    if shrunk:
        note(f"--batch-size {batch_size} would need {batch_size * per_image / 1e9:.1f} GB for the forward "
             f"pass: using batches of {bs}")
    prep = choose_preprocess(loaded, feed, channels, raw_note, note)
    return bs, dataclasses.replace(loaded, preprocess=prep, bgr=bool(feed.bgr), resize=feed.resize)


def forward_bytes(shapes, all_shapes, height, width, channels):
    """Memory one image needs in the forward pass: the chosen outputs (``shapes``) twice (the
    framework's and the host copy) plus the two largest maps of the whole model, alive together."""
    sizes = sorted(4 * int(np.prod(s)) for s in all_shapes)
    mine = [4 * int(np.prod(s)) for s in shapes]
    return 2 * sum(mine) + sum(sizes[-2:]) + 4 * height * width * channels
