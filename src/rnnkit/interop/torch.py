"""Weights across to and from PyTorch: ``torch.nn.RNN`` / ``LSTM`` / ``GRU`` ⇄ ``Sequential``
(``to_torch`` here, which ``Sequential.to_torch`` uses; ``from_torch``, which makes a
``Sequential``, in ``torch_import.py``).

rnnkit keeps PyTorch's layout ``(out, in)`` and gate order (LSTM i, f, g, o; GRU r, z, n with
the reset gate applied after ``W_h``), so weights copy across unchanged. Only the biases differ:
rnnkit has one bias per sum, ``b = b_ih + b_hh``, except the GRU candidate, whose hidden part
``b_hn`` sits inside the reset gate's product and stays separate. The full table is in
``docs/torch-interop.md``.

torch is imported inside the functions only, so that ``import rnnkit`` never imports it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..functional import get_activation
from ..layers import Recurrent

if TYPE_CHECKING:
    import torch

    from ..model import Sequential

def _import_torch():
    try:
        import torch
    except ImportError as e:  # pragma: no cover - the tests skip without torch
        raise ImportError("rnnkit's PyTorch interop needs torch: pip install 'rnnkit[torch]'"
                          ) from e
    return torch


def to_torch(model: Sequential, *, module: str = "auto") -> torch.nn.Module:
    """A ``torch.nn.Module`` that computes ``model.predict`` (the model's dtype).

    ``module="rnn"``: the ``torch.nn.RNN``, ``LSTM`` or ``GRU`` (``batch_first=True``) that
    computes the model's output sequence, for the models below, else a ``ValueError``.
    ``module="sequential"``: any model, as ``interop/torch_module.py``'s module, whose
    ``forward(X, lengths=None)`` is batch-first like ``predict`` (Dense heads, readouts,
    learned ``h0``, every activation, ``return_sequences=False``, Embedding).
    ``module="auto"`` (default): ``"rnn"`` where it applies, else ``"sequential"``.

    Representable: a built model made only of rnnkit ``RNN``, ``LSTM`` or ``GRU`` layers of
    one kind, one hidden size, one ``bias`` and one ``bidirectional`` setting, each with
    ``return_sequences=True``, ``output="h"`` and no readout, zero initial states
    (``h0="zeros"``, LSTM ``c0="zeros"``), and torch's activations (RNN ``tanh`` or
    ``relu``, the same in every layer; LSTM/GRU ``tanh`` with ``sigmoid`` gates).
    ``return_state`` is ignored (torch always returns its final states). LSTM
    ``proj_size`` maps to torch's; ``dropout`` on the inputs of layers 1 and up (one rate,
    none on layer 0) to torch's ``dropout``. Recurrent dropout, zoneout, layer norm and
    peepholes have no torch equivalent and are refused by name.

    Biases go back as ``b_ih = b``, ``b_hh = 0``; for the GRU ``b_hh[2H:] = b_hn``.

    Raises:
        ValueError: naming the first layer and option that torch cannot represent.
    """
    torch = _import_torch()
    if not isinstance(getattr(model, "layers", None), list):  # not a Sequential
        raise TypeError(f"to_torch: expected an rnnkit Sequential, got {type(model).__name__}")
    if module not in ("auto", "rnn", "sequential"):
        raise ValueError(f"to_torch: module must be 'auto', 'rnn' or 'sequential', got "
                         f"{module!r}")
    first = model.layers[0]
    try:
        for i, layer in enumerate(model.layers):
            _check_representable(i, layer, first)
            if i > 1 and layer.dropout != model.layers[1].dropout:
                raise ValueError(f"to_torch: layer {i} ({type(layer).__name__}): dropout="
                                 f"{layer.dropout} differs from layer 1's "
                                 f"{model.layers[1].dropout}; a torch module has one dropout "
                                 "between layers")
    except ValueError:
        if module == "rnn":
            raise
        module = "sequential"
    if not model.built:
        raise ValueError("to_torch: the model has no parameters yet; call it on data or "
                         "build(input_size) first")
    if module == "sequential":
        from .torch_module import build

        return build(torch, model)
    if first.kind == "RNN":
        cls: Any = torch.nn.RNN
        extra = {"nonlinearity": get_activation(first.activation).name}
    else:
        cls, extra = getattr(torch.nn, first.kind), {}
    if first.kind == "LSTM" and first.proj_size:
        extra["proj_size"] = first.proj_size
    dropout = model.layers[1].dropout if len(model.layers) > 1 else 0.0
    module = cls(first.input_size, first.hidden, num_layers=len(model.layers), bias=first.bias,
                 batch_first=True, bidirectional=first.bidirectional, dropout=dropout,
                 dtype=getattr(torch, model.dtype.name), **extra)
    H = first.hidden
    with torch.no_grad():
        for k, layer in enumerate(model.layers):
            p = layer.params
            for sfx in layer.directions:
                _copy(torch, module, f"weight_ih_l{k}{sfx}", p["W_x" + sfx])
                _copy(torch, module, f"weight_hh_l{k}{sfx}", p["W_h" + sfx])
                if "W_hr" + sfx in p:
                    _copy(torch, module, f"weight_hr_l{k}{sfx}", p["W_hr" + sfx])
                if not layer.bias:
                    continue
                b_hh = np.zeros_like(p["b" + sfx])
                if layer.kind == "GRU":
                    b_hh[2 * H :] = p["b_hn" + sfx]
                _copy(torch, module, f"bias_ih_l{k}{sfx}", p["b" + sfx])
                _copy(torch, module, f"bias_hh_l{k}{sfx}", b_hh)
    return module


def _copy(torch: Any, module: Any, name: str, value: np.ndarray) -> None:
    getattr(module, name).copy_(torch.from_numpy(np.ascontiguousarray(value)))


def _check_representable(i: int, layer: Any, first: Any) -> None:
    where = f"to_torch: layer {i} ({type(layer).__name__})"
    if not isinstance(layer, Recurrent) or layer.kind not in ("RNN", "LSTM", "GRU"):
        raise ValueError(f"{where}: only RNN, LSTM and GRU layers map to a torch module")
    if layer.kind != first.kind:
        raise ValueError(f"{where}: every layer must be of one kind to form one torch module, "
                         f"layer 0 is {first.kind}")
    for attr in ("recurrent_dropout", "zoneout", "layer_norm", "peepholes"):
        if any(np.atleast_1d(getattr(layer, attr))):
            raise ValueError(f"{where}: {attr}={getattr(layer, attr)!r} cannot be represented; "
                             "torch.nn's recurrent modules have no such option")
    if i == 0 and layer.dropout:
        raise ValueError(f"{where}: dropout={layer.dropout} on the first layer's inputs cannot "
                         "be represented; torch drops only between layers")
    for attr in ("hidden", "bias", "bidirectional", "proj_size"):
        if getattr(layer, attr) != getattr(first, attr):
            raise ValueError(f"{where}: {attr}={getattr(layer, attr)!r} differs from layer 0's "
                             f"{getattr(first, attr)!r}; a torch module has one {attr}")
    if not layer.return_sequences:
        raise ValueError(f"{where}: return_sequences=False cannot be represented; torch "
                         "returns the whole sequence (set return_sequences=True)")
    if layer.readout is not None or layer.output != "h":
        raise ValueError(f"{where}: a readout (output='y') cannot be represented; torch "
                         "modules emit h only")
    for key, option in layer.initial_options().items():
        if not (isinstance(option, str) and option == "zeros"):
            shown = option if isinstance(option, str) else "an array"
            raise ValueError(f"{where}: {key}={shown!r} cannot be represented; torch modules "
                             f"start from zeros (pass the state to the module's forward)")
    act = get_activation(layer.activation).name
    if layer.kind == "RNN":
        if act not in ("tanh", "relu"):
            raise ValueError(f"{where}: activation={layer.activation!r} cannot be "
                             "represented; torch.nn.RNN has nonlinearity 'tanh' or 'relu'")
        if act != get_activation(first.activation).name:
            raise ValueError(f"{where}: activation={layer.activation!r} differs from layer "
                             f"0's {first.activation!r}; a torch module has one nonlinearity")
    else:
        gate = get_activation(layer.gate_activation).name
        if act != "tanh" or gate != "sigmoid":
            raise ValueError(f"{where}: activation={layer.activation!r}, gate_activation="
                             f"{layer.gate_activation!r} cannot be represented; torch uses "
                             "'tanh' and 'sigmoid'")
