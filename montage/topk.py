"""What each channel responds to: per-image channel scores (reduced where the maps are, see
:meth:`montage.net.Forward.reduced`) merged into running top-k lists and dataset statistics.

Merging is exact and associative: top-k lists of any split of the images merge into those of the
whole, ties broken by the lower image index, so shards can run anywhere and merge later.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import MontageError

SCORES = ("max", "mean")
NO_IMAGE = np.iinfo(np.int64).max     # an empty slot sorts after every image


@dataclass
class Running:
    """Top-k images of every channel of one layer, and the channel's statistics so far.

    ``scores``, ``images`` and ``where`` are (k, C): rank-ordered scores, global image
    indices (``NO_IMAGE`` where fewer images were seen) and flat map positions.
    """

    k: int
    channels: int
    scores: np.ndarray = field(default=None)
    images: np.ndarray = field(default=None)
    where: np.ndarray = field(default=None)
    total: np.ndarray = field(default=None)      # sum of the finite scores (float64)
    valid: np.ndarray = field(default=None)      # how many scores were finite
    best: np.ndarray = field(default=None)       # highest score
    positive: np.ndarray = field(default=None)   # images where the channel is > 0 anywhere
    count: int = 0

    def __post_init__(self):
        k, c = self.k, self.channels
        if self.scores is None:
            self.scores = np.full((k, c), -np.inf, np.float32)
            self.images = np.full((k, c), NO_IMAGE, np.int64)
            self.where = np.zeros((k, c), np.int32)
            self.total = np.zeros(c, np.float64)
            self.valid = np.zeros(c, np.int64)
            self.best = np.full(c, -np.inf, np.float32)
            self.positive = np.zeros(c, np.int64)

    def add(self, scores, where, peak, indices):
        """Merge one batch: ``scores``, ``where``, ``peak`` (n, C) for images ``indices`` (n,)."""
        scores = np.asarray(scores, np.float32)
        n = len(indices)
        imgs = np.broadcast_to(np.asarray(indices, np.int64)[:, None], (n, self.channels))
        ok = np.isfinite(scores)
        self.total += np.where(ok, scores, 0.0).sum(axis=0, dtype=np.float64)
        self.valid += ok.sum(axis=0)
        self.best = np.fmax(self.best, np.nanmax(np.where(np.isnan(scores), -np.inf, scores), axis=0))
        self.positive += (np.asarray(peak) > 0).sum(axis=0)
        self.count += n
        self._merge(scores, imgs, np.asarray(where, np.int32))

    def _merge(self, scores, images, where):
        s = np.concatenate([self.scores, scores])
        i = np.concatenate([self.images, images])
        w = np.concatenate([self.where, where])
        key = np.where(np.isnan(s), -np.inf, s)          # NaN ranks last, like -inf
        # per channel: highest score first, then the lower image index (stable, exact)
        order = np.lexsort((i.T, -key.T), axis=-1).T[: self.k]
        cols = np.arange(self.channels)[None, :]
        self.scores, self.images, self.where = s[order, cols], i[order, cols], w[order, cols]

    def merged(self, other):
        """The union of two disjoint sets of images (``self`` is updated and returned)."""
        if (other.k, other.channels) != (self.k, self.channels):
            raise MontageError("partial results of different --top or layers cannot be merged")
        self.total += other.total
        self.valid += other.valid
        self.best = np.fmax(self.best, other.best)
        self.positive += other.positive
        self.count += other.count
        self._merge(other.scores, other.images, other.where)
        return self

    def arrays(self, prefix):
        """This state as named arrays (for a partial result file)."""
        return {f"{prefix}/{name}": getattr(self, name)
                for name in ("scores", "images", "where", "total", "valid", "best", "positive")} | \
            {f"{prefix}/count": np.array(self.count)}

    @classmethod
    def from_arrays(cls, data, prefix):
        s = data[f"{prefix}/scores"]
        return cls(s.shape[0], s.shape[1], s, data[f"{prefix}/images"], data[f"{prefix}/where"],
                   data[f"{prefix}/total"], data[f"{prefix}/valid"], data[f"{prefix}/best"],
                   data[f"{prefix}/positive"], int(data[f"{prefix}/count"]))

    def validate(self, k, channels, images, positions):
        """Raise ValueError unless this state (read from a file) is one that :meth:`add` could have
        made: ``k`` ranks of ``channels`` channels over at most ``images`` images, map positions
        below ``positions``."""
        want = {"scores": ((k, channels), "f"), "images": ((k, channels), "i"), "where": ((k, channels), "i"),
                "total": ((channels,), "f"), "valid": ((channels,), "i"), "best": ((channels,), "f"),
                "positive": ((channels,), "i")}
        for name, (shape, kind) in want.items():
            a = getattr(self, name)
            if not isinstance(a, np.ndarray) or a.shape != shape or a.dtype.kind != kind:
                raise ValueError(f"{name} is not {kind} {shape}")
        seen = self.images[self.images != NO_IMAGE]
        if not 0 <= self.count <= images or seen.size and not (0 <= seen.min() and seen.max() < images):
            raise ValueError("image index out of range")
        if self.where.size and not (0 <= self.where.min() and self.where.max() < max(positions, 1)):
            raise ValueError("map position out of range")
        if (self.valid < 0).any() or (self.valid > self.count).any() or (self.positive < 0).any() \
                or (self.positive > self.count).any():
            raise ValueError("counts out of range")

    def mean(self):
        """Mean finite score per channel (NaN where none was finite)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.valid > 0, self.total / np.maximum(self.valid, 1), np.nan)
