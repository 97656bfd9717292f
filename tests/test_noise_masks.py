"""The masks drawn in compiled code (kernels/masks.py) are NumPy's (noise.py), bit for bit:
a seeded run gives the same numbers whichever time loop runs."""

import numpy as np
import pytest

from rnnkit import kernels
from rnnkit.noise import Noise, uniform

pytestmark = pytest.mark.skipif(not kernels.numba_available(), reason="needs numba")


def _both(noise: Noise, *args) -> tuple[np.ndarray, np.ndarray]:
    out = []
    for backend in ("numba", "numpy"):
        kernels.set_backend(backend)
        try:
            out.append(noise.mask(*args))
        finally:
            kernels.set_backend("auto")
    return out[0], out[1]


@pytest.mark.parametrize("seed", range(4))
def test_compiled_masks_equal_numpys(seed):
    rng = np.random.default_rng(seed)
    for _ in range(15):
        noise = Noise(key=int(rng.integers(0, 2**63)), row0=int(rng.integers(0, 10**9)),
                      t0=int(rng.integers(0, 500))).at(int(rng.integers(0, 3)))
        T, B, F = (int(n) for n in rng.integers(1, 7, 3))
        p = float(rng.choice([0.05, 0.25, 0.5, 1 / 3, 0.9]))
        dtype = np.dtype(str(rng.choice(["float32", "float64"])))
        per_step, scale = bool(rng.integers(2)), bool(rng.integers(2))
        use = str(rng.choice(["dropout", "recurrent_dropout_reverse", "zoneout_c"]))
        shape = (T, B, F) if per_step else (B, F)
        a, b = _both(noise, use, p, shape, dtype, per_step, scale)
        assert a.dtype == b.dtype == dtype and a.shape == b.shape == shape
        np.testing.assert_array_equal(a, b)
        assert set(np.unique(a)) <= {0, dtype.type(1 / (1 - p)) if scale else 1}


def test_an_entry_equal_to_p_is_kept_by_both():
    """``u >= p`` at the boundary: with ``p`` set to one entry's own ``u``, that entry is kept,
    and with the next float above it, dropped (the compiled test is on integers)."""
    from rnnkit.noise import _mix_int

    noise = Noise(key=99).at(0)
    key = _mix_int(_mix_int(noise.key ^ _mix_int(1)) + 0)  # "dropout", forward, layer 0
    u = uniform(key, np.arange(3), np.arange(4))[1, 2]
    for p, kept in ((u, True), (np.nextafter(u, 1.0), False)):
        a, b = _both(noise, "dropout", float(p), (3, 4), np.dtype(np.float64), False, False)
        assert a[1, 2] == b[1, 2] == (1.0 if kept else 0.0)
        np.testing.assert_array_equal(a, b)
