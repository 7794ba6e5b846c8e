"""Examples: for every channel of every chosen layer, the images (and the patches of them) that
excite it most, over a whole dataset, from one streamed pass; shards merge into the same result."""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._lock import check_stop
from ._output import check_out, input_paths, staged
from .canvas import check_fits
from .console import counted, loading, note, page_of, progress, status
from .errors import MontageError
from .graph import slug
from .images import demo_images, find_images, good_images
from .input_options import ExamplesOptions
from .layout import LAYER_GAP, shelf_pack
from .manifest import finish, header
from .models import load_model, prepare
from .partials import (PARTIAL, check_readable, identity, merge_inputs, read_partials, readable_roots, spec,
                       write_partial)
from .patches import draw
from .paths import public_path, shown
from .preprocess import describe_preprocess
from .render_optimize import optima
from .result import Result, in_temporary_folder
from .signatures import api
from .style import Style
from .topk import NO_IMAGE, Running
from .write import write_block

# ---- the pass ----

def _select(paths, shard):
    """(global index, path) of the images a shard processes: every N-th, starting at I."""
    idx = list(range(len(paths)))
    if shard is not None:
        idx = idx[shard[0]::shard[1]]
    return [(i, paths[i]) for i in idx]


def _pass(fwd, chosen, score, top, quiet):
    """Stream ``chosen`` (global index, path) through the model; the running top-k per layer."""
    states = [Running(top, shape[2]) for shape in fwd.shapes]
    index = {p: i for i, p in chosen}
    paths = [p for _, p in chosen]
    with progress(len(paths), "images", "img", quiet) as bar:
        for batch, reduced in fwd.reduced(paths, score):
            check_stop()
            ids = np.array([index[p] for p in batch.paths], np.int64)
            for state, (s, arg, peak) in zip(states, reduced):
                state.add(s, arg, peak, ids)
            bar.update(len(batch.paths))
    return states


def _finite(a):
    """JSON numbers of ``a`` to 7 significant digits; None for NaN and infinities."""
    return [float(f"{v:.7g}") if math.isfinite(v) else None for v in np.asarray(a, np.float64).tolist()]


def _block(name, state, field, shape, layout, geometry, paths, score):
    """A layer's manifest block; ``paths`` are the image names as given."""
    ys, xs, boxes = geometry
    names = [str(p) for p in paths]
    full = state.images != NO_IMAGE   # each channel's list stops at its first empty slot
    stops = np.where(full.all(axis=0), state.k, np.argmin(full, axis=0)).tolist()
    columns = zip(stops, state.images.T.tolist(), ys.T.tolist(), xs.T.tolist(),
                  [_finite(col) for col in state.scores.T],
                  boxes.transpose(1, 0, 2).tolist())
    examples = [[{"image": names[i], "y": y, "x": x, "score": sc, "box": b}
                 for i, y, x, sc, b in zip(im[:n], yy, xx, ss, bb)] for n, im, yy, xx, ss, bb in columns]
    positive = state.positive / max(state.count, 1)
    return {
        "layer": name, "kind": "examples", "top": int(state.k), "score": score,
        "map_shape": [int(v) for v in shape], "grid": layout[0].to_dict(), "band_rows": layout[1],
        "channels": int(state.channels), "rows": "channel", "cols": "rank",
        "field": None if field is None else {"jump": [a.jump for a in field.axes],
                                             "start": [a.start for a in field.axes],
                                             "size": [a.size for a in field.axes]},
        "examples": examples,
        "stats": {"images": int(state.count), "mean": _finite(state.mean()), "max": _finite(state.best),
                  "positive": [float(f"{v:.4g}") for v in positive]},
        "dead": [int(c) for c in np.flatnonzero(state.positive == 0)],
    }


def _fields(fwd, quiet):
    """Each layer's receptive field, or None (whole images) where the reader cannot work it out,
    said in one note."""
    fields, unknown = [], []
    for name in fwd.names:
        try:
            if fwd.field is None:
                raise MontageError(f"montage works out no receptive fields for {fwd.loaded.name}")
            fields.append(fwd.field(name))
        except MontageError as e:
            fields.append(None)
            unknown.append((name, str(e)))
    if unknown:
        names = ", ".join(n for n, _ in unknown[:3]) + (", ..." if len(unknown) > 3 else "")
        note(f"{counted(len(unknown), 'layer')} without an exact receptive field ({names}) show whole images: "
             f"{unknown[0][1]}", quiet)
    return fields


# ---- the command ----

@dataclass
class _Job:
    """What a run has settled before its pass: inputs, images (as given and absolute), the
    forward pass, and for a merge the merged states."""

    inputs: list
    given: list
    absolute: list
    skipped: list
    fwd: object
    loaded: object
    top: int
    score: str
    chosen: list = None
    states: list = None
    named: tuple = (None, None)   # the model and weights as named (by the user, or a merge's shards)


def _merged(opts):
    """A ``--merge`` job: partial results read, checked against the model and each other; the
    model, weights, size and preprocessing are theirs unless given (then they must agree)."""
    check_out(opts.out, opts.overwrite, input_paths(opts.model, opts.weights, list(opts.merge)))
    ident, given, skipped, states, named = read_partials(opts.merge)
    model, weights, seed, size, feed = merge_inputs(opts, ident, named)
    inputs = input_paths(model, weights, list(opts.merge))
    absolute = ident["images"]
    check_out(opts.out, opts.overwrite, inputs + [p for p in absolute if os.path.lexists(p)])
    roots = readable_roots(opts.images)
    for i in sorted({int(i) for st in states for i in st.images[st.images != NO_IMAGE]}):
        check_readable(absolute[i], roots)
        if not os.path.isfile(absolute[i]):   # a FIFO or device would block the read for ever
            raise MontageError(f"{shown(absolute[i])}, an image the partial results name, is not a regular "
                               "file here: merge where the shards' images are")
    loaded = load_model(model, weights, seed, opts.unsafe, size=size)
    mine, theirs = loaded.describe(), ident["model"]
    for key in sorted(set(mine) | set(theirs)):
        if mine.get(key) != theirs.get(key):
            raise MontageError(f"the partial results come from another model: its {key} is {theirs.get(key)!r}, "
                               f"this one's {mine.get(key)!r} (leave out --model/--weights to use theirs)")
    if loaded.weights != ident["weights"]:
        raise MontageError(f"the partial results come from other weights ({ident['weights'].get('source')}): "
                           "leave out --weights to use theirs")
    fwd = prepare(loaded, ident["layers"], size, opts.batch_size, feed=feed)
    if fwd.names != ident["layers"] or [list(s) for s in fwd.shapes] != ident["shapes"]:
        raise MontageError("the partial results' layers do not match this model's")
    if describe_preprocess(fwd.loaded.preprocess) != ident["preprocess"]:
        raise MontageError(f"--preprocess/--mean/--std differ: the partial results were fed {ident['preprocess']} "
                           "preprocessing; leave them out (--merge takes it from them)")
    top = min(ident["top"], len(absolute))
    return _Job(inputs, given, absolute, skipped, fwd, loaded, top, ident["score"], states=states,
                named=(model, weights))


def _fresh(opts):
    """A job over images: found, checked (a shard its own share), the forward pass planned."""
    specs = [opts.images] if isinstance(opts.images, (str, os.PathLike)) else list(opts.images or [])
    paths = find_images(opts.images) if opts.images else demo_images()
    inputs = input_paths(opts.model, opts.weights, [p for p in paths + specs if os.path.exists(p)])
    check_out(opts.out, opts.overwrite, inputs)
    given, absolute = [public_path(p) for p in paths], [os.path.abspath(p) for p in paths]
    chosen = _select(absolute, opts.shard)
    good, skipped = good_images([p for _, p in chosen], opts.skip_bad, opts.quiet, shard=opts.shard is not None)
    good_set = set(good)
    chosen = [(i, p) for i, p in chosen if p in good_set]
    skipped = [{"path": given[absolute.index(p)], "reason": why} for p, why in skipped]
    with status(f"loading {loading(opts.model)} ...", opts.quiet):
        loaded = load_model(opts.model, opts.weights, opts.seed, opts.unsafe, size=opts.size)
    fwd = prepare(loaded, opts.layers, opts.size, opts.batch_size, note=lambda msg: note(msg, opts.quiet),
                  feed=opts.feed)
    top = min(int(opts.top), len(absolute))    # every shard keeps the same k: they merge
    return _Job(inputs, given, absolute, skipped, fwd, loaded, top, opts.score, chosen=chosen,
                named=(opts.model, opts.weights))


def _write_shard(job, opts, t0, temporary):
    with staged(opts.out, opts.overwrite, job.inputs, lambda msg: note(msg, opts.quiet)) as tmp:
        write_partial(tmp, identity(job.loaded, job.fwd, opts, job.absolute), job.given, opts.shard,
                      [(s["path"], s["reason"]) for s in job.skipped], job.states, spec(opts))
    note(f"shard {opts.shard[0]}/{opts.shard[1]}: {counted(len(job.chosen), 'image')} -> {Path(opts.out) / PARTIAL} "
         f"({time.perf_counter() - t0:.1f} s); render with --merge", opts.quiet)
    manifest = json.loads((Path(opts.out) / "manifest.json").read_text())
    return Result(manifest, opts.out, time.perf_counter() - t0, temporary)


def _write_pictures(job, fields, opts, style):
    """Draw and write every layer's block; the manifest."""
    fwd, states = job.fwd, job.states
    optimum, method = optima(fwd, opts.optimum_steps, opts.seed, opts.quiet) if opts.optimum else (None, None)
    layouts, canvases, geometry = draw(states, fields, fwd.names, fwd.shapes, job.absolute, fwd.input_shape, opts,
                                       style, fwd, [o[0] for o in optimum] if optimum else None)
    blocks, tiles = [], []
    with staged(opts.out, opts.overwrite, job.inputs, lambda msg: note(msg, opts.quiet)) as tmp:
        (tmp / "layers").mkdir()
        for j, name in enumerate(fwd.names):
            check_stop()
            base = tmp / "layers" / f"{j:02d}_{slug(name)}"
            dzi = write_block(canvases[j], base, opts.tile_format, opts.tiff, opts.quiet)
            canvases[j] = None
            block = _block(name, states[j], fields[j], fwd.shapes[j], layouts[j], geometry[j], job.given, job.score)
            block.update(dzi=f"layers/{base.name}.dzi", tiff=f"layers/{base.name}.tif" if opts.tiff else None)
            if optimum:
                block["optimum"] = {"start": _finite(optimum[j][1]), "end": _finite(optimum[j][2])}
            blocks.append(block)
            tiles.append({"dzi": dict(dzi, Url=f"layers/{dzi['Url']}"), "path": f"layers/{base.name}.dzi"})
        origins, (wh, ww) = shelf_pack([(g.height, g.width) for g, _ in layouts], LAYER_GAP)
        for b, t, (y, x) in zip(blocks, tiles, origins):
            b["x"], b["y"] = t["x"], t["y"] = x, y
        images = sum(s.count for s in states[:1])
        manifest = {**header("examples", fwd.loaded, style, job.named, input_size=fwd.input_shape[0],
                             device=fwd.device, images=images),
                    "skipped": job.skipped, "views": [{"name": "examples", "world": [ww, wh], "tiles": tiles,
                                                       "blocks": blocks}]}
        if method is not None:
            manifest["method"] = method.describe()
        finish(tmp, manifest, f"{fwd.loaded.name} examples", opts.quiet)
    return manifest, blocks, images


def run(opts: ExamplesOptions) -> Result:
    """Run :func:`examples` for an options object; returns the manifest (or, with ``shard``,
    the partial result's)."""
    t0 = time.perf_counter()
    opts, temporary = in_temporary_folder(opts)
    style = Style(opts)
    job = _merged(opts) if opts.merge else _fresh(opts)
    fwd, top, score = job.fwd, job.top, job.score
    if opts.shard is None:    # all canvases are alive until written: they must fit before the pass
        pitch = int(opts.cell) + style.gap
        check_fits(sum(s[2] for s in fwd.shapes) * pitch, top * pitch, 4, "examples canvases of all layers")
    fields = _fields(fwd, opts.quiet) if score == "max" else [None] * len(fwd.names)
    if not opts.merge:
        note(f"{counted(len(job.chosen), 'image')} x {counted(sum(s[2] for s in fwd.shapes), 'channel')} of "
             f"{counted(len(fwd.names), 'layer')}: "
             f"top {top} by spatial {score}; forward pass on {fwd.device}, batches of {fwd.batch_size}",
             opts.quiet)
        job.states = _pass(fwd, job.chosen, score, top, opts.quiet)
        if opts.shard is not None:
            return _write_shard(job, opts, t0, temporary)
    manifest, blocks, images = _write_pictures(job, fields, opts, style)
    dead = sum(len(b["dead"]) for b in blocks)
    note(f"{counted(images, 'image')}, {counted(sum(b['channels'] for b in blocks), 'channel')} of "
         f"{counted(len(blocks), 'layer')} "
         f"({dead:,} never positive) -> {page_of(opts.out, temporary)} ({time.perf_counter() - t0:.1f} s)",
         opts.quiet)
    return Result(manifest, opts.out, time.perf_counter() - t0, temporary)


@api(ExamplesOptions, ("model", "images", "out"))
def examples(model=None, images=None, out="montage-examples", **options) -> Result:
    """For every channel of the chosen layers, its top images over a dataset and the patch of
    each (the unit's receptive field around the map's maximum).

    One streamed pass (memory flat in the number of images): the spatial max (or mean) of
    every map is reduced on the device, merged into running top-k lists on the host. With
    ``shard=(i, n)`` only every n-th image from i is processed and a partial result (no
    pictures) is written to ``out``; ``merge=[folders]`` renders merged partial results.

    Returns
    -------
    montage.result.Result
        The manifest (a dict, also written to ``out/manifest.json``) with ``.path`` and an
        inline view for notebooks.
    """
    return run(ExamplesOptions(model=model, images=images, out=out, **options))
