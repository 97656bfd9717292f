"""`rnnkit bench`: its arguments are checked, and its JSON says what machine it ran on."""

import json

import pytest

from rnnkit import bench


@pytest.mark.parametrize("argv,message", [
    (["--sizes", "tiny,huge"], "--sizes: expected a comma list of tiny, small, medium, large, "
                               "long, wide, batch, b512, h1024, got 'huge'"),
    (["--modes", "fit"], "--modes: expected a comma list of train, infer, stream, got 'fit'"),
    (["--cells", "rnn,tcn"], "--cells: expected a comma list of rnn, lstm, gru, got 'tcn'"),
    (["--reps", "0"], "argument --reps: expected an integer >= 1, got '0'"),
    (["--reps", "many"], "argument --reps: expected an integer >= 1, got 'many'"),
    (["--threads", "0"], "argument --threads: expected an integer >= 1, got '0'"),
    (["--load", "-1"], "argument --load: expected an integer >= 0, got '-1'"),
])
def test_bad_arguments_name_the_flag_and_what_came(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        bench.main(argv)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_json_rows_and_the_machine_they_came_from(capsys):
    argv = ["--cells", "rnn", "--sizes", "tiny", "--modes", "infer,stream", "--reps", "1",
            "--no-torch", "--no-memory", "--json"]
    assert bench.main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    host = report["machine"]
    assert host["cpu"] and host["cpus"] >= 1 and host["python"].count(".") == 2
    assert host["numpy"] == __import__("numpy").__version__
    rows = report["rows"]
    assert [(r["cell"], r["mode"], r["size"]) for r in rows] == [
        ("rnn", "infer", "tiny"), ("rnn", "stream", "stream")]
    for r in rows:
        assert r["rnnkit_ms"] > 0 and r["torch_ms"] is None and r["ratio"] is None
        assert (r["B"], r["T"], r["D"], r["H"]) == (1, 100, 8, 32) or r["mode"] == "stream"


def test_threads_load_and_the_header_in_the_json(capsys, monkeypatch):
    started = []
    popen = bench.subprocess.Popen
    monkeypatch.setattr(bench.subprocess, "Popen",
                        lambda *a, **k: started.append(popen(*a, **k)) or started[-1])
    argv = ["--cells", "rnn", "--sizes", "tiny", "--modes", "infer", "--reps", "1",
            "--no-torch", "--no-memory", "--json", "--threads", "1", "--load", "2"]
    assert bench.main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["threads"] == 1
    assert report["load"]["busy_processes"] == 2 and len(started) == 2
    assert all(p.poll() is not None for p in started)  # stopped afterwards
    assert report["load"]["before"]["cpus"] >= 1
    target = report["target"]
    assert target["vector_bits"] in (128, 256, 512) and target["tiles"] in (
        "avx512", "avx2", "neon", "sse")


def test_busy_processes_stop_on_ctrl_c(monkeypatch):
    started = []
    popen = bench.subprocess.Popen
    monkeypatch.setattr(bench.subprocess, "Popen",
                        lambda *a, **k: started.append(popen(*a, **k)) or started[-1])

    def interrupted(*a, **k):
        assert all(p.poll() is None for p in started)  # running while the cases run
        raise KeyboardInterrupt

    monkeypatch.setattr(bench, "run_case", interrupted)
    monkeypatch.setattr(bench, "sgemm_gflops", lambda: 1.0)
    with pytest.raises(KeyboardInterrupt):
        bench.main(["--cells", "rnn", "--sizes", "tiny", "--modes", "infer", "--no-torch",
                    "--load", "1"])
    assert len(started) == 1 and started[0].poll() is not None


def test_the_load_line_warns_when_the_machine_is_busy():
    quiet = {"load1": 0.3, "load5": 0.2, "cpus": 4, "busy": False}
    busy = {"load1": 3.5, "load5": 2.0, "cpus": 4, "busy": True}
    assert "WARNING" not in bench.load_line(quiet, busy, 2)
    line = bench.load_line(busy, busy, 0)
    assert "WARNING: the machine was busy" in line and "3.50 on 4 CPUs" in line
    assert bench.machine_load()["cpus"] >= 1


def test_variants_rows_against_the_plain_cell(capsys):
    from rnnkit.cli import main

    argv = ["bench", "--variants", "--cells", "rnn", "--sizes", "tiny", "--reps", "1",
            "--no-torch", "--json"]
    assert main(argv) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [(r["variant"], r["size"]) for r in rows] == [("recurrent_dropout", "tiny"),
                                                           ("zoneout", "tiny")]
    for r in rows:
        assert r["rnnkit_ms"] > 0 and r["plain_ms"] > 0 and r["torch_ms"] is None
    assert main([*argv, "--only", "zoneout"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [r["variant"] for r in rows] == ["zoneout"]
    assert main([*argv, "--only", "peephole"]) == 2
    assert "got ['peephole']" in capsys.readouterr().err


def _row(ratio, fraction):
    return {"cell": "lstm", "mode": "infer", "size": "small", "B": 16, "T": 100, "D": 16,
            "H": 64, "dtype": "float32", "rnnkit_ms": 1.0, "torch_ms": ratio,
            "ratio": ratio, "limit_fraction": fraction}


def test_summary_and_what_products_at_the_limit_would_give():
    # product-bound: 0.8 of the limit -> 1.0 / 0.8 = 1.25; 1.2 of it (a limit measured low)
    # stays 2.0; at 0.4 of it not bound, stays 8.0; no torch time: left out
    rows = [_row(1.0, 0.8), _row(2.0, 1.2), _row(8.0, 0.4), {**_row(None, 0.9), "ratio": None}]
    s = bench.summary(rows)
    assert s["cases"] == 3 and s["bound_cases"] == 2 and s["min"] == 1.0
    assert s["geomean"] == pytest.approx(16 ** (1 / 3))
    assert s["geomean_at_limit"] == pytest.approx((1.25 * 2.0 * 8.0) ** (1 / 3))
    text = bench.format_table(rows)
    assert "geometric mean torch/rnnkit: 2.52 over 3 cases; min 1.00" in text
    assert "with the 2 cases at 50% of the limit or more at 100% of it, the others as " \
           "measured: 2.71" in text
    assert bench.summary([{**_row(None, 0.9), "ratio": None}]) is None
    assert "geometric mean" not in bench.format_table([{**_row(None, 0.9), "ratio": None}])
