"""Backward semantics: seeding, accumulation, diamonds, graph release, aliasing, grad mode, custom Functions."""

from __future__ import annotations

import gc
import inspect
import re
import weakref

import numpy as np
import pytest

import tinygrad_nn as tg
from tinygrad_nn import Function, Tensor


def leaf(data) -> Tensor:
    return Tensor(np.array(data, dtype=np.float64), requires_grad=True)


# --------------------------------------------------------------------------------------------------------------
# Seeding backward
# --------------------------------------------------------------------------------------------------------------


def test_scalar_output_seeds_one():
    x = leaf([1.0, 2.0])
    (x * 3.0).sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 3.0])


def test_one_element_output_of_any_shape_seeds_one():
    x = leaf([[2.0]])
    (x * 5.0).backward()
    np.testing.assert_array_equal(x.grad, [[5.0]])


def test_non_scalar_output_needs_a_gradient():
    x = leaf(np.ones((2, 3)))
    with pytest.raises(RuntimeError, match=r"single-value output.*shape \(2, 3\).*gradient="):
        (x * 2.0).backward()
    assert x.grad is None


@pytest.mark.parametrize("gradient_shape", [(3,), (3, 2), (1, 2, 3), ()])
def test_gradient_of_the_wrong_shape_is_a_value_error(gradient_shape):
    x = leaf(np.ones((2, 3)))
    with pytest.raises(ValueError, match=rf"gradient of shape {re_shape(gradient_shape)} for a tensor of shape"):
        (x * 2.0).backward(gradient=np.ones(gradient_shape))


def re_shape(shape: tuple) -> str:
    """A shape as a regular expression that matches how Python prints it."""
    return str(shape).replace("(", r"\(").replace(")", r"\)")


def test_gradient_may_be_a_tensor_or_a_list():
    x = leaf([1.0, 2.0])
    (x * 2.0).backward(gradient=Tensor([1.0, 10.0]))
    np.testing.assert_array_equal(x.grad, [2.0, 20.0])
    x.grad = None
    (x * 2.0).backward(gradient=[1.0, -1.0])
    np.testing.assert_array_equal(x.grad, [2.0, -2.0])


def test_backward_on_a_tensor_without_grad_is_a_runtime_error():
    with pytest.raises(RuntimeError, match="does not require grad"):
        (Tensor([1.0]) * 2.0).backward()


def test_backward_on_a_leaf_root():
    x = leaf([1.0, 2.0])
    gradient = np.array([3.0, 4.0])
    x.backward(gradient=gradient)
    np.testing.assert_array_equal(x.grad, gradient)
    assert not np.shares_memory(x.grad, gradient)


def test_only_inputs_that_require_grad_get_one():
    w = leaf([1.0, 2.0])
    x = Tensor([3.0, 4.0])
    (w * x).sum().backward()
    np.testing.assert_array_equal(w.grad, [3.0, 4.0])
    assert x.grad is None


# --------------------------------------------------------------------------------------------------------------
# Accumulation, intermediates, diamonds
# --------------------------------------------------------------------------------------------------------------


def test_leaf_grads_accumulate_until_reset():
    x = leaf([1.0, 2.0])
    (x * x).sum().backward()
    (x * 3.0).sum().backward()
    np.testing.assert_array_equal(x.grad, 2 * x.data + 3.0)
    x.grad = None
    (x * 3.0).sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 3.0])
    x.zero_grad()
    assert x.grad is None


def test_intermediate_grads_are_not_kept():
    x = leaf([1.0, 2.0])
    hidden = x * 2.0
    out = hidden.exp()
    out.sum().backward()
    with pytest.warns(UserWarning, match=r"non-leaf.*retain_grad\(\)"):
        assert hidden.grad is None
    with pytest.warns(UserWarning, match="retain_grads"):
        assert out.grad is None
    np.testing.assert_allclose(x.grad, 2.0 * np.exp(2.0 * x.data), rtol=1e-15)


def test_tensor_used_twice():
    a = leaf([1.0, 2.0])
    b = leaf([3.0, 5.0])
    c = leaf([7.0, 11.0])
    (a * b + a * c).sum().backward()
    np.testing.assert_array_equal(a.grad, b.data + c.data)
    np.testing.assert_array_equal(b.grad, a.data)
    np.testing.assert_array_equal(c.grad, a.data)


@pytest.mark.parametrize(
    ("expression", "derivative"),
    [
        (lambda x: x + x, lambda x: np.full_like(x, 2.0)),
        (lambda x: x * x, lambda x: 2 * x),
        (lambda x: x - x, lambda x: np.zeros_like(x)),
        (lambda x: x / x, lambda x: np.zeros_like(x)),
        (lambda x: x**x, lambda x: x**x * (np.log(x) + 1)),
        (lambda x: tg.stack([x, x, x]).sum(axis=0), lambda x: np.full_like(x, 3.0)),
    ],
    ids=["x+x", "x*x", "x-x", "x/x", "x**x", "stack"],
)
def test_diamonds_on_one_leaf(expression, derivative):
    x = leaf([0.5, 1.5, 3.0])
    expression(x).sum().backward()
    np.testing.assert_allclose(x.grad, derivative(x.data), rtol=1e-14, atol=1e-15)


def test_diamond_through_an_intermediate():
    x = leaf([0.5, -1.0])
    hidden = x.exp()
    (hidden * hidden + hidden).sum().backward()
    # d/dx (e^2x + e^x) = 2 e^2x + e^x
    np.testing.assert_allclose(x.grad, 2 * np.exp(2 * x.data) + np.exp(x.data), rtol=1e-14)


def test_augmented_assignment_on_a_computed_tensor_makes_a_new_node():
    x = leaf([1.0, 2.0])
    t = x * 1.0
    first = t
    t += 1.0
    t *= t
    assert t is not first and t is not x
    np.testing.assert_array_equal(x.data, [1.0, 2.0])  # nothing was modified in place
    t.sum().backward()
    np.testing.assert_array_equal(x.grad, 2 * (x.data + 1.0))


@pytest.mark.parametrize("operator", ["+=", "-=", "*=", "/="])
def test_augmented_assignment_on_a_parameter_is_an_error_that_says_what_to_do(operator):
    w = leaf([1.0, 2.0])
    w.grad = np.array([0.5, 0.5])
    namespace = {"w": w}
    with pytest.raises(
        RuntimeError, match=rf"`{re.escape(operator)}` on a leaf tensor that requires grad.*w\.data.*no_grad.*optim"
    ):
        exec(f"w {operator} 0.1 * w.grad", namespace)
    assert namespace["w"] is w and w.is_leaf
    np.testing.assert_array_equal(w.data, [1.0, 2.0])


def test_micrograd_update_inside_no_grad_changes_the_parameter_in_place():
    w = leaf([1.0, 2.0])
    (w * w).sum().backward()
    before = w
    with tg.no_grad():
        w -= 0.1 * w.grad
    assert w is before and w.is_leaf and w.requires_grad
    np.testing.assert_allclose(w.data, [0.8, 1.6])
    w.grad = None
    (w * 3.0).sum().backward()  # still a parameter: the next step works
    np.testing.assert_array_equal(w.grad, [3.0, 3.0])


def test_nodes_keep_one_edge_per_input():
    w = leaf([1.0, 2.0])
    x = Tensor([3.0, 4.0])
    product = w * x
    out = product.exp()
    # To the leaf itself, nothing for data, and to the node that computed a computed input.
    assert product.grad_fn.parents[0] is w
    assert product.grad_fn.parents[1] is None
    assert out.grad_fn.parents[0] is product.grad_fn


# --------------------------------------------------------------------------------------------------------------
# Deep graphs and releasing the graph
# --------------------------------------------------------------------------------------------------------------


def test_chain_of_100000_ops_backward_without_recursion_error():
    x = leaf(1.0)
    out = x
    for _ in range(100_000):
        out = out + 0.5
    assert out.item() == 1.0 + 0.5 * 100_000
    out.backward()
    assert x.grad == 1.0
    # Dropping a deep graph that was never walked must not crash the interpreter either.
    unwalked = x
    for _ in range(100_000):
        unwalked = unwalked * 1.0
    del out, unwalked
    gc.collect()


def test_second_backward_without_retain_graph_raises():
    x = leaf([1.0, 2.0])
    out = (x * 2.0).exp().sum()
    out.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        out.backward()
    np.testing.assert_allclose(x.grad, 2.0 * np.exp(2.0 * x.data), rtol=1e-15)


def test_retain_graph_allows_a_second_backward():
    x = leaf([1.0, 2.0])
    out = (x * 2.0).exp().sum()
    out.backward(retain_graph=True)
    out.backward(retain_graph=True)
    np.testing.assert_allclose(x.grad, 2 * 2.0 * np.exp(2.0 * x.data), rtol=1e-15)
    out.backward()  # the last walk may free the graph
    with pytest.raises(RuntimeError, match="retain_graph"):
        out.backward()


def test_shared_subgraph_freed_by_the_first_backward():
    x = leaf([1.0, 2.0])
    hidden = x.exp()
    first = hidden.sum()
    second = (hidden * 2.0).sum()
    first.backward()
    with pytest.raises(RuntimeError, match=r"Exp.*retain_graph=True"):
        second.backward()


def test_graph_releases_intermediates_and_saved_arrays_after_backward():
    x = leaf([1.0, 2.0, 3.0])
    hidden = x.exp()
    hidden_ref = weakref.ref(hidden)
    saved_ref = weakref.ref(hidden.data)  # Exp saves its output, and Mul saves its inputs
    exp_node = hidden.grad_fn
    root = (hidden * 2.0).sum()
    mul_node = root.grad_fn.parents[0]
    del hidden
    gc.collect()
    assert saved_ref() is not None  # still needed for backward
    root.backward()
    gc.collect()
    assert hidden_ref() is None
    assert saved_ref() is None
    assert exp_node._saved is None
    assert mul_node._saved is None
    assert root.grad_fn is not None  # the skeleton stays, so the graph can still be drawn
    np.testing.assert_allclose(x.grad, 2.0 * np.exp(x.data), rtol=1e-15)


def test_retain_graph_keeps_saved_arrays():
    x = leaf([1.0, 2.0])
    hidden = x.exp()
    saved_ref = weakref.ref(hidden.data)
    root = hidden.sum() * 1.0
    del hidden
    root.backward(retain_graph=True)
    gc.collect()
    assert saved_ref() is not None


# --------------------------------------------------------------------------------------------------------------
# Leaf gradients never alias anything
# --------------------------------------------------------------------------------------------------------------

TWO_LEAF_EXPRESSIONS = {
    "a + b": lambda a, b: a + b,
    "a - b": lambda a, b: a - b,
    "b + a": lambda a, b: b + a,
    "reshape": lambda a, b: a.reshape(3, 2).reshape(2, 3) + b,
    "transpose": lambda a, b: a.T.T + b.T.T,
    "astype": lambda a, b: a.astype(np.float32).astype(np.float64) + b,
    "stack": lambda a, b: tg.stack([a, b]).sum(axis=0),
    "concatenate": lambda a, b: tg.concatenate([a, b], axis=1)[:, :3] + tg.concatenate([a, b], axis=1)[:, 3:],
    "getitem": lambda a, b: a[:, :] + b[...],
    "broadcast": lambda a, b: a + b[0:1],
    "where": lambda a, b: tg.where(np.ones((2, 3), dtype=bool), a, b) + b,
}


@pytest.mark.parametrize("expression", TWO_LEAF_EXPRESSIONS.values(), ids=TWO_LEAF_EXPRESSIONS.keys())
def test_leaf_grads_never_alias_each_other_or_the_gradient(expression, rng):
    a = Tensor(rng.standard_normal((2, 3)), requires_grad=True)
    b = Tensor(rng.standard_normal((2, 3)), requires_grad=True)
    gradient = rng.standard_normal((2, 3))
    gradient_before = gradient.copy()
    expression(a, b).backward(gradient=gradient)
    grads = [a.grad, b.grad]
    others = [gradient, a.data, b.data]
    assert a.grad is not b.grad
    for grad in grads:
        assert all(not np.shares_memory(grad, other) for other in others)
    assert not np.shares_memory(a.grad, b.grad)
    b_grad_before = b.grad.copy()
    a.grad += 1000.0  # an optimizer's in-place update of one gradient
    np.testing.assert_array_equal(b.grad, b_grad_before)
    np.testing.assert_array_equal(gradient, gradient_before)


def test_gradient_returned_as_a_saved_array_is_copied():
    class PassSaved(Function):
        @staticmethod
        def forward(ctx, x, y):
            ctx.save_for_backward(y)
            return x * y

        @staticmethod
        def backward(ctx, grad):
            (y,) = ctx.saved_tensors
            return y, None  # valid only for a gradient of ones, which this test passes

    x = leaf([1.0, 2.0])
    y_data = np.array([3.0, 4.0])
    PassSaved.apply(x, Tensor(y_data)).sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 4.0])
    x.grad *= 0.0
    np.testing.assert_array_equal(y_data, [3.0, 4.0])


# --------------------------------------------------------------------------------------------------------------
# dtypes of gradients
# --------------------------------------------------------------------------------------------------------------


def test_grad_dtype_follows_each_tensor_in_mixed_precision():
    a32 = Tensor(np.array([1.0, 2.0], dtype=np.float32), requires_grad=True)
    b64 = Tensor(np.array([3.0, 4.0]), requires_grad=True)
    c32 = Tensor(np.array([[0.5], [1.5]], dtype=np.float32), requires_grad=True)
    out = (a32 * b64 + c32).exp().sum()
    assert out.dtype == np.float64
    out.backward()
    assert a32.grad.dtype == np.float32
    assert b64.grad.dtype == np.float64
    assert c32.grad.dtype == np.float32
    assert c32.grad.shape == (2, 1)
    exps = np.exp(a32.data.astype(np.float64) * b64.data + c32.data.astype(np.float64))
    np.testing.assert_allclose(a32.grad, (exps * b64.data).sum(axis=0), rtol=1e-6)
    np.testing.assert_allclose(c32.grad, exps.sum(axis=1, keepdims=True), rtol=1e-6)


def test_float32_leaf_root_with_float64_gradient_keeps_float32():
    x = Tensor(np.array([1.0, 2.0], dtype=np.float32), requires_grad=True)
    x.backward(gradient=np.array([0.5, 0.25]))
    assert x.grad.dtype == np.float32


# --------------------------------------------------------------------------------------------------------------
# Grad mode
# --------------------------------------------------------------------------------------------------------------


def test_no_grad_context_manager():
    x = leaf([1.0, 2.0])
    assert tg.is_grad_enabled()
    with tg.no_grad():
        assert not tg.is_grad_enabled()
        y = x * 2.0
    assert tg.is_grad_enabled()
    assert not y.requires_grad
    assert y.is_leaf and y.grad_fn is None
    np.testing.assert_array_equal(y.data, [2.0, 4.0])


def test_no_grad_restores_the_mode_after_an_exception():
    with pytest.raises(ZeroDivisionError), tg.no_grad():
        _ = 1 / 0
    assert tg.is_grad_enabled()


def test_no_grad_decorator():
    @tg.no_grad()
    def double(t):
        """Double it."""
        assert not tg.is_grad_enabled()
        return t * 2.0

    assert tg.is_grad_enabled()
    assert not double(leaf([1.0])).requires_grad
    assert tg.is_grad_enabled()
    assert double.__name__ == "double"
    assert double.__doc__ == "Double it."


def test_leaves_created_under_no_grad_still_require_grad():
    with tg.no_grad():
        w = leaf([1.0])
    assert w.requires_grad
    (w * 3.0).sum().backward()
    np.testing.assert_array_equal(w.grad, [3.0])


def test_enable_grad_inside_no_grad():
    x = leaf([1.0])
    with tg.no_grad():
        with tg.enable_grad():
            assert tg.is_grad_enabled()
            y = x * 2.0
        assert not tg.is_grad_enabled()
        z = x * 2.0
    assert y.requires_grad
    assert not z.requires_grad


def test_enable_grad_decorator_inside_no_grad():
    @tg.enable_grad()
    def double(t):
        return t * 2.0

    with tg.no_grad():
        assert double(leaf([1.0])).requires_grad
        assert not tg.is_grad_enabled()


def test_set_grad_enabled_as_a_function():
    try:
        tg.set_grad_enabled(False)
        assert not tg.is_grad_enabled()
        assert not (leaf([1.0]) * 2.0).requires_grad
        tg.set_grad_enabled(True)
        assert tg.is_grad_enabled()
    finally:
        tg.set_grad_enabled(True)


@pytest.mark.parametrize("mode", [False, True])
def test_set_grad_enabled_as_a_context_manager(mode):
    with tg.no_grad():
        with tg.set_grad_enabled(mode):
            assert tg.is_grad_enabled() is mode
            y = leaf([1.0]) * 2.0
        assert not tg.is_grad_enabled()
    assert tg.is_grad_enabled()
    assert y.requires_grad is mode


def test_set_grad_enabled_as_a_decorator_does_not_change_the_mode_when_defined():
    @tg.set_grad_enabled(False)
    def double(t):
        return t * 2.0

    assert tg.is_grad_enabled()
    assert not double(leaf([1.0])).requires_grad
    assert tg.is_grad_enabled()


# --------------------------------------------------------------------------------------------------------------
# User-defined Functions
# --------------------------------------------------------------------------------------------------------------


class ScaledPower(Function):
    """``scale * x ** power * w``: saved arrays, ctx attributes, a number argument and a keyword option."""

    @staticmethod
    def forward(ctx, x, w, scale, power=2):
        ctx.save_for_backward(x, w)
        ctx.scale = scale
        ctx.power = power
        return scale * x**power * w

    @staticmethod
    def backward(ctx, grad):
        x, w = ctx.saved_tensors
        ctx.seen_needs_input_grad = ctx.needs_input_grad
        grad_x = grad * ctx.scale * ctx.power * x ** (ctx.power - 1) * w if ctx.needs_input_grad[0] else None
        grad_w = grad * ctx.scale * x**ctx.power if ctx.needs_input_grad[1] else None
        return grad_x, grad_w, None


def test_user_function_forward_and_backward():
    x = leaf([1.0, 2.0])
    w = Tensor([3.0, 5.0])
    out = ScaledPower.apply(x, w, 0.5, power=3)
    assert isinstance(out.grad_fn, ScaledPower)
    np.testing.assert_array_equal(out.data, 0.5 * x.data**3 * w.data)
    out.sum().backward()
    np.testing.assert_array_equal(x.grad, 0.5 * 3 * x.data**2 * w.data)
    assert w.grad is None
    # needs_input_grad: x yes, w (data) no, the number no
    assert out.grad_fn.seen_needs_input_grad == (True, False, False)
    assert out.grad_fn.scale == 0.5


def test_user_function_passes_gradcheck():
    x = leaf([0.5, 2.0])
    w = leaf([3.0, -1.0])
    assert tg.gradcheck(lambda a, b: ScaledPower.apply(a, b, 1.5, power=3), [x, w])


def test_user_function_saved_tensors_are_freed_after_backward():
    x = leaf([1.0, 2.0])
    out = ScaledPower.apply(x, Tensor([1.0, 1.0]), 1.0)
    out.sum().backward()
    with pytest.raises(RuntimeError, match=r"ScaledPower saved for backward were freed.*retain_graph=True"):
        _ = out.grad_fn.saved_tensors


def test_user_function_is_not_recorded_under_no_grad():
    with tg.no_grad():
        out = ScaledPower.apply(leaf([1.0]), leaf([2.0]), 1.0)
    assert not out.requires_grad


class SplitScaled(Function):
    """Two outputs: the first `k` elements and the rest, each times `scale`."""

    @staticmethod
    def forward(ctx, x, k, *, scale=1.0):
        ctx.k = k
        ctx.scale = scale
        return x[:k] * scale, x[k:] * scale

    @staticmethod
    def backward(ctx, grad_head, grad_tail):
        return np.concatenate([grad_head, grad_tail]) * ctx.scale, None


def test_user_function_with_several_outputs():
    x = leaf([1.0, 2.0, 3.0, 4.0])
    head, tail = SplitScaled.apply(x, 1, scale=2.0)
    assert head.grad_fn is tail.grad_fn
    assert isinstance(head.grad_fn, SplitScaled)
    np.testing.assert_array_equal(head.data, [2.0])
    np.testing.assert_array_equal(tail.data, [4.0, 6.0, 8.0])
    (head.sum() * 10.0 + tail.sum()).backward()
    np.testing.assert_array_equal(x.grad, [20.0, 2.0, 2.0, 2.0])


def test_user_function_unused_output_gets_a_zero_gradient():
    x = leaf([1.0, 2.0, 3.0])
    _, tail = SplitScaled.apply(x, 2, scale=3.0)
    tail.backward(gradient=np.array([5.0]))
    np.testing.assert_array_equal(x.grad, [0.0, 0.0, 15.0])


class BroadcastAdd(Function):
    """``x + y`` whose backward returns the output-shaped gradient for both: the engine reduces it."""

    @staticmethod
    def forward(ctx, x, y):
        return x + y

    @staticmethod
    def backward(ctx, grad):
        return grad, grad


def test_user_function_broadcast_gradient_is_reduced_by_the_engine():
    x = leaf([1.0, 2.0, 3.0])
    y = leaf(np.zeros((2, 1, 1)))
    out = BroadcastAdd.apply(x, y)
    assert out.shape == (2, 1, 3)
    gradient = np.arange(6.0).reshape(2, 1, 3)
    out.backward(gradient=gradient)
    np.testing.assert_array_equal(x.grad, gradient.sum(axis=(0, 1)))
    np.testing.assert_array_equal(y.grad, gradient.sum(axis=2, keepdims=True))
    assert not np.shares_memory(x.grad, y.grad)


def make_function(backward_result):
    """A Function of two inputs whose backward returns `backward_result(grad)`."""

    class Broken(Function):
        @staticmethod
        def forward(ctx, x, y):
            return x * y

        @staticmethod
        def backward(ctx, grad):
            return backward_result(grad)

    return Broken


def test_wrong_number_of_gradients_is_a_backward_error():
    broken = make_function(lambda grad: grad)
    out = broken.apply(leaf([1.0, 2.0]), leaf([3.0, 4.0]))
    with pytest.raises(tg.BackwardError, match=r"Broken.backward returned 1 gradient\(s\) for 2 input\(s\)"):
        out.sum().backward()


@pytest.mark.parametrize("catch_as", [tg.BackwardError, ValueError])
def test_unreducible_gradient_shape_names_the_function_and_both_shapes(catch_as):
    broken = make_function(lambda grad: (grad, np.ones((5,))))
    out = broken.apply(leaf([1.0, 2.0]), leaf([3.0, 4.0]))
    message = r"Broken\.backward returned a gradient of shape \(5,\) for input 1, whose shape is \(2,\)"
    with pytest.raises(catch_as, match=message):
        out.sum().backward()


def test_unreducible_gradient_needing_a_cast_names_the_right_input():
    broken = make_function(lambda grad: (grad, np.ones((5,), dtype=np.float32)))
    out = broken.apply(leaf([1.0, 2.0]), leaf([3.0, 4.0]))
    with pytest.raises(tg.BackwardError, match=r"shape \(5,\) for input 1, whose shape is \(2,\)"):
        out.sum().backward()


@pytest.mark.parametrize("catch_as", [tg.BackwardError, TypeError])
def test_integer_gradient_is_a_type_error(catch_as):
    broken = make_function(lambda grad: (grad, np.ones(2, dtype=np.int64)))
    out = broken.apply(leaf([1.0, 2.0]), leaf([3.0, 4.0]))
    with pytest.raises(catch_as, match=r"Broken.backward returned a gradient of dtype int64 for input 1"):
        out.sum().backward()


def test_tensor_as_gradient_is_a_type_error():
    broken = make_function(lambda grad: (Tensor(grad), None))
    out = broken.apply(leaf([1.0, 2.0]), leaf([3.0, 4.0]))
    with pytest.raises(TypeError, match="returned a Tensor for input 0; return an ndarray"):
        out.sum().backward()


def test_forward_returning_a_tensor_is_a_type_error():
    class ReturnsTensor(Function):
        @staticmethod
        def forward(ctx, x):
            return Tensor(x)

    with pytest.raises(TypeError, match=r"ReturnsTensor\.forward returned a Tensor"):
        ReturnsTensor.apply(leaf([1.0]))


# --------------------------------------------------------------------------------------------------------------
# Anomaly mode
# --------------------------------------------------------------------------------------------------------------


def test_anomaly_in_forward_names_the_op_and_the_calling_line():
    with tg.detect_anomaly(), pytest.raises(tg.AnomalyError) as caught:
        line = inspect.currentframe().f_lineno + 1
        Tensor([-1.0], requires_grad=True).log()
    message = str(caught.value)
    assert "Log forward produced 1 NaN" in message
    assert f"{__file__}:{line}" in message
    assert isinstance(caught.value, FloatingPointError)
    assert isinstance(caught.value, RuntimeError)


def test_anomaly_in_backward_names_the_op():
    x = leaf([0.0, 1.0])
    with tg.detect_anomaly():
        line = inspect.currentframe().f_lineno + 1
        out = (x.sqrt() * 0.0).sum()  # forward is finite; d sqrt at 0 is 0 * inf = NaN
        with pytest.raises(tg.AnomalyError, match="Sqrt backward produced 1 NaN") as caught:
            out.backward()
    assert f"{__file__}:{line}" in str(caught.value)


def test_anomaly_in_a_user_backward_names_the_function():
    nan_backward = make_function(lambda grad: (grad * np.nan, None))
    with tg.detect_anomaly():
        out = nan_backward.apply(leaf([1.0]), Tensor([2.0]))
        with pytest.raises(tg.AnomalyError, match="Broken backward produced 1 NaN"):
            out.sum().backward()


def test_anomaly_mode_lets_nan_inputs_through():
    # Only an op that makes NaN or inf from finite inputs is the culprit.
    with tg.detect_anomaly():
        out = Tensor([np.nan, 1.0], requires_grad=True).exp()
    assert np.isnan(out.data[0])


def test_anomaly_mode_is_restored_on_exit():
    with tg.detect_anomaly():
        pass
    with np.errstate(invalid="ignore"):
        out = Tensor([-1.0], requires_grad=True).log()
    assert np.isnan(out.data).all()


def test_without_anomaly_mode_nan_is_no_error():
    x = leaf([0.0, 1.0])
    # numpy's own warnings are not what is tested here
    with np.errstate(invalid="ignore", divide="ignore"):
        assert np.isnan(Tensor([-1.0], requires_grad=True).log().data).all()
        (x.sqrt() * 0.0).sum().backward()
    assert np.isnan(x.grad[0])


def test_backward_order_is_the_order_backward_calls_the_nodes():
    from tinygrad_nn.autograd import backward_order

    called = []

    class Tag(tg.Function):
        @staticmethod
        def forward(ctx, x, name=""):
            ctx.name_tag = name
            return x * 1.0

        @staticmethod
        def backward(ctx, grad):
            called.append(ctx)
            return grad

    x = tg.Tensor(np.ones(3), requires_grad=True)
    a = Tag.apply(x, name="a")
    b = Tag.apply(a, name="b")
    c = Tag.apply(a, name="c")
    d = Tag.apply(Tag.apply(b, name="b2") + c, name="d")
    out = Tag.apply(d * Tag.apply(c, name="c2"), name="out").sum()
    order = backward_order(out)
    out.backward()
    tagged = [node for node in order if isinstance(node, Tag)]
    assert [n.name_tag for n in tagged] == [n.name_tag for n in called]
    assert len(order) == len(set(order))
    assert backward_order(x) == []


def test_trace_ops_records_each_op_with_its_inputs_and_options():
    from tinygrad_nn.autograd import trace_ops

    x = tg.Tensor(np.ones((2, 3)))
    w = tg.Tensor(np.ones((3, 4)), requires_grad=True)
    with trace_ops() as records:
        h = x @ w
        out = h.sum(axis=1, keepdims=True)
        with tg.no_grad():
            (h * 2).exp()
    after = x + 1  # outside the block: not recorded
    assert [r.function.__name__ for r in records] == ["MatMul", "Sum", "Mul", "Exp"]
    assert records[0].inputs[0] is x and records[0].inputs[1] is w and records[0].outputs is h
    assert records[1].inputs[0] is h and records[1].options == {"axis": 1, "keepdims": True}
    assert records[1].outputs is out
    assert after.shape == (2, 3) and len(records) == 4
