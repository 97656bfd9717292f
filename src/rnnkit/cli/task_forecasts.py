"""The forecast task as ``rnnkit train`` and ``evaluate`` run it: one series
(``task_forecast``) or a panel of them, one model for all (``task_panel``, which builds on
``task_forecast``); this module chooses, so that neither imports the other both ways."""

from __future__ import annotations

from typing import Any

import rnnkit as rk
from rnnkit.data import Series
from rnnkit.data.panel import Panel

from . import task_forecast, task_panel
from .prepared import Prepared
from .settings import Settings

plots = task_forecast.plots


def prepare(series: Series | Panel, s: Settings, name: str) -> Prepared:
    return (task_panel if isinstance(series, Panel) else task_forecast).prepare(series, s, name)


def report(model: rk.Sequential, p: Prepared) -> dict[str, Any]:
    return (task_panel if p.meta.get("series_ids") else task_forecast).report(model, p)


def evaluate(model: rk.Sequential, meta: dict[str, Any], series: Series | Panel
             ) -> dict[str, Any]:
    return (task_panel if meta.get("series_ids") else task_forecast).evaluate(model, meta,
                                                                              series)
