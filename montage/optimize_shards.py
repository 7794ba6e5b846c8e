"""Partial results of ``montage optimize --shard I/N`` (every N-th channel of each layer from the
I-th), and ``--merge``, which reads them back, checked field by field and array by array before
any of it is trusted, into the pictures a single run draws."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from ._version import __version__
from .errors import MontageError
from .manifest import json_default
from .partials import PARTIAL, npz_headers
from .paths import shown

_IDENTITY = {"model": dict, "weights": dict, "preprocess": (str, dict, list), "bgr": bool, "layers": list,
             "shapes": list, "input_shape": list, "channels": list, "method": dict}


def shard_of(chans, shard):
    """A shard's share of one layer's channels: every N-th from the I-th."""
    return list(chans) if shard is None else list(chans)[shard[0]::shard[1]]


def write_partial(folder, identity, shard, parts):
    """``parts``: per layer (channels, pictures (n, h, w, 3) uint8, start (n,), end (n,))."""
    arrays = {}
    for j, (chans, pics, first, last) in enumerate(parts):
        arrays.update({f"layer{j}/channels": np.asarray(chans, np.int64), f"layer{j}/pictures": pics,
                       f"layer{j}/start": np.asarray(first, np.float32), f"layer{j}/end": np.asarray(last, np.float32)})
    np.savez(folder / PARTIAL, **arrays)
    manifest = {"montage": __version__, "kind": "partial", "product": "optimize", "shard": list(shard),
                "identity": identity, "channels": sum(len(p[0]) for p in parts)}
    with open(folder / "manifest.json", "w") as f:
        json.dump(manifest, f, default=json_default)


def _whole(v, low=0):
    return isinstance(v, int) and not isinstance(v, bool) and v >= low


def _check(meta):
    ident, shard = meta["identity"], meta["shard"]
    if not isinstance(ident, dict) or set(ident) != set(_IDENTITY) or \
            any(not isinstance(ident[k], t) for k, t in _IDENTITY.items()):
        raise ValueError("identity")
    if not (isinstance(shard, list) and len(shard) == 2 and all(map(_whole, shard)) and shard[0] < shard[1]):
        raise ValueError("shard")
    n = len(ident["layers"])
    if len(ident["input_shape"]) != 3 or not all(_whole(d, 1) for d in ident["input_shape"]) or \
            len(ident["shapes"]) != n or len(ident["channels"]) != n or \
            not all(isinstance(x, str) for x in ident["layers"]):
        raise ValueError("layers")
    for shape, chans in zip(ident["shapes"], ident["channels"]):
        if not isinstance(shape, list) or len(shape) not in (1, 3) or not all(_whole(d, 1) for d in shape) or \
                not isinstance(chans, list) or not all(_whole(c) and c < shape[-1] for c in chans) or \
                len(set(chans)) != len(chans):
            raise ValueError("channels")


def _arrays(path, ident, shard):
    """The partial's arrays, each checked (from its header, before its data) against what the shard
    of ``ident`` holds."""
    h, w, _ = ident["input_shape"]
    want = {}
    for j, chans in enumerate(ident["channels"]):
        n = len(shard_of(chans, shard))
        want.update({f"layer{j}/channels.npy": ((n,), np.int64), f"layer{j}/pictures.npy": ((n, h, w, 3), np.uint8),
                     f"layer{j}/start.npy": ((n,), np.float32), f"layer{j}/end.npy": ((n,), np.float32)})
    with zipfile.ZipFile(path) as z:
        if sorted(z.namelist()) != sorted(want):
            raise ValueError("arrays")
    for name, shape, dtype in npz_headers(path):
        if (shape, dtype) != (want[name][0], np.dtype(want[name][1])):
            raise ValueError(f"array {name}")
    data = np.load(path, allow_pickle=False)
    out = []
    for j, chans in enumerate(ident["channels"]):
        if list(data[f"layer{j}/channels"]) != shard_of(chans, shard):
            raise ValueError("channels")
        out.append([data[f"layer{j}/{k}"] for k in ("pictures", "start", "end")])
    return out


def _read(folder):
    folder = Path(folder)
    try:
        for name in ("manifest.json", PARTIAL):   # a FIFO would block the read for ever; a link may point anywhere
            if (folder / name).is_symlink() or not (folder / name).is_file():
                raise ValueError(f"no file {name}")
        meta = json.loads((folder / "manifest.json").read_text())
        if not isinstance(meta, dict) or meta.get("kind") != "partial" or meta.get("product") != "optimize":
            raise ValueError("not a partial result")
        _check(meta)
        return meta, _arrays(folder / PARTIAL, meta["identity"], tuple(meta["shard"]))
    except (OSError, ValueError, KeyError, TypeError, AttributeError, EOFError, RecursionError,
            zipfile.BadZipFile) as e:
        raise MontageError(f"{shown(folder)} is not a partial result of `montage optimize --shard` "
                           f"({type(e).__name__}): give the --out folders of --shard runs") from None


def read_partials(folders):
    """(identity, per layer (pictures, start, end) in the identity's channel order) merged from the
    partial-result folders; refuses mixed ones, repeated or missing shards."""
    identity, got = None, {}
    for folder in folders:
        meta, arrays = _read(folder)
        if identity is not None and meta["identity"] != identity:
            diff = next(k for k in _IDENTITY if identity.get(k) != meta["identity"].get(k))
            raise MontageError(f"{shown(folder)} comes from a different run ({diff} differ): merge partial results "
                               "of one model, layers, channels and method")
        identity = meta["identity"]
        shard = tuple(meta["shard"])
        if shard in got:
            raise MontageError(f"shard {shard[0]}/{shard[1]} is given twice ({shown(folder)})")
        got[shard] = arrays
    n = next(iter(got))[1]
    missing = sorted(set(range(n)) - {i for i, _ in got})
    if missing or any(m != n for _, m in got):
        raise MontageError(f"the partial results do not cover every channel: shards {', '.join(f'{i}/{n}' for i in missing)} "
                           "are missing" if missing else "partial results of different shard counts")
    layers = []
    for j, chans in enumerate(identity["channels"]):
        order = np.argsort(np.concatenate([np.asarray(shard_of(range(len(chans)), (i, n))) for i in range(n)]))
        layers.append([np.concatenate([got[(i, n)][j][k] for i in range(n)])[order] for k in range(3)])
    return identity, layers

