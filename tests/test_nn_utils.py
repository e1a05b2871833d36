"""nn.utils: gradient clipping by norm and by value, worked out by hand, in place, and with mistaken input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tinygrad_nn import Tensor, nn


def parameters_with_grads(*grads, dtype=np.float64):
    parameters = []
    for grad in grads:
        parameter = nn.Parameter(np.zeros(np.shape(grad), dtype=dtype))
        parameter.grad = np.array(grad, dtype=dtype)
        parameters.append(parameter)
    return parameters


def test_clip_grad_norm_scales_all_gradients_together_and_returns_the_norm_before():
    first, second = parameters_with_grads([3.0, 0.0], [[0.0], [4.0]])
    arrays = first.grad, second.grad
    total = nn.utils.clip_grad_norm_([first, second], max_norm=1.0)
    assert float(total) == 5.0  # sqrt(3^2 + 4^2), over both gradients as one vector
    scale = 1.0 / (5.0 + 1e-6)
    np.testing.assert_allclose(first.grad, [3.0 * scale, 0.0], rtol=1e-15)
    np.testing.assert_allclose(second.grad, [[0.0], [4.0 * scale]], rtol=1e-15)
    assert first.grad is arrays[0] and second.grad is arrays[1]  # in place


def test_a_norm_below_max_norm_leaves_the_gradients_alone():
    (parameter,) = parameters_with_grads([0.3, -0.4])
    total = nn.utils.clip_grad_norm_(parameter, max_norm=1.0)  # a single Tensor is accepted, as in PyTorch
    assert float(total) == pytest.approx(0.5)
    np.testing.assert_array_equal(parameter.grad, [0.3, -0.4])


@pytest.mark.parametrize(
    ("norm_type", "expected"), [(1, 7.0), (math.inf, 4.0), ("inf", 4.0), (3, (27 + 64) ** (1 / 3))]
)
def test_other_norm_types(norm_type, expected):
    parameters = parameters_with_grads([3.0], [-4.0])
    assert float(nn.utils.clip_grad_norm_(parameters, 100.0, norm_type=norm_type)) == pytest.approx(expected)


def test_parameters_without_gradients_are_skipped_and_none_at_all_gives_zero():
    with_grad, without = parameters_with_grads([6.0, 8.0], [1.0])
    without.grad = None
    assert float(nn.utils.clip_grad_norm_([with_grad, without], 5.0)) == 10.0
    assert without.grad is None
    assert float(nn.utils.clip_grad_norm_([without], 5.0)) == 0.0


def test_a_tensor_gradient_is_clipped_through_its_array_and_nothing_is_recorded():
    parameter = nn.Parameter(np.zeros(2))
    parameter.grad = Tensor(np.array([30.0, 40.0]), requires_grad=True) * 1.0
    total = nn.utils.clip_grad_norm_([parameter], 5.0)
    assert total.is_leaf and not total.requires_grad
    np.testing.assert_allclose(parameter.grad.data, [3.0, 4.0], rtol=1e-6)
    nn.utils.clip_grad_value_([parameter], 1.0)
    np.testing.assert_array_equal(parameter.grad.data, [1.0, 1.0])


def test_float32_gradients_stay_float32():
    parameters = parameters_with_grads([30.0, 40.0], dtype=np.float32)
    total = nn.utils.clip_grad_norm_(parameters, 5.0)
    assert total.dtype == np.float32 and parameters[0].grad.dtype == np.float32


def test_a_nonfinite_norm_is_an_error_only_when_asked():
    parameters = parameters_with_grads([1.0, math.nan])
    with pytest.raises(RuntimeError, match=r"total norm of order 2 of the gradients is nan.*error_if_nonfinite=False"):
        nn.utils.clip_grad_norm_(parameters, 1.0, error_if_nonfinite=True)
    np.testing.assert_array_equal(parameters[0].grad, [1.0, math.nan])  # untouched
    assert math.isnan(float(nn.utils.clip_grad_norm_(parameters, 1.0)))  # PyTorch's default: scale by it anyway


def test_clip_grad_value_clamps_in_place():
    (parameter,) = parameters_with_grads([-3.0, 0.5, 2.0, math.nan])
    array = parameter.grad
    nn.utils.clip_grad_value_(parameter, 1.0)
    np.testing.assert_array_equal(parameter.grad, [-1.0, 0.5, 1.0, math.nan])
    assert parameter.grad is array


def test_get_total_norm_takes_the_gradients_themselves():
    assert float(nn.utils.get_total_norm([np.array([3.0]), Tensor(np.array([4.0]))])) == 5.0
    assert float(nn.utils.get_total_norm([])) == 0.0


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: nn.utils.clip_grad_norm_(nn.Linear(2, 2), 1.0), TypeError, "got the model itself.*model.parameters"),
        (lambda: nn.utils.clip_grad_norm_([np.ones(2)], 1.0), TypeError, "item 0 is a ndarray"),
        (lambda: nn.utils.clip_grad_norm_(5, 1.0), TypeError, "takes a Tensor or an iterable of Tensors"),
        (lambda: nn.utils.clip_grad_norm_([], -1.0), ValueError, "max_norm must be a number >= 0, got -1.0"),
        (lambda: nn.utils.clip_grad_norm_([], math.nan), ValueError, "max_norm must be a number >= 0, got nan"),
        (lambda: nn.utils.clip_grad_norm_([], 1.0, norm_type="fro"), ValueError, "norm_type must be a number or 'inf'"),
        (lambda: nn.utils.clip_grad_value_([], -0.5), ValueError, "clip_value must be a number >= 0, got -0.5"),
        (lambda: nn.utils.clip_grad_value_(nn.Linear(2, 2), 0.5), TypeError, "got the model itself"),
    ],
)
def test_mistakes_are_named(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_clipping_between_backward_and_step_on_a_model():
    model = nn.Linear(3, 2)
    model(Tensor(np.full((4, 3), 100.0))).sum().backward()
    nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    norm = math.sqrt(sum(float(np.sum(p.grad**2)) for p in model.parameters()))
    assert norm == pytest.approx(1.0, rel=1e-5)
