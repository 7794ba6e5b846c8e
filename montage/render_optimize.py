"""Feature visualisation: for every chosen channel of every chosen layer, the picture it responds to
most, found by gradient ascent from noise (:mod:`montage.ascent`), one channel per batch item."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np

from ._lock import check_stop
from ._output import check_out, input_paths, staged
from .ascent import ascend, render
from .console import note, progress
from .errors import MontageError
from .fvis import Method, feeding, score
from .graph import slug
from .input_options import OptimizeOptions
from .layout import LAYER_GAP, Grid, near_square, scale_at_least, shelf_pack
from .manifest import finish, header
from .models import load_model, plan_ascent
from .optimize_shards import read_partials, shard_of, write_partial
from .preprocess import Feed, describe_preprocess, preprocess
from .result import Result, in_temporary_folder
from .signatures import api
from .style import Style
from .write import write_block

SIZE = 128      # Lucent's notebooks' side: small enough for many channels, large enough to read


def _feeding(plan):
    """The model's preprocessing as (mix, offset) for the ascent; one line if it is not affine."""
    loaded, c = plan.loaded, plan.input_shape[2]
    fed = feeding(lambda x: preprocess(x, loaded.preprocess, c, loaded.bgr), c)
    if fed is None:
        raise MontageError(f"the preprocessing {describe_preprocess(loaded.preprocess)!r} is not affine (a scale and "
                           "shift per channel): feature visualisation needs one it can take gradients through; "
                           "give --preprocess or --mean/--std")
    return fed


def _channels(plan, wanted):
    """Per layer the channels to optimise: ``wanted`` (checked against each layer) or all."""
    out = []
    for name, shape in zip(plan.names, plan.shapes):
        count = shape[-1]
        if wanted is not None and wanted[-1] >= count:
            raise MontageError(f"--channels: layer {name!r} has channels 0-{count - 1}, not {wanted[-1]}: "
                               "give channels in range (or fewer layers)")
        out.append(list(range(count)) if wanted is None else list(wanted))
    return out


def _block(name, shape, grid, chans, first, last, y, x):
    return {"layer": name, "kind": "optimize", "map_shape": [int(v) for v in shape], "grid": grid.to_dict(),
            "x": x, "y": y, "channels": chans, "rows": "channel",
            "objective": {"start": [float(f"{v:.6g}") for v in first], "end": [float(f"{v:.6g}") for v in last]}}


def _paint(pictures, grid, gap_rgb):
    """The layer's canvas: each picture in its cell, row by row, gaps in ``gap_rgb``."""
    canvas = np.empty((grid.height, grid.width, 3), np.uint8)
    canvas[...] = gap_rgb
    s = grid.scale
    for k, pic in enumerate(pictures):
        r, c = divmod(k, grid.cols)
        y, x = r * grid.pitch_y, c * grid.pitch_x
        canvas[y:y + grid.cell_h * s, x:x + grid.cell_w * s] = pic.repeat(s, 0).repeat(s, 1) if s > 1 else pic
    return canvas


def _optimise_layer(plan, j, chans, method, fed, bar):
    """(pictures, start, end) of ``chans`` of layer ``j``, in batches of the plan's size."""
    h, w, _ = plan.input_shape
    if not chans:     # a shard past a small layer's channels
        return np.zeros((0, h, w, 3), np.uint8), np.zeros(0, np.float32), np.zeros(0, np.float32)
    fn = plan.gradient(j, render, score)
    parts = []
    for i in range(0, len(chans), plan.batch_size):
        check_stop()
        parts.append(ascend(fn, method, plan.shapes[j], chans[i:i + plan.batch_size], plan.shapes[j][-1], fed,
                            (h, w), bar))
    return tuple(np.concatenate(x) for x in zip(*parts))


def optima(fwd, steps, seed, quiet):
    """Every channel's feature visualisation for the layers of ``fwd`` (examples' ``--optimum``), fed
    as ``fwd`` feeds pictures: (per layer (pictures, start, end), the method)."""
    loaded = fwd.loaded
    feed = Feed(loaded.preprocess, None, None, loaded.bgr, loaded.resize)
    plan = plan_ascent(loaded, fwd.names, None, None, note=lambda msg: note(msg, quiet), feed=feed, default_size=SIZE)
    method = Method(steps=int(steps), seed=int(seed))
    chans = _channels(plan, None)
    batches = sum(math.ceil(len(c) / plan.batch_size) for c in chans)
    with progress(batches * method.steps, "optimum of each channel", "step", quiet) as bar:
        fed = _feeding(plan)    # one probe of the preprocessing serves every layer
        return [_optimise_layer(plan, j, chans[j], method, fed, bar) for j in range(len(chans))], method


class _Described:
    """What a merge knows of the model: the partial results' record of it (for the manifest)."""

    def __init__(self, ident):
        self.model, self.weights = ident["model"], ident["weights"]

    def describe(self):
        return self.model


def _identity(plan, chans, method):
    loaded = plan.loaded
    model = {k: v for k, v in loaded.describe().items() if k not in ("preprocess", "bgr")}
    return {"model": model, "weights": loaded.weights, "preprocess": describe_preprocess(loaded.preprocess),
            "bgr": bool(loaded.bgr), "layers": plan.names, "shapes": [list(s) for s in plan.shapes],
            "input_shape": list(plan.input_shape), "channels": chans, "method": method.describe()}


def _compute(opts):
    """Plan and run the ascent: (identity, per layer (pictures, start, end), where it ran)."""
    loaded = load_model(opts.model, opts.weights, opts.seed, opts.unsafe, size=opts.size or SIZE)
    plan = plan_ascent(loaded, opts.layers, opts.size, opts.batch_size, note=lambda msg: note(msg, opts.quiet),
                       feed=opts.feed, default_size=SIZE)
    method = Method(opts.param, opts.objective, int(opts.steps), float(opts.lr), bool(opts.transforms), opts.seed)
    chans = _channels(plan, opts.channels)
    mine = [shard_of(c, opts.shard) for c in chans]
    h, w, _ = plan.input_shape
    batches = sum(math.ceil(len(c) / plan.batch_size) for c in mine)
    note(f"{sum(len(c) for c in mine):,} channels of {len(mine)} layers, {method.steps} steps at {w} x {h}: gradient "
         f"ascent on {plan.device}, batches of {plan.batch_size}", opts.quiet)
    with progress(batches * method.steps, "steps", "step", opts.quiet) as bar:
        fed = _feeding(plan)
        layers = [_optimise_layer(plan, j, mine[j], method, fed, bar) for j in range(len(mine))]
    return _identity(plan, chans, method), layers, plan.device, plan.loaded


def _draw(tmp, ident, layers, opts, style, head):
    """Every layer's block, written; the manifest."""
    (tmp / "layers").mkdir()
    h, w, _ = ident["input_shape"]
    blocks, tiles, grids = [], [], []
    for j, (name, (pictures, first, last)) in enumerate(zip(ident["layers"], layers)):
        check_stop()
        chans = ident["channels"][j]
        rows, cols = near_square(len(chans))
        grid = Grid(rows, cols, len(chans), h, w, scale_at_least(opts.cell, h, w) if opts.cell else 1, style.gap)
        base = tmp / "layers" / f"{j:02d}_{slug(name)}"
        dzi = write_block(_paint(pictures, grid, style.gap_rgb), base, opts.tile_format, opts.tiff, opts.quiet)
        grids.append(grid)
        blocks.append(_block(name, ident["shapes"][j], grid, chans, first, last, 0, 0))
        blocks[-1].update(dzi=f"layers/{base.name}.dzi", tiff=f"layers/{base.name}.tif" if opts.tiff else None)
        tiles.append({"dzi": dict(dzi, Url=f"layers/{dzi['Url']}"), "path": f"layers/{base.name}.dzi"})
    origins, (wh, ww) = shelf_pack([(g.height, g.width) for g in grids], LAYER_GAP)
    for b, t, (y, x) in zip(blocks, tiles, origins):
        b["x"], b["y"] = t["x"], t["y"] = x, y
    manifest = {**head, "method": ident["method"], "size": [h, w],
                "views": [{"name": "optimize", "world": [ww, wh], "tiles": tiles, "blocks": blocks}]}
    finish(tmp, manifest, f"{ident['model']['name']} feature visualisation", opts.quiet)
    return manifest


def run(opts: OptimizeOptions) -> Result:
    """Run :func:`optimize` for an options object; returns the manifest (or, with ``shard``, the
    partial result's)."""
    t0 = time.perf_counter()
    opts, temporary = in_temporary_folder(opts)
    style = Style(opts)
    inputs = input_paths(opts.model, opts.weights, [p for p in opts.merge or []])
    check_out(opts.out, opts.overwrite, inputs)
    if opts.merge:
        ident, layers = read_partials(opts.merge)
        device, loaded = "merged partial results", _Described(ident)
    else:
        ident, layers, device, loaded = _compute(opts)
    stage = staged(opts.out, opts.overwrite, inputs, lambda msg: note(msg, opts.quiet))
    if opts.shard:
        with stage as tmp:
            write_partial(tmp, ident, opts.shard, [(shard_of(c, opts.shard), *x) for c, x in zip(ident["channels"], layers)])
        note(f"shard {opts.shard[0]}/{opts.shard[1]} -> {Path(opts.out)}; draw with --merge", opts.quiet)
        return Result(json.loads((Path(opts.out) / "manifest.json").read_text()), opts.out,
                      time.perf_counter() - t0, temporary)
    head = header("optimize", loaded, style, input_size=ident["input_shape"][0], device=device)
    if opts.merge:
        head["model"] = {**ident["model"], "preprocess": ident["preprocess"], "bgr": ident["bgr"]}
    with stage as tmp:
        manifest = _draw(tmp, ident, layers, opts, style, head)
    dt = time.perf_counter() - t0
    total = sum(len(c) for c in ident["channels"])
    note(f"{total:,} channels -> {Path(opts.out) / 'index.html'} ({dt:.1f} s, {total / dt:.2f} channels/s)", opts.quiet)
    return Result(manifest, opts.out, dt, temporary)


@api(OptimizeOptions, ("model", "out"))
def optimize(model="vgg16", out="montage-optimize", **options) -> Result:
    """For every channel of the chosen layers, the picture it responds to most (feature
    visualisation): gradient ascent from noise, one channel per batch item.

    Lucid's method and defaults (see :mod:`montage.fvis`): a decorrelated Fourier parameterisation,
    random jitter, scale and rotation each step, Adam at 0.05; the model's own preprocessing.
    A channel's picture depends only on the model, the layer, the channel, the options and the
    seed, not on which channels share its batch.

    Returns
    -------
    montage.result.Result
        The manifest (also in ``out/manifest.json``) with ``.path``, ``.canvas(layer)`` and
        ``.arrays(layer)``: the pictures, (channels, H, W, 3) uint8 RGB, as drawn.
    """
    return run(OptimizeOptions(model=model, out=out, **options))
