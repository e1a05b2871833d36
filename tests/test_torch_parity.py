"""PyTorch's behaviour at the edges: mistaken arguments, hostile shapes and dtypes, the p of a norm, reprs.

Each test here would have caught a defect a review found: an IndexError from deep inside `var`, random integers
that were all 0, a convolution with an empty kernel, a cast to complex that silently left the graph, transforms
whose errors were not RuntimeErrors, layer reprs with names PyTorch does not use, norms PyTorch computes and
this package refused, and a `repeat` error about an internal shape. The comparisons use the `torch` fixture
(skipped without torch, mandatory in CI).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import tinygrad_nn as tg
from tinygrad_nn import Tensor, func, nn
from tinygrad_nn.nn import functional as F  # noqa: N812 - PyTorch's customary name

TOLERANCE = {"rtol": 1e-10, "atol": 1e-12}


# --------------------------------------------------------------------------------------------------------------
# var and std: axes out of range, unbiased=
# --------------------------------------------------------------------------------------------------------------

BAD_AXES = [3, -4, (0, 5), (-4, 1), [1, 3]]


@pytest.mark.parametrize("method", ["var", "std"])
@pytest.mark.parametrize("axis", BAD_AXES, ids=str)
@pytest.mark.parametrize("spelling", ["dim", "axis"])
def test_var_and_std_with_an_axis_out_of_range_say_so_as_sum_does(torch, method, axis, spelling):
    x = tg.randn(2, 3, 4)
    bad = next(a for a in np.atleast_1d(axis) if not -3 <= a < 3)
    with pytest.raises(np.exceptions.AxisError, match=rf"^{method}: axis {bad} is out of range for 3 axes"):
        getattr(x, method)(**{spelling: axis})
    # The same kind of error as sum's (numpy's AxisError, an IndexError, as PyTorch raises IndexError).
    with pytest.raises(np.exceptions.AxisError):
        x.sum(**{spelling: tuple(axis) if isinstance(axis, list) else axis})
    with pytest.raises(IndexError):
        getattr(torch.zeros(2, 3, 4), method)(dim=tuple(axis) if isinstance(axis, list) else axis)


@pytest.mark.parametrize("method", ["var", "std"])
def test_var_and_std_refuse_a_repeated_axis_and_a_non_integer_one(torch, method):
    x = tg.randn(2, 3, 4)
    with pytest.raises(ValueError, match=rf"{method}: axis=\(0, -3\) names the same axis twice"):
        getattr(x, method)(dim=(0, -3))
    with pytest.raises(RuntimeError):
        getattr(torch.zeros(2, 3, 4), method)(dim=(0, -3))
    with pytest.raises(TypeError, match=rf"{method}: an axis must be a whole number, got 1.0"):
        getattr(x, method)(axis=1.0)


@pytest.mark.parametrize("method", ["var", "std"])
@pytest.mark.parametrize("unbiased", [True, False])
@pytest.mark.parametrize("dim", [None, 0, (0, 2), -1])
@pytest.mark.parametrize("keepdim", [False, True])
def test_unbiased_keyword_is_pytorchs(torch, method, unbiased, dim, keepdim, rng):
    data = rng.standard_normal((3, 4, 5))
    ours = Tensor(data, requires_grad=True)
    theirs = torch.tensor(data, requires_grad=True)
    out = getattr(ours, method)(dim=dim, unbiased=unbiased, keepdim=keepdim)
    expected = getattr(theirs, method)(dim=dim, unbiased=unbiased, keepdim=keepdim)
    np.testing.assert_allclose(out.data, expected.detach().numpy(), **TOLERANCE)
    upstream = rng.standard_normal(out.shape)
    out.backward(upstream)
    expected.backward(torch.tensor(upstream))
    np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), **TOLERANCE)
    # unbiased=False is correction=0, True is correction=1.
    np.testing.assert_allclose(
        out.data, getattr(ours, method)(dim=dim, correction=int(unbiased), keepdim=keepdim).data, rtol=0, atol=0
    )


@pytest.mark.parametrize("method", ["var", "std"])
@pytest.mark.parametrize("unbiased", [True, False])
def test_a_positional_bool_is_unbiased_as_in_pytorch(torch, method, unbiased, rng):
    data = rng.standard_normal((3, 4))
    expected = getattr(torch.tensor(data), method)(unbiased).item()
    assert getattr(Tensor(data), method)(unbiased).item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("method", ["var", "std"])
@pytest.mark.parametrize(
    "arguments",
    [
        {"unbiased": False, "correction": 0},
        {"unbiased": True, "correction": 1},
        {"unbiased": True, "ddof": 0},
        {"correction": 1, "ddof": 1},
    ],
    ids=str,
)
def test_two_spellings_of_the_correction_are_an_error(torch, method, arguments):
    with pytest.raises(TypeError, match=rf"{method}\(\) got .* they are spellings of one argument"):
        getattr(tg.randn(3, 4), method)(**arguments)
    if "ddof" not in arguments:  # PyTorch has no ddof
        with pytest.raises(TypeError):
            getattr(torch.zeros(3, 4), method)(**arguments)


def test_unbiased_must_be_a_bool():
    with pytest.raises(TypeError, match="unbiased must be True or False, got 0"):
        tg.randn(3).var(unbiased=0)


# --------------------------------------------------------------------------------------------------------------
# rand_like and randn_like of integer and bool tensors
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("factory", ["rand_like", "randn_like"])
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8, np.bool_])
def test_random_like_an_integer_or_bool_tensor_is_refused_naming_the_dtype(torch, factory, dtype):
    like = Tensor(np.ones(6, dtype=dtype))
    with pytest.raises(TypeError, match=rf"{factory}: the input has dtype {np.dtype(dtype)}.*pass dtype= a float"):
        getattr(tg, factory)(like)
    with pytest.raises(TypeError, match=rf"{factory}: the input has dtype {np.dtype(dtype)}"):
        getattr(tg, factory)(like.data)  # an ndarray too
    torch_dtype = {np.int64: torch.int64, np.int32: torch.int32, np.uint8: torch.uint8, np.bool_: torch.bool}[dtype]
    with pytest.raises((RuntimeError, NotImplementedError)):
        getattr(torch, factory)(torch.ones(6, dtype=torch_dtype))


@pytest.mark.parametrize("factory", ["rand_like", "randn_like"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, "float16"])
def test_random_like_an_integer_tensor_with_a_float_dtype_works(factory, dtype):
    tg.manual_seed(0)
    out = getattr(tg, factory)(tg.arange(1000), dtype=dtype)
    assert out.shape == (1000,) and out.dtype == np.dtype(dtype)
    assert len(np.unique(out.data)) > 100  # real random values, not truncated ones
    if factory == "rand_like":
        assert out.data.min() >= 0 and out.data.max() < 1


@pytest.mark.parametrize("factory", ["rand_like", "randn_like", "rand", "randn"])
@pytest.mark.parametrize("dtype", [np.int64, np.bool_])
def test_random_values_of_an_integer_dtype_are_refused(torch, factory, dtype):
    args = (tg.ones(3),) if factory.endswith("like") else (3,)
    with pytest.raises(TypeError, match=rf"{factory}: random values need a floating-point dtype, got dtype="):
        getattr(tg, factory)(*args, dtype=dtype)
    torch_args = (torch.ones(3),) if factory.endswith("like") else (3,)
    with pytest.raises((RuntimeError, NotImplementedError)):
        getattr(torch, factory)(*torch_args, dtype=torch.int64 if dtype is np.int64 else torch.bool)


# --------------------------------------------------------------------------------------------------------------
# Functional convolution and pooling: zero and negative sizes
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("function", "input_shape", "weight_shape"),
    [
        ("conv2d", (2, 3, 5, 5), (4, 3, 0, 3)),
        ("conv2d", (2, 3, 5, 5), (4, 3, 3, 0)),
        ("conv2d", (2, 3, 5, 5), (0, 3, 3, 3)),
        ("conv1d", (2, 3, 5), (4, 3, 0)),
        ("conv1d", (2, 3, 5), (0, 3, 2)),
    ],
    ids=str,
)
def test_a_weight_with_a_zero_size_is_refused_naming_its_shape(torch, function, input_shape, weight_shape):
    x, weight = np.ones(input_shape), np.ones(weight_shape)
    with pytest.raises(ValueError, match=rf"{function}: weight of shape {re_shape(weight_shape)} has a zero size"):
        getattr(F, function)(Tensor(x), Tensor(weight))
    with pytest.raises(RuntimeError):
        getattr(torch.nn.functional, function)(torch.tensor(x), torch.tensor(weight))


def test_a_weight_with_no_input_channels_is_refused_too():
    # PyTorch returns an output with 0 channels here while the weight has 4 (its shape does not follow its
    # own weight); this package refuses, as its Conv2d layer refuses in_channels=0.
    with pytest.raises(ValueError, match=r"conv2d: weight of shape \(4, 0, 3, 3\) has a zero size"):
        F.conv2d(Tensor(np.ones((2, 0, 5, 5))), Tensor(np.ones((4, 0, 3, 3))))


@pytest.mark.parametrize(
    ("option", "value"),
    [("stride", 0), ("stride", -1), ("padding", -1), ("dilation", 0), ("dilation", -2), ("groups", 0), ("groups", -1)],
)
def test_conv_options_that_are_zero_or_negative_are_errors_as_in_pytorch(torch, option, value):
    x, weight = np.ones((2, 4, 6, 6)), np.ones((4, 4, 3, 3))
    with pytest.raises(ValueError, match=rf"conv2d: {option} must be a (positive|non-negative) integer"):
        F.conv2d(Tensor(x), Tensor(weight), **{option: value})
    with pytest.raises(RuntimeError):
        torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(weight), **{option: value})


@pytest.mark.parametrize("function", ["max_pool2d", "avg_pool2d"])
@pytest.mark.parametrize(
    ("kernel_size", "options"),
    [(0, {}), (-1, {}), ((2, 0), {}), (2, {"stride": 0}), (2, {"stride": -1}), (2, {"padding": -1})],
    ids=str,
)
def test_pooling_options_that_are_zero_or_negative_are_errors_as_in_pytorch(torch, function, kernel_size, options):
    x = np.ones((2, 3, 6, 6))
    name = next(iter(options), "kernel_size")
    with pytest.raises(ValueError, match=rf"{function}: {name} must be a (positive|non-negative) integer"):
        getattr(F, function)(Tensor(x), kernel_size, **options)
    with pytest.raises(RuntimeError):
        getattr(torch.nn.functional, function)(torch.tensor(x), kernel_size, **options)


def test_adaptive_pooling_of_an_input_with_an_empty_spatial_axis_is_an_error(torch):
    x = np.ones((2, 3, 0, 4))
    with pytest.raises(ValueError, match=r"adaptive_avg_pool2d: input of shape \(2, 3, 0, 4\) has a spatial size of 0"):
        F.adaptive_avg_pool2d(Tensor(x), 2)
    with pytest.raises(RuntimeError):
        torch.nn.functional.adaptive_avg_pool2d(torch.tensor(x), 2)
    with pytest.raises(ValueError, match=r"adaptive_avg_pool1d: input of shape \(2, 3, 0\) has a spatial size of 0"):
        F.adaptive_avg_pool1d(Tensor(np.ones((2, 3, 0))), 2)


def test_an_empty_batch_still_passes_through_conv_and_pooling(torch):
    x = np.ones((0, 3, 6, 6))
    weight = np.ones((4, 3, 3, 3))
    out = F.conv2d(Tensor(x), Tensor(weight))
    assert out.shape == tuple(torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(weight)).shape)
    assert F.max_pool2d(Tensor(x), 2).shape == (0, 3, 3, 3)
    assert F.adaptive_avg_pool2d(Tensor(x), 2).shape == (0, 3, 2, 2)


def re_shape(shape: tuple) -> str:
    """A shape as a regular expression that matches its repr."""
    return repr(shape).replace("(", r"\(").replace(")", r"\)")


# --------------------------------------------------------------------------------------------------------------
# astype to complex and object dtypes
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.complex128, np.complex64, object])
def test_astype_to_a_non_real_dtype_of_a_tensor_that_requires_grad_is_an_error(dtype):
    x = Tensor(np.array([1.0, -2.0]), requires_grad=True)
    message = rf"^astype: the result has dtype {np.dtype(dtype)}, which cannot carry a gradient"
    with pytest.raises(TypeError, match=message):
        x.astype(dtype)
    with pytest.raises(TypeError, match=message):
        (x * 2).astype(dtype)  # a computed tensor too
    # As Mul says it: the same sentence, with the op's name.
    with pytest.raises(TypeError, match=r"^mul: the result has dtype complex128, which cannot carry a gradient"):
        x * np.array([1j, 1j])


@pytest.mark.parametrize("dtype", [np.complex128, object])
def test_astype_to_a_non_real_dtype_is_allowed_without_a_graph(dtype):
    x = Tensor(np.array([1.0, -2.0]), requires_grad=True)
    assert x.detach().astype(dtype).dtype == np.dtype(dtype)
    with tg.no_grad():
        assert x.astype(dtype).dtype == np.dtype(dtype)
    assert Tensor(np.array([1.0, -2.0])).astype(dtype).dtype == np.dtype(dtype)


@pytest.mark.parametrize(("dtype", "torch_method"), [(np.int64, "long"), (np.int32, "int"), (np.bool_, "bool")])
def test_astype_to_an_integer_or_bool_dtype_leaves_the_graph_as_pytorchs_long_and_bool(torch, dtype, torch_method):
    data = np.array([1.7, -2.2, 0.0])
    out = Tensor(data, requires_grad=True).astype(dtype)
    expected = getattr(torch.tensor(data, requires_grad=True), torch_method)()
    assert not out.requires_grad and not expected.requires_grad
    np.testing.assert_array_equal(out.data, expected.numpy())


def test_astype_between_float_dtypes_stays_differentiable():
    x = Tensor(np.array([0.5, 2.0]), requires_grad=True)
    (x.astype(np.float32) ** 2).sum().backward()
    np.testing.assert_allclose(x.grad, [1.0, 4.0])
    assert x.grad.dtype == np.float64


# --------------------------------------------------------------------------------------------------------------
# func: errors that are both ValueError and RuntimeError
# --------------------------------------------------------------------------------------------------------------

X3 = np.array([0.5, -1.0, 2.0])

# (transform, function, inputs, v): each one torch.autograd.functional refuses with a RuntimeError.
MISTAKES = {
    "vjp v=None, output of 3": ("vjp", lambda t: t * 2, X3, None),
    "vjp v of a wrong shape": ("vjp", lambda t: t * 2, X3, np.ones(2)),
    "vjp v of two for one output": ("vjp", lambda t: t * 2, X3, (X3, X3)),
    "jvp v=None, input of 3": ("jvp", lambda t: t.sum(), X3, None),
    "jvp v of a wrong shape": ("jvp", lambda t: t * 2, X3, np.ones(2)),
    "jvp v of one for two inputs": ("jvp", lambda a, b: a * b, (X3, X3), (X3,)),
    "hvp output of 3": ("hvp", lambda t: t * 2, X3, X3),
    "hvp a tuple output": ("hvp", lambda t: ((t**3).sum(), t.sum()), X3, X3),
    "hvp v=None, input of 3": ("hvp", lambda t: (t**3).sum(), X3, None),
    "hvp v of a wrong shape": ("hvp", lambda t: (t**3).sum(), X3, np.ones(2)),
    "vhp output of 3": ("vhp", lambda t: t * 2, X3, X3),
    "vhp a tuple output": ("vhp", lambda t: ((t**3).sum(), t.sum()), X3, X3),
    "vhp v=None, input of 3": ("vhp", lambda t: (t**3).sum(), X3, None),
    "hessian output of 3": ("hessian", lambda t: t * 2, X3, "no v"),
    "hessian a tuple output": ("hessian", lambda t: ((t**3).sum(),), X3, "no v"),
}


def _call(library: str, torch: object, transform: str, fn: object, inputs: object, v: object) -> None:
    if library == "torch":
        module = torch.autograd.functional
        to_tensor = torch.tensor
    else:
        module, to_tensor = func, Tensor
    wrap = lambda a: tuple(to_tensor(x) for x in a) if isinstance(a, tuple) else to_tensor(a)  # noqa: E731
    args = (fn, wrap(inputs)) if isinstance(v, str) else (fn, wrap(inputs), None if v is None else wrap(v))
    getattr(module, transform)(*args)


@pytest.mark.parametrize("case", MISTAKES)
def test_transform_mistakes_are_runtime_errors_as_in_pytorch_and_value_errors(torch, case):
    transform, fn, inputs, v = MISTAKES[case]
    with pytest.raises(RuntimeError):
        _call("torch", torch, transform, fn, inputs, v)
    with pytest.raises(RuntimeError, match=f"^{transform}: ") as error:
        _call("ours", torch, transform, fn, inputs, v)
    assert isinstance(error.value, ValueError)
    assert type(error.value) is func.TransformArgumentError


# --------------------------------------------------------------------------------------------------------------
# Reprs
# --------------------------------------------------------------------------------------------------------------

MODULES = [
    ("Flatten", (), {}),
    ("Flatten", (0, 2), {}),
    ("Flatten", (), {"start_dim": 2, "end_dim": 3}),
    ("Unflatten", (1, (1, 28, 28)), {}),
    ("Softmax", (), {"dim": 1}),
    ("LogSoftmax", (), {"dim": -1}),
    ("Conv2d", (3, 8, 3), {}),
    ("Conv2d", (3, 8, (3, 5)), {"stride": 2, "padding": 1, "dilation": 2, "bias": False}),
    ("Conv2d", (4, 8, 3), {"padding": "same", "groups": 2, "padding_mode": "reflect"}),
    ("Conv1d", (3, 8, 3), {"stride": 2, "padding": "valid"}),
    ("MaxPool2d", (2,), {}),
    ("MaxPool2d", (3, 2, 1), {"dilation": 2, "ceil_mode": True}),
    ("MaxPool1d", (3,), {"stride": 1, "padding": 1}),
    ("AvgPool2d", (3,), {"stride": 1, "padding": 1, "count_include_pad": False}),
    ("AvgPool1d", (2,), {}),
    ("AdaptiveAvgPool2d", ((2, None),), {}),
    ("AdaptiveAvgPool1d", (4,), {}),
    ("BatchNorm2d", (16,), {}),
    ("BatchNorm1d", (16,), {"eps": 1e-3, "momentum": None, "affine": False, "track_running_stats": False}),
    ("Dropout", (), {}),
    ("Dropout", (0.3,), {"inplace": True}),
    ("LayerNorm", ((4, 5),), {"eps": 1e-6, "elementwise_affine": False}),
    ("LayerNorm", (10,), {"bias": False}),
    ("Embedding", (10, 3), {}),
    ("Embedding", (10, 3), {"padding_idx": -1}),
    ("Linear", (3, 4), {"bias": False}),
    ("ReLU", (), {}),
    ("Identity", (), {}),
    ("CrossEntropyLoss", (), {}),
]


@pytest.mark.parametrize(("name", "args", "kwargs"), MODULES, ids=lambda value: str(value))
def test_module_reprs_are_pytorchs(torch, name, args, kwargs):
    assert repr(getattr(nn, name)(*args, **kwargs)) == repr(getattr(torch.nn, name)(*args, **kwargs))


def test_a_printed_network_reads_as_pytorchs(torch):
    ours = nn.Sequential(nn.Unflatten(1, (1, 8, 8)), nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(36, 10), nn.LogSoftmax(dim=1))  # fmt: skip
    theirs = torch.nn.Sequential(torch.nn.Unflatten(1, (1, 8, 8)), torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(),
                                 torch.nn.MaxPool2d(2), torch.nn.Flatten(), torch.nn.Linear(36, 10),
                                 torch.nn.LogSoftmax(dim=1))  # fmt: skip
    assert repr(ours) == repr(theirs)


def test_flatten_and_softmax_answer_to_pytorchs_attribute_names_too():
    layer = nn.Flatten(start_axis=2, end_axis=3)
    assert (layer.start_dim, layer.end_dim) == (layer.start_axis, layer.end_axis) == (2, 3)
    assert nn.Softmax(axis=0).dim == 0 and nn.LogSoftmax(dim=1).dim == 1


# --------------------------------------------------------------------------------------------------------------
# norm: every p PyTorch takes for a vector norm
# --------------------------------------------------------------------------------------------------------------

ORDERS = [0, 0.5, 1, 1.5, 2, 3, "fro", np.inf, -np.inf, -0.5, -1, -2, -3.5]
NORM_DATA = {
    "no zeros": np.array([[1.0, -2.0, 0.5, 3.0], [0.25, -1.5, 2.0, -0.75]]),
    "a zero": np.array([[1.0, -2.0, 0.0, 3.0], [0.25, -1.5, 2.0, -0.75]]),
    "ties": np.array([[2.0, -2.0, 1.0, 1.0], [-1.0, 1.0, -1.0, 1.0]]),
    "all zeros": np.zeros((2, 4)),
}


@pytest.mark.parametrize("p", ORDERS, ids=str)
@pytest.mark.parametrize("data", NORM_DATA)
@pytest.mark.parametrize("axis", [None, 1, (0, 1)], ids=str)
def test_norm_values_and_gradients_are_pytorchs_for_every_p(torch, p, data, axis):
    values = NORM_DATA[data]
    ours = Tensor(values, requires_grad=True)
    theirs = torch.tensor(values, requires_grad=True)
    out = ours.norm(p, dim=axis)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.norm is deprecated in favour of torch.linalg.vector_norm
        expected = theirs.norm(p=p, dim=axis)
    np.testing.assert_allclose(out.data, expected.detach().numpy(), **TOLERANCE)
    upstream = np.linspace(0.5, 1.5, out.size).reshape(out.shape)
    out.backward(upstream)
    if expected.requires_grad:
        expected.backward(torch.tensor(upstream))
    reference = np.zeros(values.shape) if theirs.grad is None else theirs.grad.numpy()  # p=0: no gradient
    assert np.all(np.isfinite(ours.grad))
    np.testing.assert_allclose(ours.grad, reference, **TOLERANCE)


@pytest.mark.parametrize("p", [0.5, 1.5, 3, -0.5, -1, -2.5], ids=str)
def test_norm_gradient_passes_gradcheck_for_any_p(p, rng):
    x = Tensor(rng.uniform(0.5, 2.0, size=(3, 4)) * rng.choice([-1, 1], size=(3, 4)), requires_grad=True)
    assert tg.gradcheck(lambda t: t.norm(p, axis=1), [x])
    assert tg.gradgradcheck(lambda t: t.norm(p, axis=1), [x])


def test_norm_with_p_0_counts_the_non_zeros_and_has_gradient_zero():
    x = Tensor(np.array([0.0, 3.0, -0.5, 0.0]), requires_grad=True)
    out = x.norm(0)
    assert out.item() == 2
    out.backward()
    np.testing.assert_array_equal(x.grad, np.zeros(4))
    assert tg.gradcheck(lambda t: t.norm(0), [Tensor(np.array([1.0, -2.0]), requires_grad=True)])


def test_norm_below_1_at_a_zero_element_has_a_finite_second_derivative():
    x = Tensor(np.array([0.0, 1.0, -2.0]), requires_grad=True)
    (first,) = tg.grad(x.norm(0.5), x, create_graph=True)
    assert first.data[0] == 0 and np.all(np.isfinite(first.data))
    (second,) = tg.grad((first * first).sum(), x)
    assert np.all(np.isfinite(second.data))


@pytest.mark.parametrize("p", ["nuc", "two", None, True, float("nan"), 1j], ids=str)
def test_norm_refuses_a_p_that_is_not_a_real_number(p):
    with pytest.raises(ValueError, match="norm: p "):
        tg.randn(3).norm(p)


def test_norm_with_an_axis_out_of_range_says_so():
    with pytest.raises(np.exceptions.AxisError, match="norm: axis 2 is out of range for 2 axes"):
        tg.randn(2, 3).norm(dim=2)


# --------------------------------------------------------------------------------------------------------------
# repeat
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("counts", [(2, -1, 1), (-2, 1, 1), (1, 1, 1, -1)], ids=str)
def test_repeat_with_a_negative_count_says_so_in_the_callers_terms(torch, counts):
    x = tg.randn(2, 3, 4)
    with pytest.raises(
        ValueError, match=rf"^repeat: the counts must be >= 0 .*got {re_shape(counts)} for shape"
    ) as error:
        x.repeat(*counts)
    assert "expand" not in str(error.value)
    with pytest.raises(RuntimeError):
        torch.zeros(2, 3, 4).repeat(*counts)


@pytest.mark.parametrize("counts", [(2, 0, 1), (0, 1, 1, 1), (3, 1, 2)], ids=str)
def test_repeat_with_zero_and_positive_counts_is_pytorchs(torch, counts, rng):
    data = rng.standard_normal((2, 3, 4))
    out = Tensor(data).repeat(*counts)
    np.testing.assert_array_equal(out.data, torch.tensor(data).repeat(*counts).numpy())


# --------------------------------------------------------------------------------------------------------------
# max(dim=) and min(dim=): PyTorch's (values, indices), the gradient to the index
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["max", "min"])
@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("keepdim", [False, True])
def test_max_and_min_with_dim_return_values_and_indices_like_pytorch(torch, name, dim, keepdim):
    data = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0], [5.0, -1.0, 5.0]])  # ties: the first takes it, as torch
    x, tx = Tensor(data, requires_grad=True), torch.tensor(data, requires_grad=True)
    values, indices = getattr(x, name)(dim=dim, keepdim=keepdim)
    expected = getattr(tx, name)(dim=dim, keepdim=keepdim)
    np.testing.assert_array_equal(values.data, expected.values.detach().numpy())
    np.testing.assert_array_equal(indices.data, expected.indices.numpy())
    assert indices.data.dtype == np.int64 and not indices.requires_grad
    upstream = np.random.default_rng(0).standard_normal(expected.values.shape)
    (values * Tensor(upstream)).sum().backward()
    (expected.values * torch.tensor(upstream)).sum().backward()
    np.testing.assert_array_equal(x.grad, tx.grad.numpy())
    result = getattr(x, name)(dim=dim)
    assert result.values is not None and result.indices is not None  # the named fields, as torch.return_types


def test_max_with_axis_stays_numpys_values_and_dim_is_twice_differentiable(rng):
    data = np.array([[1.0, 3.0, 3.0]])
    assert isinstance(Tensor(data).max(1), Tensor) and isinstance(Tensor(data).max(axis=1), Tensor)
    tied = Tensor(data, requires_grad=True)
    tied.max(axis=1).sum().backward()
    np.testing.assert_array_equal(tied.grad, [[0.0, 0.5, 0.5]])  # numpy's spelling: amax's even split
    x = Tensor(rng.standard_normal((3, 4)), requires_grad=True)
    assert tg.gradcheck(lambda t: t.max(dim=1).values ** 2, [x], order=2)
    with pytest.raises(TypeError, match="both axis"):
        x.max(axis=1, dim=1)
    with pytest.raises(IndexError, match="axis 2 is out of range for 2 axes"):
        x.max(dim=2)
    with pytest.raises(ValueError, match="is empty"):
        Tensor(np.zeros((2, 0))).min(dim=1)
