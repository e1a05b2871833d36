"""`save` and `load`: a state dict as a plain ``.npz`` archive or a ``.safetensors`` file, never unpickled.

Two formats, chosen by the file name when saving and by the content when loading:

- ``.npz`` (the default for any other name): a zip of ``.npy`` arrays, exactly what ``numpy.savez`` writes,
  readable by numpy alone;
- ``.safetensors``: the format of Hugging Face's `safetensors` package (an optional extra,
  ``pip install safetensors``), which PyTorch reads with ``safetensors.torch.load_file``. Its header can carry
  text metadata (`load_metadata` reads it back).

Loading is written for files from anywhere: every size a file claims is checked against the bytes it holds
before anything is allocated, so a damaged or hostile file raises `ValueError` naming the file (and the array)
instead of exhausting memory, and no load allocates much more than the file's own size.
"""

from __future__ import annotations

import ast
import contextlib
import json
import math
import os
import secrets
import socket
import stat
import struct
import warnings
import zipfile
import zlib
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from .tensor import Tensor

__all__ = ["load", "load_metadata", "save"]

PathLike = str | os.PathLike

# A zip member's name length is a 16-bit field, and the name is "<key>.npy".
_MAX_NPZ_NAME_BYTES = 0xFFFF - len(".npy")
# numpy's own default limit for a .npy header (numpy.lib.format's max_header_size).
_MAX_NPY_HEADER_BYTES = 10000
# The safetensors package refuses headers over 100 MB; so do we, before reading one.
_MAX_SAFETENSORS_HEADER_BYTES = 100_000_000
_READ_CHUNK_BYTES = 1 << 20
# In the name of a file `save` is writing, so that a crash leaves a file that is obviously safe to delete, and
# that the next save into the same folder recognises and removes.
_PARTIAL_MARK = ".tinygrad-nn-partial."

# safetensors dtype names and the numpy dtypes they hold (little-endian, as the format stores them).
_SAFETENSORS_DTYPES: dict[str, np.dtype] = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U64": np.dtype("<u8"),
    "U32": np.dtype("<u4"),
    "U16": np.dtype("<u2"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
    "C64": np.dtype("<c8"),
}
_SAFETENSORS_NAMES = {dtype.newbyteorder("="): name for name, dtype in _SAFETENSORS_DTYPES.items()}
# Dtypes of the format that numpy cannot hold, with their item sizes: bfloat16 is converted (with a warning),
# the others are refused by name.
_FOREIGN_SAFETENSORS_DTYPES = {"BF16": 2, "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1, "F4": 1, "F6_E2M3": 1}


# -------------------------------------------------------------------------------------------------------------
# save
# -------------------------------------------------------------------------------------------------------------


def save(state_dict: Mapping[str, Any], path: PathLike, metadata: Mapping[str, str] | None = None) -> None:
    """Write a state dict (names to arrays or Tensors) to `path`: ``.safetensors`` by its suffix, else ``.npz``.

    A ``.npz`` holds each array as one ``<name>.npy`` member of an uncompressed zip, exactly what
    ``numpy.savez`` writes (but any name works, even ``file``); read it back with `load` or with
    ``numpy.load(path, allow_pickle=False)``. A path ending in ``.safetensors`` is written with the
    `safetensors` package (``pip install safetensors``), which PyTorch and most other frameworks read; its header
    carries ``metadata`` (text keys and values; `load_metadata` reads them back) besides ``format: pt`` and the
    ``producer``. Keys, shapes and layouts are PyTorch's, so::

        tinygrad_nn.save(model.state_dict(), "model.safetensors")
        torch_model.load_state_dict(safetensors.torch.load_file("model.safetensors"))   # in PyTorch

    Every name and array is checked before anything is written, so a name the reader would refuse (a NUL
    character, or one too long for a zip member) is an error here, not an unreadable file later. The file is
    written to a temporary name beside `path`, flushed to disk and renamed, so a crash never leaves half a
    checkpoint; a temporary file left by a crashed process is removed by the next save into the same folder.
    The new file gets the permissions your umask gives (0644 under the usual 022), as ``numpy.savez``'s do.
    """
    if not isinstance(state_dict, Mapping):
        hint = "; pass model.state_dict()" if hasattr(state_dict, "state_dict") else ""
        raise TypeError(f"save() takes a mapping of names to arrays, got {type(state_dict).__name__}{hint}")
    path = Path(path)
    safetensors_format = path.suffix.lower() == ".safetensors"
    if metadata is not None and not safetensors_format:
        raise ValueError(
            f"save(): metadata= needs a .safetensors file, and {path} will be a .npz, which has no place for it"
        )
    arrays = {}
    for name, value in state_dict.items():
        _check_name(name, safetensors_format)
        array = np.asarray(value.data if isinstance(value, Tensor) else value)
        if array.dtype.hasobject:
            raise TypeError(f"save(): '{name}' holds Python objects, which a .npz without pickling cannot store")
        arrays[name] = array
    check_destination(path, "save()", "model.npz")
    if safetensors_format:
        safetensors_numpy = _import_safetensors()
        tensors = {name: _as_safetensors_array(name, array) for name, array in arrays.items()}
        header = _safetensors_metadata(metadata)
        write_atomically(path, lambda name: safetensors_numpy.save_file(tensors, name, metadata=header))
    else:
        write_atomically(path, lambda name: _write_npz(name, arrays))


def _check_name(name: Any, safetensors_format: bool) -> None:
    """Refuse, before anything is written, a key that could not be written or read back."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"save(): names must be non-empty strings, got {name!r}")
    if "\x00" in name:
        raise ValueError(f"save(): the name {name!r} holds a NUL character, which no file format here can store")
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError(f"save(): the name {name!r} cannot be written as UTF-8 ({error.reason})") from None
    if safetensors_format:
        if name == "__metadata__":
            raise ValueError("save(): '__metadata__' is reserved by the safetensors format; rename that array")
    elif len(encoded) > _MAX_NPZ_NAME_BYTES:
        raise ValueError(
            f"save(): the name {name[:40]!r}... is {len(encoded)} bytes long in UTF-8; a .npz member name holds at "
            f"most {_MAX_NPZ_NAME_BYTES} (a zip limit)"
        )


def check_destination(path: Path, caller: str, example_name: str) -> None:
    """Refuse, before any work, a path that cannot become a file: a missing folder, or a directory.

    Shared by `save` and `tinygrad_nn.onnx.export`, so both say the same thing about the same mistake.
    """
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(f"{caller}: the folder {folder} for {path} does not exist")
    if path.is_dir():
        raise IsADirectoryError(f"{caller}: {path} is a directory; give a file name such as {path / example_name}")


def _write_npz(file_name: str, arrays: dict[str, np.ndarray]) -> None:
    with open(file_name, "wb") as file, zipfile.ZipFile(file, "w", zipfile.ZIP_STORED) as archive:
        for name, array in arrays.items():
            with archive.open(name + ".npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, array, allow_pickle=False)


def write_atomically(path: Path, write: Callable[[str], None]) -> None:
    """Have `write` fill a new temporary file beside `path`, flush it to disk, then rename it to `path`."""
    folder = path.parent if str(path.parent) else Path(".")
    prefix = "." + path.name[:100] + _PARTIAL_MARK
    _remove_stale_partial_files(folder, prefix)
    temporary = folder / f"{prefix}{socket.gethostname()}.{os.getpid()}.{secrets.token_hex(4)}"
    # Created here with mode 0666 so that the umask decides the final permissions (mkstemp would force 0600).
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
    mode = stat.S_IMODE(os.fstat(descriptor).st_mode)
    os.close(descriptor)
    try:
        write(str(temporary))
        os.chmod(temporary, mode)  # a writer that replaced the file (safetensors' does) gave it a mode of its own
        # The data must be on disk before the rename makes it the checkpoint, or a power cut could leave a
        # renamed but empty file.
        with open(temporary, "rb+") as file:
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    with contextlib.suppress(OSError):  # not every file system lets a folder be opened and synced
        folder_descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(folder_descriptor)
        finally:
            os.close(folder_descriptor)


def _remove_stale_partial_files(folder: Path, prefix: str) -> None:
    """Delete temporary files for the same target that a process of this machine, now dead, left behind."""
    host = socket.gethostname()
    try:
        entries = [entry for entry in os.listdir(folder) if entry.startswith(prefix)]
    except OSError:
        return
    for entry in entries:
        try:
            writer_host, pid, _ = entry[len(prefix) :].rsplit(".", 2)
            if writer_host != host or _process_is_alive(int(pid)):
                continue
        except ValueError:
            continue
        with contextlib.suppress(OSError):
            (folder / entry).unlink()


def _process_is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


# -------------------------------------------------------------------------------------------------------------
# load
# -------------------------------------------------------------------------------------------------------------


def load(path: PathLike) -> OrderedDict[str, np.ndarray]:
    """Read a state dict written by `save` (or by ``numpy.savez``, or any ``.safetensors`` file); never unpickles.

    The format is recognised from the content (and the ``.safetensors`` suffix). Arrays come back as writable
    numpy arrays, in the order the file lists them. A ``.npz`` member holding Python objects is refused
    (unpickling a file can run any code), and so is a compressed member (`save` never writes one;
    ``numpy.savez_compressed`` does: load such a file with ``numpy.load`` and save it again). A safetensors
    ``BF16`` tensor is converted to float32 with a warning, since numpy has no bfloat16; 8-bit float formats
    are refused by name.

    A truncated, damaged or foreign file, or one whose header claims more bytes than it holds, raises
    `ValueError` naming the file and, when it can, the array, before anything of the claimed size is
    allocated. A path that is a directory, a FIFO or a device is refused as not a regular file.
    """
    path = Path(path)
    with _open_regular_file(path) as (file, size):
        start = file.read(10)
        file.seek(0)
        if path.suffix.lower() == ".safetensors" or _looks_like_safetensors(start, size):
            return _load_safetensors(path, file, size)[0]
        if start.startswith(b"\x93NUMPY"):
            raise ValueError(f"load(): {path} holds a single array, not a .npz archive of named arrays")
        return _load_npz(path, file, size)


def load_metadata(path: PathLike) -> dict[str, str]:
    """The text metadata in a ``.safetensors`` file's header (what ``save(..., metadata=...)`` wrote), keys sorted.

    Files written by `save` carry ``format`` (``"pt"``: PyTorch's layout) and ``producer`` (this library and its
    version) besides your own keys. The format keeps no order for them (the `safetensors` package writes them in
    a different order each run), so they come back sorted by key, the same every time. A ``.npz`` has no
    metadata: the result is ``{}``. Only the header is read::

        tinygrad_nn.save(model.state_dict(), "model.safetensors", metadata={"recipe": "mlp 784-128-10"})
        tinygrad_nn.load_metadata("model.safetensors")["recipe"]     # 'mlp 784-128-10'
    """
    path = Path(path)
    with _open_regular_file(path) as (file, size):
        start = file.read(10)
        file.seek(0)
        if path.suffix.lower() == ".safetensors" or _looks_like_safetensors(start, size):
            metadata = _read_safetensors_header(path, file, size)[0]
            return {key: metadata[key] for key in sorted(metadata)}
        if start.startswith(b"PK"):
            return {}
    raise ValueError(f"load_metadata(): {path} is neither a .safetensors file nor a .npz archive")


@contextlib.contextmanager
def _open_regular_file(path: Path) -> Any:
    """Open `path` for reading and yield ``(file, size)``; refuse what is not a regular file before reading it."""
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; it has no effect on a regular file.
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise FileNotFoundError(f"load(): no such file: {path}") from None
    except IsADirectoryError:
        raise ValueError(f"load(): {path} is a directory, not a state dict file") from None
    info = os.fstat(descriptor)
    if not stat.S_ISREG(info.st_mode):
        os.close(descriptor)
        if stat.S_ISDIR(info.st_mode):
            raise ValueError(f"load(): {path} is a directory, not a state dict file")
        kind = "a FIFO" if stat.S_ISFIFO(info.st_mode) else "a device or a socket"
        raise ValueError(f"load(): {path} is not a regular file (it is {kind}), so it cannot be a state dict")
    with os.fdopen(descriptor, "rb") as file:
        yield file, info.st_size


# -------------------------------------------------------------------------------------------------------------
# .npz: a zip of .npy members, read by hand so that nothing is allocated before it is checked
# -------------------------------------------------------------------------------------------------------------
#
# Python's zipfile would build an object per central-directory entry before anything could be checked, and
# inflates whatever a member claims; `save` only ever writes stored (uncompressed) members, so reading those
# takes a few struct layouts of the zip format (PKWARE's APPNOTE), and every size is checked on the way.

_EOCD = struct.Struct("<4s4H2LH")  # end of central directory
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_EOCD = struct.Struct("<4sQ2H2L4Q")
_CENTRAL_ENTRY = struct.Struct("<4s6H3L5H2L")
_LOCAL_HEADER = struct.Struct("<4s5H3L2H")


class _Member:
    __slots__ = ("crc", "name", "name_bytes", "offset", "size")

    def __init__(self, name: str, name_bytes: bytes, offset: int, size: int, crc: int) -> None:
        self.name, self.name_bytes, self.offset, self.size, self.crc = name, name_bytes, offset, size, crc


def _load_npz(path: Path, file: BinaryIO, size: int) -> OrderedDict[str, np.ndarray]:
    members = _read_central_directory(path, file, size)
    state: OrderedDict[str, np.ndarray] = OrderedDict()
    for member in members:
        if not member.name.endswith(".npy"):
            raise ValueError(f"load(): {path} is not a state dict: its member '{member.name}' is not a .npy array")
        key = member.name[: -len(".npy")]
        if key in state:
            raise ValueError(f"load(): {path} is damaged: it holds '{key}' twice")
        state[key] = _read_npy_member(path, file, member, key)
    return state


def _not_npz(path: Path, reason: str) -> ValueError:
    return ValueError(f"load(): {path} is not a readable .npz state dict ({reason})")


def _read_central_directory(path: Path, file: BinaryIO, size: int) -> list[_Member]:
    """The members the zip's central directory lists, each checked to lie inside the file, apart from the rest."""
    tail_size = min(size, _EOCD.size + 0xFFFF)  # the end record, then a comment of at most 64 KiB
    file.seek(size - tail_size)
    tail = file.read(tail_size)
    position = tail.rfind(b"PK\x05\x06")
    if position < 0 or len(tail) - position < _EOCD.size:
        raise _not_npz(path, "no zip directory at its end: the file is truncated, or not a zip archive")
    _, disk, cd_disk, _, count, cd_size, cd_offset, _ = _EOCD.unpack_from(tail, position)
    eocd_offset = size - tail_size + position
    if 0xFFFF in (count, disk) or 0xFFFFFFFF in (cd_size, cd_offset):
        count, cd_size, cd_offset, eocd_offset = _read_zip64_end(path, file, eocd_offset)
    elif disk != 0 or cd_disk != 0:
        raise _not_npz(path, "it is one part of a multi-part zip")
    if cd_offset + cd_size > eocd_offset:
        raise _not_npz(path, f"its directory claims {cd_size} bytes at offset {cd_offset}, beyond its end")
    # Every entry takes at least 46 bytes; a count the directory cannot hold is a lie, whatever follows.
    if count * _CENTRAL_ENTRY.size > cd_size:
        raise _not_npz(path, f"its directory claims {count} members but has room for {cd_size // 46} at most")
    file.seek(cd_offset)
    directory = file.read(cd_size)
    members = []
    position = 0
    for _ in range(count):
        if position + _CENTRAL_ENTRY.size > len(directory):
            raise _not_npz(path, "its directory is cut short")
        fields = _CENTRAL_ENTRY.unpack_from(directory, position)
        signature, _, _, flags, method, _, _, crc, compressed, uncompressed, name_length, extra_length = fields[:12]
        comment_length, offset = fields[12], fields[16]
        if signature != b"PK\x01\x02":
            raise _not_npz(path, f"directory entry {len(members)} is damaged")
        start = position + _CENTRAL_ENTRY.size
        name_bytes = directory[start : start + name_length]
        extra = directory[start + name_length : start + name_length + extra_length]
        position = start + name_length + extra_length + comment_length
        if position > len(directory):
            raise _not_npz(path, "its directory is cut short")
        name = name_bytes.decode("utf-8" if flags & 0x800 else "cp437", errors="replace")
        compressed, uncompressed, offset = _zip64_sizes(extra, compressed, uncompressed, offset)
        if flags & 0x1:
            raise ValueError(f"load(): '{name}' in {path} is encrypted; save() never writes encrypted members")
        if method != zipfile.ZIP_STORED:
            raise ValueError(
                f"load(): '{name}' in {path} is compressed (zip method {method}); save() never compresses, and "
                "load() does not inflate members, whose real size is unknown until inflated. For a file from "
                "numpy.savez_compressed, load it with numpy.load and save it again with tinygrad_nn.save"
            )
        if compressed != uncompressed:
            raise ValueError(
                f"load(): '{name}' in {path} is damaged: stored, yet its sizes differ ({compressed} and "
                f"{uncompressed} bytes)"
            )
        members.append(_Member(name, name_bytes, offset, compressed, crc))
    # Each member's local header and data must lie before the directory and apart from every other member's:
    # otherwise a small file could list the same bytes a million times (a zip bomb without compression).
    end_of_previous = 0
    for member in sorted(members, key=lambda m: m.offset):
        if member.offset < end_of_previous:
            raise ValueError(f"load(): '{member.name}' in {path} overlaps another member: the file is damaged")
        end_of_previous = member.offset + _LOCAL_HEADER.size + len(member.name_bytes) + member.size
        if end_of_previous > cd_offset:
            raise ValueError(
                f"load(): '{member.name}' in {path} claims {member.size} bytes at offset {member.offset}, more "
                f"than the file holds before its directory (at offset {cd_offset}): the file is truncated or damaged"
            )
    return members


def _read_zip64_end(path: Path, file: BinaryIO, eocd_offset: int) -> tuple[int, int, int, int]:
    if eocd_offset < _ZIP64_LOCATOR.size:
        raise _not_npz(path, "its zip64 directory locator is missing")
    file.seek(eocd_offset - _ZIP64_LOCATOR.size)
    signature, _, zip64_offset, _ = _ZIP64_LOCATOR.unpack(file.read(_ZIP64_LOCATOR.size))
    if signature != b"PK\x06\x07" or zip64_offset + _ZIP64_EOCD.size > eocd_offset:
        raise _not_npz(path, "its zip64 directory locator is damaged")
    file.seek(zip64_offset)
    fields = _ZIP64_EOCD.unpack(file.read(_ZIP64_EOCD.size))
    if fields[0] != b"PK\x06\x06":
        raise _not_npz(path, "its zip64 directory record is damaged")
    count, cd_size, cd_offset = fields[7], fields[8], fields[9]
    return count, cd_size, cd_offset, zip64_offset


def _zip64_sizes(extra: bytes, compressed: int, uncompressed: int, offset: int) -> tuple[int, int, int]:
    """Replace the 32-bit fields that say 0xFFFFFFFF with their 64-bit values from the zip64 extra field."""
    position = 0
    while position + 4 <= len(extra):
        tag, length = struct.unpack_from("<2H", extra, position)
        body = extra[position + 4 : position + 4 + length]
        position += 4 + length
        if tag != 0x0001:
            continue
        values = list(struct.unpack_from(f"<{len(body) // 8}Q", body))
        if uncompressed == 0xFFFFFFFF and values:
            uncompressed = values.pop(0)
        if compressed == 0xFFFFFFFF and values:
            compressed = values.pop(0)
        if offset == 0xFFFFFFFF and values:
            offset = values.pop(0)
    return compressed, uncompressed, offset


def _read_npy_member(path: Path, file: BinaryIO, member: _Member, key: str) -> np.ndarray:
    def damaged(reason: str) -> ValueError:
        return ValueError(f"load(): {path} is truncated or damaged at '{key}' ({reason})")

    file.seek(member.offset)
    local = file.read(_LOCAL_HEADER.size)
    if len(local) < _LOCAL_HEADER.size or local[:4] != b"PK\x03\x04":
        raise damaged("its local zip header is missing")
    name_length, extra_length = _LOCAL_HEADER.unpack(local)[-2:]
    if file.read(name_length) != member.name_bytes:
        raise damaged("its local zip header names another member")
    data_offset = member.offset + _LOCAL_HEADER.size + name_length + extra_length
    file.seek(data_offset)
    preamble = file.read(min(member.size, 12))
    if not preamble.startswith(b"\x93NUMPY") or len(preamble) < 10:
        raise damaged("the member is not a .npy array")
    major = preamble[6]
    if major == 1:
        header_length, header_start = struct.unpack_from("<H", preamble, 8)[0], 10
    elif major in (2, 3) and len(preamble) == 12:
        header_length, header_start = struct.unpack_from("<L", preamble, 8)[0], 12
    else:
        raise damaged(f".npy format version {major} is unknown")
    if header_length > _MAX_NPY_HEADER_BYTES or header_start + header_length > member.size:
        raise damaged(f"its .npy header claims {header_length} bytes; the member holds {member.size}")
    file.seek(data_offset + header_start)
    header_bytes = file.read(header_length)
    dtype, shape, fortran_order = _parse_npy_header(header_bytes, major, damaged)
    if dtype.hasobject:
        raise ValueError(
            f"load(): '{key}' in {path} holds pickled Python objects; load() never unpickles, "
            "because unpickling a file can run any code"
        )
    # Python ints: a corrupt header's huge sizes cannot overflow into a plausible number.
    claimed = math.prod(shape) * dtype.itemsize
    held = member.size - header_start - header_length
    if claimed != held:
        raise ValueError(
            f"load(): '{key}' in {path} claims shape {shape} of {dtype} ({claimed} bytes), but its member holds "
            f"{held} bytes of data: the file is truncated, damaged or forged"
        )
    crc = zlib.crc32(header_bytes, zlib.crc32(preamble[:header_start]))
    array = np.empty(math.prod(shape), dtype=dtype)
    buffer = memoryview(array.view(np.uint8)) if array.size else memoryview(b"")
    filled = 0
    while filled < held:
        count = file.readinto(buffer[filled : filled + _READ_CHUNK_BYTES])
        if not count:
            raise damaged(f"the file ends {held - filled} bytes before the array does")
        crc = zlib.crc32(buffer[filled : filled + count], crc)
        filled += count
    if crc != member.crc:
        raise damaged("its zip CRC-32 does not match its bytes")
    if fortran_order:
        return array.reshape(shape[::-1]).T
    return array.reshape(shape)


def _parse_npy_header(header_bytes: bytes, major: int, damaged: Callable[[str], ValueError]) -> tuple:
    try:
        header = ast.literal_eval(header_bytes.decode("utf-8" if major == 3 else "latin1"))
    except (ValueError, SyntaxError, RecursionError, MemoryError, UnicodeDecodeError, TypeError):
        raise damaged("its .npy header is not a Python literal") from None
    if not isinstance(header, dict) or set(header) != {"descr", "fortran_order", "shape"}:
        raise damaged("its .npy header lacks descr, fortran_order or shape")
    shape = header["shape"]
    if not isinstance(shape, tuple) or not all(type(size) is int and size >= 0 for size in shape):
        raise damaged(f"its .npy shape {shape!r} is not a tuple of sizes")
    if not isinstance(header["fortran_order"], bool):
        raise damaged("its .npy fortran_order is not True or False")
    try:
        dtype = np.lib.format.descr_to_dtype(header["descr"])
    except (ValueError, TypeError, KeyError) as error:
        raise damaged(f"its .npy dtype {header['descr']!r} is not a numpy dtype: {error}") from None
    return dtype, shape, header["fortran_order"]


# -------------------------------------------------------------------------------------------------------------
# .safetensors
# -------------------------------------------------------------------------------------------------------------


def _import_safetensors() -> Any:
    try:
        import safetensors.numpy
    except ImportError:
        raise ImportError(
            "reading and writing .safetensors files needs the safetensors package: pip install safetensors "
            "(in a clone of tinygrad_nn, pip install -e '.[interop]' installs it)"
        ) from None
    return safetensors.numpy


def _as_safetensors_array(name: str, array: np.ndarray) -> np.ndarray:
    native = array.dtype.newbyteorder("=")
    if native not in _SAFETENSORS_NAMES:
        raise TypeError(
            f"save(): '{name}' has dtype {array.dtype}, which the safetensors format cannot store "
            f"(it holds {', '.join(str(d) for d in _SAFETENSORS_NAMES)}); cast it, or save to a .npz"
        )
    # The library reads the array's memory as it lies, so it must be contiguous and little-endian.
    # Not ascontiguousarray, which turns a 0-d array into shape (1,).
    return np.asarray(array, dtype=array.dtype.newbyteorder("<"), order="C")


def _safetensors_metadata(metadata: Mapping[str, str] | None) -> dict[str, str]:
    from . import __version__

    header = {"format": "pt", "producer": f"tinygrad_nn {__version__}"}
    if metadata is None:
        return header
    if not isinstance(metadata, Mapping):
        raise TypeError(f"save(): metadata must be a mapping of strings to strings, got {type(metadata).__name__}")
    for key, value in metadata.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError(
                f"save(): metadata holds text only, but {key!r}: {value!r} is not str: str "
                "(encode other values first, e.g. json.dumps(value))"
            )
    header.update(metadata)
    return header


def _looks_like_safetensors(start: bytes, size: int) -> bool:
    if len(start) < 9 or start[8:9] != b"{":
        return False
    header_length = int.from_bytes(start[:8], "little")
    return 2 <= header_length <= size - 8


def _read_safetensors_header(path: Path, file: BinaryIO, size: int) -> tuple[dict[str, str], list]:
    """The metadata and ``(key, dtype name, shape, begin, end)`` per tensor, every claim checked against the file."""

    def bad(reason: str) -> ValueError:
        return ValueError(f"load(): {path} is not a valid .safetensors file: {reason}")

    if size < 8:
        raise bad(f"{size} bytes is too short for its 8-byte header length")
    header_length = int.from_bytes(file.read(8), "little")
    if header_length > size - 8:
        raise bad(f"its header claims {header_length} bytes, but the file has only {size - 8} after the length")
    if header_length > _MAX_SAFETENSORS_HEADER_BYTES:
        raise bad(f"its header claims {header_length} bytes, over the format's limit of 100 MB")
    raw = file.read(header_length)
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_pairs_without_duplicates)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise bad(f"its header is not JSON ({error})") from None
    if not isinstance(header, dict):
        raise bad("its header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise bad("its __metadata__ is not an object of strings")
    data_size = size - 8 - header_length
    entries = []
    for key, entry in header.items():
        entries.append(_check_safetensors_entry(path, key, entry, data_size))
    # The format stores the tensors back to back: together they must fill the data area exactly, none overlapping.
    expected_begin = 0
    for key, _, _, begin, end in sorted(entries, key=lambda item: (item[3], item[4])):
        if begin != expected_begin:
            problem = (
                "overlaps another tensor"
                if begin < expected_begin
                else f"leaves a gap of {begin - expected_begin} bytes"
            )
            raise bad(f"tensor '{key}' at data offsets [{begin}, {end}] {problem}")
        expected_begin = end
    if expected_begin != data_size:
        raise bad(f"its tensors cover {expected_begin} bytes of data, but the file holds {data_size}")
    return dict(metadata), entries


def _pairs_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"the key {key!r} appears twice")
        result[key] = value
    return result


def _check_safetensors_entry(path: Path, key: str, entry: Any, data_size: int) -> tuple:
    def bad(reason: str) -> ValueError:
        return ValueError(f"load(): '{key}' in {path} {reason}")

    if not isinstance(entry, dict) or not {"dtype", "shape", "data_offsets"} <= set(entry):
        raise bad("lacks a dtype, shape or data_offsets in the header")
    dtype_name, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if dtype_name in _SAFETENSORS_DTYPES:
        itemsize = _SAFETENSORS_DTYPES[dtype_name].itemsize
    elif dtype_name in _FOREIGN_SAFETENSORS_DTYPES:
        itemsize = _FOREIGN_SAFETENSORS_DTYPES[dtype_name]
        if dtype_name != "BF16":
            raise bad(f"has dtype {dtype_name}, an 8-bit or smaller float that numpy cannot hold")
    else:
        raise bad(f"has dtype {dtype_name!r}, which is not a safetensors dtype tinygrad_nn can read")
    if not isinstance(shape, list) or not all(type(s) is int and s >= 0 for s in shape):
        raise bad(f"has shape {shape!r}, which is not a list of sizes")
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(type(o) is int for o in offsets)
        or not 0 <= offsets[0] <= offsets[1]
    ):
        raise bad(f"has data_offsets {offsets!r}, which are not [begin, end] with 0 <= begin <= end")
    begin, end = offsets
    claimed = math.prod(shape) * itemsize
    if claimed != end - begin:
        raise bad(f"claims shape {tuple(shape)} of {dtype_name} ({claimed} bytes) in data offsets [{begin}, {end}]")
    if end > data_size:
        raise bad(
            f"claims data offsets [{begin}, {end}], but the file holds only {data_size} bytes of data: "
            "it is truncated or forged"
        )
    return key, dtype_name, tuple(shape), begin, end


def _load_safetensors(path: Path, file: BinaryIO, size: int) -> tuple[OrderedDict[str, np.ndarray], dict[str, str]]:
    metadata, entries = _read_safetensors_header(path, file, size)
    data_start = size - sum(end - begin for _, _, _, begin, end in entries)
    state: OrderedDict[str, np.ndarray] = OrderedDict()
    converted = []
    standard = [entry for entry in entries if entry[1] in _SAFETENSORS_DTYPES]
    if standard:
        safetensors_numpy = _import_safetensors()
        try:
            with safetensors_numpy.safe_open(str(path), framework="np") as reader:
                tensors = {key: reader.get_tensor(key) for key, *_ in standard}
        except Exception as error:  # the library's SafetensorError, or an OSError: the file changed under us
            raise ValueError(f"load(): {path} could not be read by the safetensors package ({error})") from None
    for key, dtype_name, shape, begin, end in entries:
        if dtype_name == "BF16":
            # bfloat16 is the top half of a float32: shift its 16 bits up and reinterpret, exactly.
            file.seek(data_start + begin)
            bits = np.frombuffer(file.read(end - begin), dtype="<u2").astype(np.uint32) << 16
            state[key] = bits.view(np.float32).reshape(shape)
            converted.append(key)
        else:
            array = tensors.pop(key).reshape(shape)  # the shape checked above, whatever the package returned
            native = array.astype(array.dtype.newbyteorder("="), copy=False)
            state[key] = native if native.flags.writeable else native.copy()
    if converted:
        warnings.warn(
            f"load(): {path}: {', '.join(repr(k) for k in converted)} hold bfloat16, which numpy cannot; "
            "they were converted to float32 (exactly: every bfloat16 is a float32)",
            stacklevel=3,
        )
    return state, metadata
