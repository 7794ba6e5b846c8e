"""Plan a forward pass before any image is read: input size, map shapes, memory, batch size."""

import dataclasses
from dataclasses import dataclass

import numpy as np

from .backend import keras
from .channels_last import nchw_runs, to_channels_last
from .errors import MontageError
from .extract import extractor, predict, runnable_names
from .graph import feature_layers, is_map, walk
from .images import DEFAULT_SIZE


@dataclass
class Forward:
    """A ready forward pass: chosen layers, their map shapes and the batch size.

    Attributes
    ----------
    loaded : montage.models.Loaded
    layers : list of :class:`montage.graph.Node`
    input_shape : (height, width, channels) fed to the model
    shapes : list of (H, W, C), one per layer, as the model computes them
    batch_size : int
    channels_first : bool, the model takes and gives (n, C, H, W); ``run`` still yields NHWC
    """

    loaded: object
    layers: list
    input_shape: tuple
    shapes: list
    batch_size: int
    channels_first: bool = False

    @property
    def names(self):
        """The layers' paths (``outer/inner`` in nested models)."""
        return [n.name for n in self.layers]

    @property
    def device(self):
        """Where the forward pass runs, in words."""
        from .backend import device

        return device()

    def _feed(self, x):
        """A preprocessed batch (n, H, W, C) in the layout the model takes."""
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2)) if self.channels_first else x

    def _maps(self, x):
        outs = predict(extractor(self.loaded.model, self.layers), self._feed(x))
        if self.channels_first:   # NCHW out, NHWC on: the rest of montage sees one layout
            outs = [np.ascontiguousarray(o.transpose(0, 2, 3, 1)) for o in outs]
        return outs

    def outputs(self, x):
        """One float32 array (n, H, W, C) per layer for a preprocessed batch ``x`` (n, H, W, C)."""
        with runnable_names(self.loaded.model):
            return self._maps(x)

    def _batches(self, paths):
        from . import images as imgs

        h, w, c = self.input_shape
        return imgs.batches(paths, (h, w), self.batch_size, self.loaded.preprocess, c)

    def run(self, paths):
        """Yield ``(batch, outputs)``: a :class:`montage.images.Batch` and one float32
        array (n, H, W, C) per layer, from one forward pass per batch."""
        with runnable_names(self.loaded.model):
            for batch in self._batches(paths):
                yield batch, self._maps(batch.x)

    def reduced(self, paths, score):
        """Yield ``(batch, [(score, flat argmax, spatial max) per layer])``, each (n, C), reduced on
        the device by the model itself (see :func:`montage.topk.reducer`)."""
        from .topk import reducer

        red = reducer(extractor(self.loaded.model, self.layers), self.channels_first, score)
        with runnable_names(self.loaded.model):
            for batch in self._batches(paths):
                outs = [np.asarray(o) for o in red.predict_on_batch(self._feed(batch.x))]
                yield batch, [tuple(outs[3 * j:3 * j + 3]) for j in range(len(self.layers))]


def starts_with_scaling(model):
    """True when the model's first layer rescales or normalises its input (keras.applications'
    MobileNetV3, EfficientNet and ConvNeXt do): raw 0..255 values are then right."""
    L = keras().layers
    for node in walk(model):
        if isinstance(node.layer, L.InputLayer) or hasattr(node.layer, "layers"):
            continue
        return isinstance(node.layer, (L.Rescaling, L.Normalization))
    return False


def choose_preprocess(loaded, preprocess=None, mean=None, std=None, note=lambda msg: None):
    """The preprocessing to feed ``loaded``: what the user asked for, else a built-in model's own,
    else none (saying so in one line when the model has no rescaling layer of its own)."""
    if preprocess is not None:
        return preprocess
    if mean is not None or std is not None:
        return {"mean": tuple(mean) if mean is not None else (0.0, 0.0, 0.0),
                "std": tuple(std) if std is not None else (1.0, 1.0, 1.0)}
    if loaded.preprocess != "none":
        return loaded.preprocess
    from . import foreign

    if isinstance(loaded.model, foreign.Net):     # PyTorch, ONNX: no layer says what the input is
        note(f"model {loaded.name} is fed raw RGB values 0..255: if it expects otherwise, pass --preprocess "
             "torch (ImageNet mean/std on [0, 1], torchvision's), caffe or tf, or --mean/--std")
    elif not starts_with_scaling(loaded.model):
        note(f"model {loaded.name} is fed raw RGB values 0..255 (it has no Rescaling or Normalization "
             "layer at its input): if it expects otherwise, pass --preprocess caffe|tf|torch or --mean/--std")
    return "none"


def prepare(loaded, names=None, size=None, batch_size=None, budget=None, note=lambda msg: None,
            preprocess=None, mean=None, std=None):
    """Check a forward pass before any image is read: input size, map shapes, memory.

    Parameters
    ----------
    loaded : montage.models.Loaded
    names : list of str, optional
        Layer names ('all' adds pooling layers); default every conv layer.
    size : int, optional
        Input side for a model that takes any size (default 224); a model with a fixed
        size keeps it (``note`` says so when ``size`` differs).
    batch_size : int, optional
        Images per batch; default (or when it would not fit) sized to ``budget``.
    budget : int, optional
        Bytes the forward pass may use (default half the available memory).
    note : callable
        Takes one-line messages for the user.
    preprocess, mean, std
        See :func:`choose_preprocess`.

    Returns
    -------
    Forward
        Its ``loaded`` records the preprocessing chosen.
    """
    from . import foreign

    if isinstance(loaded.model, foreign.Net):    # PyTorch, ONNX
        return foreign.prepare(loaded, names, size, batch_size, budget, note, preprocess, mean, std)
    loaded = runnable_layout(loaded)
    model = loaded.model
    h, w, c = fed_size(model.name, input_geometry(model), size, note)
    chosen = feature_layers(model, names)
    with runnable_names(model):
        try:
            shapes = map_shapes(model, chosen, h, w, c)
            per_image = forward_bytes(model, shapes, h, w, c)
        except MontageError:
            raise
        except Exception as e:
            raise MontageError(f"model {model.name!r} cannot take {w} x {h} images "
                               f"({type(e).__name__}): give another --size") from None
    for node, shape in zip(chosen, shapes):
        if len(shape) != 3 or 0 in shape:
            raise MontageError(f"layer {node.name!r} outputs shape {shape}, not (height, width, channels) "
                               "maps, at this input size: choose another layer or a larger --size")
    bs, loaded = settle(loaded, c, per_image, budget, batch_size, note, preprocess, mean, std)
    return Forward(loaded, chosen, (h, w, c), shapes, bs, channels_first(model))


def runnable_layout(loaded):
    """``loaded`` with a channels-first model swapped for its channels-last twin on TensorFlow,
    whose CPU kernels run NCHW only with oneDNN (see :mod:`montage.channels_last`): one path on
    every CPU. A model with no known twin runs as it is where the backend can."""
    if not channels_first(loaded.model) or keras().backend.backend() != "tensorflow":
        return loaded
    try:
        return dataclasses.replace(loaded, model=to_channels_last(loaded.model))
    except MontageError:
        if nchw_runs():
            return loaded
        raise


def settle(loaded, channels, per_image, budget, batch_size, note, preprocess, mean, std):
    """(batch size, ``loaded`` with its preprocessing chosen): the batch that fits ``budget``
    (default half the available memory), saying so when ``batch_size`` had to shrink."""
    from .canvas import available_memory

    budget = available_memory() // 2 if budget is None else budget
    bs, shrunk = default_batch_size(per_image, budget, batch_size)
    if shrunk:
        note(f"--batch-size {batch_size} would need {batch_size * per_image / 1e9:.1f} GB for the forward "
             f"pass: using batches of {bs}")
    prep = choose_preprocess(loaded, preprocess, mean, std, note)
    if channels != 3 and not (prep == "none" or callable(prep)):
        raise MontageError(f"model {loaded.name!r} takes {channels}-channel input, and --preprocess/--mean/--std "
                           "are for RGB: give a callable (API) or none")
    return bs, dataclasses.replace(loaded, preprocess=prep)


def fed_size(name, geometry, size=None, note=lambda msg: None):
    """(height, width, channels) to feed a model of ``geometry`` (None for a free side): ``size``
    (default 224) where the model takes any, its own otherwise (saying so if ``size`` differs)."""
    h, w, c = geometry
    if h is None or w is None:
        side = int(size) if size else DEFAULT_SIZE
        h, w = h or side, w or side
    elif size is not None and (int(size), int(size)) != (h, w):
        note(f"the model takes {w} x {h} images: --size {size} is not used")
    if c not in (1, 3, 4):
        raise MontageError(f"model {name!r} takes {c}-channel input: montage can feed images of "
                           "1 (grey), 3 (RGB) or 4 (RGBA) channels")
    return h, w, c


def channels_first(model):
    """True when the model's image layers take (n, C, H, W) (their ``data_format``)."""
    for node in walk(model):
        fmt = getattr(node.layer, "data_format", None)
        if fmt in ("channels_first", "channels_last"):
            return fmt == "channels_first"
    return False


def input_geometry(model):
    """(height, width, channels) of the model's image input; None for a free size.

    Raises MontageError for a model without a known 4-D input (an unbuilt Sequential).
    """
    try:
        shape = model.input_shape
    except (AttributeError, ValueError):
        shape = None
    if isinstance(shape, list) and len(shape) == 1:
        shape = shape[0]
    if not isinstance(shape, tuple):
        raise MontageError(f"model {model.name!r} has no input shape (an unbuilt Sequential, or several "
                           "inputs): start it with keras.Input((H, W, C)), or call model.build((None, H, W, C)) "
                           "before saving it")
    if len(shape) == 4 and channels_first(model):
        shape = (shape[0], shape[2], shape[3], shape[1])
    if len(shape) != 4 or shape[3] is None:
        raise MontageError(f"model {model.name!r} takes input of shape {shape}, not images (H, W, channels)")
    return shape[1], shape[2], int(shape[3])


def map_shapes(model, nodes, height, width, channels):
    """(H, W, C) of each layer's output for one (height, width, channels) input, as Keras computes them."""
    first = channels_first(model)
    shape = (1, channels, height, width) if first else (1, height, width, channels)
    specs = extractor(model, nodes).compute_output_spec(keras().KerasTensor(shape))
    if not isinstance(specs, (list, tuple)):
        specs = [specs]
    shapes = [tuple(int(d) for d in s.shape[1:]) for s in specs]
    return [(s[1], s[2], s[0]) if first and len(s) == 3 else s for s in shapes]


def forward_bytes(model, shapes, height, width, channels):
    """Memory one image needs in the forward pass: the chosen outputs twice (the framework's
    and the host copy) plus the two largest maps of the whole model, alive together."""
    all4d = [n for n in walk(model) if is_map(n.layer)]
    sizes = [4 * h * w * c for h, w, c in map_shapes(model, all4d, height, width, channels)]
    mine = [4 * h * w * c for h, w, c in shapes]
    return 2 * sum(mine) + sum(sorted(sizes)[-2:]) + 4 * height * width * channels


def default_batch_size(per_image, budget_bytes, asked=None):
    """Images per batch that fit ``budget_bytes``: ``asked`` if it fits, else at most 32.

    Returns
    -------
    (batch size, whether ``asked`` was too large)
    """
    fits = int(budget_bytes // max(1, per_image))
    if fits < 1:
        raise MontageError(f"the forward pass needs about {per_image / 1e9:.1f} GB per image but only "
                           f"{budget_bytes / 1e9:.1f} GB of memory can be spared: use a smaller --size "
                           "or fewer layers (--layer)")
    if asked:
        return min(int(asked), fits), int(asked) > fits
    return min(32, fits), False
