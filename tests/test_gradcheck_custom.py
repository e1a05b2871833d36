"""Custom layers: user Functions and Modules under gradcheck, its fast mode, structural checks and kinks, anomaly mode.

Each scenario writes its own op as a `tinygrad_nn.Function`, with a right backward or a subtly wrong one, and checks
that the verdict is right and that the message names what is wrong: the input or the parameter's dotted name, the
worst element's index, and the numerical and analytical values there.
"""

from __future__ import annotations

import inspect
import warnings

import numpy as np
import pytest

import tinygrad_nn as tg
from tinygrad_nn import Function, GradcheckError, GradcheckWarning, Tensor, nn


def leaf(data, dtype=np.float64) -> Tensor:
    return Tensor(np.array(data, dtype=dtype), requires_grad=True)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def failure(fn, inputs, **options) -> GradcheckError:
    """The GradcheckError that gradcheck raises for `fn`, after checking that the report agrees."""
    with pytest.raises(GradcheckError) as caught:
        tg.gradcheck(fn, inputs, **options)
    assert not caught.value.report.ok
    assert tg.gradcheck(fn, inputs, raise_exception=False, **options) is False
    return caught.value


def wrong_row(error: GradcheckError, name: str):
    """The one WRONG row of the report, which must be `name`'s; its worst element must be in the message."""
    rows = [row for row in error.report.rows if row.verdict == "wrong"]
    assert [row.input_name for row in rows] == [name], str(error)
    row = rows[0]
    message = str(error)
    assert f"the analytical gradient is wrong for `{name}`" in message
    index = "(" + ", ".join(str(i) for i in row.input_index) + ("," if len(row.input_index) == 1 else "") + ")"
    assert f"w.r.t. {name}, element {index}" in message
    assert f"numerical {row.numerical:.6g}, analytical {row.analytical:.6g}" in message
    return row


# --------------------------------------------------------------------------------------------------------------
# The ops: scale * softplus(x), with `scale` broadcast along the last axis, and variations on it
# --------------------------------------------------------------------------------------------------------------


def scaled_softplus(*, wrong_x=None, wrong_scale=None) -> type[Function]:
    """``scale * log(1 + exp(x))``; `wrong_x` / `wrong_scale` turn each backward's result into a wrong one."""

    class ScaledSoftplus(Function):
        @staticmethod
        def forward(ctx, x, scale):
            softplus = np.logaddexp(0.0, x)
            ctx.save_for_backward(x, scale, softplus)
            return scale * softplus

        @staticmethod
        def backward(ctx, grad):
            x, scale, softplus = ctx.saved_tensors
            grad_x = grad * scale * sigmoid(x) if ctx.needs_input_grad[0] else None
            # In the output's (broadcast) shape: the engine sums it down to scale's shape.
            grad_scale = grad * softplus if ctx.needs_input_grad[1] else None
            if wrong_x is not None and grad_x is not None:
                grad_x = wrong_x(grad_x, grad, x, scale, softplus)
            if wrong_scale is not None and grad_scale is not None:
                grad_scale = wrong_scale(grad_scale, grad, x, scale, softplus)
            return grad_x, grad_scale

    return ScaledSoftplus


ScaledSoftplus = scaled_softplus()


class Cube(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 3 * x**2


class LeakyClamp(Function):
    """Clamp to [low, high] with slope `slope` outside; options are keywords, so they are not inputs."""

    @staticmethod
    def forward(ctx, x, *, low=-1.0, high=1.0, slope=0.1):
        ctx.save_for_backward(x)
        ctx.low, ctx.high, ctx.slope = low, high, slope
        return np.where(x < low, low + slope * (x - low), np.where(x > high, high + slope * (x - high), x))

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * np.where((x < ctx.low) | (x > ctx.high), ctx.slope, 1.0)


class Power(Function):
    """``x ** exponent`` with a Python number as the second argument of forward: its gradient is None."""

    @staticmethod
    def forward(ctx, x, exponent):
        ctx.save_for_backward(x)
        ctx.exponent = exponent
        return x**exponent

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * ctx.exponent * x ** (ctx.exponent - 1), None


class PolarToCartesian(Function):
    """Two outputs, ``(r cos t, r sin t)``, from two inputs."""

    @staticmethod
    def forward(ctx, radius, angle):
        ctx.save_for_backward(radius, angle)
        return radius * np.cos(angle), radius * np.sin(angle)

    @staticmethod
    def backward(ctx, grad_x, grad_y):
        radius, angle = ctx.saved_tensors
        cos, sin = np.cos(angle), np.sin(angle)
        return grad_x * cos + grad_y * sin, radius * (grad_y * cos - grad_x * sin)


class WrongPolar(PolarToCartesian):
    """Forgets the minus sign of d(r cos t)/dt: wrong only through output 0, only for the angle."""

    @staticmethod
    def backward(ctx, grad_x, grad_y):
        radius, angle = ctx.saved_tensors
        cos, sin = np.cos(angle), np.sin(angle)
        return grad_x * cos + grad_y * sin, radius * (grad_y * cos + grad_x * sin)


class FusedMultiplyAdd(Function):
    """``a * b + c * d``: four inputs, none of them broadcast."""

    @staticmethod
    def forward(ctx, a, b, c, d):
        ctx.save_for_backward(a, b, c, d)
        return a * b + c * d

    @staticmethod
    def backward(ctx, grad):
        a, b, c, d = ctx.saved_tensors
        return grad * b, grad * a, grad * d, grad * c


class Mul(Function):
    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return x * y

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        return grad * y, grad * x


# --------------------------------------------------------------------------------------------------------------
# Correct backwards pass
# --------------------------------------------------------------------------------------------------------------


def test_unary_function_passes(rng):
    assert tg.gradcheck(Cube.apply, [leaf(rng.standard_normal((3, 4)))])


@pytest.mark.parametrize("scale_shape", [(4,), (1, 4), (3, 1), (2, 3, 4)], ids=["row", "row2d", "column", "bigger"])
def test_binary_function_with_broadcasting_passes(rng, scale_shape):
    # The backward returns scale's gradient in the output's shape; the engine sums it down, as in PyTorch.
    x, scale = leaf(rng.standard_normal((3, 4))), leaf(rng.uniform(0.5, 2.0, scale_shape))
    report = tg.gradcheck_report(ScaledSoftplus.apply, [x, scale])
    assert report.ok, str(report)
    assert [row.input_name for row in report.rows] == ["input 0", "input 1"]
    assert report.mode == "full"


def test_function_with_keyword_options_passes(rng):
    x = leaf(rng.uniform(-3.0, 3.0, (4, 5)))
    x.data[np.abs(np.abs(x.data) - 1.0) < 0.05] = 0.5  # away from the kinks at +-1 (their own test is below)
    assert tg.gradcheck(lambda t: LeakyClamp.apply(t, low=-1.0, high=1.0, slope=0.25), [x])
    assert tg.gradcheck(lambda t: LeakyClamp.apply(t, slope=0.0), [x])


def test_function_with_a_number_argument_and_a_constant_input_passes(rng):
    x = leaf(rng.uniform(0.5, 2.0, 5))
    constant = Tensor(rng.uniform(0.5, 2.0, 5))  # needs no grad: backward's needs_input_grad says so
    assert tg.gradcheck(Power.apply, [x, 2.5])
    assert tg.gradcheck(lambda t, c, k: ScaledSoftplus.apply(Power.apply(t, k), c), [x, constant, 3.0])


def test_function_with_tuple_outputs_passes(rng):
    radius, angle = leaf(rng.uniform(0.5, 2.0, 4)), leaf(rng.uniform(-3.0, 3.0, 4))
    report = tg.gradcheck_report(PolarToCartesian.apply, [radius, angle])
    assert report.ok, str(report)
    assert [(row.output, row.input_name) for row in report.rows] == [
        (0, "input 0"),
        (0, "input 1"),
        (1, "input 0"),
        (1, "input 1"),
    ]


def test_function_of_four_inputs_passes(rng):
    inputs = [leaf(rng.standard_normal((2, 3))) for _ in range(4)]
    assert tg.gradcheck(FusedMultiplyAdd.apply, inputs)
    # and composed with built-in ops around it, one input twice
    a, b = inputs[:2]
    assert tg.gradcheck(lambda a, b: FusedMultiplyAdd.apply(a.tanh(), b, a, a * b).sum(axis=0), [a, b])


def test_only_one_output_used_passes(rng):
    radius, angle = leaf(rng.uniform(0.5, 2.0, 3)), leaf(rng.uniform(-3.0, 3.0, 3))
    assert tg.gradcheck(lambda r, t: PolarToCartesian.apply(r, t)[1] * 2.0, [radius, angle])


# --------------------------------------------------------------------------------------------------------------
# Subtly wrong backwards fail, naming the input, the element and both values
# --------------------------------------------------------------------------------------------------------------


def one_element_off(grad_x, grad, x, scale, softplus):
    grad_x = grad_x.copy()
    grad_x[1, 2] *= 1.01  # 1%: ten times rtol
    return grad_x


def test_one_element_off_names_the_element_and_both_values(rng):
    x, scale = leaf(rng.standard_normal((3, 4))), leaf(rng.uniform(0.5, 2.0, 4))
    error = failure(scaled_softplus(wrong_x=one_element_off).apply, [x, scale])
    row = wrong_row(error, "input 0")
    assert row.input_index == (1, 2) and row.output_index == (1, 2)
    right = scale.data[2] * sigmoid(x.data[1, 2])
    assert row.numerical == pytest.approx(right, rel=1e-7)
    assert row.analytical == pytest.approx(1.01 * right, rel=1e-12)
    assert row.wrong_count == 1
    assert "elements wrong in all" not in str(error)


def test_wrong_sign_names_the_input(rng):
    x, scale = leaf(rng.standard_normal((2, 3))), leaf(rng.uniform(0.5, 2.0, 3))
    error = failure(scaled_softplus(wrong_scale=lambda g, *_: -g).apply, [x, scale])
    row = wrong_row(error, "input 1")
    assert row.analytical == pytest.approx(-row.numerical, rel=1e-7)
    assert row.wrong_count == 6  # every (output element, scale element) entry that is not zero


@pytest.mark.parametrize(
    "mistake",
    [
        # scale has shape (4,) and x (4, 4): summing over the wrong axis still gives shape (4,)
        lambda g, grad, x, scale, softplus: (grad * softplus).sum(axis=1),
        # forgets the factor: the mean instead of the sum over the broadcast axis
        lambda g, grad, x, scale, softplus: (grad * softplus).mean(axis=0),
        # forgets the factor softplus(x) at one broadcast position only
        lambda g, grad, x, scale, softplus: np.concatenate([grad[:1], (grad * softplus)[1:]]),
    ],
    ids=["wrong-axis", "mean-not-sum", "one-row-unscaled"],
)
def test_broadcast_input_summed_wrongly_fails(rng, mistake):
    op = scaled_softplus(wrong_scale=mistake)
    x, scale = leaf(rng.standard_normal((4, 4))), leaf(rng.uniform(0.5, 2.0, 4))
    row = wrong_row(failure(op.apply, [x, scale]), "input 1")
    # The values quoted are the true Jacobian entry and the one backward claims, at the element quoted.
    (i, j), (e,) = row.output_index, row.input_index
    assert row.numerical == pytest.approx(np.logaddexp(0.0, x.data[i, j]) if j == e else 0.0, abs=1e-7)
    seed = np.zeros((4, 4))
    seed[i, j] = 1.0
    op.apply(x, scale).backward(gradient=seed)
    assert row.analytical == scale.grad[e]


def test_wrong_only_through_one_output_names_the_output(rng):
    radius, angle = leaf(rng.uniform(0.5, 2.0, 3)), leaf(rng.uniform(-3.0, 3.0, 3))
    error = failure(WrongPolar.apply, [radius, angle])
    assert [(row.output, row.input_name, row.verdict) for row in error.report.rows] == [
        (0, "input 0", "ok"),
        (0, "input 1", "wrong"),
        (1, "input 0", "ok"),
        (1, "input 1", "ok"),
    ]
    row = error.report.rows[1]
    (e,) = row.input_index
    assert row.output_index == (e,)
    assert row.numerical == pytest.approx(-radius.data[e] * np.sin(angle.data[e]), rel=1e-6)
    assert row.analytical == pytest.approx(radius.data[e] * np.sin(angle.data[e]))
    assert f"output 0 w.r.t. input 1, element ({e},) (output element ({e},))" in str(error)


def test_wrong_input_among_four_is_the_one_named(rng):
    class WrongThird(FusedMultiplyAdd):
        @staticmethod
        def backward(ctx, grad):
            a, b, c, d = ctx.saved_tensors
            return grad * b, grad * a, grad * d * 1.5, grad * c

    error = failure(WrongThird.apply, [leaf(rng.standard_normal(3)) for _ in range(4)])
    wrong_row(error, "input 2")


def test_missing_gradient_fails_with_analytical_zero(rng):
    class ForgetsY(Mul):
        @staticmethod
        def backward(ctx, grad):
            _, y = ctx.saved_tensors
            return grad * y, None

    x, y = leaf([1.0, 2.0]), leaf([3.0, -4.0])
    row = wrong_row(failure(ForgetsY.apply, [x, y]), "input 1")
    assert row.analytical == 0.0 and row.numerical == pytest.approx(x.data[row.input_index], rel=1e-7)


# --------------------------------------------------------------------------------------------------------------
# A backward whose result cannot be a gradient: BackwardError naming the op, and a gradcheck failure naming it
# --------------------------------------------------------------------------------------------------------------


class BadShape(Mul):
    @staticmethod
    def backward(ctx, grad):
        _, y = ctx.saved_tensors
        return grad * y, np.ones(5)


class IntegerGrad(Mul):
    @staticmethod
    def backward(ctx, grad):
        _, y = ctx.saved_tensors
        return grad * y, np.ones(y.shape, dtype=np.int64)


class ReturnsTensor(Mul):
    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        return Tensor(grad * y), grad * x


class TooFewGrads(Mul):
    @staticmethod
    def backward(ctx, grad):
        _, y = ctx.saved_tensors
        return grad * y


@pytest.mark.parametrize(
    ("op", "expected"),
    [
        (BadShape, r"BadShape\.backward returned a gradient of shape \(5,\) for input 1, whose shape is \(2,\)"),
        (IntegerGrad, r"IntegerGrad\.backward returned a gradient of dtype int64 for input 1"),
        (ReturnsTensor, r"ReturnsTensor\.backward returned a Tensor for input 0"),
        (TooFewGrads, r"TooFewGrads\.backward returned 1 gradient\(s\) for 2 input\(s\)"),
    ],
    ids=["shape", "int-dtype", "tensor", "count"],
)
def test_backward_returning_no_gradient_is_a_backward_error_and_a_gradcheck_failure(op, expected):
    x, y = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    with pytest.raises(tg.BackwardError, match=expected):
        op.apply(x, y).sum().backward()
    error = failure(op.apply, [leaf([1.0, 2.0]), leaf([3.0, 4.0])])
    assert error.report.problems and error.report.rows == []
    assert str(error).startswith("gradcheck failed: ")
    assert op.__name__ in str(error)
    assert x.grad is None or np.all(np.isfinite(x.grad))


# --------------------------------------------------------------------------------------------------------------
# A Module as fn: its parameters are checked too, by dotted name, and left as they were
# --------------------------------------------------------------------------------------------------------------


class SoftplusLayer(nn.Module):
    """``scale * softplus(x)`` with a learnable `scale` per feature."""

    def __init__(self, features: int, op: type[Function] = ScaledSoftplus, dtype=np.float64) -> None:
        super().__init__()
        self.op = op
        self.scale = nn.Parameter(np.linspace(0.5, 1.5, features), dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        return self.op.apply(x, self.scale)


class Model(nn.Module):
    def __init__(self, op: type[Function] = ScaledSoftplus, dtype=np.float64) -> None:
        super().__init__()
        self.layer = SoftplusLayer(3, op, dtype)
        self.head = nn.Linear(3, 2, dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.layer(x))


class CustomLinear(nn.Module):
    """``x @ weight.T`` through a user Function, so that its backward can be made wrong."""

    def __init__(self, in_features: int, out_features: int, weight_factor: float = 1.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(np.random.default_rng(5).standard_normal((out_features, in_features)))
        factor = weight_factor

        class LinearOp(Function):
            @staticmethod
            def forward(ctx, x, weight):
                ctx.save_for_backward(x, weight)
                return x @ weight.T

            @staticmethod
            def backward(ctx, grad):
                x, weight = ctx.saved_tensors
                return grad @ weight, factor * (grad.T @ x)

        self.op = LinearOp

    def forward(self, x: Tensor) -> Tensor:
        return self.op.apply(x, self.weight)


class Encoder(nn.Module):
    def __init__(self, weight_factor: float = 1.0) -> None:
        super().__init__()
        self.encoder = nn.Sequential(CustomLinear(3, 4, weight_factor), nn.Tanh())
        self.out = nn.Linear(4, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.encoder(x))


def test_module_parameters_are_checked_by_dotted_name(rng):
    model = Model()
    report = tg.gradcheck_report(model, [leaf(rng.standard_normal((2, 3)))])
    assert report.ok, str(report)
    assert [row.input_name for row in report.rows] == ["input 0", "layer.scale", "head.weight", "head.bias"]
    # Only the parameters when no input requires grad, and a single tensor as inputs.
    report = tg.gradcheck_report(model, Tensor(rng.standard_normal((2, 3))))
    assert report.ok and [row.input_name for row in report.rows] == ["layer.scale", "head.weight", "head.bias"]


def test_parameter_gradient_scaled_wrong_names_the_parameter(rng):
    model = Model(scaled_softplus(wrong_scale=lambda g, *_: 2.0 * g))
    x = leaf(rng.standard_normal((2, 3)))
    error = failure(model, [x])
    row = wrong_row(error, "layer.scale")
    assert row.analytical == pytest.approx(2.0 * row.numerical, rel=1e-6)
    assert [r.input_name for r in error.report.rows if r.verdict == "ok"] == ["input 0", "head.weight", "head.bias"]


def test_nested_parameter_gradient_wrong_names_encoder_0_weight(rng):
    x = leaf(rng.standard_normal((2, 3)))
    assert tg.gradcheck(Encoder(), [x])
    error = failure(Encoder(weight_factor=1.05), [x])
    row = wrong_row(error, "encoder.0.weight")
    assert row.analytical == pytest.approx(1.05 * row.numerical, rel=1e-6)
    assert {r.input_name for r in error.report.rows} == {"input 0", "encoder.0.weight", "out.weight", "out.bias"}


@pytest.mark.parametrize("correct", [True, False])
def test_module_parameters_and_grads_are_left_alone(rng, correct):
    model = Model() if correct else Model(scaled_softplus(wrong_scale=lambda g, *_: 2.0 * g))
    arrays = {name: p.data for name, p in model.named_parameters()}
    values = model.state_dict()
    model.layer.scale.grad = earlier = np.full(3, 7.0)
    x = leaf(rng.standard_normal((2, 3)))
    assert tg.gradcheck(model, [x], raise_exception=False) is correct
    for name, p in model.named_parameters():
        assert p.data is arrays[name]
        np.testing.assert_array_equal(p.data, values[name])
    assert model.layer.scale.grad is earlier
    np.testing.assert_array_equal(earlier, np.full(3, 7.0))
    assert model.head.weight.grad is None and x.grad is None


def test_float32_module_is_checked_in_float64_and_restored(rng):
    seen = []

    class Recording(Model):
        def forward(self, x):
            seen.append((x.dtype, self.layer.scale.dtype, self.head.weight.dtype))
            return super().forward(x)

    model = Recording(dtype=np.float32)
    arrays = {name: p.data for name, p in model.named_parameters()}
    x = leaf(rng.standard_normal((2, 3)), dtype=np.float32)
    with pytest.warns(GradcheckWarning) as record:
        assert tg.gradcheck(model, [x])
    messages = " ".join(str(w.message) for w in record)
    for name in ("input 0", "parameter `layer.scale`", "parameter `head.weight`", "parameter `head.bias`"):
        assert f"{name} is float32; it is checked on a float64 copy" in messages
    assert set(seen) == {(np.dtype(np.float64),) * 3}
    for name, p in model.named_parameters():
        assert p.data is arrays[name] and p.dtype == np.float32 and p.grad is None
    assert x.dtype == np.float32 and x.grad is None


def test_float32_module_with_a_wrong_parameter_gradient_still_fails(rng):
    model = Model(scaled_softplus(wrong_scale=lambda g, *_: 2.0 * g), dtype=np.float32)
    with pytest.warns(GradcheckWarning) as record:
        error = failure(model, [Tensor(rng.standard_normal((2, 3)).astype(np.float32))])
    assert any("parameter `layer.scale` is float32" in str(w.message) for w in record)
    wrong_row(error, "layer.scale")
    assert model.layer.scale.dtype == np.float32


def test_parameters_restored_when_the_float32_warning_is_an_error():
    # Found by this test: with -W error::GradcheckWarning, the warning for a later float32 parameter stopped the
    # set-up after earlier parameters had been swapped for float64 copies, and they were never put back.
    model = Model()
    model.head.bias.data = model.head.bias.data.astype(np.float32)  # the last parameter
    arrays = {name: p.data for name, p in model.named_parameters()}
    model.layer.scale.grad = earlier = np.ones(3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", GradcheckWarning)
        with pytest.raises(GradcheckWarning, match=r"parameter `head\.bias` is float32"):
            tg.gradcheck(model, [Tensor(np.ones((2, 3)))])
    for name, p in model.named_parameters():
        assert p.data is arrays[name], name
    assert model.layer.scale.grad is earlier
    assert model.head.bias.dtype == np.float32 and model.layer.scale.dtype == np.float64


# --------------------------------------------------------------------------------------------------------------
# float32 inputs: checked on float64 copies, with a warning, whatever the verdict
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("correct", [True, False])
def test_float32_inputs_warn_and_get_the_right_verdict(rng, correct):
    op = ScaledSoftplus if correct else scaled_softplus(wrong_x=one_element_off)
    x = leaf(rng.standard_normal((3, 4)), dtype=np.float32)
    scale = leaf(rng.uniform(0.5, 2.0, 4), dtype=np.float32)
    with pytest.warns(GradcheckWarning) as record:
        assert tg.gradcheck(op.apply, [x, scale], raise_exception=False) is correct
    messages = [str(w.message) for w in record]
    assert any("input 0 is float32; it is checked on a float64 copy" in m for m in messages)
    assert any("input 1 is float32" in m for m in messages)
    assert x.dtype == scale.dtype == np.float32 and x.grad is None
    if not correct:
        with pytest.warns(GradcheckWarning):
            row = wrong_row(failure(op.apply, [x, scale]), "input 0")
        assert row.input_index == (1, 2)


def test_a_1_percent_error_that_float32_differences_could_not_see_is_caught(rng):
    # In float32, central differences carry errors of about 1e-7 / eps; on float64 copies 1% is plain to see.
    x = leaf(rng.uniform(0.5, 2.0, 6), dtype=np.float32)

    class CubeOff(Cube):
        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * 3.03 * x**2

    with pytest.warns(GradcheckWarning):
        wrong_row(failure(CubeOff.apply, [x]), "input 0")


# --------------------------------------------------------------------------------------------------------------
# fast_mode: one random projection per (output, input); the full report when it fails
# --------------------------------------------------------------------------------------------------------------


def random_state_snapshot():
    name, keys, position, has_gauss, cached = np.random.get_state()
    return name, keys.copy(), position, has_gauss, cached


def assert_same_random_state(before):
    after = np.random.get_state()
    assert after[0] == before[0] and after[2:] == before[2:]
    np.testing.assert_array_equal(after[1], before[1])


def element_times(factor: float, index: tuple):
    def mistake(grad_x, *_):
        grad_x = grad_x.copy()
        grad_x[index] *= factor
        return grad_x

    return mistake


FAST_CASES = {
    "right": (ScaledSoftplus, True),
    "one-element-off": (scaled_softplus(wrong_x=element_times(3.0, (3, 1))), False),
    "wrong-sign": (scaled_softplus(wrong_scale=lambda g, *_: -g), False),
    "mean-not-sum": (
        scaled_softplus(wrong_scale=lambda g, grad, x, s, softplus: (grad * softplus).mean(axis=0)),
        False,
    ),
}


@pytest.mark.parametrize("case", list(FAST_CASES))
def test_fast_mode_agrees_with_the_full_check_and_leaves_the_random_state_alone(rng, case):
    op, correct = FAST_CASES[case]
    x, scale = leaf(rng.standard_normal((5, 4))), leaf(rng.uniform(0.5, 2.0, 4))
    np.random.seed(42)
    before = random_state_snapshot()
    full = tg.gradcheck_report(op.apply, [x, scale])
    fast = tg.gradcheck_report(op.apply, [x, scale], fast_mode=True)
    assert_same_random_state(before)
    assert full.ok is fast.ok is correct
    if correct:
        assert fast.mode == "fast"
        assert all(row.projection and row.verdict == "ok" for row in fast.rows)
        assert "v^T J u" in str(fast)
    else:
        # The fallback is the full check: the same rows, the same element named, the same message body.
        assert fast.mode == "full (fast check failed)"
        assert fast.rows == full.rows
        assert str(fast) == str(full)


def test_fast_mode_failure_names_the_element():
    x = leaf(np.linspace(-2.0, 2.0, 12).reshape(3, 4))
    scale = leaf([0.5, 1.0, 1.5, 2.0])
    error = failure(scaled_softplus(wrong_x=one_element_off).apply, [x, scale], fast_mode=True)
    assert error.report.mode == "full (fast check failed)"
    row = wrong_row(error, "input 0")
    assert row.input_index == (1, 2)


def test_fast_mode_evaluates_a_large_input_a_few_times_only(rng):
    calls = []

    def fn(x, scale):
        calls.append(1)
        return ScaledSoftplus.apply(x, scale)

    x, scale = leaf(rng.standard_normal((100, 100))), leaf(rng.uniform(0.5, 2.0, 100))
    assert tg.gradcheck(fn, [x, scale], fast_mode=True)
    assert len(calls) == 1 + 2 + 2 * 2  # the graph once, twice more to see it repeats, then two forwards per input


def test_fast_mode_checks_every_output_input_pair(rng):
    radius, angle = leaf(rng.uniform(0.5, 2.0, 30)), leaf(rng.uniform(-3.0, 3.0, 30))
    fast = tg.gradcheck_report(PolarToCartesian.apply, [radius, angle], fast_mode=True)
    assert fast.ok and fast.mode == "fast"
    assert [(row.output, row.input_name) for row in fast.rows] == [(k, f"input {i}") for k in (0, 1) for i in (0, 1)]
    wrong = tg.gradcheck_report(WrongPolar.apply, [radius, angle], fast_mode=True)
    assert wrong.mode == "full (fast check failed)"
    assert [(row.output, row.input_name) for row in wrong.rows if row.verdict == "wrong"] == [(0, "input 1")]


def test_fast_mode_depends_on_its_seed_only(rng):
    x, scale = leaf(rng.standard_normal((4, 4))), leaf(rng.uniform(0.5, 2.0, 4))
    first = tg.gradcheck_report(ScaledSoftplus.apply, [x, scale], fast_mode=True, seed=3)
    np.random.seed(0)
    again = tg.gradcheck_report(ScaledSoftplus.apply, [x, scale], fast_mode=True, seed=3)
    other = tg.gradcheck_report(ScaledSoftplus.apply, [x, scale], fast_mode=True, seed=4)
    assert [r.numerical for r in first.rows] == [r.numerical for r in again.rows]
    assert [r.numerical for r in first.rows] != [r.numerical for r in other.rows]


# --------------------------------------------------------------------------------------------------------------
# Structural checks: linear in the upstream gradient, the same result twice
# --------------------------------------------------------------------------------------------------------------


def test_backward_that_adds_a_constant_is_not_linear(rng):
    error = failure(scaled_softplus(wrong_scale=lambda g, *_: g + 0.01).apply, [leaf([1.0, 2.0]), leaf([3.0, 4.0])])
    message = str(error)
    assert "backward is not linear in the upstream gradient" in message
    assert "a zero upstream gradient gave input 1 a nonzero gradient (0.01 at element (0,))" in message
    assert "input 0 a nonzero" not in message


def test_nondeterministic_backward_is_not_repeatable():
    calls = []

    class Jittery(Cube):
        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            calls.append(1)
            return grad * 3 * x**2 * (1.0 + 1e-9 * len(calls))  # still linear, never the same twice

    error = failure(Jittery.apply, [leaf([1.0, 2.0])])
    message = str(error)
    assert "backward is not repeatable: the same upstream gradient gave input 0 different gradients" in message
    assert "not linear" not in message


def test_infinite_derivative_is_reported_as_such():
    # sqrt at 0: backward multiplies the upstream gradient by inf, so zero in gives NaN out.
    with np.errstate(divide="ignore", invalid="ignore"):
        error = failure(lambda t: t.sqrt(), [leaf([0.0, 1.0])])
    assert "gave input 0 a non-finite gradient (nan at element (0,))" in str(error)


def test_nan_numerical_derivative_is_a_failure_not_a_pass():
    # Found by this test: NaN compared as "within tolerance", so a function undefined on one side of the point
    # (sqrt at 0, whose left neighbour is NaN) passed with any finite analytical value.
    class SafeSqrt(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return np.sqrt(x)

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * np.where(x > 0, 0.5 / np.sqrt(np.maximum(x, 1e-300)), 0.0)

    for fast_mode in (False, True):
        with np.errstate(invalid="ignore"):
            row = wrong_row(failure(SafeSqrt.apply, [leaf([0.0, 1.0])], fast_mode=fast_mode), "input 0")
        assert row.input_index == (0,) and np.isnan(row.numerical) and row.analytical == 0.0


# --------------------------------------------------------------------------------------------------------------
# Kinks: not differentiable, not wrong
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fn", "left", "right"), [(lambda t: t.relu(), 0.0, 1.0), (lambda t: t.abs(), -1.0, 1.0)], ids=["relu", "abs"]
)
def test_relu_and_abs_at_zero_are_not_differentiable(fn, left, right):
    x = leaf([-1.5, 0.0, 2.0])
    report = tg.gradcheck_report(fn, [x])
    assert report.ok
    assert [row.verdict for row in report.rows] == ["kink"]
    assert report.kinks == [("input 0", (1,))]
    assert report.rows[0].kink_slopes == pytest.approx((left, right, 0.0))
    text = str(report)
    assert "not differentiable at input 0 element(s) (1,)" in text
    assert f"from the left {left:g}, from the right {right:g}" in text
    with pytest.warns(GradcheckWarning, match=r"not differentiable at input 0 element\(s\) \(1,\)"):
        assert tg.gradcheck(fn, [x])


def test_custom_op_at_its_kinks_with_a_valid_subgradient_passes_with_a_warning():
    x = leaf([-2.0, -1.0, 0.0, 1.0, 2.0])  # the kinks of LeakyClamp are at -1 and 1
    with pytest.warns(GradcheckWarning, match=r"not differentiable at input 0 element\(s\) \(1,\), \(3,\)"):
        assert tg.gradcheck(LeakyClamp.apply, [x])


@pytest.mark.parametrize("slope_at_zero", [2.0, -0.5])
def test_wrong_subgradient_outside_the_one_sided_slopes_fails(slope_at_zero):
    class BadReLU(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return np.maximum(x, 0.0)

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * np.where(x > 0, 1.0, np.where(x == 0, slope_at_zero, 0.0))

    row = wrong_row(failure(BadReLU.apply, [leaf([-1.0, 0.0, 2.0])]), "input 0")
    assert row.input_index == (1,) and row.numerical == pytest.approx(0.5) and row.analytical == slope_at_zero
    assert row.kinks == []


def test_kink_in_a_parameter_is_named_by_the_parameter():
    class Shifted(nn.Module):
        def __init__(self):
            super().__init__()
            self.shift = nn.Parameter([0.5, -1.0])

        def forward(self, x):
            return (x - self.shift).relu()

    report = tg.gradcheck_report(Shifted(), [Tensor([0.5, 3.0])])
    assert report.ok and report.kinks == [("shift", (0,))]


def test_steep_curvature_is_not_a_kink():
    # Found by this test: 1/x at 1e-4 has one-sided slopes 2% apart with eps=1e-6, which read as a kink and let
    # a backward 1% off pass. A closer look (a ten times smaller step) tells curvature from a kink.
    def reciprocal(factor: float) -> type[Function]:
        class Reciprocal(Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x)
                return 1.0 / x

            @staticmethod
            def backward(ctx, grad):
                (x,) = ctx.saved_tensors
                return -factor * grad / x**2

        return Reciprocal

    x = leaf([1e-4, 0.5])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = tg.gradcheck_report(reciprocal(1.0).apply, [x])
        assert report.ok and report.kinks == [], str(report)
    row = wrong_row(failure(reciprocal(1.01).apply, [x]), "input 0")
    assert row.input_index == (0,) and row.kinks == []
    assert row.analytical / row.numerical == pytest.approx(1.01, rel=1e-4)


def test_kink_just_beside_the_point_does_not_fail_a_right_gradient():
    # relu at 5e-7: differentiable (slope 1), but the step eps=1e-6 crosses the kink; the closer look does not.
    report = tg.gradcheck_report(lambda t: t.relu(), [leaf([5e-7, -5e-7])])
    assert report.ok and report.kinks == [], str(report)


# --------------------------------------------------------------------------------------------------------------
# The report: a compact table, never whole matrices
# --------------------------------------------------------------------------------------------------------------


def test_report_of_a_large_input_stays_short(rng):
    x, weight = leaf(rng.standard_normal((50, 50))), leaf(rng.standard_normal((50, 50)))

    class MulOffEverywhere(Mul):
        @staticmethod
        def backward(ctx, grad):
            x, y = ctx.saved_tensors
            return grad * y * 1.1, grad * x

    error = failure(lambda a, b: MulOffEverywhere.apply(a, b).sum(), [x, weight])
    lines = str(error).splitlines()
    assert len(lines) <= 6, str(error)
    assert max(len(line) for line in lines) < 200
    assert "[[" not in str(error) and "..." not in str(error)
    row = error.report.rows[0]
    assert row.wrong_count > 2400  # all but the few where 10% of the value is within atol
    assert f"{row.wrong_count} Jacobian entries wrong in all" in str(error)
    header = lines[2]
    for column in ("output", "input", "max abs err", "max rel err", "worst element", "numerical", "analytical"):
        assert column in header
    assert "WRONG" in lines[4] and "input 0" in lines[4]
    assert lines[5].split("|")[-1].strip() == "ok"


def test_many_kinks_are_listed_briefly():
    report = tg.gradcheck_report(lambda t: t.relu(), [leaf(np.zeros((10, 10)))])
    assert report.ok and len(report.kinks) == 100
    text = str(report)
    assert "and 95 more" in text and len(text.splitlines()) <= 5


def test_raise_exception_false_returns_false_and_true_stays_true(rng):
    x, scale = leaf(rng.standard_normal((2, 3))), leaf(rng.uniform(0.5, 2.0, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert tg.gradcheck(ScaledSoftplus.apply, [x, scale], raise_exception=False) is True
        wrong = scaled_softplus(wrong_x=lambda g, *_: 2 * g)
        assert tg.gradcheck(wrong.apply, [x, scale], raise_exception=False) is False
        assert tg.gradcheck(BadShape.apply, [x, leaf(np.ones(3))], raise_exception=False) is False


# --------------------------------------------------------------------------------------------------------------
# Anomaly mode
# --------------------------------------------------------------------------------------------------------------


def here() -> str:
    """``file:line`` of the caller's next line."""
    frame = inspect.currentframe().f_back
    return f"{__file__}:{frame.f_lineno + 1}"


def test_log_of_a_negative_number_names_log_and_this_line():
    x = leaf([2.0, -1.0])
    with tg.detect_anomaly(), pytest.raises(tg.AnomalyError) as caught:
        where = here()
        x.log()
    message = str(caught.value)
    assert message.startswith("Log forward produced 1 NaN of 2 values (first at index (1,))")
    assert message.endswith(f"the op was called at {where}")


class InfBackward(Function):
    """Finite forward, but a backward that divides by x: inf at 0."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * 2.0

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad / x


def test_nan_or_inf_in_backward_names_the_op_and_where_it_was_created():
    x = leaf([0.0, 1.0])
    with tg.detect_anomaly():
        where = here()
        out = InfBackward.apply(x).sum()
        with pytest.raises(tg.AnomalyError) as caught:
            out.backward()
    message = str(caught.value)
    assert message.startswith("InfBackward backward produced 1 inf of 2 values (first at index (0,))")
    assert "in the gradient of its input 0" in message
    assert message.endswith(f"the op was called at {where}")
    assert x.grad is None


def test_user_function_producing_inf_is_named_by_its_class():
    class Overflowing(Function):
        @staticmethod
        def forward(ctx, x):
            return np.exp(x) * 1e300

    with tg.detect_anomaly(), pytest.raises(tg.AnomalyError, match=r"^Overflowing forward produced 1 inf"):
        Overflowing.apply(leaf([1.0, 800.0]))


def test_user_function_producing_inf_in_one_of_its_outputs():
    class Split(Function):
        @staticmethod
        def forward(ctx, x):
            return x, 1.0 / x

        @staticmethod
        def backward(ctx, grad_a, grad_b):
            return grad_a

    with tg.detect_anomaly(), pytest.raises(tg.AnomalyError, match=r"Split forward produced 1 inf .* in its output 1"):
        Split.apply(leaf([0.0, 1.0]))


def test_anomaly_inside_a_module_names_the_line_in_its_forward():
    class LogLayer(nn.Module):
        def forward(self, x):
            self.where = here()
            return InfBackward.apply(x).log()

    layer = LogLayer()
    with tg.detect_anomaly(), pytest.raises(tg.AnomalyError, match=r"^Log forward") as caught:
        layer(leaf([-1.0]))
    assert str(caught.value).endswith(layer.where)


def test_outside_anomaly_mode_nan_is_no_error_only_numpys_warning():
    x = leaf([0.0, 1.0])
    with pytest.warns(RuntimeWarning, match="invalid value encountered in log"):
        out = leaf([-1.0]).log()
    assert np.isnan(out.data).all()
    with pytest.warns(RuntimeWarning, match="divide by zero"):
        InfBackward.apply(x).sum().backward()
    assert np.isinf(x.grad[0])


def test_anomaly_mode_is_restored_after_the_block_even_on_error():
    with pytest.raises(tg.AnomalyError), tg.detect_anomaly():
        leaf([-1.0]).log()
    with pytest.warns(RuntimeWarning):
        assert np.isnan(leaf([-1.0]).log().data).all()  # no AnomalyError any more
    # nested: leaving the inner block keeps the outer one on
    with tg.detect_anomaly():
        with pytest.raises(tg.AnomalyError), tg.detect_anomaly():
            leaf([-1.0]).log()
        with pytest.raises(tg.AnomalyError):
            leaf([-2.0]).log()


def test_anomaly_mode_does_not_disturb_a_finite_custom_op(rng):
    x, scale = leaf(rng.standard_normal((2, 3))), leaf(rng.uniform(0.5, 2.0, 3))
    with tg.detect_anomaly():
        out = ScaledSoftplus.apply(x, scale).sum()
        out.backward()
    np.testing.assert_allclose(x.grad, scale.data * sigmoid(x.data))


# --------------------------------------------------------------------------------------------------------------
# A user's op is a first-class citizen: it composes, and graph pictures show its class name
# --------------------------------------------------------------------------------------------------------------


def test_custom_function_names_appear_in_the_graph(rng):
    model = Model()
    x = Tensor(rng.standard_normal((2, 3)))
    out = Cube.apply(model(x)).sum()
    source = tg.draw_graph(out).source
    for op in ("ScaledSoftplus", "Cube", "Linear", "Sum"):
        assert f"<b>{op}</b>" in source
    radius, angle = leaf([1.0]), leaf([0.5])
    a, b = PolarToCartesian.apply(radius, angle)
    assert "<b>PolarToCartesian</b>" in tg.draw_graph(a + b).source
    assert "layer.scale" in tg.draw_graph(out, model).source


def test_custom_function_is_the_grad_fn_and_composes_with_built_in_ops(rng):
    x, scale = leaf(rng.standard_normal((2, 3))), leaf(rng.uniform(0.5, 2.0, 3))
    out = ScaledSoftplus.apply(x.tanh(), scale)
    assert type(out.grad_fn).__name__ == "ScaledSoftplus" and out.grad_fn.name == "ScaledSoftplus"
    (out * out).mean().backward()
    softplus = np.logaddexp(0.0, np.tanh(x.data))
    expected_scale = (2 * scale.data * softplus**2).sum(axis=0) / 6
    np.testing.assert_allclose(scale.grad, expected_scale)
