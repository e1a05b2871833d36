"""Normalisation layers: `BatchNorm1d`, `BatchNorm2d` and `LayerNorm`, with PyTorch's arguments, modes and keys."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import functions
from ..dtypes import DTypeLike, get_default_dtype
from ..tensor import Tensor
from . import functional as F  # noqa: N812 - PyTorch's customary name
from . import init
from .module import Module, Parameter

__all__ = ["BatchNorm1d", "BatchNorm2d", "LayerNorm"]


class _BatchNorm(Module):
    """What BatchNorm1d and BatchNorm2d share; they differ in the input shapes they take."""

    _input_ndims: tuple[int, ...] = (4,)
    _input_axes = "(N, C, H, W)"

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        dtype: DTypeLike | None = None,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        if isinstance(num_features, bool) or not isinstance(num_features, (int, np.integer)) or num_features < 1:
            raise ValueError(f"{name}: num_features must be a positive integer, got {num_features!r}")
        if momentum is not None and not 0 <= momentum <= 1:
            raise ValueError(
                f"{name}: momentum must be between 0 and 1 (or None for a cumulative average), got {momentum!r}"
            )
        if eps <= 0:
            raise ValueError(f"{name}: eps must be positive, got {eps!r}")
        self.num_features = int(num_features)
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        dtype = get_default_dtype() if dtype is None else np.dtype(dtype)
        if affine:
            self.weight = Parameter(np.ones(self.num_features, dtype=dtype))
        else:
            self.register_parameter("weight", None)
        if affine and bias:
            self.bias = Parameter(np.zeros(self.num_features, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(self.num_features, dtype=dtype))
            self.register_buffer("running_var", np.ones(self.num_features, dtype=dtype))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self) -> None:
        """Running mean 0, running variance 1, no batches tracked."""
        if self.track_running_stats:
            self.running_mean[...] = 0
            self.running_var[...] = 1
            self.num_batches_tracked[...] = 0

    def reset_parameters(self) -> None:
        """The running statistics reset, weight 1 and bias 0, as PyTorch."""
        self.reset_running_stats()
        if self.weight is not None:
            init.ones_(self.weight)
        if self.bias is not None:
            init.zeros_(self.bias)

    def _check(self, shape: tuple) -> None:
        name = type(self).__name__
        if len(shape) not in self._input_ndims:
            raise ValueError(
                f"{name}({self.num_features}) takes input of shape {self._input_axes}, got shape {shape} "
                f"({len(shape)} axes)"
            )
        if shape[1] != self.num_features:
            raise ValueError(f"{name}({self.num_features}) got input with {shape[1]} channels (input shape {shape})")

    def forward(self, x: Any) -> Tensor:
        """Normalise `x` per channel: with the batch's statistics in training mode, the running ones in eval mode.

        In training mode (with `track_running_stats`) the running statistics are updated, and
        `num_batches_tracked` counts the batch.
        """
        if not isinstance(x, (Tensor, np.ndarray)):
            x = np.asarray(x)
        shape = x.shape
        if len(shape) not in self._input_ndims or shape[1] != self.num_features:
            self._check(shape)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            np.add(self.num_batches_tracked, 1, out=self.num_batches_tracked)
            if self.momentum is None:  # a cumulative moving average
                factor = 1.0 / float(self.num_batches_tracked)
        # Batch statistics in training mode, and in eval mode too when there are no running ones.
        batch_stats = self.training or self.running_mean is None
        if batch_stats and int(np.prod(shape)) // shape[1] <= 1:
            raise ValueError(
                f"{type(self).__name__}({self.num_features}): expected more than 1 value per channel when training "
                f"(batch statistics), got input of shape {shape}"
            )
        tracked = not self.training or self.track_running_stats
        return functions.BatchNorm.apply(
            x,
            self.weight,
            self.bias,
            running_mean=self.running_mean if tracked else None,
            running_var=self.running_var if tracked else None,
            training=batch_stats,
            momentum=factor,
            eps=self.eps,
        )

    def extra_repr(self) -> str:
        """The layer's settings, as PyTorch prints them."""
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
            f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}"
        )


class BatchNorm2d(_BatchNorm):
    """Batch norm over (N, C, H, W) per channel, as ``torch.nn.BatchNorm2d``.

    Learns a weight (ones) and bias (zeros) per channel unless ``affine=False`` (``bias=False``: no bias). In
    training mode it normalises with each batch's mean and biased variance, updates the *buffers* `running_mean`
    and `running_var` (the unbiased variance, weighted by `momentum`; ``momentum=None`` keeps a cumulative
    average) and counts `num_batches_tracked`; in eval mode (``model.eval()``) it normalises with the running
    statistics. The buffers are in ``state_dict()`` under PyTorch's keys, not in ``parameters()``::

        norm = nn.BatchNorm2d(32)           # after nn.Conv2d(1, 32, 3): one weight and bias per channel
    """

    _input_ndims = (4,)
    _input_axes = "(N, C, H, W)"


class BatchNorm1d(_BatchNorm):
    """Batch norm over (N, C) or (N, C, L) per channel (feature), as ``torch.nn.BatchNorm1d``; see `BatchNorm2d`."""

    _input_ndims = (2, 3)
    _input_axes = "(N, C) or (N, C, L)"


class LayerNorm(Module):
    """Normalise each sample over its last axes, of shape `normalized_shape`, as ``torch.nn.LayerNorm``.

    With `elementwise_affine` it learns a weight (ones) and, with `bias`, a bias (zeros) of that shape. The
    same in training and eval mode::

        norm = nn.LayerNorm(64)            # (batch, tokens, 64): each token's 64 values to mean 0, variance 1
    """

    def __init__(
        self,
        normalized_shape: Any,
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        dtype: DTypeLike | None = None,
    ) -> None:
        super().__init__()
        self.normalized_shape = F._normalized_shape("LayerNorm", normalized_shape)
        if eps <= 0:
            raise ValueError(f"LayerNorm: eps must be positive, got {eps!r}")
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        dtype = get_default_dtype() if dtype is None else np.dtype(dtype)
        if elementwise_affine:
            self.weight = Parameter(np.ones(self.normalized_shape, dtype=dtype))
            if bias:
                self.bias = Parameter(np.zeros(self.normalized_shape, dtype=dtype))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def reset_parameters(self) -> None:
        """Weight 1 and bias 0, as PyTorch."""
        if self.weight is not None:
            init.ones_(self.weight)
        if self.bias is not None:
            init.zeros_(self.bias)

    def forward(self, x: Any) -> Tensor:
        """Normalise `x`, whose last axes must have the shape `normalized_shape`."""
        if not isinstance(x, (Tensor, np.ndarray)):
            x = np.asarray(x)
        shape = x.shape
        count = len(self.normalized_shape)
        if tuple(shape[len(shape) - count :]) != self.normalized_shape or len(shape) < count:
            raise ValueError(
                f"LayerNorm({self.normalized_shape}) got input of shape {shape}, whose last axes are not "
                f"{self.normalized_shape}"
            )
        return functions.LayerNorm.apply(x, self.weight, self.bias, normalized_ndim=count, eps=self.eps)

    def extra_repr(self) -> str:
        """The layer's settings, as PyTorch prints them."""
        return (
            f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}, "
            f"bias={self.bias is not None}"
        )
