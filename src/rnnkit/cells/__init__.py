"""One-step cells. The contract is in ``base.py``; the time loop is in ``layers/recurrent.py``."""

from .base import Cell
from .elman import ElmanCell
from .gru import GRUCell
from .lstm import LSTMCell

__all__ = ["Cell", "ElmanCell", "GRUCell", "LSTMCell"]
