"""The gradient monitor on real networks: what it finds, the pictures behind it, and the fixes that quiet it.

Five runs on scikit-learn's 8x8 digits (no download), each watched by a ``GradientMonitor`` as a ``fit`` callback:

1. ``tutorial``: tutorial 001's network (64-200-10, sigmoid, no bias, SGD lr 0.1, one image at a time, one
   epoch). Healthy: no finding.
2. ``deep sigmoid``: the same kind of network eight sigmoid layers deep. The gradient fades on its way back:
   the first layers get a thousandth of the output layer's and stall. Accuracy stays at chance.
3. ``deep relu``: the same depth with ReLU and He initialisation. The findings are gone, and it learns.
4. ``high lr``: the command line's MLP (ReLU) with SGD at a learning rate of 10: its first updates are as big
   as its weights, and within a few steps almost every unit is dead, for good.
5. ``lower lr``: the same MLP at lr 0.1. No finding.

Run it: ``python examples/gradient_monitor.py [--out DIR]``. It prints each run's accuracy and findings, and
writes the monitor's pictures into DIR (default out/monitor); the documentation's pictures are these.
"""

from __future__ import annotations

import argparse
import itertools
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import tinygrad_nn as tg
from tinygrad_nn import data, models, nn, optim, training
from tinygrad_nn.monitor import GradientMonitor
from tinygrad_nn.nn import functional as F  # noqa: N812


@dataclass
class Run:
    """One network, how it is trained, and which of the monitor's pictures to keep."""

    title: str
    build: Callable[[], nn.Module]
    loss: Callable[..., tg.Tensor]
    optimizer: Callable[[nn.Module], optim.Optimizer]
    batch_size: int
    epochs: int
    tutorial_inputs: bool  # the tutorials' 0.01..1.0 scaling and float64, or the MLP's [0, 1] float32
    pictures: tuple[str, ...]


def deep_tutorial_network(depth: int = 8, width: int = 64, activation: type = nn.Sigmoid, he: bool = False):
    """Tutorial 001's network made `depth` hidden layers deep: Linear without bias, `activation`, ..., Sigmoid.

    Initialised as tutorial 001 initialises (uniform in +-0.5), or, with `he`, as He et al. advise for ReLU.
    """
    generator = np.random.default_rng(0)
    sizes = [64] + [width] * depth + [10]
    layers: list[nn.Module] = []
    for fan_in, fan_out in itertools.pairwise(sizes):
        linear = nn.Linear(fan_in, fan_out, bias=False, dtype=np.float64)
        if he:
            nn.init.kaiming_normal_(linear.weight, nonlinearity="relu", generator=generator)
        else:
            nn.init.uniform_(linear.weight, -0.5, 0.5, generator=generator)
        layers += [linear, activation() if fan_out == width else nn.Sigmoid()]
    return nn.Sequential(*layers)


def command_line_mlp() -> nn.Module:
    """The MLP of ``tinygrad-nn train --model mlp``, at the digits' size: 64-128-64-10, ReLU."""
    return models.mlp(64, [128, 64], 10, dtype="float32", seed=0)


RUNS = {
    "tutorial": Run(
        "Tutorial 001's network (64-200-10, sigmoid), SGD lr 0.1, one image at a time",
        lambda: models.tutorial_network(64, 200, 10, seed=0),
        models.tutorial_loss,
        lambda model: optim.SGD(model.parameters(), lr=0.1),
        batch_size=1,
        epochs=1,
        tutorial_inputs=True,
        pictures=("history",),
    ),
    "deep sigmoid": Run(
        "The same network eight sigmoid layers deep",
        deep_tutorial_network,
        models.tutorial_loss,
        lambda model: optim.SGD(model.parameters(), lr=0.1),
        batch_size=1,
        epochs=1,
        tutorial_inputs=True,
        pictures=("flow", "history"),
    ),
    "deep relu": Run(
        "Eight ReLU layers deep, He initialisation",
        lambda: deep_tutorial_network(activation=nn.ReLU, he=True),
        models.tutorial_loss,
        lambda model: optim.SGD(model.parameters(), lr=0.1),
        batch_size=1,
        epochs=1,
        tutorial_inputs=True,
        pictures=("flow",),
    ),
    "high lr": Run(
        "The command line's MLP (64-128-64-10, ReLU), SGD lr 10, batches of 32",
        command_line_mlp,
        F.cross_entropy,
        lambda model: optim.SGD(model.parameters(), lr=10.0),
        batch_size=32,
        epochs=5,
        tutorial_inputs=False,
        pictures=("history", "histograms", "graph"),
    ),
    "lower lr": Run(
        "The same MLP at lr 0.1",
        command_line_mlp,
        F.cross_entropy,
        lambda model: optim.SGD(model.parameters(), lr=0.1),
        batch_size=32,
        epochs=5,
        tutorial_inputs=False,
        pictures=("history",),
    ),
}


def digits(tutorial_inputs: bool) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """The digits, scaled and typed as the network wants them."""
    (x_train, y_train), (x_test, y_test) = data.load_digits()
    if tutorial_inputs:
        x_train, x_test = (models.tutorial_inputs(x.astype(np.float64)) for x in (x_train, x_test))
    return (x_train, y_train), (x_test, y_test)


def train(name: str) -> tuple[nn.Module, GradientMonitor, float]:
    """Train run `name` with a GradientMonitor; returns the model, the monitor and the test accuracy."""
    run = RUNS[name]
    (x_train, y_train), (x_test, y_test) = digits(run.tutorial_inputs)
    model = run.build()
    monitor = GradientMonitor(model)
    loader = data.DataLoader(x_train, y_train, batch_size=run.batch_size, shuffle=True, seed=0)
    history = training.fit(
        model,
        run.loss,
        run.optimizer(model),
        loader,
        epochs=run.epochs,
        val_loader=data.DataLoader(x_test, y_test, batch_size=1000),
        callbacks=[monitor],
        progress=False,
    )
    return model, monitor, history.metrics["val_accuracy"][-1]


def pictures(name: str, model: nn.Module, monitor: GradientMonitor, out_dir: Path) -> list[Path]:
    """The run's pictures, named after it: ``high-lr-history.png`` and so on."""
    stem = name.replace(" ", "-")
    written = []
    for picture in RUNS[name].pictures:
        path = out_dir / f"{stem}-{picture}.png"
        if picture == "graph":  # one batch's graph, coloured by the monitor's records over the whole run
            if shutil.which("dot") is None:
                print(f"  (no {path.name}: Graphviz's dot is not installed)")
                continue
            (_, _), (x_test, y_test) = digits(RUNS[name].tutorial_inputs)
            loss = RUNS[name].loss(model(tg.Tensor(x_test[:32])), y_test[:32])
            loss.backward()
            written.append(tg.render_graph(tg.draw_graph(loss, model, monitor=monitor), path))
        else:
            written.append(getattr(monitor, f"plot_{picture}")(path))
    return written


def main(out_dir: Path, names: Any = None) -> dict[str, GradientMonitor]:
    """Train each run (all by default), print its accuracy and findings, write its pictures into `out_dir`.

    Returns each run's monitor, by name.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    monitors = {}
    for name in names or RUNS:
        model, monitor, accuracy = train(name)
        monitors[name] = monitor
        print(f"{name}: {RUNS[name].title}")
        print(f"test accuracy {accuracy:.3f}")
        print(monitor.report())
        for path in pictures(name, model, monitor, out_dir):
            print(f"  wrote {path.name}")
        print()
    return monitors


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("out/monitor"), help="folder for the pictures")
    parser.add_argument("runs", nargs="*", choices=[*RUNS, []], help="which runs (default: all)")
    arguments = parser.parse_args()
    main(arguments.out, arguments.runs)
