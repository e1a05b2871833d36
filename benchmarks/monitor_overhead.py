"""Benchmark 7: what the gradient monitor costs a training step, at batch 64.

Two networks: benchmark 1's step (784-100-10 sigmoid MLP, MSE, SGD, float32) and the step of ``tinygrad-nn train
--model mlp`` (784-512-256-10 ReLU MLP, cross-entropy, Adam, float32). Each is timed bare, with a monitor made,
attached and detached again (which must cost nothing), and with a monitor attached that records every step
(the default: exact norms and max |g|, sampled mean |g| and update ratio for big parameters), every step with
``sample_size=None`` (everything exact), and every 10th step.

What is measured is the process's CPU time, with one BLAS thread: the monitor's cost is its own work, a few
percent, which a shared machine's load (other processes, a second BLAS thread spinning) would drown in
wall-clock time. Each round runs every candidate, each on its own copy of the network, in a new random order;
the table gives the bare step's median time and, for each candidate, the median over the rounds of its time
divided by the bare step's time in the same round.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy starts its BLAS: see the docstring
os.environ.setdefault("OMP_NUM_THREADS", "1")

import random
import statistics
import time

import numpy as np
from mlp_step import LR, weights

import tinygrad_nn as tg
from tinygrad_nn import models, nn, optim
from tinygrad_nn.monitor import GradientMonitor
from tinygrad_nn.nn import functional as F  # noqa: N812

from harness import format_time

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


def compare_cpu(candidates: dict, rounds: int, repeat: int, warmup: int = 5) -> dict[str, float]:
    """Median CPU seconds per call of the first candidate, and each candidate's median ratio to it per round."""
    for function in candidates.values():
        for _ in range(warmup):
            function()
    names = list(candidates)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    shuffler = random.Random(0)
    for _ in range(rounds):
        order = names[:]
        shuffler.shuffle(order)
        for name in order:
            function = candidates[name]
            start = time.process_time()
            for _ in range(repeat):
                function()
            seconds[name].append((time.process_time() - start) / repeat)
    bare = seconds[names[0]]
    result = {names[0]: statistics.median(bare)}
    for name in names[1:]:
        result[name] = statistics.median(mine / base for mine, base in zip(seconds[name], bare))
    return result


def run(rounds: int = 1) -> list[dict]:
    """Time every candidate on both networks; one row per network. `rounds` scales the rounds (tests use less)."""
    rows = []
    for network, make, network_rounds, repeat in (
        ("784-100-10 sigmoid, SGD", sigmoid_step, 80, 25),
        ("784-512-256-10 ReLU, Adam", cli_mlp_step, 40, 5),
    ):
        candidates = {name: make(options) for name, options in CANDIDATES.items()}
        rows.append({"network": network, **compare_cpu(candidates, max(2, int(network_rounds * rounds)), repeat)})
    return rows


def report(rows: list[dict]) -> list[str]:
    """Markdown rows: the bare step's CPU time, and each candidate's cost in percent of it (target <= 5%)."""
    names = [name for name in CANDIDATES if name != "bare"]
    lines = [
        "| network, batch 64 | bare step (CPU) | " + " | ".join(f"monitor {name}" for name in names) + " |",
        "|---|---:|" + "---:|" * len(names),
    ]
    for row in rows:
        cells = [f"{100 * (row[name] - 1):+.1f}%" for name in names]
        lines.append(f"| {row['network']} | {format_time(row['bare'])} | " + " | ".join(cells) + " |")
    return lines


if __name__ == "__main__":
    print("\n".join(report(run())))
