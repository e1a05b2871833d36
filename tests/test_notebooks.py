"""The notebooks in examples/: each one runs from top to bottom without an error, and graphs.ipynb shows SVG.

Each notebook runs in a fresh kernel on this interpreter (the one running pytest, so the kernel imports the same
tinygrad_nn), with examples/ as its working folder, as when it is opened in Jupyter there. The kernel is described
in a temporary kernel spec, so nothing has to be registered with Jupyter first. The notebooks are kept in git
without outputs; the executed copies live only in memory.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

from jupyter_client.kernelspec import KernelSpecManager  # noqa: E402 - after the skips above
from jupyter_client.manager import KernelManager  # noqa: E402

import tinygrad_nn as tg  # noqa: E402

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))
KERNEL_NAME = "tinygrad-nn-tests"
CELL_TIMEOUT = 180  # seconds; the slowest cell (tutorial 001's training) takes a few


@pytest.fixture(scope="module")
def kernel_specs(tmp_path_factory: pytest.TempPathFactory) -> KernelSpecManager:
    """A kernel spec that starts ipykernel on this interpreter, in a folder of its own."""
    kernels = tmp_path_factory.mktemp("kernels")
    spec = kernels / KERNEL_NAME
    spec.mkdir()
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "tinygrad_nn tests", "language": "python"})
    )
    return KernelSpecManager(kernel_dirs=[str(kernels)])


def execute(path: Path, kernel_specs: KernelSpecManager) -> nbformat.NotebookNode:
    """Run every cell of the notebook at `path` and return it with its outputs; raises on the first error."""
    notebook = nbformat.read(path, as_version=4)
    manager = KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=kernel_specs)
    client = nbclient.NotebookClient(
        notebook,
        km=manager,
        timeout=CELL_TIMEOUT,
        resources={"metadata": {"path": str(EXAMPLES)}},
    )
    client.execute()
    return notebook


def outputs_of(notebook: nbformat.NotebookNode) -> list[dict]:
    return [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]


def fashion_mnist_missing() -> str | None:
    try:
        tg.data.load_fashion_mnist(download=False)
    except tg.data.DataError as error:
        return f"Fashion-MNIST is not on this machine (apt-get install dataset-fashion-mnist): {error}"
    return None


def interop_missing() -> str | None:
    """Why moving_on.ipynb cannot run here (it needs PyTorch and the interop extra), or None."""
    import importlib

    for module, install in [
        ("torch", "pip install torch==2.13.0"),
        ("safetensors", "pip install -e '.[interop]'"),
        ("onnx", "pip install -e '.[interop]'"),
        ("onnxruntime", "pip install -e '.[interop]'"),
    ]:
        try:
            importlib.import_module(module)
        except ImportError:
            return f"moving_on.ipynb needs {module}, which is not installed ({install})"
    return None


def test_there_is_a_notebook_per_tutorial_and_one_for_each_guide():
    names = {path.stem for path in NOTEBOOKS}
    tutorials = {path.stem for path in EXAMPLES.glob("tutorial_*.py")}
    assert tutorials, "no tutorial examples found"
    assert names == tutorials | {"cnn", "graphs", "monitoring", "moving_on", "second_order"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_is_stored_without_outputs(path: Path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name}: cell {index} has outputs; clear them before committing"
            assert cell.execution_count is None, f"{path.name}: cell {index} has an execution count"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_runs_without_errors(path: Path, kernel_specs: KernelSpecManager):
    if path.stem in ("tutorial_001_make_your_own", "cnn") and (reason := fashion_mnist_missing()):
        pytest.skip(reason)
    if path.stem == "graphs" and shutil.which("dot") is None:
        pytest.skip("Graphviz's dot program is not on PATH (apt-get install graphviz)")
    if path.stem == "moving_on" and (reason := interop_missing()):
        required = (
            os.environ.get("TINYGRAD_NN_REQUIRE_INTEROP") == "1" or os.environ.get("TINYGRAD_NN_REQUIRE_TORCH") == "1"
        )
        if required:
            pytest.fail(reason)
        pytest.skip(reason)
    notebook = execute(path, kernel_specs)
    errors = [output for output in outputs_of(notebook) if output.output_type == "error"]
    assert not errors, f"{path.name}: {errors[0].ename}: {errors[0].evalue}"
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.execution_count is not None for cell in code_cells)
    if path.stem == "graphs":
        svgs = [
            output.data["image/svg+xml"]
            for output in outputs_of(notebook)
            if output.output_type in ("display_data", "execute_result") and "image/svg+xml" in output.data
        ]
        assert len(svgs) == 3, f"graphs.ipynb should show three graphs inline, showed {len(svgs)}"
        assert all("<svg" in svg for svg in svgs)
        assert any("0.weight" in svg for svg in svgs), "the parameters' names are missing from the pictures"
    if path.stem == "cnn":
        text = "".join(output.get("text", "") for output in outputs_of(notebook))
        pictures = [output for output in outputs_of(notebook) if "image/png" in output.get("data", {})]
        assert len(pictures) == 3, f"cnn.ipynb should draw images, edges and feature maps, drew {len(pictures)}"
        accuracies = [float(value) for value in re.findall(r"test accuracy (0\.\d+)", text)]
        assert len(accuracies) == 3 and accuracies[-1] > 0.75, accuracies
        assert "is a Dropout in training mode" in text and "eval mode, second order: True" in text
    if path.stem == "monitoring":
        text = "".join(output.get("text", "") for output in outputs_of(notebook))
        pictures = [output for output in outputs_of(notebook) if "image/png" in output.get("data", {})]
        assert len(pictures) >= 5, f"monitoring.ipynb should show its pictures inline, showed {len(pictures)}"
        assert "gradient monitor: no findings (1347 recorded steps" in text  # tutorial 001's network
        assert "vanishing gradient: 0 (Linear)" in text and "dead units: 1 (ReLU)" in text
    if path.stem == "moving_on":
        text = "".join(output.get("text", "") for output in outputs_of(notebook))
        assert "gradients agree with finite differences: True" in text
        assert "<All keys matched successfully>" in text  # PyTorch's strict load_state_dict
        assert text.count("same predictions: True") == 2  # PyTorch, then ONNX Runtime
