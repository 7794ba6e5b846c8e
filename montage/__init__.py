"""montage: every filter and feature map of a convolutional network, at full resolution.

The API mirrors the CLI: :func:`filters`, :func:`features`, :func:`activations`,
:func:`examples`, :func:`optimize`, :func:`layers`; :func:`grid` tiles any array into one canvas;
:class:`Recorder` records kernels over training; :func:`open` reads an output folder back. Heavy dependencies (Keras, TensorFlow) load only when used.
"""

from importlib import import_module

from ._version import __version__
from .errors import MontageError

__all__ = ["filters", "features", "examples", "optimize", "activations", "layers", "grid", "load_model", "Recorder",
           "open", "MontageError", "__version__"]

# public name -> (module, attribute), imported on first use
_LAZY = {
    "filters": ("render_filters", "filters"),
    "features": ("render_features", "features"),
    "examples": ("render_examples", "examples"),
    "optimize": ("render_optimize", "optimize"),
    "activations": ("render_activations", "activations"),
    "load_model": ("models", "load_model"),
    "layers": ("render_layers", "summary"),
    "grid": ("arrays", "grid"),
    "Recorder": ("recorder", "Recorder"),
    "open": ("opened", "open_folder"),
}


def __dir__():
    """What tab completion offers: the lazy names too, not only what is imported so far."""
    return sorted(set(globals()) | set(__all__))


def __getattr__(name):
    if name in _LAZY:
        module, attr = _LAZY[name]
        return getattr(import_module(f".{module}", __name__), attr)
    raise AttributeError(f"module 'montage' has no attribute {name!r}")
