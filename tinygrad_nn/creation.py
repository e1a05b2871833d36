"""Factories with PyTorch's names: `tensor`, `zeros`, `ones`, `full`, `arange`, `eye`, `rand`, `randn`, `*_like`.

Sizes are given as PyTorch does, ``zeros(2, 3)`` or ``zeros((2, 3))``. Floating-point results get the default
dtype (`tinygrad_nn.set_default_dtype`) unless `dtype` says otherwise; `rand` and `randn` draw from the package's
default generator, which `tinygrad_nn.manual_seed` resets. Every factory takes ``requires_grad`` (floating-point
results only).

`tensor` infers its dtype as ``torch.tensor`` does: whole numbers give int64, booleans bool, anything with a
fraction the default float dtype. (``Tensor(data)`` keeps the package's own rule, which makes every Python
number a float.)
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from .dtypes import DTypeLike, get_default_dtype
from .random import generator_or_default
from .tensor import Tensor

__all__ = [
    "arange",
    "empty",
    "empty_like",
    "eye",
    "full",
    "full_like",
    "ones",
    "ones_like",
    "rand",
    "rand_like",
    "randn",
    "randn_like",
    "tensor",
    "zeros",
    "zeros_like",
]


def _size(function: str, size: tuple) -> tuple[int, ...]:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    for item in size:
        if isinstance(item, bool) or not isinstance(item, numbers.Integral) or item < 0:
            raise ValueError(f"{function}: sizes must be whole numbers >= 0, got {size}")
    return tuple(int(item) for item in size)


def _float_dtype(function: str, dtype: DTypeLike | None) -> np.dtype:
    try:
        return get_default_dtype() if dtype is None else np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{function}: {dtype!r} is not a dtype (give np.float32, 'float64', ...)") from None


def _random_dtype(function: str, dtype: DTypeLike | None) -> np.dtype:
    """The dtype of random values: floating point only (an integer dtype would truncate them to 0, as torch refuses)."""
    chosen = _float_dtype(function, dtype)
    if chosen.kind != "f":
        raise TypeError(
            f"{function}: random values need a floating-point dtype, got dtype={chosen} (they would be truncated to "
            "it); pass dtype= a float dtype such as np.float32 or np.float64, or leave it out for the default"
        )
    return chosen


def _made(array: np.ndarray, requires_grad: bool) -> Tensor:
    return Tensor(array, requires_grad=requires_grad)


def tensor(data: Any, dtype: DTypeLike | None = None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of `data`, with ``torch.tensor``'s dtype rules (see the module's doc).

    >>> tensor([1, 2]).dtype, tensor([1.5]).dtype
    (dtype('int64'), dtype('float64'))
    """
    if isinstance(data, Tensor):
        data = data.data
    if dtype is None and not isinstance(data, (np.ndarray, np.generic)):
        try:
            kind = np.asarray(data).dtype.kind
        except (TypeError, ValueError):
            kind = "O"  # Tensor's own conversion below says what is wrong
        if kind in "iu":
            dtype = np.int64
        elif kind == "b":
            dtype = np.bool_
    return _made(np.array(Tensor(data, dtype=dtype).data, copy=True), requires_grad)


def zeros(*size: Any, dtype: DTypeLike | None = None, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros: ``zeros(2, 3)``."""
    return _made(np.zeros(_size("zeros", size), dtype=_float_dtype("zeros", dtype)), requires_grad)


def ones(*size: Any, dtype: DTypeLike | None = None, requires_grad: bool = False) -> Tensor:
    """A tensor of ones: ``ones(2, 3)``."""
    return _made(np.ones(_size("ones", size), dtype=_float_dtype("ones", dtype)), requires_grad)


def empty(*size: Any, dtype: DTypeLike | None = None, requires_grad: bool = False) -> Tensor:
    """A tensor whose values are whatever the memory held: fill it before use."""
    return _made(np.empty(_size("empty", size), dtype=_float_dtype("empty", dtype)), requires_grad)


def full(size: Any, fill_value: Any, dtype: DTypeLike | None = None, requires_grad: bool = False) -> Tensor:
    """A tensor of `size` filled with `fill_value`; the dtype follows the value (a float: the default dtype)."""
    size = _size("full", (size,) if not isinstance(size, (tuple, list)) else (tuple(size),))
    if dtype is None:
        if isinstance(fill_value, bool):
            dtype = np.bool_
        elif isinstance(fill_value, numbers.Integral):
            dtype = np.int64
        else:
            dtype = get_default_dtype()
    return _made(np.full(size, fill_value, dtype=dtype), requires_grad)


def arange(
    start: float, end: float | None = None, step: float = 1, dtype: DTypeLike | None = None,
    requires_grad: bool = False,
) -> Tensor:  # fmt: skip
    """Values from `start` up to (not including) `end` by `step`: int64 for whole numbers, else the default float."""
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError("arange: step must not be 0")
    if dtype is None:
        whole = all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in (start, end, step))
        dtype = np.int64 if whole else get_default_dtype()
    return _made(np.arange(start, end, step, dtype=dtype), requires_grad)


def eye(n: int, m: int | None = None, dtype: DTypeLike | None = None, requires_grad: bool = False) -> Tensor:
    """The `n` x `m` identity matrix (square when `m` is None)."""
    rows, columns = _size("eye", (n, n if m is None else m))
    return _made(np.eye(rows, columns, dtype=_float_dtype("eye", dtype)), requires_grad)


def rand(
    *size: Any,
    dtype: DTypeLike | None = None,
    requires_grad: bool = False,
    generator: np.random.Generator | None = None,
) -> Tensor:
    """Uniform values in [0, 1) from the default generator (or `generator`)."""
    dtype = _random_dtype("rand", dtype)
    values = generator_or_default(generator).random(_size("rand", size))
    return _made(values.astype(dtype, copy=False), requires_grad)


def randn(
    *size: Any,
    dtype: DTypeLike | None = None,
    requires_grad: bool = False,
    generator: np.random.Generator | None = None,
) -> Tensor:
    """Standard normal values from the default generator (or `generator`)."""
    dtype = _random_dtype("randn", dtype)
    values = generator_or_default(generator).standard_normal(_size("randn", size))
    return _made(values.astype(dtype, copy=False), requires_grad)


def _like(function: Any, like: Any, dtype: DTypeLike | None, requires_grad: bool, **extra: Any) -> Tensor:
    reference = like.data if isinstance(like, Tensor) else np.asarray(like)
    dtype = reference.dtype if dtype is None else dtype
    return function(reference.shape, dtype=dtype, requires_grad=requires_grad, **extra)


def zeros_like(input: Any, dtype: DTypeLike | None = None, requires_grad: bool = False) -> Tensor:
    """Zeros with the shape (and, unless `dtype` is given, the dtype) of `input`."""
    return _like(zeros, input, dtype, requires_grad)


def ones_like(input: Any, dtype: DTypeLike | None = None, requires_grad: bool = False) -> Tensor:
    """Ones with the shape (and dtype) of `input`."""
    return _like(ones, input, dtype, requires_grad)


def empty_like(input: Any, dtype: DTypeLike | None = None, requires_grad: bool = False) -> Tensor:
    """An unfilled tensor with the shape (and dtype) of `input`."""
    return _like(empty, input, dtype, requires_grad)


def full_like(input: Any, fill_value: Any, dtype: DTypeLike | None = None, requires_grad: bool = False) -> Tensor:
    """`fill_value` everywhere, with the shape (and dtype) of `input`."""
    reference = input.data if isinstance(input, Tensor) else np.asarray(input)
    return full(reference.shape, fill_value, dtype=reference.dtype if dtype is None else dtype,
                requires_grad=requires_grad)  # fmt: skip


def _random_like(function: str, factory: Any, like: Any, dtype: DTypeLike | None, requires_grad: bool) -> Tensor:
    reference = like.data if isinstance(like, Tensor) else np.asarray(like)
    if dtype is None and reference.dtype.kind != "f":
        raise TypeError(
            f"{function}: the input has dtype {reference.dtype}, and random values would be truncated to it (as "
            f"PyTorch, this is refused); pass dtype= a float dtype, e.g. {function}(x, dtype=np.float32)"
        )
    if dtype is not None:
        _random_dtype(function, dtype)
    return _like(factory, like, dtype, requires_grad)


def rand_like(input: Any, dtype: DTypeLike | None = None, requires_grad: bool = False) -> Tensor:
    """Uniform values in [0, 1) with the shape (and dtype) of `input`.

    The input must be floating point, or `dtype` a float dtype: an integer or bool dtype is a TypeError.
    """
    return _random_like("rand_like", rand, input, dtype, requires_grad)


def randn_like(input: Any, dtype: DTypeLike | None = None, requires_grad: bool = False) -> Tensor:
    """Standard normal values with the shape (and dtype) of `input`.

    The input must be floating point, or `dtype` a float dtype: an integer or bool dtype is a TypeError.
    """
    return _random_like("randn_like", randn, input, dtype, requires_grad)
