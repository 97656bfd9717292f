"""``from_torch``: the ``Sequential`` that computes what a ``torch.nn.RNN``, ``LSTM`` or ``GRU``
computes (the layouts and biases: ``torch.py``'s docstring, ``docs/torch-interop.md``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..layers import GRU, LSTM, RNN, Recurrent
from ..model import Sequential
from .torch import _import_torch

if TYPE_CHECKING:
    import torch

MODES = {"RNN_TANH": (RNN, "tanh"), "RNN_RELU": (RNN, "relu"), "LSTM": (LSTM, "tanh"),
         "GRU": (GRU, "tanh")}
DTYPES = ("float32", "float64")


def from_torch(module: torch.nn.Module, *, return_state: bool = False) -> Sequential:
    """A ``Sequential`` that computes what a ``torch.nn.RNN``, ``LSTM`` or ``GRU`` computes.

    One rnnkit layer per torch layer, each with ``return_sequences=True``, the module's
    ``bias`` and ``bidirectional``, and ``activation="relu"`` for ``nonlinearity="relu"``.
    ``model.predict(X)`` equals the module's output sequence, batch-first whatever the
    module's ``batch_first`` (rnnkit is always batch-first at its boundary): ``X (B, T, D)``, a
    single sequence ``(T, D)``, or a padded batch with ``lengths=`` (equal to running the
    module on ``pack_padded_sequence`` and padding the result with zeros). The model has the
    module's dtype (float32 or float64); the initial states are zeros, as the module's default.

    ``dropout`` between layers becomes ``dropout=`` on the inputs of layers 1 and up (the
    same place: torch drops each layer's output but the last's); like torch's, it acts only
    in training (``fit``), so ``predict`` equals the module in ``eval()`` mode. ``proj_size``
    becomes the LSTM's ``proj_size``, ``weight_hr`` its ``W_hr``.

    Args:
        module: a ``torch.nn.RNN``, ``torch.nn.LSTM`` or ``torch.nn.GRU``.
        return_state: set ``return_state`` on every layer, so that ``predict`` returns
            ``(out, states)``, ``states[k]`` the final state of layer ``k``: ``h (B, H)``
            (LSTM: ``(h, c)``), a pair ``(forward, reverse)`` of those when bidirectional.
            ``states[k]`` matches torch's ``h_n[k * D + d]`` (and ``c_n``), ``D`` directions.

    Raises:
        TypeError: ``module`` is not a torch RNN, LSTM or GRU.
        ValueError: an option rnnkit cannot represent (a dtype other than float32/float64),
            naming it.
    """
    torch = _import_torch()
    if not isinstance(module, torch.nn.RNNBase):
        raise TypeError(f"from_torch: module must be a torch.nn.RNN, LSTM or GRU, got "
                        f"{type(module).__name__}")
    if module.mode not in MODES:
        raise ValueError(f"from_torch: unsupported recurrent mode {module.mode!r}; expected "
                         f"one of {', '.join(MODES)}")
    dtype = str(module.weight_ih_l0.dtype).removeprefix("torch.")
    if dtype not in DTYPES:
        raise ValueError(f"from_torch: module dtype must be float32 or float64, got {dtype}")
    cls, activation = MODES[module.mode]
    H, dirs = module.hidden_size, (2 if module.bidirectional else 1)
    P = getattr(module, "proj_size", 0)
    layers: list[Recurrent] = []
    for k in range(module.num_layers):
        # torch's own initialisers, so that a rebuild from the config starts like torch does
        options: dict[str, Any] = {"kernel_init": "torch", "recurrent_init": "torch",
                                   "bias_init": "torch"}
        if cls is LSTM:
            options.update(forget_bias=0.0, proj_size=P)
        if k > 0 and module.dropout:
            options["dropout"] = float(module.dropout)
        layers.append(cls(H, activation=activation, return_sequences=True,
                          return_state=return_state, bidirectional=module.bidirectional,
                          bias=module.bias,
                          input_size=module.input_size if k == 0 else (P or H) * dirs,
                          **options))
    model = Sequential(layers, dtype=dtype)
    params = model.parameters()
    for k, layer in enumerate(layers):
        for sfx in layer.directions:
            w = {name: getattr(module, f"{name}_l{k}{sfx}").detach().cpu().numpy()
                 for name in ("weight_ih", "weight_hh") + (("bias_ih", "bias_hh")
                                                           if module.bias else ())}
            params[f"{k}.W_x{sfx}"][...] = w["weight_ih"]
            params[f"{k}.W_h{sfx}"][...] = w["weight_hh"]
            if P:
                params[f"{k}.W_hr{sfx}"][...] = getattr(module, f"weight_hr_l{k}{sfx}").detach(
                ).cpu().numpy()
            if not module.bias:
                continue
            b_ih, b_hh = w["bias_ih"], w["bias_hh"]
            if cls is GRU:  # b_hn stays inside r * (W_hn h + b_hn)
                params[f"{k}.b{sfx}"][: 2 * H] = b_ih[: 2 * H] + b_hh[: 2 * H]
                params[f"{k}.b{sfx}"][2 * H :] = b_ih[2 * H :]
                params[f"{k}.b_hn{sfx}"][...] = b_hh[2 * H :]
            else:
                params[f"{k}.b{sfx}"][...] = b_ih + b_hh
    return model
