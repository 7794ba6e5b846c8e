"""End to end: model -> arrays -> canvases -> files and page."""

import base64
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

from . import __version__
from ._output import check_out, shown, staged
from .colormap import colormap_lut, extended_lut, identity_lut, is_gray, parse_color
from .errors import MontageError
from .layout import Grid, near_square, shelf_pack
from .normalize import GRID_MODES, grid_ranges, group_range
from .tile import allocate, check_fits, clear, tile
from .write import check_tile_format, dzi_descriptor, write_dzi, write_png, write_tiff

LAYER_GAP = 32          # world pixels between layer blocks
PNG_MAX_PIXELS = 16_000_000


def _progress(total, desc, unit, quiet):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=quiet, file=sys.stderr,
                dynamic_ncols=True, leave=False)


def _note(msg, quiet):
    if not quiet:
        print(f"montage: {msg}", file=sys.stderr)


class Style:
    """Validated colour, normalisation and output options, checked before any model is loaded."""

    def __init__(self, cmap, normalize, clip, gap, gap_color, nan_color, empty_color, modes,
                 tile_format="png", cell=None):
        check_tile_format(tile_format)
        if cell is not None and int(cell) < 1:
            raise MontageError(f"--cell {cell} must be at least 1 pixel")
        if normalize not in modes:
            raise MontageError(f"unknown normalisation {normalize!r}: choose one of {', '.join(modes)}")
        if not 0 <= float(clip) < 50:
            raise MontageError(f"--clip {clip} is out of range: give a percentile in [0, 50)")
        if int(gap) < 0:
            raise MontageError(f"--gap {gap} must be 0 or more pixels")
        self.cmap, self.normalize, self.clip, self.gap = cmap, normalize, float(clip), int(gap)
        self.colors = colormap_lut(cmap)
        self.gap_rgb, self.nan_rgb = parse_color(gap_color), parse_color(nan_color)
        self.empty_rgb = parse_color(empty_color)
        self.lut = extended_lut(self.colors, self.nan_rgb, self.gap_rgb, self.empty_rgb)
        self.rgb_lut = extended_lut(identity_lut(), self.nan_rgb, self.gap_rgb, self.empty_rgb)

    def lut_for(self, arrays, rgb=False):
        """(lut, bands): one band when every colour the data in ``arrays`` can use is grey."""
        if rgb:
            return self.rgb_lut, 3
        if not is_gray(np.delete(self.lut, 256, axis=0)):
            return self.lut, 3
        if is_gray(self.lut) or not any(np.isnan(a).any() for a in arrays):
            return self.lut, 1
        return self.lut, 3

    def manifest(self):
        return {"colormap": {"name": self.cmap, "lut": self.colors.tolist()},
                "gap_color": list(self.gap_rgb), "nan_color": list(self.nan_rgb)}


def _norm_entry(mode, clip, glo, ghi, group=None):
    group = group or {"global": "grid", "symmetric": "grid", "filter": "row", "channel": "col",
                      "cell": "cell"}[mode]
    # float32 arrays: compact while many images accumulate; written out by json_default
    return {"mode": mode, "clip": clip, "group": group,
            "lo": np.asarray(glo, np.float32), "hi": np.asarray(ghi, np.float32)}


def json_default(obj):
    """JSON for numpy values, 7 significant digits (float32 precision)."""
    if isinstance(obj, np.ndarray):
        return [float(f"{v:.7g}") for v in obj.ravel().tolist()]
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def _write_block(canvas, base, tile_format, tiff, quiet):
    big = canvas.shape[0] * canvas.shape[1] > 30_000_000   # a bar only where the write takes a while
    bar = _progress(100, f"writing {base.name}", "%", quiet) if big else None
    try:
        dzi = write_dzi(canvas, base, tile_format, bar=bar)
        if tiff:
            write_tiff(canvas, base.with_suffix(".tif"))
    finally:
        if bar is not None:
            bar.close()
    return dzi


def _values_js(path, key, src):
    """Kernel values for the page's readout, as a script (pages on file:// cannot fetch)."""
    b64 = base64.b64encode(np.ascontiguousarray(src, "<f4").tobytes()).decode("ascii")
    path.write_text(f"montageValues({json.dumps(key)},\"{b64}\",{json.dumps(list(src.shape))});\n")


def _filter_grid(shape, rgb, cell, gap):
    """Grid and kind of a conv kernel of shape (kh, kw, in, out)."""
    kh, kw, cin, cout = shape
    scale = 2 if cell is None else max(1, int(cell) // max(kh, kw))
    if rgb and cin == 3:
        rows, cols = near_square(cout)
        return Grid(rows, cols, cout, kh, kw, scale, gap), "rgb"
    return Grid(cout, cin, cout * cin, kh, kw, scale, gap), "filters"


def _filter_cells(kernel, kind, input_order):
    """The kernel as cells (kh, kw, n, samples): cell ``i * in + j`` is filter i, channel j."""
    kh, kw, cin, cout = kernel.shape
    if kind == "rgb":
        order = [2, 1, 0] if input_order == "bgr" else [0, 1, 2]   # show R, G, B whatever is stored
        return np.ascontiguousarray(kernel[:, :, order, :].transpose(0, 1, 3, 2))
    return np.ascontiguousarray(kernel.transpose(0, 1, 3, 2)).reshape(kh, kw, cout * cin, 1)


def filters(model="vgg16", layers="block1_conv2", out="montage-filters", *, weights=None, seed=0,
            unsafe=False, cell=None, gap=1, gap_color="white", nan_color="magenta", normalize="global",
            clip=0.0, cmap="gray", rgb=False, tile_format="png", tiff=False, png=True, png_cell=24,
            overwrite=False, quiet=False):
    """Render every kernel of conv layers as Deep Zoom images with a viewer page.

    Row ``i`` of a layer's grid is filter (output channel) ``i``, column ``j`` input
    channel ``j``; each weight becomes a square of ``cell // kernel_size`` pixels.

    Parameters
    ----------
    model : str or keras.Model
        'vgg16' or a ``.keras``/``.h5`` path (see :func:`montage.models.load_model`).
    layers : str or list of str
        Conv layer names, or 'all'.
    out : path
        Output folder (written to a temporary sibling, renamed when complete).
    weights, seed, unsafe
        See :func:`montage.models.load_model`.
    cell : int, optional
        Pixels per kernel side in the written image (default: 2 per weight).
    gap, gap_color, nan_color
        Pixels between kernels and their colour; colour of NaN weights.
    normalize : {'global', 'filter', 'channel', 'cell', 'symmetric'}
    clip : float
        Percentile clipped at each end of each normalisation group.
    cmap : str
        Any matplotlib colormap.
    rgb : bool
        Show layers with 3 input channels as one colour kernel per filter (R, G, B).
    tile_format : {'png', 'webp', 'jpeg'}
    tiff, png : bool
        Also write a pyramidal TIFF; write a flat PNG where small enough.
    png_cell : int
        Pixels per kernel side in the flat PNG.

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
    from .models import find_layers, kernel_of, load_model, slug

    t0 = time.perf_counter()
    style = Style(cmap, normalize, clip, gap, gap_color, nan_color, gap_color, GRID_MODES, tile_format, cell)
    inputs = model_inputs(model, weights)
    check_out(out, overwrite, inputs)
    loaded = load_model(model, weights, seed, unsafe)
    chosen = find_layers(loaded.model, layers)
    if rgb and normalize == "channel" and any(x.kernel.shape[2] == 3 for x in chosen):
        raise MontageError("--rgb shows the 3 input channels together: use --normalize global, filter, "
                           "cell or symmetric")
    for layer in chosen:  # every canvas must fit before any work starts
        g, _ = _filter_grid(tuple(layer.kernel.shape), rgb, cell, style.gap)
        check_fits(g.height, g.width, 3, f"canvas of {layer.name}")
    blocks, tiles, sizes = [], [], []
    with staged(out, overwrite, inputs, lambda msg: _note(msg, quiet)) as tmp:
        (tmp / "layers").mkdir()
        with _progress(len(chosen), "filters", "layer", quiet) as bar:
            for i, layer in enumerate(chosen):
                kernel = kernel_of(layer)
                grid, kind = _filter_grid(kernel.shape, rgb, cell, style.gap)
                src = _filter_cells(kernel, kind, loaded.input_order)
                mode = "cell" if kind == "rgb" and normalize == "filter" else normalize
                lo, hi, glo, ghi = grid_ranges(src, mode, grid.cols, style.clip)
                const = 128 if mode == "symmetric" else 0
                lut, bands = style.lut_for([src], rgb=(kind == "rgb"))
                canvas = allocate(grid.height, grid.width, bands)   # the kernel writes every pixel
                tile(src, grid, lo, hi, lut, canvas, const_index=const)
                name = f"{i:02d}_{slug(layer.name)}"
                base = tmp / "layers" / name
                dzi = _write_block(canvas, base, tile_format, tiff, quiet)
                del canvas
                flat = None
                if png:
                    pscale = max(1, math.ceil(png_cell / max(grid.cell_h, grid.cell_w)))
                    pgrid = Grid(grid.rows, grid.cols, grid.n, grid.cell_h, grid.cell_w, pscale, style.gap)
                    if pgrid.height * pgrid.width <= PNG_MAX_PIXELS:
                        pc = allocate(pgrid.height, pgrid.width, bands)
                        tile(src, pgrid, lo, hi, lut, pc, const_index=const)
                        write_png(pc, base.with_suffix(".png"))
                        flat = f"layers/{name}.png"
                _values_js(base.with_suffix(".values.js"), f"layers/{name}.values.js", src)
                blocks.append({
                    "layer": layer.name, "kind": kind, "kernel_shape": list(kernel.shape),
                    "grid": grid.to_dict(), "normalize": _norm_entry(mode, style.clip, glo, ghi),
                    "rows": "filter", "cols": "channel" if kind == "filters" else None,
                    "channel_order": ("RGB" if kind == "rgb" else None),
                    "dzi": f"layers/{name}.dzi", "png": flat,
                    "tiff": f"layers/{name}.tif" if tiff else None,
                    "values": f"layers/{name}.values.js",
                })
                tiles.append({"dzi": dict(dzi, Url=f"layers/{dzi['Url']}"), "path": f"layers/{name}.dzi"})
                sizes.append((grid.height, grid.width))
                bar.update(1)
        origins, (wh, ww) = shelf_pack(sizes, LAYER_GAP)
        for b, t, (y, x) in zip(blocks, tiles, origins):
            b["x"], b["y"] = x, y
            t["x"], t["y"] = x, y
        manifest = {
            "montage": __version__, "kind": "filters",
            "model": loaded.describe(), "weights": loaded.weights,
            **style.manifest(),
            "views": [{"name": "filters", "world": [ww, wh], "tiles": tiles, "blocks": blocks}],
        }
        _finish(tmp, manifest, f"{loaded.name} filters", quiet)
    _note(f"{sum(b['grid']['n'] for b in blocks):,} kernels of {len(blocks)} layer(s) -> "
          f"{Path(out) / 'index.html'} ({time.perf_counter() - t0:.1f} s)", quiet)
    return manifest


def model_inputs(model, weights, images=()):
    """The files and folders a run reads, which --out must keep clear of."""
    given = [x for x in (model, weights) if isinstance(x, (str, os.PathLike)) and os.path.exists(x)]
    return given + [p for p in images if os.path.exists(p)]


def _finish(tmp, manifest, title, quiet):
    from . import viewer

    # Encoded once, streamed (views can be many); the page inlines this same file.
    with open(tmp / "manifest.json", "w") as f:
        json.dump(manifest, f, allow_nan=False, default=json_default)
    if not viewer.build(tmp, tmp / "manifest.json", title):
        _note("OpenSeadragon is not installed (run `npm ci` in the montage source folder, or set "
              "MONTAGE_OSD_DIR): the page will load it from a CDN and needs a network", quiet)


FEATURE_MODES = ("channel", "layer", "image")


class _Writer:
    """Write atlases on one background thread while the next batch runs through the model.

    At most ``depth`` canvases wait, so memory stays flat however many images there are;
    libvips and the model both release the GIL, so the two really overlap. Written
    canvases are reused: no fresh allocation (and page faults) per image.
    """

    def __init__(self, depth=2):
        from concurrent.futures import ThreadPoolExecutor

        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="montage-write")
        self.pending, self.depth, self.free = [], depth, []

    def canvas(self, height, width, bands, fill):
        """A canvas filled with ``fill``: a written one reused, or a new one."""
        for i, c in enumerate(self.free):
            if c.shape[:2] == (height, width) and c.shape[2] == (1 if bands == 1 else 4):
                return clear(self.free.pop(i), fill)
        return allocate(height, width, bands, fill)

    def submit(self, fn, canvas, *args):
        while len(self.pending) >= self.depth:
            self._retire(self.pending.pop(0))
        self.pending.append((self.pool.submit(fn, canvas, *args), canvas))

    def _retire(self, item):
        future, canvas = item
        future.result()
        self.free.append(canvas)

    def close(self):
        try:
            while self.pending:
                self._retire(self.pending.pop(0))
        finally:
            self.pool.shutdown(wait=True)
            self.free = []


def _atlas_layout(shapes, cell, gap, overlay):
    """Grids of each layer's channels and their origins in one image's atlas.

    ``overlay`` is the (height, width) of the input image shown beside them, or None.
    """
    grids, sizes = [], []
    if overlay:
        sizes.append(tuple(overlay))
    for h, w, c in shapes:
        rows, cols = near_square(c)
        scale = 1 if not cell else max(1, math.ceil(int(cell) / max(h, w)))
        g = Grid(rows, cols, c, h, w, scale, gap)
        grids.append(g)
        sizes.append((g.height, g.width))
    origins, world = shelf_pack(sizes, LAYER_GAP)
    if overlay:
        return grids, origins[1:], origins[0], world
    return grids, origins, None, world


def features(model="vgg16", images=None, out="montage-features", *, layers=None, weights=None, seed=0,
             unsafe=False, batch_size=None, size=None, cell=None, gap=1, gap_color="white",
             nan_color="magenta", normalize="channel", clip=0.0, cmap="viridis", tile_format="png",
             tiff=False, skip_bad=False, overlay=False, overwrite=False, quiet=False):
    """Render every channel of every chosen layer for each image: one atlas per image.

    All layers' activations come from one multi-output model run in batches; each
    image's atlas is tiled, written and dropped before the next, so memory stays flat.

    Parameters
    ----------
    model, weights, seed, unsafe
        See :func:`montage.models.load_model`.
    images : path or list, optional
        Image files, folders or globs; default: matplotlib's sample photograph.
    out : path
        Output folder (written to a temporary sibling, renamed when complete).
    layers : list of str, optional
        Layer names; default every conv layer; 'all' adds the pooling layers.
    batch_size : int, optional
        Images per forward pass (default: sized to the available memory, at most 32).
    size : int, optional
        Input side (default 224 for vgg16, else the model's).
    cell : int, optional
        Smallest side, in pixels, a feature map is shown at (default: 1 pixel per activation).
    normalize : {'channel', 'layer', 'image'}
        Range per feature map, per layer, or over all layers of an image.
    clip, cmap, gap, gap_color, nan_color, tile_format, tiff, overwrite, quiet
        As for :func:`filters`.
    skip_bad : bool
        Render the readable images and list the bad ones in the manifest, instead of stopping.
    overlay : bool
        Show the input image beside each atlas.

    Returns
    -------
    dict
        The manifest, also written to ``out/manifest.json``.
    """
    from . import images as imgs
    from .extract import DEFAULT_SIZE, device, prepare
    from .models import load_model, slug

    t0 = time.perf_counter()
    style = Style(cmap, normalize, clip, gap, gap_color, nan_color, gap_color, FEATURE_MODES, tile_format, cell)
    if batch_size is not None and int(batch_size) < 1:
        raise MontageError(f"--batch-size {batch_size} must be at least 1")
    if size is not None and int(size) < imgs.MIN_SIDE:
        raise MontageError(f"--size {size} is too small: the model needs at least {imgs.MIN_SIDE}")
    paths = imgs.find_images(images)
    specs = [images] if isinstance(images, (str, os.PathLike)) else list(images or [])
    inputs = model_inputs(model, weights, paths + specs)
    check_out(out, overwrite, inputs)
    with _progress(len(paths), "checking images", "img", quiet or len(paths) < 50) as checking:
        good, bad = imgs.check(paths, checking)
    if bad and not skip_bad:
        more = f" ({len(bad)} of {len(paths)} images are bad)" if len(bad) > 1 else ""
        raise MontageError(f"{shown(bad[0][0])}: {bad[0][1]}{more}; nothing was written: fix or remove it, "
                           "or pass --skip-bad to render the others")
    if not good:
        raise MontageError(f"none of the {len(paths)} images can be read: {shown(bad[0][0])}: {bad[0][1]}")
    for p, why in bad:
        _note(f"skipping {shown(p)}: {why}", quiet)

    loaded = load_model(model, weights, seed, unsafe, size=size or DEFAULT_SIZE)
    fwd = prepare(loaded, layers, size, batch_size, note=lambda msg: _note(msg, quiet))
    chosen, shapes, (ih, iw, _) = fwd.names, fwd.shapes, fwd.input_shape
    grids, origins, input_origin, (wh, ww) = _atlas_layout(shapes, cell, style.gap,
                                                           (ih, iw) if overlay else None)
    check_fits(wh, ww, 3, "atlas of one image")
    _note(f"{len(good)} image(s) x {sum(s[2] for s in shapes):,} feature maps of {len(chosen)} layers; "
          f"forward pass on {device()}, batches of {fwd.batch_size}", quiet)

    views = []
    with staged(out, overwrite, inputs, lambda msg: _note(msg, quiet)) as tmp:
        (tmp / "images").mkdir()
        writer = _Writer()
        bar = _progress(len(good), "images", "img", quiet)
        try:
            for batch, outs in fwd.run(good):
                for j, path in enumerate(batch.paths):
                    name = f"{len(views):05d}_{slug(Path(path).stem)}"
                    view = _atlas(outs, j, batch.rgb[j] if overlay else None, chosen, grids, origins,
                                  input_origin, (wh, ww), style, writer, tmp / "images" / name,
                                  tile_format, tiff)
                    view["name"] = str(path)
                    views.append(view)
                del outs, batch
                bar.update(len(views) - bar.n)
            writer.close()
        finally:
            bar.close()
            writer.pool.shutdown(wait=True)
        manifest = {
            "montage": __version__, "kind": "features",
            "model": loaded.describe(), "weights": loaded.weights, "input_size": ih,
            "device": device(), **style.manifest(),
            "skipped": [{"path": str(p), "reason": why} for p, why in bad],
            "views": views,
        }
        _finish(tmp, manifest, f"{loaded.name} feature maps", quiet)
    dt = time.perf_counter() - t0
    _note(f"{len(views)} image(s) -> {Path(out) / 'index.html'} ({dt:.1f} s, "
          f"{len(views) / dt:.2f} images/s)", quiet)
    return manifest


def _atlas(outs, j, rgb, chosen, grids, origins, input_origin, world, style, writer, base,
           tile_format, tiff):
    """Tile image ``j`` of a batch into its atlas, queue the write, return its view entry."""
    wh, ww = world
    acts = [o[j][..., None] for o in outs]     # (H, W, C, 1) views, no copies
    lut, bands = style.lut_for(acts)
    canvas = writer.canvas(wh, ww, bands, style.empty_rgb)
    if rgb is not None:
        y, x = input_origin
        if bands == 3:
            canvas[y:y + rgb.shape[0], x:x + rgb.shape[1], :3] = rgb
        else:
            canvas[y:y + rgb.shape[0], x:x + rgb.shape[1], 0] = rgb.mean(-1)
    if style.normalize == "image":
        ilo, ihi = group_range(np.concatenate([a.ravel() for a in acts])[None, :], style.clip)
    blocks = []
    for name, a, g, (y, x) in zip(chosen, acts, grids, origins):
        if style.normalize == "image":
            lo, hi, glo, ghi = ilo[0], ihi[0], ilo, ihi   # tile() spreads a scalar range over all cells
        else:
            lo, hi, glo, ghi = grid_ranges(a, "cell" if style.normalize == "channel" else "global",
                                           g.cols, style.clip)
        tile(a, g, lo, hi, lut, canvas, origin=(y, x))
        group = "cell" if style.normalize == "channel" else "grid"
        blocks.append({"layer": name, "kind": "features", "map_shape": list(a.shape[:3]),
                       "grid": g.to_dict(), "x": x, "y": y,
                       "normalize": _norm_entry(style.normalize, style.clip, glo, ghi, group)})
    rel = f"images/{base.name}"
    writer.submit(_write_block, canvas, base, tile_format, tiff, True)
    dzi = dzi_descriptor(f"{rel}_files/", ww, wh, tile_format)
    view = {"world": [ww, wh], "tiles": [{"dzi": dzi, "x": 0, "y": 0, "path": f"{rel}.dzi"}],
            "blocks": blocks}
    if rgb is not None:
        view["input"] = {"x": input_origin[1], "y": input_origin[0], "size": int(rgb.shape[0])}
    return view
