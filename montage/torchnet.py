"""PyTorch models: torchvision's by name, TorchScript and pickled-module files, ``nn.Module`` objects.

Layers are the module's named submodules, flat, named by their paths as PyTorch names them
(``layer1.0.conv1``); conv kernels are rearranged into Keras' layout (:mod:`montage.oihw`).
Activations come from forward hooks, one forward pass per batch under ``torch.no_grad()``,
on CUDA when it is there; a module called more than once in a pass shows its first call
(Keras' ``layer.output`` does the same). TorchScript runs as compiled code, which takes no
hooks: its kernels are read (``layers``, ``filters``), its feature maps are not.

torch is imported only for these models: ``montage --help`` and Keras runs never load it.
"""

from __future__ import annotations

import errno
import os
import pickle
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np

from .errors import MontageError
from .foreign import Net
from .oihw import Output, conv_layer, plain_layer
from .paths import shown

PREFIX = "torchvision:"
SUFFIXES = (".pt", ".pth")
CONVS = {f"Conv{r}d": False for r in (1, 2, 3)} | {f"ConvTranspose{r}d": True for r in (1, 2, 3)}
EXTRA = "pip install 'montage[torch]'"


def wanted(model):
    """True for what this module loads (checked without importing torch)."""
    if isinstance(model, (str, os.PathLike)):
        name = str(model)
        return name.lower().startswith(PREFIX) or Path(name).suffix.lower() in SUFFIXES
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(model, torch.nn.Module)


def _torch():
    if "tensorflow" in sys.modules and "triton" not in sys.modules:
        # Importing triton (which torchvision reaches through torch._dynamo) after TensorFlow crashes the
        # process (two LLVMs); montage compiles nothing, so torch is told triton is not there.
        sys.modules["triton"] = None
    try:
        import torch
    except ImportError:
        raise MontageError(f"PyTorch models need torch and torchvision: {EXTRA}") from None
    return torch


def _torchvision():
    _torch()
    try:
        import torchvision
    except (ImportError, RuntimeError) as e:   # RuntimeError: a torchvision built for another torch
        raise MontageError(f"torchvision:NAME models need a torchvision that fits the installed torch "
                           f"({type(e).__name__}: {str(e).splitlines()[0][:100]}): {EXTRA}") from None
    return torchvision


class TorchNet(Net):
    """An ``nn.Module`` (or TorchScript module) as montage's flat list of layers."""

    POOLS = ("MaxPool2d", "AvgPool2d")

    def __init__(self, module, name, own=True):
        self.module, self.scripted = module, _is_script(module)
        self.own = own       # ours (built or loaded here): it may move to the GPU
        layers = []
        for path, sub in module.named_modules():
            if not path:
                continue
            cls = getattr(sub, "original_name", None) if self.scripted else type(sub).__name__
            cls = cls or type(sub).__name__
            params = dict(sub.named_parameters(recurse=False))
            out = Output(self, path)
            if cls in CONVS and "weight" in params:
                bias = params.get("bias")
                config = {k: _plain(getattr(sub, k, None)) for k in ("stride", "padding", "dilation",
                                                                       "output_padding", "padding_mode")}
                layers.append(conv_layer(path, _numpy(params["weight"]), None if bias is None else _numpy(bias),
                                         transpose=CONVS[cls], groups=int(sub.groups), output=out,
                                         config={"torch_class": cls, **config}))
            else:
                arrays = [_numpy(p) for p in params.values()] + \
                    [_numpy(b) for _, b in sub.named_buffers(recurse=False) if b is not None and b.dtype.is_floating_point]
                layers.append(plain_layer(path, cls, arrays, out))
        super().__init__(name, type(module).__name__, layers)

    @property
    def device(self):
        torch = _torch()
        dev = self._device()
        return f"torch on {'cuda:' + torch.cuda.get_device_name(dev) if dev.type == 'cuda' else 'cpu'}"

    def _device(self):
        torch = _torch()
        if not self.own:     # a module handed in stays where its owner put it
            p = next(iter(self.module.parameters()), None)
            return p.device if p is not None else torch.device("cpu")
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")

    def input_geometry(self):
        """(None, None, channels): torch modules take any size; channels from the first conv."""
        first = next((x for x in self.layers if "in_channels" in x.config), None)
        if first is None:
            raise MontageError(f"model {self.name!r} has no conv layers (Conv1d/2d/3d, ConvTranspose)")
        return None, None, int(first.config["in_channels"])

    def _forward(self, x, names, device):
        """Run once on ``x`` (numpy NCHW); {name: first output tensor} of the named modules."""
        torch = _torch()
        if self.scripted:
            raise MontageError(f"model {self.name!r} is TorchScript, whose layers run as compiled code and cannot "
                               "be tapped for feature maps: load the Python module and pass it to montage's API, "
                               "save it with torch.save(model) (then --unsafe), or export it to ONNX")
        mods = dict(self.module.named_modules())
        taken = {}

        def keep(name):
            def hook(module, args, output):
                if name not in taken and torch.is_tensor(output):
                    taken[name] = output
            return hook

        training = self.module.training
        hooks = [mods[n].register_forward_hook(keep(n)) for n in names]
        try:
            self.module.to(device).eval()
            p = next(iter(self.module.parameters()), None)
            dtype = p.dtype if p is not None and p.dtype.is_floating_point else torch.float32
            with torch.no_grad():
                self.module(torch.from_numpy(x).to(device=device, dtype=dtype))
        finally:
            for h in hooks:
                h.remove()
            self.module.train(training)
        return taken

    def trace(self, h, w, c, quick=False):
        """{layer: output shape without the batch} from one pass over a blank (1, c, h, w) input
        (on the CPU for ``quick``: only the shapes are wanted)."""
        torch = _torch()
        names = [x.name for x in self.layers]
        device = torch.device("cpu") if quick and self.own else self._device()
        try:
            outs = self._forward(np.zeros((1, c, h, w), np.float32), names, device)
        except MontageError:
            raise
        except Exception as e:
            raise MontageError(f"model {self.name!r} cannot take a {w} x {h} image of {c} channels "
                               f"({type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''}): give "
                               "another --size, or a model whose forward takes one image tensor") from None
        return {k: tuple(v.shape[1:]) for k, v in outs.items()}

    def runner(self, names):
        """A function from a batch (n, C, H, W) to the named layers' outputs, as numpy."""
        device = self._device()

        def call(x):
            outs = self._forward(x, names, device)
            return [outs[n].float().cpu().numpy() for n in names]
        return call


def _is_script(module):
    torch = _torch()
    return isinstance(module, torch.jit.ScriptModule)


def _numpy(t):
    return t.detach().float().cpu().numpy()


def _plain(v):
    return list(v) if isinstance(v, tuple) else v


# ---- loading ----

def _torchvision_model(name, weights, seed):
    from .models import Loaded

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
    return Loaded(TorchNet(module.eval(), name), name, f"torchvision.models.{arch}", info, "rgb", "torch")


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
    try:
        with zipfile.ZipFile(path) as z:
            return any(n.split("/", 1)[-1].startswith("code/") for n in z.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def _load_file(path, unsafe):
    """(module, how) from a ``.pt``/``.pth`` file: TorchScript, or a pickled module with ``unsafe``."""
    torch = _torch()
    p = Path(path)
    if not p.is_file():
        raise MontageError(f"model {shown(path)!r} is not an existing file (a .pt/.pth TorchScript archive or "
                           "pickled module)")
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


def load(model, weights=None, seed=0, unsafe=False):
    """A :class:`montage.models.Loaded` for a torchvision name, a ``.pt``/``.pth`` file or an ``nn.Module``."""
    from .models import Loaded

    if not isinstance(model, (str, os.PathLike)):
        if weights is not None:
            raise MontageError("a module handed in brings its own weights: leave out weights")
        name = type(model).__name__
        return Loaded(TorchNet(model, name, own=False), name, "object", {"source": "as given"}, "rgb", "none")
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
    return Loaded(TorchNet(module.eval(), p.stem), p.stem, str(p), info, "rgb", "none")
