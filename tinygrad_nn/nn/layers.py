"""Layers: `Linear` and the activations, each a small `Module` calling one primitive."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import functions
from ..dtypes import DTypeLike, get_default_dtype
from ..tensor import Tensor
from . import init
from .module import Module, Parameter

__all__ = ["Flatten", "Identity", "Linear", "LogSoftmax", "ReLU", "Sigmoid", "Softmax", "Tanh", "Unflatten"]


def _one_axis(layer: str, axis: int, dim: int | None) -> int:
    """`axis` (numpy's name) or `dim` (PyTorch's), checked to be an integer."""
    chosen = axis if dim is None else dim
    if isinstance(chosen, bool) or not isinstance(chosen, (int, np.integer)):
        raise TypeError(f"{layer}: the axis (dim) must be an integer, got {chosen!r}")
    return int(chosen)


def _positive_int(layer: str, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{layer}: {name} must be a positive integer, got {value!r}")
    return int(value)


class Linear(Module):
    """``y = x @ weight.T + bias``: weight (out_features, in_features), bias (out_features,).

    Initialised as PyTorch does: both uniform in +-1/sqrt(in_features), drawn from the default generator
    (`tinygrad_nn.manual_seed`) or from `reset_parameters(generator)`. The input's last axis must have
    `in_features` values; any leading axes are kept::

        layer = nn.Linear(784, 100)
        hidden = layer(images)            # (batch, 784) -> (batch, 100)
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype: DTypeLike | None = None) -> None:
        super().__init__()
        self.in_features = _positive_int("Linear", "in_features", in_features)
        self.out_features = _positive_int("Linear", "out_features", out_features)
        dtype = get_default_dtype() if dtype is None else np.dtype(dtype)
        self.weight = Parameter(np.empty((self.out_features, self.in_features), dtype=dtype))
        self.bias = Parameter(np.empty(self.out_features, dtype=dtype)) if bias else None
        self.reset_parameters()

    def reset_parameters(self, generator: np.random.Generator | None = None) -> None:
        """Draw new weights and bias from U(-1/sqrt(in_features), 1/sqrt(in_features)), as PyTorch."""
        bound = 1 / math.sqrt(self.in_features)
        init.uniform_(self.weight, -bound, bound, generator)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound, generator)

    def forward(self, x: Any) -> Tensor:
        """Apply the layer to `x` of shape (..., in_features)."""
        try:
            if self.bias is None:
                return functions.Linear.apply(x, self.weight)
            return functions.Linear.apply(x, self.weight, self.bias)
        except ValueError:
            shape = np.shape(x)
            got = f"input with {shape[-1]} features" if shape else "a 0-d input"
            raise ValueError(
                f"Linear(in_features={self.in_features}) got {got} (input shape {shape}); "
                f"its last axis must have {self.in_features} values"
            ) from None

    def extra_repr(self) -> str:
        """The layer's settings, as its repr shows them."""
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Sigmoid(Module):
    """``1 / (1 + exp(-x))``, elementwise."""

    def forward(self, x: Any) -> Tensor:
        """Apply the sigmoid to `x`."""
        return functions.Sigmoid.apply(x)


class ReLU(Module):
    """``max(x, 0)``, elementwise."""

    def forward(self, x: Any) -> Tensor:
        """Apply the ReLU to `x`."""
        return functions.ReLU.apply(x)


class Tanh(Module):
    """Hyperbolic tangent, elementwise."""

    def forward(self, x: Any) -> Tensor:
        """Apply tanh to `x`."""
        return functions.Tanh.apply(x)


class Softmax(Module):
    """Softmax along `axis` (default the last; PyTorch's `dim` works too): each slice becomes probabilities."""

    def __init__(self, axis: int = -1, *, dim: int | None = None) -> None:
        super().__init__()
        self.axis = _one_axis("Softmax", axis, dim)

    def forward(self, x: Any) -> Tensor:
        """Apply the softmax to `x` along the layer's axis."""
        return functions.Softmax.apply(x, axis=self.axis)

    @property
    def dim(self) -> int:
        """PyTorch's name for `axis`."""
        return self.axis

    def extra_repr(self) -> str:
        """The layer's settings, as PyTorch prints them (``dim=``, its name for `axis`)."""
        return f"dim={self.axis}"


class LogSoftmax(Module):
    """Log-softmax along `axis` (default the last; PyTorch's `dim` works too)."""

    def __init__(self, axis: int = -1, *, dim: int | None = None) -> None:
        super().__init__()
        self.axis = _one_axis("LogSoftmax", axis, dim)

    def forward(self, x: Any) -> Tensor:
        """Apply the log-softmax to `x` along the layer's axis."""
        return functions.LogSoftmax.apply(x, axis=self.axis)

    @property
    def dim(self) -> int:
        """PyTorch's name for `axis`."""
        return self.axis

    def extra_repr(self) -> str:
        """The layer's settings, as PyTorch prints them (``dim=``, its name for `axis`)."""
        return f"dim={self.axis}"


class Identity(Module):
    """Returns its input unchanged (a placeholder layer); like PyTorch's, it ignores any arguments."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, x: Any) -> Any:
        """Return `x`."""
        return x


class Flatten(Module):
    """Flatten axes `start_axis` to `end_axis` into one: (N, 28, 28) -> (N, 784) by default.

    PyTorch's names, `start_dim` and `end_dim`, work too.
    """

    def __init__(
        self, start_axis: int = 1, end_axis: int = -1, *, start_dim: int | None = None, end_dim: int | None = None
    ) -> None:
        super().__init__()
        self.start_axis = start_axis if start_dim is None else start_dim
        self.end_axis = end_axis if end_dim is None else end_dim

    def forward(self, x: Any) -> Tensor:
        """Reshape `x` with the axes from start_axis to end_axis merged."""
        shape = np.shape(x)
        for name, axis in (("start_axis", self.start_axis), ("end_axis", self.end_axis)):
            if not -len(shape) <= axis < len(shape):
                raise IndexError(f"Flatten: {name}={axis} is out of range for an input of shape {shape}")
        start, end = self.start_axis % len(shape), self.end_axis % len(shape)
        if start > end:
            raise ValueError(
                f"Flatten: start_axis {self.start_axis} comes after end_axis {self.end_axis} for shape {shape}"
            )
        new_shape = (*shape[:start], math.prod(shape[start : end + 1]), *shape[end + 1 :])
        return functions.Reshape.apply(x, shape=new_shape)

    @property
    def start_dim(self) -> int:
        """PyTorch's name for `start_axis`."""
        return self.start_axis

    @property
    def end_dim(self) -> int:
        """PyTorch's name for `end_axis`."""
        return self.end_axis

    def extra_repr(self) -> str:
        """The layer's settings, as PyTorch prints them (with its names, ``start_dim`` and ``end_dim``)."""
        return f"start_dim={self.start_axis}, end_dim={self.end_axis}"


class Unflatten(Module):
    """Split axis `dim` into `unflattened_size`: (N, 784) -> (N, 1, 28, 28) with ``Unflatten(1, (1, 28, 28))``.

    As ``torch.nn.Unflatten``; one size may be -1.
    """

    def __init__(self, dim: int, unflattened_size: Any) -> None:
        super().__init__()
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
            raise TypeError(f"Unflatten: dim must be an integer, got {dim!r}")
        sizes = tuple(unflattened_size) if isinstance(unflattened_size, (tuple, list)) else None
        if (
            not sizes
            or not all(
                isinstance(s, (int, np.integer)) and not isinstance(s, bool) and (s >= 1 or s == -1) for s in sizes
            )
            or sizes.count(-1) > 1
        ):
            raise ValueError(
                "Unflatten: unflattened_size must be a tuple of positive sizes (one may be -1), "
                f"got {unflattened_size!r}"
            )
        self.dim = int(dim)
        self.unflattened_size = tuple(int(s) for s in sizes)

    def forward(self, x: Any) -> Tensor:
        """Reshape `x` with axis `dim` split."""
        shape = x.shape if isinstance(x, (Tensor, np.ndarray)) else np.shape(x)
        if not -len(shape) <= self.dim < len(shape):
            raise IndexError(f"Unflatten: dim={self.dim} is out of range for an input of shape {shape}")
        axis = self.dim % len(shape)
        known = math.prod(s for s in self.unflattened_size if s != -1)
        if (-1 in self.unflattened_size and shape[axis] % known) or (
            -1 not in self.unflattened_size and known != shape[axis]
        ):
            raise ValueError(
                f"Unflatten: axis {self.dim} of the input (shape {shape}) has {shape[axis]} values, which do not "
                f"split into {self.unflattened_size}"
            )
        return functions.Reshape.apply(x, shape=(*shape[:axis], *self.unflattened_size, *shape[axis + 1 :]))

    def extra_repr(self) -> str:
        """The layer's settings, as PyTorch prints them."""
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"
