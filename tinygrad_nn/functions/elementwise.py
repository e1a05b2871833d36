"""Elementwise primitives: arithmetic (broadcasting like numpy) and functions of one tensor.

Each backward is written once for ndarrays and Tensors (see `base`), so every op here is differentiable to any
order; the piecewise ones (abs, relu, clip, maximum, minimum) have second derivative 0 away from their kinks.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import xp
from .base import Primitive, broadcast_error, shape_of

__all__ = [
    "Abs",
    "Add",
    "Cast",
    "Clip",
    "Div",
    "Exp",
    "Log",
    "Log1p",
    "Maximum",
    "Minimum",
    "Mul",
    "Neg",
    "Pow",
    "ReLU",
    "Sigmoid",
    "Sqrt",
    "Sub",
    "Tanh",
    "Where",
    "sigmoid_array",
]


# --------------------------------------------------------------------------------------------------------------
# Arithmetic
# --------------------------------------------------------------------------------------------------------------


class Add(Primitive):
    """``a + b``."""

    __slots__ = ()

    @staticmethod
    def forward(ctx, a, b):
        try:
            return np.add(a, b)
        except ValueError as error:
            raise broadcast_error("add", "+", a, b, error) from None

    @staticmethod
    def backward(ctx, grad):
        return grad, grad


class Sub(Primitive):
    """``a - b``."""

    __slots__ = ()

    @staticmethod
    def forward(ctx, a, b):
        try:
            return np.subtract(a, b)
        except ValueError as error:
            raise broadcast_error("sub", "-", a, b, error) from None

    @staticmethod
    def backward(ctx, grad):
        return grad, (-grad if ctx.parents[1] is not None else None)


class Mul(Primitive):
    """``a * b``."""

    __slots__ = ()

    @staticmethod
    def forward(ctx, a, b):
        ctx.inputs = (a, b)
        try:
            return np.multiply(a, b)
        except ValueError as error:
            raise broadcast_error("mul", "*", a, b, error) from None

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.inputs
        edge_a, edge_b = ctx.parents
        return (grad * b if edge_a is not None else None), (grad * a if edge_b is not None else None)


class Div(Primitive):
    """``a / b``."""

    __slots__ = ()

    @staticmethod
    def forward(ctx, a, b):
        ctx.inputs = (a, b)
        try:
            return np.true_divide(a, b)
        except ValueError as error:
            raise broadcast_error("div", "/", a, b, error) from None

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.inputs
        edge_a, edge_b = ctx.parents
        grad_a = grad / b if edge_a is not None else None
        grad_b = -grad * a / (b * b) if edge_b is not None else None
        return grad_a, grad_b


class Neg(Primitive):
    """``-x``."""

    __slots__ = ()

    @staticmethod
    def forward(ctx, x):
        return np.negative(x)

    @staticmethod
    def backward(ctx, grad):
        return -grad


class Pow(Primitive):
    """``base ** exponent``; either may be a tensor, the other a number.

    Where the exponent is 0, the base gets gradient 0; where the base is 0 and the exponent >= 0, the exponent
    gets gradient 0 instead of ``0 * log(0)``: PyTorch's conventions, which keep NaN out of common cases.
    """

    __slots__ = ()
    _backward_reads_inputs = True

    @staticmethod
    def forward(ctx, base, exponent):
        try:
            out = np.power(base, exponent)
        except ValueError as error:
            raise broadcast_error("pow", "**", base, exponent, error) from None
        ctx.inputs = (base, exponent)
        ctx.output = out
        return out

    @staticmethod
    def backward(ctx, grad):
        base, exponent = ctx.inputs
        edge_base, edge_exponent = ctx.parents
        grad_base = grad_exponent = None
        if edge_base is not None:
            if isinstance(exponent, (int, float)):
                if exponent == 2 and type(base) is np.ndarray:
                    # The common square, without a power call: the same numbers as the general formula. A Tensor
                    # takes that formula instead, so that its graph is PyTorch's (a power of x, not a sum), which
                    # stays connected to x at every order.
                    grad_base = grad * (base + base)
                elif exponent == 0:
                    grad_base = grad * 0.0
                else:
                    with np.errstate(divide="ignore", invalid="ignore"):
                        grad_base = grad * (exponent * base ** (exponent - 1))
            else:
                with np.errstate(divide="ignore", invalid="ignore"):
                    grad_base = grad * exponent * base ** (exponent - 1)
                grad_base = xp.where(np.equal(xp.value(exponent), 0), 0, grad_base)
        if edge_exponent is not None:
            with np.errstate(divide="ignore", invalid="ignore"):
                grad_exponent = grad * ctx.output * xp.log(base)
            base_value, exponent_value = xp.value(base), xp.value(exponent)
            grad_exponent = xp.where(np.equal(base_value, 0) & np.greater_equal(exponent_value, 0), 0, grad_exponent)
        return grad_base, grad_exponent


class Maximum(Primitive):
    """Elementwise ``maximum(a, b)``; where a == b each side gets half the gradient, as in PyTorch."""

    __slots__ = ()

    @staticmethod
    def forward(ctx, a, b):
        ctx._saved = (a, b)  # only for the masks: constants to a second derivative
        try:
            return np.maximum(a, b)
        except ValueError as error:
            raise broadcast_error("maximum", "vs", a, b, error) from None

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx._saved
        return _split_by_winner(ctx, grad, np.greater(a, b), np.equal(a, b))


class Minimum(Primitive):
    """Elementwise ``minimum(a, b)``; where a == b each side gets half the gradient, as in PyTorch."""

    __slots__ = ()

    @staticmethod
    def forward(ctx, a, b):
        ctx._saved = (a, b)
        try:
            return np.minimum(a, b)
        except ValueError as error:
            raise broadcast_error("minimum", "vs", a, b, error) from None

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx._saved
        return _split_by_winner(ctx, grad, np.less(a, b), np.equal(a, b))


def _split_by_winner(ctx: Any, grad: Any, a_wins: np.ndarray, tie: np.ndarray) -> tuple:
    half = xp.where(tie, grad * 0.5, 0)
    edge_a, edge_b = ctx.parents
    grad_a = xp.where(a_wins, grad, half) if edge_a is not None else None
    grad_b = xp.where(a_wins | tie, half, grad) if edge_b is not None else None
    return grad_a, grad_b


class Where(Primitive):
    """``where(condition, a, b)``: a where condition holds, b elsewhere; the condition gets no gradient."""

    __slots__ = ()

    @staticmethod
    def forward(ctx, condition, a, b):
        condition = np.asarray(condition, dtype=bool)
        ctx._saved = (condition,)
        try:
            return np.where(condition, a, b)
        except ValueError:
            raise ValueError(
                f"where: condition {shape_of(condition)}, a {shape_of(a)} and b {shape_of(b)} do not broadcast together"
            ) from None

    @staticmethod
    def backward(ctx, grad):
        (condition,) = ctx._saved
        _, edge_a, edge_b = ctx.parents
        grad_a = xp.where(condition, grad, 0) if edge_a is not None else None
        grad_b = xp.where(condition, 0, grad) if edge_b is not None else None
        return None, grad_a, grad_b


# --------------------------------------------------------------------------------------------------------------
# Functions of one tensor
# --------------------------------------------------------------------------------------------------------------


class Exp(Primitive):
    """``exp(x)``."""

    __slots__ = ()

    @staticmethod
    def forward(ctx, x):
        out = np.exp(x)
        ctx.output = out
        return out

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.output


class Log(Primitive):
    """Natural logarithm ``log(x)``."""

    __slots__ = ()

    @staticmethod
    def forward(ctx, x):
        ctx.inputs = (x,)
        return np.log(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.inputs
        return grad / x


class Log1p(Primitive):
    """``log(1 + x)``, accurate for small x."""

    __slots__ = ()

    @staticmethod
    def forward(ctx, x):
        ctx.inputs = (x,)
        return np.log1p(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.inputs
        return grad / (1 + x)


class Sqrt(Primitive):
    """``sqrt(x)``."""

    __slots__ = ()

    @staticmethod
    def forward(ctx, x):
        out = np.sqrt(x)
        ctx.output = out
        return out

    @staticmethod
    def backward(ctx, grad):
        out = ctx.output
        return grad / (out + out)


class Abs(Primitive):
    """``abs(x)``; the gradient at 0 is 0, as in PyTorch."""

    __slots__ = ()
    _backward_reads_inputs = True
    _flat_through_inputs = True  # as PyTorch: d/dx of its gradient is zeros, even when the upstream requires grad

    @staticmethod
    def forward(ctx, x):
        ctx._saved = (x,)
        return np.abs(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx._saved
        return grad * np.sign(x)


class Tanh(Primitive):
    """``tanh(x)``."""

    __slots__ = ()

    @staticmethod
    def forward(ctx, x):
        out = np.tanh(x)
        ctx.output = out
        return out

    @staticmethod
    def backward(ctx, grad):
        out = ctx.output
        return grad * (1 - out * out)


class Sigmoid(Primitive):
    """``1 / (1 + exp(-x))``, with the backward ``grad * out * (1 - out)``.

    For x below about -709 (float64) or -88 (float32), exp(-x) overflows to inf and the result is exactly 0,
    which is right; only numpy's overflow warning is silenced. This is the tutorials' formula bit for bit, and
    in place it is faster than both the naive expression and a branch-free stable form.
    """

    __slots__ = ()

    @staticmethod
    @np.errstate(over="ignore")  # as a decorator it costs half what a with-block does, per call
    def forward(ctx, x):
        out = np.negative(x)
        if type(out) is not np.ndarray or out.dtype.kind != "f":
            # A 0-d input gives a numpy scalar (no buffer to work in); an integer one computes in float64.
            out = np.array(out, dtype=np.result_type(out, 1.0))
        np.exp(out, out=out)
        out += 1
        np.reciprocal(out, out=out)
        ctx.output = out
        return out

    @staticmethod
    def backward(ctx, grad):
        out = ctx.output
        # In place on arrays (one temporary instead of three); on Tensors `*=` makes new nodes, which is right.
        slope = 1 - out
        slope *= out
        slope *= grad
        return slope


class _Scratch:
    """A stand-in ctx for calling a primitive's forward on arrays outside the graph (what it saves is dropped)."""

    __slots__ = ("_saved", "inputs", "output")


def sigmoid_array(x: Any) -> np.ndarray:
    """`Sigmoid`'s forward on an array, outside any graph."""
    return Sigmoid.forward(_Scratch(), x)


class ReLU(Primitive):
    """``max(x, 0)``; the gradient at 0 is 0, as in PyTorch."""

    __slots__ = ()
    _backward_reads_inputs = True
    _flat_through_inputs = True  # as PyTorch: d/dx of its gradient is zeros, even when the upstream requires grad

    @staticmethod
    def forward(ctx, x):
        out = np.maximum(x, 0)
        ctx._saved = (out,)  # only for the mask
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx._saved
        mask = out > 0
        if type(grad) is np.ndarray and np.isfinite(grad.sum()):
            # A product, not np.where: where branches on every element, and a ReLU's mask is random enough to
            # mispredict half of them (5x slower at 6,400 entries, 8x at a CNN's 1.6 million). Only for a finite
            # gradient (one sum tells): an inf times the mask's 0 would be NaN, where np.where and PyTorch give 0.
            return grad * mask
        return xp.where(mask, grad, 0)


class Clip(Primitive):
    """``clip(x, min, max)``; the gradient passes where min <= x <= max (bounds included), as in PyTorch."""

    __slots__ = ()
    _backward_reads_inputs = True

    @staticmethod
    def forward(ctx, x, low=None, high=None):
        if low is None and high is None:
            raise ValueError("clip: give min, max or both")
        # Bounds are numbers (numpy scalars too), so they never upcast x, as for every other op.
        low = low.item() if isinstance(low, np.generic) else low
        high = high.item() if isinstance(high, np.generic) else high
        ctx._saved = (x, low, high)
        return np.clip(x, low, high)

    @staticmethod
    def backward(ctx, grad):
        x, low, high = ctx._saved
        inside = np.ones(x.shape, dtype=bool) if low is None else x >= low
        if high is not None:
            inside &= x <= high
        return xp.where(inside, grad, 0)


class Cast(Primitive):
    """``x.astype(dtype)``; the gradient is cast back to x's dtype (by the engine)."""

    __slots__ = ()
    _leaves_graph = True  # a cast to an integer dtype is an explicit way out of the graph

    @staticmethod
    def forward(ctx, x, dtype=None):
        return x.astype(dtype)

    @staticmethod
    def backward(ctx, grad):
        return grad
