"""rnnkit against ONNX Runtime running the same model exported by ``to_onnx``: ``predict``
(whole sequences) and ``stream().step`` (one step, B=1, state carried), the protocol of
``rnnkit bench`` (alternating blocks, medians), ONNX Runtime's intra-op threads equal to
rnnkit's.

    python benchmarks/onnx_vs_rnnkit.py [--sizes tiny,small,medium] [--reps 5] [--json]

Prints the bench table; "ORT/rnnkit" > 1 means rnnkit is faster. Extra arguments go to
``rnnkit.bench``.
"""

from __future__ import annotations

import sys

from rnnkit import bench

if __name__ == "__main__":
    args = sys.argv[1:]
    defaults = ["--modes", "infer,stream", "--no-torch", "--no-memory"]
    if "--sizes" not in args:
        defaults += ["--sizes", "tiny,small,medium,long"]
    if "--reps" not in args:
        defaults += ["--reps", "5"]
    raise SystemExit(bench.main(defaults + args))
