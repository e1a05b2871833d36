"""What recording module boundaries costs a training step (the figure quoted in docs/graphs.md).

`Module.__call__` records which module call every op runs in, so that `draw_graph` can draw modules as
clusters: one tuple and two global writes per module call, and one attribute store on every op recorded inside
a module. A training step of a 784-100-10 MLP (batch 64, float32, ReLU, cross-entropy, SGD) makes four module
calls and records three ops inside them, so the cost is far below the noise of timing whole steps on a shared
machine. This script therefore measures it twice:

1. directly: the time of a module call with and without the recording (``Module.__call__`` swapped for a plain
   call of ``forward``), on a module whose forward does nothing, and the time of recording an op inside a
   module call and outside any; times the calls and ops of one step, divided by the fastest training step;
2. end to end: whole training steps with modules, with modules whose ``__call__`` records nothing, and with
   the same ops called as functions on the same parameters, interleaved so that drifts hit all three alike.

Run it: ``python scripts/measure_scope_overhead.py`` (about half a minute; numpy is held to one thread so that
the figures do not depend on the number of cores).
"""

from __future__ import annotations

import os

# One BLAS thread, set before numpy is imported, so the figures do not depend on the number of cores.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import datetime
import platform
import time
import timeit
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

import tinygrad_nn as tg
from tinygrad_nn import autograd, functions, nn, optim
from tinygrad_nn.nn import functional as F  # noqa: N812

RECORDING_CALL = nn.Module.__call__


def plain_call(self: nn.Module, *args: Any, **kwargs: Any) -> Any:
    """`Module.__call__` without the scope recording."""
    return self.forward(*args, **kwargs)


RECORDING_SEQUENTIAL_CALL = nn.Sequential.__call__


@contextmanager
def scopes_off() -> Iterator[None]:
    """Module calls record no scope inside the block (`Sequential` records its children's itself: it too)."""
    nn.Module.__call__ = plain_call
    nn.Sequential.__call__ = plain_call
    try:
        yield
    finally:
        nn.Module.__call__ = RECORDING_CALL
        nn.Sequential.__call__ = RECORDING_SEQUENTIAL_CALL


class Nothing(nn.Module):
    """A module whose forward returns its input: a call of it is all __call__."""

    def forward(self, x: Any) -> Any:
        """Return `x`."""
        return x


def cost_per_call(repeat: int) -> float:
    """Seconds the recording adds to one module call (the fastest of `repeat` runs, each way)."""
    module, x = Nothing(), object()
    number = 200_000
    recorded = min(timeit.repeat(lambda: module(x), number=number, repeat=repeat)) / number
    with scopes_off():
        plain = min(timeit.repeat(lambda: module(x), number=number, repeat=repeat)) / number
    return recorded - plain


def cost_per_op(repeat: int) -> float:
    """Seconds that being inside a module call adds to recording one op (storing its scope on the node)."""
    x = tg.Tensor(1.0, requires_grad=True)
    number = 200_000
    state = autograd._local.state  # this thread's recording state, where a module call puts its scope
    try:
        state.scope = None
        outside = min(timeit.repeat(lambda: functions.Neg.apply(x), number=number, repeat=repeat)) / number
        state.scope = (Nothing(), None)
        inside = min(timeit.repeat(lambda: functions.Neg.apply(x), number=number, repeat=repeat)) / number
    finally:
        state.scope = None
    return inside - outside


def ops_in_modules(loss: tg.Tensor) -> int:
    """How many ops of the graph of `loss` were recorded inside a module call."""
    count = 0
    stack = [loss.grad_fn]
    seen = set(stack)
    while stack:
        node = stack.pop()
        count += getattr(node, "scope", None) is not None
        for edge in node.parents:
            parent = getattr(edge, "node", edge)  # the node behind a multi-output edge
            if parent is not None and not isinstance(parent, tg.Tensor) and parent not in seen:
                seen.add(parent)
                stack.append(parent)
    return count


def build() -> tuple[nn.Sequential, optim.SGD, np.ndarray, np.ndarray]:
    """The model, its optimizer and one batch of random images and labels."""
    tg.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 100, dtype=np.float32), nn.ReLU(), nn.Linear(100, 10, dtype=np.float32))
    rng = np.random.default_rng(0)
    images = rng.random((64, 784), dtype=np.float32)
    labels = rng.integers(0, 10, size=64)
    return model, optim.SGD(model.parameters(), lr=0.01), images, labels


def module_calls_per_step(loss: tg.Tensor) -> int:
    """How many module calls the forward pass of `loss` recorded.

    They are the distinct scopes on its nodes, enclosing ones included: each module call makes one scope,
    whichever ``__call__`` made it (`Sequential` records its children's calls itself, without
    `Module.__call__`).
    """
    scopes: set[int] = set()
    stack = [loss.grad_fn]
    seen = set(stack)
    while stack:
        node = stack.pop()
        scope = getattr(node, "scope", None)
        while scope is not None and id(scope) not in scopes:
            scopes.add(id(scope))
            scope = scope[1]
        for edge in node.parents:
            parent = getattr(edge, "node", edge)
            if parent is not None and not isinstance(parent, tg.Tensor) and parent not in seen:
                seen.add(parent)
                stack.append(parent)
    return len(scopes)


def main() -> None:
    """Measure and print the figures."""
    parser = argparse.ArgumentParser(description="What recording module boundaries costs a training step.")
    parser.add_argument("--rounds", type=int, default=20, help="interleaved rounds of whole steps (default 20)")
    parser.add_argument("--steps", type=int, default=100, help="training steps per variant and round (default 100)")
    arguments = parser.parse_args()

    model, optimizer, images, labels = build()
    first, _, second = model

    def functions(x: tg.Tensor) -> tg.Tensor:
        return F.linear(F.relu(F.linear(x, first.weight, first.bias)), second.weight, second.bias)

    def run(forward: Callable[[tg.Tensor], tg.Tensor], steps: int) -> float:
        start = time.perf_counter()
        for _ in range(steps):
            loss = F.cross_entropy(forward(tg.Tensor(images)), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        return (time.perf_counter() - start) / steps

    def run_without_scopes(steps: int) -> float:
        with scopes_off():
            return run(model, steps)

    variants: dict[str, Callable[[int], float]] = {
        "modules": lambda steps: run(model, steps),
        "modules, no recording": run_without_scopes,
        "functions, no modules": lambda steps: run(functions, steps),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    for variant in variants.values():  # warm up
        variant(20)
    for _ in range(arguments.rounds):
        for name, variant in variants.items():
            times[name].append(variant(arguments.steps))

    per_call = cost_per_call(repeat=7)
    per_op = max(cost_per_op(repeat=7), 0.0)
    loss = F.cross_entropy(model(tg.Tensor(images)), labels)
    calls, ops = module_calls_per_step(loss), ops_in_modules(loss)
    fastest_step = min(times["modules"])
    recording = calls * per_call + ops * per_op
    print(f"{datetime.date.today()}, {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"784-100-10 MLP, batch 64, float32; fastest of {arguments.rounds} rounds of {arguments.steps} steps")
    print(f"  recording a module call: {per_call * 1e9:.0f} ns, {calls} per step")
    print(f"  recording the scope of an op: {per_op * 1e9:.0f} ns, {ops} ops inside modules per step")
    print(f"  training step with modules: {fastest_step * 1e6:.0f} us")
    print(f"  recording costs {recording * 1e6:.2f} us = {100 * recording / fastest_step:.3f}% of a training step")
    print("  end to end (fastest step; differences below a few percent are noise on a shared machine):")
    for name, values in times.items():
        change = 100 * (min(values) / fastest_step - 1)
        print(f"    {name:24s} {min(values) * 1e6:7.0f} us  ({change:+.1f}% against modules)")


if __name__ == "__main__":
    main()
