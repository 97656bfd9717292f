"""Interoperability with other frameworks. Each submodule imports its framework inside its
functions only, so importing rnnkit never imports torch."""

from .torch import to_torch
from .torch_import import from_torch

__all__ = ["from_torch", "to_torch"]
