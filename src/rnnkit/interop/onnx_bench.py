"""The ONNX Runtime side of ``rnnkit bench``: the same model exported by ``to_onnx`` and run
by ONNX Runtime's CPU provider with rnnkit's thread count (``infer``: the whole-sequence graph
on ``X``; ``stream``: the one-step graph, its state fed back, ``steps`` steps)."""

from __future__ import annotations

from typing import Any

import numpy as np


def available() -> bool:
    try:
        import onnxruntime  # noqa: F401

        import onnx  # noqa: F401
    except ImportError:
        return False
    return True


def session(proto: Any, threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(proto.SerializeToString(), options,
                                providers=["CPUExecutionProvider"])


def case(mode: str, model: Any, X: np.ndarray, threads: int, steps: int):
    """A callable running ``mode`` ("infer" or "stream") in ONNX Runtime, or None (train)."""
    from .onnx_export import initial_stream_state

    if mode == "infer":
        s = session(model.to_onnx(), threads)
        return lambda: s.run(None, {"X": X})
    if mode != "stream":
        return None
    s = session(model.to_onnx(stream=True), threads)
    x_t = np.ascontiguousarray(X[:, 0])  # (B, D)
    names = [o.name for o in s.get_outputs()][1:]
    start = initial_stream_state(model, X.shape[0])

    def run():
        feeds = dict(start)
        for _ in range(steps):
            out = s.run(None, {"x": x_t, **feeds})
            feeds = {n.replace("state_out", "state_in"): v for n, v in zip(names, out[1:])}
    return run
