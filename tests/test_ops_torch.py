"""Values and gradients of every op against PyTorch in float64 (skipped without torch; see conftest.py)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import tinygrad_nn as tg
from tinygrad_nn import Tensor

pytestmark = pytest.mark.torch

# Both sides compute in float64 with the same formulas up to rounding order, so 1e-10 leaves ample room.
TOLERANCE = {"rtol": 1e-10, "atol": 1e-10}


def compare_with_torch(torch, tg_fn, torch_fn, *arrays, seed=0):
    """Run both functions on the same float64 inputs; compare outputs and gradients for a random upstream."""
    tg_inputs = [Tensor(np.array(a, dtype=np.float64), requires_grad=True) for a in arrays]
    torch_inputs = [torch.tensor(np.array(a, dtype=np.float64), requires_grad=True) for a in arrays]
    out = tg_fn(*tg_inputs)
    expected = torch_fn(*torch_inputs)
    assert out.shape == tuple(expected.shape)
    np.testing.assert_allclose(out.data, expected.detach().numpy(), **TOLERANCE)
    upstream = np.random.default_rng(seed).standard_normal(out.shape)
    out.backward(gradient=upstream)
    expected.backward(torch.tensor(upstream))
    for position, (mine, theirs) in enumerate(zip(tg_inputs, torch_inputs)):
        reference = np.zeros(mine.shape) if theirs.grad is None else theirs.grad.numpy()
        actual = np.zeros(mine.shape) if mine.grad is None else mine.grad
        np.testing.assert_allclose(actual, reference, err_msg=f"gradient of input {position}", **TOLERANCE)


# --------------------------------------------------------------------------------------------------------------
# Arithmetic
# --------------------------------------------------------------------------------------------------------------

BROADCAST_SHAPES = [((2, 3), (2, 3)), ((2, 3), (3,)), ((2, 1, 3), (4, 1)), ((), (2, 3)), ((3, 1), (1, 4))]

BINARY = {
    "add": (lambda a, b: a + b, lambda a, b: a + b),
    "sub": (lambda a, b: a - b, lambda a, b: a - b),
    "mul": (lambda a, b: a * b, lambda a, b: a * b),
    "div": (lambda a, b: a / b, lambda a, b: a / b),
    "pow": (lambda a, b: a**b, lambda a, b: a**b),
    "maximum": (tg.maximum, None),
    "minimum": (tg.minimum, None),
}


@pytest.mark.parametrize("name", BINARY)
@pytest.mark.parametrize(("shape_a", "shape_b"), BROADCAST_SHAPES)
def test_binary_ops(torch, name, shape_a, shape_b, rng):
    tg_fn, torch_fn = BINARY[name]
    torch_fn = torch_fn or getattr(torch, name)
    # Positive values keep pow real; values away from 0 keep div tame.
    a = rng.uniform(0.5, 2.0, size=shape_a)
    b = rng.uniform(0.5, 2.0, size=shape_b) * (1 if name == "pow" else rng.choice([-1, 1], size=shape_b))
    compare_with_torch(torch, tg_fn, torch_fn, a, b)


@pytest.mark.parametrize(
    "expression",
    [
        lambda t: 2 - t,
        lambda t: 2 + t,
        lambda t: 2 * t,
        lambda t: 2 / t,
        lambda t: 2**t,
        lambda t: t**3,
        lambda t: t**2,
        lambda t: t**-1.5,
        lambda t: t**0.5,
        lambda t: t**0,
        lambda t: -t,
        lambda t: (t - 1.0) * 0.5,
    ],
    ids=["2-t", "2+t", "2*t", "2/t", "2**t", "t**3", "t**2", "t**-1.5", "t**0.5", "t**0", "-t", "(t-1)*0.5"],
)
def test_scalars_and_reflected_forms(torch, expression, rng):
    # The same Python expression runs on both frameworks.
    compare_with_torch(torch, expression, expression, rng.uniform(0.5, 2.0, size=(2, 3)))


def test_tensor_exponents(torch, rng):
    base = rng.uniform(0.5, 2.0, size=(3, 1))
    exponent = rng.uniform(-2.0, 2.0, size=(1, 4))
    compare_with_torch(torch, lambda b, e: b**e, lambda b, e: b**e, base, exponent)
    compare_with_torch(torch, lambda e: 3.0**e, lambda e: 3.0**e, exponent)


def test_pow_at_zero(torch):
    # 0 ** 0 and 0 ** 2: gradients where the formulas meet 0 * inf and 0 * log(0)
    compare_with_torch(torch, lambda b, e: b**e, lambda b, e: b**e, [0.0, 0.0, 2.0], [0.0, 2.0, 0.0])


@pytest.mark.parametrize(
    ("shape_a", "shape_b"),
    [
        pytest.param((3,), (3,)),
        ((3,), (3, 2)),
        ((2, 3), (3,)),
        ((2, 3), (3, 4)),
        ((1, 3), (3, 2)),
        ((2, 1, 3, 4), (5, 4, 2)),
        ((4,), (2, 4, 3)),
        ((2, 3, 4), (4,)),
    ],
)
def test_matmul(torch, shape_a, shape_b, rng):
    a, b = rng.standard_normal(shape_a), rng.standard_normal(shape_b)
    compare_with_torch(torch, lambda x, y: x @ y, lambda x, y: x @ y, a, b)


# --------------------------------------------------------------------------------------------------------------
# Elementwise functions, including their special points
# --------------------------------------------------------------------------------------------------------------

UNARY = {
    "exp": (lambda t: t.exp(), "exp"),
    "log": (lambda t: t.log(), "log"),
    "sqrt": (lambda t: t.sqrt(), "sqrt"),
    "abs": (lambda t: t.abs(), "abs"),
    "tanh": (lambda t: t.tanh(), "tanh"),
    "sigmoid": (lambda t: t.sigmoid(), "sigmoid"),
    "relu": (lambda t: t.relu(), "relu"),
}


@pytest.mark.parametrize("name", UNARY)
def test_unary_ops(torch, name, rng):
    tg_fn, torch_name = UNARY[name]
    data = rng.uniform(0.2, 3.0, size=(3, 4)) if name in ("log", "sqrt") else 3 * rng.standard_normal((3, 4))
    compare_with_torch(torch, tg_fn, getattr(torch, torch_name), data)


@pytest.mark.parametrize("name", ["abs", "relu"])
def test_kinks_at_zero(torch, name):
    tg_fn, torch_name = UNARY[name]
    compare_with_torch(torch, tg_fn, getattr(torch, torch_name), [-1.0, 0.0, 0.0, 2.0])


def test_sigmoid_at_extremes(torch):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        compare_with_torch(torch, lambda t: t.sigmoid(), torch.sigmoid, [-800.0, -40.0, 0.0, 40.0, 800.0])


@pytest.mark.parametrize(("low", "high"), [(-1.0, 1.0), (None, 1.0), (-1.0, None)])
def test_clip_including_the_bounds(torch, low, high):
    data = [-2.0, -1.0, -0.5, 0.0, 1.0, 3.0]
    compare_with_torch(torch, lambda t: t.clip(low, high), lambda t: torch.clamp(t, low, high), data)


# --------------------------------------------------------------------------------------------------------------
# Reductions and softmax
# --------------------------------------------------------------------------------------------------------------

REDUCTIONS = {"sum": "sum", "mean": "mean", "max": "amax", "min": "amin"}


@pytest.mark.parametrize("name", REDUCTIONS)
@pytest.mark.parametrize("axis", [None, 0, -1, (0, 2), (-1, 1)])
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
def test_reductions(torch, name, axis, keepdims, ties, rng):
    shape = (2, 3, 4)
    # Values from {-1, 0, 1} tie often, which is where max and min split the gradient (like torch.amax).
    data = rng.integers(-1, 2, size=shape).astype(float) if ties else rng.standard_normal(shape)
    dim = tuple(range(len(shape))) if axis is None else axis
    torch_reduce = getattr(torch, REDUCTIONS[name])
    compare_with_torch(
        torch,
        lambda t: getattr(t, name)(axis=axis, keepdims=keepdims),
        lambda t: torch_reduce(t, dim=dim, keepdim=keepdims),
        data,
    )


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_softmax_family(torch, name, axis, rng):
    data = rng.standard_normal((2, 3, 4))
    compare_with_torch(torch, lambda t: getattr(t, name)(axis=axis), lambda t: getattr(t, name)(dim=axis), data)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_family_at_extremes(torch, name):
    data = [[1000.0, -1000.0, 0.0], [-1000.0, -1000.0, -1000.0], [1000.0, 1000.0, -1000.0]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        compare_with_torch(torch, lambda t: getattr(t, name)(axis=1), lambda t: getattr(t, name)(dim=1), data)


# --------------------------------------------------------------------------------------------------------------
# Shapes, indexing, joining
# --------------------------------------------------------------------------------------------------------------

SHAPE_OPS = {
    "reshape args": (lambda t: t.reshape(4, 6), lambda t: t.reshape(4, 6)),
    "reshape tuple -1": (lambda t: t.reshape((-1, 2)), lambda t: t.reshape((-1, 2))),
    "flatten": (lambda t: t.flatten(), lambda t: t.flatten()),
    "transpose no args": (lambda t: t.transpose(), lambda t: t.permute(2, 1, 0)),
    "transpose tuple": (lambda t: t.transpose((1, 0, 2)), lambda t: t.permute(1, 0, 2)),
    "transpose args": (lambda t: t.transpose(2, 0, 1), lambda t: t.permute(2, 0, 1)),
    ".T": (lambda t: t.T, lambda t: t.permute(2, 1, 0)),
}


@pytest.mark.parametrize("name", SHAPE_OPS)
def test_shape_ops(torch, name, rng):
    tg_fn, torch_fn = SHAPE_OPS[name]
    compare_with_torch(torch, tg_fn, torch_fn, rng.standard_normal((2, 3, 4)))


def test_transpose_negative_axes(torch, rng):
    compare_with_torch(
        torch, lambda t: t.transpose(-1, 0, 1), lambda t: t.permute(-1, 0, 1), rng.standard_normal((2, 3, 4))
    )


INDICES = {
    "int": (1, 1),
    "slice": (slice(1, 3), slice(1, 3)),
    "int, slice, int": ((0, slice(None), 2), (0, slice(None), 2)),
    "None": ((None, 1), (None, 1)),
    "Ellipsis": ((Ellipsis, 1), (Ellipsis, 1)),
    "repeated ints": (np.array([0, 0, 2, 0]), [0, 0, 2, 0]),
    "repeated pairs": ((np.array([0, 0, 1]), np.array([1, 1, 1])), ([0, 0, 1], [1, 1, 1])),
    "slice then repeated": ((slice(None), [2, 2, 0]), (slice(None), [2, 2, 0])),
    "bool mask": (np.array([True, False, True]), [True, False, True]),
}


@pytest.mark.parametrize("name", INDICES)
def test_indexing(torch, name, rng):
    tg_index, torch_index = INDICES[name]
    if isinstance(torch_index, list):
        torch_index = torch.tensor(torch_index)
    elif isinstance(torch_index, tuple):
        torch_index = tuple(torch.tensor(i) if isinstance(i, list) else i for i in torch_index)
    compare_with_torch(torch, lambda t: t[tg_index], lambda t: t[torch_index], rng.standard_normal((3, 4, 5)))


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_concatenate_and_stack(torch, axis, rng):
    a, b = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    compare_with_torch(
        torch, lambda x, y: tg.concatenate([x, y, x], axis=axis), lambda x, y: torch.cat([x, y, x], dim=axis), a, b
    )
    compare_with_torch(
        torch, lambda x, y: tg.stack([x, y, x], axis=axis), lambda x, y: torch.stack([x, y, x], dim=axis), a, b
    )


def test_where(torch, rng):
    condition = rng.random((2, 3)) > 0.5
    torch_condition = torch.tensor(condition)
    compare_with_torch(
        torch,
        lambda a, b: tg.where(condition, a, b),
        lambda a, b: torch.where(torch_condition, a, b),
        rng.standard_normal((2, 3)),
        rng.standard_normal((3,)),
    )


@pytest.mark.parametrize("name", ["maximum", "minimum"])
def test_maximum_minimum_ties(torch, name):
    a = [1.0, 2.0, 3.0, -1.0]
    b = [1.0, 0.0, 5.0, -1.0]
    compare_with_torch(torch, getattr(tg, name), getattr(torch, name), a, b)


# --------------------------------------------------------------------------------------------------------------
# Graphs: diamonds and micrograd's engine scenarios
# --------------------------------------------------------------------------------------------------------------


def test_diamonds(torch, rng):
    def diamond(x, y):
        hidden = (x * y).tanh()
        return hidden * hidden + hidden * x - (x + x) / (y * y + 1.0)

    compare_with_torch(torch, diamond, diamond, rng.standard_normal((2, 3)), rng.standard_normal((3,)))


def test_micrograd_sanity_check(torch):
    def scenario(x):
        z = 2 * x + 2 + x
        q = z.relu() + z * x
        h = (z * z).relu()
        return h + q + q * x

    compare_with_torch(torch, scenario, scenario, -4.0)


def test_micrograd_more_ops(torch):
    def scenario(a, b):
        c = a + b
        d = a * b + b**3
        c = c + c + 1
        c = c + 1 + c + (-a)
        d = d + d * 2 + (b + a).relu()
        d = d + 3 * d + (b - a).relu()
        e = c - d
        f = e**2
        g = f / 2.0
        return g + 10.0 / f

    compare_with_torch(torch, scenario, scenario, -4.0, 2.0)
