"""Old kernel cache folders (other stamps) are removed, and nothing else
(``rnnkit.kernels._target.clean_old``)."""

from __future__ import annotations

import os

from rnnkit.kernels import _target

DAY = _target.STALE_S
NOW = 2_000_000_000.0


def _folder(parent, name, files=("lstm.forward_loop-128.py311.nbi",
                                 "lstm.forward_loop-128.py311.1.nbc", "blas.json"), age=2 * DAY):
    d = parent / name
    d.mkdir()
    for f in files:
        (d / f).write_bytes(b"x")
        os.utime(d / f, (NOW - age, NOW - age))
    return d


def test_only_old_folders_of_rnnkit_kernels_are_removed(tmp_path):
    current = _folder(tmp_path, "rnnkit-0123456789abcdef", age=10 * DAY)
    old = _folder(tmp_path, "rnnkit-fedcba9876543210")
    empty = _folder(tmp_path, "rnnkit-00000000000000aa", files=())
    recent = _folder(tmp_path, "rnnkit-1111111111111111", age=DAY - 60)
    one_recent = []  # one file of each written now: the first, the middle or the last
    for i, name in enumerate(("blas.json", "lstm.forward_loop-128.py311.nbi",
                              "lstm.forward_loop-128.py311.1.nbc")):
        one_recent.append(_folder(tmp_path, f"rnnkit-222222222222222{i}"))
        os.utime(one_recent[-1] / name, (NOW, NOW))
    foreign = _folder(tmp_path, "rnnkit-3333333333333333",
                      files=("lstm.forward_loop-128.py311.nbi", "notes.txt"))
    nested = []  # a folder among the files (named like one), listed first or later
    for i, name in enumerate(("a.nbi", "m.nbc", "z.nbi", "blas.json")):
        nested.append(_folder(tmp_path, f"rnnkit-444444444444444{i}", files=("b.nbi", "y.nbc")))
        (nested[-1] / name).mkdir()
        os.utime(nested[-1] / name, (NOW - 2 * DAY, NOW - 2 * DAY))
    other = _folder(tmp_path, "rnnkit-old")
    lib = _folder(tmp_path, "numba-fedcba9876543210")
    (tmp_path / "elsewhere").mkdir()
    target = _folder(tmp_path / "elsewhere", "rnnkit-5555555555555555")
    link = tmp_path / "rnnkit-6666666666666666"
    link.symlink_to(target, target_is_directory=True)
    kept = (current, recent, *one_recent, foreign, *nested, other, lib, target)
    before = {d: sorted(os.listdir(d)) for d in kept}
    removed = _target.clean_old(str(current), now=NOW)
    assert sorted(removed) == sorted([str(old), str(empty)])
    assert not old.exists() and not empty.exists()
    assert {d: sorted(os.listdir(d)) for d in kept} == before
    assert link.is_symlink() and (target / "blas.json").is_file()


def test_a_missing_folder_is_no_error(tmp_path):
    assert _target.clean_old(str(tmp_path / "gone" / "rnnkit-0123456789abcdef")) == []
