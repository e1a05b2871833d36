"""gradcheck: the basic promises (passes on correct ops, names the wrong element, leaves the user's tensors alone)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import tinygrad_nn as tg
from tinygrad_nn import Function, Tensor
from tinygrad_nn.gradcheck import GradcheckWarning


def leaf(data) -> Tensor:
    return Tensor(np.array(data, dtype=np.float64), requires_grad=True)


def wrong_product(wrong_input: int, element: tuple, factor: float) -> type[Function]:
    """``x * y`` whose backward multiplies one element of one input's gradient by `factor` (still linear)."""

    class WrongProduct(Function):
        @staticmethod
        def forward(ctx, x, y):
            ctx.save_for_backward(x, y)
            return x * y

        @staticmethod
        def backward(ctx, grad):
            x, y = ctx.saved_tensors
            grads = [grad * y, grad * x]
            grads[wrong_input][element] *= factor
            return tuple(grads)

    return WrongProduct


def test_passes_on_correct_ops(rng):
    x = leaf(rng.standard_normal((3, 4)))
    w = leaf(rng.standard_normal((4, 2)))
    assert tg.gradcheck(lambda x: x.exp() / x.exp().sum(axis=1, keepdims=True), [x])
    assert tg.gradcheck(lambda x, w: (x @ w).tanh().sum(), (x, w))
    assert tg.gradcheck(lambda x, w: ((x @ w).sigmoid(), (x * x).mean(axis=0)), [x, w])


def test_accepts_a_single_tensor_and_skips_inputs_without_grad(rng):
    x = leaf(rng.standard_normal(3))
    constant = Tensor(rng.standard_normal(3))
    assert tg.gradcheck(lambda x: x * x, x)
    assert tg.gradcheck(lambda x, c, k: x * c * k, [x, constant, 2.0])


@pytest.mark.parametrize(("wrong_input", "element"), [(0, (0, 1)), (1, (1, 2))])
def test_wrong_gradient_names_the_input_element_and_both_values(wrong_input, element):
    x = leaf([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    y = leaf([[2.0, 3.0, 4.0], [5.0, 6.0, 7.0]])
    product = wrong_product(wrong_input, element, factor=3.0)
    # d(x * y)/dx = y and d(x * y)/dy = x: the numerical value, and three times it the analytical one.
    numerical = (y, x)[wrong_input].data[element]
    with pytest.raises(tg.GradcheckError) as caught:
        tg.gradcheck(product.apply, [x, y])
    message = str(caught.value)
    index = f"({element[0]}, {element[1]})"
    assert f"wrong for `input {wrong_input}`" in message
    assert f"w.r.t. input {wrong_input}, element {index}" in message
    assert f"numerical {numerical:.6g}, analytical {3 * numerical:.6g}" in message
    assert f"input {1 - wrong_input}, element" not in message  # the correct input is not blamed
    assert not caught.value.report.ok


def test_raise_exception_false_returns_false():
    x = leaf([[1.0, 2.0], [3.0, 4.0]])
    y = leaf([[5.0, 6.0], [7.0, 8.0]])
    assert tg.gradcheck(wrong_product(0, (1, 1), 2.0).apply, [x, y], raise_exception=False) is False


@pytest.mark.parametrize("correct", [True, False])
def test_user_tensors_and_grads_are_left_alone(correct):
    x = leaf([[1.0, 2.0], [3.0, 4.0]])
    y = leaf([[5.0, 6.0], [7.0, 8.0]])
    x_data, y_data = x.data, y.data
    x_values, y_values = x.data.copy(), y.data.copy()
    earlier_grad = np.array([[0.5, 0.5], [0.5, 0.5]])
    x.grad = earlier_grad
    fn = (lambda a, b: a * b) if correct else wrong_product(0, (0, 0), 2.0).apply
    assert tg.gradcheck(fn, [x, y], raise_exception=False) is correct
    assert x.data is x_data and y.data is y_data
    np.testing.assert_array_equal(x.data, x_values)
    np.testing.assert_array_equal(y.data, y_values)
    assert x.grad is earlier_grad
    np.testing.assert_array_equal(x.grad, [[0.5, 0.5], [0.5, 0.5]])
    assert y.grad is None


def test_float32_input_is_checked_on_a_float64_copy():
    x = Tensor(np.array([0.5, -1.0, 2.0], dtype=np.float32), requires_grad=True)
    seen_dtypes = []

    def fn(t):
        seen_dtypes.append(t.dtype)
        return t.tanh()

    with pytest.warns(GradcheckWarning, match="input 0 is float32; it is checked on a float64 copy"):
        assert tg.gradcheck(fn, [x])
    assert set(seen_dtypes) == {np.dtype(np.float64)}
    assert x.dtype == np.float32
    assert x.grad is None


def test_float32_warning_points_at_the_caller():
    x = Tensor(np.array([0.5], dtype=np.float32), requires_grad=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tg.gradcheck(lambda t: t * 2.0, [x])
    assert [w.filename for w in caught if issubclass(w.category, GradcheckWarning)] == [__file__]


def test_relu_at_zero_is_reported_as_a_kink_not_a_failure():
    x = leaf([-1.0, 0.0, 2.0])
    with pytest.warns(GradcheckWarning, match=r"not differentiable at input 0 element\(s\) \(1,\)"):
        assert tg.gradcheck(lambda t: t.relu(), [x])


def test_abs_at_zero_passes_and_is_reported_as_a_kink():
    # Central differences of |x| at 0 give 0, abs's gradient there, but the one-sided slopes (-1 and 1) differ:
    # the point passes and is reported as not differentiable.
    with pytest.warns(GradcheckWarning, match=r"not differentiable at input 0 element\(s\) \(1,\)"):
        assert tg.gradcheck(lambda t: t.abs(), [leaf([-1.0, 0.0, 2.0])])


def test_wrong_value_at_a_kink_still_fails():
    class SteepReLU(Function):
        """ReLU whose backward claims slope 2 at 0: outside the subgradient interval [0, 1]."""

        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return np.maximum(x, 0)

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * np.where(x > 0, 1.0, np.where(x == 0, 2.0, 0.0))

    with pytest.raises(tg.GradcheckError, match=r"input 0, element \(1,\).*numerical 0.5, analytical 2"):
        tg.gradcheck(SteepReLU.apply, [leaf([-1.0, 0.0, 2.0])])


def test_nothing_to_check_is_a_value_error():
    with pytest.raises(ValueError, match="no input requires grad"):
        tg.gradcheck(lambda t: t * 2.0, [Tensor([1.0])])
