"""optim, optim.lr_scheduler and nn.utils against PyTorch, in float64: trajectories, rate sequences, clipping.

Every test here needs PyTorch (the `torch` fixture skips without it, and fails under
TINYGRAD_NN_REQUIRE_TORCH=1). The same weights go into both frameworks, the same data and loss drive them, and
every parameter is compared after every step.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import tinygrad_nn.nn.functional as F  # noqa: N812
from tinygrad_nn import Tensor, nn, optim

# The optimizers do the same float64 arithmetic as PyTorch's, in nearly the same order.
TOLERANCE = {"rtol": 1e-13, "atol": 1e-15}


def paired_models(torch, seed=0):
    """A small MLP in both frameworks with identical weights, and a fixed regression batch."""
    rng = np.random.default_rng(seed)
    ours = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2))
    ours[0].reset_parameters(np.random.default_rng(seed + 1))
    ours[2].reset_parameters(np.random.default_rng(seed + 2))
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh(), torch.nn.Linear(5, 2))
    with torch.no_grad():
        for (_, ours_parameter), (_, reference) in zip(ours.named_parameters(), theirs.named_parameters()):
            reference.copy_(torch.from_numpy(ours_parameter.data.copy()))
    return ours, theirs, rng.standard_normal((8, 3)), rng.standard_normal((8, 2))


def run_both(torch, make_ours, make_theirs, steps=10, groups=False, schedulers=None):
    """Take `steps` steps in both frameworks (with schedulers stepping after each); compare after every one."""
    ours, theirs, x, y = paired_models(torch)
    if groups:
        ours_params = [{"params": ours[0].parameters()}, {"params": ours[2].parameters(), "lr": 0.05}]
        theirs_params = [{"params": theirs[0].parameters()}, {"params": theirs[2].parameters(), "lr": 0.05}]
    else:
        ours_params, theirs_params = ours.parameters(), theirs.parameters()
    ours_optimizer, theirs_optimizer = make_ours(ours_params), make_theirs(theirs_params)
    if schedulers is not None:
        ours_scheduler = schedulers(optim.lr_scheduler, ours_optimizer)
        theirs_scheduler = schedulers(torch.optim.lr_scheduler, theirs_optimizer)
    theirs_x, theirs_y = torch.from_numpy(x), torch.from_numpy(y)
    for step in range(steps):
        ours_optimizer.zero_grad()
        theirs_optimizer.zero_grad()
        ours_loss = F.mse_loss(ours(Tensor(x)), y)
        theirs_loss = torch.nn.functional.mse_loss(theirs(theirs_x), theirs_y)
        ours_loss.backward()
        theirs_loss.backward()
        ours_optimizer.step()
        theirs_optimizer.step()
        if schedulers is not None:
            ours_scheduler.step()
            theirs_scheduler.step()
        for (name, parameter), (_, reference) in zip(ours.named_parameters(), theirs.named_parameters()):
            np.testing.assert_allclose(
                parameter.data, reference.detach().numpy(), **TOLERANCE, err_msg=f"{name} after step {step + 1}"
            )
    return ours_optimizer, theirs_optimizer


# ------------------------------------------------------------------------------------------------------------
# RMSprop and Adagrad: every argument PyTorch has
# ------------------------------------------------------------------------------------------------------------

RMSPROP_SETTINGS = {
    "default": {},
    "alpha_eps": {"lr": 0.005, "alpha": 0.9, "eps": 1e-4},
    "weight_decay": {"lr": 0.01, "weight_decay": 0.1},
    "momentum": {"lr": 0.01, "momentum": 0.9},
    "centered": {"lr": 0.01, "centered": True},
    "centered_momentum": {"lr": 0.01, "alpha": 0.95, "momentum": 0.8, "centered": True},
    "everything": {"lr": 0.02, "alpha": 0.9, "eps": 1e-6, "weight_decay": 0.05, "momentum": 0.5, "centered": True},
    "maximize": {"lr": 0.01, "momentum": 0.5, "maximize": True},
}


@pytest.mark.parametrize("settings", RMSPROP_SETTINGS)
def test_rmsprop_trajectory_matches_torch(torch, settings):
    options = RMSPROP_SETTINGS[settings]
    run_both(torch, lambda p: optim.RMSprop(p, **options), lambda p: torch.optim.RMSprop(p, **options), steps=12)


ADAGRAD_SETTINGS = {
    "default": {},
    "lr_decay": {"lr": 0.1, "lr_decay": 0.05},
    "weight_decay": {"lr": 0.05, "weight_decay": 0.2},
    "initial_accumulator": {"lr": 0.1, "initial_accumulator_value": 0.3},
    "eps": {"lr": 0.1, "eps": 1e-3},
    "everything": {"lr": 0.2, "lr_decay": 0.01, "weight_decay": 0.1, "initial_accumulator_value": 0.1, "eps": 1e-6},
    "maximize": {"lr": 0.05, "maximize": True},
}


@pytest.mark.parametrize("settings", ADAGRAD_SETTINGS)
def test_adagrad_trajectory_matches_torch(torch, settings):
    options = ADAGRAD_SETTINGS[settings]
    run_both(torch, lambda p: optim.Adagrad(p, **options), lambda p: torch.optim.Adagrad(p, **options), steps=12)


@pytest.mark.parametrize(
    "make",
    [
        lambda lib, p: lib.SGD(p, lr=0.05, momentum=0.9, maximize=True),
        lambda lib, p: lib.Adam(p, lr=0.01, maximize=True, weight_decay=0.1),
        lambda lib, p: lib.Adam(p, lr=0.01, weight_decay=0.1, decoupled_weight_decay=True),
        lambda lib, p: lib.AdamW(p, lr=0.01, maximize=True),
    ],
    ids=["sgd-maximize", "adam-maximize", "adam-decoupled", "adamw-maximize"],
)
def test_maximize_and_decoupled_weight_decay_match_torch(torch, make):
    run_both(torch, lambda p: make(optim, p), lambda p: make(torch.optim, p))


@pytest.mark.parametrize(
    "make",
    [lambda lib, p: lib.RMSprop(p, lr=0.01, momentum=0.5, centered=True), lambda lib, p: lib.Adagrad(p, lr=0.1)],
    ids=["rmsprop", "adagrad"],
)
def test_parameter_groups_match_torch(torch, make):
    run_both(torch, lambda p: make(optim, p), lambda p: make(torch.optim, p), groups=True)


# ------------------------------------------------------------------------------------------------------------
# State dicts: PyTorch's structure
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda lib, p: lib.SGD(p, lr=0.1, momentum=0.9),
        lambda lib, p: lib.Adam(p, lr=0.01, amsgrad=True),
        lambda lib, p: lib.RMSprop(p, lr=0.01, momentum=0.5, centered=True),
        lambda lib, p: lib.Adagrad(p, lr=0.1, initial_accumulator_value=0.2),
    ],
    ids=["sgd", "adam", "rmsprop", "adagrad"],
)
def test_state_dict_has_torchs_structure_and_values(torch, make):
    ours, theirs = run_both(torch, lambda p: make(optim, p), lambda p: make(torch.optim, p), steps=3, groups=True)
    ours_state, theirs_state = ours.state_dict(), theirs.state_dict()
    assert [g["params"] for g in ours_state["param_groups"]] == [g["params"] for g in theirs_state["param_groups"]]
    for ours_group, theirs_group in zip(ours_state["param_groups"], theirs_state["param_groups"]):
        # PyTorch's groups also carry its device switches (foreach, fused, capturable, differentiable).
        shared = set(ours_group) & set(theirs_group)
        assert set(ours_group) - shared <= set(), set(ours_group) - shared
        for key in shared - {"params"}:
            assert ours_group[key] == pytest.approx(theirs_group[key]), key
    assert sorted(ours_state["state"]) == sorted(theirs_state["state"])
    for index, entry in theirs_state["state"].items():
        assert set(ours_state["state"][index]) == set(entry), index
        for key, value in entry.items():
            np.testing.assert_allclose(np.asarray(ours_state["state"][index][key]), value.numpy(), **TOLERANCE)


# ------------------------------------------------------------------------------------------------------------
# Schedulers: the rate (and momentum) of every step
# ------------------------------------------------------------------------------------------------------------

SCHEDULERS = {
    "step": lambda lib, o: lib.StepLR(o, step_size=3, gamma=0.5),
    "multistep": lambda lib, o: lib.MultiStepLR(o, milestones=[2, 5, 5, 11], gamma=0.3),
    "exponential": lambda lib, o: lib.ExponentialLR(o, gamma=0.9),
    "cosine": lambda lib, o: lib.CosineAnnealingLR(o, T_max=7),
    "cosine_eta_min": lambda lib, o: lib.CosineAnnealingLR(o, T_max=10, eta_min=0.01),
    "lambda": lambda lib, o: lib.LambdaLR(o, lr_lambda=lambda epoch: 1 / (1 + epoch) ** 0.5),
    "lambda_per_group": lambda lib, o: lib.LambdaLR(o, lr_lambda=[lambda e: 0.9**e, lambda e: 1 + e]),
    "onecycle": lambda lib, o: lib.OneCycleLR(o, max_lr=1.0, total_steps=40),
    "onecycle_per_group": lambda lib, o: lib.OneCycleLR(
        o, max_lr=[0.5, 2.0], epochs=4, steps_per_epoch=10, pct_start=0.25, base_momentum=[0.8, 0.7]
    ),
    "onecycle_linear_three_phase": lambda lib, o: lib.OneCycleLR(
        o, max_lr=0.4, total_steps=40, anneal_strategy="linear", three_phase=True, div_factor=10, final_div_factor=100
    ),
    "onecycle_no_momentum": lambda lib, o: lib.OneCycleLR(o, max_lr=0.4, total_steps=40, cycle_momentum=False),
}


def two_group_optimizers(torch, make_optimizer):
    ours = make_optimizer(
        optim, [{"params": [nn.Parameter(np.ones(2))]}, {"params": [nn.Parameter(np.ones(2))], "lr": 0.3}]
    )
    theirs = make_optimizer(
        torch.optim,
        [{"params": [torch.nn.Parameter(torch.ones(2))]}, {"params": [torch.nn.Parameter(torch.ones(2))], "lr": 0.3}],
    )
    return ours, theirs


def assert_same_groups(ours, theirs, where):
    for ours_group, theirs_group in zip(ours.param_groups, theirs.param_groups):
        assert ours_group["lr"] == theirs_group["lr"], f"lr {where}"
        for key in ("momentum", "betas"):
            if key in theirs_group:
                np.testing.assert_array_equal(ours_group[key], theirs_group[key], err_msg=f"{key} {where}")


@pytest.mark.parametrize("name", SCHEDULERS)
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_scheduler_rates_equal_torchs_to_the_last_bit(torch, name, optimizer):
    make_optimizer = (
        (lambda lib, g: lib.SGD(g, lr=0.1, momentum=0.9))
        if optimizer == "sgd"
        else (lambda lib, g: lib.Adam(g, lr=0.1))
    )
    ours, theirs = two_group_optimizers(torch, make_optimizer)
    ours_scheduler, theirs_scheduler = (
        SCHEDULERS[name](optim.lr_scheduler, ours),
        SCHEDULERS[name](torch.optim.lr_scheduler, theirs),
    )
    # 40 steps: past T_max (where the cosine climbs back up), through every milestone, a whole one-cycle.
    for step in range(40):
        assert ours_scheduler.get_last_lr() == theirs_scheduler.get_last_lr(), f"step {step}"
        assert_same_groups(ours, theirs, f"at step {step}")
        ours.step()
        theirs.step()
        ours_scheduler.step()
        theirs_scheduler.step()


def test_onecycle_past_its_total_steps_is_an_error_as_in_torch(torch):
    ours, theirs = two_group_optimizers(torch, lambda lib, g: lib.SGD(g, lr=0.1))
    ours_scheduler = optim.lr_scheduler.OneCycleLR(ours, max_lr=1.0, total_steps=3)
    theirs_scheduler = torch.optim.lr_scheduler.OneCycleLR(theirs, max_lr=1.0, total_steps=3)
    for _ in range(3):
        theirs.step()  # PyTorch warns when a scheduler steps before its optimizer
        ours_scheduler.step()
        theirs_scheduler.step()
    with pytest.raises(ValueError):
        theirs_scheduler.step()
    with pytest.raises(ValueError, match="total_steps=3"):
        ours_scheduler.step()


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"mode": "max", "factor": 0.5, "patience": 1},
        {"factor": 0.5, "patience": 2, "cooldown": 2, "threshold_mode": "abs", "threshold": 0.05},
        {"factor": 0.2, "patience": 0, "min_lr": [0.01, 0.05]},
        {"factor": 0.5, "patience": 0, "eps": 0.02, "min_lr": 0.001},
    ],
)
def test_reduce_lr_on_plateau_matches_torch(torch, settings):
    ours, theirs = two_group_optimizers(torch, lambda lib, g: lib.SGD(g, lr=0.1))
    ours_scheduler = optim.lr_scheduler.ReduceLROnPlateau(ours, **settings)
    theirs_scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(theirs, **settings)
    metrics = [1.0, 0.9, 0.95, 0.95, 0.89, 0.9, 0.9, 0.9, 0.7, 0.71, 0.71, 0.71, 0.71, 0.71, 0.69, 0.69, 0.69]
    for epoch, metric in enumerate(metrics * 2):
        ours_scheduler.step(metric)
        theirs_scheduler.step(metric)
        assert ours_scheduler.get_last_lr() == theirs_scheduler.get_last_lr(), f"epoch {epoch}"
        assert (ours_scheduler.best, ours_scheduler.num_bad_epochs) == (
            theirs_scheduler.best,
            theirs_scheduler.num_bad_epochs,
        )


@pytest.mark.parametrize("name", ["step", "multistep", "exponential", "cosine_eta_min"])
def test_scheduler_state_dict_matches_torchs_entries(torch, name):
    ours, theirs = two_group_optimizers(torch, lambda lib, g: lib.SGD(g, lr=0.1))
    ours_scheduler, theirs_scheduler = (
        SCHEDULERS[name](optim.lr_scheduler, ours),
        SCHEDULERS[name](torch.optim.lr_scheduler, theirs),
    )
    for _ in range(4):
        theirs.step()  # PyTorch warns when a scheduler steps before its optimizer
        ours_scheduler.step()
        theirs_scheduler.step()
    ours_state, theirs_state = ours_scheduler.state_dict(), theirs_scheduler.state_dict()
    for key in ("base_lrs", "last_epoch", "_step_count", "_last_lr"):
        assert ours_state[key] == theirs_state[key], key


def test_scheduler_resumed_with_last_epoch_matches_torch(torch):
    ours, theirs = two_group_optimizers(torch, lambda lib, g: lib.SGD(g, lr=0.1))
    for group in (*ours.param_groups, *theirs.param_groups):
        group["initial_lr"] = group["lr"]
    ours_scheduler = optim.lr_scheduler.CosineAnnealingLR(ours, T_max=10, last_epoch=4)
    theirs_scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(theirs, T_max=10, last_epoch=4)
    for step in range(8):
        assert ours_scheduler.get_last_lr() == theirs_scheduler.get_last_lr(), step
        theirs.step()  # PyTorch warns when a scheduler steps before its optimizer
        ours_scheduler.step()
        theirs_scheduler.step()


@pytest.mark.parametrize("name", ["step", "cosine", "onecycle"])
def test_schedulers_drive_optimizers_like_torch(torch, name):
    make = SCHEDULERS[name]
    run_both(
        torch,
        lambda p: optim.SGD(p, lr=0.05, momentum=0.5),
        lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.5),
        steps=30,
        schedulers=lambda lib, o: make(lib, o) if name != "onecycle" else lib.OneCycleLR(o, max_lr=0.1, total_steps=30),
    )


# ------------------------------------------------------------------------------------------------------------
# Gradient clipping
# ------------------------------------------------------------------------------------------------------------


def gradient_pair(torch, rng, scale=1.0, dtype=np.float64):
    shapes = [(4, 3), (3,), (2, 2, 5)]
    ours, theirs = [], []
    for shape in shapes:
        grad = (scale * rng.standard_normal(shape)).astype(dtype)
        parameter = nn.Parameter(np.zeros(shape, dtype=dtype))
        parameter.grad = grad.copy()
        reference = torch.nn.Parameter(torch.zeros(shape, dtype=torch.from_numpy(grad).dtype))
        reference.grad = torch.from_numpy(grad.copy())
        ours.append(parameter)
        theirs.append(reference)
    return ours, theirs


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.5, math.inf, "inf", 0.5])
@pytest.mark.parametrize("max_norm", [0.1, 1.0, 100.0])
def test_clip_grad_norm_matches_torch(torch, rng, norm_type, max_norm):
    ours, theirs = gradient_pair(torch, rng)
    total = nn.utils.clip_grad_norm_(ours, max_norm, norm_type=norm_type)
    reference = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=norm_type)
    assert isinstance(total, Tensor) and total.shape == ()
    assert float(total) == pytest.approx(float(reference), rel=1e-14)
    for parameter, theirs_parameter in zip(ours, theirs):
        np.testing.assert_allclose(parameter.grad, theirs_parameter.grad.numpy(), rtol=1e-14, atol=1e-300)


def test_clip_grad_norm_in_float32_matches_torch(torch, rng):
    ours, theirs = gradient_pair(torch, rng, scale=10.0, dtype=np.float32)
    total = nn.utils.clip_grad_norm_(ours, 1.0)
    reference = torch.nn.utils.clip_grad_norm_(theirs, 1.0)
    assert total.dtype == np.float32
    assert float(total) == pytest.approx(float(reference), rel=1e-6)
    for parameter, theirs_parameter in zip(ours, theirs):
        assert parameter.grad.dtype == np.float32
        np.testing.assert_allclose(parameter.grad, theirs_parameter.grad.numpy(), rtol=1e-6)


def test_clip_grad_norm_skips_parameters_without_gradients_like_torch(torch, rng):
    ours, theirs = gradient_pair(torch, rng, scale=5.0)
    ours[1].grad = None
    theirs[1].grad = None
    total = nn.utils.clip_grad_norm_(ours, 1.0)
    assert float(total) == pytest.approx(float(torch.nn.utils.clip_grad_norm_(theirs, 1.0)), rel=1e-14)
    assert ours[1].grad is None


@pytest.mark.parametrize("clip_value", [0.0, 0.3, 5.0])
def test_clip_grad_value_matches_torch(torch, rng, clip_value):
    ours, theirs = gradient_pair(torch, rng)
    ours[0].grad[0, 0] = np.nan
    theirs[0].grad[0, 0] = math.nan
    nn.utils.clip_grad_value_(ours, clip_value)
    torch.nn.utils.clip_grad_value_(theirs, clip_value)
    for parameter, theirs_parameter in zip(ours, theirs):
        np.testing.assert_array_equal(parameter.grad, theirs_parameter.grad.numpy())
