"""The manifest (what every pixel is), the page's side files, and the page itself."""

import base64
import json

import numpy as np

from ._version import __version__
from .console import note


def header(kind, loaded, style, **extra):
    """The manifest's first keys: montage's version first (how ``--overwrite`` knows its own output),
    what was drawn, the model and its weights, ``extra``, then the colours."""
    return {"montage": __version__, "kind": kind, "model": loaded.describe(), "weights": loaded.weights,
            **extra, **style.manifest()}


def norm_entry(mode, clip, lo, hi, group):
    """A block's normalisation: the mode, its group of cells and each group's range."""
    # float32 arrays: compact while many images accumulate; written out by json_default
    return {"mode": mode, "clip": clip, "group": group,
            "lo": np.asarray(lo, np.float32), "hi": np.asarray(hi, np.float32)}


def json_default(obj):
    """JSON for numpy values, 7 significant digits (float32 precision)."""
    if isinstance(obj, np.ndarray):
        return [float(f"{v:.7g}") for v in obj.ravel().tolist()]
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def write_values(path, key, src):
    """Cell values for the page's readout, as a script (pages on file:// cannot fetch)."""
    b64 = base64.b64encode(np.ascontiguousarray(src, "<f4").tobytes()).decode("ascii")
    path.write_text(f"montageValues({json.dumps(key)},\"{b64}\",{json.dumps(list(src.shape))});\n")


def finish(folder, manifest, title, quiet):
    """Write ``manifest.json`` and the page that shows it into ``folder``."""
    from . import viewer

    # Encoded once, streamed (views can be many); the page inlines this same file.
    with open(folder / "manifest.json", "w") as f:
        json.dump(manifest, f, allow_nan=False, default=json_default)
    if not viewer.build(folder, folder / "manifest.json", title):
        note("OpenSeadragon is not installed (run `npm ci` in the montage source folder, or set "
             "MONTAGE_OSD_DIR): the page will load it from a CDN and needs a network", quiet)
