"""The single-process side of rnnkit.distributed (the MPI runs are in tests/distributed)."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rnnkit.distributed import LOCAL, World, checksum, launched_size, world


def test_launcher_environments_give_the_job_size():
    assert launched_size({}) == 1
    assert launched_size({"OMPI_COMM_WORLD_SIZE": "4"}) == 4
    assert launched_size({"PMI_SIZE": "1", "SLURM_STEP_NUM_TASKS": "3"}) == 3
    assert launched_size({"PMI_SIZE": "x"}) == 1


def test_world_modes():
    assert world("off") is LOCAL
    assert world("auto") is LOCAL  # no launcher here
    with pytest.raises(ValueError, match="distributed: expected one of auto, on, off, got 'yes'"):
        world("yes")


def test_without_a_launcher_mpi4py_is_never_imported():
    code = ("import sys, numpy as np, rnnkit as rk\n"
            "m = rk.Sequential([rk.RNN(2), rk.Dense(1)])\n"
            "m.fit(np.ones((4, 3, 1)), np.ones((4, 1)), epochs=1)\n"
            "assert 'mpi4py' not in sys.modules, 'mpi4py imported'\n")
    src = str(Path(__file__).parents[1] / "src")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={"PYTHONPATH": src, "PATH": "/usr/bin:/bin"}, timeout=300)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("n, k", [(10, 3), (2, 3), (7, 2), (0, 2)])
def test_shares_cover_every_row_once_and_differ_by_one_at_most(n, k):
    shares = []
    for r in range(k):
        w = World()
        w.rank, w.size = r, k
        shares.append(np.arange(n)[w.share(n)])
    np.testing.assert_array_equal(np.concatenate(shares), np.arange(n))
    sizes = [len(s) for s in shares]
    assert max(sizes) - min(sizes) <= 1


def test_checksum_sees_one_changed_bit():
    p = {"0.W": np.arange(6, dtype=np.float64).reshape(2, 3), "1.b": np.ones(2)}
    q = {k: v.copy() for k, v in p.items()}
    assert checksum(p) == checksum(q)
    q["1.b"].view(np.uint64)[1] ^= 1
    assert checksum(p) != checksum(q)


def _threads() -> int:
    from rnnkit import kernels

    return kernels.get_num_threads()


def test_joblib_workers_cap_rnnkit_threads_to_their_share_of_the_cpus():
    # joblib's process workers get OMP_NUM_THREADS = CPUs // n_jobs, which rnnkit's default
    # follows: 2 workers on 2 CPUs train with 1 thread each instead of oversubscribing
    joblib = pytest.importorskip("joblib")
    import os

    cpus = len(os.sched_getaffinity(0))
    got = joblib.Parallel(n_jobs=2)(joblib.delayed(_threads)() for _ in range(2))
    assert got == [max(1, cpus // 2)] * 2
