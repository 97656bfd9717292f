"""The small records that the data layer hands back: a series, labelled sequences, a text.

They hold arrays, so they compare by identity (``eq=False``); ``frozen`` only stops fields
from being rebound by accident.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, eq=False)
class Series:
    """A time series, univariate or with extra feature columns.

    Attributes:
        name: the dataset name or the file it came from.
        values: ``(N,)`` for one column, or ``(N, F)`` when features were asked for; float64.
            Column ``target_col`` is the target, the others are features, in ``columns`` order.
        index: the time label of each row (dates or years as written in the file), or ``None``
            when the source had no time column.
        missing: how many missing cells the source had before ``missing_rule`` was applied.
        unit: the unit of the target, free text ("" when unknown).
        period: the seasonal period in rows (12 monthly, 52 weekly), or ``None``.
        columns: the column names, one per column of ``values``.
        target_col: which column of ``values`` is the target.
        missing_rule: the rule that filled or dropped the missing cells.
        future: ``(R, F)`` rows after the last target value (targets NaN), whose known-future
            covariates a forecast reads; ``None`` unless the reader was asked for them.
        future_index: the time labels of ``future``'s rows, when the source had a date column.
    """

    name: str
    values: np.ndarray
    index: list[str] | None = None
    missing: int = 0
    unit: str = ""
    period: int | None = None
    columns: tuple[str, ...] = ("value",)
    target_col: int = 0
    missing_rule: str = "interpolate"
    future: np.ndarray | None = None
    future_index: list[str] | None = None

    @property
    def target(self) -> np.ndarray:
        """The target column, ``(N,)``."""
        return self.values if self.values.ndim == 1 else self.values[:, self.target_col]


@dataclass(frozen=True, eq=False)
class Sequences:
    """Labelled sequences for classification (or, with ``classes=None``, regression).

    Attributes:
        name: the dataset name or the file it came from.
        X: ``(N, T, F)`` float64 when all sequences have one length, else a list of N arrays
            ``(T_i, F)`` (the library's variable-length batch; see ``pad_sequences``).
        y: ``(N,)`` int64 codes into ``classes``; float64 targets when ``classes`` is ``None``.
        classes: ``(C,)`` the distinct labels, sorted; ``y[i]`` is ``classes[y[i]]``'s index.
        ids: the sequence id of each row, when the source had ids.
        features: the feature (column) names, when the source had names.
        n_train: rows ``[0, n_train)`` are the source's own training split, when it has one.
    """

    name: str
    X: np.ndarray | list[np.ndarray]
    y: np.ndarray
    classes: np.ndarray | None
    ids: list[str] | None = None
    features: tuple[str, ...] = field(default_factory=tuple)
    n_train: int | None = None

    def __len__(self) -> int:
        return len(self.y)


@dataclass(frozen=True, eq=False)
class Text:
    """A text for a language model.

    Attributes:
        name: the dataset name or the file it came from.
        text: the whole text.
    """

    name: str
    text: str

    def __len__(self) -> int:
        return len(self.text)
