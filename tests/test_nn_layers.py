"""Layers (Linear and the activations) and nn.init: shapes, values, errors, gradients, initial statistics."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import tinygrad_nn as tg
from tinygrad_nn import Tensor, nn

init = nn.init


@pytest.fixture
def float32_default():
    previous = tg.get_default_dtype()
    tg.set_default_dtype("float32")
    yield
    tg.set_default_dtype(previous)


# ------------------------------------------------------------------------------------------------------------
# Linear
# ------------------------------------------------------------------------------------------------------------


def test_linear_parameter_shapes_follow_pytorch():
    layer = nn.Linear(4, 3)
    assert layer.weight.shape == (3, 4) and layer.bias.shape == (3,)
    assert layer.in_features == 4 and layer.out_features == 3
    assert [n for n, _ in layer.named_parameters()] == ["weight", "bias"]


@pytest.mark.parametrize(
    ("input_shape", "output_shape"),
    [((4,), (3,)), ((5, 4), (5, 3)), ((2, 5, 4), (2, 5, 3)), ((0, 4), (0, 3))],
    ids=["1d", "2d", "3d", "empty-batch"],
)
def test_linear_keeps_leading_axes(rng, input_shape, output_shape):
    layer = nn.Linear(4, 3)
    x = rng.standard_normal(input_shape)
    out = layer(Tensor(x))
    assert out.shape == output_shape
    expected = x @ layer.weight.data.T + layer.bias.data
    np.testing.assert_allclose(out.data, expected, rtol=1e-14, atol=1e-14)


def test_linear_takes_a_plain_array_too(rng):
    layer = nn.Linear(2, 2)
    x = rng.standard_normal((3, 2))
    np.testing.assert_array_equal(layer(x).data, layer(Tensor(x)).data)


def test_linear_initialisation_stays_within_pytorch_bounds():
    tg.manual_seed(0)
    layer = nn.Linear(400, 300)
    bound = 1 / math.sqrt(400)
    for parameter in (layer.weight, layer.bias):
        assert np.all(np.abs(parameter.data) <= bound)
        assert np.abs(parameter.data).max() > 0.98 * bound  # the whole interval is used, not a narrower one
    # uniform on [-bound, bound]: mean 0, std bound / sqrt(3)
    assert abs(layer.weight.data.mean()) < 0.01 * bound
    assert layer.weight.data.std() == pytest.approx(bound / math.sqrt(3), rel=0.01)


def test_manual_seed_makes_layers_reproducible():
    tg.manual_seed(7)
    first = nn.Linear(5, 3)
    tg.manual_seed(7)
    second = nn.Linear(5, 3)
    third = nn.Linear(5, 3)
    np.testing.assert_array_equal(first.weight.data, second.weight.data)
    np.testing.assert_array_equal(first.bias.data, second.bias.data)
    assert not np.array_equal(second.weight.data, third.weight.data)


def test_layers_never_touch_numpys_global_random_state():
    state = np.random.get_state()
    nn.Linear(10, 10)
    init.normal_(nn.Parameter(np.zeros(5)))
    after = np.random.get_state()
    assert state[0] == after[0] and np.array_equal(state[1], after[1]) and state[2:] == after[2:]


def test_reset_parameters_with_a_generator_is_reproducible_and_in_place():
    layer = nn.Linear(6, 2)
    weight_array, bias_array = layer.weight.data, layer.bias.data
    layer.reset_parameters(np.random.default_rng(3))
    first = layer.state_dict()
    layer.reset_parameters(np.random.default_rng(3))
    for name, array in layer.state_dict().items():
        np.testing.assert_array_equal(array, first[name])
    assert layer.weight.data is weight_array and layer.bias.data is bias_array


def test_linear_without_bias():
    layer = nn.Linear(3, 2, bias=False)
    assert layer.bias is None
    assert [n for n, _ in layer.named_parameters()] == ["weight"]
    x = np.array([[1.0, 2.0, 3.0]])
    np.testing.assert_allclose(layer(Tensor(x)).data, x @ layer.weight.data.T)
    assert "bias=False" in repr(layer)


def test_linear_float32_end_to_end():
    layer = nn.Linear(4, 3, dtype=np.float32)
    assert layer.weight.dtype == np.float32 and layer.bias.dtype == np.float32
    x = Tensor(np.ones((2, 4), dtype=np.float32), requires_grad=True)
    out = layer(x)
    assert out.dtype == np.float32
    out.sum().backward()
    assert layer.weight.grad.dtype == np.float32 and layer.bias.grad.dtype == np.float32
    assert x.grad.dtype == np.float32


def test_linear_follows_the_default_dtype(float32_default):
    layer = nn.Linear(2, 2)
    assert layer.weight.dtype == np.float32 and layer.bias.dtype == np.float32


def test_linear_names_both_numbers_when_the_last_axis_is_wrong():
    layer = nn.Linear(4, 3)
    with pytest.raises(ValueError, match=r"Linear\(in_features=4\) got input with 5 features \(input shape \(2, 5\)\)"):
        layer(Tensor(np.zeros((2, 5))))
    with pytest.raises(ValueError, match="got input with 3 features"):
        layer(np.zeros(3))
    with pytest.raises(ValueError, match="0-d input"):
        layer(Tensor(np.array(1.0)))


@pytest.mark.parametrize("bad", [0, -2, 2.0, True, "3", None])
def test_linear_sizes_must_be_positive_integers(bad):
    with pytest.raises(ValueError, match=rf"Linear: in_features must be a positive integer, got {bad!r}"):
        nn.Linear(bad, 3)
    with pytest.raises(ValueError, match="out_features must be a positive integer"):
        nn.Linear(3, bad)


def test_linear_accepts_numpy_integers():
    layer = nn.Linear(np.int64(3), np.int32(2))
    assert layer.weight.shape == (2, 3) and type(layer.in_features) is int


# ------------------------------------------------------------------------------------------------------------
# Activations, Identity, Flatten
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("layer", "reference"),
    [
        (nn.Sigmoid(), lambda x: 1 / (1 + np.exp(-x))),
        (nn.ReLU(), lambda x: np.maximum(x, 0)),
        (nn.Tanh(), np.tanh),
    ],
    ids=["sigmoid", "relu", "tanh"],
)
def test_elementwise_activations(rng, layer, reference):
    x = rng.standard_normal((3, 4)) * 3
    np.testing.assert_allclose(layer(Tensor(x)).data, reference(x), rtol=1e-14)


def test_relu_at_zero_has_gradient_zero():
    x = Tensor(np.array([-1.0, 0.0, 2.0]), requires_grad=True)
    nn.ReLU()(x).sum().backward()
    assert x.grad.tolist() == [0.0, 0.0, 1.0]


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_softmax_and_log_softmax_along_an_axis(rng, axis):
    x = rng.standard_normal((3, 4))
    shifted = np.exp(x - x.max(axis=axis, keepdims=True))
    expected = shifted / shifted.sum(axis=axis, keepdims=True)
    probabilities = nn.Softmax(axis=axis)(Tensor(x)).data
    np.testing.assert_allclose(probabilities, expected, rtol=1e-14)
    np.testing.assert_allclose(probabilities.sum(axis=axis), 1.0, rtol=1e-14)
    np.testing.assert_allclose(nn.LogSoftmax(axis=axis)(Tensor(x)).data, np.log(expected), rtol=1e-12, atol=1e-14)


def test_softmax_defaults_to_the_last_axis(rng):
    x = Tensor(rng.standard_normal((2, 3, 4)))
    np.testing.assert_array_equal(nn.Softmax()(x).data, nn.Softmax(axis=2)(x).data)
    np.testing.assert_array_equal(nn.LogSoftmax()(x).data, nn.LogSoftmax(axis=-1)(x).data)


def test_softmax_family_is_stable_at_large_inputs():
    x = Tensor(np.array([[1000.0, 0.0, -1000.0]]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        probabilities = nn.Softmax()(x).data
        log_probabilities = nn.LogSoftmax()(x).data
    np.testing.assert_allclose(probabilities, [[1.0, 0.0, 0.0]])
    np.testing.assert_allclose(log_probabilities, [[0.0, -1000.0, -2000.0]])


def test_identity_ignores_arguments_as_pytorch_does():
    assert nn.Identity(54, unused=1)(Tensor([1.0])).item() == 1.0


def test_identity_returns_its_input_itself():
    x = Tensor(np.ones(3))
    assert nn.Identity()(x) is x
    assert list(nn.Identity().parameters()) == []


@pytest.mark.parametrize(
    ("start_axis", "end_axis", "output_shape"),
    [(1, -1, (2, 60)), (0, -1, (120,)), (1, 2, (2, 12, 5)), (2, 3, (2, 3, 20)), (0, 0, (2, 3, 4, 5))],
)
def test_flatten_merges_the_axes_from_start_to_end(start_axis, end_axis, output_shape):
    x = Tensor(np.arange(120.0).reshape(2, 3, 4, 5), requires_grad=True)
    out = nn.Flatten(start_axis, end_axis)(x)
    assert out.shape == output_shape
    np.testing.assert_array_equal(out.data.ravel(), np.arange(120.0))
    out.sum().backward()
    assert x.grad.shape == x.shape


def test_flatten_default_is_batch_first():
    assert nn.Flatten()(Tensor(np.zeros((7, 28, 28)))).shape == (7, 784)
    assert repr(nn.Flatten()) == "Flatten(start_dim=1, end_dim=-1)"


def test_flatten_with_start_after_end_names_both():
    with pytest.raises(ValueError, match=r"start_axis 2 comes after end_axis 1 for shape \(2, 3, 4\)"):
        nn.Flatten(2, 1)(Tensor(np.zeros((2, 3, 4))))


@pytest.mark.parametrize(
    ("start_axis", "end_axis", "shape"), [(4, -1, (2, 3, 4)), (0, 7, (2, 3, 4)), (1, -1, (2,))], ids=str
)
def test_flatten_refuses_an_axis_out_of_range(start_axis, end_axis, shape):
    with pytest.raises((IndexError, ValueError), match="axis"):
        nn.Flatten(start_axis, end_axis)(Tensor(np.zeros(shape)))


# ------------------------------------------------------------------------------------------------------------
# Gradcheck of every layer (tinygrad_nn.gradcheck takes a Module and checks its parameters by dotted name)
# ------------------------------------------------------------------------------------------------------------


def away_from_zero(rng, shape):
    """Values at least 0.1 from 0, so ReLU's kink is never inside a finite difference."""
    values = rng.uniform(0.1, 2.0, shape)
    return values * rng.choice([-1.0, 1.0], shape)


@pytest.mark.parametrize(
    "make_layer",
    [
        lambda: nn.Sigmoid(),
        lambda: nn.ReLU(),
        lambda: nn.Tanh(),
        lambda: nn.Softmax(axis=0),
        lambda: nn.Softmax(axis=1),
        lambda: nn.LogSoftmax(axis=0),
        lambda: nn.LogSoftmax(axis=-1),
        lambda: nn.Identity(),
        lambda: nn.Flatten(0),
    ],
    ids=["sigmoid", "relu", "tanh", "softmax0", "softmax1", "logsoftmax0", "logsoftmax-1", "identity", "flatten"],
)
def test_gradcheck_activations(rng, make_layer):
    x = Tensor(away_from_zero(rng, (3, 4)), requires_grad=True)
    assert tg.gradcheck(make_layer(), [x])


@pytest.mark.parametrize("input_shape", [(4,), (3, 4), (2, 3, 4)], ids=["1d", "2d", "3d"])
@pytest.mark.parametrize("bias", [True, False])
def test_gradcheck_linear_checks_input_and_parameters(rng, input_shape, bias):
    layer = nn.Linear(4, 3, bias=bias)
    x = Tensor(rng.standard_normal(input_shape), requires_grad=True)
    report = tg.gradcheck_report(layer, [x])
    assert report.ok, str(report)
    expected = {"input 0", "weight", "bias"} if bias else {"input 0", "weight"}
    assert {row.input_name for row in report.rows} == expected


def test_gradcheck_sequential_names_parameters_by_dotted_name_and_leaves_them_alone(rng):
    model = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 4), nn.Sigmoid(), nn.Linear(4, 2), nn.LogSoftmax())
    before = {name: p.data for name, p in model.named_parameters()}
    copies = model.state_dict()
    x = Tensor(rng.standard_normal((6, 3)))
    report = tg.gradcheck_report(model, [x])
    assert report.ok, str(report)
    assert [row.input_name for row in report.rows] == list(copies)
    assert list(copies) == ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"]
    for name, p in model.named_parameters():
        assert p.data is before[name] and p.grad is None
        np.testing.assert_array_equal(p.data, copies[name])


def test_gradcheck_of_a_float32_layer_warns_and_restores_its_parameters(rng):
    layer = nn.Linear(3, 2, dtype=np.float32)
    x = Tensor(rng.standard_normal((2, 3)))
    with pytest.warns(tg.GradcheckWarning) as record:
        assert tg.gradcheck(layer, [x])
    messages = [str(w.message) for w in record]
    assert any("parameter `weight` is float32" in m for m in messages)
    assert any("parameter `bias` is float32" in m for m in messages)
    assert layer.weight.dtype == np.float32 and layer.bias.dtype == np.float32


# ------------------------------------------------------------------------------------------------------------
# nn.init
# ------------------------------------------------------------------------------------------------------------

INIT_FUNCTIONS = {
    "uniform_": lambda p, g: init.uniform_(p, -0.5, 2.0, generator=g),
    "normal_": lambda p, g: init.normal_(p, 1.0, 3.0, generator=g),
    "trunc_normal_": lambda p, g: init.trunc_normal_(p, 0.0, 1.0, -1.5, 0.5, generator=g),
    "xavier_uniform_": lambda p, g: init.xavier_uniform_(p, generator=g),
    "xavier_normal_": lambda p, g: init.xavier_normal_(p, generator=g),
    "kaiming_uniform_": lambda p, g: init.kaiming_uniform_(p, generator=g),
    "kaiming_normal_": lambda p, g: init.kaiming_normal_(p, generator=g),
}


@pytest.mark.parametrize("name", INIT_FUNCTIONS)
def test_init_fills_in_place_reproducibly_with_a_generator(name):
    fill = INIT_FUNCTIONS[name]
    parameter = nn.Parameter(np.zeros((20, 30)))
    array = parameter.data
    assert fill(parameter, np.random.default_rng(5)) is parameter
    assert parameter.data is array  # the same array: an optimizer holding it sees the new values
    first = array.copy()
    assert np.unique(first).size == first.size  # really random, not a constant
    fill(parameter, np.random.default_rng(5))
    np.testing.assert_array_equal(parameter.data, first)
    fill(parameter, np.random.default_rng(6))
    assert not np.array_equal(parameter.data, first)


@pytest.mark.parametrize("name", INIT_FUNCTIONS)
def test_init_without_a_generator_uses_the_one_manual_seed_resets(name):
    fill = INIT_FUNCTIONS[name]
    parameter = nn.Parameter(np.zeros((4, 5)))
    generator = tg.manual_seed(11)
    assert init.default_generator() is generator
    fill(parameter, None)
    first = parameter.data.copy()
    tg.manual_seed(11)
    fill(parameter, None)
    np.testing.assert_array_equal(parameter.data, first)


def test_init_keeps_the_parameters_dtype():
    parameter = nn.Parameter(np.zeros((30, 30), dtype=np.float32))
    init.kaiming_normal_(parameter, generator=np.random.default_rng(0))
    assert parameter.dtype == np.float32


def test_zeros_ones_and_constant_fill_in_place():
    parameter = nn.Parameter(np.full((2, 3), 7.0))
    array = parameter.data
    assert init.zeros_(parameter) is parameter and parameter.data is array
    assert np.all(array == 0.0)
    init.ones_(parameter)
    assert np.all(array == 1.0)
    init.constant_(parameter, -2.5)
    assert np.all(array == -2.5)


def test_uniform_and_normal_statistics():
    generator = np.random.default_rng(0)
    parameter = nn.Parameter(np.zeros(100_000))
    init.uniform_(parameter, -0.5, 2.0, generator=generator)
    assert parameter.data.min() >= -0.5 and parameter.data.max() < 2.0
    assert parameter.data.mean() == pytest.approx(0.75, abs=0.01)
    assert parameter.data.std() == pytest.approx(2.5 / math.sqrt(12), rel=0.01)
    init.normal_(parameter, 1.0, 3.0, generator=generator)
    assert parameter.data.mean() == pytest.approx(1.0, abs=0.05)
    assert parameter.data.std() == pytest.approx(3.0, rel=0.01)


def pytorch_fans(shape):
    """``torch.nn.init._calculate_fan_in_and_fan_out``: fan_in = shape[1] * receptive field, fan_out = shape[0] * it."""
    receptive_field = 1
    for size in shape[2:]:
        receptive_field *= size
    return shape[1] * receptive_field, shape[0] * receptive_field


FAN_SHAPES = [(300, 200), (200, 300), (64, 32, 3, 3), (16, 8, 5)]


@pytest.mark.parametrize("shape", FAN_SHAPES)
def test_xavier_uniform_bound_uses_pytorchs_fans(shape):
    fan_in, fan_out = pytorch_fans(shape)
    bound = 1.5 * math.sqrt(6.0 / (fan_in + fan_out))
    parameter = nn.Parameter(np.zeros(shape))
    init.xavier_uniform_(parameter, gain=1.5, generator=np.random.default_rng(0))
    assert np.abs(parameter.data).max() <= bound
    assert np.abs(parameter.data).max() > 0.99 * bound


@pytest.mark.parametrize("shape", FAN_SHAPES)
def test_xavier_normal_std_uses_pytorchs_fans(shape):
    fan_in, fan_out = pytorch_fans(shape)
    parameter = nn.Parameter(np.zeros(shape))
    init.xavier_normal_(parameter, gain=2.0, generator=np.random.default_rng(0))
    assert parameter.data.std() == pytest.approx(2.0 * math.sqrt(2.0 / (fan_in + fan_out)), rel=0.05)


@pytest.mark.parametrize("shape", FAN_SHAPES)
@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
@pytest.mark.parametrize(("a", "nonlinearity", "gain"), [(0.0, "relu", math.sqrt(2)), (0.2, "leaky_relu", None)])
def test_kaiming_uniform_and_normal_use_pytorchs_fans_and_gains(shape, mode, a, nonlinearity, gain):
    fan_in, fan_out = pytorch_fans(shape)
    fan = fan_in if mode == "fan_in" else fan_out
    gain = math.sqrt(2.0 / (1 + a**2)) if gain is None else gain
    std = gain / math.sqrt(fan)
    parameter = nn.Parameter(np.zeros(shape))
    init.kaiming_uniform_(parameter, a=a, mode=mode, nonlinearity=nonlinearity, generator=np.random.default_rng(0))
    bound = math.sqrt(3.0) * std
    assert bound * 0.99 < np.abs(parameter.data).max() <= bound
    init.kaiming_normal_(parameter, a=a, mode=mode, nonlinearity=nonlinearity, generator=np.random.default_rng(0))
    assert parameter.data.std() == pytest.approx(std, rel=0.05)


def test_calculate_gain_matches_pytorchs_table():
    assert init.calculate_gain("linear") == 1.0
    assert init.calculate_gain("sigmoid") == 1.0
    assert init.calculate_gain("conv2d") == 1.0
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert init.calculate_gain("leaky_relu") == pytest.approx(math.sqrt(2 / (1 + 0.01**2)))
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))
    assert init.calculate_gain("selu") == 0.75
    with pytest.raises(ValueError, match="unknown nonlinearity 'gelu'"):
        init.calculate_gain("gelu")


def test_fan_based_inits_need_two_axes():
    for fill in (init.xavier_uniform_, init.xavier_normal_, init.kaiming_uniform_, init.kaiming_normal_):
        with pytest.raises(ValueError, match=r"at least 2 axes.*got shape \(5,\)"):
            fill(nn.Parameter(np.zeros(5)))


def test_kaiming_mode_must_be_fan_in_or_fan_out():
    with pytest.raises(ValueError, match="mode must be 'fan_in' or 'fan_out', got 'fan_avg'"):
        init.kaiming_normal_(nn.Parameter(np.zeros((3, 3))), mode="fan_avg")


# trunc_normal_ ----------------------------------------------------------------------------------------------


def truncated_normal_moments(mean, std, a, b):
    """Mean and standard deviation of N(mean, std^2) restricted to [a, b], from the closed form."""
    low, high = (a - mean) / std, (b - mean) / std

    def pdf(z):
        return 0.0 if math.isinf(z) else math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)

    def cdf(z):
        return 0.5 * (1 + math.erf(z / math.sqrt(2)))

    def z_pdf(z):
        return 0.0 if math.isinf(z) else z * pdf(z)

    mass = cdf(high) - cdf(low)
    shift = (pdf(low) - pdf(high)) / mass
    variance = 1 + (z_pdf(low) - z_pdf(high)) / mass - shift**2
    return mean + std * shift, std * math.sqrt(variance)


TUTORIAL_000_BOUND = 1 / math.sqrt(784)
TRUNCATED_CASES = {
    # (mean, std, a, b)
    "tutorial-000-narrow": (0.0, 1.0, -TUTORIAL_000_BOUND, TUTORIAL_000_BOUND),
    "pytorch-default": (0.0, 1.0, -2.0, 2.0),
    "asymmetric": (0.0, 1.0, -0.5, 10.0),
    "one-sided-near": (0.0, 1.0, 0.1, 0.2),
    "shoulder": (0.0, 1.0, 1.0, 3.0),
    "far-tail": (0.0, 1.0, 6.0, 7.0),
    "far-left-tail": (0.0, 1.0, -7.5, -5.0),
    "scaled": (3.0, 2.0, 2.0, 3.5),
    "whole-line": (0.5, 0.1, -math.inf, math.inf),
}


@pytest.mark.parametrize("case", TRUNCATED_CASES)
def test_trunc_normal_respects_its_bounds_and_has_the_right_moments(case):
    mean, std, a, b = TRUNCATED_CASES[case]
    parameter = nn.Parameter(np.zeros((200, 784)))
    init.trunc_normal_(parameter, mean=mean, std=std, a=a, b=b, generator=np.random.default_rng(0))
    values = parameter.data
    assert values.min() >= a and values.max() <= b
    expected_mean, expected_std = truncated_normal_moments(mean, std, a, b)
    standard_error = expected_std / math.sqrt(values.size)
    assert abs(values.mean() - expected_mean) < 5 * standard_error
    assert values.std() == pytest.approx(expected_std, rel=0.015)


def test_trunc_normal_serves_tutorial_000s_initialisation():
    # Tutorial 000: weights_in_hidden (hidden, in) from N(0, 1) truncated to +-1/sqrt(no_of_in_nodes).
    layer = nn.Linear(784, 100, bias=False)
    for _ in range(20):  # bounds are never broken, draw after draw
        init.trunc_normal_(layer.weight, mean=0, std=1, a=-TUTORIAL_000_BOUND, b=TUTORIAL_000_BOUND)
        assert np.abs(layer.weight.data).max() <= TUTORIAL_000_BOUND
    # So narrow an interval is nearly flat, but not quite: the std is just under the uniform's bound / sqrt(3).
    _, expected_std = truncated_normal_moments(0.0, 1.0, -TUTORIAL_000_BOUND, TUTORIAL_000_BOUND)
    assert expected_std < TUTORIAL_000_BOUND / math.sqrt(3)
    assert layer.weight.data.std() == pytest.approx(expected_std, rel=0.02)


@pytest.mark.parametrize(("a", "b"), [(40.0, 41.0), (-41.0, -40.0), (8.0, math.inf)])
def test_trunc_normal_far_beyond_where_a_normal_ever_lands(a, b):
    # A normal proposal would never land here; the draws still come, quickly, and inside [a, b]. Their mean
    # follows the tail's Mills-ratio expansion: a + 1/a - 2/a^3 from the nearer bound.
    parameter = nn.Parameter(np.zeros(50_000))
    init.trunc_normal_(parameter, mean=0.0, std=1.0, a=a, b=b, generator=np.random.default_rng(1))
    values = parameter.data
    assert values.min() >= a and values.max() <= b
    near = a if a > 0 else b
    expected = near + 1 / near - 2 / near**3
    assert values.mean() == pytest.approx(expected, abs=5 * abs(1 / near) / math.sqrt(values.size) + 1e-4)


def test_trunc_normal_with_equal_bounds_is_that_constant():
    parameter = nn.Parameter(np.zeros(10))
    init.trunc_normal_(parameter, mean=0.0, std=1.0, a=0.3, b=0.3)
    assert np.all(parameter.data == 0.3)


def test_trunc_normal_errors_name_the_bad_argument():
    parameter = nn.Parameter(np.zeros(3))
    with pytest.raises(ValueError, match="std must be positive, got 0"):
        init.trunc_normal_(parameter, std=0.0)
    with pytest.raises(ValueError, match=r"lower bound 1\.0 is above the upper bound -1\.0"):
        init.trunc_normal_(parameter, a=1.0, b=-1.0)
