"""Shared test helpers (imported by test modules; conftest.py holds only fixtures)."""

import numpy as np


def sq_loss(out, y):
    """0.5 * sum((out - y)^2): a smooth loss with a simple exact gradient."""
    d = out - y
    return 0.5 * float(np.sum(d * d)), d
