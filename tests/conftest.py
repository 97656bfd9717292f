import numpy as np
import pytest


@pytest.fixture(autouse=True)
def strict_floating_point():
    """DESIGN §6: every test runs with overflow, invalid and divide-by-zero as errors."""
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        yield
