"""The adding problem (Hochreiter & Schmidhuber 1997, as set up by Arjovsky, Shah & Bengio
2016), trained with ``model.fit`` and explained with ``rk.gradient_flow``.

Each input has two channels: values uniform in [0, 1], and a marker channel that is 1 at
exactly one step of the first half and one step of the second half. The target is the sum of
the two marked values. Predicting the mean 1 gives MSE Var(u1 + u2) = 2/12 = 1/6 ≈ 0.167, so
a model "learns" only when its test MSE goes far below 0.167 — which requires carrying a value
across up to T steps, i.e. a gradient that reaches the early steps.

Run (each run a few minutes on 2 cores; see docs/gradient-flow.md for the table)::

    export OPENBLAS_NUM_THREADS=1   # small GEMMs: threads only add contention
    python examples/adding_problem.py --model lstm
    python examples/adding_problem.py --model tanh
    python examples/adding_problem.py --model irnn            # no clipping: diverges
    python examples/adding_problem.py --model irnn --clip 1   # global-norm clipping: trains
    python examples/adding_problem.py --table                 # collect the results

Each run writes ``<out>/<name>.json`` (history, test MSE, diagnostics) and the model file, and
``docs/img/adding_<name>_flow.png`` (gradient flow of the trained model on test sequences).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

import numpy as np

import rnnkit as rk

BASELINE = 1 / 6  # MSE of always predicting E[u1 + u2] = 1


def adding_data(n: int, T: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``X (n, T, 2)`` float32 and ``y (n, 1)``: one marker in each half of the sequence."""
    values = rng.uniform(0, 1, (n, T))
    first = rng.integers(0, T // 2, n)
    second = rng.integers(T // 2, T, n)
    marks = np.zeros((n, T))
    marks[np.arange(n), first] = 1
    marks[np.arange(n), second] = 1
    X = np.stack([values, marks], axis=-1).astype(np.float32)
    y = (values * marks).sum(axis=1, keepdims=True).astype(np.float32)
    return X, y


def make_model(kind: str, hidden: int, seed: int) -> rk.Sequential:
    """``lstm``; ``tanh``: the spec's layer, orthogonal W_h; ``irnn``: relu with W_h = I
    (Le, Jaitly & Hinton 2015)."""
    if kind == "lstm":
        layer = rk.LSTM(hidden)
    elif kind == "tanh":
        layer = rk.RNN(hidden, activation="tanh", recurrent_init="orthogonal")
    elif kind == "irnn":
        layer = rk.RNN(hidden, activation="relu", recurrent_init="identity")
    else:
        raise ValueError(f"--model must be lstm, tanh or irnn, got {kind!r}")
    return rk.Sequential([layer, rk.Dense(1)], seed=seed)


def run(args: argparse.Namespace) -> dict[str, Any]:
    rng = np.random.default_rng(args.seed)
    X, y = adding_data(args.n_train, args.T, rng)
    Xt, yt = adding_data(args.n_test, args.T, np.random.default_rng(args.seed + 1))
    model = make_model(args.model, args.hidden, args.seed)
    name = args.model + (f"_clip{args.clip:g}" if args.clip else "")
    monitor = rk.GradientFlowMonitor(every=args.monitor_every, X=Xt[:64], y=yt[:64],
                                     max_samples=2)
    start = time.perf_counter()
    history = model.fit(X, y, loss="mse", optimizer=rk.Adam(args.lr), epochs=args.epochs,
                        batch_size=args.batch, clip_norm=args.clip, seed=args.seed,
                        validation_data=(Xt, yt), callbacks=[monitor])
    wall = time.perf_counter() - start
    test_mse = model.evaluate(Xt, yt, loss="mse")["loss"]
    report = rk.gradient_flow(model.copy("float64"), Xt[:128], yt[:128], loss="mse")
    os.makedirs(args.out, exist_ok=True)
    model.save(os.path.join(args.out, f"{name}.safetensors"))
    report.plot(os.path.join(args.img, f"adding_{name}_flow.png"))
    monitor.plot(os.path.join(args.img, f"adding_{name}_monitor.png"))
    flow = report.flows[0]
    result = {
        "name": name, "model": args.model, "hidden": args.hidden, "clip": args.clip,
        "lr": args.lr, "T": args.T, "seed": args.seed, "epochs": len(history),
        "steps": len(history) * -(-args.n_train // args.batch), "wall_s": round(wall, 1),
        "test_mse": test_mse, "stop_reason": history.stop_reason,
        "skipped_steps": int(sum(history["skipped"])),
        "verdict": flow.verdict, "horizon": flow.horizon, "rate": flow.rate,
        "lyapunov": flow.lyapunov[0], "dead_share": flow.dead_share,
        "saturation": flow.saturation,
        "log10_grad_first": flow.log10_grad_norm[0], "log10_grad_last": flow.log10_grad_norm[-1],
        "history": history.to_dict(), "monitor": monitor.to_dict()}
    with open(os.path.join(args.out, f"{name}.json"), "w") as f:
        json.dump(result, f, indent=1, default=float)
    return result


def verdict_path(records: list[dict[str, Any]]) -> str:
    """``healthy (0), vanishing (1–6), healthy (7–20)``: the monitor's verdicts, run-length
    encoded over the epochs."""
    runs: list[list[Any]] = []
    for rec in records:
        if runs and runs[-1][0] == rec["verdict"]:
            runs[-1][2] = rec["epoch"]
        else:
            runs.append([rec["verdict"], rec["epoch"], rec["epoch"]])
    return ", ".join(f"{v} ({a}–{b})" if a != b else f"{v} ({a})" for v, a, b in runs)


def table(out: str) -> str:
    """A Markdown table of every ``<out>/*.json`` result."""
    rows = ["| model | clip | steps | wall time (s) | of which training (s) | test MSE | "
            "verdict (trained) | horizon | ‖∂L/∂h_1‖ / ‖∂L/∂h_T‖ | max ‖∇L‖ | "
            "verdicts during training (epochs) |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for file in sorted(os.listdir(out)):
        if file.endswith(".json"):
            with open(os.path.join(out, file)) as f:
                r = json.load(f)
            ratio = r["log10_grad_first"] - r["log10_grad_last"]
            train = sum(e["time"] for e in r["history"]["epochs"])  # without the monitor
            mse = "diverged (NaN)" if r["test_mse"] is None or not np.isfinite(r["test_mse"]) \
                else f"{r['test_mse']:.4f}"
            rows.append(f"| {r['model']} (H={r['hidden']}) | {r['clip'] or 'none'} | "
                        f"{r['steps']} | {r['wall_s']} | {train:.0f} | {mse} | {r['verdict']} | "
                        f"{r['horizon']} | 1e{ratio:.1f} | "
                        f"{max(e['grad_norm_max'] for e in r['history']['epochs']):.2g} | "
                        f"{verdict_path(r['monitor']['records'])} |")
    return "\n".join(rows)


def compare(out: str, img: str, T: int, seed: int, n_test: int) -> str:
    """One figure and summary for every saved model of ``out``, on the batch each run's own
    report used (the first 128 test sequences), so that the numbers agree with its figure."""
    from rnnkit.diagnostics import GradientFlowReport

    Xt, yt = adding_data(n_test, T, np.random.default_rng(seed + 1))
    Xt, yt = Xt[:128], yt[:128]
    flows, names = [], []
    for file in sorted(os.listdir(out)):
        if file.endswith(".safetensors"):
            flow = rk.gradient_flow(rk.load(os.path.join(out, file)), Xt, yt).flows[0]
            flow.cell = f"{file.removesuffix('.safetensors')} {flow.cell}"
            flows.append(flow)
            names.append(file)
    report = GradientFlowReport(flows, loss=float("nan"), every_step=False)
    report.plot(os.path.join(img, "adding_compare_flow.png"))
    return report.summary()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="lstm", help="lstm | tanh | irnn")
    p.add_argument("--T", type=int, default=100, help="sequence length")
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--clip", type=float, default=None, help="global-norm clipping threshold")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--n-train", type=int, default=10_000)
    p.add_argument("--n-test", type=int, default=1_000)
    p.add_argument("--monitor-every", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=os.path.join("runs", "adding"), help="results, models")
    p.add_argument("--img", default=os.path.join("docs", "img"), help="figures")
    p.add_argument("--table", action="store_true", help="print the table of --out and exit")
    p.add_argument("--compare", action="store_true",
                   help="diagnose every model saved in --out on one test batch, one figure")
    args = p.parse_args()
    if args.table or args.compare:
        print(table(args.out) if args.table else compare(args.out, args.img, args.T, args.seed,
                                                           args.n_test))
        return
    r = run(args)
    print(json.dumps({k: v for k, v in r.items() if k not in ("history", "monitor")},
                     default=float))


if __name__ == "__main__":
    main()
