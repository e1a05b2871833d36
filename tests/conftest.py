"""Shared fixtures: the optional PyTorch reference, and a seeded generator."""

from __future__ import annotations

import os

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
