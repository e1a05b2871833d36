"""tinygrad_nn.data: IDX files, the data set loaders (real Debian files, a local download server), DataLoader."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import http.server
import os
import re
import socket
import struct
import sys
import threading
import time
import tracemalloc
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tinygrad_nn import Tensor, data
from tinygrad_nn.data import DataError, DataLoader, load_digits, load_fashion_mnist, load_mnist, read_idx

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
needs_debian_fashion_mnist = pytest.mark.skipif(
    not DEBIAN_FASHION_MNIST.is_dir(),
    reason=f"{DEBIAN_FASHION_MNIST} is absent: install Debian's dataset-fashion-mnist package to run this test",
)

IDX_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
IDX_TYPE_CODES = {"uint8": 0x08, "int8": 0x09, "int16": 0x0B, "int32": 0x0C, "float32": 0x0D, "float64": 0x0E}


def idx_bytes(array: np.ndarray, type_code: int | None = None) -> bytes:
    """An IDX file's bytes, written by hand from the format's description (not with the code under test)."""
    code = IDX_TYPE_CODES[array.dtype.name] if type_code is None else type_code
    header = bytes([0, 0, code, array.ndim]) + b"".join(struct.pack(">I", size) for size in array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_idx(path: Path, array: np.ndarray, compress: bool = True) -> Path:
    content = idx_bytes(array)
    path.write_bytes(gzip.compress(content) if compress else content)
    return path


def sample_array(dtype: str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    if np.dtype(dtype).kind == "f":
        return rng.normal(scale=1e3, size=shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)


@pytest.fixture(autouse=True)
def isolated_places(tmp_path, monkeypatch):
    """Every test gets its own cache and home, and no TINYGRAD_NN_DATA: none may touch the user's real cache."""
    monkeypatch.delenv("TINYGRAD_NN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


# ---------------------------------------------------------------------------------------------------------------
# read_idx
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("compress", [True, False], ids=["gzip", "raw"])
@pytest.mark.parametrize("shape", [(), (7,), (3, 5), (2, 3, 4), (2, 1, 3, 2)], ids=str)
@pytest.mark.parametrize("dtype", list(IDX_TYPE_CODES))
def test_read_idx_round_trips_every_dtype_and_rank(tmp_path, rng, dtype, shape, compress):
    array = sample_array(dtype, shape, rng)
    loaded = read_idx(write_idx(tmp_path / "array.idx", array, compress))
    assert loaded.dtype == np.dtype(dtype)
    assert loaded.dtype.isnative
    assert loaded.shape == shape
    np.testing.assert_array_equal(loaded, array)
    assert loaded.flags.writeable


def test_read_idx_detects_gzip_by_content_not_name(tmp_path, rng):
    array = sample_array("int16", (4, 3), rng)
    raw_named_gz = tmp_path / "raw.gz"
    raw_named_gz.write_bytes(idx_bytes(array))
    gzip_named_raw = tmp_path / "gzipped-ubyte"
    gzip_named_raw.write_bytes(gzip.compress(idx_bytes(array)))
    np.testing.assert_array_equal(read_idx(raw_named_gz), array)
    np.testing.assert_array_equal(read_idx(str(gzip_named_raw)), array)


def test_read_idx_reads_an_empty_array(tmp_path):
    loaded = read_idx(write_idx(tmp_path / "empty", np.zeros((0, 28, 28), np.uint8)))
    assert loaded.shape == (0, 28, 28)


def test_read_idx_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nothing-here")


def corrupt_cases() -> dict[str, tuple[bytes, str]]:
    """File content -> the phrase its error must contain."""
    good = idx_bytes(np.arange(12, dtype=np.uint8).reshape(3, 4))
    return {
        "empty": (b"", "0 bytes is too short for an IDX header"),
        "three bytes": (b"\x00\x00\x08", "3 bytes is too short"),
        "png": (b"\x89PNG\r\n\x1a\n" + bytes(20), "not an IDX file: it starts with bytes 0x89 0x50"),
        "unknown dtype": (b"\x00\x00\x07\x01" + struct.pack(">I", 1) + b"\x00", "unknown IDX data type code 0x07"),
        "header cut short": (good[:9], "declares 2 dimensions, which needs 12 header bytes, but the file has only 9"),
        "data cut short": (good[:-2], "expected 12 bytes of uint8 data after the header (shape (3, 4)), found 10"),
        "data too long": (good + b"\x00", "expected 12 bytes of uint8 data after the header (shape (3, 4)), found 13"),
        "int32 data cut short": (
            idx_bytes(np.zeros(5, np.int32))[:-1],
            "expected 20 bytes of int32 data after the header (shape (5,)), found 19",
        ),
        "truncated gzip": (gzip.compress(good)[:-12], "the gzip stream is truncated"),
        "gzip with a bad checksum": (gzip.compress(good)[:-8] + b"\x00" * 8, "the gzip stream is corrupt"),
        "gzip magic then garbage": (b"\x1f\x8b" + b"\xff" * 30, "the gzip stream is corrupt"),
    }


@pytest.mark.parametrize("case", list(corrupt_cases()))
def test_read_idx_rejects_bad_files_naming_the_file_and_the_problem(tmp_path, case):
    content, phrase = corrupt_cases()[case]
    path = tmp_path / "bad-file-idx1-ubyte.gz"
    path.write_bytes(content)
    with pytest.raises(DataError) as caught:
        read_idx(path)
    assert isinstance(caught.value, ValueError)
    assert str(path) in str(caught.value)
    assert phrase in str(caught.value)


def test_read_idx_reports_mnist_sized_truncation_in_the_users_terms(tmp_path):
    header = bytes([0, 0, 0x08, 3]) + struct.pack(">III", 60000, 28, 28)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(header + bytes(1000))
    with pytest.raises(DataError, match=r"expected 47040000 bytes of uint8 data after the header .*found 1000"):
        read_idx(path)


# ---------------------------------------------------------------------------------------------------------------
# The real Fashion-MNIST files from Debian
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def debian_fashion_mnist():
    if not DEBIAN_FASHION_MNIST.is_dir():
        pytest.skip(f"{DEBIAN_FASHION_MNIST} is absent: install Debian's dataset-fashion-mnist package")
    return load_fashion_mnist(root=DEBIAN_FASHION_MNIST, download=False)


@needs_debian_fashion_mnist
def test_fashion_mnist_from_debian_has_the_published_shapes_ranges_and_balance(debian_fashion_mnist):
    (x_train, y_train), (x_test, y_test) = debian_fashion_mnist
    assert x_train.shape == (60000, 784) and x_test.shape == (10000, 784)
    assert y_train.shape == (60000,) and y_test.shape == (10000,)
    assert x_train.dtype == x_test.dtype == np.float32
    assert y_train.dtype == y_test.dtype == np.int64
    for x in (x_train, x_test):
        assert x.min() == 0.0 and x.max() == 1.0
    # Scaled from uint8: every value is k/255.
    np.testing.assert_allclose(x_test[:50] * 255, np.round(x_test[:50] * 255), atol=1e-4)
    # Fashion-MNIST is exactly balanced: 6,000 training and 1,000 test images per class.
    np.testing.assert_array_equal(np.bincount(y_train), np.full(10, 6000))
    np.testing.assert_array_equal(np.bincount(y_test), np.full(10, 1000))


@needs_debian_fashion_mnist
def test_fashion_mnist_is_found_in_the_debian_folder_without_any_setting(debian_fashion_mnist):
    (_, y_train), (x_test, _) = load_fashion_mnist(download=False)
    np.testing.assert_array_equal(y_train, debian_fashion_mnist[0][1])
    np.testing.assert_array_equal(x_test, debian_fashion_mnist[1][0])


# Debian recompressed the upstream .gz files: no file name in the gzip header, and its build date as mtime.
# Putting back upstream's header (FNAME set, the mtimes below) in front of Debian's unchanged compressed data
# reproduces the files whose MD5s Zalando publishes, which checks the table in DATASET_SOURCES.
UPSTREAM_GZIP_MTIMES = {
    "train-images-idx3-ubyte.gz": 1504176606,
    "train-labels-idx1-ubyte.gz": 1504176606,
    "t10k-images-idx3-ubyte.gz": 1504176627,
    "t10k-labels-idx1-ubyte.gz": 1504176627,
}


@needs_debian_fashion_mnist
@pytest.mark.parametrize("file_name", IDX_FILES)
def test_published_fashion_mnist_md5s_match_debians_data_with_upstreams_gzip_header(file_name):
    debian_file = (DEBIAN_FASHION_MNIST / file_name).read_bytes()
    assert debian_file[:4] == b"\x1f\x8b\x08\x00", "Debian's header has no FNAME flag"
    upstream_header = b"\x1f\x8b\x08\x08" + struct.pack("<I", UPSTREAM_GZIP_MTIMES[file_name]) + b"\x00\x03"
    upstream_file = upstream_header + file_name.removesuffix(".gz").encode() + b"\x00" + debian_file[10:]
    published = data.DATASET_SOURCES["fashion-mnist"].md5[file_name]
    assert hashlib.md5(upstream_file, usedforsecurity=False).hexdigest() == published


# ---------------------------------------------------------------------------------------------------------------
# Synthetic data sets, a local download server, and where the loaders look
# ---------------------------------------------------------------------------------------------------------------


def synthetic_dataset(label_offset: int = 0) -> dict[str, np.ndarray]:
    """Tiny (Fashion-)MNIST look-alikes: 6 training and 4 test images of 3x2 pixels."""
    rng = np.random.default_rng(label_offset)
    return {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, size=(6, 3, 2), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": ((np.arange(6) + label_offset) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, size=(4, 3, 2), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": ((np.arange(4) + label_offset) % 10).astype(np.uint8),
    }


def write_dataset(folder: Path, arrays: dict[str, np.ndarray], compress: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for file_name, array in arrays.items():
        write_idx(folder / (file_name if compress else file_name.removesuffix(".gz")), array, compress)
    return folder


def assert_loaded(result, arrays: dict[str, np.ndarray]) -> None:
    (x_train, y_train), (x_test, y_test) = result
    assert x_train.shape == (6, 6) and x_test.shape == (4, 6)
    assert x_train.dtype == np.float32 and y_train.dtype == np.int64
    np.testing.assert_allclose(x_train, arrays["train-images-idx3-ubyte.gz"].reshape(6, 6) / 255, rtol=1e-6)
    np.testing.assert_allclose(x_test, arrays["t10k-images-idx3-ubyte.gz"].reshape(4, 6) / 255, rtol=1e-6)
    np.testing.assert_array_equal(y_train, arrays["train-labels-idx1-ubyte.gz"])
    np.testing.assert_array_equal(y_test, arrays["t10k-labels-idx1-ubyte.gz"])


ZEROS = bytes(1 << 16)
ENDLESS_LIMIT = 256 * 2**20
TRICKLE_SECONDS = 0.1


class FileServer:
    """Serves `files` (URL path -> bytes) on 127.0.0.1; paths in `truncated` hang up after half their bytes."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.truncated: set[str] = set()
        self.endless: set[str] = set()  # served with no Content-Length, then zeros until the client hangs up
        self.trickled: set[str] = set()  # served one byte every TRICKLE_SECONDS
        self.sent: dict[str, int] = {}  # body bytes written per path
        self.requests: list[tuple[str, int]] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = server.files.get(self.path)
                status = 404 if body is None else 200
                server.requests.append((self.path, status))
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                if self.path not in server.endless:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    if self.path in server.endless:
                        self.write_counted(body)
                        for _ in range(ENDLESS_LIMIT // len(ZEROS)):  # bounded, in case the client never stops
                            self.write_counted(ZEROS)
                    elif self.path in server.trickled:
                        for index in range(len(body)):
                            self.write_counted(body[index : index + 1])
                            self.wfile.flush()
                            time.sleep(TRICKLE_SECONDS)
                    else:
                        self.write_counted(body[: len(body) // 2] if self.path in server.truncated else body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client hung up, as it should

            def write_counted(self, chunk: bytes) -> None:
                self.wfile.write(chunk)
                server.sent[self.path] = server.sent.get(self.path, 0) + len(chunk)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def publish(self, folder: str, arrays: dict[str, np.ndarray]) -> dict[str, str]:
        """Serve gzipped IDX files under /folder/, and return their MD5s."""
        checksums = {}
        for file_name, array in arrays.items():
            content = gzip.compress(idx_bytes(array))
            self.files[f"/{folder}/{file_name}"] = content
            checksums[file_name] = hashlib.md5(content, usedforsecurity=False).hexdigest()
        return checksums


@pytest.fixture
def file_server() -> Iterator[FileServer]:
    server = FileServer()
    server.thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
        server.thread.join(timeout=5)


def use_source(monkeypatch, name: str, mirrors, md5: dict[str, str], system_dirs=()) -> None:
    patched = dataclasses.replace(data.DATASET_SOURCES[name], mirrors=tuple(mirrors), md5=md5, system_dirs=system_dirs)
    monkeypatch.setitem(data.DATASET_SOURCES, name, patched)


def files_under(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir()) if folder.exists() else []


def test_download_verifies_caches_and_reuses_the_files(tmp_path, monkeypatch, file_server):
    arrays = synthetic_dataset()
    checksums = file_server.publish("fashion", arrays)
    use_source(monkeypatch, "fashion-mnist", [f"{file_server.base_url}/fashion/"], checksums)

    assert_loaded(load_fashion_mnist(), arrays)
    cache = tmp_path / "xdg-cache" / "tinygrad_nn" / "fashion-mnist"
    assert files_under(cache) == sorted(IDX_FILES)  # the four files, no leftover temporary file
    assert len(file_server.requests) == 4

    assert_loaded(load_fashion_mnist(), arrays)
    assert_loaded(load_fashion_mnist(download=False), arrays)
    assert len(file_server.requests) == 4  # served from the cache the second and third time


def test_download_without_xdg_cache_home_goes_to_home_dot_cache(tmp_path, monkeypatch, file_server):
    monkeypatch.delenv("XDG_CACHE_HOME")
    arrays = synthetic_dataset()
    use_source(monkeypatch, "mnist", [f"{file_server.base_url}/mnist/"], file_server.publish("mnist", arrays))
    assert_loaded(load_mnist(), arrays)
    assert files_under(tmp_path / "home" / ".cache" / "tinygrad_nn" / "mnist") == sorted(IDX_FILES)


def test_download_falls_back_to_the_next_mirror(monkeypatch, file_server):
    arrays = synthetic_dataset()
    checksums = file_server.publish("good", arrays)
    mirrors = [f"{file_server.base_url}/gone/", f"{file_server.base_url}/good/"]
    use_source(monkeypatch, "fashion-mnist", mirrors, checksums)
    assert_loaded(load_fashion_mnist(), arrays)
    assert file_server.requests[:2] == [
        ("/gone/train-images-idx3-ubyte.gz", 404),
        ("/good/train-images-idx3-ubyte.gz", 200),
    ]


def test_download_into_root_when_root_is_given(tmp_path, monkeypatch, file_server):
    arrays = synthetic_dataset()
    use_source(monkeypatch, "fashion-mnist", [f"{file_server.base_url}/f/"], file_server.publish("f", arrays))
    assert_loaded(load_fashion_mnist(root=tmp_path / "my-data"), arrays)
    assert files_under(tmp_path / "my-data") == sorted(IDX_FILES)
    assert not (tmp_path / "xdg-cache").exists()


def test_checksum_mismatch_keeps_nothing_and_says_what_to_do(tmp_path, monkeypatch, file_server):
    checksums = file_server.publish("fashion", synthetic_dataset())
    checksums["train-images-idx3-ubyte.gz"] = "0" * 32
    url = f"{file_server.base_url}/fashion/"
    use_source(monkeypatch, "fashion-mnist", [url], checksums)
    with pytest.raises(DataError) as caught:
        load_fashion_mnist()
    message = str(caught.value)
    assert f"{url}train-images-idx3-ubyte.gz: MD5 mismatch" in message
    assert "expected " + "0" * 32 in message
    for advice in ("TINYGRAD_NN_DATA", "apt-get install dataset-fashion-mnist", "root="):
        assert advice in message
    assert files_under(tmp_path / "xdg-cache" / "tinygrad_nn" / "fashion-mnist") == []


def test_http_404_names_the_file_and_every_mirror(tmp_path, monkeypatch, file_server):
    mirrors = [f"{file_server.base_url}/a/", f"{file_server.base_url}/b/"]
    use_source(monkeypatch, "mnist", mirrors, {name: "0" * 32 for name in IDX_FILES})
    with pytest.raises(DataError) as caught:
        load_mnist()
    message = str(caught.value)
    assert "MNIST's train-images-idx3-ubyte.gz" in message
    for mirror in mirrors:
        assert f"{mirror}train-images-idx3-ubyte.gz: HTTP 404" in message
    assert "dataset-fashion-mnist" not in message  # there is no Debian package to suggest for MNIST
    assert files_under(tmp_path / "xdg-cache" / "tinygrad_nn" / "mnist") == []


def test_connection_cut_short_keeps_nothing(tmp_path, monkeypatch, file_server):
    checksums = file_server.publish("fashion", synthetic_dataset())
    file_server.truncated.add("/fashion/train-labels-idx1-ubyte.gz")
    use_source(monkeypatch, "fashion-mnist", [f"{file_server.base_url}/fashion/"], checksums)
    cut_short = r"train-labels-idx1-ubyte\.gz: the connection closed early, after \d+ of \d+ bytes"
    with pytest.raises(DataError, match=cut_short):
        load_fashion_mnist()
    # The images came first and were complete, so they stay; the cut-short labels left nothing behind.
    assert files_under(tmp_path / "xdg-cache" / "tinygrad_nn" / "fashion-mnist") == ["train-images-idx3-ubyte.gz"]


def test_truncated_file_with_a_matching_checksum_is_caught_by_read_idx(tmp_path, monkeypatch, file_server):
    checksums = file_server.publish("fashion", synthetic_dataset())
    path = "/fashion/t10k-images-idx3-ubyte.gz"
    file_server.files[path] = file_server.files[path][:-10]
    checksums["t10k-images-idx3-ubyte.gz"] = hashlib.md5(file_server.files[path], usedforsecurity=False).hexdigest()
    use_source(monkeypatch, "fashion-mnist", [f"{file_server.base_url}/fashion/"], checksums)
    cached = tmp_path / "xdg-cache" / "tinygrad_nn" / "fashion-mnist" / "t10k-images-idx3-ubyte.gz"
    with pytest.raises(DataError, match=re.escape(f"{cached}: the gzip stream is truncated")):
        load_fashion_mnist()


def test_unreachable_server_says_it_cannot_connect(monkeypatch):
    with socket.socket() as probe:  # a port that was free a moment ago, with nothing listening on it now
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    use_source(monkeypatch, "mnist", [f"http://127.0.0.1:{port}/"], {name: "0" * 32 for name in IDX_FILES})
    with pytest.raises(DataError, match="cannot connect"):
        load_mnist()


PLACES = ["env/fashion-mnist", "env", "xdg-cache/tinygrad_nn/fashion-mnist", "system"]


@pytest.mark.parametrize("first_present", range(len(PLACES)), ids=PLACES)
def test_search_order_env_subfolder_env_cache_then_system_folder(tmp_path, monkeypatch, first_present):
    monkeypatch.setenv("TINYGRAD_NN_DATA", str(tmp_path / "env"))
    use_source(monkeypatch, "fashion-mnist", ["http://127.0.0.1:9/never/"], {}, system_dirs=(str(tmp_path / "system"),))
    # Every place from `first_present` on holds a data set told apart by its labels; the first one must win.
    for index in range(first_present, len(PLACES)):
        write_dataset(tmp_path / PLACES[index], synthetic_dataset(label_offset=index))
    assert_loaded(load_fashion_mnist(download=False), synthetic_dataset(label_offset=first_present))


def test_root_is_the_only_place_looked_in(tmp_path, monkeypatch):
    write_dataset(tmp_path / "xdg-cache" / "tinygrad_nn" / "fashion-mnist", synthetic_dataset())
    with pytest.raises(DataError) as caught:
        load_fashion_mnist(root=tmp_path / "elsewhere", download=False)
    message = str(caught.value)
    assert f"{tmp_path / 'elsewhere'} (root=): no such folder" in message
    assert "xdg-cache" not in message


def test_download_false_lists_every_place_looked_in(tmp_path, monkeypatch):
    system = tmp_path / "system"
    use_source(monkeypatch, "fashion-mnist", ["http://127.0.0.1:9/"], {}, system_dirs=(str(system),))
    write_dataset(system, {"train-images-idx3-ubyte.gz": np.zeros((1, 2, 2), np.uint8)})
    with pytest.raises(DataError) as caught:
        load_fashion_mnist(download=False)
    message = str(caught.value)
    assert "Fashion-MNIST not found, and download=False" in message
    assert f"{tmp_path / 'xdg-cache' / 'tinygrad_nn' / 'fashion-mnist'} (cache directory): no such folder" in message
    assert (
        f"{system} (system folder (Debian package dataset-fashion-mnist)): missing train-labels-idx1-ubyte.gz"
        in message
    )
    assert "$TINYGRAD_NN_DATA is not set" in message

    monkeypatch.setenv("TINYGRAD_NN_DATA", str(tmp_path / "env"))
    with pytest.raises(DataError) as caught:
        load_fashion_mnist(download=False)
    assert f"{tmp_path / 'env' / 'fashion-mnist'} ($TINYGRAD_NN_DATA/fashion-mnist)" in str(caught.value)
    assert f"{tmp_path / 'env'} ($TINYGRAD_NN_DATA)" in str(caught.value)


def test_unpacked_idx_files_are_found_too(tmp_path):
    arrays = synthetic_dataset()
    assert_loaded(load_mnist(root=write_dataset(tmp_path / "unpacked", arrays, compress=False), download=False), arrays)


def test_labels_that_do_not_match_the_images_name_both_files(tmp_path):
    arrays = synthetic_dataset()
    arrays["t10k-labels-idx1-ubyte.gz"] = np.zeros(3, np.uint8)
    folder = write_dataset(tmp_path / "mismatched", arrays)
    with pytest.raises(DataError) as caught:
        load_mnist(root=folder, download=False)
    message = str(caught.value)
    assert str(folder / "t10k-labels-idx1-ubyte.gz") in message and str(folder / "t10k-images-idx3-ubyte.gz") in message
    assert "expected 4 labels" in message and "found shape (3,)" in message


def test_a_corrupt_file_in_a_search_place_names_that_file(tmp_path, monkeypatch):
    folder = write_dataset(tmp_path / "env", synthetic_dataset())
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(b"<html>Not Found</html>")
    monkeypatch.setenv("TINYGRAD_NN_DATA", str(folder))
    with pytest.raises(DataError, match=re.escape(f"{folder / 'train-labels-idx1-ubyte.gz'}: not an IDX file")):
        load_mnist(download=False)


# ---------------------------------------------------------------------------------------------------------------
# load_digits
# ---------------------------------------------------------------------------------------------------------------


def test_load_digits_shapes_ranges_and_split():
    (x_train, y_train), (x_test, y_test) = load_digits()
    assert x_train.shape == (1347, 64) and x_test.shape == (450, 64)
    assert x_train.dtype == np.float32 and y_train.dtype == np.int64
    assert x_train.min() == 0.0 and x_train.max() == 1.0
    assert set(np.unique(np.concatenate([y_train, y_test]))) == set(range(10))
    # The split is a permutation: together the two halves are exactly scikit-learn's samples.
    from sklearn.datasets import load_digits as sklearn_load_digits

    everything = np.concatenate([x_train, x_test]) * 16
    original = sklearn_load_digits().data
    np.testing.assert_array_equal(np.unique(everything, axis=0), np.unique(original, axis=0))
    assert len(everything) == len(original) == 1797


def test_load_digits_is_deterministic_per_seed():
    (first_x, first_y), _ = load_digits(seed=3)
    (again_x, again_y), _ = load_digits(seed=3)
    (other_x, _), _ = load_digits(seed=4)
    np.testing.assert_array_equal(first_x, again_x)
    np.testing.assert_array_equal(first_y, again_y)
    assert not np.array_equal(first_x, other_x)


@pytest.mark.parametrize(("test_size", "test_count"), [(0.1, 180), (0.5, 899), (100, 100)])
def test_load_digits_test_size(test_size, test_count):
    (x_train, _), (x_test, _) = load_digits(test_size=test_size)
    assert len(x_test) == test_count and len(x_train) == 1797 - test_count


@pytest.mark.parametrize("test_size", [0.0, 1.0, -0.2, 0, 1797, True, "0.3"])
def test_load_digits_rejects_a_bad_test_size(test_size):
    with pytest.raises(ValueError, match="test_size"):
        load_digits(test_size=test_size)


def test_load_digits_without_scikit_learn_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)  # makes the import fail as if not installed
    # The package is not on PyPI: the advice must work (scikit-learn alone, or the extras from a clone).
    with pytest.raises(ImportError, match=r'pip install scikit-learn .*pip install -e "\.\[examples\]"'):
        load_digits()


# ---------------------------------------------------------------------------------------------------------------
# DataLoader
# ---------------------------------------------------------------------------------------------------------------


def numbered_samples(count: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """x row i is [i, i, i] (float32), y[i] = i (int32), so a batch shows which samples it holds."""
    return np.repeat(np.arange(count, dtype=np.float32)[:, None], 3, axis=1), np.arange(count, dtype=np.int32)


def test_batches_in_order_without_shuffle():
    x, y = numbered_samples(10)
    batches = list(DataLoader(x, y, batch_size=4))
    assert [tuple(xb.shape) for xb, _ in batches] == [(4, 3), (4, 3), (2, 3)]
    for xb, yb in batches:
        assert isinstance(xb, Tensor) and isinstance(yb, Tensor)
        assert xb.dtype == np.float32 and yb.dtype == np.int64
        assert not xb.requires_grad
    np.testing.assert_array_equal(np.concatenate([xb.data for xb, _ in batches]), x)
    np.testing.assert_array_equal(np.concatenate([yb.data for _, yb in batches]), y)


def test_without_y_batches_are_single_tensors_and_x_keeps_its_dtype():
    x = np.arange(10, dtype=np.int16).reshape(5, 2)
    batches = list(DataLoader(x, batch_size=2))
    assert all(isinstance(batch, Tensor) and batch.dtype == np.int16 for batch in batches)
    np.testing.assert_array_equal(np.concatenate([batch.data for batch in batches]), x)


def test_float_targets_keep_their_dtype_and_tensors_are_accepted():
    x, _ = numbered_samples(4)
    targets = np.linspace(0, 1, 4, dtype=np.float32)
    (xb, yb), *_ = DataLoader(Tensor(x), targets, batch_size=4)
    assert yb.dtype == np.float32
    np.testing.assert_array_equal(xb.data, x)


@pytest.mark.parametrize(
    ("sample_count", "batch_size", "drop_last", "batch_count"),
    [(10, 4, False, 3), (10, 4, True, 2), (8, 4, False, 2), (8, 4, True, 2), (3, 5, False, 1), (3, 5, True, 0)],
)
def test_len_is_the_number_of_batches(sample_count, batch_size, drop_last, batch_count):
    x, y = numbered_samples(sample_count)
    loader = DataLoader(x, y, batch_size=batch_size, shuffle=True, seed=0, drop_last=drop_last)
    assert len(loader) == batch_count == len(list(loader))


def test_drop_last_yields_only_full_batches():
    x, y = numbered_samples(10)
    batches = list(DataLoader(x, y, batch_size=4, drop_last=True))
    assert [len(yb) for _, yb in batches] == [4, 4]
    np.testing.assert_array_equal(np.concatenate([yb.data for _, yb in batches]), np.arange(8))


def epoch(loader: DataLoader) -> np.ndarray:
    return np.concatenate([yb.data for _, yb in loader])


def test_shuffle_draws_a_new_permutation_every_epoch():
    x, y = numbered_samples(50)
    loader = DataLoader(x, y, batch_size=8, shuffle=True, seed=7)
    first, second = epoch(loader), epoch(loader)
    np.testing.assert_array_equal(np.sort(first), y)
    np.testing.assert_array_equal(np.sort(second), y)
    assert not np.array_equal(first, y) and not np.array_equal(first, second)
    for xb, yb in loader:  # rows and labels stay paired
        np.testing.assert_array_equal(xb.data[:, 0], yb.data)


def test_each_iter_call_is_one_epoch_whose_order_is_drawn_by_iter_itself():
    x, y = numbered_samples(50)
    reference = DataLoader(x, y, batch_size=50, shuffle=True, seed=1)
    expected_first, expected_second = epoch(reference), epoch(reference)
    loader = DataLoader(x, y, batch_size=50, shuffle=True, seed=1)
    first_epoch, second_epoch = iter(loader), iter(loader)
    # Consumed in the other order: each epoch's permutation was drawn when iter() was called, not on first next().
    np.testing.assert_array_equal(next(second_epoch)[1].data, expected_second)
    np.testing.assert_array_equal(next(first_epoch)[1].data, expected_first)


def test_same_seed_same_batches_and_the_global_random_state_is_untouched():
    x, y = numbered_samples(30)
    np.random.seed(123)
    global_state = np.random.get_state()[1].copy()
    one = DataLoader(x, y, batch_size=7, shuffle=True, seed=42)
    two = DataLoader(x, y, batch_size=7, shuffle=True, seed=42)
    for _ in range(3):
        np.testing.assert_array_equal(epoch(one), epoch(two))
    assert not np.array_equal(epoch(DataLoader(x, y, batch_size=7, shuffle=True, seed=43)), epoch(one))
    np.testing.assert_array_equal(np.random.get_state()[1], global_state)


def test_batches_are_copies_of_the_data():
    x, y = numbered_samples(4)
    for shuffle in (False, True):
        for xb, _ in DataLoader(x, y, batch_size=2, shuffle=shuffle, seed=0):
            xb.data[...] = -1
    np.testing.assert_array_equal(x, numbered_samples(4)[0])


def test_x_and_y_of_different_lengths_name_both_lengths():
    with pytest.raises(ValueError, match="x with 10 samples and y with 9"):
        DataLoader(np.zeros((10, 2)), np.zeros(9, np.int64))


@pytest.mark.parametrize(
    ("batch_size", "error"), [(0, ValueError), (-3, ValueError), (2.5, TypeError), (True, TypeError)]
)
def test_bad_batch_size_is_refused(batch_size, error):
    with pytest.raises(error, match=f"batch_size must be .*got {batch_size!r}"):
        DataLoader(np.zeros((4, 2)), batch_size=batch_size)


def test_scalar_or_non_numeric_data_is_refused():
    with pytest.raises(ValueError, match="x must have one row per sample"):
        DataLoader(np.float32(3.0))
    with pytest.raises(TypeError, match=r"y must hold numbers.*got dtype <U1"):
        DataLoader(np.zeros((2, 2)), np.array(["a", "b"]))


# ---------------------------------------------------------------------------------------------------------------
# Hostile files and servers: nothing is allocated, decompressed or downloaded beyond what the data justifies
# ---------------------------------------------------------------------------------------------------------------


def gzip_stream(header: bytes, zero_bytes: int) -> bytes:
    """A gzip file of `header` followed by `zero_bytes` zeros, compressed as it goes (never all in memory)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [compressor.compress(header)]
    chunk = bytes(1 << 20)
    for start in range(0, zero_bytes, len(chunk)):
        parts.append(compressor.compress(chunk[: zero_bytes - start]))
    parts.append(compressor.flush())
    return b"".join(parts)


def peak_memory(function, *args):
    tracemalloc.start()
    try:
        try:
            result = function(*args)
        except Exception as error:  # returned for the caller to check
            result = error
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def assert_cheap_data_error(path: Path, *phrases: str) -> str:
    error, peak = peak_memory(read_idx, path)
    assert isinstance(error, DataError), f"expected a DataError, got {error!r}"
    for phrase in (str(path), *phrases):
        assert phrase in str(error)
    assert peak <= 4 * path.stat().st_size + 16 * 2**20, f"peak {peak} bytes for a {path.stat().st_size}-byte file"
    return str(error)


@pytest.mark.parametrize(
    ("shape", "phrase"),
    [
        ((60000, 28, 28), "expected 47040000 bytes of uint8 data after the header (shape (60000, 28, 28)), found more"),
        ((10,), "expected 10 bytes of uint8 data after the header (shape (10,)), found more than 65546"),
    ],
    ids=["mnist-sized-claim", "ten-byte-claim"],
)
def test_a_gzip_bomb_is_refused_after_decompressing_only_what_its_header_claims(tmp_path, shape, phrase):
    header = bytes([0, 0, 0x08, len(shape)]) + b"".join(struct.pack(">I", size) for size in shape)
    path = tmp_path / "bomb-idx3-ubyte.gz"
    path.write_bytes(gzip_stream(header, 256 * 2**20))  # 256 MiB of zeros in about 250 KB
    assert path.stat().st_size < 2**20
    assert_cheap_data_error(path, phrase)


def test_a_small_gzip_claiming_more_than_it_could_hold_is_refused_before_decompressing(tmp_path):
    path = tmp_path / "liar.gz"
    path.write_bytes(gzip.compress(bytes([0, 0, 0x0E, 1]) + struct.pack(">I", 2**31) + bytes(80)))
    assert_cheap_data_error(path, "expected 17179869184 bytes of float64", "cannot hold more than about")


def test_a_short_gzip_claiming_a_large_array_allocates_nothing_for_it(tmp_path):
    path = tmp_path / "short.gz"
    # Random bytes do not compress, so the claim is within what a gzip file of this size could hold and must be
    # counted; but the data is not there.
    noise = np.random.default_rng(0).integers(0, 256, 2**20, dtype=np.uint8).tobytes()
    path.write_bytes(gzip.compress(bytes([0, 0, 0x08, 1]) + struct.pack(">I", 200 * 2**20) + noise))
    assert_cheap_data_error(path, "expected 209715200 bytes of uint8", "found 1048576")


@pytest.mark.parametrize("claimed", [(2**31,), (2**16, 2**16, 2**16)], ids=str)
def test_a_raw_file_claiming_a_huge_shape_is_refused_before_allocating(tmp_path, claimed):
    path = tmp_path / "liar-idx1-ubyte"
    path.write_bytes(bytes([0, 0, 0x0D, len(claimed)]) + b"".join(struct.pack(">I", s) for s in claimed) + bytes(300))
    assert_cheap_data_error(path, "bytes of float32 data after the header", "found 300")


def test_reading_a_real_sized_gzip_costs_about_the_array(tmp_path, rng):
    array = rng.integers(0, 256, size=(2000, 28, 28), dtype=np.uint8)
    path = write_idx(tmp_path / "images-idx3-ubyte.gz", array)
    loaded, peak = peak_memory(read_idx, path)
    np.testing.assert_array_equal(loaded, array)
    assert peak < array.nbytes + 4 * 2**20


def test_read_idx_refuses_what_is_not_a_regular_file(tmp_path):
    with pytest.raises(DataError, match=r"/dev/zero: not a regular file \(it is a device"):
        read_idx("/dev/zero")
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(DataError, match=r"not a regular file \(it is a FIFO\)"):
        read_idx(fifo)  # must not wait for a writer
    with pytest.raises(DataError, match=r"not a regular file \(it is a directory\)"):
        read_idx(tmp_path)


def test_an_endless_body_is_cut_off_just_past_the_expected_size(tmp_path, monkeypatch, file_server):
    checksums = file_server.publish("fashion", synthetic_dataset())
    name = "train-labels-idx1-ubyte.gz"
    file_server.endless.add(f"/fashion/{name}")
    use_source(monkeypatch, "fashion-mnist", [f"{file_server.base_url}/fashion/"], checksums)
    expected_size = data.DATASET_SOURCES["fashion-mnist"].sizes[name]  # 29,515 bytes
    with pytest.raises(DataError, match=rf"{name}: the server sent more than {expected_size + 65536} bytes"):
        load_fashion_mnist()
    # The client hung up soon after the limit; the server only got as far as the socket buffers let it.
    assert file_server.sent[f"/fashion/{name}"] < expected_size + 65536 + 16 * 2**20
    assert files_under(tmp_path / "xdg-cache" / "tinygrad_nn" / "fashion-mnist") == ["train-images-idx3-ubyte.gz"]


def test_an_endless_body_of_an_unknown_file_stops_at_the_overall_limit(tmp_path, monkeypatch, file_server):
    monkeypatch.setattr(data, "_MAX_DOWNLOAD_BYTES", 2**20)
    file_server.files["/x/blob.gz"] = b"start"
    file_server.endless.add("/x/blob.gz")
    with pytest.raises(DataError, match=r"the server sent more than 1048576 bytes"):
        data._download_file(f"{file_server.base_url}/x/blob.gz", tmp_path / "blob.gz", "0" * 32)
    assert list(tmp_path.iterdir()) == []


def test_a_server_offering_far_more_than_the_file_is_refused_before_reading(tmp_path, monkeypatch, file_server):
    checksums = file_server.publish("fashion", synthetic_dataset())
    name = "t10k-labels-idx1-ubyte.gz"
    file_server.files[f"/fashion/{name}"] = bytes(200_000)
    use_source(monkeypatch, "fashion-mnist", [f"{file_server.base_url}/fashion/"], checksums)
    with pytest.raises(DataError, match=rf"{name}: the server offers 200000 bytes, but the file has 5148"):
        load_fashion_mnist()


def test_a_trickling_server_is_abandoned_at_the_deadline(tmp_path, monkeypatch, file_server):
    arrays = synthetic_dataset()
    checksums = file_server.publish("fashion", arrays)
    name = "train-images-idx3-ubyte.gz"
    path = f"/fashion/{name}"
    file_server.files[path] += bytes(100)  # long enough to trickle well past the deadline
    checksums[name] = hashlib.md5(file_server.files[path], usedforsecurity=False).hexdigest()
    file_server.trickled.add(path)
    monkeypatch.setattr(data, "_DOWNLOAD_TIMEOUT_SECONDS", 0.5)  # per read, and the time allowed to get going
    use_source(monkeypatch, "fashion-mnist", [f"{file_server.base_url}/fashion/"], checksums)
    with pytest.raises(DataError, match=rf"{name}: too slow: \d+ bytes in 0\.\d s"):
        load_fashion_mnist()
    # Each read waits only for the next byte, so the call gave up after about 0.5 s: a handful of the bytes.
    assert file_server.sent[path] < len(file_server.files[path]) // 4
    assert files_under(tmp_path / "xdg-cache" / "tinygrad_nn" / "fashion-mnist") == []


def test_every_data_set_tries_an_https_mirror_first():
    for name, source in data.DATASET_SOURCES.items():
        assert source.mirrors[0].startswith("https://"), name


@needs_debian_fashion_mnist
@pytest.mark.parametrize("file_name", IDX_FILES)
def test_fashion_mnist_sizes_are_debians_plus_the_file_name_upstreams_header_holds(file_name):
    debian_size = (DEBIAN_FASHION_MNIST / file_name).stat().st_size
    upstream_size = debian_size + len(file_name.removesuffix(".gz")) + 1  # FNAME: the name and a NUL
    assert data.DATASET_SOURCES["fashion-mnist"].sizes[file_name] == upstream_size
