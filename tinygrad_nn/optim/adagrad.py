"""`Adagrad`, as PyTorch computes it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ..autograd import in_place_stamp
from .optimizer import Optimizer, grad_array

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    """Adagrad (Duchi, Hazan and Singer), step for step as ``torch.optim.Adagrad``.

    ``s += g**2`` (s starts at `initial_accumulator_value`), then ``p -= clr * g / (sqrt(s) + eps)`` with the
    decayed rate ``clr = lr / (1 + (t - 1) * lr_decay)`` at step t. `weight_decay` adds ``weight_decay * p`` to
    g first. State per parameter, made when the parameter is added (as PyTorch does): ``step`` and ``sum``::

        optimizer = optim.Adagrad(model.parameters(), lr=0.1, lr_decay=1e-4)
    """

    _array_state = frozenset({"sum"})
    _number_state = frozenset({"step"})

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
        *,
        maximize: bool = False,
    ) -> None:
        defaults = {"lr": lr, "lr_decay": lr_decay, "eps": eps, "weight_decay": weight_decay,
                    "initial_accumulator_value": initial_accumulator_value, "maximize": maximize}  # fmt: skip
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group (see `Optimizer.add_param_group`) and start each new parameter's sum."""
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        for parameter in group["params"]:
            accumulator = np.full_like(parameter.data, group["initial_accumulator_value"])
            self.state[parameter] = {"step": 0, "sum": accumulator}

    def step(self) -> None:
        """Take one Adagrad step."""
        stamp = in_place_stamp()  # a graph recorded before this step must not use the new values
        for group in self.param_groups:
            lr, lr_decay, eps = group["lr"], group["lr_decay"], group["eps"]
            weight_decay, maximize = group["weight_decay"], group["maximize"]
            for parameter in group["params"]:
                grad = grad_array(parameter)
                if grad is None:
                    continue
                state = self.state.get(parameter)
                if not state:  # its state was not in a loaded state dict
                    state = self.state[parameter] = {
                        "step": 0,
                        "sum": np.full_like(parameter.data, group["initial_accumulator_value"]),
                    }
                state["step"] += 1
                if maximize:
                    grad = -grad
                if weight_decay:
                    grad = grad + weight_decay * parameter.data
                decayed_lr = lr / (1 + (state["step"] - 1) * lr_decay)
                accumulator = state["sum"]
                accumulator += grad * grad
                parameter.data -= decayed_lr * (grad / (np.sqrt(accumulator) + eps))
                parameter._modified_seq = stamp
