"""Conv weights as PyTorch and ONNX store them (``(out, in / groups, *kernel)``, "OIHW") as
montage's layers, in Keras' layout.

The kernels are rearranged once, here, so that everything downstream (:mod:`montage.graph`,
the filter grids, the manifest) sees what it sees for a Keras model:

==========================  ===============================  ==================================
PyTorch / ONNX              montage (Keras class, layout)    when
==========================  ===============================  ==================================
Conv2d / Conv (out, in/g,   Conv2D ``(kh, kw, in/g, out)``   any ``groups`` (but see below)
kh, kw)
the same                    DepthwiseConv2D ``(kh, kw, in,   ``groups == in > 1``: output
                            multiplier)``                    ``c * multiplier + m`` reads ``c``
ConvTranspose2d (in,        Conv2DTranspose ``(kh, kw, out,  rows = output channels; with
out/g, kh, kw)              in/g)``                          ``groups`` a row sees its group
Conv1d, Conv3d and their    Conv1D/Conv3D, ...               the same rules, one axis fewer
transposes                                                   or more
==========================  ===============================  ==================================
"""

from __future__ import annotations

import numpy as np

from ..net import Layer


def _spatial_last_to_first(w):
    """(a, b, *k) -> (*k, b, a): PyTorch's (out, in) pair becomes Keras' trailing (in, out)."""
    rank = w.ndim - 2
    return np.ascontiguousarray(np.transpose(w, (*range(2, 2 + rank), 1, 0)))


def conv_layer(name, weight, bias=None, *, transpose=False, groups=1, config=None, output=None):
    """A :class:`montage.static.Layer` for a PyTorch/ONNX conv.

    Parameters
    ----------
    name : str
    weight : ndarray
        ``(out, in / groups, *k)`` for a conv, ``(in, out / groups, *k)`` for a transpose.
    bias : ndarray or None
    transpose : bool
    groups : int
    config : dict, optional
        Extra attributes (strides, padding, ...) kept with the layer for the record.
    output : object with ``.shape``, optional
        The layer's output shape, batch first, channels last (see :mod:`montage.static`).
    """
    w = np.asarray(weight)
    rank, groups = w.ndim - 2, int(groups)
    if rank not in (1, 2, 3) or groups < 1 or w.shape[0] % (groups if transpose else 1):
        raise ValueError(f"{name}: a weight of shape {w.shape} with {groups} groups is not a conv kernel")
    k = tuple(w.shape[2:])
    config = {"name": name, "kernel_size": list(k), **(config or {})}
    if transpose:
        cin, cout_g = w.shape[:2]
        cin_g, cout = cin // groups, cout_g * groups
        # output o = (group g, channel oc) reads inputs g * cin_g + j: as a (out, in/g, *k) block
        block = w.reshape(groups, cin_g, cout_g, *k).swapaxes(1, 2).reshape(cout, cin_g, *k)
        kernel = np.ascontiguousarray(np.moveaxis(block, (0, 1), (-2, -1)))   # (*k, out, in/g)
        cls = f"Conv{rank}DTranspose"
        config.update(filters=cout, groups=groups, in_channels=cin)
    else:
        cout, cin_g = w.shape[:2]
        cin = cin_g * groups
        if groups > 1 and groups == cin and cout % cin == 0 and rank < 3:
            mult = cout // cin
            kernel = np.ascontiguousarray(np.moveaxis(w.reshape(cin, mult, *k), (0, 1), (-2, -1)))
            cls = f"DepthwiseConv{rank}D"
            config.update(depth_multiplier=mult, in_channels=cin)
        else:
            kernel = _spatial_last_to_first(w)
            cls = f"Conv{rank}D"
            config.update(filters=cout, groups=groups, in_channels=cin)
    variables = [kernel] + ([np.asarray(bias)] if bias is not None else [])
    config["use_bias"] = bias is not None
    layer = Layer(name, cls, config, variables)
    layer.output = output
    return layer


def plain_layer(name, class_name, variables=(), output=None):
    """A layer without conv kernels (pooling, normalisation, a block of layers, ...)."""
    layer = Layer(name, class_name, {"name": name}, [np.asarray(v) for v in variables])
    layer.output = output
    return layer


class Output:
    """A layer's output shape, worked out only when asked (``layers`` shows it; ``filters`` does not
    need it, and finding it runs the model once). ``shape`` is None where it is unknown."""

    def __init__(self, net, name):
        self.net, self.name = net, name

    @property
    def shape(self):
        shapes = self.net.default_shapes()
        return shapes.get(self.name)


def keras_shape(shape):
    """A (C, H, W) / (C, L) output without its batch as Keras reports it: (None, H, W, C)."""
    shape = tuple(int(d) for d in shape)
    if len(shape) < 2:
        return (None, *shape)
    return (None, *shape[1:], shape[0])
