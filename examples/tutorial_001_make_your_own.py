"""Tutorial 001, "Making A Neural Network in Python" (after *Make Your Own Neural Network*), rebuilt from modules.

Three layers, sigmoid on both, no bias, weights uniform in [-0.5, 0.5). The tutorial updates its weights by
back-propagated errors::

    W_ho += lr * (E_o * O * (1 - O)) @ H.T          with E_o = targets - O
    W_ih += lr * (E_h * H * (1 - H)) @ I.T          with E_h = W_ho.T @ E_o

Here that network is two ``nn.Linear(..., bias=False)`` layers with ``nn.Sigmoid()``, the loss
``0.5 * sum((targets - O) ** 2)`` and ``optim.SGD(lr=lr)``: gradient descent, with no hand-written gradient.
The text's last listing multiplies by ``hidden_errors`` where it means ``hidden_outputs``, and its weights have
the shape (inputs, hidden), which only works for square layers; this is the maths it intends (the book's code).

One difference remains, and it is the book's: the exact gradient back-propagates the output error *through the
output sigmoid*, ``E_h = W_ho.T @ (E_o * O * (1 - O))``, where the book's ``E_h = W_ho.T @ E_o`` leaves that
slope out. The W_ho update is the book's (equal to rounding: the same products, summed in another order); the
W_ih update is the exact gradient (checked below against that formula written by hand). On Fashion-MNIST the
exact gradient does slightly better (0.838 against 0.826 for the book's rule after one epoch, same weights).

Then, as the tutorial goes on to do with MNIST, it trains 784-200-10 on Fashion-MNIST, one image at a time,
for one epoch (inputs scaled to 0.01..1.0, targets 0.01 and 0.99, as in the book), and reports test accuracy.
Run it: ``python examples/tutorial_001_make_your_own.py`` (about half a minute).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

import tinygrad_nn as tg
from tinygrad_nn import models, nn, optim, training
from tinygrad_nn.nn import functional as F  # noqa: N812

from _common import Row, output_folder, print_table, save_line_plot


class Neural_Network:
    """The tutorial's class: same name, same methods (query, train), made of modules."""

    def __init__(self, inodes: int, hnodes: int, onodes: int, lr: float) -> None:
        self.inodes, self.hnodes, self.onodes, self.lr = inodes, hnodes, onodes, lr
        self.input_hidden = nn.Linear(inodes, hnodes, bias=False, dtype=np.float64)
        self.hidden_output = nn.Linear(hnodes, onodes, bias=False, dtype=np.float64)
        # The book's initialisation, drawn in its order from numpy's global generator: (hidden, inputs) first.
        self.input_hidden.weight.data[...] = np.random.rand(hnodes, inodes) - 0.5
        self.hidden_output.weight.data[...] = np.random.rand(onodes, hnodes) - 0.5
        self.network = nn.Sequential(self.input_hidden, nn.Sigmoid(), self.hidden_output, nn.Sigmoid())
        self.optimizer = optim.SGD(self.network.parameters(), lr=lr)

    @property
    def weights_input_hidden(self) -> np.ndarray:
        """W_ih as the book holds it: (hidden, inputs)."""
        return self.input_hidden.weight.data

    @property
    def weights_hidden_output(self) -> np.ndarray:
        """W_ho as the book holds it: (outputs, hidden)."""
        return self.hidden_output.weight.data

    def query(self, inputs_list: np.ndarray) -> np.ndarray:
        """The network's output for one input, as a column (onodes, 1) like the tutorial's."""
        with tg.no_grad():
            return self.network(tg.Tensor(np.asarray(inputs_list, dtype=float))).data.reshape(-1, 1)

    def train(self, inputs_list: np.ndarray, targets_list: np.ndarray) -> None:
        """One step of gradient descent on 0.5 * sum((targets - outputs) ** 2) for one sample."""
        inputs = tg.Tensor(np.asarray(inputs_list, dtype=float))
        targets = np.asarray(targets_list, dtype=float)
        loss = 0.5 * F.mse_loss(self.network(inputs), targets, reduction="sum")
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()


def hand_written_update(
    w_ih: np.ndarray, w_ho: np.ndarray, inputs: np.ndarray, targets: np.ndarray, lr: float, books_rule: bool = False
):
    """The book's update in plain numpy, with the text's typo mended and the exact hidden error (see above).

    With ``books_rule=True`` the hidden error is the book's ``W_ho.T @ E_o``, without the output sigmoid's slope.
    """
    sigmoid = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    inputs, targets = inputs.reshape(-1, 1), targets.reshape(-1, 1)
    hidden_outputs = sigmoid(w_ih @ inputs)
    final_outputs = sigmoid(w_ho @ hidden_outputs)
    output_errors = targets - final_outputs
    output_deltas = output_errors * final_outputs * (1.0 - final_outputs)
    hidden_errors = w_ho.T @ (output_errors if books_rule else output_deltas)
    w_ho = w_ho + lr * output_deltas @ hidden_outputs.T
    w_ih = w_ih + lr * (hidden_errors * hidden_outputs * (1.0 - hidden_outputs)) @ inputs.T
    return w_ih, w_ho


def scaled(images: np.ndarray) -> np.ndarray:
    """The book's input scaling: pixel values in [0, 1] to 0.01..1.0, in float64."""
    return models.tutorial_inputs(images.astype(np.float64))


def one_hot_targets(label: int, onodes: int = 10) -> np.ndarray:
    """The book's targets: 0.99 for the right class, 0.01 elsewhere."""
    targets = np.full(onodes, 0.01)
    targets[label] = 0.99
    return targets


def train_on_fashion_mnist(
    samples: int | None = None, seed: int = 0, losses: list[float] | None = None
) -> tuple[float, float, int]:
    """784-200-10, lr 0.1, one epoch one image at a time; returns (test accuracy, seconds, images trained).

    With `losses`, appends the mean loss of every 1,000 images to it.
    """
    (x_train, y_train), (x_test, y_test) = tg.data.load_fashion_mnist()
    np.random.seed(seed)
    network = Neural_Network(784, 200, 10, lr=0.1)
    count = len(x_train) if samples is None else samples
    inputs = scaled(x_train[:count])
    start = time.perf_counter()
    window = []
    # A bar in a terminal, one line at the end in a log: the epoch takes about half a minute.
    images = training.progress_bar(zip(inputs, y_train[:count]), "tutorial 001", unit="image", total=count)
    for image, label in images:
        targets = one_hot_targets(label)
        network.train(image, targets)
        if losses is not None:
            window.append(0.5 * float(np.sum((network.query(image).ravel() - targets) ** 2)))
            if len(window) == 1000:
                losses.append(float(np.mean(window)))
                window = []
    images.close()
    seconds = time.perf_counter() - start
    with tg.no_grad():
        scores = network.network(tg.Tensor(scaled(x_test))).data
    return float(np.mean(scores.argmax(axis=1) == y_test)), seconds, count


def reproduce(out_dir: Path | None = None, samples: int | None = None) -> list[Row]:
    """Check `train` against the book's update, then train on Fashion-MNIST; (quantity, published, ours) rows."""
    np.random.seed(7)
    network = Neural_Network(3, 3, 3, lr=0.3)  # the tutorial's own sizes
    w_ih, w_ho = network.weights_input_hidden.copy(), network.weights_hidden_output.copy()
    inputs, targets = np.array([0.9, 0.1, 0.5]), np.array([0.99, 0.01, 0.01])
    network.train(inputs, targets)
    expected_ih, expected_ho = hand_written_update(w_ih, w_ho, inputs, targets, 0.3)
    books_ih, _ = hand_written_update(w_ih, w_ho, inputs, targets, 0.3, books_rule=True)
    rows = [
        (
            "train(): W_ho after one step vs the book's update",
            "the same weights",
            f"max difference {np.abs(network.weights_hidden_output - expected_ho).max():.1e}",
        ),
        (
            "train(): W_ih after one step vs the exact gradient",
            "the same weights",
            f"max difference {np.abs(network.weights_input_hidden - expected_ih).max():.1e}",
        ),
        (
            "train(): W_ih vs the book's rule (E_h = W_ho.T @ E_o)",
            "differs: the book leaves out O(1 - O)",
            f"max difference {np.abs(network.weights_input_hidden - books_ih).max():.1e}",
        ),
    ]
    losses: list[float] | None = [] if out_dir is not None else None
    accuracy, seconds, count = train_on_fashion_mnist(samples, losses=losses)
    rows.append(
        (
            f"Fashion-MNIST test accuracy, {count} images x 1 epoch",
            "(none; MNIST in the book)",
            f"{accuracy:.4f} ({seconds:.0f} s of training)",
        )
    )
    if losses:
        path = save_line_plot(
            out_dir / "tutorial_001_training_loss.png",
            [1000 * (k + 1) for k in range(len(losses))],
            losses,
            "Training on Fashion-MNIST",
            "images seen",
            "loss after the step (mean of 1,000)",
        )
        rows.append(("training loss over the epoch", "a figure", str(path)))
    return rows


if __name__ == "__main__":
    folder = output_folder(__doc__.splitlines()[0])
    print_table("Tutorial 001: three layers, sigmoid, back-propagated errors", reproduce(folder))
