"""Tutorial 000, "Running a Neural Network with Python" (python-course.eu), rebuilt from tinygrad_nn's parts.

``NeuralNetwork(no_of_in_nodes, no_of_out_nodes, no_of_hidden_nodes, learning_rate)``: input -> hidden ->
output, a sigmoid on both layers, no bias. The weights come from a standard normal truncated to
+-1/sqrt(fan_in) (the tutorial uses SciPy's ``truncnorm``; here it is ``nn.init.trunc_normal_``, with no SciPy).
``run()`` takes a tuple, list or array and returns the output as a column, like the tutorial's.

The tutorial leaves ``train()`` as a placeholder; here it is one step of gradient descent with the learning rate
on ``0.5 * sum((target - output) ** 2)``, by ``optim.SGD`` (the weights are unseeded in the tutorial, so there are
no published numbers: the example shows the structure, the initialisation and that training works, and draws
a histogram of the weights with the truncation bounds).
Run it: ``python examples/tutorial_000_python_course.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import tinygrad_nn as tg
from tinygrad_nn import nn, optim
from tinygrad_nn.nn import functional as F  # noqa: N812

from _common import Row, output_folder, print_table, save_histogram


class NeuralNetwork:
    """The tutorial's class: same name, arguments and methods (create_weight_matrices, run, train)."""

    def __init__(self, no_of_in_nodes: int, no_of_out_nodes: int, no_of_hidden_nodes: int, learning_rate: float):
        self.no_of_in_nodes = no_of_in_nodes
        self.no_of_out_nodes = no_of_out_nodes
        self.no_of_hidden_nodes = no_of_hidden_nodes
        self.learning_rate = learning_rate
        self.in_hidden = nn.Linear(no_of_in_nodes, no_of_hidden_nodes, bias=False, dtype=np.float64)
        self.hidden_out = nn.Linear(no_of_hidden_nodes, no_of_out_nodes, bias=False, dtype=np.float64)
        self.create_weight_matrices()
        self.network = nn.Sequential(self.in_hidden, nn.Sigmoid(), self.hidden_out, nn.Sigmoid())
        self.optimizer = optim.SGD(self.network.parameters(), lr=learning_rate)

    def create_weight_matrices(self, generator: np.random.Generator | None = None) -> None:
        """Draw both weight matrices from N(0, 1) truncated to +-1/sqrt(fan_in), as the tutorial does."""
        for layer in (self.in_hidden, self.hidden_out):
            rad = 1 / np.sqrt(layer.in_features)
            nn.init.trunc_normal_(layer.weight, mean=0.0, std=1.0, a=-rad, b=rad, generator=generator)

    @property
    def weights_in_hidden(self) -> np.ndarray:
        """(hidden, in), as the tutorial holds it."""
        return self.in_hidden.weight.data

    @property
    def weights_hidden_out(self) -> np.ndarray:
        """(out, hidden), as the tutorial holds it."""
        return self.hidden_out.weight.data

    def run(self, input_vector) -> np.ndarray:
        """The output for one input vector (a tuple, list or array), as a column (out, 1)."""
        with tg.no_grad():
            inputs = tg.Tensor(np.asarray(input_vector, dtype=float).reshape(-1))
            return self.network(inputs).data.reshape(-1, 1)

    def train(self, input_vector, target_vector) -> None:
        """One step of gradient descent on 0.5 * sum((target - output) ** 2) for one sample."""
        inputs = tg.Tensor(np.asarray(input_vector, dtype=float).reshape(-1))
        targets = np.asarray(target_vector, dtype=float).reshape(-1)
        loss = 0.5 * F.mse_loss(self.network(inputs), targets, reduction="sum")
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()


def two_clusters(count: int, generator: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Points around (1, 1) (class 0) and (3, 3) (class 1), with one-hot targets 0.01/0.99."""
    labels = generator.integers(0, 2, size=count)
    points = generator.normal(1.0 + 2.0 * labels[:, None], 0.5, size=(count, 2))
    targets = np.full((count, 2), 0.01)
    targets[np.arange(count), labels] = 0.99
    return points, targets


def accuracy(network: NeuralNetwork, points: np.ndarray, targets: np.ndarray) -> float:
    """The fraction of points whose largest output is their class."""
    predictions = [network.run(point).argmax() for point in points]
    return float(np.mean(np.array(predictions) == targets.argmax(axis=1)))


def reproduce(out_dir: Path | None = None) -> list[Row]:
    """Build the tutorial's networks and train one; return (quantity, published, ours) rows."""
    generator = np.random.default_rng(0)
    simple_network = NeuralNetwork(no_of_in_nodes=3, no_of_out_nodes=2, no_of_hidden_nodes=4, learning_rate=0.1)
    simple_network.create_weight_matrices(generator)
    rad_in, rad_hidden = 1 / np.sqrt(3), 1 / np.sqrt(4)
    rows = [
        ("weights_in_hidden shape", "(4, 3)", str(simple_network.weights_in_hidden.shape)),
        ("weights_hidden_out shape", "(2, 4)", str(simple_network.weights_hidden_out.shape)),
        (
            "largest |weight| in_hidden <= 1/sqrt(3)",
            f"{rad_in:.4f}",
            f"{np.abs(simple_network.weights_in_hidden).max():.4f}",
        ),
        (
            "largest |weight| hidden_out <= 1/sqrt(4)",
            f"{rad_hidden:.4f}",
            f"{np.abs(simple_network.weights_hidden_out).max():.4f}",
        ),
    ]
    network = NeuralNetwork(no_of_in_nodes=2, no_of_out_nodes=2, no_of_hidden_nodes=4, learning_rate=0.6)
    network.create_weight_matrices(generator)
    output = network.run([(3, 4)])
    rows.append(
        (
            "run([(3, 4)]) of the 2-4-2 network",
            "a (2, 1) column, e.g. [[0.507], [0.622]]",
            f"{output.shape} column [[{output[0, 0]:.3f}], [{output[1, 0]:.3f}]]",
        )
    )
    points, targets = two_clusters(200, generator)
    before = accuracy(network, points, targets)
    for _ in range(3):
        for point, target in zip(points, targets):
            network.train(point, target)
    rows.append(
        (
            "2-4-2 accuracy on two clusters, before / after 3 epochs of train()",
            "(train() is a stub)",
            f"{before:.2f} / {accuracy(network, points, targets):.2f}",
        )
    )
    if out_dir is not None:
        # A layer as wide as MNIST's input shows the truncation: nothing beyond +-1/sqrt(784).
        wide = NeuralNetwork(no_of_in_nodes=784, no_of_out_nodes=10, no_of_hidden_nodes=100, learning_rate=0.1)
        wide.create_weight_matrices(generator)
        bound = 1 / np.sqrt(784)
        path = save_histogram(
            out_dir / "tutorial_000_weights.png",
            wide.weights_in_hidden.ravel(),
            (-bound, bound),
            "weights_in_hidden of a 784-100-10 network",
            "weight (dashed: +-1/sqrt(784))",
        )
        rows.append(("histogram of 78,400 weights, all within +-1/sqrt(784)", "a figure", str(path)))
    return rows


if __name__ == "__main__":
    folder = output_folder(__doc__.splitlines()[0])
    print_table(
        "Tutorial 000: input -> hidden -> output, truncated-normal weights (python-course.eu)", reproduce(folder)
    )
