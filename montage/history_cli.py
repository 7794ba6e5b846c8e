"""``montage history CKPT ... --out DIR``: a training history from saved checkpoints.

Each checkpoint is a model file, or with ``--model`` a weights file for that model; they are
recorded in the order given, as :class:`montage.recorder.Recorder` records a training run.
"""

from __future__ import annotations

import dataclasses
import os
import re

from .console import note
from .errors import MontageError
from .models import load_kernels
from .options import FiltersOptions
from .paths import shown
from .recorder import RANGES, Recorder
from .signatures import add_arguments

# filters' options that a history takes from the command line (the rest are refused or meaningless)
SKIPPED = ("model", "weights", "seed", "unsafe", "out", "overwrite", "layers", "rgb", "png", "png_cell", "tiff")


@dataclasses.dataclass(frozen=True)
class HistoryOptions(FiltersOptions):
    """filters' options, less those a history does not take (hidden from its help, refused)."""

    inapplicable = ("overwrite", "rgb", "png", "png_cell", "tiff", "weights", "seed")


def add_parser(sub):
    """The ``history`` subcommand."""
    p = sub.add_parser("history", help="a step slider over saved checkpoints (model or weights files)",
                       description="Each checkpoint's kernels drawn as `montage filters` draws them, with "
                       "their change since the previous and the first checkpoint, on one page with a step "
                       "slider. Steps are the numbers in the file names when every name has one (epoch_12: "
                       "step 12), else 0, 1, 2, ... in the order given. An --out that holds a history of the "
                       "same model is continued.")
    p.add_argument("checkpoints", nargs="+", metavar="CKPT", help="model files, or weights files with --model")
    add_arguments(p, HistoryOptions)
    p.add_argument("--range", dest="range", choices=RANGES, default="steps",
                   help="steps (default): one range for every step, the first step's, so that a brightness "
                   "means the same weight on every step; step: each step its own, as filters")
    p.set_defaults(model=None, out=None)


def steps_of(paths, last=-1):
    """Step numbers for checkpoint files: the last number in each name when all have one and they
    rise in the order given, else the steps after ``last`` (the history's last step), one by one."""
    nums = [re.findall(r"\d+", os.path.splitext(os.path.basename(str(p)))[0]) for p in paths]
    if all(nums):
        steps = [int(n[-1]) for n in nums]
        if all(a < b for a, b in zip(steps, steps[1:])):
            return steps
    return list(range(last + 1, last + 1 + len(paths)))


def run(args):
    """Record each checkpoint as one step of the history in ``args.out``."""
    if not args.out:
        raise MontageError("--out is required: the history's folder")
    fields = {f.name: f.default for f in dataclasses.fields(FiltersOptions)}
    options = {k: getattr(args, k) for k in fields if k not in SKIPPED and getattr(args, k) is not None}
    for given in ("rgb", "tiff", "overwrite", "weights"):
        if getattr(args, given):
            raise MontageError(f"--{given} is a filters option that history does not take: leave it out")
    paths = [str(p) for p in args.checkpoints]
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        raise MontageError(f"checkpoint {shown(missing[0])} does not exist")

    def load(path):
        if args.model is None:
            return load_kernels(path, None, 0, args.unsafe)
        return load_kernels(args.model, path, 0, args.unsafe)

    first = load(paths[0])
    with Recorder(args.out, first, layers=args.layers, range=args.range, **options) as rec:
        steps = steps_of(paths, rec.steps[-1] if rec.steps else -1)
        todo = [(s, p) for s, p in zip(steps, paths) if not rec.steps or s > rec.steps[-1]]
        if len(todo) < len(paths):
            note(f"{len(paths) - len(todo)} checkpoint(s) at or before the last recorded step "
                 f"({rec.steps[-1]}) left out", args.quiet)
        for i, (step, path) in enumerate(todo):
            rec.snapshot(step, model=first if (i == 0 and path == paths[0]) else load(path), label=path)
    note(f"{len(todo)} step(s) recorded -> {shown(os.path.join(args.out, 'index.html'))}", args.quiet)
