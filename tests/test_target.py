"""The micro-kernel's tiles chosen from the target CPU (rnnkit/kernels/_target.py): the choice,
the forced AVX2 tiles exact on this host, the code compiled for an AVX2 CPU without spills,
and the compiled-code cache kept apart per stamp."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("numba")

from rnnkit.kernels import _target

SRC = str(Path(__file__).resolve().parents[1] / "src")


def run(code: str, **env: str) -> str:
    full = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""),
            **env}
    for name in ("RNNKIT_GEMM_TILES", "NUMBA_CPU_NAME", "NUMBA_CPU_FEATURES"):
        if name not in env:
            full.pop(name, None)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=full, timeout=600, check=False)
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout


@pytest.mark.parametrize("feats,machine,kind", [
    ({"avx512f", "avx2", "fma"}, "x86_64", "avx512"),
    ({"avx2", "fma", "avx"}, "x86_64", "avx2"),
    ({"avx"}, "x86_64", "avx2"),
    ({"sse4.2", "sse2"}, "x86_64", "sse"),
    (set(), "aarch64", "neon"),
    ({"neon"}, "arm64", "neon"),
])
def test_kind_of_a_target(feats, machine, kind):
    assert _target.kind_of(feats, machine) == kind


def test_every_kind_of_tiles_fits_its_registers():
    for t in _target.KINDS.values():
        assert set(t.nv) == {t.rows, 4, 2, 1}
        for mr, nv in t.nv.items():  # accumulators + a row of b + the broadcast scalar
            assert mr * nv + 1 <= t.registers, (t.kind, mr, nv)
        assert t.nv[t.rows] * t.rows + t.nv[t.rows] + 1 <= t.registers


def test_a_name_alone_gives_that_cpus_features(monkeypatch):
    from numba.core import config

    monkeypatch.setattr(config, "CPU_FEATURES", "")
    for name, kind in [("haswell", "avx2"), ("znver3", "avx2"), ("skylake-avx512", "avx512"),
                       ("znver4", "avx512"), ("sandybridge", "avx2"), ("core2", "sse")]:
        monkeypatch.setattr(config, "CPU_NAME", name)
        feats = _target.target()[1]
        assert _target.kind_of(feats, "x86_64") == kind, name
    monkeypatch.setattr(config, "CPU_FEATURES", "+avx2,-avx512f,+fma")
    assert _target.target()[1] == {"avx2", "fma"}


def test_a_forced_kind_is_checked(monkeypatch):
    monkeypatch.setenv(_target.ENV, "avx3")
    with pytest.raises(ValueError, match="RNNKIT_GEMM_TILES: expected one of avx512, avx2"):
        _target.choose()
    monkeypatch.setenv(_target.ENV, "AVX2")
    assert _target.choose().kind == "avx2"


def test_the_stamp_changes_with_the_tiles(monkeypatch):
    first = _target.stamp()
    monkeypatch.setattr(_target, "TILES", _target.KINDS["sse"])
    assert _target.stamp() != first


# Every tile of the forced AVX2 choice (6, 4, 2, 1 rows; whole and masked column blocks) against
# NumPy, then the compiled RNN loop against the reference loop at batch sizes reaching them.
_EXACT = """
import numpy as np
import rnnkit as rk
from rnnkit import kernels
kernels._load()
from rnnkit.kernels import _gemm, _target
assert _gemm.TILES == _target.KINDS["avx2"].nv and _gemm.ROWS == 6, _gemm.TILES
rng = np.random.default_rng(0)
for M in (1, 2, 3, 4, 5, 6, 7, 11, 12, 13):
    for N in (5, 8, 16, 17, 40, 56):
        for dt, tol in ((np.float32, 1e-5), (np.float64, 1e-13)):
            a = rng.standard_normal((M, 9)).astype(dt)
            b = rng.standard_normal((9, N)).astype(dt)
            bias, c = rng.standard_normal(N).astype(dt), np.full((M + 1, N + 1), 7.0, dt)
            _gemm.matmul(a, b, c[:M, :N], False, bias)
            ref = a.astype(float) @ b.astype(float) + bias
            np.testing.assert_allclose(c[:M, :N], ref, rtol=tol, atol=tol * 10)
            assert (c[M] == 7).all() and (c[:, N] == 7).all()
for B in (1, 6, 13):
    out = {}
    for backend in ("numpy", "numba"):
        kernels.set_backend(backend)
        m = rk.Sequential([rk.RNN(20, return_sequences=True)], seed=1, dtype="float64")
        X = np.random.default_rng(B).standard_normal((B, 5, 3))
        Y = m.forward(X)
        m.zero_grad()
        dX = m.backward(np.ones_like(Y))
        out[backend] = [Y, dX, *m.gradients().values()]
    for x, y in zip(*out.values()):
        np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-12)
print("exact")
"""


def test_forced_avx2_tiles_are_exact():
    assert run(_EXACT, RNNKIT_GEMM_TILES="avx2").strip().endswith("exact")


# compiled for an AVX2 CPU (haswell: 16 vector registers), the chosen tiles spill almost
# nothing; the AVX-512 tiles there spilled ~1,300 vectors (issue 22)
_SPILLS = """
import re, numba, numpy as np
from rnnkit import kernels
kernels._load()
from rnnkit.kernels import _gemm, _target
print(_target.TILES.kind)
f = numba.njit(_gemm.matmul.py_func)
a = np.ones((13, 9), np.float32)
f(a, np.ones((9, 40), np.float32), np.zeros((13, 40), np.float32), False, np.empty(0, np.float32))
asm = "\\n".join(f.inspect_asm().values())
fmas = len(re.findall(r"vfmadd\\w+\\s", asm))
spills = len(re.findall(r"vmov\\w+\\s+%[xyz]mm\\d+, -?\\d*\\(%rsp\\)", asm))
print(fmas, spills)
"""


@pytest.mark.skipif(os.uname().machine not in ("x86_64", "AMD64"), reason="x86 assembly")
def test_code_for_an_avx2_cpu_does_not_spill():
    kind, counts = run(_SPILLS, NUMBA_CPU_NAME="haswell", NUMBA_CPU_FEATURES="").split("\n")[:2]
    fmas, spills = map(int, counts.split())
    assert kind == "avx2"
    assert fmas > 100 and spills < 40, (fmas, spills)
