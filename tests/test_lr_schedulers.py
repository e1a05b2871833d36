"""The schedulers added for PyTorch users: LinearLR, ConstantLR, PolynomialLR, MultiplicativeLR,
CosineAnnealingWarmRestarts, CyclicLR, SequentialLR and ChainedScheduler.

Against PyTorch (the `torch` fixture): every rate of 40 steps, bit for bit, with SGD and Adam (momentum and
beta1 too where CyclicLR cycles them), resumption from ``last_epoch`` and from ``step(epoch)``. Without PyTorch:
state dicts that resume exactly, hostile arguments and states, and `training.fit` driving each one.
"""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest

from tinygrad_nn import data, nn, optim, training
from tinygrad_nn.nn import functional as F  # noqa: N812

lr_scheduler = optim.lr_scheduler


class Halving:
    """A callable object as a scale function (PyTorch would save its attributes; neither saves a function)."""

    def __init__(self):
        self.calls = 0

    def __call__(self, x):
        self.calls += 1
        return 0.5 ** (x - 1)


# Each case builds a scheduler from a library (ours or PyTorch's lr_scheduler module) and an optimizer with two
# parameter groups (rates 0.1 and 0.3).
CASES = {
    "constant": lambda lib, o: lib.ConstantLR(o),
    "constant_half_10": lambda lib, o: lib.ConstantLR(o, factor=0.5, total_iters=10),
    "constant_one": lambda lib, o: lib.ConstantLR(o, factor=1.0, total_iters=3),
    "linear": lambda lib, o: lib.LinearLR(o),
    "linear_warmup": lambda lib, o: lib.LinearLR(o, start_factor=0.1, total_iters=12),
    "linear_decay_to_zero": lambda lib, o: lib.LinearLR(o, start_factor=1.0, end_factor=0.0, total_iters=20),
    "linear_odd": lambda lib, o: lib.LinearLR(o, start_factor=0.37, end_factor=0.83, total_iters=7),
    "linear_one_iter": lambda lib, o: lib.LinearLR(o, start_factor=0.5, total_iters=1),
    "polynomial": lambda lib, o: lib.PolynomialLR(o),
    "polynomial_square": lambda lib, o: lib.PolynomialLR(o, total_iters=25, power=2.0),
    "polynomial_root": lambda lib, o: lib.PolynomialLR(o, total_iters=30, power=0.5),
    "polynomial_zero_power": lambda lib, o: lib.PolynomialLR(o, total_iters=10, power=0),
    "multiplicative": lambda lib, o: lib.MultiplicativeLR(o, lr_lambda=lambda epoch: 0.95),
    "multiplicative_per_group": lambda lib, o: lib.MultiplicativeLR(
        o, lr_lambda=[lambda e: 0.9 if e % 3 else 1.1, lambda e: 1 / (1 + 0.01 * e)]
    ),
    "warm_restarts": lambda lib, o: lib.CosineAnnealingWarmRestarts(o, T_0=7),
    "warm_restarts_mult": lambda lib, o: lib.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2, eta_min=0.001),
    "warm_restarts_one": lambda lib, o: lib.CosineAnnealingWarmRestarts(o, T_0=1, T_mult=3),
    "cyclic": lambda lib, o: lib.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=4),
    "cyclic_per_group": lambda lib, o: lib.CyclicLR(
        o,
        base_lr=[0.01, 0.02],
        max_lr=[0.1, 0.5],
        step_size_up=3,
        step_size_down=5,
        base_momentum=[0.7, 0.75],
        max_momentum=[0.95, 0.9],
    ),
    "cyclic_triangular2": lambda lib, o: lib.CyclicLR(o, 0.001, 0.01, step_size_up=2, mode="triangular2"),
    "cyclic_exp_range": lambda lib, o: lib.CyclicLR(o, 0.01, 0.2, step_size_up=5, mode="exp_range", gamma=0.97),
    "cyclic_saw_tooth": lambda lib, o: lib.CyclicLR(o, 0.01, 0.2, step_size_up=6, step_size_down=0),
    "cyclic_scale_fn_cycle": lambda lib, o: lib.CyclicLR(o, 0.01, 0.1, 3, scale_fn=lambda c: 1 / c),
    "cyclic_scale_fn_iterations": lambda lib, o: lib.CyclicLR(
        o, 0.01, 0.1, 4, mode="ignored", scale_fn=lambda i: 0.99**i, scale_mode="iterations"
    ),
    "cyclic_scale_object": lambda lib, o: lib.CyclicLR(o, 0.01, 0.1, 4, scale_fn=Halving()),
    "cyclic_no_momentum": lambda lib, o: lib.CyclicLR(o, 0.05, 0.5, step_size_up=5, cycle_momentum=False),
    "sequential": lambda lib, o: lib.SequentialLR(
        o, [lib.LinearLR(o, start_factor=0.1, total_iters=5), lib.CosineAnnealingLR(o, T_max=15)], milestones=[5]
    ),
    "sequential_three": lambda lib, o: lib.SequentialLR(
        o,
        [lib.ConstantLR(o, 0.2, 4), lib.ExponentialLR(o, 0.9), lib.StepLR(o, step_size=3, gamma=0.5)],
        milestones=[6, 15],
    ),
    "sequential_restarts_then_polynomial": lambda lib, o: lib.SequentialLR(
        o, [lib.CosineAnnealingWarmRestarts(o, T_0=4), lib.PolynomialLR(o, total_iters=10, power=2)], [12]
    ),
    "sequential_lambda_multiplicative": lambda lib, o: lib.SequentialLR(
        o, [lib.LambdaLR(o, lambda e: e / 5 + 0.1), lib.MultiplicativeLR(o, lambda e: 0.93)], milestones=[5]
    ),
    "sequential_of_chained": lambda lib, o: lib.SequentialLR(
        o,
        [lib.ChainedScheduler([lib.ExponentialLR(o, 0.9), lib.StepLR(o, 3)]), lib.LinearLR(o, 0.25, total_iters=4)],
        milestones=[4],
    ),
    "chained": lambda lib, o: lib.ChainedScheduler([lib.ConstantLR(o, 0.1, 3), lib.ExponentialLR(o, 0.9)]),
    "chained_with_optimizer": lambda lib, o: lib.ChainedScheduler(
        [lib.LinearLR(o, 0.2, total_iters=6), lib.MultiStepLR(o, [4, 9], 0.5), lib.PolynomialLR(o, 30, 1.5)],
        optimizer=o,
    ),
}

# The ones that cycle momentum (or beta1) move it as well as the rate: compared too.
OPTIMIZERS = {
    "sgd": lambda lib, groups: lib.SGD(groups, lr=0.1, momentum=0.9),
    "adam": lambda lib, groups: lib.Adam(groups, lr=0.1),
}


def two_groups(lib, make_parameter, make_optimizer):
    return make_optimizer(lib, [{"params": [make_parameter()]}, {"params": [make_parameter()], "lr": 0.3}])


def paired(torch, optimizer="sgd"):
    ours = two_groups(optim, lambda: nn.Parameter(np.ones(2)), OPTIMIZERS[optimizer])
    theirs = two_groups(torch.optim, lambda: torch.nn.Parameter(torch.ones(2)), OPTIMIZERS[optimizer])
    return ours, theirs


def ours_alone(optimizer="sgd"):
    return two_groups(optim, lambda: nn.Parameter(np.ones(2)), OPTIMIZERS[optimizer])


def assert_same_groups(ours, theirs, where):
    for ours_group, theirs_group in zip(ours.param_groups, theirs.param_groups):
        assert ours_group["lr"] == theirs_group["lr"], f"lr {where}"
        for key in ("momentum", "betas"):
            if key in theirs_group:
                assert tuple(np.atleast_1d(ours_group[key])) == tuple(np.atleast_1d(theirs_group[key])), (
                    f"{key} {where}"
                )


def step_both(optimizers, schedulers, steps, where=""):
    (ours, theirs), (ours_scheduler, theirs_scheduler) = optimizers, schedulers
    for step in range(steps):
        assert ours_scheduler.get_last_lr() == theirs_scheduler.get_last_lr(), f"step {step}{where}"
        assert_same_groups(ours, theirs, f"at step {step}{where}")
        ours.step()
        theirs.step()
        ours_scheduler.step()
        theirs_scheduler.step()
    assert ours_scheduler.get_last_lr() == theirs_scheduler.get_last_lr(), f"after {steps} steps{where}"


# ------------------------------------------------------------------------------------------------------------
# Against PyTorch, to the last bit
# ------------------------------------------------------------------------------------------------------------


# A ChainedScheduler first in a SequentialLR steps its schedulers at creation, before any optimizer step:
# PyTorch warns about that order, which is the point of the case.
@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before:UserWarning")
@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_rates_equal_torchs_to_the_last_bit(torch, name, optimizer):
    ours, theirs = paired(torch, optimizer)
    schedulers = CASES[name](lr_scheduler, ours), CASES[name](torch.optim.lr_scheduler, theirs)
    # 40 steps: past every total_iters and milestone, through several cycles and restarts.
    step_both((ours, theirs), schedulers, 40)


@pytest.mark.parametrize(
    "name", ["constant_half_10", "linear_odd", "polynomial_square", "multiplicative", "warm_restarts_mult", "cyclic"]
)
def test_rates_changed_by_hand_carry_on_as_in_torch(torch, name):
    """The recursive forms go on from the current rate, so a rate set by hand carries on, in both."""
    ours, theirs = paired(torch)
    schedulers = CASES[name](lr_scheduler, ours), CASES[name](torch.optim.lr_scheduler, theirs)
    step_both((ours, theirs), schedulers, 3)
    for group in (*ours.param_groups, *theirs.param_groups):
        group["lr"] *= 0.5
    step_both((ours, theirs), schedulers, 20, " after the change")


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("constant", lambda lib, o, e: lib.ConstantLR(o, 0.25, 6, last_epoch=e)),
        ("linear", lambda lib, o, e: lib.LinearLR(o, 0.2, 0.9, total_iters=10, last_epoch=e)),
        ("polynomial", lambda lib, o, e: lib.PolynomialLR(o, total_iters=12, power=1.7, last_epoch=e)),
        ("multiplicative", lambda lib, o, e: lib.MultiplicativeLR(o, lambda k: 0.9, last_epoch=e)),
        ("warm_restarts", lambda lib, o, e: lib.CosineAnnealingWarmRestarts(o, 5, T_mult=2, last_epoch=e)),
        ("cyclic", lambda lib, o, e: lib.CyclicLR(o, 0.01, 0.1, step_size_up=3, last_epoch=e)),
    ],
)
@pytest.mark.parametrize("last_epoch", [0, 4, 9])
def test_resumed_with_last_epoch_matches_torch(torch, name, make, last_epoch):
    ours, theirs = paired(torch)
    for group in (*ours.param_groups, *theirs.param_groups):
        group["initial_lr"] = group["lr"]
    schedulers = make(lr_scheduler, ours, last_epoch), make(torch.optim.lr_scheduler, theirs, last_epoch)
    step_both((ours, theirs), schedulers, 30)


@pytest.mark.parametrize("name", ["constant_half_10", "linear_odd", "polynomial_square", "polynomial"])
@pytest.mark.parametrize("epochs", [[3, 9, 0, 25, 10, 11], [1, 2, 30, 7]])
def test_step_with_an_epoch_uses_torchs_closed_form(torch, name, epochs):
    ours, theirs = paired(torch)
    ours_scheduler, theirs_scheduler = CASES[name](lr_scheduler, ours), CASES[name](torch.optim.lr_scheduler, theirs)
    for epoch in epochs:
        with pytest.warns(UserWarning, match="deprecated"):
            ours_scheduler.step(epoch)
        with pytest.warns(UserWarning):
            theirs_scheduler.step(epoch)
        assert ours_scheduler.get_last_lr() == theirs_scheduler.get_last_lr(), f"epoch {epoch}"


@pytest.mark.parametrize("T_mult", [1, 2, 3])
def test_warm_restarts_at_fractional_epochs_match_torch(torch, T_mult):
    """step(epoch + i / batches): the documented per-batch form, not deprecated (no warning in either)."""
    ours, theirs = paired(torch)
    ours_scheduler = lr_scheduler.CosineAnnealingWarmRestarts(ours, T_0=3, T_mult=T_mult, eta_min=0.01)
    theirs_scheduler = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(theirs, T_0=3, T_mult=T_mult, eta_min=0.01)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for epoch in [*range(12), 30, 2, 45]:
            for batch in range(4):
                ours.step()
                theirs.step()
                ours_scheduler.step(epoch + batch / 4)
                theirs_scheduler.step(epoch + batch / 4)
                assert ours_scheduler.get_last_lr() == theirs_scheduler.get_last_lr(), (epoch, batch)
                assert (ours_scheduler.T_i, ours_scheduler.T_cur, ours_scheduler.last_epoch) == (
                    theirs_scheduler.T_i,
                    theirs_scheduler.T_cur,
                    theirs_scheduler.last_epoch,
                )
    # Back to plain steps from there.
    step_both((ours, theirs), (ours_scheduler, theirs_scheduler), 10)


def test_cyclic_custom_scale_function_is_called_as_often_as_torchs(torch):
    ours, theirs = paired(torch)
    ours_fn, theirs_fn = Halving(), Halving()
    ours_scheduler = lr_scheduler.CyclicLR(ours, 0.01, 0.1, 2, scale_fn=ours_fn)
    theirs_scheduler = torch.optim.lr_scheduler.CyclicLR(theirs, 0.01, 0.1, 2, scale_fn=theirs_fn)
    step_both((ours, theirs), (ours_scheduler, theirs_scheduler), 12)
    assert ours_fn.calls == theirs_fn.calls > 0


@pytest.mark.parametrize("name", ["sequential", "sequential_three", "chained", "cyclic_per_group", "warm_restarts"])
def test_state_dict_entries_are_torchs(torch, name):
    ours, theirs = paired(torch)
    ours_scheduler, theirs_scheduler = CASES[name](lr_scheduler, ours), CASES[name](torch.optim.lr_scheduler, theirs)
    step_both((ours, theirs), (ours_scheduler, theirs_scheduler), 7)
    ours_state, theirs_state = ours_scheduler.state_dict(), theirs_scheduler.state_dict()
    # PyTorch also saves bookkeeping of its own (its flag for get_lr calls, the scale-function reference).
    shared = set(ours_state) & set(theirs_state)
    assert set(ours_state) <= set(theirs_state) | {"use_beta1"}, set(ours_state) - set(theirs_state)
    for key in shared - {"_schedulers"}:
        assert ours_state[key] == theirs_state[key], key
    for ours_child, theirs_child in zip(ours_state.get("_schedulers", []), theirs_state.get("_schedulers", [])):
        for key in set(ours_child) & set(theirs_child):
            assert ours_child[key] == theirs_child[key], key


# ------------------------------------------------------------------------------------------------------------
# State dicts: plain data that resumes exactly
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("stop", [1, 6, 13])
def test_state_dict_round_trip_resumes_identically(name, optimizer, stop):
    straight = ours_alone(optimizer)
    straight_scheduler = CASES[name](lr_scheduler, straight)
    expected = []
    for _ in range(35):
        straight.step()
        straight_scheduler.step()
        expected.append((straight_scheduler.get_last_lr(), copy.deepcopy(straight.param_groups)))

    first = ours_alone(optimizer)
    first_scheduler = CASES[name](lr_scheduler, first)
    for _ in range(stop):
        first.step()
        first_scheduler.step()
    # Through JSON, as a checkpoint keeps it: numbers, strings, lists and dicts only.
    saved = json.loads(json.dumps({"optimizer": first.state_dict(), "scheduler": first_scheduler.state_dict()}))
    assert "lr_lambdas" not in json.dumps(saved["scheduler"]) and "_scale_fn" not in json.dumps(saved["scheduler"])

    resumed = ours_alone(optimizer)
    for group in resumed.param_groups:
        group["lr"] = 0.77  # another start: only the state dicts carry the run on
    resumed_scheduler = CASES[name](lr_scheduler, resumed)  # the scheduler first (it resets the rates) ...
    resumed.load_state_dict(saved["optimizer"])  # ... then the optimizer's state, then the scheduler's
    resumed_scheduler.load_state_dict(saved["scheduler"])
    assert resumed_scheduler.state_dict() == first_scheduler.state_dict()
    for step in range(stop, 35):
        resumed.step()
        resumed_scheduler.step()
        rates, groups = expected[step]
        assert resumed_scheduler.get_last_lr() == rates, f"step {step + 1}"
        for got, want in zip(resumed.param_groups, groups):
            assert {k: v for k, v in got.items() if k != "params"} == {
                k: v for k, v in want.items() if k != "params"
            }, f"step {step + 1}"


def test_containers_save_their_schedulers_states():
    optimizer = ours_alone()
    scheduler = CASES["sequential_of_chained"](lr_scheduler, optimizer)
    for _ in range(6):
        scheduler.step()
    state = scheduler.state_dict()
    assert state["_milestones"] == [4] and state["last_epoch"] == 6
    chained, linear = state["_schedulers"]
    assert [child["gamma"] for child in chained["_schedulers"]] == [0.9, 0.1]
    assert [child["last_epoch"] for child in chained["_schedulers"]] == [3, 3]  # they stopped at the milestone
    assert linear["start_factor"] == 0.25 and linear["last_epoch"] == 2  # it started there at its epoch 0


def test_functions_are_not_saved_but_kept_on_load():
    optimizer = ours_alone()
    scale = Halving()
    cyclic = lr_scheduler.CyclicLR(optimizer, 0.01, 0.1, 2, scale_fn=scale)
    multiplicative = lr_scheduler.MultiplicativeLR(ours_alone(), lambda e: 0.5)
    assert "_scale_fn_custom" not in cyclic.state_dict() and "lr_lambdas" not in multiplicative.state_dict()
    cyclic.load_state_dict(cyclic.state_dict())
    multiplicative.load_state_dict(multiplicative.state_dict())
    assert cyclic._scale_fn_custom is scale
    multiplicative.step()
    assert multiplicative.get_last_lr() == [0.05, 0.15]


def test_loading_a_state_that_does_not_fit_a_container_changes_nothing():
    optimizer = ours_alone()
    scheduler = CASES["sequential"](lr_scheduler, optimizer)
    for _ in range(3):
        scheduler.step()
    state = scheduler.state_dict()
    wrong_child = copy.deepcopy(state)
    wrong_child["_schedulers"][1]["T_max"] = "fifteen"
    cases = {
        "schedulers[1] (CosineAnnealingLR): 'T_max' should be a number": wrong_child,
        "'_schedulers' should hold the states of 2 schedulers": {**state, "_schedulers": state["_schedulers"][:1]},
        "missing '_schedulers'": {k: v for k, v in state.items() if k != "_schedulers"},
        "schedulers[0] (LinearLR): the state should be a dict": {**state, "_schedulers": [5, state["_schedulers"][1]]},
        "'_milestones' should be a list": {**state, "_milestones": 5},
    }
    for message, bad in cases.items():
        with pytest.raises(ValueError, match=r"SequentialLR\.load_state_dict changed nothing") as error:
            scheduler.load_state_dict(bad)
        assert message in str(error.value), str(error.value)
        assert scheduler.state_dict() == state
    # Another scheduler's state in a child's place is named too.
    swapped = copy.deepcopy(state)
    swapped["_schedulers"].reverse()
    with pytest.raises(ValueError, match=r"schedulers\[0\] \(LinearLR\): 'T_max' is not part of a LinearLR"):
        scheduler.load_state_dict(swapped)


# ------------------------------------------------------------------------------------------------------------
# Hostile and mistaken arguments
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda o: lr_scheduler.ConstantLR(o, factor=0), ValueError, "ConstantLR: factor must be a finite number > 0"),
        (lambda o: lr_scheduler.ConstantLR(o, factor=-0.5), ValueError, "factor must be .* got -0.5"),
        (lambda o: lr_scheduler.ConstantLR(o, factor=1.5), ValueError, "factor .* at most 1, got 1.5"),
        (lambda o: lr_scheduler.ConstantLR(o, factor="0.5"), ValueError, "factor must be a finite number"),
        (lambda o: lr_scheduler.ConstantLR(o, factor=math.nan), ValueError, "factor must be a finite number"),
        (lambda o: lr_scheduler.ConstantLR(o, total_iters=0), ValueError, "total_iters must be a whole number >= 1"),
        (lambda o: lr_scheduler.ConstantLR(o, total_iters=2.5), ValueError, "total_iters must be a whole number"),
        (lambda o: lr_scheduler.LinearLR(o, start_factor=0), ValueError, "start_factor must be a finite number > 0"),
        (lambda o: lr_scheduler.LinearLR(o, start_factor=2), ValueError, "start_factor .* at most 1"),
        (lambda o: lr_scheduler.LinearLR(o, end_factor=-1), ValueError, "end_factor must be a finite number >= 0"),
        (lambda o: lr_scheduler.LinearLR(o, end_factor=1.01), ValueError, "end_factor .* at most 1"),
        (lambda o: lr_scheduler.LinearLR(o, total_iters=-3), ValueError, "LinearLR: total_iters must be a whole"),
        (lambda o: lr_scheduler.LinearLR(o, total_iters=True), ValueError, "total_iters must be a whole"),
        (lambda o: lr_scheduler.PolynomialLR(o, total_iters=0), ValueError, "PolynomialLR: total_iters must be"),
        (lambda o: lr_scheduler.PolynomialLR(o, power=-1), ValueError, "power must be a finite number >= 0"),
        (lambda o: lr_scheduler.PolynomialLR(o, power=None), ValueError, "power must be a finite number"),
        (lambda o: lr_scheduler.MultiplicativeLR(o, 0.9), TypeError, "lr_lambda must be a function of the epoch"),
        (lambda o: lr_scheduler.MultiplicativeLR(o, [abs, abs]), ValueError, "expected 1 values of lr_lambda"),
        (lambda o: lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=0), ValueError, "T_0 must be a whole number >= 1"),
        (lambda o: lr_scheduler.CosineAnnealingWarmRestarts(o, 5.0), ValueError, "T_0 must be a whole number"),
        (lambda o: lr_scheduler.CosineAnnealingWarmRestarts(o, 5, T_mult=0), ValueError, "T_mult must be a whole"),
        (lambda o: lr_scheduler.CosineAnnealingWarmRestarts(o, 5, T_mult=1.5), ValueError, "T_mult must be a whole"),
        (lambda o: lr_scheduler.CosineAnnealingWarmRestarts(o, 5, eta_min="0"), ValueError, "eta_min must be"),
        (lambda o: lr_scheduler.CosineAnnealingWarmRestarts(o, 5, last_epoch=3), ValueError, "has no 'initial_lr'"),
        (lambda o: lr_scheduler.CyclicLR(o, 0.1, 1.0, step_size_up=0), ValueError, "step_size_up must be a whole"),
        (lambda o: lr_scheduler.CyclicLR(o, 0.1, 1.0, 4, step_size_down=-1), ValueError, "step_size_down must be"),
        (lambda o: lr_scheduler.CyclicLR(o, -0.1, 1.0), ValueError, "CyclicLR: base_lr must be a finite number >= 0"),
        (lambda o: lr_scheduler.CyclicLR(o, 0.1, math.inf), ValueError, "max_lr must be a finite number"),
        (lambda o: lr_scheduler.CyclicLR(o, [0.1, 0.2], 1.0), ValueError, "expected 1 values of base_lr"),
        (lambda o: lr_scheduler.CyclicLR(o, 0.1, 1.0, mode="triangle"), ValueError, "mode must be 'triangular'"),
        (lambda o: lr_scheduler.CyclicLR(o, 0.1, 1.0, scale_fn=2.0), TypeError, "scale_fn must be a function"),
        (lambda o: lr_scheduler.CyclicLR(o, 0.1, 1.0, scale_mode="batch"), ValueError, "scale_mode must be 'cycle'"),
        (lambda o: lr_scheduler.CyclicLR(o, 0.1, 1.0, gamma=-0.5), ValueError, "gamma must be a finite number >= 0"),
        (lambda o: lr_scheduler.CyclicLR(o, 0.1, 1.0, base_momentum=-1), ValueError, "base_momentum must be"),
        (lambda o: lr_scheduler.CyclicLR(o, 0.1, 1.0, max_momentum=[0.9] * 3), ValueError, "expected 1 values"),
        (lambda o: lr_scheduler.CyclicLR(o, 0.1, 1.0, last_epoch=-2), ValueError, "last_epoch must be a whole"),
        (lambda o: lr_scheduler.CyclicLR("sgd", 0.1, 1.0), TypeError, "CyclicLR takes an Optimizer, got str"),
        (lambda o: lr_scheduler.LinearLR(None), TypeError, "LinearLR takes an Optimizer, got NoneType"),
    ],
)
def test_mistakes_are_named(make, error, message):
    with pytest.raises(error, match=message):
        make(optim.SGD([nn.Parameter(np.ones(1))], lr=0.1, momentum=0.9))


def test_multiplicative_factor_that_is_not_a_number_is_named_with_its_epoch():
    optimizer = optim.SGD([nn.Parameter(np.ones(1))], lr=0.1)
    factors = {1: 0.5, 2: -0.5, 3: "0.5", 4: math.nan}
    scheduler = lr_scheduler.MultiplicativeLR(optimizer, lambda epoch: factors.get(epoch, 1.0))
    scheduler.step()
    assert scheduler.get_last_lr() == [0.05]
    for epoch, shown in [(2, "-0.5"), (3, "'0.5'"), (4, "nan")]:
        with pytest.raises(ValueError, match=rf"lr_lambda\({epoch}\) must be a finite number >= 0, got {shown}"):
            scheduler.step()
        assert optimizer.param_groups[0]["lr"] == 0.05  # the refused factor changed no rate


def test_cyclic_momentum_needs_an_optimizer_with_momentum_or_betas():
    optimizer = optim.Adagrad([nn.Parameter(np.ones(1))])
    with pytest.raises(ValueError, match="Adagrad has neither: pass cycle_momentum=False"):
        lr_scheduler.CyclicLR(optimizer, 0.01, 0.1)
    scheduler = lr_scheduler.CyclicLR(optimizer, 0.01, 0.1, step_size_up=2, cycle_momentum=False)
    scheduler.step()
    assert scheduler.get_last_lr() == [pytest.approx(0.055)]


def test_cyclic_sets_the_rates_momentum_and_betas_to_the_bottom_of_the_cycle():
    sgd = optim.SGD([nn.Parameter(np.ones(1))], lr=5.0, momentum=0.0)
    lr_scheduler.CyclicLR(sgd, base_lr=0.01, max_lr=0.1, base_momentum=0.7, max_momentum=0.85)
    assert sgd.param_groups[0]["lr"] == 0.01 and sgd.param_groups[0]["momentum"] == 0.85
    adam = optim.Adam([nn.Parameter(np.ones(1))], lr=5.0, betas=(0.5, 0.99))
    scheduler = lr_scheduler.CyclicLR(adam, base_lr=0.01, max_lr=0.1, step_size_up=2)
    assert adam.param_groups[0]["betas"] == (0.9, 0.99)
    scheduler.step()
    scheduler.step()  # the top of the cycle: max_lr and base_momentum
    assert scheduler.get_last_lr() == [0.1] and adam.param_groups[0]["betas"] == (0.8, 0.99)


def test_warm_restarts_step_refuses_a_negative_or_odd_epoch():
    scheduler = lr_scheduler.CosineAnnealingWarmRestarts(optim.SGD([nn.Parameter(np.ones(1))], lr=0.1), T_0=3)
    for epoch, shown in [(-1, "-1"), ("2", "'2'"), (math.inf, "inf")]:
        with pytest.raises(ValueError, match=f"epoch must be a finite number >= 0, got {shown}"):
            scheduler.step(epoch)
    assert scheduler.last_epoch == 0 and scheduler.get_last_lr() == [0.1]


@pytest.mark.parametrize("container", ["SequentialLR", "ChainedScheduler"])
def test_container_mistakes_are_named(container):
    optimizer = optim.SGD([nn.Parameter(np.ones(1))], lr=0.1, momentum=0.9)
    other = optim.SGD([nn.Parameter(np.ones(1))], lr=0.1)

    def make(schedulers, **options):
        if container == "SequentialLR":
            count = len(schedulers) if isinstance(schedulers, list) else 1
            milestones = options.pop("milestones", list(range(3, 3 * count, 3)))
            return lr_scheduler.SequentialLR(optimizer, schedulers, milestones, **options)
        return lr_scheduler.ChainedScheduler(schedulers, **options)

    step = lr_scheduler.StepLR(optimizer, 2)
    cases = [
        ([], ValueError, "schedulers is empty"),
        (step, TypeError, "schedulers must be a list of schedulers, got StepLR"),
        ([step, "cosine"], TypeError, r"schedulers\[1\] must be one of optim.lr_scheduler's, got str"),
        ([step, lr_scheduler.ReduceLROnPlateau(optimizer)], ValueError, r"schedulers\[1\] is a ReduceLROnPlateau"),
        ([step, lr_scheduler.ExponentialLR(other, 0.9)], ValueError, r"schedulers\[1\] \(ExponentialLR\) sets the"),
        ([step, step], ValueError, r"schedulers\[1\] is schedulers\[0\] again"),
    ]
    for schedulers, error, message in cases:
        with pytest.raises(error, match=f"{container}: {message}"):
            make(schedulers)
    if container == "ChainedScheduler":
        with pytest.raises(ValueError, match=r"schedulers\[0\] \(StepLR\) sets the rates of another SGD"):
            lr_scheduler.ChainedScheduler([step], optimizer=other)
        with pytest.raises(TypeError, match="optimizer must be an Optimizer \\(or None\\), got str"):
            lr_scheduler.ChainedScheduler([step], optimizer="sgd")
        return
    exponential = lr_scheduler.ExponentialLR(optimizer, 0.9)
    cosine = lr_scheduler.CosineAnnealingLR(optimizer, 5)
    sequence_cases = [
        ({"milestones": []}, ValueError, "2 schedulers need 1 milestones .* got 0"),
        ({"milestones": [3, 6]}, ValueError, "2 schedulers need 1 milestones .* got 2"),
        ({"milestones": [0]}, ValueError, "each milestone must be a whole number >= 1, got 0"),
        ({"milestones": [2.5]}, ValueError, "each milestone must be a whole number >= 1, got 2.5"),
        ({"milestones": 3}, TypeError, "milestones must be a list of epochs, got 3"),
        ({"milestones": [3], "last_epoch": -5}, ValueError, "last_epoch must be a whole number >= -1"),
    ]
    for options, error, message in sequence_cases:
        with pytest.raises(error, match=f"SequentialLR: {message}"):
            make([step, exponential], **options)
    with pytest.raises(ValueError, match=r"SequentialLR: milestones must increase, got \[6, 6\]"):
        make([step, exponential, cosine], milestones=[6, 6])
    with pytest.raises(ValueError, match=r"milestones must increase, got \[8, 4\]"):
        make([step, exponential, cosine], milestones=[8, 4])
    chained = lr_scheduler.ChainedScheduler([exponential])
    with pytest.raises(ValueError, match=r"schedulers\[1\] is a ChainedScheduler, which cannot start at a milestone"):
        make([step, chained], milestones=[3])
    make([chained, step], milestones=[3])  # first in line it starts as when it was created
    with pytest.raises(TypeError, match="SequentialLR takes an Optimizer"):
        lr_scheduler.SequentialLR([step], [step], [])


def test_sequential_warm_up_then_decay_by_hand():
    optimizer = optim.SGD([nn.Parameter(np.ones(1))], lr=1.0)
    warmup = lr_scheduler.LinearLR(optimizer, start_factor=0.25, total_iters=3)
    decay = lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
    scheduler = lr_scheduler.SequentialLR(optimizer, [warmup, decay], milestones=[3])
    rates = []
    for _ in range(8):
        rates.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    assert rates == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.0, 0.5, 0.5, 0.25])


# ------------------------------------------------------------------------------------------------------------
# training.fit drives them
# ------------------------------------------------------------------------------------------------------------


def fit_setup(name, seed=0):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 60)
    x = rng.standard_normal((3, 4))[labels] * 3 + rng.standard_normal((60, 4))
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    for index, layer in enumerate((model[0], model[2])):
        layer.reset_parameters(np.random.default_rng(seed + index))
    optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    schedulers = {
        "constant": lambda: lr_scheduler.ConstantLR(optimizer, 0.5, total_iters=2),
        "linear": lambda: lr_scheduler.LinearLR(optimizer, 0.1, total_iters=3),
        "polynomial": lambda: lr_scheduler.PolynomialLR(optimizer, total_iters=4, power=2),
        "multiplicative": lambda: lr_scheduler.MultiplicativeLR(optimizer, lambda epoch: 0.8),
        "warm_restarts": lambda: lr_scheduler.CosineAnnealingWarmRestarts(optimizer, T_0=2),
        "cyclic": lambda: lr_scheduler.CyclicLR(optimizer, 0.005, 0.05, step_size_up=3),
        "sequential": lambda: lr_scheduler.SequentialLR(
            optimizer,
            [lr_scheduler.LinearLR(optimizer, 0.2, total_iters=2), lr_scheduler.ExponentialLR(optimizer, 0.7)],
            milestones=[2],
        ),
        "chained": lambda: lr_scheduler.ChainedScheduler(
            [lr_scheduler.ConstantLR(optimizer, 0.5, 2), lr_scheduler.ExponentialLR(optimizer, 0.9)]
        ),
    }
    loader = data.DataLoader(x[:48], labels[:48], batch_size=12, shuffle=True, seed=seed + 1)
    val_loader = data.DataLoader(x[48:], labels[48:], batch_size=12)
    return model, optimizer, schedulers[name](), loader, val_loader


FIT_CASES = ["constant", "linear", "polynomial", "multiplicative", "warm_restarts", "cyclic", "sequential", "chained"]


@pytest.mark.parametrize("name", FIT_CASES)
def test_fit_steps_them_like_a_loop_by_hand(name):
    """Per epoch, or per batch for CyclicLR (fit's default for it, as for OneCycleLR): the same rates."""
    model, optimizer, scheduler, loader, val_loader = fit_setup(name)
    history = training.fit(
        model, F.cross_entropy, optimizer, loader, epochs=5, val_loader=val_loader, scheduler=scheduler,
        progress=False,
    )  # fmt: skip
    assert len(history.epochs) == 5

    by_hand, hand_optimizer, hand_scheduler, hand_loader, _ = fit_setup(name)
    per_batch = name == "cyclic"
    for _ in range(5):
        for x, y in hand_loader:
            hand_optimizer.zero_grad()
            F.cross_entropy(by_hand(x), y).backward()
            hand_optimizer.step()
            if per_batch:
                hand_scheduler.step()
        if not per_batch:
            hand_scheduler.step()
    assert scheduler.get_last_lr() == hand_scheduler.get_last_lr()
    assert scheduler.state_dict() == hand_scheduler.state_dict()
    if per_batch:
        assert scheduler.last_epoch == 5 * len(loader)
    for (key, got), (_, want) in zip(model.named_parameters(), by_hand.named_parameters()):
        assert np.array_equal(got.data, want.data), key


@pytest.mark.parametrize("name", ["sequential", "cyclic", "chained", "warm_restarts"])
def test_fit_resumes_them_from_a_checkpoint_bit_for_bit(tmp_path, name):
    model, optimizer, scheduler, loader, val_loader = fit_setup(name)
    expected = training.fit(
        model, F.cross_entropy, optimizer, loader, epochs=5, val_loader=val_loader, scheduler=scheduler,
        progress=False,
    )  # fmt: skip
    expected_parameters = {key: p.data.copy() for key, p in model.named_parameters()}

    model, optimizer, scheduler, loader, val_loader = fit_setup(name)
    training.fit(
        model, F.cross_entropy, optimizer, loader, epochs=2, val_loader=val_loader, scheduler=scheduler,
        checkpoint_dir=tmp_path, progress=False,
    )  # fmt: skip
    model, optimizer, scheduler, loader, val_loader = fit_setup(name, seed=7)  # other weights and shuffling
    history = training.fit(
        model, F.cross_entropy, optimizer, loader, epochs=5, val_loader=val_loader, scheduler=scheduler,
        checkpoint_dir=tmp_path, resume=True, progress=False,
    )  # fmt: skip
    assert history.loss == expected.loss
    for key, p in model.named_parameters():
        assert np.array_equal(p.data, expected_parameters[key]), key
