"""Filters: every kernel of conv layers, one Deep Zoom image per layer, one page."""

from __future__ import annotations

import time

from ._lock import check_stop
from ._output import check_out, input_paths, staged
from .background import Writer
from .canvas import allocate, check_fits, paint, run_engine
from .console import counted, loading, note, page_of, progress, status
from .errors import MontageError
from .graph import find_layers, kernels, slug
from .kernel_cells import cell_rounding, kernel_cells, kernel_grid
from .layout import LAYER_GAP, Grid, scale_at_least, shelf_pack
from .manifest import finish, header, norm_entry, write_values
from .models import load_kernels
from .normalize import GRID_MODES, const_index, grid_ranges
from .options import FiltersOptions
from .result import Result, in_temporary_folder
from .signatures import api
from .style import Style
from .write import dzi_descriptor, sibling, write_block, write_png

PNG_MAX_PIXELS = 16_000_000


def _separate(canvas, grid, depth, fill):
    """Paint the columns between a 3-D kernel's depth slices with ``fill`` (the gap colour)."""
    slice_w = (grid.cell_w + 1) // depth - 1
    for c in range(grid.cols):
        for d in range(1, depth):
            x = c * grid.pitch_x + (d * (slice_w + 1) - 1) * grid.scale
            canvas[:grid.height, x:x + grid.scale] = fill


def _draw(src, grid, ranges, lut, bands, const, depth, gap_rgb, engine="auto"):
    """A canvas with the grid painted (and a 3-D kernel's slices separated)."""
    canvas = allocate(grid.height, grid.width, bands)   # the kernel writes every pixel
    paint(src, grid, *ranges, lut, canvas, const_index=const, engine=engine)
    if depth > 1:
        _separate(canvas, grid, depth, gap_rgb[0] if bands == 1 else (*gap_rgb, 255))
    return canvas


def _png_grid(grid, depth, png_cell):
    """The grid of the flat PNG (``png_cell`` pixels per kernel side), or None where too large."""
    scale = scale_at_least(png_cell, grid.cell_h, grid.cell_w if depth == 1 else grid.cell_h)
    pgrid = Grid(grid.rows, grid.cols, grid.n, grid.cell_h, grid.cell_w, scale, grid.gap)
    return None if pgrid.height * pgrid.width > PNG_MAX_PIXELS else pgrid


def _pixels(k, grid, opts):
    """Pixels this block paints: its Deep Zoom canvas and its flat PNG."""
    depth = k.weights.shape[0] if k.weights.ndim == 5 else 1
    grids = [grid] + ([_png_grid(grid, depth, opts.png_cell)] if opts.png else [])
    return sum(g.height * g.width for g in grids if g is not None)


def _write_layer(canvas, base, opts, values_path, key, src):
    """The layer's pyramid (and TIFF), then its weights for the page's readout."""
    write_block(canvas, base, opts.tile_format, opts.tiff, opts.quiet)
    write_values(values_path, key, src)


def _mode(kind, normalize):
    """The normalisation a block gets: rows and columns mean filters and input channels only in
    'filters' blocks; elsewhere a filter is a cell."""
    if kind != "filters" and normalize in ("filter", "channel"):
        return "cell"
    return normalize


def _draw_layer(k, name, folder, loaded, opts, style, writer, engine):
    """Draw one kernel block and queue its writing; returns its manifest block and tile source."""
    grid, kind = kernel_grid(k, opts.rgb, opts.cell, style.gap)
    src = kernel_cells(k, kind, loaded.input_order)
    depth = k.weights.shape[0] if k.weights.ndim == 5 else 1
    mode = _mode(kind, opts.normalize)
    lo, hi, glo, ghi = grid_ranges(src, mode, grid.cols, style.clip)
    lut, bands = style.lut_for([src], rgb=(kind == "rgb"))
    const = const_index(mode)
    base = folder / "layers" / name
    canvas = _draw(src, grid, (lo, hi), lut, bands, const, depth, style.gap_rgb, engine)
    dzi = dzi_descriptor(base.name + "_files/", canvas.shape[1], canvas.shape[0], opts.tile_format)
    writer.submit(_write_layer, canvas, base, opts, sibling(base, ".values.js"), f"layers/{name}.values.js", src)
    pgrid = _png_grid(grid, depth, opts.png_cell) if opts.png else None
    if pgrid is not None:   # meanwhile, on this thread
        write_png(_draw(src, pgrid, (lo, hi), lut, bands, const, depth, style.gap_rgb, engine), sibling(base, ".png"))
    flat = pgrid is not None
    block = {
        "layer": k.name, "kind": kind, "kernel_shape": list(k.stored_shape),
        "grid": grid.to_dict(),
        "normalize": norm_entry(mode, style.clip, glo, ghi, GRID_MODES[mode]),
        "rows": "filter" if kind != "depthwise" else None, "cols": "channel" if kind == "filters" else None,
        "channel_order": ("RGB" if kind == "rgb" else None),
        "dzi": f"layers/{name}.dzi", "png": f"layers/{name}.png" if flat else None,
        "tiff": f"layers/{name}.tif" if opts.tiff else None,
        "values": f"layers/{name}.values.js",
    }
    extra = {"op": k.op, "groups": k.groups if k.groups > 1 else None, "depth": depth if depth > 1 else None,
             "multiplier": k.weights.shape[3] if kind == "depthwise" else None}
    block.update({key: v for key, v in extra.items() if v is not None and (key != "op" or k.op != "Conv2D")})
    return block, {"dzi": dict(dzi, Url=f"layers/{dzi['Url']}"), "path": f"layers/{name}.dzi"}


def run(opts: FiltersOptions) -> Result:
    """Run :func:`filters` for an options object; returns the manifest."""

    t0 = time.perf_counter()
    opts, temporary = in_temporary_folder(opts)
    style = Style(opts)
    inputs = input_paths(opts.model, opts.weights)
    check_out(opts.out, opts.overwrite, inputs)
    with status(f"loading {loading(opts.model)} ...", opts.quiet):
        loaded = load_kernels(opts.model, opts.weights, opts.seed, opts.unsafe)
    names = opts.layers or (["block1_conv2"] if loaded.name == "vgg16" else ["all"])
    chosen = [k for node in find_layers(loaded.model, names) for k in kernels(node)]
    empty = [k for k in chosen if k.weights.size == 0]
    if empty and (len(empty) == len(chosen) or list(names) != ["all"]):
        raise MontageError(f"layer {empty[0].name!r} has an empty kernel (shape {tuple(empty[0].stored_shape)}): "
                           "nothing to draw; choose another --layer")
    if empty:
        note(f"skipping {counted(len(empty), 'layer')} with an empty kernel: {', '.join(k.name for k in empty)}", opts.quiet)
        chosen = [k for k in chosen if k.weights.size]
    grids = [kernel_grid(k, opts.rgb, opts.cell, style.gap) for k in chosen]
    if cell_rounding(opts.cell, chosen, grids):
        note(cell_rounding(opts.cell, chosen, grids), opts.quiet)
    if opts.rgb and opts.normalize == "channel" and any(kind == "rgb" for _, kind in grids):
        raise MontageError("--rgb shows the 3 input channels together: use --normalize global, filter, "
                           "cell or symmetric")
    for k, (g, _) in zip(chosen, grids):  # every canvas must fit before any work starts
        check_fits(g.height, g.width, 4, f"canvas of {k.name}")   # colour canvases store 4 bytes a pixel
    blocks, tiles = [], []
    with staged(opts.out, opts.overwrite, inputs, lambda msg: note(msg, opts.quiet)) as tmp:
        (tmp / "layers").mkdir()
        total = sum(_pixels(k, g, opts) for k, (g, _) in zip(chosen, grids))
        engine = run_engine(total)
        with progress(len(chosen), "filters", "layer", opts.quiet) as bar, Writer(reuse=False) as writer:
            for i, k in enumerate(chosen):
                check_stop()
                block, tile = _draw_layer(k, f"{i:02d}_{slug(k.name)}", tmp, loaded, opts, style, writer, engine)
                blocks.append(block)
                tiles.append(tile)
                bar.update(1)
        grids = [Grid(**b["grid"]) for b in blocks]
        origins, (wh, ww) = shelf_pack([(g.height, g.width) for g in grids], LAYER_GAP)
        for b, t, (y, x) in zip(blocks, tiles, origins):
            b["x"], b["y"] = x, y
            t["x"], t["y"] = x, y
        manifest = {**header("filters", loaded, style, (opts.model, opts.weights)),
                    "views": [{"name": "filters", "world": [ww, wh], "tiles": tiles, "blocks": blocks}]}
        finish(tmp, manifest, f"{loaded.name} filters", opts.quiet)
    no_png = sum(b["png"] is None for b in blocks) if opts.png else 0
    if no_png:
        note(f"no flat PNG for {no_png} of {counted(len(blocks), 'layer')} (over {PNG_MAX_PIXELS // 1_000_000} megapixels "
             f"at --png-cell {opts.png_cell}): their Deep Zoom images hold every kernel", opts.quiet)
    note(f"{counted(sum(b['grid']['n'] for b in blocks), 'kernel')} of {counted(len(blocks), 'layer')} -> "
         f"{page_of(opts.out, temporary)} ({time.perf_counter() - t0:.1f} s)", opts.quiet)
    return Result(manifest, opts.out, time.perf_counter() - t0, temporary)


@api(FiltersOptions, ("model", "layers", "out"))
def filters(model="vgg16", layers=None, out="montage-filters", **options) -> Result:
    """Render every kernel of conv layers as Deep Zoom images with a viewer page.

    Row ``i`` of a layer's grid is filter (output channel) ``i``, column ``j`` input
    channel ``j``; each weight becomes a square of ``cell // kernel_size`` pixels
    (2 by default). Takes the command line's options as keywords (below).

    Returns
    -------
    montage.result.Result
        The manifest (a dict, also written to ``out/manifest.json``) with ``.path``,
        ``.canvas(layer)`` and an inline thumbnail for notebooks. ``out=None`` renders into a
        temporary folder that lives as long as the result.

    Examples
    --------
    >>> import montage
    >>> m = montage.filters("vgg16", "block1_conv2", out="b1c2", quiet=True)  # doctest: +SKIP
    >>> m["views"][0]["blocks"][0]["grid"]["rows"]                            # doctest: +SKIP
    64
    """
    return run(FiltersOptions(model=model, layers=layers, out=out, **options))
