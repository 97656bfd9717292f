"""rnnkit: fast, exact, NumPy-native recurrent neural networks.

The spec's standard layer ``h_t = σ(W_x x_t + W_h h_{t-1} + b)``, ``y_t = g(h_t)``, plus LSTM
and GRU, trained by backpropagation through time written out by hand.
"""

from . import noise, optim
from .callbacks import (
    Callback,
    EarlyStopping,
    ModelCheckpoint,
    NaNGuard,
    Progress,
    ProgressBar,
)
from .diagnostics import GradientFlowMonitor, gradcheck, gradient_flow
from .errors import GradcheckError
from .interop.onnx_import import from_onnx  # imports onnx only when called
from .interop.torch_import import from_torch  # imports torch only when called
from .layers import GRU, LSTM, RNN, Dense, Dropout, Embedding
from .model import Sequential
from .model import load_model as load
from .optim import SGD, Adagrad, Adam, AdamW, RMSprop
from .training import History

__version__ = "0.1.0"


def __getattr__(name: str):
    # The scikit-learn estimators import scikit-learn (slow, optional) only when asked for.
    if name in ("RNNRegressor", "RNNClassifier"):
        from . import estimators

        return getattr(estimators, name)
    raise AttributeError(f"module 'rnnkit' has no attribute {name!r}")


__all__ = [
    "GRU", "LSTM", "RNN", "SGD", "Adagrad", "Adam", "AdamW", "Callback", "Dense", "Dropout",
    "EarlyStopping", "Embedding", "GradcheckError", "GradientFlowMonitor", "History",
    "ModelCheckpoint", "NaNGuard", "Progress", "ProgressBar", "RMSprop", "RNNClassifier",
    "RNNRegressor", "Sequential", "__version__", "from_onnx", "from_torch", "gradcheck",
    "gradient_flow", "load", "noise", "optim",
]
