"""nn, its losses and optim against PyTorch: the same weights in both, and the same numbers out, to 1e-9 or better.

Everything here runs in float64 (the `torch` fixture sets PyTorch's default dtype), so the two frameworks agree
to rounding; the tolerances are far tighter than any real difference in a formula would allow.
"""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_nn.nn.functional as F  # noqa: N812 - the name PyTorch code uses
from tinygrad_nn import Tensor, nn, optim

pytestmark = pytest.mark.torch

TOLERANCE = {"rtol": 1e-10, "atol": 1e-12}
REDUCTIONS = ["mean", "sum", "none"]


def to_torch(torch, array, requires_grad=False):
    return torch.tensor(np.asarray(array), requires_grad=requires_grad)


def to_numpy(tensor):
    return tensor.detach().numpy()


def backward_both(ours, theirs, rng):
    """Backward through both outputs with the same upstream gradient (ones for a scalar)."""
    upstream = np.ones(ours.shape) if ours.ndim == 0 else rng.standard_normal(ours.shape)
    ours.backward(upstream)
    theirs.backward(theirs.new_tensor(upstream))


def assert_close(ours, theirs):
    np.testing.assert_allclose(np.asarray(ours), to_numpy(theirs) if hasattr(theirs, "detach") else theirs, **TOLERANCE)


# ------------------------------------------------------------------------------------------------------------
# Losses: value, gradient of the input, gradient of the target where both frameworks give one
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_loss_matches_torch(torch, rng, reduction):
    prediction, target = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    ours_p, ours_t = Tensor(prediction, requires_grad=True), Tensor(target, requires_grad=True)
    theirs_p, theirs_t = to_torch(torch, prediction, True), to_torch(torch, target, True)
    ours = nn.MSELoss(reduction=reduction)(ours_p, ours_t)
    theirs = torch.nn.MSELoss(reduction=reduction)(theirs_p, theirs_t)
    assert_close(ours.data, theirs)
    backward_both(ours, theirs, rng)
    assert_close(ours_p.grad, theirs_p.grad)
    assert_close(ours_t.grad, theirs_t.grad)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weight_shape", [None, (3,), (4, 3)])
def test_bce_loss_matches_torch(torch, rng, reduction, weight_shape):
    probability = rng.uniform(0.02, 0.98, (4, 3))
    target = rng.uniform(0, 1, (4, 3))
    weight = None if weight_shape is None else rng.uniform(0.5, 2.0, weight_shape)
    ours_p, ours_t = Tensor(probability, requires_grad=True), Tensor(target, requires_grad=True)
    theirs_p, theirs_t = to_torch(torch, probability, True), to_torch(torch, target, True)
    ours = nn.BCELoss(weight=weight, reduction=reduction)(ours_p, ours_t)
    theirs_weight = None if weight is None else to_torch(torch, weight)
    theirs = torch.nn.BCELoss(weight=theirs_weight, reduction=reduction)(theirs_p, theirs_t)
    assert_close(ours.data, theirs)
    backward_both(ours, theirs, rng)
    assert_close(ours_p.grad, theirs_p.grad)
    assert_close(ours_t.grad, theirs_t.grad)


def bce_at_zero_and_one(torch, reduction):
    probability = np.array([0.0, 1.0, 0.0, 1.0, 0.5])
    target = np.array([0.0, 1.0, 1.0, 0.0, 1.0])
    ours_p = Tensor(probability, requires_grad=True)
    theirs_p = to_torch(torch, probability, True)
    ours = F.binary_cross_entropy(ours_p, target, reduction=reduction)
    theirs = torch.nn.functional.binary_cross_entropy(theirs_p, to_torch(torch, target), reduction=reduction)
    backward_both(ours, theirs, np.random.default_rng(0))
    return ours, theirs, ours_p.grad, to_numpy(theirs_p.grad)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_clamps_its_logs_at_probabilities_zero_and_one_like_torch(torch, reduction):
    # log(0) is clamped to -100 in both, so a confident wrong answer costs exactly 100, and the gradient stays
    # finite thanks to the floor of 1e-12 on p(1 - p).
    ours, theirs, ours_grad, theirs_grad = bce_at_zero_and_one(torch, reduction)
    assert_close(ours.data, theirs)
    assert np.isfinite(ours_grad).all()
    np.testing.assert_allclose(ours_grad, theirs_grad, rtol=1e-8)


def test_bce_gradient_at_probabilities_zero_and_one_equals_torch_to_1e_10(torch):
    _, _, ours_grad, theirs_grad = bce_at_zero_and_one(torch, "sum")
    np.testing.assert_allclose(ours_grad, theirs_grad, rtol=1e-10)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("with_weight", [False, True])
@pytest.mark.parametrize("with_pos_weight", [False, True])
def test_bce_with_logits_matches_torch(torch, rng, reduction, with_weight, with_pos_weight):
    logits = rng.standard_normal((5, 3)) * 4
    logits[0] = [-800.0, 800.0, 0.0]  # far beyond where exp overflows: both are stable there
    target = rng.uniform(0, 1, (5, 3))
    weight = rng.uniform(0.5, 2.0, (5, 3)) if with_weight else None
    pos_weight = rng.uniform(0.5, 3.0, (3,)) if with_pos_weight else None
    ours_x, ours_t = Tensor(logits, requires_grad=True), Tensor(target, requires_grad=True)
    theirs_x, theirs_t = to_torch(torch, logits, True), to_torch(torch, target, True)
    ours = nn.BCEWithLogitsLoss(weight=weight, reduction=reduction, pos_weight=pos_weight)(ours_x, ours_t)
    theirs = torch.nn.BCEWithLogitsLoss(
        weight=None if weight is None else to_torch(torch, weight),
        reduction=reduction,
        pos_weight=None if pos_weight is None else to_torch(torch, pos_weight),
    )(theirs_x, theirs_t)
    assert_close(ours.data, theirs)
    backward_both(ours, theirs, rng)
    assert_close(ours_x.grad, theirs_x.grad)
    assert_close(ours_t.grad, theirs_t.grad)


CROSS_ENTROPY_CASES = {
    "plain": {},
    "weight": {"weight": True},
    "ignore_index": {"ignore_index": 2},
    "weight_and_ignore_index": {"weight": True, "ignore_index": 0},
}


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", CROSS_ENTROPY_CASES)
@pytest.mark.parametrize("logits_shape", [(6, 4), (3, 4, 2, 5)], ids=["2d", "k-dimensional"])
def test_cross_entropy_with_class_indices_matches_torch(torch, rng, reduction, case, logits_shape):
    options = CROSS_ENTROPY_CASES[case]
    logits = rng.standard_normal(logits_shape) * 3
    classes = logits_shape[1]
    target = rng.integers(0, classes, logits_shape[:1] + logits_shape[2:])
    target.flat[0] = options.get("ignore_index", 0)  # at least one ignored target whenever ignore_index is set
    weight = rng.uniform(0.5, 2.0, classes) if options.get("weight") else None
    ignore_index = options.get("ignore_index", -100)
    ours_x = Tensor(logits, requires_grad=True)
    theirs_x = to_torch(torch, logits, True)
    ours = nn.CrossEntropyLoss(weight=weight, ignore_index=ignore_index, reduction=reduction)(ours_x, target)
    theirs = torch.nn.CrossEntropyLoss(
        weight=None if weight is None else to_torch(torch, weight), ignore_index=ignore_index, reduction=reduction
    )(theirs_x, to_torch(torch, target))
    assert_close(ours.data, theirs)
    backward_both(ours, theirs, rng)
    assert_close(ours_x.grad, theirs_x.grad)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("with_weight", [False, True])
@pytest.mark.parametrize("logits_shape", [(6, 4), (3, 4, 5)], ids=["2d", "k-dimensional"])
def test_cross_entropy_with_probability_targets_matches_torch(torch, rng, reduction, with_weight, logits_shape):
    logits = rng.standard_normal(logits_shape) * 2
    raw = rng.uniform(0, 1, logits_shape)
    probabilities = raw / raw.sum(axis=1, keepdims=True)
    weight = rng.uniform(0.5, 2.0, logits_shape[1]) if with_weight else None
    ours_x, ours_t = Tensor(logits, requires_grad=True), Tensor(probabilities, requires_grad=True)
    theirs_x, theirs_t = to_torch(torch, logits, True), to_torch(torch, probabilities, True)
    ours = F.cross_entropy(ours_x, ours_t, weight=weight, reduction=reduction)
    theirs = torch.nn.functional.cross_entropy(
        theirs_x, theirs_t, weight=None if weight is None else to_torch(torch, weight), reduction=reduction
    )
    assert_close(ours.data, theirs)
    backward_both(ours, theirs, rng)
    assert_close(ours_x.grad, theirs_x.grad)
    assert_close(ours_t.grad, theirs_t.grad)


def test_cross_entropy_of_a_single_row_matches_torch(torch):
    logits = np.array([1.0, -2.0, 0.5, 3.0])
    ours_x, theirs_x = Tensor(logits, requires_grad=True), to_torch(torch, logits, True)
    ours = F.cross_entropy(ours_x, np.array(2))
    theirs = torch.nn.functional.cross_entropy(theirs_x, torch.tensor(2))
    assert_close(ours.data, theirs)
    ours.backward()
    theirs.backward()
    assert_close(ours_x.grad, theirs_x.grad)


def test_cross_entropy_takes_integer_tensor_targets_like_torch(torch, rng):
    logits = rng.standard_normal((5, 3))
    labels = np.array([0, 2, 1, 1, 0])
    ours = F.cross_entropy(Tensor(logits), Tensor(labels))
    theirs = torch.nn.functional.cross_entropy(to_torch(torch, logits), to_torch(torch, labels))
    assert_close(ours.data, theirs)


# ------------------------------------------------------------------------------------------------------------
# Layers
# ------------------------------------------------------------------------------------------------------------


def copy_weights_into_torch(torch, ours, theirs):
    """Copy every parameter of our model into the torch model with the same dotted names."""
    state = ours.state_dict()
    assert list(state) == [name for name, _ in theirs.named_parameters()]
    theirs.load_state_dict({name: torch.tensor(array) for name, array in state.items()})


@pytest.mark.parametrize(
    "activation", ["ReLU", "Tanh", "Sigmoid", "Identity"], ids=["relu", "tanh", "sigmoid", "identity"]
)
@pytest.mark.parametrize("head", ["Softmax", "LogSoftmax"])
def test_sequential_forward_and_parameter_gradients_match_torch(torch, rng, activation, head):
    ours = nn.Sequential(nn.Linear(5, 8), getattr(nn, activation)(), nn.Linear(8, 3), getattr(nn, head)(axis=1))
    theirs = torch.nn.Sequential(
        torch.nn.Linear(5, 8), getattr(torch.nn, activation)(), torch.nn.Linear(8, 3), getattr(torch.nn, head)(dim=1)
    )
    copy_weights_into_torch(torch, ours, theirs)
    x = rng.standard_normal((7, 5))
    ours_x, theirs_x = Tensor(x, requires_grad=True), to_torch(torch, x, True)
    ours_out, theirs_out = ours(ours_x), theirs(theirs_x)
    assert_close(ours_out.data, theirs_out)
    backward_both(ours_out, theirs_out, rng)
    assert_close(ours_x.grad, theirs_x.grad)
    for (name, parameter), (_, reference) in zip(ours.named_parameters(), theirs.named_parameters()):
        np.testing.assert_allclose(parameter.grad, to_numpy(reference.grad), **TOLERANCE, err_msg=name)


@pytest.mark.parametrize("input_shape", [(4,), (3, 4), (2, 3, 4)], ids=["1d", "2d", "3d"])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_on_any_leading_axes_matches_torch(torch, rng, input_shape, bias):
    ours = nn.Linear(4, 6, bias=bias)
    theirs = torch.nn.Linear(4, 6, bias=bias)
    copy_weights_into_torch(torch, ours, theirs)
    x = rng.standard_normal(input_shape)
    ours_out, theirs_out = ours(Tensor(x)), theirs(to_torch(torch, x))
    assert ours_out.shape == tuple(theirs_out.shape)
    assert_close(ours_out.data, theirs_out)
    backward_both(ours_out, theirs_out, rng)
    assert_close(ours.weight.grad, theirs.weight.grad)
    if bias:
        assert_close(ours.bias.grad, theirs.bias.grad)


def test_linear_repr_and_state_dict_names_match_torch(torch):
    ours = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2, bias=False))
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2, bias=False))
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())


def test_uniform_fan_inits_and_gains_match_torch(torch):
    # Same shape, same fans, same gain: both draw uniformly from the same interval, so the largest of 60,000
    # draws is the bound in both, to about 1e-4.
    torch.manual_seed(0)
    shape = (300, 200)
    for name, kwargs in [
        ("xavier_uniform_", {"gain": 1.7}),
        ("kaiming_uniform_", {"a": 0.2, "nonlinearity": "leaky_relu"}),
        ("kaiming_uniform_", {"mode": "fan_out", "nonlinearity": "relu"}),
    ]:
        reference = torch.empty(shape)
        getattr(torch.nn.init, name)(reference, **kwargs)
        ours = nn.Parameter(np.empty(shape))
        getattr(nn.init, name)(ours, **kwargs, generator=np.random.default_rng(0))
        assert np.abs(ours.data).max() == pytest.approx(float(reference.abs().max()), rel=1e-3), name
    for nonlinearity, param in [("relu", None), ("tanh", None), ("leaky_relu", 0.3), ("sigmoid", None), ("selu", None)]:
        expected = torch.nn.init.calculate_gain(nonlinearity, param)
        assert nn.init.calculate_gain(nonlinearity, param) == pytest.approx(expected, rel=1e-15)


# ------------------------------------------------------------------------------------------------------------
# Optimizers: several steps of the same model, the same data, the same loss
# ------------------------------------------------------------------------------------------------------------


def paired_models(torch, seed=0):
    """A small tinygrad_nn MLP and its torch twin with identical weights, plus a fixed regression batch."""
    data_rng = np.random.default_rng(seed)
    ours = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2))
    ours[0].reset_parameters(np.random.default_rng(seed + 1))
    ours[2].reset_parameters(np.random.default_rng(seed + 2))
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh(), torch.nn.Linear(5, 2))
    copy_weights_into_torch(torch, ours, theirs)
    x, y = data_rng.standard_normal((8, 3)), data_rng.standard_normal((8, 2))
    return ours, theirs, x, y


def run_both(torch, make_ours, make_theirs, steps=6, groups=False):
    """Take `steps` optimizer steps in both frameworks and compare every parameter after every step."""
    ours, theirs, x, y = paired_models(torch)
    if groups:
        ours_params = [{"params": ours[0].parameters()}, {"params": ours[2].parameters(), "lr": 0.05}]
        theirs_params = [{"params": theirs[0].parameters()}, {"params": theirs[2].parameters(), "lr": 0.05}]
    else:
        ours_params, theirs_params = ours.parameters(), theirs.parameters()
    ours_optimizer, theirs_optimizer = make_ours(ours_params), make_theirs(theirs_params)
    theirs_x, theirs_y = to_torch(torch, x), to_torch(torch, y)
    for step in range(steps):
        ours_optimizer.zero_grad()
        theirs_optimizer.zero_grad()
        ours_loss = F.mse_loss(ours(Tensor(x)), y)
        theirs_loss = torch.nn.functional.mse_loss(theirs(theirs_x), theirs_y)
        np.testing.assert_allclose(ours_loss.item(), theirs_loss.item(), **TOLERANCE, err_msg=f"loss, step {step}")
        ours_loss.backward()
        theirs_loss.backward()
        ours_optimizer.step()
        theirs_optimizer.step()
        for (name, parameter), (_, reference) in zip(ours.named_parameters(), theirs.named_parameters()):
            np.testing.assert_allclose(
                parameter.data, to_numpy(reference), **TOLERANCE, err_msg=f"{name} after step {step + 1}"
            )


SGD_SETTINGS = {
    "plain": {"lr": 0.1},
    "momentum": {"lr": 0.1, "momentum": 0.9},
    "momentum_dampening": {"lr": 0.1, "momentum": 0.9, "dampening": 0.3},
    "nesterov": {"lr": 0.1, "momentum": 0.8, "nesterov": True},
    "weight_decay": {"lr": 0.1, "weight_decay": 0.05},
    "everything": {"lr": 0.1, "momentum": 0.7, "weight_decay": 0.05, "nesterov": True},
    "momentum_dampening_weight_decay": {"lr": 0.05, "momentum": 0.5, "dampening": 0.5, "weight_decay": 0.1},
}


@pytest.mark.parametrize("settings", SGD_SETTINGS)
def test_sgd_trajectory_matches_torch(torch, settings):
    options = SGD_SETTINGS[settings]
    run_both(torch, lambda p: optim.SGD(p, **options), lambda p: torch.optim.SGD(p, **options))


ADAM_SETTINGS = {
    "default": {},
    "lr_betas_eps": {"lr": 0.02, "betas": (0.8, 0.95), "eps": 1e-6},
    "weight_decay": {"lr": 0.01, "weight_decay": 0.1},
    "amsgrad": {"lr": 0.01, "amsgrad": True},
    "amsgrad_weight_decay": {"lr": 0.01, "amsgrad": True, "weight_decay": 0.1},
}


@pytest.mark.parametrize("settings", ADAM_SETTINGS)
def test_adam_trajectory_matches_torch(torch, settings):
    options = ADAM_SETTINGS[settings]
    run_both(torch, lambda p: optim.Adam(p, **options), lambda p: torch.optim.Adam(p, **options), steps=8)


@pytest.mark.parametrize("settings", [{}, {"lr": 0.01, "weight_decay": 0.3}, {"lr": 0.01, "amsgrad": True}])
def test_adamw_trajectory_matches_torch(torch, settings):
    run_both(torch, lambda p: optim.AdamW(p, **settings), lambda p: torch.optim.AdamW(p, **settings), steps=8)


@pytest.mark.parametrize(
    "make",
    [
        lambda lib, p: lib.SGD(p, lr=0.1, momentum=0.9),
        lambda lib, p: lib.Adam(p, lr=0.01),
    ],
    ids=["sgd", "adam"],
)
def test_parameter_groups_with_their_own_lr_match_torch(torch, make):
    run_both(torch, lambda p: make(optim, p), lambda p: make(torch.optim, p), groups=True)


def test_parameters_without_gradient_are_skipped_like_torch(torch):
    # Only the second layer takes part in the loss for the first steps: the first layer's parameters have no
    # grad, so neither framework moves them or starts their momentum.
    ours, theirs, x, y = paired_models(torch)
    ours_optimizer = optim.SGD(ours.parameters(), lr=0.1, momentum=0.9)
    theirs_optimizer = torch.optim.SGD(theirs.parameters(), lr=0.1, momentum=0.9)
    hidden = np.tanh(x @ ours[0].weight.data.T + ours[0].bias.data)
    for step in range(5):
        ours_optimizer.zero_grad()
        theirs_optimizer.zero_grad()
        if step < 3:
            ours_loss = F.mse_loss(ours[2](Tensor(hidden)), y)
            theirs_loss = torch.nn.functional.mse_loss(theirs[2](to_torch(torch, hidden)), to_torch(torch, y))
        else:
            ours_loss = F.mse_loss(ours(Tensor(x)), y)
            theirs_loss = torch.nn.functional.mse_loss(theirs(to_torch(torch, x)), to_torch(torch, y))
        ours_loss.backward()
        theirs_loss.backward()
        ours_optimizer.step()
        theirs_optimizer.step()
        for (name, parameter), (_, reference) in zip(ours.named_parameters(), theirs.named_parameters()):
            np.testing.assert_allclose(parameter.data, to_numpy(reference), **TOLERANCE, err_msg=f"{name}, {step}")


SCHEDULERS = {
    "step": (lambda lib, o: lib.StepLR(o, step_size=3, gamma=0.5)),
    "exponential": (lambda lib, o: lib.ExponentialLR(o, gamma=0.9)),
    "cosine": (lambda lib, o: lib.CosineAnnealingLR(o, T_max=7)),
    "cosine_eta_min": (lambda lib, o: lib.CosineAnnealingLR(o, T_max=10, eta_min=0.01)),
}


@pytest.mark.parametrize("name", SCHEDULERS)
def test_scheduler_lr_sequences_match_torch(torch, name):
    make = SCHEDULERS[name]
    ours_param, theirs_param = nn.Parameter(np.ones(2)), torch.nn.Parameter(torch.ones(2))
    extra_ours, extra_theirs = nn.Parameter(np.ones(2)), torch.nn.Parameter(torch.ones(2))
    ours_optimizer = optim.SGD([{"params": [ours_param]}, {"params": [extra_ours], "lr": 0.3}], lr=0.1)
    theirs_optimizer = torch.optim.SGD([{"params": [theirs_param]}, {"params": [extra_theirs], "lr": 0.3}], lr=0.1)
    ours_scheduler, theirs_scheduler = make(optim, ours_optimizer), make(torch.optim.lr_scheduler, theirs_optimizer)
    # 25 epochs: past T_max, where PyTorch's cosine climbs back up (no restart), and over several StepLR steps.
    for epoch in range(25):
        np.testing.assert_allclose(
            ours_scheduler.get_last_lr(), theirs_scheduler.get_last_lr(), rtol=1e-12, atol=1e-15, err_msg=str(epoch)
        )
        assert [g["lr"] for g in ours_optimizer.param_groups] == ours_scheduler.get_last_lr()
        ours_optimizer.step()
        theirs_optimizer.step()
        ours_scheduler.step()
        theirs_scheduler.step()


# ------------------------------------------------------------------------------------------------------------
# micrograd's demo: a 2-16-16-1 ReLU MLP on make_moons with the SVM max-margin loss, trained in both
# ------------------------------------------------------------------------------------------------------------


def test_micrograd_demo_mlp_trains_identically_in_both(torch):
    from sklearn.datasets import make_moons

    X, y = make_moons(n_samples=100, noise=0.1, random_state=1)
    y = y * 2.0 - 1.0  # labels -1 and 1, as the demo uses
    ours = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 1))
    init_rng = np.random.default_rng(1337)
    for parameter in ours.parameters():  # micrograd draws every weight and bias from U(-1, 1)
        nn.init.uniform_(parameter, -1.0, 1.0, generator=init_rng)
    theirs = torch.nn.Sequential(
        torch.nn.Linear(2, 16), torch.nn.ReLU(), torch.nn.Linear(16, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1)
    )
    copy_weights_into_torch(torch, ours, theirs)
    ours_optimizer = optim.SGD(ours.parameters(), lr=1.0)
    theirs_optimizer = torch.optim.SGD(theirs.parameters(), lr=1.0)
    theirs_X, theirs_y = to_torch(torch, X), to_torch(torch, y)

    def ours_loss():
        scores = ours(Tensor(X)).reshape(-1)
        data_loss = (1 - Tensor(y) * scores).relu().mean()
        return data_loss + 1e-4 * sum((p * p).sum() for p in ours.parameters()), scores

    def theirs_loss():
        scores = theirs(theirs_X).reshape(-1)
        data_loss = (1 - theirs_y * scores).relu().mean()
        return data_loss + 1e-4 * sum((p * p).sum() for p in theirs.parameters()), scores

    losses = []
    for k in range(100):
        (ours_total, ours_scores), (theirs_total, _) = ours_loss(), theirs_loss()
        np.testing.assert_allclose(ours_total.item(), theirs_total.item(), rtol=1e-9, err_msg=f"loss at step {k}")
        losses.append(ours_total.item())
        ours_optimizer.zero_grad()
        theirs_optimizer.zero_grad()
        ours_total.backward()
        theirs_total.backward()
        for group in (*ours_optimizer.param_groups, *theirs_optimizer.param_groups):
            group["lr"] = 1.0 - 0.9 * k / 100
        ours_optimizer.step()
        theirs_optimizer.step()
    accuracy = np.mean((ours_scores.data > 0) == (y > 0))
    # The demo's outcome: the loss falls by far and the two moons end up (nearly) perfectly separated.
    assert losses[-1] < 0.1 * losses[0]
    assert accuracy >= 0.97
