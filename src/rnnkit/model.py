"""``Sequential``: layers in a row (spec, "Stacked recurrent layers"), with named parameters.

At the boundary arrays are batch-first: ``X (B, T, D)``, a single sequence ``(T, D)``, a list
of ``(T_i, D)`` arrays of different lengths, or integer ids ``(B, T)`` / ``(T,)`` when the
first layer is an ``Embedding``. Inside, everything is time-major ``(T, B, ·)``: the input is
transposed once on the way in and the output once on the way out.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .checkpoint import read_model, save_model
from .errors import MemoryLimitError
from .inputs import as_batch
from .layers import GRU, LSTM, RNN, Dense, Dropout, Embedding, Layer, Recurrent
from .memory import BUILD_BYTES, available_memory, size_args
from .memory import human_bytes as _bytes
from .noise import Noise

LAYER_TYPES: dict[str, type[Layer]] = {
    c.kind: c for c in (RNN, LSTM, GRU, Dense, Embedding, Dropout)}
FORMAT_VERSION = 1
#: predict runs an array in blocks of rows whose working memory is about this many bytes
#: (at most; estimated as 4 arrays of the widest layer over all steps, in the model's dtype),
#: in blocks of equal size. A float32 LSTM B=128, T=50, H=256 (two blocks before, whole now;
#: medians of 3 calls after an untimed one, 8 rounds alternating): one thread 58.6 -> 47.4 ms,
#: two 39.2 -> 26.8; B=512 (7 blocks -> 2) 59.3 -> 56.3 and 37.6 -> 41.7 (whole: 31.1), B=256,
#: T=200 (4 blocks either way) 113.7 -> 112.8 and 66.0 -> 63.0
PREDICT_BLOCK_BYTES = 128 << 20
PREDICT_MIN_ROWS = 64


class Sequential:
    """A stack of layers; each feeds the next whatever it emits.

    Args:
        layers: the layers, first to last.
        seed: seeds the generator that initialises every weight (in layer order).
        dtype: ``"float32"`` (default, fast) or ``"float64"`` (exact checks).
    """

    def __init__(self, layers: list[Layer], *, seed: int | None = 0,
                 dtype: str | np.dtype = "float32") -> None:
        if not isinstance(layers, (list, tuple)) or not layers:
            raise ValueError("Sequential: layers must be a non-empty list of layers")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"Sequential: layers[{i}] must be an rnnkit layer, got "
                                f"{type(layer).__name__}")
            if isinstance(layer, Embedding) and i > 0:
                raise ValueError(f"Sequential: Embedding must be the first layer, got it at {i}")
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"Sequential: dtype must be float32 or float64, got {self.dtype}")
        self.layers = list(layers)
        self.seed = seed
        self._tape: Any = None

    # --- building -------------------------------------------------------------------------
    @property
    def built(self) -> bool:
        for layer in self.layers:  # a loop, not all(): checked on every call, also per step
            if not layer.built:
                return False
        return True

    @property
    def stochastic(self) -> bool:
        """Whether some layer drops or zones out in training (``fit`` then draws masks)."""
        return any(getattr(layer, "p", 0) or getattr(layer, "dropout", 0)
                   or getattr(layer, "recurrent_dropout", 0) or any(getattr(layer, "zoneout", ()))
                   for layer in self.layers)

    @property
    def takes_ids(self) -> bool:
        return isinstance(self.layers[0], Embedding)

    def build(self, input_size: int) -> Sequential:
        """Create every parameter for inputs of ``input_size`` features (done on first use).

        Raises ``MemoryLimitError`` before allocating anything if the parameters and their
        gradients would not fit in the memory available."""
        check_memory(self, input_size)
        rng = np.random.default_rng(self.seed)
        size, is_seq = input_size, True
        for i, layer in enumerate(self.layers):
            if isinstance(layer, Recurrent) and not is_seq:
                raise ValueError(
                    f"Sequential: layer {i} ({type(layer).__name__}) needs a sequence, but layer "
                    f"{i - 1} emits only its last step; set return_sequences=True on it")
            size = layer.build(size, rng, self.dtype)
            if isinstance(layer, Recurrent):
                is_seq = layer.return_sequences
        self._tape = None
        return self

    def param_shapes(self, input_size: int) -> dict[str, tuple[int, ...]]:
        """Every parameter's shape for inputs of ``input_size`` features, allocating nothing
        (a model file is checked against this before any weight is created)."""
        shapes, size = {}, input_size
        for i, layer in enumerate(self.layers):
            own, size = layer.param_shapes(size)
            shapes.update({f"{i}.{k}": v for k, v in own.items()})
        return shapes

    # --- parameters -----------------------------------------------------------------------
    def parameters(self) -> dict[str, np.ndarray]:
        """All trainable arrays keyed ``"<layer index>.<name>"``; updating them in place
        updates the model."""
        self._require_built()
        return {f"{i}.{k}": v for i, layer in enumerate(self.layers)
                for k, v in layer.params.items()}

    def gradients(self) -> dict[str, np.ndarray]:
        """The accumulated gradients, with the same keys as ``parameters()``."""
        self._require_built()
        return {f"{i}.{k}": v for i, layer in enumerate(self.layers)
                for k, v in layer.grads.items()}

    def zero_grad(self) -> None:
        for g in self.gradients().values():
            g[...] = 0  # in place: readout gradients are shared with the recurrent layer

    def _require_built(self) -> None:
        # built on first use when the input size is known without data
        size = 1 if self.takes_ids else getattr(self.layers[0], "declared_input", None)
        if not self.built and size is not None:
            self.build(size)
        if not self.built:
            raise ValueError("Sequential: the model has no parameters yet; call it on data or "
                             "build(input_size) first")

    # --- forward / backward ---------------------------------------------------------------
    def forward(self, X: Any, lengths: Any = None, initial_state: dict | None = None,
                noise: Noise | None = None):
        """Run the model and keep what ``backward`` needs.

        Returns the last layer's output, batch-first (``(B, T, F)`` for sequences, ``(B, F)``
        for a last step; without the batch axis for a single sequence). If a layer has
        ``return_state=True`` it returns ``(output, states)``, ``states`` a dict from layer
        index to that layer's final state (``h`` or ``(h, c)``; a pair of those when
        bidirectional), which ``initial_state=`` accepts back to continue the sequences.

        Deterministic (no dropout, zoneout's expectation) unless ``noise`` is given: an
        ``rnnkit.noise.Noise``, whose ``given`` masks (e.g. ``{"0.dropout": m}``, time-major)
        make a stochastic forward reproducible for gradient checks and comparisons.
        """
        x, mask, single = self.prepare(X, lengths)
        states = self._internal_states(initial_state, x.shape[1])
        out, tape, finals = self.run(x, mask, states, noise=noise)
        self._tape = (tape, out.shape, mask, single)
        return self._finish(out, finals, single)

    def backward(self, dY: np.ndarray) -> np.ndarray | None:
        """Backpropagate ``dY = ∂L/∂output`` (shaped like ``forward``'s output) through the
        last ``forward``: adds every parameter's gradient into ``gradients()`` and returns
        ``∂L/∂X`` (batch-first; ``None`` for integer ids)."""
        if self._tape is None:
            raise ValueError("Sequential.backward: call forward(X) first")
        tape, shape, _mask, single = self._tape
        self._tape = None
        d = np.asarray(dY, dtype=self.dtype)
        d = d[None] if single else d
        d = d.transpose(1, 0, 2) if d.ndim == 3 else d
        if d.shape != shape:
            raise ValueError(f"Sequential.backward: dY must have the output's shape "
                             f"{_batch_first(shape, single)}, got {np.shape(dY)}")
        d = self.backprop(tape, d)
        if d is None:
            return None
        d = d.transpose(1, 0, 2)
        return d[0] if single else d

    def backprop(self, tape: list, d: np.ndarray) -> np.ndarray | None:
        """Time-major backward through a tape from ``run``; returns ``∂L/∂x`` (or None)."""
        for layer, cache in zip(reversed(self.layers), reversed(tape)):
            d = layer.backward(d, cache)
            if d is None:
                return None
        return d

    def predict(self, X: Any, lengths: Any = None, initial_state: dict | None = None):
        """The last layer's raw output (logits for a classifier), as ``forward`` returns it.

        A large array (a memory-mapped one too) is run in blocks of rows, so that the memory
        beyond the result stays bounded by the block, not by the dataset."""
        rows = self._block_rows(X, initial_state)
        if rows is not None:
            return self._predict_blocks(X, lengths, rows)
        x, mask, single = self.prepare(X, lengths)
        out, _, finals = self.run(x, mask, self._internal_states(initial_state, x.shape[1]),
                                  train=False)
        return self._finish(out, finals, single)

    def _block_rows(self, X: Any, initial_state: Any) -> int | None:
        """Rows per block for ``predict`` on a batch array, or ``None`` to run it whole."""
        rank = 2 if self.takes_ids else 3
        if not (isinstance(X, np.ndarray) and X.ndim == rank and initial_state is None) \
                or any(getattr(layer, "return_state", False) for layer in self.layers):
            return None
        if X.size == 0 or X.dtype.kind not in "biuf" or len(X) <= PREDICT_MIN_ROWS:
            return None  # prepare gives the error; a block has at least PREDICT_MIN_ROWS
        if not self.built:
            self.build(X.shape[-1] if rank == 3 else 1)
        widths = [v.shape[0] for layer in self.layers for v in layer.params.values() if v.ndim]
        per_row = X.shape[1] * max([X.shape[-1] if rank == 3 else 1, *widths]) \
            * self.dtype.itemsize * 4
        rows = max(PREDICT_MIN_ROWS, PREDICT_BLOCK_BYTES // max(per_row, 1))
        if len(X) <= rows:
            return None
        blocks = -(-len(X) // rows)  # of equal size: a short last block runs slowly
        return -(-len(X) // blocks)

    def _predict_blocks(self, X: np.ndarray, lengths: Any, rows: int) -> np.ndarray:
        if lengths is not None:
            lengths = np.atleast_1d(np.asarray(lengths))
            if lengths.shape != (len(X),):
                raise ValueError(f"predict: lengths must have one entry per sequence, shape "
                                 f"({len(X)},), got shape {lengths.shape}")
        out = None
        for start in range(0, len(X), rows):
            stop = min(start + rows, len(X))
            x, mask, _ = self.prepare(X[start:stop], None if lengths is None
                                      else lengths[start:stop], offset=start)
            y, _, _ = self.run(x, mask, None, train=False)
            y = y.transpose(1, 0, 2) if y.ndim == 3 else y
            if out is None:
                out = np.empty((len(X), *y.shape[1:]), y.dtype)
            out[start:stop] = y
        return out

    def run(self, x: np.ndarray, mask: np.ndarray | None, states: list | None = None,
            train: bool = True, noise: Noise | None = None):
        """Time-major forward: ``(out, tape, final states per layer)``; with ``train=False``
        the tape is not good for ``backprop`` (layers keep only what the forward needs).
        ``noise`` draws dropout and zoneout masks (``fit``); None: deterministic."""
        tape, finals = [], []
        for i, layer in enumerate(self.layers):
            kw = {} if noise is None else {"noise": noise.at(i)}
            x, cache, final = layer.forward(x, mask, None if states is None else states[i],
                                            train=train, **kw)
            tape.append(cache)
            finals.append(final)
        return x, tape, finals

    def _finish(self, out: np.ndarray, finals: list, single: bool):
        out = out.transpose(1, 0, 2) if out.ndim == 3 else out
        out = out[0] if single else out
        flagged = [i for i, layer in enumerate(self.layers) if getattr(layer, "return_state", 0)]
        if not flagged:
            return out
        return out, {i: _public_state(finals[i], single) for i in flagged}

    def _internal_states(self, given: dict | None, batch: int) -> list | None:
        if given is None:
            return None
        if not isinstance(given, dict):
            raise TypeError("initial_state must be a dict {layer index: state}, as forward "
                            f"returns it, got {type(given).__name__}")
        states: list = [None] * len(self.layers)
        for i, s in given.items():
            layer = self.layers[i] if isinstance(i, int) and 0 <= i < len(self.layers) else None
            if not isinstance(layer, Recurrent):
                raise ValueError(f"initial_state: key {i!r} is not a recurrent layer's index")
            states[i] = _internal_state(layer, s, batch, self.dtype)
        return [s if s is not None or not isinstance(layer, Recurrent) else
                [layer.initial_state(batch, sfx, self.dtype) for sfx in layer.directions]
                for s, layer in zip(states, self.layers)]

    # --- input checking -------------------------------------------------------------------
    def prepare(self, X: Any, lengths: Any = None, offset: int = 0):
        """Check and convert user input to ``(x time-major, mask or None, single)``;
        ``offset`` is added to sample numbers in error messages (for blocks of a dataset)."""
        ids = self.takes_ids
        x, lengths_arr, single = as_batch(X, lengths, ids=ids, dtype=self.dtype,
                                          owner=type(self.layers[0]).__name__, offset=offset)
        if not self.built:
            self.build(1 if ids else x.shape[2])
        if not ids:
            expected = self.layers[0].input_size
            if x.shape[2] != expected:
                raise ValueError(
                    f"{type(self.layers[0]).__name__} expects inputs with {expected} features, "
                    f"got X of shape {np.shape(X) if not isinstance(X, list) else x.shape} "
                    f"({'T, D' if single else 'B, T, D'})")
        mask = None
        if lengths_arr is not None and np.any(lengths_arr < x.shape[1]):
            mask = np.arange(x.shape[1])[:, None] < lengths_arr[None, :]  # (T, B)
        x = x.swapaxes(0, 1)
        return np.ascontiguousarray(x), mask, single

    # --- training and files (implemented in training.py, checkpoint.py, stream.py) --------
    def fit(self, X: Any, y: Any, **options: Any):
        """Train by minibatch gradient descent with BPTT; returns a ``History``.

        Keyword options (all optional): ``loss`` ("mse", "mae", "huber", "cross_entropy",
        "binary_cross_entropy"), ``optimizer`` (a name or an ``rk.optim`` optimizer),
        ``epochs``, ``batch_size``, ``shuffle``, ``clip_norm`` (global norm, Pascanu et al.
        2013), ``clip_value``, ``tbptt`` (chunk length for truncated BPTT with the state
        carried between chunks), ``validation_data=(X, y[, lengths])``, ``validation_split``,
        ``callbacks``, ``metrics``, ``schedule`` (an ``rk.optim`` LR schedule), ``lengths``,
        ``seed`` (shuffling), ``resume`` (a checkpoint path to continue from),
        ``distributed`` (``"auto"``: data-parallel over MPI when started by ``mpiexec -n K``
        or ``srun``, ``"on"``, ``"off"``; see docs/distributed.md), ``verbose`` (0 silent, the
        default; 1 a progress bar per epoch on stderr, as Keras; 2 one line per epoch).
        """
        from .training import fit

        return fit(self, X, y, **options)

    def evaluate(self, X: Any, y: Any, **options: Any) -> dict[str, float]:
        """``{"loss": ..., <metric>: ...}`` on ``(X, y)``; loss/metrics default to fit's."""
        from .training import evaluate

        return evaluate(self, X, y, **options)

    def predict_proba(self, X: Any, lengths: Any = None) -> np.ndarray:
        """Class probabilities: softmax of the logits (sigmoid for a single output)."""
        from .functional import sigmoid, softmax

        out = self.predict(X, lengths)
        out = out[0] if isinstance(out, tuple) else out
        return sigmoid(out) if out.shape[-1] == 1 else softmax(out)

    def stream(self):
        """A ``Stream`` that feeds one time step at a time with the state carried."""
        from .stream import Stream

        return Stream(self)

    def save(self, path: Any, metadata: dict[str, Any] | None = None) -> None:
        """Write a safetensors file with every parameter and the config (atomically);
        ``metadata`` is JSON you want back from ``rk.load(path).metadata``."""
        save_model(self, path, metadata)

    # --- configuration --------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        return {"format": "rnnkit", "version": FORMAT_VERSION, "dtype": self.dtype.name,
                "seed": self.seed,
                "layers": [{"kind": layer.kind, "config": layer.get_config()}
                           for layer in self.layers]}

    @classmethod
    def from_config(cls, config: dict[str, Any], dtype: str | None = None) -> Sequential:
        from .config import layers_from_config

        layers, seed, cfg_dtype = layers_from_config(config, LAYER_TYPES)
        return cls(layers, seed=seed, dtype=dtype or cfg_dtype)

    def copy(self, dtype: str | np.dtype | None = None) -> Sequential:
        """A deep copy (same weights), optionally cast to another dtype."""
        self._require_built()
        new = Sequential.from_config(self.get_config(), dtype=dtype or self.dtype)
        new.build(self.layers[0].input_size)
        for k, v in new.parameters().items():
            v[...] = self.parameters()[k]
        return new

    def to_torch(self, module: str = "auto") -> Any:
        """A ``torch.nn.Module`` equal to ``predict``: a ``torch.nn.RNN``/``LSTM``/``GRU``
        (batch_first) when the model is such a stack, else a module for any stack, Dense heads
        included; see ``interop/torch.py``."""
        from .interop.torch import to_torch

        return to_torch(self, module=module)

    def to_onnx(self, path: Any = None, *, stream: bool = False, **options: Any) -> Any:
        """The model as an ONNX ``ModelProto``, written to ``path`` when given; ``stream=True``
        gives the one-step graph with the state as input and output. Options (``lengths``,
        ``probabilities``, ``rnn_ops``) are in ``rnnkit.interop.onnx_export.to_onnx``."""
        from .interop.onnx_export import to_onnx

        return to_onnx(self, path, stream=stream, **options)

    def __repr__(self) -> str:
        inner = ",\n".join(f"  {layer!r}" for layer in self.layers)
        return f"Sequential([\n{inner}\n], dtype={self.dtype.name})"


def _batch_first(shape: tuple, single: bool) -> tuple:
    shape = (shape[1], shape[0], *shape[2:]) if len(shape) == 3 else shape
    return shape[1:] if single else shape


def _public_state(final: list, single: bool):
    def one(s):
        s = tuple(v[0] if single else v for v in s)
        return s[0] if len(s) == 1 else s

    return one(final[0]) if len(final) == 1 else tuple(one(s) for s in final)


def _internal_state(layer: Recurrent, s: Any, batch: int, dtype: np.dtype) -> list:
    n_state = len(layer.initial_options())
    per_dir = [s] if len(layer.directions) == 1 else list(s)
    out = []
    for d in per_dir:
        arrs = (d,) if n_state == 1 else tuple(d)
        arrs = tuple(np.broadcast_to(np.asarray(a, dtype), (batch, layer.hidden)).copy()
                     for a in arrs)
        if len(arrs) != n_state:
            raise ValueError(f"initial_state for {layer.kind}: expected {n_state} arrays per "
                             f"direction, got {len(arrs)}")
        out.append(arrs)
    if len(out) != len(layer.directions):
        raise ValueError(f"initial_state for {layer.kind}: expected a state for each of "
                         f"{len(layer.directions)} directions, got {len(out)}")
    return out


def check_memory(model: Sequential, input_size: int, available: int | None = None,
                 slots: int = 0) -> None:
    """Refuse a model whose parameters cannot fit in memory, naming the layer and its size
    argument, before anything is allocated (``hidden=100_000_000`` would otherwise grow to
    gigabytes before NumPy gives up). ``slots``: optimizer buffers per parameter to count too
    (Adam keeps 2). The error carries ``parameters``, ``need`` and ``available``."""
    available = available_memory() if available is None else available
    if available is None:
        return
    per = BUILD_BYTES[model.dtype] + slots * model.dtype.itemsize
    size, counts = input_size, []
    for i, layer in enumerate(model.layers):
        own, size = layer.param_shapes(size)
        counts.append((sum(math.prod(s) for s in own.values()), i, layer))
    need = sum(c for c, _, _ in counts) * per
    if need <= available:
        return
    n, i, layer = max(counts, key=lambda c: c[0])
    n_all = sum(c for c, _, _ in counts)
    args = size_args(layer)
    what = f"{model.dtype.name} weights and gradients" + (
        f" and {slots} optimizer buffers" if slots else "")
    err = MemoryLimitError(
        f"Sequential: the model has {n_all:.3g} parameters, which need "
        f"about {_bytes(need)} to build ({what}), but "
        f"{_bytes(available)} of memory is available; the largest is layer {i} "
        f"({type(layer).__name__}, {args}) with {n:.3g}: make {args.split('=')[0]} smaller")
    err.parameters, err.need, err.available = n_all, need, available
    raise err


def load_model(path: Any) -> Sequential:
    """``rk.load``: the ``Sequential`` in a model file written by ``save`` (or a checkpoint:
    its weights), with ``metadata`` (the user JSON, or ``{}``); every problem with the file a
    ``ModelFileError`` (a ``ValueError``) that names it (``checkpoint.read_model``)."""
    return read_model(path, Sequential)
