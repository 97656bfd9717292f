"""Real datasets that ship with rnnkit, loaded without any other package.

=========  ========  ===============================================  ====================
name       task      what                                             shape
=========  ========  ===============================================  ====================
sunspots   forecast  yearly mean sunspot number, 1700-2008            (309,)
co2        forecast  weekly Mauna Loa CO2 (ppmv), 1958-03 to 2001-12  (2284,), 59 missing
nile       forecast  yearly Nile flow at Aswan, 1871-1970             (100,)
airline    forecast  monthly airline passengers (1000s), 1949-1960    (144,)
digits     classify  UCI handwritten digits, 8x8 images, 10 classes   X (1797, 8, 8), y (1797,)
pydoc      charlm    Python's own help topics (``pydoc_data``)        str, ~465k characters
=========  ========  ===============================================  ====================

The files, their sources and licences are described in ``rnnkit/datasets/PROVENANCE.md``.
Digits are read as sequences row by row: 8 time steps of 8 pixel features, scaled from
0..16 to [0, 1]. The pydoc text is the stdlib's ``pydoc_data.topics`` joined in sorted key
order, so its length follows the Python version.

``load_dataset("ucr:PATH")`` reads a UCR archive problem from its own ``.tsv`` files on disk
(``rnnkit.data.ucr``, no other package); ``load_dataset("ucr:NAME")`` loads it by name through
the optional package ``aeon`` (or else ``tslearn``), which may need the network to fetch it.
"""

from __future__ import annotations

import gzip
import io
from dataclasses import dataclass
from importlib import resources

import numpy as np

from rnnkit.data._io import decode_utf8
from rnnkit.data.containers import Sequences, Series, Text
from rnnkit.data.sequences import encode_labels
from rnnkit.data.tabular import series_from_text
from rnnkit.data.ucr import is_ucr_path, load_ucr_files
from rnnkit.errors import DataError


@dataclass(frozen=True)
class DatasetInfo:
    """What ``list_datasets`` tells about one bundled dataset."""

    name: str
    task: str  # "forecast" | "classify" | "charlm"
    description: str
    shape: str
    source: str
    licence: str


_INFOS = (
    DatasetInfo(
        "sunspots",
        "forecast",
        "Yearly mean sunspot number, 1700-2008 (period ~11)",
        "(309,)",
        "NOAA NGDC, via statsmodels",
        "public domain",
    ),
    DatasetInfo(
        "co2",
        "forecast",
        "Weekly Mauna Loa CO2 in ppmv, 1958-2001, 59 missing weeks",
        "(2284,)",
        "Keeling & Whorf (SIO/CDIAC), via statsmodels",
        "public domain",
    ),
    DatasetInfo(
        "nile",
        "forecast",
        "Yearly Nile flow at Aswan, 1871-1970, in 10^8 m^3",
        "(100,)",
        "Cobb (1978), via statsmodels",
        "public domain",
    ),
    DatasetInfo(
        "airline",
        "forecast",
        "Monthly international airline passengers in thousands, 1949-1960",
        "(144,)",
        "Box & Jenkins (1976) Series G, via sktime",
        "BSD-3-Clause (sktime)",
    ),
    DatasetInfo(
        "digits",
        "classify",
        "UCI handwritten digits, 8x8 images read row by row",
        "X (1797, 8, 8), y (1797,)",
        "Alpaydin & Kaynak (UCI), via scikit-learn",
        "CC BY 4.0 (UCI); BSD-3-Clause (scikit-learn)",
    ),
    DatasetInfo(
        "pydoc",
        "charlm",
        "Python's help topics (pydoc_data.topics) as one text",
        "str, ~465k characters (Python 3.11)",
        "CPython documentation",
        "PSF License",
    ),
)

# name -> (file, date column, unit, seasonal period in rows)
_SERIES = {
    "sunspots": ("sunspots.csv", "year", "sunspot number", 11),  # the solar cycle, ~11 years
    "co2": ("co2.csv", "date", "ppmv", 52),
    "nile": ("nile.csv", "year", "10^8 m^3", None),
    "airline": ("airline.csv", "date", "thousands of passengers", 12),
}


def list_datasets() -> list[DatasetInfo]:
    """The bundled datasets, in the order of the table in this module's docstring."""
    return list(_INFOS)


def load_dataset(name: str, *, missing: str = "interpolate") -> Series | Sequences | Text:
    """Load a bundled dataset by name, or a UCR problem as ``"ucr:NAME"`` or ``"ucr:PATH"``
    (its folder of ``.tsv`` files, see ``rnnkit.data.ucr``).

    Args:
        name: one of ``[d.name for d in list_datasets()]``, ``"ucr:NAME"`` or ``"ucr:PATH"``.
        missing: the missing-value rule for series (see ``rnnkit.data.tabular``); only
            ``co2`` has gaps, so only its length changes (2225 rows with ``"drop"``).

    Returns:
        ``Series`` for forecast sets (``values`` ``(N,)`` float64, ``index`` the years or
        dates as text), ``Sequences`` for digits and UCR (``X`` ``(N, T, F)``), ``Text``
        for pydoc.

    Raises:
        DataError: an unknown name (the message lists the known ones), or a UCR problem
            whose optional package is missing or fails.
    """
    if name.startswith("ucr:"):
        return _load_ucr(name[4:])
    if name in _SERIES:
        file, date, unit, period = _SERIES[name]
        s = series_from_text(
            _read_text(file),
            file,
            target="value",
            date=date,
            missing=missing,
            unit=unit,
            period=period,
        )
        return Series(
            name=name,
            values=s.values,
            index=s.index,
            missing=s.missing,
            unit=unit,
            period=period,
            columns=s.columns,
            missing_rule=missing,
        )
    if name == "digits":
        return _load_digits()
    if name == "pydoc":
        return _load_pydoc()
    known = [d.name for d in _INFOS]
    raise DataError(
        f"load_dataset: unknown dataset {name!r}; expected one of {known} or 'ucr:NAME'"
    )


def _read_bytes(file: str) -> bytes:
    return resources.files("rnnkit").joinpath("datasets").joinpath(file).read_bytes()


def _read_text(file: str) -> str:
    return decode_utf8(_read_bytes(file), file)


def _load_digits() -> Sequences:
    raw = gzip.decompress(_read_bytes("digits.csv.gz")).decode("ascii")
    table = np.loadtxt(io.StringIO(raw), delimiter=",")  # (1797, 65): 64 pixels, label
    X = table[:, :64].reshape(-1, 8, 8) / 16.0  # (N, 8 rows = steps, 8 columns = features)
    y = table[:, 64].astype(np.int64)
    return Sequences(
        name="digits",
        X=X,
        y=y,
        classes=np.arange(10, dtype=np.int64),
        features=tuple(f"col{j}" for j in range(8)),
    )


def _load_pydoc() -> Text:
    try:
        from pydoc_data.topics import topics
    except ImportError as e:  # some Linux distributions split pydoc_data out of Python
        raise DataError(
            "pydoc: this Python has no pydoc_data module; install the "
            "distribution's full Python package (e.g. python3-doc)"
        ) from e
    return Text(name="pydoc", text="\n".join(topics[k] for k in sorted(topics)))


def _load_ucr(problem: str) -> Sequences:
    if not problem:
        raise DataError(
            "load_dataset: expected 'ucr:NAME' with a problem name, e.g. 'ucr:GunPoint'"
        )
    if is_ucr_path(problem):
        return load_ucr_files(problem)
    try:
        parts = _ucr_aeon(problem)
    except ImportError:
        try:
            parts = _ucr_tslearn(problem)
        except ImportError:
            raise DataError(
                f"ucr:{problem}: needs the optional package 'aeon' or 'tslearn' (pip install aeon)"
            ) from None
    (x_tr, y_tr), (x_te, y_te) = parts
    X = x_tr + x_te
    codes, classes = encode_labels([str(v) for v in (*y_tr, *y_te)], f"ucr:{problem}: y")
    same = len({x.shape for x in X}) == 1
    return Sequences(
        name=f"ucr:{problem}",
        X=np.stack(X) if same else X,
        y=codes,
        classes=classes,
        n_train=len(x_tr),
    )


def _ucr_aeon(problem: str) -> list[tuple[list[np.ndarray], list]]:
    from aeon.datasets import load_classification

    parts = []
    for split in ("train", "test"):
        try:
            X, y = load_classification(problem, split=split, return_metadata=False)
        except Exception as e:  # aeon raises many kinds (network, parsing, unknown name)
            raise DataError(f"ucr:{problem}: aeon could not load the {split} split: {e}") from e
        # aeon: (N, C, T) or a list of (C, T_i); ours: (T_i, C)
        parts.append(([np.asarray(x, dtype=np.float64).T for x in X], list(y)))
    return parts


def _ucr_tslearn(problem: str) -> list[tuple[list[np.ndarray], list]]:
    from tslearn.datasets import UCR_UEA_datasets

    try:
        x_tr, y_tr, x_te, y_te = UCR_UEA_datasets().load_dataset(problem)
    except Exception as e:  # tslearn raises many kinds (network, parsing)
        raise DataError(f"ucr:{problem}: tslearn could not load it: {e}") from e
    if x_tr is None:
        raise DataError(f"ucr:{problem}: tslearn does not know or could not fetch it")

    # tslearn pads shorter series with trailing NaN rows: (N, T_max, C)
    def trim(X: np.ndarray) -> list[np.ndarray]:
        return [x[~np.isnan(x).all(axis=1)].astype(np.float64) for x in X]

    return [(trim(x_tr), list(y_tr)), (trim(x_te), list(y_te))]
