"""Keras models (built in, files, objects), read and run with Keras on any backend."""

from .forward import prepare
from .loading import load
from .ascent import plan

__all__ = ["load", "plan", "prepare"]
