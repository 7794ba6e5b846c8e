"""Colormaps as 256-entry look-up tables, extended by the special colours."""

import numpy as np

from .errors import MontageError

# A LUT has the colormap's 256 rows, then these special colours (the kernels know them by index).
NAN_ROW = 256
GAP_ROW = 257
EMPTY_ROW = 258
LUT_ROWS = 259


# The names the defaults use, as matplotlib spells them (tested): no matplotlib import for them.
KNOWN_COLORS = {"black": "#000000", "white": "#ffffff", "magenta": "#ff00ff", "cyan": "#00ffff"}


def parse_color(value):
    """RGB triple from '#rrggbb', 'r,g,b', a matplotlib colour name or a 3-sequence of 0..255."""
    if isinstance(value, str):
        text = KNOWN_COLORS.get(value.strip(), value.strip())
        if "," in text:
            parts = text.split(",")
            if len(parts) == 3 and all(p.strip().isdigit() for p in parts):
                rgb = tuple(int(p) for p in parts)
                if all(0 <= c <= 255 for c in rgb):
                    return rgb
            raise MontageError(f"colour {value!r} is not 'r,g,b' with values 0..255")
        if len(text) == 7 and text[0] == "#" and all(c in "0123456789abcdefABCDEF" for c in text[1:]):
            return tuple(int(text[i:i + 2], 16) for i in (1, 3, 5))   # as matplotlib reads it, without its import
        from matplotlib.colors import to_rgb

        try:
            return tuple(int(round(c * 255)) for c in to_rgb(text))
        except ValueError:
            raise MontageError(
                f"unknown colour {value!r}: use '#rrggbb', 'r,g,b' or a matplotlib colour name"
            ) from None
    rgb = tuple(int(c) for c in value)
    if len(rgb) != 3 or not all(0 <= c <= 255 for c in rgb):
        raise MontageError(f"colour {value!r} is not three values in 0..255")
    return rgb


def colormap_lut(name):
    """(256, 3) uint8 table of a matplotlib colormap, as ``Colormap(np.arange(256) / 255)`` gives it.

    'gray' (the default) is row i = (i, i, i), matplotlib's own table (tested), without its import.
    """
    if name == "gray":
        return identity_lut()
    import matplotlib

    try:
        cmap = matplotlib.colormaps[name]
    except KeyError:
        raise MontageError(
            f"unknown colormap {name!r}: use a matplotlib name such as gray, viridis, RdBu_r "
            "(all names: python -c 'import matplotlib; print(list(matplotlib.colormaps))')"
        ) from None
    rgba = cmap.resampled(256)(np.arange(256))
    return np.round(rgba[:, :3] * 255).astype(np.uint8)


def extended_lut(colors, nan_color, gap_color, empty_color):
    """(259, 3) table: ``colors`` then the NaN, gap and empty-cell colours."""
    lut = np.empty((LUT_ROWS, 3), np.uint8)
    lut[:256] = colors
    lut[NAN_ROW] = parse_color(nan_color)
    lut[GAP_ROW] = parse_color(gap_color)
    lut[EMPTY_ROW] = parse_color(empty_color)
    return lut


def identity_lut():
    """(256, 3) table mapping index i to (i, i, i): for RGB cells, each band its own value."""
    return np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)


def is_gray(lut):
    """True when every row of ``lut`` is grey, so one band says it all."""
    return bool((lut == lut[:, :1]).all())
