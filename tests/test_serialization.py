"""save and load: a state dict as a plain .npz, bit-exact, readable by numpy, never unpickled."""

from __future__ import annotations

import pickle
import re
import zipfile
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
