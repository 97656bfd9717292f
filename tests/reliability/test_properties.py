"""Property-based tests over shapes, lengths and options: finite in, finite out; bad input
gives the documented errors and nothing else."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rnnkit as rk

CELLS = [rk.RNN, rk.LSTM, rk.GRU]
SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@st.composite
def cases(draw):
    B, T, D, H = (draw(st.integers(1, n)) for n in (4, 9, 4, 5))
    cell = draw(st.sampled_from(CELLS))
    lengths = draw(st.none() | st.lists(st.integers(1, T), min_size=B, max_size=B))
    scale = draw(st.sampled_from([1e-3, 1.0, 1e3]))
    seed = draw(st.integers(0, 2**32 - 1))
    X = np.random.default_rng(seed).uniform(-scale, scale, (B, T, D))
    opts = dict(bidirectional=draw(st.booleans()), return_sequences=draw(st.booleans()),
                h0=draw(st.sampled_from(["zeros", "learned"])))
    dtype = draw(st.sampled_from(["float32", "float64"]))
    return cell, H, opts, X, lengths, dtype


@SETTINGS
@given(cases())
def test_finite_input_gives_finite_outputs_and_gradients(case):
    cell, H, opts, X, lengths, dtype = case
    model = rk.Sequential([cell(H, **opts), rk.Dense(2)], seed=0, dtype=dtype)
    out = model.forward(X, lengths)
    B, T = X.shape[:2]
    expected = (B, T, 2) if opts["return_sequences"] else (B, 2)
    assert out.shape == expected and out.dtype == np.dtype(dtype)
    dX = model.backward(np.ones_like(out))
    assert dX.shape == X.shape
    assert np.all(np.isfinite(out)) and np.all(np.isfinite(dX))
    assert all(np.all(np.isfinite(g)) for g in model.gradients().values())
    if lengths is not None and opts["return_sequences"]:
        for b, n in enumerate(lengths):
            assert np.all(out[b, n:] == 0) and np.all(dX[b, n:] == 0)


@st.composite
def bad_inputs(draw):
    kind = draw(st.sampled_from(["features", "rank", "nan", "lengths", "empty", "ragged"]))
    rng = np.random.default_rng(draw(st.integers(0, 1000)))
    if kind == "features":
        return rng.standard_normal((2, 3, draw(st.sampled_from([1, 3, 7])))), None
    if kind == "rank":
        return rng.standard_normal(draw(st.sampled_from([(3,), (2, 3, 2, 1)]))), None
    if kind == "nan":
        X = rng.standard_normal((2, 3, 2))
        X[draw(st.integers(0, 1)), draw(st.integers(0, 2))] = draw(
            st.sampled_from([np.nan, np.inf, -np.inf]))
        return X, None
    if kind == "lengths":
        return rng.standard_normal((2, 3, 2)), [draw(st.integers(-3, 0) | st.integers(4, 9)), 1]
    if kind == "empty":
        return np.zeros((draw(st.integers(0, 2)), 0, 2)), None
    return [[1.0, 2.0], [3.0]], None


@SETTINGS
@given(bad_inputs())
def test_bad_input_raises_only_documented_errors(case):
    X, lengths = case
    model = rk.Sequential([rk.GRU(3)], seed=0)
    model.build(2)
    try:
        model.predict(X, lengths)
    except (ValueError, TypeError) as e:
        assert "GRU" in str(e), f"the message must name the layer: {e}"
    else:
        raise AssertionError("bad input was accepted")
