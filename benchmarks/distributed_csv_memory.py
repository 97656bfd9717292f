"""Memory per rank of ``mpiexec -n K rnnkit train FILE.csv`` (docs/distributed.md).

    python benchmarks/distributed_csv_memory.py make /tmp/big.csv 250     # a 250 MB CSV
    python benchmarks/distributed_csv_memory.py run /tmp/big.csv 1        # one process
    python benchmarks/distributed_csv_memory.py run /tmp/big.csv 2        # mpiexec -n 2

``run`` starts the training (``--epochs 1``, an LSTM(8), a global batch of 8192) and reads
every rank's RssAnon (its own memory, not file cache) and CPU time from /proc every 0.1 s, and
prints each rank's peak and the CPU seconds it used in three phases told apart by rank 0's
lines: reading and preparing the data (until "training ..."; by then rank 0 has written the
series and every rank maps it), training (until the last "epoch E/E" line), and rank 0's
report on the held-out part.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

FLAGS = ["--target", "target", "--epochs", "1", "--hidden", "8", "--batch-size", "8192"]


def make(path: str, mb: float) -> None:
    rng = np.random.default_rng(0)
    rows, written = 200_000, 0
    with open(path, "w") as f:
        f.write("t,target,x1,x2\n")
        start = 0
        while f.tell() < mb * 1e6:
            t = np.arange(start, start + rows)
            block = np.column_stack([t, np.sin(t / 50) + rng.normal(0, 0.3, rows),
                                     rng.normal(size=rows), rng.normal(size=rows)])
            np.savetxt(f, block, fmt=["%d", "%.5f", "%.5f", "%.5f"], delimiter=",")
            start += rows
            written = f.tell()
    print(f"{path}: {start} rows, {written / 1e6:.0f} MB")


def rss_anon_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float | None:
    """User and system CPU time of ``pid`` so far."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ranks(root: int) -> dict[int, int]:
    """``{pid: rank}`` of the python processes started under the launcher ``root``."""
    parent, rank = {}, {}
    for pid in (int(p) for p in os.listdir("/proc") if p.isdigit()):
        try:
            with open(f"/proc/{pid}/stat") as f:
                parent[pid] = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = dict(kv.split(b"=", 1) for kv in f.read().split(b"\0") if b"=" in kv)
        except (OSError, ValueError, IndexError):
            continue
        if b"OMPI_COMM_WORLD_RANK" in env:
            rank[pid] = int(env[b"OMPI_COMM_WORLD_RANK"])
    out = {}
    for pid, r in rank.items():
        up = pid
        while up in parent and up not in (root, 0, 1):
            up = parent[up]
        if up == root:
            out[pid] = r
    return out


def run(path: str, k: int) -> None:
    out = tempfile.mkdtemp(prefix="csvmem-")
    cmd = [sys.executable, "-m", "rnnkit", "train", path, *FLAGS, "--out", out]
    if k > 1:
        flags = ["--oversubscribe"] + (["--allow-run-as-root"] if os.geteuid() == 0 else [])
        cmd = [shutil.which("mpiexec"), *flags, "-n", str(k), *cmd]
    else:
        cmd += ["--distributed", "off"]
    p = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    phase = ["prepare"]
    err: list[str] = []

    def read() -> None:
        for line in p.stderr:
            err.append(line)
            if line.startswith("training "):
                phase[0] = "train"
            elif line.startswith("epoch 1/1"):
                phase[0] = "report"

    threading.Thread(target=read, daemon=True).start()
    peak: dict[tuple[int, str], float] = {}
    cpu: dict[tuple[int, str], list[float]] = {}  # CPU seconds at a phase's first, last sample
    wall: dict[str, list[float]] = {}
    t0 = time.perf_counter()
    while p.poll() is None:
        now = phase[0]
        wall.setdefault(now, [time.perf_counter()] * 2)[1] = time.perf_counter()
        for pid, rank in (ranks(p.pid) if k > 1 else {p.pid: 0}).items():
            mb, used = rss_anon_mb(pid), cpu_seconds(pid)
            if mb is not None:
                peak[rank, now] = max(peak.get((rank, now), 0.0), mb)
            if used is not None:
                cpu.setdefault((rank, now), [used, used])[1] = used
        time.sleep(0.1)
    shutil.rmtree(out, ignore_errors=True)
    if p.returncode:
        print("".join(err[-20:]))
        sys.exit(p.returncode)
    size = os.path.getsize(path) / 1e6
    print(f"CSV {size:.0f} MB, K={k}, {time.perf_counter() - t0:.0f} s; peak RssAnon (MB):")
    for rank in sorted({r for r, _ in peak}):
        print(f"  rank {rank}: " + ", ".join(
            f"{name} {peak[rank, name]:.0f}" for name in ("prepare", "train", "report")
            if (rank, name) in peak))
    print("CPU seconds used in each phase (wall seconds of the phase):")
    for rank in sorted({r for r, _ in cpu}):
        print(f"  rank {rank}: " + ", ".join(
            f"{name} {cpu[rank, name][1] - cpu[rank, name][0]:.1f}"
            f" ({wall[name][1] - wall[name][0]:.1f})"
            for name in ("prepare", "train", "report") if (rank, name) in cpu))


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2], float(sys.argv[3]))
    else:
        run(sys.argv[2], int(sys.argv[3]))
