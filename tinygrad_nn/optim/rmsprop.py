"""`RMSprop`, as PyTorch computes it: plain, centered, with momentum."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ..autograd import in_place_stamp
from .optimizer import Optimizer, grad_array

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    """RMSprop (Hinton's lecture 6e), step for step as ``torch.optim.RMSprop``.

    ``v = alpha * v + (1 - alpha) * g**2``; the step divides g by ``sqrt(v) + eps``, or with ``centered=True``
    by ``sqrt(v - a**2) + eps`` where ``a = alpha * a + (1 - alpha) * g`` estimates the mean gradient. Without
    momentum ``p -= lr * g / denominator``; with it ``b = momentum * b + g / denominator`` and ``p -= lr * b``.
    `weight_decay` adds ``weight_decay * p`` to g first. State per parameter: ``step``, ``square_avg``, and
    ``momentum_buffer`` (with momentum) and ``grad_avg`` (centered)::

        optimizer = optim.RMSprop(model.parameters(), lr=1e-3, alpha=0.9, momentum=0.9, centered=True)
    """

    _array_state = frozenset({"square_avg", "momentum_buffer", "grad_avg"})
    _number_state = frozenset({"step"})

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        defaults = {"lr": lr, "alpha": alpha, "eps": eps, "weight_decay": weight_decay, "momentum": momentum,
                    "centered": centered, "maximize": maximize}  # fmt: skip
        super().__init__(params, defaults)

    def step(self) -> None:
        """Take one RMSprop step."""
        stamp = in_place_stamp()  # a graph recorded before this step must not use the new values
        for group in self.param_groups:
            lr, alpha, eps = group["lr"], group["alpha"], group["eps"]
            weight_decay, momentum, centered, maximize = (
                group["weight_decay"], group["momentum"], group["centered"], group["maximize"]
            )  # fmt: skip
            for parameter in group["params"]:
                grad = grad_array(parameter)
                if grad is None:
                    continue
                if maximize:
                    grad = -grad
                state = self.state.setdefault(parameter, {})
                if not state:
                    state["step"] = 0
                    state["square_avg"] = np.zeros_like(parameter.data)
                state["step"] += 1
                if weight_decay:
                    grad = grad + weight_decay * parameter.data
                square_avg = state["square_avg"]
                square_avg *= alpha
                square_avg += (1 - alpha) * grad * grad
                if centered:
                    grad_avg = state.setdefault("grad_avg", np.zeros_like(parameter.data))
                    # PyTorch's lerp towards g: the same rounding as its kernel for weights below one half.
                    grad_avg += (1 - alpha) * (grad - grad_avg)
                    denominator = np.sqrt(square_avg - grad_avg * grad_avg)
                else:
                    denominator = np.sqrt(square_avg)
                denominator += eps
                if momentum > 0:
                    buffer = state.setdefault("momentum_buffer", np.zeros_like(parameter.data))
                    buffer *= momentum
                    buffer += grad / denominator
                    parameter.data -= lr * buffer
                    parameter._modified_seq = stamp
                else:
                    parameter.data -= lr * (grad / denominator)
                    parameter._modified_seq = stamp
