"""``rnnkit train``: fit a recurrent model to a dataset and report it against baselines.

Reads the data, splits it (test = the held-out part), trains with progress on stderr, then
writes a run folder (model, config, metrics, history, plots) and prints model vs baselines.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import math
import os
import re
import time
from pathlib import Path
from typing import Any

import rnnkit as rk
from rnnkit import kernels
from rnnkit.distributed import World, bcast_text, world
from rnnkit.errors import MemoryLimitError
from rnnkit.memory import human_bytes
from rnnkit.model import check_memory

from . import (
    forecast_scores,
    runfolder,
    shards,
    sources,
    task_charlm,
    task_classify,
    task_forecasts,
)
from . import settings as st
from .common import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    ProgressDisplay,
    UsageError,
    add_command,
    emit_json,
    history_csv,
    say,
    table,
    warn,
    write_json,
    write_text,
)
from .prepared import Prepared, build_model, build_schedule, describe

TASKS: dict[str, Any] = {
    "forecast": task_forecasts,
    "classify": task_classify,
    "charlm": task_charlm,
}
LOSS_LABELS = {
    "mse": "mean squared error (scaled units)",
    "cross_entropy": "cross-entropy (nats per prediction)",
    "quantile": "pinball loss (scaled units)",
    "gaussian_nll": "Gaussian negative log-likelihood (nats, scaled units)",
}
# into metrics.json when the task has them
EXTRA_RESULTS = ("best", "verdict", "per_step", "intervals", "per_class", "per_target",
                 "per_series", "unit")

EPILOG = """examples:
  rnnkit train                                   # sunspots, LSTM, one-year-ahead forecast
  rnnkit train airline --cell gru --epochs 50
  rnnkit train prices.csv --target close --date day --window 30
  rnnkit train digits --test 0.25
  rnnkit train book.txt --task charlm --hidden 256 --epochs 10
  rnnkit train --config examples/train-sunspots.toml --epochs 20   # flags override the file
"""


def add_parser(sub: Any) -> None:
    p = add_command(sub, "train", "train a model on a dataset", __doc__, EPILOG)
    p.add_argument(
        "data",
        nargs="?",
        metavar="DATA",
        help="bundled dataset (rnnkit datasets), ucr:NAME, .csv, .npz or .txt "
        "file (default: sunspots)",
    )
    p.add_argument("--config", metavar="FILE.toml", help="settings file; flags override it")
    st.add_flags(p)


#: the kernels' name of each cell of the CLI
KERNEL = {"rnn": "elman", "lstm": "lstm", "gru": "gru"}


def run(args: argparse.Namespace) -> int:
    _resume_folder(args)
    s = st.from_args(args)
    w = world(s.distributed)
    try:
        return _prepare(args, s, w)
    except Exception as e:
        w.fail(e)  # over MPI: one message and the job ends (other ranks may wait for this one)
        raise


def _prepare(args: argparse.Namespace, s: st.Settings, w: World) -> int:
    # rank 0 reads DATA and owns the run folder (creates, locks and writes it); over MPI the
    # other ranks train on memory maps of what it prepared (shards.py)
    p: Prepared | None = None
    model = out = held = None
    name = ""
    if w.rank == 0:
        s, p, name = _read(s)
        model = build_model(s, p)
        _check_memory(s, p, model)  # before the run folder: a model that cannot fit writes nothing
        out = run_folder(s, name)
        held = runfolder.lock(out)
    try:
        if w.size > 1:
            s, p, name, out = shards.share(w, s, p, name, out)
        if model is None:
            model = build_model(s, p)
        # a small job runs NumPy's loop: compiling would cost more than the job (kernels);
        # rank 0's data decides, so that every rank runs the same loop
        job = bcast_text(w, " ".join(map(str, job_size(s, p, model))) if w.rank == 0 else None)
        steps, macs = job.split()
        with kernels.for_job(int(steps), float(macs)):
            return _train(args, s, w, p, TASKS[s.task], name, model, out, held)
    finally:
        if held is not None:
            shards.remove(out)
            held.release()


def _read(s: st.Settings) -> tuple[st.Settings, Prepared, str]:
    """DATA prepared by its task, and the settings resolved for it."""
    record, name = sources.load_source(s.dataset, s)
    s = st.resolve(s, sources.infer_task(record, s.task, name))
    p: Prepared = TASKS[s.task].prepare(record, s, name)
    p.meta["source"] = sources.locate(s.dataset)  # evaluate/predict default to the same data
    s = dataclasses.replace(s, dataset=p.meta["source"], window=p.meta.get("window", s.window))
    return s, p, name


def job_size(s: st.Settings, p: Prepared, model: rk.Sequential) -> tuple[int, float]:
    """``(time-step calls, multiply-adds)`` of the planned job: every epoch of ``--epochs``
    (early stopping is not foreseen), its training batches forward and backward (3x the
    forward's products) and its validation batches, through every recurrent layer and
    direction; sequences of a list counted at the longest one's length."""
    def rows_steps(X: Any) -> tuple[int, int]:
        if isinstance(X, list):
            return len(X), max((len(x) for x in X), default=0)
        return int(X.shape[0]), int(X.shape[1])

    n, T = rows_steps(p.X)
    n_val = rows_steps(p.val[0])[0] if p.val is not None else 0
    first = p.X[0] if isinstance(p.X, list) else p.X
    size = 1 if model.takes_ids else int(first.shape[-1])
    weights = sum(math.prod(v) for v in model.param_shapes(size).values())
    loops = sum(len(layer.directions) for layer in model.layers
                if isinstance(layer, rk.layers.Recurrent))
    batches = -(-n // s.batch_size) + -(-n_val // s.batch_size)
    return s.epochs * batches * T * loops, float(s.epochs) * (3 * n + n_val) * T * weights


#: buffers per parameter of the hungriest optimizer of the CLI (Adam: two moments)
OPTIMIZER_SLOTS = 2


def _check_memory(s: st.Settings, p: Prepared, model: rk.Sequential) -> None:
    """Refuse sizes whose parameters, gradients and optimizer state cannot fit in memory,
    naming the flag, before anything is written or allocated."""
    if model.takes_ids:
        size = 1
    else:
        first = p.X[0] if isinstance(p.X, list) else p.X
        size = int(first.shape[-1])
    try:
        check_memory(model, size, slots=OPTIMIZER_SLOTS)
    except MemoryLimitError as e:
        # parameters grow with the square of the larger of the two sizes
        wide = model.takes_ids and s.embedding_dim > s.hidden
        flag, value = ("--embedding-dim", s.embedding_dim) if wide else ("--hidden", s.hidden)
        raise UsageError(
            f"{flag} {value}: the model ({describe(model)} on {size} input feature(s)) would "
            f"have {e.parameters:.3g} parameters, which need about {human_bytes(e.need)} with "
            f"their gradients and optimizer state, but {human_bytes(e.available)} of memory is "
            f"available; make {flag} smaller") from None


def _resume_folder(args: argparse.Namespace) -> None:
    """``--resume RUN_FOLDER``: the folder's config (unless --config), its checkpoint, and the
    folder itself as --out (unless given)."""
    folder = getattr(args, "resume", None)
    if not folder or not os.path.isdir(folder):
        return
    config = os.path.join(folder, runfolder.CONFIG)
    if not getattr(args, "config", None):
        if not os.path.isfile(config):
            raise UsageError(f"--resume {folder}: no {runfolder.CONFIG} in it; is it a run "
                                "folder of rnnkit train?")
        args.config = config
    ckpt = os.path.join(folder, runfolder.CHECKPOINT)
    args.resume = ckpt if os.path.exists(ckpt) else None
    if args.resume is None:
        warn(f"--resume {folder}: no checkpoint yet (no epoch had ended); training from the start")
    if getattr(args, "out", None) is None:
        args.out = folder


def _train(args: argparse.Namespace, s: st.Settings, w: World, p: Prepared, task: Any,
           name: str, model: rk.Sequential, out: Path, held: runfolder.Lock | None) -> int:
    started = dt.datetime.now().isoformat(timespec="seconds")
    quiet = args.quiet or w.rank != 0
    if held is not None:
        _open_run(s, out, held, started)
    model.metadata = p.meta  # the checkpoints written during fit carry it too
    if not quiet:
        warn(f"training {describe(model)} on {name} ({s.task}); run folder {out}")
    on_disk = kernels.compiled_on_disk(KERNEL[s.cell])
    compiling = on_disk is False
    if compiling and not quiet:
        warn("compiling kernels (once): numba compiles the time loops for this machine and "
             "keeps them on disk; later runs load them")
    callbacks: list[Any] = [
        rk.Progress(ProgressDisplay(quiet, p.metric, compiling=compiling, loading=on_disk is True)),
        rk.ModelCheckpoint(out / runfolder.CHECKPOINT),
    ]
    if s.patience and p.val is not None:
        callbacks.append(rk.EarlyStopping(patience=s.patience))
    monitor = _monitor(p, s.epochs) if s.diagnose and w.rank == 0 else None
    if monitor is not None:
        callbacks.append(monitor)
    optimizer = rk.optim.get_optimizer(s.optimizer, s.lr, s.weight_decay)
    start = time.perf_counter()
    history = model.fit(
        p.X,
        p.y,
        loss=p.loss,
        optimizer=optimizer,
        schedule=build_schedule(s, optimizer),
        epochs=s.epochs,
        batch_size=s.batch_size,
        clip_norm=s.clip_norm,
        clip_value=s.clip_value,
        tbptt=s.tbptt,
        validation_data=p.val,
        metrics=None if p.metric else [],  # a probabilistic head has no point metric
        callbacks=callbacks,
        seed=s.seed,
        lengths=p.lengths,
        resume=s.resume,
        distributed=w,
    )
    seconds = time.perf_counter() - start
    if w.rank != 0:
        return EXIT_OK  # one run: rank 0 writes the run folder and reports
    interrupted = (history.stop_reason or "").startswith("interrupted")
    p.meta["trained"] = {
        "epochs": len(history),
        "seconds": round(seconds, 2),
        "stop_reason": history.stop_reason,
        "rnnkit": rk.__version__,
        "finished": dt.datetime.now().isoformat(timespec="seconds"),
        "kernels": kernels.running(),
        "settings": _jsonable_settings(s),
    }
    files = ["model.safetensors", runfolder.CONFIG, "history.csv", runfolder.CHECKPOINT]
    done = False
    try:
        with runfolder.hold_sigint(then_raise=not interrupted):  # a 2nd Ctrl-C waits for these
            model.save(out / "model.safetensors", metadata=p.meta)
            write_text(out / "history.csv", history_csv(history.epochs))
            if interrupted:
                runfolder.write_manifest(out, "interrupted", files, started)
                done = True
        if interrupted:
            warn(
                f"interrupted: stopped after the current batch; model saved to "
                f"{out / 'model.safetensors'}; continue with: rnnkit train --resume {out}"
            )
            return EXIT_INTERRUPTED
        results = task.report(model, p)
        files.append("metrics.json")
        if history.epochs:
            from . import plots

            epochs = history.epochs
            label = LOSS_LABELS[p.loss if isinstance(p.loss, str) else p.loss.__name__]
            if s.task == "charlm":  # the table reports bits per character: so does the curve
                epochs, label = task_charlm.in_bits(epochs), "cross-entropy (bits per character)"
            plots.loss_curve(
                out / "loss.png",
                epochs,
                label,
                f"{name}: {describe(model)} training and validation loss",
            )
            files.append("loss.png")
        files += task.plots(model, p, results, out)
        if monitor is not None:
            results["gradient_flow"] = _diagnose(model, p, monitor, out)
            files += ["gradient_flow.png", "gradient_flow_training.png", "gradient_flow.json"]
        files.append("report.html")
        doc = _metrics(s, results, history, seconds, out, files)
        with runfolder.hold_sigint():
            write_json(out / "metrics.json", doc)
            from .report import write_report

            write_report(out)
            runfolder.write_manifest(out, "finished", files, started)
            done = True
    except KeyboardInterrupt:
        if not done:
            with runfolder.hold_sigint():
                runfolder.write_manifest(out, "interrupted", files, started)
        raise
    if args.json:
        emit_json(doc)
    else:
        _print_results(results, history, seconds, out)
    return EXIT_OK


def _open_run(s: st.Settings, out: Path, held: runfolder.Lock, started: str) -> None:
    """The run folder's first writes, once it is locked."""
    if held.taken_over:
        warn(f"run folder {out}: took over the lock left by {held.taken_over}, which is gone")
    removed = runfolder.clean(out)
    if removed:
        warn(f"run folder {out}: removed {len(removed)} temporary file(s) of killed writes")
    # now, not at the end: a killed run is resumed with `rnnkit train --resume {out}`
    write_text(out / runfolder.CONFIG, st.to_toml(s))
    runfolder.write_manifest(out, "running", [], started)


def run_folder(s: st.Settings, name: str, kind: str | None = None) -> Path:
    """Create the run folder now, so that an unwritable place fails before training."""
    if s.out:
        out = Path(s.out)
    else:
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        out = Path("runs") / f"{kind or s.task}-{re.sub(r'[^A-Za-z0-9_.-]+', '-', name)}-{stamp}"
        n = 2
        while out.exists():  # two runs in the same second
            out = out.with_name(f"{out.name.rsplit('~', 1)[0]}~{n}")
            n += 1
    os.makedirs(out, exist_ok=True)
    if not os.access(out, os.W_OK):
        raise PermissionError(f"cannot write to run folder {out}: permission denied")
    return out


def _jsonable_settings(s: st.Settings) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in vars(s).items()}


def _metrics(
    s: st.Settings,
    results: dict[str, Any],
    history: Any,
    seconds: float,
    out: Path,
    files: list[str],
) -> dict[str, Any]:
    return {
        "task": s.task,
        "dataset": s.dataset or sources.DEFAULT_DATASET,
        "held_out": results["what"],
        "n": results["n"],
        "scores": results["scores"],
        "confusion": results.get("confusion"),
        "sample": results.get("sample"),
        "gradient_flow": results.get("gradient_flow"),
        **{k: results[k] for k in EXTRA_RESULTS if k in results},
        "epochs": len(history),
        "stop_reason": history.stop_reason,
        "seconds": round(seconds, 2),
        "kernels": kernels.running(),
        "final": history.epochs[-1] if history.epochs else {},
        "run_folder": str(out),
        "files": files,
        "settings": _jsonable_settings(s),
    }


def _print_results(results: dict[str, Any], history: Any, seconds: float, out: Path) -> None:
    unit = f" ({results['unit']})" if results.get("unit") else ""
    header = [
        "",
        *[
            forecast_scores.LABELS.get(c, c.replace("_", " ").upper())
            if c != "bits_per_char"
            else "bits/char"
            for c in results["columns"]
        ],
    ]
    say(results["what"])
    marks = forecast_scores.marks(results) if results["task"] == "forecast" else None
    say(table([header[0] + "model" + unit, *header[1:]], results["rows"], marks))
    if results["task"] == "forecast":
        say("\n".join(forecast_scores.text(results)))
    elif results["task"] == "classify":
        say("\n".join(task_classify.text(results)))
    if results.get("sample"):
        sample = results["sample"]
        say(
            f"\nsample (after {len(sample['prime'])} held-out characters, in sample.txt):\n"
            + sample["text"][:300].rstrip()
        )
    if results.get("gradient_flow"):
        say("\ngradient flow on held-out data (gradient_flow.png, gradient_flow_training.png):\n"
            + results["gradient_flow"]["summary"])
    stop = f"; {history.stop_reason}" if history.stop_reason else ""
    say(f"\n{len(history)} epochs in {seconds:.1f}s{stop}")
    say(f"run folder: {out}")


def _diagnose_batch(p: Prepared) -> tuple[Any, Any]:
    """A held-out batch for the gradient-flow diagnostics (one batch is enough to see the
    flow; 64 sequences keep it cheap)."""
    return p.held_out["X"][:64], p.held_out["y"][:64]


def _monitor(p: Prepared, epochs: int) -> rk.GradientFlowMonitor | None:
    """Records the gradient flow about ten times over training (Pascanu et al. 2013 log the
    same); ``None`` for text models, whose gradient cannot reach integer inputs' steps the
    same way (use ``rnnkit diagnose`` on them)."""
    if p.meta.get("task") == "charlm":
        return None
    X, y = _diagnose_batch(p)
    return rk.GradientFlowMonitor(every=max(1, epochs // 10), X=X, y=y, loss=p.loss)


def _diagnose(model: rk.Sequential, p: Prepared, monitor: rk.GradientFlowMonitor,
              out: Path) -> dict[str, Any]:
    """The spec's vanishing/exploding-gradient analysis of the trained model on held-out data,
    and how it evolved during training: two figures and the report as JSON."""
    X, y = _diagnose_batch(p)
    report = rk.gradient_flow(model, X, y, loss=p.loss)
    report.plot(str(out / "gradient_flow.png"))
    monitor.plot(str(out / "gradient_flow_training.png"))
    write_text(out / "gradient_flow.json", report.to_json())
    return {"verdict": report.verdict, "summary": report.summary()}
