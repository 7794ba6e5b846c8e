"""Running top-k lists and statistics against a plain sort of everything at once."""

import numpy as np
import pytest

from montage.errors import MontageError
from montage.topk import NO_IMAGE, Running


def _reference(scores, k):
    """Per channel: images by score (NaN last), ties by lower index; (k, C) images and scores."""
    n, c = scores.shape
    imgs = np.full((k, c), NO_IMAGE, np.int64)
    top = np.full((k, c), -np.inf, np.float32)
    for ch in range(c):
        key = sorted(range(n), key=lambda i: (-(scores[i, ch] if not np.isnan(scores[i, ch]) else -np.inf), i))
        for r, i in enumerate(key[:k]):
            imgs[r, ch], top[r, ch] = i, scores[i, ch]
    return imgs, top


def _data(n, c, seed):
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=(n, c)).astype(np.float32)
    scores[rng.random((n, c)) < 0.2] = 0.5           # many ties
    scores[rng.random((n, c)) < 0.05] = np.nan
    scores[:, 0] = np.nan                             # a channel that is NaN everywhere
    scores[:, 1] = 1.0                                # and one constant channel
    where = rng.integers(0, 50, size=(n, c)).astype(np.int32)
    return scores, where


@pytest.mark.parametrize("n,c,k,batch", [(37, 6, 5, 8), (5, 3, 9, 2), (64, 4, 1, 64), (30, 5, 4, 1)])
def test_streamed_top_k_equals_one_sort(n, c, k, batch):
    scores, where = _data(n, c, n + k)
    run = Running(k, c)
    for s in range(0, n, batch):
        run.add(scores[s:s + batch], where[s:s + batch], scores[s:s + batch], np.arange(s, min(n, s + batch)))
    want_imgs, want_top = _reference(scores, k)
    np.testing.assert_array_equal(run.images, want_imgs)
    np.testing.assert_array_equal(np.nan_to_num(run.scores, nan=-1e9), np.nan_to_num(want_top, nan=-1e9))
    real = want_imgs != NO_IMAGE
    np.testing.assert_array_equal(run.where[real], where[want_imgs[real], np.nonzero(real)[1]])
    np.testing.assert_allclose(run.total, np.nansum(scores.astype(np.float64), axis=0))
    assert run.count == n and (run.positive == (scores > 0).sum(axis=0)).all()
    np.testing.assert_array_equal(run.best[1:], np.nanmax(scores[:, 1:], axis=0))
    assert run.best[0] == -np.inf


def test_shards_merge_into_the_single_pass():
    scores, where = _data(41, 7, 3)
    whole = Running(6, 7)
    whole.add(scores, where, scores, np.arange(41))
    parts = []
    for i in range(3):                               # every 3rd image, as --shard i/3 does
        idx = np.arange(i, 41, 3)
        p = Running(6, 7)
        p.add(scores[idx], where[idx], scores[idx], idx)
        parts.append(p)
    merged = parts[2].merged(parts[0]).merged(parts[1])  # any order
    for name in ("scores", "images", "where", "positive", "best"):
        np.testing.assert_array_equal(getattr(merged, name), getattr(whole, name))
    np.testing.assert_allclose(merged.total, whole.total)
    back = Running.from_arrays(merged.arrays("L"), "L")
    np.testing.assert_array_equal(back.images, whole.images)
    with pytest.raises(MontageError, match="--top"):
        Running(5, 7).merged(whole)
