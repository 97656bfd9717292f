"""Large products go to NumPy's BLAS or to rnnkit's micro-kernel by a measurement made once per
shape class and kept in ``blas.json`` (``kernels/_blas.py``), a file read as untrusted."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rnnkit import kernels
from rnnkit.kernels import _blas

pytestmark = pytest.mark.skipif(not kernels.numba_available(), reason="needs numba")

# 2 * 256 * 128 * 1600 = 1.05e8 FLOPs: just over MIN_FLOPS
M, K, N = 256, 128, 1600


@pytest.fixture
def store(tmp_path, monkeypatch):
    """``blas.json`` in a fresh folder, nothing known in this process, RNNKIT_BLAS unset."""
    where = tmp_path / "blas.json"
    monkeypatch.setattr(_blas, "path", lambda: str(where))
    monkeypatch.delenv(_blas.ENV, raising=False)
    previous = kernels.get_backend()
    kernels.set_backend("auto")
    _blas.forget()
    yield where
    _blas.forget()
    kernels.set_backend(previous)


def _operands(dtype=np.float32, transposed=False):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((K, M) if transposed else (M, K)).astype(dtype)
    return (a.T if transposed else a), rng.standard_normal((K, N)).astype(dtype)


def _spy(monkeypatch):
    calls = {"ours": 0, "measured": 0}
    real, best = kernels._product, _blas._best

    def product(*args):
        calls["ours"] += 1
        return real(*args)

    def timed(ours, blas):
        calls["measured"] += 1
        return best(ours, blas)

    monkeypatch.setattr(kernels, "_product", product)
    monkeypatch.setattr(_blas, "_best", timed)
    return calls


def test_measured_once_kept_in_the_file_and_right_either_way(store, monkeypatch):
    calls = _spy(monkeypatch)
    a, b = _operands()
    bias = np.linspace(-1, 1, N, dtype=np.float32)
    out = kernels.matmul(a, b, bias=bias)
    np.testing.assert_allclose(out, a @ b + bias, rtol=1e-4, atol=1e-3)
    assert calls["measured"] == 1
    cls = _blas.key(np.float32, M, K, N, False, kernels.get_num_threads())
    doc = json.loads(store.read_text())
    assert doc["format"] == 2 and doc["choices"][cls] in ("blas", "rnnkit")
    # a new process (forget) reads the file: no measuring, the same choice
    _blas.forget()
    monkeypatch.setattr(_blas, "_best", lambda *fns: pytest.fail("measured again"))
    calls["ours"] = 0
    acc = out.copy()
    kernels.matmul(a, b, acc, accumulate=True)
    np.testing.assert_allclose(acc, 2 * (a @ b) + bias, rtol=1e-4, atol=1e-3)
    assert calls["ours"] == (doc["choices"][cls] == "rnnkit")
    # a smaller product never asks
    kernels.matmul(a[:8], b)
    assert json.loads(store.read_text()) == doc


@pytest.mark.parametrize("choice", ["blas", "rnnkit"])
def test_a_kept_choice_decides_for_its_class_only(store, monkeypatch, choice):
    a, b = _operands(np.float64, transposed=True)
    cls = _blas.key(np.float64, M, K, N, True, kernels.get_num_threads())
    store.write_text(json.dumps({"format": 2, "choices": {cls: choice}}))
    calls = _spy(monkeypatch)
    bias = np.linspace(-1, 1, N)
    out = kernels.matmul(a, b, bias=bias)
    np.testing.assert_allclose(out, a @ b + bias, rtol=1e-12, atol=1e-10)
    kernels.matmul(a, b, out, accumulate=True)
    np.testing.assert_allclose(out, 2 * (a @ b) + bias, rtol=1e-12, atol=1e-10)
    assert calls == {"ours": 2 * (choice == "rnnkit"), "measured": 0}
    kernels.matmul(a.T.copy().T.copy(), b)  # the same shape, not a transpose: another class
    assert calls["measured"] == 1


@pytest.mark.parametrize("times, choice", [((2.0, 1.0), "blas"), ((1.0, 2.0), "rnnkit")])
def test_the_faster_way_is_kept(store, monkeypatch, times, choice):
    monkeypatch.setattr(_blas, "_best", lambda ours, blas: (ours(), blas()) and times)
    a, b = _operands()
    kernels.matmul(a, b)
    assert list(json.loads(store.read_text())["choices"].values()) == [choice]


@pytest.mark.parametrize("mode, ours", [("never", 1), ("always", 0)])
def test_the_environment_decides_without_measuring(store, monkeypatch, mode, ours):
    monkeypatch.setenv(_blas.ENV, mode)
    calls = _spy(monkeypatch)
    a, b = _operands()
    np.testing.assert_allclose(kernels.matmul(a, b), a @ b, rtol=1e-4, atol=1e-3)
    assert calls == {"ours": ours, "measured": 0} and not store.exists()
    monkeypatch.setenv(_blas.ENV, "sometimes")
    with pytest.raises(ValueError, match="RNNKIT_BLAS: expected one of auto, never, always"):
        kernels.matmul(a, b)


GOOD = "float32/8x7x11/n/2"


@pytest.mark.parametrize("data, what", [
    (b"\xff\xfe", "not JSON"),
    (b"[1, 2]", "format 2"),
    (b'{"format": 1, "choices": {}}', "format 2"),
    (b'{"format": 2, "choices": []}', "at most 512"),
    (b'{"format": 2}', "at most 512"),
    (json.dumps({"format": 2, "choices": {GOOD: "gpu"}}).encode(), "not a choice"),
    (json.dumps({"format": 2, "choices": {"../x": "blas"}}).encode(), "not a choice"),
    (json.dumps({"format": 2, "choices": {GOOD + "0000": "blas"}}).encode(), "not a choice"),
    (json.dumps({"format": 2, "choices": {f"float32/{i}x1x1/n/{j}": "blas" for i in range(30)
                                          for j in range(30)}}).encode(), "at most 512"),
    (b" " * (_blas.MAX_BYTES + 1), "bytes, expected at most"),
])
def test_a_bad_file_is_refused_and_measured_again(store, monkeypatch, data, what):
    with pytest.raises(ValueError, match=what):
        _blas.parse(data)
    store.write_bytes(data)
    calls = _spy(monkeypatch)
    a, b = _operands()
    kernels.matmul(a, b)
    assert calls["measured"] == 1
    assert len(_blas.parse(store.read_bytes())) == 1  # rewritten with this class only


def test_a_good_file_parses():
    assert _blas.parse(json.dumps({"format": 2, "choices": {GOOD: "rnnkit"}}).encode()) == {
        GOOD: "rnnkit"}
    assert _blas.key(np.float32, 129, 128, 1, False, 2) == "float32/8x7x0/n/2"


@pytest.mark.parametrize("warm_up, rounds", [(0.01, _blas.REPS), (1.0, 1)])
def test_best_times_each_way_after_a_warm_up(monkeypatch, warm_up, rounds):
    runs = {"ours": 0, "blas": 0}
    # a warm-up, then rounds that get faster: the best is the last round's
    times = {"ours": iter([warm_up, 0.5, 0.3, 0.2]), "blas": iter([warm_up, 0.6, 0.4, 0.1])}

    def ours():
        runs["ours"] += 1

    def blas():
        runs["blas"] += 1

    name = {ours: "ours", blas: "blas"}
    monkeypatch.setattr(_blas, "_once", lambda fn: fn() or next(times[name[fn]]))
    best = _blas._best(ours, blas)
    assert best == ((0.5, 0.3, 0.2)[rounds - 1], (0.6, 0.4, 0.1)[rounds - 1])
    assert runs == {"ours": 1 + rounds, "blas": 1 + rounds}


def _blas_threads():
    from threadpoolctl import ThreadpoolController

    return [lib.num_threads for lib in ThreadpoolController().select(user_api="blas")
            .lib_controllers]


def test_the_blas_way_runs_in_parts_on_one_blas_thread_each(store, monkeypatch):
    """Split by rows over rnnkit's threads, NumPy's BLAS on one thread meanwhile (its own
    threads would spin on the cores of the next split loop), its setting restored after."""
    from threadpoolctl import threadpool_limits

    monkeypatch.setenv(_blas.ENV, "always")
    seen, real = [], _blas.rows

    def rows(a, b, out, accumulate, bias):
        seen.append((a.shape[0], _blas_threads()))
        real(a, b, out, accumulate, bias)

    monkeypatch.setattr(_blas, "rows", rows)
    a, b = _operands()
    bias = np.linspace(-1, 1, N, dtype=np.float32)
    threads = kernels.get_num_threads()
    with threadpool_limits(limits=2, user_api="blas"):
        before = _blas_threads()
        kernels.set_num_threads(2)
        try:
            out = kernels.matmul(a, b, bias=bias)
            kernels.matmul(a, b, out, accumulate=True)
        finally:
            kernels.set_num_threads(threads)
        assert _blas_threads() == before and before and max(before) == 2
    np.testing.assert_allclose(out, 2 * (a @ b) + bias, rtol=1e-4, atol=1e-3)
    assert seen == [(M // 2, [1] * len(before))] * 4  # two calls in two parts each


def test_overlapping_one_thread_blocks_restore_the_setting():
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=2, user_api="blas"):
        outer = _blas.one_thread()
        outer.__enter__()
        with _blas.one_thread():
            assert set(_blas_threads()) == {1}
        assert set(_blas_threads()) == {1}  # the outer block still holds it
        outer.__exit__(None, None, None)
        assert set(_blas_threads()) == {2}
