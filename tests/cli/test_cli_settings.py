"""One flag and one config key per setting; help with an example on every command."""

from __future__ import annotations

import argparse
import dataclasses
import json

import pytest

from rnnkit.cli import available_commands, build_parser, main
from rnnkit.cli.settings import FIELDS, Settings, load_config, to_toml

NOT_SETTINGS = {"command", "data", "config", "json", "quiet", "help"}


def _subparser(name: str) -> argparse.ArgumentParser:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]


def test_every_setting_has_a_flag_and_every_flag_a_setting():
    dests = {a.dest for a in _subparser("train")._actions} - NOT_SETTINGS
    assert dests == set(FIELDS)
    flags = {s for a in _subparser("train")._actions for s in a.option_strings}
    for name in FIELDS:
        assert "--" + name.replace("_", "-") in flags


def test_every_setting_is_a_config_key(tmp_path):
    full = Settings(
        task="forecast",
        dataset="nile",
        target="value",
        features=("a", "b"),
        future_features=("c",),
        series_id="store",
        calendar=True,
        date="year",
        window=5,
        hidden=3,
        epochs=2,
        batch_size=4,
        clip_value=0.5,
        tbptt=3,
        patience=1,
        out="x",
        resume="y",
        bidirectional=True,
        weight_decay=0.1,
        dropout=0.2,
        recurrent_dropout=0.1,
        zoneout=0.05,
        layer_norm=True,
        peepholes=True,
        proj_size=2,
        period=7,
        loss="quantile",
        quantiles=(0.05, 0.5, 0.95),
    )
    text = to_toml(full).replace("# out = ", "out = ").replace("# resume = ", "resume = ")
    path = tmp_path / "all.toml"
    path.write_text(text)
    loaded = load_config(str(path))
    assert set(loaded) == set(FIELDS)
    assert Settings(**loaded) == full


def test_defaults_have_their_reasons_and_help():
    for f in dataclasses.fields(Settings):
        assert f.metadata["help"], f.name


@pytest.mark.parametrize("command", available_commands())
def test_help_of_every_command_shows_an_example(command, capsys):
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert "example" in out and f"rnnkit {command}" in out


def test_top_level_help_lists_exit_codes(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "exit codes" in out and "130" in out


def test_datasets_lists_sizes_and_provenance(capsys):
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    assert "sunspots" in out and "(309,)" in out and "licences" in out
    assert main(["datasets", "--json"]) == 0
    names = [d["name"] for d in json.loads(capsys.readouterr().out)]
    assert names[:2] == ["sunspots", "co2"]


def test_bench_delegates_to_rnnkit_bench(monkeypatch):
    bench = pytest.importorskip("rnnkit.bench")
    seen = []
    monkeypatch.setattr(bench, "main", lambda argv: seen.append(argv) or 0)
    assert main(["bench", "--quick"]) == 0
    assert seen == [["--quick"]]
