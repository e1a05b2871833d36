"""Benchmark 6: one epoch of `tinygrad-nn train --dataset fashion-mnist --model mlp`.

784-512-256-10, ReLU, cross-entropy, Adam, batch 64, float32, 60,000 images: ours against PyTorch training the
same network from the same weights.
"""

from __future__ import annotations

import time

import numpy as np

import tinygrad_nn as tg
from tinygrad_nn import optim
from tinygrad_nn.models import mlp
from tinygrad_nn.nn import functional as F  # noqa: N812

from harness import format_time, torch_or_none


def data():
    (x_train, y_train), (x_test, y_test) = tg.data.load_fashion_mnist()
    return x_train, y_train, x_test, y_test


def ours(x, y, x_test, y_test, order) -> tuple[float, float]:
    """One epoch; returns (seconds, test accuracy)."""
    model = mlp(784, [512, 256], 10, np.float32, 0)
    optimizer = optim.Adam(model.parameters(), lr=1e-3)
    start = time.perf_counter()
    for first in range(0, len(x), 64):
        rows = order[first : first + 64]
        loss = F.cross_entropy(model(tg.Tensor(x[rows])), y[rows])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    seconds = time.perf_counter() - start
    with tg.no_grad():
        accuracy = float(np.mean(model(tg.Tensor(x_test)).data.argmax(axis=1) == y_test))
    return seconds, accuracy, model.state_dict()


def pytorch(x, y, x_test, y_test, order, weights, torch) -> tuple[float, float]:
    """The same epoch in PyTorch, starting from our initial weights."""
    layers = [
        torch.nn.Linear(784, 512),
        torch.nn.ReLU(),
        torch.nn.Linear(512, 256),
        torch.nn.ReLU(),
        torch.nn.Linear(256, 10),
    ]
    model = torch.nn.Sequential(*layers)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            parameter.copy_(torch.from_numpy(weights[name]))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    images, labels = torch.from_numpy(x), torch.from_numpy(y)
    start = time.perf_counter()
    for first in range(0, len(x), 64):
        rows = torch.from_numpy(order[first : first + 64])
        loss = torch.nn.functional.cross_entropy(model(images[rows]), labels[rows])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    seconds = time.perf_counter() - start
    with torch.no_grad():
        accuracy = float((model(torch.from_numpy(x_test)).argmax(dim=1).numpy() == y_test).mean())
    return seconds, accuracy


def run() -> dict:
    x, y, x_test, y_test = data()
    order = np.random.default_rng(0).permutation(len(x))
    initial = mlp(784, [512, 256], 10, np.float32, 0).state_dict()
    seconds, accuracy, _ = ours(x, y, x_test, y_test, order)
    result = {"tinygrad_nn": (seconds, accuracy)}
    torch = torch_or_none()
    if torch is not None:
        result["pytorch"] = pytorch(x, y, x_test, y_test, order, initial, torch)
    return result


def report(result: dict) -> list[str]:
    ours_seconds, ours_accuracy = result["tinygrad_nn"]
    lines = [
        "| tinygrad_nn | PyTorch | ours / PyTorch | test accuracy after 1 epoch, ours / PyTorch |",
        "|---:|---:|---:|---:|",
    ]
    if "pytorch" in result:
        torch_seconds, torch_accuracy = result["pytorch"]
        lines.append(
            f"| {format_time(ours_seconds)} | {format_time(torch_seconds)} | "
            f"{ours_seconds / torch_seconds:.2f} | {ours_accuracy:.4f} / {torch_accuracy:.4f} |"
        )
    else:
        lines.append(f"| {format_time(ours_seconds)} | - | - | {ours_accuracy:.4f} / - |")
    return lines


if __name__ == "__main__":
    print("\n".join(report(run())))
