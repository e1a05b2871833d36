"""The default floating-point dtype, and how data becomes an ndarray.

Python numbers and lists become the default float dtype (float64 unless `set_default_dtype` changes it);
numpy arrays and numpy scalars keep their own dtype, as numpy would.
"""

from __future__ import annotations

from typing import Any

import numpy as np

DTypeLike = Any  # what numpy accepts as a dtype: np.float32, "float32", np.dtype(...)

_default_float = np.dtype(np.float64)


def get_default_dtype() -> np.dtype:
    """Return the dtype that Python numbers and lists become (float64 unless changed).

    >>> get_default_dtype()
    dtype('float64')
    """
    return _default_float


def set_default_dtype(dtype: DTypeLike) -> None:
    """Set the dtype that Python numbers, lists and new layers' parameters get.

    Only floating-point dtypes are accepted, as in PyTorch::

        tinygrad_nn.set_default_dtype("float32")
    """
    global _default_float
    resolved = np.dtype(dtype)
    if resolved.kind != "f":
        raise TypeError(f"set_default_dtype() takes a floating-point dtype, got {resolved}")
    _default_float = resolved


def as_array(data: Any, dtype: DTypeLike | None = None) -> np.ndarray:
    """Turn `data` into an ndarray by the package's dtype rules (no copy when none is needed)."""
    if isinstance(data, (np.ndarray, np.generic)):
        array = np.asarray(data, dtype=dtype)
    else:
        try:
            array = np.asarray(data, dtype=_default_float if dtype is None else dtype)
        except (ValueError, TypeError) as error:
            raise TypeError(f"cannot make a tensor from {type(data).__name__} {_short(data)}: {error}") from error
    if array.dtype.kind not in "fiub":
        raise TypeError(f"tensors hold real numbers (float, int, unsigned or bool data); got dtype {array.dtype}")
    return array


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
