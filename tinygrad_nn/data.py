"""Data sets and batching: read IDX files, load MNIST, Fashion-MNIST and the 8x8 digits, and `DataLoader`.

Every loader returns ``(x_train, y_train), (x_test, y_test)`` by one rule: ``x`` is float32 scaled to [0, 1]
and flattened to ``(N, features)``; ``y`` holds int64 class indices of shape ``(N,)``.

The (Fashion-)MNIST loaders look for the four IDX files in ``root=`` if you give one, otherwise in
``$TINYGRAD_NN_DATA/<name>``, ``$TINYGRAD_NN_DATA``, the cache directory and the folder that an operating
system package installs into; they download into the cache only when none of these holds the files.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.client
import logging
import math
import operator
import os
import stat
import tempfile
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from .tensor import Tensor

__all__ = [
    "DATASET_SOURCES",
    "DataError",
    "DataLoader",
    "DatasetSource",
    "load_digits",
    "load_fashion_mnist",
    "load_mnist",
    "read_idx",
]

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DatasetSource:
    """Where the four IDX files of one data set come from, and how a download is checked.

    ``md5`` maps each file name to the published MD5 of the .gz file as the mirrors serve it, and ``sizes`` to
    its size in bytes (a download is cut off a little past it); ``mirrors`` are base URLs tried in order.
    ``system_dirs`` are folders an operating system package installs the files into.
    """

    title: str
    mirrors: tuple[str, ...]
    md5: dict[str, str]
    system_dirs: tuple[str, ...] = ()
    debian_package: str | None = None
    sizes: dict[str, int] = field(default_factory=dict)


# The published MD5s are of the .gz files as the mirrors serve them. Debian's dataset-fashion-mnist recompressed
# them (no file name in the gzip header, its build date as mtime), so its copies hash differently even though the
# compressed data is byte-for-byte the same; files found on disk are therefore validated by `read_idx` (magic,
# dtype, sizes, length, gzip CRC), and only downloads are checked against these sums.
DATASET_SOURCES: dict[str, DatasetSource] = {
    "fashion-mnist": DatasetSource(
        title="Fashion-MNIST",
        # https first: the S3 website endpoint serves plain http only, so it is the fallback.
        mirrors=(
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        ),
        md5={
            "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
        },
        system_dirs=("/usr/share/datasets/fashion-mnist",),
        debian_package="dataset-fashion-mnist",
        # Debian's copies are each 24 (train) or 23 (t10k) bytes smaller: the file name their gzip header omits.
        sizes={
            "train-images-idx3-ubyte.gz": 26421880,
            "train-labels-idx1-ubyte.gz": 29515,
            "t10k-images-idx3-ubyte.gz": 4422102,
            "t10k-labels-idx1-ubyte.gz": 5148,
        },
    ),
    # Debian has no MNIST package, so there is no system folder to look in.
    "mnist": DatasetSource(
        title="MNIST",
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ),
        md5={
            "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
        },
        sizes={
            "train-images-idx3-ubyte.gz": 9912422,
            "train-labels-idx1-ubyte.gz": 28881,
            "t10k-images-idx3-ubyte.gz": 1648877,
            "t10k-labels-idx1-ubyte.gz": 4542,
        },
    ),
}

"""Where each data set's four IDX files come from: ``"fashion-mnist"`` and ``"mnist"`` to a `DatasetSource` (its
mirrors, the published MD5 of each file, and the folders an operating system package installs them into)."""

_TRAIN_IMAGES, _TRAIN_LABELS = "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"
_TEST_IMAGES, _TEST_LABELS = "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"
_IDX_FILES = (_TRAIN_IMAGES, _TRAIN_LABELS, _TEST_IMAGES, _TEST_LABELS)

# How long one read may wait for the server, and how long a download may take before it must average at least
# _SLOWEST_DOWNLOAD_RATE bytes per second (from its start) or be abandoned: the whole download's deadline is
# this plus what its size takes at that rate, so a trickling server cannot hold a call for long.
_DOWNLOAD_TIMEOUT_SECONDS = 60
_SLOWEST_DOWNLOAD_RATE = 100_000
# A download may exceed the expected size by this much before it is cut off; with no expected size at all (an
# unknown file, no Content-Length), _MAX_DOWNLOAD_BYTES is the limit: more than any IDX file's.
_DOWNLOAD_SIZE_MARGIN = 64 * 1024
_MAX_DOWNLOAD_BYTES = 64 * 2**20
_GZIP_MAGIC = b"\x1f\x8b"
# DEFLATE cannot compress by more than about 1032 to 1, so a gzip file of n bytes holds at most about 1032 n.
_MAX_GZIP_RATIO = 1100
# How far past the data a gzip stream is read to tell how much too long it is, before saying only "more than".
_SURPLUS_PROBE_BYTES = 64 * 1024
_READ_CHUNK_BYTES = 1 << 20

# IDX stores every multi-byte number big-endian; the second name is what error messages call the type.
_IDX_DTYPES: dict[int, tuple[np.dtype, str]] = {
    0x08: (np.dtype(">u1"), "uint8"),
    0x09: (np.dtype(">i1"), "int8"),
    0x0B: (np.dtype(">i2"), "int16"),
    0x0C: (np.dtype(">i4"), "int32"),
    0x0D: (np.dtype(">f4"), "float32"),
    0x0E: (np.dtype(">f8"), "float64"),
}


class DataError(ValueError):
    """A data file is corrupt, truncated or not what it claims to be, or a data set cannot be found or fetched.

    The message names the file (or the places looked in) and what is wrong.
    """


# -------------------------------------------------------------------------------------------------------------
# IDX files
# -------------------------------------------------------------------------------------------------------------


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (the MNIST format), gzipped or raw, into a native-endian ndarray.

    Compression is detected from the gzip magic bytes, not the file name. The header is checked: two zero
    bytes, a known dtype code, the dimension sizes, and a data length equal to their product times the item
    size. Anything else raises `DataError` naming the file and the problem. A missing file raises
    `FileNotFoundError` as ``open`` would.

    The header is read first and the rest streamed: a gzip file is decompressed only as far as the data its
    header declares (and a little further, to tell how much too long it is), and nothing is allocated for more
    data than the file can hold, so a gzip bomb or a header claiming billions of values is a `DataError`, not
    an exhausted memory.

    >>> images = read_idx("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")  # doctest: +SKIP
    >>> images.shape, images.dtype  # doctest: +SKIP
    ((10000, 28, 28), dtype('uint8'))
    """
    path = Path(path)
    # O_NONBLOCK: opening a FIFO must not wait for a writer; it has no effect on a regular file.
    descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    mode = os.fstat(descriptor).st_mode
    if not stat.S_ISREG(mode):
        os.close(descriptor)
        kind = "a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "a device or a socket"
        raise DataError(f"{path}: not a regular file (it is {kind}), so not an IDX file")
    with os.fdopen(descriptor, "rb") as file:
        size = os.fstat(descriptor).st_size
        if file.read(2) != _GZIP_MAGIC:
            file.seek(0)
            shape, dtype, header_length = _read_idx_header(file, path, raw_size=size)
            array = np.empty(math.prod(shape), dtype=dtype)
            _fill(array, file, path)
        else:
            try:
                # Twice through the stream: first only counting the bytes after the header (nothing kept), so
                # that the array is allocated only once the data behind the header's claim is known to be there.
                file.seek(0)
                with gzip.GzipFile(fileobj=file, mode="rb") as stream:
                    shape, dtype, header_length = _read_idx_header(stream, path, gzip_size=size)
                file.seek(0)
                with gzip.GzipFile(fileobj=file, mode="rb") as stream:
                    stream.read(header_length)
                    array = np.empty(math.prod(shape), dtype=dtype)
                    _fill(array, stream, path)
            except EOFError as error:
                raise DataError(f"{path}: the gzip stream is truncated ({error})") from error
            except (OSError, zlib.error) as error:
                raise DataError(f"{path}: the gzip stream is corrupt ({error})") from error
    if dtype.itemsize > 1:
        array = array.byteswap(inplace=True)
    return array.view(dtype.newbyteorder("=")).reshape(shape)


def _read_idx_header(
    stream: BinaryIO, path: Path, raw_size: int | None = None, gzip_size: int | None = None
) -> tuple[tuple[int, ...], np.dtype, int]:
    """Read and check an IDX header, and that the data after it has the length the header declares.

    Returns the shape, the (big-endian) dtype and the header's length. An uncompressed file's size
    (`raw_size`) tells the data's length at once; a gzip stream's data is counted by reading it, keeping
    nothing, and only a little past the declared length; before that, the compressed file's size (`gzip_size`)
    rules out claims that no gzip file of that size could hold.
    """
    head = stream.read(4)
    if len(head) < 4:
        raise DataError(f"{path}: {len(head)} bytes is too short for an IDX header (at least 4 bytes)")
    if head[0] != 0 or head[1] != 0:
        raise DataError(
            f"{path}: not an IDX file: it starts with bytes 0x{head[0]:02X} 0x{head[1]:02X}, "
            "an IDX file starts with two zero bytes"
        )
    type_code, ndim = head[2], head[3]
    if type_code not in _IDX_DTYPES:
        known = ", ".join(f"0x{code:02X} {name}" for code, (_, name) in _IDX_DTYPES.items())
        raise DataError(f"{path}: unknown IDX data type code 0x{type_code:02X} (known: {known})")
    big_endian_dtype, type_name = _IDX_DTYPES[type_code]
    header_length = 4 + 4 * ndim
    sizes = stream.read(4 * ndim)
    if len(sizes) < 4 * ndim:
        raise DataError(
            f"{path}: the header declares {ndim} dimensions, which needs {header_length} header bytes, "
            f"but the file has only {4 + len(sizes)} bytes"
        )
    shape = tuple(int(size) for size in np.frombuffer(sizes, dtype=">u4"))
    # Python ints, so that a corrupt header's huge sizes cannot overflow into a plausible number.
    expected_bytes = math.prod(shape) * big_endian_dtype.itemsize
    if gzip_size is not None and expected_bytes > _MAX_GZIP_RATIO * gzip_size:
        found: int | str = f"a gzip file of {gzip_size} bytes, which cannot hold more than about {1032 * gzip_size}"
    else:
        limit = expected_bytes + _SURPLUS_PROBE_BYTES + 1
        found = raw_size - header_length if raw_size is not None else _count_rest(stream, limit)
        if found == expected_bytes:
            return shape, big_endian_dtype, header_length
        if found > expected_bytes + _SURPLUS_PROBE_BYTES:
            found = f"more than {expected_bytes + _SURPLUS_PROBE_BYTES}"
    raise DataError(
        f"{path}: expected {expected_bytes} bytes of {type_name} data after the header (shape {shape}), found {found}"
    )


def _count_rest(stream: BinaryIO, limit: int) -> int:
    """Read on to the stream's end, or to `limit` bytes if it is longer, keeping nothing; return the count."""
    count = 0
    while count < limit and (chunk := stream.read(min(_READ_CHUNK_BYTES, limit - count))):
        count += len(chunk)
    return count


def _fill(array: np.ndarray, stream: BinaryIO, path: Path) -> None:
    """Read exactly ``array.nbytes`` bytes from `stream` into `array`, a chunk at a time."""
    buffer = memoryview(array.view(np.uint8)) if array.size else memoryview(bytearray())
    filled = 0
    while filled < len(buffer):
        chunk = stream.read(min(_READ_CHUNK_BYTES, len(buffer) - filled))
        if not chunk:
            raise DataError(f"{path}: the file changed while it was read ({filled} of {len(buffer)} bytes)")
        buffer[filled : filled + len(chunk)] = chunk
        filled += len(chunk)


# -------------------------------------------------------------------------------------------------------------
# Finding and downloading (Fashion-)MNIST
# -------------------------------------------------------------------------------------------------------------


def _cache_dir(name: str) -> Path:
    cache_home = os.environ.get("XDG_CACHE_HOME")
    base = Path(cache_home) if cache_home else Path.home() / ".cache"
    return base / "tinygrad_nn" / name


def _search_places(name: str, source: DatasetSource) -> list[tuple[Path, str]]:
    """The folders to look in when no root is given, each with why it is on the list."""
    places: list[tuple[Path, str]] = []
    data_home = os.environ.get("TINYGRAD_NN_DATA")
    if data_home:
        places.append((Path(data_home) / name, f"$TINYGRAD_NN_DATA/{name}"))
        places.append((Path(data_home), "$TINYGRAD_NN_DATA"))
    places.append((_cache_dir(name), "cache directory"))
    for system_dir in source.system_dirs:
        package = f" (Debian package {source.debian_package})" if source.debian_package else ""
        places.append((Path(system_dir), f"system folder{package}"))
    return places


def _idx_file_in(folder: Path, file_name: str) -> Path | None:
    """The file as shipped (.gz) or as unpacked by a user (no .gz), whichever is there."""
    for candidate in (folder / file_name, folder / file_name.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    return None


def _missing_files(folder: Path) -> list[str]:
    return [file_name for file_name in _IDX_FILES if _idx_file_in(folder, file_name) is None]


def _how_to_get_files(source: DatasetSource) -> str:
    ways = ["set TINYGRAD_NN_DATA to a folder holding the four files", "pass root= a folder holding them"]
    if source.debian_package:
        ways.insert(0, f"install the Debian package (apt-get install {source.debian_package})")
    return "On a machine without internet: " + "; or ".join(ways) + "."


def _download_file(url: str, destination: Path, expected_md5: str, expected_size: int | None = None) -> None:
    """Fetch `url` into `destination` atomically: a temporary file beside it, checked, then renamed.

    Bounded in size and in time: the body is cut off past the expected size (the smaller of the data set's
    table and the server's Content-Length) plus a small margin; and once ``_DOWNLOAD_TIMEOUT_SECONDS`` have
    passed, the transfer must have averaged ``_SLOWEST_DOWNLOAD_RATE`` since it started, besides each read's
    own timeout. So a server that trickles or never stops can neither hold the call nor fill the disk.
    Raises OSError or http.client.HTTPException when the transfer fails and DataError when a limit is hit or the
    checksum is wrong; in every case nothing is left behind.
    """
    descriptor, temporary_name = tempfile.mkstemp(
        dir=destination.parent, prefix=f".{destination.name}.", suffix=".part"
    )
    try:
        digest = hashlib.md5(usedforsecurity=False)
        started = time.monotonic()
        with os.fdopen(descriptor, "wb") as temporary_file:
            with urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT_SECONDS) as response:
                header = response.headers.get("Content-Length")
                promised = int(header) if header is not None and header.isdigit() else None
                if (
                    expected_size is not None
                    and promised is not None
                    and promised > expected_size + _DOWNLOAD_SIZE_MARGIN
                ):
                    raise DataError(f"the server offers {promised} bytes, but the file has {expected_size}")
                known = [size for size in (expected_size, promised) if size is not None]
                limit = min(known) + _DOWNLOAD_SIZE_MARGIN if known else _MAX_DOWNLOAD_BYTES
                received = 0
                # read1 returns what has arrived (up to the amount) instead of waiting for all of it, so the
                # limits are checked even while a server trickles a byte at a time.
                while chunk := response.read1(1 << 16):
                    received += len(chunk)
                    if received > limit:
                        raise DataError(f"the server sent more than {limit} bytes, more than the file can be; stopped")
                    elapsed = time.monotonic() - started
                    if elapsed > _DOWNLOAD_TIMEOUT_SECONDS and received < _SLOWEST_DOWNLOAD_RATE * elapsed:
                        raise DataError(
                            f"too slow: {received} bytes in {elapsed:.1f} s, under "
                            f"{_SLOWEST_DOWNLOAD_RATE // 1000} kB/s after the {_DOWNLOAD_TIMEOUT_SECONDS} s allowed "
                            "to get going; stopped"
                        )
                    digest.update(chunk)
                    temporary_file.write(chunk)
            # http.client's read(amount) returns b"" when the server hangs up early instead of raising, so a cut
            # transfer would otherwise surface only as a puzzling checksum mismatch.
            if promised is not None and received < promised:
                raise DataError(f"the connection closed early, after {received} of {promised} bytes")
            # Before the rename: a crash must not leave a renamed file whose data is still only in the page cache.
            temporary_file.flush()
            os.fsync(temporary_file.fileno())
        if digest.hexdigest() != expected_md5:
            raise DataError(f"MD5 mismatch: got {digest.hexdigest()}, expected {expected_md5}")
        os.replace(temporary_name, destination)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary_name)
        raise


def _download_missing(source: DatasetSource, folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DataError(
            f"cannot create {folder} to download {source.title} into: {error}. {_how_to_get_files(source)}"
        ) from error
    for file_name in _missing_files(folder):
        failures = []
        for mirror in source.mirrors:
            url = mirror + file_name
            _log.info("downloading %s to %s", url, folder)
            try:
                _download_file(url, folder / file_name, source.md5[file_name], source.sizes.get(file_name))
                break
            except (OSError, http.client.HTTPException, DataError) as error:
                failures.append(f"  {url}: {_describe_download_error(error)}")
        else:
            raise DataError(
                f"could not download {source.title}'s {file_name} into {folder}:\n"
                + "\n".join(failures)
                + f"\n{_how_to_get_files(source)}"
            )


def _describe_download_error(error: BaseException) -> str:
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    if isinstance(error, urllib.error.URLError):
        return f"cannot connect ({error.reason})"
    if isinstance(error, http.client.IncompleteRead):
        return f"the connection closed early, after {len(error.partial)} bytes ({error.expected} more expected)"
    return str(error) or type(error).__name__


def _find_or_download(name: str, root: str | os.PathLike[str] | None, download: bool) -> Path:
    source = DATASET_SOURCES[name]
    if root is not None:
        places = [(Path(root), "root=")]
        download_folder = Path(root)
    else:
        places = _search_places(name, source)
        download_folder = _cache_dir(name)
    for folder, _ in places:
        if not _missing_files(folder):
            return folder
    if not download:
        lines = [f"{source.title} not found, and download=False. Looked for {', '.join(_IDX_FILES)} in:"]
        for folder, reason in places:
            state = "no such folder" if not folder.is_dir() else "missing " + ", ".join(_missing_files(folder))
            lines.append(f"  {folder} ({reason}): {state}")
        if root is None and not os.environ.get("TINYGRAD_NN_DATA"):
            lines.append("  ($TINYGRAD_NN_DATA is not set)")
        lines.append(_how_to_get_files(source) + " Or call with download=True.")
        raise DataError("\n".join(lines))
    _download_missing(source, download_folder)
    return download_folder


def _load_idx_dataset(
    name: str, root: str | os.PathLike[str] | None, download: bool
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    folder = _find_or_download(name, root, download)
    splits = []
    for images_name, labels_name in ((_TRAIN_IMAGES, _TRAIN_LABELS), (_TEST_IMAGES, _TEST_LABELS)):
        images_path, labels_path = _idx_file_in(folder, images_name), _idx_file_in(folder, labels_name)
        assert images_path is not None and labels_path is not None  # _find_or_download made sure
        images, labels = read_idx(images_path), read_idx(labels_path)
        if images.ndim != 3:
            raise DataError(f"{images_path}: expected images of shape (N, rows, columns), found shape {images.shape}")
        if labels.ndim != 1 or len(labels) != len(images):
            raise DataError(
                f"{labels_path}: expected {len(images)} labels of shape ({len(images)},) to match {images_path}, "
                f"found shape {labels.shape}"
            )
        pixels = images.reshape(len(images), -1).astype(np.float32) / np.float32(255)
        splits.append((pixels, labels.astype(np.int64)))
    return splits[0], splits[1]


def load_fashion_mnist(
    root: str | os.PathLike[str] | None = None, download: bool = True
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Zalando's Fashion-MNIST: 60,000 training and 10,000 test 28x28 clothing images in 10 classes.

    Returns ``(x_train, y_train), (x_test, y_test)``: x float32 in [0, 1] of shape (N, 784), y int64 in 0..9.
    With ``root`` the files are looked for (and downloaded to) only there. Otherwise the search order is
    ``$TINYGRAD_NN_DATA/fashion-mnist``, ``$TINYGRAD_NN_DATA``, ``$XDG_CACHE_HOME/tinygrad_nn/fashion-mnist``
    (default ``~/.cache/tinygrad_nn/fashion-mnist``), then ``/usr/share/datasets/fashion-mnist`` (Debian's
    dataset-fashion-mnist); if none holds the four files they are downloaded into the cache directory and
    checked against their published MD5s. ``download=False`` raises `DataError` listing every place looked in.

    >>> (x_train, y_train), (x_test, y_test) = load_fashion_mnist()  # doctest: +SKIP
    >>> x_train.shape, y_test.shape  # doctest: +SKIP
    ((60000, 784), (10000,))
    """
    return _load_idx_dataset("fashion-mnist", root, download)


def load_mnist(
    root: str | os.PathLike[str] | None = None, download: bool = True
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """LeCun's MNIST: 60,000 training and 10,000 test 28x28 handwritten digits.

    Returns ``(x_train, y_train), (x_test, y_test)``: x float32 in [0, 1] of shape (N, 784), y int64 in 0..9.
    Looks in ``root`` only, if given; otherwise in ``$TINYGRAD_NN_DATA/mnist``, ``$TINYGRAD_NN_DATA`` and the
    cache directory (``$XDG_CACHE_HOME/tinygrad_nn/mnist``, default ``~/.cache/tinygrad_nn/mnist``; Debian has no
    MNIST package), then downloads into the cache from the mirrors in ``DATASET_SOURCES["mnist"]``.

    >>> (x_train, y_train), _ = load_mnist()  # doctest: +SKIP
    """
    return _load_idx_dataset("mnist", root, download)


def load_digits(
    test_size: float = 0.25, seed: int | None = 0
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """scikit-learn's bundled 8x8 handwritten digits (1,797 samples, no download), split into train and test.

    Returns ``(x_train, y_train), (x_test, y_test)``: x float32 in [0, 1] (pixels 0..16 divided by 16) of
    shape (N, 64), y int64 in 0..9. ``test_size`` is a fraction in (0, 1) (the test set gets
    ``ceil(test_size * 1797)`` samples, as scikit-learn's ``train_test_split`` does) or a whole number of samples.
    The split is a permutation from ``numpy.random.default_rng(seed)``: the same seed gives the same split.

    >>> (x_train, y_train), (x_test, y_test) = load_digits()
    >>> x_train.shape, x_test.shape
    ((1347, 64), (450, 64))
    """
    try:
        from sklearn.datasets import load_digits as sklearn_load_digits
    except ImportError as error:
        raise ImportError(
            "load_digits needs scikit-learn, which is not installed: pip install scikit-learn (in a clone of "
            'tinygrad_nn, pip install -e ".[examples]" installs it with the other extras)'
        ) from error
    digits = sklearn_load_digits()
    sample_count = len(digits.target)
    test_count = _test_count(test_size, sample_count)
    order = np.random.default_rng(seed).permutation(sample_count)
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    test_rows, train_rows = order[:test_count], order[test_count:]
    return (x[train_rows], y[train_rows]), (x[test_rows], y[test_rows])


def _test_count(test_size: float, sample_count: int) -> int:
    if isinstance(test_size, (int, np.integer)) and not isinstance(test_size, bool):
        if not 1 <= test_size < sample_count:
            raise ValueError(f"test_size as a count must be between 1 and {sample_count - 1}, got {test_size}")
        return int(test_size)
    if isinstance(test_size, (float, np.floating)) and 0.0 < test_size < 1.0:
        count = math.ceil(test_size * sample_count)
        if count < sample_count:
            return count
    raise ValueError(f"test_size must be a fraction strictly between 0 and 1 or a count of samples, got {test_size!r}")


# -------------------------------------------------------------------------------------------------------------
# Batching
# -------------------------------------------------------------------------------------------------------------


class DataLoader:
    """Iterate over ``(x, y)`` in batches of Tensors, optionally reshuffled every epoch.

    Each ``iter()`` is one epoch and yields ``(x_batch, y_batch)`` Tensors, or just ``x_batch`` when ``y`` is
    None. x keeps its dtype; integer y becomes int64 (class indices for `cross_entropy`-style losses). Batches
    are copies, so changing one never changes your arrays. With ``shuffle=True`` every epoch draws a new
    permutation from a ``numpy.random.default_rng(seed)`` made once here: two loaders with the same seed give
    the same batches, and numpy's global random state is never touched. ``drop_last`` skips a final short batch.
    ``len(loader)`` is the number of batches per epoch.

    >>> import numpy as np
    >>> loader = DataLoader(np.zeros((10, 3), np.float32), np.arange(10), batch_size=4, shuffle=True, seed=0)
    >>> len(loader)
    3
    >>> [tuple(xb.shape) for xb, yb in loader]
    [(4, 3), (4, 3), (2, 3)]
    """

    def __init__(
        self,
        x: Any,
        y: Any = None,
        batch_size: int = 32,
        shuffle: bool = False,
        seed: int | None = None,
        drop_last: bool = False,
    ) -> None:
        self.x = _as_sample_array(x, "x")
        self.y = None if y is None else _as_sample_array(y, "y")
        if self.y is not None:
            if len(self.x) != len(self.y):
                raise ValueError(
                    f"DataLoader got x with {len(self.x)} samples and y with {len(self.y)}; they must match"
                )
            if self.y.dtype.kind in "iu":
                self.y = self.y.astype(np.int64, copy=False)
        if isinstance(batch_size, bool):
            raise TypeError(f"DataLoader batch_size must be a whole number, got {batch_size!r}")
        try:
            batch_size = operator.index(batch_size)
        except TypeError:
            raise TypeError(f"DataLoader batch_size must be a whole number, got {batch_size!r}") from None
        if batch_size < 1:
            raise ValueError(f"DataLoader batch_size must be at least 1, got {batch_size}")
        self.batch_size = batch_size
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self._rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        """The number of batches one epoch yields."""
        if self.drop_last:
            return len(self.x) // self.batch_size
        return -(-len(self.x) // self.batch_size)

    def __iter__(self) -> Iterator[Any]:
        """Start an epoch: draw this epoch's order now (when shuffling) and yield its batches."""
        order = self._rng.permutation(len(self.x)) if self.shuffle else np.arange(len(self.x))
        return self._batches(order)

    def _batches(self, order: np.ndarray) -> Iterator[Any]:
        for batch_index in range(len(self)):
            rows = order[batch_index * self.batch_size : (batch_index + 1) * self.batch_size]
            x_batch = Tensor(self.x[rows])
            if self.y is None:
                yield x_batch
            else:
                yield x_batch, Tensor(self.y[rows])

    def state_dict(self) -> dict[str, Any]:
        """Where the loader's shuffling stands, to resume it: its generator's state and its settings.

        Numbers and strings only (the generator's state is numpy's ``bit_generator.state``). A loader that loads
        it draws the same orders from then on as this one would.
        """
        return {
            "samples": len(self.x),
            "batch_size": self.batch_size,
            "shuffle": self.shuffle,
            "drop_last": self.drop_last,
            "generator": self._rng.bit_generator.state,  # a new dict at every read
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what `state_dict` saved; the settings must be this loader's, or the batches would differ.

        Raises ValueError naming each setting that differs (nothing changes then) or a generator state numpy
        cannot take.
        """
        if not isinstance(state_dict, dict) or not isinstance(state_dict.get("generator"), dict):
            raise ValueError(f"DataLoader.load_state_dict takes what state_dict() returned, got {state_dict!r:.80}")
        own = self.state_dict()
        differences = [
            f"{key} {state_dict[key]!r} there, {own[key]!r} here"
            for key in ("samples", "batch_size", "shuffle", "drop_last")
            if key in state_dict and state_dict[key] != own[key]
        ]
        if differences:
            raise ValueError("DataLoader.load_state_dict: the saved loader differs: " + "; ".join(differences))
        generator = np.random.default_rng()
        try:
            generator.bit_generator.state = state_dict["generator"]  # numpy copies the numbers out
        except (TypeError, ValueError, KeyError, OverflowError) as error:
            raise ValueError(f"DataLoader.load_state_dict: not a generator state numpy can restore ({error})") from None
        self._rng = generator

    def __repr__(self) -> str:
        return (
            f"DataLoader({len(self.x)} samples, batch_size={self.batch_size}, shuffle={self.shuffle}, "
            f"drop_last={self.drop_last}, {len(self)} batches)"
        )


def _as_sample_array(values: Any, name: str) -> np.ndarray:
    array = np.asarray(values.data if isinstance(values, Tensor) else values)
    if array.ndim == 0:
        raise ValueError(f"DataLoader {name} must have one row per sample; got a scalar {array!r}")
    if array.dtype.kind not in "fiub":
        raise TypeError(f"DataLoader {name} must hold numbers (float, int, unsigned or bool); got dtype {array.dtype}")
    return array
