"""PyTorch models by torchvision name, from ``.pt``/``.pth`` files (TorchScript and pickled modules
only with ``--unsafe``: loading either runs code from the file), state dicts (``weights_only``),
and ``nn.Module`` objects."""

from __future__ import annotations

import errno
import os
import pickle
import warnings
import zipfile
from pathlib import Path

from ...errors import MontageError
from ...net import Loaded
from ...paths import shown
from .net import PREFIX, TorchNet, _is_script, _torch, _torchvision


def _torchvision_model(name, weights, seed):

    tv = _torchvision()
    arch = name[len(PREFIX):]
    known = tv.models.list_models(module=tv.models)
    if arch not in known:
        close = [m for m in known if arch.lower().replace("-", "_") in m][:8] or known[:8]
        raise MontageError(f"torchvision has no model {arch!r}: classification models include "
                           f"{', '.join(close)} (see torchvision.models.list_models())")
    weights = weights or "imagenet"
    if weights in ("hed",):
        raise MontageError("--weights hed is Keras VGG16's: use --weights random or imagenet for torchvision models")
    torch = _torch()
    if weights == "imagenet":
        try:
            module = tv.models.get_model(arch, weights="DEFAULT")
        except Exception as e:   # urllib's errors, or a corrupt cached download
            if isinstance(e, OSError) and not isinstance(e, ConnectionError) and e.errno in _CACHE_ERRNOS:
                raise MontageError(f"could not write torch's download cache for {arch}'s ImageNet weights "
                                   f"({e.strerror}: {shown(e.filename or torch.hub.get_dir())}): set TORCH_HOME to a "
                                   "folder you can write, or use --weights random") from None
            raise MontageError(f"could not get torchvision's ImageNet weights for {arch} ({type(e).__name__}; "
                               "offline?): use --weights random, or --weights PATH to a state dict (.pth) saved "
                               "from this architecture") from None
        info = {"source": "imagenet", "detail": f"torchvision.models.{arch} default weights"}
    else:
        torch.manual_seed(int(seed))
        module = tv.models.get_model(arch, weights=None)
        if weights == "random":
            info = {"source": "random", "seed": int(seed), "detail": "torchvision's default initialisers"}
        else:
            _load_state(module, weights)
            info = {"source": "file", "file": str(Path(weights).resolve())}
    # torchvision's ImageNet models take RGB on [0, 1] less the mean, over the std: mode 'torch'
    # named as given (torchvision:vgg16 is not Keras' vgg16, whose defaults differ)
    return Loaded(TorchNet(module.eval(), name), name, f"torchvision.models.{arch}", info, "rgb", "torch", reader="torch")


_CACHE_ERRNOS = (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.ENOSPC, errno.EDQUOT)


def _load_state(module, path):
    """Weights from a state dict file (read with ``weights_only=True``: no code runs)."""
    torch = _torch()
    p = Path(path)
    if not p.is_file():
        raise MontageError(f"weights {shown(path)!r} are neither imagenet, random nor an existing file")
    try:
        with warnings.catch_warnings():   # torch's two-line warnings would bury the one line
            warnings.simplefilter("ignore")
            state = torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as e:
        raise MontageError(f"could not read weights {shown(p)} as a PyTorch state dict ({type(e).__name__}): "
                           "give a file saved with torch.save(model.state_dict(), PATH)") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]      # a checkpoint that wraps it
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            module.load_state_dict(state)
    except Exception as e:
        lines = [x.strip() for x in str(e).splitlines() if x.strip()]
        raise MontageError(f"weights {shown(p)} do not fit this model ({' '.join(lines[1:3])[:240]}): give a "
                           "state dict saved from the same architecture") from None


def _is_torchscript(path):
    """True for a TorchScript archive, by what it holds (``constants.pkl``, ``code/``), whatever its name."""
    try:
        with zipfile.ZipFile(path) as z:
            names = [m.split("/", 1)[-1] for m in z.namelist()]     # below the archive's one folder
        return any(n == "constants.pkl" or n.startswith("code/") for n in names)
    except (zipfile.BadZipFile, OSError):
        return False


def _load_file(path, unsafe):
    """(module, how) from a ``.pt``/``.pth`` file: TorchScript, or a pickled module with ``unsafe``."""
    torch = _torch()
    p = Path(path)
    if not p.is_file():
        raise MontageError(f"model {shown(path)!r} is not an existing file (a TorchScript archive or pickled "
                           "module, .pt/.pth)")
    if _is_torchscript(p):
        if not unsafe:   # TorchScript is not a pickle, but its serialized code runs at load (__setstate__)
            raise MontageError(f"model {shown(p)} is a TorchScript archive: loading it runs code from the archive, "
                               "which can read and write files, so it was refused; pass --unsafe only if you trust "
                               "where it came from, or export it to ONNX (read without running code)")
        try:
            with warnings.catch_warnings():   # TorchScript is deprecated, yet archives are still about
                warnings.simplefilter("ignore")
                return torch.jit.load(str(p), map_location="cpu"), "TorchScript"
        except Exception as e:
            raise MontageError(f"could not read TorchScript archive {shown(p)} ({type(e).__name__}: "
                               f"{str(e).splitlines()[0][:120] if str(e) else ''})") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            obj = torch.load(str(p), map_location="cpu", weights_only=True)   # runs no code from the file
    except Exception as e:
        if not isinstance(e, pickle.UnpicklingError):
            raise MontageError(f"could not read {shown(p)} as a PyTorch file (corrupt, or not saved with "
                               f"torch.save?): {type(e).__name__}") from None
        if not unsafe:
            raise MontageError(f"model {shown(p)} is a pickled module: loading it runs code from the file, so it "
                               "was refused; pass --unsafe only if you trust where it came from, or export it to ONNX (read without "
                               "running code)") from None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                obj = torch.load(str(p), map_location="cpu", weights_only=False)
        except Exception as e:
            raise MontageError(f"could not load the pickled module {shown(p)} ({type(e).__name__}: "
                               f"{str(e).splitlines()[0][:120] if str(e) else ''}): the code that defines it must be "
                               "importable") from None
    if isinstance(obj, dict):
        raise MontageError(f"{shown(p)} holds a state dict (weights without the architecture): pass it as --weights "
                           "to --model torchvision:NAME, or build the module in Python and pass it to montage's API")
    if not isinstance(obj, torch.nn.Module):
        raise MontageError(f"{shown(p)} holds a {type(obj).__name__}, not a PyTorch module")
    return obj, "pickled module"


def load(model, weights=None, seed=0, unsafe=False, size=None):
    """A :class:`montage.models.Loaded` for a torchvision name, a ``.pt``/``.pth`` file or an ``nn.Module``."""

    if not isinstance(model, (str, os.PathLike)):
        if weights is not None:
            raise MontageError("a module handed in brings its own weights: leave out weights")
        name = type(model).__name__
        return Loaded(TorchNet(model, name, own=False), name, "object", {"source": "as given"}, "rgb", "none", reader="torch")
    name = str(model)
    if name.lower().startswith(PREFIX):
        return _torchvision_model(PREFIX + name[len(PREFIX):], weights, seed)
    if weights in ("hed", "imagenet"):
        raise MontageError(f"--weights {weights} is for built-in models: a model file brings its own weights "
                           "(or give --weights random / a state dict file)")
    module, how = _load_file(name, unsafe)
    p = Path(name).resolve()
    info = {"source": "model file", "file": str(p), "detail": how}
    if weights == "random":
        if _is_script(module):
            raise MontageError("--weights random cannot re-initialise a TorchScript archive: save the Python "
                               "module, or use its own weights")
        torch = _torch()
        torch.manual_seed(int(seed))
        for sub in module.modules():
            if hasattr(sub, "reset_parameters"):
                sub.reset_parameters()
        info = {"source": "random", "seed": int(seed), "detail": "each module's reset_parameters()"}
    elif weights:
        _load_state(module, weights)
        info = {"source": "file", "file": str(Path(weights).resolve())}
    return Loaded(TorchNet(module.eval(), p.stem), p.stem, str(p), info, "rgb", "none", reader="torch")
