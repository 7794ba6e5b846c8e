"""A PyTorch module as montage's layers: its named submodules, flat, by their paths as PyTorch names
them (``layer1.0.conv1``); conv kernels rearranged into Keras' layout (:mod:`montage.readers.oihw`).

Activations come from forward hooks, one forward pass per batch under ``torch.no_grad()``, on CUDA
when it is there; a module called more than once in a pass shows its first call (Keras'
``layer.output`` does the same). TorchScript runs as compiled code, which takes no hooks: its
kernels are read (``layers``, ``filters``), its feature maps are not.
"""

from __future__ import annotations

import sys

import numpy as np

from ...errors import MontageError
from ..oihw import Output, conv_layer, plain_layer
from ..traced import Net
from .fields import field_of, fields

PREFIX = "torchvision:"
CONVS = [f"Conv{r}d" for r in (1, 2, 3)] + [f"ConvTranspose{r}d" for r in (1, 2, 3)]   # in torch.nn
# what every conv of torch.nn keeps, compiled (TorchScript) or not: a compiled module forgets its bases
_CONV_ATTRS = ("transposed", "groups", "in_channels", "out_channels", "kernel_size")
EXTRA = "pip install 'montage[torch]'"


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
    _fields = None

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
            if _is_conv(sub, self.scripted) and "weight" in params:
                bias = params.get("bias")
                config = {k: _plain(getattr(sub, k, None)) for k in ("stride", "padding", "dilation",
                                                                       "output_padding", "padding_mode")}
                layers.append(conv_layer(path, _numpy(params["weight"]), None if bias is None else _numpy(bias),
                                         transpose=bool(sub.transposed), groups=int(sub.groups), output=out,
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

    def field(self, path, size):
        """The receptive field of module ``path`` at input ``size`` (h, w), from the module's
        ``torch.fx`` graph (see :mod:`montage.readers.torch.fields`); every module's at once, kept per size."""
        if self._fields is None or self._fields[0] != tuple(size):
            self._fields = (tuple(size), fields(_torch(), self.module, tuple(size), self.input_geometry()[2]))
        return field_of(self._fields[1], path)

    def runner(self, names):
        """A function from a batch (n, C, H, W) to the named layers' outputs, as numpy."""
        device = self._device()

        def call(x):
            outs = self._forward(x, names, device)
            return [outs[n].float().cpu().numpy() for n in names]
        return call


def _is_conv(module, scripted):
    """True for a conv of torch.nn or a subclass of one (timm's Conv2dSame, EfficientNet's
    Conv2dStaticSamePadding, weight-standardised convs): its ``weight`` is drawn as stored."""
    torch = _torch()
    if not scripted:
        return isinstance(module, tuple(getattr(torch.nn, c) for c in CONVS))
    return all(hasattr(module, a) for a in _CONV_ATTRS) and isinstance(module.transposed, bool)


def _is_script(module):
    torch = _torch()
    return isinstance(module, torch.jit.ScriptModule)


def _numpy(t):
    return t.detach().float().cpu().numpy()


def _plain(v):
    return list(v) if isinstance(v, tuple) else v


# ---- loading ----
