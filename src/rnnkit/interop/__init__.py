"""Interoperability with other frameworks. Each submodule imports its framework inside its
functions only, so importing rnnkit never imports torch."""

from .torch import from_torch, to_torch

__all__ = ["from_torch", "to_torch"]
