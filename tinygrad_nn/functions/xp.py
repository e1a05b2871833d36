"""The array namespace backward formulas are written in: numpy for ndarrays, the primitives for Tensors.

A backward runs on ndarrays in a plain backward and on Tensors under ``create_graph``. Operators and the methods
both types share cover most formulas; for the rest, each function here looks at its arguments' type and does
the numpy computation, or applies the primitive that records it (whose forward is that same computation)::

    from tinygrad_nn.functions import xp

    class Softplus(tinygrad_nn.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return np.logaddexp(0, x)

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * xp.sigmoid(x)      # works on arrays and on Tensors

Masks (``x > 0``), signs and other piecewise-constant factors are constants to a second derivative: compute them
from `value(x)` (the array, outside any graph) or with `sign`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import autograd
from . import elementwise as _elementwise
from . import normalization as _normalization
from . import shape as _shape

__all__ = [
    "broadcast_to",
    "dot",
    "exp",
    "log",
    "log1p",
    "log_softmax",
    "maximum",
    "minimum",
    "scatter_add",
    "sigmoid",
    "sign",
    "softmax",
    "tanh",
    "value",
    "where",
]


def _is_tensor(value: Any) -> bool:
    return isinstance(value, autograd.Tensor)


def value(x: Any) -> Any:
    """The ndarray of a Tensor (outside any graph), or `x` itself."""
    return x.data if _is_tensor(x) else x


def where(condition: Any, x: Any, y: Any) -> Any:
    """`x` where `condition` holds and `y` elsewhere; the condition is a constant mask (array or bool Tensor)."""
    if _is_tensor(x) or _is_tensor(y):
        return _elementwise.Where.apply(value(condition), x, y)
    return np.where(condition, x, y)


def dot(a: Any, b: Any) -> Any:
    """The product of two matrices (or vectors): ``ndarray.dot``, the cheapest BLAS call, or ``@`` for Tensors.

    ``ndarray.dot(tensor)`` would turn the Tensor into an array and drop its graph; this never does.
    """
    if _is_tensor(a) or _is_tensor(b):
        return a @ b
    return a.dot(b)


def exp(x: Any) -> Any:
    """``e ** x`` (a Python number stays one, so it never upcasts a float32 array, as everywhere else)."""
    if isinstance(x, (int, float)):
        return math.exp(x)
    return _elementwise.Exp.apply(x) if _is_tensor(x) else np.exp(x)


def log(x: Any) -> Any:
    """The natural logarithm; a Python number stays one (-inf at 0, NaN below, as numpy gives)."""
    if isinstance(x, (int, float)):
        return math.log(x) if x > 0 else (-math.inf if x == 0 else math.nan)
    return _elementwise.Log.apply(x) if _is_tensor(x) else np.log(x)


def log1p(x: Any) -> Any:
    """``log(1 + x)``, accurate for small x."""
    return _elementwise.Log1p.apply(x) if _is_tensor(x) else np.log1p(x)


def tanh(x: Any) -> Any:
    """The hyperbolic tangent."""
    return _elementwise.Tanh.apply(x) if _is_tensor(x) else np.tanh(x)


def sigmoid(x: Any) -> Any:
    """``1 / (1 + exp(-x))``, without overflow warnings (the same computation as the Sigmoid primitive)."""
    return _elementwise.Sigmoid.apply(x) if _is_tensor(x) else _elementwise.sigmoid_array(x)


def maximum(a: Any, b: Any) -> Any:
    """The elementwise maximum."""
    return _elementwise.Maximum.apply(a, b) if _is_tensor(a) or _is_tensor(b) else np.maximum(a, b)


def minimum(a: Any, b: Any) -> Any:
    """The elementwise minimum."""
    return _elementwise.Minimum.apply(a, b) if _is_tensor(a) or _is_tensor(b) else np.minimum(a, b)


def sign(x: Any) -> np.ndarray:
    """-1, 0 or 1 by the sign of each element: an array, a constant to any derivative."""
    return np.sign(value(x))


def softmax(x: Any, axis: int = -1) -> Any:
    """Softmax along `axis`, computed stably."""
    if _is_tensor(x):
        return _normalization.Softmax.apply(x, axis=axis)
    return _normalization.softmax_array(x, axis)


def log_softmax(x: Any, axis: int = -1) -> Any:
    """Log-softmax along `axis`, computed stably."""
    if _is_tensor(x):
        return _normalization.LogSoftmax.apply(x, axis=axis)
    return _normalization.log_softmax_array(x, axis)


def broadcast_to(x: Any, shape: tuple) -> Any:
    """`x` broadcast to `shape` (a read-only view for arrays; its gradient sums back to x's shape)."""
    return _shape.Expand.apply(x, shape=shape) if _is_tensor(x) else np.broadcast_to(x, shape)


def scatter_add(values: Any, shape: tuple, index: Any, unique: bool = False) -> Any:
    """Zeros of `shape` with `values` added at `index` (the gradient of indexing); the inverse of ``x[index]``.

    ``unique=True`` promises that an integer-array index picks no element twice, which allows a plain
    assignment instead of ``np.add.at``.
    """
    if _is_tensor(values):
        return _shape.ScatterAdd.apply(values, shape=shape, index=index, unique=unique)
    return _shape.scatter_add_array(values, shape, index, unique)
