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
        # First as numpy sees it, so that a None or a string in a list is an error instead of a NaN (a float
        # dtype would turn None into NaN without a word), then in the default float dtype.
        try:
            inferred = np.asarray(data)
        except (ValueError, TypeError) as error:
            raise TypeError(f"cannot make a tensor from {type(data).__name__} {_short(data)}: {error}") from error
        if inferred.dtype.kind not in "fiub":
            raise TypeError(
                f"cannot make a tensor from {type(data).__name__} {_short(data)}: tensors hold numbers, and this "
                f"holds {_what_is_not_a_number(inferred)}"
            )
        try:
            array = inferred.astype(_default_float if dtype is None else dtype, copy=False)
        except (ValueError, TypeError) as error:
            raise TypeError(f"cannot make a tensor from {type(data).__name__} {_short(data)}: {error}") from error
    if array.dtype.kind not in "fiub":
        raise TypeError(f"tensors hold real numbers (float, int, unsigned or bool data); got dtype {array.dtype}")
    return array


def _what_is_not_a_number(array: np.ndarray) -> str:
    if array.dtype.kind == "O":
        for item in array.flat:
            if not isinstance(item, (int, float, bool, np.number)):
                return f"{item!r} ({type(item).__name__})"
        return "Python objects"
    kinds = {"U": "strings", "S": "bytes", "c": "complex numbers (tensors are real)", "M": "dates", "m": "durations"}
    return kinds.get(array.dtype.kind, f"{array.dtype} data")


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
