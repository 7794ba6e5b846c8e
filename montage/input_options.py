"""The options of products that feed a model pictures: which layers, at what size, how each picture
is fitted and preprocessed (``features``, ``examples``), and their own options."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

from .errors import MontageError
from .fitting import DEFAULT_SIZE
from .fvis import OBJECTIVES, PARAMS
from .normalize import FEATURE_MODES
from .options import ModelOptions, OutputOptions, _names, _number, _whole, option
from .preprocess import PREPROCESS_MODES, RESIZE_MODES, Feed


def _numbers(text):
    """'a' or 'a,b,c' -> a tuple of floats (argparse type: a ValueError becomes a usage error)."""
    return tuple(float(p) for p in str(text).split(","))


def _size(text):
    """'N' -> N; 'H,W' -> (H, W) (argparse type)."""
    parts = [int(p) for p in str(text).replace("x", ",").split(",")]
    if len(parts) not in (1, 2):
        raise ValueError(text)
    return parts[0] if len(parts) == 1 else tuple(parts)


def check_size(size):
    """``size`` (a side or (height, width)) as given, or one line saying what is wrong."""
    if size is None:
        return None
    sides = list(size) if isinstance(size, (tuple, list)) else [size]
    if len(sides) not in (1, 2) or any(isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 1
                                       for s in sides):
        raise MontageError(f"--size {size!r} should be a side N or H,W in whole pixels, e.g. 224 or 48,320")
    return int(sides[0]) if len(sides) == 1 else (int(sides[0]), int(sides[1]))


@dataclass(frozen=True)
class FedOptions(OutputOptions):
    """How a model is fed pictures: which layers, at what size, fitted and preprocessed how."""

    layers: Any = option(None, "layer names, or 'all' (conv and pooling); default: every conv layer",
                         flag="--layer", nargs="+", metavar="NAME")
    batch_size: int | None = option(None, "images per forward pass (default: by memory)", type=int)
    size: Any = option(None, f"input size N (square) or H,W in pixels, for a model that takes any size "
                       f"(default {DEFAULT_SIZE}); a model with a fixed size is fed its own", type=_size,
                       metavar="N|H,W", doc="a side, or (height, width)")
    resize: str = option("stretch", "fit each picture to the input: stretch (default, as Keras' load_img), "
                         "crop (short side to size/0.875, centre crop: torchvision's eval) or letterbox "
                         "(fit inside, pad with grey 114: YOLO's)", choices=RESIZE_MODES)
    preprocess: Any = option(None, "caffe, tf, torch or none (default: a built-in model's own; a model "
                             "file: none, with a note unless it says its input range)",
                             choices=PREPROCESS_MODES, doc="as on the command line, or a callable taking "
                             "and returning a float32 array (n, H, W, C)")
    mean: Any = option(None, "means subtracted from 0..255 input: one number (every channel) or one per "
                       "channel, e.g. 123.7,116.3,103.5 or 127.5", type=_numbers, metavar="M[,M...]")
    std: Any = option(None, "divisors after --mean: one number or one per channel, e.g. 58.4,57.1,57.4",
                      type=_numbers, metavar="S[,S...]")
    bgr: bool = option(False, "reverse the colour channels (RGB -> BGR) before --mean/--std, for models "
                       "trained on OpenCV's decoding", action="store_true")

    def __post_init__(self):
        super().__post_init__()
        _whole(self, "batch_size", optional=True)
        object.__setattr__(self, "layers", _names(self.layers, "layers"))
        object.__setattr__(self, "size", check_size(self.size))
        if self.batch_size is not None and int(self.batch_size) < 1:
            raise MontageError(f"--batch-size {self.batch_size} must be at least 1")
        if self.resize not in RESIZE_MODES:
            raise MontageError(f"--resize {self.resize!r}: choose one of {', '.join(RESIZE_MODES)}")
        p = self.preprocess
        if p is not None and not callable(p) and p not in PREPROCESS_MODES:
            raise MontageError(f"unknown --preprocess {p!r}: choose one of {', '.join(PREPROCESS_MODES)}, "
                               "or give --mean/--std")
        if p is not None and (self.mean is not None or self.std is not None):
            raise MontageError("give either --preprocess or --mean/--std, not both")
        for name in ("mean", "std"):
            v = getattr(self, name)
            if v is None:
                continue
            v = (v,) if isinstance(v, numbers.Real) else v
            try:
                v = tuple(float(x) for x in v)
            except (TypeError, ValueError):
                v = ()
            if not v or not all(math.isfinite(x) for x in v) or (name == "std" and min(v) <= 0):
                raise MontageError(f"--{name} needs one number or one per channel" +
                                   (", each above 0" if name == "std" else "") + ", e.g. 127.5 or 123.7,116.3,103.5")
            object.__setattr__(self, name, v)

    @property
    def feed(self):
        """The :class:`montage.preprocess.Feed` these options ask for."""
        return Feed(self.preprocess, self.mean, self.std, bool(self.bgr), self.resize)


@dataclass(frozen=True)
class InputOptions(FedOptions):
    """Images through a model's forward pass (features and examples)."""

    images: Any = option(None, "image files, folders or globs (default: a sample photograph)",
                         flag="--image", nargs="+", metavar="PATH")
    skip_bad: bool = option(False, "render the good images, list the bad ones", action="store_true")

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "images", _names(self.images, "images"))


@dataclass(frozen=True)
class FeaturesOptions(InputOptions):
    """``montage features``: every channel of every chosen layer, for each image."""

    overlay: bool = option(False, "show the input image beside each atlas", action="store_true")
    values: int = option(4, "write the activations for the page's readout for the first N images (default 4, "
                         "about 100 MB for VGG16 at 224 px: exact float32s, zeros as bits, 25 MB an image; "
                         "-1: all, 0: none)", type=int, metavar="N")
    out: Any = option("montage-features", OutputOptions.__dataclass_fields__["out"].metadata["help"],
                      group="output", required=True)
    normalize: str = option("channel", "(default %(default)s)", group="output", choices=tuple(FEATURE_MODES))
    cmap: str = option("viridis", "any matplotlib colormap (default %(default)s)", group="output")

    modes = FEATURE_MODES

    def __post_init__(self):
        super().__post_init__()
        _whole(self, "values")
        if int(self.values) < -1:
            raise MontageError(f"--values {self.values}: give a number of images, 0 for none or -1 for all")


def parse_shard(spec):
    """'I/N' -> (I, N) with 0 <= I < N; None stays None."""
    if spec is None:
        return None
    if isinstance(spec, (tuple, list)) and len(spec) == 2:
        i, n = spec
    else:
        parts = str(spec).split("/")
        try:
            i, n = (int(x) for x in parts)
        except ValueError:
            raise MontageError(f"--shard {spec!r} should be I/N, e.g. 0/4 (the first of 4 shards)") from None
    if any(isinstance(v, bool) or not isinstance(v, numbers.Integral) for v in (i, n)) or not 0 <= i < n:
        raise MontageError(f"--shard {spec!r} should be I/N with 0 <= I < N, e.g. 0/4 .. 3/4")
    return int(i), int(n)


@dataclass(frozen=True)
class ExamplesOptions(InputOptions):
    """``montage examples``: for every channel, the images (and patches) that excite it most."""

    inapplicable = ("normalize", "clip", "cmap", "nan_color")   # examples show the images' own colours

    top: int = option(9, "examples per channel (default 9)", type=int)
    score: str = option("max", "rank images by the map's spatial max (default; the patch around it is "
                        "shown) or mean (the whole image is shown)", choices=("max", "mean"))
    shard: Any = option(None, "process every N-th image starting at I and write a partial result "
                        "(no pictures) to --out, for --merge", metavar="I/N")
    merge: Any = option(None, "render the merged partial results of --shard runs (folders)", nargs="+",
                        metavar="PARTIAL")
    images: Any = option(None, "image files, folders or globs (default: the demo set, crops of the "
                         "photographs that installed packages ship); with --merge: where the images the partial "
                         "results name may be read from (default: the current folder)", flag="--image", nargs="+",
                         metavar="PATH")
    model: Any = option(None, ModelOptions.__dataclass_fields__["model"].metadata["help"].replace(
                        "'vgg16' (default)", "'vgg16' (default; --merge: the partial results')"), group="model")
    cell: int | None = option(64, "pixels per example side (default 64)", group="output", type=int)
    overlay: bool = option(False, "tint each patch by the channel's activation in it", action="store_true")
    optimum: bool = option(False, "put each channel's feature visualisation (montage optimize at its defaults) before "
                           "its examples: row = channel, then top-1 ... top-k", action="store_true")
    optimum_steps: int = option(256, "gradient steps for --optimum (default 256)", type=int, metavar="N")
    out: Any = option("montage-examples", OutputOptions.__dataclass_fields__["out"].metadata["help"],
                      group="output", required=True)

    def __post_init__(self):
        if self.model is None and not self.merge:
            object.__setattr__(self, "model", "vgg16")
        super().__post_init__()
        _whole(self, "top")
        if int(self.top) < 1:
            raise MontageError(f"--top {self.top} must be at least 1")
        if self.score not in ("max", "mean"):
            raise MontageError(f"--score {self.score!r}: choose max or mean")
        object.__setattr__(self, "shard", parse_shard(self.shard))
        object.__setattr__(self, "merge", _names(self.merge, "partial results"))
        if self.merge and self.shard:
            raise MontageError("--merge renders partial results; --shard makes one: give one of them")
        _whole(self, "optimum_steps")
        if self.optimum and self.shard:
            raise MontageError("--optimum draws pictures, which a --shard run does not: give it to the --merge run")
        if int(self.optimum_steps) < 1:
            raise MontageError(f"--optimum-steps {self.optimum_steps} must be at least 1")
        if self.merge and (self.layers or self.top != 9 or self.score != "max"):
            raise MontageError("--merge renders what the partial results hold: their --layer, --top and --score "
                               "were chosen by the --shard runs (leave them out)")
        for name in self.inapplicable:
            if getattr(self, name) != OutputOptions.__dataclass_fields__[name].default:
                raise MontageError(f"--{name.replace('_', '-')} does not apply to examples: they show the "
                                   "images' own colours")


def parse_channels(spec):
    """'0-63,100' (or a list of whole numbers) -> a sorted list of distinct channels; None stays None."""
    if spec is None:
        return None
    items = [spec] if isinstance(spec, (str, numbers.Integral)) else spec
    out = set()
    try:
        for item in items:
            for part in ([item] if isinstance(item, numbers.Integral) else str(item).split(",")):
                if isinstance(part, bool):
                    raise ValueError
                if isinstance(part, numbers.Integral):
                    lo = hi = int(part)
                else:
                    lo, _, hi = part.strip().partition("-")
                    lo, hi = int(lo), int(hi or lo)
                if lo < 0 or hi < lo:
                    raise ValueError
                out.update(range(lo, hi + 1))
    except (TypeError, ValueError):
        raise MontageError(f"--channels {spec!r} should be channel numbers and ranges from 0, e.g. 0-63,100") from None
    if not out:
        raise MontageError(f"--channels {spec!r} names no channel: give e.g. 0-63,100")
    return sorted(out)


@dataclass(frozen=True)
class OptimizeOptions(FedOptions):
    """``montage optimize``: for every channel, the input it responds to most (feature visualisation)."""

    inapplicable = ("resize", "normalize", "clip", "cmap", "nan_color")   # pictures in their own colours

    layers: Any = option(None, "layer names (any layer with a channel axis: conv, pooling, dense), or 'all' "
                         "(conv and pooling); default: every conv layer", flag="--layer", nargs="+", metavar="NAME")
    channels: Any = option(None, "channels of each layer, e.g. 0-63,100 (default: all)", metavar="SPEC",
                           doc="channel numbers and ranges ('0-63,100') or a list of whole numbers")
    steps: int = option(256, "gradient steps (default 256)", type=int)
    objective: str = option("channel", "what is maximised: channel (the mean of its map, default) or neuron "
                            "(the unit at the map's centre)", choices=OBJECTIVES)
    param: str = option("fourier", "the picture's parameters: fourier (decorrelated spectrum, default) or pixel "
                        "(plain pixels)", choices=PARAMS)
    lr: float = option(0.05, "Adam's learning rate (default 0.05)", type=float)
    transforms: bool = option(True, "no random jitter, scale and rotation per step", flag="--no-transforms",
                              action="store_false", doc="random jitter, scale and rotation each step (Lucid's)")
    size: Any = option(None, "picture size N or H,W for a model that takes any size (default 128); a model with a "
                       "fixed size is fed its own", type=_size, metavar="N|H,W", doc="a side, or (height, width)")
    seed: int = option(0, "seed of the starting noise and each step's transformation (and of --weights random), "
                       "0 .. 2**32-1 (default 0)", group="model", type=int)
    cell: int | None = option(None, "pixels per picture side (default: the picture's own size)", group="output",
                              type=int)
    shard: Any = option(None, "optimise every N-th channel of each layer starting at I and write a partial result "
                        "(no pictures) to --out, for --merge", metavar="I/N")
    merge: Any = option(None, "draw the merged partial results of --shard runs (folders)", nargs="+",
                        metavar="PARTIAL")
    model: Any = option(None, ModelOptions.__dataclass_fields__["model"].metadata["help"].replace(
                        "'vgg16' (default)", "'vgg16' (default; --merge: none needed)"), group="model")
    out: Any = option("montage-optimize", OutputOptions.__dataclass_fields__["out"].metadata["help"],
                      group="output", required=True)

    def __post_init__(self):
        if self.model is None and not self.merge:
            object.__setattr__(self, "model", "vgg16")
        super().__post_init__()
        object.__setattr__(self, "shard", parse_shard(self.shard))
        object.__setattr__(self, "merge", _names(self.merge, "partial results"))
        if self.merge and (self.shard or self.model is not None or self.layers or self.channels is not None):
            raise MontageError("--merge draws what the partial results hold: leave out --shard, --model, --layer and "
                               "--channels (the --shard runs chose them)")
        given = [n for n in ("steps", "objective", "param", "lr", "transforms", "size", "preprocess", "mean", "std",
                             "bgr", "weights") if getattr(self, n) != OptimizeOptions.__dataclass_fields__[n].default]
        if self.merge and given:
            raise MontageError(f"--merge draws what the partial results hold: leave out --{given[0].replace('_', '-')} "
                               "(the --shard runs chose it)")
        _whole(self, "steps")
        _number(self, "lr")
        object.__setattr__(self, "channels", parse_channels(self.channels))
        if int(self.steps) < 1:
            raise MontageError(f"--steps {self.steps} must be at least 1")
        if not 0 < float(self.lr) < math.inf:
            raise MontageError(f"--lr {self.lr} must be a number above 0, e.g. 0.05")
        if self.objective not in OBJECTIVES:
            raise MontageError(f"--objective {self.objective!r}: choose one of {', '.join(OBJECTIVES)}")
        if self.param not in PARAMS:
            raise MontageError(f"--param {self.param!r}: choose one of {', '.join(PARAMS)}")
        for name in self.inapplicable:
            if getattr(self, name) != FedOptions.__dataclass_fields__[name].default:
                raise MontageError(f"--{name.replace('_', '-')} does not apply to optimize: it draws pictures "
                                   "in their own colours")
