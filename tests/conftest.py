"""Shared fixtures: the optional PyTorch reference, and a seeded generator."""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import numpy as np
import pytest


@pytest.fixture(scope="session")
def torch():
    """PyTorch, for the tests that compare with it.

    PyTorch is never a dependency of tinygrad_nn. Without it these tests are skipped, with the command that
    installs it; CI sets TINYGRAD_NN_REQUIRE_TORCH=1 so that there they must run.
    """
    try:
        import torch as torch_module
    except ImportError:
        if os.environ.get("TINYGRAD_NN_REQUIRE_TORCH") == "1":
            pytest.fail("TINYGRAD_NN_REQUIRE_TORCH=1 but PyTorch is not installed")
        pytest.skip("PyTorch is not installed (pip install torch==2.13.0 to run the comparisons)")
    torch_module.set_default_dtype(torch_module.float64)
    return torch_module


@pytest.fixture
def rng() -> np.random.Generator:
    """A generator with a fixed seed, so every test sees the same numbers."""
    return np.random.default_rng(1234)


def optional_module(name: str, install: str) -> ModuleType:
    """Import an optional interchange package (safetensors, onnx, onnxruntime) or skip the test, saying how to get it.

    CI sets TINYGRAD_NN_REQUIRE_INTEROP=1 (and installs the `interop` extra), so that there these tests must run.
    """
    try:
        return importlib.import_module(name)
    except ImportError:
        if os.environ.get("TINYGRAD_NN_REQUIRE_INTEROP") == "1":
            pytest.fail(f"TINYGRAD_NN_REQUIRE_INTEROP=1 but {name} is not installed")
        pytest.skip(f"{name} is not installed ({install}, or pip install -e '.[interop]')")


@pytest.fixture(scope="session")
def safetensors() -> ModuleType:
    """The safetensors package (its numpy API is ``safetensors.numpy``), or a skip."""
    module = optional_module("safetensors", "pip install safetensors")
    importlib.import_module("safetensors.numpy")
    return module


@pytest.fixture(scope="session")
def onnx() -> ModuleType:
    """The onnx package, or a skip."""
    return optional_module("onnx", "pip install onnx")


@pytest.fixture(scope="session")
def onnxruntime() -> ModuleType:
    """ONNX Runtime, or a skip."""
    return optional_module("onnxruntime", "pip install onnxruntime")
