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
from . import conv as _conv
from . import elementwise as _elementwise
from . import normalization as _normalization
from . import shape as _shape

__all__ = [
    "avg_pool",
    "avg_pool_transpose",
    "broadcast_to",
    "conv",
    "conv_transpose",
    "conv_weight_grad",
    "dot",
    "exp",
    "log",
    "log1p",
    "log_softmax",
    "maximum",
    "minimum",
    "pad",
    "scatter_add",
    "sigmoid",
    "sign",
    "softmax",
    "tanh",
    "value",
    "where",
    "window_gather",
    "window_scatter",
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


# --------------------------------------------------------------------------------------------------------------
# Convolution and pooling (the gradients of one are computations of the others)
# --------------------------------------------------------------------------------------------------------------


def conv(x: Any, weight: Any, stride: tuple, padding: tuple, dilation: tuple, groups: int) -> Any:
    """The convolution of x (N, C, *spatial) with weight (O, C/groups, *kernel), without bias."""
    if _is_tensor(x) or _is_tensor(weight):
        return _conv.Conv.apply(x, weight, stride=stride, padding=padding, dilation=dilation, groups=groups)
    return _conv.conv_array(x, weight, stride, padding, dilation, groups)[0]


def conv_transpose(
    grad: Any, weight: Any, input_size: tuple, stride: tuple, padding: tuple, dilation: tuple, groups: int
) -> Any:
    """The transposed convolution: the gradient of `conv` with respect to an input of spatial size `input_size`."""
    if _is_tensor(grad) or _is_tensor(weight):
        return _conv.ConvTranspose.apply(
            grad, weight, input_size=input_size, stride=stride, padding=padding, dilation=dilation, groups=groups
        )
    return _conv.conv_transpose_array(grad, weight, input_size, stride, padding, dilation, groups)


def conv_weight_grad(
    x: Any,
    grad: Any,
    kernel_size: tuple,
    stride: tuple,
    padding: tuple,
    dilation: tuple,
    groups: int,
    columns: Any = None,
) -> Any:
    """The gradient of `conv` with respect to its weight; `columns` (forward's im2col) saves recomputing them."""
    if _is_tensor(x) or _is_tensor(grad):
        return _conv.ConvWeightGrad.apply(
            x, grad, kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation, groups=groups
        )
    return _conv.conv_weight_grad_array(x, grad, kernel_size, stride, padding, dilation, groups, columns)


def window_scatter(
    values: Any, positions: np.ndarray, input_size: tuple, kernel_size: tuple, stride: tuple, padding: tuple,
    dilation: tuple,
) -> Any:  # fmt: skip
    """Max pooling's gradient: each value added at its window's chosen position of a zero input."""
    if _is_tensor(values):
        return _conv.WindowScatter.apply(
            values, positions=positions, input_size=input_size, kernel_size=kernel_size, stride=stride,
            padding=padding, dilation=dilation,
        )  # fmt: skip
    return _conv.window_scatter_array(values, positions, input_size, kernel_size, stride, padding, dilation)


def window_gather(
    x: Any, positions: np.ndarray, kernel_size: tuple, stride: tuple, padding: tuple, dilation: tuple
) -> Any:
    """For each window, the value of `x` at its chosen position (the transpose of `window_scatter`)."""
    if _is_tensor(x):
        return _conv.WindowGather.apply(
            x, positions=positions, kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation
        )
    return _conv.window_gather_array(x, positions, kernel_size, stride, padding, dilation)


def avg_pool(
    x: Any, kernel_size: tuple, stride: tuple, padding: tuple, ceil_mode: bool, count_include_pad: bool,
    divisor_override: int | None,
) -> Any:  # fmt: skip
    """PyTorch's average pooling of x (N, C, *spatial)."""
    options = (kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
    if _is_tensor(x):
        return _conv.AvgPool.apply(x, **dict(zip(_AVG_POOL_OPTIONS, options)))
    return _conv.avg_pool_array(x, *options)


def avg_pool_transpose(
    grad: Any, input_size: tuple, kernel_size: tuple, stride: tuple, padding: tuple, ceil_mode: bool,
    count_include_pad: bool, divisor_override: int | None,
) -> Any:  # fmt: skip
    """The transpose of `avg_pool` (its gradient), onto an input of spatial size `input_size`."""
    options = (kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
    if _is_tensor(grad):
        return _conv.AvgPoolTranspose.apply(grad, input_size=input_size, **dict(zip(_AVG_POOL_OPTIONS, options)))
    return _conv.avg_pool_transpose_array(grad, input_size, *options)


_AVG_POOL_OPTIONS = ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override")


def pad(x: Any, widths: tuple, value: float = 0.0) -> Any:
    """`x` padded with `value`: `widths` holds a (before, after) pair per axis; negative widths crop."""
    if _is_tensor(x):
        return _conv.Pad.apply(x, widths=widths, value=value)
    return _conv.pad_array(x, widths, value)
