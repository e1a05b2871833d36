"""Gradient clipping with PyTorch's names: `clip_grad_norm_`, `clip_grad_value_`, `get_total_norm`.

Each changes the parameters' ``.grad`` arrays in place and records nothing in any graph; call it between
``loss.backward()`` and ``optimizer.step()``::

    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
    optimizer.step()

A ``.grad`` that is a Tensor (after ``backward(create_graph=True)``) is clipped through its array.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any

import numpy as np

from ..tensor import Tensor
from .module import Module

__all__ = ["clip_grad_norm_", "clip_grad_value_", "clip_grads_with_norm_", "get_total_norm"]


def _parameter_list(function: str, parameters: Any) -> list[Tensor]:
    if isinstance(parameters, Tensor):
        return [parameters]
    if isinstance(parameters, Module):
        raise TypeError(f"{function} got the model itself (a {type(parameters).__name__}); pass model.parameters()")
    if isinstance(parameters, (str, bytes)) or not isinstance(parameters, Iterable):
        raise TypeError(f"{function} takes a Tensor or an iterable of Tensors (model.parameters()), got {parameters!r}")
    items = list(parameters)
    for position, item in enumerate(items):
        if not isinstance(item, Tensor):
            raise TypeError(f"{function} takes Tensors; item {position} is a {type(item).__name__}")
    return items


def _grad_arrays(parameters: list[Tensor]) -> list[np.ndarray]:
    grads = []
    for parameter in parameters:
        grad = parameter.grad
        if grad is not None:
            grads.append(grad.data if isinstance(grad, Tensor) else grad)
    return grads


def _norm_type(function: str, norm_type: Any) -> float:
    try:
        value = float(norm_type)  # float("inf") and float("-inf") too, as PyTorch accepts
    except (TypeError, ValueError):
        raise ValueError(f"{function}: norm_type must be a number or 'inf', got {norm_type!r}") from None
    if math.isnan(value):
        raise ValueError(f"{function}: norm_type must be a number or 'inf', got nan")
    return value


def _vector_norm(values: np.ndarray, order: float) -> np.ndarray:
    """The `order`-norm of all of `values`, in their dtype (numpy's vector norms, as torch.linalg.vector_norm)."""
    if values.size == 0:
        return np.zeros((), dtype=values.dtype if values.dtype.kind == "f" else np.float64)
    return np.linalg.norm(values.ravel(), ord=order)


def get_total_norm(
    tensors: Tensor | Iterable[Tensor] | Iterable[np.ndarray], norm_type: float = 2.0, error_if_nonfinite: bool = False
) -> Tensor:
    """The `norm_type`-norm of all the arrays together, as if concatenated into one vector (a 0-d Tensor).

    Takes the gradients themselves (arrays or Tensors), as ``torch.nn.utils.get_total_norm`` does; with no
    arrays at all the norm is 0.
    """
    order = _norm_type("get_total_norm", norm_type)
    if isinstance(tensors, (Tensor, np.ndarray)):
        tensors = [tensors]
    arrays = [np.asarray(t.data if isinstance(t, Tensor) else t) for t in tensors]
    if not arrays:
        return Tensor(0.0)
    norms = [_vector_norm(array, order) for array in arrays]
    total = _vector_norm(np.array(norms, dtype=np.result_type(*norms)), order)
    if error_if_nonfinite and not np.isfinite(total):
        raise RuntimeError(
            f"the total norm of order {order:g} of the gradients is {float(total)}, so they cannot be clipped; "
            "to scale them by it anyway, pass error_if_nonfinite=False"
        )
    return Tensor(np.asarray(total))


def clip_grads_with_norm_(parameters: Tensor | Iterable[Tensor], max_norm: float, total_norm: Any) -> None:
    """Scale the gradients by ``min(max_norm / (total_norm + 1e-6), 1)``, given their total norm."""
    params = _parameter_list("clip_grads_with_norm_", parameters)
    max_norm = _max_norm("clip_grads_with_norm_", max_norm)
    grads = _grad_arrays(params)
    if not grads:
        return
    total = np.asarray(total_norm.data if isinstance(total_norm, Tensor) else total_norm)
    # The coefficient in the norm's dtype, as PyTorch computes it (a float32 norm gives a float32 factor).
    coefficient = np.minimum(max_norm / (total + total.dtype.type(1e-6)), total.dtype.type(1.0))
    for grad in grads:
        grad *= coefficient.astype(grad.dtype)


def _max_norm(function: str, max_norm: Any) -> float:
    if isinstance(max_norm, bool) or not isinstance(max_norm, numbers.Real) or not max_norm >= 0:
        raise ValueError(f"{function}: max_norm must be a number >= 0, got {max_norm!r}")
    return float(max_norm)


def clip_grad_norm_(
    parameters: Tensor | Iterable[Tensor],
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
) -> Tensor:
    """Scale all gradients together so that their total norm is at most `max_norm`; returns the norm before.

    The norm is of all gradients as one vector (``norm_type`` 2 by default, ``'inf'`` for the largest absolute
    value); each gradient is multiplied by ``min(max_norm / (norm + 1e-6), 1)``, as in PyTorch. Parameters
    without a gradient are skipped. With ``error_if_nonfinite=True`` a NaN or infinite norm raises
    RuntimeError instead of spreading NaN through every gradient::

        total = nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
    """
    params = _parameter_list("clip_grad_norm_", parameters)
    max_norm = _max_norm("clip_grad_norm_", max_norm)
    order = _norm_type("clip_grad_norm_", norm_type)
    grads = _grad_arrays(params)
    total = get_total_norm(grads, order, error_if_nonfinite)
    clip_grads_with_norm_(params, max_norm, total)
    return total


def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float) -> None:
    """Clamp every gradient element into ``[-clip_value, clip_value]``, in place (NaN stays NaN, as in PyTorch)."""
    params = _parameter_list("clip_grad_value_", parameters)
    if isinstance(clip_value, bool) or not isinstance(clip_value, numbers.Real) or not clip_value >= 0:
        raise ValueError(f"clip_grad_value_: clip_value must be a number >= 0, got {clip_value!r}")
    for grad in _grad_arrays(params):
        np.clip(grad, -clip_value, clip_value, out=grad)
