"""Matrix products: ``a @ b`` with numpy's rules, and the fused `Linear` layer ``x @ W.T + b``."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import xp
from .base import Primitive, shape_of

__all__ = ["Linear", "MatMul"]


# 2-D products use ``ndarray.dot`` (through `xp.dot`, which keeps Tensors' graphs) rather than ``@``: the same
# BLAS call without the generalised ufunc's overhead (0.4 against 0.9 us for tiny matrices), and ten times faster
# for an outer product (a batch of one: 9.6 against 95 us for 100 x 784 in float32, where matmul hands BLAS a
# K=1 product it does badly).


def _matmul_at_b(a: Any, b: Any) -> Any:
    """``a.T @ b`` for 2-D operands (the weight gradient of a batch)."""
    return xp.dot(a.T, b)


class MatMul(Primitive):
    """``a @ b`` with numpy's matmul rules (1-D operands, batch axes that broadcast)."""

    __slots__ = ()

    @staticmethod
    def forward(ctx, a, b):
        ctx.inputs = (a, b)
        try:
            return np.matmul(a, b)
        except ValueError:
            a_shape, b_shape = shape_of(a), shape_of(b)
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
        a, b = ctx.inputs
        need_a = ctx.parents[0] is not None
        need_b = ctx.parents[1] is not None
        if a.ndim == 2 and b.ndim == 2:
            return (xp.dot(grad, b.T) if need_a else None), (_matmul_at_b(a, grad) if need_b else None)
        if a.ndim == 1 and b.ndim == 1:  # a dot product: grad is 0-d
            return (grad * b if need_a else None), (grad * a if need_b else None)
        # Treat 1-D operands as matrices (a row, a column) and put the axes matmul removed back into grad.
        a2 = a.reshape((1, -1)) if a.ndim == 1 else a
        b2 = b.reshape((-1, 1)) if b.ndim == 1 else b
        grad2 = grad
        if a.ndim == 1:
            grad2 = grad2.reshape((*grad2.shape[:-1], 1, grad2.shape[-1]))
        if b.ndim == 1:
            grad2 = grad2.reshape((*grad2.shape, 1))
        grad_a = grad_b = None
        if need_a:
            grad_a = grad2 @ b2.mT
            if a.ndim == 1:
                grad_a = grad_a.reshape((*grad_a.shape[:-2], grad_a.shape[-1]))
        if need_b:
            grad_b = a2.mT @ grad2
            if b.ndim == 1:
                grad_b = grad_b.reshape(grad_b.shape[:-1])
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
                f"linear: input of shape {shape_of(x)} has {shape_of(x)[-1] if np.ndim(x) else 'no'} features, "
                f"but the weight of shape {weight.shape} expects {weight.shape[-1]}"
            )
        ctx.inputs = (x, weight)
        out = x.dot(weight.T) if x.ndim == 2 else x @ weight.T
        if bias is not None:
            if bias.dtype is out.dtype or bias.dtype == out.dtype:
                out += bias
            else:
                out = out + bias
        return out

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.inputs
        edges = ctx.parents
        grad_x = (xp.dot(grad, weight) if grad.ndim == 2 else grad @ weight) if edges[0] is not None else None
        grad_weight = None
        if edges[1] is not None:
            if x.ndim == 2:
                grad_weight = _matmul_at_b(grad, x)
            elif x.ndim == 1:
                grad_weight = grad.reshape((-1, 1)) * x
            else:
                grad_weight = grad.reshape((-1, grad.shape[-1])).T @ x.reshape((-1, x.shape[-1]))
        if len(edges) == 2:  # called without a bias
            return grad_x, grad_weight
        grad_bias = None
        if edges[2] is not None:
            if grad.ndim == 1:
                grad_bias = grad
            else:
                grad_bias = (grad if grad.ndim == 2 else grad.reshape((-1, grad.shape[-1]))).sum(axis=0)
        return grad_x, grad_weight, grad_bias
