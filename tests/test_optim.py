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
    with pytest.raises(ValueError, match="StepLR: step_size must be a whole number >= 1, got 0"):
        optim.StepLR(optimizer, step_size=0)
    with pytest.raises(ValueError, match="CosineAnnealingLR: T_max must be a whole number >= 1, got 0"):
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


# ------------------------------------------------------------------------------------------------------------
# RMSprop and Adagrad, step by step
# ------------------------------------------------------------------------------------------------------------


def test_rmsprop_first_step_by_hand():
    p = parameter_with_grad([1.0, -1.0], [0.5, -2.0])
    optim.RMSprop([p], lr=0.01, alpha=0.9, eps=1e-8).step()
    square_avg = 0.1 * np.array([0.25, 4.0])
    np.testing.assert_allclose(p.data, [1.0, -1.0] - 0.01 * np.array([0.5, -2.0]) / (np.sqrt(square_avg) + 1e-8))


def test_rmsprop_centered_with_momentum_two_steps_by_hand():
    p = parameter_with_grad([0.0], [1.0])
    optimizer = optim.RMSprop([p], lr=0.1, alpha=0.5, eps=0.0, momentum=0.9, centered=True)
    optimizer.step()  # v = 0.5, a = 0.5, denominator sqrt(0.5 - 0.25) = 0.5, buffer = 1 / 0.5 = 2
    assert p.data[0] == pytest.approx(-0.2, rel=1e-15)
    p.grad = np.array([3.0])
    optimizer.step()  # v = 0.25 + 4.5 = 4.75, a = 0.25 + 1.5 = 1.75, denominator sqrt(4.75 - 3.0625) = 1.299..
    denominator = math.sqrt(4.75 - 1.75**2)
    assert p.data[0] == pytest.approx(-0.2 - 0.1 * (0.9 * 2 + 3.0 / denominator), rel=1e-14)
    state = optimizer.state[p]
    assert state["step"] == 2 and set(state) == {"step", "square_avg", "grad_avg", "momentum_buffer"}


def test_adagrad_steps_by_hand_with_lr_decay_and_initial_accumulator():
    p = parameter_with_grad([1.0], [2.0])
    optimizer = optim.Adagrad([p], lr=0.5, lr_decay=0.25, initial_accumulator_value=5.0, eps=0.0)
    assert optimizer.state[p]["step"] == 0 and optimizer.state[p]["sum"][0] == 5.0  # made at once, as PyTorch
    optimizer.step()  # sum 9, lr 0.5
    assert p.data[0] == pytest.approx(1.0 - 0.5 * 2.0 / 3.0, rel=1e-15)
    p.grad = np.array([4.0])
    optimizer.step()  # sum 25, lr 0.5 / 1.25 = 0.4
    assert p.data[0] == pytest.approx(1.0 - 1 / 3 - 0.4 * 4.0 / 5.0, rel=1e-15)


def test_adagrad_starts_the_state_of_a_group_added_later():
    first, second = parameter_with_grad([1.0], [1.0]), parameter_with_grad([1.0], [1.0])
    optimizer = optim.Adagrad([first], lr=0.1)
    optimizer.add_param_group({"params": [second], "initial_accumulator_value": 3.0})
    assert optimizer.state[second]["sum"][0] == 3.0
    optimizer.step()
    assert second.data[0] == pytest.approx(1.0 - 0.1 / 2.0)


@pytest.mark.parametrize(
    "make",
    [
        lambda p: optim.SGD(p, lr=0.1, momentum=0.9, maximize=True),
        lambda p: optim.Adam(p, lr=0.1, maximize=True),
        lambda p: optim.RMSprop(p, lr=0.1, maximize=True),
        lambda p: optim.Adagrad(p, lr=0.1, maximize=True),
    ],
    ids=["sgd", "adam", "rmsprop", "adagrad"],
)
def test_maximize_climbs_the_gradient(make):
    p = parameter_with_grad([1.0], [2.0])
    make([p]).step()
    assert p.data[0] > 1.0


# ------------------------------------------------------------------------------------------------------------
# Mistakes PyTorch users make, and hostile settings
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad"])
def test_passing_the_model_says_to_pass_its_parameters(name):
    model = nn.Linear(2, 1)
    with pytest.raises(TypeError, match=rf"{name} got the model itself \(a Linear\); pass its parameters"):
        getattr(optim, name)(model, lr=0.1)


def test_passing_a_state_dict_or_its_names_or_a_number_says_what_to_pass():
    model = nn.Linear(2, 1)
    with pytest.raises(TypeError, match=r"state dict holds copies.*pass model.parameters\(\)"):
        optim.SGD(model.state_dict(), lr=0.1)
    with pytest.raises(TypeError, match=r"item 0 is a str \(a name: pass model.parameters\(\)"):
        optim.SGD(list(model.state_dict()), lr=0.1)
    with pytest.raises(TypeError, match=r"takes an iterable of parameters such as model.parameters\(\), got int"):
        optim.Adam(3)
    with pytest.raises(TypeError, match="wrap the group in a list"):
        optim.SGD({"params": model.parameters()}, lr=0.1)
    with pytest.raises(TypeError, match="mixes parameter groups"):
        optim.SGD([{"params": [model.weight]}, model.bias], lr=0.1)
    with pytest.raises(TypeError, match=r"a group's 'params' got a Linear; pass its \.parameters"):
        optim.SGD([{"params": model}], lr=0.1)


def test_named_parameters_are_accepted_and_their_names_saved():
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    optimizer = optim.Adam(model.named_parameters(), lr=0.1)
    assert optimizer.param_groups[0]["params"] == list(model.parameters())
    assert optimizer.state_dict()["param_groups"][0]["param_names"] == ["0.weight", "0.bias", "1.weight", "1.bias"]
    assert "param_names" not in repr(optimizer)


@pytest.mark.parametrize("lr", [math.nan, math.inf, True])
def test_nan_infinite_and_boolean_learning_rates_are_refused(lr):
    with pytest.raises(ValueError, match="invalid learning rate"):
        optim.SGD([nn.Parameter(np.ones(1))], lr=lr)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: optim.RMSprop(p, alpha=-0.1), "RMSprop: invalid alpha -0.1"),
        (lambda p: optim.RMSprop(p, momentum=math.nan), "RMSprop: invalid momentum nan"),
        (lambda p: optim.RMSprop(p, eps=-1.0), "RMSprop: invalid eps -1.0"),
        (lambda p: optim.Adagrad(p, lr_decay=-1e-3), "Adagrad: invalid lr_decay -0.001"),
        (lambda p: optim.Adagrad(p, initial_accumulator_value=-1), "invalid initial_accumulator_value -1"),
        (lambda p: optim.Adagrad(p, weight_decay=math.inf), "invalid weight_decay inf"),
        (lambda p: optim.Adam(p, betas=0.9), r"Adam: betas must be a pair \(beta1, beta2\), got 0.9"),
        (lambda p: optim.Adam(p, betas=(0.9, math.nan)), r"betas must each be in \[0, 1\)"),
        (lambda p: optim.SGD(p, lr=0.1, nesterov="yes", momentum=0.9), "SGD: nesterov must be True or False"),
    ],
)
def test_hostile_settings_are_refused_naming_them(make, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make([nn.Parameter(np.ones(1))])


# ------------------------------------------------------------------------------------------------------------
# A gradient that is a Tensor (after backward(create_graph=True))
# ------------------------------------------------------------------------------------------------------------

EVERY_OPTIMIZER = {
    "sgd": lambda p: optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
    "adam": lambda p: optim.Adam(p, lr=0.1, amsgrad=True, weight_decay=0.01),
    "adamw": lambda p: optim.AdamW(p, lr=0.1),
    "rmsprop": lambda p: optim.RMSprop(p, lr=0.01, momentum=0.5, centered=True, weight_decay=0.01),
    "adagrad": lambda p: optim.Adagrad(p, lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1),
}


@pytest.mark.parametrize("name", EVERY_OPTIMIZER)
def test_a_tensor_gradient_steps_like_its_array_and_records_nothing(name):
    with_array, with_tensor = nn.Parameter(np.array([1.0, -2.0])), nn.Parameter(np.array([1.0, -2.0]))
    array_optimizer, tensor_optimizer = EVERY_OPTIMIZER[name]([with_array]), EVERY_OPTIMIZER[name]([with_tensor])
    for grad in ([0.5, 1.5], [-1.0, 0.25]):
        with_array.grad = np.array(grad)
        with_tensor.grad = Tensor(np.array(grad), requires_grad=True) * 1.0  # a Tensor with a graph behind it
        array_optimizer.step()
        tensor_optimizer.step()
        np.testing.assert_array_equal(with_tensor.data, with_array.data)
        assert with_tensor.is_leaf and with_tensor.grad_fn is None
    tensor_optimizer.zero_grad(set_to_none=False)
    assert isinstance(with_tensor.grad, np.ndarray) and np.all(with_tensor.grad == 0)


# ------------------------------------------------------------------------------------------------------------
# State dicts: PyTorch's structure, copies, and a resume that is bit for bit
# ------------------------------------------------------------------------------------------------------------


def small_model(seed=0):
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    generator = np.random.default_rng(seed)
    for layer in (model[0], model[2]):
        layer.reset_parameters(generator)
    return model


def batches(count, seed=5):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((6, 3)), rng.standard_normal((6, 2))) for _ in range(count)]


def test_state_dict_has_pytorchs_structure():
    model = small_model()
    optimizer = optim.Adam([{"params": model[0].parameters()}, {"params": model[2].parameters(), "lr": 0.01}])
    assert optimizer.state_dict()["state"] == {}  # no step yet: no state
    model(Tensor(np.ones((1, 3)))).sum().backward()
    model[2].bias.grad = None  # a parameter without a gradient gets no state
    optimizer.step()
    state = optimizer.state_dict()
    assert set(state) == {"state", "param_groups"}
    assert [group["params"] for group in state["param_groups"]] == [[0, 1], [2, 3]]
    assert state["param_groups"][1]["lr"] == 0.01 and state["param_groups"][0]["betas"] == (0.9, 0.999)
    assert sorted(state["state"]) == [0, 1, 2]
    assert set(state["state"][2]) == {"step", "exp_avg", "exp_avg_sq"} and state["state"][2]["step"] == 1
    assert state["state"][2]["exp_avg"].shape == (2, 4)


def test_state_dict_is_a_copy_both_ways():
    p = parameter_with_grad([1.0], [1.0])
    optimizer = optim.SGD([p], lr=0.1, momentum=0.9)
    optimizer.step()
    state = optimizer.state_dict()
    state["state"][0]["momentum_buffer"][0] = 123.0
    state["param_groups"][0]["lr"] = 5.0
    assert optimizer.state[p]["momentum_buffer"][0] == 1.0 and optimizer.param_groups[0]["lr"] == 0.1
    optimizer.load_state_dict(state)
    state["state"][0]["momentum_buffer"][0] = -1.0
    assert optimizer.state[p]["momentum_buffer"][0] == 123.0 and optimizer.param_groups[0]["lr"] == 5.0


SCHEDULES = {
    "none": None,
    "step": lambda o: optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.5),
    "multistep": lambda o: optim.lr_scheduler.MultiStepLR(o, milestones=[2, 6], gamma=0.5),
    "exponential": lambda o: optim.lr_scheduler.ExponentialLR(o, gamma=0.9),
    "cosine": lambda o: optim.lr_scheduler.CosineAnnealingLR(o, T_max=5, eta_min=0.001),
    "lambda": lambda o: optim.lr_scheduler.LambdaLR(o, lambda epoch: 1 / (1 + epoch)),
    "onecycle": lambda o: optim.lr_scheduler.OneCycleLR(o, max_lr=0.05, total_steps=12),
    "plateau": lambda o: optim.lr_scheduler.ReduceLROnPlateau(o, factor=0.5, patience=1),
}

RESUMABLE = {
    **EVERY_OPTIMIZER,
    "adam-groups": lambda p: optim.Adam([{"params": p[:2]}, {"params": p[2:], "lr": 0.02, "betas": (0.8, 0.9)}]),
}


def train_steps(model, optimizer, scheduler, data):
    for x, y in data:
        optimizer.zero_grad()
        loss = F.mse_loss(model(Tensor(x)), y)
        loss.backward()
        optimizer.step()
        if isinstance(scheduler, optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(loss.item())
        elif scheduler is not None:
            scheduler.step()


def build(optimizer_name, schedule_name, seed=0):
    model = small_model(seed)
    optimizer = RESUMABLE[optimizer_name](list(model.parameters()))
    make = SCHEDULES[schedule_name]
    return model, optimizer, make(optimizer) if make else None


@pytest.mark.parametrize(
    ("optimizer_name", "schedule_name"),
    # OneCycleLR cycles momentum, which Adagrad does not have (an error tested below).
    [(o, s) for o in RESUMABLE for s in SCHEDULES if (o, s) != ("adagrad", "onecycle")],
)
def test_training_resumed_from_state_dicts_is_bit_for_bit_the_same(optimizer_name, schedule_name):
    import copy

    data = batches(12)
    model, optimizer, scheduler = build(optimizer_name, schedule_name)
    train_steps(model, optimizer, scheduler, data)

    first_model, first_optimizer, first_scheduler = build(optimizer_name, schedule_name)
    train_steps(first_model, first_optimizer, first_scheduler, data[:5])
    saved = copy.deepcopy(
        {
            "model": first_model.state_dict(),
            "optimizer": first_optimizer.state_dict(),
            "scheduler": first_scheduler.state_dict() if first_scheduler else None,
        }
    )
    del first_model, first_optimizer, first_scheduler
    # Everything rebuilt from scratch, with other initial weights: only the state dicts carry the run on.
    resumed_model, resumed_optimizer, resumed_scheduler = build(optimizer_name, schedule_name, seed=99)
    resumed_model.load_state_dict(saved["model"])
    resumed_optimizer.load_state_dict(saved["optimizer"])
    if resumed_scheduler is not None:
        resumed_scheduler.load_state_dict(saved["scheduler"])
    train_steps(resumed_model, resumed_optimizer, resumed_scheduler, data[5:])

    for (name, expected), (_, got) in zip(model.named_parameters(), resumed_model.named_parameters()):
        assert np.array_equal(got.data, expected.data), name  # bit for bit, not approximately
    assert [g["lr"] for g in resumed_optimizer.param_groups] == [g["lr"] for g in optimizer.param_groups]


def test_loading_checks_everything_and_changes_nothing_when_it_does_not_fit():
    model = small_model()
    optimizer = optim.Adam(model.parameters(), lr=0.01)
    train_steps(model, optimizer, None, batches(2))
    state = optimizer.state_dict()
    before = optimizer.state_dict()

    def assert_refused(bad, *messages):
        with pytest.raises(ValueError, match="changed nothing") as error:
            optimizer.load_state_dict(bad)
        for message in messages:
            assert message in str(error.value), str(error.value)
        after = optimizer.state_dict()
        assert after["param_groups"] == before["param_groups"]
        for index, entry in before["state"].items():
            np.testing.assert_array_equal(after["state"][index]["exp_avg"], entry["exp_avg"])

    assert_refused({**state, "param_groups": state["param_groups"] * 2}, "2 parameter group(s), this optimizer 1")
    short = [{**state["param_groups"][0], "params": [0, 1, 2]}]
    assert_refused({**state, "param_groups": short}, "group 0 has 3 parameter(s) in the state dict and 4 here")
    wrong_shape = {**state["state"], 0: {**state["state"][0], "exp_avg": np.zeros((2, 2))}}
    assert_refused({**state, "state": wrong_shape}, "parameter 0: 'exp_avg' has shape (2, 2), the parameter (4, 3)")
    foreign = {**state["state"], 1: {**state["state"][1], "momentum_buffer": np.zeros(4)}}
    assert_refused({**state, "state": foreign}, "Adam keeps no 'momentum_buffer'")
    assert_refused({**state, "state": {**state["state"], 7: state["state"][0]}}, "parameter 7, which no group lists")
    negative_step = {**state["state"], 0: {**state["state"][0], "step": -3}}
    assert_refused({**state, "state": negative_step}, "'step' must be a whole number >= 0, got -3")
    text = {**state["state"], 0: {**state["state"][0], "exp_avg_sq": np.array([["a"] * 3] * 4)}}
    assert_refused({**state, "state": text}, "'exp_avg_sq' holds <U1 data, not numbers")
    bad_lr = [{**state["param_groups"][0], "lr": "fast"}]
    assert_refused({**state, "param_groups": bad_lr}, "group 0: Adam: invalid learning rate 'fast'")
    with pytest.raises(ValueError, match="takes what state_dict\\(\\) returned"):
        optimizer.load_state_dict(model.state_dict())


def test_loading_another_optimizers_state_dict_is_refused():
    model = small_model()
    sgd = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    train_steps(model, sgd, None, batches(1))
    with pytest.raises(ValueError, match=r"lacks the setting\(s\) 'amsgrad', 'betas'.*another optimizer"):
        optim.Adam(model.parameters()).load_state_dict(sgd.state_dict())


def test_a_state_dict_that_went_through_json_loads():
    import json

    model = small_model()
    optimizer = optim.Adam(model.parameters(), lr=0.01)
    train_steps(model, optimizer, None, batches(2))
    state = optimizer.state_dict()
    as_json = json.loads(
        json.dumps(state, default=lambda array: {"shape": array.shape, "values": array.ravel().tolist()})
    )
    for entry in as_json["state"].values():  # keys are strings now; arrays come back from their values
        for key, value in entry.items():
            if isinstance(value, dict):
                entry[key] = np.array(value["values"]).reshape(value["shape"])
    fresh = optim.Adam(small_model(1).parameters(), lr=0.5)
    fresh.load_state_dict(as_json)
    assert fresh.param_groups[0]["betas"] == (0.9, 0.999)  # a tuple again, as it was
    assert fresh.param_groups[0]["lr"] == 0.01
    np.testing.assert_array_equal(fresh.state_dict()["state"][0]["exp_avg"], state["state"][0]["exp_avg"])


# ------------------------------------------------------------------------------------------------------------
# The schedulers PyTorch users type: optim.lr_scheduler.*
# ------------------------------------------------------------------------------------------------------------


def test_schedulers_live_in_lr_scheduler_as_in_pytorch():
    from tinygrad_nn.optim.lr_scheduler import OneCycleLR, StepLR

    assert optim.lr_scheduler.StepLR is StepLR is optim.StepLR
    assert optim.lr_scheduler.OneCycleLR is OneCycleLR


def test_multistep_lr_counts_a_repeated_milestone_twice():
    rates = lr_sequence(lambda o: optim.lr_scheduler.MultiStepLR(o, milestones=[3, 1, 3], gamma=0.5), 5)
    assert rates == [1.0, 0.5, 0.5, 0.125, 0.125]


def test_lambda_lr_scales_the_starting_rate():
    rates = lr_sequence(lambda o: optim.lr_scheduler.LambdaLR(o, lambda epoch: 0.5**epoch), 4, lr=0.8)
    assert rates == [0.8, 0.4, 0.2, 0.1]


def test_recursive_schedulers_carry_on_from_a_rate_changed_by_hand():
    optimizer = optim.SGD([nn.Parameter(np.ones(1))], lr=1.0)
    scheduler = optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.5)
    scheduler.step()
    optimizer.param_groups[0]["lr"] = 10.0  # as in PyTorch, the schedule goes on from the new rate
    scheduler.step()
    assert scheduler.get_last_lr() == [5.0]


def test_onecycle_rises_to_max_lr_then_falls_far_below_its_start_and_cycles_momentum():
    optimizer = optim.SGD([nn.Parameter(np.ones(1))], lr=0.1, momentum=0.9)
    scheduler = optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1.0, total_steps=12, pct_start=0.5, div_factor=10)
    rates, momenta = [], []
    for _ in range(12):
        rates.append(scheduler.get_last_lr()[0])
        momenta.append(optimizer.param_groups[0]["momentum"])
        optimizer.step()
        scheduler.step()
    assert rates[0] == pytest.approx(0.1) and max(rates) == pytest.approx(1.0)
    assert rates.index(max(rates)) == 5  # the end of the first phase: pct_start * total_steps - 1
    assert rates[-1] == pytest.approx(0.1 / 1e4)
    assert momenta[0] == 0.95 and momenta[5] == pytest.approx(0.85) and momenta[-1] == pytest.approx(0.95)
    group = optimizer.param_groups[0]
    assert (group["initial_lr"], group["max_lr"], group["max_momentum"], group["base_momentum"]) == (
        0.1,
        1.0,
        0.95,
        0.85,
    )


def test_onecycle_cycles_adams_beta1():
    optimizer = optim.Adam([nn.Parameter(np.ones(1))], lr=0.1, betas=(0.9, 0.99))
    optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1.0, total_steps=10)
    assert optimizer.param_groups[0]["betas"] == (0.95, 0.99)


def test_reduce_lr_on_plateau_waits_patience_epochs_then_cools_down():
    optimizer = optim.SGD([nn.Parameter(np.ones(1))], lr=1.0)
    scheduler = optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=2, cooldown=1)
    rates = []
    for loss in [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.5]:
        scheduler.step(loss)
        rates.append(scheduler.get_last_lr()[0])
    # Bad epochs 2 and 3 pass, the third cuts; one epoch of cooldown; then three more bad ones to cut again.
    assert rates == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]
    scheduler.step(Tensor(0.5))  # a 0-d Tensor counts as a number
    assert scheduler.num_bad_epochs == 2


def test_step_with_an_epoch_is_deprecated_and_jumps_there():
    optimizer = optim.SGD([nn.Parameter(np.ones(1))], lr=1.0)
    scheduler = optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.1)
    with pytest.warns(UserWarning, match="deprecated"):
        scheduler.step(5)
    assert scheduler.get_last_lr() == [pytest.approx(0.01)]


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda o: optim.lr_scheduler.OneCycleLR(o, max_lr=1.0), ValueError, "give total_steps, or both epochs"),
        (lambda o: optim.lr_scheduler.OneCycleLR(o, max_lr=1.0, total_steps=0), ValueError, "total_steps must be"),
        (lambda o: optim.lr_scheduler.OneCycleLR(o, max_lr=1.0, total_steps=5, pct_start=1.5), ValueError, "pct_start"),
        (lambda o: optim.lr_scheduler.OneCycleLR(o, 1.0, 5, anneal_strategy="cosine"), ValueError, "'cos' or 'linear'"),
        (lambda o: optim.lr_scheduler.OneCycleLR(o, max_lr=[1.0, 2.0], total_steps=5), ValueError, "expected 1 values"),
        (lambda o: optim.lr_scheduler.OneCycleLR(o, max_lr=-1.0, total_steps=5), ValueError, "max_lr must be"),
        (lambda o: optim.lr_scheduler.ReduceLROnPlateau(o, factor=1.5), ValueError, "factor .* below 1"),
        (lambda o: optim.lr_scheduler.ReduceLROnPlateau(o, mode="minimum"), ValueError, "'min' \\(a loss\\) or 'max'"),
        (lambda o: optim.lr_scheduler.ReduceLROnPlateau(o, patience=-1), ValueError, "patience must be a whole"),
        (lambda o: optim.lr_scheduler.LambdaLR(o, lr_lambda=0.5), TypeError, "lr_lambda must be a function"),
        (lambda o: optim.lr_scheduler.LambdaLR(o, [abs, abs]), ValueError, "expected 1 values of lr_lambda"),
        (lambda o: optim.lr_scheduler.MultiStepLR(o, milestones=5), TypeError, "milestones must be a list"),
        (lambda o: optim.lr_scheduler.MultiStepLR(o, milestones=[2, -1]), ValueError, "each milestone"),
        (lambda o: optim.lr_scheduler.ExponentialLR(o, gamma=math.nan), ValueError, "gamma must be a finite"),
        (lambda o: optim.lr_scheduler.StepLR(o, step_size=2.5), ValueError, "step_size must be a whole"),
        (lambda o: optim.lr_scheduler.StepLR(o, 2, last_epoch=3), ValueError, "has no 'initial_lr'"),
    ],
)
def test_scheduler_mistakes_are_named(make, error, message):
    with pytest.raises(error, match=message):
        make(optim.SGD([nn.Parameter(np.ones(1))], lr=0.1, momentum=0.9))


def test_onecycle_needs_momentum_or_betas_to_cycle():
    optimizer = optim.Adagrad([nn.Parameter(np.ones(1))])
    with pytest.raises(ValueError, match="Adagrad has neither: pass cycle_momentum=False"):
        optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1.0, total_steps=5)
    optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1.0, total_steps=5, cycle_momentum=False)


def test_reduce_lr_on_plateau_step_needs_a_number():
    scheduler = optim.lr_scheduler.ReduceLROnPlateau(optim.SGD([nn.Parameter(np.ones(1))], lr=0.1))
    with pytest.raises(TypeError, match="needs the metric it watches"):
        scheduler.step()
    with pytest.raises(TypeError, match="takes a number, got str"):
        scheduler.step("low")


@pytest.mark.parametrize("name", [name for name in SCHEDULES if name != "none"])
def test_scheduler_state_dicts_hold_plain_numbers_and_round_trip(name):
    import json

    model, optimizer, scheduler = build("sgd", name)
    train_steps(model, optimizer, scheduler, batches(4))
    state = scheduler.state_dict()
    restored = json.loads(json.dumps(state))  # numbers, strings and lists only (inf is fine for Python's json)
    assert "optimizer" not in state and "lr_lambdas" not in state
    _, _, fresh = build("sgd", name, seed=3)
    fresh.load_state_dict(restored)
    assert fresh.state_dict() == state


def test_loading_a_scheduler_state_that_does_not_fit_changes_nothing():
    optimizer = optim.SGD([nn.Parameter(np.ones(1))], lr=1.0)
    scheduler = optim.lr_scheduler.StepLR(optimizer, step_size=2)
    state = scheduler.state_dict()
    cases = {
        "'T_max' is not part of a StepLR's state": {**state, "T_max": 5},
        "'gamma' should be a number": {**state, "gamma": "0.1"},
        "'base_lrs' should hold one value per parameter group (1)": {**state, "base_lrs": [1.0, 2.0]},
        "missing 'last_epoch'": {k: v for k, v in state.items() if k != "last_epoch"},
    }
    for message, bad in cases.items():
        with pytest.raises(ValueError, match="changed nothing") as error:
            scheduler.load_state_dict(bad)
        assert message in str(error.value)
        assert scheduler.state_dict() == state
    cosine = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=3)
    with pytest.raises(ValueError, match="'step_size' is not part of a CosineAnnealingLR"):
        cosine.load_state_dict(state)
