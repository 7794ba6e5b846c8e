"""The Keras backend: a quiet import, and where the forward pass runs.

Keras (and with it TensorFlow) is imported lazily, by :func:`keras`, so that
``montage --help`` and the tiling and writing stages stay light.
"""

import os
import sys


def keras():
    """The ``keras`` module, imported with TensorFlow's start-up chatter hidden."""
    if "keras" in sys.modules:
        return sys.modules["keras"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # TensorFlow's C++ side logs before it reads TF_CPP_MIN_LOG_LEVEL ("oneDNN custom
    # operations are on", "Could not find cuda drivers"): hide fd 2 during the import
    # only. MONTAGE_DEBUG=1 shows it.
    quiet = not os.environ.get("MONTAGE_DEBUG")
    if quiet:
        sys.stderr.flush()
        saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
    try:
        import keras
    finally:
        if quiet:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(devnull)
    return keras


def device():
    """Where Keras runs the forward pass, in words (e.g. 'tensorflow on GPU:0')."""
    backend = keras().backend.backend()
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_logical_devices("GPU")
            return f"tensorflow on {gpus[0].name if gpus else 'CPU'}"
        if backend == "jax":
            import jax

            return f"jax on {jax.devices()[0]}"
        if backend == "torch":
            import torch

            return f"torch on {'cuda:' + torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu'}"
    except Exception:
        pass
    return backend
