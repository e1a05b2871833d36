"""`Primitive`, the base of every built-in op, and what the families share.

Rules every primitive follows (the engine in autograd.py relies on them):

- forward works on ndarrays (and Python numbers) and keeps what backward needs in ``ctx.inputs`` (the arrays of
  its first inputs, in order: exactly the inputs backward differentiates through), ``ctx.output`` (its result)
  and ``ctx._saved`` (anything else: shapes, axes, masks, which a second derivative treats as constants). Never
  keep a value derived from the inputs that backward differentiates through: recompute it in backward, so that
  under ``create_graph`` it is recomputed from graph-connected inputs;
- backward is written once, for ndarrays and for Tensors alike: operators, the methods both types have
  (``sum(axis=, keepdims=)``, ``reshape``, ``transpose``, ``.T``, ``.mT``, ``@``, indexing) and the functions of
  `tinygrad_nn.functions.xp`. It returns one gradient per forward input, in the *broadcast* shape of the output
  (the engine sums it down to each input's shape, in one place), and None for an input that needs no gradient,
  which is where ``ctx.parents[i] is None``;
- backward never writes into the gradient it receives, and never returns an array that something else holds
  (only the received gradient itself, views of it, or new arrays).

Python numbers in an op stay Python numbers, so numpy's rules for them apply (a float32 array times 2.0 stays
float32).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..autograd import Function

__all__ = ["Primitive"]


class Primitive(Function):
    """Base of the built-in primitives: no per-instance dict, and gradients the engine may keep without a copy."""

    __slots__ = ()
    _fresh_grads = True


def shape_of(value: Any) -> tuple:
    """The shape of an array, a Tensor or a number."""
    return np.shape(value)


def broadcast_error(name: str, symbol: str, a: Any, b: Any, error: ValueError | None = None) -> ValueError:
    """The ValueError an elementwise op raises: about the shapes when they do not broadcast, else numpy's own."""
    try:
        np.broadcast_shapes(shape_of(a), shape_of(b))
    except ValueError:
        return ValueError(
            f"{name}: {shape_of(a)} {symbol} {shape_of(b)}: these shapes do not broadcast together "
            "(compared from the last axis, each pair of sizes must be equal or one of them 1)"
        )
    return ValueError(f"{name}: {shape_of(a)} {symbol} {shape_of(b)}: {error}")


def kept_shape(shape: tuple, axis: Any) -> tuple:
    """`shape` with the reduced `axis` (an int, a tuple, or None for all) kept as size 1."""
    if axis is None:
        return (1,) * len(shape)
    axes = {a % len(shape) for a in (axis if isinstance(axis, tuple) else (axis,))}
    return tuple(1 if i in axes else size for i, size in enumerate(shape))
