"""Random masks: dropout.

A family of its own because its primitive is the only one that draws random numbers: the mask comes from the
package's seeded generator (`tinygrad_nn.random`) or from one passed in, and is a constant of the graph, kept
for backward and never redrawn.
"""

from __future__ import annotations

import numpy as np

from ..random import generator_or_default
from .base import Primitive

__all__ = ["Dropout", "dropout_mask"]


def dropout_mask(shape: tuple, p: float, dtype: np.dtype, generator: np.random.Generator | None) -> np.ndarray:
    """Each element kept with probability 1 - p, as ``1 / (1 - p)``, else 0: the factor dropout multiplies by.

    Drawn as PyTorch's ``bernoulli_(1 - p)``: an element is kept where a uniform draw in [0, 1) is below 1 - p.
    With p = 1 every element is dropped (the factor is 0, not 0 * inf).
    """
    if p == 1:
        return np.zeros(shape, dtype=dtype)
    draws = generator_or_default(generator).random(shape, dtype=np.float32 if dtype == np.float32 else np.float64)
    keep = draws < 1 - p
    mask = np.multiply(keep, 1 / (1 - p), dtype=dtype)
    return mask


class Dropout(Primitive):
    """``x * mask``: each element zeroed with probability `p`, the others scaled by ``1 / (1 - p)``.

    The mask is drawn in forward (from `generator`, or the default generator that `tinygrad_nn.manual_seed`
    resets) and kept: backward multiplies the gradient by the same mask, so the op is linear in x and
    differentiable to any order.
    """

    __slots__ = ()

    @staticmethod
    def forward(ctx, x, p=0.5, generator=None):
        dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float64)
        mask = dropout_mask(x.shape, p, dtype, generator)
        ctx._saved = (mask,)
        return x * mask

    @staticmethod
    def backward(ctx, grad):
        (mask,) = ctx._saved
        return grad * mask
