"""Tensor hooks (`register_hook`, `retain_grad`) and module hooks (forward, forward pre, full backward, backward
pre): what they see, what their return values change, their order, removal, create_graph and threads; the full
backward hooks against PyTorch's on the same networks.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

import tinygrad_nn as tg
from tinygrad_nn import Function, Tensor, autograd, nn
from tinygrad_nn.autograd import RemovableHandle

TOLERANCE = {"rtol": 1e-12, "atol": 1e-14}


def leaf(values) -> Tensor:
    return Tensor(np.array(values, dtype=np.float64), requires_grad=True)


def as_array(value):
    """A gradient as an ndarray, whether the framework handed a Tensor, an ndarray or a torch tensor."""
    if value is None:
        return None
    if isinstance(value, Tensor):
        return value.data
    if hasattr(value, "detach"):
        return value.detach().numpy()
    return np.asarray(value)


# --------------------------------------------------------------------------------------------------------------
# Tensor hooks
# --------------------------------------------------------------------------------------------------------------


def test_hooks_on_a_leaf_and_a_computed_tensor_see_their_gradients():
    x = leaf([1.0, 2.0])
    hidden = x * 3.0
    seen = {}
    x.register_hook(lambda grad: seen.__setitem__("x", grad.copy()))
    hidden.register_hook(lambda grad: seen.__setitem__("hidden", grad.copy()))
    (hidden**2).sum().backward()
    np.testing.assert_array_equal(seen["hidden"], 2 * hidden.data)
    np.testing.assert_array_equal(seen["x"], 6 * hidden.data)
    np.testing.assert_array_equal(x.grad, seen["x"])


def test_a_plain_backward_hands_hooks_ndarrays_and_create_graph_hands_them_tensors():
    x = leaf([1.0, 2.0])
    kinds = []
    with x.register_hook(lambda grad: kinds.append(type(grad))):
        (x**2).sum().backward()
        (x**2).sum().backward(create_graph=True)
    assert kinds == [np.ndarray, Tensor]


def test_hooks_run_in_registration_order_each_seeing_the_previous_replacement():
    x = leaf([1.0, 2.0])
    calls = []
    x.register_hook(lambda grad: calls.append(("first", grad.copy())) or grad * 10)
    x.register_hook(lambda grad: calls.append(("second", grad.copy())))
    x.register_hook(lambda grad: grad + 1)
    (x * 2.0).sum().backward()
    assert [name for name, _ in calls] == ["first", "second"]
    np.testing.assert_array_equal(calls[1][1], [20.0, 20.0])
    np.testing.assert_array_equal(x.grad, [21.0, 21.0])


def test_a_replaced_gradient_of_a_computed_tensor_flows_on_to_the_leaves():
    x = leaf([1.0, 2.0])
    hidden = x.exp()
    hidden.register_hook(lambda grad: grad * 0.5)
    (hidden * 4.0).sum().backward()
    np.testing.assert_allclose(x.grad, 2.0 * np.exp(x.data), rtol=1e-15)


def test_a_replaced_gradient_of_a_leaf_is_what_dot_grad_accumulates():
    x = leaf([1.0, 2.0])
    x.register_hook(lambda grad: -grad)
    (x * 3.0).sum().backward()
    (x * 3.0).sum().backward()
    np.testing.assert_array_equal(x.grad, [-6.0, -6.0])


def test_a_hook_may_return_a_list_or_a_tensor_of_the_same_shape():
    x = leaf([1.0, 2.0])
    with x.register_hook(lambda grad: [5.0, 6.0]):
        (x * 3.0).sum().backward()
    np.testing.assert_array_equal(x.grad, [5.0, 6.0])
    x.grad = None
    with x.register_hook(lambda grad: Tensor(np.array([7.0, 8.0]))):
        (x * 3.0).sum().backward()
    assert type(x.grad) is np.ndarray
    np.testing.assert_array_equal(x.grad, [7.0, 8.0])


def test_a_tensor_used_twice_gets_its_hook_called_once_with_the_total():
    x = leaf([1.0, 2.0])
    hidden = x * 2.0
    leaf_calls, hidden_calls = [], []
    x.register_hook(lambda grad: leaf_calls.append(grad.copy()))
    hidden.register_hook(lambda grad: hidden_calls.append(grad.copy()))
    (hidden * hidden + hidden + x).sum().backward()
    assert len(leaf_calls) == 1 and len(hidden_calls) == 1
    np.testing.assert_array_equal(hidden_calls[0], 2 * hidden.data + 1)
    np.testing.assert_array_equal(leaf_calls[0], 2 * (2 * hidden.data + 1) + 1)


def test_removed_hooks_no_longer_run_and_removing_twice_is_harmless():
    x = leaf([1.0])
    calls = []
    handle = x.register_hook(lambda grad: calls.append(1))
    assert isinstance(handle, RemovableHandle)
    (x * 2.0).sum().backward()
    handle.remove()
    handle.remove()
    (x * 2.0).sum().backward()
    assert calls == [1]
    with x.register_hook(lambda grad: calls.append(2)):
        (x * 2.0).sum().backward()
    (x * 2.0).sum().backward()
    assert calls == [1, 2]


def test_removing_one_registration_of_a_function_registered_twice_keeps_the_other():
    x = leaf([1.0])
    calls = []

    def hook(grad):
        calls.append(1)

    first = x.register_hook(hook)
    x.register_hook(hook)
    first.remove()
    (x * 2.0).sum().backward()
    assert calls == [1]


def test_the_fast_path_comes_back_once_every_hook_is_removed():
    before = autograd._tensor_hook_count
    x = leaf([1.0])
    handles = [x.register_hook(lambda grad: None) for _ in range(3)]
    assert autograd._tensor_hook_count == before + 3
    for handle in handles:
        handle.remove()
    assert autograd._tensor_hook_count == before


@pytest.mark.parametrize("how", ["register_hook on a leaf", "register_hook on a computed tensor", "retain_grad"])
def test_a_hook_stops_counting_when_its_tensor_dies(how):
    import gc

    before = autograd._tensor_hook_count
    x = leaf([1.0, 2.0])
    hidden = x * 2.0
    if how == "register_hook on a leaf":
        x.register_hook(lambda grad: None)
    elif how == "register_hook on a computed tensor":
        hidden.register_hook(lambda grad: None)
    else:
        hidden.retain_grad()
    (hidden * hidden).sum().backward()
    del x, hidden
    gc.collect()
    assert autograd._tensor_hook_count == before


def test_a_hook_that_returns_the_wrong_shape_is_an_error_with_both_shapes():
    x = leaf([1.0, 2.0])

    def widen(grad):
        return np.ones(3)

    with x.register_hook(widen), pytest.raises(ValueError, match=r"'widen'.*shape \(3,\).*shape \(2,\)"):
        (x * 2.0).sum().backward()
    hidden = x * 2.0
    hidden.register_hook(lambda grad: np.ones((2, 1)))
    with pytest.raises(ValueError, match=r"the output of Mul.*shape \(2, 1\)"):
        hidden.sum().backward()


def test_registering_a_hook_that_cannot_run_is_an_error():
    with pytest.raises(RuntimeError, match="does not require grad"):
        Tensor(np.ones(2)).register_hook(lambda grad: None)
    with pytest.raises(TypeError, match="function of the gradient, got int"):
        leaf([1.0]).register_hook(3)


def test_an_exception_in_a_hook_reaches_the_caller_and_grad_mode_survives():
    x = leaf([1.0])
    hidden = x * 2.0

    def fail(grad):
        raise KeyError("from the hook")

    hidden.register_hook(fail)
    with pytest.raises(KeyError, match="from the hook"):
        hidden.sum().backward(create_graph=True)
    assert tg.is_grad_enabled()
    assert x.grad is None, "the walk stopped before the leaf"


def test_hooks_run_under_tg_grad_and_change_what_it_returns():
    x = leaf([1.0, 2.0])
    hidden = x * 3.0
    x.register_hook(lambda grad: grad * 10)
    hidden.register_hook(lambda grad: grad + 1)
    d_x, d_hidden = tg.grad((hidden**2).sum(), [x, hidden])
    np.testing.assert_array_equal(d_hidden.data, 2 * hidden.data + 1)
    np.testing.assert_array_equal(d_x.data, 10 * 3 * (2 * hidden.data + 1))
    assert x.grad is None


def test_hooks_run_under_backward_inputs_only_for_the_inputs_reached():
    x, w = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    calls = []
    x.register_hook(lambda grad: calls.append("x") or grad * 10)
    w.register_hook(lambda grad: calls.append("w"))
    (x * w).sum().backward(inputs=[x])
    assert calls == ["x"]
    np.testing.assert_array_equal(x.grad, [30.0, 40.0])


def test_a_hook_under_create_graph_may_return_a_tensor_that_is_differentiated_too():
    x = leaf([1.0, 2.0])
    x.register_hook(lambda grad: grad * x)  # the gradient becomes 3 x^3
    (gradient,) = tg.grad((x**3).sum(), x, create_graph=True)
    np.testing.assert_array_equal(gradient.data, 3 * x.data**3)
    (second,) = tg.grad(gradient.sum(), x)  # the hook runs again here, on d/dx: 9 x^2 * x
    np.testing.assert_array_equal(second.data, 9 * x.data**3)


def test_hooks_on_the_outputs_of_split_and_of_a_multi_output_function():
    x = leaf([1.0, 2.0, 3.0, 4.0])
    first, second = x.split(2)
    first.register_hook(lambda grad: grad * 0)
    (first * second).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0, 1.0, 2.0])

    class SumAndProduct(Function):
        @staticmethod
        def forward(ctx, a, b):
            ctx.save_for_backward(a, b)
            return a + b, a * b

        @staticmethod
        def backward(ctx, grad_sum, grad_product):
            a, b = ctx.saved_tensors
            return grad_sum + grad_product * b, grad_sum + grad_product * a

    a, b = leaf([2.0]), leaf([5.0])
    total, product = SumAndProduct.apply(a, b)
    seen = []
    product.register_hook(lambda grad: seen.append(grad.copy()) or grad * 100)
    (total + product).sum().backward()
    np.testing.assert_array_equal(seen[0], [1.0])
    np.testing.assert_array_equal(a.grad, [1.0 + 100 * 5.0])
    np.testing.assert_array_equal(b.grad, [1.0 + 100 * 2.0])


@pytest.mark.torch
def test_tensor_hooks_match_pytorch_on_a_small_graph(torch):
    values = np.array([0.5, -1.0, 2.0])

    def run(make, grad_fn):
        x = make(values)
        hidden = x.tanh() * x
        log = []
        hidden.register_hook(lambda g: log.append(as_array(g).copy()) or g * 2.0)
        x.register_hook(lambda g: log.append(as_array(g).copy()) or g - 1.0)
        out = (hidden * hidden).sum() + (x * 3.0).sum()
        (result,) = grad_fn(out, x)
        return log, as_array(result)

    mine = run(lambda v: leaf(v), lambda out, x: tg.grad(out, x))
    theirs = run(lambda v: torch.tensor(v, requires_grad=True), lambda out, x: torch.autograd.grad(out, x))
    assert len(mine[0]) == len(theirs[0]) == 2
    for a, b in zip(mine[0], theirs[0]):
        np.testing.assert_allclose(a, b, **TOLERANCE)
    np.testing.assert_allclose(mine[1], theirs[1], **TOLERANCE)


# --------------------------------------------------------------------------------------------------------------
# retain_grad
# --------------------------------------------------------------------------------------------------------------


def test_retain_grad_keeps_a_computed_tensors_gradient_and_accumulates_it():
    x = leaf([1.0, 2.0])
    hidden = x * 3.0
    assert not hidden.retains_grad
    hidden.retain_grad()
    hidden.retain_grad()  # twice is once
    assert hidden.retains_grad
    out = (hidden**2).sum()
    out.backward(retain_graph=True)
    np.testing.assert_array_equal(hidden.grad, 2 * hidden.data)
    out.backward()
    np.testing.assert_array_equal(hidden.grad, 4 * hidden.data)
    hidden.grad = None
    assert hidden.grad is None and hidden.retains_grad


def test_retain_grad_on_a_leaf_changes_nothing_and_on_a_constant_is_an_error():
    x = leaf([1.0])
    x.retain_grad()
    (x * 2.0).sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0])
    with pytest.raises(RuntimeError, match="does not require grad"):
        Tensor(np.ones(1)).retain_grad()


def test_retain_grad_under_create_graph_keeps_a_tensor_that_can_be_differentiated():
    x = leaf([1.0, 2.0])
    hidden = x * x
    hidden.retain_grad()
    (hidden**2).sum().backward(create_graph=True)
    assert isinstance(hidden.grad, Tensor) and hidden.grad.requires_grad
    (second,) = tg.grad(hidden.grad.sum(), x)  # d/dx of 2 x^2
    np.testing.assert_array_equal(second.data, 4 * x.data)


def test_retain_grad_keeps_the_gradient_returned_by_earlier_hooks():
    x = leaf([1.0, 2.0])
    hidden = x * 3.0
    hidden.register_hook(lambda grad: grad * 2)
    hidden.retain_grad()
    (hidden**2).sum().backward()
    np.testing.assert_array_equal(hidden.grad, 4 * hidden.data)


def test_retain_grad_sees_hooks_registered_after_it_as_in_pytorch():
    x = leaf([1.0, 2.0])
    hidden = x * 3.0
    hidden.retain_grad()
    hidden.register_hook(lambda grad: grad * 2)
    (hidden**2).sum().backward()
    np.testing.assert_array_equal(hidden.grad, 4 * hidden.data)


def test_retain_grad_does_not_keep_the_tensor_alive():
    import gc
    import weakref

    x = leaf([1.0])
    hidden = x * 2.0
    hidden.retain_grad()
    out = (hidden * 3.0).sum()
    reference = weakref.ref(hidden)
    del hidden
    gc.collect()
    out.backward()  # the keeping hook finds its tensor gone and does nothing
    assert reference() is None
    np.testing.assert_array_equal(x.grad, [6.0])


# --------------------------------------------------------------------------------------------------------------
# Tensor hooks in threads
# --------------------------------------------------------------------------------------------------------------


def run_threads(target, count: int) -> list:
    errors: list = []

    def guarded(index):
        try:
            target(index)
        except Exception as error:  # reported in the main thread
            errors.append(error)

    threads = [threading.Thread(target=guarded, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_tensor_hooks_in_threads_each_see_their_own_gradients():
    def work(index):
        scale = float(index + 1)
        for _ in range(40):
            x = leaf([1.0, 2.0])
            hidden = x * scale
            seen = []
            handle = hidden.register_hook(lambda grad, seen=seen: seen.append(grad.copy()) or grad * scale)
            (hidden**2).sum().backward()
            handle.remove()
            np.testing.assert_array_equal(seen[0], 2 * hidden.data)
            np.testing.assert_array_equal(x.grad, 2 * hidden.data * scale * scale)

    assert not run_threads(work, 4)


def test_plain_backward_in_one_thread_is_right_while_another_adds_and_removes_hooks():
    stop = threading.Event()

    def churn(_):
        y = leaf([1.0])
        while not stop.is_set():
            y.register_hook(lambda grad: None).remove()

    def train(_):
        try:
            for _ in range(200):
                x = leaf([0.5, 1.5])
                (x.tanh() * x).sum().backward()
                t = np.tanh(x.data)
                np.testing.assert_allclose(x.grad, t + x.data * (1 - t**2), rtol=1e-15)
        finally:
            stop.set()

    errors = run_threads(lambda i: (churn if i == 0 else train)(i), 2)
    assert not errors, errors


# --------------------------------------------------------------------------------------------------------------
# Module forward hooks
# --------------------------------------------------------------------------------------------------------------


def linear(in_features=2, out_features=3, seed=0) -> nn.Linear:
    layer = nn.Linear(in_features, out_features)
    rng = np.random.default_rng(seed)
    layer.weight.data[...] = rng.standard_normal(layer.weight.shape)
    layer.bias.data[...] = rng.standard_normal(layer.bias.shape)
    return layer


def test_forward_pre_hook_sees_the_args_and_may_replace_them():
    layer = linear()
    seen = []

    def double_input(module, args):
        seen.append((module, args))
        return (args[0] * 2.0,)

    handle = layer.register_forward_pre_hook(double_input)
    x = Tensor(np.ones((1, 2)))
    out = layer(x)
    assert seen[0][0] is layer and isinstance(seen[0][1], tuple) and seen[0][1][0] is x
    np.testing.assert_allclose(out.data, layer.forward(x * 2.0).data)
    handle.remove()
    np.testing.assert_allclose(layer(x).data, layer.forward(x).data)


def test_forward_pre_hook_may_return_a_single_value_or_none():
    layer = linear()
    x = Tensor(np.ones((1, 2)))
    with layer.register_forward_pre_hook(lambda module, args: args[0] + 1.0):
        np.testing.assert_allclose(layer(x).data, layer.forward(x + 1.0).data)
    with layer.register_forward_pre_hook(lambda module, args: None):
        np.testing.assert_allclose(layer(x).data, layer.forward(x).data)


def test_forward_hook_sees_args_and_output_and_may_replace_the_output():
    layer = linear()
    seen = []

    def clamp(module, args, output):
        seen.append((args, output))
        return output.clip(-0.5, 0.5)

    layer.register_forward_hook(clamp)
    x = leaf(np.ones((1, 2)))
    out = layer(x)
    assert seen[0][0][0] is x
    np.testing.assert_allclose(out.data, np.clip(seen[0][1].data, -0.5, 0.5))
    out.sum().backward()  # the replacement is part of the graph
    assert x.grad is not None


def test_forward_hooks_run_in_order_and_prepend_puts_one_first():
    layer = linear()
    order = []
    layer.register_forward_pre_hook(lambda m, a: order.append("pre 1"))
    layer.register_forward_pre_hook(lambda m, a: order.append("pre 2"))
    layer.register_forward_pre_hook(lambda m, a: order.append("pre 0"), prepend=True)
    layer.register_forward_hook(lambda m, a, o: order.append("post 1"))
    layer.register_forward_hook(lambda m, a, o: order.append("post 0"), prepend=True)
    layer(Tensor(np.ones((1, 2))))
    assert order == ["pre 0", "pre 1", "pre 2", "post 0", "post 1"]


def test_hooks_on_children_of_a_sequential_run_when_the_sequential_is_called():
    model = nn.Sequential(linear(2, 3), nn.Tanh(), linear(3, 1, seed=1))
    calls = []
    handles = [child.register_forward_hook(lambda m, a, o, i=i: calls.append(i)) for i, child in enumerate(model)]
    handles.append(model.register_forward_hook(lambda m, a, o: calls.append("model")))
    model(Tensor(np.ones((2, 2))))
    assert calls == [0, 1, 2, "model"]
    for handle in handles:
        handle.remove()
    calls.clear()
    model(Tensor(np.ones((2, 2))))
    assert calls == []


def test_a_forward_hook_replacing_a_childs_output_changes_the_sequentials_result():
    model = nn.Sequential(linear(2, 3), nn.Tanh(), linear(3, 1, seed=1))
    x = Tensor(np.ones((2, 2)))
    expected = model[2](model[1](model[0](x) * 0.0))
    with model[0].register_forward_hook(lambda m, a, o: o * 0.0):
        np.testing.assert_allclose(model(x).data, expected.data)


def test_registering_a_module_hook_that_is_not_callable_is_an_error():
    with pytest.raises(TypeError, match="callable"):
        linear().register_forward_hook("not a function")


# --------------------------------------------------------------------------------------------------------------
# Module backward hooks, against PyTorch's register_full_backward_hook
# --------------------------------------------------------------------------------------------------------------


class TwoInputs(nn.Module):
    """out = tanh(a * W) + b: two tensor inputs (and a number that is not a tensor)."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(np.array([0.5, -1.5, 2.0]))

    def forward(self, a, b, shift=0.0):
        return (a * self.scale).tanh() + b + shift


class TwoOutputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = linear(2, 3, seed=2)

    def forward(self, x):
        hidden = self.layer(x)
        return hidden.tanh(), (hidden * hidden).sum(axis=1)


def torch_copy(torch, module):
    """The same network in PyTorch, with the same weights."""
    if isinstance(module, nn.Sequential):
        return torch.nn.Sequential(*[torch_copy(torch, child) for child in module])
    if isinstance(module, nn.Linear):
        copy = torch.nn.Linear(module.weight.shape[1], module.weight.shape[0])
        with torch.no_grad():
            copy.weight.copy_(torch.tensor(module.weight.data))
            copy.bias.copy_(torch.tensor(module.bias.data))
        return copy
    if isinstance(module, nn.Tanh):
        return torch.nn.Tanh()
    if isinstance(module, nn.Sigmoid):
        return torch.nn.Sigmoid()
    if isinstance(module, TwoInputs):

        class TorchTwoInputs(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.scale = torch.nn.Parameter(torch.tensor(module.scale.data))

            def forward(self, a, b, shift=0.0):
                return (a * self.scale).tanh() + b + shift

        return TorchTwoInputs()
    if isinstance(module, TwoOutputs):
        layer = torch_copy(torch, module.layer)

        class TorchTwoOutputs(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.layer = layer

            def forward(self, x):
                hidden = self.layer(x)
                return hidden.tanh(), (hidden * hidden).sum(dim=1)

        return TorchTwoOutputs()
    raise TypeError(type(module))


def record_backward_hooks(modules, log, replace_input=None, replace_output=None):
    """Register full backward hooks and backward pre-hooks that log (and optionally rescale) what they see."""
    handles = []
    for name, module in modules:

        def pre(mod, grad_output, name=name):
            log.append((name, "pre", tuple(as_array(g) for g in grad_output)))
            if replace_output == name:
                return tuple(None if g is None else g * 3.0 for g in grad_output)
            return None

        def full(mod, grad_input, grad_output, name=name):
            log.append((name, "full", tuple(as_array(g) for g in grad_input), tuple(as_array(g) for g in grad_output)))
            if replace_input == name:
                return tuple(None if g is None else g * -2.0 for g in grad_input)
            return None

        handles.append(module.register_full_backward_pre_hook(pre))
        handles.append(module.register_full_backward_hook(full))
    return handles


def assert_logs_match(mine, theirs):
    assert [entry[:2] for entry in mine] == [entry[:2] for entry in theirs], "hooks ran in a different order"
    for a, b in zip(mine, theirs):
        for part_a, part_b in zip(a[2:], b[2:]):
            assert len(part_a) == len(part_b), f"{a[:2]}: {len(part_a)} gradients, PyTorch has {len(part_b)}"
            for g_a, g_b in zip(part_a, part_b):
                assert (g_a is None) == (g_b is None), f"{a[:2]}: None in one framework only"
                if g_a is not None:
                    np.testing.assert_allclose(g_a, g_b, err_msg=str(a[:2]), **TOLERANCE)


def named_submodules(model):
    return [("model", model)] + [(name, module) for name, module in model.named_modules() if name]


SEQUENTIAL_CASES = [
    ("plain", None, None),
    ("replace grad_input of the last layer", "2", None),
    ("replace grad_input of the model", "model", None),
    ("replace grad_output of the first layer", None, "0"),
    ("replace grad_output of the activation", None, "1"),
]


@pytest.mark.torch
@pytest.mark.filterwarnings("ignore:Full backward hook is firing when gradients are computed with respect to module")
@pytest.mark.parametrize("input_requires_grad", [True, False])
@pytest.mark.parametrize(
    ("case", "replace_input", "replace_output"), SEQUENTIAL_CASES, ids=[c[0] for c in SEQUENTIAL_CASES]
)
def test_full_backward_hooks_on_a_sequential_match_pytorch(torch, case, replace_input, replace_output,
                                                          input_requires_grad):  # fmt: skip
    model = nn.Sequential(linear(2, 3), nn.Tanh(), linear(3, 1, seed=1))
    t_model = torch_copy(torch, model)
    x_values = np.random.default_rng(5).standard_normal((4, 2))
    mine, theirs = [], []
    record_backward_hooks(named_submodules(model), mine, replace_input, replace_output)
    record_backward_hooks(named_submodules(t_model), theirs, replace_input, replace_output)
    x = Tensor(x_values, requires_grad=input_requires_grad)
    tx = torch.tensor(x_values, requires_grad=input_requires_grad)
    (model(x) ** 2).sum().backward()
    (t_model(tx) ** 2).sum().backward()
    assert_logs_match(mine, theirs)
    for (name, p), tp in zip(model.named_parameters(), t_model.parameters()):
        np.testing.assert_allclose(p.grad, tp.grad.numpy(), err_msg=name, **TOLERANCE)
    if input_requires_grad:
        np.testing.assert_allclose(x.grad, tx.grad.numpy(), **TOLERANCE)


def run_two_inputs(torch, a_requires_grad, b_requires_grad, extra=()):
    """The two-input module in both frameworks with logging hooks (the full hook negates grad_input)."""
    module = TwoInputs()
    t_module = torch_copy(torch, module)
    rng = np.random.default_rng(6)
    a_values, b_values = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    mine, theirs = [], []
    record_backward_hooks([("m", module)], mine, replace_input="m")
    record_backward_hooks([("m", t_module)], theirs, replace_input="m")
    a, b = Tensor(a_values, requires_grad=a_requires_grad), Tensor(b_values, requires_grad=b_requires_grad)
    ta = torch.tensor(a_values, requires_grad=a_requires_grad)
    tb = torch.tensor(b_values, requires_grad=b_requires_grad)
    (module(a, b, *extra) ** 2).sum().backward()
    (t_module(ta, tb, *extra) ** 2).sum().backward()
    np.testing.assert_allclose(module.scale.grad, t_module.scale.grad.numpy(), **TOLERANCE)
    for mine_input, their_input in ((a, ta), (b, tb)):
        if their_input.requires_grad:
            np.testing.assert_allclose(mine_input.grad, their_input.grad.numpy(), **TOLERANCE)
    return mine, theirs


@pytest.mark.torch
def test_full_backward_hooks_on_a_module_with_two_inputs_match_pytorch(torch):
    mine, theirs = run_two_inputs(torch, True, True)
    assert_logs_match(mine, theirs)


@pytest.mark.torch
@pytest.mark.parametrize(("a_requires_grad", "b_requires_grad"), [(True, False), (False, True)])
def test_a_replaced_grad_input_reaches_the_input_that_requires_grad_as_in_pytorch(torch, a_requires_grad,
                                                                                    b_requires_grad):  # fmt: skip
    mine, theirs = run_two_inputs(torch, a_requires_grad, b_requires_grad)
    which = 0 if a_requires_grad else 1
    np.testing.assert_allclose(mine[-1][2][which], theirs[-1][2][which], **TOLERANCE)
    np.testing.assert_allclose(mine[-1][3][0], theirs[-1][3][0], **TOLERANCE)


@pytest.mark.torch
def test_grad_input_has_an_entry_for_every_positional_argument_as_in_pytorch(torch):
    mine, theirs = run_two_inputs(torch, True, True, extra=(0.25,))
    assert_logs_match(mine, theirs)


@pytest.mark.torch
def test_grad_input_of_a_tensor_that_needs_no_grad_is_zeros_as_in_pytorch(torch):
    mine, theirs = run_two_inputs(torch, True, False)
    assert_logs_match(mine, theirs)


@pytest.mark.torch
def test_full_backward_hooks_on_a_module_with_two_outputs_match_pytorch(torch):
    module = TwoOutputs()
    t_module = torch_copy(torch, module)
    x_values = np.random.default_rng(7).standard_normal((4, 2))
    mine, theirs = [], []
    record_backward_hooks([("m", module), ("m.layer", module.layer)], mine, replace_output="m")
    record_backward_hooks([("m", t_module), ("m.layer", t_module.layer)], theirs, replace_output="m")
    x, tx = Tensor(x_values, requires_grad=True), torch.tensor(x_values, requires_grad=True)
    first, second = module(x)
    t_first, t_second = t_module(tx)
    (first.sum() + (second * 0.5).sum()).backward()
    (t_first.sum() + (t_second * 0.5).sum()).backward()
    assert_logs_match(mine, theirs)
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), **TOLERANCE)


@pytest.mark.torch
def test_full_backward_hook_of_a_module_used_twice_runs_once_per_call_as_in_pytorch(torch):
    layer = linear(2, 2)
    t_layer = torch_copy(torch, layer)
    x_values = np.array([[0.5, -1.0]])
    mine, theirs = [], []
    record_backward_hooks([("layer", layer)], mine)
    record_backward_hooks([("layer", t_layer)], theirs)
    x, tx = Tensor(x_values, requires_grad=True), torch.tensor(x_values, requires_grad=True)
    (layer(layer(x).tanh()) ** 2).sum().backward()
    (t_layer(t_layer(tx).tanh()) ** 2).sum().backward()
    assert len(mine) == 4
    assert_logs_match(mine, theirs)


def test_a_full_backward_hook_returning_the_wrong_number_of_gradients_is_an_error():
    layer = linear()
    layer.register_full_backward_hook(lambda module, grad_input, grad_output: (grad_input[0], grad_input[0]))
    with pytest.raises(ValueError, match="returned 2 gradients for 1 inputs"):
        layer(leaf(np.ones((1, 2)))).sum().backward()


def test_backward_hooks_do_not_run_for_a_call_made_under_no_grad():
    layer = linear()
    calls = []
    layer.register_full_backward_hook(lambda m, gi, go: calls.append(1))
    with tg.no_grad():
        out = layer(leaf(np.ones((1, 2))))
    assert not out.requires_grad and calls == []


def test_removed_module_hooks_no_longer_run():
    layer = linear()
    calls = []
    handles = [
        layer.register_forward_pre_hook(lambda m, a: calls.append("pre")),
        layer.register_forward_hook(lambda m, a, o: calls.append("forward")),
        layer.register_full_backward_pre_hook(lambda m, go: calls.append("backward pre")),
        layer.register_full_backward_hook(lambda m, gi, go: calls.append("backward")),
    ]
    layer(leaf(np.ones((1, 2)))).sum().backward()
    assert calls == ["pre", "forward", "backward pre", "backward"]
    for handle in handles:
        handle.remove()
    calls.clear()
    layer(leaf(np.ones((1, 2)))).sum().backward()
    assert calls == []


def test_backward_pre_hooks_run_in_order_with_prepend():
    layer = linear()
    order = []
    layer.register_full_backward_pre_hook(lambda m, go: order.append(1))
    layer.register_full_backward_pre_hook(lambda m, go: order.append(0), prepend=True)
    layer.register_full_backward_hook(lambda m, gi, go: order.append(3))
    layer.register_full_backward_hook(lambda m, gi, go: order.append(2), prepend=True)
    layer(leaf(np.ones((1, 2)))).sum().backward()
    assert order == [0, 1, 2, 3]


# --------------------------------------------------------------------------------------------------------------
# Module hooks under create_graph, with tg.grad, and in threads
# --------------------------------------------------------------------------------------------------------------


def gradient_penalty(model, points):
    x = Tensor(points, requires_grad=True)
    (gradient,) = tg.grad(model(x).sum(), x, create_graph=True)
    return ((gradient.norm(axis=1) - 1) ** 2).mean()


def test_observing_backward_hooks_change_nothing_in_a_gradient_penalty():
    points = np.random.default_rng(8).standard_normal((5, 2))
    model = nn.Sequential(linear(2, 4), nn.Tanh(), linear(4, 1, seed=1))
    gradient_penalty(model, points).backward()
    expected = [None if p.grad is None else p.grad.copy() for p in model.parameters()]
    model.zero_grad()
    kinds = []
    for _, module in named_submodules(model):
        module.register_full_backward_hook(lambda m, gi, go: kinds.append({type(g) for g in (*gi, *go)} - {None}))
        module.register_full_backward_pre_hook(lambda m, go: kinds.append({type(g) for g in go}))
        module.register_forward_hook(lambda m, a, o: None)
    gradient_penalty(model, points).backward()
    for (name, p), e in zip(model.named_parameters(), expected):
        if e is None:
            assert p.grad is None, name
        else:
            np.testing.assert_allclose(p.grad, e, rtol=1e-13, atol=1e-15, err_msg=name)
    assert {Tensor} in kinds, "under create_graph the hooks get Tensors"


def test_full_backward_hooks_get_tensors_under_create_graph_and_leave_the_second_derivative_alone():
    module = nn.Tanh()
    calls = []
    module.register_full_backward_hook(lambda m, gi, go: calls.append((type(gi[0]), type(go[0]))))
    x = leaf([0.5, -1.0])
    (gradient,) = tg.grad(module(x).sum(), x, create_graph=True)
    assert calls == [(Tensor, Tensor)]
    (second,) = tg.grad(gradient.sum(), x)
    t = np.tanh(x.data)
    np.testing.assert_allclose(second.data, -2 * t * (1 - t**2), rtol=1e-14)


def test_full_backward_hooks_are_not_called_by_a_second_derivative_as_in_pytorch():
    module = nn.Tanh()
    calls = []
    module.register_full_backward_hook(lambda m, gi, go: calls.append(1))
    x = leaf([0.5, -1.0])
    (gradient,) = tg.grad(module(x).sum(), x, create_graph=True)
    tg.grad(gradient.sum(), x)
    assert calls == [1]


def test_a_backward_hook_that_rescales_grad_input_gives_the_true_derivative_of_a_gradient_penalty():
    points = np.random.default_rng(9).standard_normal((5, 2))
    model = nn.Sequential(linear(2, 4), nn.Tanh(), linear(4, 1, seed=1))
    model[1].register_full_backward_hook(lambda m, gi, go: (gi[0] * 0.5,))
    gradient_penalty(model, points).backward()
    weight = model[0].weight
    numerical = np.zeros(weight.shape)
    for index in np.ndindex(weight.shape):
        original = weight.data[index]
        weight.data[index] = original + 1e-6
        plus = gradient_penalty(model, points).item()
        weight.data[index] = original - 1e-6
        minus = gradient_penalty(model, points).item()
        weight.data[index] = original
        numerical[index] = (plus - minus) / 2e-6
    np.testing.assert_allclose(weight.grad, numerical, rtol=1e-6, atol=1e-9)


@pytest.mark.torch
def test_a_backward_hook_that_rescales_grad_input_under_create_graph_matches_pytorch(torch):
    points = np.random.default_rng(9).standard_normal((5, 2))
    model = nn.Sequential(linear(2, 4), nn.Tanh(), linear(4, 1, seed=1))
    t_model = torch_copy(torch, model)
    model[1].register_full_backward_hook(lambda m, gi, go: (gi[0] * 0.5,))
    t_model[1].register_full_backward_hook(lambda m, gi, go: (gi[0] * 0.5,))
    gradient_penalty(model, points).backward()
    x = torch.tensor(points, requires_grad=True)
    (gradient,) = torch.autograd.grad(t_model(x).sum(), x, create_graph=True)
    ((gradient.norm(dim=1) - 1) ** 2).mean().backward()
    for (name, p), tp in zip(model.named_parameters(), t_model.parameters()):
        theirs = np.zeros(p.shape) if tp.grad is None else tp.grad.numpy()
        mine = np.zeros(p.shape) if p.grad is None else p.grad
        np.testing.assert_allclose(mine, theirs, err_msg=name, rtol=1e-10, atol=1e-12)


def test_module_backward_hooks_run_under_tg_grad():
    layer = linear()
    seen = []
    layer.register_full_backward_hook(lambda m, gi, go: seen.append((as_array(gi[0]), as_array(go[0]))))
    x = leaf(np.ones((1, 2)))
    (d_x,) = tg.grad(layer(x).sum(), x)
    np.testing.assert_array_equal(seen[0][1], np.ones((1, 3)))
    np.testing.assert_allclose(seen[0][0], d_x.data)
    assert layer.weight.grad is None


def test_module_hooks_in_threads_see_their_own_calls():
    layer = linear(2, 2)
    lock = threading.Lock()
    counts = {"forward": 0, "backward": 0}

    def count(kind):
        with lock:
            counts[kind] += 1

    layer.register_forward_hook(lambda m, a, o: count("forward"))
    layer.register_full_backward_hook(lambda m, gi, go: count("backward"))

    def work(index):
        for _ in range(25):
            x = Tensor(np.full((1, 2), float(index)), requires_grad=True)
            seen = []
            handle = layer.register_forward_hook(lambda m, a, o, seen=seen: seen.append(a[0]))
            out = layer(x)
            handle.remove()
            # Hooks belong to the module, so this one also sees other threads' calls; it must see this one's.
            assert any(np.array_equal(item.data, x.data) for item in seen), "a thread's own call was missed"
            (d_x,) = tg.grad(out.sum(), x)
            np.testing.assert_allclose(d_x.data, layer.weight.data.sum(axis=0, keepdims=True))

    assert not run_threads(work, 4)
    assert counts == {"forward": 100, "backward": 100}


# --------------------------------------------------------------------------------------------------------------
# Post-accumulate-grad hooks
# --------------------------------------------------------------------------------------------------------------


def test_post_accumulate_grad_hook_runs_once_per_backward_after_the_total_is_in_grad():
    w = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    seen = []
    handle = w.register_post_accumulate_grad_hook(lambda t: seen.append(np.array(t.grad)))
    ((w * w).sum() + w.sum()).backward()  # w is used twice: the hook sees the sum, once
    assert len(seen) == 1
    np.testing.assert_array_equal(seen[0], [3.0, 5.0])
    (w * 2.0).sum().backward()  # accumulates
    np.testing.assert_array_equal(seen[1], [5.0, 7.0])
    handle.remove()
    (w * 2.0).sum().backward()
    assert len(seen) == 2


def test_post_accumulate_grad_hook_keeps_the_fast_walk_and_runs_on_the_general_one():
    w = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    calls = []
    w.register_post_accumulate_grad_hook(lambda t: calls.append(type(t.grad).__name__))
    before = autograd._tensor_hook_count
    (w * w).sum().backward()
    assert autograd._tensor_hook_count == before  # not a tensor hook: the fast path stays
    (w * w).sum().backward(create_graph=True)
    tg.grad((w * w).sum(), w)  # grad() accumulates nothing, so no call
    assert calls == ["ndarray", "Tensor"]


def test_post_accumulate_grad_hook_is_for_leaves_that_require_grad():
    x = Tensor(np.array([1.0]), requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf tensors"):
        (x * 2.0).register_post_accumulate_grad_hook(lambda t: None)
    with pytest.raises(RuntimeError, match="does not require grad"):
        Tensor(np.array([1.0])).register_post_accumulate_grad_hook(lambda t: None)
    with pytest.raises(TypeError, match="takes a function"):
        x.register_post_accumulate_grad_hook(3)


def test_post_accumulate_grad_hooks_stop_counting_when_their_tensor_dies():
    import gc

    gc.collect()  # earlier tests' tensors, with their hooks, must not die during this one
    before = autograd._post_hook_count
    w = Tensor(np.array([1.0]), requires_grad=True)
    w.register_post_accumulate_grad_hook(lambda t: None)
    assert autograd._post_hook_count == before + 1
    del w
    gc.collect()
    assert autograd._post_hook_count == before


# --------------------------------------------------------------------------------------------------------------
# A hook that refers to its own owner does not keep it alive (nor every later backward off the fast path)
# --------------------------------------------------------------------------------------------------------------


def hook_counts():
    from tinygrad_nn.nn import module as nn_module

    return autograd._tensor_hook_count, autograd._post_hook_count, nn_module._module_hook_count


def test_hooks_that_close_over_their_owner_stop_counting_when_it_is_dropped():
    import gc

    def make_and_drop() -> tuple:
        x = leaf([1.0, 2.0])
        x.register_hook(lambda grad: grad * x)  # a cycle: x -> its hooks -> the lambda -> x
        x.register_post_accumulate_grad_hook(lambda tensor: x)
        y = x * 2
        y.register_hook(lambda grad: grad + y.data)
        layer = linear()
        layer.register_forward_hook(lambda module, args, output: layer and output)
        monitored = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
        tg.GradientMonitor(monitored).attach()  # never detached: its bound methods refer to the model
        return hook_counts()  # everything above goes out of scope here

    gc.collect()
    before = hook_counts()
    assert make_and_drop() != before
    gc.collect()
    assert hook_counts() == before


def test_removing_a_hook_after_its_owner_died_does_not_count_it_twice():
    import gc

    gc.collect()
    before = hook_counts()
    x = leaf([1.0])
    handle = x.register_hook(lambda grad: grad)
    post = x.register_post_accumulate_grad_hook(lambda tensor: None)
    layer = linear()
    module_handle = layer.register_forward_hook(lambda module, args, output: None)
    del x, layer
    gc.collect()
    assert hook_counts() == before
    handle.remove(), post.remove(), module_handle.remove()
    assert hook_counts() == before


def test_a_custom_backward_returning_a_tensor_is_the_same_error_whether_or_not_hooks_exist():
    class ReturnsTensor(Function):
        @staticmethod
        def forward(ctx, a, b):
            ctx.save_for_backward(a, b)
            return a * b

        @staticmethod
        def backward(ctx, grad):
            a, b = ctx.saved_tensors
            return Tensor(grad * b), grad * a

    for with_a_hook in (False, True):
        elsewhere = leaf([1.0])
        handle = elsewhere.register_hook(lambda grad: grad) if with_a_hook else None  # the general walk
        x, y = leaf([1.0, 2.0]), leaf([3.0, 4.0])
        with pytest.raises(tg.BackwardError, match=r"ReturnsTensor\.backward returned a Tensor for input 0"):
            ReturnsTensor.apply(x, y).sum().backward()
        if handle is not None:
            handle.remove()
