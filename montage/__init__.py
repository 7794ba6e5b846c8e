"""montage: every filter and feature map of a convolutional network, at full resolution.

The API mirrors the CLI: :func:`filters`, :func:`features`, :func:`activations`,
:func:`layers`. Heavy dependencies (Keras, TensorFlow) load only when used.
"""

__version__ = "0.1.0"

__all__ = ["filters", "features", "activations", "layers", "load_model", "MontageError"]

from .errors import MontageError  # noqa: E402


def __getattr__(name):
    if name == "filters":
        from .render import filters
        return filters
    if name == "features":
        from .render import features
        return features
    if name == "activations":
        from .extract import activations
        return activations
    if name == "load_model":
        from .models import load_model
        return load_model
    if name == "layers":
        from .models import summary
        return summary
    raise AttributeError(name)
