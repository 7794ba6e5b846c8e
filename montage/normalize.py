"""Per-cell value ranges (lo, hi) for each normalisation mode.

A grid holds ``n = rows * cols`` cells in an array of shape (h, w, n, samples);
cell ``k`` is at row ``k // cols``, column ``k % cols``. A mode groups the cells
(the whole grid, a row, a column, one cell), takes each group's finite range and
gives every cell the range of its group. The kernels map ``lo`` to the start of
the colormap and ``hi`` to its end.
"""

import warnings

import numpy as np

from .errors import MontageError

# Mode -> the group of cells that shares one range ('grid', 'row', 'col', 'cell'), as the
# manifest records it. 'symmetric' is the whole grid with 0 at the colormap's centre.
GRID_MODES = {"global": "grid", "filter": "row", "channel": "col", "cell": "cell", "symmetric": "grid"}
# Feature maps' modes (the CLI's words) -> the grid mode that draws them, a map being a cell:
# 'channel' is each map alone, 'layer' all maps of a layer, 'image' all layers of an image
# (one range, found over every layer first, then spread like 'global').
FEATURE_MODES = {"channel": "cell", "layer": "global", "image": "global"}


# A group (a channel's map, a filter, a kernel) is flat when its range is at most FLAT_RELATIVE of
# its grid's (the layer's: lowest group minimum to highest group maximum), or below float32's
# smallest normal number. 1e-6 is about 8 float32 steps (2^-23 each) of the layer's range: the
# next layer, summing this channel with the others in float32, cannot tell its variation from
# rounding, so stretching it to full contrast would show noise (a dead filter's 1e-33 as the most
# vivid map). Below the smallest normal, values are subnormal: fewer than 24 significant bits.
FLAT_RELATIVE = 1e-6
FLAT_ABSOLUTE = float(np.finfo(np.float32).tiny)


def flat_groups(glo, ghi, mode):
    """Indices of the groups drawn as one colour (``const_index``): those whose range is
    negligible against the grid's (see ``FLAT_RELATIVE``). ``mode``: a grid mode or its group
    ('grid', 'row', 'col', 'cell'); none in modes of one group per grid.
    Groups with no finite value count as range 0."""
    glo, ghi = np.asarray(glo, np.float64), np.asarray(ghi, np.float64)
    if GRID_MODES.get(mode, mode) == "grid" or glo.size == 0:
        return np.zeros(0, np.intp)
    span = ghi - glo
    layer = ghi.max() - glo.min()
    return np.flatnonzero((span <= FLAT_RELATIVE * layer) | (span < FLAT_ABSOLUTE))


def const_index(mode):
    """LUT row for a cell whose range is empty: the colormap's start, or its centre for 'symmetric'."""
    return 128 if mode == "symmetric" else 0


def _grouped(src, mode, cols):
    """A view of ``src`` and the axes to reduce so that axis 1 indexes the groups.

    Returns (values, axes, group of each cell); no data is copied.
    """
    h, w, n, s = src.shape
    rows = n // cols if cols else 0
    k = np.arange(n)
    if mode in ("global", "symmetric"):
        return src.reshape(-1, 1), (0,), np.zeros(n, dtype=np.intp)
    if mode == "filter":
        return src.reshape(h * w, rows, cols * s), (0, 2), k // cols
    if mode == "channel":
        return src.reshape(h * w * rows, cols, s), (0, 2), k % cols
    if mode == "cell":
        return src.reshape(h * w, n, s), (0, 2), k
    raise MontageError(f"unknown normalisation {mode!r}: choose one of {', '.join(GRID_MODES)}")


def group_range(values, clip=0.0, symmetric=False, axes=(1,)):
    """Finite range of each group of ``values``, reducing over ``axes``.

    Parameters
    ----------
    values : ndarray
    clip : float
        Percentile to clip at each end (0 = plain min/max).
    symmetric : bool
        Range ``(-a, a)`` with ``a`` the largest (or ``100 - clip`` percentile) magnitude.
    axes : tuple of int
        The axes that hold one group's values; what remains indexes the groups.

    Returns
    -------
    lo, hi : ndarray of float64
        A group with no finite value gets ``lo = hi = 0``.
    """
    v = np.abs(values) if symmetric else np.asarray(values)
    lo = hi = None
    if clip == 0:
        # NaN and Inf show in the plain extremes, so one pass settles the common all-finite case.
        hi = v.max(axis=axes).astype(np.float64)
        lo = -hi if symmetric else v.min(axis=axes).astype(np.float64)
        if np.isfinite(lo).all() and np.isfinite(hi).all():
            return lo, hi
    finite = np.isfinite(v)
    all_finite = bool(finite.all())
    if not all_finite:
        v = np.where(finite, v, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN groups are handled below
        if clip > 0 and all_finite:
            lo, hi = percentiles(v, [] if symmetric else [clip], 100.0 - clip, axes)
            lo = -hi if symmetric else lo
        elif clip > 0:
            hi = np.nanpercentile(v, 100.0 - clip, axis=axes)
            lo = -hi if symmetric else np.nanpercentile(v, clip, axis=axes)
        else:
            hi = np.nanmax(v, axis=axes)
            lo = -hi if symmetric else np.nanmin(v, axis=axes)
    lo = np.where(np.isnan(lo), 0.0, lo).astype(np.float64)
    hi = np.where(np.isnan(hi), 0.0, hi).astype(np.float64)
    return lo, hi


def percentiles(values, low, high, axes):
    """``np.percentile(values, q, axis=axes)`` (method 'linear') for ``low`` (a list of 0 or 1
    q) and ``high``, from one selection of the ranks both need (see :func:`_ranked`) instead of
    one partition per q.

    The arithmetic is numpy's own for a scalar q, so the results are numpy's values, in
    ``values``' dtype (where both -0.0 and 0.0 occur, a zero's sign may differ: partitions
    order equal values as they like). ``values`` must be finite.

    Returns
    -------
    lo, hi : ndarray
        ``lo`` is None when ``low`` is empty.
    """
    keep = [i for i in range(values.ndim) if i not in axes]
    groups = np.moveaxis(values, keep, list(range(len(keep))))
    flat = groups.reshape(groups.shape[:len(keep)] + (-1,))   # a copy where the axes interleave
    n = flat.shape[-1]
    ends = []
    for q in [*low, high]:
        at = (n - 1) * (float(q) / 100)   # numpy: (n - 1) * (q / 100), in float64
        below = min(np.floor(at), n - 1)
        ends.append((int(below), int(min(below + 1, n - 1)), float(at - below)))
    ranked = _ranked(flat, sorted({k for below, above, _ in ends for k in (below, above)}), values)
    out = []
    for below, above, gamma in ends:
        a, b = ranked[below], ranked[above]
        diff = b - a
        lerp = a + diff * gamma   # numpy's _lerp, with a Python float weight as for a scalar q
        if gamma >= 0.5:
            lerp = b - diff * (1 - gamma)
        out.append(lerp)
    return (out[0] if low else None), out[-1]


BRACKET_FROM = 1 << 18   # one group of at least this many values: order statistics by bracketing
SAMPLE = 1 << 15


def _ranked(flat, ranks, values):
    """``{k: the k-th smallest value of each group}`` of ``flat`` (groups, ..., n)."""
    n = flat.shape[-1]
    if flat.size == n and n >= BRACKET_FROM:
        got = _bracketed(flat.reshape(-1), ranks)
        if got is not None:
            return {k: np.full(flat.shape[:-1], v, flat.dtype)[()] for k, v in got.items()}
    part = flat.copy() if np.may_share_memory(flat, values) else flat
    part.partition(ranks, axis=-1)
    return {k: part[..., k] for k in ranks}


def _bracketed(v, ranks):
    """The k-th smallest values of ``v`` for ``ranks`` near either end, exactly, from a partition
    of the values beyond a threshold instead of all of them; None when a bracket misses.

    A random sample puts each threshold a safe margin past the ranks' expected place; the
    count of values beyond it proves the bracket holds them (ties included), else the caller
    partitions everything.
    """
    n, got = v.size, {}
    sample = v[np.random.default_rng(0).integers(0, n, SAMPLE)]
    margin = 4 * int(np.sqrt(SAMPLE)) + 8
    low, high = [k for k in ranks if k < n // 2], [k for k in ranks if k >= n // 2]
    if low:
        j = int((max(low) + 1) / n * SAMPLE) + margin
        if j >= SAMPLE // 3:
            return None
        cand = v[v <= np.partition(sample, j)[j]]   # every value up to the threshold, so ranks carry over
        if cand.size <= max(low):
            return None
        cand.partition(low)
        got.update({k: cand[k] for k in low})
    if high:
        j = SAMPLE - 1 - int((n - min(high)) / n * SAMPLE) - margin
        if j < SAMPLE - SAMPLE // 3:
            return None
        cand = v[v >= np.partition(sample, j)[j]]   # the top cand.size values: rank k is cand's k - (n - size)
        skip = n - cand.size
        if min(high) < skip:
            return None
        cand.partition([k - skip for k in high])
        got.update({k: cand[k - skip] for k in high})
    return got


def grid_ranges(src, mode="global", cols=1, clip=0.0):
    """Per-cell (lo, hi) of a grid under a normalisation mode.

    Parameters
    ----------
    src : ndarray, shape (h, w, n, samples)
    mode : {'global', 'filter', 'channel', 'cell', 'symmetric'}
        Group = whole grid, grid row, grid column, single cell; 'symmetric' is
        the whole grid with 0 mapped to the colormap's centre.
    cols : int
        Grid columns (``n`` must be a multiple of it for 'filter'/'channel').
    clip : float
        Percentile clipped at each end of each group, in [0, 50).

    Returns
    -------
    lo, hi : ndarray of float64, shape (n,)
        ``lo == hi`` for the cells of flat groups (:func:`flat_groups`): drawn as one colour.
    group_lo, group_hi : ndarray of float64
        The range of each group, as found, for the manifest.
    """
    if not 0.0 <= clip < 50.0:
        raise MontageError(f"--clip {clip} is out of range: give a percentile in [0, 50)")
    if mode in ("filter", "channel") and src.shape[2] % cols:
        raise MontageError(f"normalisation {mode!r} needs a full grid; use 'global' or 'cell'")
    values, axes, group = _grouped(src, mode, cols)
    glo, ghi = group_range(values, clip, symmetric=(mode == "symmetric"), axes=axes)
    flat = flat_groups(glo, ghi, mode)
    shown = ghi.copy()
    shown[flat] = glo[flat]
    return glo[group], shown[group], glo, ghi


def inverse_span(lo, hi):
    """``256 / (hi - lo)`` per cell for the kernels, 0 where the range is empty."""
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        inv = 256.0 / (np.asarray(hi, np.float64) - np.asarray(lo, np.float64))
    return np.where(np.isfinite(inv) & (inv > 0), inv, 0.0)
