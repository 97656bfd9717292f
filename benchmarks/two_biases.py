"""PyTorch trains two biases per gate (bias_ih, bias_hh), rnnkit one (their sum): training from
identical weights, the two agree only with bias_hh frozen (the GRU: its r and z parts; its n
part is rnnkit's b_hn). One seeded run, float64, full-batch SGD:

    python benchmarks/two_biases.py [--cell lstm] [--steps 63]
"""

import argparse

import numpy as np

import rnnkit as rk
import torch

ap = argparse.ArgumentParser()
ap.add_argument("--cell", default="lstm", choices=["rnn", "lstm", "gru"])
ap.add_argument("--steps", type=int, default=63)
args = ap.parse_args()
torch.manual_seed(0)
cls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[args.cell]
rng = np.random.default_rng(0)
X, Y = rng.standard_normal((16, 20, 3)), rng.standard_normal((16, 20, 8))
for frozen in (False, True):
    module = cls(3, 8, batch_first=True).double()
    model = rk.from_torch(module)  # identical weights, b = bias_ih + bias_hh
    if frozen and args.cell == "gru":  # b_hn = bias_hh[2H:] is rnnkit's too: trained
        module.bias_hh_l0.register_hook(lambda g: torch.cat([0 * g[:16], g[16:]]))
    elif frozen:
        module.bias_hh_l0.requires_grad_(False)
    opt = torch.optim.SGD([p for p in module.parameters() if p.requires_grad], lr=0.1)
    Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)
    for _ in range(args.steps):  # full batch, as fit below
        opt.zero_grad()
        torch.nn.functional.mse_loss(module(Xt)[0], Yt).backward()
        opt.step()
    model.fit(X, Y, loss="mse", optimizer=rk.SGD(0.1), epochs=args.steps, batch_size=16,
              shuffle=False)
    back = rk.from_torch(module).parameters()
    diff = max(float(np.max(np.abs(back[k] - v))) for k, v in model.parameters().items())
    out = float(np.max(np.abs(model.predict(X) - module(Xt)[0].detach().numpy())))
    print(f"{args.cell} bias_hh {'frozen ' if frozen else 'trained'}: after {args.steps} steps "
          f"max |weight difference| {diff:.2e}, max |output difference| {out:.2e}")
