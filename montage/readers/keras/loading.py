"""Keras models: keras.applications by name, ``.keras``/``.h5`` files (safe mode), and model objects."""

import contextlib
import os
import re
import sys
import warnings
import zipfile
from pathlib import Path

from ...backend import keras as _keras
from ...errors import MontageError
from ...graph import all_layers
from ...net import Loaded
from ...paths import shown
from ...untrusted import check_keras_file, check_sharded_weights
from ..applications import APPLICATIONS, BGR, hed_description, hed_weights_file, read_hed_kernels

WEIGHT_SOURCES = ("hed", "imagenet", "random")


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
    if p.name.endswith(".json"):     # Keras' sharded weights: an index and .weights.h5 shards beside it
        check_sharded_weights(p)
    else:
        check_keras_file(p)
    try:
        with warnings.catch_warnings():   # one warning per skipped layer would bury the one line
            warnings.simplefilter("ignore")
            model.load_weights(str(p))
    except Exception as e:
        raise MontageError(f"could not load weights from {shown(p)}: {_reason(e)}") from None


def _load_file(path, unsafe):
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
    keras = _keras()    # after the checks that need none: a wrong name is refused at once
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
        raise MontageError(f"{what} is not built (a Sequential without an input shape, or a subclassed model never "
                           "called), so it has no weights yet: give it keras.Input((H, W, C)) as its first layer, call "
                           "model.build((None, H, W, C)) or call it once on a batch, then save it again")
    return model


def _too_small(cls, h, w, error):
    """keras.applications' refusal of an input size, in its words, as one line."""
    return (f"keras.applications.{cls} cannot take {w} x {h} (width x height) images "
            f"({str(error).split(';')[0].strip()}): give a larger --size")


def builtin(name, weights, seed, size):
    """(model, weights info, input order, preprocessing) of a keras.applications model by name."""
    cls, module, side = APPLICATIONS[name]
    keras = _keras()
    h, w = (side, side) if size is None else (size, size) if isinstance(size, int) else size
    shape = (h, w, 3)
    build = getattr(keras.applications, cls)
    weights = weights or ("hed" if name == "vgg16" else "imagenet")
    if weights == "hed" and name != "vgg16":
        raise MontageError(f"--weights hed is VGG16's (the HED edge detector's conv stack): use --weights "
                           f"random or imagenet for {name}")
    if weights == "imagenet":
        try:
            with contextlib.redirect_stdout(sys.stderr):   # Keras' "Downloading data from ..." and its bar
                model = build(include_top=False, weights="imagenet", input_shape=shape)
        except ValueError as e:    # keras.applications' own floor, before any download
            raise MontageError(_too_small(cls, h, w, e)) from None
        except Exception as e:  # keras raises a bare Exception on a failed download
            alt = "--weights hed (trained, bundled), " if name == "vgg16" else ""
            cause = getattr(e.__context__, "reason", None) or e.__context__ or e
            raise MontageError(
                f"could not download Keras' ImageNet weights for {name} ({str(cause).strip() or type(e).__name__}; "
                f"offline?): use {alt}--weights random, or --weights PATH to a .weights.h5 file") from None
        info = {"source": "imagenet", "detail": f"keras.applications.{cls} ImageNet weights"}
    else:
        keras.utils.set_random_seed(int(seed))
        try:
            model = build(include_top=False, weights=None, input_shape=shape)
        except ValueError as e:    # keras.applications' own floor (VGG16: 32 x 32)
            raise MontageError(_too_small(cls, h, w, e)) from None
        if weights == "random":
            info = {"source": "random", "seed": int(seed), "detail": "Keras default initialisers"}
        elif weights == "hed":
            path = hed_weights_file()
            for layer, (kernel, bias) in read_hed_kernels(path).items():
                model.get_layer(layer).set_weights([kernel, bias])
            info = hed_description(path)[0]
        else:
            _load_weights_file(model, weights)
            info = {"source": "file", "file": str(Path(weights).resolve())}
    order = "bgr" if name in BGR else "rgb"
    return model, info, order, f"keras.applications.{module}"


def load(model, weights=None, seed=0, unsafe=False, size=None) -> Loaded:
    """A Keras model by keras.applications name, from a ``.keras``/``.h5`` file, or as given
    (see :func:`montage.models.load_model` for the arguments)."""
    if not isinstance(model, (str, os.PathLike)):
        _check_built(model, f"model {getattr(model, 'name', '')!r}")
        return Loaded(model, getattr(model, "name", "model"), "object",
                      {"source": "as given"}, "rgb", "none")
    name = str(model)
    if name.lower() in APPLICATIONS and not os.path.exists(name):
        key = name.lower()
        net, info, order, prep = builtin(key, weights, seed, size)
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
