"""Tensor construction, dtype rules and attributes (docs/tensor-and-autograd.md, "Creating tensors, and dtypes")."""

from __future__ import annotations

import operator

import numpy as np
import pytest

import tinygrad_nn as tg
from tinygrad_nn import Tensor


@pytest.fixture
def default_float32():
    """Make float32 the default float dtype for one test, and always put the previous default back."""
    previous = tg.get_default_dtype()
    tg.set_default_dtype("float32")
    yield
    tg.set_default_dtype(previous)


# --------------------------------------------------------------------------------------------------------------
# Construction and dtypes
# --------------------------------------------------------------------------------------------------------------


def test_default_dtype_is_float64():
    assert tg.get_default_dtype() == np.float64


@pytest.mark.parametrize("data", [3, 2.5, True, [1, 2], [1.5, 2], [[1, 2], [3, 4]], [[True, False]]])
def test_python_numbers_and_lists_become_default_float(data):
    t = Tensor(data)
    assert t.dtype == np.float64
    np.testing.assert_array_equal(t.data, np.array(data, dtype=np.float64))


@pytest.mark.parametrize("data", [3, 2.5, [1, 2], [[1.5, 2.5]]])
def test_python_data_follows_set_default_dtype(default_float32, data):
    assert tg.get_default_dtype() == np.float32
    assert Tensor(data).dtype == np.float32


def test_set_default_dtype_does_not_change_ndarrays(default_float32):
    assert Tensor(np.array([1.0, 2.0])).dtype == np.float64


@pytest.mark.parametrize("dtype", ["int64", "int32", "bool", "complex128"])
def test_set_default_dtype_rejects_non_float(dtype):
    with pytest.raises(TypeError, match=f"floating-point dtype, got {dtype}"):
        tg.set_default_dtype(dtype)
    assert tg.get_default_dtype() == np.float64


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int32, np.int64, np.uint8, np.bool_])
def test_ndarrays_keep_their_dtype(dtype):
    array = np.arange(4).astype(dtype)
    assert Tensor(array).dtype == dtype


@pytest.mark.parametrize("scalar", [np.float32(1.5), np.float64(1.5), np.int64(3), np.int8(-2)])
def test_numpy_scalars_keep_their_dtype(scalar):
    t = Tensor(scalar)
    assert t.dtype == scalar.dtype
    assert t.shape == ()
    assert t.item() == scalar


def test_dtype_argument_converts():
    t = Tensor([1, 2], dtype=np.float32)
    assert t.dtype == np.float32
    array = np.arange(3)
    converted = Tensor(array, dtype="float64")
    assert converted.dtype == np.float64
    assert not np.shares_memory(converted.data, array)


def test_integer_data_is_allowed_without_grad():
    labels = Tensor(np.array([0, 2, 1]))
    assert labels.dtype == np.int64
    assert not labels.requires_grad


@pytest.mark.parametrize(
    "make",
    [
        lambda: Tensor(np.array([1, 2]), requires_grad=True),
        lambda: Tensor([1, 2], dtype=np.int64, requires_grad=True),
        lambda: Tensor(np.array([True, False]), requires_grad=True),
        lambda: Tensor(np.array([1, 2])).requires_grad_(),
    ],
    ids=["int-array", "int-dtype", "bool-array", "requires_grad_"],
)
def test_requires_grad_on_non_float_data_is_a_type_error(make):
    with pytest.raises(TypeError, match="only floating-point tensors can require grad"):
        make()


def test_requires_grad_setter_on_int_data_is_a_type_error():
    t = Tensor(np.array([1, 2]))
    with pytest.raises(TypeError, match=r"dtype int64"):
        t.requires_grad = True
    assert not t.requires_grad


@pytest.mark.parametrize("data", [np.array([1 + 2j]), "abc", [1, "a"], object()])
def test_unsupported_data_is_a_type_error(data):
    with pytest.raises(TypeError):
        Tensor(data)


def test_requires_grad_copies_a_shared_ndarray():
    array = np.array([1.0, 2.0, 3.0])
    t = Tensor(array, requires_grad=True)
    assert not np.shares_memory(t.data, array)
    array[0] = 100.0  # the user's later writes must not reach the leaf
    assert t.data[0] == 1.0


def test_requires_grad_copies_a_view_of_an_ndarray():
    storage = np.arange(6.0)
    t = Tensor(storage[::2], requires_grad=True)
    assert not np.shares_memory(t.data, storage)


def test_without_requires_grad_an_ndarray_is_shared():
    array = np.array([1.0, 2.0, 3.0])
    t = Tensor(array)
    assert t.data is array
    array[0] = 100.0
    assert t.data[0] == 100.0


def test_tensor_from_tensor_shares_data_unless_it_requires_grad():
    source = Tensor(np.array([1.0, 2.0]))
    assert Tensor(source).data is source.data
    assert not np.shares_memory(Tensor(source, requires_grad=True).data, source.data)


# --------------------------------------------------------------------------------------------------------------
# Attributes
# --------------------------------------------------------------------------------------------------------------


def test_leaf_attributes():
    array = np.arange(6.0).reshape(2, 3)
    t = Tensor(array, requires_grad=True)
    np.testing.assert_array_equal(t.data, array)
    assert t.grad is None
    assert t.requires_grad
    assert t.is_leaf
    assert t.grad_fn is None
    assert t.shape == (2, 3)
    assert t.ndim == 2
    assert t.size == 6
    assert t.dtype == np.float64


def test_computed_tensor_attributes():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = x * 2.0
    assert y.requires_grad
    assert not y.is_leaf
    assert isinstance(y.grad_fn, tg.Function)
    assert type(y.grad_fn).__name__ == "Mul"
    with pytest.warns(UserWarning, match="non-leaf"):
        assert y.grad is None


def test_computed_from_data_only_is_a_leaf_without_grad():
    y = Tensor([1.0, 2.0]) * 2.0
    assert y.is_leaf
    assert not y.requires_grad
    assert y.grad_fn is None


@pytest.mark.parametrize("shape", [(3,), (2, 3), (2, 3, 4)])
def test_T_reverses_axes(shape):
    data = np.arange(float(np.prod(shape))).reshape(shape)
    np.testing.assert_array_equal(Tensor(data).T.data, data.T)


def test_item():
    assert Tensor(2.5).item() == 2.5
    assert isinstance(Tensor(2.5).item(), float)
    assert Tensor([[4.0]]).item() == 4.0
    value = Tensor(np.array(7)).item()
    assert value == 7
    assert isinstance(value, int)


def test_item_needs_one_element():
    with pytest.raises(ValueError, match=r"one element.*shape \(2,\)"):
        Tensor([1.0, 2.0]).item()


def test_float_and_int_conversions():
    assert float(Tensor([2.5])) == 2.5
    assert int(Tensor(3.0)) == 3


def test_tolist():
    assert Tensor([[1.0, 2.0], [3.0, 4.0]]).tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert Tensor(1.5).tolist() == 1.5


def test_numpy_is_the_shared_array():
    t = Tensor(np.array([1.0, 2.0]))
    assert t.numpy() is t.data


def test_detach_shares_data_outside_the_graph():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = x * 3.0
    detached = y.detach()
    assert detached.data is y.data
    assert not detached.requires_grad
    assert detached.is_leaf
    assert detached.grad is None
    assert not (detached * 2.0).requires_grad


def test_requires_grad_underscore():
    t = Tensor([1.0, 2.0])
    assert t.requires_grad_() is t
    assert t.requires_grad
    t.requires_grad_(False)
    assert not t.requires_grad
    t.requires_grad = True
    assert t.requires_grad


def test_requires_grad_cannot_be_switched_off_on_a_computed_tensor():
    y = Tensor([1.0], requires_grad=True) * 2.0
    with pytest.raises(RuntimeError, match="detach"):
        y.requires_grad_(False)
    assert y.requires_grad


def test_astype_converts_and_is_differentiable():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = x.astype(np.float32)
    assert y.dtype == np.float32
    assert type(y.grad_fn).__name__ == "Cast"
    (y * 2.0).sum().backward()
    assert x.grad.dtype == np.float64
    np.testing.assert_array_equal(x.grad, [2.0, 2.0])


def test_astype_same_dtype_returns_the_tensor():
    x = Tensor([1.0, 2.0], requires_grad=True)
    assert x.astype("float64") is x


def test_astype_to_int_leaves_the_graph():
    y = Tensor([1.7, -2.2], requires_grad=True).astype(np.int64)
    assert y.dtype == np.int64
    assert not y.requires_grad
    np.testing.assert_array_equal(y.data, [1, -2])


def test_array_protocol():
    t = Tensor(np.array([1.0, 2.0]))
    assert np.asarray(t) is t.data
    as_float32 = np.asarray(t, dtype=np.float32)
    assert as_float32.dtype == np.float32
    copied = np.array(t)
    np.testing.assert_array_equal(copied, t.data)
    assert not np.shares_memory(copied, t.data)


def test_array_protocol_refuses_a_forbidden_copy():
    t = Tensor(np.array([1.0, 2.0]))
    assert np.asarray(t, copy=False) is t.data
    with pytest.raises(ValueError):
        np.asarray(t, dtype=np.float32, copy=False)


def test_argmax_argmin_give_integer_arrays():
    data = np.array([[1.0, 5.0, 2.0], [7.0, 0.0, 3.0]])
    t = Tensor(data, requires_grad=True)
    for name in ("argmax", "argmin"):
        for axis in (None, 0, 1, -1):
            result = getattr(t, name)(axis=axis)
            assert isinstance(result, (np.ndarray, np.integer))
            np.testing.assert_array_equal(result, getattr(np, name)(data, axis=axis))


def test_len():
    assert len(Tensor(np.zeros((4, 2)))) == 4
    with pytest.raises(TypeError, match="0-d"):
        len(Tensor(1.0))


def test_iteration_gives_differentiable_rows():
    data = np.arange(6.0).reshape(3, 2)
    x = Tensor(data, requires_grad=True)
    rows = list(x)
    assert len(rows) == 3
    for row, expected in zip(rows, data):
        assert isinstance(row, Tensor)
        np.testing.assert_array_equal(row.data, expected)
    (rows[0] * 2.0 + rows[2]).sum().backward()
    np.testing.assert_array_equal(x.grad, [[2.0, 2.0], [0.0, 0.0], [1.0, 1.0]])


def test_iterating_a_0d_tensor_is_a_type_error():
    with pytest.raises(TypeError, match="0-d"):
        iter(Tensor(1.0))


def test_repr_default_dtype_leaf():
    assert repr(Tensor([1.0, 2.0])) == "Tensor([1., 2.])"


@pytest.mark.parametrize(
    ("tensor", "expected"),
    [
        (Tensor(np.array([1.0, 2.0], dtype=np.float32)), "Tensor([1., 2.], dtype=float32)"),
        (Tensor(np.array([1, 2])), "Tensor([1, 2], dtype=int64)"),
        (Tensor([1.0, 2.0], requires_grad=True), "Tensor([1., 2.], requires_grad=True)"),
    ],
    ids=["float32", "int64", "requires_grad"],
)
def test_repr_shows_what_is_not_default(tensor, expected):
    assert repr(tensor) == expected


def test_repr_shows_grad_fn_of_a_computed_tensor():
    text = repr(Tensor([1.0, 2.0], requires_grad=True) * 2.0)
    assert text == "Tensor([2., 4.], grad_fn=Mul)"


def test_repr_follows_the_default_dtype(default_float32):
    assert "dtype" not in repr(Tensor(np.array([1.0], dtype=np.float32)))
    assert "dtype=float64" in repr(Tensor(np.array([1.0])))


# --------------------------------------------------------------------------------------------------------------
# Comparisons, hashing and mixing with numpy
# --------------------------------------------------------------------------------------------------------------

COMPARISONS = [operator.eq, operator.ne, operator.lt, operator.le, operator.gt, operator.ge]


@pytest.mark.parametrize("compare", COMPARISONS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("other_kind", ["tensor", "scalar", "ndarray"])
def test_comparisons_give_bool_tensors_without_grad(compare, other_kind):
    left = np.array([1.0, 2.0, 3.0])
    right = np.array([3.0, 2.0, 1.0])
    other = {"tensor": Tensor(right, requires_grad=True), "scalar": 2.0, "ndarray": right}[other_kind]
    expected = compare(left, 2.0 if other_kind == "scalar" else right)
    result = compare(Tensor(left, requires_grad=True), other)
    assert isinstance(result, Tensor)
    assert result.dtype == np.bool_
    assert not result.requires_grad
    assert result.grad_fn is None
    np.testing.assert_array_equal(result.data, expected)


def test_tensors_hash_by_identity():
    a = Tensor([1.0])
    b = Tensor([1.0])
    assert len({a, b}) == 2
    assert {a: 1}[a] == 1


@pytest.mark.parametrize(
    ("combine", "name"),
    [
        (lambda array, t: array + t, "Add"),
        (lambda array, t: array - t, "Sub"),
        (lambda array, t: array * t, "Mul"),
        (lambda array, t: array / t, "Div"),
        (lambda array, t: array**t, "Pow"),
        (lambda array, t: array @ t, "MatMul"),
    ],
    ids=["add", "sub", "mul", "div", "pow", "matmul"],
)
def test_ndarray_on_the_left_gives_a_recorded_tensor(combine, name):
    array = np.array([[1.0, 2.0], [3.0, 4.0]])
    t = Tensor(np.array([[0.5, 1.5], [2.0, 1.0]]), requires_grad=True)
    result = combine(array, t)
    # numpy defers to Tensor's reflected method instead of making an object array of Tensors
    assert isinstance(result, Tensor)
    assert type(result.grad_fn).__name__ == name
    np.testing.assert_allclose(result.data, combine(array, t.data), rtol=1e-15)


def test_numpy_scalar_on_the_left_gives_a_tensor():
    t = Tensor([1.0, 2.0], requires_grad=True)
    result = np.float64(2.0) * t
    assert isinstance(result, Tensor)
    assert result.requires_grad


@pytest.mark.parametrize(
    "expression",
    [
        lambda t: t + np.float64(1.5),
        lambda t: t * np.int64(2),
        lambda t: np.float64(2) - t,
        lambda t: t / np.sqrt(16),  # the everyday case: a scale computed with numpy
        lambda t: t.clip(np.float64(0.1), np.float64(0.9)),
    ],
)
def test_numpy_scalars_never_upcast_float32_as_in_pytorch(expression):
    t = Tensor(np.ones(3, np.float32), requires_grad=True)
    out = expression(t)
    assert out.dtype == np.float32
    out.sum().backward()
    assert t.grad.dtype == np.float32


def test_a_0d_float64_array_still_promotes_as_in_numpy():
    t = Tensor(np.ones(3, np.float32))
    assert (t * np.array(2.0)).dtype == np.float64


# --------------------------------------------------------------------------------------------------------------
# float32 stays float32
# --------------------------------------------------------------------------------------------------------------

SCALAR_EXPRESSIONS = {
    "t + 1.0": lambda t: t + 1.0,
    "1.0 + t": lambda t: 1.0 + t,
    "t - 2": lambda t: t - 2,
    "2 - t": lambda t: 2 - t,
    "t * 2.5": lambda t: t * 2.5,
    "2.5 * t": lambda t: 2.5 * t,
    "t / 3.0": lambda t: t / 3.0,
    "3.0 / t": lambda t: 3.0 / t,
    "t ** 2": lambda t: t**2,
    "t ** 0.5": lambda t: t**0.5,
    "2.0 ** t": lambda t: 2.0**t,
    "maximum(t, 0.5)": lambda t: tg.maximum(t, 0.5),
    "minimum(0.5, t)": lambda t: tg.minimum(0.5, t),
    "where(t > 1, t, 0.0)": lambda t: tg.where(t > 1.0, t, 0.0),
    "clip(t, 0.0, 1.5)": lambda t: t.clip(0.0, 1.5),
}


@pytest.mark.parametrize("expression", SCALAR_EXPRESSIONS.values(), ids=SCALAR_EXPRESSIONS.keys())
@pytest.mark.parametrize("shape", [(), (3,)])
def test_python_scalar_never_upcasts_float32(expression, shape):
    t = Tensor(np.full(shape, 1.25, dtype=np.float32), requires_grad=True)
    assert expression(t).dtype == np.float32


def test_float32_end_to_end():
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((4, 3)).astype(np.float32))
    w = Tensor(rng.standard_normal((3, 2)).astype(np.float32), requires_grad=True)
    b = Tensor(np.zeros(2, dtype=np.float32), requires_grad=True)
    hidden = (x @ w + b).tanh()
    steps = [
        hidden,
        hidden.sigmoid(),
        hidden.relu(),
        hidden.exp(),
        (hidden * hidden + 1.0).sqrt().log(),
        abs(hidden) / 2.0,
        hidden**2,
        2.0**hidden,
        hidden.softmax(axis=1),
        hidden.log_softmax(axis=1),
        hidden.max(axis=0),
        hidden.min(axis=1, keepdims=True),
        hidden.mean(),
        hidden[1:, [0, 0]],
        hidden.reshape(-1).T,
        tg.maximum(hidden, 0.1),
        tg.where(hidden > 0, hidden, 0.0),
        tg.concatenate([hidden, hidden], axis=1),
        tg.stack([hidden, hidden]),
    ]
    for step in steps:
        assert step.dtype == np.float32
    loss = sum((step.sum() for step in steps), start=Tensor(np.float32(0.0)))
    assert loss.dtype == np.float32
    loss.backward()
    assert w.grad.dtype == np.float32
    assert b.grad.dtype == np.float32
    assert np.isfinite(w.grad).all()


def test_mixing_float32_and_float64_tensors_gives_float64():
    a = Tensor(np.ones(2, dtype=np.float32))
    b = Tensor(np.ones(2, dtype=np.float64))
    assert (a * b).dtype == np.float64
    assert (b + a).dtype == np.float64
