"""Every setting of ``rnnkit train`` in one dataclass: its default, its flag, its config key.

The flag of a field is ``--`` + its name with ``-`` for ``_``; its ``--config`` TOML key is the
name itself. Command-line flags override the file, the file overrides these defaults. ``None``
means "chosen from the data or the task" (see ``TASK_DEFAULTS`` and ``resolve``).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
from dataclasses import dataclass, field
from typing import Any

from rnnkit.data import MISSING_RULES
from rnnkit.fileio import read_regular

from .common import UsageError

TASKS = ("forecast", "classify", "charlm")
CELLS = ("rnn", "lstm", "gru")
STRATEGIES = ("direct", "recursive")
FORECAST_LOSSES = ("mse", "quantile", "gaussian")
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop", "adagrad")
SCHEDULES = ("none", "cosine", "step", "exponential", "plateau")
ACTIVATIONS = ("tanh", "relu", "sigmoid", "identity", "leaky_relu", "elu", "softsign", "hard_tanh")


def _positive_int(text: Any) -> int:
    v = _int(text)
    if v < 1:
        raise ValueError(f"expected an integer >= 1, got {text!r}")
    return v


def _non_negative_int(text: Any) -> int:
    v = _int(text)
    if v < 0:
        raise ValueError(f"expected an integer >= 0, got {text!r}")
    return v


def _int(text: Any) -> int:
    if isinstance(text, bool) or isinstance(text, float):
        raise ValueError(f"expected an integer, got {text!r}")
    try:
        return int(text)
    except (TypeError, ValueError):
        raise ValueError(f"expected an integer, got {text!r}") from None


def _positive_float(text: Any) -> float:
    try:
        v = float(text)
    except (TypeError, ValueError):
        raise ValueError(f"expected a number > 0, got {text!r}") from None
    if isinstance(text, bool) or not v > 0 or v == float("inf"):
        raise ValueError(f"expected a finite number > 0, got {text!r}")
    return v


def _non_negative_float(text: Any) -> float:
    try:
        v = float(text)
    except (TypeError, ValueError):
        raise ValueError(f"expected a number >= 0, got {text!r}") from None
    if isinstance(text, bool) or not v >= 0 or v == float("inf"):
        raise ValueError(f"expected a finite number >= 0, got {text!r}")
    return v


def _fraction(text: Any) -> float:
    try:
        v = float(text)
    except (TypeError, ValueError):
        raise ValueError(f"expected a fraction in [0, 1), got {text!r}") from None
    if isinstance(text, bool) or not 0 <= v < 1:
        raise ValueError(f"expected a fraction in [0, 1), got {text!r}")
    return v


def _columns(text: Any) -> tuple[str, ...]:
    items = text if isinstance(text, (list, tuple)) else str(text).split(",")
    cols = tuple(str(c).strip() for c in items if str(c).strip())
    if not cols:
        raise ValueError(f"expected column names separated by commas, got {text!r}")
    return cols


def _quantiles(text: Any) -> tuple[float, ...]:
    items = text if isinstance(text, (list, tuple)) else str(text).split(",")
    try:
        q = tuple(float(str(v).strip()) for v in items)
    except ValueError:
        raise ValueError(f"expected levels such as 0.1,0.5,0.9, got {text!r}") from None
    if not q or not all(0 < v < 1 for v in q) or any(b <= a for a, b in itertools.pairwise(q)):
        raise ValueError(f"expected increasing levels strictly between 0 and 1, got {text!r}")
    return q


def _text(text: Any) -> str:
    if not isinstance(text, str) or not text:
        raise ValueError(f"expected a non-empty string, got {text!r}")
    return text


def S(
    default: Any,
    help: str,
    parse: Any = _text,
    choices: tuple | None = None,
    metavar: str | None = None,
) -> Any:
    """A setting: its default plus what the flag and the config key need."""
    return field(
        default=default,
        metadata={"help": help, "parse": parse, "choices": choices, "metavar": metavar},
    )


@dataclass
class Settings:
    # data
    task: str | None = S(
        None, "forecast, classify or charlm (default: from the data)", choices=TASKS
    )  # a series forecasts, labelled sequences classify, ...
    dataset: str | None = S(None, "bundled dataset or ucr:NAME (same as DATA)", metavar="NAME")
    target: str | None = S(
        None, "CSV column(s) to forecast, comma-separated (classify: the label column)",
        metavar="COL[,COL]"
    )
    features: tuple[str, ...] | None = S(
        None, "extra input columns, comma-separated (forecast: known up to each origin only)",
        _columns, metavar="COLS"
    )
    future_features: tuple[str, ...] | None = S(
        None, "forecast: input columns known in advance (planned prices, holidays), read at "
        "the forecast steps too", _columns, metavar="COLS"
    )
    date: str | None = S(None, "CSV column of dates/years for plots and forecasts", metavar="COL")
    calendar: bool = S(
        False, "forecast: calendar features from --date as known-future inputs (sin/cos of the "
        "month, quarter, week or day of week and year, by the dates' frequency)", bool
    )
    series_id: str | None = S(
        None, "forecast: CSV column naming each row's series (panel data: many series, one "
        "global model, each series scaled on its own)", metavar="COL"
    )
    missing: str = S(
        "interpolate", "missing-value rule for series (docs/data.md)", choices=MISSING_RULES
    )  # keeps rows evenly spaced in time, unlike drop
    window: int | None = S(
        None,
        "look-back steps per forecast (default: 2 seasons, else 12)",
        _positive_int,
        metavar="N",
    )  # two cycles show the model the shape
    horizon: int = S(1, "steps forecast at once", _positive_int, metavar="N")
    relative: bool = S(True, "forecast the change from each window's last value, not the "
                       "level", bool)  # a trend (airline, co2) cannot leave the trained range
    strategy: str = S(
        "direct", "direct: one head emits all --horizon steps; recursive: a one-step model "
        "fed its own forecasts", choices=STRATEGIES
    )  # direct: no error feedback along the path, one pass per forecast
    period: int | None = S(
        None, "seasonal period in rows (seasonal naive, MASE; default: from the dates)",
        _positive_int, metavar="N"
    )
    loss: str = S(
        "mse", "forecast loss: mse (point), quantile (pinball) or gaussian (mean and scale)",
        choices=FORECAST_LOSSES
    )
    quantiles: tuple[float, ...] = S(
        (0.1, 0.5, 0.9), "quantile levels (--loss quantile; the intervals of --loss gaussian)",
        _quantiles, metavar="Q,Q,..."
    )  # 0.1/0.9: the 80% interval practitioners read first
    seq_len: int = S(
        100, "characters per training sequence (charlm)", _positive_int, metavar="N"
    )  # ~ a line or two of text: long enough for words, fast BPTT
    val: float = S(0.1, "fraction for validation (early stopping)", _fraction, metavar="X")
    test: float = S(
        0.2, "fraction held out for the final test (series: the last part)", _fraction, metavar="X"
    )
    # model
    cell: str = S("lstm", "recurrent cell", choices=CELLS)  # gates keep gradients alive (spec)
    hidden: int | None = S(
        None, "hidden units per layer (default per task)", _positive_int, metavar="N"
    )
    layers: int = S(1, "stacked recurrent layers", _positive_int, metavar="N")
    activation: str = S("tanh", "the cell's activation σ", choices=ACTIVATIONS)
    bidirectional: bool = S(
        False, "read each input both ways (forecast: the look-back window holds only the past, "
        "so this stays causal; not for charlm)", bool
    )
    embedding_dim: int = S(32, "character embedding size (charlm)", _positive_int, metavar="N")
    dropout: float = S(
        0.0, "dropout after each recurrent layer (between layers, before the head)", _fraction,
        metavar="P"
    )  # PyTorch's place for it; on a few input features it would drop the signal itself
    recurrent_dropout: float = S(
        0.0, "dropout on h(t-1), one mask per sequence (Gal & Ghahramani 2016)", _fraction,
        metavar="P"
    )
    zoneout: float = S(0.0, "zoneout rate of the state (Krueger et al. 2017)", _fraction,
                       metavar="P")
    layer_norm: bool = S(False, "layer-normalised gates (lstm, gru; Ba et al. 2016)", bool)
    peepholes: bool = S(False, "peephole connections from c to the gates (lstm)", bool)
    proj_size: int = S(0, "project h to this many units (lstm; PyTorch's proj_size)",
                       _non_negative_int, metavar="N")
    # training
    epochs: int | None = S(
        None, "passes over the training data (default per task)", _positive_int, metavar="N"
    )
    lr: float = S(3e-3, "learning rate", _positive_float, metavar="X")  # small nets, short runs
    optimizer: str = S("adam", "optimizer", choices=OPTIMIZERS)  # no tuning of lr per layer
    weight_decay: float | None = S(
        None, "L2 weight decay, PyTorch's (adamw: decoupled; default: the optimizer's, 0, "
        "adamw 0.01)", _non_negative_float, metavar="X"
    )
    schedule: str = S(
        "none", "learning-rate schedule per epoch: cosine (to 0 over --epochs), step (x0.1 at "
        "each third of --epochs), exponential (x0.95 per epoch), plateau (x0.1 after 5 epochs "
        "without a lower validation loss)", choices=SCHEDULES
    )  # none: Adam with early stopping needs no schedule on these small problems
    batch_size: int | None = S(
        None, "sequences per step (default per task)", _positive_int, metavar="N"
    )
    clip_norm: float | None = S(
        1.0, "clip the global gradient norm (Pascanu et al. 2013)", _positive_float, metavar="X"
    )  # exploding gradients, spec
    clip_value: float | None = S(
        None, "clip each gradient entry instead", _positive_float, metavar="X"
    )
    tbptt: int | None = S(None, "truncated BPTT chunk length", _positive_int, metavar="N")
    seed: int = S(0, "seed for weights, splits and shuffling", _non_negative_int, metavar="N")
    patience: int | None = S(
        None,
        "early stopping patience in epochs, 0 = off (default per task)",
        _non_negative_int,
        metavar="N",
    )
    # run
    out: str | None = S(None, "run folder (default runs/<task>-<dataset>-<time>)", metavar="DIR")
    resume: str | None = S(
        None, "continue a run: its folder (config and checkpoint) or a checkpoint file",
        metavar="RUN|CKPT",
    )
    diagnose: bool = S(False, "also measure gradient flow per time step", bool)
    distributed: str = S(
        "auto", "data-parallel over MPI: auto (when started by mpiexec/srun), on, off",
        choices=("auto", "on", "off"),
    )  # docs/distributed.md


# Per-task defaults for the settings left None above; sized so that each task's default run
# takes seconds to minutes on a laptop CPU (docs/cli.md has the measured numbers).
TASK_DEFAULTS: dict[str, dict[str, int]] = {
    # few hundred windows: small batches give more steps per epoch; early stopping ends it
    "forecast": {"hidden": 32, "epochs": 100, "batch_size": 16, "patience": 20},
    "classify": {"hidden": 64, "epochs": 30, "batch_size": 32, "patience": 8},
    # ~4000 sequences per epoch on pydoc: 20 epochs is a few minutes on 2 cores
    "charlm": {"hidden": 128, "epochs": 20, "batch_size": 32, "patience": 3},
}

RUN_ONLY = ("out", "resume")  # commented out in a saved config: a rerun must not overwrite
FIELDS = {f.name: f for f in dataclasses.fields(Settings)}


def add_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per setting; defaults are SUPPRESSed so that only given flags are set."""
    groups: dict[str, Any] = {}
    bounds = {"task": "data", "cell": "model", "epochs": "training", "out": "run"}
    group = None
    for name, f in FIELDS.items():
        if name in bounds:
            group = groups.setdefault(bounds[name], parser.add_argument_group(bounds[name]))
        flag = "--" + name.replace("_", "-")
        meta = f.metadata
        if meta["parse"] is bool:
            group.add_argument(
                flag,
                action=argparse.BooleanOptionalAction,
                default=argparse.SUPPRESS,
                help=f"{meta['help']} (default: {'on' if f.default else 'off'})",
            )
            continue
        group.add_argument(
            flag,
            type=_argparse_type(meta["parse"]),
            choices=meta["choices"],
            metavar=meta["metavar"],
            default=argparse.SUPPRESS,
            help=f"{meta['help']} (default: {_show(f.default)})",
        )


def _argparse_type(parse: Any) -> Any:
    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    convert.__name__ = parse.__name__.strip("_")
    return convert


def _show(v: Any) -> str:
    if isinstance(v, tuple):
        return ",".join(map(str, v))
    return "auto" if v is None else str(v)


def load_config(path: str) -> dict[str, Any]:
    """Settings from a TOML file: keys are field names; every value is checked."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    name = os.path.basename(path)
    try:  # a FIFO or a device is refused, not read
        text = read_regular(path, error=UsageError, what="a TOML file")
    except UsageError as e:
        raise UsageError(f"--config {e}") from None
    try:
        raw = tomllib.loads(text.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise UsageError(f"{name}: not valid TOML: {e}") from None
    out = {}
    for key, value in raw.items():
        if key not in FIELDS:
            raise UsageError(f"{name}: unknown key {key!r}; known keys: {', '.join(FIELDS)}")
        out[key] = check(key, value, name)
    return out


def check(key: str, value: Any, source: str) -> Any:
    """``value`` for setting ``key`` after the same checks as its flag."""
    meta = FIELDS[key].metadata
    if meta["parse"] is bool:
        if not isinstance(value, bool):
            raise UsageError(f"{source}: {key}: expected true or false, got {value!r}")
        return value
    try:
        v = meta["parse"](value)
    except ValueError as e:
        raise UsageError(f"{source}: {key}: {e}") from None
    if meta["choices"] and v not in meta["choices"]:
        raise UsageError(
            f"{source}: {key}: expected one of {', '.join(meta['choices'])}, got {v!r}"
        )
    return v


def from_args(args: argparse.Namespace) -> Settings:
    """Defaults, then the ``--config`` file, then the flags given on the command line."""
    values: dict[str, Any] = {}
    if getattr(args, "config", None):
        values.update(load_config(args.config))
    values.update({k: v for k, v in vars(args).items() if k in FIELDS})
    if getattr(args, "data", None):
        if values.get("dataset"):
            raise UsageError("give the data either as DATA or as --dataset, not both")
        values["dataset"] = args.data
    s = Settings(**values)
    if "clip_value" in values and "clip_norm" not in values:
        s.clip_norm = None  # asking for value clipping replaces the default norm clipping
    if s.clip_norm is not None and s.clip_value is not None:
        raise UsageError("use --clip-norm or --clip-value, not both")
    return s


def resolve(s: Settings, task: str) -> Settings:
    """Fill the per-task defaults once the task is known."""
    filled = {k: v for k, v in TASK_DEFAULTS[task].items() if getattr(s, k) is None}
    return dataclasses.replace(s, task=task, **filled)


def to_toml(s: Settings) -> str:
    """The resolved settings as TOML that ``--config`` reads back (None values commented)."""
    lines = ["# rnnkit train settings; rerun with: rnnkit train --config config.toml"]
    for name in FIELDS:
        v = getattr(s, name)
        if v is None or name in RUN_ONLY:
            lines.append(f"# {name} = {'(auto)' if v is None else _toml_str(str(v))}")
        elif isinstance(v, bool):
            lines.append(f"{name} = {str(v).lower()}")
        elif isinstance(v, (int, float)):
            lines.append(f"{name} = {v!r}")
        elif isinstance(v, tuple):
            items = (repr(c) if isinstance(c, float) else _toml_str(c) for c in v)
            lines.append(f"{name} = [{', '.join(items)}]")
        else:
            lines.append(f"{name} = {_toml_str(v)}")
    return "\n".join(lines) + "\n"


def _toml_str(v: str) -> str:
    return json.dumps(v)  # a JSON string (escapes included) is a valid TOML basic string
