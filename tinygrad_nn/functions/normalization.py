"""Normalisation along an axis: softmax and log-softmax (batch and layer norm join them here)."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import xp
from .base import Primitive

__all__ = ["LogSoftmax", "Softmax", "log_softmax_array", "softmax_array"]


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
