"""Colours montage reads without matplotlib equal matplotlib's own."""

import numpy as np
import pytest
from matplotlib import colormaps
from matplotlib.colors import to_rgb

from montage.colormap import KNOWN_COLORS, colormap_lut, parse_color
from montage.errors import MontageError


def test_gray_is_matplotlibs_table():
    rgba = colormaps["gray"].resampled(256)(np.arange(256))
    assert np.array_equal(colormap_lut("gray"), np.round(rgba[:, :3] * 255).astype(np.uint8))


@pytest.mark.parametrize("name", [*KNOWN_COLORS, "#464646", "#0aF0b1", "#FFFFFF", "tab:orange", "0.5"])
def test_colours_read_as_matplotlib_reads_them(name):
    assert parse_color(name) == tuple(int(round(c * 255)) for c in to_rgb(name))


@pytest.mark.parametrize("bad", ["#12345", "#12345g", "#", "no-such-colour", "1,2", "1,2,300"])
def test_bad_colours_are_one_line(bad):
    with pytest.raises(MontageError, match="colour"):
        parse_color(bad)
