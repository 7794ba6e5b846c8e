"""A training history's folder: steps published one by one, each whole or not at all.

``DIR/history.json`` says which model and options (written once, at the first step), each
``DIR/steps/NNNNNNNN/`` is one step (its pyramids, values and ``step.json``), made as a hidden
``.NNNNNNNN.partial-*`` folder beside it and renamed into place when complete. The page
(``index.html``, ``manifest.json``) is rebuilt from the steps found after each step, each file
replaced in one rename: a run killed at any moment leaves every completed step and a page that
works (the page shows the steps it knew of; the next recorder on the folder adds the rest).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import tempfile
from importlib import resources
from pathlib import Path

import numpy as np

from . import viewer
from .errors import MontageError
from .layout import LAYER_GAP, shelf_pack
from .manifest import json_default
from .paths import shown
from .render_history import DIFF_CMAP, MODES

STEP_DIR = re.compile(r"\d{8}")
PARTIAL = re.compile(r"\.\d{8}\.partial-[a-z0-9_]{8}")   # what this module leaves behind when killed
MAX_STEP = 10**8 - 1


def write_json(path, data):
    """``data`` as JSON at ``path``, replacing it in one rename (readers see old or new, never half)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, allow_nan=False, default=json_default)
        os.chmod(tmp, 0o644)   # mkstemp's file is private; the output is not
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_state(out):
    """``history.json`` of ``out``, or None where there is none yet."""
    try:
        with open(Path(out) / "history.json", encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise MontageError(f"{shown(Path(out) / 'history.json')} cannot be read ({e}): record into another "
                           "folder") from None


def check_folder(out, identity):
    """Refuse a folder that holds anything but a history of the model ``identity`` (one line)."""
    out = Path(out)
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise MontageError(f"--out {shown(out)} is not a folder: choose another path")
    state = read_state(out)
    if state is None:
        if out.exists() and any(out.iterdir()):
            raise MontageError(f"--out {shown(out)} exists and holds no montage history: choose another folder")
        return None
    if (state.get("identity") or {}).get("layers") != identity["layers"]:   # a checkpoint's name may differ
        was = state.get("identity", {}).get("model", "?")
        raise MontageError(f"--out {shown(out)} holds the history of another model ({was}, other layers or "
                           "kernel shapes): choose another folder to record this one")
    return state


def clear_partials(out):
    """Remove the unfinished steps a killed recorder left (only names this module makes)."""
    steps = Path(out) / "steps"
    if steps.is_dir():
        for p in steps.iterdir():
            if PARTIAL.fullmatch(p.name) and p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)


def recorded(out):
    """The complete steps of ``out``: a list of ``step.json`` contents, in step order."""
    steps = Path(out) / "steps"
    found = []
    if steps.is_dir():
        for p in sorted(steps.iterdir()):
            if STEP_DIR.fullmatch(p.name) and (p / "step.json").is_file():
                with open(p / "step.json", encoding="utf-8") as f:
                    found.append(json.load(f))
    return sorted(found, key=lambda s: s["step"])


def step_folder(out, step):
    """A fresh hidden folder beside the step's final place, to draw it into."""
    steps = Path(out) / "steps"
    steps.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{step:08d}.partial-", dir=steps))


def publish(tmp, out, step, data):
    """Write ``step.json`` into the drawn ``tmp`` and rename it to ``steps/NNNNNNNN``."""
    with open(tmp / "step.json", "w", encoding="utf-8") as f:
        json.dump(data, f, allow_nan=False, default=json_default)
    os.chmod(tmp, 0o755)
    os.rename(tmp, Path(out) / "steps" / f"{step:08d}")


def _series(steps):
    """Per layer, each step's mean kernel norm and share of dead channels (the page's curves)."""
    out = {}
    for s in steps:
        for layer, st in s["stats"].items():
            d = out.setdefault(layer, {"mean_norm": [], "dead_share": [], "clipped": [], "act_dead_share": []})
            for key in d:
                d[key].append(st.get(key))
    return out


def manifest(state, steps, diff_lut):
    """The page's manifest: three views a step (see :data:`MODES`), blocks placed as filters places them."""
    views = []
    for s in steps:
        for m, v in zip(MODES, s["views"]):
            origins, (wh, ww) = shelf_pack([(_size(b["grid"])) for b in v["blocks"]], LAYER_GAP)
            for b, t, (y, x) in zip(v["blocks"], v["tiles"], origins):
                b["x"], b["y"], t["x"], t["y"] = x, y, x, y
            views.append({"name": f"step {s['step']} \u00b7 {m}", "world": [ww, wh], "tiles": v["tiles"],
                          "blocks": v["blocks"], "step": s["step"], "mode": m})
    head = dict(state["head"])
    head["history"] = {"steps": [s["step"] for s in steps], "labels": [s.get("label") for s in steps],
                       "modes": list(MODES), "range": state["range"],
                       "series": _series(steps), "stats": [s["stats"] for s in steps],
                       "colormaps": {"value": head["colormap"], "diff": {"name": DIFF_CMAP, "lut": diff_lut}}}
    return {**head, "views": views}


def _size(g):
    return (g["rows"] * (g["cell_h"] * g["scale"] + g["gap"]) - g["gap"],
            g["cols"] * (g["cell_w"] * g["scale"] + g["gap"]) - g["gap"])


def rebuild_page(out, state, diff_lut):
    """Write ``manifest.json`` (kind 'history') and the page over every complete step, file by file
    in renames; returns the manifest."""
    out = Path(out)
    m = manifest(state, recorded(out), diff_lut)
    page = {**m, "kind": "filters"}   # the page draws each view as filters' (rows filters, columns channels)
    tmp = Path(tempfile.mkdtemp(prefix=".page.", dir=out))
    try:
        write_json(tmp / "page.json", page)
        viewer.build(tmp, tmp / "page.json", f"{m['model']['name']} history")
        (tmp / "page.json").unlink()
        (tmp / "viewer" / "history.js").write_bytes(resources.files(viewer).joinpath("history.js").read_bytes())
        html = (tmp / "index.html").read_text(encoding="utf-8")
        hook = '<script src="viewer/main.js"></script>'
        (tmp / "index.html").write_text(html.replace(hook, hook + '\n<script src="viewer/history.js"></script>'),
                                        encoding="utf-8")
        for root, _, files in os.walk(tmp):
            rel = Path(root).relative_to(tmp)
            (out / rel).mkdir(exist_ok=True)
            for name in sorted(files, key=lambda n: n == "index.html"):   # the page last
                os.replace(Path(root) / name, out / rel / name)
        write_json(out / "manifest.json", m)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return m


def read_values(path):
    """The array a values script (``montage.manifest.write_values``) holds, all parts joined."""
    path = Path(path)
    first = path.read_text(encoding="ascii")
    m = re.match(r'montageValues\((".*?"),(\[[0-9, ]*\]),(\d+),0,"', first)
    shape, parts = json.loads(m[2]), int(m[3])
    raw = b"".join(base64.b64decode(
        (first if i == 0 else path.with_name(f"{path.name[:-3]}.{i}.js").read_text(encoding="ascii"))
        .rsplit(',"', 1)[1].split('"', 1)[0]) for i in range(parts))
    return np.frombuffer(raw, "<f4").reshape(shape).astype(np.float32)

