"""Feature maps: every channel of every chosen layer, one atlas (Deep Zoom image) per input image."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._lock import check_stop
from ._output import check_out, input_paths, staged
from .background import Writer as AtlasWriter
from .canvas import check_fits, paint, run_engine
from .console import counted, loading, note, page_of, progress, status
from .graph import slug
from .images import find_images, good_images
from .input_options import FeaturesOptions
from .layout import LAYER_GAP, Grid, near_square, scale_at_least, shelf_pack
from .manifest import finish_views, header, norm_entry, read_view, write_values, write_view
from .models import load_model, prepare
from .normalize import FEATURE_MODES, GRID_MODES, grid_ranges, group_range
from .paths import public_path, shown
from .result import Result, in_temporary_folder
from .signatures import api
from .style import BACKGROUND, Style
from .write import dzi_descriptor, sibling, write_block


@dataclass(frozen=True)
class Atlas:
    """Where everything sits in one image's atlas (the same for every image of a run).

    ``grids[i]`` holds layer ``i``'s channels at ``origins[i]`` (y, x); the input image
    sits at ``input_origin`` (or is not shown: None); the atlas is ``world`` (height, width).
    """

    names: list
    grids: list
    origins: list
    input_origin: tuple | None
    world: tuple

    @classmethod
    def layout(cls, names, shapes, cell, gap, overlay=None):
        """Near-square grids of each layer's (H, W, C) maps, packed with ``overlay`` (height, width)."""
        grids = []
        for h, w, c in shapes:
            rows, cols = near_square(c)
            grids.append(Grid(rows, cols, c, h, w, scale_at_least(cell, h, w) if cell else 1, gap))
        sizes = ([tuple(overlay)] if overlay else []) + [(g.height, g.width) for g in grids]
        origins, world = shelf_pack(sizes, LAYER_GAP)
        if overlay:
            return cls(names, grids, origins[1:], origins[0], world)
        return cls(names, grids, origins, None, world)


def _ranges(acts, mode, grids, clip):
    """Per layer (lo, hi) per map and the group ranges for the manifest, under a feature mode."""
    if mode == "image":   # one range over every layer; paint() spreads a scalar over all cells
        ilo, ihi = group_range(np.concatenate([a.ravel() for a in acts])[None, :], clip)
        return [(ilo[0], ihi[0], ilo, ihi) for _ in acts]
    return [grid_ranges(a, FEATURE_MODES[mode], g.cols, clip) for a, g in zip(acts, grids)]


def draw_atlas(outs, j, rgb, atlas, style, writer, base, opts, keep_values=True, engine="numba"):
    """Paint image ``j`` of a batch into its atlas (with ``engine``'s kernels, see
    :func:`montage.canvas.paint`), queue the write (with the activations for the readout where
    ``keep_values``), return its view entry."""
    wh, ww = atlas.world
    acts = [o[j][..., None] for o in outs]     # (H, W, C, 1) views, no copies
    lut, bands = style.lut_for(acts)
    canvas = writer.canvas(wh, ww, bands, BACKGROUND)   # the page's colour where no block is
    if rgb is not None:
        y, x = atlas.input_origin
        if bands == 3:
            canvas[y:y + rgb.shape[0], x:x + rgb.shape[1], :3] = rgb
        else:
            canvas[y:y + rgb.shape[0], x:x + rgb.shape[1], 0] = rgb.mean(-1)
    group = GRID_MODES[FEATURE_MODES[style.normalize]]
    blocks, values = [], []
    rel = f"images/{base.name}"
    for i, (name, a, g, (y, x), (lo, hi, glo, ghi)) in enumerate(zip(
            atlas.names, acts, atlas.grids, atlas.origins, _ranges(acts, style.normalize, atlas.grids, style.clip))):
        paint(a, g, lo, hi, lut, canvas, origin=(y, x), engine=engine)
        key = f"{rel}.{i:02d}.values.js" if keep_values else None
        if keep_values:
            values.append((base.with_name(f"{base.name}.{i:02d}.values.js"), key, outs[i][j]))
        blocks.append({"layer": name, "kind": "features", "map_shape": list(a.shape[:3]),
                       "grid": g.to_dict(), "x": x, "y": y,
                       "normalize": norm_entry(style.normalize, style.clip, glo, ghi, group),
                       "values": key})
    writer.submit(_write_atlas, canvas, base, opts, values)
    dzi = dzi_descriptor(f"{rel}_files/", ww, wh, opts.tile_format)
    view = {"world": [ww, wh], "tiles": [{"dzi": dzi, "x": 0, "y": 0, "path": f"{rel}.dzi"}],
            "blocks": blocks}
    if rgb is not None:
        view["input"] = {"x": atlas.input_origin[1], "y": atlas.input_origin[0], "size": int(rgb.shape[0])}
    return view


def _write_atlas(canvas, base, opts, values):
    """The atlas's tiles, then each layer's activations (H, W, C) for the page's readout."""
    write_block(canvas, base, opts.tile_format, opts.tiff, True)
    for path, key, a in values:
        write_values(path, key, a, zeros=True)


def _not_images(skipped, quiet):
    """One line for the files a folder scan left out (the manifest lists each)."""
    if skipped:
        names = ", ".join(shown(p.name) for p, _ in skipped[:3]) + (", ..." if len(skipped) > 3 else "")
        note(f"skipped {counted(len(skipped), 'file')} that are not images by their extension ({names}): "
             "listed under 'skipped' in manifest.json", quiet)
    return [{"path": str(p), "reason": why} for p, why in skipped]




def run(opts: FeaturesOptions) -> Result:
    """Run :func:`features` for an options object; returns the manifest."""

    t0 = time.perf_counter()
    opts, temporary = in_temporary_folder(opts)
    style = Style(opts)
    not_images = []
    paths = find_images(opts.images, not_images)
    specs = [opts.images] if isinstance(opts.images, (str, os.PathLike)) else list(opts.images or [])
    inputs = input_paths(opts.model, opts.weights, paths + specs)
    check_out(opts.out, opts.overwrite, inputs)
    good, bad = good_images(paths, opts.skip_bad, opts.quiet)
    skipped = _not_images(not_images, opts.quiet) + [{"path": str(p), "reason": why} for p, why in bad]
    with status(f"loading {loading(opts.model)} ...", opts.quiet):
        loaded = load_model(opts.model, opts.weights, opts.seed, opts.unsafe, size=opts.size)
    fwd = prepare(loaded, opts.layers, opts.size, opts.batch_size, note=lambda msg: note(msg, opts.quiet),
                  feed=opts.feed)
    ih, iw, _ = fwd.input_shape
    atlas = Atlas.layout(fwd.names, fwd.shapes, opts.cell, style.gap, (ih, iw) if opts.overlay else None)
    # colour canvases store 4 bytes a pixel; the writer keeps up to depth + 1 of them alive
    check_fits(*atlas.world, 4 * (AtlasWriter.DEPTH + 1), "atlases of the images being written")
    note(f"{counted(len(good), 'image')} x {counted(sum(s[2] for s in fwd.shapes), 'feature map')} of "
         f"{counted(len(fwd.names), 'layer')}; "
         f"forward pass on {fwd.device}, batches of {fwd.batch_size}", opts.quiet)
    names, bases, layout = [], [], None   # per image only its name: the views stream to files
    engine = run_engine(len(good) * atlas.world[0] * atlas.world[1])   # numba's ~1 s load pays only for many
    with staged(opts.out, opts.overwrite, inputs, lambda msg: note(msg, opts.quiet)) as tmp:
        (tmp / "images").mkdir()
        with progress(len(good), "images", "img", opts.quiet) as bar, AtlasWriter() as writer:
            for batch, outs in fwd.run(good):
                check_stop()
                for j, path in enumerate(batch.paths):
                    i = len(names)
                    base = tmp / "images" / f"{i:05d}_{slug(Path(path).stem)}"
                    view = draw_atlas(outs, j, batch.rgb[j] if opts.overlay else None, atlas, style,
                                      writer, base, opts, opts.values < 0 or i < opts.values, engine)
                    view = {**view, "name": public_path(path)}
                    write_view(sibling(base, ".view.js"), i, view)
                    layout = layout or _shared(view)
                    names.append(view["name"])
                    bases.append(base.name)
                bar.update(len(batch.paths))
        head = {**header("features", fwd.loaded, style, (opts.model, opts.weights), input_size=ih, device=fwd.device), "skipped": skipped}
        finish_views(tmp, head, names, bases, layout, f"{fwd.loaded.name} feature maps", opts.quiet)
    dt = time.perf_counter() - t0
    note(f"{counted(len(names), 'image')} -> {page_of(opts.out, temporary)} ({dt:.1f} s, "
         f"{len(names) / dt:.2f} images/s)", opts.quiet)
    manifest = {**head, "views": Views(Path(opts.out) / "images", bases)}
    return Result(manifest, opts.out, time.perf_counter() - t0, temporary)


def _shared(view):
    """What every image's view has in common (one atlas layout): the world, the tile format and
    size, the blocks' geometry, the input's place; the page builds each view from it."""
    dzi = {k: v for k, v in view["tiles"][0]["dzi"].items() if k != "Url"}
    blocks = [{k: v for k, v in b.items() if k not in ("normalize", "values")} for b in view["blocks"]]
    return {"world": view["world"], "dzi": dzi, "blocks": blocks, "input": view.get("input")}


class Views(Sequence):
    """The views of a features result, read from their per-image files when asked for."""

    def __init__(self, folder, bases):
        self.folder, self.bases = Path(folder), list(bases)

    def __len__(self):
        return len(self.bases)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        return read_view(self.folder / f"{self.bases[i]}.view.js")


@api(FeaturesOptions, ("model", "images", "out"))
def features(model="vgg16", images=None, out="montage-features", **options) -> Result:
    """Render every channel of every chosen layer for each image: one atlas per image.

    All layers' activations come from one multi-output model run in batches; each
    image's atlas is painted, written and dropped before the next, so memory stays
    flat. Takes the command line's options as keywords (below).

    Returns
    -------
    montage.result.Result
        The manifest (a dict, also written to ``out/manifest.json``) with ``.path``,
        ``.canvas(layer)`` and an inline thumbnail for notebooks. ``out=None`` renders into a
        temporary folder that lives as long as the result.
    """
    return run(FeaturesOptions(model=model, images=images, out=out, **options))
