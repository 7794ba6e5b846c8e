"""Load a Keras model and its weights: built in, from a file, or as given."""

import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .paths import shown
from .backend import keras as _keras
from .errors import MontageError
from .graph import all_layers
from .applications import APPLICATIONS, builtin
from .untrusted import check_keras_file

WEIGHT_SOURCES = ("hed", "imagenet", "random")


@dataclass
class Loaded:
    """A model with where it and its weights came from."""

    model: object
    name: str
    source: str
    weights: dict
    input_order: str = "rgb"          # channel order of the first layer's input
    preprocess: object = "none"       # see montage.images.preprocess

    def describe(self):
        from .images import describe_preprocess

        return {"name": self.name, "source": self.source, "input_order": self.input_order,
                "preprocess": describe_preprocess(self.preprocess)}


def _reason(error):
    """The part of a Keras loading error that names the problem, on one line."""
    text = str(error)
    m = re.search(r"Could not locate (?:class|function) '([^']+)'", text)
    if m:
        return (f"it uses {m.group(1)!r}, which is not a Keras layer (a custom class): load the model in "
                "Python after importing the code that defines it, and pass the model object to montage")
    m = re.search(r"variable\.shape=(\([^)]*\)), Received: value\.shape=(\([^)]*\))", text)
    if m:
        var = re.search(r"Target variable: <Variable path=([^,>]+)", text)
        where = f" {var.group(1)}" if var else ""
        return (f"they do not fit this model (the file holds {m.group(2)} where{where} takes {m.group(1)}): "
                "give weights saved from the same architecture")
    lines = [x.strip() for x in text.splitlines() if x.strip()]
    return " ".join(lines[:2])[:300] if lines else type(error).__name__


def _load_weights_file(model, path):
    p = Path(path)
    if not p.is_file():
        choices = ", ".join(WEIGHT_SOURCES)
        raise MontageError(f"weights {shown(path)!r} are neither {choices} nor an existing file")
    check_keras_file(p)
    try:
        with warnings.catch_warnings():   # one warning per skipped layer would bury the one line
            warnings.simplefilter("ignore")
            model.load_weights(str(p))
    except Exception as e:
        raise MontageError(f"could not load weights from {shown(p)}: {_reason(e)}") from None


def _load_file(path, unsafe):
    keras = _keras()
    p = Path(path)
    if not p.exists():
        raise MontageError(f"model {shown(path)!r} is neither a built-in model (vgg16, resnet50, mobilenetv2, "
                           "... any keras.applications name; torchvision:NAME) nor an existing .keras/.h5, .pt/.pth "
                           "or .onnx file")
    if p.suffix not in (".keras", ".h5", ".hdf5"):
        raise MontageError(f"model file {shown(p)} should be a .keras or .h5 Keras model, a .pt/.pth PyTorch "
                           "model or an .onnx model")
    if p.is_dir():
        raise MontageError(f"could not read model {shown(p)}: it is a folder, not a model file; give the "
                           ".keras/.h5 file")
    import zipfile

    if p.suffix == ".keras" and not zipfile.is_zipfile(p):   # Keras would say "File not found"
        raise MontageError(f"could not read model {shown(p)}: it is not a .keras archive (a zip file) but empty, "
                           "truncated or something else; save the model again with model.save('name.keras')")
    check_keras_file(p)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return keras.saving.load_model(str(p), compile=False, safe_mode=not unsafe)
    except Exception as e:
        text = str(e)
        if "safe_mode" in text or "Lambda" in text:
            raise MontageError(
                f"model {shown(p)} contains a Lambda layer (arbitrary Python code) and was refused; "
                "pass --unsafe only if you trust where the file came from") from None
        raise MontageError(f"could not read model {shown(p)} (corrupt or not a Keras model?): "
                           f"{_reason(e)}") from None


def _check_built(model, what):
    if not getattr(model, "built", True) or any(not getattr(x, "built", True) for x in all_layers(model)):
        raise MontageError(f"{what} is not built (a Sequential without an input shape), so it has no "
                           "weights yet: give it keras.Input((H, W, C)) as its first layer or call "
                           "model.build((None, H, W, C)), then save it again")
    return model


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
        Allow Lambda layers (arbitrary code) in a Keras file, and pickled PyTorch modules.
    size : int or None
        Input side for a built-in model (None: the model's own, e.g. 224).

    Returns
    -------
    Loaded
    """
    if isinstance(model, Loaded):
        return model
    _check_seed(seed)
    foreign = _foreign(model, weights, seed, unsafe)
    if foreign is not None:
        return foreign
    if not isinstance(model, (str, os.PathLike)):
        _check_built(model, f"model {getattr(model, 'name', '')!r}")
        return Loaded(model, getattr(model, "name", "model"), "object",
                      {"source": "as given"}, "rgb", "none")
    name = str(model)
    if name.lower() in APPLICATIONS and not os.path.exists(name):
        key = name.lower()
        net, info, order, prep = builtin(key, weights, seed, size, _load_weights_file)
        return Loaded(net, key, f"keras.applications.{APPLICATIONS[key][0]} (include_top=False)", info,
                      order, prep)
    if weights in ("hed", "imagenet"):
        raise MontageError(f"--weights {weights} is for built-in models (--model vgg16, resnet50, ...); a "
                           "model file brings its own weights (or give --weights random / a weights file)")
    net = _check_built(_load_file(name, unsafe), f"model {shown(name)}")
    info = {"source": "model file", "file": str(Path(name).resolve())}
    if weights == "random":
        keras = _keras()
        keras.utils.set_random_seed(int(seed))
        net = keras.models.clone_model(net)   # fresh initialisers, same architecture
        info = {"source": "random", "seed": int(seed)}
    elif weights:
        _load_weights_file(net, weights)
        info = {"source": "file", "file": str(Path(weights).resolve())}
    return Loaded(net, Path(name).stem, str(Path(name).resolve()), info, "rgb", "none")


def load_kernels(model="vgg16", weights=None, seed=0, unsafe=False) -> Loaded:
    """:func:`load_model` for what needs only the kernels (``filters``, ``layers``).

    VGG16 with HED's weights and ``.keras`` files are read straight from their files
    (:mod:`montage.static`: no TensorFlow, well under a second); anything else, or anything
    not understood with certainty, is loaded with Keras. Both ways give the same kernels.
    """
    from . import static

    if isinstance(model, Loaded):
        return model
    _check_seed(seed)
    return _foreign(model, weights, seed, unsafe) or static.load(model, weights) or \
        load_model(model, weights, seed, unsafe)


def _foreign(model, weights, seed, unsafe):
    """A PyTorch or ONNX model (:mod:`montage.torchnet`, :mod:`montage.onnxnet`), or None for
    anything else; neither torch nor onnx is imported for other models."""
    from . import onnxnet, torchnet

    if onnxnet.wanted(model):
        return onnxnet.load(model, weights)
    if torchnet.wanted(model):
        return torchnet.load(model, weights, seed, unsafe)
    return None
