"""Higher-order autograd as a user meets it: `tg.grad`, ``backward(create_graph=True)``, freeing the graph, the two
walks agreeing bit for bit, custom Functions at second order, and a gradient penalty against PyTorch.

Per-op second derivatives are in test_higher_order_ops.py, the transforms of `tinygrad_nn.func` in test_func.py
and hooks in test_hooks.py.
"""

from __future__ import annotations

import gc
import threading
import weakref
from typing import ClassVar
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import mutually_broadcastable_shapes

import tinygrad_nn as tg
from tinygrad_nn import DoubleBackwardError, Function, GradcheckError, Tensor, autograd, nn, once_differentiable, optim
from tinygrad_nn.functions import xp

TOLERANCE = {"rtol": 1e-9, "atol": 1e-11}


def leaf(values, dtype=np.float64) -> Tensor:
    return Tensor(np.array(values, dtype=dtype), requires_grad=True)


# --------------------------------------------------------------------------------------------------------------
# tg.grad: PyTorch's torch.autograd.grad
# --------------------------------------------------------------------------------------------------------------


def test_grad_returns_a_tuple_of_tensors_and_leaves_dot_grad_alone():
    x, w = leaf([1.0, 2.0]), leaf([3.0, -1.0])
    w.grad = np.array([5.0, 5.0])
    result = tg.grad((x * w).sum(), [x, w])
    assert isinstance(result, tuple) and len(result) == 2
    assert all(isinstance(r, Tensor) and not r.requires_grad for r in result)
    np.testing.assert_array_equal(result[0].data, [3.0, -1.0])
    np.testing.assert_array_equal(result[1].data, [1.0, 2.0])
    assert x.grad is None
    np.testing.assert_array_equal(w.grad, [5.0, 5.0])


def test_grad_takes_a_single_tensor_or_sequences_for_outputs_and_inputs():
    x = leaf([1.0, 2.0])
    (single,) = tg.grad((x**2).sum(), x)
    (listed,) = tg.grad([(x**2).sum()], [x])
    (tupled,) = tg.grad(((x**2).sum(),), (x,))
    for result in (single, listed, tupled):
        np.testing.assert_array_equal(result.data, [2.0, 4.0])


def test_grad_results_do_not_share_memory_with_the_seed_or_each_other():
    x = leaf([1.0, 2.0])
    seed = np.array([1.0, 1.0])
    first, second = tg.grad(x + 0.0, [x, x], seed)
    assert not np.shares_memory(first.data, seed) and not np.shares_memory(first.data, second.data)
    first.data[0] = 99.0
    assert second.data[0] == 1.0 and seed[0] == 1.0


def test_grad_with_respect_to_computed_tensors():
    x = leaf([1.0, 2.0])
    hidden = x * 3.0
    out = (hidden**2).sum()
    d_hidden, d_x = tg.grad(out, [hidden, x])
    np.testing.assert_array_equal(d_hidden.data, 2 * hidden.data)
    np.testing.assert_array_equal(d_x.data, 18 * x.data)
    with pytest.warns(UserWarning, match="retain_grad"):
        assert hidden.grad is None


def test_grad_with_respect_to_the_output_itself_is_the_seed():
    x = leaf([1.0, 2.0])
    y = x * 3.0
    (same,) = tg.grad(y, y, np.array([0.5, -2.0]))
    np.testing.assert_array_equal(same.data, [0.5, -2.0])


def test_grad_with_respect_to_one_output_of_a_multi_output_op():
    x = leaf([1.0, 2.0, 3.0, 4.0])
    first, second = x.split(2)
    out = (first * second).sum() + (second**2).sum()
    (d_second,) = tg.grad(out, second)
    np.testing.assert_array_equal(d_second.data, first.data + 2 * second.data)


def test_grad_of_several_outputs_sums_their_vector_jacobian_products():
    x = leaf([1.0, 2.0])
    a, b = x**2, x.exp()
    u, v = np.array([1.0, -1.0]), np.array([0.5, 2.0])
    (both,) = tg.grad([a, b], x, [u, v])
    np.testing.assert_allclose(both.data, u * 2 * x.data + v * np.exp(x.data), rtol=1e-15)


def test_grad_outputs_of_none_for_one_element_outputs_among_others():
    x = leaf([1.0, 2.0])
    (result,) = tg.grad([(x**2).sum(), x * 3.0], x, [None, np.ones(2)])
    np.testing.assert_array_equal(result.data, 2 * x.data + 3.0)


def test_grad_outputs_that_require_grad_can_be_differentiated_under_create_graph():
    x = leaf([1.0, 2.0])
    u = leaf([0.5, -1.0])
    (vjp,) = tg.grad(x.exp(), x, u, create_graph=True)  # u * exp(x)
    d_x, d_u = tg.grad((vjp * vjp).sum(), [x, u])
    np.testing.assert_allclose(d_u.data, 2 * u.data * np.exp(2 * x.data), rtol=1e-14)
    np.testing.assert_allclose(d_x.data, 2 * u.data**2 * np.exp(2 * x.data), rtol=1e-14)


def test_grad_of_the_same_input_twice_gives_it_twice():
    x = leaf([1.0, 2.0])
    first, second = tg.grad((x**2).sum(), [x, x])
    np.testing.assert_array_equal(first.data, second.data)
    np.testing.assert_array_equal(first.data, [2.0, 4.0])


def test_grad_of_an_input_used_twice_adds_both_paths():
    x = leaf([1.0, 2.0])
    (result,) = tg.grad((x * x.exp() + x).sum(), x)
    np.testing.assert_allclose(result.data, np.exp(x.data) * (1 + x.data) + 1, rtol=1e-15)


def test_allow_unused_gives_none_for_an_input_the_outputs_do_not_depend_on():
    x, unused = leaf([1.0]), leaf([2.0])
    d_x, d_unused = tg.grad((x * 2.0).sum(), [x, unused], allow_unused=True)
    np.testing.assert_array_equal(d_x.data, [2.0])
    assert d_unused is None


def test_an_unused_input_is_an_error_naming_it_and_allow_unused():
    x, unused = leaf([1.0]), leaf([[2.0, 3.0]])
    with pytest.raises(RuntimeError, match=r"input 1 \(shape \(1, 2\)\) was not used.*allow_unused=True"):
        tg.grad((x * 2.0).sum(), [x, unused])


def test_an_input_that_does_not_require_grad_is_an_error():
    x = leaf([1.0])
    constant = Tensor(np.array([2.0, 3.0]))
    with pytest.raises(RuntimeError, match=r"input 1 \(shape \(2,\)\) does not require grad.*requires_grad=True"):
        tg.grad((x * constant).sum(), [x, constant])


def test_an_output_that_does_not_require_grad_is_an_error():
    x = leaf([1.0])
    with pytest.raises(RuntimeError, match=r"output 1 \(shape \(2,\)\) does not require grad"):
        tg.grad([(x * 2.0).sum(), Tensor(np.ones(2))], x, [None, np.ones(2)])
    with tg.no_grad():
        frozen = (x * 2.0).sum()
    with pytest.raises(RuntimeError, match="no_grad"):
        tg.grad(frozen, x)


def test_mismatched_grad_outputs_are_errors_with_counts_and_shapes():
    x = leaf([1.0, 2.0])
    with pytest.raises(ValueError, match="got 2 grad_outputs for 1 outputs"):
        tg.grad(x * 2.0, x, [np.ones(2), np.ones(2)])
    with pytest.raises(ValueError, match=r"shape \(3,\).*shape \(2,\)"):
        tg.grad(x * 2.0, x, np.ones(3))
    with pytest.raises(ValueError, match=r"shape \(3,\).*shape \(2,\)"):
        tg.grad(x * 2.0, x, Tensor(np.ones(3), requires_grad=True), create_graph=True)
    with pytest.raises(RuntimeError, match=r"single-value output.*shape \(2,\)"):
        tg.grad(x * 2.0, x)


def test_grad_outputs_errors_name_grad_outputs():
    x = leaf([1.0, 2.0])
    for call in (lambda: tg.grad(x * 2.0, x, np.ones(3)), lambda: tg.grad(x * 2.0, x)):
        with pytest.raises((ValueError, RuntimeError)) as error:
            call()
        assert "grad_outputs" in str(error.value), str(error.value)


@pytest.mark.parametrize(
    ("outputs", "inputs", "message"),
    [("x", 3, "inputs must be Tensors; item 0 is a int"), ("x", [], "inputs is empty"),
     (np.ones(2), "x", "outputs must be Tensors; item 0 is a ndarray"), ([], "x", "outputs is empty")],
)  # fmt: skip
def test_grad_arguments_that_are_not_tensors_are_errors(outputs, inputs, message):
    x = leaf([1.0, 2.0])
    outputs = (x * 2.0).sum() if isinstance(outputs, str) else outputs
    inputs = x if isinstance(inputs, str) else inputs
    with pytest.raises((TypeError, ValueError), match=message):
        tg.grad(outputs, inputs)


def test_retain_graph_defaults_to_false_so_a_second_grad_through_the_graph_fails():
    x = leaf([1.0, 2.0])
    out = (x.exp() * x).sum()
    tg.grad(out, x)
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        tg.grad(out, x)


def test_retain_graph_true_allows_a_second_grad_with_the_same_result():
    x = leaf([1.0, 2.0])
    out = (x.exp() * x).sum()
    (first,) = tg.grad(out, x, retain_graph=True)
    (second,) = tg.grad(out, x)
    np.testing.assert_array_equal(first.data, second.data)


def test_create_graph_retains_the_graph_by_default_and_retain_graph_false_overrides_it():
    x = leaf([1.0, 2.0])
    out = (x**3).sum()
    tg.grad(out, x, create_graph=True)
    (again,) = tg.grad(out, x)
    np.testing.assert_array_equal(again.data, 3 * x.data**2)
    out = (x**3).sum()
    (gradient,) = tg.grad(out, x, create_graph=True, retain_graph=False)
    (second,) = tg.grad(gradient.sum(), x)  # the gradient's own graph is new, so it still works
    np.testing.assert_array_equal(second.data, 6 * x.data)
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        tg.grad(out, x)


def test_grad_with_create_graph_works_inside_no_grad_as_in_pytorch():
    x = leaf([1.0, 2.0])
    out = (x**3).sum()
    with tg.no_grad():
        (gradient,) = tg.grad(out, x, create_graph=True)
        assert not tg.is_grad_enabled()
    assert gradient.requires_grad
    (second,) = tg.grad(gradient.sum(), x)
    np.testing.assert_array_equal(second.data, 6 * x.data)


def test_grad_mode_is_restored_after_a_backward_that_raises():
    class Broken(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, grad):
            raise ValueError("broken on purpose")

    x = leaf([1.0])
    for create_graph in (False, True):
        with pytest.raises(ValueError, match="broken on purpose"):
            tg.grad(Broken.apply(x).sum(), x, create_graph=create_graph)
        assert tg.is_grad_enabled()
    out = Broken.apply(x).sum()
    with tg.no_grad():
        with pytest.raises(ValueError, match="broken on purpose"):
            tg.grad(out, x, create_graph=True)  # turns recording on for its walk, then must turn it off again
        assert not tg.is_grad_enabled()
    assert tg.is_grad_enabled()


def test_grad_results_are_connected_only_under_create_graph():
    x = leaf([1.0, 2.0])
    (plain,) = tg.grad((x**3).sum(), x)
    (connected,) = tg.grad((x**3).sum(), x, create_graph=True)
    assert not plain.requires_grad and plain.is_leaf
    assert connected.requires_grad and connected.grad_fn is not None


def test_grad_create_graph_of_a_gradient_that_does_not_depend_on_the_input_is_a_constant():
    x = leaf([1.0, 2.0])
    (slope,) = tg.grad((x * 3.0).sum(), x, create_graph=True)
    np.testing.assert_array_equal(slope.data, [3.0, 3.0])
    (second,) = tg.grad((x * 3.0).sum() + (slope * x).sum(), x)  # slope is a constant: the second term is linear
    np.testing.assert_array_equal(second.data, [6.0, 6.0])


def test_grad_outputs_that_require_grad_are_constants_without_create_graph():
    x, u = leaf([1.0, 2.0]), leaf([0.5, -1.0])
    (result,) = tg.grad(x * 2.0, x, u)
    assert not result.requires_grad
    np.testing.assert_array_equal(result.data, 2 * u.data)


def test_grad_of_a_leaf_with_respect_to_itself_is_the_seed():
    x = leaf([1.0, 2.0])
    (result,) = tg.grad(x, x, np.array([3.0, 4.0]))
    np.testing.assert_array_equal(result.data, [3.0, 4.0])


def test_anomaly_mode_names_the_op_of_a_second_derivative_that_becomes_infinite():
    x = leaf([0.0, 1.0])
    with tg.detect_anomaly():
        (gradient,) = tg.grad((x**1.5).sum(), x, create_graph=True)  # 1.5 sqrt(x): finite at 0
        np.testing.assert_array_equal(gradient.data, [0.0, 1.5])
        with pytest.raises(tg.AnomalyError, match=r"Pow backward produced 1 inf.*test_higher_order\.py"):
            tg.grad(gradient.sum(), x)  # 0.75 / sqrt(x): infinite at 0


@pytest.mark.torch
def test_third_derivative_of_an_mlp_along_a_direction_matches_pytorch(torch, rng):
    weights = [rng.standard_normal((3, 4)) * 0.7, rng.standard_normal(4) * 0.2, rng.standard_normal((4, 1)) * 0.7]
    x_values, direction = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))

    def third(make, grad_fn):
        w1, b1, w2 = (make(w) for w in weights)
        x = make(x_values, requires_grad=True)
        v = make(direction)
        value = ((x @ w1 + b1).tanh() @ w2).sigmoid().sum()
        for _ in range(3):  # v . grad(v . grad(v . grad f))
            (gradient,) = grad_fn(value, x, create_graph=True)
            value = (gradient * v).sum()
        return value

    mine = third(lambda a, requires_grad=False: Tensor(a, requires_grad=requires_grad), tg.grad)
    theirs = third(lambda a, requires_grad=False: torch.tensor(a, requires_grad=requires_grad), torch.autograd.grad)
    np.testing.assert_allclose(mine.item(), theirs.item(), **TOLERANCE)


# --------------------------------------------------------------------------------------------------------------
# backward(create_graph=True), and .grad as a Tensor
# --------------------------------------------------------------------------------------------------------------


def test_backward_create_graph_makes_dot_grad_a_tensor_that_can_be_differentiated():
    x = leaf([1.0, 2.0])
    (x**3).sum().backward(create_graph=True)
    assert isinstance(x.grad, Tensor) and x.grad.requires_grad
    np.testing.assert_array_equal(x.grad.data, 3 * x.data**2)
    (second,) = tg.grad(x.grad.sum(), x)
    np.testing.assert_array_equal(second.data, 6 * x.data)


def test_backward_create_graph_twice_accumulates_into_a_tensor_grad():
    x = leaf([1.0, 2.0])
    out = (x**3).sum()
    out.backward(create_graph=True)
    out.backward(create_graph=True)
    assert isinstance(x.grad, Tensor)
    np.testing.assert_array_equal(x.grad.data, 6 * x.data**2)
    (second,) = tg.grad(x.grad.sum(), x)
    np.testing.assert_array_equal(second.data, 12 * x.data)


def test_plain_backward_after_a_create_graph_one_keeps_a_tensor_grad_with_the_sum():
    # PyTorch's .grad stays a Tensor; the plain backward records nothing, so the sum has no graph.
    x = leaf([1.0, 2.0])
    out = (x**3).sum()
    out.backward(create_graph=True)
    out.backward()
    assert isinstance(x.grad, Tensor) and not x.grad.requires_grad
    np.testing.assert_array_equal(x.grad.data, 6 * x.data**2)
    # The same through the general walk (a hook sends backward there) and for a leaf that is the root.
    y = leaf([3.0])
    y.register_hook(lambda g: g)
    (y * y).sum().backward(create_graph=True)
    (y * y).sum().backward()
    assert isinstance(y.grad, Tensor)
    np.testing.assert_array_equal(y.grad.data, [12.0])
    z = leaf(2.0)
    z.backward(create_graph=True)
    z.backward()
    assert isinstance(z.grad, Tensor)
    np.testing.assert_array_equal(z.grad.data, 2.0)


def test_plain_backward_onto_a_tensor_grad_matches_pytorch(torch):
    x = leaf([1.0, 2.0])
    (x**3).sum().backward(create_graph=True)
    (x**3).sum().backward()
    t = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    (t**3).sum().backward(create_graph=True)
    (t**3).sum().backward()
    np.testing.assert_array_equal(x.grad.data, t.grad.detach().numpy())


def test_create_graph_backward_after_a_plain_one_adds_to_it_as_a_tensor():
    x = leaf([1.0, 2.0])
    out = (x**3).sum()
    out.backward(retain_graph=True)
    out.backward(create_graph=True)
    assert isinstance(x.grad, Tensor)
    np.testing.assert_array_equal(x.grad.data, 6 * x.data**2)
    (second,) = tg.grad(x.grad.sum(), x)  # only the recorded half depends on x
    np.testing.assert_array_equal(second.data, 6 * x.data)


def test_backward_create_graph_retains_the_graph_by_default():
    x = leaf([1.0, 2.0])
    out = (x.exp() * x).sum()
    out.backward(create_graph=True)
    x.grad = None
    out.backward()
    np.testing.assert_allclose(x.grad, np.exp(x.data) * (1 + x.data), rtol=1e-15)
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        out.backward()


def test_backward_create_graph_with_retain_graph_false_frees_the_graph():
    x = leaf([1.0, 2.0])
    out = (x**3).sum()
    out.backward(create_graph=True, retain_graph=False)
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        out.backward()
    (second,) = tg.grad(x.grad.sum(), x)  # the gradient's own graph is still there
    np.testing.assert_array_equal(second.data, 6 * x.data)


def test_backward_inputs_gives_only_those_a_grad():
    x, w = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    (x * w).sum().backward(inputs=[x])
    np.testing.assert_array_equal(x.grad, [3.0, 4.0])
    assert w.grad is None
    (x * w).sum().backward(inputs=w)
    np.testing.assert_array_equal(w.grad, [1.0, 2.0])
    np.testing.assert_array_equal(x.grad, [3.0, 4.0])  # untouched the second time


def test_backward_inputs_accumulates_like_backward():
    x, w = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    out = (x * w).sum()
    out.backward(inputs=[x], retain_graph=True)
    out.backward(inputs=[x])
    np.testing.assert_array_equal(x.grad, [6.0, 8.0])


def test_backward_inputs_with_a_computed_tensor_gives_it_a_grad_and_stops_there():
    x = leaf([1.0, 2.0])
    hidden = x * 2.0
    (hidden**2).sum().backward(inputs=[hidden])
    np.testing.assert_array_equal(hidden._grad, [4.0, 8.0])
    assert x.grad is None


@pytest.mark.torch
def test_backward_inputs_with_a_computed_tensor_matches_pytorch(torch):
    x = leaf([1.0, 2.0])
    hidden = x * 2.0
    (hidden**2).sum().backward(inputs=[hidden])
    tx = torch.tensor([1.0, 2.0], requires_grad=True)
    t_hidden = tx * 2.0
    (t_hidden**2).sum().backward(inputs=[t_hidden])
    np.testing.assert_array_equal(hidden._grad, t_hidden.grad.numpy())
    assert tx.grad is None and x.grad is None


def test_backward_inputs_with_create_graph_gives_a_tensor_grad():
    x, w = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    (x * x * w).sum().backward(inputs=[x], create_graph=True)
    assert isinstance(x.grad, Tensor) and w.grad is None
    (d_w,) = tg.grad(x.grad.sum(), w)  # d/dw of 2 x w
    np.testing.assert_array_equal(d_w.data, 2 * x.data)


def test_backward_inputs_that_do_not_require_grad_are_an_error():
    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match=r"input 0 \(shape \(2,\)\) does not require grad"):
        (x * 2.0).sum().backward(inputs=[Tensor(np.ones(2))])


def test_dot_grad_assignment_accepts_a_tensor_of_the_right_shape_and_dtype():
    x = leaf([1.0, 2.0])
    x.grad = Tensor(np.array([1.0, 1.0]))
    (x * 3.0).sum().backward()
    np.testing.assert_array_equal(np.asarray(x.grad), [4.0, 4.0])
    with pytest.raises(ValueError, match="shape"):
        x.grad = Tensor(np.ones(3))


@pytest.mark.parametrize(
    "make",
    [
        lambda p: optim.SGD(p, lr=0.1),
        lambda p: optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=0.01),
        lambda p: optim.Adam(p, lr=0.1),
        lambda p: optim.AdamW(p, lr=0.1),
    ],
    ids=["SGD", "SGD-momentum", "Adam", "AdamW"],
)
def test_optimizers_step_after_backward_create_graph_as_after_a_plain_backward(make):
    def run(create_graph):
        model = nn.Linear(2, 1)
        model.weight.data[...] = [[0.5, -0.25]]
        model.bias.data[...] = [0.1]
        optimizer = make(model.parameters())
        for _ in range(2):
            optimizer.zero_grad(set_to_none=False) if model.weight.grad is not None else optimizer.zero_grad()
            (model(Tensor(np.array([[1.0, 2.0], [3.0, -1.0]]))) ** 2).sum().backward(create_graph=create_graph)
            optimizer.step()
        assert type(model.weight.data) is np.ndarray
        return model.weight.data.copy(), model.bias.data.copy()

    plain, recorded = run(False), run(True)
    for a, b in zip(plain, recorded):
        np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------------------------------------------
# The graph is freed
# --------------------------------------------------------------------------------------------------------------


@pytest.fixture
def no_cyclic_gc():
    """Reference counting alone must free the graph: the cyclic collector is off during the test."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def build_chain(x: Tensor):
    """An output whose nodes saved an intermediate array; returns the output and weak references to check."""
    hidden = x.exp()
    saved = weakref.ref(hidden.data)  # Exp keeps it as its output, Mul keeps it as both inputs
    out = (hidden * hidden).sum()
    nodes = [weakref.ref(out.grad_fn), weakref.ref(hidden.grad_fn)]
    return out, saved, nodes


def test_a_plain_backward_frees_the_saved_arrays_at_once(no_cyclic_gc):
    x = leaf([0.5, 1.0, 2.0])
    out, saved, nodes = build_chain(x)
    assert saved() is not None
    out.backward()
    assert saved() is None, "the saved intermediate array outlived backward"
    assert all(node() is not None for node in nodes), "the skeleton stays while the output is alive"
    del out
    assert all(node() is None for node in nodes), "the nodes outlived the output"


def test_grad_without_create_graph_frees_the_saved_arrays(no_cyclic_gc):
    x = leaf([0.5, 1.0, 2.0])
    out, saved, nodes = build_chain(x)
    tg.grad(out, x)
    assert saved() is None
    del out
    assert all(node() is None for node in nodes)


def test_backward_create_graph_frees_everything_once_the_results_are_dropped(no_cyclic_gc):
    x = leaf([0.5, 1.0, 2.0])
    out, saved, nodes = build_chain(x)
    out.backward(create_graph=True)
    gradient_node = weakref.ref(x.grad.grad_fn)
    del out
    assert saved() is not None, "x.grad's graph needs the saved array"
    x.grad = None
    assert saved() is None and gradient_node() is None
    assert all(node() is None for node in nodes)


def test_grad_create_graph_frees_everything_once_the_results_are_dropped(no_cyclic_gc):
    x = leaf([0.5, 1.0, 2.0])
    out, saved, nodes = build_chain(x)
    (gradient,) = tg.grad(out, x, create_graph=True)
    del out
    (second,) = tg.grad(gradient.sum(), x)
    np.testing.assert_allclose(second.data, 4 * np.exp(2 * x.data), rtol=1e-14)
    gradient_node = weakref.ref(gradient.grad_fn)
    del gradient
    assert saved() is None and gradient_node() is None
    assert all(node() is None for node in nodes)


def test_a_second_order_gradient_frees_its_own_graph(no_cyclic_gc):
    x = leaf([0.5, 1.0])
    (gradient,) = tg.grad((x**4).sum(), x, create_graph=True)
    node = weakref.ref(gradient.grad_fn)
    (second,) = tg.grad(gradient.sum(), x, create_graph=True)
    second_node = weakref.ref(second.grad_fn)
    del gradient, second
    assert node() is None and second_node() is None


def test_a_module_trained_with_a_gradient_penalty_leaves_nothing_behind(no_cyclic_gc):
    critic = nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 1))
    x = leaf(np.ones((3, 2)))
    (gradient,) = tg.grad(critic(x).sum(), x, create_graph=True)
    penalty = ((gradient.norm(axis=1) - 1) ** 2).mean()
    nodes = [weakref.ref(penalty.grad_fn), weakref.ref(gradient.grad_fn)]
    penalty.backward()
    del gradient, penalty
    assert all(node() is None for node in nodes)
    grads = {name: p.grad for name, p in critic.named_parameters()}
    assert grads.pop("2.bias") is None, "the penalty does not depend on the last bias"
    assert all(type(g) is np.ndarray for g in grads.values())


# --------------------------------------------------------------------------------------------------------------
# The fast walk and the general walk agree bit for bit
# --------------------------------------------------------------------------------------------------------------

UNARY = ["tanh", "sigmoid", "exp_tanh", "relu", "abs", "grow", "sum", "mean", "max", "reshape", "transpose",
         "index", "matmul", "expand", "affine", "rpow", "clip", "sqrt"]  # fmt: skip
BINARY = ["add", "sub", "mul", "div", "maximum", "minimum", "where", "pow", "stack_max"]

STEPS = st.lists(
    st.tuples(st.sampled_from(UNARY + BINARY), st.integers(0, 1000), st.integers(0, 1000), st.integers(0, 1000)),
    min_size=1,
    max_size=10,
)


class Probe(Function):
    """Identity whose backward notes its label: where the walks can be watched."""

    visits: ClassVar[list] = []

    @staticmethod
    def forward(ctx, x, label=0):
        ctx.label = label
        return x.copy()

    @staticmethod
    def backward(ctx, grad):
        Probe.visits.append(ctx.label)
        return grad


def run_program(leaves: list[Tensor], weights: dict[int, Tensor], steps, full_shape, probes: bool) -> Tensor:
    """Apply the random steps to a growing pool of tensors (so values are reused: diamonds), then reduce."""
    pool = list(leaves)
    for number, (name, i, j, k) in enumerate(steps):
        a, b = pool[i % len(pool)], pool[j % len(pool)]
        ndim = a.ndim
        if name == "tanh":
            out = a.tanh()
        elif name == "sigmoid":
            out = a.sigmoid()
        elif name == "exp_tanh":
            out = a.tanh().exp()
        elif name == "relu":
            out = a.relu()
        elif name == "abs":
            out = a.abs()
        elif name == "grow":
            out = a * a.tanh()
        elif name in ("sum", "mean", "max"):
            out = getattr(a, name)(axis=k % ndim, keepdims=True) if ndim else a * 1.0
        elif name == "reshape":
            out = a.reshape(-1).reshape(a.shape)
        elif name == "transpose":
            out = a.T.T
        elif name == "index":
            if ndim:
                rows = np.sort(np.random.default_rng(k).integers(0, a.shape[0], a.shape[0]))  # repeats
                out = a[rows]
            else:
                out = -a
        elif name == "matmul":
            out = a @ weights[a.shape[-1]] if ndim else a * 2.0
        elif name == "expand":
            out = a.expand(*full_shape)
        elif name == "affine":
            out = 2.0 - a * 0.5
        elif name == "rpow":
            out = 1.5 ** a.tanh()
        elif name == "clip":
            out = a.clip(-0.5, 0.5)
        elif name == "sqrt":
            out = (a * a + 1.0).sqrt()
        elif name == "add":
            out = a + b
        elif name == "sub":
            out = a - b
        elif name == "mul":
            out = a * b
        elif name == "div":
            out = a / (b * b + 1.0)
        elif name == "maximum":
            out = tg.maximum(a, b)
        elif name == "minimum":
            out = tg.minimum(a, b)
        elif name == "where":
            out = tg.where(a.data > b.data, a, b * 0.5)
        elif name == "pow":
            out = (a * a + 0.5) ** b.tanh()
        else:  # stack_max
            out = tg.stack([a.expand(*full_shape), b.expand(*full_shape)], axis=0).max(axis=0)
        pool.append(Probe.apply(out, label=number) if probes else out)
    total = None
    for index, value in enumerate(pool[-3:]):
        coefficients = np.random.default_rng(index).standard_normal(value.shape).astype(value.dtype)
        term = (value * coefficients).sum()
        total = term if total is None else total + term
    return total


def make_leaves(shapes, full_shape, seed: int, dtype):
    rng = np.random.default_rng(seed)
    leaves = [Tensor(rng.standard_normal(shape).astype(dtype), requires_grad=True) for shape in shapes]
    # One square weight per possible last-axis size (reductions with keepdims make it 1), for `matmul`.
    weights = {size: Tensor(rng.standard_normal((size, size)).astype(dtype) * 0.5, requires_grad=True)
               for size in (1, 2, 3)}  # fmt: skip
    return leaves, weights


def gradients_of(leaves, weights) -> list:
    return [None if t.grad is None else np.asarray(t.grad.data if isinstance(t.grad, Tensor) else t.grad)
            for t in [*leaves, *weights.values()]]  # fmt: skip


def assert_bitwise_equal(expected: list, actual: list, what: str) -> None:
    for position, (a, b) in enumerate(zip(expected, actual)):
        assert (a is None) == (b is None), f"{what}: leaf {position} got a gradient in one walk only"
        if a is not None:
            assert a.dtype == b.dtype and a.shape == b.shape, f"{what}: leaf {position}"
            assert np.array_equal(a, b, equal_nan=True), f"{what}: leaf {position} differs: {a} vs {b}"


@settings(max_examples=40, deadline=None)
@given(
    shapes=mutually_broadcastable_shapes(num_shapes=3, min_dims=0, max_dims=3, min_side=1, max_side=3),
    steps=STEPS,
    seed=st.integers(0, 2**32 - 1),
    dtype=st.sampled_from([np.float64, np.float32]),
)
def test_fast_and_general_walks_give_bitwise_equal_gradients_on_random_graphs(shapes, steps, seed, dtype):
    full_shape = shapes.result_shape

    def fresh():
        leaves, weights = make_leaves(shapes.input_shapes, full_shape, seed, dtype)
        return leaves, weights, run_program(leaves, weights, steps, full_shape, probes=False)

    leaves, weights, out = fresh()
    with mock.patch.object(autograd, "_walk_arrays", wraps=autograd._walk_arrays) as fast_walk:
        out.backward()  # no hooks, no create_graph, no inputs=: the fast path
    assert fast_walk.called, "a plain backward() did not take the fast path (was a hook left registered?)"
    fast = gradients_of(leaves, weights)

    leaves, weights, out = fresh()
    everything = [*leaves, *weights.values()]
    results = tg.grad(out, everything, allow_unused=True)
    assert_bitwise_equal(fast, [None if r is None else r.data for r in results], "tg.grad")

    leaves, weights, out = fresh()
    out.backward(create_graph=True)
    assert_bitwise_equal(fast, gradients_of(leaves, weights), "backward(create_graph=True)")

    leaves, weights, out = fresh()
    out.backward(inputs=[*leaves, *weights.values()])
    assert_bitwise_equal(fast, gradients_of(leaves, weights), "backward(inputs=...)")

    leaves, weights, out = fresh()
    with leaves[0].register_hook(lambda grad: None), mock.patch.object(autograd, "_walk_arrays") as fast_walk:
        out.backward()  # any hook sends backward down the general walk
    assert not fast_walk.called
    assert_bitwise_equal(fast, gradients_of(leaves, weights), "backward() with a hook")


@settings(max_examples=25, deadline=None)
@given(
    shapes=mutually_broadcastable_shapes(num_shapes=3, min_dims=0, max_dims=2, min_side=1, max_side=3),
    steps=STEPS,
    seed=st.integers(0, 2**32 - 1),
)
def test_both_walks_visit_nodes_in_backward_order(shapes, steps, seed):
    full_shape = shapes.result_shape

    def fresh():
        leaves, weights = make_leaves(shapes.input_shapes, full_shape, seed, np.float64)
        return leaves, weights, run_program(leaves, weights, steps, full_shape, probes=True)

    leaves, weights, out = fresh()
    planned = [node.label for node in autograd.backward_order(out) if isinstance(node, Probe)]
    Probe.visits = []
    with mock.patch.object(autograd, "_walk_arrays", wraps=autograd._walk_arrays) as fast_walk:
        out.backward()
    assert fast_walk.called
    assert Probe.visits == planned, "the fast walk"
    leaves, weights, out = fresh()
    Probe.visits = []
    tg.grad(out, [*leaves, *weights.values()], allow_unused=True)
    assert Probe.visits == planned, "tg.grad"
    leaves, weights, out = fresh()
    Probe.visits = []
    out.backward(create_graph=True)
    assert Probe.visits == planned, "backward(create_graph=True)"


def test_backward_order_of_a_leaf_is_empty_and_of_a_diamond_lists_each_node_once():
    x = leaf([1.0, 2.0])
    assert autograd.backward_order(x) == []
    top = x.exp()
    out = (top.tanh() + top.sigmoid()).sum()
    order = autograd.backward_order(out)
    assert len(order) == len(set(order)) == 5
    assert order[0] is out.grad_fn and order[-1] is top.grad_fn


# --------------------------------------------------------------------------------------------------------------
# Custom Functions at second order
# --------------------------------------------------------------------------------------------------------------


class Softplus(Function):
    """A differentiable backward: operators and xp only."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.logaddexp(0, x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * xp.sigmoid(x)


class ScaledExp(Function):
    """Saves its output and a second input; the scale's gradient needs both."""

    @staticmethod
    def forward(ctx, x, scale):
        out = scale * np.exp(x)
        ctx.save_for_backward(out, x, scale)
        return out

    @staticmethod
    def backward(ctx, grad):
        out, x, _ = ctx.saved_tensors
        return grad * out, grad * xp.exp(x)


class ProductAndSum(Function):
    """Two outputs: x * y and exp(x) + y."""

    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return x * y, np.exp(x) + y

    @staticmethod
    def backward(ctx, grad_product, grad_sum):
        x, y = ctx.saved_tensors
        return grad_product * y + grad_sum * xp.exp(x), grad_product * x + grad_sum


class NumpyCube(Function):
    """A backward that calls numpy on what it gets: fine on arrays, not on Tensors."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 3 * np.square(x)


class OnceCube(Function):
    """The same formula, marked once-differentiable."""

    seen: ClassVar[list] = []

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        OnceCube.seen.append((type(grad), type(x)))
        return grad * 3 * x**2


class ArrayCube(Function):
    """A backward that leaves the graph quietly, through np.asarray."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return np.asarray(grad * 3 * x**2)


class WrongTanh(Function):
    """Right at first order, wrong at second: it saves a copy of tanh(x), which backward treats as a constant."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(np.tanh(x))  # not the output object itself: no graph connection under create_graph
        return np.tanh(x)

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * (1 - out * out)


def test_custom_functions_with_differentiable_backwards_pass_gradgradcheck(rng):
    x = leaf(rng.standard_normal((2, 3)))
    scale = leaf(rng.uniform(0.5, 2.0, (3,)))
    y = leaf(rng.standard_normal((2, 3)))
    assert tg.gradgradcheck(Softplus.apply, [x])
    assert tg.gradgradcheck(ScaledExp.apply, [x, scale])
    assert tg.gradgradcheck(ProductAndSum.apply, [x, y])
    assert tg.gradgradcheck(lambda a, b: ProductAndSum.apply(Softplus.apply(a), b)[1] * a, [x, y])
    assert tg.gradcheck(Softplus.apply, [x], order=2)


@pytest.mark.torch
def test_custom_function_second_derivative_matches_the_same_op_in_pytorch(torch, rng):
    values, scales = rng.standard_normal(4), rng.uniform(0.5, 2.0, 4)
    x, scale = leaf(values), leaf(scales)
    (gx,) = tg.grad(ScaledExp.apply(Softplus.apply(x), scale).sum(), x, create_graph=True)
    d_x, d_scale = tg.grad((gx * gx).sum(), [x, scale])
    tx, tscale = torch.tensor(values, requires_grad=True), torch.tensor(scales, requires_grad=True)
    (tgx,) = torch.autograd.grad((tscale * torch.nn.functional.softplus(tx).exp()).sum(), tx, create_graph=True)
    t_dx, t_dscale = torch.autograd.grad((tgx * tgx).sum(), [tx, tscale])
    np.testing.assert_allclose(gx.data, tgx.detach().numpy(), **TOLERANCE)
    np.testing.assert_allclose(d_x.data, t_dx.numpy(), **TOLERANCE)
    np.testing.assert_allclose(d_scale.data, t_dscale.numpy(), **TOLERANCE)


def test_saved_tensors_are_arrays_in_a_plain_backward_and_connected_tensors_under_create_graph():
    seen = []

    class Inspect(Function):
        @staticmethod
        def forward(ctx, x, y):
            out = x * y
            ctx.save_for_backward(x, y, out, np.ones(2))
            return out

        @staticmethod
        def backward(ctx, grad):
            seen.append(ctx.saved_tensors)
            x, y, _, _ = ctx.saved_tensors
            return grad * y, grad * x

    x = leaf([1.0, 2.0])
    Inspect.apply(x, x * 2.0).sum().backward()
    assert all(type(item) is np.ndarray for item in seen[-1])
    hidden = x * 2.0
    out = Inspect.apply(x, hidden)
    tg.grad(out.sum(), x, create_graph=True)
    saved_x, saved_hidden, saved_out, other = seen[-1]
    assert saved_x is x, "a leaf input comes back as the leaf itself"
    assert isinstance(saved_hidden, Tensor) and saved_hidden.requires_grad
    assert saved_hidden.grad_fn is hidden.grad_fn, "a computed input points at the node that computed it"
    assert isinstance(saved_out, Tensor) and saved_out.grad_fn is out.grad_fn, "the output points at this node"
    assert type(other) is np.ndarray, "anything else saved is a constant"


def test_saved_tensors_of_an_input_that_needs_no_grad_stay_arrays_under_create_graph():
    seen = []

    class Scale(Function):
        @staticmethod
        def forward(ctx, x, factor):
            ctx.save_for_backward(x, factor)
            return x * factor

        @staticmethod
        def backward(ctx, grad):
            seen.append(ctx.saved_tensors)
            _, factor = ctx.saved_tensors
            return grad * factor, None

    x = leaf([1.0, 2.0])
    tg.grad(Scale.apply(x, Tensor(np.array([3.0, 4.0]))).sum(), x, create_graph=True)
    assert seen[-1][0] is x and type(seen[-1][1]) is np.ndarray


@pytest.mark.parametrize("op", [NumpyCube, OnceCube, ArrayCube])
def test_non_differentiable_backwards_still_work_at_first_order(op):
    x = leaf([0.5, -1.0, 2.0])
    expected = 3 * x.data**2
    op.apply(x).sum().backward()
    np.testing.assert_array_equal(x.grad, expected)
    (plain,) = tg.grad(op.apply(x).sum(), x)
    np.testing.assert_array_equal(plain.data, expected)
    (recorded,) = tg.grad(op.apply(x).sum(), x, create_graph=True)  # no error until it is differentiated
    np.testing.assert_array_equal(recorded.data, expected)
    x.grad = None
    op.apply(x).sum().backward(create_graph=True)
    np.testing.assert_array_equal(np.asarray(x.grad.data), expected)
    assert tg.gradcheck(op.apply, [x])


@pytest.mark.parametrize(
    ("op", "reason"),
    [
        (NumpyCube, "called with Tensors, it raised TypeError"),
        (OnceCube, "marked @once_differentiable"),
        (ArrayCube, "returned an ndarray where a Tensor was expected"),
    ],
)
def test_differentiating_through_a_non_differentiable_backward_raises_naming_the_function(op, reason):
    x = leaf([0.5, -1.0, 2.0])
    (gradient,) = tg.grad(op.apply(x).sum(), x, create_graph=True)
    assert gradient.requires_grad, "never a silent constant"
    with pytest.raises(DoubleBackwardError, match=rf"{op.__name__}\.backward.*{reason}"):
        tg.grad(gradient.sum(), x)
    x.grad = None
    op.apply(x).sum().backward(create_graph=True)
    with pytest.raises(DoubleBackwardError, match=op.__name__):
        x.grad.sum().backward()


def test_once_differentiable_backward_receives_arrays_even_under_create_graph():
    OnceCube.seen = []
    x = leaf([0.5, 2.0])
    tg.grad(OnceCube.apply(x).sum(), x, create_graph=True)
    assert OnceCube.seen == [(np.ndarray, np.ndarray)]


@pytest.mark.parametrize("op", [NumpyCube, OnceCube, ArrayCube])
def test_second_derivatives_that_avoid_the_flagged_backward_work(op):
    x, y = leaf([0.5, -1.0]), leaf([1.5, 2.0])
    # The flagged gradient is x's; y's gradient never goes through op's backward.
    _, d_y = tg.grad(op.apply(x).sum() + (y**3).sum(), [x, y], create_graph=True)
    (second,) = tg.grad(d_y.sum(), y)
    np.testing.assert_array_equal(second.data, 6 * y.data)
    # op's forward below a twice-differentiated function is fine: only its backward is first-order.
    hidden = op.apply(x)
    (d_hidden,) = tg.grad(hidden.tanh().sum(), hidden, create_graph=True)
    (through_forward,) = tg.grad(d_hidden.sum(), x)
    t = np.tanh(x.data**3)
    np.testing.assert_allclose(through_forward.data, -2 * t * (1 - t**2) * 3 * x.data**2, rtol=1e-12)


@pytest.mark.parametrize("op", [NumpyCube, OnceCube, ArrayCube])
def test_gradgradcheck_of_a_non_differentiable_backward_fails_saying_why(op):
    x = leaf([0.5, -1.0, 2.0])
    with pytest.raises(GradcheckError, match=rf"second-order.*cannot differentiate.*{op.__name__}"):
        tg.gradgradcheck(op.apply, [x])
    assert tg.gradgradcheck(op.apply, [x], raise_exception=False) is False


def test_a_wrong_double_backward_passes_gradcheck_and_fails_gradgradcheck_headed_as_second_order(rng):
    x = leaf(rng.standard_normal((2, 3)))
    assert tg.gradcheck(WrongTanh.apply, [x])
    with pytest.raises(GradcheckError) as error:
        tg.gradgradcheck(WrongTanh.apply, [x])
    message = str(error.value)
    assert message.startswith("gradgradcheck (the second-order check")
    assert "second derivative is wrong for `input 0`" in message
    assert error.value.report.order == 2 and not error.value.report.ok
    with pytest.raises(GradcheckError, match="second-order check"):
        tg.gradcheck(WrongTanh.apply, [x], order=2)
    assert tg.gradcheck(WrongTanh.apply, [x], order=2, raise_exception=False) is False


def test_a_wrong_double_backward_is_caught_through_the_upstream_gradient_too(rng):
    class DetachedScale(Function):
        """2x, whose backward computes the right numbers from grad's array: its derivative in grad is lost."""

        @staticmethod
        def forward(ctx, x):
            return 2.0 * x

        @staticmethod
        def backward(ctx, grad):
            return grad * 0.0 + xp.value(grad) * 2.0

    x = leaf(rng.standard_normal(3))
    assert tg.gradcheck(DetachedScale.apply, [x])
    with pytest.raises(GradcheckError, match="second derivative is wrong for `grad_output 0`"):
        tg.gradgradcheck(DetachedScale.apply, [x])


class CriticWithWrongTanh(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(3, 2)
        self.out = nn.Linear(2, 1)

    def forward(self, x):
        return self.out(WrongTanh.apply(self.hidden(x)))


def test_gradcheck_order_2_of_a_module_checks_parameters_by_dotted_name(rng):
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    x = leaf(rng.standard_normal((2, 3)))
    assert tg.gradcheck(model, [x], order=2)
    assert tg.gradgradcheck(model, [x])
    bad = CriticWithWrongTanh()
    with pytest.raises(GradcheckError) as error:
        tg.gradgradcheck(bad, [x])
    wrong = {row.input_name for row in error.value.report.rows if row.verdict == "wrong"}
    assert "hidden.weight" in wrong and "input 0" in wrong
    assert "`hidden.weight`" in str(error.value)


@pytest.mark.parametrize("check", ["gradcheck", "gradgradcheck"])
def test_gradcheck_of_a_function_that_takes_a_gradient_itself(check):
    def gradient_of_cube(t):
        (gradient,) = tg.grad((t**3).sum(), t, create_graph=True)
        return gradient

    assert getattr(tg, check)(gradient_of_cube, [leaf([0.5, 1.5])])


# --------------------------------------------------------------------------------------------------------------
# A gradient penalty, against PyTorch and finite differences
# --------------------------------------------------------------------------------------------------------------

ACTIVATIONS = {"tanh": (nn.Tanh, "Tanh"), "relu": (nn.ReLU, "ReLU"), "sigmoid": (nn.Sigmoid, "Sigmoid")}


def critic_weights(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((8, 2)) * 0.8, rng.standard_normal(8) * 0.3, rng.standard_normal((1, 8)) * 0.8,
            rng.standard_normal(1) * 0.1]  # fmt: skip


def tg_critic(activation: str, weights) -> nn.Sequential:
    critic = nn.Sequential(nn.Linear(2, 8), ACTIVATIONS[activation][0](), nn.Linear(8, 1))
    for parameter, value in zip(critic.parameters(), weights):
        parameter.data[...] = value
    return critic


def penalty_batch(seed: int = 1):
    rng = np.random.default_rng(seed)
    real, fake = rng.standard_normal((5, 2)), rng.standard_normal((5, 2)) + 1.0
    alpha = rng.uniform(size=(5, 1))
    return real, fake, alpha * real + (1 - alpha) * fake


def tg_critic_loss(critic, real, fake, mixed, per_sample: bool) -> Tensor:
    """WGAN-GP's critic loss: D(fake) - D(real) + 10 * (||grad_x D(x)|| - 1)^2 at points between them."""
    points = Tensor(mixed, requires_grad=True)
    (gradient,) = tg.grad(critic(points).sum(), points, create_graph=True)
    norm = gradient.norm(axis=1) if per_sample else gradient.norm()
    penalty = ((norm - 1) ** 2).mean()
    return critic(Tensor(fake)).mean() - critic(Tensor(real)).mean() + 10.0 * penalty


@pytest.mark.torch
@pytest.mark.parametrize("per_sample", [True, False], ids=["per-sample norm", "whole-batch norm"])
@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_gradient_penalty_parameter_gradients_match_pytorch(torch, activation, per_sample):
    weights = critic_weights()
    real, fake, mixed = penalty_batch()
    critic = tg_critic(activation, weights)
    loss = tg_critic_loss(critic, real, fake, mixed, per_sample)
    loss.backward()

    t_critic = torch.nn.Sequential(torch.nn.Linear(2, 8), getattr(torch.nn, ACTIVATIONS[activation][1])(),
                                   torch.nn.Linear(8, 1))  # fmt: skip
    with torch.no_grad():
        for parameter, value in zip(t_critic.parameters(), weights):
            parameter.copy_(torch.tensor(value))
    points = torch.tensor(mixed, requires_grad=True)
    (gradient,) = torch.autograd.grad(t_critic(points).sum(), points, create_graph=True)
    norm = gradient.norm(dim=1) if per_sample else gradient.norm()
    t_loss = t_critic(torch.tensor(fake)).mean() - t_critic(torch.tensor(real)).mean() + 10.0 * ((norm - 1) ** 2).mean()
    t_loss.backward()

    np.testing.assert_allclose(loss.item(), t_loss.item(), **TOLERANCE)
    for (name, mine), theirs in zip(critic.named_parameters(), t_critic.parameters()):
        assert type(mine.grad) is np.ndarray, f"{name}: a plain backward leaves an ndarray"
        np.testing.assert_allclose(mine.grad, theirs.grad.numpy(), err_msg=name, **TOLERANCE)


def test_gradient_penalty_parameter_gradients_match_finite_differences():
    weights = critic_weights()
    real, fake, mixed = penalty_batch()
    critic = tg_critic("tanh", weights)
    tg_critic_loss(critic, real, fake, mixed, per_sample=True).backward()
    step = 1e-6
    for name, parameter in critic.named_parameters():
        numerical = np.zeros(parameter.shape)
        for index in np.ndindex(parameter.shape):
            original = parameter.data[index]
            parameter.data[index] = original + step
            plus = tg_critic_loss(critic, real, fake, mixed, per_sample=True).item()
            parameter.data[index] = original - step
            minus = tg_critic_loss(critic, real, fake, mixed, per_sample=True).item()
            parameter.data[index] = original
            numerical[index] = (plus - minus) / (2 * step)
        np.testing.assert_allclose(parameter.grad, numerical, rtol=1e-6, atol=1e-8, err_msg=name)


def test_training_a_critic_with_a_gradient_penalty_moves_the_gradient_norm_towards_one():
    critic = tg_critic("tanh", critic_weights(seed=3))
    optimizer = optim.Adam(critic.parameters(), lr=0.05)
    points = np.random.default_rng(4).standard_normal((16, 2))

    def mean_distance_from_one():
        x = Tensor(points, requires_grad=True)
        (gradient,) = tg.grad(critic(x).sum(), x)
        return float(np.mean(np.abs(np.linalg.norm(gradient.data, axis=1) - 1)))

    before = mean_distance_from_one()
    for _ in range(30):
        x = Tensor(points, requires_grad=True)
        (gradient,) = tg.grad(critic(x).sum(), x, create_graph=True)
        penalty = ((gradient.norm(axis=1) - 1) ** 2).mean()
        optimizer.zero_grad()
        penalty.backward()
        optimizer.step()
    assert mean_distance_from_one() < 0.25 * before


# --------------------------------------------------------------------------------------------------------------
# Threads
# --------------------------------------------------------------------------------------------------------------


def test_second_derivatives_in_threads_do_not_disturb_each_other():
    errors = []

    def worker(power: float, stop_grad: bool):
        try:
            for _ in range(30):
                x = leaf([0.5, 1.5, 2.0])
                if stop_grad:  # one thread keeps switching grad mode off around its own work
                    with tg.no_grad():
                        assert (x * 2.0).requires_grad is False
                (gradient,) = tg.grad((x**power).sum(), x, create_graph=True)
                (second,) = tg.grad(gradient.sum(), x)
                np.testing.assert_allclose(second.data, power * (power - 1) * x.data ** (power - 2), rtol=1e-12)
                assert tg.is_grad_enabled()
        except Exception as error:  # reported in the main thread
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(p, p == 3.0)) for p in (2.5, 3.0, 4.0, 1.5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors


# A piecewise op's gradient built from an upstream gradient that requires grad (a gradient penalty, a random
# grad_outputs) still hangs off the op's input, with derivative 0, where PyTorch's formula reads the input (relu,
# abs): zeros there, not "unused". Where PyTorch's formula is a mask (clamp, max), the input is unused in both.
@pytest.mark.parametrize("op", ["relu", "abs", "clip", "max"])
def test_a_piecewise_gradient_of_a_gradient_that_requires_grad_stays_connected_like_pytorch(torch, op):
    values, upstream = np.array([0.5, -1.0, 2.0, -0.25]), np.array([1.0, -2.0, 3.0, 0.5])
    ours = {
        "relu": lambda t: t.relu(),
        "abs": lambda t: t.abs(),
        "clip": lambda t: t.clip(-0.7, 1.0),
        "max": lambda t: t.max(),
    }[op]
    theirs = {
        "relu": lambda t: t.relu(),
        "abs": lambda t: t.abs(),
        "clip": lambda t: t.clamp(-0.7, 1.0),
        "max": lambda t: t.max(),
    }[op]
    x, u = Tensor(values, requires_grad=True), Tensor(upstream if op != "max" else 1.5, requires_grad=True)
    tx = torch.tensor(values, requires_grad=True)
    tu = torch.tensor(upstream if op != "max" else 1.5, requires_grad=True)
    (g,) = tg.grad(ours(x), x, u, create_graph=True)
    (tg_,) = torch.autograd.grad(theirs(tx), tx, tu, create_graph=True)
    np.testing.assert_array_equal(g.data, tg_.detach().numpy())
    ours_second = tg.grad((g * g).sum(), (x, u), allow_unused=True)
    theirs_second = torch.autograd.grad((tg_ * tg_).sum(), (tx, tu), allow_unused=True)
    for mine, reference in zip(ours_second, theirs_second):
        assert (mine is None) == (reference is None)
        if reference is not None:
            np.testing.assert_array_equal(mine.data, reference.numpy(force=True))  # force: torch's ZeroTensor


def test_a_gradient_penalty_through_relu_reaches_every_parameter_like_pytorch(torch):
    tg.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4, dtype=np.float64), nn.ReLU(), nn.Linear(4, 1, dtype=np.float64))
    reference = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1)).double()
    reference.load_state_dict({key: torch.from_numpy(value.copy()) for key, value in model.state_dict().items()})
    points = np.random.default_rng(0).standard_normal((5, 3))
    x, tx = Tensor(points, requires_grad=True), torch.tensor(points, requires_grad=True)
    (grad_x,) = tg.grad(model(x).sum(), x, create_graph=True)
    (torch_grad_x,) = torch.autograd.grad(reference(tx).sum(), tx, create_graph=True)
    ((grad_x.norm(dim=1) - 1) ** 2).mean().backward()
    ((torch_grad_x.norm(dim=1) - 1) ** 2).mean().backward()
    for (name, parameter), theirs in zip(model.named_parameters(), reference.parameters()):
        assert (parameter.grad is None) == (theirs.grad is None), name  # the last bias: None in both
        if theirs.grad is not None:
            np.testing.assert_allclose(np.asarray(parameter.grad), theirs.grad.numpy(), rtol=1e-12, atol=1e-15)


class TwoFaced(Function):
    """x ** 2, whose backward is right on ndarrays and 1.5 times too big on Tensors (the path create_graph uses)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        scale = 3.0 if isinstance(grad, Tensor) else 2.0
        return grad * scale * x


def test_a_backward_whose_tensor_path_differs_from_its_array_path_fails_the_second_order_check(rng):
    x = leaf(rng.standard_normal(4))
    assert tg.gradcheck(TwoFaced.apply, [x])  # the first order only ever runs the ndarray path
    for check in (lambda: tg.gradgradcheck(TwoFaced.apply, [x]), lambda: tg.gradcheck(TwoFaced.apply, [x], order=2)):
        with pytest.raises(GradcheckError) as error:
            check()
        message = str(error.value)
        assert message.startswith("gradgradcheck (the second-order check")
        assert "the gradient of input 0 computed with create_graph=True" in message
        assert "4 of 4 entries differ" in message and "with Tensors" in message and "with ndarrays" in message
