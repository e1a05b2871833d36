"""Tutorials 002 and 003 (after Real Python's "How to Build a Neural Network"), rebuilt from tinygrad_nn's parts.

One neuron with a bias and a sigmoid; an output above 0.5 means class 1.

- 002 makes two predictions with fixed weights [1.45, -0.66] and bias 0.
- 003 draws the weights and bias with ``np.random.randn()`` after ``np.random.seed(42)``, then trains by
  stochastic gradient descent: one random sample per iteration, squared error, learning rate 0.1, 10,000
  iterations, recording the summed error over all samples every 100 iterations.

The tutorials derive ``dL/dw = 2 (p - y) * sigmoid'(z) * x`` by hand; here an ``nn.Linear(2, 1)``, an
``nn.Sigmoid()``, ``nn.MSELoss()`` and ``optim.SGD(lr=alpha)`` do the same without a hand-written gradient.
Run it: ``python examples/tutorial_002_003_real_python.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import tinygrad_nn as tg
from tinygrad_nn import nn, optim

from _common import Row, output_folder, print_table, save_line_plot

# Real Python's data: eight input vectors and their classes (003's table; 002 and 003 predict [1.66, 1.56]).
INPUT_VECTORS = np.array([[3, 1.5], [2, 1], [4, 1.5], [3, 4], [3.5, 0.5], [2, 0.5], [5.5, 1], [1, 1]])
TARGETS = np.array([0, 1, 0, 1, 0, 1, 1, 0], dtype=float)


class NeuralNetwork:
    """003's class: same name and methods (predict, train); 002's fixed weights are a special case."""

    def __init__(self, alpha: float, weights: np.ndarray | None = None, bias: float | None = None) -> None:
        # 003 draws from numpy's global generator in this order; 002 passes its weights in.
        if weights is None:
            weights = np.array([np.random.randn(), np.random.randn()])
        if bias is None:
            bias = np.random.randn()
        self.layer = nn.Linear(2, 1, dtype=np.float64)
        self.layer.weight.data[...] = weights
        self.layer.bias.data[...] = bias
        self.network = nn.Sequential(self.layer, nn.Sigmoid())
        self.loss = nn.MSELoss()
        self.optimizer = optim.SGD(self.network.parameters(), lr=alpha)

    def predict(self, input_vector: np.ndarray) -> float:
        """The neuron's output for one input vector of two numbers."""
        with tg.no_grad():
            return self.network(tg.Tensor(np.asarray(input_vector, dtype=float))).item()

    def train(self, input_vectors: np.ndarray, targets: np.ndarray, iterations: int) -> list[float]:
        """SGD on one random sample per iteration; returns the summed squared error every 100 iterations."""
        cumulative_errors = []
        for current_iteration in range(iterations):
            index = np.random.randint(len(input_vectors))  # the tutorial's draw, from the global generator
            prediction = self.network(tg.Tensor(input_vectors[index]))
            loss = self.loss(prediction, np.array([targets[index]]))
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            if current_iteration % 100 == 0:
                with tg.no_grad():
                    outputs = self.network(tg.Tensor(input_vectors)).data[:, 0]
                cumulative_errors.append(float(np.sum(np.square(outputs - targets))))
        return cumulative_errors


def reproduce(out_dir: Path | None = None) -> list[Row]:
    """Run both tutorials and return (quantity, published, ours) rows; with `out_dir`, also save the curve."""
    fixed = NeuralNetwork(alpha=0.1, weights=np.array([1.45, -0.66]), bias=0.0)
    rows = [
        ("002: prediction for [1.66, 1.56]", "0.7985731", f"{fixed.predict([1.66, 1.56]):.7f}"),
        ("002: prediction for [2, 1.5]", "0.87101915", f"{fixed.predict([2, 1.5]):.8f}"),
    ]
    np.random.seed(42)
    network = NeuralNetwork(alpha=0.1)
    rows.append(
        ("003: prediction for [1.66, 1.56], seed 42", "0.7784302101100966", repr(network.predict([1.66, 1.56])))
    )
    errors = network.train(INPUT_VECTORS, TARGETS, 10_000)
    rows.append(("003: summed error, first / last of 100", "a curve", f"{errors[0]:.4f} / {errors[-1]:.4f}"))
    if out_dir is not None:
        path = save_line_plot(
            out_dir / "tutorial_003_training_error.png",
            list(range(0, 10_000, 100)),
            errors,
            "Training error",
            "Iterations",
            "Error for all training instances",
        )
        rows.append(("003: cumulative-error curve", "a figure", str(path)))
    return rows


if __name__ == "__main__":
    folder = output_folder(__doc__.splitlines()[0])
    print_table("Tutorials 002 and 003: one neuron with a bias (after Real Python)", reproduce(folder))
