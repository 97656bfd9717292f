"""Parity with PyTorch in float64: losses (value and gradient), optimizers, schedules, clipping."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from rnnkit import losses  # noqa: E402
from rnnkit.optim import (  # noqa: E402
    SGD,
    Adagrad,
    Adam,
    AdamW,
    CosineAnnealingLR,
    ExponentialLR,
    ReduceLROnPlateau,
    RMSprop,
    StepLR,
    clip_grad_norm,
)

RTOL = 1e-10


@pytest.fixture(autouse=True)
def _raise_on_float_errors():
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        yield


def _torch_loss(module, outputs, targets, keep=None):
    """Value and gradient from torch; ``keep`` selects the samples that enter the mean."""
    o = torch.tensor(outputs, requires_grad=True)
    t = torch.tensor(targets)
    if keep is None:
        value = module(o, t)
    else:
        k = torch.tensor(keep)
        value = module(o[k], t[k])
    value.backward()
    return value.item(), o.grad.numpy()


def _assert_loss(ours, theirs):
    np.testing.assert_allclose(ours[0], theirs[0], rtol=RTOL, atol=0)
    np.testing.assert_allclose(ours[1], theirs[1], rtol=RTOL, atol=1e-300)


def _regression_cases():
    rng = np.random.default_rng(0)
    o = rng.normal(size=(3, 5, 2)) * 2
    t = rng.normal(size=(3, 5, 2))
    mask = np.ones((3, 5), bool)
    mask[0, 3:] = mask[2, 1:] = False
    return o, t, mask


@pytest.mark.parametrize(
    ("ours", "module"),
    [
        (losses.mse, torch.nn.MSELoss()),
        (losses.mae, torch.nn.L1Loss()),
        (losses.huber, torch.nn.HuberLoss()),
        (losses.binary_cross_entropy, torch.nn.BCEWithLogitsLoss()),
    ],
)
@pytest.mark.parametrize("layout", ["sequence", "masked", "last_step"])
def test_elementwise_losses(ours, module, layout):
    o, t, mask = _regression_cases()
    if ours is losses.binary_cross_entropy:
        t = (t > 0).astype(float) * 0.9 + 0.05  # soft labels in (0, 1)
    if layout == "last_step":
        o, t = o[:, -1], t[:, -1]
    keep = mask if layout == "masked" else None
    _assert_loss(ours(o, t, keep), _torch_loss(module, o, t, keep))


@pytest.mark.parametrize("layout", ["sequence", "masked", "last_step"])
@pytest.mark.parametrize("kind", ["labels", "probabilities"])
def test_cross_entropy(layout, kind):
    rng = np.random.default_rng(1)
    z = rng.normal(size=(3, 5, 4)) * 3
    labels = rng.integers(0, 4, size=(3, 5))
    t = labels if kind == "labels" else rng.dirichlet(np.ones(4), size=(3, 5))
    mask = np.ones((3, 5), bool)
    mask[1, 2:] = False
    if layout == "last_step":
        z, t = z[:, -1], t[:, -1]
    keep = mask if layout == "masked" else None
    # torch wants classes on axis 1, so its side selects (flattens) the samples
    select = keep if keep is not None else np.ones(z.shape[:-1], bool)
    _assert_loss(
        losses.cross_entropy(z, t, keep), _torch_loss(torch.nn.CrossEntropyLoss(), z, t, select)
    )


def test_cross_entropy_extreme_logits():
    z = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4]])
    y = np.array([1, 2])
    _assert_loss(losses.cross_entropy(z, y), _torch_loss(torch.nn.CrossEntropyLoss(), z, y))
    t = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    _assert_loss(losses.binary_cross_entropy(z, t), _torch_loss(torch.nn.BCEWithLogitsLoss(), z, t))


OPTIMIZER_CASES = [
    (SGD, torch.optim.SGD, {"lr": 0.1}),
    (SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9}),
    (SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9, "dampening": 0.3, "weight_decay": 0.1}),
    (SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.01}),
    (Adam, torch.optim.Adam, {}),
    (Adam, torch.optim.Adam, {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6}),
    (Adam, torch.optim.Adam, {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True}),
    (Adam, torch.optim.Adam, {"lr": 0.01, "betas": (0.3, 0.9)}),  # lerp weight >= 0.5
    (AdamW, torch.optim.AdamW, {}),
    (AdamW, torch.optim.AdamW, {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True}),
    (RMSprop, torch.optim.RMSprop, {}),
    (RMSprop, torch.optim.RMSprop, {"lr": 0.001, "alpha": 0.9, "momentum": 0.5}),
    (RMSprop, torch.optim.RMSprop, {"centered": True, "weight_decay": 0.05}),
    (RMSprop, torch.optim.RMSprop, {"momentum": 0.9, "centered": True, "alpha": 0.3}),
    (Adagrad, torch.optim.Adagrad, {}),
    (Adagrad, torch.optim.Adagrad, {"lr": 0.1, "lr_decay": 0.01, "weight_decay": 0.1}),
    (Adagrad, torch.optim.Adagrad, {"initial_accumulator_value": 0.5, "eps": 1e-6}),
]


@pytest.mark.parametrize(("ours", "theirs", "kwargs"), OPTIMIZER_CASES)
def test_optimizer_trajectory(ours, theirs, kwargs):
    rng = np.random.default_rng(2)
    params = {"0.W_h": rng.normal(size=(4, 3)), "0.b": rng.normal(size=4)}
    tparams = {k: torch.tensor(v.copy(), requires_grad=True) for k, v in params.items()}
    opt = ours(**kwargs)
    topt = theirs(list(tparams.values()), **kwargs)
    for step in range(25):
        # a non-convex objective so the gradients change sign: sin(p) * targets
        targets = {k: rng.normal(size=v.shape) for k, v in params.items()}
        grads = {k: np.cos(params[k]) * targets[k] for k in params}
        topt.zero_grad()
        for k, p in tparams.items():
            p.grad = torch.tensor(grads[k])
        if step == 7:  # a parameter without a gradient is skipped by both
            del grads["0.b"]
            tparams["0.b"].grad = None
        opt.step(params, grads)
        topt.step()
        for k in params:
            np.testing.assert_allclose(params[k], tparams[k].detach().numpy(), rtol=RTOL, atol=0)


def _torch_lrs(scheduler_cls, epochs, metrics=None, **kwargs):
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=0.5)
    sched = scheduler_cls(opt, **kwargs)
    lrs = []
    for e in range(epochs):
        opt.step()
        sched.step(metrics[e]) if metrics is not None else sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    return lrs


def _our_lrs(schedule_cls, epochs, metrics=None, **kwargs):
    opt = SGD(lr=0.5)
    sched = schedule_cls(opt, **kwargs)
    lrs = []
    for e in range(epochs):
        sched.step(metrics[e]) if metrics is not None else sched.step()
        lrs.append(opt.lr)
    return lrs


@pytest.mark.parametrize(
    ("ours", "theirs", "kwargs"),
    [
        (StepLR, torch.optim.lr_scheduler.StepLR, {"step_size": 3, "gamma": 0.5}),
        (StepLR, torch.optim.lr_scheduler.StepLR, {"step_size": 1}),
        (ExponentialLR, torch.optim.lr_scheduler.ExponentialLR, {"gamma": 0.9}),
        (CosineAnnealingLR, torch.optim.lr_scheduler.CosineAnnealingLR, {"T_max": 10}),
        (
            CosineAnnealingLR,
            torch.optim.lr_scheduler.CosineAnnealingLR,
            {"T_max": 7, "eta_min": 0.01},
        ),
    ],
)
def test_schedule_lr_sequence(ours, theirs, kwargs):
    np.testing.assert_allclose(
        _our_lrs(ours, 30, **kwargs), _torch_lrs(theirs, 30, **kwargs), rtol=RTOL, atol=1e-15
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"patience": 2},
        {"patience": 1, "factor": 0.5, "cooldown": 2, "min_lr": 0.01},
        {"mode": "max", "patience": 2, "threshold": 0.05},
        {"threshold_mode": "abs", "threshold": 0.1, "patience": 0},
        {"mode": "max", "threshold_mode": "abs", "threshold": 0.01, "patience": 1},
    ],
)
def test_reduce_on_plateau_sequence(kwargs):
    rng = np.random.default_rng(3)
    metrics = list(np.r_[np.linspace(1, 0.5, 10), 0.5 + 0.05 * rng.random(30)])
    metrics[12] = float("nan")
    ours = _our_lrs(ReduceLROnPlateau, 40, metrics, **kwargs)
    theirs = _torch_lrs(torch.optim.lr_scheduler.ReduceLROnPlateau, 40, metrics, **kwargs)
    np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=0)


@pytest.mark.parametrize("max_norm", [0.5, 3.0, 100.0])
def test_clip_grad_norm(max_norm):
    rng = np.random.default_rng(4)
    grads = {"a": rng.normal(size=(3, 4)), "b": rng.normal(size=5)}
    tgrads = [torch.tensor(g.copy()) for g in grads.values()]
    params = [torch.zeros_like(g, requires_grad=True) for g in tgrads]
    for p, g in zip(params, tgrads, strict=True):
        p.grad = g
    theirs = torch.nn.utils.clip_grad_norm_(params, max_norm).item()
    ours = clip_grad_norm(grads, max_norm)
    np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=0)
    for g, p in zip(grads.values(), params, strict=True):
        np.testing.assert_allclose(g, p.grad.numpy(), rtol=RTOL, atol=0)


def test_gaussian_nll_matches_torch_gaussian_nll_loss_full():
    """Our mean and softplus scale heads against torch's GaussianNLLLoss(full=True) on
    var = sigma**2, value and gradient (through softplus in torch)."""
    rng = np.random.default_rng(3)
    z, y = rng.normal(size=(5, 6)) * 2, rng.normal(size=(5, 3))
    ours = losses.gaussian_nll(z, y)
    o = torch.tensor(z, requires_grad=True)
    sigma = torch.nn.functional.softplus(o[:, 3:]) + losses.SCALE_FLOOR
    value = torch.nn.GaussianNLLLoss(full=True, eps=1e-300)(o[:, :3], torch.tensor(y), sigma**2)
    value.backward()
    _assert_loss(ours, (value.item(), o.grad.numpy()))


def test_pinball_matches_a_torch_autograd_pinball():
    rng = np.random.default_rng(4)
    q = (0.1, 0.5, 0.9)
    y = rng.normal(size=(4, 2))
    z = (y[..., None] + rng.uniform(0.1, 1, (4, 2, 3)) * rng.choice([-1.0, 1.0], (4, 2, 3)))
    ours = losses.pinball(z.reshape(4, 6), y, None, q)
    o = torch.tensor(z.reshape(4, 6), requires_grad=True)
    d = torch.tensor(y)[..., None] - o.reshape(4, 2, 3)
    qs = torch.tensor(q, dtype=torch.float64)
    value = torch.maximum(qs * d, (qs - 1) * d).mean()
    value.backward()
    _assert_loss(ours, (value.item(), o.grad.numpy()))
