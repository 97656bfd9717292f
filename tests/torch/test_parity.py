"""Parity with PyTorch in float64 (DESIGN §6): outputs, final states and every gradient of
``from_torch(module)`` against the module itself, for RNN (tanh, relu), LSTM and GRU, 1 and 3
layers, uni- and bidirectional, with and without bias, full and padded variable-length batches
(against ``pack_padded_sequence``), at rtol 1e-10.

The gradients are those of ``L = sum(out * R)``: torch's ``.grad`` after ``L.backward()``
against rnnkit's ``model.forward`` + ``model.backward(R)`` and ``model.gradients()``.
"""

import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence  # noqa: E402

import rnnkit as rk  # noqa: E402

pytestmark = pytest.mark.usefixtures("backend")  # the NumPy loop and the compiled loop
RTOL = 1e-10
# Only for entries that are 0 (or nearly: a gradient entry whose terms of size 0.1 cancel to
# 1e-10) on one side and round-off (~1e-18) away on the other; every other entry is held to
# RTOL alone. With atol=0 exactly one of the 55,041 entries fails: -6.5634398e-10 against
# -6.5634398e-10 - 3e-19 (lstm-3-bidi-bias-full, grad weight_ih_l1).
ATOL = 1e-15
# float32: both sides round every product to 24 bits and sum in different orders (NumPy's
# BLAS vs torch's kernels), and the difference grows through the recurrence over T steps and
# the layers; ~1e-6 relative is what float32 can promise here, so the check is 1e-5.
RTOL32, ATOL32 = 1e-5, 1e-6

D, H, B, T = 4, 5, 3, 6
LENGTHS = [6, 1, 4]  # unsorted, with a full-length and a length-1 sequence
KINDS = {
    "rnn_tanh": lambda **kw: torch.nn.RNN(D, H, nonlinearity="tanh", **kw),
    "rnn_relu": lambda **kw: torch.nn.RNN(D, H, nonlinearity="relu", **kw),
    "lstm": lambda **kw: torch.nn.LSTM(D, H, **kw),
    "gru": lambda **kw: torch.nn.GRU(D, H, **kw),
}
PARAM = re.compile(r"(weight_ih|weight_hh|bias_ih|bias_hh)_l(\d+)(_reverse)?$")
ERRORS_SEEN: list[float] = []  # worst relative error (rel_error) of every array compared
CASES: list[str] = []


@pytest.fixture(autouse=True)
def _raise_on_float_errors():
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        yield


def rel_error(ours, theirs):
    """Worst ``|ours - theirs| / |theirs|`` over the entries at least 1e-6 of the array's
    largest: smaller ones are sums whose terms cancel (a gradient entry of 1e-10 in an array of
    0.1), where round-off relative to the entry measures the sum's conditioning, not the code;
    those are held to the array's scale instead (``normwise``)."""
    diff = np.abs(np.asarray(ours, np.float64) - np.asarray(theirs, np.float64))
    scale = np.abs(np.asarray(theirs, np.float64))
    top = float(scale.max(initial=0.0))
    if top == 0.0:
        return float(diff.max(initial=0.0))
    keep = scale >= 1e-6 * top
    return max(float(np.max(diff[keep] / scale[keep])), float(diff.max()) / top)


def close(ours, theirs, what, rtol=RTOL, atol=ATOL):
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    assert ours.shape == theirs.shape, f"{what}: shape {ours.shape} != torch {theirs.shape}"
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol, err_msg=what)
    if rtol == RTOL:
        ERRORS_SEEN.append(rel_error(ours, theirs))


def make_module(kind, layers=1, bidi=False, bias=True, batch_first=True, dtype=torch.float64,
                seed=0):
    torch.manual_seed(seed)
    mod = KINDS[kind](num_layers=layers, bidirectional=bidi, bias=bias,
                      batch_first=batch_first, dtype=dtype)
    if bias:  # torch draws b_ih and b_hh alike; make them differ in scale so a swap shows
        with torch.no_grad():
            for name, p in mod.named_parameters():
                if name.startswith("bias_hh"):
                    p.mul_(3.0)
    return mod


def inputs(seed=0, shape=(B, T, D)):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape)


def torch_states(states, layers, bidi, lstm):
    """rnnkit's ``{layer: state}`` stacked like torch's ``h_n`` (and ``c_n``)."""
    hs, cs = [], []
    for k in range(layers):
        for s in states[k] if bidi else (states[k],):
            h, c = s if lstm else (s, None)
            hs.append(h)
            cs.append(c)
    return np.stack(hs), (np.stack(cs) if lstm else None)


def run_torch(mod, X, R, lengths=None):
    """Output, (h_n, c_n), parameter gradients and dX of ``sum(out * R)``; X, R batch-first."""
    bf = mod.batch_first
    x = torch.tensor(X if bf or X.ndim == 2 else X.swapaxes(0, 1), requires_grad=True)
    if lengths is None:
        out, state = mod(x)
    else:
        packed = pack_padded_sequence(x, torch.tensor(lengths), batch_first=bf,
                                      enforce_sorted=False)
        out, state = mod(packed)
        out, _ = pad_packed_sequence(out, batch_first=bf, total_length=X.shape[1])
    r = torch.tensor(R if bf or R.ndim == 2 else R.swapaxes(0, 1))
    mod.zero_grad()
    (out * r).sum().backward()
    h_n, c_n = state if isinstance(state, tuple) else (state, None)
    out, dX = out.detach().numpy(), x.grad.numpy()
    if not bf and X.ndim == 3:
        out, dX = out.swapaxes(0, 1), dX.swapaxes(0, 1)
    grads = {n: p.grad.numpy() for n, p in mod.named_parameters()}
    return out, h_n.detach().numpy(), None if c_n is None else c_n.detach().numpy(), grads, dX


def check_parity(mod, X, lengths=None, label=""):
    """Everything of ``from_torch(mod)`` against ``mod`` at RTOL (float64)."""
    lstm = isinstance(mod, torch.nn.LSTM)
    model = rk.from_torch(mod, return_state=True)
    out, states = model.forward(X, lengths)
    R = np.random.default_rng(99).standard_normal(out.shape)
    dX = model.backward(R)
    t_out, t_h, t_c, t_grads, t_dX = run_torch(mod, X, R, lengths)

    close(out, t_out, f"{label} output")
    h, c = torch_states(states, mod.num_layers, mod.bidirectional, lstm)
    close(h, t_h, f"{label} h_n")
    if lstm:
        close(c, t_c, f"{label} c_n")
    close(dX, t_dX, f"{label} dX")

    ours = model.gradients()
    covered = set()
    for name, g in t_grads.items():
        kind, k, sfx = PARAM.match(name).groups()
        sfx = sfx or ""
        if kind == "weight_ih":
            key = f"{k}.W_x{sfx}"
            close(ours[key], g, f"{label} grad {name}")
        elif kind == "weight_hh":
            key = f"{k}.W_h{sfx}"
            close(ours[key], g, f"{label} grad {name}")
        elif kind == "bias_ih":
            key = f"{k}.b{sfx}"
            close(ours[key], g, f"{label} grad {name}")
        elif isinstance(mod, torch.nn.GRU):  # bias_hh: b for r, z; b_hn for n
            key = f"{k}.b_hn{sfx}"
            close(ours[f"{k}.b{sfx}"][: 2 * H], g[: 2 * H], f"{label} grad {name}[:2H]")
            close(ours[key], g[2 * H :], f"{label} grad {name}[2H:]")
        else:
            key = f"{k}.b{sfx}"
            close(ours[key], g, f"{label} grad {name}")
        covered.add(key)
    assert covered == set(ours), f"{label}: gradients not compared: {set(ours) - covered}"
    CASES.append(label)
    return model


def padded(X, lengths, seed=1):
    """X with garbage (not zeros) after each sequence's end: masking must ignore it."""
    X = X.copy()
    junk = np.random.default_rng(seed).standard_normal(X.shape) * 5
    for i, n in enumerate(lengths):
        X[i, n:] = junk[i, n:]
    return X


@pytest.mark.parametrize("lengths", [None, LENGTHS], ids=["full", "padded"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("bidi", [False, True], ids=["uni", "bidi"])
@pytest.mark.parametrize("layers", [1, 3])
@pytest.mark.parametrize("kind", KINDS)
def test_parity_float64(kind, layers, bidi, bias, lengths):
    seed = 100 * list(KINDS).index(kind) + 10 * layers + 2 * bidi + bias
    mod = make_module(kind, layers, bidi, bias, seed=seed)
    X = inputs(seed=seed)
    if lengths is not None:
        X = padded(X, lengths)
    check_parity(mod, X, lengths, f"{kind} L={layers} bidi={bidi} bias={bias} len={lengths}")


@pytest.mark.parametrize("lengths", [None, LENGTHS], ids=["full", "padded"])
@pytest.mark.parametrize("kind", KINDS)
def test_parity_time_major_module(kind, lengths):
    """A ``batch_first=False`` module: rnnkit stays batch-first, the numbers are the same."""
    mod = make_module(kind, layers=2, bidi=True, batch_first=False, seed=5)
    X = inputs(seed=7)
    if lengths is not None:
        X = padded(X, lengths)
    check_parity(mod, X, lengths, f"{kind} time-major len={lengths}")


@pytest.mark.parametrize("bidi", [False, True], ids=["uni", "bidi"])
@pytest.mark.parametrize("kind", KINDS)
def test_parity_single_sequence(kind, bidi):
    """One ``(T, D)`` sequence, which torch also takes unbatched."""
    mod = make_module(kind, layers=2, bidi=bidi, seed=3)
    X = inputs(seed=8, shape=(T, D))
    check_parity(mod, X, None, f"{kind} single bidi={bidi}")


@pytest.mark.parametrize("kind", KINDS)
def test_parity_float32(kind):
    """A float32 module gives a float32 model, equal to torch in float32 up to float32
    round-off (see RTOL32)."""
    mod = make_module(kind, layers=2, bidi=True, dtype=torch.float32, seed=4)
    model = rk.from_torch(mod, return_state=True)
    assert model.dtype == np.float32
    X = inputs(seed=9)
    X = padded(X, LENGTHS)
    out, states = model.forward(X, LENGTHS)
    assert out.dtype == np.float32
    R = np.random.default_rng(2).standard_normal(out.shape).astype(np.float32)
    dX = model.backward(R)
    t_out, t_h, t_c, t_grads, t_dX = run_torch(mod, X.astype(np.float32), R, LENGTHS)
    close(out, t_out, "float32 output", RTOL32, ATOL32)
    h, c = torch_states(states, 2, True, kind == "lstm")
    close(h, t_h, "float32 h_n", RTOL32, ATOL32)
    if c is not None:
        close(c, t_c, "float32 c_n", RTOL32, ATOL32)
    close(dX, t_dX, "float32 dX", RTOL32, ATOL32)
    g = model.gradients()
    close(g["1.W_h_reverse"], t_grads["weight_hh_l1_reverse"], "float32 dW_h", RTOL32, ATOL32)
    close(g["0.W_x"], t_grads["weight_ih_l0"], "float32 dW_x", RTOL32, ATOL32)


def test_worst_error_report():
    """Runs last in this file: how many parity cases ran and the worst relative error. Run
    alone (or first, with random order) it makes one stacked bidirectional padded case of
    each kind itself, so that it always has errors to judge."""
    for kind in KINDS:
        seen = len(ERRORS_SEEN)
        X = padded(inputs(seed=7), LENGTHS)
        check_parity(make_module(kind, 3, True, True, seed=7), X, LENGTHS, f"{kind} report")
        assert len(ERRORS_SEEN) > seen  # the check recorded its arrays
    print(f"\n{len(CASES)} float64 parity cases ({len(ERRORS_SEEN)} arrays compared), "
          f"worst relative error {max(ERRORS_SEEN):.2e}")
    assert max(ERRORS_SEEN) < RTOL
