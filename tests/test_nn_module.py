"""Module, Parameter, Sequential and ModuleList: registration, walking the tree, state dicts, printing."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest

import tinygrad_nn as tg
from tinygrad_nn import Tensor, nn


@pytest.fixture
def float32_default():
    previous = tg.get_default_dtype()
    tg.set_default_dtype("float32")
    yield
    tg.set_default_dtype(previous)


class Encoder(nn.Module):
    """A custom module holding a Sequential, a plain Parameter and a plain attribute."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
        self.scale = nn.Parameter(np.ones(2))
        self.name = "not registered"

    def forward(self, x):
        return self.encoder(x) * self.scale


class Tied(nn.Module):
    """Two attributes holding the same Linear, and a Parameter shared with it."""

    def __init__(self):
        super().__init__()
        self.first = nn.Linear(3, 3)
        self.second = self.first
        self.weight_again = self.first.weight

    def forward(self, x):
        return self.second(self.first(x))


# ------------------------------------------------------------------------------------------------------------
# Parameter
# ------------------------------------------------------------------------------------------------------------


def test_parameter_is_a_tensor_that_requires_grad_and_copies_its_data():
    array = np.array([1.0, 2.0, 3.0])
    parameter = nn.Parameter(array)
    assert isinstance(parameter, Tensor)
    assert parameter.requires_grad and parameter.is_leaf
    parameter.data[0] = 100.0
    assert array[0] == 1.0  # the caller's array is untouched


def test_parameter_from_a_tensor_copies_the_tensors_data():
    source = Tensor(np.zeros(3))
    parameter = nn.Parameter(source)
    parameter.data += 1
    assert np.array_equal(source.data, np.zeros(3))


def test_parameter_dtype_and_requires_grad_arguments():
    assert nn.Parameter(np.zeros(2), dtype=np.float32).dtype == np.float32
    frozen = nn.Parameter(np.zeros(2), requires_grad=False)
    assert not frozen.requires_grad


def test_parameter_from_a_python_list_follows_tensors_rule(float32_default):
    assert nn.Parameter([1, 2]).dtype == np.float32
    assert nn.Parameter([1.0, 2.0]).dtype == np.float32


def test_parameter_of_integers_is_refused():
    with pytest.raises(TypeError, match="floating-point"):
        nn.Parameter(np.array([1, 2]))


# ------------------------------------------------------------------------------------------------------------
# Registration
# ------------------------------------------------------------------------------------------------------------


def test_assigning_parameters_and_modules_registers_them_in_order():
    model = Encoder()
    assert list(model._parameters) == ["scale"]
    assert list(model._modules) == ["encoder"]
    assert model.name == "not registered"
    assert "name" not in model._parameters and "name" not in model._modules


def test_named_parameters_give_dotted_names_through_a_sequential():
    model = Encoder()
    names = [name for name, _ in model.named_parameters()]
    # The module's own parameters first, then each child's, as PyTorch lists them.
    assert names == ["scale", "encoder.0.weight", "encoder.0.bias", "encoder.2.weight", "encoder.2.bias"]
    assert [p for _, p in model.named_parameters()] == list(model.parameters())
    assert dict(model.named_parameters())["encoder.2.weight"] is model.encoder[2].weight


def test_named_parameters_with_prefix_and_without_recursion():
    model = Encoder()
    assert [n for n, _ in model.named_parameters(recurse=False)] == ["scale"]
    assert [n for n, _ in model.named_parameters(prefix="net")][:2] == ["net.scale", "net.encoder.0.weight"]
    assert len(list(model.parameters(recurse=False))) == 1


def test_shared_parameters_and_modules_are_listed_once():
    model = Tied()
    # The module's own parameters come first, so the shared weight takes its first name, as in PyTorch.
    assert [n for n, _ in model.named_parameters()] == ["weight_again", "first.bias"]
    assert list(model.parameters()) == [model.first.weight, model.first.bias]
    assert [n for n, _ in model.named_modules()] == ["", "first"]
    # As in PyTorch, the state dict lists a shared parameter under every name, so each alias loads.
    assert list(model.state_dict()) == ["weight_again", "first.weight", "first.bias", "second.weight", "second.bias"]
    model.load_state_dict(model.state_dict())


def test_a_shared_child_is_listed_once():
    model = Tied()
    assert [name for name, _ in model.named_children()] == ["first"]


def test_reassigning_a_parameter_to_none_keeps_the_name_without_a_parameter():
    layer = nn.Linear(3, 2)
    layer.bias = None
    assert layer.bias is None
    assert [n for n, _ in layer.named_parameters()] == ["weight"]
    assert list(layer.state_dict()) == ["weight"]
    layer.bias = nn.Parameter(np.zeros(2))  # and a Parameter may come back
    assert [n for n, _ in layer.named_parameters()] == ["weight", "bias"]


def test_reassigning_a_module_to_none_drops_it_from_the_tree():
    model = Encoder()
    model.encoder = None
    assert list(model.children()) == []
    assert [n for n, _ in model.named_parameters()] == ["scale"]


def test_assigning_a_tensor_to_a_parameter_name_is_a_type_error():
    layer = nn.Linear(3, 2)
    with pytest.raises(TypeError, match=r"cannot assign Tensor to 'weight', a parameter of Linear.*\.data"):
        layer.weight = Tensor(np.zeros((2, 3)))
    with pytest.raises(TypeError, match="cannot assign ndarray to 'bias'"):
        layer.bias = np.zeros(2)
    assert isinstance(layer.weight, nn.Parameter)


def test_assigning_a_non_module_to_a_submodule_name_is_a_type_error():
    model = Encoder()
    with pytest.raises(TypeError, match="cannot assign int to 'encoder', a submodule of Encoder"):
        model.encoder = 3
    assert isinstance(model.encoder, nn.Sequential)


def test_a_parameter_may_replace_a_module_and_a_module_a_parameter():
    model = Encoder()
    model.encoder = nn.Parameter(np.zeros(1))
    assert "encoder" in model._parameters and "encoder" not in model._modules
    model.scale = nn.Identity()
    assert [n for n, _ in model.named_children()] == ["scale"]
    assert [n for n, _ in model.named_parameters()] == ["encoder"]


def test_deleting_an_attribute_unregisters_it():
    model = Encoder()
    del model.scale
    del model.encoder
    assert list(model.parameters()) == []
    assert not hasattr(model, "scale")


def test_forgetting_super_init_is_a_clear_attribute_error():
    class Forgetful(nn.Module):
        def __init__(self):
            self.layer = nn.Linear(2, 2)

    with pytest.raises(AttributeError, match=r"before Module.__init__\(\).*super\(\).__init__\(\).*Forgetful"):
        Forgetful()

    class ForgetfulParameter(nn.Module):
        def __init__(self):
            self.scale = nn.Parameter(np.ones(1))

    with pytest.raises(AttributeError, match="cannot assign Parameter 'scale'"):
        ForgetfulParameter()


def test_register_parameter_and_add_module():
    model = nn.Module()
    model.register_parameter("gain", nn.Parameter(np.ones(1)))
    model.register_parameter("offset", None)
    model.add_module("head", nn.Linear(1, 1))
    assert [n for n, _ in model.named_parameters()] == ["gain", "head.weight", "head.bias"]
    assert model.offset is None
    with pytest.raises(TypeError, match="register_parameter\\('w'\\) needs a Parameter or None, got Tensor"):
        model.register_parameter("w", Tensor([1.0]))
    with pytest.raises(TypeError, match="add_module\\('m'\\) needs a Module or None, got int"):
        model.add_module("m", 3)
    model.plain = 1
    with pytest.raises(KeyError, match="'plain' is already an attribute"):
        model.register_parameter("plain", nn.Parameter(np.ones(1)))


# ------------------------------------------------------------------------------------------------------------
# Calling and walking the tree
# ------------------------------------------------------------------------------------------------------------


def test_call_runs_forward_with_its_arguments():
    class Adder(nn.Module):
        def forward(self, a, b=0.0):
            return a + b

    assert Adder()(Tensor(1.0), b=Tensor(2.0)).item() == 3.0


def test_module_without_forward_says_so():
    with pytest.raises(NotImplementedError, match="Module must define forward"):
        nn.Module()(Tensor(1.0))


def test_children_modules_and_named_modules():
    model = Encoder()
    assert list(model.children()) == [model.encoder]
    assert [n for n, _ in model.named_children()] == ["encoder"]
    names = [n for n, _ in model.named_modules()]
    assert names == ["", "encoder", "encoder.0", "encoder.1", "encoder.2"]
    modules = list(model.modules())
    assert modules[0] is model and modules[1] is model.encoder and modules[4] is model.encoder[2]
    assert [n for n, _ in model.named_modules(prefix="root")][:2] == ["root", "root.encoder"]


def test_zero_grad_sets_gradients_to_none_or_to_zeros_in_place():
    model = Encoder()
    model(Tensor(np.ones((2, 4)))).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    grad_before = model.scale.grad
    model.zero_grad(set_to_none=False)
    assert model.scale.grad is grad_before  # the same array, zeroed in place
    assert all(np.array_equal(p.grad, np.zeros_like(p.data)) for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    model.zero_grad(set_to_none=False)  # parameters without a grad stay without one
    assert all(p.grad is None for p in model.parameters())


def test_gradients_accumulate_until_zeroed():
    layer = nn.Linear(2, 1)
    x = Tensor(np.array([[1.0, 2.0]]))
    layer(x).sum().backward()
    once = layer.weight.grad.copy()
    layer(x).sum().backward()
    assert np.array_equal(layer.weight.grad, 2 * once)


def test_train_and_eval_propagate_to_every_descendant():
    model = Encoder()
    assert all(m.training for m in model.modules())
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    assert model.train() is model
    assert all(m.training for m in model.modules())
    model.encoder.train(False)
    assert model.training and not model.encoder[0].training


def test_repr_shows_the_tree_like_pytorch():
    expected = (
        "Encoder(\n"
        "  (encoder): Sequential(\n"
        "    (0): Linear(in_features=4, out_features=3, bias=True)\n"
        "    (1): ReLU()\n"
        "    (2): Linear(in_features=3, out_features=2, bias=True)\n"
        "  )\n"
        ")"
    )
    assert repr(Encoder()) == expected
    assert repr(nn.Linear(2, 5, bias=False)) == "Linear(in_features=2, out_features=5, bias=False)"
    assert repr(nn.Sequential()) == "Sequential()"
    assert repr(nn.Softmax(axis=0)) == "Softmax(dim=0)"
    assert repr(nn.CrossEntropyLoss()) == "CrossEntropyLoss()"
    assert repr(nn.MSELoss(reduction="sum")) == "MSELoss(reduction='sum')"


def test_module_to_converts_parameters_and_gradients_in_place():
    model = Encoder()
    model(Tensor(np.ones((1, 4)))).sum().backward()
    assert model.to(np.float32) is model
    assert all(p.dtype == np.float32 and p.grad.dtype == np.float32 for p in model.parameters())
    out = model(Tensor(np.ones((1, 4), dtype=np.float32)))
    assert out.dtype == np.float32
    with pytest.raises(TypeError, match="floating-point dtype, got int64"):
        model.to(np.int64)


# ------------------------------------------------------------------------------------------------------------
# Sequential and ModuleList
# ------------------------------------------------------------------------------------------------------------


def test_sequential_feeds_modules_in_order():
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    x = Tensor(np.array([[0.5, -1.0]]))
    expected = seq[2](seq[1](seq[0](x)))
    assert np.array_equal(seq(x).data, expected.data)


def test_sequential_indexing_len_iteration_and_children_names():
    first, second, third = nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)
    seq = nn.Sequential(first, second, third)
    assert seq[0] is first and seq[-1] is third and seq[-3] is first
    assert len(seq) == 3
    assert list(seq) == [first, second, third]
    assert [n for n, _ in seq.named_children()] == ["0", "1", "2"]
    with pytest.raises(IndexError, match="index 3 is out of range for a Sequential of 3 modules"):
        seq[3]
    with pytest.raises(IndexError, match="index -4"):
        seq[-4]


def test_sequential_slice_is_a_new_sequential_sharing_the_modules():
    first, second, third = nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)
    seq = nn.Sequential(first, second, third)
    head = seq[:2]
    assert isinstance(head, nn.Sequential)
    assert list(head) == [first, second]
    assert head[0].weight is first.weight
    assert len(seq[1:]) == 2 and seq[1:][0] is second
    assert len(seq[5:]) == 0


def test_sequential_append_and_ordered_dict_constructor():
    seq = nn.Sequential(OrderedDict([("hidden", nn.Linear(2, 3)), ("act", nn.Tanh())]))
    assert [n for n, _ in seq.named_children()] == ["hidden", "act"]
    assert [n for n, _ in seq.named_parameters()] == ["hidden.weight", "hidden.bias"]
    assert seq.append(nn.Linear(3, 1)) is seq
    assert len(seq) == 3 and isinstance(seq[2], nn.Linear)
    assert seq(Tensor(np.ones((4, 2)))).shape == (4, 1)


def test_sequential_takes_only_modules():
    with pytest.raises(TypeError, match="Sequential takes Modules, but item 1 is a int"):
        nn.Sequential(nn.ReLU(), 3)
    with pytest.raises(TypeError, match="item 0 is a list"):
        nn.Sequential([nn.ReLU()])
    with pytest.raises(TypeError, match="item 1 is a function"):
        nn.Sequential(nn.ReLU(), lambda x: x)
    with pytest.raises(TypeError, match="Sequential takes Modules"):
        nn.Sequential(nn.ReLU()).append("relu")


def test_module_list_registers_its_modules():
    layers = nn.ModuleList([nn.Linear(2, 2), nn.Linear(2, 2)])
    assert len(layers) == 2
    assert layers[1] is list(layers)[1]
    assert layers.append(nn.ReLU()) is layers
    assert [n for n, _ in layers.named_parameters()] == ["0.weight", "0.bias", "1.weight", "1.bias"]

    class Stack(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList(nn.Linear(2, 2) for _ in range(3))

        def forward(self, x):
            for layer in self.layers:
                x = layer(x)
            return x

    model = Stack()
    assert [n for n, _ in model.named_parameters()][-1] == "layers.2.bias"
    assert model(Tensor(np.ones((1, 2)))).shape == (1, 2)
    with pytest.raises(TypeError, match="ModuleList takes Modules, got int"):
        nn.ModuleList([nn.ReLU(), 3])


# ------------------------------------------------------------------------------------------------------------
# state_dict and load_state_dict
# ------------------------------------------------------------------------------------------------------------


def test_state_dict_holds_copies_by_dotted_name():
    model = Encoder()
    state = model.state_dict()
    assert list(state) == [n for n, _ in model.named_parameters()]
    assert all(isinstance(array, np.ndarray) for array in state.values())
    assert np.array_equal(state["encoder.0.weight"], model.encoder[0].weight.data)
    state["encoder.0.weight"][...] = 123.0  # mutating the copy leaves the model alone
    assert not np.any(model.encoder[0].weight.data == 123.0)
    model.scale.data[...] = -1.0  # and training the model leaves the copy alone
    assert np.array_equal(state["scale"], np.ones(2))


def test_load_state_dict_round_trip_writes_in_place():
    source, target = Encoder(), Encoder()
    weight_array = target.encoder[0].weight.data
    result = target.load_state_dict(source.state_dict())
    assert result == nn.IncompatibleKeys([], [])
    assert result.missing_keys == [] and result.unexpected_keys == []
    for (name, a), (_, b) in zip(source.named_parameters(), target.named_parameters()):
        assert np.array_equal(a.data, b.data), name
    assert target.encoder[0].weight.data is weight_array  # an optimizer holding the array still sees the update
    x = Tensor(np.ones((3, 4)))
    assert np.array_equal(source(x).data, target(x).data)


def test_load_state_dict_accepts_tensors_and_casts_to_the_parameters_dtype():
    model = nn.Linear(2, 1, dtype=np.float32)
    model.load_state_dict({"weight": Tensor(np.array([[1.5, 2.5]])), "bias": np.array([3])})
    assert model.weight.dtype == np.float32 and model.bias.dtype == np.float32
    assert model.weight.data.tolist() == [[1.5, 2.5]] and model.bias.data.tolist() == [3.0]


def snapshot(model):
    return {name: p.data.copy() for name, p in model.named_parameters()}


def assert_unchanged(model, before):
    for name, p in model.named_parameters():
        assert np.array_equal(p.data, before[name]), f"{name} changed although loading failed"


def test_load_state_dict_strict_names_missing_keys_and_changes_nothing():
    model = Encoder()
    before = snapshot(model)
    state = {name: np.zeros_like(array) for name, array in before.items()}
    del state["encoder.2.bias"], state["scale"]
    with pytest.raises(ValueError, match=r"changed nothing.*missing keys: scale, encoder\.2\.bias"):
        model.load_state_dict(state)
    assert_unchanged(model, before)


def test_load_state_dict_strict_names_unexpected_keys_and_changes_nothing():
    model = Encoder()
    before = snapshot(model)
    state = {name: np.zeros_like(array) for name, array in before.items()}
    state["decoder.weight"] = np.zeros(3)
    with pytest.raises(ValueError, match=r"unexpected keys: decoder\.weight") as error:
        model.load_state_dict(state)
    assert "missing" not in str(error.value)
    assert_unchanged(model, before)


def test_load_state_dict_names_mismatched_shapes_with_both_shapes_and_changes_nothing():
    model = Encoder()
    before = snapshot(model)
    state = {name: np.zeros_like(array) for name, array in before.items()}
    state["encoder.2.weight"] = np.zeros((3, 2))  # the first keys are fine: they must not be written either
    with pytest.raises(
        ValueError,
        match=r"mismatched shapes: encoder\.2\.weight: the checkpoint has shape \(3, 2\), the model \(2, 3\)",
    ):
        model.load_state_dict(state)
    assert_unchanged(model, before)


def test_load_state_dict_lists_every_problem_at_once():
    model = Encoder()
    before = snapshot(model)
    state = {"encoder.0.weight": np.zeros((4, 3)), "encoder.0.bias": np.zeros(3), "extra": np.zeros(1)}
    with pytest.raises(ValueError) as error:
        model.load_state_dict(state)
    message = str(error.value)
    assert "missing keys: scale, encoder.2.weight, encoder.2.bias" in message
    assert "unexpected keys: extra" in message
    assert "encoder.0.weight: the checkpoint has shape (4, 3), the model (3, 4)" in message
    assert_unchanged(model, before)


def test_load_state_dict_refuses_non_numeric_arrays():
    model = nn.Linear(1, 1)
    with pytest.raises(ValueError, match="weight: the checkpoint holds <U1 data, not numbers"):
        model.load_state_dict({"weight": np.array([["a"]]), "bias": np.zeros(1)})


def test_load_state_dict_non_strict_returns_incompatible_keys_and_loads_the_rest():
    model = Encoder()
    state = {"scale": np.array([2.0, 3.0]), "decoder.bias": np.zeros(2)}
    result = model.load_state_dict(state, strict=False)
    assert isinstance(result, nn.IncompatibleKeys)
    assert result.missing_keys == ["encoder.0.weight", "encoder.0.bias", "encoder.2.weight", "encoder.2.bias"]
    assert result.unexpected_keys == ["decoder.bias"]
    assert model.scale.data.tolist() == [2.0, 3.0]


def test_load_state_dict_non_strict_still_refuses_a_wrong_shape():
    model = Encoder()
    before = snapshot(model)
    with pytest.raises(ValueError, match=r"scale: the checkpoint has shape \(3,\), the model \(2,\)"):
        model.load_state_dict({"scale": np.zeros(3), "encoder.0.bias": np.zeros(3)}, strict=False)
    assert_unchanged(model, before)


def test_state_dict_survives_save_and_load(tmp_path):
    model = Encoder()
    tg.save(model.state_dict(), tmp_path / "model.npz")
    fresh = Encoder()
    fresh.load_state_dict(tg.load(tmp_path / "model.npz"))
    x = Tensor(np.linspace(-1, 1, 8).reshape(2, 4))
    assert np.array_equal(model(x).data, fresh(x).data)
