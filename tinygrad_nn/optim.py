"""Optimizers and learning-rate schedulers with PyTorch's names, arguments and update rules.

``step()`` changes each parameter's ``.data`` in place and records nothing in any graph; ``zero_grad()`` clears
the gradients (to None, as PyTorch does by default). Parameters may be given as a list, or as a list of
parameter groups (dicts with a ``params`` entry and their own settings)::

    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    optimizer = optim.Adam([{"params": body.parameters()}, {"params": head.parameters(), "lr": 1e-2}], lr=1e-3)
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any

import numpy as np

from .tensor import Tensor

__all__ = ["SGD", "Adam", "AdamW", "CosineAnnealingLR", "ExponentialLR", "LRScheduler", "Optimizer", "StepLR"]


class Optimizer:
    """Base class: keeps `param_groups` (a list of dicts) and per-parameter `state`; subclasses define `step`."""

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]) -> None:
        if isinstance(params, Tensor):
            raise TypeError(
                f"{type(self).__name__} takes an iterable of parameters (such as model.parameters()), "
                "not a single Tensor; wrap it in a list"
            )
        groups = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        self.defaults = defaults
        self.param_groups: list[dict[str, Any]] = []
        self.state: dict[Tensor, dict[str, Any]] = {}
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters with its own settings (the rest come from the optimizer's defaults)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"a parameter group is a dict with a 'params' entry, got {type(param_group).__name__}")
        if "params" not in param_group:
            raise TypeError(f"a parameter group needs a 'params' entry; this one has {sorted(param_group)}")
        params = param_group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        for position, parameter in enumerate(params):
            if not isinstance(parameter, Tensor):
                raise TypeError(
                    f"{type(self).__name__} can only optimize Tensors; item {position} is a {type(parameter).__name__}"
                )
            if not parameter.is_leaf:
                raise ValueError(f"{type(self).__name__} can't optimize a computed (non-leaf) tensor, item {position}")
            if not parameter.requires_grad:
                raise ValueError(
                    f"{type(self).__name__} got item {position} with requires_grad=False: it would never change"
                )
        known = {id(p) for group in self.param_groups for p in group["params"]}
        if len({id(p) for p in params}) != len(params) or any(id(p) in known for p in params):
            raise ValueError("some parameters appear more than once, in this group or in another group")
        unknown = set(param_group) - set(self.defaults) - {"params", "initial_lr"}
        if unknown:
            raise TypeError(f"{type(self).__name__} has no setting {', '.join(sorted(unknown))}")
        group = {**self.defaults, **param_group, "params": params}
        self._check_settings(group)
        self.param_groups.append(group)

    def _check_settings(self, group: dict[str, Any]) -> None:
        lr = group["lr"]
        if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or lr < 0:
            raise ValueError(f"{type(self).__name__}: invalid learning rate {lr!r}; it must be a number >= 0")
        if group.get("weight_decay", 0) < 0:
            raise ValueError(f"{type(self).__name__}: invalid weight_decay {group['weight_decay']}; it must be >= 0")

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear every parameter's gradient: to None (the default, as in PyTorch), or to zeros."""
        for group in self.param_groups:
            for parameter in group["params"]:
                if set_to_none or parameter.grad is None:
                    parameter.grad = None
                else:
                    parameter.grad[...] = 0

    def step(self) -> None:
        """Update every parameter that has a gradient; subclasses define the rule."""
        raise NotImplementedError(f"{type(self).__name__} must define step()")

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for index, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {index}")
            lines.extend(f"    {key}: {value}" for key, value in sorted(group.items()) if key != "params")
        return "\n".join(lines) + "\n)"


class SGD(Optimizer):
    """Stochastic gradient descent, with PyTorch's momentum, dampening, Nesterov and weight decay.

    With momentum m: ``b = m * b + (1 - dampening) * g`` (b starts as g), then ``p -= lr * b``, or with
    Nesterov ``p -= lr * (g + m * b)``. Weight decay adds ``weight_decay * p`` to g first.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ) -> None:
        if momentum < 0:
            raise ValueError(f"SGD: invalid momentum {momentum}; it must be >= 0")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: Nesterov momentum needs momentum > 0 and dampening = 0")
        defaults = {"lr": lr, "momentum": momentum, "dampening": dampening, "weight_decay": weight_decay,
                    "nesterov": nesterov}  # fmt: skip
        super().__init__(params, defaults)

    def step(self) -> None:
        """Take one step of gradient descent."""
        for group in self.param_groups:
            lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
            weight_decay, nesterov = group["weight_decay"], group["nesterov"]
            for parameter in group["params"]:
                grad = parameter.grad
                if grad is None:
                    continue
                if weight_decay:
                    grad = grad + weight_decay * parameter.data
                if momentum:
                    state = self.state.setdefault(parameter, {})
                    buffer = state.get("momentum_buffer")
                    if buffer is None:
                        buffer = state["momentum_buffer"] = np.array(grad, copy=True)
                    else:
                        buffer *= momentum
                        buffer += (1 - dampening) * grad
                    grad = grad + momentum * buffer if nesterov else buffer
                parameter.data -= lr * grad


class Adam(Optimizer):
    """Adam (Kingma and Ba), as PyTorch computes it; `weight_decay` is an L2 term added to the gradient.

    ``m = b1 * m + (1 - b1) * g``, ``v = b2 * v + (1 - b2) * g**2``, then
    ``p -= lr / (1 - b1**t) * m / (sqrt(v) / sqrt(1 - b2**t) + eps)``; `amsgrad` uses the running max of v.
    """

    _decoupled = False

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
    ) -> None:
        if not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
            raise ValueError(f"{type(self).__name__}: betas must each be in [0, 1), got {betas}")
        if eps < 0:
            raise ValueError(f"{type(self).__name__}: invalid eps {eps}; it must be >= 0")
        defaults = {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay, "amsgrad": amsgrad}
        super().__init__(params, defaults)

    def step(self) -> None:
        """Take one Adam step."""
        for group in self.param_groups:
            lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
            weight_decay, amsgrad = group["weight_decay"], group["amsgrad"]
            for parameter in group["params"]:
                grad = parameter.grad
                if grad is None:
                    continue
                if weight_decay:
                    if self._decoupled:
                        parameter.data *= 1 - lr * weight_decay
                    else:
                        grad = grad + weight_decay * parameter.data
                state = self.state.setdefault(parameter, {})
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = np.zeros_like(parameter.data)
                    state["exp_avg_sq"] = np.zeros_like(parameter.data)
                    if amsgrad:
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


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov and Hutter): ``p *= 1 - lr * weight_decay`` each step."""

    _decoupled = True

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
    ) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)


# --------------------------------------------------------------------------------------------------------------
# Learning-rate schedulers
# --------------------------------------------------------------------------------------------------------------


class LRScheduler:
    """Base class: sets each group's ``lr`` from its ``initial_lr`` and the epoch count; call `step` per epoch.

    As in PyTorch, creating the scheduler applies the epoch-0 rate, and each `step()` (after
    ``optimizer.step()``) moves to the next epoch.
    """

    def __init__(self, optimizer: Optimizer) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__} takes an Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = 0
        self._apply()

    def rate(self, base_lr: float, epoch: int) -> float:
        """The learning rate at `epoch` for a group that started at `base_lr`; subclasses define it."""
        raise NotImplementedError(f"{type(self).__name__} must define rate()")

    def _apply(self) -> None:
        for group, base_lr in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = self.rate(base_lr, self.last_epoch)

    def step(self) -> None:
        """Move to the next epoch and set its learning rate."""
        self.last_epoch += 1
        self._apply()

    def get_last_lr(self) -> list[float]:
        """The learning rate of each group, as last set."""
        return [group["lr"] for group in self.optimizer.param_groups]


class StepLR(LRScheduler):
    """Multiply the rate by `gamma` every `step_size` epochs."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1) -> None:
        if step_size < 1:
            raise ValueError(f"StepLR: step_size must be >= 1, got {step_size}")
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(optimizer)

    def rate(self, base_lr: float, epoch: int) -> float:
        """``base_lr * gamma ** (epoch // step_size)``."""
        return base_lr * self.gamma ** (epoch // self.step_size)


class ExponentialLR(LRScheduler):
    """Multiply the rate by `gamma` every epoch."""

    def __init__(self, optimizer: Optimizer, gamma: float) -> None:
        self.gamma = gamma
        super().__init__(optimizer)

    def rate(self, base_lr: float, epoch: int) -> float:
        """``base_lr * gamma ** epoch``."""
        return base_lr * self.gamma**epoch


class CosineAnnealingLR(LRScheduler):
    """Anneal the rate from its start to `eta_min` along half a cosine over `T_max` epochs (no restarts)."""

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0) -> None:
        if T_max < 1:
            raise ValueError(f"CosineAnnealingLR: T_max must be >= 1, got {T_max}")
        self.T_max = T_max
        self.eta_min = eta_min
        super().__init__(optimizer)

    def rate(self, base_lr: float, epoch: int) -> float:
        """``eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2``."""
        return self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * epoch / self.T_max)) / 2
