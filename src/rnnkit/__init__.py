"""rnnkit: fast, exact, NumPy-native recurrent neural networks.

The spec's standard layer ``h_t = σ(W_x x_t + W_h h_{t-1} + b)``, ``y_t = g(h_t)``, plus LSTM
and GRU, trained by backpropagation through time written out by hand.
"""

from .layers import GRU, LSTM, RNN, Dense, Embedding
from .model import Sequential

__version__ = "0.1.0"

__all__ = ["GRU", "LSTM", "RNN", "Dense", "Embedding", "Sequential", "__version__"]
