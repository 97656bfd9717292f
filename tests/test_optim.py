"""Optimizers, schedules and clipping: worked examples, round trips, errors."""

import json

import numpy as np
import pytest

from rnnkit.optim import (
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
    clip_grad_value,
    get_optimizer,
)


@pytest.fixture(autouse=True)
def _raise_on_float_errors():
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        yield


CONFIGS = [
    (SGD, {"lr": 0.1}),
    (SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    (Adam, {"lr": 0.01, "amsgrad": True, "weight_decay": 0.1}),
    (AdamW, {"lr": 0.01}),
    (RMSprop, {"momentum": 0.5, "centered": True}),
    (Adagrad, {"lr_decay": 0.01, "initial_accumulator_value": 0.1}),
]


def _problem(seed=0):
    rng = np.random.default_rng(seed)
    params = {"0.W_h": rng.normal(size=(3, 3)), "0.b": rng.normal(size=3)}
    grads = [{k: rng.normal(size=v.shape) for k, v in params.items()} for _ in range(10)]
    return params, grads


@pytest.mark.parametrize(("cls", "kwargs"), CONFIGS)
def test_state_dict_round_trip_resumes_exactly(cls, kwargs):
    params, grads = _problem()
    straight = {k: v.copy() for k, v in params.items()}
    opt = cls(**kwargs)
    for g in grads:
        opt.step(straight, g)

    first = cls(**kwargs)
    for g in grads[:5]:
        first.step(params, g)
    arrays, meta = first.state_dict()
    meta = json.loads(json.dumps(meta))
    assert all("." in key for key in arrays)
    resumed = cls(lr=123.0)  # every hyperparameter comes back from meta
    resumed.load_state_dict(arrays, meta)
    for g in grads[5:]:
        resumed.step(params, g)
    for k in params:
        np.testing.assert_array_equal(params[k], straight[k])


def test_state_dict_keys_and_meta():
    params, grads = _problem()
    opt = Adam()
    opt.step(params, grads[0])
    arrays, meta = opt.state_dict()
    assert set(arrays) == {"exp_avg.0.W_h", "exp_avg_sq.0.W_h", "exp_avg.0.b", "exp_avg_sq.0.b"}
    assert meta["class"] == "Adam" and meta["steps"] == {"0.W_h": 1, "0.b": 1}
    assert meta["hyperparameters"]["betas"] == [0.9, 0.999]
    with pytest.raises(ValueError, match="meta: expected class 'SGD', got 'Adam'"):
        SGD(0.1).load_state_dict(arrays, meta)
    with pytest.raises(ValueError, match=r"arrays: unexpected key 'momentum\.0\.b'"):
        Adam().load_state_dict({"momentum.0.b": np.zeros(3)}, meta)


@pytest.mark.parametrize(("cls", "kwargs"), CONFIGS)
def test_updates_in_place_and_keeps_dtype(cls, kwargs):
    params, grads = _problem()
    params = {k: v.astype(np.float32) for k, v in params.items()}
    before = dict(params)
    cls(**kwargs).step(params, grads[0])
    for k in params:
        assert params[k] is before[k] and params[k].dtype == np.float32


def test_sgd_momentum_worked_example():
    # step 1: buf = g = 0.5, p = 1 - 0.1 · 0.5 = 0.95
    # step 2: buf = 0.9 · 0.5 + 0.5 = 0.95, p = 0.95 - 0.1 · 0.95 = 0.855
    p = {"w": np.array([1.0])}
    opt = SGD(0.1, momentum=0.9)
    opt.step(p, {"w": np.array([0.5])})
    assert p["w"][0] == pytest.approx(0.95, rel=1e-15)
    opt.step(p, {"w": np.array([0.5])})
    assert p["w"][0] == pytest.approx(0.855, rel=1e-15)


def test_adam_first_step_worked_example():
    # t = 1: m = 0.1 g, v = 0.001 g²; bias-corrected m̂ = g, v̂ = g², so
    # p = 1 - 0.1 · g / (|g| + eps) = 1 - 0.1 · 2 / (2 + 1e-8)
    p = {"w": np.array([1.0])}
    Adam(lr=0.1).step(p, {"w": np.array([2.0])})
    assert p["w"][0] == pytest.approx(1 - 0.2 / (2 + 1e-8), rel=1e-15)


def test_adagrad_and_rmsprop_worked_examples():
    # Adagrad: s = g² = 4, p = 1 - 0.5 · 2 / (2 + 1e-10)
    p = {"w": np.array([1.0])}
    Adagrad(lr=0.5).step(p, {"w": np.array([2.0])})
    assert p["w"][0] == pytest.approx(1 - 1 / (2 + 1e-10), rel=1e-15)
    # RMSprop, alpha = 0.75: s = 0.25 · 4 = 1, p = 1 - 0.1 · 2 / (1 + 1e-8)
    p = {"w": np.array([1.0])}
    RMSprop(lr=0.1, alpha=0.75).step(p, {"w": np.array([2.0])})
    assert p["w"][0] == pytest.approx(1 - 0.2 / (1 + 1e-8), rel=1e-15)


def test_adamw_decays_weights_without_gradient_signal():
    # with g = 0 the moments stay 0, so only the decay acts: p = 2 · (1 - 0.1 · 0.5)
    p = {"w": np.array([2.0])}
    AdamW(lr=0.1, weight_decay=0.5).step(p, {"w": np.array([0.0])})
    assert p["w"][0] == pytest.approx(1.9, rel=1e-15)


def test_hyperparameter_errors():
    with pytest.raises(ValueError, match=r"lr: expected a learning rate >= 0, got -0\.1"):
        SGD(-0.1)
    with pytest.raises(ValueError, match=r"betas\[0\]: expected a number in \[0, 1\), got 1.0"):
        Adam(betas=(1.0, 0.999))
    with pytest.raises(ValueError, match=r"betas\[1\]: expected a number in \[0, 1\)"):
        AdamW(betas=(0.9, -0.5))
    with pytest.raises(ValueError, match="eps: expected a number > 0, got 0"):
        RMSprop(eps=0)
    with pytest.raises(ValueError, match="eps: expected a number > 0"):
        Adagrad(eps=-1e-10)
    with pytest.raises(ValueError, match="nesterov: requires momentum > 0"):
        SGD(0.1, nesterov=True)
    with pytest.raises(ValueError, match="weight_decay: expected a number >= 0"):
        Adam(weight_decay=-1)
    with pytest.raises(ValueError, match="lr: expected a learning rate >= 0, got nan"):
        Adam().lr = float("nan")


def test_step_errors():
    params = {"w": np.zeros(3)}
    with pytest.raises(ValueError, match="grads: 'v' has no parameter; params has \\['w'\\]"):
        SGD(0.1).step(params, {"v": np.zeros(3)})
    with pytest.raises(ValueError, match=r"grads: 'w' has shape \(2,\), expected \(3,\)"):
        SGD(0.1).step(params, {"w": np.zeros(2)})


def test_get_optimizer():
    assert isinstance(get_optimizer("adam"), Adam)
    assert get_optimizer("AdamW", lr=0.5).lr == 0.5
    assert get_optimizer("sgd").lr == 0.01
    opt = Adam()
    assert get_optimizer(opt, lr=0.2) is opt and opt.lr == 0.2
    with pytest.raises(ValueError, match="optimizer: unknown optimizer 'lbfgs'; known optim"):
        get_optimizer("lbfgs")


def _lrs(schedule, epochs, metrics=None):
    out = []
    for e in range(epochs):
        schedule.step(metrics[e]) if metrics else schedule.step()
        out.append(schedule.optimizer.lr)
    return out


def test_schedule_worked_examples():
    assert _lrs(StepLR(SGD(1.0), step_size=2, gamma=0.5), 5) == [1, 0.5, 0.5, 0.25, 0.25]
    assert _lrs(ExponentialLR(SGD(1.0), gamma=0.5), 3) == [0.5, 0.25, 0.125]
    # T_max = 2: (1 + cos(pi/2)) / 2 = 0.5, (1 + cos(pi)) / 2 = 0, then back up
    cosine = _lrs(CosineAnnealingLR(SGD(1.0), T_max=2), 4)
    np.testing.assert_allclose(cosine, [0.5, 0.0, 0.5, 1.0], atol=1e-15)
    # patience 1: epochs 2, 3 are bad, the 2nd bad one (> patience) cuts; same at 5, 6
    plateau = ReduceLROnPlateau(SGD(1.0), patience=1)
    lrs = _lrs(plateau, 6, [1.0, 1.0, 1.0, 0.5, 0.5, 0.5])
    np.testing.assert_allclose(lrs, [1, 1, 0.1, 0.1, 0.1, 0.01], rtol=1e-15)


@pytest.mark.parametrize(
    ("make", "metrics"),
    [
        (lambda o: StepLR(o, 3, gamma=0.3), None),
        (lambda o: CosineAnnealingLR(o, 7, eta_min=0.01), None),
        (lambda o: ReduceLROnPlateau(o, patience=1, cooldown=1), [1, 1, 1, 1, 0.5, 1, 1, 1]),
    ],
)
def test_schedule_state_dict_round_trip(make, metrics):
    straight = make(SGD(1.0))
    expected = _lrs(straight, 8, metrics)
    opt = SGD(1.0)
    first = make(opt)
    head = _lrs(first, 4, metrics)
    state = json.loads(json.dumps(first.state_dict(), allow_nan=False))
    resumed = make(SGD(opt.lr))  # a fresh schedule on an optimizer restored to the lr
    resumed.load_state_dict(state)
    tail = _lrs(resumed, 4, metrics[4:] if metrics else None)
    assert head + tail == expected


def test_schedule_errors():
    with pytest.raises(ValueError, match="step_size: expected an integer >= 1, got 0"):
        StepLR(SGD(1.0), 0)
    with pytest.raises(ValueError, match="factor: expected a number in"):
        ReduceLROnPlateau(SGD(1.0), factor=1.0)
    with pytest.raises(ValueError, match="mode: expected 'min' or 'max'"):
        ReduceLROnPlateau(SGD(1.0), mode="up")
    with pytest.raises(ValueError, match="state: expected class 'StepLR'"):
        StepLR(SGD(1.0), 2).load_state_dict(ExponentialLR(SGD(1.0), 0.5).state_dict())


def test_clip_grad_norm_worked_example():
    # global norm of [3] and [4] is 5; scale = 1 / (5 + 1e-6)
    grads = {"a": np.array([3.0]), "b": np.array([[4.0]])}
    assert clip_grad_norm(grads, 1.0) == 5.0
    np.testing.assert_allclose([grads["a"][0], grads["b"][0, 0]], np.array([3, 4]) / (5 + 1e-6))
    grads = {"a": np.array([3.0]), "b": np.array([[4.0]])}
    assert clip_grad_norm(grads, 10.0) == 5.0
    assert grads["a"][0] == 3.0  # below max_norm: untouched


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_global_norm_sums_in_float64(dtype):
    from rnnkit.optim import global_norm

    rng = np.random.default_rng(0)
    grads = {"W": rng.standard_normal((256, 64)).astype(dtype), "b": rng.standard_normal(7),
             "v": rng.standard_normal((3, 5, 2)).astype(dtype)[:, ::2]}  # not contiguous
    want = np.sqrt(sum(np.sum(g.astype(np.float64) ** 2) for g in grads.values()))
    assert global_norm(grads) == pytest.approx(want, rel=1e-13)
    assert isinstance(global_norm(grads), float)


def test_clip_grad_value_worked_example():
    grads = {"a": np.array([3.0, -4.0, 0.5])}
    assert clip_grad_value(grads, 1.0) == pytest.approx(np.sqrt(25.25), rel=1e-15)
    np.testing.assert_array_equal(grads["a"], [1.0, -1.0, 0.5])


@pytest.mark.parametrize("bad", [np.inf, np.nan, 1e300])
def test_non_finite_norm_leaves_grads_untouched(bad):
    # 1e300² overflows: the norm is inf, returned without a floating-point error
    for clip in (clip_grad_norm, clip_grad_value):
        grads = {"a": np.array([bad, 4.0])}
        norm = clip(grads, 1.0)
        assert not np.isfinite(norm)
        np.testing.assert_array_equal(grads["a"], [bad, 4.0])


def test_clip_errors():
    with pytest.raises(ValueError, match="max_norm: expected a finite number > 0, got 0"):
        clip_grad_norm({"a": np.ones(2)}, 0)
    with pytest.raises(ValueError, match="clip_value: expected a finite number > 0"):
        clip_grad_value({"a": np.ones(2)}, -1.0)


def test_get_optimizer_sets_weight_decay_by_name_and_on_an_instance():
    assert get_optimizer("adam", 0.1, 0.5).weight_decay == 0.5
    assert get_optimizer("adamw").weight_decay == 0.01  # the default is kept when not given
    assert get_optimizer("sgd", weight_decay=0.2).weight_decay == 0.2
    opt = get_optimizer(RMSprop(), weight_decay=0.3)
    assert opt.weight_decay == 0.3
    with pytest.raises(ValueError, match="weight_decay: expected a number >= 0"):
        get_optimizer(Adagrad(), weight_decay=-1.0)
