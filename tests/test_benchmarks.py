"""The benchmarks stay runnable: every one `make bench` lists exists and has `run` and `report`, and the checks a
benchmark makes before it times anything pass (a benchmark that stops at its check leaves a hole in the README's
tables). Nothing here is timed: `make bench` measures."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def benchmark(name: str):
    sys.path.insert(0, str(BENCHMARKS))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(BENCHMARKS))


def test_every_listed_benchmark_is_a_module_with_run_and_report():
    run_all = benchmark("run_all")
    numbers = [int(title.split(".")[0]) for title in run_all.BENCHMARKS.values()]
    assert numbers == list(range(1, len(numbers) + 1)), "the README's tables are numbered in this order"
    for name in run_all.BENCHMARKS:
        module = benchmark(name)
        assert callable(module.run) and callable(module.report), name


def test_the_hvp_benchmark_computes_the_same_product_as_pytorch(torch):
    hvp = benchmark("hvp")
    gradient, hessian_vector = hvp.ours()
    _, torch_hvp = hvp.pytorch(torch)
    hvp.check_agreement(hessian_vector, torch_hvp)
    assert len(gradient()) == 4


def test_the_hvp_check_fails_on_a_different_vector(torch):
    hvp = benchmark("hvp")
    _, hessian_vector = hvp.ours()
    _, torch_hvp = hvp.pytorch(torch)
    with pytest.raises(AssertionError):
        hvp.check_agreement(lambda: [2 * v for v in hessian_vector()], torch_hvp)
