"""Batch norm and layer norm against PyTorch: both modes, running statistics, buffers, gradients, errors."""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_nn as tg
import tinygrad_nn.nn.functional as F  # noqa: N812 - the name PyTorch code uses
from tinygrad_nn import Tensor, nn

TOLERANCE = {"rtol": 1e-10, "atol": 1e-10}


def copy_weights(ours, theirs):
    ours.load_state_dict({name: value.detach().numpy() for name, value in theirs.state_dict().items()})


def step_both(torch, ours, theirs, x, rng):
    """One forward and backward through both layers; compares the outputs and the input's gradient."""
    ours_x, theirs_x = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    ours_y, theirs_y = ours(ours_x), theirs(theirs_x)
    np.testing.assert_allclose(ours_y.data, theirs_y.detach().numpy(), **TOLERANCE)
    upstream = rng.standard_normal(ours_y.shape)
    ours_y.backward(upstream)
    theirs_y.backward(torch.tensor(upstream))
    np.testing.assert_allclose(ours_x.grad, theirs_x.grad.numpy(), **TOLERANCE)
    theirs_parameters = dict(theirs.named_parameters())
    for name, parameter in ours.named_parameters():
        np.testing.assert_allclose(parameter.grad, theirs_parameters[name].grad.numpy(), **TOLERANCE)
        parameter.grad = None
        theirs_parameters[name].grad = None


def assert_same_state(ours, theirs):
    theirs_state = theirs.state_dict()
    assert list(ours.state_dict()) == list(theirs_state)
    for name, value in ours.state_dict().items():
        np.testing.assert_allclose(value, theirs_state[name].numpy(), **TOLERANCE)
        assert value.dtype == theirs_state[name].numpy().dtype, name


BATCH_NORM_CASES = {
    "2d": ("BatchNorm2d", (5, 3, 4, 6), {}),
    "2d-momentum": ("BatchNorm2d", (4, 3, 5, 2), {"momentum": 0.3, "eps": 1e-3}),
    "2d-cumulative": ("BatchNorm2d", (4, 3, 5, 2), {"momentum": None}),
    "2d-no-affine": ("BatchNorm2d", (4, 3, 3, 3), {"affine": False}),
    "2d-no-bias": ("BatchNorm2d", (4, 3, 3, 3), {"bias": False}),
    "1d-features": ("BatchNorm1d", (6, 4), {}),
    "1d-sequence": ("BatchNorm1d", (3, 4, 7), {"momentum": 0.5}),
    "1d-no-affine": ("BatchNorm1d", (6, 4), {"affine": False, "momentum": None}),
}


@pytest.mark.torch
@pytest.mark.parametrize("case", list(BATCH_NORM_CASES))
def test_batch_norm_training_steps_then_eval_match_torch(torch, rng, case):
    """Several steps in training mode (outputs, gradients, running statistics), then the eval-mode output."""
    name, shape, options = BATCH_NORM_CASES[case]
    theirs = getattr(torch.nn, name)(shape[1], **options)
    ours = getattr(nn, name)(shape[1], **options)
    with torch.no_grad():
        for parameter in theirs.parameters():
            parameter.copy_(torch.tensor(rng.standard_normal(shape[1])))
    copy_weights(ours, theirs)
    assert repr(ours) == repr(theirs)
    for _ in range(4):
        step_both(torch, ours, theirs, rng.standard_normal(shape) * 3 + 1.5, rng)
    assert_same_state(ours, theirs)
    assert int(ours.num_batches_tracked) == 4
    ours.eval()
    theirs.eval()
    step_both(torch, ours, theirs, rng.standard_normal(shape) * 2 - 1, rng)
    assert_same_state(ours, theirs)  # eval mode leaves the statistics alone


@pytest.mark.torch
def test_batch_norm_without_running_statistics_uses_the_batch_in_eval_mode_too(torch, rng):
    theirs = torch.nn.BatchNorm2d(3, track_running_stats=False)
    ours = nn.BatchNorm2d(3, track_running_stats=False)
    assert ours.state_dict().keys() == theirs.state_dict().keys() == {"weight", "bias"}
    assert repr(ours) == repr(theirs)
    for mode in (True, False):
        ours.train(mode)
        theirs.train(mode)
        step_both(torch, ours, theirs, rng.standard_normal((4, 3, 2, 5)), rng)


@pytest.mark.torch
@pytest.mark.parametrize("training", [True, False])
def test_functional_batch_norm_updates_arrays_and_tensors_in_place_like_torch(torch, rng, training):
    x = rng.standard_normal((5, 3, 4))
    weight, bias = rng.standard_normal(3), rng.standard_normal(3)
    ours_mean, ours_var = Tensor(rng.standard_normal(3)), rng.random(3) + 0.5
    theirs_mean, theirs_var = torch.tensor(ours_mean.data.copy()), torch.tensor(ours_var.copy())
    ours = F.batch_norm(x, ours_mean, ours_var, weight, bias, training=training, momentum=0.2, eps=1e-4)
    theirs = torch.nn.functional.batch_norm(
        torch.tensor(x), theirs_mean, theirs_var, torch.tensor(weight), torch.tensor(bias), training, 0.2, 1e-4
    )
    np.testing.assert_allclose(ours.data, theirs.numpy(), **TOLERANCE)
    np.testing.assert_allclose(ours_mean.data, theirs_mean.numpy(), **TOLERANCE)
    np.testing.assert_allclose(ours_var, theirs_var.numpy(), **TOLERANCE)


@pytest.mark.torch
@pytest.mark.parametrize(
    ("shape", "normalized", "options"),
    [
        ((4, 6), 6, {}),
        ((2, 3, 5), (5,), {"eps": 1e-3}),
        ((2, 3, 4, 5), (4, 5), {}),
        ((2, 3, 5), (3, 5), {"elementwise_affine": False}),
        ((3, 5), 5, {"bias": False}),
    ],
)
def test_layer_norm_matches_torch(torch, rng, shape, normalized, options):
    theirs = torch.nn.LayerNorm(normalized, **options)
    ours = nn.LayerNorm(normalized, **options)
    assert repr(ours) == repr(theirs)
    if theirs.weight is not None:
        with torch.no_grad():
            theirs.weight.copy_(torch.tensor(rng.standard_normal(theirs.weight.shape)))
            if theirs.bias is not None:
                theirs.bias.copy_(torch.tensor(rng.standard_normal(theirs.bias.shape)))
    copy_weights(ours, theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for mode in (True, False):  # the same in both modes
        ours.train(mode)
        theirs.train(mode)
        step_both(torch, ours, theirs, rng.standard_normal(shape) * 2 + 1, rng)


# ------------------------------------------------------------------------------------------------------------
# Finite differences, to second order (batch statistics depend on x, so the second derivative is not trivial)
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_gradgradcheck(rng, training):
    x = Tensor(rng.standard_normal((4, 3, 2, 2)), requires_grad=True)
    weight = Tensor(rng.standard_normal(3), requires_grad=True)
    bias = Tensor(rng.standard_normal(3), requires_grad=True)
    mean, var = rng.standard_normal(3), rng.random(3) + 0.5

    def function(x, weight, bias):
        return F.batch_norm(x, mean.copy(), var.copy(), weight, bias, training=training)

    assert tg.gradcheck(function, (x, weight, bias), order=2)


def test_batch_norm_module_gradcheck_in_both_modes(rng):
    layer = nn.BatchNorm1d(3, dtype=np.float64)
    x = Tensor(rng.standard_normal((5, 3)), requires_grad=True)
    assert tg.gradcheck(layer, (x,), order=2)
    layer.eval()
    assert tg.gradcheck(layer, (x,), order=2)


def test_batch_norm_without_affine_gradgradcheck(rng):
    x = Tensor(rng.standard_normal((3, 2, 4)), requires_grad=True)
    assert tg.gradcheck(lambda t: F.batch_norm(t, None, None, training=True), (x,), order=2)


@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm_gradgradcheck(rng, affine):
    x = Tensor(rng.standard_normal((2, 3, 4)), requires_grad=True)
    inputs = [x]
    if affine:
        inputs += [Tensor(rng.standard_normal((3, 4)), requires_grad=True)] * 1
        inputs.append(Tensor(rng.standard_normal((3, 4)), requires_grad=True))
        assert tg.gradcheck(lambda t, w, b: F.layer_norm(t, (3, 4), w, b), inputs, order=2)
    else:
        assert tg.gradcheck(lambda t: F.layer_norm(t, 4), inputs, order=2)


# ------------------------------------------------------------------------------------------------------------
# Buffers and state
# ------------------------------------------------------------------------------------------------------------


def test_running_statistics_are_buffers_not_parameters():
    layer = nn.BatchNorm2d(4)
    assert [name for name, _ in layer.named_parameters()] == ["weight", "bias"]
    assert [name for name, _ in layer.named_buffers()] == ["running_mean", "running_var", "num_batches_tracked"]
    assert list(layer.state_dict()) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    assert layer.state_dict()["num_batches_tracked"].dtype == np.int64
    assert layer.state_dict()["num_batches_tracked"].shape == ()


def test_load_state_dict_moves_the_buffers_and_eval_uses_them(rng):
    source = nn.BatchNorm2d(2)
    for _ in range(3):
        source(rng.standard_normal((4, 2, 3, 3)) * 5 + 2)
    target = nn.BatchNorm2d(2)
    target.load_state_dict(source.state_dict())
    np.testing.assert_array_equal(target.running_mean, source.running_mean)
    np.testing.assert_array_equal(target.running_var, source.running_var)
    assert int(target.num_batches_tracked) == 3
    x = rng.standard_normal((2, 2, 3, 3))
    source.eval()
    target.eval()
    np.testing.assert_array_equal(target(x).data, source(x).data)
    expected = (x - source.running_mean.reshape(1, 2, 1, 1)) / np.sqrt(source.running_var.reshape(1, 2, 1, 1) + 1e-5)
    np.testing.assert_allclose(target(x).data, expected, rtol=1e-12)


def test_to_float32_converts_the_running_statistics_and_keeps_the_count(rng):
    layer = nn.BatchNorm2d(2).to(np.float32)
    assert layer.running_mean.dtype == layer.running_var.dtype == layer.weight.dtype == np.float32
    assert layer.num_batches_tracked.dtype == np.int64
    y = layer(rng.standard_normal((3, 2, 2, 2)).astype(np.float32))
    assert y.dtype == np.float32 and layer.running_mean.dtype == np.float32
    y.sum().backward()
    assert layer.weight.grad.dtype == np.float32


def test_reset_running_stats_and_parameters():
    layer = nn.BatchNorm1d(3)
    layer(np.arange(12.0).reshape(4, 3))
    layer.weight.data[...] = 2
    layer.reset_parameters()
    np.testing.assert_array_equal(layer.running_mean, 0)
    np.testing.assert_array_equal(layer.running_var, 1)
    np.testing.assert_array_equal(layer.weight.data, 1)
    assert int(layer.num_batches_tracked) == 0


def test_eval_mode_changes_nothing_and_train_mode_counts_batches(rng):
    layer = nn.BatchNorm1d(3)
    layer.eval()
    layer(rng.standard_normal((4, 3)))
    assert int(layer.num_batches_tracked) == 0
    np.testing.assert_array_equal(layer.running_mean, 0)
    layer.train()
    layer(rng.standard_normal((4, 3)))
    assert int(layer.num_batches_tracked) == 1
    assert np.all(layer.running_mean != 0)


# ------------------------------------------------------------------------------------------------------------
# Mistakes
# ------------------------------------------------------------------------------------------------------------


def test_batch_norm_input_errors_name_the_layer_and_shapes():
    with pytest.raises(ValueError, match=r"BatchNorm2d\(3\) takes input of shape \(N, C, H, W\), got shape \(2, 3\)"):
        nn.BatchNorm2d(3)(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"BatchNorm1d\(3\) got input with 4 channels \(input shape \(2, 4\)\)"):
        nn.BatchNorm1d(3)(np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"expected more than 1 value per channel when training"):
        nn.BatchNorm1d(3)(np.zeros((1, 3)))
    layer = nn.BatchNorm1d(3)
    layer.eval()
    assert layer(np.zeros((1, 3))).shape == (1, 3)  # one sample is fine with running statistics


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: nn.BatchNorm2d(0), "num_features must be a positive integer"),
        (lambda: nn.BatchNorm2d(3, momentum=1.5), "momentum must be between 0 and 1"),
        (lambda: nn.BatchNorm2d(3, eps=0), "eps must be positive"),
        (lambda: nn.LayerNorm(0), "normalized_shape must be a positive integer"),
        (lambda: nn.LayerNorm((3, -1)), "normalized_shape must be a positive integer"),
        (lambda: nn.LayerNorm(3, eps=-1), "eps must be positive"),
    ],
)
def test_bad_arguments_are_named(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_functional_batch_norm_checks_its_arguments():
    x = np.zeros((4, 3, 2))
    with pytest.raises(ValueError, match=r"running_mean must have shape \(3,\)"):
        F.batch_norm(x, np.zeros(2), np.ones(3))
    with pytest.raises(ValueError, match=r"weight must have shape \(3,\)"):
        F.batch_norm(x, np.zeros(3), np.ones(3), weight=np.ones(4))
    with pytest.raises(ValueError, match="with training=False it normalises with running_mean and running_var"):
        F.batch_norm(x, None, None)
    with pytest.raises(ValueError, match=r"input must have shape \(N, C, ...\)"):
        F.batch_norm(np.zeros(3), None, None, training=True)


def test_layer_norm_errors_name_the_shapes():
    with pytest.raises(ValueError, match=r"LayerNorm\(\(4,\)\) got input of shape \(2, 5\), whose last axes are not"):
        nn.LayerNorm(4)(np.zeros((2, 5)))
    with pytest.raises(ValueError, match=r"normalized_shape \(3, 4\) must be the last axes of the input"):
        F.layer_norm(np.zeros((3, 5)), (3, 4))
    with pytest.raises(ValueError, match=r"weight must have shape \(5,\)"):
        F.layer_norm(np.zeros((3, 5)), 5, weight=np.ones(4))
