"""Timing that is fair to everyone: one process, candidates interleaved round by round, medians and ratios."""

from __future__ import annotations

import os
import platform
import random
import statistics
import time
from collections.abc import Callable

import numpy as np


def compare(
    candidates: dict[str, Callable[[], object]], rounds: int = 30, repeat: int = 20, warmup: int = 3
) -> dict[str, float]:
    """Median seconds per call of each candidate.

    Each round runs every candidate `repeat` times back to back, in a new random order, so that drift in the
    machine's speed (other processes, frequency changes) falls on all of them alike.
    """
    for function in candidates.values():
        for _ in range(warmup):
            function()
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    order = list(candidates)
    shuffler = random.Random(0)
    for _ in range(rounds):
        shuffler.shuffle(order)
        for name in order:
            function = candidates[name]
            start = time.perf_counter()
            for _ in range(repeat):
                function()
            samples[name].append((time.perf_counter() - start) / repeat)
    return {name: statistics.median(times) for name, times in samples.items()}


def machine() -> str:
    """One line describing where the numbers come from."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, numpy {np.__version__}"


def torch_or_none():
    """PyTorch if installed and wanted (it is only ever a yardstick here), else None.

    ``TINYGRAD_NN_BENCH_TORCH`` chooses: ``off`` (leave it out: once imported, its idle OpenMP threads slow
    numpy's own BLAS threads, so the numpy comparisons run without it), ``default`` (its own thread count), or
    a number of intra-op threads (``1`` is its best setting for these sizes on 2 cores).
    """
    mode = os.environ.get("TINYGRAD_NN_BENCH_TORCH", "default")
    if mode == "off":
        return None
    try:
        import torch
    except ImportError:
        return None
    if mode != "default":
        torch.set_num_threads(int(mode))
    return torch


def format_time(seconds: float) -> str:
    """Seconds in the unit that reads best."""
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"
