"""Losses: fused primitives with PyTorch's formulas.

One node each instead of four to six, with backward passes that are simpler and more stable than the chain rule
through their parts (softmax with cross-entropy is ``softmax - one_hot``; sigmoid with BCE is
``sigmoid - target``). Each keeps only its inputs and recomputes what it derived from them in backward, so that
under ``create_graph`` the recomputation is recorded and every loss is differentiable again.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import xp
from .base import Primitive

__all__ = [
    "BinaryCrossEntropy",
    "BinaryCrossEntropyWithLogits",
    "CrossEntropy",
    "CrossEntropyWithProbabilities",
    "MeanSquaredError",
]


def _reduce_loss(elementwise: np.ndarray, reduction: str, count: float) -> np.ndarray:
    if reduction == "none":
        return elementwise
    total = np.add.reduce(elementwise, axis=None)
    if reduction == "sum":
        return total
    if count == 0:  # every sample ignored: NaN, quietly, as PyTorch
        return np.full((), np.nan, dtype=elementwise.dtype)
    return total / count


def _loss_grad_scale(grad: Any, reduction: str, count: float, weight: Any = None) -> Any:
    """The upstream gradient as a factor for each element's loss (times the element's weight, if any)."""
    if reduction == "mean":
        grad = grad * np.nan if count == 0 else grad / count
    return grad if weight is None else grad * weight


class MeanSquaredError(Primitive):
    """``(input - target) ** 2`` reduced by `reduction` (PyTorch's ``mse_loss``)."""

    __slots__ = ()

    @staticmethod
    def forward(ctx, prediction, target, reduction="mean"):
        difference = np.subtract(prediction, target)
        ctx.inputs = (prediction, target)
        ctx._saved = (reduction, difference)
        if reduction == "none":
            return np.square(difference)
        total = np.vdot(difference, difference)  # the sum of squares in one call, without a temporary array
        return total if reduction == "sum" else total / difference.size

    @staticmethod
    def backward(ctx, grad):
        reduction, difference = ctx._saved
        if xp._is_tensor(grad):
            # Under create_graph the difference is recomputed from the inputs, so that it carries their graph;
            # on arrays forward's own is the same numbers, one subtraction cheaper.
            prediction, target = ctx.inputs
            difference = prediction - target
        if reduction == "none":
            grad_prediction = difference * (grad + grad)
        else:
            # grad is one number: scale it first, one operation on it instead of two on the array. A float64 one
            # as a Python number (the same IEEE double arithmetic): numpy's arithmetic on a 0-d array costs as much
            # as on a small array. Other dtypes round differently in Python, so they stay arrays.
            size = difference.size if reduction == "mean" else 1
            scale = float(grad) if grad.dtype is _FLOAT64 and not xp._is_tensor(grad) else grad
            grad_prediction = difference * (scale * (2.0 / (size or 1)))
        return grad_prediction, (-grad_prediction if ctx.parents[1] is not None else None)


_BCE_EPSILON = float(np.float32(1e-12))
_FLOAT64 = np.dtype(np.float64)  # dtypes of the built-in types are singletons: `is` is the cheap comparison


def _clamped_log(values: Any) -> Any:
    # PyTorch clamps BCE's logs at -100 so that a probability of exactly 0 or 1 gives a finite loss.
    with np.errstate(divide="ignore", invalid="ignore"):
        return xp.maximum(xp.log(values), -100)


class BinaryCrossEntropy(Primitive):
    """``-w * (t * log(p) + (1 - t) * log(1 - p))`` with logs clamped at -100, as PyTorch's BCE."""

    __slots__ = ()

    @staticmethod
    def forward(ctx, probability, target, weight=None, reduction="mean"):
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
        ctx.inputs = (probability, target)
        ctx._saved = (weight, reduction)
        return _reduce_loss(elementwise, reduction, elementwise.size)

    @staticmethod
    def backward(ctx, grad):
        probability, target = ctx.inputs
        weight, reduction = ctx._saved
        scale = _loss_grad_scale(grad, reduction, np.size(xp.value(probability)), weight)
        # PyTorch floors p(1 - p) at a float32 1e-12 (9.99999996e-13); the same constant gives the same gradient.
        grad_probability = scale * (probability - target) / xp.maximum((1 - probability) * probability, _BCE_EPSILON)
        grad_target = None
        if ctx.parents[1] is not None:
            grad_target = scale * (_clamped_log(1 - probability) - _clamped_log(probability))
        return grad_probability, grad_target


def _softplus_of_negative(x: Any) -> Any:
    """``log(1 + exp(-x))`` without overflow: ``max(-x, 0) + log1p(exp(-|x|))``."""
    return xp.maximum(-x, 0) + xp.log1p(xp.exp(-abs(x)))


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
        ctx.inputs = (logits, target)
        ctx._saved = (weight, pos_weight, reduction)
        return _reduce_loss(elementwise, reduction, elementwise.size)

    @staticmethod
    def backward(ctx, grad):
        logits, target = ctx.inputs
        weight, pos_weight, reduction = ctx._saved
        scale = _loss_grad_scale(grad, reduction, np.size(xp.value(logits)), weight)
        sigmoid = xp.sigmoid(logits)
        need_target = ctx.parents[1] is not None
        if pos_weight is None:
            grad_logits = scale * (sigmoid - target)
            grad_target = -scale * logits if need_target else None
        else:
            log_weight = (pos_weight - 1) * target + 1
            grad_logits = scale * ((1 - target) - log_weight * (1 - sigmoid))
            grad_target = scale * ((pos_weight - 1) * _softplus_of_negative(logits) - logits) if need_target else None
        return grad_logits, grad_target


def _class_axis_last(array: Any) -> Any:
    """(N, C, d1, ...) -> (N, d1, ..., C); (N, C) and (C,) are unchanged."""
    if array.ndim <= 2:
        return array
    order = (0, *range(2, array.ndim), 1)
    return array.transpose(order)


def _class_axis_back(array: Any, ndim: int) -> Any:
    if ndim <= 2:
        return array
    order = (0, ndim - 1, *range(1, ndim - 1))
    return array.transpose(order)


def _index_of_targets(picked: np.ndarray) -> tuple:
    """An index into (..., C) that selects each sample's target class."""
    return (*np.indices(picked.shape, sparse=True), picked)


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
        log_probs = xp.log_softmax(scores, axis=-1)
        sample_weight = keep.astype(log_probs.dtype) if weight is None else np.where(keep, weight[picked], 0)
        picked_log_probs = np.take_along_axis(log_probs, picked[..., np.newaxis], axis=-1)[..., 0]
        losses = -picked_log_probs * sample_weight
        count = np.sum(sample_weight) if reduction == "mean" else 1
        ctx.inputs = (logits,)
        ctx._saved = (picked, sample_weight, count, reduction)
        return _reduce_loss(losses, reduction, count)

    @staticmethod
    def backward(ctx, grad):
        (logits,) = ctx.inputs
        picked, sample_weight, count, reduction = ctx._saved
        if reduction == "mean" and count == 0:  # every target ignored: the loss is NaN, the gradient 0 (PyTorch)
            return np.zeros_like(xp.value(logits)), None
        scale = _loss_grad_scale(grad, reduction, count) * sample_weight  # per sample
        probabilities = xp.exp(xp.log_softmax(_class_axis_last(logits), axis=-1))
        expanded = scale.reshape((*scale.shape, 1))
        one_hot = xp.scatter_add(scale, probabilities.shape, _index_of_targets(picked), unique=True)
        return _class_axis_back(probabilities * expanded - one_hot, logits.ndim), None


class CrossEntropyWithProbabilities(Primitive):
    """Cross-entropy of raw scores against class probabilities: ``-sum_c w_c p_c log_softmax(x)_c``.

    The target has the logits' shape; the mean divides by the number of samples, as PyTorch does.
    """

    __slots__ = ()

    @staticmethod
    def forward(ctx, logits, target, weight=None, reduction="mean"):
        log_probs = xp.log_softmax(_class_axis_last(logits), axis=-1)
        target = np.asarray(target)
        probabilities = _class_axis_last(target)
        weighted = probabilities if weight is None else probabilities * weight
        losses = -np.sum(weighted * log_probs, axis=-1)
        count = losses.size
        ctx.inputs = (logits, target)
        ctx._saved = (weight, count, reduction)
        return _reduce_loss(losses, reduction, count)

    @staticmethod
    def backward(ctx, grad):
        logits, target = ctx.inputs
        weight, count, reduction = ctx._saved
        log_probs = xp.log_softmax(_class_axis_last(logits), axis=-1)
        weighted = _class_axis_last(target)
        if weight is not None:
            weighted = weighted * weight
        scale = _loss_grad_scale(grad, reduction, count)
        if reduction == "none":
            scale = scale.reshape((*scale.shape, 1))
        grad_scores = scale * (xp.exp(log_probs) * weighted.sum(axis=-1, keepdims=True) - weighted)
        grad_target = None
        if ctx.parents[1] is not None:
            grad_target = -scale * (log_probs if weight is None else log_probs * weight)
            grad_target = _class_axis_back(grad_target, logits.ndim)
        return _class_axis_back(grad_scores, logits.ndim), grad_target
