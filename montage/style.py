"""Colours of a product: its colormap and special colours as the look-up tables the kernels take."""

import numpy as np

from .colormap import NAN_ROW, colormap_lut, extended_lut, identity_lut, is_gray, parse_color

# The page's background (the viewer behind the tiles); an atlas's unused area takes it too, so a
# features atlas has no bright patches on the dark page.
BACKGROUND = (34, 34, 34)
# Default gap between cells: a grey a little lighter than the page. White 1-pixel gaps turned a
# large layer at home view into a bright mesh that hid the weights; this still parts black cells.
GAP_COLOR = "#464646"


class Style:
    """The LUTs for a product's options (checked here: an unknown colormap or colour is one line).

    Empty grid cells take the gap colour.

    Parameters
    ----------
    options : montage.options.OutputOptions
    """

    def __init__(self, options):
        self.cmap, self.normalize, self.clip, self.gap = (options.cmap, options.normalize,
                                                          float(options.clip), int(options.gap))
        self.colors = colormap_lut(options.cmap)
        self.gap_rgb, self.nan_rgb = parse_color(options.gap_color), parse_color(options.nan_color)
        self.lut = extended_lut(self.colors, self.nan_rgb, self.gap_rgb, self.gap_rgb)
        self.rgb_lut = extended_lut(identity_lut(), self.nan_rgb, self.gap_rgb, self.gap_rgb)

    def lut_for(self, arrays, rgb=False):
        """(lut, bands): one band when every colour the data in ``arrays`` can use is grey."""
        if rgb:
            return self.rgb_lut, 3
        if not is_gray(np.delete(self.lut, NAN_ROW, axis=0)):
            return self.lut, 3
        if is_gray(self.lut) or not any(np.isnan(a).any() for a in arrays):
            return self.lut, 1
        return self.lut, 3

    def manifest(self):
        return {"colormap": {"name": self.cmap, "lut": self.colors.tolist()},
                "gap_color": list(self.gap_rgb), "nan_color": list(self.nan_rgb), "background": list(BACKGROUND)}
