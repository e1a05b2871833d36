"""Functions behind the layers and losses, with PyTorch's names: ``import tinygrad_nn.nn.functional as F``.

Each checks its arguments in the caller's terms (names, shapes, allowed values), then calls one primitive.
Inputs may be Tensors or arrays; targets and weights never need a gradient, but a target Tensor that requires
grad gets one.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import functions
from ..tensor import Tensor

__all__ = [
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "linear",
    "log_softmax",
    "mse_loss",
    "relu",
    "sigmoid",
    "softmax",
    "tanh",
]

_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(function: str, reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{function}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _array(value: Any) -> Any:
    """The array of a Tensor (for arguments that never get a gradient, such as weights)."""
    if value is None:
        return None
    return value.data if isinstance(value, Tensor) else np.asarray(value)


def _shape(value: Any) -> tuple:
    # np.shape works on anything, but goes through Python; Tensors and arrays know their shape.
    return value.shape if isinstance(value, (Tensor, np.ndarray)) else np.shape(value)


def _check_same_shape(function: str, prediction: Any, target: Any) -> None:
    if _shape(prediction) != _shape(target):
        raise ValueError(
            f"{function}: input of shape {np.shape(prediction)} and target of shape {np.shape(target)} must have "
            "the same shape (broadcasting them is almost always a bug, e.g. (N, 1) against (N,))"
        )


def _elementwise_weight(function: str, argument: str, weight: Any, input: Any) -> Any:
    """A weight that rescales each element: it must broadcast to the input's shape."""
    weight = _array(weight)
    if weight is not None:
        try:
            fits = np.broadcast_shapes(weight.shape, np.shape(input)) == np.shape(input)
        except ValueError:
            fits = False
        if not fits:
            raise ValueError(
                f"{function}: {argument} of shape {weight.shape} does not broadcast to the input's shape "
                f"{np.shape(input)}"
            )
    return weight


def linear(input: Any, weight: Any, bias: Any = None) -> Tensor:
    """``input @ weight.T + bias``, with PyTorch's layout: weight is (out_features, in_features)."""
    if bias is None:
        return functions.Linear.apply(input, weight)
    return functions.Linear.apply(input, weight, bias)


def sigmoid(input: Any) -> Tensor:
    """``1 / (1 + exp(-x))``, elementwise."""
    return functions.Sigmoid.apply(input)


def relu(input: Any) -> Tensor:
    """``max(x, 0)``, elementwise."""
    return functions.ReLU.apply(input)


def tanh(input: Any) -> Tensor:
    """Hyperbolic tangent, elementwise."""
    return functions.Tanh.apply(input)


def softmax(input: Any, axis: int = -1, *, dim: int | None = None) -> Tensor:
    """Softmax along `axis` (or PyTorch's `dim`), computed stably."""
    return functions.Softmax.apply(input, axis=axis if dim is None else dim)


def log_softmax(input: Any, axis: int = -1, *, dim: int | None = None) -> Tensor:
    """Log-softmax along `axis` (or PyTorch's `dim`), computed stably."""
    return functions.LogSoftmax.apply(input, axis=axis if dim is None else dim)


def mse_loss(input: Any, target: Any, reduction: str = "mean") -> Tensor:
    """Mean squared error ``(input - target) ** 2``, reduced by `reduction` ('mean', 'sum' or 'none')."""
    # The checks are inline (not the helpers) because this runs once per training step.
    if reduction not in _REDUCTIONS:
        _check_reduction("mse_loss", reduction)
    input_shape = input.data.shape if isinstance(input, Tensor) else np.shape(input)
    if isinstance(target, Tensor):
        target_shape = target.data.shape
    else:
        target_shape = target.shape if isinstance(target, np.ndarray) else np.shape(target)
    if input_shape != target_shape:
        _check_same_shape("mse_loss", input, target)
    return functions.MeanSquaredError.apply(input, target, reduction=reduction)


def binary_cross_entropy(input: Any, target: Any, weight: Any = None, reduction: str = "mean") -> Tensor:
    """Binary cross-entropy of probabilities in [0, 1] against targets in [0, 1] (logs clamped at -100)."""
    _check_reduction("binary_cross_entropy", reduction)
    _check_same_shape("binary_cross_entropy", input, target)
    weight = _elementwise_weight("binary_cross_entropy", "weight", weight, input)
    return functions.BinaryCrossEntropy.apply(input, target, weight=weight, reduction=reduction)


def binary_cross_entropy_with_logits(
    input: Any, target: Any, weight: Any = None, reduction: str = "mean", pos_weight: Any = None
) -> Tensor:
    """Binary cross-entropy of raw scores (the sigmoid is applied inside, stably)."""
    _check_reduction("binary_cross_entropy_with_logits", reduction)
    _check_same_shape("binary_cross_entropy_with_logits", input, target)
    function = "binary_cross_entropy_with_logits"
    weight = _elementwise_weight(function, "weight", weight, input)
    pos_weight = _elementwise_weight(function, "pos_weight", pos_weight, input)
    return functions.BinaryCrossEntropyWithLogits.apply(
        input, target, weight=weight, pos_weight=pos_weight, reduction=reduction
    )


def cross_entropy(
    input: Any, target: Any, weight: Any = None, ignore_index: int = -100, reduction: str = "mean"
) -> Tensor:
    """Cross-entropy of raw scores (logits) against class indices or class probabilities, as PyTorch's.

    `input` has the classes on axis 1: (N, C), or (N, C, d1, ...), or a single row (C,). `target` is either
    integer class indices of shape (N,) (or (N, d1, ...), or a scalar for one row), given as a numpy array or
    a Tensor, or probabilities with the input's shape. `weight` (C,) rescales each class; targets equal to
    `ignore_index` are left out, and 'mean' divides by the summed weights of the targets.
    """
    _check_reduction("cross_entropy", reduction)
    logits_shape = np.shape(input)
    if len(logits_shape) == 0:
        raise ValueError("cross_entropy: input must have a class axis, got a 0-d input")
    classes = logits_shape[1] if len(logits_shape) > 1 else logits_shape[0]
    weight = _array(weight)
    if weight is not None and weight.shape != (classes,):
        raise ValueError(f"cross_entropy: weight must have shape ({classes},), one per class, got {weight.shape}")
    target_array = target.data if isinstance(target, Tensor) else np.asarray(target)
    if target_array.dtype.kind in "iu":
        expected = logits_shape[:1] + logits_shape[2:] if len(logits_shape) > 1 else ()
        if target_array.shape != expected:
            raise ValueError(
                f"cross_entropy: class-index targets for input of shape {logits_shape} must have shape {expected}, "
                f"got {target_array.shape}"
            )
        return functions.CrossEntropy.apply(
            input, target_array, weight=weight, ignore_index=ignore_index, reduction=reduction
        )
    if target_array.dtype.kind != "f":
        raise TypeError(
            f"cross_entropy: targets must be integer class indices or float probabilities, got {target_array.dtype}"
        )
    if target_array.shape != logits_shape:
        raise ValueError(
            f"cross_entropy: float targets are class probabilities and need the input's shape {logits_shape}, "
            f"got {target_array.shape} (class indices must be an integer array)"
        )
    return functions.CrossEntropyWithProbabilities.apply(input, target, weight=weight, reduction=reduction)
