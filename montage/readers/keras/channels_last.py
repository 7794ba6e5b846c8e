"""Run a channels-first Keras model as its channels-last twin.

TensorFlow's CPU kernels run NCHW convolutions and pooling only where oneDNN is on (not on
every CPU: AMD EPYC, for one, has it off). A channels-first model is therefore rebuilt with
every image tensor channels-last: the same layers, the same weights (Keras stores conv
kernels as (kh, kw, in, out) in both layouts), ``data_format`` flipped, channel axes moved to
the end. Its maps are the original's, transposed. Only layers whose meaning is known to survive
the move are rebuilt; any other layer on an image tensor makes :func:`to_channels_last` refuse.
"""

import copy
import functools
import weakref

from ...backend import keras
from ...errors import MontageError
from ...graph import all_layers

# Layers that treat each value, or each pixel's channels as a whole, alike in either layout.
_ELEMENTWISE = {
    "InputLayer", "Activation", "ReLU", "LeakyReLU", "ELU", "Add", "Subtract", "Multiply", "Average",
    "Maximum", "Minimum", "Dropout", "GaussianNoise", "GaussianDropout", "AlphaDropout", "Identity",
    "ActivityRegularization", "Rescaling",
}
# Activations of one value at a time (softmax, log_softmax, glu, ... work along the last axis,
# which is another axis in the twin)
_POINTWISE = {
    "linear", "relu", "relu6", "sigmoid", "hard_sigmoid", "tanh", "elu", "selu", "gelu", "swish", "silu",
    "hard_swish", "hard_silu", "softplus", "softsign", "exponential", "leaky_relu", "mish", "celu",
    "log_sigmoid", "tanh_shrink", "sparse_plus", "squareplus", "soft_shrink", "hard_shrink", "hard_tanh",
    "threshold",
}
# Layers that name the channel axis: 1 (the channels) becomes the last axis.
_AXIS = {"BatchNormalization", "Concatenate", "LayerNormalization", "GroupNormalization", "Softmax"}
_MODELS = {"Functional", "Sequential"}
_CONVERTED = weakref.WeakKeyDictionary()


class Unconvertible(Exception):
    """A layer whose channels-last equivalent is not known."""


def _move(shape):
    """(n, C, *spatial) -> (n, *spatial, C) for an image tensor's shape; others unchanged."""
    if isinstance(shape, (list, tuple)) and len(shape) >= 3 and all(
            d is None or isinstance(d, int) for d in shape):
        return [shape[0], *shape[2:], shape[1]]
    return shape


def _shapes(value):
    """Every image shape in a build config moved (a layer built on several inputs has a list)."""
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], (list, tuple)):
        return [_move(s) for s in value]
    return _move(value)


def _rank(entry):
    shape = (entry.get("build_config") or {}).get("input_shape")
    if isinstance(shape, (list, tuple)) and shape and isinstance(shape[0], (list, tuple)):
        shape = shape[0]
    return len(shape) if isinstance(shape, (list, tuple)) else None


def _layer(entry):
    """Rewrite one serialized layer (in place) for channels-last image tensors."""
    cls, cfg = entry["class_name"], entry["config"]
    if cls in _MODELS:
        _model(entry)
        return
    rank = _rank(entry)
    name = cfg.get("name", cls)
    if cls == "InputLayer":
        cfg["batch_shape"] = _move(cfg.get("batch_shape"))
    elif cls == "Flatten":   # the flattened order must not change: what follows reads it
        if cfg.get("data_format") == "channels_first":
            cfg["data_format"] = "channels_last"     # (n, C, ...) moved to channels last, as the twin has it
        elif rank == 3:
            cfg["data_format"] = "channels_first"    # (n, L, C) back to (n, C, L): the original order
        else:   # (C, H, W) order from an (n, H, W, C) tensor: no Flatten does that
            raise Unconvertible(f"{name!r} (Flatten) flattens channels first")
    elif "data_format" in cfg:
        if cfg["data_format"] != "channels_first":
            raise Unconvertible(f"{name!r} ({cls}) is channels_last inside a channels_first model")
        cfg["data_format"] = "channels_last"
    elif cls == "Rescaling" and not all(isinstance(cfg.get(k, 0), (int, float)) for k in ("scale", "offset")):
        raise Unconvertible(f"{name!r} (Rescaling) scales each channel apart")
    elif cls in _AXIS and rank is not None and rank >= 3:
        axis = cfg.get("axis")
        axes = axis if isinstance(axis, (list, tuple)) else [axis]
        if [a % rank if isinstance(a, int) else a for a in axes] != [1]:
            raise Unconvertible(f"{name!r} ({cls}) works along axis {axis}, not the channels")
        cfg["axis"] = [-1] if isinstance(axis, (list, tuple)) else -1
    elif cls not in _ELEMENTWISE and cls not in _AXIS and (rank is None or rank >= 3):
        raise Unconvertible(f"{name!r} ({cls}) on image tensors")
    act = cfg.get("activation")
    if act is not None and (rank is None or rank >= 3) and not (isinstance(act, str) and act in _POINTWISE):
        raise Unconvertible(f"{name!r} ({cls}) has activation {act!r}, which may work along an axis")
    if isinstance(entry.get("build_config"), dict) and "input_shape" in entry["build_config"]:
        entry["build_config"]["input_shape"] = _shapes(entry["build_config"]["input_shape"])
    for node in entry.get("inbound_nodes") or []:
        _tensors(node)


def _tensors(obj):
    """Move the shapes recorded with the symbolic tensors of a layer's inbound nodes."""
    if isinstance(obj, dict):
        if obj.get("class_name") == "__keras_tensor__":
            obj["config"]["shape"] = _move(obj["config"].get("shape"))
        for v in obj.values():
            _tensors(v)
    elif isinstance(obj, list):
        for v in obj:
            _tensors(v)


def _model(entry):
    cfg = entry["config"]
    for layer in cfg.get("layers", []):
        _layer(layer)
    if "build_input_shape" in cfg:
        cfg["build_input_shape"] = _move(cfg["build_input_shape"])
    if isinstance(entry.get("build_config"), dict) and "input_shape" in entry["build_config"]:
        entry["build_config"]["input_shape"] = _shapes(entry["build_config"]["input_shape"])
    entry.pop("compile_config", None)


def _twin(model):
    K = keras()
    entry = copy.deepcopy(K.saving.serialize_keras_object(model))
    _model(entry)
    twin = K.saving.deserialize_keras_object(entry, safe_mode=True)
    old, new = all_layers(model), all_layers(twin)
    if [x.name for x in old] != [x.name for x in new]:
        raise Unconvertible("its layers do not rebuild one for one")
    for a, b in zip(old, new):
        if not hasattr(a, "layers"):
            b.set_weights(a.get_weights())
    return twin


def to_channels_last(model):
    """The channels-last twin of a channels-first Keras ``model`` (cached per model).

    Raises
    ------
    MontageError
        When a layer has no known channels-last equivalent.
    """
    if model not in _CONVERTED:
        try:
            _CONVERTED[model] = _twin(model)
        except Unconvertible as e:
            raise MontageError(
                f"model {model.name!r} is channels_first, which TensorFlow runs on this CPU only as a "
                f"channels-last copy, and its layer {e} has none: run it with KERAS_BACKEND=jax or "
                "KERAS_BACKEND=torch, or save it channels_last") from None
        except MontageError:
            raise
        except Exception as e:
            raise MontageError(
                f"model {model.name!r} is channels_first and could not be rebuilt channels-last "
                f"({type(e).__name__}): run it with KERAS_BACKEND=jax or KERAS_BACKEND=torch, or "
                "save it channels_last") from None
    return _CONVERTED[model]


@functools.cache
def nchw_runs():
    """True when the backend runs channels-first convolutions and pooling on this machine."""
    K = keras()
    if K.backend.backend() != "tensorflow":
        return True
    try:
        x = K.ops.ones((1, 1, 4, 4))
        K.ops.conv(x, K.ops.ones((2, 2, 1, 1)), data_format="channels_first")
        K.ops.max_pool(x, 2, data_format="channels_first")
        return True
    except Exception:
        return False
