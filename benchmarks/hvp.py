"""Benchmark 7: a Hessian-vector product of the 784-100-10 sigmoid MLP's loss (batch 64, float32).

Against one gradient of the same loss (target: at most 4x), and against PyTorch's
``torch.autograd.functional.hvp`` (target: at most its time on one thread). The loss is a function of the four
parameter tensors, as `func.hvp` and PyTorch's hvp take it; the vector is random, one array per parameter.
"""

from __future__ import annotations

import numpy as np
from mlp_step import weights

import tinygrad_nn as tg
from tinygrad_nn import func
from tinygrad_nn.nn import functional as F  # noqa: N812

from harness import compare, format_time, torch_or_none

BATCH = 64


def data() -> tuple[np.ndarray, np.ndarray]:
    """A batch of inputs and targets."""
    rng = np.random.default_rng(BATCH)
    return rng.random((BATCH, 784), dtype=np.float32), rng.random((BATCH, 10), dtype=np.float32)


def direction() -> tuple[np.ndarray, ...]:
    """The vector the Hessian multiplies, one array per parameter: the same for both frameworks."""
    rng = np.random.default_rng(1)
    return tuple(rng.standard_normal(p.shape).astype(np.float32) for p in weights())


def ours():
    """The gradient and the Hessian-vector product, as two callables."""
    x, y = data()
    params = tuple(tg.Tensor(p) for p in weights())
    vector = direction()
    inputs = tg.Tensor(x)

    def loss(w1, b1, w2, b2):
        hidden = F.linear(inputs, w1, b1).sigmoid()
        return F.mse_loss(F.linear(hidden, w2, b2).sigmoid(), y)

    leaves = tuple(tg.Tensor(p.data, requires_grad=True) for p in params)

    def gradient():
        return tg.grad(loss(*leaves), leaves)

    def hessian_vector():
        return func.hvp(loss, params, vector)[1]

    return gradient, hessian_vector


def pytorch(torch):
    """PyTorch's gradient and ``torch.autograd.functional.hvp`` of the same loss."""
    x, y = (torch.from_numpy(a) for a in data())
    params = tuple(torch.from_numpy(p) for p in weights())
    vector = tuple(torch.from_numpy(v) for v in direction())

    def loss(w1, b1, w2, b2):
        hidden = torch.sigmoid(torch.nn.functional.linear(x, w1, b1))
        return torch.nn.functional.mse_loss(torch.sigmoid(torch.nn.functional.linear(hidden, w2, b2)), y)

    leaves = tuple(p.clone().requires_grad_(True) for p in params)

    def gradient():
        return torch.autograd.grad(loss(*leaves), leaves)

    def hessian_vector():
        return torch.autograd.functional.hvp(loss, params, vector)[1]

    return gradient, hessian_vector


def check_agreement(hessian_vector, torch_hvp) -> None:
    """Both products are the same vector, to float32's precision (raises AssertionError if not)."""
    for mine, theirs in zip(hessian_vector(), torch_hvp()):
        np.testing.assert_allclose(mine.data, theirs.numpy(), rtol=2e-3, atol=1e-5)


def run() -> dict:
    """Time both of each, after checking that they agree."""
    torch = torch_or_none()
    gradient, hessian_vector = ours()
    candidates = {"gradient": gradient, "hvp": hessian_vector}
    if torch is not None:
        torch_gradient, torch_hvp = pytorch(torch)
        check_agreement(hessian_vector, torch_hvp)
        candidates["pytorch gradient"] = torch_gradient
        candidates["pytorch hvp"] = torch_hvp
    return compare(candidates, rounds=25, repeat=10)


def report(times: dict) -> list[str]:
    """Markdown rows."""
    torch_hvp = times.get("pytorch hvp")
    versus = f"{times['hvp'] / torch_hvp:.2f}" if torch_hvp else "-"
    return [
        "| gradient | Hessian-vector product | hvp / gradient (target <= 4) | PyTorch gradient | PyTorch hvp | "
        "ours / PyTorch, hvp (target <= 1 on one thread) |",
        "|---:|---:|---:|---:|---:|---:|",
        f"| {format_time(times['gradient'])} | {format_time(times['hvp'])} | {times['hvp'] / times['gradient']:.2f} | "
        f"{format_time(times['pytorch gradient']) if torch_hvp else '-'} | "
        f"{format_time(torch_hvp) if torch_hvp else '-'} | {versus} |",
    ]


if __name__ == "__main__":
    print("\n".join(report(run())))
