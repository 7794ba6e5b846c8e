"""The manifest (what every pixel is), the page's side files, and the page itself."""

import base64
import json
import os
import re
from pathlib import Path

import numpy as np

from . import viewer
from ._version import __version__
from .console import note
from .normalize import flat_groups
from .paths import public_path


def header(kind, loaded, style, given=(None, None), **extra):
    """The manifest's first keys: montage's version first (how ``--overwrite`` knows its own output),
    what was drawn, the model and its weights, ``extra``, then the colours.

    ``given``: the model and weights as the user named them. Files are recorded as named there
    (:func:`montage.paths.public_path`), not as the absolute paths montage resolved: a shared
    page carries the manifest. (Merging shards keeps its absolute paths in ``partial.json``.)"""
    model, weights = dict(loaded.describe()), dict(loaded.weights)
    named = [os.fspath(g) if isinstance(g, (str, os.PathLike)) else None for g in given]
    if named[0] and os.path.exists(named[0]):
        model["source"] = named[0]
    if "file" in weights:
        mine = {"model file": named[0], "file": named[1]}.get(weights["source"])
        weights["file"] = public_path(mine if mine and os.path.exists(mine) else weights["file"])
    return {"montage": __version__, "kind": kind, "model": model, "weights": weights, **extra, **style.manifest()}


def norm_entry(mode, clip, lo, hi, group):
    """A block's normalisation: the mode, its group of cells (a grid mode's group: 'grid', 'row',
    'col' or 'cell'), each group's range and, where there are any, the groups drawn flat."""
    flat = flat_groups(lo, hi, group)
    # float32 arrays: compact while many images accumulate; written out by json_default
    entry = {"mode": mode, "clip": clip, "group": group,
             "lo": np.asarray(lo, np.float32), "hi": np.asarray(hi, np.float32)}
    if len(flat):
        entry["flat"] = [int(i) for i in flat]
    return entry


def json_default(obj):
    """JSON for numpy values; a float32 array as the shortest decimals that read back to the same
    float32 (7 digits do not always: the page shows these ranges as exact values)."""
    if isinstance(obj, np.ndarray):
        if obj.dtype != np.float32:
            return obj.ravel().tolist()
        a = obj.ravel()
        short = np.array([float(f"{v:.7g}") for v in a.tolist()])   # most read back exactly
        for i in np.flatnonzero(short.astype(np.float32) != a):
            short[i] = float(str(a[i]))                             # numpy's shortest exact repr
        return short.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


# Bytes of float32 values per script file: a large layer loads in parts so that the page can
# show its progress. A multiple of 12, so that every part is whole float32s and whole base64 quads.
VALUES_PART = 3 << 20


def values_part(path, i):
    """Part ``i`` of the values script ``path`` (part 0 is ``path`` itself)."""
    return path if i == 0 else path.with_name(f"{path.name[:-3]}.{i}.js")


def _stream(src, zeros):
    """(bytes, encoding) of ``src`` as little-endian float32: as they are (encoding None), or with
    ``zeros`` where that is smaller, {"zeros": "bits"}: one bit per value (1: stored), padded to
    whole float32s, then the stored values. Exact: only all-zero bits count as zero (-0.0 and
    NaN are stored). Post-ReLU maps are mostly zeros: VGG16's take a third of the bytes."""
    a = np.ascontiguousarray(src, "<f4").ravel()
    if zeros:
        kept = a.view("<u4") != 0
        bits = np.packbits(kept, bitorder="little")
        pad = -len(bits) % 4
        size = len(bits) + pad + 4 * int(kept.sum())
        if size < a.nbytes:
            return (b"".join([bits.tobytes(), bytes(pad), a[kept].tobytes()]),
                    {"zeros": "bits", "bytes": size})
    return memoryview(a).cast("B"), None


def read_values(path):
    """The array a :func:`write_values` script (and its parts) holds, decoded as the page does."""
    first, data, i, parts = Path(path), b"", 0, 1
    call = re.compile(r'montageValues\((".*?"),(\[.*?\]),(\d+),(\d+),"(.*?)"(?:,(\{.*\}))?\);\n', re.S)
    while i < parts:
        m = call.fullmatch(values_part(first, i).read_text())
        shape, parts, enc = json.loads(m[2]), int(m[3]), json.loads(m[6] or "null")
        data += base64.b64decode(m[5])
        i += 1
    n = int(np.prod(shape))
    if enc is None:
        return np.frombuffer(data, "<f4").reshape(shape)
    kept = np.unpackbits(np.frombuffer(data, np.uint8, (n + 7) // 8), count=n, bitorder="little").astype(bool)
    out = np.zeros(n, "<f4")
    out[kept] = np.frombuffer(data, "<f4", offset=(n + 7) // 8 + (-((n + 7) // 8) % 4))
    return out.reshape(shape)


def write_values(path, key, src, zeros=False):
    """Cell values for the page's readout, as scripts (pages on file:// cannot fetch).

    Parameters
    ----------
    path : pathlib.Path
        The first part, ``NAME.js``; further parts are ``NAME.1.js``, ``NAME.2.js``, ...
    key : str
        ``path`` as the page names it (relative to the page).
    src : array-like
        Written as little-endian float32, C order, with its shape.
    zeros : bool
        Zeros as bits where that is smaller (activations; see :func:`_stream`).

    Returns
    -------
    int
        Bytes written.
    """
    raw, enc = _stream(src, zeros)
    parts = max(1, -(-len(raw) // VALUES_PART))
    head = f"montageValues({json.dumps(key)},{json.dumps(list(np.shape(src)))},{parts},"
    tail = f'",{json.dumps(enc)});\n' if enc else '");\n'
    size = 0
    for i in range(parts):
        pieces = [f'{head}{i},"'.encode(), base64.b64encode(raw[i * VALUES_PART:(i + 1) * VALUES_PART]), tail.encode()]
        with open(values_part(path, i), "wb") as f:   # bytes as they are: no str copies of ~4 MB parts
            for piece in pieces:
                f.write(piece)
        size += sum(map(len, pieces))
    return size


def finish(folder, manifest, title, quiet):
    """Write ``manifest.json`` and the page that shows it into ``folder``."""
    # One string: json.dumps uses the C encoder, json.dump to a file the pure-Python one (an
    # examples manifest of 43,000 patches: 2.3 s -> 0.3 s); the page inlines this same file.
    text = json.dumps(manifest, allow_nan=False, default=json_default)
    with open(folder / "manifest.json", "w") as f:
        f.write(text)
    _page(folder, folder / "manifest.json", title, quiet)


def _page(folder, inline, title, quiet):
    """The page, with the JSON file ``inline`` inside it."""

    if not viewer.build(folder, inline, title):
        note("OpenSeadragon is not installed (run `npm ci` in the montage source folder, or set "
             "MONTAGE_OSD_DIR): the page will load it from a CDN and needs a network", quiet)


VIEW_CALL = "montageView("


def write_view(path, index, view):
    """One image's view (its tiles, and per layer its ranges and values) as a script for the page,
    which loads it when that image is shown; :func:`finish_views` streams these into the manifest."""
    text = json.dumps(view, allow_nan=False, default=json_default)
    path.write_text(f"{VIEW_CALL}{index},{text});\n", encoding="utf-8")


def _view_json(path):
    """The JSON text of the view a :func:`write_view` file holds."""
    text = path.read_text(encoding="utf-8")
    return text[text.index(",") + 1:text.rindex(")")]


def read_view(path):
    """The view dict a :func:`write_view` file holds."""
    return json.loads(_view_json(path))


def finish_views(folder, head, names, bases, layout, title, quiet):
    """Write ``manifest.json`` (``head`` plus every image's view, streamed from the per-image
    files, never all in memory) and a page that inlines only ``head``, the image index and the
    geometry all images share: its size and start-up do not grow with the images' data."""
    with open(folder / "manifest.json", "w", encoding="utf-8") as f:
        f.write(json.dumps(head, allow_nan=False, default=json_default)[:-1] + ', "views": [')
        for i, base in enumerate(bases):
            f.write((", " if i else "") + _view_json(folder / "images" / f"{base}.view.js"))
        f.write("]}")
    page = folder / ".page.json"
    with open(page, "w", encoding="utf-8") as f:
        json.dump({**head, "images": {"names": names, "bases": bases}, "layout": layout}, f, allow_nan=False,
                  default=json_default)
    try:
        _page(folder, page, title, quiet)
    finally:
        page.unlink()
