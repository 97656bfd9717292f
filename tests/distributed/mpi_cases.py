"""Run under ``mpiexec -n K``: every case trains once over the K ranks and once in one process
(``distributed="off"``, on every rank) and compares weights and history. Rank 0 prints one
line per case and ``ALL OK`` at the end; any difference exits with status 1."""

import os
import sys
import tempfile

import numpy as np

import rnnkit as rk
from rnnkit.distributed import LOCAL, world

W = LOCAL  # world("on") in main(): importing this file (test_mpi's warm-up) starts no MPI


def data(n=13, T=7, D=3, seed=0, classes=None, ids=False):
    r = np.random.default_rng(seed)
    X = r.integers(0, 5, (n, T)) if ids else r.standard_normal((n, T, D))
    if classes:
        return X, r.integers(0, classes, n)
    return X, r.standard_normal((n, 2))


def seq_targets(n=13, T=7, seed=1):
    return np.random.default_rng(seed).standard_normal((n, T, 2))


def case_list():
    X, y = data()
    ys = seq_targets()
    lengths = np.random.default_rng(2).integers(1, 8, 13)
    lengths[0] = 7
    Xi, yc = data(ids=True, classes=None)
    yi = np.random.default_rng(3).integers(0, 5, (13, 7))
    f = dict(dtype="float64")
    cells = {"rnn": rk.RNN, "lstm": rk.LSTM, "gru": rk.GRU}
    cases = {}
    for name, cell in cells.items():
        cases[name] = (lambda c=cell: rk.Sequential([c(4), rk.Dense(2)], **f),
                       X, y, dict(batch_size=4))
        cases[f"{name}-lengths-seq"] = (
            lambda c=cell: rk.Sequential([c(4, return_sequences=True), rk.Dense(2)], **f),
            X, ys, dict(batch_size=5, lengths=lengths))
    cases["lstm-float32"] = (lambda: rk.Sequential([rk.LSTM(4), rk.Dense(2)]), X, y,
                             dict(batch_size=4))
    cases["gru-bidirectional-lengths"] = (
        lambda: rk.Sequential([rk.GRU(3, bidirectional=True), rk.Dense(2)], **f),
        X, y, dict(batch_size=4, lengths=lengths))
    cases["stacked-lstm-rnn"] = (
        lambda: rk.Sequential([rk.LSTM(3, return_sequences=True), rk.RNN(4), rk.Dense(2)], **f),
        X, y, dict(batch_size=6))
    cases["tbptt-seq-lengths"] = (
        lambda: rk.Sequential([rk.LSTM(4, return_sequences=True), rk.Dense(2)], **f),
        X, ys, dict(batch_size=4, tbptt=3, lengths=lengths,
                    metrics=["rmse", "mse", "mae", "mape", "accuracy"]))
    cases["tbptt-last-step-lengths"] = (
        lambda: rk.Sequential([rk.GRU(4), rk.Dense(2)], **f),
        X, y, dict(batch_size=4, tbptt=2, lengths=lengths))
    cases["two-rows"] = (  # fewer rows than ranks at K=3: one rank never has a row
        lambda: rk.Sequential([rk.LSTM(4), rk.Dense(2)], **f), X[:2], y[:2],
        dict(batch_size=4))
    cases["empty-share-batch-2"] = (
        lambda: rk.Sequential([rk.RNN(4), rk.Dense(2)], **f), X, y, dict(batch_size=2))
    for opt in (rk.SGD(0.1, momentum=0.9, nesterov=True), rk.Adam(0.01), rk.AdamW(0.01),
                rk.RMSprop(0.01), rk.Adagrad(0.1)):
        cases[f"opt-{type(opt).__name__}"] = (
            lambda: rk.Sequential([rk.GRU(4), rk.Dense(2)], **f), X, y,
            dict(batch_size=4, optimizer=type(opt)(**opt.hyperparameters())))
    cases["clip-norm"] = (lambda: rk.Sequential([rk.LSTM(4), rk.Dense(2)], **f), X, y,
                          dict(batch_size=4, clip_norm=0.05, optimizer=rk.SGD(0.5)))
    cases["clip-value"] = (lambda: rk.Sequential([rk.LSTM(4), rk.Dense(2)], **f), X, y,
                           dict(batch_size=4, clip_value=0.01, optimizer=rk.SGD(0.5)))
    Xc, yc = data(classes=3)
    cases["classify-val"] = (
        lambda: rk.Sequential([rk.GRU(4), rk.Dense(3)], **f), Xc, yc,
        dict(batch_size=4, loss="cross_entropy", validation_split=0.3))
    cases["charlm-embedding-tbptt"] = (
        lambda: rk.Sequential([rk.Embedding(5, 3), rk.LSTM(4, return_sequences=True),
                               rk.Dense(5)], **f),
        Xi, yi, dict(batch_size=4, loss="cross_entropy", tbptt=3))
    # dropout masks are drawn per global row: K ranks draw what one process does
    cases["dropout-zoneout-stacked"] = (
        lambda: rk.Sequential([rk.LSTM(4, dropout=0.3, recurrent_dropout=0.3, zoneout=0.2,
                                       return_sequences=True), rk.Dropout(0.4),
                               rk.GRU(3, recurrent_dropout=0.2), rk.Dense(2)], **f),
        X, y, dict(batch_size=5))
    cases["dropout-tbptt-lengths"] = (
        lambda: rk.Sequential([rk.RNN(4, recurrent_dropout=0.3, dropout=0.2,
                                      return_sequences=True), rk.Dense(2)], **f),
        X, ys, dict(batch_size=4, tbptt=3, lengths=lengths))
    cases["variants-layer-norm-peepholes-proj"] = (
        lambda: rk.Sequential([rk.LSTM(4, layer_norm=True, peepholes=True, proj_size=2,
                                       return_sequences=True),
                               rk.GRU(3, layer_norm=True), rk.Dense(2)], **f),
        X, y, dict(batch_size=5, lengths=lengths))
    return cases


def resume_case() -> list[str]:
    """A checkpoint written by one process after 2 epochs, resumed by the K ranks for 2
    more: the single-process model of 4 uninterrupted epochs."""
    X, y = data()
    make = lambda: rk.Sequential([rk.GRU(4), rk.Dense(2)], dtype="float64")  # noqa: E731
    opts = dict(batch_size=4, seed=5, optimizer="adam")
    full = make()
    full.fit(X, y, epochs=4, distributed="off", **opts)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "ckpt.safetensors")
        make().fit(X, y, epochs=2, distributed="off", callbacks=[rk.ModelCheckpoint(path)],
                   **opts)
        resumed = make()
        resumed.fit(X, y, epochs=4, distributed=W, resume=path, **opts)
    p1, pk = full.parameters(), resumed.parameters()
    return [k for k in p1 if not np.allclose(pk[k], p1[k], rtol=1e-12, atol=1e-15)]


def warm_up() -> None:
    """Every case trained for one epoch in this one process, so that its compiled kernels are
    on disk before K ranks start: cold, each rank would compile them all at once."""
    resume_case()
    for make, X, y, opts in case_list().values():
        make().fit(X, y, epochs=1, distributed="off",
                   **{k: v for k, v in opts.items() if k != "optimizer"})


def main() -> int:
    global W
    W = world("on")
    failed = []
    only = sys.argv[1:]
    if not only or "resume" in only:
        bad = resume_case()
        if W.rank == 0:
            print(f"resume-from-one-process: {'FAIL ' + ', '.join(bad) if bad else 'ok'}")
        failed += ["resume"] if bad else []
    for name, (make, X, y, opts) in case_list().items():
        if only and name not in only:
            continue
        rtol = 1e-5 if "float32" in name else 1e-12
        runs = []
        for mode in ("off", W):
            model = make()
            o = dict(opts)
            if "optimizer" in o and not isinstance(o["optimizer"], str):
                o["optimizer"] = type(o["optimizer"])(**o["optimizer"].hyperparameters())
            h = model.fit(X, y, epochs=3, seed=5, distributed=mode, **o)
            runs.append((model.parameters(), h))
        (p1, h1), (pk, hk) = runs
        bad = [k for k in p1 if not np.allclose(pk[k], p1[k], rtol=rtol, atol=rtol * 1e-3)]
        # exact: everything but each rank's own clock (training metrics included)
        keys = [k for k in h1.epochs[0] if k != "time"]
        for k in keys:
            a, b = np.array(h1[k], float), np.array(hk[k], float)
            if not np.allclose(a, b, rtol=max(rtol, 1e-10)):
                bad.append(f"history[{k}] {a} != {b}")
        diff = max(float(np.max(np.abs(pk[k] - p1[k]) / (np.abs(p1[k]) + 1e-30))) for k in p1)
        if W.rank == 0:
            print(f"{name}: {'FAIL ' + ', '.join(bad) if bad else 'ok'} "
                  f"(max relative difference {diff:.1e})", flush=True)
        if bad:
            failed.append(name)
    if W.rank == 0:
        print("ALL OK" if not failed else f"FAILED: {failed}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
