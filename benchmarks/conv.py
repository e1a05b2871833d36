"""Benchmark 7: the layers of the CNN, forward plus backward, float32, batch 64: ours against PyTorch.

The issue's yardstick is `Conv2d` at batch 64, 32 to 64 channels, 14 x 14 (the default CNN's second convolution);
the other rows are the CNN's other layers at their sizes, to show where an epoch's time goes. Each candidate
computes the output, then the gradients of the input and the parameters for a fixed upstream gradient.
"""

from __future__ import annotations

import numpy as np

import tinygrad_nn as tg
from tinygrad_nn import Tensor, nn

from harness import compare, format_time, torch_or_none

BATCH = 64

# name: (our layer, PyTorch's layer or None, input shape, whether the input needs a gradient)
LAYERS = {
    "Conv2d(32, 64, 3, padding=1), 14 x 14": (
        lambda: nn.Conv2d(32, 64, 3, padding=1),
        lambda torch: torch.nn.Conv2d(32, 64, 3, padding=1),
        (BATCH, 32, 14, 14),
        True,
    ),
    "Conv2d(1, 32, 3, padding=1), 28 x 28 (no input gradient)": (
        lambda: nn.Conv2d(1, 32, 3, padding=1),
        lambda torch: torch.nn.Conv2d(1, 32, 3, padding=1),
        (BATCH, 1, 28, 28),
        False,
    ),
    "MaxPool2d(2), 32 x 28 x 28": (
        lambda: nn.MaxPool2d(2),
        lambda torch: torch.nn.MaxPool2d(2),
        (BATCH, 32, 28, 28),
        True,
    ),
    "ReLU, 32 x 28 x 28": (lambda: nn.ReLU(), lambda torch: torch.nn.ReLU(), (BATCH, 32, 28, 28), True),
    "BatchNorm2d(32), 28 x 28": (
        lambda: nn.BatchNorm2d(32),
        lambda torch: torch.nn.BatchNorm2d(32),
        (BATCH, 32, 28, 28),
        True,
    ),
}


def ours_step(layer: nn.Module, x: np.ndarray, upstream: np.ndarray, input_grad: bool):
    def step():
        inputs = Tensor(x, requires_grad=input_grad)
        layer.zero_grad()
        layer(inputs).backward(upstream)

    return step


def torch_step(torch, layer, x, upstream, input_grad: bool):
    x, upstream = torch.from_numpy(x), torch.from_numpy(upstream)

    def step():
        inputs = x.clone().requires_grad_(input_grad)
        layer.zero_grad()
        layer(inputs).backward(upstream)

    return step


def run() -> dict:
    torch = torch_or_none()
    rng = np.random.default_rng(0)
    results = {}
    for name, (make_ours, make_theirs, shape, input_grad) in LAYERS.items():
        tg.manual_seed(0)
        layer = make_ours().to(np.float32)
        x = rng.standard_normal(shape, dtype=np.float32)
        with tg.no_grad():
            upstream = rng.standard_normal(layer(x).shape, dtype=np.float32)
        candidates = {"tinygrad_nn": ours_step(layer, x, upstream, input_grad)}
        if torch is not None:
            theirs = make_theirs(torch)
            if any(True for _ in theirs.parameters()):
                with torch.no_grad():
                    for parameter, array in zip(theirs.parameters(), layer.parameters()):
                        parameter.copy_(torch.from_numpy(array.data))
            candidates["pytorch"] = torch_step(torch, theirs, x, upstream, input_grad)
        results[name] = compare(candidates, rounds=15, repeat=5, warmup=2)
    return results


def report(results: dict) -> list[str]:
    lines = [
        "| layer, forward + backward, batch 64 | tinygrad_nn | PyTorch | ours / PyTorch (first row: target <= 1.5) |",
        "|---|---:|---:|---:|",
    ]
    for name, times in results.items():
        ours = times["tinygrad_nn"]
        theirs = times.get("pytorch")
        ratio = f"{ours / theirs:.2f}" if theirs else "-"
        lines.append(f"| {name} | {format_time(ours)} | {format_time(theirs) if theirs else '-'} | {ratio} |")
    return lines


if __name__ == "__main__":
    print("\n".join(report(run())))
