"""Figures for the gradient-flow report and monitor. Matplotlib is imported here, with the
Agg backend (files only, no display), never at ``import rnnkit``.

The figures take the records, not the report or monitor objects, so that this module
imports nothing from the diagnostics: ``report`` and ``monitor`` call it, never the reverse.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

MARKERS = {"h": "o", "i": "o", "f": "s", "g": "^", "o": "x", "r": "o", "u": "s", "n": "^"}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _powers_of_ten(ax: Any) -> None:
    """Label a log10-valued y axis as 10^k: the values may lie far outside float64's range,
    so they are plotted as logs instead of on a log-scaled axis."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=8))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"$10^{{{v:g}}}$"))


def _finite(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, float)
    return np.where(np.isfinite(v), v, np.nan)  # -inf (exact zero) shows as a gap


def plot_report(flows: Sequence[Any], verdict: str, every_step: bool, path: str) -> None:
    """``flows``: a report's ``DirectionFlow`` records; ``verdict`` and ``every_step`` its own."""
    plt = _pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    (a, b), (c, d) = axes
    for f in flows:
        t = np.arange(1, f.steps + 1)
        label = f"{f.name}: {f.verdict}, horizon {f.horizon}"
        (line,) = a.plot(t, _finite(f.log10_grad_norm), label=label)
        a.fill_between(t, _finite(f.log10_grad_q10), _finite(f.log10_grad_q90),
                       color=line.get_color(), alpha=0.2, linewidth=0)
        b.plot(t, _finite(f.jacobian_norm), color=line.get_color(), label=f.name)
        c.plot(t, _finite(f.log10_product_norm), color=line.get_color(), label=f.name)
        # per (H, H) gate block, like ρ: the stacked (G·H, H) matrix of a gated cell has
        # larger singular values than any block (√4 = 2 for four orthogonal blocks)
        for g, sv in f.gate_singular_values.items():
            block = "W_h" if g == "h" else f"W_{g}"
            d.plot(np.arange(1, len(sv) + 1), sv, MARKERS.get(g, "o"), ms=3,
                   color=line.get_color(),
                   label=f"{f.name} {block}: ρ = {f.gate_spectral_radius[g]:.3g}")
        d.plot([], [], " ", label=f"{f.name}: λ1 = {f.lyapunov[0]:.3g}")
    where = "every step" if every_step else "the last step"
    a.set(title=f"‖∂L/∂h_t‖ reaching each step (loss on {where}; band: 10–90% of batch)",
          xlabel="time step t", ylabel="gradient norm")
    _powers_of_ten(a)
    b.axhline(1, color="gray", lw=0.8, ls="--")
    b.set(title="step Jacobian ‖J_t‖₂ = ‖∂s_t/∂s_{t-1}‖₂", xlabel="time step t",
          ylabel="spectral norm")
    c.set(title="‖∂s_T/∂s_t‖₂ = ‖J_T ⋯ J_{t+1}‖₂", xlabel="time step t", ylabel="norm")
    _powers_of_ten(c)
    d.axhline(1, color="gray", lw=0.8, ls="--")
    d.set(title="singular values of W_h's (H, H) gate blocks", xlabel="index",
          ylabel="singular value")
    d.set_ylim(bottom=0)
    d.ticklabel_format(axis="y", useOffset=False)  # all equal (orthogonal): no 1e-12 offset
    for ax in axes.flat:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"Gradient flow — verdict: {verdict}", fontsize=13)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_monitor(records: Sequence[dict[str, Any]], path: str) -> None:
    """``records``: a ``GradientFlowMonitor``'s, one dict per (epoch, layer, direction)."""
    plt = _pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(12, 7), sharex=True)
    (a, b), (c, d) = axes
    keys = sorted({(r["layer"], r["direction"], r["cell"]) for r in records})
    for layer, direction, cell in keys:
        rs = [r for r in records if (r["layer"], r["direction"]) == (layer, direction)]
        ep = [r["epoch"] for r in rs]
        name = f"{layer}:{cell}" + ("/rev" if direction == "reverse" else "")
        (line,) = a.plot(ep, _finite([r["log10_grad_first"] for r in rs]), "o-", ms=3,
                         label=f"{name} ‖∂L/∂h_1‖")
        a.plot(ep, _finite([r["log10_grad_last"] for r in rs]), "s--", ms=3,
               color=line.get_color(), label=f"{name} ‖∂L/∂h_T‖")
        b.plot(ep, [r["horizon"] for r in rs], "o-", ms=3, color=line.get_color(), label=name)
        c.plot(ep, [r["spectral_radius"] for r in rs], "o-", ms=3, color=line.get_color(),
               label=name)
        for r in rs:
            b.annotate(r["verdict"][0], (r["epoch"], r["horizon"]), fontsize=7,
                       xytext=(2, 3), textcoords="offset points")
    losses = [(r["epoch"], r["loss"]) for r in records if r["loss"] is not None]
    if losses:
        d.plot(*zip(*sorted(set(losses))), "o-", ms=3, color="k")
        d.set_yscale("log")
    a.set(title="gradient at the first and the last step", ylabel="norm")
    _powers_of_ten(a)
    b.set(title="horizon: steps within 1e±3 of ‖∂L/∂h_T‖ (letter: verdict)",
          ylabel="steps")
    c.axhline(1, color="gray", lw=0.8, ls="--")
    c.set(title="spectral radius of W_h", xlabel="epoch", ylabel="ρ(W_h)")
    d.set(title="training loss", xlabel="epoch", ylabel="loss")
    for ax in axes.flat:
        ax.grid(alpha=0.3)
    for ax in (a, b, c):
        ax.legend(fontsize=8)
    fig.suptitle("Gradient flow during training", fontsize=13)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
