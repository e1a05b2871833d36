"""`Adam` and `AdamW`, as PyTorch computes them."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from ..autograd import in_place_stamp
from .optimizer import Optimizer, grad_array

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    """Adam (Kingma and Ba), step for step as ``torch.optim.Adam``.

    ``m = b1 * m + (1 - b1) * g``, ``v = b2 * v + (1 - b2) * g**2``, then
    ``p -= lr / (1 - b1**t) * m / (sqrt(v) / sqrt(1 - b2**t) + eps)``; `amsgrad` uses the running maximum of v.
    `weight_decay` adds ``weight_decay * p`` to g, or with ``decoupled_weight_decay=True`` (which is `AdamW`)
    shrinks p by ``1 - lr * weight_decay`` first. State per parameter: ``step``, ``exp_avg``, ``exp_avg_sq`` and,
    with amsgrad, ``max_exp_avg_sq``.
    """

    _array_state = frozenset({"exp_avg", "exp_avg_sq", "max_exp_avg_sq"})
    _number_state = frozenset({"step"})

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        decoupled_weight_decay: bool = False,
    ) -> None:
        defaults = {"lr": lr, "betas": _pair(type(self).__name__, betas), "eps": eps, "weight_decay": weight_decay,
                    "amsgrad": amsgrad, "maximize": maximize,
                    "decoupled_weight_decay": decoupled_weight_decay}  # fmt: skip
        super().__init__(params, defaults)

    def _check_settings(self, group: dict[str, Any]) -> None:
        super()._check_settings(group)
        betas = _pair(type(self).__name__, group["betas"])
        if not all(isinstance(b, (int, float, np.floating)) and 0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"{type(self).__name__}: betas must each be in [0, 1), got {group['betas']}")

    def step(self) -> None:
        """Take one Adam step."""
        stamp = in_place_stamp()  # a graph recorded before this step must not use the new values
        for group in self.param_groups:
            lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
            weight_decay, amsgrad, maximize = group["weight_decay"], group["amsgrad"], group["maximize"]
            decoupled = group["decoupled_weight_decay"]
            for parameter in group["params"]:
                grad = grad_array(parameter)
                if grad is None:
                    continue
                if maximize:
                    grad = -grad
                if weight_decay:
                    if decoupled:
                        parameter.data *= 1 - lr * weight_decay
                    else:
                        grad = grad + weight_decay * parameter.data
                state = self.state.setdefault(parameter, {})
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = np.zeros_like(parameter.data)
                    state["exp_avg_sq"] = np.zeros_like(parameter.data)
                if amsgrad and "max_exp_avg_sq" not in state:
                    state["max_exp_avg_sq"] = np.zeros_like(parameter.data)
                state["step"] += 1
                step = state["step"]
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                exp_avg *= beta1
                exp_avg += (1 - beta1) * grad
                exp_avg_sq *= beta2
                exp_avg_sq += (1 - beta2) * grad * grad
                if amsgrad:
                    np.maximum(state["max_exp_avg_sq"], exp_avg_sq, out=state["max_exp_avg_sq"])
                    second_moment = state["max_exp_avg_sq"]
                else:
                    second_moment = exp_avg_sq
                step_size = lr / (1 - beta1**step)
                denominator = np.sqrt(second_moment) / math.sqrt(1 - beta2**step) + eps
                parameter.data -= step_size * exp_avg / denominator
                parameter._modified_seq = stamp


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov and Hutter): ``p *= 1 - lr * weight_decay`` each step.

    As ``torch.optim.AdamW``: `Adam` with ``decoupled_weight_decay=True`` and a default decay of 1e-2.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        super().__init__(
            params,
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            maximize=maximize,
            decoupled_weight_decay=True,
        )

    def _check_settings(self, group: dict[str, Any]) -> None:
        super()._check_settings(group)
        if not group["decoupled_weight_decay"]:
            raise ValueError("AdamW: decoupled_weight_decay is what makes it AdamW; it cannot be False (use Adam)")


def _pair(optimizer: str, betas: Any) -> tuple[Any, Any]:
    try:
        first, second = betas
    except (TypeError, ValueError):
        raise ValueError(f"{optimizer}: betas must be a pair (beta1, beta2), got {betas!r}") from None
    return first, second
