"""The data layer: bundled datasets, CSV and text readers, windows, scaling, baselines.

Imports only NumPy, the standard library and ``rnnkit.errors``; never prints. Every input
error is a ``rnnkit.errors.DataError`` naming the file, column or row.
"""

from rnnkit.data.baselines import (
    majority_class,
    persistence_forecast,
    seasonal_naive_forecast,
    unigram_bits_per_char,
)
from rnnkit.data.containers import Sequences, Series, Text
from rnnkit.data.datasets import DatasetInfo, list_datasets, load_dataset
from rnnkit.data.sequences import encode_labels, load_npz, pad_sequences, read_sequences_csv
from rnnkit.data.tabular import MISSING_RULES, fill_missing, read_series_csv
from rnnkit.data.text import Vocab, char_lm_windows, read_text, split_text, tokenize
from rnnkit.data.windows import Scaler, chronological_split, make_windows

__all__ = [
    "MISSING_RULES",
    "DatasetInfo",
    "Scaler",
    "Sequences",
    "Series",
    "Text",
    "Vocab",
    "char_lm_windows",
    "chronological_split",
    "encode_labels",
    "fill_missing",
    "list_datasets",
    "load_dataset",
    "load_npz",
    "majority_class",
    "make_windows",
    "pad_sequences",
    "persistence_forecast",
    "read_sequences_csv",
    "read_series_csv",
    "read_text",
    "seasonal_naive_forecast",
    "split_text",
    "tokenize",
    "unigram_bits_per_char",
]
