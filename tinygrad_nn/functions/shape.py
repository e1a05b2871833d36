"""Shape and indexing: reshape, transpose, broadcast, indexing and its inverse, concatenate and stack."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from . import xp
from .base import Primitive, shape_of

__all__ = [
    "Concatenate",
    "Expand",
    "Index",
    "Reshape",
    "ScatterAdd",
    "Stack",
    "Transpose",
    "scatter_add_array",
]


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
        inverse = None if axes is None else tuple(int(i) for i in np.argsort([axis % out.ndim for axis in axes]))
        ctx._saved = (inverse,)
        return out

    @staticmethod
    def backward(ctx, grad):
        (inverse,) = ctx._saved
        return grad.transpose() if inverse is None else grad.transpose(inverse)


class Expand(Primitive):
    """``np.broadcast_to(x, shape)``: a read-only view; the engine sums the gradient back to x's shape."""

    __slots__ = ()

    @staticmethod
    def forward(ctx, x, shape=None):
        try:
            return np.broadcast_to(x, shape)
        except ValueError:
            raise ValueError(
                f"expand: a tensor of shape {shape_of(x)} cannot be broadcast to {tuple(shape)} (each size must "
                "equal the target's or be 1, compared from the last axis)"
            ) from None

    @staticmethod
    def backward(ctx, grad):
        return grad


def _is_advanced_index(index: Any) -> bool:
    """True when `index` uses integer or boolean arrays (numpy's advanced indexing) anywhere."""
    parts = index if type(index) is tuple else (index,)
    return any(isinstance(part, (np.ndarray, list)) for part in parts)


class Index(Primitive):
    """``x[index]`` with slices, integers, None, Ellipsis, and integer or boolean arrays.

    With integer arrays an element may be picked several times; its gradients then add up (`ScatterAdd`).
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
        return xp.scatter_add(grad, shape, index)


def scatter_add_array(values: Any, shape: tuple, index: Any, unique: bool = False) -> np.ndarray:
    """Zeros of `shape` with `values` added at `index`: ``np.add.at`` for integer arrays, which may repeat."""
    values = np.asarray(values)
    full = np.zeros(shape, dtype=values.dtype)
    if _is_advanced_index(index) and not unique:
        np.add.at(full, index, values)
    else:
        full[index] = values
    return full


class ScatterAdd(Primitive):
    """Zeros of `shape` with the input added at `index`: the gradient of `Index`, and its backward is `Index`."""

    __slots__ = ()

    @staticmethod
    def forward(ctx, values, shape=None, index=None, unique=False):
        ctx._saved = (index,)
        return scatter_add_array(values, shape, index, unique)

    @staticmethod
    def backward(ctx, grad):
        (index,) = ctx._saved
        return grad[index]


class Concatenate(Primitive):
    """``concatenate(arrays, axis)``."""

    __slots__ = ()

    @staticmethod
    def forward(ctx, *arrays, axis=0):
        try:
            out = np.concatenate(arrays, axis=axis)
        except (ValueError, np.exceptions.AxisError):
            shapes = ", ".join(str(shape_of(a)) for a in arrays)
            raise ValueError(
                f"concatenate: shapes {shapes} differ outside axis {axis}, so they cannot be joined along it"
            ) from None
        axis %= out.ndim
        sizes = [np.shape(a)[axis] for a in arrays]
        ctx._saved = (np.concatenate(([0], np.cumsum(sizes))).tolist(), axis)
        return out

    @staticmethod
    def backward(ctx, grad):
        bounds, axis = ctx._saved
        before = (slice(None),) * axis
        return tuple(grad[(*before, slice(start, stop))] for start, stop in itertools.pairwise(bounds))


class Stack(Primitive):
    """``stack(arrays, axis)``: join along a new axis."""

    __slots__ = ()

    @staticmethod
    def forward(ctx, *arrays, axis=0):
        try:
            out = np.stack(arrays, axis=axis)
        except (ValueError, np.exceptions.AxisError):
            shapes = ", ".join(str(shape_of(a)) for a in arrays)
            raise ValueError(f"stack: all tensors need the same shape, got {shapes} (axis {axis})") from None
        ctx._saved = (axis % out.ndim, len(arrays))
        return out

    @staticmethod
    def backward(ctx, grad):
        axis, count = ctx._saved
        before = (slice(None),) * axis
        return tuple(grad[(*before, position)] for position in range(count))
