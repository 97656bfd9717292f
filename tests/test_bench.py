"""`rnnkit bench`: its arguments are checked, and its JSON says what machine it ran on."""

import json

import pytest

from rnnkit import bench


@pytest.mark.parametrize("argv,message", [
    (["--sizes", "tiny,huge"], "--sizes: expected a comma list of tiny, small, medium, large, "
                               "long, got 'huge'"),
    (["--modes", "fit"], "--modes: expected a comma list of train, infer, stream, got 'fit'"),
    (["--cells", "rnn,tcn"], "--cells: expected a comma list of rnn, lstm, gru, got 'tcn'"),
    (["--reps", "0"], "argument --reps: expected an integer >= 1, got '0'"),
    (["--reps", "many"], "argument --reps: expected an integer >= 1, got 'many'"),
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
