"""One recorded training step drawn: each layer's kernels as ``montage.filters`` draws them, and
their change since the previous and since the first step, with per-channel statistics.

Pure drawing and writing into a folder the caller owns (see :mod:`montage.history_store`):
no model, no framework. A step is three views of the same blocks: 'value', 'since previous'
and 'since first'.
"""

from __future__ import annotations

import numpy as np

from .canvas import run_engine
from .kernel_cells import kernel_cells, kernel_grid
from .manifest import norm_entry, write_values
from .normalize import GRID_MODES, const_index, grid_ranges
from .render_filters import _draw, _mode
from .write import dzi_descriptor, sibling, write_block

MODES = ("value", "previous", "first")   # the views of a step, in the manifest's order
DIFF_CMAP = "RdBu_r"   # differences: blue for less, red for more, white for no change
# A channel is dead when its kernel's norm falls under this share of the layer's median
# channel norm at the first recorded step: far below what training moves a live channel to.
DEAD_SHARE = 0.01


def channel_norms(k):
    """L2 norm of each output channel's kernel (a 'filters' block's filter, a depthwise channel)."""
    w = np.asarray(k.weights, np.float64)
    if k.kind == "depthwise":
        return np.sqrt(np.nansum(w.reshape(-1, w.shape[-2] * w.shape[-1]) ** 2, axis=0))
    return np.sqrt(np.nansum(w.reshape(-1, w.shape[-1]) ** 2, axis=0))


def stats(k, first_median, cells=None, fixed=None):
    """Per-channel statistics of a kernel block: norms, their mean, the dead channels; with a range
    held across steps (``fixed``: lo, hi per cell), the share of weights beyond it (drawn at its ends)."""
    norms = channel_norms(k)
    finite = np.isfinite(norms)   # a diverged training's inf: JSON has no word for it, the page shows none
    dead = np.flatnonzero(finite & (norms <= DEAD_SHARE * first_median)) if first_median > 0 else []
    out = {"norm": [float(np.float32(v)) if ok else None for v, ok in zip(norms, finite)],
           "mean_norm": float(norms[finite].mean()) if finite.any() else None,
           "dead": [int(i) for i in dead], "dead_share": float(len(dead) / max(1, norms.size))}
    if fixed is not None and cells is not None and cells.size:
        lo, hi = (np.asarray(r, np.float64)[None, None, :, None] for r in fixed[:2])
        out["clipped"] = float(((cells < lo) | (cells > hi)).mean())
    return out


def layer_range(k, opts):
    """The ranges ``montage.filters`` draws block ``k`` with: (lo, hi, group_lo, group_hi)."""
    grid, kind = kernel_grid(k, opts.rgb, opts.cell, opts.gap)
    return grid_ranges(kernel_cells(k, kind, "rgb"), _mode(kind, opts.normalize), grid.cols, float(opts.clip))


def _one(src, grid, kind, depth, base, key, mode, ranges, style, opts, engine):
    """Draw and write one block's canvas and values; its manifest entries (normalize, dzi)."""
    lo, hi, glo, ghi = ranges if ranges is not None else grid_ranges(src, mode, grid.cols, style.clip)
    lut, bands = style.lut_for([src], rgb=(kind == "rgb"))
    canvas = _draw(src, grid, (lo, hi), lut, bands, const_index(mode), depth, style.gap_rgb, engine)
    write_block(canvas, base, opts.tile_format, opts.tiff, True)
    if key is not None:
        write_values(sibling(base, ".values.js"), key, src)
    return norm_entry(mode, style.clip, glo, ghi, GRID_MODES[mode]), \
        dzi_descriptor(base.name + "_files/", canvas.shape[1], canvas.shape[0], opts.tile_format)


def draw_step(folder, prefix, blocks, opts, styles, fixed=None):
    """Draw one step of ``blocks`` into ``folder`` (``prefix``: the folder as the page names it).

    Parameters
    ----------
    blocks : list of (name, Kernel, cells, previous cells or None, first cells or None)
        ``name`` is the file name (index and slug); ``cells`` the kernel as ``kernel_cells`` gives it;
        the previous and first steps' cells give the differences (None at the first step: no change).
    styles : (Style, Style)
        The value view's style and the differences' (a symmetric colormap).
    fixed : dict, optional
        Layer -> (lo, hi, group_lo, group_hi) held across steps; None draws each step with its own.

    Returns
    -------
    list of dict
        Per mode (see :data:`MODES`) the view's blocks and tiles, positioned later by the store.
    """
    (folder / "layers").mkdir()
    views = {m: ([], []) for m in MODES}
    total = sum(kernel_grid(k, opts.rgb, opts.cell, opts.gap)[0].height *
                kernel_grid(k, opts.rgb, opts.cell, opts.gap)[0].width for _, k, _, _, _ in blocks)
    engine = run_engine(3 * total)
    for name, k, src, prev, first in blocks:
        grid, kind = kernel_grid(k, opts.rgb, opts.cell, opts.gap)
        depth = k.weights.shape[0] if k.weights.ndim == 5 else 1
        mode = _mode(kind, opts.normalize)
        for m in MODES:
            other = prev if m == "previous" else first
            if m == "value":
                cells, how, style, ranges = src, mode, styles[0], fixed and fixed.get(k.name)
            else:
                # a difference is a plain value grid (an RGB kernel's change is no colour)
                cells = src - other if other is not None else np.zeros_like(src)
                how, style, ranges = "symmetric", styles[1], None
            base = folder / "layers" / (name if m == "value" else f"{name}.{m}")
            # values for the readout only with the kernels: the page takes a change as the difference
            # of two steps' values (two more copies a step would be most of a step's bytes)
            key = f"{prefix}/layers/{base.name}.values.js" if m == "value" else None
            norm, dzi = _one(cells, grid, kind if m == "value" else "filters", depth, base, key, how, ranges,
                             style, opts, engine)
            block = {"layer": k.name, "kind": kind, "kernel_shape": list(k.stored_shape), "grid": grid.to_dict(),
                     "normalize": norm, "rows": "filter" if kind != "depthwise" else None,
                     "cols": "channel" if kind == "filters" else None,
                     "channel_order": "RGB" if kind == "rgb" else None, "dzi": f"{prefix}/layers/{base.name}.dzi",
                     "png": None, "tiff": None, "values": key}
            if k.groups > 1:
                block["groups"] = k.groups
            if kind == "depthwise":
                block["multiplier"] = int(k.weights.shape[3])
            views[m][0].append(block)
            views[m][1].append({"dzi": dict(dzi, Url=f"{prefix}/layers/{dzi['Url']}"), "path": block["dzi"]})
    return [{"mode": m, "blocks": views[m][0], "tiles": views[m][1]} for m in MODES]
