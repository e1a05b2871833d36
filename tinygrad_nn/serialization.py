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

    Each array is one ``<name>.npy`` member of a zip archive, exactly what ``numpy.savez`` writes (but any name
    works, even ``file``). The file is written to a temporary name and renamed, so a crash never leaves half a
    checkpoint. Read it back with `load`, or with ``numpy.load(path, allow_pickle=False)``::

        tinygrad_nn.save(model.state_dict(), "model.npz")
    """
    if not isinstance(state_dict, Mapping):
        hint = "; pass model.state_dict()" if hasattr(state_dict, "state_dict") else ""
        raise TypeError(f"save() takes a mapping of names to arrays, got {type(state_dict).__name__}{hint}")
    arrays = {}
    for name, value in state_dict.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"save(): names must be non-empty strings, got {name!r}")
        array = np.asarray(value.data if isinstance(value, Tensor) else value)
        if array.dtype.hasobject:
            raise TypeError(f"save(): '{name}' holds Python objects, which a .npz without pickling cannot store")
        arrays[name] = array
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(f"save(): the folder {folder} for {path} does not exist")
    handle, temporary = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(handle, "wb") as file, zipfile.ZipFile(file, "w", zipfile.ZIP_STORED) as archive:
            for name, array in arrays.items():
                with archive.open(name + ".npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, array, allow_pickle=False)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def load(path: PathLike) -> OrderedDict[str, np.ndarray]:
    """Read a state dict written by `save` (or by ``numpy.savez``), without ever unpickling.

    A member holding Python objects is refused (unpickling a file can run any code); a truncated, damaged or
    foreign file (not a zip of ``.npy`` arrays) raises `ValueError` naming it, and the member when it can.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"load(): {path} is a directory, not a .npz state dict")
    if not path.is_file():
        raise FileNotFoundError(f"load(): no such file: {path}")
    with open(path, "rb") as file:
        if file.read(6) == b"\x93NUMPY":
            raise ValueError(f"load(): {path} holds a single array, not a .npz archive of named arrays")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise ValueError(f"load(): {path} is not a readable .npz state dict ({error})") from None
    state = OrderedDict()
    with archive:
        for member in archive.infolist():
            if not member.filename.endswith(".npy"):
                raise ValueError(
                    f"load(): {path} is not a state dict: its member '{member.filename}' is not a .npy array"
                )
            name = member.filename[: -len(".npy")]
            try:
                with archive.open(member) as stream:
                    state[name] = np.lib.format.read_array(stream, allow_pickle=False)
            except ValueError as error:
                if "allow_pickle" in str(error) or "Object arrays" in str(error):
                    raise ValueError(
                        f"load(): '{name}' in {path} holds pickled Python objects; load() never unpickles, "
                        "because unpickling a file can run any code"
                    ) from None
                raise ValueError(f"load(): {path} is truncated or damaged at '{name}' ({error})") from None
            except (zipfile.BadZipFile, OSError, EOFError) as error:
                raise ValueError(f"load(): {path} is truncated or damaged at '{name}' ({error})") from None
    return state
