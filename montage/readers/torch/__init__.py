"""PyTorch models (torchvision names, TorchScript and pickled modules, ``nn.Module`` objects); torch
is imported only for these models: ``montage --help`` and Keras runs never load it."""

from ..traced import prepare
from .ascent import plan
from .loading import load

__all__ = ["load", "plan", "prepare"]
