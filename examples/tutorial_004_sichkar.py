"""Tutorial 004, "Introduction in Neural Network with Python" (Sichkar), rebuilt from tinygrad_nn's parts.

One neuron: three inputs, no bias, a sigmoid. The tutorial corrects its weights by hand with
``w += X.T @ (error * o * (1 - o))``: that is gradient descent with learning rate 1 on the loss
``0.5 * sum((y - o) ** 2)``, so here it is an ``nn.Linear(3, 1, bias=False)``, an ``nn.Sigmoid()``, that loss and
``optim.SGD(lr=1.0)``, with no hand-written gradient. Run it: ``python examples/tutorial_004_sichkar.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import tinygrad_nn as tg
from tinygrad_nn import nn, optim
from tinygrad_nn.nn import functional as F  # noqa: N812

from _common import Row, output_folder, print_table, save_line_plot

# The tutorial's training set: the output is the first input.
INPUTS = np.array([[1, 1, 1], [1, 0, 1], [0, 0, 1], [0, 1, 1]], dtype=float)
OUTPUTS = np.array([[1, 1, 0, 0]], dtype=float).T
TEST_INPUT = np.array([1, 0, 0], dtype=float)


class NN:
    """The tutorial's class: same name, same methods (run_nn, training_process), made of modules."""

    def __init__(self) -> None:
        np.random.seed(1)  # the tutorial seeds numpy's global generator here, so we do too
        self.synapses = nn.Linear(3, 1, bias=False, dtype=np.float64)
        # The tutorial's 3x1 weight column is our Linear's 1x3 weight row.
        self.synapses.weight.data[...] = (2 * np.random.random((3, 1)) - 1).T
        self.network = nn.Sequential(self.synapses, nn.Sigmoid())
        self.optimizer = optim.SGD(self.network.parameters(), lr=1.0)

    @property
    def weights_of_synapses(self) -> np.ndarray:
        """The weights as the tutorial prints them: a 3x1 column."""
        return self.synapses.weight.data.T

    def run_nn(self, set_of_inputs: np.ndarray) -> np.ndarray:
        """The neuron's output for one input (3,) or a set of inputs (n, 3)."""
        with tg.no_grad():
            return self.network(tg.Tensor(np.asarray(set_of_inputs, dtype=float))).data

    def training_process(self, inputs: np.ndarray, outputs: np.ndarray, iterations: int) -> None:
        """Full-batch gradient descent on 0.5 * sum((outputs - o) ** 2), `iterations` times."""
        x = tg.Tensor(np.asarray(inputs, dtype=float))
        for _ in range(iterations):
            loss = 0.5 * F.mse_loss(self.network(x), outputs, reduction="sum")
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()


def iterations_to_reach(accuracy: float = 0.999) -> int:
    """The first multiple of 10 iterations after which the output for [1, 0, 0] reaches `accuracy`.

    The tutorial's loop adds 10 after training and before printing, so it prints this number plus 10 (740).
    """
    iterations = 10
    while True:
        network = NN()
        network.training_process(INPUTS, OUTPUTS, iterations)
        if network.run_nn(TEST_INPUT)[0] >= accuracy:
            return iterations
        iterations += 10


def output_curve(out_dir: Path) -> Path:
    """Train a new neuron for 10, 20, ..., 990 iterations and plot its output for [1, 0, 0]."""
    counts = list(range(10, 1000, 10))
    results = []
    for count in counts:
        network = NN()
        network.training_process(INPUTS, OUTPUTS, count)
        results.append(network.run_nn(TEST_INPUT)[0])
    return save_line_plot(
        out_dir / "tutorial_004_iterations_vs_output.png",
        counts,
        results,
        "Iterations via Output",
        "Iterations",
        "Output",
    )


def reproduce(out_dir: Path | None = None) -> list[Row]:
    """Run the tutorial and return (quantity, published, ours) rows; with `out_dir`, also save the curve."""
    network = NN()
    initial = network.weights_of_synapses.ravel().copy()
    network.training_process(INPUTS, OUTPUTS, 5000)
    trained = network.weights_of_synapses.ravel()
    output = network.run_nn(TEST_INPUT)[0]
    rows = [
        ("initial weights", "[-0.16595599, 0.44064899, -0.99977125]", _vector(initial)),
        ("weights after 5000 iterations", "[8.95950703, -0.20975775, -4.27128529]", _vector(trained)),
        ("output for [1, 0, 0]", "0.99987151", f"{output:.8f}"),
        ("iterations to reach 0.999", "730 (printed as 740)", str(iterations_to_reach())),
    ]
    if out_dir is not None:
        rows.append(("iterations-vs-output curve", "a figure", str(output_curve(out_dir))))
    return rows


def _vector(values: np.ndarray) -> str:
    return "[" + ", ".join(f"{v:.8f}" for v in values) + "]"


if __name__ == "__main__":
    folder = output_folder(__doc__.splitlines()[0])
    print_table("Tutorial 004: one neuron, three inputs, sigmoid (Sichkar)", reproduce(folder))
