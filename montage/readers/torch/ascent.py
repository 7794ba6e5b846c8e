"""PyTorch modules' gradients for feature visualisation: the method (:mod:`montage.fvis`) in torch
ops, the layer's output taken by a forward hook, the gradient by autograd, the module in eval mode."""

from __future__ import annotations

import types

from ...ascent import CHANNEL_AXIS, Plan
from ...errors import MontageError
from ...graph import find_layers
from ...net import fed_size, forward_bytes, raw_note, settle
from ...preprocess import Feed
from ..traced import _choose
from .net import _torch


def _ops(torch):
    return types.SimpleNamespace(einsum=torch.einsum, reshape=torch.reshape, sigmoid=torch.sigmoid,
                                 take=lambda x, idx, axis: torch.index_select(x, axis, idx.long()))


class _Taken(Exception):
    """Stops the forward pass once the layer's output is taken: nothing after it counts."""


def _gradient(net, name):
    torch = _torch()
    module, ops = net.module, _ops(torch)
    dev = net._device()
    p0 = next(iter(module.parameters()), None)
    dtype = p0.dtype if p0 is not None and p0.dtype.is_floating_point else torch.float32

    def output(x):
        taken = []

        def hook(mod, args, out):
            if not taken and torch.is_tensor(out):
                taken.append(out)
                raise _Taken
        handle = dict(module.named_modules())[name].register_forward_hook(hook)
        try:
            module(x)
        except _Taken:
            pass
        finally:
            handle.remove()
        if not taken:
            raise MontageError(f"layer {name!r} gave no tensor in the forward pass")
        return taken[0]

    def gradient(render, score):
        def fn(p, a):
            training = module.training
            module.to(dev).eval()
            try:
                pt = torch.tensor(p, device=dev, requires_grad=True)
                at = {k: torch.as_tensor(v, device=dev) for k, v in a.items()}
                x = ops.einsum("nhwc->nchw", render(ops, pt, at)).to(dtype)
                out = output(x).float()
                if out.dim() == 4:
                    out = ops.einsum("nchw->nhwc", out)
                v = score(ops, out, at)
                g, = torch.autograd.grad(v.sum(), pt)
            finally:
                module.train(training)
            return v.detach().cpu().numpy(), g.cpu().numpy()
        return fn
    return gradient


def plan(loaded, names=None, size=None, batch_size=None, budget=None, note=lambda msg: None, feed=Feed(),
         default_size=None):
    """A :class:`montage.ascent.Plan` for a PyTorch module."""
    net = loaded.model
    if getattr(net, "scripted", False):
        raise MontageError(f"model {net.name!r} is TorchScript, whose layers run as compiled code and cannot be "
                           "tapped: load the Python module and pass it to montage.optimize, or save it with "
                           "torch.save(model) (then --unsafe)")
    if not hasattr(net, "module"):
        raise MontageError(f"model {loaded.name!r}: its reader takes no gradients")
    h, w, c = fed_size(net.name, net.input_geometry(), size, note, default_size)
    traced = {k: (s[1], s[2], s[0]) if len(s) == 3 else tuple(s) for k, s in net.trace(h, w, c).items()}
    if names is None or list(names) == ["all"]:
        chosen = _choose(net, names, {k: s for k, s in traced.items() if len(s) == 3})
    else:
        chosen = find_layers(net, names, allow=lambda x: len(traced.get(x.name, ())) in (1, 3), what=CHANNEL_AXIS)
    shapes = [traced[n.name] for n in chosen]
    if any(min(s) <= 0 for s in shapes):
        raise MontageError(f"a layer's maps are empty at {w} x {h} (width x height): give a larger --size")
    per_image = 2 * forward_bytes(shapes, [s for s in traced.values() if len(s) == 3], h, w, c)
    bs, loaded = settle(loaded, c, per_image, budget, batch_size, note, feed,
                        raw_note(loaded.name, c, "no layer of a PyTorch model says what it expects"))
    return Plan(loaded, chosen, (h, w, c), shapes, bs, net.device,
                lambda j, render, score: _gradient(net, chosen[j].name)(render, score))
