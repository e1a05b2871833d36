"""Benchmark 1: one training step of a 784-100-10 sigmoid MLP, MSE loss, SGD, float32, batch 1 / 64 / 1024.

tinygrad_nn against the same maths written by hand in numpy, and against PyTorch on the CPU (if installed).
"""

from __future__ import annotations

import numpy as np

import tinygrad_nn as tg
from tinygrad_nn import nn, optim
from tinygrad_nn.nn import functional as F  # noqa: N812

from harness import compare, format_time, torch_or_none

LR = 0.1


def weights(seed: int = 0) -> list[np.ndarray]:
    """W1 (100, 784), b1, W2 (10, 100), b2 in float32, PyTorch's layout."""
    rng = np.random.default_rng(seed)
    return [
        rng.uniform(-1 / 28, 1 / 28, (100, 784)).astype(np.float32),
        rng.uniform(-1 / 28, 1 / 28, 100).astype(np.float32),
        rng.uniform(-0.1, 0.1, (10, 100)).astype(np.float32),
        rng.uniform(-0.1, 0.1, 10).astype(np.float32),
    ]


def numpy_step(x: np.ndarray, y: np.ndarray, params: list[np.ndarray]):
    """The step written by hand: forward, hand-derived backward, SGD."""
    w1, b1, w2, b2 = params

    def sigmoid(z):
        return 1 / (1 + np.exp(-z))

    def step():
        nonlocal w1, b1, w2, b2  # updated in place below, as a script at module level would
        hidden = sigmoid(x @ w1.T + b1)
        out = sigmoid(hidden @ w2.T + b2)
        loss = np.mean((out - y) ** 2)
        d_out = 2 * (out - y) / out.size
        d_z2 = d_out * out * (1 - out)
        d_w2 = d_z2.T @ hidden
        d_b2 = d_z2.sum(axis=0)
        d_hidden = d_z2 @ w2
        d_z1 = d_hidden * hidden * (1 - hidden)
        d_w1 = d_z1.T @ x
        d_b1 = d_z1.sum(axis=0)
        w1 -= LR * d_w1
        b1 -= LR * d_b1
        w2 -= LR * d_w2
        b2 -= LR * d_b2
        return loss

    return step


def ours_step(x: np.ndarray, y: np.ndarray, params: list[np.ndarray]):
    """The same network from tinygrad_nn's modules, loss and optimizer."""
    model = nn.Sequential(
        nn.Linear(784, 100, dtype=np.float32), nn.Sigmoid(), nn.Linear(100, 10, dtype=np.float32), nn.Sigmoid()
    )
    model.load_state_dict({"0.weight": params[0], "0.bias": params[1], "2.weight": params[2], "2.bias": params[3]})
    optimizer = optim.SGD(model.parameters(), lr=LR)
    inputs, targets = tg.Tensor(x), tg.Tensor(y)

    def step():
        loss = F.mse_loss(model(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss

    return step


def torch_step(x: np.ndarray, y: np.ndarray, params: list[np.ndarray], torch):
    """The same network in PyTorch."""
    model = torch.nn.Sequential(
        torch.nn.Linear(784, 100), torch.nn.Sigmoid(), torch.nn.Linear(100, 10), torch.nn.Sigmoid()
    )
    with torch.no_grad():
        for parameter, value in zip(model.parameters(), params):
            parameter.copy_(torch.from_numpy(value))
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    loss_fn = torch.nn.MSELoss()
    inputs, targets = torch.from_numpy(x), torch.from_numpy(y)

    def step():
        loss = loss_fn(model(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss

    return step


def run(batches=(1, 64, 1024)) -> list[dict]:
    """Time every batch size; returns one row per batch size."""
    torch = torch_or_none()
    rows = []
    for batch in batches:
        rng = np.random.default_rng(batch)
        x = rng.random((batch, 784), dtype=np.float32)
        y = rng.random((batch, 10), dtype=np.float32)
        candidates = {"numpy": numpy_step(x, y, weights()), "tinygrad_nn": ours_step(x, y, weights())}
        if torch is not None:
            candidates["pytorch"] = torch_step(x, y, weights(), torch)
        repeat = {1: 50, 64: 20, 1024: 3}.get(batch, 5)
        times = compare(candidates, rounds=40 if batch < 1024 else 25, repeat=repeat)
        rows.append({"batch": batch, **times})
    return rows


def report(rows: list[dict]) -> list[str]:
    """Markdown table rows with the ratios and the issue's targets."""
    lines = [
        "| batch | hand-written numpy | tinygrad_nn | PyTorch | ours / numpy (target <= 1.15) | ours / PyTorch |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        target = "<= 1.0" if row["batch"] >= 1024 else "<= 0.6"
        torch_time = row.get("pytorch")
        torch_cells = (
            (format_time(torch_time), f"{row['tinygrad_nn'] / torch_time:.2f} ({target})") if torch_time else ("-", "-")
        )
        lines.append(
            f"| {row['batch']} | {format_time(row['numpy'])} | {format_time(row['tinygrad_nn'])} | "
            f"{torch_cells[0]} | {row['tinygrad_nn'] / row['numpy']:.2f} | {torch_cells[1]} |"
        )
    return lines


if __name__ == "__main__":
    print("\n".join(report(run())))
