"""`save` and `load`: a state dict as a plain ``.npz`` archive, readable by numpy alone and never unpickled."""

from __future__ import annotations

import os
import tempfile
import zipfile
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .tensor import Tensor

__all__ = ["load", "save"]

PathLike = str | os.PathLike


def save(state_dict: Mapping[str, Any], path: PathLike) -> None:
    """Write a state dict (names to arrays or Tensors) to `path` as an uncompressed ``.npz``.

    The file is written to a temporary name and renamed, so a crash never leaves half a checkpoint; it can be
    read back with `load`, or with ``numpy.load(path, allow_pickle=False)``::

        tinygrad_nn.save(model.state_dict(), "model.npz")
    """
    if not isinstance(state_dict, Mapping):
        hint = "; pass model.state_dict()" if hasattr(state_dict, "state_dict") else ""
        raise TypeError(f"save() takes a mapping of names to arrays, got {type(state_dict).__name__}{hint}")
    arrays = {}
    for name, value in state_dict.items():
        if not isinstance(name, str):
            raise TypeError(f"save(): names must be strings, got {name!r}")
        array = np.asarray(value.data if isinstance(value, Tensor) else value)
        if array.dtype.hasobject:
            raise TypeError(f"save(): '{name}' holds Python objects, which a .npz without pickling cannot store")
        arrays[name] = array
    path = Path(path)
    handle, temporary = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez(file, **arrays)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def load(path: PathLike) -> OrderedDict[str, np.ndarray]:
    """Read a state dict written by `save` (or by ``numpy.savez``), without ever unpickling.

    A file holding Python objects is refused; a truncated or foreign file raises an error naming it.
    """
    path = Path(path)
    try:
        archive = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise FileNotFoundError(f"load(): no such file: {path}") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise ValueError(f"load(): {path} is not a readable .npz state dict ({error})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(f"load(): {path} holds a single array, not a .npz archive of named arrays")
    state = OrderedDict()
    with archive:
        for name in archive.files:
            try:
                state[name] = archive[name]
            except ValueError as error:
                if "allow_pickle" in str(error):
                    raise ValueError(
                        f"load(): '{name}' in {path} holds pickled Python objects; load() never unpickles, "
                        "because unpickling a file can run any code"
                    ) from None
                raise ValueError(f"load(): '{name}' in {path} is damaged ({error})") from None
            except (OSError, EOFError, zipfile.BadZipFile) as error:
                raise ValueError(f"load(): {path} is truncated or damaged at '{name}' ({error})") from None
    return state
