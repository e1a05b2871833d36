"""`SGD`: stochastic gradient descent with PyTorch's momentum, dampening, Nesterov, weight decay and maximize."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ..autograd import in_place_stamp
from .optimizer import Optimizer, grad_array

__all__ = ["SGD"]


class SGD(Optimizer):
    """Stochastic gradient descent, step for step as ``torch.optim.SGD``.

    With momentum m: ``b = m * b + (1 - dampening) * g`` (b starts as g), then ``p -= lr * b``, or with
    Nesterov ``p -= lr * (g + m * b)``. Weight decay adds ``weight_decay * p`` to g first; ``maximize=True``
    climbs the gradient instead. State per parameter: ``momentum_buffer`` (only with momentum)::

        optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    """

    _array_state = frozenset({"momentum_buffer"})

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        defaults = {"lr": lr, "momentum": momentum, "dampening": dampening, "weight_decay": weight_decay,
                    "nesterov": nesterov, "maximize": maximize}  # fmt: skip
        super().__init__(params, defaults)

    def _check_settings(self, group: dict[str, Any]) -> None:
        super()._check_settings(group)
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("SGD: Nesterov momentum needs momentum > 0 and dampening = 0")

    def step(self) -> None:
        """Take one step of gradient descent."""
        stamp = in_place_stamp()  # a graph recorded before this step must not use the new values
        for group in self.param_groups:
            lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
            weight_decay, nesterov, maximize = group["weight_decay"], group["nesterov"], group["maximize"]
            for parameter in group["params"]:
                grad = grad_array(parameter)
                if grad is None:
                    continue
                if maximize:
                    grad = -grad
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
                parameter._modified_seq = stamp
