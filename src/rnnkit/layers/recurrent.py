"""The recurrent layer: the only time loop in rnnkit, forward and backpropagation through time.

A layer = a one-step cell (cells/) run over time, in one or two directions, with an initial
state ``h0`` (fixed or learned), an optional readout ``y_t = g(h_t)`` and a choice among the
spec's four final outputs ("Final output"): ``output="h"|"y"`` × ``return_sequences``.

Masking (variable-length batches): at a padded step the state is carried unchanged,
``state_t = where(mask_t, cell(state_{t-1}), state_{t-1})``, so the final state of each
sequence is its state at its own length; emitted sequences are zero at padded steps, and the
backward pass sends no gradient into them. The reverse direction reverses each sequence within
its own length, so it starts at that sequence's own end.

Regularisation, only where ``forward`` gets ``noise`` (``fit`` passes it; ``predict``,
``evaluate``, streaming and the diagnostics do not), masks from ``rnnkit.noise``:

- ``dropout``: inverted dropout on the inputs, ``x * m`` with a new mask per step and feature
  (as PyTorch's ``dropout`` between stacked layers); identity otherwise.
- ``recurrent_dropout`` (Gal & Ghahramani 2016): ``h_{t-1} * r`` in the product with ``W_h``,
  ``r (B, H)`` of ``0`` and ``1 / (1 - p)``, one per sequence and direction (cells/base.py);
  identity otherwise (its expectation).
- ``zoneout`` (Krueger et al. 2017), per state vector: ``s_t = d * s_{t-1} + (1 - d) *
  cell(s_{t-1})``, with ``d`` a new 0/1 mask of rate ``p`` per step; otherwise ``d = p``, the
  expectation, as the paper does at test time. Backward: ``d_cell = (1 - d) * ds_t`` goes
  through the cell, ``d * ds_t`` straight to ``s_{t-1}``.

Recurrent dropout, zoneout, peepholes and ``proj_size`` run in the compiled loops
(``rnnkit.kernels``) as in the reference loop below; layer norm only in the reference loop;
input dropout is outside the loop.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from .. import kernels
from ..cells import Cell, ElmanCell, GRUCell, LSTMCell
from ..init import get_init
from ..memory import check_layer
from ..noise import Noise
from .base import Layer, check_positive_int
from .dense import Dense
from .dropout import check_rate

DIRECTIONS = ("", "_reverse")  # parameter-name suffixes, as PyTorch's "_reverse"


def reverse_padded(x: np.ndarray, lengths: np.ndarray | None) -> np.ndarray:
    """Reverse each sequence of ``x (T, B, ...)`` within its own length; its own inverse."""
    if lengths is None:
        return x[::-1]
    T, B = x.shape[:2]
    t = np.arange(T)[:, None]
    src = np.where(t < lengths[None, :], lengths[None, :] - 1 - t, t)  # (T, B)
    return x[src, np.arange(B)[None, :]]


class Recurrent(Layer):
    """Shared options of ``RNN``, ``LSTM`` and ``GRU``; subclasses only choose the cell.

    Regularisation (active only in ``fit``, see the module docstring): ``dropout`` on the
    inputs, ``recurrent_dropout`` on ``h_{t-1}``, ``zoneout`` on the state, each a
    probability in [0, 1). ``layer_norm`` (LSTM and GRU): Ba et al.'s layer normalisation of
    the gate pre-activations, input and recurrent parts separately (cells/lstm.py, gru.py).
    """

    recurrent = True

    def __init__(
        self,
        hidden: int,
        *,
        readout: Dense | None = None,
        output: str = "h",
        return_sequences: bool = False,
        return_state: bool = False,
        h0: str | np.ndarray = "zeros",
        bidirectional: bool = False,
        bias: bool = True,
        kernel_init: str = "glorot_uniform",
        recurrent_init: str = "orthogonal",
        bias_init: str = "zeros",
        input_size: int | None = None,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        zoneout: float | tuple[float, float] = 0.0,
        layer_norm: bool = False,
        peepholes: bool = False,
        proj_size: int = 0,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        self.hidden = check_positive_int(hidden, owner=name, arg="hidden")
        self.dropout = check_rate(dropout, owner=name, arg="dropout")
        self.recurrent_dropout = check_rate(recurrent_dropout, owner=name,
                                            arg="recurrent_dropout")
        self.zoneout = self._check_zoneout(zoneout)
        self.layer_norm, self.peepholes, self.proj_size = self._check_variants(
            layer_norm, peepholes, proj_size)
        if output not in ("h", "y"):
            raise ValueError(f"{name}: output must be 'h' or 'y', got {output!r}")
        if output == "y" and readout is None:
            raise ValueError(f"{name}: output='y' needs a readout, e.g. readout=rk.Dense(1)")
        if readout is not None and not isinstance(readout, Dense):
            raise TypeError(f"{name}: readout must be an rk.Dense, got {type(readout).__name__}")
        self.readout = readout
        self.output = output
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.cell = self.make_cell()
        self.h0 = self._check_initial(h0, "h0")
        self.bidirectional = bool(bidirectional)
        self.bias = bool(bias)
        for arg, value in (("kernel_init", kernel_init), ("recurrent_init", recurrent_init)):
            get_init(value, owner=name, arg=arg)
        if bias_init not in ("zeros", "torch"):
            raise ValueError(f"{name}: bias_init must be 'zeros' or 'torch', got {bias_init!r}")
        self.kernel_init, self.recurrent_init, self.bias_init = (
            kernel_init, recurrent_init, bias_init)
        self.declared_input = input_size
        self._cell_keys = tuple(self.cell.param_shapes(1, self.bias))  # W_x, W_h, b, b_hn, ...

    # --- subclass hooks -------------------------------------------------------------------
    def make_cell(self) -> Cell:
        raise NotImplementedError

    def initial_options(self) -> dict[str, Any]:
        """Initial-state option per state vector: ``{"h0": ...}``, LSTM adds ``"c0"``."""
        return {"h0": self.h0}

    def after_init(self, params: dict[str, np.ndarray], suffix: str) -> None:
        """Adjust freshly initialised parameters (the LSTM's forget-gate bias)."""

    #: the variants this layer's cell has (an LSTM has all three)
    variants: tuple[str, ...] = ()

    # --- construction ---------------------------------------------------------------------
    def _check_zoneout(self, value: Any) -> tuple[float, ...]:
        """Zoneout rates, one per state vector (``(p_h, p_c)`` for the LSTM; one number is
        both)."""
        name, n = type(self).__name__, len(self.initial_options_names)
        if isinstance(value, (list, tuple)):
            if len(value) != n:
                raise ValueError(f"{name}: zoneout must be a probability or {n} of them "
                                 f"({', '.join(f'p_{s}' for s in self.initial_options_names)})"
                                 f", got {value!r}")
            return tuple(check_rate(v, owner=name, arg="zoneout") for v in value)
        return (check_rate(value, owner=name, arg="zoneout"),) * n

    def _check_variants(self, layer_norm: Any, peepholes: Any, proj_size: Any):
        name = type(self).__name__
        for arg, v in (("layer_norm", layer_norm), ("peepholes", peepholes)):
            if not isinstance(v, (bool, np.bool_)):
                raise ValueError(f"{name}: {arg} must be True or False, got {v!r}")
        if isinstance(proj_size, bool) or not isinstance(proj_size, (int, np.integer)) \
                or proj_size < 0:
            raise ValueError(f"{name}: proj_size must be an integer >= 0 (0: no projection), "
                             f"got {proj_size!r}")
        given = {"layer_norm": bool(layer_norm), "peepholes": bool(peepholes),
                 "proj_size": int(proj_size) > 0}
        for arg, on in given.items():
            if on and arg not in self.variants:
                why = {"layer_norm": "the Elman cell has no gates to normalise",
                       "peepholes": "peepholes connect an LSTM's cell state c to its gates",
                       "proj_size": "a projection of h is an LSTM option (PyTorch's)"}[arg]
                raise ValueError(f"{name}: {arg} is not an option of {name} ({why}); "
                                 f"{name} has {', '.join(self.variants) or 'none of them'}")
        if proj_size and proj_size >= self.hidden:
            raise ValueError(f"{name}: proj_size must be smaller than hidden={self.hidden}, got "
                             f"{proj_size}")
        if layer_norm and self.hidden < 2:
            raise ValueError(f"{name}: layer_norm needs hidden >= 2 (the normalised cell state "
                             f"of one unit is always 0), got hidden={self.hidden}")
        return bool(layer_norm), bool(peepholes), int(proj_size)

    @property
    def initial_options_names(self) -> tuple[str, ...]:
        return ("h",)

    @property
    def out_hidden(self) -> int:
        """Size of the emitted ``h`` (``proj_size`` when the LSTM projects, else ``hidden``)."""
        return self.proj_size or self.hidden

    def _state_size(self, key: str) -> int:
        return self.out_hidden if key == "h0" else self.hidden

    def _check_initial(self, value: str | np.ndarray, arg: str) -> str | np.ndarray:
        name, n = type(self).__name__, self._state_size(arg)
        if isinstance(value, str):
            if value not in ("zeros", "learned"):
                raise ValueError(f"{name}: {arg} must be 'zeros', 'learned' or an array of "
                                 f"shape ({n},), got {value!r}")
            return value
        arr = np.asarray(value, dtype=np.float64)
        if arr.shape != (n,) or not np.all(np.isfinite(arr)):
            raise ValueError(f"{name}: {arg} array must be finite with shape ({n},), "
                             f"got shape {arr.shape}")
        return arr

    @property
    def directions(self) -> tuple[str, ...]:
        return DIRECTIONS if self.bidirectional else DIRECTIONS[:1]

    @property
    def state_size(self) -> int:
        return self.out_hidden * len(self.directions)

    def param_shapes(self, input_size: int) -> tuple[dict[str, tuple[int, ...]], int]:
        """The shapes ``build`` will create, and the output size, without allocating."""
        shapes: dict[str, tuple[int, ...]] = {}
        for sfx in self.directions:
            cell = self.cell.param_shapes(input_size, self.bias)
            shapes.update({k + sfx: v for k, v in cell.items()})
            shapes.update({k + sfx: (self._state_size(k),) for k, v in
                           self.initial_options().items() if isinstance(v, str) and v == "learned"})
        out = self.state_size
        if self.readout is not None:
            ro, out_y = self.readout.param_shapes(self.state_size)
            shapes.update({f"readout.{k}": v for k, v in ro.items()})
            out = out_y if self.output == "y" else out
        return shapes, out

    def build(self, input_size: int, rng: np.random.Generator, dtype: np.dtype) -> int:
        name = type(self).__name__
        check_layer(self, input_size, dtype)
        if self.declared_input is not None and input_size != self.declared_input:
            raise ValueError(f"{name}: declared input_size={self.declared_input}, got inputs "
                             f"with {input_size} features")
        inits = {"W_x": get_init(self.kernel_init, owner=name, arg="kernel_init"),
                 "W_h": get_init(self.recurrent_init, owner=name, arg="recurrent_init"),
                 "b": get_init(self.bias_init, owner=name, arg="bias_init"),
                 "b_hn": get_init(self.bias_init, owner=name, arg="bias_init"),
                 "W_hr": get_init(self.kernel_init, owner=name, arg="kernel_init"),
                 "P": lambda rng, shape, hidden: np.zeros(shape),  # ONNX's default
                 "g_x": lambda rng, shape, hidden: np.ones(shape),
                 "g_h": lambda rng, shape, hidden: np.ones(shape),
                 "g_c": lambda rng, shape, hidden: np.ones(shape),
                 "b_c": lambda rng, shape, hidden: np.zeros(shape)}
        params: dict[str, np.ndarray] = {}
        for sfx in self.directions:
            own = {k: inits[k](rng, shape, self.hidden).astype(dtype)
                   for k, shape in self.cell.param_shapes(input_size, self.bias).items()}
            self.after_init(own, sfx)
            params.update({k + sfx: v for k, v in own.items()})
            for key, option in self.initial_options().items():
                if isinstance(option, str) and option == "learned":
                    params[key + sfx] = np.zeros(self._state_size(key), dtype)
        self.params = params
        self._init_grads()
        out = self.state_size
        if self.readout is not None:
            out_y = self.readout.build(self.state_size, rng, dtype)
            self.params.update({f"readout.{k}": v for k, v in self.readout.params.items()})
            self.grads.update({f"readout.{k}": v for k, v in self.readout.grads.items()})
            out = out_y if self.output == "y" else out
        self.input_size = input_size
        return out

    def _dir_params(self, sfx: str) -> dict[str, np.ndarray]:
        return {k: self.params[k + sfx] for k in self._cell_keys}

    def initial_state(self, batch: int, sfx: str, dtype: np.dtype) -> tuple[np.ndarray, ...]:
        state = []
        for key, option in self.initial_options().items():
            n = self._state_size(key)
            if isinstance(option, str) and option == "zeros":
                state.append(np.zeros((batch, n), dtype))
                continue
            v = self.params[key + sfx] if isinstance(option, str) else option
            state.append(np.broadcast_to(v, (batch, n)).astype(dtype))
        return tuple(state)

    # --- the time loop --------------------------------------------------------------------
    def forward(self, x: np.ndarray, mask: np.ndarray | None = None, state: Any = None,
                train: bool = True, noise: Noise | None = None):
        """``x (T, B, D)`` → ``(out, cache, final_state)``; ``final_state`` is a list over
        directions of state tuples, and ``state`` (same form) replaces the initial state.
        ``noise`` (training only) draws the dropout and zoneout masks."""
        B = x.shape[1]
        lengths = None if mask is None else mask.sum(axis=0)
        m = None if mask is None else mask[..., None]  # (T, B, 1)
        drop = None
        if noise is not None and self.dropout:
            drop = noise.mask("dropout", self.dropout, x.shape, x.dtype, True, True)
            x = x * drop
        runs, finals = [], []
        for k, sfx in enumerate(self.directions):
            p = self._dir_params(sfx)
            xd = x if k == 0 else reverse_padded(x, lengths)
            s0 = self.initial_state(B, sfx, x.dtype) if state is None else tuple(state[k])
            masks = self._masks(noise, sfx, xd.shape[0], s0)
            if noise is not None and masks[1] is not None and k == 1:  # in the reversed steps
                masks = (masks[0], tuple(reverse_padded(z, lengths) for z in masks[1]))
            hs, caches, s = self._forward_direction(p, xd, s0, mask, m, train, masks)
            runs.append((xd, s0, hs, caches, masks))
            finals.append(s)
        h_seq = runs[0][2] if len(runs) == 1 else np.concatenate(
            [runs[0][2], reverse_padded(runs[1][2], lengths)], axis=-1)
        if m is not None:
            h_seq = h_seq * m
        h_out = h_seq if self.return_sequences else np.concatenate([f[0] for f in finals], -1)
        y, rcache = h_out, None
        if self.output == "y":
            y, rcache, _ = self.readout.forward(h_out, mask if h_out.ndim == 3 else None,
                                                train=train)
        return y, (runs, mask, lengths, rcache, drop), finals

    def _masks(self, noise: Noise | None, sfx: str, T: int, s0: tuple) -> tuple:
        """``(r, zone)``: the recurrent-dropout mask ``(B, H)`` or None, and per state vector
        zoneout's weight of the old state, ``(T, B, n)`` masks in training, else the rates
        (the expectation); None without zoneout."""
        r, zone = None, None
        if noise is not None and self.recurrent_dropout:
            r = noise.mask("recurrent_dropout" + sfx, self.recurrent_dropout, s0[0].shape,
                           s0[0].dtype, False, True)
        if any(self.zoneout):
            if noise is None:
                zone = tuple(s.dtype.type(p) for p, s in zip(self.zoneout, s0))
            else:
                zone = tuple(noise.mask(f"zoneout_{n}" + sfx, p, (T, *s.shape), s.dtype, True,
                                        False)
                             for n, p, s in zip(self.initial_options_names, self.zoneout, s0))
        return r, zone

    def backward(self, dout: np.ndarray, cache: Any) -> np.ndarray:
        runs, mask, lengths, rcache, drop = cache
        dh_out = dout if rcache is None else self.readout.backward(dout, rcache)
        m = None if mask is None else mask[..., None]
        if m is not None and dh_out.ndim == 3:
            dh_out = dh_out * m
        H, dx = self.out_hidden, None
        for k, sfx in enumerate(self.directions):
            xd, s0, hs, caches, masks = runs[k]
            part = dh_out[..., k * H : (k + 1) * H]
            if self.return_sequences:
                dhs = part if k == 0 else reverse_padded(part, lengths)
                d_state = tuple(np.zeros_like(v) for v in s0)
            else:
                dhs = None
                d_state = (part, *tuple(np.zeros_like(v) for v in s0[1:]))
            dxd, d_s0 = self._backward_direction(sfx, xd, s0, hs, caches, dhs, d_state, mask,
                                                 masks)
            dxd = dxd if k == 0 else reverse_padded(dxd, lengths)
            dx = dxd if dx is None else dx + dxd
            for (key, option), d in zip(self.initial_options().items(), d_s0):
                if isinstance(option, str) and option == "learned":
                    self.grads[key + sfx] += d.sum(axis=0)
        return dx if drop is None else dx * drop

    def _forward_direction(self, p, x, s0, mask, m, train=True, masks=(None, None)):
        """One direction over time → ``(hs (T, B, H), caches, final state)``: the compiled
        kernel when one applies (``rnnkit.kernels``), else the reference loop over the cell."""
        r, zone = masks
        fast = kernels.forward(self.cell, p, x, s0, mask, train, r, zone)
        if fast is not None:
            return fast
        # every step's input projection at once, as one 2-D GEMM (a 3-D matmul would run T
        # small ones)
        T, B = x.shape[:2]
        bias = None if self.cell.bias_inside else p.get("b")
        xz = kernels.matmul(x.reshape(T * B, -1), p["W_x"].T, bias=bias).reshape(T, B, -1)
        hs = np.empty((*xz.shape[:2], self.out_hidden), xz.dtype)
        caches, s = [], s0
        for t in range(xz.shape[0]):
            new, cache = self.cell.step(p, xz[t], s, r)
            if zone is not None:
                d = tuple(z if np.ndim(z) == 0 else z[t] for z in zone)
                new = tuple(dk * o + (1 - dk) * n for dk, n, o in zip(d, new, s))
            s = new if m is None else tuple(np.where(m[t], n, o) for n, o in zip(new, s))
            hs[t] = s[0]
            caches.append(cache)
        return hs, caches, s

    def _backward_direction(self, sfx, xd, s0, hs, caches, dhs, d_state, mask,
                            masks=(None, None)):
        p, g = self._dir_params(sfx), {k: self.grads[k + sfx] for k in self._cell_keys}
        H, D = self.out_hidden, xd.shape[-1]
        dx = np.empty(xd.shape, hs.dtype)
        r = masks[0]

        def products(t0, dxz, dhz):
            """Everything but the recurrence, for the steps ``t0 : t0 + len(dxz)``: batched
            over them, one GEMM per weight gradient."""
            c, dxz2 = slice(t0, t0 + dxz.shape[0]), dxz.reshape(-1, dxz.shape[-1])
            kernels.matmul(dxz2.T, xd[c].reshape(-1, D), g["W_x"], accumulate=True)
            h_first = s0[0] if t0 == 0 else hs[t0 - 1]
            h_rest = hs[t0 : c.stop - 1]
            if r is not None:  # W_h multiplied h_{t-1} * r
                h_first, h_rest = h_first * r, h_rest * r
            for first, block in dhz:  # columns first: of dhz, rows first: of W_h
                rows = g["W_h"][first : first + block.shape[-1]]
                # h_{t-1} is hs[t-1], or s0 at t = 0: two products, no copy of hs
                kernels.matmul(block[1:].reshape(-1, block.shape[-1]).T,
                               h_rest.reshape(-1, H), rows, accumulate=True)
                kernels.matmul(block[0].T, h_first, rows, accumulate=True)
                n = self.hidden
                if "b_hn" in g and not self.cell.bias_inside and first + block.shape[-1] > 2 * n:
                    g["b_hn"] += block[..., max(0, 2 * n - first) :].sum(axis=(0, 1))
            if self.bias and not self.cell.bias_inside:
                g["b"] += dxz2.sum(axis=0)
            kernels.matmul(dxz2, p["W_x"], dx[c].reshape(-1, D))

        if isinstance(caches, kernels.Tape):  # in chunks of steps, the last first
            d_state = kernels.backward(caches, p, hs, dhs, d_state, mask, products, g)
        else:
            dxz, dhz, d_state = self._backward_loop(p, g, caches, dhs, d_state, mask, masks[1])
            products(0, dxz, dhz)
        return dx, d_state

    def _backward_loop(self, p, g, caches, dhs, d_state, mask, zone=None):
        """The reference BPTT loop over the cell's ``step_back`` → ``(dxz, dhz, d_s0)``, with
        ``dhz`` as one block of columns, ``[(0, dhz)]``, as ``kernels.backward`` gives it;
        the variants' own parameter gradients go into ``g``."""
        m = None if mask is None else mask[..., None]
        T, B = len(caches), d_state[0].shape[0]
        dxz = np.empty((T, B, p["W_h"].shape[0]), d_state[0].dtype)  # (T, B, G*H)
        dhz = np.empty_like(dxz) if self.cell.separate_dhz else dxz
        for t in range(T - 1, -1, -1):
            if dhs is not None:
                d_state = (d_state[0] + dhs[t], *d_state[1:])
            if m is not None:
                keep = tuple(np.where(m[t], 0, d) for d in d_state)
                d_state = tuple(np.where(m[t], d, 0) for d in d_state)
            old = None
            if zone is not None:
                d = tuple(z if np.ndim(z) == 0 else z[t] for z in zone)
                old = tuple(dk * ds for dk, ds in zip(d, d_state))
                d_state = tuple((1 - dk) * ds for dk, ds in zip(d, d_state))
            dxz[t], dhz_t, d_prev, *extra = self.cell.step_back(p, d_state, caches[t])
            for name, v in (extra[0].items() if extra else ()):
                g[name] += v
            if dhz is not dxz:
                dhz[t] = dhz_t
            if old is not None:
                d_prev = tuple(a + b for a, b in zip(d_prev, old))
            d_state = d_prev if m is None else tuple(a + b for a, b in zip(d_prev, keep))
        return dxz, [(0, dhz)], d_state

    def get_config(self) -> dict[str, Any]:
        def plain(v):
            return v.tolist() if isinstance(v, np.ndarray) else v

        cfg = {"hidden": self.hidden, "output": self.output,
               "return_sequences": self.return_sequences, "return_state": self.return_state,
               "bidirectional": self.bidirectional, "bias": self.bias,
               "kernel_init": self.kernel_init, "recurrent_init": self.recurrent_init,
               "bias_init": self.bias_init, "input_size": self.input_size,
               "readout": None if self.readout is None else self.readout.get_config()}
        cfg.update({k: plain(v) for k, v in self.initial_options().items()})
        zoneout = self.zoneout[0] if len(set(self.zoneout)) == 1 else list(self.zoneout)
        options = {"dropout": self.dropout, "recurrent_dropout": self.recurrent_dropout,
                   "zoneout": zoneout, "layer_norm": self.layer_norm,
                   "peepholes": self.peepholes, "proj_size": self.proj_size}
        cfg.update({k: v for k, v in options.items() if v})  # older files: all off
        return cfg


class RNN(Recurrent):
    """The spec's standard layer: ``h_t = σ(W_x x_t + W_h h_{t-1} + b)``, ``y_t = g(h_t)``."""

    kind = "RNN"

    def __init__(self, hidden: int, activation: str = "tanh", **options: Any) -> None:
        self.activation = activation
        super().__init__(hidden, **options)

    def make_cell(self) -> Cell:
        return ElmanCell(self.hidden, self.activation)

    def get_config(self) -> dict[str, Any]:
        return {"activation": self.activation, **super().get_config()}


class GRU(Recurrent):
    """Gated recurrent unit, PyTorch's "reset after" form; see ``cells/gru.py``."""

    kind = "GRU"
    variants = ("layer_norm",)

    def __init__(self, hidden: int, activation: str = "tanh", gate_activation: str = "sigmoid",
                 **options: Any) -> None:
        self.activation, self.gate_activation = activation, gate_activation
        super().__init__(hidden, **options)

    def make_cell(self) -> Cell:
        return GRUCell(self.hidden, self.activation, self.gate_activation,
                       layer_norm=self.layer_norm)

    def get_config(self) -> dict[str, Any]:
        return {"activation": self.activation, "gate_activation": self.gate_activation,
                **super().get_config()}


class LSTM(Recurrent):
    """Long short-term memory, PyTorch gate order; see ``cells/lstm.py``.

    ``forget_bias`` is added to the forget gate's bias at initialisation (1.0 as Keras, after
    Jozefowicz et al. 2015: it makes the cell remember by default); ``c0`` is the initial cell
    state, with the same options as ``h0`` (``h0`` has ``proj_size`` entries when it projects).

    Options of the LSTM alone: ``peepholes`` (ONNX's ``P``, order i, o, f), ``proj_size``
    (PyTorch's), and ``zoneout=(p_h, p_c)``; ``layer_norm`` as the GRU. See ``cells/lstm.py``.
    """

    kind = "LSTM"
    variants = ("layer_norm", "peepholes", "proj_size")

    def __init__(self, hidden: int, activation: str = "tanh", gate_activation: str = "sigmoid",
                 *, forget_bias: float = 1.0, c0: str | np.ndarray = "zeros",
                 **options: Any) -> None:
        self.activation, self.gate_activation = activation, gate_activation
        if isinstance(forget_bias, bool) or not isinstance(forget_bias, numbers.Real) \
                or not math.isfinite(forget_bias):
            raise ValueError(f"LSTM: forget_bias must be a finite number, got {forget_bias!r}")
        self.forget_bias = float(forget_bias)
        super().__init__(hidden, **options)
        self.c0 = self._check_initial(c0, "c0")

    def make_cell(self) -> Cell:
        return LSTMCell(self.hidden, self.activation, self.gate_activation,
                        layer_norm=self.layer_norm, peepholes=self.peepholes,
                        proj_size=self.proj_size)

    def initial_options(self) -> dict[str, Any]:
        return {"h0": self.h0, "c0": self.c0}

    @property
    def initial_options_names(self) -> tuple[str, ...]:
        return ("h", "c")

    def after_init(self, params: dict[str, np.ndarray], suffix: str) -> None:
        if "b" in params:
            b = params["b"]
            if abs(self.forget_bias) > float(np.finfo(b.dtype).max):
                raise ValueError(f"LSTM: forget_bias must be a finite {b.dtype} number, got "
                                 f"{self.forget_bias!r}")
            b[self.hidden : 2 * self.hidden] += self.forget_bias

    def get_config(self) -> dict[str, Any]:
        return {"activation": self.activation, "gate_activation": self.gate_activation,
                "forget_bias": self.forget_bias, **super().get_config()}
