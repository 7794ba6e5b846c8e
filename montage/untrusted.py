"""Checks on untrusted model files, made before any of their data is read.

An HDF5 file can point outside itself (external links, datasets stored in other files,
virtual datasets): read as weights, the bytes of any local file would become pixels and
readout values. A zip member or an HDF5 dataset can declare far more than it stores (a bomb).
Keras refuses these too, with its own limits; montage checks every file it reads itself,
with lower limits, and says in one line what it refused.
"""

import math

from .errors import MontageError
from .paths import shown

# A member or dataset that declares more than this and more than EXPANSION times what it
# stores is a bomb: Keras stores members uncompressed, and real weights barely compress.
BOMB_FLOOR = 1 << 26          # 64 MiB
EXPANSION = 100


def _refuse(path, what):
    raise MontageError(f"model file {shown(path)} {what}: montage refuses to read it (a model file may not "
                       "point to other files or declare more data than it holds)")


def check_zip(archive, path):
    """Refuse a zip archive whose members unpack to far more than they store."""
    for info in archive.infolist():
        if info.file_size > BOMB_FLOOR and info.file_size > EXPANSION * max(1, info.compress_size):
            _refuse(path, f"has a member {info.filename!r} that unpacks {info.compress_size:,} bytes to "
                          f"{info.file_size:,}")


def check_hdf5(f, path):
    """Refuse an open HDF5 file with external or soft links, datasets stored elsewhere or
    virtual, or datasets that declare far more than they store. Reads no data."""
    import h5py

    links = []
    f.visit_links(links.append)    # every link, followed or not; H5Lvisit does not leave the file
    for name in links:
        parent, _, leaf = name.rpartition("/")
        kind = (f[parent] if parent else f).get(leaf, getclass=True, getlink=True)
        if kind is h5py.ExternalLink:
            _refuse(path, f"links {name!r} to another file")
        if kind is h5py.SoftLink:
            _refuse(path, f"has a soft link {name!r}")

    total = [0, 0]    # declared, stored: many datasets just under the floor add up too

    def dataset(name, obj):
        if not isinstance(obj, h5py.Dataset):
            return
        if obj.external:
            _refuse(path, f"stores dataset {name!r} in another file")
        if obj.is_virtual:
            _refuse(path, f"has a virtual dataset {name!r} (data from other files)")
        declared, stored = math.prod(obj.shape or ()) * obj.dtype.itemsize, obj.id.get_storage_size()
        if declared > BOMB_FLOOR and declared > EXPANSION * 10 * max(1, stored):
            _refuse(path, f"has a dataset {name!r} that declares {declared:,} bytes but stores {stored:,}")
        total[0] += declared
        total[1] += stored

    f.visititems(dataset)
    if total[0] > BOMB_FLOOR and total[0] > EXPANSION * 10 * max(1, total[1]):
        _refuse(path, f"has datasets that declare {total[0]:,} bytes together but store {total[1]:,}")


def check_keras_file(path):
    """Check a ``.keras`` archive (its members, its weights) or an HDF5 ``.h5`` file before Keras reads it."""
    import io
    import zipfile

    import h5py

    try:   # both, where both match: a file can be HDF5 and a zip at once, and Keras picks by suffix
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                check_zip(z, path)
                names = [n for n in z.namelist() if n.endswith(".h5")]
                for n in names:
                    with h5py.File(io.BytesIO(z.read(n)), "r") as f:
                        check_hdf5(f, path)
        if h5py.is_hdf5(path):
            with h5py.File(path, "r") as f:
                check_hdf5(f, path)
    except MontageError:
        raise
    except Exception:   # unreadable (corrupt, an unknown compression, ...): the loader says why in one line
        return


def check_sharded_weights(path):
    """Check Keras' sharded weights (``NAME.weights.json`` and its ``.weights.h5`` shards) before
    Keras reads them: the index names plain files beside it (regular files, not links), and
    every shard passes :func:`check_keras_file`."""
    import json
    import os
    from pathlib import Path

    path = Path(path)
    if path.stat().st_size > 64 << 20:
        _refuse(path, "is a sharded-weights index of more than 64 MiB")
    try:
        index = json.loads(path.read_text())
        named = index["weight_map"].values()
        names = {n for v in named for n in ([v] if isinstance(v, str) else v)}
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError, UnicodeDecodeError):
        _refuse(path, "is not a Keras sharded-weights index (JSON with a weight_map)")
    base = path.name[:-len(".weights.json")] if path.name.endswith(".weights.json") else path.stem
    names.add(f"{base}_00000.weights.h5")      # Keras opens the first shard by its own name
    for name in sorted(names):
        if not isinstance(name, str) or os.path.basename(name) != name or name in ("", ".", ".."):
            _refuse(path, f"names a shard {name!r} outside its folder")
        shard = path.with_name(name)
        if os.path.islink(shard) or (shard.exists() and not shard.is_file()):
            _refuse(path, f"names a shard {name!r} that is a link or not a regular file")
        if shard.exists():
            check_keras_file(shard)
