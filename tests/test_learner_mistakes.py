"""A learner's mistakes get a clear error or a hint, never a silent wrong result (issue #11)."""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_nn as tg
from tinygrad_nn import Tensor, nn

# --------------------------------------------------------------------------------------------------------------
# Tensors refuse what they cannot differentiate
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "dtype"),
    [
        (lambda x: x * 1j, "complex128"),
        (lambda x: x * np.array([1.0, 2.0], dtype=object), "object"),
        (lambda x: 1j + x, "complex128"),
        (lambda x: x / np.array([1 + 1j, 2]), "complex128"),
        (lambda x: tg.where(np.array([True, False]), x, np.array([1j, 2j])), "complex128"),
    ],
)
def test_an_op_that_turns_a_tensor_requiring_grad_into_a_non_number_is_a_type_error(make, dtype):
    x = Tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(TypeError, match=rf"has dtype {dtype}, which cannot carry a gradient"):
        make(x)


def test_an_explicit_cast_to_integers_leaves_the_graph_quietly():
    x = Tensor([1.5, 2.5], requires_grad=True)
    labels = x.astype(np.int64)
    assert labels.dtype == np.int64 and not labels.requires_grad


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([1.0, None], r"None \(NoneType\)"),
        ([[1.0, 2.0], [3.0, None]], r"None"),
        (["1", 2.0], r"strings"),
        ([1.0, 2j], r"complex numbers"),
        ([[1.0, 2.0], [3.0]], r"inhomogeneous"),
        ({"a": 1}, r"dict"),
    ],
)
def test_data_that_is_not_all_numbers_is_a_type_error_not_a_nan(data, message):
    with pytest.raises(TypeError, match=message):
        Tensor(data)


def test_none_is_not_silently_nan_in_the_factory_either():
    with pytest.raises(TypeError, match="None"):
        tg.tensor([1.0, None])


# --------------------------------------------------------------------------------------------------------------
# .grad
# --------------------------------------------------------------------------------------------------------------


def test_assigning_a_grad_of_the_wrong_shape_names_both_shapes():
    leaf = Tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ValueError, match=r"shape \(3, 2\).*shape \(2,\)"):
        leaf.grad = np.zeros((3, 2))
    assert leaf.grad is None


def test_assigning_a_grad_of_the_wrong_dtype_names_both_dtypes():
    leaf = Tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ValueError, match=r"dtype int64.*dtype float64"):
        leaf.grad = np.array([1, 2])
    with pytest.raises(ValueError, match=r"dtype float32.*dtype float64"):
        leaf.grad = np.zeros(2, dtype=np.float32)


def test_assigning_something_that_is_not_an_array_is_a_type_error():
    leaf = Tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(TypeError, match="ndarray, a Tensor or None, got list"):
        leaf.grad = [0.0, 0.0]


def test_a_correct_grad_assignment_is_kept_and_accumulated_into():
    leaf = Tensor([1.0, 2.0], requires_grad=True)
    leaf.grad = np.array([10.0, 10.0])
    (leaf * 2.0).sum().backward()
    np.testing.assert_array_equal(leaf.grad, [12.0, 12.0])


def test_reading_the_grad_of_a_computed_tensor_warns_and_points_to_retain_grad():
    x = Tensor([1.0, 2.0], requires_grad=True)
    hidden = x * 2.0
    hidden.sum().backward()
    with pytest.warns(UserWarning, match=r"retain_grad\(\)"):
        assert hidden.grad is None


def test_retain_grad_keeps_a_computed_tensors_gradient_without_a_warning(recwarn):
    x = Tensor([1.0, 2.0], requires_grad=True)
    hidden = x * 2.0
    hidden.retain_grad()
    (hidden * hidden).sum().backward()
    np.testing.assert_array_equal(hidden.grad, 2 * hidden.data)
    assert hidden.retains_grad
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)]


def test_reading_a_leafs_grad_never_warns(recwarn):
    x = Tensor([1.0], requires_grad=True)
    assert x.grad is None
    assert not recwarn.list


# --------------------------------------------------------------------------------------------------------------
# The micrograd habit `w -= lr * w.grad`
# --------------------------------------------------------------------------------------------------------------


def test_micrograd_update_on_a_parameter_fails_at_once_with_what_to_do_instead():
    layer = nn.Linear(2, 1)
    nn.functional.mse_loss(layer(Tensor(np.ones((3, 2)))), np.zeros((3, 1))).backward()
    w = layer.weight
    with pytest.raises(RuntimeError, match=r"`-=` on a leaf tensor that requires grad.*w\.data -=.*no_grad.*optim"):
        w -= 0.1 * w.grad
    assert layer.weight.is_leaf and layer.weight is w


def test_the_same_update_inside_no_grad_is_pytorchs_idiom_and_works_in_place():
    layer = nn.Linear(2, 1)
    before = layer.weight.data.copy()
    nn.functional.mse_loss(layer(Tensor(np.ones((3, 2)))), np.zeros((3, 1))).backward()
    w = layer.weight
    with tg.no_grad():
        w -= 0.1 * w.grad
    np.testing.assert_allclose(layer.weight.data, before - 0.1 * layer.weight.grad)
    assert layer.weight is w and w.is_leaf


def test_in_place_update_with_a_shape_that_does_not_fit_names_the_shape():
    w = Tensor([1.0, 2.0], requires_grad=True)
    with tg.no_grad(), pytest.raises(ValueError, match=r"in-place `\+=` on a tensor of shape \(2,\)"):
        w += np.ones(3)


# --------------------------------------------------------------------------------------------------------------
# PyTorch habits get a hint or just work
# --------------------------------------------------------------------------------------------------------------


def test_dim_and_keepdim_work_as_aliases_of_axis_and_keepdims():
    x = Tensor(np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(x.sum(dim=0).data, [3.0, 5.0, 7.0])
    assert x.mean(dim=1, keepdim=True).shape == (2, 1)
    assert x.max(dim=(0, 1)).item() == 5.0
    np.testing.assert_array_equal(x.softmax(dim=1).data, x.softmax(axis=1).data)
    np.testing.assert_array_equal(nn.Softmax(dim=0)(x).data, x.softmax(axis=0).data)
    np.testing.assert_array_equal(nn.functional.log_softmax(x, dim=0).data, x.log_softmax(axis=0).data)
    assert x.argmax(dim=1).tolist() == [2, 2]
    assert tg.cat([x, x], dim=1).shape == (2, 6) and tg.stack([x, x], dim=1).shape == (2, 2, 3)
    assert nn.Flatten(start_dim=0)(Tensor(np.ones((2, 3, 4)))).shape == (24,)


def test_giving_both_axis_and_dim_is_an_error_not_a_guess():
    with pytest.raises(TypeError, match="both axis=0 and dim=1"):
        Tensor(np.ones((2, 3))).sum(axis=0, dim=1)


@pytest.mark.parametrize("device", ["cuda", "cuda:0", "mps"])
def test_moving_a_model_to_a_gpu_says_there_is_no_gpu_backend(device):
    model = nn.Linear(2, 2)
    with pytest.raises(RuntimeError, match=rf"Module\.to\('{device}'\).*no GPU backend"):
        model.to(device)
    with pytest.raises(RuntimeError, match="no GPU backend"):
        model.cuda()


def test_moving_to_the_cpu_and_to_a_dtype_work():
    model = nn.Linear(2, 2)
    assert model.to("cpu") is model and model.cpu() is model
    assert model.to("cpu", np.float32).weight.dtype == np.float32
    assert model.double().weight.dtype == np.float64
    with pytest.raises(TypeError, match=r"not a dtype|floating-point dtype"):
        model.to("banana")


def test_tg_tensor_is_pytorchs_factory():
    assert tg.tensor([1.0, 2.0]).dtype == np.float64
    assert tg.tensor([1, 2]).dtype == np.int64
    t = tg.tensor([1.0, 2.0], requires_grad=True)
    assert t.requires_grad and t.is_leaf


# --------------------------------------------------------------------------------------------------------------
# load_state_dict: all or nothing, and clear about what it was given
# --------------------------------------------------------------------------------------------------------------


def test_load_state_dict_of_a_path_says_to_load_the_file_first(tmp_path):
    model = nn.Linear(2, 2)
    with pytest.raises(TypeError, match=r"not a path.*model\.load_state_dict\(tinygrad_nn\.load\(path\)\)"):
        model.load_state_dict("digits.npz")
    with pytest.raises(TypeError, match="not a path"):
        model.load_state_dict(tmp_path / "digits.npz")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([("weight", np.zeros((2, 2))), ("bias", np.zeros(2))], r"got list; for a list of \(name, array\) pairs"),
        (None, "got NoneType"),
        (nn.Linear(2, 2), r"pass other_model\.state_dict\(\)"),
        ({0: np.zeros(2)}, "keys must be dotted names"),
        ({("weight",): np.zeros(2)}, "keys must be dotted names"),
    ],
)
def test_load_state_dict_of_something_else_is_a_clear_type_error(value, message):
    model = nn.Linear(2, 2)
    before = model.state_dict()
    with pytest.raises(TypeError, match=message):
        model.load_state_dict(value)
    for name, array in model.state_dict().items():
        np.testing.assert_array_equal(array, before[name])


def test_load_state_dict_is_all_or_nothing_even_for_a_floating_point_error():
    # The probe: a float32 model given 1e300 under errstate(all="raise") was left half overwritten.
    model = nn.Sequential(nn.Linear(2, 2, dtype=np.float32), nn.Linear(2, 2, dtype=np.float32))
    before = model.state_dict()
    state = {name: np.ones_like(array, dtype=np.float64) for name, array in before.items()}
    state["1.bias"] = np.array([1e300, 1.0])  # the last key: every earlier one would already be written
    with np.errstate(all="raise"), pytest.raises(ValueError, match=r"changed nothing.*1\.bias.*float32"):
        model.load_state_dict(state)
    for name, array in model.state_dict().items():
        np.testing.assert_array_equal(array, before[name])


def test_load_state_dict_refuses_values_that_are_not_numbers():
    model = nn.Linear(2, 2)
    state = model.state_dict()
    state["bias"] = np.array(["a", "b"])
    with pytest.raises(ValueError, match=r"changed nothing.*bias.*not numbers"):
        model.load_state_dict(state)


# --------------------------------------------------------------------------------------------------------------
# A parameter changed in place between forward and backward (PyTorch's version counter)
# --------------------------------------------------------------------------------------------------------------


def test_changing_a_saved_parameter_before_backward_raises_naming_the_op_and_shape():
    c = Tensor([1.0, 2.0], requires_grad=True)
    loss = (c * c).sum()
    with tg.no_grad():
        c -= 1.0
    with pytest.raises(tg.ModifiedInPlaceError, match=r"Mul's input 0 \(a leaf tensor of shape \(2,\)\) was modified"):
        loss.backward()
    assert c.grad is None  # nothing half-accumulated into the changed tensor
    loss = (c * c).sum()  # computed again from the new values: fine
    loss.backward()
    np.testing.assert_array_equal(c.grad, [0.0, 2.0])


def test_an_op_that_does_not_read_the_value_does_not_mind_as_in_pytorch(torch):
    w = Tensor([1.0, 2.0], requires_grad=True)
    loss = (w + 1.0).sum() * 3.0
    with tg.no_grad():
        w -= 1.0
    loss.backward()
    t = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    t_loss = (t + 1.0).sum() * 3.0
    with torch.no_grad():
        t -= 1.0
    t_loss.backward()
    np.testing.assert_array_equal(w.grad, t.grad.numpy())


def test_pytorch_raises_in_the_same_case(torch):
    t = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    loss = (t * t).sum()
    with torch.no_grad():
        t -= 1.0
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


@pytest.mark.parametrize(
    "make", [tg.optim.SGD, tg.optim.Adam, tg.optim.RMSprop, tg.optim.Adagrad], ids=lambda m: m.__name__
)
def test_a_second_backward_through_a_graph_older_than_an_optimizer_step_raises(make):
    tg.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Sigmoid(), nn.Linear(4, 1))
    optimizer = make(model.parameters(), lr=0.1)
    x = Tensor(np.ones((5, 3)))
    loss = (model(x) ** 2).mean()
    loss.backward(retain_graph=True)
    optimizer.step()
    with pytest.raises(tg.ModifiedInPlaceError, match="Linear's input 1"):
        loss.backward()


def test_the_training_loop_and_the_hand_written_update_never_trip_the_check():
    tg.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Sigmoid(), nn.Linear(4, 1))
    optimizer = tg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x, y = Tensor(np.ones((5, 3))), Tensor(np.zeros((5, 1)))
    for _ in range(3):
        loss = ((model(x) - y) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    for _ in range(3):  # the tutorials' update: forward, backward, then change in place
        loss = ((model(x) - y) ** 2).mean()
        model.zero_grad()
        loss.backward()
        with tg.no_grad():
            for parameter in model.parameters():
                parameter -= 0.1 * parameter.grad
    assert np.isfinite(loss.item())


def test_the_general_walk_and_grad_check_too():
    w = Tensor([1.0, -2.0], requires_grad=True)
    loss = (w**3).sum()
    with tg.no_grad():
        w *= 2.0
    with pytest.raises(tg.ModifiedInPlaceError, match="Pow"):
        tg.grad(loss, w, retain_graph=True)
    with pytest.raises(tg.ModifiedInPlaceError, match="Pow"):
        loss.backward(create_graph=True)
    w.register_hook(lambda g: g)  # hooks send backward to the general walk
    loss = (w * w).sum()
    with tg.no_grad():
        w += 1.0
    with pytest.raises(tg.ModifiedInPlaceError, match="Mul"):
        loss.backward()


def test_a_custom_function_is_checked_by_what_it_saved():
    class Square(tg.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return 2 * x * grad

    class Twice(tg.Function):  # saves nothing: its gradient does not depend on the value
        @staticmethod
        def forward(ctx, x):
            return 2 * x

        @staticmethod
        def backward(ctx, grad):
            return 2 * grad

    w = Tensor([1.0, 2.0], requires_grad=True)
    saved, free = Square.apply(w).sum(), Twice.apply(w).sum()
    with tg.no_grad():
        w -= 1.0
    free.backward()
    np.testing.assert_array_equal(w.grad, [2.0, 2.0])
    with pytest.raises(tg.ModifiedInPlaceError, match="Square's input 0"):
        saved.backward()
