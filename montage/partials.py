"""Partial results of ``montage examples --shard``: what a shard writes, and what ``--merge`` reads
back, checked field by field and array by array before any of it is trusted."""

from __future__ import annotations

import glob
import json
import os
import re
import zipfile
from pathlib import Path

import numpy as np

from ._version import __version__
from .errors import MontageError
from .fitting import sides
from .manifest import json_default
from .paths import shown
from .preprocess import RESIZE_MODES, Feed, describe_preprocess
from .topk import Running

PARTIAL = "partial.npz"


def identity(loaded, fwd, opts, absolute):
    """What must agree between partial results to merge them (``loaded`` as loaded, before
    the preprocessing was chosen, which is recorded on its own)."""

    return {"model": loaded.describe(), "preprocess": describe_preprocess(fwd.loaded.preprocess),
            "feed": {"bgr": bool(fwd.loaded.bgr), "resize": fwd.loaded.resize},
            "weights": loaded.weights, "layers": fwd.names,
            "shapes": [list(s) for s in fwd.shapes], "input_shape": list(fwd.input_shape),
            "top": int(opts.top), "score": opts.score, "images": absolute}


def spec(opts):
    """How a shard named its model, which ``--merge`` loads unless told otherwise (None: an object)."""
    named = lambda v: str(v) if isinstance(v, (str, os.PathLike)) else None   # noqa: E731
    return {"model": named(opts.model), "weights": named(opts.weights), "seed": int(opts.seed)}


def write_partial(folder, identity, given, shard, bad, states, spec=None):

    arrays = {}
    for j, s in enumerate(states):
        arrays.update(s.arrays(f"layer{j}"))
    np.savez(folder / PARTIAL, **arrays)
    manifest = {"montage": __version__, "kind": "partial", "shard": list(shard), "identity": identity,
                "given": given, "skipped": [{"path": str(p), "reason": why} for p, why in bad],
                "images": int(states[0].count) if states else 0, "spec": spec}
    with open(folder / "manifest.json", "w") as f:
        f.write(json.dumps(manifest, default=json_default))   # the C encoder: 7x json.dump's


_IDENTITY = {"model": dict, "preprocess": (str, dict, list), "feed": dict, "weights": dict, "layers": list, "shapes": list,
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
    feed = ident["feed"]
    if set(feed) != {"bgr", "resize"} or not isinstance(feed["bgr"], bool) or feed["resize"] not in RESIZE_MODES:
        raise ValueError("feed")
    named = meta.get("spec") or {}
    if not isinstance(named, dict) or not all(isinstance(named.get(k), (str, type(None))) for k in ("model", "weights")) \
            or not isinstance(named.get("seed", 0), int) or isinstance(named.get("seed", 0), bool):
        raise ValueError("spec")
    given = meta.get("given")
    if given is not None and (not isinstance(given, list) or len(given) != len(ident["images"])
                              or not all(isinstance(g, str) for g in given)):
        raise ValueError("given")


def npz_headers(path):
    """(member name, shape, dtype) of each array in an ``.npz``, read from its header only (before any data)."""
    with zipfile.ZipFile(path) as z:
        for info in z.infolist():
            with z.open(info) as f:
                major, _ = np.lib.format.read_magic(f)
                read = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
                shape, _, dtype = read(f)
            yield info.filename, shape, dtype


def check_arrays(path, ident):
    """Raise ValueError unless every array of a partial result has the shape and type that
    ``--shard`` writes, read from the arrays' headers before any of their data."""
    top = min(ident["top"], len(ident["images"]))
    for name, shape, dtype in npz_headers(path):
        m = re.fullmatch(r"layer(\d+)/(\w+)\.npy", name)
        if not m or int(m[1]) >= len(ident["layers"]):
            raise ValueError(f"array {name}")
        c = ident["shapes"][int(m[1])][2]
        want = {"scores": (top, c), "images": (top, c), "where": (top, c), "count": ()}.get(m[2], (c,))
        if shape != want or dtype.hasobject:
            raise ValueError(f"array {name} of shape {shape}")


def read_partials(folders):
    """(identity, the image names as given, skipped, states, the first shard's model spec) merged
    from partial-result folders; refuses mixed ones. Images are compared and read by absolute path."""
    identity, shards, skipped, states, given, named = None, set(), [], None, None, None
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
            named = {"model": None, "weights": None, "seed": 0, **(meta.get("spec") or {})}
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
    return identity, given, skipped, states, named


def merge_inputs(opts, ident, named):
    """(model, weights, seed, size, feed) for ``--merge``: what the partial results record,
    except what the user gave, which must agree (checked here, or by the caller once loaded)."""
    model = opts.model if opts.model is not None else named["model"]
    if model is None:
        raise MontageError("the partial results come from a model object (API): give the same model= to merge them")
    same = opts.model is None or str(opts.model) == named["model"]
    weights = opts.weights if opts.weights is not None else named["weights"] if same else None
    seed = opts.seed if opts.seed or not same else named["seed"]
    h, w = ident["input_shape"][:2]
    if opts.size is not None and sides(opts.size) != (h, w):
        raise MontageError(f"--size differs: the partial results were fed {w} x {h} (width x height) images; "
                           "leave out --size (--merge takes it from them)")
    recorded, feed = ident["preprocess"], ident["feed"]
    for name, mine in (("bgr", opts.bgr), ("resize", opts.resize)):
        if mine != feed[name] and mine != getattr(Feed(), name):   # given (not the default), and different
            raise MontageError(f"--{name} differs: the partial results were fed with {name} {feed[name]}; "
                               f"leave out --{name} (--merge takes it from them)")
    prep, mean, std = opts.preprocess, opts.mean, opts.std
    if prep is None and mean is None and std is None:
        if isinstance(recorded, dict):
            mean, std = recorded.get("mean"), recorded.get("std")
        elif str(recorded).startswith("callable "):
            raise MontageError(f"the partial results were fed {recorded} preprocessing: pass the same preprocess= "
                               "to merge them")
        else:
            prep = recorded
    return model, weights, seed, (h, w), Feed(prep, mean, std, feed["bgr"], feed["resize"])


def readable_roots(specs):
    """(folders, files) that ``--merge`` may read images from: ``--image`` folders, files and
    globs (default: the current folder), as real paths."""
    folders, files = [], set()
    for spec in specs or [os.curdir]:
        spec = os.fspath(spec)
        if os.path.isdir(spec):
            folders.append(os.path.realpath(spec))
        else:
            files.update(os.path.realpath(p) for p in (glob.glob(spec) or [spec]))
    return folders, files


def check_readable(path, roots):
    """Refuse an image a partial result names outside ``roots`` (:func:`readable_roots`): a partial
    from someone else could name any picture the user can read, and its crops would be published."""
    real = os.path.realpath(path)
    folders, files = roots
    if real in files or any(os.path.commonpath([real, f]) == f for f in folders):
        return
    raise MontageError(f"{shown(path)}, an image the partial results name, is outside what --merge may read "
                       "(default: the current folder): pass --image with its folder (or files) to allow it")
