"""Partial results of ``montage examples --shard``: what a shard writes, and what ``--merge`` reads
back, checked field by field and array by array before any of it is trusted."""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import numpy as np

from ._version import __version__
from .errors import MontageError
from .manifest import json_default
from .paths import shown
from .preprocess import describe_preprocess
from .topk import Running

PARTIAL = "partial.npz"


def identity(loaded, fwd, opts, absolute):
    """What must agree between partial results to merge them (``loaded`` as loaded, before
    the preprocessing was chosen, which is recorded on its own)."""

    return {"model": loaded.describe(), "preprocess": describe_preprocess(fwd.loaded.preprocess),
            "weights": loaded.weights, "layers": fwd.names,
            "shapes": [list(s) for s in fwd.shapes], "input_shape": list(fwd.input_shape),
            "top": int(opts.top), "score": opts.score, "images": absolute}


def write_partial(folder, identity, given, shard, bad, states):

    arrays = {}
    for j, s in enumerate(states):
        arrays.update(s.arrays(f"layer{j}"))
    np.savez(folder / PARTIAL, **arrays)
    manifest = {"montage": __version__, "kind": "partial", "shard": list(shard), "identity": identity,
                "given": given, "skipped": [{"path": str(p), "reason": why} for p, why in bad],
                "images": int(states[0].count) if states else 0}
    with open(folder / "manifest.json", "w") as f:
        json.dump(manifest, f, default=json_default)


_IDENTITY = {"model": dict, "preprocess": (str, dict, list), "weights": dict, "layers": list, "shapes": list,
             "input_shape": list, "top": int, "score": str, "images": list}


def check_identity(meta):
    """Raise ValueError unless a partial result's manifest has the fields, types and ranges
    that ``--shard`` writes (a tampered or foreign file must not index past its own lists)."""
    ident = meta["identity"]
    shard = meta["shard"]
    if not isinstance(ident, dict) or set(ident) != set(_IDENTITY):
        raise ValueError("identity fields")
    if any(not isinstance(ident[k], t) or isinstance(ident[k], bool) for k, t in _IDENTITY.items()):
        raise ValueError("identity types")
    whole = lambda v: isinstance(v, int) and not isinstance(v, bool)   # noqa: E731
    if not (isinstance(shard, list) and len(shard) == 2 and all(map(whole, shard)) and 0 <= shard[0] < shard[1]):
        raise ValueError("shard")
    shapes = ident["shapes"]
    if len(ident["input_shape"]) != 3 or not all(whole(d) and d > 0 for d in ident["input_shape"]):
        raise ValueError("input shape")
    if len(shapes) != len(ident["layers"]) or not all(isinstance(n, str) for n in ident["layers"] + ident["images"]) \
            or any(not isinstance(s, list) or len(s) != 3 or not all(whole(d) and d > 0 for d in s) for s in shapes) \
            or ident["top"] < 1 or len(ident["images"]) < 1 or ident["score"] not in ("max", "mean"):
        raise ValueError("identity values")
    given = meta.get("given")
    if given is not None and (not isinstance(given, list) or len(given) != len(ident["images"])
                              or not all(isinstance(g, str) for g in given)):
        raise ValueError("given")


def check_arrays(path, ident):
    """Raise ValueError unless every array of a partial result has the shape and type that
    ``--shard`` writes, read from the arrays' headers before any of their data."""
    top = min(ident["top"], len(ident["images"]))
    with zipfile.ZipFile(path) as z:
        for info in z.infolist():
            m = re.fullmatch(r"layer(\d+)/(\w+)\.npy", info.filename)
            if not m or int(m[1]) >= len(ident["layers"]):
                raise ValueError(f"array {info.filename}")
            c = ident["shapes"][int(m[1])][2]
            want = {"scores": (top, c), "images": (top, c), "where": (top, c), "count": ()}.get(m[2], (c,))
            with z.open(info) as f:
                major, _ = np.lib.format.read_magic(f)
                read = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
                shape, _, dtype = read(f)
            if shape != want or dtype.hasobject:
                raise ValueError(f"array {info.filename} of shape {shape}")


def read_partials(folders):
    """(identity, the image names as given, skipped, states) merged from partial-result folders;
    refuses mixed ones. Images are compared and read by absolute path."""
    identity, shards, skipped, states, given = None, set(), [], None, None
    for folder in folders:
        folder = Path(folder)
        try:
            for name in ("manifest.json", PARTIAL):   # a FIFO would block the read for ever
                if not (folder / name).is_file():
                    raise ValueError(f"no file {name}")
            meta = json.loads((folder / "manifest.json").read_text())
            if not isinstance(meta, dict) or meta.get("kind") != "partial":
                raise ValueError("not a partial result")
            check_identity(meta)
            check_arrays(folder / PARTIAL, meta["identity"])
            data = np.load(folder / PARTIAL)
            ident = meta["identity"]
            top = min(ident["top"], len(ident["images"]))
            parts = [Running.from_arrays(data, f"layer{j}") for j in range(len(ident["layers"]))]
            for part, (h, w, c) in zip(parts, ident["shapes"]):
                part.validate(top, c, len(ident["images"]), h * w)
        except (OSError, ValueError, KeyError, TypeError, AttributeError, EOFError, RecursionError,
                zipfile.BadZipFile) as e:
            raise MontageError(f"{shown(folder)} is not a partial result of `montage examples --shard` "
                               f"({type(e).__name__}): give the --out folders of --shard runs") from None
        if identity is not None and meta["identity"] != identity:
            diff = next(k for k in sorted(set(identity) | set(meta["identity"]))
                        if identity.get(k) != meta["identity"].get(k))
            raise MontageError(f"{shown(folder)} comes from a different run ({diff} differ): merge partial results "
                               "of one model, layers, --top, --score and image list")
        shard = tuple(meta["shard"])
        if shard in shards:
            raise MontageError(f"shard {shard[0]}/{shard[1]} is given twice ({shown(folder)})")
        shards.add(shard)
        if identity is None:
            identity, states, given = meta["identity"], parts, meta.get("given") or meta["identity"]["images"]
        else:
            states = [a.merged(b) for a, b in zip(states, parts)]
        more = meta.get("skipped", [])
        if not isinstance(more, list) or any(not isinstance(x, dict) or set(x) != {"path", "reason"} or
                                             not all(isinstance(v, str) for v in x.values()) for x in more):
            raise MontageError(f"{shown(folder)} is not a partial result of `montage examples --shard` (its "
                               "skipped list): give the --out folders of --shard runs")
        skipped += more
    n = next(iter(shards))[1]
    missing = sorted(set(range(n)) - {i for i, _ in shards})
    if missing or any(m != n for _, m in shards):
        raise MontageError(f"the partial results do not cover every image: shards {', '.join(f'{i}/{n}' for i in missing)} "
                           "are missing" if missing else "partial results of different shard counts")
    return identity, given, skipped, states
