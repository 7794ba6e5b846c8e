"""Write canvases with libvips: Deep Zoom pyramids, pyramidal TIFF, flat PNG."""

import contextlib
import os

import numpy as np

from .console import progress
from .errors import MontageError
from .pyramid import encode_png, level_pixels, write_png_pyramid
from .vips import vips

TILE_FORMATS = {
    # name -> (dzsave suffix, file extension in the DZI descriptor)
    "png": (None, "png"),   # lossless; written by montage.pyramid
    "webp": (".webp[lossless,effort=1]", "webp"),  # default effort is ~10x slower
    "jpeg": (".jpg[Q=90]", "jpg"),
}


def _vips():
    return vips()


def _check_canvas(canvas):
    if not (isinstance(canvas, np.ndarray) and canvas.dtype == np.uint8 and canvas.ndim == 3
            and canvas.shape[2] in (1, 3, 4) and canvas.flags.c_contiguous and canvas.size):
        raise ValueError("canvas must be a non-empty C-contiguous (H, W, 1|3|4) uint8 array")


def as_image(canvas):
    """A libvips image that shares ``canvas``'s memory (no copy).

    A (H, W, 4) canvas is RGB plus a padding byte (see ``montage.canvas.allocate``): libvips
    drops the fourth band as it streams, so the files are plain RGB.
    """
    _check_canvas(canvas)
    image = _vips().Image.new_from_array(canvas)
    if canvas.shape[2] == 4:
        image = image.extract_band(0, n=3)
    interp = "b-w" if canvas.shape[2] == 1 else "srgb"
    return image.copy(interpretation=interp)


def _percent(bar):
    """``advance(pct)``: moves a tqdm bar counting percent up to ``pct`` (never back)."""
    shown = [0]

    def advance(pct):
        if pct > shown[0]:
            bar.update(pct - shown[0])
            shown[0] = pct
    return advance


def _tile_progress(bar, canvas):
    """A callback feeding a pyramid's written pixels into a tqdm bar counting percent (or None)."""
    if bar is None:
        return None

    total, done, advance = level_pixels(canvas.shape[0], canvas.shape[1]), [0], _percent(bar)

    def on_tile(pixels):
        done[0] += pixels
        advance(100 * done[0] // total)
    return on_tile


@contextlib.contextmanager
def _progress(image, bar):
    """Feed libvips' eval signal into a tqdm bar counting percent."""
    if bar is None:
        yield image
        return
    image.set_progress(True)
    advance = _percent(bar)
    image.signal_connect("eval", lambda _image, progress: advance(int(progress.percent)))
    try:
        yield image
    finally:
        advance(100)


# Tiles of 510 + 2 overlap pixels: about 1.3x faster to write than libvips' 254 (fewer
# files) and as quick to view.
TILE_SIZE = 510
OVERLAP = 1


def dzi_descriptor(url, width, height, tile_format="png", tile_size=TILE_SIZE, overlap=OVERLAP):
    """The DZI descriptor as OpenSeadragon takes it inline (``tileSources: {Image: ...}``)."""
    return {
        "xmlns": "http://schemas.microsoft.com/deepzoom/2008",
        "Url": url,
        "Format": TILE_FORMATS[tile_format][1],
        "Overlap": str(overlap),
        "TileSize": str(tile_size),
        "Size": {"Width": str(width), "Height": str(height)},
    }


def check_tile_format(tile_format):
    if tile_format not in TILE_FORMATS:
        raise MontageError(f"unknown tile format {tile_format!r}: choose one of {', '.join(TILE_FORMATS)}")


def write_dzi(canvas, base, tile_format="png", tile_size=TILE_SIZE, overlap=OVERLAP, bar=None):
    """Write ``base + '.dzi'`` and ``base + '_files/'``.

    PNG tiles come from :mod:`montage.pyramid` (the same pixels as libvips' ``dzsave``, at a
    fraction of its per-tile cost); WebP and JPEG tiles from ``dzsave``.

    Returns
    -------
    dict
        The DZI descriptor as OpenSeadragon takes it inline.
    """
    check_tile_format(tile_format)
    if not (int(tile_size) >= 1 and 0 <= int(overlap) <= 8192):
        raise ValueError(f"tile_size {tile_size} must be at least 1 and overlap {overlap} in 0..8192")
    if tile_format == "png":
        _check_canvas(canvas)

        write_png_pyramid(canvas, base, tile_size, overlap, _tile_progress(bar, canvas))
    else:
        image = as_image(canvas)
        with _progress(image, bar) as im:
            im.dzsave(os.fspath(base), suffix=TILE_FORMATS[tile_format][0], tile_size=tile_size,
                      overlap=overlap, depth="onepixel")
    return dzi_descriptor(os.path.basename(os.fspath(base)) + "_files/", canvas.shape[1],
                          canvas.shape[0], tile_format, tile_size, overlap)


def write_tiff(canvas, path, bar=None):
    """Pyramidal tiled TIFF (deflate, lossless), as QuPath and napari open it."""
    image = as_image(canvas)
    with _progress(image, bar) as im:
        im.tiffsave(os.fspath(path), tile=True, pyramid=True, compression="deflate",
                    tile_width=256, tile_height=256, bigtiff=canvas.nbytes > 2**31)


def sibling(base, suffix):
    """``base`` with ``suffix`` added (not swapped: a name may hold dots, e.g. ``00_conv.1``)."""
    return base.parent / (base.name + suffix)


def write_block(canvas, base, tile_format="png", tiff=False, quiet=True):
    """Write a canvas as a Deep Zoom image (and a TIFF), with a progress bar for large ones.

    Returns
    -------
    dict
        The DZI descriptor (see :func:`write_dzi`).
    """

    big = canvas.shape[0] * canvas.shape[1] > 30_000_000   # a bar only where the write takes a while
    bar = progress(100, f"writing {base.name}", "%", quiet) if big else None
    try:
        dzi = write_dzi(canvas, base, tile_format, bar=bar)
        if tiff:
            write_tiff(canvas, sibling(base, ".tif"))
    finally:
        if bar is not None:
            bar.close()
    return dzi


def write_png(canvas, path):
    """Flat PNG of the whole canvas (deflate from :mod:`montage.pyramid`: 5x libvips' level 6,
    files about 1.5x larger)."""

    _check_canvas(canvas)
    with open(path, "wb") as f:
        f.write(encode_png(canvas[:, :, :3]))
