"""Keras models (built in, files, objects), read and run with Keras on any backend."""

from .forward import prepare
from .loading import load

__all__ = ["load", "prepare"]
