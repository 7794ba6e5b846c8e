"""A light viewer for notebooks: one self-contained ``<iframe srcdoc>`` that zooms a result.

The tiles of the output's own Deep Zoom pyramids go inline as data URLs, level by level from
the smallest, for as long as they fit a byte budget; beyond it the view magnifies the last
level it has (the folder's page has everything). No server and no file access are needed, so
it works in any notebook front end that runs scripts in HTML outputs, and in saved HTML.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
from importlib import resources
from pathlib import Path

from . import osd_assets

BUDGET = 4 << 20          # bytes of tiles inlined per view (before base64)
MIME = {"png": "image/png", "jpeg": "image/jpeg", "jpg": "image/jpeg", "webp": "image/webp"}


def _levels(folder, tile):
    """``[(level, {"c_r": bytes})]`` of one Deep Zoom image, smallest level first."""
    dzi = tile["dzi"]
    w, h = int(dzi["Size"]["Width"]), int(dzi["Size"]["Height"])
    top = math.ceil(math.log2(max(w, h, 1)))
    root = Path(folder) / dzi["Url"]
    out = []
    for level in range(top + 1):
        files = sorted((root / str(level)).glob(f"*.{dzi['Format']}"))
        out.append((level, {f.stem: f.read_bytes() for f in files}))
    return top, out


def _within(tiles, budget):
    """How many top levels to leave out so that all tiles fit ``budget`` bytes (0: none)."""
    sizes = [[sum(map(len, t.values())) for _, t in levels] for _, levels in tiles]
    for drop in range(max(len(s) for s in sizes)):
        if sum(sum(s[:max(1, len(s) - drop)]) for s in sizes) <= budget:
            return drop
    return max(len(s) for s in sizes) - 1


def page(folder, view, caption, budget=BUDGET):
    """The inline viewer of one view of a rendered folder, as a complete HTML document.

    Parameters
    ----------
    folder : path
        The output folder.
    view : dict
        One entry of the manifest's ``views``.
    caption : str
        One line shown above the image.
    budget : int
        Most bytes of tiles to inline.

    Returns
    -------
    (str, bool)
        The document, and whether it holds every level (False: zoom stops short of full size).
    """
    assets = osd_assets()
    if assets is None:
        raise FileNotFoundError("OpenSeadragon is not installed (run `npm ci` in the montage checkout)")
    tiles = [_levels(folder, t) for t in view["tiles"]]
    drop = _within(tiles, budget)
    sources = []
    for t, (top, levels) in zip(view["tiles"], tiles):
        dzi = t["dzi"]
        mime = MIME.get(dzi["Format"].lower(), "image/png")
        keep = levels[:max(1, len(levels) - drop)]
        w, h, shrink = int(dzi["Size"]["Width"]), int(dzi["Size"]["Height"]), 2 ** (top - keep[-1][0])
        # the kept levels are a smaller Deep Zoom image of their own, drawn at the full width
        sources.append({
            "x": t["x"], "y": t["y"], "full": w, "width": math.ceil(w / shrink), "height": math.ceil(h / shrink),
            "tileSize": int(dzi["TileSize"]), "overlap": int(dzi["Overlap"]), "maxLevel": keep[-1][0],
            "tiles": {str(lv): {k: f"data:{mime};base64," + base64.b64encode(b).decode("ascii")
                                for k, b in files.items()} for lv, files in keep}})
    labels = [{"text": b["layer"], "x": b["x"], "y": b["y"]} for b in view["blocks"]]
    data = json.dumps({"sources": sources, "labels": labels, "world": view["world"],
                       "complete": drop == 0}).replace("<", "\\u003c")
    osd = (assets / "openseadragon.min.js").read_text(encoding="utf-8").replace("</script", "<\\/script")
    values = {"CAPTION": html.escape(caption), "OSD": osd, "DATA": data}
    template = resources.files(__package__).joinpath("inline.html").read_text(encoding="utf-8")
    # one pass: a caption or the library may itself hold "{{DATA}}"
    return re.sub(r"\{\{(CAPTION|OSD|DATA)\}\}", lambda m: values[m[1]], template), drop == 0


def iframe(doc, height=480):
    """``doc`` in an ``<iframe srcdoc>``, as notebook HTML output."""
    return (f'<iframe srcdoc="{html.escape(doc, quote=True)}" style="width:100%;height:{int(height)}px;'
            'border:1px solid #444;background:#2b2b2b" loading="lazy"></iframe>')
