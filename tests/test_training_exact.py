"""The training loop's semantics against independent computations: truncated BPTT carries
the state (not the gradient) across chunks, and the non-finite step guard looks at the
gradient as well as the loss and counts only steps in a row. Each test here was written for a
one-line bug the rest of the suite let through (issue 21, F)."""

import numpy as np
import pytest

import rnnkit as rk


def test_tbptt_equals_chunks_run_by_hand_with_the_state_carried():
    """One epoch of SGD with tbptt=4 on one batch of T=10: three chunks (4, 4, 2), each a
    forward from the state the previous chunk ended in, a backward inside the chunk and an
    SGD step. Done by hand on a copy, the weights and the epoch's loss must be the same."""
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((3, 10, 2)), rng.standard_normal((3, 10, 1))
    model = rk.Sequential([rk.GRU(4, return_sequences=True), rk.LSTM(3, return_sequences=True),
                           rk.Dense(1)], dtype="float64", seed=1)
    model.build(2)
    hand = model.copy()
    history = model.fit(X, Y, loss="mse", optimizer=rk.SGD(0.5), epochs=1, batch_size=3,
                        shuffle=False, tbptt=4)
    x, _, _ = hand.prepare(X)
    state, losses = None, []
    for s in range(0, 10, 4):
        out, tape, state = hand.run(x[s : s + 4], None, state)
        value, d = rk.losses.mse(out.swapaxes(0, 1), Y[:, s : s + 4])
        hand.zero_grad()
        hand.backprop(tape, d.swapaxes(0, 1))
        for name, p in hand.parameters().items():
            p -= 0.5 * hand.gradients()[name]
        losses.append(value)
    for name, p in model.parameters().items():
        np.testing.assert_allclose(p, hand.parameters()[name], rtol=1e-12, atol=1e-14)
    assert history["loss"][0] == pytest.approx(np.mean(losses), rel=1e-12)
    # and the carried state matters here: the chunks from a zero state give other weights
    fresh = model.copy()
    out, _, _ = fresh.run(x[4:8], None, None)
    carried, _, _ = fresh.run(x[4:8], None, fresh.run(x[:4], None, None)[2])
    assert not np.allclose(out, carried)


class _Scripted:
    """A loss that is mse, except on the calls listed in ``bad``: there its value stays
    finite but its gradient is infinite (what an overflow inside the backward pass gives)."""

    __name__ = "scripted"

    def __init__(self, bad):
        self.bad, self.calls = set(bad), 0

    def __call__(self, out, y, mask=None):
        value, d = rk.losses.mse(out, y, mask)
        self.calls += 1
        if self.calls in self.bad:
            d = np.full_like(d, np.inf)
        return value, d


def _fit(loss, **options):
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((8, 5, 2)), rng.standard_normal((8, 1))
    model = rk.Sequential([rk.RNN(3), rk.Dense(1)], dtype="float64", seed=0)
    model.build(2)
    start = {k: v.copy() for k, v in model.parameters().items()}
    history = model.fit(X, y, loss=loss, optimizer=rk.SGD(0.1), batch_size=1, shuffle=False,
                        **options)
    return model, start, history


def test_a_step_with_a_finite_loss_but_an_infinite_gradient_is_skipped():
    model, start, history = _fit(_Scripted(bad=range(1, 9)), epochs=1,
                                 callbacks=[rk.NaNGuard(max_in_row=100)])
    for k, v in model.parameters().items():  # every step was bad: nothing was applied
        np.testing.assert_array_equal(v, start[k])
    assert "could be applied" in history.stop_reason


def test_the_guard_counts_only_bad_steps_in_a_row():
    """Every other step is bad: never two in a row, so max_in_row=2 never stops the run; the
    history counts the 4 skipped steps of each epoch."""
    _, _, history = _fit(_Scripted(bad=range(1, 17, 2)), epochs=2,
                         callbacks=[rk.NaNGuard(max_in_row=2)])
    assert history.stop_reason is None and len(history) == 2
    assert history["skipped"] == [4, 4]
    _, _, history = _fit(_Scripted(bad=[3, 4]), epochs=1, callbacks=[rk.NaNGuard(max_in_row=2)])
    assert history.stop_reason.startswith("stopped: 2 steps in a row")
