"""Normalisation: softmax and log-softmax along an axis, and batch and layer norm over several axes."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import xp
from .base import Primitive

__all__ = ["BatchNorm", "LayerNorm", "LogSoftmax", "Softmax", "log_softmax_array", "softmax_array"]


def softmax_array(x: Any, axis: int = -1) -> np.ndarray:
    """``exp(x) / sum(exp(x))`` along `axis`, stable at +-1000 (the maximum is subtracted first)."""
    shifted = x - np.max(x, axis=axis, keepdims=True)
    if shifted.dtype.kind != "f":  # integers: in float64, as np.exp would
        shifted = shifted.astype(np.float64)
    out = np.exp(shifted, out=shifted)
    out /= np.sum(out, axis=axis, keepdims=True)
    return out


def log_softmax_array(x: Any, axis: int = -1) -> np.ndarray:
    """``x - log(sum(exp(x)))`` along `axis`, stable at +-1000."""
    shifted = x - np.max(x, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


class Softmax(Primitive):
    """Softmax along `axis`, with the backward ``s * (g - sum(g * s))``."""

    __slots__ = ()

    @staticmethod
    def forward(ctx, x, axis=-1):
        out = softmax_array(x, axis)
        ctx.output = out
        ctx._saved = (axis,)
        return out

    @staticmethod
    def backward(ctx, grad):
        out = ctx.output
        (axis,) = ctx._saved
        return out * (grad - (grad * out).sum(axis=axis, keepdims=True))


class LogSoftmax(Primitive):
    """Log-softmax along `axis`, with the backward ``g - softmax * sum(g)``."""

    __slots__ = ()

    @staticmethod
    def forward(ctx, x, axis=-1):
        out = log_softmax_array(x, axis)
        ctx.output = out
        ctx._saved = (axis,)
        return out

    @staticmethod
    def backward(ctx, grad):
        out = ctx.output
        (axis,) = ctx._saved
        return grad - xp.exp(out) * grad.sum(axis=axis, keepdims=True)


# --------------------------------------------------------------------------------------------------------------
# Batch norm and layer norm: (x - mean) / sqrt(var + eps) * weight + bias, with statistics over some axes
# --------------------------------------------------------------------------------------------------------------


def _statistics(x: Any, axes: tuple, eps: float) -> tuple:
    """Mean and 1 / sqrt(biased variance + eps) over `axes` (kept as size 1), and the variance; arrays or Tensors."""
    mean = x.mean(axis=axes, keepdims=True)
    centered = x - mean
    variance = (centered * centered).mean(axis=axes, keepdims=True)
    return mean, (variance + eps) ** -0.5, variance


def _batch_statistics(ctx: Any, x: Any, axes: tuple) -> tuple:
    """The forward pass's mean and inv_std: saved constants in a plain backward, recomputed from a Tensor x.

    Under ``create_graph`` x arrives as a Tensor and the statistics must be functions of it, so that a second
    derivative sees how they depend on x.
    """
    mean, inv_std, batch_stats, eps = ctx._saved[:4]
    if batch_stats and not isinstance(x, np.ndarray):
        mean, inv_std, _ = _statistics(x, axes, eps)
    return mean, inv_std, batch_stats


class BatchNorm(Primitive):
    """Batch norm of x (N, C, *spatial) per channel: statistics over every axis but 1, weight and bias (C,).

    With ``training=True`` it normalises with the batch's mean and biased variance and, when `running_mean` and
    `running_var` arrays are given, updates them in place as PyTorch does (``(1 - momentum) * running +
    momentum * batch``, with the unbiased variance). With ``training=False`` it normalises with the running
    statistics: a fixed affine map of x. `weight` and `bias` may be None (``affine=False``).
    """

    __slots__ = ()

    @staticmethod
    def forward(
        ctx, x, weight=None, bias=None, running_mean=None, running_var=None, training=True, momentum=0.1, eps=1e-5
    ):
        axes = (0, *range(2, x.ndim))
        param_shape = (1, -1) + (1,) * (x.ndim - 2)
        if training:
            # The statistics as _statistics computes them, with one temporary instead of two (every large
            # allocation costs page faults, which add a third to the time of this op).
            mean = x.mean(axis=axes, keepdims=True)
            squares = np.subtract(x, mean)
            np.square(squares, out=squares)
            variance = squares.mean(axis=axes, keepdims=True)
            inv_std = (variance + eps) ** -0.5
            count = x.size // x.shape[1]
            if running_mean is not None:
                running_mean *= 1 - momentum
                running_mean += momentum * mean.reshape(-1)
            if running_var is not None:
                running_var *= 1 - momentum
                running_var += (momentum * count / max(count - 1, 1)) * variance.reshape(-1)
        else:
            mean = running_mean.reshape(param_shape).astype(x.dtype, copy=False)
            inv_std = ((running_var.reshape(param_shape) + eps) ** -0.5).astype(x.dtype, copy=False)
        ctx.inputs = (x, weight)
        ctx._saved = (mean, inv_std, training, eps)
        # Two passes over x: a scale and a shift per channel.
        scale = inv_std if weight is None else inv_std * weight.reshape(param_shape)
        shift = -mean * scale
        if bias is not None:
            shift = shift + bias.reshape(param_shape)
        out = (
            np.multiply(x, scale, out=squares) if training and squares.dtype == np.result_type(x, scale) else x * scale
        )
        out += shift
        return out

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.inputs
        axes = (0, *range(2, x.ndim))
        param_shape = (1, -1) + (1,) * (x.ndim - 2)
        mean, inv_std, batch_stats = _batch_statistics(ctx, x, axes)
        edges = ctx.parents
        need_weight = len(edges) > 1 and edges[1] is not None
        need_bias = len(edges) > 2 and edges[2] is not None
        normalized = None
        if need_weight or batch_stats:
            normalized = x - mean
            normalized *= inv_std  # in place on arrays, a new node on Tensors
        # Sums over everything but the channels: the weight's and the bias's gradients, and (since the weight is
        # constant over those axes) the two means the batch statistics contribute to x's gradient.
        sum_gx = (grad * normalized).sum(axis=axes, keepdims=True) if normalized is not None else None
        sum_g = grad.sum(axis=axes, keepdims=True) if need_bias or batch_stats else None
        grad_x = None
        if edges[0] is not None:
            scale = inv_std if weight is None else inv_std * weight.reshape(param_shape)
            if batch_stats:
                count = math.prod(x.shape[axis] for axis in axes)
                factor = sum_gx * (-1 / count)
                if type(normalized) is np.ndarray and type(factor) is np.ndarray:
                    grad_x = normalized  # not needed any more: its memory becomes the gradient's
                    grad_x *= factor
                else:  # an array times a Tensor has no in-place form
                    grad_x = normalized * factor
                grad_x += grad
                grad_x -= sum_g * (1 / count)
                grad_x *= scale
            else:
                grad_x = grad * scale
        grad_weight = sum_gx.reshape(-1) if need_weight else None
        grad_bias = sum_g.reshape(-1) if need_bias else None
        return (grad_x, grad_weight, grad_bias)[: len(edges)]


class LayerNorm(Primitive):
    """Layer norm: x normalised over its last `normalized_ndim` axes, then times weight plus bias (of that shape).

    The statistics are each sample's mean and biased variance over those axes, as ``torch.nn.LayerNorm``;
    `weight` and `bias` may be None.
    """

    __slots__ = ()

    @staticmethod
    def forward(ctx, x, weight=None, bias=None, normalized_ndim=1, eps=1e-5):
        axes = tuple(range(x.ndim - normalized_ndim, x.ndim))
        mean, inv_std, _ = _statistics(x, axes, eps)
        ctx.inputs = (x, weight)
        ctx._saved = (mean, inv_std, True, eps, normalized_ndim)
        out = x - mean
        out *= inv_std
        if weight is not None:
            out *= weight
        if bias is not None:
            out += bias
        return out

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.inputs
        normalized_ndim = ctx._saved[4]
        axes = tuple(range(x.ndim - normalized_ndim, x.ndim))
        leading = tuple(range(x.ndim - normalized_ndim))
        mean, inv_std, _ = _batch_statistics(ctx, x, axes)
        edges = ctx.parents
        normalized = (x - mean) * inv_std
        grad_x = grad_weight = grad_bias = None
        if edges[0] is not None:
            # The weight varies along the normalised axes, so it goes into the means: (g - mean(g) - x^ mean(g x^))
            # * inv_std, with g = grad * weight.
            scaled = grad if weight is None else grad * weight
            count = math.prod(x.shape[axis] for axis in axes)
            grad_x = normalized * ((scaled * normalized).sum(axis=axes, keepdims=True) * (-1 / count))
            grad_x += scaled
            grad_x -= scaled.sum(axis=axes, keepdims=True) * (1 / count)
            grad_x *= inv_std
        if len(edges) > 1 and edges[1] is not None:
            grad_weight = (grad * normalized).sum(axis=leading) if leading else grad * normalized
        if len(edges) > 2 and edges[2] is not None:
            grad_bias = grad.sum(axis=leading) if leading else grad
        return (grad_x, grad_weight, grad_bias)[: len(edges)]
