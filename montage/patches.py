"""Examples' pictures: each top image's patch cut, tinted and scaled into its cell, channels in
column bands (see :func:`examples_grid`)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ._lock import check_stop
from .canvas import allocate, check_fits, cores
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
    """Per (rank, channel): (y, x) in the map and the box in input pixels, ``boxes[r, c]`` =
    [top, left, bottom, right] (int64, (k, C, 4)); whole images where ``field`` is None."""
    ys, xs = np.divmod(state.where.astype(np.int64), shape[1])
    if field is None:   # --score mean: the whole image
        whole = np.array([0, 0, int(input_shape[0]), int(input_shape[1])], np.int64)
        return ys, xs, np.broadcast_to(whole, ys.shape + (4,))
    ay, ax = field.axes    # Field.box, for every unit at once
    top, left = ay.start + ys * ay.jump, ax.start + xs * ax.jump
    return ys, xs, np.stack([top, left, top + ay.size, left + ax.size], axis=-1)


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


GROUP = 4096   # distinct cells per kernel call: (GROUP, cell, cell, 3) bytes of scratch (50 MB at 64 px)


def read_all(paths, size, resize, threads=None):
    """``read_rgb`` of each path, on a thread per core (libvips releases the GIL)."""
    threads = min(len(paths), threads or cores())
    if threads <= 1:
        return [read_rgb(p, size, resize) for p in paths]
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(lambda p: read_rgb(p, size, resize), paths))


def summed_areas(rgbs):
    """Summed-area tables (n, H + 1, W + 1, 3) of (n, H, W, 3) uint8 images: ``t[i, y, x]`` is
    ``rgbs[i, :y, :x]``'s sum per channel (uint32 where no sum can overflow it, else int64)."""
    n, h, w, _ = rgbs.shape
    t = np.zeros((n, h + 1, w + 1, 3), np.uint32 if h * w * 255 < 2 ** 32 else np.int64)
    np.cumsum(rgbs, axis=1, dtype=t.dtype, out=t[:, 1:, 1:])
    np.cumsum(t[:, 1:, 1:], axis=2, out=t[:, 1:, 1:])
    return t


def cut_into(canvas, rgbs, which, boxes, dest, cell, fill, sat=None):
    """Cells cut from ``rgbs`` (n, H, W, 3) uint8 into ``canvas`` (from :func:`allocate`):
    ``which[k]``'s patch inside ``boxes[k]`` (top, left, bottom, right; ``fill`` outside the
    image) at ``dest[k]`` (y, x), as :func:`_crop` then :func:`_to_cell` draw it. Each distinct
    (image, box) is cut once (``--score mean`` shows the same whole image for every channel).
    ``sat``: the images' :func:`summed_areas`, where the caller cuts from them more than once."""
    from ._patch_kernels import cut_cells, place_cells

    which = np.ascontiguousarray(which, np.int64)
    boxes = np.ascontiguousarray(np.reshape(boxes, (-1, 4)), np.int64)
    dest = np.ascontiguousarray(np.reshape(dest, (-1, 2)), np.int64)
    rgbs = np.ascontiguousarray(rgbs, np.uint8)
    cell = int(cell)
    if rgbs.ndim != 4 or rgbs.shape[3] != 3 or canvas.ndim != 3 or canvas.shape[2] < 3 or canvas.dtype != np.uint8:
        raise ValueError("cut_into takes (n, H, W, 3) uint8 images and an (H, W, 3 or 4) uint8 canvas")
    if not (len(which) == len(boxes) == len(dest)) or cell < 1:
        raise ValueError("one image index, box and destination per cell; cell >= 1")
    if len(which) == 0:
        return canvas
    if which.min() < 0 or which.max() >= len(rgbs) or (boxes[:, 2] <= boxes[:, 0]).any() \
            or (boxes[:, 3] <= boxes[:, 1]).any():
        raise ValueError("image index out of range or an empty box")
    if dest.min() < 0 or (dest[:, 0] + cell).max() > canvas.shape[0] or (dest[:, 1] + cell).max() > canvas.shape[1]:
        raise ValueError("a cell falls outside the canvas")
    sat = summed_areas(rgbs) if sat is None else np.ascontiguousarray(sat)
    if sat.shape != (rgbs.shape[0], rgbs.shape[1] + 1, rgbs.shape[2] + 1, 3):
        raise ValueError("sat must be the images' summed-area tables")
    keys, index = np.unique(np.column_stack([which, boxes]), axis=0, return_inverse=True)
    index = index.reshape(-1)
    fill = np.ascontiguousarray(np.reshape(fill, -1)[:3], np.uint8)
    threads = min(cores(), -(-len(keys) // 256))   # the kernels release the GIL
    with ThreadPoolExecutor(threads) as pool:
        for g in range(0, len(keys), GROUP):
            part = keys[g:g + GROUP]
            which_p, boxes_p = np.ascontiguousarray(part[:, 0]), np.ascontiguousarray(part[:, 1:])
            cells = np.empty((len(part), cell, cell, 3), np.uint8)
            mine = np.flatnonzero((index >= g) & (index < g + len(part)))
            src, at = np.ascontiguousarray(index[mine] - g), np.ascontiguousarray(dest[mine])
            cut = -(-len(part) // threads)
            list(pool.map(lambda a: cut_cells(sat, which_p[a:a + cut], boxes_p[a:a + cut], cell, fill,
                                              cells[a:a + cut]), range(0, len(part), cut)))
            put = -(-len(src) // threads)
            list(pool.map(lambda a: place_cells(cells, src[a:a + put], at[a:a + put], canvas),
                          range(0, len(src), put)))
    return canvas


def _origins(layout, k, r, c, lead=0):
    """(y, x) canvas pixels of the cells of ranks ``r`` and channels ``c`` (arrays)."""
    g, rows = layout
    return np.stack([(c % rows) * g.pitch_y, ((c // rows) * (lead + k + 1) + lead + r) * g.pitch_x], axis=-1)


def _paint_chunk(chunk, rgbs, maps, ctx):
    """One chunk of decoded images (``chunk``: their indices, ascending) into every layer's
    canvas: tinted cells (``--overlay``) one by one in numpy, the rest by :func:`cut_into` a
    layer at a time."""
    layouts, canvases, geometry, states, fields, scale, cell, fill, lead = ctx
    chunk = np.asarray(chunk, np.int64)
    stacked, sat = np.stack(rgbs), None
    for j, state in enumerate(states):
        r, c = np.nonzero(np.isin(state.images, chunk))
        if not len(r):
            continue
        which = np.searchsorted(chunk, state.images[r, c])
        boxes, dest = geometry[j][2][r, c], _origins(layouts[j], state.k, r, c, lead)
        if maps is not None and fields[j] is not None:
            for b, box, (y0, x0), ch in zip(which, boxes.tolist(), dest, c):
                patch = _tint(_crop(rgbs[b], box, fill), maps[j][b, :, :, ch], box, fields[j], scale[j][ch])
                canvases[j][y0:y0 + cell, x0:x0 + cell, :3] = _to_cell(patch, cell)
            continue
        sat = summed_areas(stacked) if sat is None else sat
        cut_into(canvases[j], stacked, which, boxes, dest, cell, fill, sat)


def draw(states, fields, names, shapes, paths, input_shape, opts, style, fwd=None, optima=None):
    """Every layer's canvas (rows = channels, columns = ranks, after each channel's feature
    visualisation where ``optima`` gives them) and its manifest entries. Each image is decoded and
    fitted once (a batch at a time, on every core), and the patches of all its channels are cut from that."""

    cell, gap = int(opts.cell), style.gap
    lead = 1 if optima else 0
    layouts = [examples_grid(s.channels, s.k, cell, gap, lead) for s in states]
    for name, (g, _) in zip(names, layouts):
        check_fits(g.height, g.width, 4, f"examples canvas of {name}")
    fill = np.array(style.gap_rgb, np.uint8)
    canvases = [allocate(g.height, g.width, 3, style.gap_rgb) for g, _ in layouts]
    geometry = [_boxes(s, f, sh, input_shape) for s, f, sh in zip(states, fields, shapes)]
    order = np.unique(np.concatenate([s.images[s.images != NO_IMAGE] for s in states])).tolist()
    tint = opts.overlay and fwd is not None
    scale = [np.where(np.isfinite(s.scores[0]), s.scores[0], 0.0) for s in states]
    ctx = (layouts, canvases, geometry, states, fields, scale, cell, fill, lead)
    batch = max(1, fwd.batch_size if fwd is not None else 32)
    resize = fwd.loaded.resize if fwd is not None else "stretch"
    with progress(len(order), "drawing examples", "img", opts.quiet) as bar:
        for start in range(0, len(order), batch):
            check_stop()
            chunk = order[start:start + batch]
            rgbs = read_all([paths[i] for i in chunk], input_shape[:2], resize)
            maps = fwd.outputs(preprocess(np.stack(rgbs), fwd.loaded.preprocess, fwd.input_shape[2],
                                          fwd.loaded.bgr)) if tint else None
            _paint_chunk(chunk, rgbs, maps, ctx)
            bar.update(len(chunk))
    if optima:
        _optima(canvases, layouts, [st.k for st in states], optima, cell)
    return layouts, canvases, geometry
