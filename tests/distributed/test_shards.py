"""Per-rank data of ``mpiexec -n K rnnkit train`` (cli/shards.py), in one process: rank 0
prepares DATA and writes its arrays, a second rank gets what rank 0 broadcasts and maps the
files (the MPI launches are in test_mpi.py)."""

import numpy as np
import pytest

from rnnkit.cli import build_parser, shards
from rnnkit.cli import settings as st
from rnnkit.cli.train import _read
from rnnkit.data.series_windows import WindowRows
from rnnkit.distributed import World


class Pair(World):
    """Rank 0 or 1 of two: what rank 0 broadcasts is replayed, in order, to rank 1."""

    def __init__(self, rank: int, sent: list) -> None:
        self.rank, self.size, self.sent, self.waits = rank, 2, sent, 0

    def wait(self) -> None:
        self.waits += 1  # MPIWorld's sleeps: a rank waiting for rank 0 must not spin

    def bcast(self, buf: np.ndarray) -> np.ndarray:
        if self.rank == 0:
            self.sent.append(buf.copy())
        else:
            buf[...] = self.sent.pop(0)
        return buf


def settings(*argv: str) -> st.Settings:
    return st.from_args(build_parser().parse_args(["train", *argv]))


def both_ranks(s: st.Settings, out):
    s0, p0, name = _read(s)
    before = {"X": p0.X if isinstance(p0.X, list) else np.asarray(p0.X), "y": np.array(p0.y),
              "val": None if p0.val is None else tuple(
                  a if isinstance(a, list) else np.asarray(a) for a in p0.val),
              "held": {k: np.asarray(v) if hasattr(v, "shape") else v
                       for k, v in p0.held_out.items()}}
    sent: list = []
    ranks = Pair(0, sent), Pair(1, sent)
    s0, p0, _, _ = shards.share(ranks[0], s0, p0, name, out)
    s1, p1, name1, out1 = shards.share(ranks[1], settings(), None, "", None)
    assert not sent and (name1, out1) == (name, out)
    assert ranks[0].waits == ranks[1].waits == 1  # before the first broadcast
    return before, (s0, p0), (s1, p1)


def test_rank_1_maps_what_rank_0_prepared_from_a_csv(tmp_path, monkeypatch):
    monkeypatch.setattr(shards, "HELD_BYTES", 0)  # rank 0 maps even a small held-out part
    r = np.random.default_rng(0)
    rows = "".join(f"{i},{np.sin(i / 5) + r.normal(0, 0.1):.4f},{r.normal():.4f}\n"
                   for i in range(300))
    (tmp_path / "s.csv").write_text("t,target,x1\n" + rows)
    s = settings(str(tmp_path / "s.csv"), "--target", "target", "--loss", "quantile",
                 "--window", "20", "--val", "0.2", "--out", str(tmp_path / "run"))
    (tmp_path / "run").mkdir()
    before, (s0, p0), (s1, p1) = both_ranks(s, tmp_path / "run")
    assert s1 == s0 and s1.task == "forecast" and s1.window == 20
    for p in (p0, p1):  # every rank cuts its windows from a memory map of the same series
        assert isinstance(p.X, WindowRows) and isinstance(p.val[0], WindowRows)
        assert isinstance(p.X.src.values, np.memmap) and p.X.src is p.val[0].src
        np.testing.assert_array_equal(p.X, before["X"])
        np.testing.assert_array_equal(p.y, before["y"])
        np.testing.assert_array_equal(p.val[1], before["val"][1])
    assert p1.X.src.values.filename == p0.X.src.values.filename
    files = sorted(f.name for f in (tmp_path / "run" / shards.FOLDER).iterdir())
    assert files == ["held-X.npy", "held-y.npy", "series.npy"]  # no windows for training
    assert (p1.task, p1.metric, p1.out_size, p1.vocab_size) == (
        p0.task, p0.metric, p0.out_size, p0.vocab_size)
    assert p1.meta == p0.meta and p1.held_out == {}
    out = np.random.default_rng(1).standard_normal((len(p0.y), p0.out_size))
    for a, b in zip(p1.loss(out, np.asarray(p1.y)), p0.loss(out, np.asarray(p0.y))):
        np.testing.assert_array_equal(a, b)  # the quantile loss at the same levels
    np.testing.assert_array_equal(p0.held_out["X"], before["held"]["X"])  # rank 0 reports
    assert isinstance(p0.held_out["X"], np.memmap)
    shards.remove(tmp_path / "run")
    assert not (tmp_path / "run" / shards.FOLDER).exists()


def test_text_ids_and_variable_length_sequences(tmp_path):
    (tmp_path / "b.txt").write_text("the cat sat on the mat. " * 200)
    (tmp_path / "run").mkdir()
    s = settings(str(tmp_path / "b.txt"), "--seq-len", "16")
    before, _, (s1, p1) = both_ranks(s, tmp_path / "run")
    assert s1.task == "charlm" and p1.X.dtype == np.int64 and p1.vocab_size > 2
    np.testing.assert_array_equal(p1.X, before["X"])
    r = np.random.default_rng(0)
    lengths = r.integers(3, 9, 60)
    np.savez(tmp_path / "v.npz", X=r.standard_normal((60, 8, 2)), y=r.integers(0, 2, 60),
             lengths=lengths)
    before, (_, p0), (_, p1) = both_ranks(settings(str(tmp_path / "v.npz")), tmp_path / "run")
    assert isinstance(before["X"], list) and p1.lengths is not None  # padded, lengths beside
    for p in (p0, p1):
        assert [len(x) for x in before["X"]] == p.lengths.tolist()
        for x, padded, n in zip(before["X"], p.X, p.lengths):
            np.testing.assert_array_equal(padded[:n], x)
            assert not padded[n:].any()


def test_a_rank_that_cannot_read_the_files_says_where_they_should_be(tmp_path):
    with pytest.raises(FileNotFoundError, match="must be on a file system every rank can read"):
        shards.read(tmp_path / "X.npy", {"dtype": "<f4", "shape": [3, 2]})
    shards.write(tmp_path / "X.npy", np.ones((3, 2), np.float32))
    with pytest.raises(ValueError, match=r"holds float32 \(3, 2\), rank 0 wrote float64"):
        shards.read(tmp_path / "X.npy", {"dtype": "<f8", "shape": [3, 2]})


def test_written_in_blocks_the_file_holds_every_row(tmp_path, monkeypatch):
    monkeypatch.setattr(shards, "BLOCK_BYTES", 40)  # 3 rows of 12 bytes a block
    a = np.arange(10 * 3, dtype=np.float32).reshape(10, 3)
    np.testing.assert_array_equal(shards.write(tmp_path / "a.npy", a), a)
    assert not list(tmp_path.glob("*.part"))


def test_held_out_windows_are_written_to_a_file_a_block_at_a_time(tmp_path, monkeypatch):
    """Rank 0 reports from a map of the held-out windows, not from all of them in memory."""
    from rnnkit.data.series_windows import SeriesWindows

    monkeypatch.setattr(shards, "WINDOW_BLOCK_BYTES", 100)  # 2 windows of 5 x 2 float64
    v = np.random.default_rng(0).normal(size=(40, 2))
    src = SeriesWindows(v, v.mean(0), v.std(0), window=5, horizon=2, targets=1, inputs=2)
    for what in ("X", "y"):
        rows = src.rows(3, 30, what, model=False)
        got = shards.write(tmp_path / f"{what}.npy", rows)
        assert isinstance(got, np.memmap) and rows.nbytes == got.nbytes
        np.testing.assert_array_equal(got, np.asarray(rows), strict=True)
