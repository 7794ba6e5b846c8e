"""What :func:`montage.filters` and :func:`montage.features` return: the manifest, and more.

A :class:`Result` is the manifest dict itself (so ``m["views"]`` works as before) with a
short ``repr``, the output folder, canvases read back as arrays, and a thumbnail that
notebooks show inline.
"""

from __future__ import annotations

import base64
import html
import math
import shutil
import weakref
from pathlib import Path

import numpy as np

from .console import counted
from .errors import MontageError
from .pyramid import top_level
from .viewer import inline


def read_level(folder, tile, level=None):
    """A Deep Zoom image's level (default: the full resolution) as a uint8 array (H, W, bands),
    stitched from its tiles with the overlaps removed."""
    import pyvips

    dzi = tile["dzi"]
    w, h = int(dzi["Size"]["Width"]), int(dzi["Size"]["Height"])
    ts, ov, fmt = int(dzi["TileSize"]), int(dzi["Overlap"]), dzi["Format"]
    top = top_level(h, w)
    level = top if level is None else int(level)
    shrink = 2 ** (top - level)
    w, h = max(1, math.ceil(w / shrink)), max(1, math.ceil(h / shrink))
    root = Path(folder) / dzi["Url"] / str(level)
    canvas = None
    for row in range(math.ceil(h / ts)):
        for col in range(math.ceil(w / ts)):
            # revalidate: libvips caches opened files by name, and --overwrite rewrites the same names
            im = pyvips.Image.new_from_file(str(root / f"{col}_{row}.{fmt}"), revalidate=True)
            a = im.numpy().reshape(im.height, im.width, im.bands)   # a 1x1 grey tile comes back 0-d
            if canvas is None:
                canvas = np.zeros((h, w, a.shape[2]), np.uint8)
            oy, ox = (ov if row else 0), (ov if col else 0)
            th, tw = min(ts, h - row * ts), min(ts, w - col * ts)
            canvas[row * ts:row * ts + th, col * ts:col * ts + tw] = a[oy:oy + th, ox:ox + tw]
    return canvas


def in_temporary_folder(opts):
    """``(opts, temporary)``: ``out=None`` becomes a fresh folder under the system temp dir."""
    import dataclasses
    import tempfile

    if opts.out is not None:
        return opts, False
    return dataclasses.replace(opts, out=Path(tempfile.mkdtemp(prefix="montage-")) / "out"), True


def _rgb(a):
    """A canvas as (H, W, 3): a gray one's band three times."""
    return np.ascontiguousarray(np.repeat(a, 3, axis=2)) if a.shape[2] == 1 else a


class Result(dict):
    """The manifest of a rendered folder (a dict), with the folder and its pictures.

    Attributes
    ----------
    path : Path
        The output folder (``path / 'index.html'`` is the page).
    seconds : float
        How long the run took.
    """

    def __init__(self, manifest, path, seconds, temporary=False):
        super().__init__(manifest)
        self.path, self.seconds, self.temporary = Path(path), float(seconds), bool(temporary)
        if temporary:   # out=None: the folder (and the temporary one holding it) lives as long as this
            weakref.finalize(self, shutil.rmtree, str(self.path.parent), True)

    @property
    def manifest(self):
        """The manifest as a plain dict (what ``manifest.json`` holds)."""
        return dict(self)

    def _blocks(self):
        return [(v, b) for v in self["views"] for b in v["blocks"]]

    def __repr__(self):
        if self["kind"] == "partial":
            i, n = self["shard"]
            what = "channel" if self.get("product") == "optimize" else "image"
            return (f"<montage partial {self.get('product', 'examples')} of {self['identity']['model']['name']}, shard "
                    f"{i}/{n}: {counted(self.get(what + 's', 0), what)} -> {self.path} ({self.seconds:.1f} s)>")
        blocks = self["views"][0]["blocks"] if self["views"] else []
        if self["kind"] == "filters":
            what = f"{counted(sum(b['grid']['n'] for b in blocks), 'kernel')} of {counted(len(blocks), 'layer')}"
        elif self["kind"] == "optimize":
            what = f"{counted(sum(b['grid']['n'] for b in blocks), 'channel')} of {counted(len(blocks), 'layer')} optimised"
        elif self["kind"] == "examples":
            what = (f"{counted(self['images'], 'image')}, {counted(sum(b.get('channels', b['grid']['rows']) for b in blocks), 'channel')}"
                    f" of {counted(len(blocks), 'layer')}")
        else:
            what = f"{counted(len(self['views']), 'image')} x {counted(sum(b['grid']['n'] for b in blocks), 'map')}"
        # out=None: the folder goes with this object, so a saved notebook must not name it (.path has it)
        where = "a temporary folder" if self.temporary else self.path / "index.html"
        return f"<montage {self['kind']} of {self['model']['name']}: {what} -> {where} ({self.seconds:.1f} s)>"

    def canvas(self, layer=None, image=0):
        """A layer's canvas as drawn, always RGB: uint8 (H, W, 3) (gray tiles are stored with one
        band; ``matplotlib``'s ``imshow`` takes neither (H, W, 1) nor a shape that depends on the
        colormap). Default the first layer; for feature maps, the block of image ``image``'s atlas.
        """
        view = self._view(image if self["kind"] == "features" else 0)
        blocks = view["blocks"]
        found = [i for i, b in enumerate(blocks) if layer is None or b["layer"] == layer]
        if not found:
            raise MontageError(f"no layer {layer!r} here: the layers are {', '.join(b['layer'] for b in blocks)}")
        i = found[0]
        b = blocks[i]
        if self["kind"] != "features":     # one pyramid per layer
            return _rgb(read_level(self.path, view["tiles"][i]))
        g = b["grid"]
        hh = g["rows"] * (g["cell_h"] * g["scale"] + g["gap"]) - g["gap"]
        ww = g["cols"] * (g["cell_w"] * g["scale"] + g["gap"]) - g["gap"]
        return _rgb(read_level(self.path, view["tiles"][0])[b["y"]:b["y"] + hh, b["x"]:b["x"] + ww])

    def arrays(self, layer=None):
        """Feature visualisation's pictures of a layer (default the first), (channels, H, W, 3) uint8
        RGB as drawn, in the order of the block's ``channels``."""
        if self["kind"] != "optimize":
            raise MontageError(f"arrays() gives optimize's pictures; this is a {self['kind']} result: use canvas()")
        canvas = self.canvas(layer)
        b = next(b for b in self._view(0)["blocks"] if layer is None or b["layer"] == layer)
        g = b["grid"]
        py, px = g["cell_h"] * g["scale"] + g["gap"], g["cell_w"] * g["scale"] + g["gap"]
        cells = [canvas[r * py:r * py + g["cell_h"] * g["scale"]:g["scale"], c * px:c * px + g["cell_w"] * g["scale"]:g["scale"]]
                 for r, c in (divmod(k, g["cols"]) for k in range(g["n"]))]
        return np.stack(cells)

    def _view(self, image=0):
        """A view of this result, checked: it exists, and its folder is still there."""
        if self["kind"] == "partial":
            raise MontageError(f"a partial result holds no pictures: merge the shards ({self.get('product', 'examples')} "
                               "merge=[...])")
        if not isinstance(image, int) or isinstance(image, bool) or not 0 <= image < len(self["views"]):
            raise MontageError(f"image {image!r} is out of range: this result has {len(self['views'])} view(s)")
        if not (self.path / "manifest.json").is_file():
            raise MontageError(f"the output folder {self.path} is gone (moved or deleted): render it again")
        return self["views"][image]

    def thumbnail(self, side=512):
        """PNG bytes of the first image at most ``side`` pixels across (a level of its pyramid)."""
        import pyvips

        tile = self._view(0)["tiles"][0]
        size = max(int(tile["dzi"]["Size"]["Width"]), int(tile["dzi"]["Size"]["Height"]), 1)
        level = max(0, top_level(size, size) - max(0, math.ceil(math.log2(size / side))))
        a = read_level(self.path, tile, level)
        return pyvips.Image.new_from_array(np.ascontiguousarray(a)).pngsave_buffer()

    def _repr_png_(self):
        try:
            return self.thumbnail()
        except MontageError:     # nothing to draw: the text repr says what this is
            return None

    def show(self, image=0, height=480, budget=None):
        """The zoomable view of one image (``features``) or of all layers, inline in a notebook.

        The pyramids' tiles go inline from the smallest level up to ``budget`` bytes
        (default 4 MB); past that the inline view magnifies, and the folder's page has the rest.
        Without OpenSeadragon installed it is the thumbnail.

        Returns
        -------
        Html
            Shows itself in Jupyter; ``str()`` is the HTML.
        """

        caption = repr(self)
        if self["kind"] == "partial":
            return Html(f"<div>{html.escape(caption)}</div>")
        view = self._view(image)
        if budget is not None and (isinstance(budget, bool) or not isinstance(budget, (int, float))):
            raise MontageError(f"budget {budget!r} should be a number of bytes")
        try:
            doc, complete = inline.page(self.path, view, caption, inline.BUDGET if budget is None else budget)
        except FileNotFoundError:
            png = base64.b64encode(self.thumbnail()).decode("ascii")
            return Html(f'<div><img src="data:image/png;base64,{png}" style="image-rendering:pixelated;'
                        f'max-width:100%"><div>{html.escape(caption)}</div></div>')
        page = html.escape(str(self.path / "index.html"))
        more = "" if complete else " (inline zoom stops short of full size)"
        where = ("render with <code>out=\"folder\"</code> to keep the page (this one is in a temporary "
                 "folder that goes with the result)") if self.temporary else \
            f"open <code>{page}</code> (or <code>montage serve</code> it)"
        return Html(f"<div>{inline.iframe(doc, height)}<div>zoom into everything{more}: {where}</div></div>")

    def _repr_html_(self):
        try:
            return str(self.show())
        except MontageError as e:     # a front end shows this instead of a traceback
            return f"<div>{html.escape(repr(self))}<br>{html.escape(str(e))}</div>"


class Html(str):
    """HTML that notebooks show as such (``_repr_html_``) and that prints as its source."""

    def _repr_html_(self):
        return str(self)


class Table(str):
    """The layers table: prints as text, shows as an HTML table in Jupyter, rows as ``records``."""

    def __new__(cls, text, header, rows, footer=()):
        obj = super().__new__(cls, text)
        obj.records = [dict(zip(header, r)) for r in rows]
        obj._header, obj._footer = list(header), list(footer)
        return obj

    def __repr__(self):
        return str(self)

    def _repr_html_(self):
        esc = html.escape
        head = "".join(f"<th>{esc(h)}</th>" for h in self._header)
        body = "".join("<tr>" + "".join(f"<td>{esc(str(r[h]))}</td>" for h in self._header) + "</tr>"
                       for r in self.records)
        foot = "".join(f"<p>{esc(line)}</p>" for line in self._footer)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{foot}"
