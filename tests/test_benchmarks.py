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


def test_the_scope_overhead_script_counts_what_a_step_records():
    """scripts/measure_scope_overhead.py, behind the table on docs/graphs.md, counts the module calls a
    Sequential records for its children, and its switch really turns the recording off."""
    sys.path.insert(0, str(BENCHMARKS.parent / "scripts"))
    try:
        script = importlib.import_module("measure_scope_overhead")
    finally:
        sys.path.remove(str(BENCHMARKS.parent / "scripts"))
    import tinygrad_nn as tg
    from tinygrad_nn.nn import functional as F  # noqa: N812

    model, _, images, labels = script.build()
    loss = F.cross_entropy(model(tg.Tensor(images)), labels)
    assert script.module_calls_per_step(loss) == 4  # the Sequential and its three children
    assert script.ops_in_modules(loss) == 3
    with script.scopes_off():
        assert script.ops_in_modules(F.cross_entropy(model(tg.Tensor(images)), labels)) == 0
    assert script.ops_in_modules(F.cross_entropy(model(tg.Tensor(images)), labels)) == 3
    assert isinstance(script.cost_per_op(repeat=1), float)  # it reaches the engine's state as it is today


def test_the_thread_state_script_reads_the_same_flags_every_way(capsys):
    """scripts/measure_thread_state.py, behind benchmarks/README.md's table on per-thread grad mode: every way
    it times reads the same three flags and gives the same answer, and the chosen way is the engine's."""
    sys.path.insert(0, str(BENCHMARKS.parent / "scripts"))
    try:
        script = importlib.import_module("measure_thread_state")
    finally:
        sys.path.remove(str(BENCHMARKS.parent / "scripts"))
    from tinygrad_nn import autograd

    assert {function() for function in script.CANDIDATES.values()} == {True}
    assert set(autograd._ThreadState.__slots__) >= {"grad_enabled", "scope", "unusual"}
    assert isinstance(autograd._local, __import__("threading").local)
    costs = script.main(number=1000, repeat=1)
    assert set(costs) == set(script.CANDIDATES) and all(cost > 0 for cost in costs.values())
    assert "(chosen)" in capsys.readouterr().out
