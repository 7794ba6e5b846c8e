"""Examples' cells: the kernel that cuts them against a pixel-by-pixel reference and the numpy
path (--overlay) on random images, boxes in and out of the image, odd shapes, constant images."""

import numpy as np
import pytest

from montage.canvas import allocate
from montage.patches import _crop, _to_cell, cut_into, read_all, summed_areas
from montage.images import read_rgb
from reference import cell_reference

FILL = np.array([10, 200, 33], np.uint8)


def _case(rng, constant=False):
    n, H, W = (int(v) for v in (rng.integers(1, 4), rng.integers(1, 37), rng.integers(1, 37)))
    rgbs = rng.integers(0, 256, (n, H, W, 3), np.uint8)
    if constant:
        rgbs[:] = rng.integers(0, 256, 3, np.uint8)
    m = 24
    which = rng.integers(0, n, m)
    top, left = rng.integers(-12, H + 3, m), rng.integers(-12, W + 3, m)
    boxes = np.column_stack([top, left, top + rng.integers(1, 60, m), left + rng.integers(1, 60, m)])
    boxes[::4], which[::4] = boxes[0], which[0]   # repeated (image, box) pairs: cut once, placed each time
    return rgbs, which, boxes


@pytest.mark.parametrize("seed", range(12))
def test_cells_equal_the_reference(seed):
    rng = np.random.default_rng(seed)
    rgbs, which, boxes = _case(rng, constant=seed % 4 == 3)
    cell = int(rng.integers(1, 14))
    pitch = cell + 1
    dest = np.column_stack([np.arange(len(which)) % 6 * pitch, np.arange(len(which)) // 6 * pitch])
    got = allocate(6 * pitch, -(-len(which) // 6) * pitch, 3, FILL)
    want, numpy_path = got.copy(), got.copy()
    cut_into(got, rgbs, which, boxes, dest, cell, FILL)
    for k, (y, x) in enumerate(dest):
        want[y:y + cell, x:x + cell, :3] = cell_reference(rgbs[which[k]], boxes[k], cell, FILL)
        numpy_path[y:y + cell, x:x + cell, :3] = _to_cell(_crop(rgbs[which[k]], boxes[k], FILL), cell)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(numpy_path, want)
    assert (got[..., 3] == 255).all()


def test_summed_areas_and_both_of_their_widths_give_the_same_cells():
    rng = np.random.default_rng(11)
    rgbs, which, boxes = _case(rng)
    sat = summed_areas(rgbs)
    for y, x in [(0, 0), (1, 3), (rgbs.shape[1], rgbs.shape[2])]:
        np.testing.assert_array_equal(sat[:, y, x], rgbs[:, :y, :x].astype(np.int64).sum((1, 2)))
    dest = np.column_stack([np.zeros(len(which), int), np.arange(len(which)) * 6])
    narrow, wide = allocate(5, 6 * len(which), 3, FILL), allocate(5, 6 * len(which), 3, FILL)
    cut_into(narrow, rgbs, which, boxes, dest, 5, FILL)
    cut_into(wide, rgbs, which, boxes, dest, 5, FILL, sat.astype(np.int64))   # past 16 MP images
    np.testing.assert_array_equal(narrow, wide)
    with pytest.raises(ValueError):
        cut_into(wide, rgbs, which, boxes, dest, 5, FILL, sat[:, 1:])


def test_halves_round_to_even():
    rgbs = np.array([[[[1, 2, 3], [2, 3, 4]]]], np.uint8)    # 1x2 pixels: block means 1.5, 2.5, 3.5
    got = allocate(1, 1, 3)
    cut_into(got, rgbs, [0], [[0, 0, 1, 2]], [[0, 0]], 1, FILL)
    assert got[0, 0, :3].tolist() == [2, 2, 4]


def test_bad_arguments_are_refused():
    canvas, rgbs = allocate(8, 8, 3), np.zeros((1, 4, 4, 3), np.uint8)
    for which, box, dest in [([1], [0, 0, 2, 2], [0, 0]), ([0], [0, 0, 0, 2], [0, 0]), ([0], [0, 0, 2, 2], [5, 0])]:
        with pytest.raises(ValueError):
            cut_into(canvas, rgbs, which, [box], [dest], 4, FILL)
    assert cut_into(canvas, rgbs, [], np.zeros((0, 4)), np.zeros((0, 2)), 4, FILL) is canvas


def test_images_read_on_threads_equal_one_by_one(tmp_path):
    from helpers import random_images

    paths = random_images(tmp_path, 5, side=40)
    for got, want in zip(read_all(paths, (24, 30), "crop", threads=3), [read_rgb(p, (24, 30), "crop") for p in paths]):
        np.testing.assert_array_equal(got, want)


def test_many_cells_split_over_threads_equal_the_numpy_path():
    rng = np.random.default_rng(7)
    rgbs = rng.integers(0, 256, (5, 30, 26, 3), np.uint8)
    m, cell = 900, 6
    which = rng.integers(0, 5, m)
    top, left = rng.integers(-5, 30, m), rng.integers(-5, 26, m)
    boxes = np.column_stack([top, left, top + rng.integers(1, 25, m), left + rng.integers(1, 25, m)])
    dest = np.column_stack([np.arange(m) // 30 * (cell + 1), np.arange(m) % 30 * (cell + 1)])
    got = allocate(30 * (cell + 1), 30 * (cell + 1), 3, FILL)
    want = got.copy()
    cut_into(got, rgbs, which, boxes, dest, cell, FILL)
    for k, (y, x) in enumerate(dest):
        want[y:y + cell, x:x + cell, :3] = _to_cell(_crop(rgbs[which[k]], boxes[k], FILL), cell)
    np.testing.assert_array_equal(got, want)
