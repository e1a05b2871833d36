"""Where a step of tutorial 004's neuron goes: its phases timed apart, beside the tutorial's own numpy loop.

``python benchmarks/profile_tutorial_004.py`` (not part of `make bench`: a profile, not a comparison). Each phase
of the step (the model's forward, the loss, zero_grad, backward, the optimizer's step) is timed on its own over
5,000 steps; benchmarks/README.md says what each phase spends its time on.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
from tutorial_004 import INITIAL, INPUTS, OUTPUTS

import tinygrad_nn as tg
from tinygrad_nn import nn, optim
from tinygrad_nn.nn import functional as F  # noqa: N812

STEPS = 5000


def phases(steps: int = STEPS) -> dict[str, float]:
    """Median microseconds per step of each phase, over `steps` steps."""
    layer = nn.Linear(3, 1, bias=False, dtype=np.float64)
    layer.weight.data[...] = INITIAL
    model = nn.Sequential(layer, nn.Sigmoid())
    optimizer = optim.SGD(model.parameters(), lr=1.0)
    x = tg.Tensor(INPUTS)
    samples: dict[str, list[float]] = {name: [] for name in ("model", "loss", "zero_grad", "backward", "step")}
    clock = time.perf_counter
    for _ in range(steps):
        start = clock()
        output = model(x)
        after_model = clock()
        loss = 0.5 * F.mse_loss(output, OUTPUTS, reduction="sum")
        after_loss = clock()
        optimizer.zero_grad()
        after_zero = clock()
        loss.backward()
        after_backward = clock()
        optimizer.step()
        end = clock()
        samples["model"].append(after_model - start)
        samples["loss"].append(after_loss - after_model)
        samples["zero_grad"].append(after_zero - after_loss)
        samples["backward"].append(after_backward - after_zero)
        samples["step"].append(end - after_backward)
    return {name: statistics.median(times) * 1e6 for name, times in samples.items()}


def numpy_step(steps: int = STEPS) -> float:
    """Median microseconds per step of the tutorial's own numpy loop, for scale."""
    weights = INITIAL.T.copy()
    samples = []
    clock = time.perf_counter
    for _ in range(steps):
        start = clock()
        output = 1 / (1 + np.exp(-(INPUTS @ weights)))
        error = OUTPUTS - output
        weights += INPUTS.T @ (error * output * (1 - output))
        samples.append(clock() - start)
    return statistics.median(samples) * 1e6


def main() -> None:
    """Print the phases and the numpy calls."""
    times = phases()
    total = sum(times.values())
    print(f"one step of tutorial 004's neuron, median over {STEPS} steps: {total:.1f} us")
    for name, value in times.items():
        print(f"  {name:<10} {value:6.1f} us  {value / total:5.0%}")
    print(f"the tutorial's numpy loop, median over {STEPS} steps: {numpy_step():.1f} us")


if __name__ == "__main__":
    main()
