"""Benchmark: rnnkit against PyTorch (when installed) on the same inputs, same process.

``python -m rnnkit.bench [--quick] [--json] [--cells rnn,lstm,gru] [--modes train,infer,stream]
[--sizes tiny,...] [--reps N] [--threads N] [--load N]``; ``main(argv) -> int`` is what
``rnnkit bench`` calls. The report starts with the machine: the CPU, the CPUs this process may
use, the system, and the versions of Python, rnnkit, NumPy, numba and torch (``"machine"`` in
the JSON); then what the kernels are compiled for (the target CPU, its vector width, the
micro-kernel's tiles: ``"target"``) and the machine's load (``os.getloadavg``, ``"load"``),
with a warning when the machine is busy: timings then say little, ratios measured in one
process a little more.

``--threads N``: both sides on N threads (rnnkit's, NumPy's BLAS, torch's); default: as many
as NumPy's BLAS has. ``--load N``: N busy processes (a Python loop each) run beside the
benchmark, as other work on a shared machine would; they are stopped when it ends, on Ctrl-C
or an error too, and end by themselves if this process dies.

Modes: ``train`` = forward, backward and every gradient (``dX`` included; torch:
``(out * R).sum().backward()``), ``infer`` = forward only (torch under ``no_grad``), ``stream`` =
one time step with B=1 and the state carried (rnnkit: ``model.stream().step(x_t)``, the
public streaming API, input checks included; torch: ``module(x_t, h)``), timed over 100
consecutive steps and given per step.

FLOPs of a case (multiply-adds x 2, elementwise work ignored), with G = 1 (rnn), 4 (lstm),
3 (gru)::

    infer  = 2 * T * B * G*H * (D + H)       # input projection + recurrence
    train  = 3 * infer                       # backward: dX, dW_x, dW_h and dh_{t-1}
    stream = 2 * G*H * (D + H)               # per step

"of limit" = FLOPs / (time * the GEMM throughput of the case): the best of 7 timings, after a
warm-up, with the same threads, of one GEMM with the case's dtype and the shape of all its
products stacked into one, ``(T*B, D+H) @ (D+H, G*H)``, by NumPy's BLAS or by rnnkit's own
product, whichever is faster (the most a product of these FLOPs gets on this machine; it
counts only the FLOPs above, so elementwise work and the sequential dependency make 100%
unreachable). The limit is measured per (cell, size)
and reported in the JSON (``limit_gflops``). The report ends with the geometric mean of
torch/rnnkit and what it would be with every product-bound case (at ``PRODUCT_BOUND`` of its
limit or more) at 100% of the limit (``summary``; ``"summary"`` in the JSON): how far faster
products alone could take the run.
Peak memory of a train step: a fresh subprocess per side (glibc's ``MALLOC_MMAP_THRESHOLD_``
fixed at 128 KiB, so that freed arrays leave the resident set) runs one step of the case (so
that compiled code and worker threads exist), resets its peak resident set
(``/proc/self/clear_refs``), and reports the growth of the peak (``VmHWM``) over the resident
set (``VmRSS``) during a second step (Linux only; tracemalloc cannot see torch's allocator,
so the same method is used for both sides); rnnkit's tracemalloc peak is also given.
Timings alternate blocks: ``reps`` rounds of [pause, one untimed call, 3 timed calls of
rnnkit; pause, the same for torch], medians over all timed calls. The pause matters: both
libraries keep worker threads spinning for a while after a call (OpenMP in torch, OpenBLAS in
NumPy), and on 2 cores the other side's spinning threads would steal the CPU; measured call
by call, alternately, small cases ran up to 10x slower than either library alone.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
import tracemalloc
from typing import Any

import numpy as np

SIZES = {"tiny": (1, 100, 8, 32), "small": (16, 100, 16, 64), "medium": (32, 100, 32, 128),
         "large": (64, 100, 128, 512), "long": (1, 1000, 1, 64),
         # sizes the kernels were not tuned on (issue 22), a large batch and a wide layer
         "wide": (128, 50, 64, 256), "batch": (256, 200, 32, 128), "b512": (512, 50, 32, 128),
         "h1024": (16, 50, 64, 1024)}
GATES = {"rnn": 1, "lstm": 4, "gru": 3}
MODES = ("train", "infer", "stream")
QUICK = ("tiny", "small", "long")
STREAM_STEPS = 100


def blas_threads() -> int:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return os.cpu_count() or 1
    counts = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
    return max(counts) if counts else os.cpu_count() or 1


def blas_kernel() -> str:
    """The BLAS and its kernel (``openblas Haswell``) as threadpoolctl reports them."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown"
    found = [f"{i['internal_api']} {i.get('architecture')}" for i in threadpool_info()
             if i["user_api"] == "blas"]
    return ", ".join(found) or "unknown"


def usable_cpus() -> int:
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity else (os.cpu_count() or 1)


def machine_load() -> dict[str, Any]:
    """The load averages over 1 and 5 minutes, the CPUs this process may use, and whether the
    machine is busy: a 1-minute load of half its CPUs or more (other work then takes CPU time
    from both sides, unevenly)."""
    try:
        one, five, _ = os.getloadavg()
    except (OSError, AttributeError):  # not on Windows
        return {"load1": None, "load5": None, "cpus": usable_cpus(), "busy": None}
    cpus = usable_cpus()
    return {"load1": round(one, 2), "load5": round(five, 2), "cpus": cpus,
            "busy": one >= 0.5 * cpus}


def kernel_target() -> dict[str, Any]:
    """What the kernels are compiled for (``kernels/_target.py``), or ``{}`` without numba."""
    from . import kernels

    if not kernels.numba_available():
        return {}
    from .kernels import _target

    return _target.describe()


# a busy process: a Python loop that ends when its parent is gone (a killed benchmark)
_BUSY = """
import os
parent = os.getppid()
while os.getppid() == parent:
    for _ in range(1_000_000):
        pass
"""


@contextlib.contextmanager
def busy_processes(n: int) -> Any:
    """``n`` busy processes for the block's duration (``--load``), stopped after it whatever
    happens. In a session of their own: a Ctrl-C reaches the benchmark, which stops them."""
    procs: list[subprocess.Popen] = []
    try:
        for _ in range(n):
            procs.append(subprocess.Popen([sys.executable, "-c", _BUSY],
                                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL, start_new_session=True))
        yield procs
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()


@contextlib.contextmanager
def blas_limit(threads: int) -> Any:
    """NumPy's BLAS on ``threads`` threads in the block (threadpoolctl, when installed)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=threads, user_api="blas"):
        yield


def machine() -> dict[str, Any]:
    """What the figures came from: the CPU (``/proc/cpuinfo``'s model name on Linux), the
    CPUs this process may use, the system, and the versions that set the speed."""
    import platform
    from importlib import metadata

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")),
                       cpu)
    except OSError:
        pass
    found = {"cpu": cpu, "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
             else os.cpu_count(), "system": platform.platform(),
             "python": platform.python_version()}
    for name in ("rnnkit", "numpy", "numba", "torch"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def gemm_gflops(m: int, k: int, n: int, dtype: str = "float32", reps: int = 7) -> float:
    """Best-of-``reps`` throughput of ``(m, k) @ (k, n)`` after a warm-up (GFLOP/s), by NumPy's
    BLAS or by rnnkit's own product (``kernels.matmul``), whichever is faster."""
    from . import kernels

    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    out = np.empty((m, n), dtype)
    best = np.inf
    for fn in (lambda: np.matmul(a, b, out=out), lambda: kernels.matmul(a, b, out)):
        for _ in range(3):
            fn()
        best = min(best, *(_timed(fn) for _ in range(reps)))
    return 2 * m * k * n / best / 1e9


_LIMITS: dict[tuple, float] = {}


def case_limit(cell: str, size: tuple, dtype: str) -> float:
    """The GEMM throughput a case is measured against (see the module docstring)."""
    B, T, D, H = size
    key = (cell, size, dtype)
    if key not in _LIMITS:
        _LIMITS[key] = gemm_gflops(T * B, D + H, GATES[cell] * H, dtype)
    return _LIMITS[key]


def sgemm_gflops(n: int = 1024, reps: int = 7) -> float:
    """Square float32 GEMM throughput, for the report's header."""
    return gemm_gflops(n, n, n, "float32", reps)


def flops(cell: str, mode: str, B: int, T: int, D: int, H: int) -> float:
    one = 2.0 * GATES[cell] * H * (D + H)
    return one if mode == "stream" else one * T * B * (3 if mode == "train" else 1)


PAUSE_S = 0.25  # > GNU OpenMP's spin time and Intel OpenMP's 200 ms KMP_BLOCKTIME
BLOCK = 3


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _block(fn) -> list[float]:
    """After a pause (the other side's threads go to sleep) and one untimed call (ours wake
    up), ``BLOCK`` timed calls back to back: the library as a loop in user code sees it."""
    time.sleep(PAUSE_S)
    fn()
    return [_timed(fn) for _ in range(BLOCK)]


def make_case(cell: str, mode: str, size: tuple, dtype: str, with_torch: bool,
              onnx_threads: int = 0):
    """Build both sides with the same weights and inputs → ``(rnnkit_fn, torch_fn)``; with
    ``onnx_threads`` also the ONNX Runtime side, ``(rnnkit_fn, torch_fn, onnx_fn)``."""
    import rnnkit as rk

    B, T, D, H = (1, 1, size[2], size[3]) if mode == "stream" else size
    rng = np.random.default_rng(0)
    X = rng.standard_normal((B, T, D)).astype(dtype)
    R = rng.standard_normal((B, T, H)).astype(dtype)
    layer_cls = {"rnn": rk.RNN, "lstm": rk.LSTM, "gru": rk.GRU}[cell]
    model = rk.Sequential([layer_cls(H, return_sequences=True)], seed=0, dtype=dtype)
    model.build(D)
    if mode == "train":
        def ours():
            model.zero_grad()
            model.forward(X)
            model.backward(R)
    elif mode == "infer":
        def ours():
            model.predict(X)
    else:
        x_t = X[0, 0]  # (D,)

        def ours():
            stream = model.stream()
            for _ in range(STREAM_STEPS):
                stream.step(x_t)
    theirs = _torch_case(cell, mode, model, X, R) if with_torch else None
    if not onnx_threads:
        return ours, theirs
    from .interop import onnx_bench

    return ours, theirs, onnx_bench.case(mode, model, X, onnx_threads, STREAM_STEPS)


def _torch_case(cell: str, mode: str, model: Any, X: np.ndarray, R: np.ndarray):
    import torch

    p = model.parameters()
    H = model.layers[0].hidden
    cls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell]
    m = cls(X.shape[2], H, batch_first=True).to(getattr(torch, str(X.dtype)))
    with torch.no_grad():
        m.weight_ih_l0.copy_(torch.from_numpy(p["0.W_x"]))
        m.weight_hh_l0.copy_(torch.from_numpy(p["0.W_h"]))
        m.bias_ih_l0.copy_(torch.from_numpy(p["0.b"]))
        m.bias_hh_l0.zero_()
        if cell == "gru":
            m.bias_hh_l0[2 * H :] = torch.from_numpy(p["0.b_hn"])
    Xt, Rt = torch.from_numpy(X), torch.from_numpy(R)
    if mode == "train":
        Xt.requires_grad_(True)

        def theirs():
            m.zero_grad()
            Xt.grad = None
            out, _ = m(Xt)
            (out * Rt).sum().backward()
    elif mode == "infer":
        def theirs():
            with torch.no_grad():
                m(Xt)
    else:
        def theirs():
            h = None
            with torch.no_grad():
                for _ in range(STREAM_STEPS):
                    _, h = m(Xt, h)
    return theirs


_MEMORY_SCRIPT = """
import sys
from rnnkit.bench import make_case
def kb(field):
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith(field))
side, cell, B, T, D, H, dtype = sys.argv[1:]
size = (int(B), int(T), int(D), int(H))
ours, theirs = make_case(cell, "train", size, dtype, side == "torch")
fn = ours if side == "rnnkit" else theirs
fn()  # compiled code, worker threads and allocator pools exist before the measured step
if side == "rnnkit":  # the arrays kept for reuse count in the step's memory
    from rnnkit import kernels
    kernels.release_buffers()
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # resets the peak (VmHWM) to the current resident set
rss = kb("VmRSS:")
fn()
print((kb("VmHWM:") - rss) / 1024)
"""


def peak_memory_mb(side: str, cell: str, size: tuple, dtype: str) -> float | None:
    """Growth of the peak resident set over one train step, in a fresh process (MB)."""
    args = [sys.executable, "-c", _MEMORY_SCRIPT, side, cell, *map(str, size), dtype]
    # a fixed mmap threshold: freed arrays leave the resident set, so the second step's peak
    # is its own working memory (glibc would otherwise keep the first step's memory resident)
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"}
    res = subprocess.run(args, capture_output=True, text=True, check=False, env=env)
    return max(0.0, float(res.stdout.strip())) if res.returncode == 0 else None


def tracemalloc_peak_mb(cell: str, size: tuple, dtype: str) -> float:
    ours, _ = make_case(cell, "train", size, dtype, False)
    ours()
    tracemalloc.start()
    ours()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def run_case(cell, mode, name, dtype, reps, with_torch, memory,
             warm_s: float = 0.2, onnx_threads: int = 0) -> dict[str, Any]:
    size = SIZES[name]
    ours, theirs, *rest = make_case(cell, mode, size, dtype, with_torch, onnx_threads)
    ort_fn = rest[0] if rest else None
    for fn in (ours, theirs, ort_fn):  # warm-up: caches, allocator, clocks; >= 3 calls and warm_s
        if fn is not None:
            n, start = 0, time.perf_counter()
            while n < 3 or time.perf_counter() - start < warm_s:
                fn()
                n += 1
    limit = case_limit(cell, size, dtype)
    t_ours, t_theirs, t_ort = [], [], []
    for _ in range(reps):  # alternate, so that machine noise hits both sides alike
        t_ours += _block(ours)
        if theirs is not None:
            t_theirs += _block(theirs)
        if ort_fn is not None:
            t_ort += _block(ort_fn)
    per = STREAM_STEPS if mode == "stream" else 1
    ms = float(np.median(t_ours)) * 1e3 / per
    tms = float(np.median(t_theirs)) * 1e3 / per if t_theirs else None
    oms = float(np.median(t_ort)) * 1e3 / per if t_ort else None
    B, T, D, H = (1, 1, size[2], size[3]) if mode == "stream" else size
    row = {"cell": cell, "mode": mode, "size": name, "B": B, "T": T, "D": D, "H": H,
           "dtype": dtype, "rnnkit_ms": ms, "torch_ms": tms,
           "ratio": tms / ms if tms else None,
           "onnxruntime_ms": oms, "onnxruntime_ratio": oms / ms if oms else None,
           "limit_gflops": limit,
           "limit_fraction": flops(cell, mode, B, T, D, H) / (ms / 1e3) / (limit * 1e9)}
    if memory and mode == "train":
        row["rnnkit_peak_mb"] = peak_memory_mb("rnnkit", cell, size, dtype)
        row["rnnkit_tracemalloc_mb"] = tracemalloc_peak_mb(cell, size, dtype)
        row["torch_peak_mb"] = peak_memory_mb("torch", cell, size, dtype) if with_torch else None
    return row


def _fmt(v: Any, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def format_table(rows: list[dict[str, Any]]) -> str:
    head = ("| cell | mode | size | B | T | D | H | dtype | rnnkit ms | torch ms | torch/rnnkit "
            "| of limit | peak MB rnnkit (tracemalloc) | peak MB torch |")
    with_ort = any(r.get("onnxruntime_ms") for r in rows)
    if with_ort:
        head += " ORT ms | ORT/rnnkit |"
    lines = [head, "|" + "---|" * (16 if with_ort else 14)]
    for r in rows:
        mem = ""
        if "rnnkit_peak_mb" in r:
            mem = (f"{_fmt(r['rnnkit_peak_mb'], '.1f')} "
                   f"({_fmt(r['rnnkit_tracemalloc_mb'], '.1f')})")
        lines.append(
            f"| {r['cell']} | {r['mode']} | {r['size']} | {r['B']} | {r['T']} | {r['D']} | "
            f"{r['H']} | {r['dtype']} | {r['rnnkit_ms']:.3f} | {_fmt(r['torch_ms'], '.3f')} | "
            f"{_fmt(r['ratio'], '.2f')} | {r['limit_fraction']:.1%} | {mem} | "
            f"{_fmt(r.get('torch_peak_mb'), '.1f') if 'rnnkit_peak_mb' in r else ''} |"
            + (f" {_fmt(r.get('onnxruntime_ms'), '.3f')} | "
               f"{_fmt(r.get('onnxruntime_ratio'), '.2f')} |" if with_ort else ""))
    s = summary(rows)
    if s:
        lines.append(f"\ngeometric mean torch/rnnkit: {s['geomean']:.2f} over {s['cases']} "
                     f"cases; min {s['min']:.2f}\nwith the {s['bound_cases']} cases at "
                     f"{PRODUCT_BOUND:.0%} of the limit or more at 100% of it, the others as "
                     f"measured: {s['geomean_at_limit']:.2f}")
    return "\n".join(lines)


#: a case at this share of its GEMM limit or more counts as bound by its products
PRODUCT_BOUND = 0.5


def summary(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The run against PyTorch: ``geomean`` and ``min`` of torch/rnnkit over the ``cases``
    with both sides, and ``geomean_at_limit``, what the geometric mean would be if each of the
    ``bound_cases`` (at ``PRODUCT_BOUND`` of the limit or more) ran at 100% of it, its ratio
    then over "of limit", the others as measured: how far faster products alone could take
    this run. ``None`` without PyTorch."""
    rated = [r for r in rows if r["ratio"]]
    if not rated:
        return None
    ratios = np.array([r["ratio"] for r in rated])
    fraction = np.array([r["limit_fraction"] for r in rated])
    bound = fraction >= PRODUCT_BOUND
    best = np.where(bound, ratios / np.minimum(fraction, 1.0), ratios)
    return {"cases": len(rated), "geomean": float(np.exp(np.log(ratios).mean())),
            "min": float(ratios.min()), "bound_cases": int(bound.sum()),
            "geomean_at_limit": float(np.exp(np.log(best).mean()))}


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def _nonnegative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def _names(ap: argparse.ArgumentParser, flag: str, text: str, known) -> list[str]:
    """A comma list of names out of ``known``, else an error naming the flag."""
    names = text.split(",")
    bad = [n for n in names if n not in known]
    if bad:
        ap.error(f"{flag}: expected a comma list of {', '.join(known)}, got "
                 f"{', '.join(map(repr, bad))}")
    return names


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="rnnkit bench", description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="tiny, small, long and stream only, 2 repetitions: under a minute")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON")
    ap.add_argument("--cells", default="rnn,lstm,gru")
    ap.add_argument("--modes", default="train,infer,stream")
    ap.add_argument("--sizes", default=None, help="comma list of " + ",".join(SIZES))
    ap.add_argument("--reps", type=_positive, default=None,
                    help="repetitions (default 7; quick 2)")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--no-onnx", action="store_true",
                    help="skip the ONNX Runtime column (infer and stream; when installed)")
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    ap.add_argument("--threads", type=_positive, default=None,
                    help="threads of both sides (default: NumPy's BLAS threads)")
    ap.add_argument("--load", type=_nonnegative, default=0, metavar="N",
                    help="N busy processes beside the benchmark, stopped afterwards")
    args = ap.parse_args(argv)
    cells = _names(ap, "--cells", args.cells, tuple(GATES))
    modes = _names(ap, "--modes", args.modes, MODES)
    sizes = (_names(ap, "--sizes", args.sizes, tuple(SIZES)) if args.sizes
             else list(QUICK if args.quick else SIZES))
    reps = args.reps or (2 if args.quick else 7)
    with_torch = not args.no_torch
    threads = args.threads or blas_threads()
    if with_torch:
        try:
            import torch
        except ImportError:
            with_torch = False
        else:
            torch.set_num_threads(threads)
    from . import kernels

    kernels.set_num_threads(threads)
    from .interop import onnx_bench

    onnx_threads = threads if not args.no_onnx and onnx_bench.available() else 0
    quiet = machine_load()  # before the busy processes start
    with blas_limit(threads), busy_processes(args.load):
        limit = sgemm_gflops()
        rows = []
        for cell in cells:
            for mode in modes:
                for name in (["stream"] if mode == "stream" else sizes):
                    size_name = "small" if name == "stream" else name
                    row = run_case(cell, mode, size_name, args.dtype, reps, with_torch,
                                   memory=not args.no_memory and not args.quick,
                                   warm_s=0.05 if args.quick else 0.2,
                                   onnx_threads=onnx_threads if mode != "train" else 0)
                    if mode == "stream":
                        row["size"] = "stream"
                    rows.append(row)
        after = machine_load()
    host, target = machine(), kernel_target()
    load = {"before": quiet, "after": after, "busy_processes": args.load}
    if args.json:
        print(json.dumps({"machine": host, "target": target, "load": load, "threads": threads,
                          "sgemm_gflops": limit, "blas": blas_kernel(),
                          "backend": kernels.get_backend(), "rows": rows,
                          "summary": summary(rows)}, indent=1))
    else:
        print(", ".join(f"{k} {v}" for k, v in host.items() if v is not None))
        if target:
            print(f"kernels for {target['cpu_target']}: {target['vector_bits']}-bit vectors, "
                  f"{target['tiles']} tiles {target['tile']}"
                  + (" (forced by RNNKIT_GEMM_TILES)" if target["forced"] else ""))
        print(f"threads {threads}, sgemm 1024^3 {limit:.1f} GFLOP/s, BLAS {blas_kernel()}, "
              f"backend {kernels.get_backend()}")
        print(load_line(quiet, after, args.load))
        print(format_table(rows))
    return 0


def load_line(before: dict[str, Any], after: dict[str, Any], busy: int) -> str:
    """The header's line on the machine's load, with a warning when it was busy."""
    if before["load1"] is None:
        return "machine load: unknown on this system"
    text = (f"machine load (1 min) {before['load1']:.2f} before, {after['load1']:.2f} after, "
            f"on {before['cpus']} CPUs; {busy} busy processes started by --load")
    if before["busy"]:
        text += ("\nWARNING: the machine was busy before the benchmark started (load "
                 f"{before['load1']:.2f} on {before['cpus']} CPUs): other work takes CPU time "
                 "from both sides, unevenly; the times are not this machine's, compare ratios "
                 "only, or rerun when it is quiet")
    return text


if __name__ == "__main__":
    raise SystemExit(main())
