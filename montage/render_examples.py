"""Examples: for every channel of every chosen layer, the images (and the patches of them) that
excite it most, over a whole dataset, from one streamed pass; shards merge into the same result."""

from __future__ import annotations

import json
import os
import time
import zipfile
from pathlib import Path

import numpy as np

from ._lock import check_stop
from ._output import check_out, input_paths, staged
from .canvas import allocate, check_fits
from .console import note, progress
from .errors import MontageError
from .layout import LAYER_GAP, Grid, shelf_pack
from .manifest import finish, header, json_default
from .options import ExamplesOptions, api
from .paths import shown
from .result import Result, in_temporary_folder
from .style import Style
from .topk import NO_IMAGE, Running
from .write import write_block

PARTIAL = "partial.npz"


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


# ---- partial results (shards) ----

def _identity(loaded, fwd, opts, absolute):
    """What must agree between partial results to merge them (``loaded`` as loaded, before
    the preprocessing was chosen, which is recorded on its own)."""
    from .images import describe_preprocess

    return {"model": loaded.describe(), "preprocess": describe_preprocess(fwd.loaded.preprocess),
            "weights": loaded.weights, "layers": fwd.names,
            "shapes": [list(s) for s in fwd.shapes], "input_shape": list(fwd.input_shape),
            "top": int(opts.top), "score": opts.score, "images": absolute}


def _write_partial(folder, identity, given, shard, bad, states):
    from ._version import __version__

    arrays = {}
    for j, s in enumerate(states):
        arrays.update(s.arrays(f"layer{j}"))
    np.savez(folder / PARTIAL, **arrays)
    manifest = {"montage": __version__, "kind": "partial", "shard": list(shard), "identity": identity,
                "given": given, "skipped": [{"path": str(p), "reason": why} for p, why in bad],
                "images": int(states[0].count) if states else 0}
    with open(folder / "manifest.json", "w") as f:
        json.dump(manifest, f, default=json_default)


_IDENTITY = {"model": dict, "preprocess": (str, dict, list), "weights": dict, "layers": list, "shapes": list,
             "input_shape": list, "top": int, "score": str, "images": list}


def _check_identity(meta):
    """Raise ValueError unless a partial result's manifest has the fields, types and ranges
    that ``--shard`` writes (a tampered or foreign file must not index past its own lists)."""
    ident = meta["identity"]
    shard = meta["shard"]
    if not isinstance(ident, dict) or set(ident) != set(_IDENTITY):
        raise ValueError("identity fields")
    if any(not isinstance(ident[k], t) or isinstance(ident[k], bool) for k, t in _IDENTITY.items()):
        raise ValueError("identity types")
    whole = lambda v: isinstance(v, int) and not isinstance(v, bool)   # noqa: E731
    if not (isinstance(shard, list) and len(shard) == 2 and all(map(whole, shard)) and 0 <= shard[0] < shard[1]):
        raise ValueError("shard")
    shapes = ident["shapes"]
    if len(shapes) != len(ident["layers"]) or not all(isinstance(n, str) for n in ident["layers"] + ident["images"]) \
            or any(not isinstance(s, list) or len(s) != 3 or not all(whole(d) and d > 0 for d in s) for s in shapes) \
            or ident["top"] < 1 or len(ident["images"]) < 1 or ident["score"] not in ("max", "mean"):
        raise ValueError("identity values")
    given = meta.get("given")
    if given is not None and (not isinstance(given, list) or len(given) != len(ident["images"])
                              or not all(isinstance(g, str) for g in given)):
        raise ValueError("given")


def _read_partials(folders):
    """(identity, the image names as given, skipped, states) merged from partial-result folders;
    refuses mixed ones. Images are compared and read by absolute path."""
    identity, shards, skipped, states, given = None, set(), [], None, None
    for folder in folders:
        folder = Path(folder)
        try:
            meta = json.loads((folder / "manifest.json").read_text())
            if not isinstance(meta, dict) or meta.get("kind") != "partial":
                raise ValueError("not a partial result")
            _check_identity(meta)
            data = np.load(folder / PARTIAL)
            ident = meta["identity"]
            top = min(ident["top"], len(ident["images"]))
            parts = [Running.from_arrays(data, f"layer{j}") for j in range(len(ident["layers"]))]
            for part, (h, w, c) in zip(parts, ident["shapes"]):
                part.validate(top, c, len(ident["images"]), h * w)
        except (OSError, ValueError, KeyError, TypeError, AttributeError, EOFError, RecursionError,
                zipfile.BadZipFile) as e:
            raise MontageError(f"{shown(folder)} is not a partial result of `montage examples --shard` "
                               f"({type(e).__name__}): give the --out folders of --shard runs") from None
        if identity is not None and meta["identity"] != identity:
            diff = next(k for k in sorted(set(identity) | set(meta["identity"]))
                        if identity.get(k) != meta["identity"].get(k))
            raise MontageError(f"{shown(folder)} comes from a different run ({diff} differ): merge partial results "
                               "of one model, layers, --top, --score and image list")
        shard = tuple(meta["shard"])
        if shard in shards:
            raise MontageError(f"shard {shard[0]}/{shard[1]} is given twice ({shown(folder)})")
        shards.add(shard)
        if identity is None:
            identity, states, given = meta["identity"], parts, meta.get("given") or meta["identity"]["images"]
        else:
            states = [a.merged(b) for a, b in zip(states, parts)]
        more = meta.get("skipped", [])
        if not isinstance(more, list) or any(not isinstance(x, dict) or set(x) != {"path", "reason"} or
                                             not all(isinstance(v, str) for v in x.values()) for x in more):
            raise MontageError(f"{shown(folder)} is not a partial result of `montage examples --shard` (its "
                               "skipped list): give the --out folders of --shard runs")
        skipped += more
    n = next(iter(shards))[1]
    missing = sorted(set(range(n)) - {i for i, _ in shards})
    if missing or any(m != n for _, m in shards):
        raise MontageError(f"the partial results do not cover every image: shards {', '.join(f'{i}/{n}' for i in missing)} "
                           "are missing" if missing else "partial results of different shard counts")
    return identity, given, skipped, states


# ---- drawing ----

def _to_cell(patch, cell):
    """A patch (h, w, 3) uint8 as a ``cell`` x ``cell`` picture: block means down to at most
    twice the cell (no aliasing), then nearest neighbour (crisp when magnified)."""
    h, w = patch.shape[:2]
    fy, fx = max(1, h // cell), max(1, w // cell)
    if fy > 1 or fx > 1:
        hh, ww = (h // fy) * fy, (w // fx) * fx
        patch = patch[:hh, :ww].reshape(hh // fy, fy, ww // fx, fx, 3).mean(axis=(1, 3))
        h, w = patch.shape[:2]
    ys = (np.arange(cell) * h) // cell
    xs = (np.arange(cell) * w) // cell
    return np.asarray(np.round(patch[ys][:, xs]) if patch.dtype != np.uint8 else patch[ys][:, xs], np.uint8)


def _crop(rgb, box, fill):
    """``rgb[top:bottom, left:right]``, with ``fill`` where the box leaves the image."""
    top, left, bottom, right = box
    out = np.empty((bottom - top, right - left, 3), np.uint8)
    out[...] = fill
    h, w = rgb.shape[:2]
    y0, x0, y1, x1 = max(top, 0), max(left, 0), min(bottom, h), min(right, w)
    if y1 > y0 and x1 > x0:
        out[y0 - top:y1 - top, x0 - left:x1 - left] = rgb[y0:y1, x0:x1]
    return out


def _tint(patch, amap, box, field, scale):
    """Darken a patch where the channel is weak: each pixel takes the unit whose field is centred
    nearest to it (``amap`` (H, W) of one channel), as a fraction of ``scale``."""
    top, left, bottom, right = box
    idx = []
    for axis, lo, hi, n in zip(field.axes, (top, left), (bottom, right), amap.shape):
        centre = axis.start + (axis.size - 1) / 2
        idx.append(np.clip(np.round((np.arange(lo, hi) - centre) / axis.jump), 0, n - 1).astype(int))
    a = np.clip(amap[idx[0]][:, idx[1]] / scale, 0.0, 1.0) if scale > 0 else np.zeros((bottom - top, right - left))
    return np.asarray(np.round(patch * (0.25 + 0.75 * a[..., None])), np.uint8)


def _boxes(state, field, shape, input_shape):
    """Per (rank, channel): (y, x) in the map and the box in input pixels."""
    W = shape[1]
    ys, xs = np.divmod(state.where.astype(np.int64), W)
    if field is None:   # --score mean: the whole image
        full = [0, 0, int(input_shape[0]), int(input_shape[1])]
        return ys, xs, lambda y, x: full
    return ys, xs, lambda y, x: [int(v) for v in field.box(int(y), int(x))]


def band_rows(channels, top):
    """Channels per column band: a power of two near sqrt(channels * (top + 1)), so that a layer's
    block is about square (512 channels x 9 examples: 8 bands of 64 rows)."""
    side = np.sqrt(channels * (top + 1))
    return int(min(channels, 2 ** max(0, int(np.round(np.log2(side))))))


def examples_grid(channels, top, cell, gap):
    """(grid, rows per band): channel c's examples sit in grid row ``c % rows``, columns
    ``(c // rows) * (top + 1) + rank``; the column after each band is left empty."""
    rows = band_rows(channels, top)
    bands = -(-channels // rows)
    cols = bands * (top + 1) - 1
    return Grid(rows, cols, rows * cols, cell, cell, 1, gap), rows


def _draw(states, fields, names, shapes, paths, input_shape, opts, style, fwd=None):
    """Every layer's canvas (rows = channels, columns = ranks) and its manifest entries."""
    from .images import preprocess, read_rgb

    cell, gap = int(opts.cell), style.gap
    layouts = [examples_grid(s.channels, s.k, cell, gap) for s in states]
    grids = [g for g, _ in layouts]
    for name, g in zip(names, grids):
        check_fits(g.height, g.width, 4, f"examples canvas of {name}")
    fill = np.array(style.gap_rgb, np.uint8)
    canvases = [allocate(g.height, g.width, 3, style.gap_rgb) for g in grids]
    geometry = [_boxes(s, f, sh, input_shape) for s, f, sh in zip(states, fields, shapes)]
    slots = {}
    for j, s in enumerate(states):
        for r, c in zip(*np.nonzero(s.images != NO_IMAGE)):
            slots.setdefault(int(s.images[r, c]), []).append((j, int(r), int(c)))
    order = sorted(slots)
    tint = opts.overlay and fwd is not None
    scale = [np.where(np.isfinite(s.scores[0]), s.scores[0], 0.0) for s in states]
    batch = max(1, fwd.batch_size if fwd is not None else 32)
    with progress(len(order), "drawing examples", "img", opts.quiet) as bar:
        for start in range(0, len(order), batch):
            check_stop()
            chunk = order[start:start + batch]
            rgbs = [read_rgb(paths[i], input_shape[:2]) for i in chunk]
            maps = fwd.outputs(preprocess(np.stack(rgbs), fwd.loaded.preprocess, fwd.input_shape[2])) if tint \
                else None
            for b, i in enumerate(chunk):
                for j, r, c in slots[i]:
                    ys, xs, box_of = geometry[j]
                    box = box_of(ys[r, c], xs[r, c])
                    patch = _crop(rgbs[b], box, fill)
                    if maps is not None and fields[j] is not None:
                        patch = _tint(patch, maps[j][b, :, :, c], box, fields[j], scale[j][c])
                    g = grids[j]
                    rows = layouts[j][1]
                    y0, x0 = (c % rows) * g.pitch_y, ((c // rows) * (states[j].k + 1) + r) * g.pitch_x
                    canvases[j][y0:y0 + cell, x0:x0 + cell, :3] = _to_cell(patch, cell)
            bar.update(len(chunk))
    return layouts, canvases, geometry


def _finite(a):
    return [None if not np.isfinite(v) else float(f"{v:.7g}") for v in np.asarray(a, np.float64)]


def _block(name, state, field, shape, layout, geometry, paths, score):
    """A layer's manifest block; ``paths`` are the image names as given."""
    ys, xs, box_of = geometry
    examples = []
    for c in range(state.channels):
        row = []
        for r in range(state.k):
            i = int(state.images[r, c])
            if i == NO_IMAGE:
                break
            row.append({"image": str(paths[i]), "y": int(ys[r, c]), "x": int(xs[r, c]),
                        "score": _finite([state.scores[r, c]])[0], "box": box_of(ys[r, c], xs[r, c])})
        examples.append(row)
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


# ---- the command ----

def run(opts: ExamplesOptions) -> Result:
    """Run :func:`examples` for an options object; returns the manifest (or, with ``shard``,
    the partial result's)."""
    from .graph import slug
    from .images import demo_images, find_images
    from .models import load_model
    from .plan import prepare
    from .receptive import field as receptive_field
    from .render_features import _good_images

    t0 = time.perf_counter()
    opts, temporary = in_temporary_folder(opts)
    style = Style(opts)
    fwd = None
    if opts.merge:
        inputs = input_paths(opts.model, opts.weights, list(opts.merge))
        check_out(opts.out, opts.overwrite, inputs)
        identity, given, skipped, states = _read_partials(opts.merge)
        absolute = identity["images"]
        check_out(opts.out, opts.overwrite, inputs + [p for p in absolute if os.path.lexists(p)])
        for i in sorted({int(i) for st in states for i in st.images[st.images != NO_IMAGE]}):
            if not os.path.isfile(absolute[i]):   # a FIFO or device would block the read for ever
                raise MontageError(f"{shown(absolute[i])}, an image the partial results name, is not a regular "
                                   "file here: merge where the shards' images are")
        loaded = load_model(opts.model, opts.weights, opts.seed, opts.unsafe, size=opts.size)
        if loaded.describe() != identity["model"] or loaded.weights != identity["weights"]:
            raise MontageError("the partial results come from another model or weights than --model/--weights "
                               f"name ({identity['model']['name']}, {identity['weights'].get('source')})")
        fwd = prepare(loaded, identity["layers"], identity["input_shape"][0], opts.batch_size,
                      preprocess=opts.preprocess, mean=opts.mean, std=opts.std)
        if fwd.names != identity["layers"] or [list(s) for s in fwd.shapes] != identity["shapes"]:
            raise MontageError("the partial results' layers do not match this model's")
        from .images import describe_preprocess

        if describe_preprocess(fwd.loaded.preprocess) != identity["preprocess"]:
            raise MontageError(f"the partial results were fed {identity['preprocess']} preprocessing: give the "
                               "same --preprocess/--mean/--std to --merge")
        asked, score = identity["top"], identity["score"]
    else:
        specs = [opts.images] if isinstance(opts.images, (str, os.PathLike)) else list(opts.images or [])
        paths = find_images(opts.images) if opts.images else demo_images()
        inputs = input_paths(opts.model, opts.weights, [p for p in paths + specs if os.path.exists(p)])
        check_out(opts.out, opts.overwrite, inputs)
        given, absolute = [str(p) for p in paths], [os.path.abspath(p) for p in paths]
        chosen = _select(absolute, opts.shard)
        good, skipped = _good_images([p for _, p in chosen], opts, shard=opts.shard is not None)
        good_set = set(good)
        chosen = [(i, p) for i, p in chosen if p in good_set]
        skipped = [{"path": given[absolute.index(p)], "reason": why} for p, why in skipped]
        asked, score = int(opts.top), opts.score
        loaded = load_model(opts.model, opts.weights, opts.seed, opts.unsafe, size=opts.size)
        fwd = prepare(loaded, opts.layers, opts.size, opts.batch_size, note=lambda msg: note(msg, opts.quiet),
                      preprocess=opts.preprocess, mean=opts.mean, std=opts.std)
    ih, iw, _ = fwd.input_shape
    top = min(asked, len(absolute))    # every shard keeps the same k: they merge
    if opts.shard is None:    # all canvases are alive until written: they must fit before the pass
        pitch = int(opts.cell) + style.gap
        check_fits(sum(s[2] for s in fwd.shapes) * pitch, top * pitch, 4, "examples canvases of all layers")
    from .foreign import Net

    if score == "max" and isinstance(fwd.loaded.model, Net):
        raise MontageError(f"--score max shows each unit's receptive field, which montage works out from Keras "
                           f"graphs only: use --score mean for {fwd.loaded.name} (a PyTorch or ONNX model)")
    fields = [receptive_field(fwd.loaded.model, name, (ih, iw)) if score == "max" else None
              for name in fwd.names]
    if not opts.merge:
        note(f"{len(chosen)} image(s) x {sum(s[2] for s in fwd.shapes):,} channels of {len(fwd.names)} layers: "
             f"top {top} by spatial {score}; forward pass on {fwd.device}, batches of {fwd.batch_size}",
             opts.quiet)
        states = _pass(fwd, chosen, score, top, opts.quiet)
        if opts.shard is not None:
            with staged(opts.out, opts.overwrite, inputs, lambda msg: note(msg, opts.quiet)) as tmp:
                _write_partial(tmp, _identity(loaded, fwd, opts, absolute), given, opts.shard,
                               [(s["path"], s["reason"]) for s in skipped], states)
            note(f"shard {opts.shard[0]}/{opts.shard[1]}: {len(chosen)} image(s) -> {Path(opts.out) / PARTIAL} "
                 f"({time.perf_counter() - t0:.1f} s); render with --merge", opts.quiet)
            manifest = json.loads((Path(opts.out) / "manifest.json").read_text())
            return Result(manifest, opts.out, time.perf_counter() - t0, temporary)
    layouts, canvases, geometry = _draw(states, fields, fwd.names, fwd.shapes, absolute, fwd.input_shape, opts,
                                      style, fwd)
    blocks, tiles = [], []
    with staged(opts.out, opts.overwrite, inputs, lambda msg: note(msg, opts.quiet)) as tmp:
        (tmp / "layers").mkdir()
        for j, name in enumerate(fwd.names):
            check_stop()
            base = tmp / "layers" / f"{j:02d}_{slug(name)}"
            dzi = write_block(canvases[j], base, opts.tile_format, opts.tiff, opts.quiet)
            canvases[j] = None
            block = _block(name, states[j], fields[j], fwd.shapes[j], layouts[j], geometry[j], given, score)
            block.update(dzi=f"layers/{base.name}.dzi", tiff=f"layers/{base.name}.tif" if opts.tiff else None)
            blocks.append(block)
            tiles.append({"dzi": dict(dzi, Url=f"layers/{dzi['Url']}"), "path": f"layers/{base.name}.dzi"})
        origins, (wh, ww) = shelf_pack([(g.height, g.width) for g, _ in layouts], LAYER_GAP)
        for b, t, (y, x) in zip(blocks, tiles, origins):
            b["x"], b["y"] = t["x"], t["y"] = x, y
        images = sum(s.count for s in states[:1])
        manifest = {**header("examples", fwd.loaded, style, input_size=ih, device=fwd.device, images=images),
                    "skipped": skipped, "views": [{"name": "examples", "world": [ww, wh], "tiles": tiles,
                                                   "blocks": blocks}]}
        finish(tmp, manifest, f"{fwd.loaded.name} examples", opts.quiet)
    dead = sum(len(b["dead"]) for b in blocks)
    note(f"{images} image(s), {sum(b['grid']['rows'] for b in blocks):,} channels of {len(blocks)} layers "
         f"({dead:,} never positive) -> {Path(opts.out) / 'index.html'} ({time.perf_counter() - t0:.1f} s)",
         opts.quiet)
    return Result(manifest, opts.out, time.perf_counter() - t0, temporary)


@api(ExamplesOptions, ("model", "images", "out"))
def examples(model="vgg16", images=None, out="montage-examples", **options) -> Result:
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
