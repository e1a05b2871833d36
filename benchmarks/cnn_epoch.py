"""Benchmark 9: one epoch of the default CNN on Fashion-MNIST (batch 64, float32): time, accuracy and memory.

The CNN and its training recipe are the package's, `tinygrad_nn.models.cnn` and ``models.RECIPES["cnn"]``
(what ``tinygrad-nn train --model cnn`` trains): conv32-BN-ReLU-pool, conv64-BN-ReLU-pool, fc128-ReLU-dropout,
fc10, trained with Adam and a cosine-annealed learning rate. `torch_cnn` is the same network in PyTorch. Both
frameworks train the same network from the same initial weights over the same batches. Memory: the peak of
numpy's allocations during our epoch (tracemalloc), and for both frameworks the peak resident memory during
the epoch above what the process held before it (the kernel's high-water mark, reset before each epoch).
"""

from __future__ import annotations

import time
import tracemalloc

import numpy as np

import tinygrad_nn as tg
from tinygrad_nn import models, nn, optim
from tinygrad_nn.nn import functional as F  # noqa: N812

from harness import format_time, torch_or_none

RECIPE = models.RECIPES["cnn"].training
"""The default recipe for the CNN on Fashion-MNIST: reaches 0.92 test accuracy (see docs/cnn.md)."""


def cnn(dtype: object = np.float32, seed: int = 0) -> nn.Sequential:
    """The default CNN for Fashion-MNIST's 28 x 28 images: `tinygrad_nn.models.cnn` with its defaults."""
    return models.cnn(dtype=dtype, seed=seed)


def torch_cnn(torch, weights: dict | None = None, in_channels: int = 1, side: int = 28, classes: int = 10):
    """The same network in PyTorch (the same state-dict keys), with `weights` (a state dict of arrays) loaded."""
    quarter = side // 4
    model = torch.nn.Sequential(
        torch.nn.Unflatten(1, (in_channels, side, side)),
        torch.nn.Conv2d(in_channels, 32, 3, padding=1, bias=False),
        torch.nn.BatchNorm2d(32),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(32, 64, 3, padding=1, bias=False),
        torch.nn.BatchNorm2d(64),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(64 * quarter * quarter, 128),
        torch.nn.ReLU(),
        torch.nn.Dropout(0.25),
        torch.nn.Linear(128, classes),
    )
    if weights is not None:
        model.load_state_dict({name: torch.from_numpy(np.asarray(value)) for name, value in weights.items()})
    return model


def peak_resident_mb() -> float:
    """The process's peak resident memory since the last `reset_peak_resident` (Linux), in MiB."""
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM"))
    return int(line.split()[1]) / 1024


def resident_mb() -> float:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmRSS"))
    return int(line.split()[1]) / 1024


def reset_peak_resident() -> None:
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")


def data() -> tuple:
    (x_train, y_train), (x_test, y_test) = tg.data.load_fashion_mnist()
    return x_train, y_train, x_test, y_test


def accuracy(predict, x: np.ndarray, y: np.ndarray) -> float:
    correct = sum(
        int(np.sum(predict(x[i : i + 1000]).argmax(axis=1) == y[i : i + 1000])) for i in range(0, len(x), 1000)
    )
    return correct / len(x)


def ours(x, y, x_test, y_test, order, trace_memory: bool) -> dict:
    """One epoch of the recipe (its first: the full learning rate); returns seconds, accuracy and memory."""
    tg.manual_seed(0)
    model = cnn(np.float32, seed=0)
    optimizer = optim.Adam(model.parameters(), lr=RECIPE["lr"])
    batch = RECIPE["batch_size"]
    base = resident_mb()
    reset_peak_resident()
    if trace_memory:
        tracemalloc.start()
    start = time.perf_counter()
    for first in range(0, len(order), batch):
        rows = order[first : first + batch]
        loss = F.cross_entropy(model(x[rows]), y[rows])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    seconds = time.perf_counter() - start
    traced = tracemalloc.get_traced_memory()[1] / 2**20 if trace_memory else None
    tracemalloc.stop()
    resident = peak_resident_mb() - base
    model.eval()
    with tg.no_grad():
        score = accuracy(lambda images: model(images).data, x_test, y_test)
    return {"seconds": seconds, "accuracy": score, "traced_mb": traced, "resident_mb": resident}


def pytorch(x, y, x_test, y_test, order, torch) -> dict:
    """The same epoch in PyTorch, from the same initial weights over the same batches."""
    model = torch_cnn(torch, cnn(np.float32, seed=0).state_dict())
    optimizer = torch.optim.Adam(model.parameters(), lr=RECIPE["lr"])
    images, labels = torch.from_numpy(x), torch.from_numpy(y)
    batch = RECIPE["batch_size"]
    base = resident_mb()
    reset_peak_resident()
    start = time.perf_counter()
    for first in range(0, len(order), batch):
        rows = torch.from_numpy(order[first : first + batch])
        loss = torch.nn.functional.cross_entropy(model(images[rows]), labels[rows])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    seconds = time.perf_counter() - start
    resident = peak_resident_mb() - base
    model.eval()
    with torch.no_grad():
        score = accuracy(lambda images: model(torch.from_numpy(images)).numpy(), x_test, y_test)
    return {"seconds": seconds, "accuracy": score, "resident_mb": resident}


def run() -> dict:
    x, y, x_test, y_test = data()
    order = np.random.default_rng(0).permutation(len(x))
    torch = torch_or_none()
    result = {}
    if torch is not None:  # first, so that its resident peak is not hidden under ours
        result["pytorch"] = pytorch(x, y, x_test, y_test, order, torch)
    result["tinygrad_nn"] = ours(x, y, x_test, y_test, order, trace_memory=False)
    # Memory in a second, shorter pass: tracemalloc slows numpy's allocations, so it stays out of the timing.
    short = order[: 200 * RECIPE["batch_size"]]
    result["memory"] = ours(x, y, x_test[:1000], y_test[:1000], short, trace_memory=True)
    return result


def report(result: dict) -> list[str]:
    mine = result["tinygrad_nn"]
    memory = result["memory"]
    lines = [
        "| | tinygrad_nn | PyTorch | ours / PyTorch |",
        "|---|---:|---:|---:|",
    ]
    theirs = result.get("pytorch")
    if theirs:
        ratio = mine["seconds"] / theirs["seconds"]
        lines.append(
            f"| one epoch (60,000 images) | {format_time(mine['seconds'])} | {format_time(theirs['seconds'])} | "
            f"{ratio:.2f} |"
        )
        lines.append(f"| test accuracy after it | {mine['accuracy']:.4f} | {theirs['accuracy']:.4f} | |")
        # Ours is measured without PyTorch in the process: after PyTorch's epoch, numpy reuses memory the process
        # already holds, and the resident peak no longer shows ours.
        lines.append(
            f"| peak resident memory during the epoch, above the start | (the run without PyTorch) | "
            f"{theirs['resident_mb']:.0f} MiB | |"
        )
    else:
        lines.append(f"| one epoch (60,000 images) | {format_time(mine['seconds'])} | - | - |")
        lines.append(f"| test accuracy after it | {mine['accuracy']:.4f} | - | |")
        lines.append(
            f"| peak resident memory during the epoch, above the start | {mine['resident_mb']:.0f} MiB | - | - |"
        )
    lines.append(f"| peak of numpy's allocations in 200 steps (tracemalloc) | {memory['traced_mb']:.0f} MiB | | |")
    return lines


if __name__ == "__main__":
    print("\n".join(report(run())))
