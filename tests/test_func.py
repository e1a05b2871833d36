"""`tinygrad_nn.func`: vjp, jvp, vhp, hvp, jacobian and hessian, against ``torch.autograd.functional`` and by hand.

The functions are written once over a small namespace (`Library`) so that the same code runs on tinygrad_nn
Tensors and on PyTorch tensors. Without torch, the results are checked against finite differences, against one
another (the Hessian is the Jacobian of the gradient, hvp is H @ v, ...) and against closed forms.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

import tinygrad_nn as tg
from tinygrad_nn import Tensor, func

TOLERANCE = {"rtol": 1e-9, "atol": 1e-11}

# Tutorial 004's training set (examples/tutorial_004_sichkar.py): the output is the first input.
NEURON_INPUTS = np.array([[1, 1, 1], [1, 0, 1], [0, 0, 1], [0, 1, 1]], dtype=float)
NEURON_OUTPUTS = np.array([[1, 1, 0, 0]], dtype=float).T


def tutorial_initial_weights() -> np.ndarray:
    """The tutorial's starting weights, drawn as it draws them, without touching numpy's global generator."""
    return 2 * np.random.RandomState(1).random_sample((3, 1)) - 1


@dataclass
class Library:
    """What the test functions need from a framework: a constant maker and its name."""

    name: str
    const: Any


def tg_library() -> Library:
    return Library("tinygrad_nn", lambda array: Tensor(np.asarray(array, dtype=np.float64)))


def torch_library(torch) -> Library:
    return Library("torch", lambda array: torch.tensor(np.asarray(array, dtype=np.float64)))


RNG = np.random.default_rng(7)
MLP_W1 = RNG.standard_normal((3, 4)) * 0.7
MLP_B1 = RNG.standard_normal(4) * 0.1
MLP_W2 = RNG.standard_normal((4, 2)) * 0.7
MLP_B2 = RNG.standard_normal(2) * 0.1


def functions(lib: Library) -> dict[str, Any]:
    """name -> callable on this library's tensors."""
    c = lib.const

    def mlp(x):  # a batch (N, 3) -> (N, 2)
        return ((x @ c(MLP_W1) + c(MLP_B1)).tanh() @ c(MLP_W2) + c(MLP_B2)).sigmoid()

    def mlp_of_parameters(x, w1, b1, w2):  # the network as a function of its input and parameters
        return (x @ w1 + b1).tanh() @ w2

    def mlp_loss(w1, b1, w2):  # scalar: mean squared output of the network on a fixed batch
        hidden = (c(NEURON_INPUTS) @ w1 + b1).tanh()
        return ((hidden @ w2) ** 2).mean()

    def neuron_output(w):  # tutorial 004's neuron: 3 inputs, no bias, a sigmoid
        return (c(NEURON_INPUTS) @ w).sigmoid()

    def neuron_loss(w):  # its loss, 0.5 * sum((y - o) ** 2)
        return 0.5 * ((c(NEURON_OUTPUTS) - (c(NEURON_INPUTS) @ w).sigmoid()) ** 2).sum()

    def neuron_loss_of_data(x, w):  # the same loss as a function of inputs and weights
        return 0.5 * ((c(NEURON_OUTPUTS) - (x @ w).sigmoid()) ** 2).sum()

    def two_outputs(x, y):
        return x * y.tanh(), (x * x).sum() * y

    def cubic(x):
        return (x**3).sum() + (x[0] * x[1]) * x[2]

    return {
        "mlp": mlp,
        "mlp_of_parameters": mlp_of_parameters,
        "mlp_loss": mlp_loss,
        "neuron_output": neuron_output,
        "neuron_loss": neuron_loss,
        "neuron_loss_of_data": neuron_loss_of_data,
        "two_outputs": two_outputs,
        "cubic": cubic,
    }


# name -> shapes of its inputs (one shape: a single tensor input; a list: a tuple of inputs)
INPUT_SHAPES = {
    "mlp": (2, 3),
    "mlp_of_parameters": [(2, 3), (3, 4), (4,), (4, 2)],
    "mlp_loss": [(3, 4), (4,), (4, 1)],
    "neuron_output": (3, 1),
    "neuron_loss": (3, 1),
    "neuron_loss_of_data": [(4, 3), (3, 1)],
    "two_outputs": [(3,), (3,)],
    "cubic": (3,),
}
SCALAR_FUNCTIONS = ["mlp_loss", "neuron_loss", "neuron_loss_of_data", "cubic"]


def make_inputs(name: str, seed: int = 0) -> Any:
    """Float64 arrays for `name`'s inputs: one array, or a tuple."""
    rng = np.random.default_rng(seed)
    shapes = INPUT_SHAPES[name]
    if name.startswith("neuron") and isinstance(shapes, tuple):
        return tutorial_initial_weights()
    if isinstance(shapes, tuple):
        return rng.standard_normal(shapes)
    arrays = tuple(rng.standard_normal(shape) for shape in shapes)
    if name == "neuron_loss_of_data":
        arrays = (NEURON_INPUTS.copy(), tutorial_initial_weights())
    return arrays


def output_arrays(fn, inputs) -> Any:
    """The function's outputs on plain tensors, as arrays (a tuple for several outputs)."""
    args = inputs if isinstance(inputs, tuple) else (inputs,)
    result = fn(*[Tensor(a) for a in args])
    return tuple(r.data for r in result) if isinstance(result, tuple) else result.data


def random_like(value, seed: int) -> Any:
    rng = np.random.default_rng(seed)
    if isinstance(value, tuple):
        return tuple(rng.standard_normal(np.shape(v)) for v in value)
    return rng.standard_normal(np.shape(value))


def as_tg(value) -> Any:
    return tuple(Tensor(v) for v in value) if isinstance(value, tuple) else Tensor(value)


def as_torch(torch, value) -> Any:
    return tuple(torch.tensor(v) for v in value) if isinstance(value, tuple) else torch.tensor(value)


def assert_same_structure_and_values(mine, theirs, path="result"):
    """Tuples nest the same way, and every leaf tensor has the same shape and values."""
    if isinstance(theirs, tuple):
        assert isinstance(mine, tuple), f"{path}: expected a tuple of {len(theirs)}, got {type(mine).__name__}"
        assert len(mine) == len(theirs), f"{path}: expected {len(theirs)} entries, got {len(mine)}"
        for index, (a, b) in enumerate(zip(mine, theirs)):
            assert_same_structure_and_values(a, b, f"{path}[{index}]")
        return
    assert isinstance(mine, Tensor), f"{path}: expected a Tensor, got {type(mine).__name__}"
    expected = theirs.detach().numpy()
    assert mine.shape == expected.shape, f"{path}: shape {mine.shape}, PyTorch's {expected.shape}"
    np.testing.assert_allclose(mine.data, expected, err_msg=path, **TOLERANCE)


# --------------------------------------------------------------------------------------------------------------
# Against torch.autograd.functional
# --------------------------------------------------------------------------------------------------------------

VJP_CASES = ["mlp", "mlp_of_parameters", "neuron_output", "neuron_loss", "neuron_loss_of_data", "two_outputs", "cubic"]


@pytest.mark.torch
@pytest.mark.parametrize("transform", ["vjp", "jvp"])
@pytest.mark.parametrize("name", VJP_CASES)
def test_vjp_and_jvp_match_pytorch(torch, transform, name):
    from torch.autograd import functional as reference

    inputs = make_inputs(name)
    outputs = output_arrays(functions(tg_library())[name], inputs)
    v = random_like(outputs if transform == "vjp" else inputs, seed=1)
    mine = getattr(func, transform)(functions(tg_library())[name], as_tg(inputs), as_tg(v))
    theirs = getattr(reference, transform)(functions(torch_library(torch))[name], as_torch(torch, inputs),
                                           as_torch(torch, v))  # fmt: skip
    assert_same_structure_and_values(mine, theirs)


@pytest.mark.torch
@pytest.mark.parametrize("name", VJP_CASES)
def test_jacobian_matches_pytorch(torch, name):
    from torch.autograd import functional as reference

    inputs = make_inputs(name)
    mine = func.jacobian(functions(tg_library())[name], as_tg(inputs))
    theirs = reference.jacobian(functions(torch_library(torch))[name], as_torch(torch, inputs))
    assert_same_structure_and_values(mine, theirs)


@pytest.mark.torch
@pytest.mark.parametrize("transform", ["hessian", "hvp", "vhp"])
@pytest.mark.parametrize("name", SCALAR_FUNCTIONS)
def test_hessian_hvp_and_vhp_match_pytorch(torch, transform, name):
    from torch.autograd import functional as reference

    inputs = make_inputs(name)
    tg_fn, torch_fn = functions(tg_library())[name], functions(torch_library(torch))[name]
    if transform == "hessian":
        mine = func.hessian(tg_fn, as_tg(inputs))
        theirs = reference.hessian(torch_fn, as_torch(torch, inputs))
    else:
        v = random_like(inputs, seed=2)
        mine = getattr(func, transform)(tg_fn, as_tg(inputs), as_tg(v))
        theirs = getattr(reference, transform)(torch_fn, as_torch(torch, inputs), as_torch(torch, v))
    assert_same_structure_and_values(mine, theirs)


@pytest.mark.torch
@pytest.mark.parametrize("transform", ["vjp", "jvp", "hvp", "vhp", "jacobian", "hessian"])
def test_one_element_input_and_output_need_no_v_as_in_pytorch(torch, transform):
    from torch.autograd import functional as reference

    value = np.array([0.7])
    mine = getattr(func, transform)(lambda t: (t**3).sum().exp(), Tensor(value))
    theirs = getattr(reference, transform)(lambda t: (t**3).sum().exp(), torch.tensor(value))
    assert_same_structure_and_values(mine, theirs)


@pytest.mark.torch
@pytest.mark.parametrize("wrap", ["single", "tuple_of_one"])
@pytest.mark.parametrize("transform", ["vjp", "jvp", "jacobian", "hessian", "hvp", "vhp"])
def test_single_tensor_versus_tuple_of_one_input_as_in_pytorch(torch, transform, wrap):
    from torch.autograd import functional as reference

    value = np.array([0.5, -1.0, 2.0])

    def fn(t):
        return (t * t.tanh()).sum()

    args_tg: Any = Tensor(value) if wrap == "single" else (Tensor(value),)
    args_torch: Any = torch.tensor(value) if wrap == "single" else (torch.tensor(value),)
    extra_tg, extra_torch = (), ()
    if transform in ("jvp", "hvp", "vhp"):
        v = np.array([1.0, 2.0, -1.0])
        extra_tg = (Tensor(v),) if wrap == "single" else ((Tensor(v),),)
        extra_torch = (torch.tensor(v),) if wrap == "single" else ((torch.tensor(v),),)
    mine = getattr(func, transform)(fn, args_tg, *extra_tg)
    theirs = getattr(reference, transform)(fn, args_torch, *extra_torch)
    assert_same_structure_and_values(mine, theirs)


@pytest.mark.torch
def test_jacobian_of_a_tuple_output_of_a_single_input_is_a_tuple_over_outputs(torch):
    from torch.autograd import functional as reference

    value = np.array([0.5, -1.0])
    mine = func.jacobian(lambda t: (t.exp(), (t * t).sum()), Tensor(value))
    theirs = reference.jacobian(lambda t: (t.exp(), (t * t).sum()), torch.tensor(value))
    assert_same_structure_and_values(mine, theirs)
    assert mine[0].shape == (2, 2) and mine[1].shape == (2,)


@pytest.mark.torch
def test_jvp_with_a_tuple_output_of_one_element_outputs_takes_v_none(torch):
    from torch.autograd import functional as reference

    value = np.array([0.3])
    mine = func.jvp(lambda t: (t.exp(), t * 2.0), Tensor(value))
    theirs = reference.jvp(lambda t: (t.exp(), t * 2.0), torch.tensor(value))
    assert_same_structure_and_values(mine, theirs)


# --------------------------------------------------------------------------------------------------------------
# create_graph: results that can be differentiated again
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.torch
@pytest.mark.parametrize("transform", ["vjp", "jvp", "jacobian", "hessian", "hvp", "vhp"])
def test_create_graph_results_differentiated_again_match_pytorch(torch, transform):
    from torch.autograd import functional as reference

    weights = tutorial_initial_weights()
    direction = np.array([[0.3], [-0.2], [0.5]])
    name = "neuron_output" if transform in ("vjp", "jvp", "jacobian") else "neuron_loss"
    tg_fn, torch_fn = functions(tg_library())[name], functions(torch_library(torch))[name]
    probe = np.random.default_rng(3).standard_normal((4, 1))

    def run(transform_fn, make, fn, w):
        if transform == "vjp":
            return transform_fn(fn, w, make(probe), create_graph=True)[1]
        if transform in ("jvp", "hvp", "vhp"):
            return transform_fn(fn, w, make(direction), create_graph=True)[1]
        return transform_fn(fn, w, create_graph=True)

    w = Tensor(weights, requires_grad=True)
    result = run(getattr(func, transform), Tensor, tg_fn, w)
    assert result.requires_grad, "with create_graph=True the result is connected to the inputs"
    (mine,) = tg.grad((result * result).sum(), w)
    tw = torch.tensor(weights, requires_grad=True)
    theirs_result = run(getattr(reference, transform), torch.tensor, torch_fn, tw)
    (theirs,) = torch.autograd.grad((theirs_result * theirs_result).sum(), tw)
    np.testing.assert_allclose(result.data, theirs_result.detach().numpy(), **TOLERANCE)
    np.testing.assert_allclose(mine.data, theirs.numpy(), **TOLERANCE)


@pytest.mark.torch
def test_create_graph_vjp_is_differentiable_with_respect_to_v(torch):
    from torch.autograd import functional as reference

    x = np.array([0.5, -1.0, 2.0])
    v_value = np.array([1.0, -2.0, 0.5])
    v = Tensor(v_value, requires_grad=True)
    _, product = func.vjp(lambda t: t.tanh() * t, Tensor(x), v, create_graph=True)
    (mine,) = tg.grad((product**2).sum(), v)
    tv = torch.tensor(v_value, requires_grad=True)
    _, theirs_product = reference.vjp(lambda t: t.tanh() * t, torch.tensor(x), tv, create_graph=True)
    (theirs,) = torch.autograd.grad((theirs_product**2).sum(), tv)
    np.testing.assert_allclose(mine.data, theirs.numpy(), **TOLERANCE)


def test_create_graph_hessian_differentiated_again_is_the_third_derivative():
    # f(x) = sum(x^4) / 12: H = diag(x^2), d(sum H)/dx = 2x
    x = Tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True)
    hessian = func.hessian(lambda t: (t**4).sum() / 12.0, x, create_graph=True)
    np.testing.assert_allclose(hessian.data, np.diag(x.data**2), rtol=1e-12)
    (third,) = tg.grad(hessian.sum(), x)
    np.testing.assert_allclose(third.data, 2 * x.data, rtol=1e-12)


def test_create_graph_results_for_an_input_that_does_not_require_grad_are_still_recorded():
    # The transforms differentiate copies of the inputs; with create_graph the results keep their own graph, as
    # PyTorch's do, and the caller's tensor is left alone.
    x = Tensor(np.array([0.5, -1.0]))
    _, hv = func.hvp(lambda t: (t**3).sum(), x, Tensor(np.array([1.0, 1.0])), create_graph=True)
    np.testing.assert_allclose(hv.data, 6 * x.data)
    assert hv.requires_grad
    assert x.grad is None and not x.requires_grad


@pytest.mark.parametrize("transform", ["vjp", "jvp", "jacobian", "hessian", "hvp", "vhp"])
def test_results_without_create_graph_are_plain_tensors(transform):
    x = Tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True)
    fn = (lambda t: (t**3).sum()) if transform in ("hessian", "hvp", "vhp") else (lambda t: t**3)
    extra = () if transform in ("jacobian", "hessian") else (Tensor(np.ones(3)),)
    result = getattr(func, transform)(fn, x, *extra)
    leaves = result if isinstance(result, tuple) else (result,)
    for leaf in leaves:
        assert isinstance(leaf, Tensor) and not leaf.requires_grad
    assert x.grad is None


# --------------------------------------------------------------------------------------------------------------
# Without PyTorch: against closed forms, finite differences and one another
# --------------------------------------------------------------------------------------------------------------


def numerical_jacobian(fn, array: np.ndarray, step: float = 1e-6) -> np.ndarray:
    """Central differences of fn (array -> array) laid out as output.shape + input.shape."""
    base = np.asarray(fn(array))
    jacobian = np.zeros(base.shape + array.shape)
    for index in np.ndindex(array.shape):
        plus, minus = array.copy(), array.copy()
        plus[index] += step
        minus[index] -= step
        jacobian[(..., *index)] = (np.asarray(fn(plus)) - np.asarray(fn(minus))) / (2 * step)
    return jacobian


def test_jacobian_of_the_mlp_matches_finite_differences():
    mlp = functions(tg_library())["mlp"]
    x = make_inputs("mlp")
    jacobian = func.jacobian(mlp, Tensor(x))
    assert jacobian.shape == (2, 2, 2, 3)
    expected = numerical_jacobian(lambda a: mlp(Tensor(a)).data, x)
    np.testing.assert_allclose(jacobian.data, expected, rtol=1e-6, atol=1e-9)


def test_hessian_of_the_neuron_loss_matches_finite_differences_of_its_gradient():
    loss = functions(tg_library())["neuron_loss"]
    w = tutorial_initial_weights()
    hessian = func.hessian(loss, Tensor(w))
    assert hessian.shape == (3, 1, 3, 1)
    expected = numerical_jacobian(lambda a: func.vjp(loss, Tensor(a))[1].data, w)
    np.testing.assert_allclose(hessian.data, expected, rtol=1e-6, atol=1e-9)
    flat = hessian.data.reshape(3, 3)
    np.testing.assert_allclose(flat, flat.T, rtol=1e-12, atol=1e-15)


def test_hessian_of_the_neuron_loss_matches_the_closed_form():
    # o = s(Xw), r = o - y: H = X^T diag(s'^2 + r s'') X with s' = o(1-o), s'' = s'(1-2o)
    w = tutorial_initial_weights()
    hessian = func.hessian(functions(tg_library())["neuron_loss"], Tensor(w)).data.reshape(3, 3)
    o = 1 / (1 + np.exp(-(NEURON_INPUTS @ w)))
    slope = o * (1 - o)
    curvature = slope * (1 - 2 * o)
    middle = (slope**2 + (o - NEURON_OUTPUTS) * curvature).ravel()
    np.testing.assert_allclose(hessian, NEURON_INPUTS.T @ np.diag(middle) @ NEURON_INPUTS, rtol=1e-12)


@pytest.mark.parametrize("name", ["mlp_loss", "neuron_loss_of_data", "cubic"])
def test_hvp_and_vhp_equal_the_hessian_times_v(name):
    fn = functions(tg_library())[name]
    inputs = make_inputs(name)
    v = random_like(inputs, seed=5)
    hessian = func.hessian(fn, as_tg(inputs))
    value, hv = func.hvp(fn, as_tg(inputs), as_tg(v))
    value_again, vh = func.vhp(fn, as_tg(inputs), as_tg(v))
    np.testing.assert_allclose(value.data, output_arrays(fn, inputs))
    np.testing.assert_array_equal(value.data, value_again.data)
    if not isinstance(inputs, tuple):
        hessian, hv, vh, inputs, v = ((hessian,),), (hv,), (vh,), (inputs,), (v,)
    for i, block_row in enumerate(hessian):
        expected = sum(
            np.tensordot(block.data, v[j], axes=v[j].ndim) for j, block in enumerate(block_row)
        )  # H[i][j] has shape inputs[i].shape + inputs[j].shape
        np.testing.assert_allclose(hv[i].data, expected, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(vh[i].data, expected, rtol=1e-10, atol=1e-12)


def test_jvp_and_vjp_are_transposes_of_each_other():
    fn = functions(tg_library())["mlp_of_parameters"]
    inputs = make_inputs("mlp_of_parameters")
    outputs = output_arrays(fn, inputs)
    u, v = random_like(outputs, seed=8), random_like(inputs, seed=9)
    _, vjp = func.vjp(fn, as_tg(inputs), Tensor(u))
    _, jvp = func.jvp(fn, as_tg(inputs), as_tg(v))
    # <u, J v> == <J^T u, v>
    left = float(np.sum(u * jvp.data))
    right = sum(float(np.sum(g.data * d)) for g, d in zip(vjp, v))
    assert left == pytest.approx(right, rel=1e-12)


def test_jacobian_structure_for_tuple_inputs_and_outputs():
    fn = functions(tg_library())["two_outputs"]
    x, y = np.array([0.5, -1.0, 2.0]), np.array([0.3, 0.2, -0.4])
    jacobian = func.jacobian(fn, (Tensor(x), Tensor(y)))
    assert isinstance(jacobian, tuple) and len(jacobian) == 2
    assert all(isinstance(row, tuple) and len(row) == 2 for row in jacobian)
    assert [[block.shape for block in row] for row in jacobian] == [[(3, 3), (3, 3)], [(3, 3), (3, 3)]]
    # output 0 = x * tanh(y); output 1 = sum(x^2) * y
    np.testing.assert_allclose(jacobian[0][0].data, np.diag(np.tanh(y)))
    np.testing.assert_allclose(jacobian[0][1].data, np.diag(x * (1 - np.tanh(y) ** 2)))
    np.testing.assert_allclose(jacobian[1][0].data, np.outer(y, 2 * x))
    np.testing.assert_allclose(jacobian[1][1].data, np.eye(3) * np.sum(x**2))


def test_hessian_structure_for_tuple_inputs():
    # f(a, b) = sum(a^2 b): H_aa = diag(2b), H_ab = diag(2a), H_bb = 0; block (i, j) has shape a_i + a_j
    a, b = np.array([1.0, 2.0]), np.array([0.5, -1.0])
    hessian = func.hessian(lambda p, q: (p * p * q).sum(), (Tensor(a), Tensor(b)))
    assert isinstance(hessian, tuple) and all(isinstance(row, tuple) for row in hessian)
    np.testing.assert_allclose(hessian[0][0].data, np.diag(2 * b))
    np.testing.assert_allclose(hessian[0][1].data, np.diag(2 * a))
    np.testing.assert_allclose(hessian[1][0].data, np.diag(2 * a))
    np.testing.assert_allclose(hessian[1][1].data, np.zeros((2, 2)))
    matrix = func.hessian(lambda m: (m**3).sum(), Tensor(np.ones((2, 2))))
    assert matrix.shape == (2, 2, 2, 2)


def test_ndarray_inputs_and_v_are_accepted():
    x = np.array([0.5, -1.0, 2.0])
    value, product = func.vjp(lambda t: t**2, x, np.ones(3))
    np.testing.assert_allclose(product.data, 2 * x)
    np.testing.assert_allclose(value.data, x**2)
    _, hv = func.hvp(lambda t: (t**3).sum(), x, np.array([1.0, 0.0, 0.0]))
    np.testing.assert_allclose(hv.data, [6 * x[0], 0.0, 0.0])
    np.testing.assert_allclose(func.jacobian(lambda t: t.exp(), x).data, np.diag(np.exp(x)))
    np.testing.assert_allclose(func.hessian(lambda t: (t**3).sum(), (x,))[0][0].data, np.diag(6 * x))


def test_float32_inputs_give_float32_results():
    x = np.array([0.5, -1.0], dtype=np.float32)
    _, product = func.vjp(lambda t: t.tanh(), x, np.ones(2, dtype=np.float32))
    assert product.dtype == np.float32
    assert func.jacobian(lambda t: t.tanh(), Tensor(x)).dtype == np.float32
    assert func.hessian(lambda t: (t**3).sum(), Tensor(x)).dtype == np.float32


def test_transforms_leave_the_inputs_and_their_grads_alone():
    x = Tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True)
    x.grad = np.array([7.0, 7.0, 7.0])
    before = x.data.copy()
    func.vjp(lambda t: t**2, x, np.ones(3))
    func.jvp(lambda t: t**2, x, np.ones(3))
    func.hessian(lambda t: (t**3).sum(), x)
    func.hvp(lambda t: (t**3).sum(), x, np.ones(3), create_graph=True)
    np.testing.assert_array_equal(x.data, before)
    np.testing.assert_array_equal(x.grad, [7.0, 7.0, 7.0])


def test_newton_method_on_the_tutorial_neuron_converges_to_a_minimum():
    # Tutorial 004's data are separable, so its loss has no finite minimum (the sigmoid saturates as the weights
    # grow): a small weight decay gives it one. From the tutorial's starting weights, Newton's steps
    # w <- w - H^-1 g with the Hessian from func.hessian converge quadratically to where the gradient vanishes.
    decay = 0.01

    def loss(w):
        output = (Tensor(NEURON_INPUTS) @ w).sigmoid()
        return 0.5 * ((Tensor(NEURON_OUTPUTS) - output) ** 2).sum() + 0.5 * decay * (w * w).sum()

    w = tutorial_initial_weights()
    gradient_norms = []
    for _ in range(8):
        _, gradient = func.vjp(loss, Tensor(w))
        hessian = func.hessian(loss, Tensor(w)).data.reshape(3, 3)
        gradient_norms.append(np.linalg.norm(gradient.data))
        w = w - np.linalg.solve(hessian, gradient.data.reshape(3)).reshape(3, 1)
    _, gradient = func.vjp(loss, Tensor(w))
    assert np.linalg.norm(gradient.data) < 1e-12
    assert gradient_norms[-3] < 1e-3 and gradient_norms[-2] < 10 * gradient_norms[-3] ** 2  # quadratic at the end
    hessian = func.hessian(loss, Tensor(w)).data.reshape(3, 3)
    assert np.all(np.linalg.eigvalsh(hessian) > 0), "a minimum, not a saddle"
    # The neuron now answers the tutorial's question: the output for [1, 0, 0] is above a half.
    assert 1 / (1 + np.exp(-(np.array([1.0, 0.0, 0.0]) @ w))) > 0.5


def test_newton_cg_with_hvp_takes_the_same_step_as_the_dense_hessian():
    loss = functions(tg_library())["neuron_loss"]
    w = tutorial_initial_weights()
    _, gradient = func.vjp(loss, Tensor(w))
    hessian = func.hessian(loss, Tensor(w)).data.reshape(3, 3)
    # Three conjugate-gradient iterations solve a 3x3 system exactly (up to rounding), using only H @ p products.
    step = np.zeros((3, 1))
    residual = gradient.data.copy()
    direction = residual.copy()
    for _ in range(3):
        _, curved = func.hvp(loss, Tensor(w), Tensor(direction))
        alpha = float(np.sum(residual * residual) / np.sum(direction * curved.data))
        step += alpha * direction
        new_residual = residual - alpha * curved.data
        direction = new_residual + float(np.sum(new_residual**2) / np.sum(residual**2)) * direction
        residual = new_residual
    np.testing.assert_allclose(step.ravel(), np.linalg.solve(hessian, gradient.data.ravel()), rtol=1e-8)


@pytest.mark.torch
def test_newton_steps_on_the_tutorial_neuron_match_pytorch(torch):
    from torch.autograd import functional as reference

    mine_w = theirs_w = tutorial_initial_weights()
    tg_loss = functions(tg_library())["neuron_loss"]
    torch_loss = functions(torch_library(torch))["neuron_loss"]
    for _ in range(3):
        _, gradient = func.vjp(tg_loss, Tensor(mine_w))
        hessian = func.hessian(tg_loss, Tensor(mine_w)).data.reshape(3, 3)
        mine_w = mine_w - np.linalg.solve(hessian, gradient.data.reshape(3)).reshape(3, 1)
        _, t_gradient = reference.vjp(torch_loss, torch.tensor(theirs_w))
        t_hessian = reference.hessian(torch_loss, torch.tensor(theirs_w)).numpy().reshape(3, 3)
        theirs_w = theirs_w - np.linalg.solve(t_hessian, t_gradient.numpy().reshape(3)).reshape(3, 1)
        np.testing.assert_allclose(mine_w, theirs_w, rtol=1e-9)


# --------------------------------------------------------------------------------------------------------------
# strict=True, and mistaken input
# --------------------------------------------------------------------------------------------------------------


def unused_second_input(x, y):
    return (x**2).sum()


@pytest.mark.parametrize("transform", ["vjp", "jacobian", "hessian", "hvp", "vhp"])
def test_strict_raises_for_an_input_the_output_does_not_depend_on(transform):
    inputs = (Tensor(np.array([1.0, 2.0])), Tensor(np.array([3.0, 4.0])))
    extra = () if transform in ("jacobian", "hessian") else (None if transform == "vjp" else (np.ones(2), np.ones(2)),)
    with pytest.raises(RuntimeError, match="strict=True"):
        getattr(func, transform)(unused_second_input, inputs, *extra, strict=True)
    # Without strict, that input gets zeros (the mathematical value), as in PyTorch.
    result = getattr(func, transform)(unused_second_input, inputs, *extra)
    second = result[1] if transform in ("jacobian", "hessian") else result[1][1]
    if transform == "hessian":
        second = second[1]
    np.testing.assert_array_equal(second.data, np.zeros(second.shape))


def test_strict_jvp_raises_for_an_input_the_output_does_not_depend_on():
    inputs = (Tensor(np.array([1.0, 2.0])), Tensor(np.array([3.0, 4.0])))
    with pytest.raises(RuntimeError, match="input 1"):
        func.jvp(lambda x, y: x**2, inputs, (np.ones(2), np.ones(2)), strict=True)


@pytest.mark.parametrize("transform", ["vjp", "jacobian", "hessian", "hvp", "vhp", "jvp"])
def test_strict_raises_for_an_output_that_does_not_depend_on_the_inputs(transform):
    x = Tensor(np.array([1.0, 2.0]))
    extra = () if transform in ("jacobian", "hessian") else ((np.ones(2),) if transform != "vjp" else (None,))
    with pytest.raises(RuntimeError, match="strict=True"):
        getattr(func, transform)(lambda t: Tensor(t.data.sum()), x, *extra, strict=True)


@pytest.mark.parametrize("transform", ["vjp", "jvp", "jacobian"])
def test_strict_with_create_graph_raises_for_a_linear_function_as_in_pytorch(transform):
    x = Tensor(np.array([1.0, 2.0]))
    extra = () if transform == "jacobian" else (np.ones(2),)
    with pytest.raises(RuntimeError, match="input 0"):
        getattr(func, transform)(lambda t: t * 2.0, x, *extra, strict=True, create_graph=True)


@pytest.mark.parametrize("transform", ["hessian", "hvp"])
def test_strict_errors_name_the_transform_that_was_called(transform):
    extra = () if transform == "hessian" else (np.ones(2),)
    with pytest.raises(RuntimeError) as error:
        getattr(func, transform)(lambda t: (t * 2.0).sum(), Tensor(np.array([1.0, 2.0])), *extra, strict=True)
    assert str(error.value).startswith(transform), str(error.value)
    assert "no output depends" not in str(error.value), str(error.value)


@pytest.mark.parametrize(
    ("transform", "fn", "v", "message"),
    [
        ("vjp", lambda t: t * 2.0, np.ones(3), r"v\[0\] has shape \(3,\) but output 0 has shape \(2,\)"),
        ("vjp", lambda t: t * 2.0, None, r"v is None.*shape \(2,\)"),
        ("vjp", lambda t: (t * 2.0, t.sum()), (np.ones(2),), "v has 1 entries for 2 outputs"),
        ("jvp", lambda t: t * 2.0, np.ones((2, 1)), r"v\[0\] has shape \(2, 1\) but input 0 has shape \(2,\)"),
        ("jvp", lambda t: t * 2.0, None, r"v is None.*shape \(2,\)"),
        ("vhp", lambda t: (t * t).sum(), np.ones(5), r"v\[0\] has shape \(5,\) but input 0 has shape \(2,\)"),
        ("vhp", lambda t: (t * t).sum(), None, r"v is None.*shape \(2,\)"),
        ("vhp", lambda t: t * t, np.ones(2), r".*single Tensor with one element, got \(2,\)"),
    ],
)
def test_wrong_v_and_non_scalar_outputs_are_errors_with_the_shapes(transform, fn, v, message):
    with pytest.raises(ValueError, match=f"{transform}: {message}"):
        getattr(func, transform)(fn, Tensor(np.array([1.0, 2.0])), v)


@pytest.mark.parametrize(
    ("fn", "v"),
    [(lambda t: (t * t).sum(), np.ones(5)), (lambda t: t * t, np.ones(2)), (lambda t: 3.0, np.ones(2))],
    ids=["wrong v shape", "non-scalar output", "not a tensor"],
)
def test_errors_of_hvp_name_hvp(fn, v):
    with pytest.raises((ValueError, TypeError)) as error:
        func.hvp(fn, Tensor(np.array([1.0, 2.0])), v)
    assert str(error.value).startswith("hvp:"), str(error.value)


def test_hessian_of_a_non_scalar_output_is_an_error_with_its_shape():
    with pytest.raises(ValueError, match=r"hessian: .*one element, got \(2,\)"):
        func.hessian(lambda t: t * t, Tensor(np.array([1.0, 2.0])))
    with pytest.raises(ValueError, match=r"hessian: .*got a tuple of 2"):
        func.hessian(lambda t: (t.sum(), t.sum()), Tensor(np.array([1.0, 2.0])))


@pytest.mark.parametrize("transform", ["vjp", "jvp", "jacobian", "hessian", "vhp"])
def test_a_function_that_does_not_return_tensors_is_a_type_error(transform):
    extra = () if transform in ("jacobian", "hessian") else (None,)
    with pytest.raises(TypeError, match=f"{transform}: .*(Tensor|float)"):
        getattr(func, transform)(lambda t: 3.0, Tensor(np.array([1.0])), *extra)


@pytest.mark.parametrize(
    ("inputs", "error", "message"),
    [
        ((), ValueError, "inputs is empty"),
        ([1, 2], TypeError, "input 0 is a int"),
        (np.array([1, 2]), TypeError, "input 0 has dtype int64"),
        ("text", TypeError, "input 0 is a str"),
    ],
)
def test_bad_inputs_are_errors_that_name_them(inputs, error, message):
    with pytest.raises(error, match=message):
        func.jacobian(lambda t: t * 2.0, inputs)


def test_a_function_with_the_wrong_number_of_arguments_fails_in_the_call():
    with pytest.raises(TypeError):
        func.jacobian(lambda t: t * 2.0, (Tensor(np.ones(2)), Tensor(np.ones(2))))


def test_jacobian_of_an_empty_output_has_the_empty_shape():
    jacobian = func.jacobian(lambda t: t[:0] * 2.0, Tensor(np.array([1.0, 2.0])))
    assert jacobian.shape == (0, 2)
