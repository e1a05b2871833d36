"""Every op: forward against numpy, backward against expected vector-Jacobian products and `gradcheck`."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, mutually_broadcastable_shapes

import tinygrad_nn as tg
from tinygrad_nn import Tensor, gradcheck

# Property tests stay cheap: small shapes, a few dozen examples, no per-example deadline (the first call of
# an op may be slow on a busy machine).
PROPERTY = settings(max_examples=30, deadline=None)

SEEDS = st.integers(min_value=0, max_value=2**32 - 1)


def unbroadcast(grad: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum a gradient of the broadcast shape down to `shape` (the reference for the engine's reduction)."""
    while grad.ndim > len(shape):
        grad = grad.sum(axis=0)
    for axis, size in enumerate(shape):
        if size == 1 and grad.shape[axis] != 1:
            grad = grad.sum(axis=axis, keepdims=True)
    return grad


def leaf(data) -> Tensor:
    return Tensor(np.array(data, dtype=np.float64), requires_grad=True)


def signed(rng: np.random.Generator, shape: tuple, low: float, high: float) -> np.ndarray:
    """Values with |v| in [low, high] and a random sign: away from 0, where some ops are singular or kinked."""
    return rng.uniform(low, high, size=shape) * rng.choice([-1.0, 1.0], size=shape)


# --------------------------------------------------------------------------------------------------------------
# Binary arithmetic with broadcasting
# --------------------------------------------------------------------------------------------------------------

# name -> (tinygrad op, numpy op, vjp(a, b, out, upstream) -> (grad_a, grad_b) in the broadcast shape,
#          sampler of a, sampler of b)
BINARY = {
    "add": (
        lambda a, b: a + b,
        np.add,
        lambda a, b, out, g: (g, g),
        lambda rng, s: rng.standard_normal(s),
        lambda rng, s: rng.standard_normal(s),
    ),
    "sub": (
        lambda a, b: a - b,
        np.subtract,
        lambda a, b, out, g: (g, -g),
        lambda rng, s: rng.standard_normal(s),
        lambda rng, s: rng.standard_normal(s),
    ),
    "mul": (
        lambda a, b: a * b,
        np.multiply,
        lambda a, b, out, g: (g * b, g * a),
        lambda rng, s: rng.standard_normal(s),
        lambda rng, s: rng.standard_normal(s),
    ),
    "div": (
        lambda a, b: a / b,
        np.divide,
        lambda a, b, out, g: (g / b, -g * a / b**2),
        lambda rng, s: rng.standard_normal(s),
        lambda rng, s: signed(rng, s, 0.5, 2.0),
    ),
    "pow": (
        lambda a, b: a**b,
        np.power,
        lambda a, b, out, g: (g * b * a ** (b - 1), g * out * np.log(a)),
        lambda rng, s: rng.uniform(0.5, 2.0, size=s),
        lambda rng, s: rng.uniform(-2.0, 2.0, size=s),
    ),
    "maximum": (
        tg.maximum,
        np.maximum,
        lambda a, b, out, g: (g * (a > b), g * (a < b)),
        lambda rng, s: rng.standard_normal(s),
        lambda rng, s: rng.standard_normal(s),
    ),
    "minimum": (
        tg.minimum,
        np.minimum,
        lambda a, b, out, g: (g * (a < b), g * (a > b)),
        lambda rng, s: rng.standard_normal(s),
        lambda rng, s: rng.standard_normal(s),
    ),
}


@PROPERTY
@given(
    name=st.sampled_from(sorted(BINARY)),
    shapes=mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3),
    seed=SEEDS,
)
def test_binary_op_forward_and_vjp_with_broadcasting(name, shapes, seed):
    op, numpy_op, vjp, sample_a, sample_b = BINARY[name]
    rng = np.random.default_rng(seed)
    shape_a, shape_b = shapes.input_shapes
    a_data, b_data = sample_a(rng, shape_a), sample_b(rng, shape_b)
    a, b = Tensor(a_data, requires_grad=True), Tensor(b_data, requires_grad=True)

    out = op(a, b)
    expected = numpy_op(a_data, b_data)
    assert out.shape == expected.shape == shapes.result_shape
    np.testing.assert_allclose(out.data, expected, rtol=1e-14, atol=0)

    upstream = rng.standard_normal(out.shape)
    upstream_before = upstream.copy()
    out.backward(gradient=upstream)
    grad_a, grad_b = vjp(a_data, b_data, expected, upstream)
    grad_a = unbroadcast(np.broadcast_to(grad_a, out.shape), shape_a)
    grad_b = unbroadcast(np.broadcast_to(grad_b, out.shape), shape_b)
    assert a.grad.shape == shape_a and b.grad.shape == shape_b
    np.testing.assert_allclose(a.grad, grad_a, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(b.grad, grad_b, rtol=1e-10, atol=1e-12)

    # Neither forward nor backward writes into the inputs or the caller's gradient.
    np.testing.assert_array_equal(a.data, a_data)
    np.testing.assert_array_equal(b.data, b_data)
    np.testing.assert_array_equal(upstream, upstream_before)


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_op_gradcheck_with_broadcasting(name, rng):
    op, _, _, sample_a, sample_b = BINARY[name]
    a = Tensor(sample_a(rng, (2, 1, 3)), requires_grad=True)
    b = Tensor(sample_b(rng, (4, 1)), requires_grad=True)
    assert gradcheck(op, [a, b])


@pytest.mark.parametrize(
    ("expression", "numpy_expression"),
    [
        (lambda t: 2 - t, lambda x: 2 - x),
        (lambda t: 2 + t, lambda x: 2 + x),
        (lambda t: 2 * t, lambda x: 2 * x),
        (lambda t: 2 / t, lambda x: 2 / x),
        (lambda t: 2**t, lambda x: 2**x),
        (lambda t: t**3, lambda x: x**3),
        (lambda t: t**2, lambda x: x**2),
        (lambda t: t**-1.5, lambda x: x**-1.5),
        (lambda t: t**0.5, lambda x: x**0.5),
        (lambda t: t**0, lambda x: x**0),
        (lambda t: t - 1.5, lambda x: x - 1.5),
        (lambda t: t / 4, lambda x: x / 4),
        (lambda t: -t, lambda x: -x),
        (lambda t: +t, lambda x: +x),
    ],
    ids=["2-t", "2+t", "2*t", "2/t", "2**t", "t**3", "t**2", "t**-1.5", "t**0.5", "t**0", "t-1.5", "t/4", "-t", "+t"],
)
def test_scalar_and_reflected_forms(expression, numpy_expression, rng):
    data = rng.uniform(0.5, 2.0, size=(2, 3))  # positive, for the fractional powers
    x = Tensor(data, requires_grad=True)
    np.testing.assert_allclose(expression(x).data, numpy_expression(data), rtol=1e-14)
    assert gradcheck(expression, [x])


def test_pow_with_tensor_exponent_on_both_sides(rng):
    base = Tensor(rng.uniform(0.5, 2.0, size=(3, 1)), requires_grad=True)
    exponent = Tensor(rng.uniform(-2.0, 2.0, size=(1, 4)), requires_grad=True)
    np.testing.assert_allclose((base**exponent).data, base.data**exponent.data, rtol=1e-14)
    assert gradcheck(lambda b, e: b**e, [base, exponent])
    assert gradcheck(lambda e: 3.0**e, [exponent])
    assert gradcheck(lambda b: b ** Tensor(np.array([2.0, -1.0, 0.5])), [base])


def test_pow_zero_exponent_gives_base_zero_gradient():
    # PyTorch's convention: d(x ** 0)/dx is 0, also at x = 0, where exponent * x ** -1 would be 0 * inf.
    x = leaf([0.0, 2.0])
    (x**0).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0])


def test_pow_zero_base_gives_exponent_zero_gradient():
    # d(0 ** e)/de would be 0 * log(0) = NaN; PyTorch gives 0 for e >= 0.
    exponent = leaf([0.0, 2.0])
    (Tensor([0.0, 0.0]) ** exponent).sum().backward()
    np.testing.assert_array_equal(exponent.grad, [0.0, 0.0])


@pytest.mark.parametrize(
    ("op", "symbol"),
    [
        (lambda a, b: a + b, r"add: \(2, 3\) \+ \(4,\)"),
        (lambda a, b: a - b, r"sub: \(2, 3\) - \(4,\)"),
        (lambda a, b: a * b, r"mul: \(2, 3\) \* \(4,\)"),
        (lambda a, b: a / b, r"div: \(2, 3\) / \(4,\)"),
        (lambda a, b: a**b, r"pow: \(2, 3\) \*\* \(4,\)"),
        (tg.maximum, r"maximum: \(2, 3\) vs \(4,\)"),
        (tg.minimum, r"minimum: \(2, 3\) vs \(4,\)"),
    ],
    ids=["add", "sub", "mul", "div", "pow", "maximum", "minimum"],
)
def test_shape_mismatch_names_the_op_and_both_shapes(op, symbol):
    with pytest.raises(ValueError, match=symbol + ": these shapes do not broadcast"):
        op(leaf(np.ones((2, 3))), leaf(np.ones(4)))


# --------------------------------------------------------------------------------------------------------------
# Elementwise functions
# --------------------------------------------------------------------------------------------------------------

# name -> (tinygrad op, numpy forward, derivative, sampler)
UNARY = {
    "neg": (lambda t: -t, np.negative, lambda x: -np.ones_like(x), lambda rng, s: rng.standard_normal(s)),
    "exp": (lambda t: t.exp(), np.exp, np.exp, lambda rng, s: rng.standard_normal(s)),
    "log": (lambda t: t.log(), np.log, lambda x: 1 / x, lambda rng, s: rng.uniform(0.2, 3.0, size=s)),
    "sqrt": (lambda t: t.sqrt(), np.sqrt, lambda x: 0.5 / np.sqrt(x), lambda rng, s: rng.uniform(0.2, 3.0, size=s)),
    "abs": (lambda t: t.abs(), np.abs, np.sign, lambda rng, s: signed(rng, s, 0.1, 2.0)),
    "abs()": (abs, np.abs, np.sign, lambda rng, s: signed(rng, s, 0.1, 2.0)),
    "tanh": (lambda t: t.tanh(), np.tanh, lambda x: 1 - np.tanh(x) ** 2, lambda rng, s: rng.standard_normal(s)),
    "sigmoid": (
        lambda t: t.sigmoid(),
        lambda x: 1 / (1 + np.exp(-x)),
        lambda x: np.exp(-x) / (1 + np.exp(-x)) ** 2,
        lambda rng, s: 3 * rng.standard_normal(s),
    ),
    "relu": (
        lambda t: t.relu(),
        lambda x: np.maximum(x, 0),
        lambda x: (x > 0).astype(float),
        lambda rng, s: signed(rng, s, 0.1, 2.0),
    ),
}

# Shapes with at least one axis: 0-d inputs have their own test below.
NONSCALAR_SHAPES = array_shapes(min_dims=1, max_dims=3, max_side=4)


@PROPERTY
@given(name=st.sampled_from(sorted(UNARY)), shape=NONSCALAR_SHAPES, seed=SEEDS)
def test_unary_op_forward_and_vjp(name, shape, seed):
    op, numpy_op, derivative, sample = UNARY[name]
    rng = np.random.default_rng(seed)
    data = sample(rng, shape)
    x = Tensor(data, requires_grad=True)
    out = op(x)
    np.testing.assert_allclose(out.data, numpy_op(data), rtol=1e-14)
    upstream = rng.standard_normal(shape)
    upstream_before = upstream.copy()
    out.backward(gradient=upstream)
    np.testing.assert_allclose(x.grad, upstream * derivative(data), rtol=1e-10, atol=1e-14)
    np.testing.assert_array_equal(x.data, data)
    np.testing.assert_array_equal(upstream, upstream_before)


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(
            name,
        )
        if name == "sigmoid"
        else name
        for name in sorted(UNARY)
    ],
)
def test_unary_op_on_0d_tensor(name):
    op, numpy_op, derivative, _ = UNARY[name]
    x = Tensor(0.7, requires_grad=True)
    out = op(x)
    assert out.shape == ()
    np.testing.assert_allclose(out.data, numpy_op(np.float64(0.7)), rtol=1e-14)
    out.backward()
    np.testing.assert_allclose(x.grad, derivative(np.float64(0.7)), rtol=1e-12)


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_op_gradcheck(name, rng):
    op, _, _, sample = UNARY[name]
    assert gradcheck(op, [Tensor(sample(rng, (3, 4)), requires_grad=True)])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_passes_an_infinite_or_nan_gradient_only_where_it_is_open(dtype, torch):
    # Its backward multiplies by the mask when the gradient is finite: the non-finite case must still give the
    # mask's 0 where the ReLU is closed (inf * 0 would be NaN), as PyTorch does, and warn about nothing.
    x = np.array([-1.0, 0.0, 2.0, 3.0, -4.0, 5.0], dtype=dtype)
    upstream = np.array([np.inf, np.nan, 1.0, np.inf, -np.inf, np.nan], dtype=dtype)
    ours = Tensor(x, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours.relu().backward(upstream)
    theirs = torch.tensor(x, requires_grad=True)
    torch.relu(theirs).backward(torch.tensor(upstream))
    np.testing.assert_array_equal(ours.grad, theirs.grad.numpy())
    assert ours.grad.dtype == dtype
    big = np.random.default_rng(0).standard_normal(10_000).astype(dtype)  # the product path, a random mask
    ours = Tensor(big, requires_grad=True)
    ours.relu().backward(big)
    np.testing.assert_array_equal(ours.grad, np.where(big > 0, big, 0))


@pytest.mark.parametrize("name", ["relu", "abs"])
def test_relu_and_abs_have_zero_gradient_at_zero(name):
    x = leaf([-1.0, 0.0, 2.0])
    getattr(x, name)().sum().backward()
    assert x.grad[1] == 0.0
    np.testing.assert_array_equal(x.grad[[0, 2]], [0.0 if name == "relu" else -1.0, 1.0])


def test_sigmoid_is_exactly_the_textbook_formula(rng):
    data = 5 * rng.standard_normal((3, 4))
    np.testing.assert_array_equal(Tensor(data).sigmoid().data, 1 / (1 + np.exp(-data)))


def test_sigmoid_saturates_exactly_without_warnings():
    x = leaf([-800.0, 800.0, 0.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow RuntimeWarning from exp(800) would fail the test
        out = x.sigmoid()
        out.sum().backward()
    assert out.data[0] == 0.0
    assert out.data[1] == 1.0
    assert out.data[2] == 0.5
    np.testing.assert_array_equal(x.grad, [0.0, 0.0, 0.25])


def test_sigmoid_saturates_in_float32_without_warnings():
    x = Tensor(np.array([-800.0, 800.0], dtype=np.float32), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = x.sigmoid()
        out.sum().backward()
    np.testing.assert_array_equal(out.data, [0.0, 1.0])
    assert out.dtype == np.float32 and x.grad.dtype == np.float32


@pytest.mark.parametrize(("low", "high"), [(-0.5, 0.5), (None, 0.5), (-0.5, None)])
def test_clip_forward(low, high, rng):
    data = rng.standard_normal((3, 4))
    before = data.copy()
    np.testing.assert_array_equal(Tensor(data).clip(low, high).data, np.clip(before, low, high))
    np.testing.assert_array_equal(data, before)


def test_clip_needs_a_bound():
    with pytest.raises(ValueError, match="clip: give min, max or both"):
        leaf([1.0]).clip()


@pytest.mark.parametrize(("low", "high"), [(-0.5, 0.5), (None, 0.5), (-0.5, None)])
def test_clip_gradcheck(low, high, rng):
    data = signed(rng, (3, 4), 0.1, 2.0)
    data[np.abs(np.abs(data) - 0.5) < 0.01] = 1.0  # keep finite differences away from the bounds
    assert gradcheck(lambda t: t.clip(low, high), [Tensor(data, requires_grad=True)])


def test_clip_passes_the_gradient_at_its_bounds_inclusive():
    x = leaf([-2.0, -1.0, 0.0, 1.0, 2.0])
    upstream = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    x.clip(-1.0, 1.0).backward(gradient=upstream)
    np.testing.assert_array_equal(x.grad, upstream * np.array([0.0, 1.0, 1.0, 1.0, 0.0]))


# --------------------------------------------------------------------------------------------------------------
# Reductions
# --------------------------------------------------------------------------------------------------------------


@st.composite
def shape_and_axis(draw):
    """A shape with 1-4 axes and an axis argument for it: None, an int or a tuple, each possibly negative."""
    shape = draw(array_shapes(min_dims=1, max_dims=4, max_side=4))
    ndim = len(shape)
    kind = draw(st.sampled_from(["none", "int", "tuple"]))
    if kind == "none":
        return shape, None
    axes = draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True))
    # Spell each axis as positive or negative at random; numpy treats both alike.
    spelled = tuple(axis - ndim if draw(st.booleans()) else axis for axis in axes)
    return shape, spelled[0] if kind == "int" else spelled


def expected_reduction_vjp(name: str, data: np.ndarray, axis, upstream_kept: np.ndarray) -> np.ndarray:
    """The gradient of a reduction, from the upstream gradient with the reduced axes kept (size 1)."""
    if name == "sum":
        return np.broadcast_to(upstream_kept, data.shape)
    if name == "mean":
        count = data.size // upstream_kept.size
        return np.broadcast_to(upstream_kept, data.shape) / count
    extreme = getattr(np, name)(data, axis=axis, keepdims=True)
    winners = data == extreme
    return winners * upstream_kept / winners.sum(axis=axis, keepdims=True)


@PROPERTY
@given(
    name=st.sampled_from(["sum", "mean", "max", "min"]),
    shape_axis=shape_and_axis(),
    keepdims=st.booleans(),
    seed=SEEDS,
)
def test_reduction_forward_and_vjp(name, shape_axis, keepdims, seed):
    shape, axis = shape_axis
    rng = np.random.default_rng(seed)
    data = rng.standard_normal(shape)
    x = Tensor(data, requires_grad=True)
    out = getattr(x, name)(axis=axis, keepdims=keepdims)
    expected = getattr(np, name)(data, axis=axis, keepdims=keepdims)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out.data, expected, rtol=1e-14)

    upstream = rng.standard_normal(out.shape)
    out.backward(gradient=upstream)
    kept_shape = np.sum(data, axis=axis, keepdims=True).shape
    expected_grad = expected_reduction_vjp(name, data, axis, upstream.reshape(kept_shape))
    np.testing.assert_allclose(x.grad, expected_grad, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(x.data, data)


@pytest.mark.parametrize("name", ["sum", "mean", "max", "min"])
@pytest.mark.parametrize("axis", [None, 0, -1, (0, 2), (-1, 0)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_reduction_gradcheck(name, axis, keepdims, rng):
    x = Tensor(rng.standard_normal((2, 3, 4)), requires_grad=True)
    assert gradcheck(lambda t: getattr(t, name)(axis=axis, keepdims=keepdims), [x])


def test_max_ties_share_the_gradient_evenly():
    x = leaf([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    upstream = np.array([6.0, 9.0])
    x.max(axis=1).backward(gradient=upstream)
    np.testing.assert_array_equal(x.grad, [[0.0, 6.0 / 2, 6.0 / 2], [9.0 / 3, 9.0 / 3, 9.0 / 3]])


def test_min_ties_share_the_gradient_evenly_over_all_axes():
    x = leaf([[0.0, 1.0], [0.0, 0.0]])
    x.min().backward()
    np.testing.assert_array_equal(x.grad, [[1 / 3, 0.0], [1 / 3, 1 / 3]])


@pytest.mark.parametrize("name", ["max", "min"])
def test_max_min_of_empty_tensor_is_a_value_error(name):
    with pytest.raises(ValueError, match=rf"{name}: the tensor of shape \(0, 3\) is empty"):
        getattr(leaf(np.zeros((0, 3))), name)()


# --------------------------------------------------------------------------------------------------------------
# Softmax and log-softmax
# --------------------------------------------------------------------------------------------------------------


def reference_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    exps = np.exp(x - x.max(axis=axis, keepdims=True))
    return exps / exps.sum(axis=axis, keepdims=True)


@pytest.mark.parametrize("axis", [0, 1, -1, 2])
def test_softmax_and_log_softmax(axis, rng):
    data = rng.standard_normal((2, 3, 4))
    x = Tensor(data, requires_grad=True)
    np.testing.assert_allclose(x.softmax(axis=axis).data, reference_softmax(data, axis), rtol=1e-13)
    np.testing.assert_allclose(x.log_softmax(axis=axis).data, np.log(reference_softmax(data, axis)), rtol=1e-12)
    np.testing.assert_allclose(x.softmax(axis=axis).data.sum(axis=axis), 1.0, rtol=1e-14)
    assert gradcheck(lambda t: t.softmax(axis=axis), [x])
    assert gradcheck(lambda t: t.log_softmax(axis=axis), [x])


def test_softmax_default_axis_is_the_last(rng):
    data = rng.standard_normal((3, 4))
    np.testing.assert_allclose(Tensor(data).softmax().data, reference_softmax(data, -1), rtol=1e-14)
    np.testing.assert_allclose(Tensor(data).log_softmax().data, np.log(reference_softmax(data, -1)), rtol=1e-13)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_family_is_stable_at_extreme_inputs(name):
    x = leaf([[1000.0, -1000.0, 0.0], [-1000.0, -1000.0, -1000.0]])
    upstream = np.array([[1.0, 2.0, 3.0], [1.0, -1.0, 0.5]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = getattr(x, name)(axis=1)
        out.backward(gradient=upstream)
    assert np.isfinite(out.data).all()
    assert np.isfinite(x.grad).all()
    if name == "softmax":
        np.testing.assert_array_equal(out.data[0], [1.0, 0.0, 0.0])
        np.testing.assert_allclose(out.data[1], [1 / 3, 1 / 3, 1 / 3], rtol=1e-15)
    else:
        np.testing.assert_array_equal(out.data[0], [0.0, -2000.0, -1000.0])
        np.testing.assert_allclose(out.data[1], np.full(3, -np.log(3.0)), rtol=1e-15)
    # The saturated row passes no gradient anywhere (softmax) or only the upstream's own (log_softmax).
    expected_first_row = [0.0, 0.0, 0.0] if name == "softmax" else upstream[0] - [upstream[0].sum(), 0.0, 0.0]
    np.testing.assert_allclose(x.grad[0], expected_first_row)


# --------------------------------------------------------------------------------------------------------------
# Shape operations
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reshape", "expected_shape"),
    [
        (lambda t: t.reshape(4, 6), (4, 6)),
        (lambda t: t.reshape((4, 6)), (4, 6)),
        (lambda t: t.reshape([2, 12]), (2, 12)),
        (lambda t: t.reshape(-1, 3), (8, 3)),
        (lambda t: t.reshape((2, -1, 2)), (2, 6, 2)),
        (lambda t: t.reshape(-1), (24,)),
        (lambda t: t.flatten(), (24,)),
    ],
    ids=["args", "tuple", "list", "-1 first", "-1 middle", "-1 alone", "flatten"],
)
def test_reshape(reshape, expected_shape, rng):
    data = rng.standard_normal((2, 3, 4))
    x = Tensor(data, requires_grad=True)
    out = reshape(x)
    assert out.shape == expected_shape
    np.testing.assert_array_equal(out.data, data.reshape(expected_shape))
    assert gradcheck(reshape, [x])


def test_reshape_mismatch_is_a_value_error():
    with pytest.raises(ValueError, match=r"reshape: cannot reshape a tensor of shape \(2, 3\) \(6 values\)"):
        leaf(np.ones((2, 3))).reshape(4, 2)


@pytest.mark.parametrize(
    ("transpose", "numpy_transpose"),
    [
        (lambda t: t.transpose(), lambda a: a.transpose()),
        (lambda t: t.transpose((1, 0, 2)), lambda a: a.transpose((1, 0, 2))),
        (lambda t: t.transpose(2, 0, 1), lambda a: a.transpose(2, 0, 1)),
        (lambda t: t.transpose([0, 2, 1]), lambda a: a.transpose([0, 2, 1])),
        (lambda t: t.T, lambda a: a.T),
    ],
    ids=["no args", "tuple", "*args", "list", ".T"],
)
def test_transpose(transpose, numpy_transpose, rng):
    data = rng.standard_normal((2, 3, 4))
    x = Tensor(data, requires_grad=True)
    np.testing.assert_array_equal(transpose(x).data, numpy_transpose(data))
    assert gradcheck(transpose, [x])


@pytest.mark.parametrize("axes", [(-1, 0, 1), (0, -1, -2)])
def test_transpose_with_negative_axes(axes, rng):
    data = rng.standard_normal((2, 3, 4))
    x = Tensor(data, requires_grad=True)
    np.testing.assert_array_equal(x.transpose(*axes).data, data.transpose(axes))
    assert gradcheck(lambda t: t.transpose(*axes), [x])


def test_transpose_with_wrong_axes_is_a_value_error():
    with pytest.raises(ValueError, match=r"transpose: axes \(0, 1\) do not fit a tensor of shape \(2, 3, 4\)"):
        leaf(np.ones((2, 3, 4))).transpose((0, 1))


@pytest.mark.parametrize(
    ("shape", "axes"), [((2, 3, 4), (0, 2)), ((2, 3, 4), (-1, 1)), ((2, 3), (0, 1)), ((5,), (0, 0))]
)
def test_transpose_of_two_separate_axes_swaps_them_as_torch_transpose(shape, axes, rng):
    data = rng.standard_normal(shape)
    x = Tensor(data, requires_grad=True)
    np.testing.assert_array_equal(x.transpose(*axes).data, np.swapaxes(data, *axes))
    assert gradcheck(lambda t: t.transpose(*axes), [x])


# --------------------------------------------------------------------------------------------------------------
# Indexing
# --------------------------------------------------------------------------------------------------------------

INDICES = {
    "int": 1,
    "negative int": -1,
    "slice": slice(1, 3),
    "step slice": slice(None, None, -2),
    "tuple of slices": (slice(None), slice(0, 2), slice(1, None)),
    "int and slice": (0, slice(None), 2),
    "None": (None, 1),
    "Ellipsis": (Ellipsis, 1),
    "Ellipsis and None": (0, Ellipsis, None),
    "int array": np.array([2, 0]),
    "repeated int array": np.array([0, 0, 2, 0]),
    "repeated list": [1, 1],
    "repeated pair of arrays": (np.array([0, 0, 1]), np.array([1, 1, 1])),
    "array after slice": (slice(None), np.array([2, 2, 0])),
    "2-d int array": np.array([[0, 1], [1, 1]]),
    "None and repeated int array": (None, np.array([0, 0])),
    "bool mask on axis 0": np.array([True, False, True]),
    "Tensor int index": Tensor(np.array([1, 1, 0])),
    "Tensor bool mask": Tensor(np.array([False, True, True])),
    "list of Tensors": [Tensor(np.array(2)), Tensor(np.array(2))],
}


def as_numpy_index(index):
    """The same index with every Tensor replaced by its array, for numpy's reference result."""
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, list):
        return [as_numpy_index(part) for part in index]
    return index


@pytest.mark.parametrize("index", INDICES.values(), ids=INDICES.keys())
def test_getitem_forward_and_gradcheck(index, rng):
    data = rng.standard_normal((3, 4, 5))
    x = Tensor(data, requires_grad=True)
    np.testing.assert_array_equal(x[index].data, data[as_numpy_index(index)])
    assert gradcheck(lambda t: t[index], [x])


@PROPERTY
@given(
    size=st.integers(1, 6),
    picks=st.lists(st.integers(0, 5), min_size=1, max_size=12),
    seed=SEEDS,
)
def test_repeated_integer_indices_accumulate(size, picks, seed):
    rng = np.random.default_rng(seed)
    picks = np.array(picks) % size
    data = rng.standard_normal((size, 2))
    x = Tensor(data, requires_grad=True)
    out = x[picks]
    np.testing.assert_array_equal(out.data, data[picks])
    upstream = rng.standard_normal(out.shape)
    out.backward(gradient=upstream)
    # Row r receives the sum of the upstream rows that picked it.
    expected = np.stack([upstream[picks == row].sum(axis=0) for row in range(size)])
    np.testing.assert_allclose(x.grad, expected, rtol=1e-13, atol=1e-15)


def test_getitem_with_a_mask_computed_from_the_tensor(rng):
    data = rng.standard_normal((3, 4))
    x = Tensor(data, requires_grad=True)
    np.testing.assert_array_equal(x[x > 0].data, data[data > 0])
    assert gradcheck(lambda t: t[t > 0], [x])


def test_getitem_out_of_range_is_an_index_error():
    with pytest.raises(IndexError, match=r"tensor of shape \(3,\)"):
        leaf([1.0, 2.0, 3.0])[5]


# --------------------------------------------------------------------------------------------------------------
# Joining, maximum, minimum, where
# --------------------------------------------------------------------------------------------------------------


# Sizes differ along the joined axis only.
CONCATENATE_SHAPES = {0: [(1, 3), (2, 3), (3, 3)], 1: [(2, 1), (2, 2), (2, 3)], -1: [(2, 3), (2, 1), (2, 2)]}


@pytest.mark.parametrize("axis", CONCATENATE_SHAPES)
def test_concatenate(axis, rng):
    datas = [rng.standard_normal(shape) for shape in CONCATENATE_SHAPES[axis]]
    tensors = [Tensor(d, requires_grad=True) for d in datas]
    np.testing.assert_array_equal(tg.concatenate(tensors, axis=axis).data, np.concatenate(datas, axis=axis))
    assert gradcheck(lambda *ts: tg.concatenate(ts, axis=axis), tensors)


def test_concatenate_with_constant_member(rng):
    constant = rng.standard_normal((1, 3))
    x = Tensor(rng.standard_normal((2, 3)), requires_grad=True)
    out = tg.concatenate([constant, x, Tensor(constant)])
    np.testing.assert_array_equal(out.data, np.concatenate([constant, x.data, constant]))
    assert gradcheck(lambda t: tg.concatenate([constant, t, Tensor(constant)]), [x])


def test_concatenate_errors():
    with pytest.raises(ValueError, match="at least one tensor"):
        tg.concatenate([])
    with pytest.raises(ValueError, match=r"concatenate: shapes \(2, 3\), \(2, 4\) differ outside axis 0"):
        tg.concatenate([leaf(np.ones((2, 3))), leaf(np.ones((2, 4)))])


@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_stack(axis, rng):
    datas = [rng.standard_normal((2, 3)) for _ in range(3)]
    tensors = [Tensor(d, requires_grad=True) for d in datas]
    np.testing.assert_array_equal(tg.stack(tensors, axis=axis).data, np.stack(datas, axis=axis))
    assert gradcheck(lambda *ts: tg.stack(ts, axis=axis), tensors)


def test_stack_errors():
    with pytest.raises(ValueError, match="at least one tensor"):
        tg.stack([])
    with pytest.raises(ValueError, match=r"stack: all tensors need the same shape, got \(2,\), \(3,\)"):
        tg.stack([leaf(np.ones(2)), leaf(np.ones(3))])


@pytest.mark.parametrize("op", [tg.maximum, tg.minimum], ids=["maximum", "minimum"])
def test_maximum_minimum_ties_split_the_gradient(op):
    a = leaf([1.0, 2.0, 3.0])
    b = leaf([1.0, 0.0, 5.0])
    upstream = np.array([4.0, 6.0, 8.0])
    op(a, b).backward(gradient=upstream)
    a_wins = np.array([0.0, 1.0, 0.0]) if op is tg.maximum else np.array([0.0, 0.0, 1.0])
    tie = np.array([0.5, 0.0, 0.0])
    np.testing.assert_array_equal(a.grad, upstream * (a_wins + tie))
    np.testing.assert_array_equal(b.grad, upstream * (1 - a_wins - tie))


def test_maximum_with_a_scalar(rng):
    x = Tensor(signed(rng, (3, 4), 0.1, 2.0), requires_grad=True)
    np.testing.assert_array_equal(tg.maximum(x, 0.0).data, np.maximum(x.data, 0.0))
    assert gradcheck(lambda t: tg.maximum(t, 0.0), [x])
    assert gradcheck(lambda t: tg.minimum(0.0, t), [x])


@PROPERTY
@given(
    shapes=mutually_broadcastable_shapes(num_shapes=3, min_dims=0, max_dims=3, max_side=3),
    seed=SEEDS,
)
def test_where_forward_and_vjp_with_broadcasting(shapes, seed):
    rng = np.random.default_rng(seed)
    shape_condition, shape_a, shape_b = shapes.input_shapes
    condition = rng.random(shape_condition) > 0.5
    a_data, b_data = rng.standard_normal(shape_a), rng.standard_normal(shape_b)
    a, b = Tensor(a_data, requires_grad=True), Tensor(b_data, requires_grad=True)
    out = tg.where(Tensor(condition), a, b)
    np.testing.assert_array_equal(out.data, np.where(condition, a_data, b_data))
    upstream = rng.standard_normal(out.shape)
    out.backward(gradient=upstream)
    np.testing.assert_allclose(a.grad, unbroadcast(np.where(condition, upstream, 0.0), shape_a), rtol=1e-13)
    np.testing.assert_allclose(b.grad, unbroadcast(np.where(condition, 0.0, upstream), shape_b), rtol=1e-13)


def test_where_with_scalars_and_gradcheck(rng):
    x = Tensor(rng.standard_normal((3, 4)), requires_grad=True)
    condition = x.data > 0
    np.testing.assert_array_equal(tg.where(condition, x, 0.0).data, np.where(condition, x.data, 0.0))
    assert gradcheck(lambda t: tg.where(condition, t, 0.0), [x])
    assert gradcheck(lambda t: tg.where(t > 0, -1.0, t * 2.0), [x])


# --------------------------------------------------------------------------------------------------------------
# No op writes into its inputs
# --------------------------------------------------------------------------------------------------------------

OPS_ON_TWO_MATRICES = {
    "softmax": lambda a, b: a.softmax(axis=0) + b.log_softmax(),
    "sigmoid, tanh, exp": lambda a, b: a.sigmoid() * b.tanh() + a.exp(),
    "reductions": lambda a, b: a.mean(axis=1, keepdims=True) * b.max(axis=0) + a.min() - b.sum(axis=-1)[:, None],
    "shape": lambda a, b: a.reshape(-1).reshape(3, 2).T + b.transpose().T.flatten().reshape(2, 3),
    "getitem": lambda a, b: a[[0, 0]] + b[b > 0].sum() + a[:, ::-1],
    "join": lambda a, b: tg.stack([a, b]).sum(axis=0) + tg.concatenate([a, b], axis=1)[:, 1:4],
    "select": lambda a, b: tg.where(a > b, a, b) + tg.maximum(a, b) - tg.minimum(a, 0.0) + abs(b).relu(),
    "matmul": lambda a, b: a @ b.T,
}


@pytest.mark.parametrize("expression", OPS_ON_TWO_MATRICES.values(), ids=OPS_ON_TWO_MATRICES.keys())
def test_ops_never_write_into_their_inputs(expression, rng):
    a = Tensor(rng.standard_normal((2, 3)), requires_grad=True)
    b = Tensor(rng.standard_normal((2, 3)), requires_grad=True)
    a_before, b_before = a.data.copy(), b.data.copy()
    out = expression(a, b)
    upstream = rng.standard_normal(out.shape)
    upstream_before = upstream.copy()
    out.backward(gradient=upstream)
    np.testing.assert_array_equal(a.data, a_before)
    np.testing.assert_array_equal(b.data, b_before)
    np.testing.assert_array_equal(upstream, upstream_before)


# --------------------------------------------------------------------------------------------------------------
# Matrix product, with numpy's rules
# --------------------------------------------------------------------------------------------------------------


MATMUL_SHAPES = [
    pytest.param((3,), (3,), id="1-D @ 1-D"),
    pytest.param((3,), (3, 2), id="1-D @ 2-D"),
    pytest.param((2, 3), (3,), id="2-D @ 1-D"),
    pytest.param((2, 3), (3, 4), id="2-D @ 2-D"),
    pytest.param((1, 3), (3, 2), id="one row @ 2-D"),
    pytest.param((2, 3, 4), (2, 4, 5), id="3-D @ 3-D"),
    pytest.param((2, 1, 3, 4), (5, 4, 2), id="batched broadcast"),
    pytest.param((3, 4), (2, 4, 5), id="2-D @ 3-D"),
    pytest.param((4,), (2, 4, 3), id="1-D @ 3-D"),
    pytest.param((2, 3, 4), (4,), id="3-D @ 1-D"),
]


@pytest.mark.parametrize(("shape_a", "shape_b"), MATMUL_SHAPES)
def test_matmul(shape_a, shape_b, rng):
    a_data, b_data = rng.standard_normal(shape_a), rng.standard_normal(shape_b)
    a, b = Tensor(a_data, requires_grad=True), Tensor(b_data, requires_grad=True)
    out = a @ b
    expected = np.matmul(a_data, b_data)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out.data, expected, rtol=1e-14)
    assert gradcheck(lambda x, y: x @ y, [a, b])
    np.testing.assert_array_equal(a.data, a_data)
    np.testing.assert_array_equal(b.data, b_data)


def test_matmul_with_an_ndarray_on_either_side(rng):
    matrix = rng.standard_normal((2, 3))
    x = Tensor(rng.standard_normal((3, 3)), requires_grad=True)
    np.testing.assert_allclose((matrix @ x).data, matrix @ x.data, rtol=1e-14)
    assert gradcheck(lambda t: matrix @ t, [x])
    assert gradcheck(lambda t: t @ matrix.T, [x])


@pytest.mark.parametrize(
    ("shape_a", "shape_b", "message"),
    [
        (
            (2, 3),
            (4, 5),
            r"matmul: \(2, 3\) @ \(4, 5\): the left operand's last axis \(3\) must equal the right's "
            r"second-to-last axis \(4\)",
        ),
        ((3,), (4,), r"matmul: \(3,\) @ \(4,\): .*last axis \(3\) must equal the right's only axis \(4\)"),
        ((2, 3, 4), (5, 4, 2), r"matmul: \(2, 3, 4\) @ \(5, 4, 2\): the batch axes do not broadcast"),
        ((), (3,), r"matmul: \(\) @ \(3,\): matmul needs operands with at least one axis"),
    ],
    ids=["inner", "1-D", "batch", "0-d"],
)
def test_matmul_shape_errors(shape_a, shape_b, message):
    with pytest.raises(ValueError, match=message):
        leaf(np.ones(shape_a)) @ leaf(np.ones(shape_b))


def test_an_integer_tensor_to_a_negative_integer_power_says_so():
    with pytest.raises(ValueError, match=r"pow: \(3,\) \*\* \(\): Integers to negative integer powers"):
        Tensor(np.array([1, 2, 3])) ** -1


def test_softmax_of_an_integer_tensor_computes_in_float64():
    out = Tensor(np.array([1, 2, 3])).softmax()
    assert out.dtype == np.float64
    np.testing.assert_allclose(out.data, np.exp([1, 2, 3]) / np.exp([1, 2, 3]).sum())
