"""The primitives: one `Function` per operation, its forward and its backward side by side, on ndarrays.

Rules every primitive here follows (the engine in autograd.py relies on them):

- backward returns one gradient per forward input, in the *broadcast* shape of the output: the engine sums it
  down to each input's shape, in one place. It returns None for an input that needs no gradient, which is
  where ``ctx.parents[i] is None`` (what ``ctx.needs_input_grad`` says, read without building a tuple);
- backward never writes into the gradient it receives, and never returns an array that something else holds
  (only the received gradient itself, views of it, or new arrays);
- anything backward needs goes into ``ctx._saved`` (what ``ctx.save_for_backward`` sets, without the method call),
  so that it is freed after backward.

Python numbers in an op stay Python numbers, so numpy's rules for them apply (a float32 array times 2.0 stays
float32).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .autograd import Function

# --------------------------------------------------------------------------------------------------------------
# Shared pieces
# --------------------------------------------------------------------------------------------------------------


class Primitive(Function):
    """Base of the built-in primitives: no per-instance dict, and gradients the engine may keep without a copy."""

    __slots__ = ()
    _fresh_grads = True


def _shape(value: Any) -> tuple:
    return np.shape(value)


def _broadcast_error(name: str, symbol: str, a: Any, b: Any, error: ValueError | None = None) -> ValueError:
    """The ValueError an elementwise op raises: about the shapes when they do not broadcast, else numpy's own."""
    try:
        np.broadcast_shapes(_shape(a), _shape(b))
    except ValueError:
        return ValueError(
            f"{name}: {_shape(a)} {symbol} {_shape(b)}: these shapes do not broadcast together "
            "(compared from the last axis, each pair of sizes must be equal or one of them 1)"
        )
    return ValueError(f"{name}: {_shape(a)} {symbol} {_shape(b)}: {error}")


def _expand_reduced(grad: np.ndarray, axis: Any, keepdims: bool) -> np.ndarray:
    """Give a reduction's gradient back the axes the reduction removed, so that it broadcasts to the input."""
    if keepdims or axis is None:
        return grad
    return np.expand_dims(grad, axis)


def _filled(shape: tuple, grad: np.ndarray) -> np.ndarray:
    """A new array of `shape` holding `grad` broadcast over it (a writable copy, unlike np.broadcast_to)."""
    out = np.empty(shape, dtype=grad.dtype)
    out[...] = grad
    return out


# --------------------------------------------------------------------------------------------------------------
# Elementwise arithmetic (broadcasting like numpy)
# --------------------------------------------------------------------------------------------------------------


class Add(Primitive):
    """``a + b``."""

    __slots__ = ()

    @staticmethod
    def forward(ctx, a, b):
        try:
            return np.add(a, b)
        except ValueError as error:
            raise _broadcast_error("add", "+", a, b, error) from None

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
            raise _broadcast_error("sub", "-", a, b, error) from None

    @staticmethod
    def backward(ctx, grad):
        return grad, (-grad if ctx.parents[1] is not None else None)


class Mul(Primitive):
    """``a * b``."""

    __slots__ = ()

    @staticmethod
    def forward(ctx, a, b):
        ctx._saved = (a, b)
        try:
            return np.multiply(a, b)
        except ValueError as error:
            raise _broadcast_error("mul", "*", a, b, error) from None

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx._saved
        edge_a, edge_b = ctx.parents
        return (grad * b if edge_a is not None else None), (grad * a if edge_b is not None else None)


class Div(Primitive):
    """``a / b``."""

    __slots__ = ()

    @staticmethod
    def forward(ctx, a, b):
        ctx._saved = (a, b)
        try:
            return np.true_divide(a, b)
        except ValueError as error:
            raise _broadcast_error("div", "/", a, b, error) from None

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx._saved
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

    @staticmethod
    def forward(ctx, base, exponent):
        try:
            out = np.power(base, exponent)
        except ValueError as error:
            raise _broadcast_error("pow", "**", base, exponent, error) from None
        ctx._saved = (base, exponent, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        base, exponent, out = ctx._saved
        edge_base, edge_exponent = ctx.parents
        grad_base = grad_exponent = None
        if edge_base is not None:
            if isinstance(exponent, (int, float)) and exponent == 2:
                grad_base = grad * (base + base)  # the common square, without a power call
            else:
                with np.errstate(divide="ignore", invalid="ignore"):
                    grad_base = grad * exponent * np.power(base, exponent - 1)
                grad_base = np.where(np.equal(exponent, 0), 0, grad_base)
        if edge_exponent is not None:
            with np.errstate(divide="ignore", invalid="ignore"):
                grad_exponent = grad * out * np.log(base)
            grad_exponent = np.where(np.equal(base, 0) & np.greater_equal(exponent, 0), 0, grad_exponent)
        return grad_base, grad_exponent


class Maximum(Primitive):
    """Elementwise ``maximum(a, b)``; where a == b each side gets half the gradient, as in PyTorch."""

    __slots__ = ()

    @staticmethod
    def forward(ctx, a, b):
        ctx._saved = (a, b)
        try:
            return np.maximum(a, b)
        except ValueError as error:
            raise _broadcast_error("maximum", "vs", a, b, error) from None

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
            raise _broadcast_error("minimum", "vs", a, b, error) from None

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx._saved
        return _split_by_winner(ctx, grad, np.less(a, b), np.equal(a, b))


def _split_by_winner(ctx: Function, grad: np.ndarray, a_wins: np.ndarray, tie: np.ndarray) -> tuple:
    half = np.where(tie, grad * 0.5, 0)
    edge_a, edge_b = ctx.parents
    grad_a = np.where(a_wins, grad, half) if edge_a is not None else None
    grad_b = np.where(a_wins | tie, half, grad) if edge_b is not None else None
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
                f"where: condition {_shape(condition)}, a {_shape(a)} and b {_shape(b)} do not broadcast together"
            ) from None

    @staticmethod
    def backward(ctx, grad):
        (condition,) = ctx._saved
        _, edge_a, edge_b = ctx.parents
        grad_a = np.where(condition, grad, 0) if edge_a is not None else None
        grad_b = np.where(condition, 0, grad) if edge_b is not None else None
        return None, grad_a, grad_b


# --------------------------------------------------------------------------------------------------------------
# Elementwise functions
# --------------------------------------------------------------------------------------------------------------


class Exp(Primitive):
    """``exp(x)``."""

    __slots__ = ()

    @staticmethod
    def forward(ctx, x):
        out = np.exp(x)
        ctx._saved = (out,)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx._saved
        return grad * out


class Log(Primitive):
    """Natural logarithm ``log(x)``."""

    __slots__ = ()

    @staticmethod
    def forward(ctx, x):
        ctx._saved = (x,)
        return np.log(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx._saved
        return grad / x


class Sqrt(Primitive):
    """``sqrt(x)``."""

    __slots__ = ()

    @staticmethod
    def forward(ctx, x):
        out = np.sqrt(x)
        ctx._saved = (out,)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx._saved
        return grad / (out + out)


class Abs(Primitive):
    """``abs(x)``; the gradient at 0 is 0, as in PyTorch."""

    __slots__ = ()

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
        ctx._saved = (out,)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx._saved
        return grad * (1 - out * out)


class Sigmoid(Primitive):
    """``1 / (1 + exp(-x))``, with its fused backward ``grad * out * (1 - out)``.

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
        ctx._saved = (out,)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx._saved
        slope = 1 - out
        slope *= out
        slope *= grad
        return slope


class ReLU(Primitive):
    """``max(x, 0)``; the gradient at 0 is 0, as in PyTorch."""

    __slots__ = ()

    @staticmethod
    def forward(ctx, x):
        out = np.maximum(x, 0)
        ctx._saved = (out,)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx._saved
        return np.where(out > 0, grad, 0)


class Clip(Primitive):
    """``clip(x, min, max)``; the gradient passes where min <= x <= max (bounds included), as in PyTorch."""

    __slots__ = ()

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
        return np.where(inside, grad, 0)


class Cast(Primitive):
    """``x.astype(dtype)``; the gradient is cast back to x's dtype (by the engine)."""

    __slots__ = ()

    @staticmethod
    def forward(ctx, x, dtype=None):
        return x.astype(dtype)

    @staticmethod
    def backward(ctx, grad):
        return grad


# --------------------------------------------------------------------------------------------------------------
# Reductions
# --------------------------------------------------------------------------------------------------------------


class Sum(Primitive):
    """``x.sum(axis, keepdims)``."""

    __slots__ = ()

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        ctx._saved = (x.shape, axis, keepdims)
        return np.add.reduce(x, axis=axis, keepdims=keepdims)

    @staticmethod
    def backward(ctx, grad):
        shape, axis, keepdims = ctx._saved
        return _filled(shape, _expand_reduced(grad, axis, keepdims))


class Mean(Primitive):
    """``x.mean(axis, keepdims)``."""

    __slots__ = ()

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        out = np.mean(x, axis=axis, keepdims=keepdims)
        ctx._saved = (x.shape, axis, keepdims, x.size // max(np.size(out), 1))
        return out

    @staticmethod
    def backward(ctx, grad):
        shape, axis, keepdims, count = ctx._saved
        filled = _filled(shape, _expand_reduced(grad, axis, keepdims))
        filled /= count
        return filled


def _extremum(ctx: Function, x: np.ndarray, axis: Any, keepdims: bool, reduce: Any, word: str) -> np.ndarray:
    """Forward of Max and Min: the reduction, keeping what backward needs to find the winners."""
    if x.size == 0:
        raise ValueError(f"{word[:3]}: the tensor of shape {x.shape} is empty, so it has no {word}")
    out = reduce(x, axis=axis, keepdims=True)
    ctx._saved = (x, out, axis, keepdims)
    return out if keepdims else np.squeeze(out, axis=axis)


class Max(Primitive):
    """``x.max(axis, keepdims)``; tied maxima share the gradient evenly (like ``torch.amax``)."""

    __slots__ = ()

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        return _extremum(ctx, x, axis, keepdims, np.max, "maximum")

    @staticmethod
    def backward(ctx, grad):
        x, out, axis, keepdims = ctx._saved
        return _share_among_ties(x == out, _expand_reduced(grad, axis, keepdims), axis)


class Min(Max):
    """``x.min(axis, keepdims)``; tied minima share the gradient evenly (like ``torch.amin``); Max's backward."""

    __slots__ = ()

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        return _extremum(ctx, x, axis, keepdims, np.min, "minimum")


def _share_among_ties(winners: np.ndarray, grad: np.ndarray, axis: Any) -> np.ndarray:
    count = np.sum(winners, axis=axis, keepdims=True)
    return np.where(winners, grad / count, 0).astype(grad.dtype, copy=False)


# --------------------------------------------------------------------------------------------------------------
# Shape and indexing
# --------------------------------------------------------------------------------------------------------------


class Reshape(Primitive):
    """``x.reshape(shape)``."""

    __slots__ = ()

    @staticmethod
    def forward(ctx, x, shape=None):
        ctx._saved = (x.shape,)
        try:
            return np.reshape(x, shape)
        except ValueError:
            raise ValueError(
                f"reshape: cannot reshape a tensor of shape {x.shape} ({x.size} values) into {shape}"
            ) from None

    @staticmethod
    def backward(ctx, grad):
        (shape,) = ctx._saved
        return grad.reshape(shape)


class Transpose(Primitive):
    """``x.transpose(axes)``; no axes reverses them all (numpy's rule, and ``.T``)."""

    __slots__ = ()

    @staticmethod
    def forward(ctx, x, axes=None):
        try:
            out = np.transpose(x, axes)
        except (ValueError, np.exceptions.AxisError):
            raise ValueError(f"transpose: axes {axes} do not fit a tensor of shape {np.shape(x)}") from None
        # Backward inverts the permutation with argsort, which needs the axes counted from 0.
        ctx._saved = (None if axes is None else tuple(axis % out.ndim for axis in axes),)
        return out

    @staticmethod
    def backward(ctx, grad):
        (axes,) = ctx._saved
        return np.transpose(grad, None if axes is None else np.argsort(axes))


def _is_advanced_index(index: Any) -> bool:
    """True when `index` uses integer or boolean arrays (numpy's advanced indexing) anywhere."""
    parts = index if type(index) is tuple else (index,)
    return any(isinstance(part, (np.ndarray, list)) for part in parts)


class Index(Primitive):
    """``x[index]`` with slices, integers, None, Ellipsis, and integer or boolean arrays.

    With integer arrays an element may be picked several times; its gradients then add up (``np.add.at``).
    """

    __slots__ = ()

    @staticmethod
    def forward(ctx, x, index=None):
        ctx._saved = (x.shape, index)
        try:
            return x[index]
        except IndexError as error:
            raise IndexError(f"index: {error} (tensor of shape {x.shape})") from None

    @staticmethod
    def backward(ctx, grad):
        shape, index = ctx._saved
        full = np.zeros(shape, dtype=grad.dtype)
        if _is_advanced_index(index):
            np.add.at(full, index, grad)
        else:
            full[index] = grad
        return full


class Concatenate(Primitive):
    """``concatenate(arrays, axis)``."""

    __slots__ = ()

    @staticmethod
    def forward(ctx, *arrays, axis=0):
        try:
            out = np.concatenate(arrays, axis=axis)
        except ValueError:
            shapes = ", ".join(str(_shape(a)) for a in arrays)
            raise ValueError(
                f"concatenate: shapes {shapes} differ outside axis {axis}, so they cannot be joined along it"
            ) from None
        sizes = [np.shape(a)[axis] for a in arrays]
        ctx._saved = (np.cumsum(sizes)[:-1], axis)
        return out

    @staticmethod
    def backward(ctx, grad):
        boundaries, axis = ctx._saved
        return tuple(np.split(grad, boundaries, axis=axis))


class Stack(Primitive):
    """``stack(arrays, axis)``: join along a new axis."""

    __slots__ = ()

    @staticmethod
    def forward(ctx, *arrays, axis=0):
        try:
            out = np.stack(arrays, axis=axis)
        except ValueError:
            shapes = ", ".join(str(_shape(a)) for a in arrays)
            raise ValueError(f"stack: all tensors need the same shape, got {shapes}") from None
        ctx._saved = (axis,)
        return out

    @staticmethod
    def backward(ctx, grad):
        (axis,) = ctx._saved
        return tuple(np.moveaxis(grad, axis, 0))


# --------------------------------------------------------------------------------------------------------------
# Linear algebra
# --------------------------------------------------------------------------------------------------------------


def _matmul_at_b(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a.T @ b`` for 2-D arrays, as a broadcast multiply when the arrays have one row each.

    With one row each (a batch of one) the product is an outer product, which BLAS's matrix product computes
    about four times slower than a broadcast multiply (113 vs 29 us for 100 x 784 in float32).
    """
    if a.shape[0] == 1:
        return a.T * b
    return a.T @ b


class MatMul(Primitive):
    """``a @ b`` with numpy's matmul rules (1-D operands, batch axes that broadcast)."""

    __slots__ = ()

    @staticmethod
    def forward(ctx, a, b):
        ctx._saved = (a, b)
        try:
            return np.matmul(a, b)
        except ValueError:
            a_shape, b_shape = _shape(a), _shape(b)
            if len(a_shape) == 0 or len(b_shape) == 0:
                reason = "matmul needs operands with at least one axis; use * for scalars"
            elif a_shape[-1] != b_shape[-2 if len(b_shape) > 1 else -1]:
                which = "second-to-last" if len(b_shape) > 1 else "only"
                inner = b_shape[-2 if len(b_shape) > 1 else -1]
                reason = f"the left operand's last axis ({a_shape[-1]}) must equal the right's {which} axis ({inner})"
            else:
                reason = "the batch axes do not broadcast together"
            raise ValueError(f"matmul: {a_shape} @ {b_shape}: {reason}") from None

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx._saved
        need_a = ctx.parents[0] is not None
        need_b = ctx.parents[1] is not None
        if a.ndim == 2 and b.ndim == 2:
            return (grad @ b.T if need_a else None), (_matmul_at_b(a, grad) if need_b else None)
        if a.ndim == 1 and b.ndim == 1:  # a dot product: grad is 0-d
            return (grad * b if need_a else None), (grad * a if need_b else None)
        # Treat 1-D operands as matrices (a row, a column) and put the axes matmul removed back into grad.
        a2 = a[np.newaxis, :] if a.ndim == 1 else a
        b2 = b[:, np.newaxis] if b.ndim == 1 else b
        grad2 = grad
        if a.ndim == 1:
            grad2 = np.expand_dims(grad2, -2)
        if b.ndim == 1:
            grad2 = np.expand_dims(grad2, -1)
        grad_a = grad_b = None
        if need_a:
            grad_a = grad2 @ np.swapaxes(b2, -1, -2)
            if a.ndim == 1:
                grad_a = np.squeeze(grad_a, -2)
        if need_b:
            grad_b = np.swapaxes(a2, -1, -2) @ grad2
            if b.ndim == 1:
                grad_b = np.squeeze(grad_b, -1)
        return grad_a, grad_b


class Linear(Primitive):
    """``x @ weight.T + bias``, PyTorch's layout (weight is (out_features, in_features)).

    A primitive rather than three ops (transpose, matmul, add) because it is PyTorch's primitive too and every
    layer calls it: one node instead of three, and the bias gradient without an unbroadcast.
    """

    __slots__ = ()

    @staticmethod
    def forward(ctx, x, weight, bias=None):
        if type(x) is not np.ndarray:
            x = np.asarray(x)
        if x.ndim == 0 or x.shape[-1] != weight.shape[-1]:
            raise ValueError(
                f"linear: input of shape {_shape(x)} has {_shape(x)[-1] if np.ndim(x) else 'no'} features, "
                f"but the weight of shape {weight.shape} expects {weight.shape[-1]}"
            )
        ctx._saved = (x, weight)
        out = x @ weight.T
        if bias is not None:
            if bias.dtype == out.dtype:
                out += bias
            else:
                out = out + bias
        return out

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx._saved
        edges = ctx.parents
        grad_x = grad @ weight if edges[0] is not None else None
        grad_weight = None
        if edges[1] is not None:
            if x.ndim == 2:
                grad_weight = _matmul_at_b(grad, x)
            elif x.ndim == 1:
                grad_weight = np.multiply.outer(grad, x)
            else:
                grad_weight = grad.reshape(-1, grad.shape[-1]).T @ x.reshape(-1, x.shape[-1])
        if len(edges) == 2:  # called without a bias
            return grad_x, grad_weight
        grad_bias = None
        if edges[2] is not None:
            # add.reduce, not .sum(): the same sum without numpy's Python-level wrapper (a microsecond a call).
            if grad.ndim == 2:
                grad_bias = np.add.reduce(grad, axis=0)
            else:
                grad_bias = np.add.reduce(grad.reshape(-1, grad.shape[-1]), axis=0) if grad.ndim > 2 else grad
        return grad_x, grad_weight, grad_bias


# --------------------------------------------------------------------------------------------------------------
# Softmax family (stable: the maximum is subtracted first, so inputs of +-1000 are fine)
# --------------------------------------------------------------------------------------------------------------


class Softmax(Primitive):
    """``exp(x) / sum(exp(x))`` along `axis`, with the fused backward ``s * (g - sum(g * s))``."""

    __slots__ = ()

    @staticmethod
    def forward(ctx, x, axis=-1):
        shifted = x - np.max(x, axis=axis, keepdims=True)
        if shifted.dtype.kind != "f":  # integers: in float64, as np.exp would
            shifted = shifted.astype(np.float64)
        out = np.exp(shifted, out=shifted)
        out /= np.sum(out, axis=axis, keepdims=True)
        ctx._saved = (out, axis)
        return out

    @staticmethod
    def backward(ctx, grad):
        out, axis = ctx._saved
        return out * (grad - np.sum(grad * out, axis=axis, keepdims=True))


class LogSoftmax(Primitive):
    """``x - log(sum(exp(x)))`` along `axis`, with the fused backward ``g - softmax * sum(g)``."""

    __slots__ = ()

    @staticmethod
    def forward(ctx, x, axis=-1):
        shifted = x - np.max(x, axis=axis, keepdims=True)
        out = shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))
        ctx._saved = (out, axis)
        return out

    @staticmethod
    def backward(ctx, grad):
        out, axis = ctx._saved
        return grad - np.exp(out) * np.sum(grad, axis=axis, keepdims=True)


# --------------------------------------------------------------------------------------------------------------
# Losses: fused primitives with PyTorch's formulas. One node each instead of four to six, and backward passes
# that are simpler and more stable than the chain rule through their parts (softmax with cross-entropy is
# softmax - one_hot; sigmoid with BCE is sigmoid - target).
# --------------------------------------------------------------------------------------------------------------


def _reduce_loss(elementwise: np.ndarray, reduction: str, count: float) -> np.ndarray:
    if reduction == "none":
        return elementwise
    total = np.add.reduce(elementwise, axis=None)
    if reduction == "sum":
        return total
    if count == 0:  # every sample ignored: NaN, quietly, as PyTorch
        return np.full((), np.nan, dtype=elementwise.dtype)
    return total / count


def _loss_grad_scale(grad: np.ndarray, reduction: str, count: float, weight: Any = None) -> np.ndarray:
    """The upstream gradient as a factor for each element's loss (times the element's weight, if any)."""
    if reduction == "mean":
        grad = np.full_like(grad, np.nan) if count == 0 else grad / count
    return grad if weight is None else grad * weight


class MeanSquaredError(Primitive):
    """``(input - target) ** 2`` reduced by `reduction` (PyTorch's ``mse_loss``)."""

    __slots__ = ()

    @staticmethod
    def forward(ctx, prediction, target, reduction="mean"):
        difference = np.subtract(prediction, target)
        ctx._saved = (difference, reduction)
        if reduction == "none":
            return np.square(difference)
        flat = difference.reshape(-1)
        total = flat @ flat  # the sum of squares in one call, without the squares' temporary array
        return total if reduction == "sum" else total / difference.size

    @staticmethod
    def backward(ctx, grad):
        difference, reduction = ctx._saved
        if reduction == "none":
            grad_prediction = difference * (grad + grad)
        else:
            # A Python number (numpy keeps float32 float32 with it) costs one array operation, not three.
            factor = 2.0 * float(grad) / ((difference.size or 1) if reduction == "mean" else 1)
            grad_prediction = difference * factor
        return grad_prediction, (-grad_prediction if ctx.parents[1] is not None else None)


_BCE_EPSILON = float(np.float32(1e-12))


def _clamped_log(values: np.ndarray) -> np.ndarray:
    # PyTorch clamps BCE's logs at -100 so that a probability of exactly 0 or 1 gives a finite loss.
    with np.errstate(divide="ignore"):
        return np.maximum(np.log(values), -100)


class BinaryCrossEntropy(Primitive):
    """``-w * (t * log(p) + (1 - t) * log(1 - p))`` with logs clamped at -100, as PyTorch's BCE."""

    __slots__ = ()

    @staticmethod
    def forward(ctx, probability, target, weight=None, reduction="mean"):
        with np.errstate(invalid="ignore"):
            log_p = _clamped_log(probability)
            log_1mp = _clamped_log(1 - probability)
        elementwise = -(target * log_p + (1 - target) * log_1mp)
        if weight is not None:
            elementwise = elementwise * weight
        if np.isnan(elementwise).any() and not np.isnan(probability).any():
            raise ValueError(
                "binary_cross_entropy: input values must be probabilities in [0, 1] (for example after sigmoid), "
                f"but they range from {np.min(probability):.4g} to {np.max(probability):.4g}; for raw scores use "
                "binary_cross_entropy_with_logits"
            )
        ctx._saved = (probability, target, weight, log_p, log_1mp, reduction)
        return _reduce_loss(elementwise, reduction, elementwise.size)

    @staticmethod
    def backward(ctx, grad):
        probability, target, weight, log_p, log_1mp, reduction = ctx._saved
        scale = _loss_grad_scale(grad, reduction, np.size(log_p), weight)
        # PyTorch floors p(1 - p) at a float32 1e-12 (9.99999996e-13); the same constant gives the same gradient.
        grad_probability = scale * (probability - target) / np.maximum((1 - probability) * probability, _BCE_EPSILON)
        grad_target = scale * (log_1mp - log_p) if ctx.parents[1] is not None else None
        return grad_probability, grad_target


def _softplus_of_negative(x: np.ndarray) -> np.ndarray:
    """``log(1 + exp(-x))`` without overflow: ``max(-x, 0) + log1p(exp(-|x|))``."""
    return np.maximum(-x, 0) + np.log1p(np.exp(-np.abs(x)))


class BinaryCrossEntropyWithLogits(Primitive):
    """BCE on raw scores: ``(1 - t) * x + lw * log(1 + exp(-x))`` with ``lw = (pos_weight - 1) * t + 1``.

    Stable for any score, and its gradient is ``sigmoid(x) - t`` (times the weights): PyTorch's formula.
    """

    __slots__ = ()

    @staticmethod
    def forward(ctx, logits, target, weight=None, pos_weight=None, reduction="mean"):
        softplus = _softplus_of_negative(logits)
        log_weight = 1 if pos_weight is None else (pos_weight - 1) * target + 1
        elementwise = (1 - target) * logits + log_weight * softplus
        if weight is not None:
            elementwise = elementwise * weight
        ctx._saved = (logits, target, weight, pos_weight, softplus, reduction)
        return _reduce_loss(elementwise, reduction, elementwise.size)

    @staticmethod
    def backward(ctx, grad):
        logits, target, weight, pos_weight, softplus, reduction = ctx._saved
        scale = _loss_grad_scale(grad, reduction, np.size(softplus), weight)
        with np.errstate(over="ignore"):
            sigmoid = 1 / (1 + np.exp(-logits))
        if pos_weight is None:
            grad_logits = scale * (sigmoid - target)
            grad_target = -scale * logits if ctx.parents[1] is not None else None
        else:
            log_weight = (pos_weight - 1) * target + 1
            grad_logits = scale * ((1 - target) - log_weight * (1 - sigmoid))
            grad_target = scale * ((pos_weight - 1) * softplus - logits) if ctx.parents[1] is not None else None
        return grad_logits, grad_target


def _class_axis_last(array: np.ndarray) -> np.ndarray:
    """(N, C, d1, ...) -> (N, d1, ..., C); (N, C) and (C,) are unchanged."""
    return np.moveaxis(array, 1, -1) if array.ndim > 2 else array


def _class_axis_back(array: np.ndarray, ndim: int) -> np.ndarray:
    return np.moveaxis(array, -1, 1) if ndim > 2 else array


class CrossEntropy(Primitive):
    """Cross-entropy of raw scores against class indices: ``-w[t] * log_softmax(x)[t]`` (PyTorch's formula).

    Logits have the classes on axis 1 ((N, C) or (N, C, d1, ...)) or are a single (C,) row; targets are
    integer class indices of shape (N,) (or (N, d1, ...), or a scalar). Targets equal to `ignore_index` count
    for nothing; the mean divides by the summed weights of the targets, as PyTorch does. Fused with the
    softmax: the gradient is ``softmax - one_hot(t)``, scaled.
    """

    __slots__ = ()

    @staticmethod
    def forward(ctx, logits, target, weight=None, ignore_index=-100, reduction="mean"):
        scores = _class_axis_last(logits)
        classes = scores.shape[-1]
        target = np.asarray(target)
        keep = target != ignore_index
        picked = np.where(keep, target, 0)
        if picked.size and (picked.min() < 0 or picked.max() >= classes):
            bad = picked[(picked < 0) | (picked >= classes)].flat[0]
            raise IndexError(f"cross_entropy: target {bad} is out of range for {classes} classes (0 to {classes - 1})")
        shifted = scores - np.max(scores, axis=-1, keepdims=True)
        log_probs = shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))
        sample_weight = keep.astype(log_probs.dtype) if weight is None else np.where(keep, weight[picked], 0)
        picked_log_probs = np.take_along_axis(log_probs, picked[..., np.newaxis], axis=-1)[..., 0]
        losses = -picked_log_probs * sample_weight
        count = np.sum(sample_weight) if reduction == "mean" else 1
        ctx._saved = (log_probs, picked, sample_weight, count, reduction, logits.ndim)
        return _reduce_loss(losses, reduction, count)

    @staticmethod
    def backward(ctx, grad):
        log_probs, picked, sample_weight, count, reduction, ndim = ctx._saved
        if reduction == "mean" and count == 0:  # every target ignored: the loss is NaN, the gradient 0 (PyTorch)
            return np.zeros_like(log_probs) if ndim <= 2 else _class_axis_back(np.zeros_like(log_probs), ndim), None
        scale = _loss_grad_scale(grad, reduction, count) * sample_weight  # per sample
        grad_scores = np.exp(log_probs) * scale[..., np.newaxis]
        # Each sample has exactly one target, so a plain fancy-index update is safe (no repeated index).
        grad_scores[_index_of_targets(picked)] -= scale
        return _class_axis_back(grad_scores, ndim), None


def _index_of_targets(picked: np.ndarray) -> tuple:
    """An index into (..., C) that selects each sample's target class."""
    return (*np.indices(picked.shape, sparse=True), picked)


class CrossEntropyWithProbabilities(Primitive):
    """Cross-entropy of raw scores against class probabilities: ``-sum_c w_c p_c log_softmax(x)_c``.

    The target has the logits' shape; the mean divides by the number of samples, as PyTorch does.
    """

    __slots__ = ()

    @staticmethod
    def forward(ctx, logits, target, weight=None, reduction="mean"):
        scores = _class_axis_last(logits)
        probabilities = _class_axis_last(np.asarray(target))
        shifted = scores - np.max(scores, axis=-1, keepdims=True)
        log_probs = shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))
        weighted = probabilities if weight is None else probabilities * weight
        losses = -np.sum(weighted * log_probs, axis=-1)
        count = losses.size
        ctx._saved = (log_probs, weighted, weight, count, reduction, logits.ndim)
        return _reduce_loss(losses, reduction, count)

    @staticmethod
    def backward(ctx, grad):
        log_probs, weighted, weight, count, reduction, ndim = ctx._saved
        scale = _loss_grad_scale(grad, reduction, count)
        scale = np.asarray(scale)[..., np.newaxis] if reduction == "none" else scale
        grad_scores = scale * (np.exp(log_probs) * np.sum(weighted, axis=-1, keepdims=True) - weighted)
        grad_target = None
        if ctx.parents[1] is not None:
            grad_target = -scale * (log_probs if weight is None else log_probs * weight)
            grad_target = _class_axis_back(grad_target, ndim)
        return _class_axis_back(grad_scores, ndim), grad_target
