"""Benchmark 2: tutorial 004's neuron, 5,000 full-batch steps (per-op overhead dominates).

Ours against the tutorial's own hand-written numpy loop (target: at most 4x) and against PyTorch.
"""

from __future__ import annotations

import numpy as np

import tinygrad_nn as tg
from tinygrad_nn import nn, optim
from tinygrad_nn.nn import functional as F  # noqa: N812

from harness import compare, format_time, torch_or_none

INPUTS = np.array([[1, 1, 1], [1, 0, 1], [0, 0, 1], [0, 1, 1]], dtype=np.float64)
OUTPUTS = np.array([[1, 1, 0, 0]], dtype=np.float64).T
INITIAL = np.array([[-0.16595599, 0.44064899, -0.99977125]])
STEPS = 5000


def ours() -> np.ndarray:
    """Train the neuron from the tutorial's initial weights; returns the final weights."""
    layer = nn.Linear(3, 1, bias=False, dtype=np.float64)
    layer.weight.data[...] = INITIAL
    model = nn.Sequential(layer, nn.Sigmoid())
    optimizer = optim.SGD(model.parameters(), lr=1.0)
    x = tg.Tensor(INPUTS)
    for _ in range(STEPS):
        loss = 0.5 * F.mse_loss(model(x), OUTPUTS, reduction="sum")
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return layer.weight.data


def numpy_loop() -> np.ndarray:
    """The tutorial's own loop, as it writes it: forward, error, and the hand-derived update."""
    weights = INITIAL.T.copy()
    for _ in range(STEPS):
        output = 1 / (1 + np.exp(-(INPUTS @ weights)))
        error = OUTPUTS - output
        weights += INPUTS.T @ (error * output * (1 - output))
    return weights.T


def pytorch(torch) -> np.ndarray:
    """The same in PyTorch (float64)."""
    layer = torch.nn.Linear(3, 1, bias=False, dtype=torch.float64)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(INITIAL))
    model = torch.nn.Sequential(layer, torch.nn.Sigmoid())
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    x, y = torch.from_numpy(INPUTS), torch.from_numpy(OUTPUTS)
    for _ in range(STEPS):
        loss = 0.5 * torch.nn.functional.mse_loss(model(x), y, reduction="sum")
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return layer.weight.detach().numpy()


def run() -> dict:
    """Time both; check they end at the tutorial's weights."""
    torch = torch_or_none()
    np.testing.assert_allclose(ours(), numpy_loop(), rtol=1e-9)
    candidates = {"tinygrad_nn": ours, "numpy": numpy_loop}
    if torch is not None:
        np.testing.assert_allclose(ours(), pytorch(torch), rtol=1e-9)
        candidates["pytorch"] = lambda: pytorch(torch)
    return compare(candidates, rounds=7, repeat=1, warmup=1)


def report(times: dict) -> list[str]:
    """Markdown rows."""
    ratio = f"{times['tinygrad_nn'] / times['pytorch']:.2f}" if "pytorch" in times else "-"
    pytorch = format_time(times["pytorch"]) if "pytorch" in times else "-"
    return [
        "| hand-written numpy | tinygrad_nn | PyTorch | ours / numpy (target <= 4) | ours / PyTorch (target <= 0.25) |",
        "|---:|---:|---:|---:|---:|",
        f"| {format_time(times['numpy'])} | {format_time(times['tinygrad_nn'])} | {pytorch} | "
        f"{times['tinygrad_nn'] / times['numpy']:.2f} | {ratio} |",
    ]


if __name__ == "__main__":
    print("\n".join(report(run())))
