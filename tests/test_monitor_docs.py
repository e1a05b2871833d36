"""docs/monitoring.md stays true: its outputs are what examples/gradient_monitor.py prints, its pictures are the
ones the example writes, its thresholds are the module's, and benchmark 10, which its costs come from, runs."""

from __future__ import annotations

import contextlib
import importlib
import io
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from tinygrad_nn import monitor as monitor_module

ROOT = Path(__file__).resolve().parent.parent
PAGE = (ROOT / "docs" / "monitoring.md").read_text(encoding="utf-8")
TEXT_BLOCK = re.compile(r"```text\n(.*?)\n```", re.DOTALL)
PICTURE = re.compile(r"!\[[^\]]*\]\(images/monitor/([^)]+)\)")


def import_from(folder: str, name: str):
    sys.path.insert(0, str(ROOT / folder))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(ROOT / folder))


@pytest.fixture(scope="module")
def example():
    pytest.importorskip("sklearn", reason="the example trains on scikit-learn's digits (the examples extra)")
    pytest.importorskip("matplotlib", reason="the example draws with matplotlib (the examples extra)")
    return import_from("examples", "gradient_monitor")


@pytest.fixture(scope="module")
def printed(example, tmp_path_factory):
    """What the example prints, run by run (without the lines naming the files it wrote), its folder, its monitors."""
    out = tmp_path_factory.mktemp("monitor-pictures")
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        monitors = example.main(out)
    runs = {}
    for chunk in stdout.getvalue().strip().split("\n\n"):
        lines = [line for line in chunk.splitlines() if not line.startswith("  ")]
        runs[lines[0].split(":")[0]] = "\n".join(lines)
    return runs, out, monitors


@pytest.mark.slow
def test_every_output_on_the_page_is_what_the_example_prints(example, printed):
    runs, _, _ = printed
    assert list(runs) == list(example.RUNS)
    blocks = [block for block in TEXT_BLOCK.findall(PAGE) if block.split(":")[0] in runs]
    assert [block.split(":")[0] for block in blocks] == list(runs)  # each run shown once, in order
    for block in blocks:
        assert block == runs[block.split(":")[0]]


@pytest.mark.slow
def test_the_pages_pictures_are_the_ones_the_example_writes(printed):
    _, out, _ = printed
    shown = PICTURE.findall(PAGE)
    committed = sorted(path.name for path in (ROOT / "docs" / "images" / "monitor").iterdir())
    assert sorted(shown) == committed
    not_written = set(shown) - {path.name for path in out.iterdir()}
    assert not_written == (set() if shutil.which("dot") else {"high-lr-graph.png"})  # the graph needs dot


@pytest.mark.slow
def test_what_the_page_says_of_the_healthy_tutorial_network(printed):
    monitor = printed[2]["tutorial"]
    layer_norm, update, _ = monitor._layer_series()
    first, second = np.median(layer_norm, axis=0)
    assert 1 / 3 < first / second < 3  # "within a factor of three of each other"
    low, high = monitor_module.UPDATE_RATIO_RANGE
    assert all(low < value < high for value in np.median(update, axis=0))  # "in the healthy band"
    assert np.nanmax(monitor.activation_fraction) == 0  # "no sigmoid unit is saturated"


def test_the_thresholds_on_the_page_are_the_modules():
    table = PAGE[PAGE.index("| kind | the condition |") :]
    assert monitor_module.VANISHING_RATIO == 1e-3 and "| 1e-3 |" in table
    assert monitor_module.EXPLODING_GROWTH == 1e3 and "| 1e3; from two steps |" in table
    assert monitor_module.DEAD_FRACTION == monitor_module.SATURATED_FRACTION == 0.5
    assert monitor_module.UPDATE_RATIO_RANGE == (1e-5, 1e-1) and "(1e-5, 1e-1)" in table
    assert monitor_module.PERSISTENCE == 0.5 and "at least `persistence` (half)" in PAGE
    defaults = monitor_module.GradientMonitor.__init__.__kwdefaults__
    assert defaults["sample_size"] == 1024 and "`sample_size` (1,024)" in PAGE
    assert defaults["dead_window"] == 64 and "`dead_window`\n(64)" in PAGE
    assert defaults["saturation_tolerance"] == 1e-3 and "`saturation_tolerance`, 1e-3" in PAGE
    assert defaults["histogram_steps"] == 32 and "`histogram_steps` (32)" in PAGE


def test_the_memory_the_page_quotes_is_the_records():
    from tinygrad_nn import nn

    monitor = monitor_module.GradientMonitor(nn.Linear(3, 2))
    per_parameter_and_step = (monitor._records.nbytes + monitor._received.nbytes) / (len(monitor._row_steps) * 2)
    assert per_parameter_and_step == 41 and "41 bytes per parameter and recorded\nstep" in PAGE


def test_the_overhead_benchmark_runs_and_reports_every_candidate():
    benchmark = import_from("benchmarks", "monitor_overhead")
    rows = benchmark.run(rounds=0.05)
    assert [row["network"] for row in rows] == ["784-100-10 sigmoid, SGD", "784-512-256-10 ReLU, Adam"]
    lines = benchmark.report(rows)
    assert lines[0].startswith("| network, batch 64 | bare step (CPU) | monitor detached |")
    assert all(line.count("%") == len(benchmark.CANDIDATES) - 1 for line in lines[2:])
