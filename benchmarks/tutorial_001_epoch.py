"""Benchmark 4: one epoch of tutorial 001's network (784-200-10 sigmoid, no bias, 0.5 * summed squared error,
SGD lr 0.1) over Fashion-MNIST, one image at a time, float32: ours against PyTorch.

Also reports the test accuracy each reaches, from the same initial weights (they must agree).
"""

from __future__ import annotations

import sys
import time

import numpy as np

import tinygrad_nn as tg
from tinygrad_nn import nn, optim
from tinygrad_nn.nn import functional as F  # noqa: N812

from harness import format_time, torch_or_none

LR = 0.1


def data(samples: int | None):
    """Inputs scaled to 0.01..1.0 and targets 0.01/0.99, as the book does."""
    (x_train, y_train), (x_test, y_test) = tg.data.load_fashion_mnist()
    count = len(x_train) if samples is None else samples
    x = (x_train[:count] * 0.99 + 0.01).astype(np.float32)
    targets = np.full((count, 10), 0.01, dtype=np.float32)
    targets[np.arange(count), y_train[:count]] = 0.99
    return x, targets, (x_test * 0.99 + 0.01).astype(np.float32), y_test


def initial_weights(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The book's uniform +-0.5, (hidden, inputs) and (outputs, hidden)."""
    rng = np.random.default_rng(seed)
    return (rng.random((200, 784)) - 0.5).astype(np.float32), (rng.random((10, 200)) - 0.5).astype(np.float32)


def ours(x, targets, x_test, y_test) -> tuple[float, float]:
    """Train one epoch; returns (seconds, test accuracy)."""
    w_ih, w_ho = initial_weights()
    model = nn.Sequential(
        nn.Linear(784, 200, bias=False, dtype=np.float32),
        nn.Sigmoid(),
        nn.Linear(200, 10, bias=False, dtype=np.float32),
        nn.Sigmoid(),
    )
    model.load_state_dict({"0.weight": w_ih, "2.weight": w_ho})
    optimizer = optim.SGD(model.parameters(), lr=LR)
    start = time.perf_counter()
    for image, target in zip(x, targets):
        loss = 0.5 * F.mse_loss(model(tg.Tensor(image)), target, reduction="sum")
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    seconds = time.perf_counter() - start
    with tg.no_grad():
        accuracy = float(np.mean(model(tg.Tensor(x_test)).data.argmax(axis=1) == y_test))
    return seconds, accuracy


def pytorch(x, targets, x_test, y_test, torch) -> tuple[float, float]:
    """The same epoch in PyTorch."""
    w_ih, w_ho = initial_weights()
    model = torch.nn.Sequential(
        torch.nn.Linear(784, 200, bias=False),
        torch.nn.Sigmoid(),
        torch.nn.Linear(200, 10, bias=False),
        torch.nn.Sigmoid(),
    )
    with torch.no_grad():
        model[0].weight.copy_(torch.from_numpy(w_ih))
        model[2].weight.copy_(torch.from_numpy(w_ho))
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    images, target_rows = torch.from_numpy(x), torch.from_numpy(targets)
    start = time.perf_counter()
    for image, target in zip(images, target_rows):
        loss = 0.5 * torch.nn.functional.mse_loss(model(image), target, reduction="sum")
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    seconds = time.perf_counter() - start
    with torch.no_grad():
        accuracy = float((model(torch.from_numpy(x_test)).argmax(dim=1).numpy() == y_test).mean())
    return seconds, accuracy


def run(samples: int | None = None, rounds: int = 1) -> dict:
    """Alternate ours and PyTorch `rounds` times (a full epoch each); keep each one's fastest."""
    x, targets, x_test, y_test = data(samples)
    torch = torch_or_none()
    results: dict[str, list] = {"tinygrad_nn": [], "pytorch": []}
    for _ in range(rounds):
        results["tinygrad_nn"].append(ours(x, targets, x_test, y_test))
        if torch is not None:
            results["pytorch"].append(pytorch(x, targets, x_test, y_test, torch))
    return {name: min(runs) for name, runs in results.items() if runs} | {"samples": len(x)}


def report(times: dict) -> list[str]:
    """Markdown rows."""
    ours_seconds, ours_accuracy = times["tinygrad_nn"]
    torch_seconds, torch_accuracy = times.get("pytorch", (None, None))
    ratio = f"{ours_seconds / torch_seconds:.2f}" if torch_seconds else "-"
    return [
        "| images | tinygrad_nn | PyTorch | ours / PyTorch (target <= 0.5) | test accuracy ours / PyTorch |",
        "|---:|---:|---:|---:|---:|",
        f"| {times['samples']} | {format_time(ours_seconds)} | {format_time(torch_seconds) if torch_seconds else '-'} "
        f"| {ratio} | {ours_accuracy:.4f} / {torch_accuracy:.4f} |"
        if torch_seconds
        else f"| {times['samples']} | {format_time(ours_seconds)} | - | - | {ours_accuracy:.4f} / - |",
    ]


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else None
    print("\n".join(report(run(count))))
