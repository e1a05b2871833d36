"""The graph pages of the docs stay true: their numbers come from the code that makes their pictures.

docs/graphs.md and docs/explorer.md quote numbers read off pictures that scripts/make_doc_images.py draws, and
timings that scripts/measure_explorer.py measures; these tests recompute what can be recomputed exactly, and run
the measuring script on a small graph so that it keeps working.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
GRAPHS = (ROOT / "docs" / "graphs.md").read_text(encoding="utf-8")
EXPLORER = (ROOT / "docs" / "explorer.md").read_text(encoding="utf-8")


def script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def pictures():
    return script("make_doc_images")


def test_the_vanishing_norms_quoted_are_the_pictures(pictures):
    source = pictures.vanishing().source
    norms = [float(n) for n in re.findall(r"grad norm ([0-9.e+-]+)", source)]
    weights = norms[::2]  # each block's weight, then its bias, first block first
    quoted = (
        "the last block's weight gradient has norm 0.13, the next 0.027, then 0.0029, and the\nfirst block's 1.2e-09"
    )
    assert quoted in GRAPHS
    assert [f"{weights[-1]:.2g}", f"{weights[-2]:.2g}", f"{weights[-3]:.2g}", f"{weights[0]:.2g}"] == [
        "0.13",
        "0.027",
        "0.0029",
        "1.2e-09",
    ]
    folded = pictures.vanishing_folded().source
    assert "6 of 10 vanishing" in folded and "6 of 10 vanish" in EXPLORER + GRAPHS


def test_the_folded_residual_blocks_quoted_are_the_pictures(pictures):
    from tinygrad_nn.viz.model import GraphModel

    model, loss = pictures.residual_mlp()
    graph = GraphModel([loss], model)
    (fold,) = [c for c in graph.containers if c.kind == "fold"]
    title, shape, note, _ = graph.summary(fold).parameters[0]
    line = f"{title} {shape} {note}"
    assert line == "fc.weight x 12 (16, 16) float64 grad norms 6.05 … 33.6"
    assert f"(`{line}`)" in EXPLORER
    assert "Block x 12" in pictures.residual_folded().source


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed (apt-get install graphviz)")
def test_the_png_size_quoted_is_what_render_graph_makes(tmp_path):
    from tinygrad_nn import Tensor, models
    from tinygrad_nn.viz import draw_graph, render_graph

    model = models.tutorial_network(64, 32, 10, np.float64, 0)
    loss = models.tutorial_loss(model(Tensor(np.random.default_rng(0).random((1, 64)))), np.array([0]))
    loss.backward()
    path = render_graph(draw_graph(loss, model), tmp_path / "demo.png")
    head = path.read_bytes()[:24]
    width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    assert "about\n  580 × 1820 pixels" in GRAPHS
    # Fonts differ a little between machines; the picture must be within a few percent of what the page says.
    assert abs(width - 580) / 580 < 0.05 and abs(height - 1820) / 1820 < 0.05, (width, height)


def test_the_api_table_lists_what_the_page_offers():
    source = (ROOT / "tinygrad_nn" / "viz" / "explorer.js").read_text(encoding="utf-8")
    api = source[source.index("window.tinygradExplorer = {") :]
    api = api[: api.index("\n  };")]
    offered = set(re.findall(r"^    (\w+):", api, re.MULTILINE)) - {"version", "data"}
    table = EXPLORER[EXPLORER.index("| call | returns or does |") : EXPLORER.index("The drawing carries")]
    first_column = [row.split(" | ")[0] for row in table.splitlines()[2:] if row.startswith("| ")]
    documented = {name for cell in first_column for name in re.findall(r"`(\w+)(?:\([^`]*\))?`", cell)}
    assert offered == documented


def test_the_explorer_pages_of_the_docs_are_self_contained(pictures, tmp_path):
    pages = pictures.explorer_pages(tmp_path)
    assert set(pages) == {"tutorial-001", "residual-mlp", "vanishing"}
    for page in pages.values():
        text = page.read_text(encoding="utf-8")
        assert "http://" not in text and "https://" not in text
        assert f"explorer-pages/{page.name}" in EXPLORER  # linked from the page


@pytest.mark.browser
def test_the_measuring_script_runs(tmp_path):
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        from test_viz_browser import REQUIRED, chromium_and_driver
    finally:
        sys.path.pop(0)
    _, _, problem = chromium_and_driver()
    if problem:
        if REQUIRED:
            pytest.fail(f"TINYGRAD_NN_REQUIRE_BROWSER=1 but {problem}")
        pytest.skip(problem)
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "measure_explorer.py"), "--ops", "60", "--runs", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    lines = result.stdout.splitlines()
    assert lines[0] == "chain of 60 ops: 121 nodes drawn as boxes"
    for measure in ("ready", "first click", "parse", "layout", "draw"):
        assert any(re.match(rf"  {measure} +\d+\.\d{{3}} s", line) for line in lines), (measure, lines)
    assert "--ops 5000 --runs 9" in EXPLORER
