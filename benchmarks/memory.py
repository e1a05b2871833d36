"""Benchmark 5: memory. Peak resident memory across ten epochs stays flat, and the graph of a step is freed.

Trains a 784-100-10 sigmoid MLP (MSE, SGD, batch 64, float32) on 10,000 Fashion-MNIST images (the 8x8 digits
if Fashion-MNIST is missing) for ten epochs, recording after each epoch the process's resident memory and the
peak of numpy's own allocations (numpy reports them to tracemalloc). Then checks that after backward, once the
loss goes out of scope, nothing of the step's graph is left: no node, and no traced allocation.
"""

from __future__ import annotations

import gc
import resource
import tracemalloc
import weakref

import numpy as np

import tinygrad_nn as tg
from tinygrad_nn import nn, optim
from tinygrad_nn.nn import functional as F  # noqa: N812


def resident_mb() -> float:
    """The current resident set size, in MiB (Linux /proc)."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def load() -> tuple[np.ndarray, np.ndarray]:
    try:
        (x, y), _ = tg.data.load_fashion_mnist(download=False)
        x, y = x[:10_000], y[:10_000]
    except tg.data.DataError:
        (x, y), _ = tg.data.load_digits()
    targets = np.zeros((len(y), 10), np.float32)
    targets[np.arange(len(y)), y] = 1
    return x.astype(np.float32), targets


def run(epochs: int = 10) -> dict:
    """Train and measure; returns per-epoch figures and the freed-graph checks."""
    x, targets = load()
    model = nn.Sequential(
        nn.Linear(x.shape[1], 100, dtype=np.float32), nn.Sigmoid(), nn.Linear(100, 10, dtype=np.float32), nn.Sigmoid()
    )
    optimizer = optim.SGD(model.parameters(), lr=0.5)
    loader = tg.data.DataLoader(x, targets, batch_size=64, shuffle=True, seed=0)
    tracemalloc.start()
    rows = []
    for epoch in range(1, epochs + 1):
        tracemalloc.reset_peak()
        for xb, yb in loader:
            loss = F.mse_loss(model(xb), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        current, peak = tracemalloc.get_traced_memory()
        rows.append({"epoch": epoch, "rss_mb": resident_mb(), "traced_mb": current / 2**20, "peak_mb": peak / 2**20})
    del loss
    # One more step, watched: after backward and `del`, its nodes and arrays must be gone.
    gc.collect()
    before, _ = tracemalloc.get_traced_memory()
    xb, yb = next(iter(loader))
    loss = F.mse_loss(model(xb), yb)
    node = weakref.ref(loss.grad_fn)
    # Arrays only the graph holds: the loss's saved difference and each sigmoid's saved output (the Linear nodes
    # also save the weights, which the model keeps alive, so they are no witness).
    saved, stack = [], [loss.grad_fn]
    while stack:
        current = stack.pop()
        if type(current).__name__ == "MeanSquaredError":
            saved.append(weakref.ref(current._saved[1]))
        elif type(current).__name__ == "Sigmoid":
            saved.append(weakref.ref(current.output))
        stack.extend(edge for edge in current.parents if isinstance(edge, tg.Function))
    optimizer.zero_grad()
    loss.backward()
    saved_freed_after_backward = all(ref() is None for ref in saved)
    optimizer.step()
    del loss, xb, yb
    after, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "epochs": rows,
        "node_freed": node() is None,
        "saved_freed_after_backward": saved_freed_after_backward,
        "leftover_kb": (after - before) / 1024,
    }


def report(result: dict) -> list[str]:
    """Markdown rows."""
    lines = [
        "| epoch | resident (MiB) | numpy arrays alive (MiB) | numpy peak in epoch (MiB) |",
        "|---:|---:|---:|---:|",
    ]
    for row in result["epochs"]:
        lines.append(f"| {row['epoch']} | {row['rss_mb']:.1f} | {row['traced_mb']:.2f} | {row['peak_mb']:.2f} |")
    lines.append("")
    lines.append(
        f"After one more step: its node freed once the loss goes out of scope: {result['node_freed']}; "
        f"arrays saved for backward freed by backward itself: {result['saved_freed_after_backward']}; "
        f"numpy memory after the step minus before it: {result['leftover_kb']:.1f} KiB (the step's graph and "
        "saved arrays are gone; what remains is the parameters' new gradients, and the previous step's loss "
        "is no longer held)."
    )
    return lines


if __name__ == "__main__":
    print("\n".join(report(run())))
