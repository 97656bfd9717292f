"""Layers: the recurrent layer (the only time loop), Dense and Embedding."""

from .base import Layer
from .dense import Dense
from .embedding import Embedding
from .recurrent import GRU, LSTM, RNN, Recurrent

__all__ = ["GRU", "LSTM", "RNN", "Dense", "Embedding", "Layer", "Recurrent"]
