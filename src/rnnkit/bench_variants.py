"""Benchmark of the regularisation and cell variants: ``rnnkit bench --variants``.

A training step (forward with the training masks, backward, every gradient) of each variant
against the plain cell of the same size (the ratio the issue targets at most 1.3x) and against
PyTorch's nearest equivalent, same process, same protocol as ``rnnkit.bench`` (alternating
blocks after a pause, medians). PyTorch's nearest: ``nn.LSTM(proj_size=)`` for the
projection, ``nn.Dropout`` before ``nn.LSTM`` for input dropout; for the rest (recurrent
dropout, zoneout, layer norm) the loop over ``nn.LSTMCell`` / ``GRUCell`` / ``RNNCell`` that
PyTorch users write (layer norm: ``nn.LayerNorm`` on the input and recurrent parts and on
``c``, as Ba et al.), eager. Peepholes have no PyTorch counterpart.

``python -m rnnkit.bench_variants [--sizes small,medium,large] [--only zoneout,...] [--reps N]
[--json]``.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np

from .bench import SIZES, _block, blas_threads, machine

VARIANTS: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "lstm": [("dropout", {"dropout": 0.25}), ("recurrent_dropout", {"recurrent_dropout": 0.25}),
             ("zoneout", {"zoneout": 0.1}), ("layer_norm", {"layer_norm": True}),
             ("peepholes", {"peepholes": True}), ("proj_size", {"proj_size": None})],
    "gru": [("recurrent_dropout", {"recurrent_dropout": 0.25}), ("zoneout", {"zoneout": 0.1}),
            ("layer_norm", {"layer_norm": True})],
    "rnn": [("recurrent_dropout", {"recurrent_dropout": 0.25}), ("zoneout", {"zoneout": 0.1})],
}


def _ours(cell: str, options: dict[str, Any], size: tuple, dtype: str):
    import rnnkit as rk
    from rnnkit.noise import Noise

    B, T, D, H = size
    cls = {"rnn": rk.RNN, "lstm": rk.LSTM, "gru": rk.GRU}[cell]
    model = rk.Sequential([cls(H, return_sequences=True, **options)], seed=0, dtype=dtype)
    model.build(D)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((B, T, D)).astype(dtype)
    R = rng.standard_normal((B, T, model.layers[0].out_hidden)).astype(dtype)
    noise = Noise(key=1) if model.stochastic else None

    def step():
        model.zero_grad()
        model.forward(X, noise=noise)
        model.backward(R)
    return step


def _theirs(cell: str, name: str, options: dict[str, Any], size: tuple, dtype: str):
    """PyTorch's nearest training step, or None (peepholes)."""
    import torch

    B, T, D, H = size
    tdt = getattr(torch, dtype)
    X = torch.randn(B, T, D, dtype=tdt, requires_grad=True)
    if name in ("dropout", "proj_size"):
        kw = {"proj_size": options["proj_size"]} if name == "proj_size" else {}
        mod = getattr(torch.nn, cell.upper())(D, H, batch_first=True, dtype=tdt, **kw)
        drop = torch.nn.Dropout(options.get("dropout", 0.0))
        R = torch.randn(B, T, kw.get("proj_size") or H, dtype=tdt)

        def step():
            mod.zero_grad()
            X.grad = None
            out, _ = mod(drop(X))
            (out * R).sum().backward()
        return step
    if name == "peepholes":
        return None
    kind = {"lstm": torch.nn.LSTMCell, "gru": torch.nn.GRUCell, "rnn": torch.nn.RNNCell}[cell]
    mod = kind(D, H, dtype=tdt)
    G = {"lstm": 4, "gru": 3, "rnn": 1}[cell]
    lns = [torch.nn.LayerNorm(n, dtype=tdt) for n in (G * H, G * H, H)]
    R = torch.randn(T, B, H, dtype=tdt)
    p_r, p_z = options.get("recurrent_dropout", 0.0), options.get("zoneout", 0.0)

    def step():
        mod.zero_grad()
        X.grad = None
        h = torch.zeros(B, H, dtype=tdt)
        c = torch.zeros(B, H, dtype=tdt)
        r = (torch.rand(B, H, dtype=tdt) >= p_r).to(tdt) / (1 - p_r) if p_r else None
        loss = 0.0
        for t in range(T):
            x_t, h_in = X[:, t], h if r is None else h * r
            if name == "layer_norm":
                z = (lns[0](x_t @ mod.weight_ih.T) + lns[1](h_in @ mod.weight_hh.T)
                     + mod.bias_ih + mod.bias_hh)
                if cell == "lstm":
                    i, f, g, o = z.chunk(4, 1)
                    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                    h = torch.sigmoid(o) * torch.tanh(lns[2](c))
                else:  # GRU: the cell's equations on the normalised parts
                    xr, xu, xn = (lns[0](x_t @ mod.weight_ih.T) + mod.bias_ih).chunk(3, 1)
                    hr, hu, hn = (lns[1](h_in @ mod.weight_hh.T) + mod.bias_hh).chunk(3, 1)
                    rr, u = torch.sigmoid(xr + hr), torch.sigmoid(xu + hu)
                    h = (1 - u) * torch.tanh(xn + rr * hn) + u * h
            elif cell == "lstm":
                h_new, c_new = mod(x_t, (h_in, c))
                if p_z:
                    zh = (torch.rand(B, H, dtype=tdt) < p_z).to(tdt)
                    zc = (torch.rand(B, H, dtype=tdt) < p_z).to(tdt)
                    h_new, c_new = zh * h + (1 - zh) * h_new, zc * c + (1 - zc) * c_new
                h, c = h_new, c_new
            else:
                h_new = mod(x_t, h_in)
                if p_z:
                    zh = (torch.rand(B, H, dtype=tdt) < p_z).to(tdt)
                    h_new = zh * h + (1 - zh) * h_new
                h = h_new
            loss = loss + (h * R[t]).sum()
        loss.backward()
    return step


def run(cells: list[str], sizes: list[str], reps: int, dtype: str, with_torch: bool,
        only: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """The rows of the table; ``only``: these variants (all when empty)."""
    rows = []
    for cell in cells:
        for size_name in sizes:
            size = SIZES[size_name]
            plain = _ours(cell, {}, size, dtype)
            for name, options in VARIANTS[cell]:
                if only and name not in only:
                    continue
                if name == "proj_size":
                    options = {"proj_size": size[3] // 2}
                ours = _ours(cell, options, size, dtype)
                theirs = _theirs(cell, name, options, size, dtype) if with_torch else None
                fns = [f for f in (ours, plain, theirs) if f is not None]
                for fn in fns:
                    fn()
                times: list[list[float]] = [[] for _ in fns]
                for _ in range(reps):
                    for k, fn in enumerate(fns):
                        times[k] += _block(fn)
                ms = [float(np.median(t)) * 1e3 for t in times]
                t_ms = ms[2] if theirs is not None else None
                rows.append({"cell": cell, "variant": name, "size": size_name, "B": size[0],
                             "T": size[1], "D": size[2], "H": size[3], "dtype": dtype,
                             "rnnkit_ms": ms[0], "plain_ms": ms[1],
                             "variant_over_plain": ms[0] / ms[1], "torch_ms": t_ms,
                             "torch_over_rnnkit": t_ms / ms[0] if t_ms else None})
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| cell | variant | size | rnnkit ms | plain ms | variant/plain | torch ms | "
             "torch/rnnkit |", "|" + "---|" * 8]
    for r in rows:
        t = "-" if r["torch_ms"] is None else f"{r['torch_ms']:.2f}"
        q = "-" if r["torch_over_rnnkit"] is None else f"{r['torch_over_rnnkit']:.2f}"
        lines.append(f"| {r['cell']} | {r['variant']} | {r['size']} | {r['rnnkit_ms']:.2f} | "
                     f"{r['plain_ms']:.2f} | {r['variant_over_plain']:.2f} | {t} | {q} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="rnnkit bench --variants",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--variants", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--cells", default="lstm,gru,rnn")
    ap.add_argument("--sizes", default="small,medium,large")
    ap.add_argument("--only", default="", help="these variants only (comma-separated)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    cells = [c for c in args.cells.split(",") if c]
    sizes = [s for s in args.sizes.split(",") if s]
    only = tuple(v for v in args.only.split(",") if v)
    names = {n for rows in VARIANTS.values() for n, _ in rows}
    bad = ([c for c in cells if c not in VARIANTS] + [s for s in sizes if s not in SIZES]
           + [v for v in only if v not in names])
    if bad or args.reps < 1:
        ap.error(f"--cells: {', '.join(VARIANTS)}; --sizes: {', '.join(SIZES)}; --only: "
                 f"{', '.join(sorted(names))}; --reps >= 1; got {bad or args.reps}")
    with_torch = not args.no_torch
    threads = blas_threads()
    if with_torch:
        try:
            import torch
        except ImportError:
            with_torch = False
        else:
            torch.set_num_threads(threads)
    from . import kernels

    kernels.set_num_threads(threads)
    rows = run(cells, sizes, args.reps, args.dtype, with_torch, only)
    if args.json:
        print(json.dumps({"machine": machine(), "threads": threads, "rows": rows}, indent=1))
    else:
        print(", ".join(f"{k} {v}" for k, v in machine().items() if v is not None))
        print(format_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
