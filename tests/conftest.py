import numpy as np
import pytest


@pytest.fixture(autouse=True)
def strict_floating_point():
    """DESIGN §6: every test runs with overflow, invalid and divide-by-zero as errors."""
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        yield


@pytest.fixture(autouse=True)
def threads_as_set(monkeypatch):
    """Split calls on the threads set, whatever the machine's load (a busy CI machine would
    otherwise run the split paths on fewer threads than a test asks for)."""
    from rnnkit.kernels import _parallel

    monkeypatch.setattr(_parallel, "ADAPT", False)


@pytest.fixture(params=["numpy", "numba"])
def backend(request):
    """Run a test on the NumPy reference loop and on the compiled loop (rnnkit.kernels)."""
    from rnnkit import kernels

    if request.param == "numba" and not kernels.numba_available():
        pytest.skip("numba is not installed")
    previous = kernels.get_backend()
    kernels.set_backend(request.param)
    yield request.param
    kernels.set_backend(previous)
