"""docs/gradient-flow.md states what its commands print: every row of its table of fresh
models is run here as written (seed 0) and its numbers compared with the summary the command
prints, and its ``--save-json`` examples are run."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

import rnnkit as rk
from rnnkit.cli import main

DOC = Path(__file__).parents[1] / "docs" / "gradient-flow.md"
ROW = re.compile(r"^\| `rnnkit (diagnose [^`]+)` \|(.*)\|\s*$")


def doc_rows() -> list[tuple[str, list[str]]]:
    rows = []
    for line in DOC.read_text(encoding="utf-8").splitlines():
        m = ROW.match(line)
        if m:
            rows.append((m.group(1), [c.strip() for c in m.group(2).split("|")]))
    return rows


def test_the_doc_has_its_table():
    assert len(doc_rows()) >= 5


@pytest.mark.parametrize("command, cells", doc_rows(), ids=[c for c, _ in doc_rows()])
def test_doc_table_row_is_what_the_command_prints(command, cells, capsys):
    assert main(shlex.split(command)) == 0
    out = capsys.readouterr().out.splitlines()
    # the summary's row: layer T |dL/dh_1| |dL/dh_T| mean|J| λ1 ρ σmax sat dead horizon verdict
    printed = out[2].split()
    grad_1, grad_T, lam, rho, sigma, dead, horizon, verdict = (
        printed[2], printed[3], printed[5], printed[6], printed[7], printed[9], printed[10],
        printed[11])
    assert cells[:8] == [grad_1, grad_T, lam, rho, sigma, dead, horizon,
                         verdict], out


def test_doc_save_json_examples(tmp_path, capsys, monkeypatch):
    """The two commands of the doc's first code block, with a small model and the file names
    it uses, run in a temporary folder."""
    text = DOC.read_text(encoding="utf-8")
    block = text[text.index("```sh\nrnnkit diagnose") + 6 :]
    lines = block[: block.index("```")].replace("\\\n", " ").splitlines()
    commands = [shlex.split(line.split("#")[0]) for line in lines if line.strip()]
    assert [c[:2] for c in commands] == [["rnnkit", "diagnose"]] * 2
    monkeypatch.chdir(tmp_path)
    model = rk.Sequential([rk.GRU(3), rk.Dense(1)], seed=0)
    model.build(1)
    model.save("model.safetensors")
    for argv in commands:
        argv = [a.replace("MODEL", "model.safetensors").replace("DATA", "nile") for a in argv]
        argv = [a if a not in ("64", "200") else {"64": "8", "200": "30"}[a] for a in argv]
        if "nile" in argv:
            argv += ["--seq-len", "10"]
        assert main(argv[1:]) == 0, argv
        report = json.loads((tmp_path / "flow.json").read_text())
        assert report["verdict"] in capsys.readouterr().out
        assert (tmp_path / "flow.png").read_bytes()[:4] == b"\x89PNG"
        (tmp_path / "flow.json").unlink()
