"""The registry: which reader (:mod:`montage.readers`) loads a model spec and runs its forward pass.

Readers are named here by module and imported on first use (as imageio's plugin table names
plugin modules), so ``montage --help``, and the instant path for Keras files, import no framework.
A new framework is one reader module, one line in :data:`READERS`, and one in :data:`SUFFIXES`,
:data:`PREFIXES` or :data:`OBJECTS` for the specs it takes.
"""

from __future__ import annotations

import importlib
import os
import sys
import zipfile
from pathlib import Path

import numpy as np

from .errors import MontageError
from .net import Forward, Loaded
from .preprocess import Feed

# reader key -> module: each has load(spec, weights, seed, unsafe, size) -> Loaded and
# prepare(loaded, names, size, batch_size, budget, note, feed) -> Forward
READERS = {
    "keras": "montage.readers.keras",
    "keras_file": "montage.readers.keras_file",     # load(spec, weights) only: kernels, or None
    "torch": "montage.readers.torch",
    "onnx": "montage.readers.onnx_model",
}
# which reader a spec goes to: by file suffix, by name prefix, by what an archive holds (see _content),
# or for objects by (module, class), checked only when that module is already imported; anything else
# is Keras'
SUFFIXES = {".onnx": "onnx", ".pt": "torch", ".pth": "torch"}
KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")     # a .keras file is a zip too: never looked into here
TORCH_MEMBERS = ("constants.pkl", "data.pkl")   # in the archive's one folder
PREFIXES = {"torchvision:": "torch"}
OBJECTS = {"keras": ("keras", ("Model",)),    # first: under Keras' torch backend a keras.Model is an nn.Module too
           "torch": ("torch", ("nn", "Module")), "onnx": ("onnx", ("ModelProto",))}


def reader(key):
    """The reader module for ``key`` (imported now)."""
    return importlib.import_module(READERS[key])


def _content(path):
    """The reader of a file whose suffix names none: 'torch' for an archive torch wrote (TorchScript's
    ``constants.pkl`` and ``code/``, ``torch.save``'s ``data.pkl``: ``.jit``, ``.torchscript``, ``.bin``), else
    None. Reads the zip's list of names only."""
    try:
        if not os.path.isfile(path) or not zipfile.is_zipfile(path):
            return None
        with zipfile.ZipFile(path) as z:
            names = [n.split("/", 1)[-1] for n in z.namelist()]
    except (OSError, zipfile.BadZipFile, ValueError):
        return None
    return "torch" if any(n in TORCH_MEMBERS or n.startswith("code/") for n in names) else None


def reader_of(model):
    """The key of the reader that loads ``model`` (a spec or an object), importing no framework."""
    if isinstance(model, (str, os.PathLike)):
        name = str(model)
        suffix = Path(name).suffix.lower()
        key = SUFFIXES.get(suffix) or (None if suffix in KERAS_SUFFIXES else _content(name))
        return key or next((k for p, k in PREFIXES.items() if name.lower().startswith(p)), "keras")
    for key, (module, path) in OBJECTS.items():
        cls = sys.modules.get(module)
        for part in path:
            cls = getattr(cls, part, None)
        if isinstance(cls, type) and isinstance(model, cls):
            return key
    return "keras"


def _check_seed(seed):
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise MontageError(f"--seed {seed} is out of range: give a whole number from 0 to {2**32 - 1}")


def load_model(model="vgg16", weights=None, seed=0, unsafe=False, size=None) -> Loaded:
    """Load a model by name or file.

    Parameters
    ----------
    model : str, keras.Model, torch.nn.Module, onnx.ModelProto or Loaded
        A keras.applications name ('vgg16', 'resnet50', 'mobilenetv2', ...; any case), a
        path to a ``.keras``/``.h5`` file, ``'torchvision:NAME'``, a ``.pt``/``.pth`` (PyTorch)
        or ``.onnx`` file; a model object (taken to want RGB input) or a ``Loaded`` is used as is.
    weights : str, optional
        Built-in models: 'imagenet' (downloads; the default except for vgg16), 'random', a
        weights file (torchvision: a state dict), and for vgg16 'hed' (its default: trained,
        offline). A model file: None (its own weights), 'random' or a weights file (not ONNX).
    seed : int
        Seed for 'random' weights.
    unsafe : bool
        Allow files that run code when read: Lambda layers in a Keras file, pickled PyTorch
        modules, TorchScript archives.
    size : int or None
        Input side for a built-in model (None: the model's own, e.g. 224).

    Returns
    -------
    Loaded
    """
    if isinstance(model, Loaded):
        return model
    _check_seed(seed)
    return reader(reader_of(model)).load(model, weights, seed, unsafe, size)


def load_kernels(model="vgg16", weights=None, seed=0, unsafe=False) -> Loaded:
    """:func:`load_model` for what needs only the kernels (``filters``, ``layers``).

    VGG16 with HED's weights and ``.keras`` files are read straight from their files
    (:mod:`montage.readers.keras_file`: no TensorFlow, well under a second); anything else, or
    anything not understood with certainty, is loaded by its reader. Both ways give the same kernels.
    """
    if isinstance(model, Loaded):
        return model
    _check_seed(seed)
    key = reader_of(model)
    instant = reader("keras_file").load(model, weights) if key == "keras" else None
    return instant or reader(key).load(model, weights, seed, unsafe, None)


def prepare(loaded, names=None, size=None, batch_size=None, budget=None, note=lambda msg: None,
            feed=Feed()) -> Forward:
    """Check a forward pass before any image is read: input size, map shapes, memory.

    Parameters
    ----------
    loaded : Loaded
    names : list of str, optional
        Layer names ('all' adds pooling layers); default every conv layer.
    size : int or (int, int), optional
        Input side, or (height, width), for a model that takes any size (default 224); a
        model with a fixed size keeps it (``note`` says so when ``size`` differs).
    batch_size : int, optional
        Images per batch; default (or when it would not fit) sized to ``budget``.
    budget : int, optional
        Bytes the forward pass may use (default half the available memory).
    note : callable
        Takes one-line messages for the user.
    feed : montage.preprocess.Feed
        Preprocessing, channel order and fitting asked for (see :func:`montage.net.choose_preprocess`).

    Returns
    -------
    Forward
        Its ``loaded`` records the preprocessing chosen.
    """
    return reader(loaded.reader).prepare(loaded, names, size, batch_size, budget, note, feed)


def plan_ascent(loaded, names=None, size=None, batch_size=None, budget=None, note=lambda msg: None,
                feed=Feed(), default_size=None):
    """:func:`prepare`'s twin for feature visualisation: a :class:`montage.ascent.Plan` (layers
    with a channel axis, Dense included; the batch sized for the backward pass too); one line
    for a model whose framework gives no gradients here."""
    module = reader(loaded.reader)
    if not hasattr(module, "plan"):
        raise MontageError(f"model {loaded.name!r}: {getattr(module, 'NO_GRADIENT', 'its reader takes no gradients')}")
    return module.plan(loaded, names, size, batch_size, budget, note, feed, default_size)
