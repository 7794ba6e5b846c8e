"""Examples' pictures: each top image's patch cut, tinted and scaled into its cell, channels in
column bands (see :func:`examples_grid`)."""

from __future__ import annotations

import numpy as np

from ._lock import check_stop
from .canvas import allocate, check_fits
from .console import progress
from .images import read_rgb
from .layout import Grid
from .preprocess import preprocess
from .topk import NO_IMAGE


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


def examples_grid(channels, top, cell, gap, lead=0):
    """(grid, rows per band): channel c's examples sit in grid row ``c % rows``, columns
    ``(c // rows) * (lead + top + 1) + lead + rank``, after ``lead`` columns of its own (its feature
    visualisation); the column after each band is left empty."""
    rows = band_rows(channels, top + lead)
    bands = -(-channels // rows)
    cols = bands * (lead + top + 1) - 1
    return Grid(rows, cols, rows * cols, cell, cell, 1, gap), rows


def _optima(canvases, layouts, tops, optima, cell):
    """Each channel's feature visualisation (``optima``: per layer pictures (C, h, w, 3), or None) in
    the first column of its band (``tops``: each layer's examples per channel)."""
    for canvas, (g, rows), k, pictures in zip(canvases, layouts, tops, optima):
        for c, pic in enumerate(pictures if pictures is not None else []):
            y0, x0 = (c % rows) * g.pitch_y, (c // rows) * (k + 2) * g.pitch_x
            canvas[y0:y0 + cell, x0:x0 + cell, :3] = _to_cell(pic, cell)


def draw(states, fields, names, shapes, paths, input_shape, opts, style, fwd=None, optima=None):
    """Every layer's canvas (rows = channels, columns = ranks, after each channel's feature
    visualisation where ``optima`` gives them) and its manifest entries."""

    cell, gap = int(opts.cell), style.gap
    lead = 1 if optima else 0
    layouts = [examples_grid(s.channels, s.k, cell, gap, lead) for s in states]
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
    resize = fwd.loaded.resize if fwd is not None else "stretch"
    with progress(len(order), "drawing examples", "img", opts.quiet) as bar:
        for start in range(0, len(order), batch):
            check_stop()
            chunk = order[start:start + batch]
            rgbs = [read_rgb(paths[i], input_shape[:2], resize) for i in chunk]
            maps = fwd.outputs(preprocess(np.stack(rgbs), fwd.loaded.preprocess, fwd.input_shape[2],
                                          fwd.loaded.bgr)) if tint else None
            for b, i in enumerate(chunk):
                for j, r, c in slots[i]:
                    ys, xs, box_of = geometry[j]
                    box = box_of(ys[r, c], xs[r, c])
                    patch = _crop(rgbs[b], box, fill)
                    if maps is not None and fields[j] is not None:
                        patch = _tint(patch, maps[j][b, :, :, c], box, fields[j], scale[j][c])
                    g = grids[j]
                    rows = layouts[j][1]
                    y0, x0 = (c % rows) * g.pitch_y, ((c // rows) * (lead + states[j].k + 1) + lead + r) * g.pitch_x
                    canvases[j][y0:y0 + cell, x0:x0 + cell, :3] = _to_cell(patch, cell)
            bar.update(len(chunk))
    if optima:
        _optima(canvases, layouts, [st.k for st in states], optima, cell)
    return layouts, canvases, geometry
