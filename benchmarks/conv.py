"""Benchmark 7: the layers of the CNN, forward plus backward, float32, batch 64: ours against PyTorch.

The issue's yardstick is `Conv2d` at batch 64, 32 to 64 channels, 14 x 14 (the default CNN's second convolution);
the other rows are the CNN's other layers at their sizes, to show where an epoch's time goes. Each candidate
computes the output, then the gradients of the input and the parameters for a fixed upstream gradient.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import tinygrad_nn as tg
from tinygrad_nn import Tensor, functions, nn
from tinygrad_nn.functions import conv as conv_family
from tinygrad_nn.functions import xp

from harness import compare, format_time, torch_or_none

BATCH = 64
HERE = Path(__file__).resolve().parent

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
    breakdown = _breakdown_on_one_blas_thread() if torch is None else None
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
    return {"layers": results, "breakdown": breakdown}


def _cpu_time(function, *arguments, repeat: int = 20) -> float:
    """Median CPU seconds of ``function(*arguments)``: steadier than wall time when other processes share the cores."""
    function(*arguments)
    times = []
    for _ in range(repeat):
        start = time.process_time()
        function(*arguments)
        times.append(time.process_time() - start)
    return float(np.median(times))


def _relu_backward(grad: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """What ReLU's backward does with a gradient array: one sum to see it is finite, then a branch-free product."""
    return grad * mask if np.isfinite(grad.sum()) else xp.where(mask, grad, 0)


def _channel_major(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    """Random values of `shape` (N, C, ...), laid out as the convolutions lay out their results."""
    memory = rng.standard_normal((shape[1], shape[0], *shape[2:]), dtype=np.float32)
    return memory.swapaxes(0, 1)


def _batch_norm_step(x: np.ndarray, grad: np.ndarray, weight: Tensor, bias: Tensor, statistics: tuple) -> None:
    inputs = Tensor(x)
    inputs._requires_grad = True  # as a computed tensor in the network: no copy of a leaf
    out = functions.BatchNorm.apply(inputs, weight, bias, running_mean=statistics[0], running_var=statistics[1])
    out.grad_fn.backward(out.grad_fn, grad)


def step_breakdown() -> dict[str, float]:
    """The pieces of one training step of the default CNN (batch 64, float32), each timed on its own.

    The numpy computations the primitives run, at the CNN's sizes: the convolutions' matmuls, the copies around
    them (im2col, col2im), and the other layers. Run it with one BLAS thread, so that CPU time is the work done.
    """
    rng = np.random.default_rng(0)
    pad, one = ((1, 1), (1, 1)), (1, 1)
    pieces = {}
    for name, (channels, out_channels, side) in {"conv1": (1, 32, 28), "conv2": (32, 64, 14)}.items():
        x = _channel_major(rng, (BATCH, channels, side, side))
        weight = rng.standard_normal((out_channels, channels, 3, 3), dtype=np.float32)
        grad = _channel_major(rng, (BATCH, out_channels, side, side))
        columns, _ = conv_family._columns(x, (3, 3), one, pad, one, 1)
        kernels = weight.reshape(1, out_channels, -1)
        pieces[f"{name}: im2col copy"] = _cpu_time(conv_family._columns, x, (3, 3), one, pad, one, 1)
        pieces[f"{name}: forward matmul"] = _cpu_time(np.matmul, kernels, columns)
        pieces[f"{name}: weight-gradient matmul"] = _cpu_time(
            conv_family.conv_weight_grad_array, x, grad, (3, 3), one, pad, one, 1, columns
        )
        if name == "conv2":  # the first convolution's input needs no gradient
            matrix = grad.swapaxes(0, 1).reshape(1, out_channels, -1)
            pieces[f"{name}: input-gradient matmul"] = _cpu_time(np.matmul, kernels.mT, matrix)
            pieces[f"{name}: input gradient, matmul + col2im scatter"] = _cpu_time(
                conv_family.conv_transpose_array, grad, weight, (side, side), one, pad, one, 1
            )
    geometry = ((2, 2), (2, 2), ((0, 0), (0, 0)), (1, 1))
    for name, (channels, side) in {"block 1": (32, 28), "block 2": (64, 14)}.items():
        x = _channel_major(rng, (BATCH, channels, side, side))
        grad = _channel_major(rng, (BATCH, channels, side, side))
        weight = Tensor(np.ones(channels, np.float32), requires_grad=True)
        bias = Tensor(np.zeros(channels, np.float32), requires_grad=True)
        statistics = (np.zeros(channels, np.float32), np.ones(channels, np.float32))
        pieces[f"{name}: batch norm, forward + backward"] = _cpu_time(
            _batch_norm_step, x, grad, weight, bias, statistics
        )
        pieces[f"{name}: ReLU forward"] = _cpu_time(np.maximum, x, 0)
        pieces[f"{name}: ReLU backward (finite check, grad * mask)"] = _cpu_time(_relu_backward, grad, x > 0)
        pieces[f"{name}: (for comparison: xp.where, its old backward)"] = _cpu_time(xp.where, x > 0, grad, 0)
        half = (side // 2, side // 2)
        out, positions = conv_family._max_pool_array(x, *geometry, half)
        pieces[f"{name}: max pool forward (argmax bookkeeping)"] = _cpu_time(
            conv_family._max_pool_array, x, *geometry, half
        )
        pieces[f"{name}: max pool backward (scatter)"] = _cpu_time(
            conv_family.window_scatter_array, out, positions, (side, side), *geometry
        )
    return pieces


def step_time(steps: int = 20) -> float:
    """Median CPU seconds of one training step of the default CNN (benchmark 8's), batch 64, after warming up."""
    from cnn_epoch import cnn

    rng = np.random.default_rng(0)
    tg.manual_seed(0)
    model = cnn(np.float32, seed=0)
    optimizer = tg.optim.Adam(model.parameters(), lr=1e-3)
    images, labels = rng.random((BATCH, 784), dtype=np.float32), rng.integers(0, 10, BATCH)

    def step() -> None:
        loss = tg.nn.functional.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    for _ in range(3):
        step()
    return _cpu_time(step, repeat=steps)


def _in_child(code: str, **environment: str) -> object:
    """Evaluate `code` (which prints JSON) in a child process with one BLAS thread and `environment` added."""
    variables = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", **environment)
    done = subprocess.run([sys.executable, "-c", code], cwd=HERE, env=variables, capture_output=True, text=True)
    done.check_returncode()
    return json.loads(done.stdout)


def _breakdown_on_one_blas_thread() -> dict[str, float]:
    """`step_breakdown` in a child process whose BLAS has one thread (set before numpy loads), and whole steps.

    A whole step is timed twice: with glibc's default allocator settings, and with ``MALLOC_TOP_PAD_`` set so
    that freed memory stays with the process instead of being returned and faulted in again at the next step.
    """
    pieces = _in_child("import json, conv; print(json.dumps(conv.step_breakdown()))")
    step = "import json, conv; print(json.dumps(conv.step_time()))"
    top_pad = {"MALLOC_TOP_PAD_": str(2**28)}
    pieces["one whole training step (default allocator)"] = _in_child(step)
    pieces["one whole training step, MALLOC_TOP_PAD_=256 MiB"] = _in_child(step, **top_pad)
    if _has_avx512():
        # OpenBLAS picks its AVX2 (Haswell) kernels on this CPU, whose model name the VM hides; its AVX-512 ones
        # can be asked for (never on a CPU without AVX-512: they would crash).
        skylake = {"OPENBLAS_CORETYPE": "SkylakeX"}
        pieces["one whole training step, OPENBLAS_CORETYPE=SkylakeX"] = _in_child(step, **skylake)
        pieces["one whole training step, both of the above"] = _in_child(step, **skylake, **top_pad)
    return pieces


def _has_avx512() -> bool:
    try:
        with open("/proc/cpuinfo") as info:
            return any(line.startswith("flags") and " avx512f " in f"{line} " for line in info)
    except OSError:
        return False


def report(results: dict) -> list[str]:
    lines = [
        "| layer, forward + backward, batch 64 | tinygrad_nn | PyTorch | ours / PyTorch (first row: target <= 1.5) |",
        "|---|---:|---:|---:|",
    ]
    for name, times in results["layers"].items():
        ours = times["tinygrad_nn"]
        theirs = times.get("pytorch")
        ratio = f"{ours / theirs:.2f}" if theirs else "-"
        lines.append(f"| {name} | {format_time(ours)} | {format_time(theirs) if theirs else '-'} | {ratio} |")
    if results["breakdown"]:
        lines += [
            "",
            "Where a training step's time goes: each piece alone, one BLAS thread, median CPU time of 20:",
            "",
        ]
        lines += ["| piece of one step, batch 64 | CPU time |", "|---|---:|"]
        pieces = {name: seconds for name, seconds in results["breakdown"].items() if "whole" not in name}
        lines += [f"| {name} | {format_time(seconds)} |" for name, seconds in pieces.items()]
        counted = sum(seconds for name, seconds in pieces.items() if "for comparison" not in name)
        lines.append(f"| sum of the pieces above (without the comparisons) | {format_time(counted)} |")
        lines += [
            f"| {name} | {format_time(seconds)} |" for name, seconds in results["breakdown"].items() if "whole" in name
        ]
    return lines


if __name__ == "__main__":
    print("\n".join(report(run())))
