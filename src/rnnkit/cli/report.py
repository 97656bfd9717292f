"""``rnnkit report RUN...``: one self-contained HTML page for run folders, side by side.

The page is rendered from the files a run folder holds (``metrics.json``, ``history.csv``, its
PNG plots), so it works on old runs too; images are embedded as data URIs and nothing is
fetched from the network. ``rnnkit train`` and ``rnnkit backtest`` write ``report.html`` into
every run folder; this command renders it again, or compares several runs on one page.
"""

from __future__ import annotations

import argparse
import base64
import html
import json
from pathlib import Path
from typing import Any

from rnnkit.errors import DataError

from . import runfolder
from .common import EXIT_OK, add_command, emit_json, warn, write_text

EPILOG = """examples:
  rnnkit report runs/forecast-airline-20250101-120000          # (re)writes its report.html
  rnnkit report runs/a runs/b runs/c --output compare.html     # side by side
"""

IMAGES = ("forecast.png", "error_by_step.png", "backtest.png", "confusion.png", "loss.png",
          "gradient_flow.png", "gradient_flow_training.png")
LABELS = {"mae": "MAE", "rmse": "RMSE", "mase": "MASE", "smape": "sMAPE", "macro_f1": "macro F1",
          "weighted_f1": "weighted F1", "roc_auc": "ROC AUC", "bits_per_char": "bits/char"}
STYLE = """body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.4em}h3{font-size:1em}
table{border-collapse:collapse;margin:.5em 0;font-size:.9em}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
td:first-child,th:first-child{text-align:left}th{background:#f3f3f3}
.best{font-weight:bold;background:#e6f4e6}.verdict{padding:.5em;background:#fff6e0}
.runs{display:grid;grid-template-columns:repeat(auto-fit,minmax(560px,1fr));gap:1.5em}
img{max-width:100%;border:1px solid #eee}details{margin:.5em 0}pre{overflow-x:auto}"""


def add_parser(sub: Any) -> None:
    p = add_command(sub, "report", "an HTML report of run folders", __doc__, EPILOG)
    p.add_argument("runs", nargs="+", metavar="RUN", help="run folders of rnnkit train/backtest")
    p.add_argument("--output", "-o", metavar="FILE.html",
                   help="where to write (default: RUN/report.html for one run; required for "
                   "several)")


def run(args: argparse.Namespace) -> int:
    runs = [Path(r) for r in args.runs]
    docs = [load_run(r) for r in runs]  # every folder checked before anything is written
    for r in runs:
        problem = runfolder.unfinished(r)
        if problem:
            warn(f"warning: {r}: {problem}")
    if len(runs) > 1 and not args.output:
        raise DataError("several runs go on one page: give --output FILE.html")
    out = Path(args.output) if args.output else runs[0] / "report.html"
    write_text(out, render(list(zip(runs, docs))))
    if args.json:
        emit_json({"report": str(out), "runs": [str(r) for r in runs]})
    elif not args.quiet:
        warn(f"wrote {out}")
    return EXIT_OK


def load_run(folder: Path) -> dict[str, Any]:
    """The run's ``metrics.json``, checked to be an object with a task."""
    path = folder / "metrics.json"
    if not folder.is_dir():
        raise DataError(f"{folder}: not a run folder (no such folder)")
    if not path.is_file():
        raise DataError(f"{folder}: not a run folder (no metrics.json)")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"{path}: not valid JSON: {e}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("task"), str):
        raise DataError(f"{path}: expected an object with a 'task', as rnnkit writes")
    return doc


def write_report(folder: Path) -> None:
    """``report.html`` in a run folder that has just been written."""
    write_text(folder / "report.html", render([(folder, load_run(folder))]))


def render(runs: list[tuple[Path, dict[str, Any]]]) -> str:
    title = ("rnnkit run: " + _name(runs[0][1]) if len(runs) == 1
             else f"rnnkit: {len(runs)} runs side by side")
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>"
             f"{_e(title)}</title><style>{STYLE}</style></head><body><h1>{_e(title)}</h1>"]
    if len(runs) > 1:
        parts.append(_overview(runs))
    parts.append("<div class='runs'>" if len(runs) > 1 else "<div>")
    parts += [_run(folder, doc) for folder, doc in runs]
    parts.append("</div></body></html>")
    return "\n".join(parts)


def _name(doc: dict[str, Any]) -> str:
    s = doc.get("settings") or {}
    cell = ",".join(s.get("cells") or []) or s.get("cell") or ""
    return f"{doc.get('task')} {doc.get('dataset', '')} {cell.upper()}".strip()


def _overview(runs: list[tuple[Path, dict[str, Any]]]) -> str:
    """One row per run: its first forecaster's scores (the model), side by side."""
    cols: list[str] = []
    rows = []
    for folder, doc in runs:
        scores = doc.get("scores") or {}
        model = next(iter(scores), None)
        vals = scores.get(model, {}) if model else {}
        cols += [c for c in vals if c not in cols]
        rows.append((folder, doc, model, vals))
    head = "".join(f"<th>{_e(LABELS.get(c, c))}</th>" for c in cols)
    body = "".join(
        f"<tr><td>{_e(folder.name)}</td><td>{_e(_name(doc))}</td><td>{_e(model or '')}</td>"
        + "".join(f"<td>{_num(vals.get(c))}</td>" for c in cols) + "</tr>"
        for folder, doc, model, vals in rows)
    return (f"<h2>Overview</h2><table><tr><th>run</th><th>task</th><th>model</th>{head}</tr>"
            f"{body}</table>")


def _run(folder: Path, doc: dict[str, Any]) -> str:
    out = [f"<section><h2>{_e(folder.name)}</h2>"]
    if doc.get("held_out") or doc.get("what"):
        out.append(f"<p>{_e(doc.get('held_out') or doc.get('what'))}</p>")
    out.append(_scores(doc))
    if doc.get("verdict"):
        out.append(f"<p class='verdict'>{_e(doc['verdict'])}</p>")
    out.append(_intervals(doc.get("intervals")))
    out.append(_per_target(doc.get("per_target"), "Target"))
    out.append(_per_target(doc.get("per_series"), "Series"))
    out.append(_per_class(doc.get("per_class")))
    out.append(_per_step(doc.get("per_step")))
    out.append(_folds(doc.get("folds")))
    flow = doc.get("gradient_flow")
    if isinstance(flow, dict) and flow.get("summary"):
        out.append(f"<h3>Gradient flow</h3><pre>{_e(flow['summary'])}</pre>")
    extra = sorted(p.name for p in folder.glob("forecast_*.png"))  # one per further target
    for name in (*IMAGES[:1], *extra, *IMAGES[1:]):
        path = folder / name
        if path.is_file():
            data = base64.b64encode(path.read_bytes()).decode("ascii")
            out.append(f"<h3>{_e(name)}</h3><img alt='{_e(name)}' "
                       f"src='data:image/png;base64,{data}'>")
    out.append(_settings(doc.get("settings")))
    out.append("</section>")
    return "\n".join(p for p in out if p)


def _scores(doc: dict[str, Any]) -> str:
    scores = doc.get("scores")
    if not isinstance(scores, dict) or not scores:
        return ""
    cols: list[str] = []
    for v in scores.values():
        cols += [c for c in (v if isinstance(v, dict) else {}) if c not in cols]
    best = doc.get("best") or {}
    head = "".join(f"<th>{_e(LABELS.get(c, c.replace('_', ' ')))}</th>" for c in cols)
    rows = "".join(
        f"<tr><td>{_e(name)}</td>" + "".join(
            f"<td class='best'>{_num(v.get(c))}</td>" if best.get(c) == name
            else f"<td>{_num(v.get(c))}</td>" for c in cols) + "</tr>"
        for name, v in scores.items() if isinstance(v, dict))
    unit = f" ({_e(doc['unit'])})" if doc.get("unit") else ""
    return f"<table><tr><th>model{unit}</th>{head}</tr>{rows}</table>"


def _per_target(per: Any, what: str) -> str:
    if not isinstance(per, dict):
        return ""
    out = []
    for name, r in per.items():
        if isinstance(r, dict):
            out.append(f"<h3>{what} {_e(name)}</h3>{_scores(r)}")
            if r.get("verdict"):
                out.append(f"<p class='verdict'>{_e(r['verdict'])}</p>")
            out.append(_intervals(r.get("intervals")))
    return "\n".join(out)


def _intervals(iv: Any) -> str:
    if not isinstance(iv, dict):
        return ""
    rows = "".join(f"<tr><td>{_num(100 * i['nominal'])}%</td><td>{_num(100 * i['coverage'])}%"
                   f"</td><td>{_num(i['width'])}</td></tr>" for i in iv.get("intervals", []))
    return (f"<h3>Intervals</h3><table><tr><th>nominal</th><th>coverage</th><th>mean width</th>"
            f"</tr>{rows}</table><p>pinball {_num(iv.get('pinball'))}, CRPS "
            f"{_num(iv.get('crps'))}</p>")


def _per_class(pc: Any) -> str:
    if not isinstance(pc, dict) or "classes" not in pc:
        return ""
    rows = "".join(f"<tr><td>{_e(c)}</td><td>{_num(pc['precision'][i])}</td><td>"
                   f"{_num(pc['recall'][i])}</td><td>{_num(pc['f1'][i])}</td><td>"
                   f"{pc['support'][i]}</td></tr>" for i, c in enumerate(pc["classes"]))
    for avg in ("macro", "weighted"):
        rows += (f"<tr><td>{avg} avg</td><td>{_num(pc.get(avg + '_precision'))}</td><td>"
                 f"{_num(pc.get(avg + '_recall'))}</td><td>{_num(pc.get(avg + '_f1'))}</td>"
                 "<td></td></tr>")
    return ("<h3>Per class</h3><table><tr><th>class</th><th>precision</th><th>recall</th>"
            f"<th>F1</th><th>support</th></tr>{rows}</table>")


def _per_step(ps: Any) -> str:
    if not isinstance(ps, dict) or not ps:
        return ""
    names = list(ps)
    H = len(ps[names[0]].get("mae", []))
    if H < 2:
        return ""
    head = "".join(f"<th>{_e(n)}</th>" for n in names)
    rows = "".join(f"<tr><td>{h + 1}</td>" + "".join(
        f"<td>{_num(ps[n]['mae'][h])}</td>" for n in names) + "</tr>" for h in range(H))
    return (f"<details><summary>MAE per step ahead</summary><table><tr><th>step</th>{head}"
            f"</tr>{rows}</table></details>")


def _folds(folds: Any) -> str:
    if not isinstance(folds, list) or not folds:
        return ""
    names = list(folds[0].get("scores", {}))
    head = "".join(f"<th>{_e(n)}</th>" for n in names)
    rows = "".join(f"<tr><td>{f.get('fold', 0) + 1}</td><td>{_e(f.get('origin', ''))}</td>"
                   + "".join(f"<td>{_num(f['scores'][n].get('mase'))}</td>" for n in names)
                   + "</tr>" for f in folds)
    return (f"<h3>Backtest folds (MASE)</h3><table><tr><th>fold</th><th>origin</th>{head}</tr>"
            f"{rows}</table>")


def _settings(s: Any) -> str:
    if not isinstance(s, dict):
        return ""
    rows = "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in s.items()
                   if v is not None)
    return f"<details><summary>Settings</summary><table>{rows}</table></details>"


def _num(v: Any) -> str:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return "n/a" if v is None else _e(v)
    return f"{v:.4g}"


def _e(v: Any) -> str:
    return html.escape(str(v), quote=True)
