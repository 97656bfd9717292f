"""Any ``Sequential`` as a ``torch.nn.Module`` that computes ``predict``: the layers written
again in torch, with the same equations as ``cells/`` and the same time loop as
``layers/recurrent.py`` (masking, reverse within each length, h0, readout, output choice),
the variants included: layer norm (``cells/base.layer_norm``), peepholes, projection, and
zoneout as its inference expectation ``p s_prev + (1 - p) cell(s_prev)``; the dropouts act
only in ``fit``, so they are identities here.

``to_torch`` (``interop/torch.py``) returns a plain ``torch.nn.RNN``/``LSTM``/``GRU`` when the
model is exactly such a stack, and this module otherwise.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..cells.base import LN_EPS
from ..functional import ELU_ALPHA, LEAKY_SLOPE, get_activation
from ..layers import Dense, Embedding, Recurrent


def activation(torch: Any, name: str):
    F = torch.nn.functional
    return {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": torch.relu,
            "identity": lambda a: a, "leaky_relu": lambda a: F.leaky_relu(a, LEAKY_SLOPE),
            "elu": lambda a: F.elu(a, ELU_ALPHA), "softsign": F.softsign,
            "hard_tanh": F.hardtanh, "softmax": lambda a: torch.softmax(a, -1)}[name]


def build(torch: Any, model: Any) -> Any:
    """The module for a built ``model``, its parameters copied (same names, dots as ``_``)."""
    nn = torch.nn
    dtype = getattr(torch, model.dtype.name)
    for i, layer in enumerate(model.layers):
        if layer.kind not in ("RNN", "LSTM", "GRU", "Dense", "Embedding", "Dropout"):
            raise ValueError(f"to_torch: layer {i} ({layer.kind}) has no torch mapping")

    def layer_norm(a, g):
        """``g (a - mean(a)) / sqrt(var(a) + eps)`` over the last axis, as cells/base.py."""
        d = a - a.mean(-1, keepdim=True)
        return g * (d / torch.sqrt((d * d).mean(-1, keepdim=True) + LN_EPS))

    def params(layer: Any) -> Any:
        return nn.ParameterDict({k.replace(".", "_"): nn.Parameter(
            torch.from_numpy(np.ascontiguousarray(v)).to(dtype)) for k, v in layer.params.items()})

    class DenseModule(nn.Module):
        def __init__(self, layer: Dense, p: Any = None, prefix: str = "") -> None:
            super().__init__()
            self.p = params(layer) if p is None else p
            self.prefix, self.bias = prefix, layer.bias
            name = layer.activation
            self.act = activation(torch, name if name == "softmax" else
                                  get_activation(name).name)

        def forward(self, x, mask=None):
            a = x @ self.p[self.prefix + "W"].T
            if self.bias:
                a = a + self.p[self.prefix + "b"]
            y = self.act(a)
            return y * mask[..., None] if mask is not None and y.dim() == 3 else y

    class RecurrentModule(nn.Module):
        def __init__(self, layer: Recurrent) -> None:
            super().__init__()
            self.layer, self.p = layer, params(layer)
            self.readout = None if layer.readout is None or layer.output != "y" else \
                DenseModule(layer.readout, self.p, "readout_")
            acts = [get_activation(layer.activation).name]
            if layer.kind != "RNN":
                acts.append(get_activation(layer.gate_activation).name)
            self.act = [activation(torch, a) for a in acts]

        def initial(self, key: str, sfx: str, B: int):
            option, H = self.layer.initial_options()[key], self.layer._state_size(key)
            if isinstance(option, str) and option == "zeros":
                return torch.zeros(B, H, dtype=dtype)
            v = self.p[key + sfx] if isinstance(option, str) else torch.from_numpy(
                np.asarray(option)).to(dtype)
            return v.expand(B, H)

        def step(self, sfx: str, xz, state):
            H, kind, p = self.layer.hidden, self.layer.kind, self.p
            h = state[0]
            hz = h @ p["W_h" + sfx].T
            if self.layer.layer_norm:  # xz came normalised, with the bias
                hz = layer_norm(hz, p["g_h" + sfx])
            if kind == "RNN":
                return (self.act[0](xz + hz),)
            act, gate = self.act
            if kind == "LSTM":
                z, c_prev = xz + hz, state[1]
                zi, zf, zg, zo = z[:, :H], z[:, H : 2 * H], z[:, 2 * H : 3 * H], z[:, 3 * H :]
                P = p["P" + sfx] if "P" + sfx in p else None  # peepholes, order i, o, f
                if P is not None:
                    zi, zf = zi + P[:H] * c_prev, zf + P[2 * H :] * c_prev
                i, f, g = gate(zi), gate(zf), act(zg)
                c = f * c_prev + i * g
                if P is not None:
                    zo = zo + P[H : 2 * H] * c
                c_n = c
                if self.layer.layer_norm:
                    c_n = layer_norm(c, p["g_c" + sfx]) + p["b_c" + sfx]
                h = gate(zo) * act(c_n)
                if self.layer.proj_size:
                    h = h @ p["W_hr" + sfx].T
                return h, c
            hz_n = hz[:, 2 * H :] + p["b_hn" + sfx] if self.layer.bias else hz[:, 2 * H :]
            r, u = gate(xz[:, :H] + hz[:, :H]), gate(xz[:, H : 2 * H] + hz[:, H : 2 * H])
            n = act(xz[:, 2 * H :] + r * hz_n)
            return ((1 - u) * n + u * h,)

        def forward(self, x, mask=None, lengths=None):
            layer, p = self.layer, self.p
            T, B = x.shape[:2]
            seqs, finals = [], []
            for k, sfx in enumerate(layer.directions):
                xd = x if k == 0 else reverse(x, lengths)
                xz = xd @ p["W_x" + sfx].T
                if layer.layer_norm:
                    xz = layer_norm(xz, p["g_x" + sfx])
                if layer.bias:
                    xz = xz + p["b" + sfx]
                state = tuple(self.initial(key, sfx, B) for key in layer.initial_options())
                hs = []
                for t in range(T):
                    new = self.step(sfx, xz[t], state)
                    new = tuple(q * o + (1 - q) * n if q else n
                                for q, n, o in zip(layer.zoneout, new, state))
                    state = new if mask is None else tuple(
                        torch.where(mask[t, :, None], n, o) for n, o in zip(new, state))
                    hs.append(state[0])
                h = torch.stack(hs)
                seqs.append(h if k == 0 else reverse(h, lengths))
                finals.append(state[0])
            h_seq = torch.cat(seqs, -1)
            if mask is not None:
                h_seq = h_seq * mask[..., None]
            out = h_seq if layer.return_sequences else torch.cat(finals, -1)
            if self.readout is not None:
                out = self.readout(out, mask)
            return out

    def reverse(x, lengths):
        if lengths is None:
            return x.flip(0)
        T = x.shape[0]
        t = torch.arange(T)[:, None]
        src = torch.where(t < lengths[None, :], lengths[None, :] - 1 - t, t)
        return x[src, torch.arange(x.shape[1])[None, :]]

    class EmbeddingModule(nn.Module):
        def __init__(self, layer: Embedding) -> None:
            super().__init__()
            self.p = params(layer)

        def forward(self, ids, mask=None):
            y = self.p["W"][ids]
            return y * mask[..., None] if mask is not None else y

    class Identity(nn.Module):  # rk.Dropout: it acts only in fit
        def forward(self, x, mask=None):
            return x

    class SequentialModule(nn.Module):
        """``forward(X, lengths=None)``: ``X (B, T, D)`` (or ids ``(B, T)``), batch-first
        in and out, as ``Sequential.predict``."""

        def __init__(self) -> None:
            super().__init__()
            self.layers = nn.ModuleList(
                RecurrentModule(layer) if isinstance(layer, Recurrent) else
                EmbeddingModule(layer) if isinstance(layer, Embedding) else
                DenseModule(layer) if isinstance(layer, Dense) else Identity()
                for layer in model.layers)

        def forward(self, X, lengths=None):
            x = X.transpose(0, 1)
            mask = None
            if lengths is not None:
                lengths = torch.as_tensor(lengths)
                mask = torch.arange(x.shape[0])[:, None] < lengths[None, :]
                if bool(mask.all()):
                    mask, lengths = None, None
            for module in self.layers:
                if isinstance(module, RecurrentModule):
                    x = module(x, mask, lengths)
                else:
                    x = module(x, mask if x.dim() == 3 else None)
            return x.transpose(0, 1) if x.dim() == 3 else x

    return SequentialModule()
