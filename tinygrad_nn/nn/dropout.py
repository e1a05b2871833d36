"""Dropout, as ``torch.nn.Dropout``: random zeros in training mode, nothing in eval mode."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import functions
from ..tensor import Tensor
from . import functional as F  # noqa: N812 - PyTorch's customary name
from .module import Module

__all__ = ["Dropout"]


class Dropout(Module):
    """In training mode, zero each element with probability `p` and scale the others by ``1 / (1 - p)``.

    In eval mode (``model.eval()``) it returns its input unchanged, so that the expected value is the same in
    both modes. The masks come from the package's default generator, which `tinygrad_nn.manual_seed` resets (or
    from `generator`). `inplace` is accepted for PyTorch's signature; the result is always a new tensor.
    `gradcheck` of a model in training mode with dropout fails with a message that says to call ``model.eval()``
    or to seed the function, since each call draws a new mask.
    """

    # gradcheck reads this to explain why a model's output changes from call to call.
    _stochastic_in_training = True

    def __init__(self, p: float = 0.5, inplace: bool = False, *, generator: np.random.Generator | None = None) -> None:
        super().__init__()
        self.p = F._check_probability("Dropout", p)
        self.inplace = inplace
        self.generator = generator

    def forward(self, x: Any) -> Tensor:
        """Apply dropout to `x` in training mode; return `x` itself in eval mode."""
        if not isinstance(x, Tensor):
            x = Tensor(x)
        if not self.training or self.p == 0:
            return x
        return functions.Dropout.apply(x, p=self.p, generator=self.generator)

    def extra_repr(self) -> str:
        """The layer's settings, as PyTorch prints them."""
        return f"p={self.p}, inplace={self.inplace}"
