"""Coverage-guided fuzzing of rnnkit.fileio.load_tensors with atheris (libFuzzer). Not run in CI.

    pip install atheris
    PYTHONPATH=src python benchmarks/fuzz_fileio_atheris.py -max_total_time=300 -rss_limit_mb=8192

(atheris' own bookkeeping grows by about 1 KB per execution, so libFuzzer's default 2 GB RSS
limit trips after a few million runs; a plain Python loop over load_tensors stays flat.)

The property is the one of tests/test_fileio_fuzz.py: only ModelFileError may escape, and a
file rnnkit accepts must be accepted by the reference ``safetensors`` loader with identical
arrays. Any other exception or a failed assertion is a crash that libFuzzer reports with the
input saved as ``crash-<sha1>``. Extra arguments go to libFuzzer; the seed corpus (valid files
from the real writer) and a token dictionary are written to a temporary folder unless a corpus
folder is given.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile

import atheris
import numpy as np

with atheris.instrument_imports():
    from rnnkit.errors import ModelFileError
    from rnnkit.fileio import load_tensors

import safetensors.numpy

ALL = ("F16", "F32", "F64", "I8", "I16", "I32", "I64", "U8", "U16", "U32", "U64")
# Tokens that libFuzzer splices into inputs: header keys, dtypes and JSON punctuation.
TOKENS = ['"dtype"', '"shape"', '"data_offsets"', '"__metadata__"', *(f'"{d}"' for d in ALL)]
TOKENS += ["[0,4]", "[]", "{}", ":", ",", "\\u0000", "\\ud800", "1e400", "-0", "true"]
# tmpfs when there is one: one file write per input
SCRATCH = tempfile.NamedTemporaryFile(dir="/dev/shm" if os.path.isdir("/dev/shm") else None)


def seeds() -> list[bytes]:
    rng = np.random.default_rng(0)
    files = [
        {"w": rng.standard_normal((3, 4)).astype(np.float32), "b": np.zeros(4)},
        {"e": np.zeros((0, 2), np.int64), "s": np.array(1.5)},
        {"a": np.arange(5, dtype=np.int32), "u": np.arange(3, dtype=np.uint8)},
    ]
    return [safetensors.numpy.save(t, metadata={"rnnkit": '{"v": 1}'}) for t in files]


def test_one_input(data: bytes) -> None:
    with open(SCRATCH.name, "wb") as f:
        f.write(data)
    try:
        tensors, _ = load_tensors(SCRATCH.name, allowed_dtypes=ALL, allow_nonfinite=True)
    except ModelFileError:
        return
    ref = safetensors.numpy.load(data)  # raises (a crash) if the reference refuses
    assert tensors.keys() == ref.keys()
    for name, arr in tensors.items():
        assert arr.shape == ref[name].shape and arr.dtype == ref[name].dtype
        assert arr.tobytes() == np.ascontiguousarray(ref[name]).tobytes()


def main() -> None:
    args = list(sys.argv)
    corpora = [a for a in args[1:] if os.path.isdir(a)]
    if not corpora:
        corpora = [tempfile.mkdtemp(prefix="rnnkit_fuzz_corpus_")]
        args.append(corpora[0])
    if not os.listdir(corpora[0]):
        for i, seed in enumerate(seeds()):
            with open(os.path.join(corpora[0], f"seed{i}"), "wb") as f:
                f.write(seed)
    if not any(a.startswith("-dict=") for a in args):
        path = os.path.join(tempfile.mkdtemp(), "tokens.dict")
        with open(path, "w") as f:
            f.writelines(f"{json.dumps(t)}\n" for t in TOKENS)
        args.append(f"-dict={path}")
    atheris.Setup(args, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
