"""Benchmark 3: micrograd's demo (2-16-16-1 MLP, 100 moons, SVM max-margin loss + L2, SGD): one training step.

tinygrad_nn against micrograd from PyPI (`pip install micrograd`) and PyTorch. micrograd builds a graph of
scalars, so a step is tens of thousands of Python objects; the point is how much a vectorised engine saves.
"""

from __future__ import annotations

import contextlib
import random

import numpy as np

import tinygrad_nn as tg
from tinygrad_nn import nn

from harness import compare, format_time, torch_or_none


def moons(count: int = 100, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles with noise, labels -1/+1 (as scikit-learn's make_moons, seeded)."""
    rng = np.random.default_rng(seed)
    half = count // 2
    angles_a, angles_b = np.linspace(0, np.pi, half), np.linspace(0, np.pi, count - half)
    points = np.concatenate(
        [np.c_[np.cos(angles_a), np.sin(angles_a)], np.c_[1 - np.cos(angles_b), 0.5 - np.sin(angles_b)]]
    )
    points += rng.normal(0, 0.1, points.shape)
    labels = np.r_[-np.ones(half), np.ones(count - half)]
    return points, labels


def ours_step(points: np.ndarray, labels: np.ndarray):
    """One step of the demo with tinygrad_nn's modules (float64, like micrograd's Python floats)."""
    model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 1))
    x, y = tg.Tensor(points), tg.Tensor(labels[:, None])
    parameters = list(model.parameters())

    def step(learning_rate: float = 0.5):
        scores = model(x)
        data_loss = (1 - y * scores).relu().mean()
        reg_loss = 1e-4 * sum((p * p).sum() for p in parameters)
        total = data_loss + reg_loss
        model.zero_grad()
        total.backward()
        with tg.no_grad():
            for p in parameters:
                p.data -= learning_rate * p.grad
        return total

    return step


def micrograd_step(points: np.ndarray, labels: np.ndarray):
    """One step of micrograd's own demo loop, as its notebook writes it."""
    from micrograd.engine import Value
    from micrograd.nn import MLP

    random.seed(1337)
    model = MLP(2, [16, 16, 1])
    rows = points.tolist()
    targets = labels.tolist()

    def step(learning_rate: float = 0.5):
        inputs = [list(map(Value, row)) for row in rows]
        scores = list(map(model, inputs))
        losses = [(1 + -target * score).relu() for target, score in zip(targets, scores)]
        data_loss = sum(losses) * (1.0 / len(losses))
        reg_loss = 1e-4 * sum(p * p for p in model.parameters())
        total = data_loss + reg_loss
        model.zero_grad()
        total.backward()
        for p in model.parameters():
            p.data -= learning_rate * p.grad
        return total

    return step


def torch_step(points: np.ndarray, labels: np.ndarray, torch):
    """The same step in PyTorch (float64)."""
    model = torch.nn.Sequential(
        torch.nn.Linear(2, 16), torch.nn.ReLU(), torch.nn.Linear(16, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1)
    ).double()
    x, y = torch.from_numpy(points), torch.from_numpy(labels[:, None])
    parameters = list(model.parameters())

    def step(learning_rate: float = 0.5):
        scores = model(x)
        data_loss = torch.relu(1 - y * scores).mean()
        reg_loss = 1e-4 * sum((p * p).sum() for p in parameters)
        total = data_loss + reg_loss
        model.zero_grad()
        total.backward()
        with torch.no_grad():
            for p in parameters:
                p -= learning_rate * p.grad
        return total

    return step


def run() -> dict:
    """Time one step of each (micrograd only if installed)."""
    points, labels = moons()
    candidates = {"tinygrad_nn": ours_step(points, labels)}
    with contextlib.suppress(ImportError):
        candidates["micrograd"] = micrograd_step(points, labels)
    torch = torch_or_none()
    if torch is not None:
        candidates["pytorch"] = torch_step(points, labels, torch)
    fast = {name: f for name, f in candidates.items() if name != "micrograd"}
    times = compare(fast, rounds=25, repeat=20)
    if "micrograd" in candidates:
        times.update(compare({"micrograd": candidates["micrograd"]}, rounds=5, repeat=1, warmup=1))
    return times


def report(times: dict) -> list[str]:
    """Markdown rows."""
    ours = times["tinygrad_nn"]
    speedup = f"{times['micrograd'] / ours:,.0f}x" if "micrograd" in times else "-"
    versus_torch = f"{ours / times['pytorch']:.2f}" if "pytorch" in times else "-"
    return [
        "| tinygrad_nn | micrograd | PyTorch | faster than micrograd (target >= 1,000x) | ours / PyTorch |",
        "|---:|---:|---:|---:|---:|",
        f"| {format_time(ours)} | {format_time(times['micrograd']) if 'micrograd' in times else '-'} | "
        f"{format_time(times['pytorch']) if 'pytorch' in times else '-'} | {speedup} | {versus_torch} |",
    ]


if __name__ == "__main__":
    print("\n".join(report(run())))
