"""Optimizers and learning-rate schedulers: first steps worked out by hand, in-place updates, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

import tinygrad_nn.nn.functional as F  # noqa: N812 - the name PyTorch code uses
from tinygrad_nn import Tensor, nn, optim


def parameter_with_grad(values, grad):
    parameter = nn.Parameter(np.array(values, dtype=float))
    parameter.grad = np.array(grad, dtype=float)
    return parameter


# ------------------------------------------------------------------------------------------------------------
# SGD, step by step
# ------------------------------------------------------------------------------------------------------------


def test_sgd_plain_step():
    p = parameter_with_grad([1.0, -2.0], [0.5, 4.0])
    optim.SGD([p], lr=0.1).step()
    np.testing.assert_allclose(p.data, [1.0 - 0.05, -2.0 - 0.4], rtol=1e-15)


def test_sgd_default_lr_is_pytorchs():
    p = parameter_with_grad([1.0], [1.0])
    optim.SGD([p]).step()
    assert p.data[0] == pytest.approx(1.0 - 1e-3, rel=1e-15)


def test_sgd_momentum_buffer_starts_as_the_gradient_then_is_dampened():
    p = parameter_with_grad([0.0], [1.0])
    optimizer = optim.SGD([p], lr=0.1, momentum=0.9, dampening=0.5)
    optimizer.step()  # buffer = g = 1 (no dampening on the first step, as in PyTorch)
    assert p.data[0] == pytest.approx(-0.1, rel=1e-15)
    p.grad = np.array([2.0])
    optimizer.step()  # buffer = 0.9 * 1 + 0.5 * 2 = 1.9
    assert p.data[0] == pytest.approx(-0.1 - 0.19, rel=1e-15)
    assert optimizer.state[p]["momentum_buffer"][0] == pytest.approx(1.9, rel=1e-15)


def test_sgd_nesterov_looks_ahead():
    p = parameter_with_grad([0.0], [1.0])
    optimizer = optim.SGD([p], lr=0.1, momentum=0.5, nesterov=True)
    optimizer.step()  # buffer = 1; update g + m * buffer = 1.5
    assert p.data[0] == pytest.approx(-0.15, rel=1e-15)
    p.grad = np.array([3.0])
    optimizer.step()  # buffer = 0.5 * 1 + 3 = 3.5; update 3 + 0.5 * 3.5 = 4.75
    assert p.data[0] == pytest.approx(-0.15 - 0.475, rel=1e-15)


def test_sgd_weight_decay_adds_to_the_gradient():
    p = parameter_with_grad([2.0], [1.0])
    optimizer = optim.SGD([p], lr=0.1, weight_decay=0.5, momentum=0.9)
    optimizer.step()  # g = 1 + 0.5 * 2 = 2
    assert p.data[0] == pytest.approx(2.0 - 0.2, rel=1e-15)
    optimizer.step()  # g = 1 + 0.5 * 1.8 = 1.9; buffer = 0.9 * 2 + 1.9 = 3.7
    assert p.data[0] == pytest.approx(1.8 - 0.37, rel=1e-15)
    assert p.grad[0] == 1.0  # the stored gradient itself is left alone


# ------------------------------------------------------------------------------------------------------------
# Adam and AdamW, step by step
# ------------------------------------------------------------------------------------------------------------


def adam_by_hand(p, grads, lr, beta1, beta2, eps, weight_decay=0.0, decoupled=False, amsgrad=False):
    m = v = v_max = 0.0
    for t, g in enumerate(grads, start=1):
        if decoupled:
            p *= 1 - lr * weight_decay
        else:
            g = g + weight_decay * p
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        v_max = max(v_max, v)
        second = v_max if amsgrad else v
        p -= lr / (1 - beta1**t) * m / (math.sqrt(second) / math.sqrt(1 - beta2**t) + eps)
    return p


def test_adam_first_step_is_lr_times_the_sign_of_the_gradient():
    p = parameter_with_grad([1.0, 1.0, 1.0], [0.001, -5.0, 300.0])
    optim.Adam([p], lr=0.01).step()
    # m_hat = g and v_hat = g^2 after one step, so the update is lr * g / (|g| + eps)
    expected = 1.0 - 0.01 * p.grad / (np.abs(p.grad) + 1e-8)
    np.testing.assert_allclose(p.data, expected, rtol=1e-15)


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"lr": 0.05, "betas": (0.8, 0.99), "eps": 1e-3},
        {"weight_decay": 0.1},
        {"amsgrad": True},
        {"amsgrad": True, "weight_decay": 0.2},
    ],
)
def test_adam_steps_match_the_formula(settings):
    grads = [1.0, -0.5, 0.25, 2.0, 0.1]
    p = parameter_with_grad([0.3], [0.0])
    optimizer = optim.Adam([p], **settings)
    for g in grads:
        p.grad = np.array([g])
        optimizer.step()
    full = {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0, "amsgrad": False, **settings}
    expected = adam_by_hand(
        0.3, grads, full["lr"], *full["betas"], full["eps"], full["weight_decay"], amsgrad=full["amsgrad"]
    )
    assert p.data[0] == pytest.approx(expected, rel=1e-14)


@pytest.mark.parametrize("settings", [{}, {"lr": 0.05, "weight_decay": 0.3}, {"amsgrad": True}])
def test_adamw_decays_the_weights_apart_from_the_gradient(settings):
    grads = [1.0, -0.5, 0.25, 2.0]
    p = parameter_with_grad([0.7], [0.0])
    optimizer = optim.AdamW([p], **settings)
    for g in grads:
        p.grad = np.array([g])
        optimizer.step()
    full = {"lr": 1e-3, "weight_decay": 1e-2, "amsgrad": False, **settings}  # AdamW's default decay is 1e-2
    expected = adam_by_hand(
        0.7, grads, full["lr"], 0.9, 0.999, 1e-8, full["weight_decay"], decoupled=True, amsgrad=full["amsgrad"]
    )
    assert p.data[0] == pytest.approx(expected, rel=1e-14)


def test_adamw_and_adam_with_weight_decay_differ():
    a, b = parameter_with_grad([1.0], [0.5]), parameter_with_grad([1.0], [0.5])
    optim.Adam([a], lr=0.1, weight_decay=0.5).step()
    optim.AdamW([b], lr=0.1, weight_decay=0.5).step()
    # Adam folds the decay into g (and its normalisation cancels most of it); AdamW shrinks p by lr * wd first.
    assert a.data[0] == pytest.approx(1.0 - 0.1 * 1.0 / (1.0 + 1e-8), rel=1e-15)
    assert b.data[0] == pytest.approx(1.0 * (1 - 0.05) - 0.1 * 0.5 / (0.5 + 1e-8), rel=1e-15)


# ------------------------------------------------------------------------------------------------------------
# What step() and zero_grad() do and do not touch
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda p: optim.SGD(p, lr=0.1),
        lambda p: optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1),
        lambda p: optim.Adam(p, lr=0.1, amsgrad=True),
        lambda p: optim.AdamW(p, lr=0.1),
    ],
    ids=["sgd", "sgd-everything", "adam", "adamw"],
)
def test_step_updates_data_in_place_and_records_no_graph(make):
    model = nn.Linear(3, 2)
    arrays = {name: p.data for name, p in model.named_parameters()}
    before = model.state_dict()
    optimizer = make(model.parameters())
    model(Tensor(np.ones((4, 3)))).sum().backward()
    grads = {name: p.grad.copy() for name, p in model.named_parameters()}
    optimizer.step()
    for name, p in model.named_parameters():
        assert p.data is arrays[name], f"{name} got a new array"
        assert not np.array_equal(p.data, before[name]), f"{name} did not move"
        assert p.is_leaf and p.grad_fn is None and p.requires_grad
        np.testing.assert_array_equal(p.grad, grads[name])  # step reads the gradient, never changes it


def test_parameters_without_a_gradient_are_skipped():
    used, unused = parameter_with_grad([1.0], [1.0]), nn.Parameter(np.array([5.0]))
    for optimizer in (optim.SGD([used, unused], lr=0.1, momentum=0.9), optim.Adam([used, unused])):
        optimizer.step()
        assert unused.data[0] == 5.0
        assert unused not in optimizer.state  # no momentum or moments started for it


def test_zero_grad_to_none_and_to_zeros():
    model = nn.Linear(2, 2)
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    model(Tensor(np.ones((1, 2)))).sum().backward()
    weight_grad = model.weight.grad
    optimizer.zero_grad(set_to_none=False)
    assert model.weight.grad is weight_grad and np.all(weight_grad == 0)
    optimizer.zero_grad()
    assert model.weight.grad is None and model.bias.grad is None


def test_parameter_groups_have_their_own_settings():
    body, head = parameter_with_grad([1.0], [1.0]), parameter_with_grad([1.0], [1.0])
    optimizer = optim.SGD([{"params": [body]}, {"params": [head], "lr": 0.5, "momentum": 0.9}], lr=0.1)
    assert optimizer.param_groups[0]["lr"] == 0.1 and optimizer.param_groups[0]["momentum"] == 0.0
    assert optimizer.param_groups[1]["lr"] == 0.5 and optimizer.param_groups[1]["momentum"] == 0.9
    optimizer.step()
    assert body.data[0] == pytest.approx(0.9) and head.data[0] == pytest.approx(0.5)
    assert head in optimizer.state and body not in optimizer.state


def test_a_group_may_hold_a_single_tensor_and_groups_may_be_added_later():
    first, second = parameter_with_grad([1.0], [1.0]), parameter_with_grad([1.0], [1.0])
    optimizer = optim.SGD([{"params": first}], lr=0.1)
    optimizer.add_param_group({"params": [second], "lr": 0.2})
    optimizer.step()
    assert first.data[0] == pytest.approx(0.9) and second.data[0] == pytest.approx(0.8)
    with pytest.raises(ValueError, match="more than once"):
        optimizer.add_param_group({"params": [first]})


def test_optimizer_takes_a_generator_of_parameters():
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    optimizer = optim.Adam(model.parameters(), lr=0.01)
    assert len(optimizer.param_groups[0]["params"]) == 4


def test_optimizer_repr_lists_each_groups_settings():
    optimizer = optim.SGD([nn.Parameter(np.ones(1))], lr=0.1, momentum=0.9)
    text = repr(optimizer)
    assert text.startswith("SGD (\nParameter Group 0\n")
    assert "    lr: 0.1\n" in text and "    momentum: 0.9\n" in text and "params" not in text


# ------------------------------------------------------------------------------------------------------------
# Errors
# ------------------------------------------------------------------------------------------------------------


def test_empty_parameter_list():
    with pytest.raises(ValueError, match="SGD got an empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="Adam got an empty parameter list"):
        optim.Adam(nn.ReLU().parameters())


def test_a_single_tensor_must_be_wrapped_in_a_list():
    with pytest.raises(TypeError, match="not a single Tensor; wrap it in a list"):
        optim.SGD(nn.Parameter(np.ones(2)), lr=0.1)


@pytest.mark.parametrize("lr", [-0.1, "0.1", None])
def test_invalid_learning_rate(lr):
    with pytest.raises(ValueError, match=f"SGD: invalid learning rate {lr!r}"):
        optim.SGD([nn.Parameter(np.ones(1))], lr=lr)
    with pytest.raises(ValueError, match="invalid learning rate"):
        optim.Adam([{"params": [nn.Parameter(np.ones(1))], "lr": lr}])


def test_a_numpy_float32_learning_rate_is_accepted():
    p = parameter_with_grad([1.0], [1.0])
    optim.SGD([p], lr=np.float32(0.5)).step()
    assert p.data[0] == pytest.approx(0.5)


def test_numpy_float64_and_int_learning_rates_are_accepted():
    p = parameter_with_grad([1.0], [1.0])
    optim.SGD([p], lr=np.float64(0.5)).step()
    optim.SGD([p], lr=1).step()
    assert p.data[0] == pytest.approx(-0.5)


def test_nesterov_needs_momentum_and_no_dampening():
    p = nn.Parameter(np.ones(1))
    with pytest.raises(ValueError, match="Nesterov momentum needs momentum > 0 and dampening = 0"):
        optim.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD([p], lr=0.1, momentum=0.9, dampening=0.1, nesterov=True)


def test_negative_settings_are_refused():
    p = nn.Parameter(np.ones(1))
    with pytest.raises(ValueError, match=r"invalid momentum -0\.5"):
        optim.SGD([p], lr=0.1, momentum=-0.5)
    with pytest.raises(ValueError, match="invalid weight_decay -1"):
        optim.SGD([p], lr=0.1, weight_decay=-1)
    with pytest.raises(ValueError, match=r"Adam: betas must each be in \[0, 1\), got \(0.9, 1.0\)"):
        optim.Adam([p], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="AdamW: invalid eps -1e-08"):
        optim.AdamW([p], eps=-1e-8)


def test_duplicate_parameters_are_refused():
    p = nn.Parameter(np.ones(1))
    with pytest.raises(ValueError, match="some parameters appear more than once"):
        optim.SGD([p, p], lr=0.1)
    with pytest.raises(ValueError, match="more than once, in this group or in another"):
        optim.Adam([{"params": [p]}, {"params": [p], "lr": 0.1}])


def test_computed_tensors_and_frozen_ones_are_refused():
    p = nn.Parameter(np.ones(2))
    with pytest.raises(ValueError, match=r"can't optimize a computed \(non-leaf\) tensor, item 1"):
        optim.SGD([p, p * 2], lr=0.1)
    with pytest.raises(ValueError, match="item 0 with requires_grad=False: it would never change"):
        optim.SGD([Tensor(np.ones(2))], lr=0.1)
    with pytest.raises(TypeError, match="SGD can only optimize Tensors; item 1 is a ndarray"):
        optim.SGD([p, np.ones(2)], lr=0.1)


def test_unknown_group_setting_is_named():
    p = nn.Parameter(np.ones(1))
    with pytest.raises(TypeError, match="SGD has no setting betas"):
        optim.SGD([{"params": [p], "betas": (0.9, 0.99)}], lr=0.1)
    with pytest.raises(TypeError, match="a parameter group needs a 'params' entry"):
        optim.SGD([{"parameters": [p]}], lr=0.1)


def test_base_optimizer_step_is_abstract():
    with pytest.raises(NotImplementedError, match="Optimizer must define step"):
        optim.Optimizer([nn.Parameter(np.ones(1))], {"lr": 0.1}).step()


# ------------------------------------------------------------------------------------------------------------
# Schedulers
# ------------------------------------------------------------------------------------------------------------


def lr_sequence(make_scheduler, epochs, lr=1.0):
    optimizer = optim.SGD([nn.Parameter(np.ones(1))], lr=lr)
    scheduler = make_scheduler(optimizer)
    rates = []
    for _ in range(epochs):
        rates.append(optimizer.param_groups[0]["lr"])
        assert scheduler.get_last_lr() == [rates[-1]]
        optimizer.step()
        scheduler.step()
    return rates


def test_step_lr():
    rates = lr_sequence(lambda o: optim.StepLR(o, step_size=2, gamma=0.5), 7)
    assert rates == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25, 0.125]


def test_exponential_lr():
    rates = lr_sequence(lambda o: optim.ExponentialLR(o, gamma=0.9), 5, lr=0.1)
    np.testing.assert_allclose(rates, [0.1 * 0.9**k for k in range(5)], rtol=1e-15)


def test_cosine_annealing_lr_goes_down_to_eta_min_and_back_up():
    rates = lr_sequence(lambda o: optim.CosineAnnealingLR(o, T_max=4, eta_min=0.1), 9)
    half = 0.1 + 0.9 * (1 + math.cos(math.pi / 4)) / 2
    quarter = 0.1 + 0.9 * (1 + math.cos(3 * math.pi / 4)) / 2
    expected = [1.0, half, 0.55, quarter, 0.1, quarter, 0.55, half, 1.0]  # PyTorch: no restart, the cosine goes on
    np.testing.assert_allclose(rates, expected, rtol=1e-14)


def test_scheduler_scales_each_group_from_its_own_start():
    first, second = nn.Parameter(np.ones(1)), nn.Parameter(np.ones(1))
    optimizer = optim.SGD([{"params": [first]}, {"params": [second], "lr": 0.3}], lr=0.1)
    scheduler = optim.StepLR(optimizer, step_size=1, gamma=0.5)
    assert [g["initial_lr"] for g in optimizer.param_groups] == [0.1, 0.3]
    scheduler.step()
    np.testing.assert_allclose(scheduler.get_last_lr(), [0.05, 0.15], rtol=1e-15)


def test_the_scheduled_rate_is_the_one_step_uses():
    p = parameter_with_grad([0.0], [1.0])
    optimizer = optim.SGD([p], lr=1.0)
    scheduler = optim.StepLR(optimizer, step_size=1, gamma=0.1)
    optimizer.step()
    scheduler.step()
    optimizer.step()
    assert p.data[0] == pytest.approx(-1.1, rel=1e-15)


def test_scheduler_errors():
    optimizer = optim.SGD([nn.Parameter(np.ones(1))], lr=0.1)
    with pytest.raises(ValueError, match="StepLR: step_size must be >= 1, got 0"):
        optim.StepLR(optimizer, step_size=0)
    with pytest.raises(ValueError, match="CosineAnnealingLR: T_max must be >= 1, got 0"):
        optim.CosineAnnealingLR(optimizer, T_max=0)
    with pytest.raises(TypeError, match="ExponentialLR takes an Optimizer, got list"):
        optim.ExponentialLR([nn.Parameter(np.ones(1))], gamma=0.9)


# ------------------------------------------------------------------------------------------------------------
# A tutorial network, trained by SGD, with its published numbers
# ------------------------------------------------------------------------------------------------------------


def test_sgd_reproduces_tutorial_004s_single_neuron():
    # Sichkar's neuron: 3 inputs, no bias, sigmoid; w += X^T (err * o (1 - o)) is SGD with lr 1 on
    # 0.5 * sum((y - o)^2). Weights from np.random.seed(1); 2 * random((3, 1)) - 1, the tutorial's draw.
    inputs = np.array([[1, 1, 1], [1, 0, 1], [0, 0, 1], [0, 1, 1]], dtype=float)
    targets = np.array([[1, 1, 0, 0]], dtype=float).T
    neuron = nn.Sequential(nn.Linear(3, 1, bias=False), nn.Sigmoid())
    neuron[0].weight.data[...] = 2 * np.random.RandomState(1).random_sample((3, 1)).T - 1
    np.testing.assert_allclose(neuron[0].weight.data, [[-0.16595599, 0.44064899, -0.99977125]], atol=5e-9)
    optimizer = optim.SGD(neuron.parameters(), lr=1.0)
    test_input = Tensor(np.array([1.0, 0.0, 0.0]))
    first_accurate = None
    for iteration in range(1, 5001):
        optimizer.zero_grad()
        loss = 0.5 * F.mse_loss(neuron(Tensor(inputs)), targets, reduction="sum")
        loss.backward()
        optimizer.step()
        if first_accurate is None and iteration % 10 == 0 and neuron(test_input).item() >= 0.999:
            first_accurate = iteration
    np.testing.assert_allclose(neuron[0].weight.data, [[8.95950703, -0.20975775, -4.27128529]], atol=5e-8)
    assert neuron(test_input).item() == pytest.approx(0.99987151, abs=5e-9)
    assert first_accurate == 730  # the text prints 740 because it adds 10 before printing
