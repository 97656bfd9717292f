"""The gradient-flow report: per layer and direction, the numbers, the verdict and why.

Verdict (documented thresholds). Let ``g^{(T)}_t`` be the gradient that the loss at the last
step sends to ``h_t`` (for a last-step loss, the whole gradient), and
``r_k = log10(‖g^{(T)}_{T-k}‖ / ‖g^{(T)}_T‖)`` its size ``k`` steps back, as a geometric mean
over the batch. Going back from ``k = 0``:

- the first ``k`` where ``r_k < -3`` (the gradient fell below 1e-3 of its value at ``T``):
  **vanishing**;
- the first ``k`` where ``r_k > +3`` (it grew above 1e3 times its value at ``T``):
  **exploding**;
- neither over the whole sequence: **healthy**.

The **horizon** ("effective memory") is the number of steps, ending at ``T``, over which
``|r_k| <= 3``: ``T`` for a healthy layer. The **rate** is the least-squares slope of
``ln(‖g^{(T)}_{T-k}‖ / ‖g^{(T)}_T‖)`` against ``k``: the natural log of the factor by which
the gradient changes per step back (``log 0.5`` for ``W_h = 0.5·orthogonal`` and σ = id). The
leading Lyapunov exponent ``λ_1`` is the same rate for the worst-case direction, measured from
the Jacobians alone; ``ln(1e3) / -λ_1`` predicts the horizon of a longer sequence.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

FACTOR_LOG10 = 3.0  # the verdict's and the horizon's factor: 1e3 either way
LN10 = math.log(10.0)
SEVERITY = {"healthy": 0, "vanishing": 1, "exploding": 2}


@dataclass
class DirectionFlow:
    """Gradient flow of one layer in one direction. Series are indexed by step ``t = 1..T``
    (position ``t - 1``) except ``log10_grad_from_end``, indexed by steps back ``k``.

    Attributes:
        log10_grad_norm: log10 of the batch mean of ``‖∂L/∂h_t‖`` (total gradient).
        log10_grad_q10, log10_grad_q90: its 10% and 90% quantiles over the batch.
        log10_grad_from_end: ``r_k`` of the module docstring, ``k = 0..T-1``.
        jacobian_norm: ``‖J_t‖_2``, mean over the sampled sequences.
        log10_product_norm: ``log10 ‖∂s_T/∂s_t‖_2 = log10 ‖J_T ⋯ J_{t+1}‖_2`` (geometric mean).
        lyapunov: Lyapunov exponents of the Jacobian product, per step, descending.
        log10_grad_h0: log10 of the batch mean of ``‖∂L/∂s_0‖`` (the initial state).
        singular_values: of ``W_h (G·H, H)``; ``spectral_radius``: max ``|eig|`` of its
            ``(H, H)`` blocks (``gate_spectral_radius`` per block); ``gate_singular_values``:
            of each block. For a gated cell the stacked matrix's singular values are not the
            blocks' (four orthogonal blocks: radius 1 each, every stacked singular value 2).
        saturation: fractions of unit-steps (``dead``: of units per sequence); see
            ``jacobians.py`` for the thresholds.
        dead_share: the share of the batch's sequences whose last-step gradient becomes
            exactly zero going back (a relu layer with every unit off at one step); they
            are left out of ``log10_grad_from_end`` and so of the verdict, unless all are.
        lyapunov_samples: how many of the sampled sequences ``lyapunov`` averages: those
            whose Jacobian product is not exactly zero (all of them if none is left).
    """

    layer: int
    direction: str
    cell: str
    hidden: int
    steps: int
    log10_grad_norm: np.ndarray
    log10_grad_q10: np.ndarray
    log10_grad_q90: np.ndarray
    log10_grad_from_end: np.ndarray
    jacobian_norm: np.ndarray
    log10_product_norm: np.ndarray
    lyapunov: np.ndarray
    log10_grad_h0: float
    singular_values: np.ndarray
    spectral_radius: float
    gate_spectral_radius: dict[str, float]
    gate_singular_values: dict[str, np.ndarray]
    saturation: dict[str, float]
    dead_share: float = 0.0
    lyapunov_samples: int = 0
    horizon: int = 0
    rate: float = 0.0
    verdict: str = "healthy"
    reason: str = ""

    @property
    def name(self) -> str:
        return f"{self.layer}:{self.cell}" + ("/rev" if self.direction == "reverse" else "")

    def to_dict(self) -> dict[str, Any]:
        return {k: _plain(v) for k, v in self.__dict__.items()}


def log_mean_exp(x: np.ndarray, axis: int) -> np.ndarray:
    """``log mean exp(x)`` along ``axis``, ``-inf`` where every entry is ``-inf``."""
    top = np.max(x, axis=axis, keepdims=True)
    top0 = np.where(np.isfinite(top), top, 0.0)
    mean = np.mean(np.exp(x - top0), axis=axis, keepdims=True)
    out = np.full(mean.shape, -np.inf)
    pos = mean > 0
    out[pos] = (top0 + np.log(np.where(pos, mean, 1.0)))[pos]
    return np.squeeze(out, axis=axis)


def summarise(*, log_grad: np.ndarray, log_grad_end: np.ndarray, last: np.ndarray,
              valid: np.ndarray, log_product_norm: np.ndarray, log_grad_s0: np.ndarray,
              **fields: Any) -> DirectionFlow:
    """Reduce the per-sequence logs of ``flow.backward_flow`` to a ``DirectionFlow`` and judge
    it (module docstring)."""
    T, B = log_grad.shape
    masked = np.where(valid, log_grad, -np.inf)
    q10, q90 = (np.quantile(masked, q, axis=1, method="nearest") / LN10 for q in (0.1, 0.9))
    ref = log_grad_end[last, np.arange(B)]
    use = np.isfinite(ref)  # a sequence whose loss gradient is exactly 0 says nothing
    rel = np.full((T, B), np.nan)
    for b in np.flatnonzero(use):  # align every sequence on its own last step
        k = np.arange(last[b] + 1)
        rel[k, b] = log_grad_end[last[b] - k, b] - ref[b]
    # A dead sequence: its gradient becomes exactly zero going back (every relu unit off at
    # one step). Its log is -inf, which would make the geometric mean -inf and the verdict
    # "vanishing" for the whole batch; it is counted and left out, unless all are dead.
    dead = use & np.any(np.isneginf(rel), axis=0)
    keep = use & ~dead if (use & ~dead).any() else use
    rel[:, ~keep] = np.nan
    have = ~np.isnan(rel)
    rel_mean = np.where(have, rel, 0.0).sum(axis=1) / np.maximum(have.sum(axis=1), 1)
    rel_mean = np.where(have.any(axis=1), rel_mean, np.nan) / LN10
    flow = DirectionFlow(
        steps=T, log10_grad_norm=log_mean_exp(masked, 1) / LN10, log10_grad_q10=q10,
        log10_grad_q90=q90, log10_grad_from_end=rel_mean,
        log10_product_norm=log_product_norm / LN10,
        log10_grad_h0=float(log_mean_exp(log_grad_s0, 0) / LN10),
        dead_share=float(dead.sum() / B), **fields)
    return judge(flow)


def judge(flow: DirectionFlow) -> DirectionFlow:
    """Set ``horizon``, ``rate``, ``verdict`` and ``reason`` from ``log10_grad_from_end``."""
    r = flow.log10_grad_from_end
    finite = np.isfinite(r)
    k_all = np.arange(len(r))
    out = ~finite | (np.abs(np.where(finite, r, 0.0)) > FACTOR_LOG10)
    out &= ~np.isnan(r)  # NaN: no sequence that long; -inf: the gradient is exactly zero
    first = int(np.argmax(out)) if out.any() else None
    ks, rs = k_all[finite], r[finite] * LN10
    flow.rate = float(np.polyfit(ks, rs, 1)[0]) if len(ks) >= 2 else 0.0
    numbers = (f"rate {flow.rate:+.3g}/step; {_lyapunov_text(flow)}; "
               f"ρ(W_h) {flow.spectral_radius:.3g}")
    if 0 < flow.dead_share < 1:
        numbers += (f"; {flow.dead_share:.0%} of the sequences are dead (their gradient is "
                    f"exactly zero some steps back, e.g. every relu unit off at one step) and "
                    f"are left out")
    if first is None:
        flow.verdict, flow.horizon = "healthy", int(np.sum(~np.isnan(r)))
        flow.reason = (f"the last step's gradient stays within 1e±{FACTOR_LOG10:g} of its value "
                       f"at T over all {flow.horizon} steps; {numbers}")
        return flow
    flow.horizon = first
    grew = finite[first] and r[first] > 0
    flow.verdict = "exploding" if grew else "vanishing"
    if not finite[first]:
        where = f"{first} steps back the last step's gradient is exactly zero in every sequence"
    else:
        size = "above 1e+" if grew else "below 1e-"
        where = (f"{first} steps back the last step's gradient is {size}{FACTOR_LOG10:g} times "
                 f"its value at T (10^{r[first]:.3g})")
    flow.reason = f"{where}; {numbers}"
    return flow


def _lyapunov_text(flow: DirectionFlow) -> str:
    """λ1 in words: a rate that agrees with the verdict's direction, or why it may not."""
    lam = float(flow.lyapunov[0]) if len(flow.lyapunov) else float("nan")
    if not np.isfinite(lam):
        return (f"Lyapunov λ1 {lam}: the Jacobian product over all {flow.steps} steps is "
                f"exactly zero in every sampled sequence")
    if lam == 0:
        return "Lyapunov λ1 0/step (the leading direction neither shrinks nor grows)"
    steps = math.log(10**FACTOR_LOG10) / abs(lam)
    way = "shrinks" if lam < 0 else "grows"
    return (f"Lyapunov λ1 {lam:+.3g}/step over {flow.lyapunov_samples} sampled sequences (the "
            f"leading direction of the whole product {way} 1e{FACTOR_LOG10:g}-fold in "
            f"{steps:.3g} steps)")


@dataclass
class GradientFlowReport:
    """What ``gradient_flow`` returns: one ``DirectionFlow`` per recurrent layer and direction.

    ``verdict`` is the worst of theirs (exploding, then vanishing, then healthy)."""

    flows: list[DirectionFlow]
    loss: float
    every_step: bool
    thresholds: dict[str, float] = field(default_factory=lambda: {
        "factor_log10": FACTOR_LOG10, "saturated_derivative": 0.01, "gate_stuck": 0.01})

    @property
    def verdict(self) -> str:
        return max((f.verdict for f in self.flows), key=SEVERITY.__getitem__)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types; ``None`` stands for ``-inf`` (an exactly zero gradient) or NaN."""
        return {"verdict": self.verdict, "loss": _plain(self.loss),
                "loss_on": "every_step" if self.every_step else "last_step",
                "thresholds": self.thresholds, "flows": [f.to_dict() for f in self.flows]}

    def to_json(self, indent: int | None = 1) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def summary(self) -> str:
        """A short text table, one row per layer and direction, then the reasons. ``ρ(W_h)``
        and ``σmax`` are the largest over ``W_h``'s ``(H, H)`` gate blocks; ``sat`` the
        largest saturation fraction; ``dead`` the share of dead sequences."""
        w = max([14, *(len(f.name) + 2 for f in self.flows)])
        head = (f"{'layer':<{w}}{'T':>6}{'|dL/dh_1|':>11}{'|dL/dh_T|':>11}{'mean|J|':>9}"
                f"{'λ1':>8}{'ρ(W_h)':>8}{'σmax':>7}{'sat':>6}{'dead':>6}{'horizon':>8}  verdict")
        rows = [head, "-" * len(head)]
        for f in self.flows:
            sat = max(f.saturation.values(), default=0.0)
            lam = f.lyapunov[0] if len(f.lyapunov) else float("nan")
            sigma = max(float(v[0]) for v in f.gate_singular_values.values())  # as ρ: per block
            rows.append(f"{f.name:<{w}}{f.steps:>6}{_e(f.log10_grad_norm[0]):>11}"
                        f"{_e(f.log10_grad_norm[-1]):>11} {np.nanmean(f.jacobian_norm):>8.3g}"
                        f" {lam:>7.3g} {f.spectral_radius:>7.3g} {sigma:>6.3g}"
                        f"{sat:>6.0%}{f.dead_share:>6.0%}{f.horizon:>8}  {f.verdict}")
        rows.append("")
        rows += [f"{f.name}: {f.verdict}: {f.reason}" for f in self.flows]
        rows.append(f"verdict: {self.verdict} (loss {self.loss:.4g}, on "
                    f"{'every step' if self.every_step else 'the last step'})")
        return "\n".join(rows)

    def plot(self, path: str) -> None:
        """Write a PNG: gradient norm per step, Jacobian and product norms, W_h spectrum."""
        from .plots import plot_report

        plot_report(self.flows, self.verdict, self.every_step, path)


def _e(log10: float) -> str:
    """``10**log10`` as ``1.2e-45`` even far outside float64's range; ``0`` for ``-inf``."""
    if not np.isfinite(log10):
        return "0" if log10 < 0 else "nan"
    exp = math.floor(log10)
    return f"{10 ** (log10 - exp):.1f}e{exp:+d}"


def _plain(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (np.ndarray, list, tuple)):
        return [_plain(x) for x in np.asarray(v).tolist()]
    if isinstance(v, (float, np.floating)):
        return float(v) if np.isfinite(v) else None
    if isinstance(v, np.integer):
        return int(v)
    return v
