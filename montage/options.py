"""Every option of the command line and the Python API, in one place.

Each option is a field of a frozen dataclass with its default, its help text and
how the command line spells it. The CLI builds its parser from these fields and
the API functions take them as keywords (their signatures and docstrings come from
here too), so adding an option is one field here plus its use. Checks that need
no heavy import run when an options object is made, before any model is loaded.
"""

from __future__ import annotations

import math
import numbers
import os
from dataclasses import dataclass, field
from typing import Any

from .errors import MontageError
from .normalize import GRID_MODES
from .style import GAP_COLOR
from .write import TILE_FORMATS, check_tile_format


def _whole(opts, *names, optional=False):
    """Refuse options that are not whole numbers (or None, where ``optional``)."""
    for name in names:
        v = getattr(opts, name)
        if (v is not None or not optional) and (isinstance(v, bool) or not isinstance(v, numbers.Integral)):
            raise MontageError(f"--{name.replace('_', '-')} {v!r} is not a whole number")


def _number(opts, *names):
    for name in names:
        v = getattr(opts, name)
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or math.isnan(v):
            raise MontageError(f"--{name.replace('_', '-')} {v!r} is not a number")


def _names(value, what):
    """A layer or image list as a list of str (one str is one name); refuse anything else."""
    if value is None:
        return None
    items = [value] if isinstance(value, (str, os.PathLike)) else value
    if not isinstance(items, (list, tuple)) or not items or not all(isinstance(x, (str, os.PathLike))
                                                                    for x in items):
        raise MontageError(f"{what} {value!r} should be a name or a non-empty list of names")
    return list(dict.fromkeys(items))   # in order, each once


def option(default, help, *, flag=None, group=None, doc=None, **cli):
    """A dataclass field with its help text, command-line flag and ``add_argument`` keywords.

    ``doc`` is the API's wording where the flag's help would read wrong (``--no-png``).
    """
    return field(default=default, metadata={"help": help, "flag": flag, "group": group, "doc": doc,
                                            "cli": cli})


@dataclass(frozen=True)
class ModelOptions:
    """Which model, with which weights (every command)."""

    model: Any = option("vgg16", "'vgg16' (default), any keras.applications name, torchvision:NAME, or a "
                        ".keras/.h5, .pt/.pth (or .jit, ...: any archive torch wrote) or .onnx model file (API: also "
                        "a keras.Model or torch.nn.Module)",
                        group="model")
    weights: str | None = option(
        None, "vgg16: hed (default: trained, offline), imagenet (downloads), random, or a weights file "
        "(torchvision:NAME: a state dict); a model file: its own weights unless given", group="model")
    seed: int = option(0, "seed for --weights random, 0 .. 2**32-1 (default 0)", group="model", type=int)
    unsafe: bool = option(False, "load a file that runs code when read (a Keras file with Lambda layers, a "
                          "pickled PyTorch module, a TorchScript archive), from a source you trust",
                          group="model", action="store_true")

    def __post_init__(self):
        m = self.model
        if m is None and getattr(self, "merge", None):   # examples --merge: the partial results' model
            pass
        elif not isinstance(m, (str, os.PathLike)) and not any(hasattr(m, a) for a in ("layers", "model",
                                                                                    "named_modules", "graph")):
            raise MontageError(f"model {m!r} is neither a model name, a model file nor a Keras, PyTorch or "
                               "ONNX model")
        if isinstance(self.weights, bool) or not isinstance(self.weights, (str, os.PathLike, type(None))):
            raise MontageError(f"weights {self.weights!r} should be hed, imagenet, random or a file path")
        seed = self.seed
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
            raise MontageError(f"--seed {seed} is out of range: give a whole number from 0 to {2**32 - 1}")


@dataclass(frozen=True)
class LayersOptions(ModelOptions):
    """``montage layers``: the conv layers' kernels, or every layer with 2-D maps."""

    maps: bool = option(False, "list every layer or node whose output is 2-D maps (the names --layer takes in "
                        "features), with its op and output shape, instead of the kernels", action="store_true")


@dataclass(frozen=True)
class OutputOptions(ModelOptions):
    """Where and how a product is drawn and written (filters and features)."""

    out: Any = option(None, "output folder (refused if not empty, unless --overwrite)", group="output",
                      required=True)
    overwrite: bool = option(False, "replace --out, a folder montage wrote, once the new one is complete",
                             group="output", action="store_true")
    cell: int | None = option(None, "pixels across a cell's longer side, in whole pixels per value (rounding and "
                                   "default: see above)", group="output", type=int)
    gap: int = option(1, "pixels between cells (default 1)", group="output", type=int)
    gap_color: Any = option(GAP_COLOR, f"gap colour: name, #rrggbb or r,g,b (default {GAP_COLOR}, a dark grey)",
                            group="output")
    nan_color: Any = option("magenta", "colour of NaN values (default magenta)", group="output")
    normalize: str = option("global", "(default %(default)s)", group="output", choices=tuple(GRID_MODES))
    clip: float = option(0.0, "clip the P-th percentile at each end of each normalisation group",
                         group="output", type=float, metavar="P")
    cmap: str = option("gray", "any matplotlib colormap (default %(default)s)", group="output")
    tile_format: str = option("png", "Deep Zoom tile format (default png: lossless)", group="output",
                              choices=tuple(TILE_FORMATS))
    tiff: bool = option(False, "also write a pyramidal tiled TIFF per image", group="output",
                        action="store_true")
    quiet: bool = option(False, "no progress bars or notes", group="output", action="store_true")

    modes = GRID_MODES   # the normalisation modes this product takes
    inapplicable = ()    # inherited options this product refuses (left out of its help)

    def __post_init__(self):
        super().__post_init__()
        _whole(self, "gap")
        _whole(self, "cell", optional=True)
        _number(self, "clip")
        if self.out is not None and (not isinstance(self.out, (str, os.PathLike)) or not os.fspath(self.out)):
            raise MontageError(f"--out {self.out!r} is not a folder name: give a path such as montage-out")
        check_tile_format(self.tile_format)
        if self.cell is not None and int(self.cell) < 1:
            raise MontageError(f"--cell {self.cell} must be at least 1 pixel")
        if self.normalize not in self.modes:
            raise MontageError(f"unknown normalisation {self.normalize!r}: choose one of {', '.join(self.modes)}")
        if not 0 <= float(self.clip) < 50:
            raise MontageError(f"--clip {self.clip} is out of range: give a percentile in [0, 50)")
        if int(self.gap) < 0:
            raise MontageError(f"--gap {self.gap} must be 0 or more pixels")


@dataclass(frozen=True)
class FiltersOptions(OutputOptions):
    """``montage filters``: every kernel of conv layers."""

    layers: Any = option(None, "conv layer name(s) or paths, or 'all' (default: vgg16's block1_conv2, as in "
                         "the tutorial; all layers of any other model)", flag="--layer", nargs="+",
                         metavar="NAME")
    rgb: bool = option(False, "layers with 3 input channels: one colour (R, G, B) kernel per filter",
                       action="store_true")
    png: bool = option(True, "skip the flat PNG export", flag="--no-png", action="store_false",
                       doc="write a flat PNG per layer where it is under 16 megapixels")
    png_cell: int = option(24, "pixels per kernel side in the flat PNG (default 24)", type=int)
    clip: float = option(1.0, "clip the P-th percentile at each end of each normalisation group (default 1: "
                         "a few large weights would leave the rest flat grey; 0 is the tutorial's min-max)",
                         group="output", type=float, metavar="P")
    out: Any = option("montage-filters", OutputOptions.__dataclass_fields__["out"].metadata["help"],
                      group="output", required=True)

    def __post_init__(self):
        super().__post_init__()
        _whole(self, "png_cell")
        object.__setattr__(self, "layers", _names(self.layers, "layers"))
        if int(self.png_cell) < 1:
            raise MontageError(f"--png-cell {self.png_cell} must be at least 1 pixel")
