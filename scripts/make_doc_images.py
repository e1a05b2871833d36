"""Draw the pictures of the docs into docs/images/ (SVG; ``--format png`` to look at them as PNG).

Every picture comes from a small, seeded computation, so running this again gives the same files. Needs
Graphviz's ``dot``. Run it from anywhere: ``python scripts/make_doc_images.py [--out DIR] [--format svg|png]``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import graphviz
import numpy as np

import tinygrad_nn as tg
from tinygrad_nn import Tensor, nn
from tinygrad_nn.nn import functional as F  # noqa: N812
from tinygrad_nn.viz import draw_graph, render_graph

DOCS_IMAGES = Path(__file__).resolve().parent.parent / "docs" / "images"


def tutorial_network() -> tuple[nn.Sequential, Tensor]:
    """Tutorial 001's network at the tutorial's own 3-3-3 size, with its weights and its one training sample."""
    np.random.seed(7)
    model = nn.Sequential(nn.Linear(3, 3, bias=False), nn.Sigmoid(), nn.Linear(3, 3, bias=False), nn.Sigmoid())
    model[0].weight.data[...] = np.random.rand(3, 3) - 0.5
    model[2].weight.data[...] = np.random.rand(3, 3) - 0.5
    inputs, targets = Tensor(np.array([0.9, 0.1, 0.5])), np.array([0.99, 0.01, 0.01])
    loss = 0.5 * F.mse_loss(model(inputs), targets, reduction="sum")
    return model, loss


def tutorial_before() -> graphviz.Digraph:
    """The tutorial's network before backward: ops, shapes and parameter names."""
    model, loss = tutorial_network()
    return draw_graph(loss, model)


def tutorial_after() -> graphviz.Digraph:
    """The same after backward inside retain_grads: every tensor's gradient norm, and the loss's value."""
    model, loss = tutorial_network()
    with tg.retain_grads():
        loss.backward()
    return draw_graph(loss, model, show_data=True)


def micrograd() -> graphviz.Digraph:
    """The neuron of micrograd's lecture, o = tanh(x1 w1 + x2 w2 + b): scalars with values and gradients."""
    x1, x2 = Tensor(2.0, requires_grad=True), Tensor(0.0, requires_grad=True)
    w1, w2 = Tensor(-3.0, requires_grad=True), Tensor(1.0, requires_grad=True)
    b = Tensor(6.8813735870195432, requires_grad=True)
    n = x1 * w1 + x2 * w2 + b
    o = n.tanh()
    with tg.retain_grads():
        o.backward()
    names = {"x1": x1, "x2": x2, "w1": w1, "w2": w2, "b": b, "n": n, "o": o}
    return draw_graph(o, names=names, show_data=True, rankdir="LR")


class MLP(nn.Module):
    """Two named parts, one of them a Sequential: enough nesting to show clusters."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden = nn.Sequential(nn.Linear(784, 100), nn.ReLU())
        self.classifier = nn.Linear(100, 10)

    def forward(self, x: Tensor) -> Tensor:
        """Scores for the ten classes."""
        return self.classifier(self.hidden(x))


def mlp_loss() -> tuple[MLP, Tensor]:
    """The MLP on a batch of 64 random images, with its cross-entropy loss, after backward."""
    tg.manual_seed(0)
    model = MLP().to(np.float32)
    rng = np.random.default_rng(0)
    images = Tensor(rng.random((64, 784), dtype=np.float32))
    loss = nn.CrossEntropyLoss()(model(images), rng.integers(0, 10, size=64))
    loss.backward()
    return model, loss


def mlp_clusters() -> graphviz.Digraph:
    """Every module call a cluster, nested as the calls were."""
    model, loss = mlp_loss()
    return draw_graph(loss, model)


def mlp_max_depth() -> graphviz.Digraph:
    """The same with max_depth=1: the model's children collapsed into boxes."""
    model, loss = mlp_loss()
    return draw_graph(loss, model, max_depth=1)


def vanishing() -> graphviz.Digraph:
    """Ten sigmoid blocks: the gradient shrinks by about ten at each, flagged from block 5 down."""
    tg.manual_seed(0)
    model = nn.Sequential(*[nn.Sequential(nn.Linear(8, 8), nn.Sigmoid()) for _ in range(10)])
    x = Tensor(np.random.default_rng(0).normal(size=(16, 8)))
    loss = F.mse_loss(model(x), np.zeros((16, 8)))
    loss.backward()
    return draw_graph(loss, model, max_depth=1)


def dead_relu() -> graphviz.Digraph:
    """A ReLU layer whose inputs are all negative passes no gradient back: zero gradients."""
    tg.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
    model[0].bias.data[...] = -100.0
    loss = model(Tensor(np.ones((4, 2)))).sum()
    loss.backward()
    return draw_graph(loss, model)


def autograd_example() -> graphviz.Digraph:
    """The first example of docs/tensor-and-autograd.md, y = sum(w * x), after backward.

    The leaf w gets its gradient; x (data) needs none, so no edge leads to it.
    """
    w = Tensor([0.5, -1.0], requires_grad=True)
    x = Tensor(np.array([2.0, 3.0]))
    y = (w * x).sum()
    with tg.retain_grads():
        y.backward()
    return draw_graph(y, names={"w": w, "y": y}, show_data=True, rankdir="LR")


PICTURES: dict[str, Callable[[], graphviz.Digraph]] = {
    "autograd-example": autograd_example,
    "tutorial-001-before": tutorial_before,
    "tutorial-001-after": tutorial_after,
    "micrograd": micrograd,
    "mlp-clusters": mlp_clusters,
    "mlp-max-depth": mlp_max_depth,
    "vanishing-gradient": vanishing,
    "dead-relu": dead_relu,
}


def main() -> None:
    """Write every picture."""
    parser = argparse.ArgumentParser(description="Draw the pictures of docs/graphs.md.")
    parser.add_argument("--out", type=Path, default=DOCS_IMAGES, help=f"folder to write to (default {DOCS_IMAGES})")
    parser.add_argument("--format", default="svg", help="svg (default) or png")
    arguments = parser.parse_args()
    arguments.out.mkdir(parents=True, exist_ok=True)
    for name, make in PICTURES.items():
        path = render_graph(make(), arguments.out / f"{name}.{arguments.format}")
        print(path)


if __name__ == "__main__":
    main()
