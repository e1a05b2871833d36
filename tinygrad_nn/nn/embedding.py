"""Embedding, as ``torch.nn.Embedding``: a learnable table of vectors, looked up by integer index."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import functions
from ..dtypes import DTypeLike, get_default_dtype
from ..tensor import Tensor
from . import functional as F  # noqa: N812 - PyTorch's customary name
from . import init
from .module import Module, Parameter

__all__ = ["Embedding"]


class Embedding(Module):
    """A table `weight` (num_embeddings, embedding_dim); indices of any shape give their rows: (*indices, dim).

    Initialised from N(0, 1) as PyTorch (the default generator, or `reset_parameters(generator)`); the row
    `padding_idx` starts at zero and gets no gradient::

        embed = nn.Embedding(10_000, 64)
        vectors = embed(token_ids)         # (batch, length) integers -> (batch, length, 64)

    `max_norm`, `scale_grad_by_freq` and `sparse` are not supported (an error says so).
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: int | None = None,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        sparse: bool = False,
        _weight: Any = None,
        _freeze: bool = False,
        dtype: DTypeLike | None = None,
    ) -> None:
        super().__init__()
        for name, value in (("num_embeddings", num_embeddings), ("embedding_dim", embedding_dim)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"Embedding: {name} must be a positive integer, got {value!r}")
        if max_norm is not None or scale_grad_by_freq or sparse:
            raise NotImplementedError(
                "Embedding: max_norm, scale_grad_by_freq and sparse are not supported; leave them at their defaults"
            )
        self.num_embeddings = int(num_embeddings)
        self.embedding_dim = int(embedding_dim)
        self.padding_idx = F._padding_index("Embedding", padding_idx, self.num_embeddings)
        self.max_norm = max_norm
        self.norm_type = norm_type
        self.scale_grad_by_freq = scale_grad_by_freq
        self.sparse = sparse
        if _weight is None:
            dtype = get_default_dtype() if dtype is None else np.dtype(dtype)
            self.weight = Parameter(np.empty((self.num_embeddings, self.embedding_dim), dtype=dtype))
            self.reset_parameters()
        else:
            array = np.array(_weight.data if isinstance(_weight, Tensor) else _weight, dtype=dtype)
            if array.shape != (self.num_embeddings, self.embedding_dim):
                raise ValueError(
                    f"Embedding: _weight must have shape ({self.num_embeddings}, {self.embedding_dim}), "
                    f"got {array.shape}"
                )
            self.weight = Parameter(array, requires_grad=not _freeze)

    @classmethod
    def from_pretrained(
        cls, embeddings: Any, freeze: bool = True, padding_idx: int | None = None, dtype: DTypeLike | None = None
    ) -> Embedding:
        """An Embedding holding a copy of `embeddings` (rows, dim), frozen (no gradient) unless `freeze=False`."""
        array = np.asarray(embeddings.data if isinstance(embeddings, Tensor) else embeddings)
        if array.ndim != 2:
            raise ValueError(f"Embedding.from_pretrained: embeddings must be 2-D (rows, dim), got shape {array.shape}")
        return cls(*array.shape, padding_idx=padding_idx, _weight=array, _freeze=freeze, dtype=dtype)

    def reset_parameters(self, generator: np.random.Generator | None = None) -> None:
        """Draw the table from N(0, 1); the padding row, if any, is zero."""
        init.normal_(self.weight, 0.0, 1.0, generator)
        if self.padding_idx is not None:
            self.weight.data[self.padding_idx] = 0

    def forward(self, indices: Any) -> Tensor:
        """The rows at `indices` (integers in [0, num_embeddings)), shape (*indices.shape, embedding_dim)."""
        array = indices.data if isinstance(indices, Tensor) else np.asarray(indices)
        if array.dtype.kind not in "iu":
            raise TypeError(
                f"Embedding({self.num_embeddings}, {self.embedding_dim}) takes integer indices, got dtype {array.dtype}"
            )
        if array.size and (array.min() < 0 or array.max() >= self.num_embeddings):
            bad = int(array.min() if array.min() < 0 else array.max())
            raise IndexError(
                f"Embedding({self.num_embeddings}, {self.embedding_dim}) got index {bad}; indices must be in "
                f"[0, {self.num_embeddings})"
            )
        # A Tensor of indices goes in as it is, so that an exporter sees it as the model's input, not a constant.
        lookup = indices if isinstance(indices, Tensor) else array
        return functions.Embedding.apply(lookup, self.weight, padding_idx=self.padding_idx)

    def extra_repr(self) -> str:
        """The layer's settings, as PyTorch prints them."""
        text = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            text += f", padding_idx={self.padding_idx}"
        return text
