"""Reductions: sum, mean, max, min and the vector norm, over an axis, a tuple of axes, or everything."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import xp
from .base import Primitive, kept_shape

__all__ = ["Max", "Mean", "Min", "Norm", "PickExtreme", "Sum"]


class Sum(Primitive):
    """``x.sum(axis, keepdims)``."""

    __slots__ = ()

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        ctx._saved = (x.shape, axis)
        return np.add.reduce(x, axis=axis, keepdims=keepdims)

    @staticmethod
    def backward(ctx, grad):
        shape, axis = ctx._saved
        return xp.broadcast_to(grad.reshape(kept_shape(shape, axis)), shape)


class Mean(Primitive):
    """``x.mean(axis, keepdims)``."""

    __slots__ = ()

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        out = np.mean(x, axis=axis, keepdims=keepdims)
        ctx._saved = (x.shape, axis, x.size // max(np.size(out), 1))
        return out

    @staticmethod
    def backward(ctx, grad):
        shape, axis, count = ctx._saved
        return xp.broadcast_to((grad / count).reshape(kept_shape(shape, axis)), shape)


def _extremum(ctx: Any, x: np.ndarray, axis: Any, keepdims: bool, reduce: Any, word: str) -> np.ndarray:
    """Forward of Max and Min: the reduction, keeping what backward needs to find the winners."""
    if x.size == 0:
        raise ValueError(f"{word[:3]}: the tensor of shape {x.shape} is empty, so it has no {word}")
    out = reduce(x, axis=axis, keepdims=True)
    ctx._saved = (x, out, axis)
    return out if keepdims else np.squeeze(out, axis=axis)


class Max(Primitive):
    """``x.max(axis, keepdims)``; tied maxima share the gradient evenly (like ``torch.amax``)."""

    __slots__ = ()
    _backward_reads_inputs = True

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        return _extremum(ctx, x, axis, keepdims, np.max, "maximum")

    @staticmethod
    def backward(ctx, grad):
        x, out, axis = ctx._saved
        winners = x == out
        count = np.sum(winners, axis=axis, keepdims=True).astype(xp.value(grad).dtype)
        return xp.where(winners, grad.reshape(out.shape) / count, 0)


class PickExtreme(Primitive):
    """``torch.max(x, dim)``'s values (or min's): the first maximum along `axis`, which alone takes the gradient.

    The positions are found again from `x` (numpy's argmax, the first of ties), so an exported model finds them
    from its own input (ArgMax and GatherElements), never from the traced one.
    """

    __slots__ = ()

    @staticmethod
    def forward(ctx, x, axis=0, keepdims=False, which="max"):
        positions = (np.argmax if which == "max" else np.argmin)(x, axis=axis)
        grids = list(np.ogrid[tuple(slice(size) for size in positions.shape)])
        grids.insert(axis, positions)
        index = tuple(grids)
        ctx._saved = (x.shape, index, positions.shape)
        out = x[index]
        return np.expand_dims(out, axis) if keepdims else out

    @staticmethod
    def backward(ctx, grad):
        shape, index, picked_shape = ctx._saved
        return xp.scatter_add(grad.reshape(picked_shape), shape, index, unique=True)


class Min(Max):
    """``x.min(axis, keepdims)``; tied minima share the gradient evenly (like ``torch.amin``); Max's backward."""

    __slots__ = ()

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        return _extremum(ctx, x, axis, keepdims, np.min, "minimum")


class Norm(Primitive):
    """The vector p-norm ``sum(|x|^p)^(1/p)`` over `axis` (``torch.linalg.vector_norm``).

    `order` is any real number or +-inf: 0 counts the non-zero elements (gradient 0), a negative order is
    ``sum(|x|^p)^(1/p)`` too (0 when an element is 0). Where the norm is 0 the gradient is 0, as in PyTorch (the
    formula would divide 0 by 0), and so it is at a zero element for an order below 1 (where ``|x|^(p-1)`` is
    infinite); for +-inf, tied extremes share the gradient, as `Max` does.
    """

    __slots__ = ()
    _backward_reads_inputs = True

    @property
    def _flat_through_inputs(self) -> bool:
        """The 1- and inf-norms' gradients are a sign and a mask: flat, yet connected to x as in PyTorch."""
        saved = self._saved
        return bool(saved) and (saved[0] == 1 or bool(np.isinf(saved[0])))

    @staticmethod
    def forward(ctx, x, order=2.0, axis=None, keepdims=False):
        # A negative order raises a zero element to a negative power: inf, and a norm of 0, as PyTorch (silently).
        with np.errstate(divide="ignore"):
            out = np.linalg.vector_norm(x, ord=order, axis=axis, keepdims=keepdims)
        ctx.inputs = (x,)
        ctx.output = out
        ctx._saved = (order, kept_shape(np.shape(x), axis))
        return out

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.inputs
        order, kept = ctx._saved
        norm = ctx.output.reshape(kept)
        grad = grad.reshape(kept)
        zero = xp.value(norm) == 0
        if np.isinf(order):
            winners = np.abs(xp.value(x)) == xp.value(norm)
            reduced = tuple(i for i, size in enumerate(kept) if size == 1)
            count = np.maximum(np.sum(winners, axis=reduced, keepdims=True), 1).astype(xp.value(grad).dtype)
            return xp.where(winners, grad * xp.sign(x) / count, 0)
        if order == 0:  # the count of non-zeros is piecewise constant: its gradient is 0 everywhere, as PyTorch's
            return xp.broadcast_to(grad * 0, np.shape(xp.value(x)))
        if order == 1:
            return grad * xp.sign(x)
        safe = xp.where(zero, 1, norm)  # 0/0 would be NaN: the gradient at a zero norm is 0, as in PyTorch
        if order == 2:
            return xp.where(zero, 0, grad * x / safe)
        if order < 1:
            # |x|^(p - 1) is infinite at x = 0 for p < 1; PyTorch's gradient there is 0. Both branches of a where
            # are differentiated under create_graph, so the power must not see the zeros either.
            at_zero = zero | (xp.value(x) == 0)
            magnitude = xp.where(at_zero, 1, abs(x))
            return xp.where(at_zero, 0, grad * xp.sign(x) * magnitude ** (order - 1) / safe ** (order - 1))
        return xp.where(zero, 0, grad * xp.sign(x) * abs(x) ** (order - 1) / safe ** (order - 1))
