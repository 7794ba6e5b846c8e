"""The self-contained page: template + OpenSeadragon assets + the manifest inline."""

import html
import os
import re
import shutil
from importlib import resources
from pathlib import Path

OSD_VERSION = "6.1.1"
# The page's script, one classic script per concern, loaded in this order into one namespace
# (window.montage): a page on file:// cannot load ES modules. Each takes what earlier ones gave.
SCRIPTS = ("core.js", "values.js", "readout.js", "osd.js", "panel.js", "labels.js", "main.js")
CDN = f"https://cdn.jsdelivr.net/npm/openseadragon@{OSD_VERSION}/build/openseadragon/"


def osd_assets():
    """Folder holding ``openseadragon.min.js`` and ``images/``, or None when not installed.

    Looked up in ``$MONTAGE_OSD_DIR``, then in ``node_modules`` beside the source tree
    (where the set-up's ``npm ci`` puts it), then under the working directory.
    """
    candidates = []
    if os.environ.get("MONTAGE_OSD_DIR"):
        candidates.append(Path(os.environ["MONTAGE_OSD_DIR"]))
    sub = Path("node_modules", "openseadragon", "build", "openseadragon")
    candidates += [Path(__file__).resolve().parents[2] / sub, Path.cwd() / sub]
    for c in candidates:
        if (c / "openseadragon.min.js").is_file() and (c / "images").is_dir():
            return c
    return None


def _inline_json(path, chunk_size=1 << 20):
    """The JSON file at ``path`` in chunks that are safe inside a <script> element: no '<',
    '>' or '&' can close it (each is one character, so chunk edges need no care)."""
    with open(path, encoding="utf-8") as f:
        while chunk := f.read(chunk_size):
            yield chunk.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def build(out_dir, manifest_file, title="montage"):
    """Write ``index.html`` (with ``manifest_file`` inline), the page's scripts (``viewer/``),
    ``viewer.css`` and the OpenSeadragon files.

    Returns
    -------
    bool
        True when the local OpenSeadragon copy was found; False means the page
        will load it from a CDN (and so needs a network).
    """
    out_dir = Path(out_dir)
    pkg = resources.files(__package__)
    (out_dir / "viewer.css").write_text(pkg.joinpath("viewer.css").read_text(encoding="utf-8"), encoding="utf-8")
    (out_dir / "viewer").mkdir(exist_ok=True)
    for name in SCRIPTS:
        (out_dir / "viewer" / name).write_text(pkg.joinpath(name).read_text(encoding="utf-8"), encoding="utf-8")
    assets = osd_assets()
    if assets is not None:
        dest = out_dir / "openseadragon"
        dest.mkdir(exist_ok=True)
        shutil.copy2(assets / "openseadragon.min.js", dest)
        shutil.copytree(assets / "images", dest / "images", dirs_exist_ok=True)
    # Split before filling, and fill in one pass: a title may itself read "{{MANIFEST}}".
    # A model file's name may hold undecodable bytes (surrogates), which UTF-8 cannot write.
    title = title.encode("utf-8", "backslashreplace").decode("utf-8")
    scripts = "\n".join(f'<script src="viewer/{name}"></script>' for name in SCRIPTS)
    values = {"TITLE": html.escape(title), "CDN": CDN, "SCRIPTS": scripts}
    head, tail = (re.sub(r"\{\{(TITLE|CDN|SCRIPTS)\}\}", lambda m: values[m[1]], part) for part in
                  pkg.joinpath("index.html").read_text(encoding="utf-8").split("{{MANIFEST}}"))
    with open(out_dir / "index.html", "w", encoding="utf-8") as f:   # streamed: views can be many
        f.write(head)
        for chunk in _inline_json(manifest_file):
            f.write(chunk)
        f.write(tail)
    return assets is not None
