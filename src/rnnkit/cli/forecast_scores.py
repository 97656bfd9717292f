"""A forecaster beside its baselines: the score table, errors per step ahead, intervals, the
verdict a reader needs first (does the model beat the baselines?) and the plots of a run."""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnkit.data import persistence_forecast, seasonal_naive_forecast
from rnnkit.data.baselines import drift_forecast
from rnnkit.data.scores import POINT, crps_gaussian, interval_scores, per_step, point_scores

LABELS = {"mae": "MAE", "rmse": "RMSE", "mase": "MASE", "smape": "sMAPE"}


def score(
    name: str,
    meta: dict[str, Any],
    *,
    past: np.ndarray,
    actual: np.ndarray,
    pred: np.ndarray,
    quantiles: np.ndarray | None = None,
    sigma: np.ndarray | None = None,
) -> dict[str, Any]:
    """Scores of ``pred`` and the baselines (all ``(N, H)``, original units) on ``actual``;
    ``past`` ``(N, W)`` are the windows the forecasts start from."""
    H, period = actual.shape[1], meta.get("period")
    forecasts = {name: pred, "persistence": persistence_forecast(past, H)}
    if period and period <= past.shape[1]:
        forecasts[f"seasonal naive ({period})"] = seasonal_naive_forecast(past, period, H)
    forecasts["drift"] = drift_forecast(past, H)
    scale = meta.get("mase_scale") or float("nan")  # model files before MASE: n/a
    out: dict[str, Any] = {
        "model": name,
        "scores": {k: point_scores(f, actual, scale) for k, f in forecasts.items()},
        "per_step": {k: per_step(f, actual) for k, f in forecasts.items()},
        "forecasts": forecasts,
        "actual": actual,
        "pred": pred,
        "quantiles": quantiles,
    }
    if quantiles is not None:
        out["intervals"] = interval_scores(quantiles, meta["quantiles"], actual)
        if sigma is not None:
            out["intervals"]["crps"] = crps_gaussian(pred, sigma, actual)
            out["intervals"]["crps_exact"] = True
    return out


def overall(per: dict[str, dict[str, Any]], scales: list[float], key: str = "per_target"
            ) -> dict[str, Any]:
    """Several targets' (or a panel's series', ``key="per_series"``) scores (``score`` for
    each) and their overall scores: MASE and sMAPE averaged over them; MAE and RMSE in units
    of each one's training standard deviation (``scales``), so that no unit dominates."""
    first = next(iter(per.values()))
    names = list(first["scores"])
    table, steps = {}, {}
    for k in names:
        rows = [sc["scores"][k] for sc in per.values()]
        table[k] = {
            "mae": float(np.mean([r["mae"] / s for r, s in zip(rows, scales)])),
            "rmse": float(np.mean([r["rmse"] / s for r, s in zip(rows, scales)])),
            "mase": float(np.mean([r["mase"] for r in rows])),
            "smape": float(np.mean([r["smape"] for r in rows])),
        }
        steps[k] = {m: np.mean([np.asarray(sc["per_step"][k][m]) / s
                                for sc, s in zip(per.values(), scales)], axis=0).tolist()
                    for m in ("mae", "rmse")}
    out = {"model": first["model"], "scores": table, "per_step": steps, key: per}
    ivs = [sc["intervals"] for sc in per.values() if "intervals" in sc]
    if len(ivs) == len(per):
        out["intervals"] = {
            "pinball": float(np.mean([iv["pinball"] / s for iv, s in zip(ivs, scales)])),
            "crps": float(np.mean([iv["crps"] / s for iv, s in zip(ivs, scales)])),
            "crps_exact": all(iv.get("crps_exact") for iv in ivs),
            "intervals": [{"nominal": i["nominal"],
                           "coverage": float(np.mean([v["intervals"][j]["coverage"]
                                                      for v in ivs])),
                           "width": float(np.mean([v["intervals"][j]["width"] / s
                                                   for v, s in zip(ivs, scales)]))}
                          for j, i in enumerate(ivs[0]["intervals"])],
        }
    return out


def best_and_verdict(table: dict[str, dict[str, float]], model: str
                     ) -> tuple[dict[str, str], str]:
    """The best row per metric, and one plain sentence on how the model did against them."""
    best: dict[str, str] = {}
    for m in POINT:
        finite = {k: v[m] for k, v in table.items() if np.isfinite(v.get(m, np.nan))}
        if finite:
            best[m] = min(finite, key=finite.__getitem__)
    if model not in table:
        return best, ""
    losses = []
    for m, who in best.items():
        if who != model:
            losses.append(f"{LABELS[m]} ({table[model][m]:.4g} vs {who} {table[who][m]:.4g})")
    if not losses:
        return best, f"{model} beats every baseline on every metric."
    return best, f"{model} LOSES to a baseline on " + "; ".join(losses) + "."


def marks(results: dict[str, Any]) -> set[tuple[int, int]]:
    """``(row, column)`` cells of the table that are best in their column (marked ``*``)."""
    names = [r[0] for r in results["rows"]]
    return {(names.index(who), 1 + results["columns"].index(m))
            for m, who in results.get("best", {}).items()}


def results(sc: dict[str, Any], meta: dict[str, Any], what: str, n: int) -> dict[str, Any]:
    unit = meta.get("unit") or meta.get("target") or ""
    table = sc["scores"]
    best, verdict = best_and_verdict(table, sc["model"])
    out = {
        "task": "forecast",
        "what": what,
        "n": n,
        "unit": unit,
        "columns": list(POINT),
        "scores": table,
        "rows": [[k, *(v[c] for c in POINT)] for k, v in table.items()],
        "best": best,
        "verdict": verdict,
        "per_step": sc["per_step"],
        "mase_period": meta.get("mase_period"),
    }
    if "intervals" in sc:
        out["intervals"] = sc["intervals"]
    for key in ("per_target", "per_series"):  # the table above is then the overall one
        if key in sc:
            out["unit"] = "MAE, RMSE in training standard deviations"
            out[key] = {
                name: {k: v for k, v in results(t, _meta_of(meta, key, name), name, n).items()
                       if k != "what"}
                for name, t in sc[key].items()}
    return out


def _meta_of(meta: dict[str, Any], key: str, name: str) -> dict[str, Any]:
    return {**meta, "unit": None, "target": name} if key == "per_target" else meta


def text(results: dict[str, Any]) -> list[str]:
    """The lines printed under the score table: verdict, intervals, error per step."""
    lines = []
    if results.get("verdict"):
        lines.append(results["verdict"])
    if results.get("mase_period"):
        lines.append(f"MASE: MAE over the training part's in-sample naive MAE "
                     f"(lag {results['mase_period']}); sMAPE in percent")
    iv = results.get("intervals")
    if iv:
        parts = [f"{i['nominal']:.0%} interval: coverage {i['coverage']:.1%}, mean width "
                 f"{i['width']:.4g}" for i in iv["intervals"]]
        crps = "CRPS" if iv.get("crps_exact") else "CRPS (from the quantiles)"
        parts += [f"pinball {iv['pinball']:.4g}", f"{crps} {iv['crps']:.4g}"]
        lines.append("; ".join(parts))
    steps = results.get("per_step") or {}
    H = len(next(iter(steps.values()))["mae"]) if steps else 0
    from .common import table

    if H > 1:
        names = list(steps)
        rows = [[h + 1, *(steps[k]["mae"][h] for k in names)] for h in range(H)]
        several = results.get("per_target") or results.get("per_series")
        lines += ["", "MAE per step ahead" + (" (training standard deviations):"
                                               if several else ":"),
                  table(["step", *names], rows)]
    each = [("target", k, r) for k, r in (results.get("per_target") or {}).items()]
    each += [("series", k, r) for k, r in (results.get("per_series") or {}).items()]
    for what, name, r in each:
        head = [f"{name}", *(LABELS[c] for c in r["columns"])]
        lines += ["", f"{what} {name}:", table(head, r["rows"], marks(r))]
        if r.get("verdict"):
            lines.append(r["verdict"])
        for i in (r.get("intervals") or {}).get("intervals", []):
            lines.append(f"{i['nominal']:.0%} interval: coverage {i['coverage']:.1%}, mean "
                         f"width {i['width']:.4g}")
    return lines


def plots(model: str, p: Any, results: dict[str, Any], out: Any) -> list[str]:
    """``forecast.png`` (one per target: ``forecast_2.png``, ... for the others) and, for
    ``--horizon`` above 1, ``error_by_step.png``."""
    from . import plots as pl

    d = results["_plot"]
    meta = p.meta
    H = meta["horizon"]
    series = d.get("per_series")  # a panel: its first three series
    per = d.get("per_target") or (dict(list(series.items())[:3]) if series else None) or {
        meta["target"]: d}
    files = []
    for k, (target, sc) in enumerate(per.items()):
        unit = meta.get("unit") if len(per) == 1 else None
        ylabel = unit if target == "value" and unit else f"{target} ({unit})" if unit else target
        name = "forecast.png" if k == 0 else f"forecast_{k + 1}.png"
        files.append(name)
        band = _outer_band(sc.get("quantiles"), meta.get("quantiles"))
        what = f"{p.name}{'' if len(per) == 1 else ' ' + target}"
        if series:
            target = meta["target"]
            ylabel = f"{target} ({meta['unit']})" if meta.get("unit") else target
        if H == 1:
            pl.forecast_vs_actual(
                out / name,
                sc.get("labels", d.get("labels")),
                sc["actual"][:, 0],
                sc["pred"][:, 0],
                sc["forecasts"]["persistence"][:, 0],
                model_name=model,
                ylabel=ylabel,
                title=f"{what}: one-step forecasts on the held-out {p.held_out['part']} part",
                band=None if band is None else (band[0][:, 0], band[1][:, 0], band[2]),
            )
            continue
        pl.forecast_paths(
            out / name,
            sc.get("span", d.get("span")),
            sc["actual"],
            sc["pred"],
            band,
            model_name=model,
            ylabel=ylabel,
            title=f"{what}: {H}-step forecast paths from a few origins, held-out "
            f"{p.held_out['part']} part",
        )
    if H == 1:
        return files
    unit = meta.get("unit")
    ylabel = ("training standard deviations" if len(per) > 1
              else f"{meta['target']} ({unit})" if unit else meta["target"])
    pl.error_by_step(
        out / "error_by_step.png",
        {k: v["mae"] for k, v in results["per_step"].items()},
        ylabel=f"MAE ({ylabel})",
        title=f"{p.name}: error by step ahead ({len(next(iter(per.values()))['actual'])} "
        "forecasts)",
    )
    return [*files, "error_by_step.png"]


def _outer_band(quantiles: np.ndarray | None, levels: Any) -> tuple | None:
    """``(low, high, label)`` of the widest central interval, or ``None``."""
    if quantiles is None or not levels or len(levels) < 2:
        return None
    lo, hi = float(levels[0]), float(levels[-1])
    return quantiles[..., 0], quantiles[..., -1], f"{hi - lo:.0%} interval ({lo:g} to {hi:g})"
