"""save and load in the safetensors format: round trips, metadata, PyTorch in both directions, hostile files."""

from __future__ import annotations

import json
import re
import struct
import sys
import tracemalloc
from collections import OrderedDict

import numpy as np
import pytest

import tinygrad_nn as tg
from tinygrad_nn import Tensor, nn
from tinygrad_nn.serialization import load_metadata


@pytest.fixture(autouse=True)
def _needs_safetensors(safetensors):
    """Every test here needs the package (skipped without it, unless TINYGRAD_NN_REQUIRE_INTEROP=1)."""


def safetensors_bytes(entries: dict, data: bytes, metadata: dict | None = None, pad_to: int = 8) -> bytes:
    """A .safetensors file by hand, from the format's description: u64 header length, JSON header, data."""
    header = dict(entries)
    if metadata is not None:
        header = {"__metadata__": metadata, **header}
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % pad_to)
    return struct.pack("<Q", len(text)) + text + data


def peak_memory_of(function, *args):
    tracemalloc.start()
    try:
        try:
            result = function(*args)
        except Exception as error:  # returned, for the caller to check
            result = error
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def assert_refused_cheaply(path, *phrases):
    error, peak = peak_memory_of(tg.load, path)
    assert isinstance(error, ValueError), f"expected a ValueError, got {error!r}"
    for phrase in (str(path), *phrases):
        assert phrase in str(error), str(error)
    assert peak <= 4 * path.stat().st_size + 16 * 2**20, f"peak {peak} bytes for a {path.stat().st_size}-byte file"
    return str(error)


# ------------------------------------------------------------------------------------------------------------
# Round trips
# ------------------------------------------------------------------------------------------------------------


def test_round_trip_is_exact_for_every_dtype_the_format_holds(tmp_path, rng):
    state = OrderedDict(
        [
            ("float64", rng.standard_normal((3, 4))),
            ("float32", rng.standard_normal(5).astype(np.float32)),
            ("float16", np.array([1.5, -2.25], dtype=np.float16)),
            ("int64", np.arange(-3, 3)),
            ("int32", np.array([-(2**31), 2**31 - 1], dtype=np.int32)),
            ("int16", np.array([-7, 7], dtype=np.int16)),
            ("int8", np.array([-128, 127], dtype=np.int8)),
            ("uint64", np.array([0, 2**64 - 1], dtype=np.uint64)),
            ("uint32", np.array([2**32 - 1], dtype=np.uint32)),
            ("uint16", np.array([65535], dtype=np.uint16)),
            ("uint8", np.array([0, 255], dtype=np.uint8)),
            ("bool", np.array([True, False])),
            ("complex64", np.array([1 + 2j], dtype=np.complex64)),
            ("scalar", np.array(3.5)),
            ("empty", np.zeros((0, 3))),
            ("special", np.array([np.nan, np.inf, -np.inf, -0.0, 5e-324])),
            ("transposed", np.arange(12.0).reshape(3, 4).T),  # not contiguous
            ("big-endian", np.arange(4, dtype=">i4")),
        ]
    )
    path = tmp_path / "state.safetensors"
    assert tg.save(state, path) is None
    loaded = tg.load(path)
    assert isinstance(loaded, OrderedDict)
    assert set(loaded) == set(state)
    for name, array in state.items():
        assert loaded[name].dtype == array.dtype.newbyteorder("="), name
        assert loaded[name].shape == array.shape, name
        assert loaded[name].tobytes() == np.ascontiguousarray(array, array.dtype.newbyteorder("=")).tobytes(), name
        assert loaded[name].flags.writeable, name


def test_a_model_round_trips_through_safetensors(tmp_path, rng):
    model = nn.Sequential(nn.Linear(4, 8, dtype=np.float32), nn.ReLU(), nn.Linear(8, 3, dtype=np.float32))
    tg.save(model.state_dict(), tmp_path / "model.safetensors")
    fresh = nn.Sequential(nn.Linear(4, 8, dtype=np.float32), nn.ReLU(), nn.Linear(8, 3, dtype=np.float32))
    fresh.load_state_dict(tg.load(tmp_path / "model.safetensors"))
    x = Tensor(rng.standard_normal((5, 4)).astype(np.float32))
    assert model(x).data.tobytes() == fresh(x).data.tobytes()


def test_the_suffix_chooses_the_format_and_load_recognises_either(tmp_path):
    tg.save({"w": np.ones(2)}, tmp_path / "a.safetensors")
    tg.save({"w": np.ones(2)}, tmp_path / "a.npz")
    tg.save({"w": np.ones(2)}, tmp_path / "b.SafeTensors")
    assert (tmp_path / "a.npz").read_bytes()[:2] == b"PK"
    assert (tmp_path / "a.safetensors").read_bytes()[8:9] == b"{"
    assert (tmp_path / "b.SafeTensors").read_bytes()[8:9] == b"{"
    # Renamed, each is still recognised by its content.
    (tmp_path / "a.safetensors").rename(tmp_path / "weights.bin")
    np.testing.assert_array_equal(tg.load(tmp_path / "weights.bin")["w"], np.ones(2))


def test_the_safetensors_package_reads_what_save_writes(tmp_path, safetensors, rng):
    state = {"layer.weight": rng.standard_normal((2, 3)).astype(np.float32), "layer.bias": np.zeros(2)}
    tg.save(state, tmp_path / "state.safetensors")
    loaded = safetensors.numpy.load_file(tmp_path / "state.safetensors")
    assert set(loaded) == set(state)
    for name, array in state.items():
        np.testing.assert_array_equal(loaded[name], array)


def test_load_reads_what_the_safetensors_package_writes(tmp_path, safetensors, rng):
    state = {"a": rng.standard_normal((3, 2)), "b": np.arange(5, dtype=np.int16)}
    safetensors.numpy.save_file(state, tmp_path / "theirs.safetensors")
    loaded = tg.load(tmp_path / "theirs.safetensors")
    for name, array in state.items():
        np.testing.assert_array_equal(loaded[name], array)
    assert load_metadata(tmp_path / "theirs.safetensors") == {}


# ------------------------------------------------------------------------------------------------------------
# Metadata
# ------------------------------------------------------------------------------------------------------------


def test_metadata_goes_into_the_header_and_reads_back(tmp_path, safetensors):
    recipe = json.dumps({"model": "mlp", "hidden": [128]})
    path = tmp_path / "model.safetensors"
    tg.save({"w": np.ones(2)}, path, metadata={"recipe": recipe, "epochs": "3"})
    metadata = load_metadata(path)
    assert metadata == {"format": "pt", "producer": f"tinygrad_nn {tg.__version__}", "recipe": recipe, "epochs": "3"}
    assert json.loads(metadata["recipe"]) == {"model": "mlp", "hidden": [128]}
    with safetensors.safe_open(path, framework="np") as reader:  # the package sees the same header
        assert reader.metadata() == metadata


def test_metadata_without_user_keys_still_names_the_layout_and_producer(tmp_path):
    tg.save({"w": np.ones(2)}, tmp_path / "model.safetensors")
    expected = {"format": "pt", "producer": f"tinygrad_nn {tg.__version__}"}
    assert load_metadata(tmp_path / "model.safetensors") == expected


def test_user_metadata_may_override_the_defaults(tmp_path):
    tg.save({"w": np.ones(2)}, tmp_path / "model.safetensors", metadata={"format": "np"})
    assert load_metadata(tmp_path / "model.safetensors")["format"] == "np"


def test_a_npz_has_no_metadata(tmp_path):
    tg.save({"w": np.ones(2)}, tmp_path / "model.npz")
    assert load_metadata(tmp_path / "model.npz") == {}


def test_load_metadata_of_something_else_names_it(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(ValueError, match=rf"{re.escape(str(path))} is neither a \.safetensors file nor a \.npz"):
        load_metadata(path)


@pytest.mark.parametrize("metadata", [{"epochs": 3}, {1: "one"}, ["not", "a", "mapping"]], ids=str)
def test_metadata_must_be_text(tmp_path, metadata):
    with pytest.raises(TypeError, match="metadata"):
        tg.save({"w": np.ones(1)}, tmp_path / "model.safetensors", metadata=metadata)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------------------------
# What save refuses
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "array",
    [np.array([1.0], dtype=np.longdouble), np.array([1 + 1j]), np.array(["text"]), np.zeros(2, dtype="i4,f4")],
    ids=["longdouble", "complex128", "str", "structured"],
)
def test_dtypes_the_format_cannot_hold_are_refused_by_name(tmp_path, array):
    if array.dtype == np.float64:  # platforms where long double is double
        pytest.skip("np.longdouble is float64 here")
    with pytest.raises(TypeError, match=rf"'odd' has dtype {re.escape(str(array.dtype))}, which the safetensors"):
        tg.save({"fine": np.ones(1), "odd": array}, tmp_path / "state.safetensors")
    assert list(tmp_path.iterdir()) == []


def test_the_reserved_name_is_refused(tmp_path):
    with pytest.raises(ValueError, match="'__metadata__' is reserved"):
        tg.save({"__metadata__": np.ones(1)}, tmp_path / "state.safetensors")


def test_without_the_package_save_and_load_say_how_to_install_it(tmp_path, monkeypatch):
    tg.save({"w": np.ones(1)}, tmp_path / "there.safetensors")
    monkeypatch.setitem(sys.modules, "safetensors", None)
    monkeypatch.setitem(sys.modules, "safetensors.numpy", None)
    with pytest.raises(ImportError, match=r"pip install safetensors .*pip install -e '\.\[interop\]'"):
        tg.save({"w": np.ones(1)}, tmp_path / "model.safetensors")
    with pytest.raises(ImportError, match="pip install safetensors"):
        tg.load(tmp_path / "there.safetensors")
    assert load_metadata(tmp_path / "there.safetensors")["format"] == "pt"  # the header needs no package


# ------------------------------------------------------------------------------------------------------------
# PyTorch reads what we write, and we read what PyTorch writes
# ------------------------------------------------------------------------------------------------------------


def tinygrad_mlp(dtype, bias=True):
    return nn.Sequential(
        nn.Linear(6, 16, bias=bias, dtype=dtype),
        nn.ReLU(),
        nn.Linear(16, 8, bias=bias, dtype=dtype),
        nn.Tanh(),
        nn.Linear(8, 3, bias=bias, dtype=dtype),
    )


def torch_mlp(torch, dtype, bias=True):
    return torch.nn.Sequential(
        torch.nn.Linear(6, 16, bias=bias, dtype=dtype),
        torch.nn.ReLU(),
        torch.nn.Linear(16, 8, bias=bias, dtype=dtype),
        torch.nn.Tanh(),
        torch.nn.Linear(8, 3, bias=bias, dtype=dtype),
    )


def tutorial_network(dtype):
    """Tutorial 001's network: Linear without bias, Sigmoid, Linear without bias, Sigmoid."""
    return nn.Sequential(
        nn.Linear(64, 20, bias=False, dtype=dtype),
        nn.Sigmoid(),
        nn.Linear(20, 10, bias=False, dtype=dtype),
        nn.Sigmoid(),
    )


def torch_tutorial_network(torch, dtype):
    return torch.nn.Sequential(
        torch.nn.Linear(64, 20, bias=False, dtype=dtype),
        torch.nn.Sigmoid(),
        torch.nn.Linear(20, 10, bias=False, dtype=dtype),
        torch.nn.Sigmoid(),
    )


CASES = {
    "mlp-float32": (lambda: tinygrad_mlp(np.float32), lambda torch: torch_mlp(torch, torch.float32), 6, np.float32),
    "mlp-float64": (lambda: tinygrad_mlp(np.float64), lambda torch: torch_mlp(torch, torch.float64), 6, np.float64),
    "mlp-no-bias": (
        lambda: tinygrad_mlp(np.float32, bias=False),
        lambda torch: torch_mlp(torch, torch.float32, bias=False),
        6,
        np.float32,
    ),
    "tutorial-001-float32": (
        lambda: tutorial_network(np.float32),
        lambda torch: torch_tutorial_network(torch, torch.float32),
        64,
        np.float32,
    ),
    "tutorial-001-float64": (
        lambda: tutorial_network(np.float64),
        lambda torch: torch_tutorial_network(torch, torch.float64),
        64,
        np.float64,
    ),
}


@pytest.mark.torch
@pytest.mark.parametrize("case", list(CASES))
def test_pytorch_loads_our_file_strictly_and_computes_the_same_logits(tmp_path, torch, safetensors, rng, case):
    import safetensors.torch

    make_ours, make_theirs, features, dtype = CASES[case]
    ours = make_ours()
    path = tmp_path / "model.safetensors"
    tg.save(ours.state_dict(), path)
    theirs = make_theirs(torch)
    result = theirs.load_state_dict(safetensors.torch.load_file(path), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    x = rng.standard_normal((7, features)).astype(dtype)
    with torch.no_grad():
        expected = theirs(torch.from_numpy(x)).numpy()
    with tg.no_grad():
        got = ours(Tensor(x)).data
    assert got.dtype == expected.dtype == dtype
    np.testing.assert_allclose(got, expected, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-6)


@pytest.mark.torch
@pytest.mark.parametrize("case", list(CASES))
def test_we_load_a_pytorch_file_strictly_and_compute_the_same_logits(tmp_path, torch, safetensors, rng, case):
    import safetensors.torch

    make_ours, make_theirs, features, dtype = CASES[case]
    torch.manual_seed(0)
    theirs = make_theirs(torch)
    path = tmp_path / "torch.safetensors"
    safetensors.torch.save_file(theirs.state_dict(), path, metadata={"format": "pt"})
    ours = make_ours()
    ours.load_state_dict(tg.load(path), strict=True)
    for name, array in tg.load(path).items():
        assert array.dtype == dtype, name
    x = rng.standard_normal((7, features)).astype(dtype)
    with torch.no_grad():
        expected = theirs(torch.from_numpy(x)).numpy()
    with tg.no_grad():
        got = ours(Tensor(x)).data
    np.testing.assert_allclose(got, expected, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-6)


@pytest.mark.torch
def test_a_pytorch_bfloat16_file_loads_as_float32_with_a_warning(tmp_path, torch, safetensors):
    import safetensors.torch

    values = torch.tensor([1.0, -2.5, 3.140625, 1e30, float("inf")], dtype=torch.bfloat16)
    path = tmp_path / "bf16.safetensors"
    safetensors.torch.save_file({"w": values, "n": torch.arange(3)}, path)
    with pytest.warns(UserWarning, match=r"'w' hold bfloat16.*converted to float32"):
        loaded = tg.load(path)
    assert loaded["w"].dtype == np.float32
    np.testing.assert_array_equal(loaded["w"], values.float().numpy())
    np.testing.assert_array_equal(loaded["n"], [0, 1, 2])


# ------------------------------------------------------------------------------------------------------------
# Hostile files
# ------------------------------------------------------------------------------------------------------------


def test_a_hand_made_file_reads_back(tmp_path):
    path = tmp_path / "hand.safetensors"
    data = np.array([1.5, -2.0], "<f4").tobytes()
    path.write_bytes(safetensors_bytes({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, data))
    np.testing.assert_array_equal(tg.load(path)["w"], [1.5, -2.0])


def test_a_truncated_file_is_an_error_naming_it(tmp_path, rng):
    path = tmp_path / "state.safetensors"
    tg.save({"w": rng.standard_normal(1000), "b": np.zeros(3)}, path)
    data = path.read_bytes()
    for cut in (0, 5, 8, 20, len(data) // 2, len(data) - 1):
        truncated = tmp_path / f"cut{cut}.safetensors"
        truncated.write_bytes(data[:cut])
        message = assert_refused_cheaply(truncated)
        assert "is not a valid .safetensors file" in message or "it is truncated or forged" in message, message


def test_a_50_gb_claim_in_a_small_file_is_refused_before_allocating(tmp_path):
    path = tmp_path / "liar.safetensors"
    entries = {"w": {"dtype": "F32", "shape": [12_500_000_000], "data_offsets": [0, 50_000_000_000]}}
    path.write_bytes(safetensors_bytes(entries, bytes(64)))
    assert path.stat().st_size < 1024
    assert_refused_cheaply(path, "'w'", "claims data offsets [0, 50000000000]", "holds only 64 bytes")


def test_a_header_length_beyond_the_file_is_refused(tmp_path):
    path = tmp_path / "long-header.safetensors"
    path.write_bytes(struct.pack("<Q", 2**40) + b'{"w": 1}')
    assert_refused_cheaply(path, f"header claims {2**40} bytes")


@pytest.mark.parametrize(
    ("entries", "phrase"),
    [
        (
            {
                "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]},
            },
            "tensor 'b' at data offsets [4, 12] overlaps another tensor",
        ),
        (
            {
                "a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]},
            },
            "tensor 'b' at data offsets [8, 12] leaves a gap of 4 bytes",
        ),
        (
            {"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}},
            "'a' in {path} claims shape (3,) of F32 (12 bytes) in data offsets [0, 8]",
        ),
        ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, "tensors cover 8 bytes of data"),
        ({"a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}, "has shape [-2]"),
        ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}}, "has data_offsets [8, 0]"),
        ({"a": {"dtype": "F32", "shape": "2", "data_offsets": [0, 8]}}, "has shape '2'"),
        ({"a": {"dtype": "Q99", "shape": [2], "data_offsets": [0, 8]}}, "has dtype 'Q99'"),
        ({"a": {"dtype": "F8_E4M3", "shape": [8], "data_offsets": [0, 8]}}, "has dtype F8_E4M3"),
        ({"a": {"shape": [2], "data_offsets": [0, 8]}}, "lacks a dtype, shape or data_offsets"),
        ({"a": [1, 2]}, "lacks a dtype, shape or data_offsets"),
    ],
    ids=[
        "overlap",
        "gap",
        "shape-vs-offsets",
        "short-of-the-data",
        "negative-size",
        "reversed-offsets",
        "shape-not-a-list",
        "unknown-dtype",
        "float8",
        "no-dtype",
        "entry-not-an-object",
    ],
)
def test_a_header_lying_about_its_tensors_is_refused_naming_them(tmp_path, entries, phrase):
    path = tmp_path / "liar.safetensors"
    path.write_bytes(safetensors_bytes(entries, bytes(16)))
    assert_refused_cheaply(path, phrase.format(path=path))


@pytest.mark.parametrize(
    ("header", "phrase"),
    [
        (b"[1, 2, 3]", "its header is not a JSON object"),
        (b"{not json}", "its header is not JSON"),
        (b'{"a": 1, "a": 2}', "appears twice"),
        (b"\xff\xfe{}", "its header is not JSON"),
        (b'{"__metadata__": {"k": 1}}', "its __metadata__ is not an object of strings"),
        (b"[" * 100000 + b"]" * 100000, "its header is not"),
    ],
    ids=["list", "not-json", "duplicate-key", "not-utf8", "metadata-not-text", "deeply-nested"],
)
def test_a_header_that_is_not_a_valid_object_is_refused(tmp_path, header, phrase):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header)
    assert_refused_cheaply(path, phrase)


def test_a_hand_made_bfloat16_tensor_converts_exactly(tmp_path):
    expected = np.array([1.0, -2.5, 3.140625, 0.0], dtype=np.float32)  # each exact in bfloat16
    bits = (expected.view(np.uint32) >> 16).astype("<u2")
    path = tmp_path / "bf16.safetensors"
    entries = {"w": {"dtype": "BF16", "shape": [2, 2], "data_offsets": [0, 8]}}
    path.write_bytes(safetensors_bytes(entries, bits.tobytes()))
    with pytest.warns(UserWarning, match=rf"{re.escape(str(path))}: 'w' hold bfloat16"):
        loaded = tg.load(path)
    np.testing.assert_array_equal(loaded["w"], expected.reshape(2, 2))


def test_a_npz_named_safetensors_is_refused_by_name(tmp_path):
    path = tmp_path / "model.safetensors"
    np.savez(path.with_suffix(".npz"), w=np.ones(2))
    path.write_bytes(path.with_suffix(".npz").read_bytes())
    assert_refused_cheaply(path, "is not a valid .safetensors file")


def test_loading_a_real_file_costs_about_its_size(tmp_path, rng):
    path = tmp_path / "big.safetensors"
    tg.save({"w": rng.standard_normal((500, 1000)), "b": np.zeros(1000)}, path)
    state, peak = peak_memory_of(tg.load, path)
    assert isinstance(state, OrderedDict)
    assert peak < 2.1 * path.stat().st_size + 2**20
