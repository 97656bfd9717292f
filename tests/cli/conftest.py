"""Helpers for driving the CLI in-process: ``cli(capsys, *argv) -> (code, stdout, stderr)``."""

from __future__ import annotations

import numpy as np
import pytest

from rnnkit.cli import main


@pytest.fixture
def cli(capsys):
    def run(*argv: str) -> tuple[int, str, str]:
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        assert "Traceback" not in err
        return code, out, err

    return run


@pytest.fixture
def series_csv(tmp_path):
    """A monthly series with a gap, a date column and a feature column."""
    t = np.arange(60)
    rows = ["date,sales,temp"]
    for i in t:
        sales = "" if i == 7 else f"{10 + 3 * np.sin(2 * np.pi * i / 12) + 0.1 * i:.3f}"
        rows.append(f"{2000 + i // 12}-{1 + i % 12:02d}-01,{sales},{20 + i % 5}")
    path = tmp_path / "sales.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def long_csv(tmp_path):
    """Labelled sequences in long format, of different lengths, two classes."""
    rng = np.random.default_rng(0)
    rows = ["sequence_id,time,x,y,label"]
    for s in range(24):
        label = "up" if s % 2 else "down"
        for t in range(5 + s % 4):
            v = t * (1 if label == "up" else -1) + rng.normal(0, 0.1)
            rows.append(f"s{s},{t},{v:.3f},{rng.normal():.3f},{label}")
    path = tmp_path / "moves.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def text_file(tmp_path):
    words = "the quick brown fox jumps over the lazy dog. def f(x): return x + 1\n" * 40
    path = tmp_path / "book.txt"
    path.write_text(words, encoding="utf-8")
    return path
