"""Filters: every kernel of conv layers, one Deep Zoom image per layer, one page."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ._output import check_out, input_paths, staged
from .canvas import allocate, check_fits, paint
from .console import note, progress
from .errors import MontageError
from .layout import LAYER_GAP, Grid, near_square, scale_at_least, scale_at_most, shelf_pack
from .manifest import finish, header, norm_entry, write_values
from .normalize import GRID_MODES, const_index, grid_ranges
from .options import FiltersOptions, api
from .style import Style
from .write import write_block, write_png

PNG_MAX_PIXELS = 16_000_000
DEFAULT_SCALE = 2   # pixels per weight: the page magnifies further, crisply


def filter_grid(shape, rgb, cell, gap):
    """Grid and kind of a conv kernel of shape (kh, kw, in, out).

    Kind 'filters': row i = filter i, column j = input channel j. Kind 'rgb' (a
    3-channel layer with ``rgb``): cell i = filter i, its three channels as colour.
    """
    kh, kw, cin, cout = shape
    scale = DEFAULT_SCALE if cell is None else scale_at_most(cell, kh, kw)
    if rgb and cin == 3:
        rows, cols = near_square(cout)
        return Grid(rows, cols, cout, kh, kw, scale, gap), "rgb"
    return Grid(cout, cin, cout * cin, kh, kw, scale, gap), "filters"


def filter_cells(kernel, kind, input_order):
    """The kernel as cells (kh, kw, n, samples): cell ``i * in + j`` is filter i, channel j."""
    kh, kw, cin, cout = kernel.shape
    if kind == "rgb":
        order = [2, 1, 0] if input_order == "bgr" else [0, 1, 2]   # show R, G, B whatever is stored
        return np.ascontiguousarray(kernel[:, :, order, :].transpose(0, 1, 3, 2))
    return np.ascontiguousarray(kernel.transpose(0, 1, 3, 2)).reshape(kh, kw, cout * cin, 1)


def _flat_png(src, grid, ranges, lut, bands, const, png_cell, path):
    """Write the grid at ``png_cell`` pixels per kernel side where it stays small; True if written."""
    scale = scale_at_least(png_cell, grid.cell_h, grid.cell_w)
    pgrid = Grid(grid.rows, grid.cols, grid.n, grid.cell_h, grid.cell_w, scale, grid.gap)
    if pgrid.height * pgrid.width > PNG_MAX_PIXELS:
        return False
    canvas = allocate(pgrid.height, pgrid.width, bands)
    paint(src, pgrid, *ranges, lut, canvas, const_index=const)
    write_png(canvas, path)
    return True


def _draw_layer(layer, name, folder, loaded, opts, style):
    """Draw and write one layer; returns its manifest block and its tile source."""
    from .graph import kernel_of

    kernel = kernel_of(layer)
    grid, kind = filter_grid(kernel.shape, opts.rgb, opts.cell, style.gap)
    src = filter_cells(kernel, kind, loaded.input_order)
    mode = "cell" if kind == "rgb" and opts.normalize == "filter" else opts.normalize
    lo, hi, glo, ghi = grid_ranges(src, mode, grid.cols, style.clip)
    lut, bands = style.lut_for([src], rgb=(kind == "rgb"))
    canvas = allocate(grid.height, grid.width, bands)   # the kernel writes every pixel
    paint(src, grid, lo, hi, lut, canvas, const_index=const_index(mode))
    base = folder / "layers" / name
    dzi = write_block(canvas, base, opts.tile_format, opts.tiff, opts.quiet)
    del canvas
    flat = opts.png and _flat_png(src, grid, (lo, hi), lut, bands, const_index(mode), opts.png_cell,
                                  base.with_suffix(".png"))
    write_values(base.with_suffix(".values.js"), f"layers/{name}.values.js", src)
    block = {
        "layer": layer.name, "kind": kind, "kernel_shape": list(kernel.shape),
        "grid": grid.to_dict(), "normalize": norm_entry(mode, style.clip, glo, ghi, GRID_MODES[mode]),
        "rows": "filter", "cols": "channel" if kind == "filters" else None,
        "channel_order": ("RGB" if kind == "rgb" else None),
        "dzi": f"layers/{name}.dzi", "png": f"layers/{name}.png" if flat else None,
        "tiff": f"layers/{name}.tif" if opts.tiff else None,
        "values": f"layers/{name}.values.js",
    }
    return block, {"dzi": dict(dzi, Url=f"layers/{dzi['Url']}"), "path": f"layers/{name}.dzi"}


def run(opts: FiltersOptions) -> dict:
    """Run :func:`filters` for an options object; returns the manifest."""
    from .graph import find_layers, slug
    from .models import load_model

    t0 = time.perf_counter()
    style = Style(opts)
    inputs = input_paths(opts.model, opts.weights)
    check_out(opts.out, opts.overwrite, inputs)
    loaded = load_model(opts.model, opts.weights, opts.seed, opts.unsafe)
    chosen = find_layers(loaded.model, opts.layers)
    if opts.rgb and opts.normalize == "channel" and any(x.kernel.shape[2] == 3 for x in chosen):
        raise MontageError("--rgb shows the 3 input channels together: use --normalize global, filter, "
                           "cell or symmetric")
    for layer in chosen:  # every canvas must fit before any work starts
        g, _ = filter_grid(tuple(layer.kernel.shape), opts.rgb, opts.cell, style.gap)
        check_fits(g.height, g.width, 3, f"canvas of {layer.name}")
    blocks, tiles = [], []
    with staged(opts.out, opts.overwrite, inputs, lambda msg: note(msg, opts.quiet)) as tmp:
        (tmp / "layers").mkdir()
        with progress(len(chosen), "filters", "layer", opts.quiet) as bar:
            for i, layer in enumerate(chosen):
                block, tile = _draw_layer(layer, f"{i:02d}_{slug(layer.name)}", tmp, loaded, opts, style)
                blocks.append(block)
                tiles.append(tile)
                bar.update(1)
        grids = [Grid(**b["grid"]) for b in blocks]
        origins, (wh, ww) = shelf_pack([(g.height, g.width) for g in grids], LAYER_GAP)
        for b, t, (y, x) in zip(blocks, tiles, origins):
            b["x"], b["y"] = x, y
            t["x"], t["y"] = x, y
        manifest = {**header("filters", loaded, style),
                    "views": [{"name": "filters", "world": [ww, wh], "tiles": tiles, "blocks": blocks}]}
        finish(tmp, manifest, f"{loaded.name} filters", opts.quiet)
    note(f"{sum(b['grid']['n'] for b in blocks):,} kernels of {len(blocks)} layer(s) -> "
         f"{Path(opts.out) / 'index.html'} ({time.perf_counter() - t0:.1f} s)", opts.quiet)
    return manifest


@api(FiltersOptions, ("model", "layers", "out"))
def filters(model="vgg16", layers="block1_conv2", out="montage-filters", **options) -> dict:
    """Render every kernel of conv layers as Deep Zoom images with a viewer page.

    Row ``i`` of a layer's grid is filter (output channel) ``i``, column ``j`` input
    channel ``j``; each weight becomes a square of ``cell // kernel_size`` pixels
    (2 by default). Takes the command line's options as keywords (below).

    Returns
    -------
    dict
        The manifest, also written to ``out/manifest.json``.

    Examples
    --------
    >>> import montage
    >>> m = montage.filters("vgg16", "block1_conv2", out="b1c2", quiet=True)  # doctest: +SKIP
    >>> m["views"][0]["blocks"][0]["grid"]["rows"]                            # doctest: +SKIP
    64
    """
    return run(FiltersOptions(model=model, layers=layers, out=out, **options))
