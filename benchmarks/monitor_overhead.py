"""Benchmark 7: what the gradient monitor costs a training step, at batch 64.

Two networks: benchmark 1's step (784-100-10 sigmoid MLP, MSE, SGD, float32) and the step of ``tinygrad-nn train
--model mlp`` (784-512-256-10 ReLU MLP, cross-entropy, Adam, float32). Each is timed bare, with a monitor made,
attached and detached again (which must cost nothing), and with a monitor attached that records every step
(the default: exact norms, sampled mean/max |g| and update ratio for big parameters), every step with
``sample_size=None`` (everything exact), and every 10th step. All candidates run interleaved in one process
(harness.compare), each on its own copy of the network, so that the machine's drift falls on all alike.
"""

from __future__ import annotations

import numpy as np

import tinygrad_nn as tg
from tinygrad_nn import models, nn, optim
from tinygrad_nn.monitor import GradientMonitor
from tinygrad_nn.nn import functional as F  # noqa: N812

from harness import compare, format_time
from mlp_step import LR, weights

BATCH = 64
CANDIDATES = {
    "bare": None,
    "detached": {"detach": True},
    "every step": {},
    "every step, exact": {"sample_size": None},
    "every 10th step": {"every": 10},
}


def sigmoid_step(options: dict | None):
    """Benchmark 1's step (784-100-10 sigmoid, MSE, SGD), optionally with a monitor made from `options`."""
    params = weights()
    model = nn.Sequential(
        nn.Linear(784, 100, dtype=np.float32), nn.Sigmoid(), nn.Linear(100, 10, dtype=np.float32), nn.Sigmoid()
    )
    model.load_state_dict({"0.weight": params[0], "0.bias": params[1], "2.weight": params[2], "2.bias": params[3]})
    optimizer = optim.SGD(model.parameters(), lr=LR)
    rng = np.random.default_rng(BATCH)
    inputs = tg.Tensor(rng.random((BATCH, 784), dtype=np.float32))
    targets = tg.Tensor(rng.random((BATCH, 10), dtype=np.float32))
    monitor = _monitor(model, options)

    def step():
        loss = F.mse_loss(model(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss

    step.monitor = monitor  # kept alive with the step
    return step


def cli_mlp_step(options: dict | None):
    """The step of `tinygrad-nn train --model mlp` (784-512-256-10 ReLU, cross-entropy, Adam)."""
    model = models.mlp(784, [512, 256], 10, dtype="float32", seed=0)
    optimizer = optim.Adam(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(BATCH)
    inputs = tg.Tensor(rng.random((BATCH, 784), dtype=np.float32))
    labels = rng.integers(0, 10, BATCH)
    monitor = _monitor(model, options)

    def step():
        loss = F.cross_entropy(model(inputs), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss

    step.monitor = monitor
    return step


def _monitor(model: nn.Module, options: dict | None) -> GradientMonitor | None:
    if options is None:
        return None
    options = dict(options)
    detach = options.pop("detach", False)
    monitor = GradientMonitor(model, **options).attach()
    if detach:
        monitor.detach()
    return monitor


def run() -> list[dict]:
    """Time every candidate on both networks; one row per network."""
    rows = []
    for network, make, rounds, repeat in (
        ("784-100-10 sigmoid, SGD", sigmoid_step, 60, 20),
        ("784-512-256-10 ReLU, Adam", cli_mlp_step, 25, 5),
    ):
        candidates = {name: make(options) for name, options in CANDIDATES.items()}
        times = compare(candidates, rounds=rounds, repeat=repeat)
        rows.append({"network": network, **times})
    return rows


def report(rows: list[dict]) -> list[str]:
    """Markdown rows: the bare step's time, and each candidate's cost as a percentage of it (target <= 5%)."""
    names = [name for name in CANDIDATES if name != "bare"]
    lines = [
        "| network, batch 64 | bare step | " + " | ".join(f"monitor {name}" for name in names) + " |",
        "|---|---:|" + "---:|" * len(names),
    ]
    for row in rows:
        bare = row["bare"]
        cells = [f"{100 * (row[name] / bare - 1):+.1f}%" for name in names]
        lines.append(f"| {row['network']} | {format_time(bare)} | " + " | ".join(cells) + " |")
    return lines


if __name__ == "__main__":
    print("\n".join(report(run())))
