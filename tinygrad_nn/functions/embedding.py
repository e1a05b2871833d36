"""Lookup tables: embedding.

A family of its own rather than a case of indexing: the index is the op's data (an integer array that flows
through the model, which ONNX calls ``Gather``), the table is the parameter, and the padding row gets no
gradient, which plain indexing has no way to say.
"""

from __future__ import annotations

import numpy as np

from . import xp
from .base import Primitive

__all__ = ["Embedding"]


class Embedding(Primitive):
    """``weight[indices]``: a row of the table (num_embeddings, embedding_dim) for each integer index.

    The gradient adds each upstream row into the row it was read from (rows read twice get both); the row
    `padding_idx` (when not None) gets none, as in PyTorch.
    """

    __slots__ = ()

    @staticmethod
    def forward(ctx, indices, weight, padding_idx=None):
        indices = np.asarray(indices)
        if indices.dtype.kind not in "iu":
            raise TypeError(f"embedding: indices must be integers, got dtype {indices.dtype}")
        if indices.size and (indices.min() < 0 or indices.max() >= weight.shape[0]):
            bad = indices.min() if indices.min() < 0 else indices.max()
            raise IndexError(
                f"embedding: index {int(bad)} is out of range for a table of {weight.shape[0]} rows "
                f"(indices must be in [0, {weight.shape[0]}))"
            )
        ctx._saved = (indices, weight.shape, padding_idx)
        return np.take(weight, indices, axis=0)

    @staticmethod
    def backward(ctx, grad):
        indices, shape, padding_idx = ctx._saved
        if padding_idx is not None:
            grad = xp.where((indices == padding_idx)[..., None], 0, grad)
        rows = grad.reshape((-1, shape[1]))
        return None, xp.scatter_add(rows, shape, (indices.reshape(-1),))
