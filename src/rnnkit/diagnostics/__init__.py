"""Diagnostics: gradient checking and (spec "Vanishing / exploding gradients") gradient flow."""

from .gradcheck import gradcheck

__all__ = ["gradcheck"]
