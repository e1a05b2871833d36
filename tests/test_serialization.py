"""save and load: a state dict as a plain .npz, bit-exact, readable by numpy, never unpickled."""

from __future__ import annotations

import json
import os
import pickle
import re
import socket
import stat
import struct
import subprocess
import sys
import textwrap
import tracemalloc
import zipfile
import zlib
from collections import OrderedDict

import numpy as np
import pytest

import tinygrad_nn as tg
from tinygrad_nn import Tensor, nn


def assert_bit_exact(loaded, original):
    assert list(loaded) == list(original)
    for name, value in original.items():
        array = value.data if isinstance(value, Tensor) else np.asarray(value)
        assert loaded[name].dtype == array.dtype, name
        assert loaded[name].shape == array.shape, name
        assert loaded[name].tobytes() == np.ascontiguousarray(array).tobytes(), name


# ------------------------------------------------------------------------------------------------------------
# Round trips
# ------------------------------------------------------------------------------------------------------------


def test_round_trip_is_bit_exact_for_every_kind_of_array(tmp_path, rng):
    state = OrderedDict(
        [
            ("float64", rng.standard_normal((3, 4))),
            ("float32", rng.standard_normal(5).astype(np.float32)),
            ("float16", np.array([1.5, -2.25], dtype=np.float16)),
            ("int64", np.arange(-3, 3)),
            ("int8", np.array([-128, 127], dtype=np.int8)),
            ("uint8", np.array([0, 255], dtype=np.uint8)),
            ("bool", np.array([True, False])),
            ("scalar", np.array(3.5)),
            ("empty", np.zeros((0, 3))),
            ("special", np.array([np.nan, np.inf, -np.inf, -0.0, 5e-324])),
            ("transposed", np.arange(12.0).reshape(3, 4).T),  # not contiguous
        ]
    )
    path = tmp_path / "state.npz"
    assert tg.save(state, path) is None
    loaded = tg.load(path)
    assert isinstance(loaded, OrderedDict)
    assert_bit_exact(loaded, state)


def test_round_trip_of_tensors_and_parameters(tmp_path, rng):
    state = {
        "tensor": Tensor(rng.standard_normal(4)),
        "parameter": nn.Parameter(rng.standard_normal((2, 2)).astype(np.float32)),
        "labels": Tensor(np.array([1, 0, 2])),
    }
    tg.save(state, tmp_path / "tensors.npz")
    loaded = tg.load(tmp_path / "tensors.npz")
    assert_bit_exact(loaded, state)
    assert all(type(value) is np.ndarray for value in loaded.values())  # arrays come back, not Tensors


def test_model_state_dict_round_trip(tmp_path, rng):
    model = nn.Sequential(nn.Linear(4, 8, dtype=np.float32), nn.ReLU(), nn.Linear(8, 3, dtype=np.float32))
    tg.save(model.state_dict(), str(tmp_path / "model.npz"))  # a str path works as well as a Path
    loaded = tg.load(str(tmp_path / "model.npz"))
    assert_bit_exact(loaded, model.state_dict())
    fresh = nn.Sequential(nn.Linear(4, 8, dtype=np.float32), nn.ReLU(), nn.Linear(8, 3, dtype=np.float32))
    fresh.load_state_dict(loaded)
    x = Tensor(rng.standard_normal((5, 4)).astype(np.float32))
    assert model(x).data.tobytes() == fresh(x).data.tobytes()


def test_names_with_dots_keep_their_order(tmp_path):
    state = OrderedDict((name, np.zeros(1)) for name in ["z.1.weight", "a.0.bias", "encoder.10.weight", "m"])
    tg.save(state, tmp_path / "order.npz")
    assert list(tg.load(tmp_path / "order.npz")) == list(state)


def test_an_empty_state_dict_round_trips(tmp_path):
    tg.save({}, tmp_path / "empty.npz")
    assert tg.load(tmp_path / "empty.npz") == OrderedDict()


def test_the_path_is_used_as_given_without_adding_npz(tmp_path):
    tg.save({"w": np.ones(2)}, tmp_path / "checkpoint.bin")
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.bin"]
    np.testing.assert_array_equal(tg.load(tmp_path / "checkpoint.bin")["w"], np.ones(2))


def test_saving_again_replaces_the_file(tmp_path):
    path = tmp_path / "state.npz"
    tg.save({"old": np.ones(3)}, path)
    tg.save({"new": np.zeros(2)}, path)
    assert list(tg.load(path)) == ["new"]


def test_a_state_dict_key_named_file_round_trips(tmp_path):
    tg.save({"file": np.ones(2)}, tmp_path / "state.npz")
    assert list(tg.load(tmp_path / "state.npz")) == ["file"]


def test_a_state_dict_key_named_allow_pickle_is_not_lost(tmp_path):
    tg.save({"allow_pickle": np.ones(2), "weight": np.zeros(1)}, tmp_path / "state.npz")
    assert list(tg.load(tmp_path / "state.npz")) == ["allow_pickle", "weight"]


# ------------------------------------------------------------------------------------------------------------
# The file is plain numpy
# ------------------------------------------------------------------------------------------------------------


def test_numpy_reads_the_file_without_pickle(tmp_path, rng):
    state = {"layer.weight": rng.standard_normal((2, 3)), "layer.bias": np.arange(2, dtype=np.int32)}
    path = tmp_path / "state.npz"
    tg.save(state, path)
    with np.load(path, allow_pickle=False) as archive:
        assert sorted(archive.files) == sorted(state)
        for name, array in state.items():
            assert archive[name].tobytes() == array.tobytes() and archive[name].dtype == array.dtype


def test_load_reads_a_file_numpy_savez_wrote(tmp_path):
    path = tmp_path / "numpy.npz"
    np.savez(path, weight=np.eye(2), bias=np.zeros(2))
    loaded = tg.load(path)
    np.testing.assert_array_equal(loaded["weight"], np.eye(2))
    assert set(loaded) == {"weight", "bias"}


def test_save_writes_atomically_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "state.npz"
    tg.save({"w": np.ones(3)}, path)
    tg.save({"w": np.zeros(3)}, path)
    assert [p.name for p in tmp_path.iterdir()] == ["state.npz"]


def test_a_failed_save_leaves_no_temporary_file_and_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "state.npz"
    tg.save({"w": np.ones(3)}, path)

    def write_array_that_fails_halfway(member, array, **options):
        member.write(b"\x93NUMPY half an array")
        raise OSError("disk full")

    monkeypatch.setattr(np.lib.format, "write_array", write_array_that_fails_halfway)
    with pytest.raises(OSError, match="disk full"):
        tg.save({"w": np.zeros(3)}, path)
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["state.npz"]
    np.testing.assert_array_equal(tg.load(path)["w"], np.ones(3))


# ------------------------------------------------------------------------------------------------------------
# What save refuses
# ------------------------------------------------------------------------------------------------------------


def test_saving_a_module_instead_of_its_state_dict_gives_a_hint(tmp_path):
    with pytest.raises(TypeError, match=r"got Linear; pass model\.state_dict\(\)"):
        tg.save(nn.Linear(2, 2), tmp_path / "model.npz")
    assert list(tmp_path.iterdir()) == []


def test_saving_something_that_is_not_a_mapping(tmp_path):
    with pytest.raises(TypeError, match=r"save\(\) takes a mapping of names to arrays, got list$"):
        tg.save([np.ones(2)], tmp_path / "list.npz")


def test_saving_python_objects_is_refused_by_name(tmp_path):
    with pytest.raises(TypeError, match="'config' holds Python objects"):
        tg.save({"w": np.ones(2), "config": {"lr": 0.1}}, tmp_path / "objects.npz")
    with pytest.raises(TypeError, match="'names' holds Python objects"):
        tg.save({"names": np.array(["a", None], dtype=object)}, tmp_path / "objects.npz")
    assert list(tmp_path.iterdir()) == []


def test_names_must_be_strings(tmp_path):
    with pytest.raises(TypeError, match="names must be non-empty strings, got 0"):
        tg.save({0: np.ones(2)}, tmp_path / "keys.npz")


# ------------------------------------------------------------------------------------------------------------
# What load refuses, always naming the file
# ------------------------------------------------------------------------------------------------------------


def test_a_npz_holding_an_object_array_is_refused_and_never_unpickled(tmp_path):
    path = tmp_path / "objects.npz"
    np.savez(path, weight=np.ones(2), config=np.array([{"lr": 0.1}], dtype=object), allow_pickle=True)
    with pytest.raises(
        ValueError, match=r"'config' in .*objects\.npz holds pickled Python objects; load\(\) never unpickles"
    ):
        tg.load(path)


class Boobytrap:
    """Unpickling this runs code: the reason load() must never unpickle."""

    triggered = False

    def __reduce__(self):
        return (Boobytrap._trigger, ())

    @staticmethod
    def _trigger():
        Boobytrap.triggered = True
        return "ran"


def test_loading_a_malicious_npz_runs_nothing(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, payload=np.array([Boobytrap()], dtype=object), allow_pickle=True)
    Boobytrap.triggered = False
    with pytest.raises(ValueError, match="never unpickles"):
        tg.load(path)
    assert not Boobytrap.triggered


def test_a_pickle_file_is_refused_and_never_unpickled(tmp_path):
    path = tmp_path / "model.pt"
    with path.open("wb") as file:
        pickle.dump({"payload": Boobytrap()}, file)
    Boobytrap.triggered = False
    with pytest.raises(ValueError, match=re.escape(str(path))):
        tg.load(path)
    assert not Boobytrap.triggered


def test_a_truncated_file_is_an_error_naming_it(tmp_path, rng):
    path = tmp_path / "state.npz"
    tg.save({"w": rng.standard_normal(1000)}, path)
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 10, 30):
        truncated = tmp_path / f"truncated_{cut}.npz"
        truncated.write_bytes(data[:cut])
        with pytest.raises(ValueError, match=rf"load\(\): {re.escape(str(truncated))} is not a readable \.npz"):
            tg.load(truncated)


def test_a_damaged_member_is_an_error_naming_the_file_and_the_key(tmp_path):
    path = tmp_path / "state.npz"
    tg.save({"w": np.full(100, 1.0)}, path)
    data = bytearray(path.read_bytes())
    position = data.index(np.float64(1.0).tobytes())
    data[position + 7] ^= 0x01  # flip a bit of the first value: the zip's CRC no longer matches
    damaged = tmp_path / "damaged.npz"
    damaged.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=rf"{re.escape(str(damaged))} is truncated or damaged at 'w'"):
        tg.load(damaged)


@pytest.mark.parametrize(
    "content", [b"", b"hello, this is not a checkpoint\n", b"PK\x03\x04garbage"], ids=["empty", "text", "bad-zip"]
)
def test_a_foreign_file_is_an_error_naming_it(tmp_path, content):
    path = tmp_path / "foreign.npz"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=rf"load\(\): {re.escape(str(path))} is not a readable \.npz state dict"):
        tg.load(path)


def test_a_zip_of_other_files_is_refused(tmp_path):
    path = tmp_path / "notes.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "not an array")
    with pytest.raises(ValueError, match=re.escape(str(path))):
        tg.load(path)


def test_a_single_npy_is_refused_by_name(tmp_path):
    path = tmp_path / "array.npy"
    np.save(path, np.ones(3))
    with pytest.raises(ValueError, match=rf"{re.escape(str(path))} holds a single array, not a \.npz archive"):
        tg.load(path)


def test_a_missing_file_names_its_path(tmp_path):
    path = tmp_path / "nowhere" / "model.npz"
    with pytest.raises(FileNotFoundError, match=rf"no such file: {re.escape(str(path))}"):
        tg.load(path)


def test_a_directory_is_an_error_naming_it(tmp_path):
    with pytest.raises(ValueError, match=re.escape(str(tmp_path))):
        tg.load(tmp_path)


# ------------------------------------------------------------------------------------------------------------
# Hostile files: every claim is checked against the bytes before anything is allocated
# ------------------------------------------------------------------------------------------------------------


def npy_bytes(descr: str, shape: tuple, data: bytes, fortran_order: bool = False) -> bytes:
    """A .npy file by hand, from the format's description: magic, version 1.0, a padded dict literal, data."""
    header = repr({"descr": descr, "fortran_order": fortran_order, "shape": shape}).encode("latin1")
    padding = -(10 + len(header) + 1) % 64
    header += b" " * padding + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + data


def zip_bytes(members, directory=None, count=None) -> bytes:
    """A stored (uncompressed) zip by hand; `directory` lists (name, offset-of-member-index) to lie about members."""
    body = b""
    offsets = []
    for name, data in members:
        offsets.append(len(body))
        encoded = name.encode()
        crc = zlib.crc32(data)
        body += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 0, 0, 0, crc, len(data), len(data), len(encoded), 0)
        body += encoded + data
    listing = directory if directory is not None else [(name, index) for index, (name, _) in enumerate(members)]
    central = b""
    for name, index in listing:
        data = members[index][1]
        encoded = name.encode()
        crc = zlib.crc32(data)
        central += struct.pack(
            "<4s6H3L5H2L",
            b"PK\x01\x02",
            20,
            20,
            0,
            0,
            0,
            0,
            crc,
            len(data),
            len(data),
            len(encoded),
            0,
            0,
            0,
            0,
            0,
            offsets[index],
        )
        central += encoded
    entries = len(listing) if count is None else count
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, entries, entries, len(central), len(body), 0)
    return body + central + end


def peak_memory_of(function, *args):
    """Run function(*args) under tracemalloc (numpy reports its arrays to it); return (result or error, peak)."""
    tracemalloc.start()
    try:
        try:
            result = function(*args)
        except Exception as error:  # returned, not raised: the caller checks which error it is
            result = error
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def assert_refused_cheaply(path, *phrases):
    """load(path) raises ValueError naming the file and each phrase, peaking under 4x the file size + 16 MiB."""
    error, peak = peak_memory_of(tg.load, path)
    assert isinstance(error, ValueError), f"expected a ValueError, got {error!r}"
    message = str(error)
    assert str(path) in message, message
    for phrase in phrases:
        assert phrase in message, message
    assert peak <= 4 * path.stat().st_size + 16 * 2**20, f"peak {peak} bytes for a {path.stat().st_size}-byte file"
    return message


def test_hand_made_helpers_write_what_numpy_reads(tmp_path):
    path = tmp_path / "hand.npz"
    path.write_bytes(zip_bytes([("w.npy", npy_bytes("<f8", (2,), np.array([1.5, -2.0]).tobytes()))]))
    with np.load(path) as archive:
        np.testing.assert_array_equal(archive["w"], [1.5, -2.0])
    np.testing.assert_array_equal(tg.load(path)["w"], [1.5, -2.0])


def test_a_compressed_zip_bomb_is_refused_without_inflating_it(tmp_path):
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive, archive.open("w.npy", "w") as member:
        np.lib.format.write_array(member, np.zeros(2**26, np.uint8))  # 64 MiB of zeros in about 64 KB
    assert path.stat().st_size < 2**20
    assert_refused_cheaply(path, "'w.npy'", "is compressed", "numpy.load")


def test_a_file_from_savez_compressed_is_refused_with_a_way_out(tmp_path):
    path = tmp_path / "compressed.npz"
    np.savez_compressed(path, w=np.ones(3))
    assert_refused_cheaply(path, "is compressed", "save it again")


@pytest.mark.parametrize("claimed", [(2**31,), (10**12,), (2**40, 2**40), (10**6, 10**6, 10**6)], ids=str)
def test_a_header_claiming_a_huge_shape_is_refused_before_allocating(tmp_path, claimed):
    path = tmp_path / "liar.npz"
    path.write_bytes(zip_bytes([("w.npy", npy_bytes("<f8", claimed, b"\x00" * 16))]))
    assert path.stat().st_size < 400
    assert_refused_cheaply(path, "'w'", f"claims shape {claimed}", "holds 16 bytes")


def test_a_header_claiming_fewer_bytes_than_the_member_holds_is_refused(tmp_path):
    path = tmp_path / "short-claim.npz"
    path.write_bytes(zip_bytes([("w.npy", npy_bytes("<f4", (2,), b"\x00" * 12))]))
    assert_refused_cheaply(path, "'w'", "(8 bytes)", "holds 12 bytes")


def test_one_member_listed_many_times_is_refused(tmp_path):
    # Without compression, a zip can still point a thousand directory entries at the same 1 MiB of data.
    path = tmp_path / "overlap.npz"
    member = npy_bytes("|u1", (2**20,), bytes(2**20))
    path.write_bytes(zip_bytes([("w0.npy", member)], directory=[(f"w{i}.npy", 0) for i in range(1000)]))
    assert_refused_cheaply(path, "overlaps another member")


def test_a_directory_claiming_more_members_than_it_holds_is_refused(tmp_path):
    path = tmp_path / "count.npz"
    path.write_bytes(zip_bytes([("w.npy", npy_bytes("<f8", (1,), bytes(8)))], count=60000))
    assert_refused_cheaply(path, "claims 60000 members")


def test_a_member_claiming_more_bytes_than_the_file_holds_is_refused(tmp_path):
    path = tmp_path / "cut.npz"
    good = zip_bytes([("w.npy", npy_bytes("<f8", (1000,), bytes(8000)))])
    # Cut the data short, keeping a directory (moved to the new end) that still claims all of it.
    directory, end = good.index(b"PK\x01\x02"), good.index(b"PK\x05\x06")
    moved_end = good[end : 16 + end] + struct.pack("<L", 2000) + good[end + 20 :]
    path.write_bytes(good[:2000] + good[directory:end] + moved_end)
    assert_refused_cheaply(path, "'w.npy'", "claims 8128 bytes at offset 0", "truncated")


def test_a_npy_header_that_is_not_a_literal_is_refused(tmp_path):
    path = tmp_path / "code.npz"
    member = b"\x93NUMPY\x01\x00" + struct.pack("<H", 54) + b"__import__('os').system('echo pwned')".ljust(54)
    path.write_bytes(zip_bytes([("w.npy", member)]))
    assert_refused_cheaply(path, "truncated or damaged at 'w'", "not a Python literal")


def test_a_npy_header_with_a_negative_size_is_refused(tmp_path):
    path = tmp_path / "negative.npz"
    path.write_bytes(zip_bytes([("w.npy", npy_bytes("<f8", (-1,), b""))]))
    assert_refused_cheaply(path, "not a tuple of sizes")


def test_an_encrypted_member_is_refused(tmp_path):
    path = tmp_path / "encrypted.npz"
    data = bytearray(zip_bytes([("w.npy", npy_bytes("<f8", (1,), bytes(8)))]))
    central = data.index(b"PK\x01\x02")
    data[central + 8] |= 1  # the general-purpose flag's bit 0
    path.write_bytes(bytes(data))
    assert_refused_cheaply(path, "is encrypted")


def test_the_same_key_twice_is_refused(tmp_path):
    path = tmp_path / "twice.npz"
    member = npy_bytes("<f8", (1,), bytes(8))
    path.write_bytes(zip_bytes([("w.npy", member), ("w.npy", member)]))
    assert_refused_cheaply(path, "holds 'w' twice")


def test_fortran_order_and_big_endian_arrays_read_back(tmp_path, rng):
    values = rng.standard_normal((3, 4))
    path = tmp_path / "orders.npz"
    fortran = npy_bytes("<f8", (3, 4), values.T.tobytes(), fortran_order=True)
    big_endian = npy_bytes(">i4", (3,), np.array([1, -2, 3], ">i4").tobytes())
    path.write_bytes(zip_bytes([("f.npy", fortran), ("b.npy", big_endian)]))
    loaded = tg.load(path)
    np.testing.assert_array_equal(loaded["f"], values)
    np.testing.assert_array_equal(loaded["b"], [1, -2, 3])


def test_loading_a_real_file_costs_about_its_size(tmp_path, rng):
    path = tmp_path / "big.npz"
    tg.save({"w": rng.standard_normal((500, 1000)), "b": np.zeros(1000)}, path)
    state, peak = peak_memory_of(tg.load, path)
    assert isinstance(state, OrderedDict)
    assert peak < 1.1 * path.stat().st_size + 2**20


def test_dev_zero_a_fifo_and_a_directory_are_not_regular_files(tmp_path):
    with pytest.raises(ValueError, match=r"/dev/zero is not a regular file \(it is a device"):
        tg.load("/dev/zero")
    fifo = tmp_path / "pipe.npz"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match=rf"{re.escape(str(fifo))} is not a regular file \(it is a FIFO\)"):
        tg.load(fifo)  # must not wait for a writer
    with pytest.raises(ValueError, match=rf"{re.escape(str(tmp_path))} is a directory"):
        tg.load(tmp_path)


# ------------------------------------------------------------------------------------------------------------
# Saving never produces a file that cannot be read back
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_saved_files_get_the_mode_the_umask_gives(tmp_path, umask, mode, suffix, request):
    if suffix == ".safetensors":
        request.getfixturevalue("safetensors")  # skipped without the package
    previous = os.umask(umask)
    try:
        tg.save({"w": np.ones(2)}, tmp_path / f"state{suffix}")
        np.save(tmp_path / "numpy.npy", np.ones(2))
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / f"state{suffix}").stat().st_mode) == mode
    assert stat.S_IMODE((tmp_path / "numpy.npy").stat().st_mode) == mode  # what numpy does, for comparison


def test_save_flushes_to_disk_before_renaming(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: events.append(("fsync", stat.S_ISREG(os.fstat(fd).st_mode))))
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append(("replace",)), real_replace(a, b)))
    tg.save({"w": np.ones(2)}, tmp_path / "state.npz")
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert events[:2] == [("fsync", True), ("replace",)]  # the file itself, then the rename (then the folder)


@pytest.mark.parametrize(
    ("name", "phrase"),
    [
        ("x\x00y", "holds a NUL character"),
        ("a" * 70000, "is 70000 bytes long in UTF-8; a .npz member name holds at most 65531"),
        ("é" * 33000, "is 66000 bytes long"),
        ("bad\udc80surrogate", "cannot be written as UTF-8"),
    ],
    ids=["nul", "70000-chars", "66000-utf8-bytes", "lone-surrogate"],
)
def test_names_the_reader_would_refuse_are_refused_before_writing(tmp_path, name, phrase):
    path = tmp_path / "state.npz"
    tg.save({"old": np.ones(1)}, path)
    with pytest.raises(ValueError, match=re.escape(phrase)):
        tg.save({"fine": np.ones(1), name: np.ones(1)}, path)
    assert [p.name for p in tmp_path.iterdir()] == ["state.npz"]
    assert list(tg.load(path)) == ["old"]  # the old checkpoint is untouched


@pytest.mark.parametrize(
    "name", ["a" * 65531, "é" * 32765, "/absolute", "../up", "back\\slash", "tab\tand\nnewline", "ünïcødé", "x.npy"]
)
def test_unusual_but_valid_names_round_trip(tmp_path, name):
    tg.save({name: np.arange(3)}, tmp_path / "state.npz")
    loaded = tg.load(tmp_path / "state.npz")
    assert list(loaded) == [name]
    np.testing.assert_array_equal(loaded[name], np.arange(3))


def test_a_file_left_by_a_killed_save_is_removed_by_the_next_save(tmp_path):
    path = tmp_path / "state.npz"
    # A child process saves, and dies (as if killed) halfway through writing the array.
    script = textwrap.dedent(
        f"""
        import os, numpy as np, tinygrad_nn as tg
        def die_halfway(member, array, **options):
            member.write(b"\\x93NUMPY half an array")
            os._exit(9)
        np.lib.format.write_array = die_halfway
        tg.save({{"w": np.ones(3)}}, {str(path)!r})
        """
    )
    assert subprocess.run([sys.executable, "-c", script], check=False).returncode == 9
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].startswith(".state.npz.tinygrad-nn-partial.")
    # A partial file of a process that is still running (here: pytest's parent) is left alone.
    live = tmp_path / f".state.npz.tinygrad-nn-partial.{socket.gethostname()}.{os.getppid()}.0000"
    live.write_bytes(b"in progress")
    tg.save({"w": np.zeros(3)}, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, "state.npz"])
    np.testing.assert_array_equal(tg.load(path)["w"], np.zeros(3))


def test_metadata_needs_a_safetensors_file(tmp_path):
    with pytest.raises(ValueError, match=r"metadata= needs a \.safetensors file"):
        tg.save({"w": np.ones(1)}, tmp_path / "state.npz", metadata={"a": "b"})
    assert list(tmp_path.iterdir()) == []


def test_saving_onto_a_directory_names_it(tmp_path):
    (tmp_path / "model.npz").mkdir()
    with pytest.raises(IsADirectoryError, match="is a directory"):
        tg.save({"w": np.ones(1)}, tmp_path / "model.npz")


def test_saving_into_a_missing_folder_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"save\(\): the folder .*missing for .*model\.npz does not exist"):
        tg.save({"w": np.ones(1)}, tmp_path / "missing" / "model.npz")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------------------------
# load_metadata: the same keys in the same order every time
# ------------------------------------------------------------------------------------------------------------


def test_load_metadata_sorts_the_keys_whatever_order_the_header_has(tmp_path):
    """The safetensors format keeps no order for its metadata; load_metadata answers sorted, run after run."""
    header = json.dumps(
        {
            "__metadata__": {"zeta": "1", "alpha": "2", "producer": "elsewhere", "mid": "3"},
            "w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
        }
    ).encode()
    path = tmp_path / "theirs.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + np.float32(1).tobytes())
    metadata = tg.load_metadata(path)  # reads only the header: no safetensors package needed
    assert list(metadata) == ["alpha", "mid", "producer", "zeta"]
    assert metadata == {"zeta": "1", "alpha": "2", "producer": "elsewhere", "mid": "3"}


def test_metadata_that_save_wrote_comes_back_sorted(tmp_path, safetensors):
    # The safetensors package writes the header's metadata in a different order on each run (a Rust HashMap).
    metadata = {key: str(index) for index, key in enumerate(["recipe", "epochs", "seed", "data", "b", "a"])}
    tg.save({"w": np.ones(2)}, tmp_path / "model.safetensors", metadata=metadata)
    keys = list(tg.load_metadata(tmp_path / "model.safetensors"))
    assert keys == sorted([*metadata, "format", "producer"])
