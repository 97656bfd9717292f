"""Layers: the recurrent layer (the only time loop), Dense, Embedding and Dropout."""

from .base import Layer
from .dense import Dense
from .dropout import Dropout
from .embedding import Embedding
from .recurrent import GRU, LSTM, RNN, Recurrent

__all__ = ["GRU", "LSTM", "RNN", "Dense", "Dropout", "Embedding", "Layer", "Recurrent"]
