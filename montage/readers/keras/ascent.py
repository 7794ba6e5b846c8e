"""Keras models' gradients for feature visualisation, on every Keras 3 backend: the method is
written in ``keras.ops`` (:mod:`montage.fvis`); only taking the gradient is the backend's own
(TensorFlow's tape, ``jax.value_and_grad``, torch's autograd), as Keras' own trainers do."""

from __future__ import annotations

import types

import numpy as np

from ...ascent import CHANNEL_AXIS, Plan
from ...backend import device, keras
from ...errors import MontageError
from ...graph import feature_layers, find_layers, is_map, output_rank, walk
from ...net import fed_size, forward_bytes, settle
from ...preprocess import Feed
from .forward import _raw_note, channels_first, extractor, input_geometry, map_shapes, runnable_layout, runnable_names


def _ops():
    o = keras().ops
    return types.SimpleNamespace(einsum=o.einsum, take=o.take, reshape=o.reshape, sigmoid=o.sigmoid)


def _objective(ext, first, ops, score):
    """``(x, a) -> each item's objective`` from the model's input (n, H, W, C), in backend tensors."""
    def objective(x, a):
        if first:
            x = ops.einsum("nhwc->nchw", x)
        out = ext(x, training=False)
        out = out[0] if isinstance(out, (list, tuple)) else out
        if first and len(out.shape) == 4:
            out = ops.einsum("nchw->nhwc", out)
        return score(ops, out, a)
    return objective


def _value(ext, first, ops, render, score):
    """``(p, a) -> each item's objective``, in backend tensors."""
    objective = _objective(ext, first, ops, score)
    return lambda p, a: objective(render(ops, p, a), a)


def _tensorflow(picture, objective):
    """The step in two graphs: the picture (``picture(p, a)``: its DFT, colour mixing, gather and
    their gradient) compiled by XLA, which fuses them (2-3x on a CPU); the model as a plain graph,
    whose convolutions use every core (XLA's CPU convolutions run on one: 1.4x slower at
    block3_conv1). Both traced once per batch size."""
    import tensorflow as tf

    @tf.function(jit_compile=True)
    def draw(p, a):
        return picture(p, a)

    @tf.function(jit_compile=True)
    def pull(p, a, gx):
        with tf.GradientTape() as tape:
            tape.watch(p)
            x = picture(p, a)
        return tape.gradient(x, p, output_gradients=gx)

    @tf.function
    def push(x, a):
        with tf.GradientTape() as tape:
            tape.watch(x)
            v = objective(x, a)
            total = tf.reduce_sum(v)
        return v, tape.gradient(total, x)

    def fn(p, a):
        p, a = tf.constant(p), {k: tf.constant(x) for k, x in a.items()}
        v, gx = push(draw(p, a), a)
        return v.numpy(), pull(p, a, gx).numpy()
    return fn


def _jax(ext, value_of):
    import jax

    def total(p, a, tv, ntv):
        def run(x, training=False):
            out, _ = ext.stateless_call(tv, ntv, x, training=training)
            return out
        v = value_of(run)(p, a)
        return v.sum(), v

    step = jax.jit(jax.value_and_grad(total, has_aux=True))
    tv = [v.value for v in ext.trainable_variables]
    ntv = [v.value for v in ext.non_trainable_variables]

    def fn(p, a):
        (_, v), g = step(p, a, tv, ntv)
        return np.asarray(v), np.asarray(g)
    return fn


def _torch(value):
    import torch

    def fn(p, a):
        ops = keras().ops
        pt = ops.convert_to_tensor(p).detach().requires_grad_(True)
        v = value(pt, {k: ops.convert_to_tensor(x) for k, x in a.items()})
        g, = torch.autograd.grad(v.sum(), pt)
        return v.detach().cpu().numpy(), g.detach().cpu().numpy()
    return fn


def _gradient(model, node, first):
    ext, backend, ops = extractor(model, [node]), keras().backend.backend(), _ops()

    def gradient(render, score):
        def value_of(run):
            return _value(run, first, ops, render, score)
        if backend == "jax":
            return _jax(ext, value_of)
        if backend == "tensorflow":
            fn = _tensorflow(lambda p, a: render(ops, p, a), _objective(ext, first, ops, score))
        else:
            fn = _torch(value_of(ext)) if backend == "torch" else None
        if fn is None:
            raise MontageError(f"feature visualisation runs on Keras' tensorflow, jax and torch backends, not {backend!r}")

        def named(p, a):
            with runnable_names(model):
                return fn(p, a)
        return named
    return gradient


def plan(loaded, names=None, size=None, batch_size=None, budget=None, note=lambda msg: None, feed=Feed(),
         default_size=None):
    """A :class:`montage.ascent.Plan` for a Keras model."""
    loaded = runnable_layout(loaded)
    model = loaded.model
    h, w, c = fed_size(model.name, input_geometry(model), size, note, default_size)
    if names is None or list(names) == ["all"]:
        chosen = feature_layers(model, names)
    else:
        chosen = find_layers(model, names, what=CHANNEL_AXIS,
                             allow=lambda x: output_rank(x) in (2, 4) and not isinstance(x, keras().layers.InputLayer))
    try:
        with runnable_names(model):
            shapes = map_shapes(model, chosen, h, w, c)
            all4d = map_shapes(model, [n for n in walk(model) if is_map(n.layer)], h, w, c)
    except MontageError:
        raise
    except Exception:
        raise MontageError(f"model {model.name!r} cannot take {w} x {h} (width x height) images: give another --size") from None
    for node, shape in zip(chosen, shapes):
        if len(shape) not in (1, 3) or min(shape) <= 0:
            raise MontageError(f"layer {node.name!r} outputs shape {shape}: it has no channel axis to optimise; "
                               f"choose one of the {CHANNEL_AXIS}")
    # the backward pass keeps every map and its gradient: about twice the forward pass
    per_image = 2 * forward_bytes(shapes, all4d, h, w, c)
    bs, loaded = settle(loaded, c, per_image, budget, batch_size, note, feed, _raw_note(loaded, c))
    first = channels_first(model)
    return Plan(loaded, chosen, (h, w, c), shapes, bs, device(),
                lambda j, render, score: _gradient(model, chosen[j], first)(render, score))
