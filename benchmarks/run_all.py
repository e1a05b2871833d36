"""`make bench`: every comparison, each in its own process, printed as the Markdown of benchmarks/README.md.

Each benchmark runs three times when PyTorch is installed: without PyTorch in the process (for the comparison
with hand-written numpy, which PyTorch's idle threads would slow), with PyTorch's default threads, and with
PyTorch on one thread (its fastest setting at these sizes on 2 cores). Pass names to run only some:
``python benchmarks/run_all.py mlp_step memory``.
"""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = {
    "mlp_step": "1. One training step of a 784-100-10 sigmoid MLP (MSE, SGD, float32)",
    "tutorial_004": "2. Tutorial 004's neuron, 5,000 full-batch steps (float64)",
    "micrograd_demo": "3. micrograd's demo MLP (2-16-16-1, 100 points), one step",
    "tutorial_001_epoch": "4. One epoch of tutorial 001's network over Fashion-MNIST, one image at a time (float32)",
    "memory": "5. Memory over ten epochs, and the graph of a step freed",
    "mlp_epoch": "6. One epoch of `tinygrad-nn train --dataset fashion-mnist --model mlp` (784-512-256-10, Adam)",
    "hvp": "7. A Hessian-vector product of the 784-100-10 sigmoid MLP's loss (batch 64, float32)",
    "conv": "8. The CNN's layers, forward and backward, batch 64 (float32)",
    "cnn_epoch": "9. One epoch of the default CNN on Fashion-MNIST (batch 64, float32)",
    "monitor_overhead": "10. What the gradient monitor costs a training step, batch 64",
}
# Benchmarks that PyTorch takes no part in: run once, without it.
WITHOUT_TORCH = ("memory", "monitor_overhead")
MODES = {
    "off": "without PyTorch in the process",
    "default": "PyTorch with its default threads",
    "1": "PyTorch on one thread",
}


def has_torch() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


# In the one-thread mode these give numpy's BLAS one thread too, so that both frameworks run on one thread each:
# on this shared 2-core machine, two BLAS threads slow down several times over whenever another process holds a core.
BOTH_ON_ONE_THREAD = {"conv", "cnn_epoch"}


def run(name: str, mode: str) -> str:
    code = f"import {name} as b; print('\\n'.join(b.report(b.run())))"
    environment = dict(os.environ, TINYGRAD_NN_BENCH_TORCH=mode)
    if mode == "1" and name in BOTH_ON_ONE_THREAD:
        environment["OPENBLAS_NUM_THREADS"] = "1"
    done = subprocess.run([sys.executable, "-c", code], cwd=HERE, env=environment, capture_output=True, text=True)
    if done.returncode != 0:
        return f"(failed: {done.stderr.strip().splitlines()[-1]})"
    return done.stdout.strip()


def main(names: list[str]) -> None:
    sys.path.insert(0, str(HERE))
    from harness import machine

    modes = ["off", "default", "1"] if has_torch() else ["off"]
    print(f"Measured {datetime.date.today()} on {machine()}; command: `make bench` (`python benchmarks/run_all.py`).\n")
    for name in names or BENCHMARKS:
        print(f"### {BENCHMARKS[name]}\n")
        for mode in (
            ["off"] if name in WITHOUT_TORCH else [m for m in modes if not (name == "mlp_epoch" and m == "off")]
        ):
            both = " (and numpy's BLAS on one thread)" if mode == "1" and name in BOTH_ON_ONE_THREAD else ""
            print(f"{MODES[mode]}{both}:\n")
            print(run(name, mode))
            print()


if __name__ == "__main__":
    main(sys.argv[1:])
