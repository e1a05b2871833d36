"""Second (and third, fourth) derivatives of every built-in op: against PyTorch and against finite differences.

Each op is differentiated twice the way a user would: ``g = grad(f(x), x, u, create_graph=True)`` with a random
upstream gradient ``u`` that itself requires grad, then ``grad(sum(g * v), (x, u))`` with a random ``v``. The
PyTorch comparisons use the `torch` fixture (skipped without torch); `gradgradcheck` checks the same ops against
central differences of the gradient and needs nothing but numpy.
"""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_nn as tg
from tinygrad_nn import Tensor
from tinygrad_nn.functions import Log1p
from tinygrad_nn.nn import functional as F  # noqa: N812

# Both sides compute in float64 with the same formulas up to rounding order.
TOLERANCE = {"rtol": 1e-9, "atol": 1e-10}


# --------------------------------------------------------------------------------------------------------------
# Samplers: values away from the points where an op is singular or has a kink
# --------------------------------------------------------------------------------------------------------------


def normal(*shape):
    return lambda rng: rng.standard_normal(shape)


def positive(*shape):
    return lambda rng: rng.uniform(0.5, 2.0, size=shape)


def away_from_zero(*shape):
    return lambda rng: rng.uniform(0.5, 2.0, size=shape) * rng.choice([-1.0, 1.0], size=shape)


def probability(*shape):
    return lambda rng: rng.uniform(0.1, 0.9, size=shape)


def distinct(*shape):
    """Values at least 0.1 apart, in random order: no ties for max, min, maximum, norm(inf)."""

    def sample(rng):
        size = int(np.prod(shape))
        values = (np.arange(size) - size / 2) * 0.3 + 0.1
        return rng.permutation(values).reshape(shape)

    return sample


def fixed(array):
    return lambda rng: np.array(array, dtype=np.float64)


def torch_index(torch, index):
    """The same index for a torch tensor: integer and boolean arrays as tensors."""
    if isinstance(index, tuple):
        return tuple(torch_index(torch, part) for part in index)
    if isinstance(index, np.ndarray):
        return torch.from_numpy(index)
    return index


# name -> (tinygrad function, PyTorch function (receives the torch module first), samplers of the inputs).
# Shape ops are applied to x * x or x.tanh() so that their second derivative with respect to x is not trivially
# zero; with the upstream gradient requiring grad, their own double backward is checked as well.
OPS = {
    # arithmetic, with broadcasting and reflected scalars
    "add": (lambda a, b: a + b, lambda t, a, b: a + b, [normal(2, 3), normal(3)]),
    "add_squares": (lambda a, b: a * a + b * b, lambda t, a, b: a * a + b * b, [normal(2, 1, 3), normal(4, 1)]),
    "sub": (lambda a, b: (a - b) ** 2, lambda t, a, b: (a - b) ** 2, [normal(3, 1), normal(1, 4)]),
    "mul": (lambda a, b: a * b, lambda t, a, b: a * b, [normal(2, 1, 3), normal(4, 1)]),
    "mul_self": (lambda a: a * a * a, lambda t, a: a * a * a, [normal(2, 3)]),
    "div": (lambda a, b: a / b, lambda t, a, b: a / b, [normal(2, 3), away_from_zero(3)]),
    "div_0d": (lambda a, b: a / b, lambda t, a, b: a / b, [normal(2, 3), away_from_zero()]),
    "neg": (lambda a: -(a * a), lambda t, a: -(a * a), [normal(2, 3)]),
    "radd": (lambda a: 2.0 + a * a, lambda t, a: 2.0 + a * a, [normal(2, 3)]),
    "rsub": (lambda a: 2.0 - a * a, lambda t, a: 2.0 - a * a, [normal(2, 3)]),
    "rmul": (lambda a: 3.0 * a * a, lambda t, a: 3.0 * a * a, [normal(2, 3)]),
    "rdiv": (lambda a: 2.0 / a, lambda t, a: 2.0 / a, [away_from_zero(2, 3)]),
    "rpow": (lambda a: 2.0**a, lambda t, a: 2.0**a, [normal(2, 3)]),
    "pow_2": (lambda a: a**2, lambda t, a: a**2, [normal(2, 3)]),
    "pow_3": (lambda a: a**3, lambda t, a: a**3, [normal(2, 3)]),
    "pow_int_negative": (lambda a: a**-2, lambda t, a: a**-2, [away_from_zero(2, 3)]),
    "pow_half": (lambda a: a**0.5, lambda t, a: a**0.5, [positive(2, 3)]),
    "pow_fraction_negative": (lambda a: a**-1.5, lambda t, a: a**-1.5, [positive(2, 3)]),
    "pow_1": (lambda a: a**1 * a, lambda t, a: a**1 * a, [normal(2, 3)]),
    "pow_0": (lambda a: a**0 * a, lambda t, a: a**0 * a, [normal(2, 3)]),
    "pow_tensor_exponent": (lambda a, b: a**b, lambda t, a, b: a**b, [positive(2, 3), normal(3)]),
    "pow_tensor_exponent_0d_base": (lambda a, b: a**b, lambda t, a, b: a**b, [positive(), normal(2, 3)]),
    "pow_integer_tensor_exponent": (lambda a, b: a**b, lambda t, a, b: a**b, [normal(2, 3), fixed([2.0, 3.0, 1.0])]),
    # functions of one tensor
    "exp": (lambda a: a.exp(), lambda t, a: a.exp(), [normal(2, 3)]),
    "log": (lambda a: a.log(), lambda t, a: a.log(), [positive(2, 3)]),
    "log1p": (lambda a: Log1p.apply(a), lambda t, a: a.log1p(), [positive(2, 3)]),
    "sqrt": (lambda a: a.sqrt(), lambda t, a: a.sqrt(), [positive(2, 3)]),
    "tanh": (lambda a: a.tanh(), lambda t, a: a.tanh(), [normal(2, 3)]),
    "sigmoid": (lambda a: a.sigmoid(), lambda t, a: a.sigmoid(), [normal(2, 3)]),
    "abs": (lambda a: a.abs() * a, lambda t, a: a.abs() * a, [away_from_zero(2, 3)]),
    "relu": (lambda a: a.relu() * a, lambda t, a: a.relu() * a, [away_from_zero(2, 3)]),
    "relu_squared": (lambda a: a.relu() ** 2, lambda t, a: a.relu() ** 2, [away_from_zero(2, 3)]),
    "clip": (
        lambda a: a.clip(-0.5, 0.5) * a,
        lambda t, a: a.clamp(-0.5, 0.5) * a,
        [fixed([[-1.0, -0.2, 0.3], [0.9, 0.1, -0.7]])],
    ),
    "clip_min_only": (lambda a: a.clip(min=0.25) ** 2, lambda t, a: a.clamp(min=0.25) ** 2, [normal(2, 3)]),
    # reductions
    "sum": (lambda a: (a * a).sum(), lambda t, a: (a * a).sum(), [normal(2, 3)]),
    "sum_axis": (lambda a: (a * a).sum(axis=1), lambda t, a: (a * a).sum(dim=1), [normal(2, 3)]),
    "sum_keepdims": (
        lambda a: (a * a).sum(axis=0, keepdims=True) * a,
        lambda t, a: (a * a).sum(dim=0, keepdim=True) * a,
        [normal(2, 3)],
    ),
    "sum_dim_keepdim": (
        lambda a: (a * a).sum(dim=(0, 2), keepdim=True) * a,
        lambda t, a: (a * a).sum(dim=(0, 2), keepdim=True) * a,
        [normal(2, 3, 2)],
    ),
    "mean": (lambda a: (a * a).mean(), lambda t, a: (a * a).mean(), [normal(2, 3)]),
    "mean_axes": (lambda a: (a * a).mean(axis=(0, 2)), lambda t, a: (a * a).mean(dim=(0, 2)), [normal(2, 3, 4)]),
    "max": (lambda a: (a * a).max(), lambda t, a: (a * a).amax(), [distinct(2, 3)]),
    "max_axis": (lambda a: (a * a).max(axis=1), lambda t, a: (a * a).amax(dim=1), [distinct(2, 3)]),
    "max_keepdims": (
        lambda a: a.tanh().max(axis=0, keepdims=True) * a,
        lambda t, a: a.tanh().amax(dim=0, keepdim=True) * a,
        [distinct(3, 2)],
    ),
    "min": (lambda a: (a * a).min(axis=0), lambda t, a: (a * a).amin(dim=0), [distinct(3, 2)]),
    "min_axis_keepdims": (
        lambda a: a.exp().min(axis=1, keepdims=True) * a,
        lambda t, a: a.exp().amin(dim=1, keepdim=True) * a,
        [distinct(2, 3)],
    ),
    "min_dim_keepdim": (  # PyTorch's spelling: (values, indices), as torch.min(a, dim)
        lambda a: a.exp().min(dim=1, keepdim=True).values * a,
        lambda t, a: a.exp().min(dim=1, keepdim=True).values * a,
        [distinct(2, 3)],
    ),
    "max_dim": (
        lambda a: (a * a).max(dim=0)[0],
        lambda t, a: (a * a).max(dim=0)[0],
        [distinct(3, 2)],
    ),
    "norm_2": (lambda a: a.norm(), lambda t, a: t.linalg.vector_norm(a), [normal(2, 3)]),
    "norm_fro_axis": (lambda a: a.norm("fro", axis=1), lambda t, a: t.linalg.vector_norm(a, dim=1), [normal(2, 3)]),
    "norm_1": (
        lambda a: a.norm(1, axis=1) * a.sum(),
        lambda t, a: t.linalg.vector_norm(a, 1, dim=1) * a.sum(),
        [away_from_zero(2, 3)],
    ),
    "norm_3": (lambda a: a.norm(3, axis=0), lambda t, a: t.linalg.vector_norm(a, 3, dim=0), [away_from_zero(2, 3)]),
    "norm_3_keepdims": (
        lambda a: a.norm(3, axis=1, keepdims=True) * a,
        lambda t, a: t.linalg.vector_norm(a, 3, dim=1, keepdim=True) * a,
        [away_from_zero(2, 3)],
    ),
    "norm_inf": (
        lambda a: a.norm(np.inf, axis=1) * a.sum(),
        lambda t, a: t.linalg.vector_norm(a, float("inf"), dim=1) * a.sum(),
        [distinct(2, 3)],
    ),
    "norm_minus_inf": (
        lambda a: a.norm(-np.inf) * a,
        lambda t, a: t.linalg.vector_norm(a, float("-inf")) * a,
        [distinct(2, 3)],
    ),
    "norm_half": (lambda a: a.norm(0.5, axis=1), lambda t, a: t.linalg.vector_norm(a, 0.5, dim=1), [positive(2, 3)]),
    "var": (lambda a: a.var(axis=1), lambda t, a: a.var(dim=1), [normal(2, 3)]),
    "var_correction_0": (lambda a: a.var(correction=0), lambda t, a: a.var(correction=0), [normal(2, 3)]),
    "std": (lambda a: a.std(axis=0), lambda t, a: a.std(dim=0), [normal(3, 2)]),
    "std_keepdim": (
        lambda a: a.std(dim=1, keepdim=True, correction=0) * a,
        lambda t, a: a.std(dim=1, keepdim=True, correction=0) * a,
        [normal(2, 3)],
    ),
    # shape
    "reshape": (lambda a: (a * a).reshape(3, 2) @ a, lambda t, a: (a * a).reshape(3, 2) @ a, [normal(2, 3)]),
    "view": (lambda a: (a * a).view(-1) * a.view(6), lambda t, a: (a * a).view(-1) * a.view(6), [normal(2, 3)]),
    "transpose": (lambda a: (a * a).transpose(1, 0) * a.T, lambda t, a: (a * a).transpose(1, 0) * a.T, [normal(2, 3)]),
    "permute": (lambda a: (a * a).permute(2, 0, 1), lambda t, a: (a * a).permute(2, 0, 1), [normal(2, 3, 4)]),
    "swapaxes": (lambda a: (a * a).swapaxes(0, 2), lambda t, a: (a * a).swapaxes(0, 2), [normal(2, 3, 4)]),
    "mT": (lambda a: (a * a).mT @ a, lambda t, a: (a * a).mT @ a, [normal(2, 3, 4)]),
    "unsqueeze_squeeze_flatten": (
        lambda a: (a * a).unsqueeze(1).squeeze().flatten(),
        lambda t, a: (a * a).unsqueeze(1).squeeze().flatten(),
        [normal(2, 3)],
    ),
    "squeeze_dim": (lambda a: (a * a).squeeze(1), lambda t, a: (a * a).squeeze(1), [normal(2, 1, 3)]),
    "expand": (lambda a: (a * a).expand(4, 2, 3), lambda t, a: (a * a).expand(4, 2, 3), [normal(2, 3)]),
    "expand_ones": (lambda a: (a * a).expand(2, -1, 3), lambda t, a: (a * a).expand(2, -1, 3), [normal(1, 2, 1)]),
    "broadcast_to": (
        lambda a: (a * a).broadcast_to((4, 2, 3)),
        lambda t, a: t.broadcast_to(a * a, (4, 2, 3)),
        [normal(2, 3)],
    ),
    "repeat": (lambda a: (a * a).repeat(2, 1, 3), lambda t, a: (a * a).repeat(2, 1, 3), [normal(2, 3)]),
    "split": (
        lambda a: (a * a).split(2, dim=1)[1] * a[:, :1],
        lambda t, a: (a * a).split(2, dim=1)[1] * a[:, :1],
        [normal(2, 3)],
    ),
    "split_sizes": (
        lambda a: tg.stack(list(a.tanh().split([1, 2], dim=0)[1]), axis=0) * 2.0,
        lambda t, a: t.stack(list(a.tanh().split([1, 2], dim=0)[1]), dim=0) * 2.0,
        [normal(3, 2)],
    ),
    "chunk": (lambda a: (a * a).chunk(2)[0], lambda t, a: (a * a).chunk(2)[0], [normal(3, 3)]),
    "index_slices": (lambda a: (a * a)[1:, ::2], lambda t, a: (a * a)[1:, ::2], [normal(3, 4)]),
    "index_int": (lambda a: (a * a)[1] * a[-1], lambda t, a: (a * a)[1] * a[-1], [normal(3, 4)]),
    "index_none_ellipsis": (lambda a: (a * a)[None, ..., 1], lambda t, a: (a * a)[None, ..., 1], [normal(3, 4)]),
    "index_repeated_rows": (
        lambda a: a.tanh()[np.array([0, 0, 2, 0])],
        lambda t, a: a.tanh()[torch_index(t, np.array([0, 0, 2, 0]))],
        [normal(3, 4)],
    ),
    "index_repeated_pairs": (
        lambda a: (a * a)[np.array([0, 0, 2]), np.array([1, 1, 3])],
        lambda t, a: (a * a)[torch_index(t, (np.array([0, 0, 2]), np.array([1, 1, 3])))],
        [normal(3, 4)],
    ),
    "index_list": (lambda a: (a * a)[[2, 2, 1]], lambda t, a: (a * a)[[2, 2, 1]], [normal(3, 2)]),
    "index_bool_mask": (
        lambda a: (a * a)[np.array([True, False, True])],
        lambda t, a: (a * a)[torch_index(t, np.array([True, False, True]))],
        [normal(3, 4)],
    ),
    "index_elementwise_mask": (
        lambda a: a.exp()[a.data > 0],
        lambda t, a: a.exp()[a.detach() > 0],
        [fixed([[0.5, -1.0, 2.0], [-0.3, 0.7, 1.1]])],
    ),
    "concatenate": (
        lambda a, b: tg.concatenate([a * b, b * b], axis=0),
        lambda t, a, b: t.cat([a * b, b * b], dim=0),
        [normal(2, 3), normal(2, 3)],
    ),
    "cat_last_axis": (
        lambda a, b: tg.cat([a.tanh(), a * b], axis=-1),
        lambda t, a, b: t.cat([a.tanh(), a * b], dim=-1),
        [normal(2, 3), normal(2, 1)],
    ),
    "stack": (
        lambda a, b: tg.stack([a * b, b * b], axis=1),
        lambda t, a, b: t.stack([a * b, b * b], dim=1),
        [normal(2, 3), normal(2, 3)],
    ),
    # maximum, minimum, where
    "maximum": (
        lambda a, b: tg.maximum(a * a, b * b),
        lambda t, a, b: t.maximum(a * a, b * b),
        [distinct(2, 3), normal(3)],
    ),
    "minimum": (
        lambda a, b: tg.minimum(a * a, b * b),
        lambda t, a, b: t.minimum(a * a, b * b),
        [distinct(2, 3), normal(3)],
    ),
    "maximum_number": (lambda a: tg.maximum(a * a, 0.5), lambda t, a: t.clamp(a * a, min=0.5), [normal(2, 3)]),
    "minimum_number_first": (lambda a: tg.minimum(0.5, a * a), lambda t, a: t.clamp(a * a, max=0.5), [normal(2, 3)]),
    "where": (
        lambda a, b: tg.where(a.data > 0, a * b, b * b),
        lambda t, a, b: t.where(a.detach() > 0, a * b, b * b),
        [normal(2, 3), normal(3)],
    ),
    "where_broadcast_condition": (
        lambda a, b: tg.where(np.array([True, False, True]), a.exp(), b * a),
        lambda t, a, b: t.where(t.tensor([True, False, True]), a.exp(), b * a),
        [normal(2, 3), normal(2, 1)],
    ),
    # matrix products, every shape numpy's matmul takes
    "matmul": (lambda a, b: a @ b, lambda t, a, b: a @ b, [normal(2, 3), normal(3, 4)]),
    "matmul_squared": (lambda a, b: (a @ b) ** 2, lambda t, a, b: (a @ b) ** 2, [normal(2, 3), normal(3, 4)]),
    "matmul_one_row": (lambda a, b: (a @ b) ** 2, lambda t, a, b: (a @ b) ** 2, [normal(1, 3), normal(3, 4)]),
    "matmul_vector_vector": (lambda a, b: (a @ b) ** 2, lambda t, a, b: (a @ b) ** 2, [normal(3), normal(3)]),
    "matmul_vector_matrix": (lambda a, b: (a @ b) ** 2, lambda t, a, b: (a @ b) ** 2, [normal(3), normal(3, 4)]),
    "matmul_matrix_vector": (lambda a, b: (a @ b) ** 2, lambda t, a, b: (a @ b) ** 2, [normal(2, 3), normal(3)]),
    "matmul_batched": (lambda a, b: (a @ b) ** 2, lambda t, a, b: (a @ b) ** 2, [normal(5, 2, 3), normal(5, 3, 4)]),
    "matmul_broadcast_batches": (
        lambda a, b: (a @ b) ** 2,
        lambda t, a, b: (a @ b) ** 2,
        [normal(2, 1, 2, 3), normal(4, 3, 2)],
    ),
    "matmul_batch_by_matrix": (
        lambda a, b: (a @ b).tanh(),
        lambda t, a, b: (a @ b).tanh(),
        [normal(3, 2, 3), normal(3, 2)],
    ),
    "matmul_vector_batch": (lambda a, b: (a @ b) ** 2, lambda t, a, b: (a @ b) ** 2, [normal(3), normal(2, 3, 4)]),
    "matmul_batch_vector": (lambda a, b: (a @ b) ** 2, lambda t, a, b: (a @ b) ** 2, [normal(2, 4, 3), normal(3)]),
    "rmatmul_array": (
        lambda b: np.arange(6.0).reshape(2, 3) @ b.tanh(),
        lambda t, b: t.arange(6.0).reshape(2, 3) @ b.tanh(),
        [normal(3, 2)],
    ),
    "linear": (
        lambda x, w, b: F.linear(x, w, b).tanh(),
        lambda t, x, w, b: t.nn.functional.linear(x, w, b).tanh(),
        [normal(4, 3), normal(2, 3), normal(2)],
    ),
    "linear_no_bias": (
        lambda x, w: F.linear(x, w).sigmoid(),
        lambda t, x, w: t.nn.functional.linear(x, w).sigmoid(),
        [normal(4, 3), normal(2, 3)],
    ),
    "linear_one_sample": (
        lambda x, w, b: F.linear(x, w, b).tanh(),
        lambda t, x, w, b: t.nn.functional.linear(x, w, b).tanh(),
        [normal(3), normal(2, 3), normal(2)],
    ),
    "linear_one_row": (
        lambda x, w, b: F.linear(x, w, b) ** 2,
        lambda t, x, w, b: t.nn.functional.linear(x, w, b) ** 2,
        [normal(1, 3), normal(2, 3), normal(2)],
    ),
    "linear_batched": (
        lambda x, w, b: F.linear(x, w, b).tanh(),
        lambda t, x, w, b: t.nn.functional.linear(x, w, b).tanh(),
        [normal(2, 4, 3), normal(2, 3), normal(2)],
    ),
    # softmax and the losses
    "softmax": (lambda a: a.softmax(axis=0), lambda t, a: a.softmax(dim=0), [normal(3, 4)]),
    "softmax_last": (lambda a: F.softmax(a), lambda t, a: a.softmax(dim=-1), [normal(3, 4)]),
    "log_softmax": (lambda a: a.log_softmax(), lambda t, a: a.log_softmax(dim=-1), [normal(3, 4)]),
    "log_softmax_axis_1_of_3": (
        lambda a: F.log_softmax(a, dim=1),
        lambda t, a: a.log_softmax(dim=1),
        [normal(2, 3, 2)],
    ),
    "mse_loss": (
        lambda a, b: F.mse_loss(a.tanh(), b),
        lambda t, a, b: t.nn.functional.mse_loss(a.tanh(), b),
        [normal(2, 3), normal(2, 3)],
    ),
    "mse_loss_sum": (
        lambda a, b: F.mse_loss(a, b, reduction="sum"),
        lambda t, a, b: t.nn.functional.mse_loss(a, b, reduction="sum"),
        [normal(2, 3), normal(2, 3)],
    ),
    "mse_loss_none": (
        lambda a, b: F.mse_loss(a * a, b, reduction="none"),
        lambda t, a, b: t.nn.functional.mse_loss(a * a, b, reduction="none"),
        [normal(2, 3), normal(2, 3)],
    ),
    "binary_cross_entropy": (
        lambda p, y: F.binary_cross_entropy(p, y),
        lambda t, p, y: t.nn.functional.binary_cross_entropy(p, y),
        [probability(2, 3), probability(2, 3)],
    ),
    "binary_cross_entropy_weight_sum": (
        lambda p: F.binary_cross_entropy(p, np.full((2, 3), 0.3), weight=np.array([1.0, 2.0, 3.0]), reduction="sum"),
        lambda t, p: t.nn.functional.binary_cross_entropy(
            p, t.full((2, 3), 0.3), weight=t.tensor([1.0, 2.0, 3.0]), reduction="sum"
        ),
        [probability(2, 3)],
    ),
    "binary_cross_entropy_none": (
        lambda p, y: F.binary_cross_entropy(p, y, reduction="none"),
        lambda t, p, y: t.nn.functional.binary_cross_entropy(p, y, reduction="none"),
        [probability(2, 3), probability(2, 3)],
    ),
    "bce_with_logits": (
        lambda x, y: F.binary_cross_entropy_with_logits(x, y),
        lambda t, x, y: t.nn.functional.binary_cross_entropy_with_logits(x, y),
        [normal(2, 3), probability(2, 3)],
    ),
    "bce_with_logits_weight_pos_weight": (
        lambda x, y: F.binary_cross_entropy_with_logits(
            x, y, weight=np.array([1.0, 2.0, 3.0]), pos_weight=np.array([0.5, 2.0, 1.5])
        ),
        lambda t, x, y: t.nn.functional.binary_cross_entropy_with_logits(
            x, y, weight=t.tensor([1.0, 2.0, 3.0]), pos_weight=t.tensor([0.5, 2.0, 1.5])
        ),
        [normal(2, 3), probability(2, 3)],
    ),
    "bce_with_logits_pos_weight_none": (
        lambda x, y: F.binary_cross_entropy_with_logits(x, y, reduction="none", pos_weight=np.array([0.5, 2.0, 1.5])),
        lambda t, x, y: t.nn.functional.binary_cross_entropy_with_logits(
            x, y, reduction="none", pos_weight=t.tensor([0.5, 2.0, 1.5])
        ),
        [normal(2, 3), probability(2, 3)],
    ),
    "bce_with_logits_sum_large_logits": (
        lambda x, y: F.binary_cross_entropy_with_logits(x, y, reduction="sum"),
        lambda t, x, y: t.nn.functional.binary_cross_entropy_with_logits(x, y, reduction="sum"),
        [fixed([[-30.0, 25.0, 0.5], [3.0, -4.0, 12.0]]), probability(2, 3)],
    ),
    "cross_entropy": (
        lambda x: F.cross_entropy(x, np.array([0, 2, 1, 2])),
        lambda t, x: t.nn.functional.cross_entropy(x, t.tensor([0, 2, 1, 2])),
        [normal(4, 3)],
    ),
    "cross_entropy_weight_ignore_index": (
        lambda x: F.cross_entropy(x, np.array([0, 2, 1, 2]), weight=np.array([1.0, 2.0, 0.5]), ignore_index=1),
        lambda t, x: t.nn.functional.cross_entropy(
            x, t.tensor([0, 2, 1, 2]), weight=t.tensor([1.0, 2.0, 0.5]), ignore_index=1
        ),
        [normal(4, 3)],
    ),
    "cross_entropy_sum": (
        lambda x: F.cross_entropy(x, np.array([0, 2, 1, 2]), reduction="sum"),
        lambda t, x: t.nn.functional.cross_entropy(x, t.tensor([0, 2, 1, 2]), reduction="sum"),
        [normal(4, 3)],
    ),
    "cross_entropy_none_weight": (
        lambda x: F.cross_entropy(x, np.array([0, 2, 1, 2]), weight=np.array([1.0, 2.0, 0.5]), reduction="none"),
        lambda t, x: t.nn.functional.cross_entropy(
            x, t.tensor([0, 2, 1, 2]), weight=t.tensor([1.0, 2.0, 0.5]), reduction="none"
        ),
        [normal(4, 3)],
    ),
    "cross_entropy_spatial": (
        lambda x: F.cross_entropy(x, np.array([[0, 2], [1, 1]])),
        lambda t, x: t.nn.functional.cross_entropy(x, t.tensor([[0, 2], [1, 1]])),
        [normal(2, 3, 2)],
    ),
    "cross_entropy_spatial_ignore_none": (
        lambda x: F.cross_entropy(x, np.array([[0, -100], [1, 2]]), reduction="none"),
        lambda t, x: t.nn.functional.cross_entropy(x, t.tensor([[0, -100], [1, 2]]), reduction="none"),
        [normal(2, 3, 2)],
    ),
    "cross_entropy_single_row": (
        lambda x: F.cross_entropy(x, np.array(1)),
        lambda t, x: t.nn.functional.cross_entropy(x, t.tensor(1)),
        [normal(3)],
    ),
    "cross_entropy_target_tensor": (
        lambda x: F.cross_entropy(x, Tensor(np.array([1, 0]))),
        lambda t, x: t.nn.functional.cross_entropy(x, t.tensor([1, 0])),
        [normal(2, 3)],
    ),
    "cross_entropy_probabilities": (
        lambda x, p: F.cross_entropy(x, p),
        lambda t, x, p: t.nn.functional.cross_entropy(x, p),
        [normal(4, 3), probability(4, 3)],
    ),
    "cross_entropy_probabilities_weight_none": (
        lambda x, p: F.cross_entropy(x, p, weight=np.array([1.0, 2.0, 0.5]), reduction="none"),
        lambda t, x, p: t.nn.functional.cross_entropy(x, p, weight=t.tensor([1.0, 2.0, 0.5]), reduction="none"),
        [normal(4, 3), probability(4, 3)],
    ),
    "cross_entropy_probabilities_spatial_sum": (
        lambda x, p: F.cross_entropy(x, p, reduction="sum"),
        lambda t, x, p: t.nn.functional.cross_entropy(x, p, reduction="sum"),
        [normal(2, 3, 2), probability(2, 3, 2)],
    ),
}


# Ops whose forward is not smooth at the sampled points (ties on purpose): compared with PyTorch only.
TIES = {
    "max_tie": (
        lambda a: (a * a).max(axis=1),
        lambda t, a: (a * a).amax(dim=1),
        [fixed([[1.0, -1.0, 0.5], [2.0, 0.0, -2.0]])],
    ),
    "max_all_three_way_tie": (
        lambda a: (a * a).max() * a,
        lambda t, a: (a * a).amax() * a,
        [fixed([1.0, -1.0, 1.0, 0.5])],
    ),
    "min_tie_keepdims": (
        lambda a: a.exp().min(axis=0, keepdims=True) * a,
        lambda t, a: a.exp().amin(dim=0, keepdim=True) * a,
        [fixed([[0.5, 1.0], [0.5, -1.0]])],
    ),
    "maximum_tie": (
        lambda a, b: tg.maximum(a * b, b * b),
        lambda t, a, b: t.maximum(a * b, b * b),
        [fixed([1.0, 2.0, 3.0]), fixed([1.0, 0.5, 3.0])],
    ),
    "minimum_tie": (
        lambda a, b: tg.minimum(a, b) ** 2,
        lambda t, a, b: t.minimum(a, b) ** 2,
        [fixed([1.0, 2.0, -3.0]), fixed([1.0, 0.5, -3.0])],
    ),
    "norm_inf_tie": (
        lambda a: a.norm(np.inf) * a,
        lambda t, a: t.linalg.vector_norm(a, float("inf")) * a,
        [fixed([2.0, -2.0, 1.0])],
    ),
    "maximum_of_a_tensor_with_itself": (
        lambda a: tg.maximum(a, a) ** 2,
        lambda t, a: t.maximum(a, a) ** 2,
        [normal(3)],
    ),
    "relu_at_zero": (lambda a: a.relu() * a, lambda t, a: a.relu() * a, [fixed([0.0, 1.0, -1.0])]),
    "abs_at_zero": (lambda a: a.abs() * a, lambda t, a: a.abs() * a, [fixed([0.0, 1.0, -1.0])]),
    "clip_at_bounds": (lambda a: a.clip(-0.5, 0.5) * a, lambda t, a: a.clamp(-0.5, 0.5) * a, [fixed([-0.5, 0.5, 0.0])]),
}


# --------------------------------------------------------------------------------------------------------------
# The double derivative, done the same way in both frameworks
# --------------------------------------------------------------------------------------------------------------


def second_derivatives_tg(fn, arrays, upstream, vectors):
    """(first gradients, second derivatives w.r.t. inputs and the upstream gradient), all as ndarrays."""
    inputs = [Tensor(a.copy(), requires_grad=True) for a in arrays]
    out = fn(*inputs)
    up = Tensor(upstream.astype(out.dtype), requires_grad=True)
    firsts = tg.grad(out, inputs, up, create_graph=True, allow_unused=True)
    terms = [
        (g * Tensor(v.astype(g.dtype))).sum() for g, v in zip(firsts, vectors) if g is not None and g.requires_grad
    ]
    everything = [*inputs, up]
    if terms:
        total = terms[0]
        for term in terms[1:]:
            total = total + term
        seconds = tg.grad(total, everything, allow_unused=True)
    else:
        seconds = (None,) * len(everything)
    as_arrays = lambda values, like: [np.zeros(t.shape, t.dtype) if v is None else v.data for v, t in zip(values, like)]  # noqa: E731
    return out.data, as_arrays(firsts, inputs), as_arrays(seconds, everything)


def second_derivatives_torch(torch, fn, arrays, upstream, vectors):
    inputs = [torch.tensor(a.copy(), requires_grad=True) for a in arrays]
    out = fn(torch, *inputs)
    up = torch.tensor(upstream.astype(arrays[0].dtype), requires_grad=True)
    firsts = torch.autograd.grad(out, inputs, up, create_graph=True, allow_unused=True)
    terms = [(g * torch.tensor(v)).sum() for g, v in zip(firsts, vectors) if g is not None and g.requires_grad]
    everything = [*inputs, up]
    seconds = torch.autograd.grad(sum(terms), everything, allow_unused=True) if terms else (None,) * len(everything)

    def as_arrays(values, like):
        return [np.zeros(tuple(t.shape)) if v is None else v.detach().numpy() for v, t in zip(values, like)]

    return out.detach().numpy(), as_arrays(firsts, inputs), as_arrays(seconds, everything)


def compare_second_derivatives(torch, entry, rng, dtype=np.float64, tolerance=None):
    tg_fn, torch_fn, samplers = entry
    tolerance = tolerance or TOLERANCE
    arrays = [np.asarray(sample(rng), dtype=dtype) for sample in samplers]
    out_shape = tg_fn(*[Tensor(a) for a in arrays]).shape
    upstream = rng.standard_normal(out_shape).astype(dtype)
    vectors = [rng.standard_normal(a.shape).astype(dtype) for a in arrays]
    out, firsts, seconds = second_derivatives_tg(tg_fn, arrays, upstream, vectors)
    t_out, t_firsts, t_seconds = second_derivatives_torch(torch, torch_fn, arrays, upstream, vectors)
    np.testing.assert_allclose(out, t_out, err_msg="forward", **tolerance)
    for position, (mine, theirs) in enumerate(zip(firsts, t_firsts)):
        np.testing.assert_allclose(mine, theirs, err_msg=f"first derivative, input {position}", **tolerance)
    names = [f"input {i}" for i in range(len(arrays))] + ["the upstream gradient"]
    for name, mine, theirs in zip(names, seconds, t_seconds):
        np.testing.assert_allclose(mine, theirs, err_msg=f"second derivative with respect to {name}", **tolerance)
    return firsts, seconds


@pytest.mark.torch
@pytest.mark.parametrize("name", list(OPS))
def test_second_derivative_matches_pytorch(torch, name, rng):
    compare_second_derivatives(torch, OPS[name], rng)


@pytest.mark.torch
@pytest.mark.parametrize("name", list(TIES))
def test_second_derivative_at_ties_and_kinks_matches_pytorch(torch, name, rng):
    compare_second_derivatives(torch, TIES[name], rng)


# A selection of ops whose float32 results must stay float32 and agree with PyTorch's float32 to float32 accuracy.
FLOAT32_OPS = {
    name: OPS[name]
    for name in [
        "mul",
        "div",
        "pow_3",
        "pow_tensor_exponent",
        "rpow",
        "exp",
        "log",
        "sqrt",
        "tanh",
        "sigmoid",
        "max_axis",
        "norm_2",
        "norm_3",
        "var",
        "index_repeated_rows",
        "maximum",
        "matmul_broadcast_batches",
        "linear",
        "softmax",
        "log_softmax",
        "mse_loss",
        "binary_cross_entropy",
        "bce_with_logits",
        "cross_entropy",
        "cross_entropy_probabilities",
    ]
}
# The weighted losses with float32 weights (a float64 weight would promote the loss to float64).
WEIGHTS32 = np.array([1.0, 2.0, 0.5], dtype=np.float32)
POS_WEIGHTS32 = np.array([0.5, 2.0, 1.5], dtype=np.float32)
FLOAT32_OPS["bce_with_logits_weight_pos_weight"] = (
    lambda x, y: F.binary_cross_entropy_with_logits(x, y, weight=WEIGHTS32, pos_weight=POS_WEIGHTS32),
    lambda t, x, y: t.nn.functional.binary_cross_entropy_with_logits(
        x, y, weight=t.from_numpy(WEIGHTS32), pos_weight=t.from_numpy(POS_WEIGHTS32)
    ),
    [normal(2, 3), probability(2, 3)],
)
FLOAT32_OPS["cross_entropy_weight_ignore_index"] = (
    lambda x: F.cross_entropy(x, np.array([0, 2, 1, 2]), weight=WEIGHTS32, ignore_index=1),
    lambda t, x: t.nn.functional.cross_entropy(
        x, t.tensor([0, 2, 1, 2]), weight=t.from_numpy(WEIGHTS32), ignore_index=1
    ),
    [normal(4, 3)],
)


@pytest.mark.torch
@pytest.mark.parametrize("name", list(FLOAT32_OPS))
def test_second_derivative_in_float32_stays_float32_and_matches_pytorch(torch, name, rng):
    firsts, seconds = compare_second_derivatives(
        torch, FLOAT32_OPS[name], rng, np.float32, {"rtol": 2e-4, "atol": 2e-5}
    )
    for value in [*firsts, *seconds]:
        assert value.dtype == np.float32


# --------------------------------------------------------------------------------------------------------------
# Against finite differences, without PyTorch
# --------------------------------------------------------------------------------------------------------------


# Inputs held constant in the finite-difference check: the derivative of x ** p in p is NaN at a negative base
# (in PyTorch too, which the comparison above checks), so there only the base is differentiated.
CONSTANT_IN_GRADGRADCHECK = {"pow_integer_tensor_exponent": {1}}


@pytest.mark.parametrize("name", list(OPS))
def test_second_derivative_passes_gradgradcheck(name, rng):
    tg_fn, _, samplers = OPS[name]
    constant = CONSTANT_IN_GRADGRADCHECK.get(name, set())
    inputs = [Tensor(sample(rng), requires_grad=i not in constant) for i, sample in enumerate(samplers)]
    assert tg.gradgradcheck(tg_fn, inputs)


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "log_softmax", "matmul_squared", "cross_entropy", "norm_3"])
def test_gradcheck_order_2_agrees_with_gradgradcheck(name, rng):
    tg_fn, _, samplers = OPS[name]
    inputs = [Tensor(sample(rng), requires_grad=True) for sample in samplers]
    assert tg.gradcheck(tg_fn, inputs, order=2)


@pytest.mark.parametrize(
    ("shape_a", "shape_b"),
    [((2, 3), (2, 3)), ((2, 3), (3,)), ((2, 1, 3), (4, 1)), ((), (2, 3)), ((3, 1), (1, 4)), ((1,), (2, 2))],
)
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "pow", "maximum", "minimum"])
def test_binary_ops_with_broadcasting_pass_gradgradcheck(op, shape_a, shape_b, rng):
    functions = {
        "add": lambda a, b: (a + b) * a,
        "sub": lambda a, b: (a - b) * b,
        "mul": lambda a, b: a * b,
        "div": lambda a, b: a / b,
        "pow": lambda a, b: a**b,
        "maximum": lambda a, b: tg.maximum(a, b) * a,
        "minimum": lambda a, b: tg.minimum(a, b) * b,
    }
    # Positive bases keep pow real; distinct magnitudes keep maximum and minimum away from ties.
    a = Tensor(rng.uniform(0.5, 1.0, size=shape_a), requires_grad=True)
    b = Tensor(rng.uniform(1.5, 2.0, size=shape_b) * (1 if op == "pow" else -1) ** rng.integers(0, 2, shape_b),
               requires_grad=True)  # fmt: skip
    assert tg.gradgradcheck(functions[op], [a, b])


def test_gradgradcheck_with_given_grad_outputs_checks_them_too(rng):
    x = Tensor(rng.standard_normal((2, 3)), requires_grad=True)
    upstream = Tensor(rng.standard_normal((2, 3)), requires_grad=True)
    assert tg.gradgradcheck(lambda t: t.tanh() * t, [x], grad_outputs=[upstream])
    assert tg.gradgradcheck(lambda t: t.tanh() * t, [x], grad_outputs=upstream.data)


# --------------------------------------------------------------------------------------------------------------
# Piecewise ops: second derivative 0 away from the kinks
# --------------------------------------------------------------------------------------------------------------


def test_norm_at_zero_has_gradient_zero_and_a_finite_second_derivative():
    # PyTorch agrees on the gradient (0); its second derivative there is NaN, where the zero-norm guard of
    # Norm.backward keeps this one finite.
    x = Tensor(np.zeros(3), requires_grad=True)
    (first,) = tg.grad(x.norm() * x.sum(), x, create_graph=True)
    np.testing.assert_array_equal(first.data, np.zeros(3))
    (second,) = tg.grad(first.sum(), x)
    assert np.all(np.isfinite(second.data))


def test_second_derivative_through_a_cast_comes_back_in_the_inputs_dtype():
    x = Tensor(np.array([0.5, 2.0], dtype=np.float32), requires_grad=True)
    (first,) = tg.grad((x.astype(np.float64) ** 3).sum(), x, create_graph=True)
    (second,) = tg.grad((first * first).sum(), x)
    assert first.dtype == second.dtype == np.float32
    np.testing.assert_allclose(second.data, 2 * (3 * x.data**2) * 6 * x.data, rtol=1e-6)


@pytest.mark.parametrize(
    "fn",
    [
        lambda t: t.relu(),
        lambda t: t.abs(),
        lambda t: t.clip(-0.5, 0.5),
        lambda t: tg.maximum(t, 0.25),
        lambda t: tg.minimum(t, 0.25),
        lambda t: tg.where(t.data > 0, t, -t),
        lambda t: t.max(axis=0),
        lambda t: t.norm(1),
    ],
    ids=["relu", "abs", "clip", "maximum", "minimum", "where", "max", "norm_1"],
)
def test_piecewise_linear_ops_have_second_derivative_zero(fn):
    x = Tensor(np.array([[-1.3, 0.7, 2.1], [0.4, -0.6, 1.7]]), requires_grad=True)
    upstream = Tensor(np.ones(fn(x).shape), requires_grad=True)
    (first,) = tg.grad(fn(x), x, upstream, create_graph=True)
    # The gradient depends on the upstream gradient (linearly) but not on x: d/dx of it is 0 or absent.
    second, by_upstream = tg.grad((first * first).sum(), [x, upstream], allow_unused=True)
    assert second is None or np.array_equal(second.data, np.zeros(x.shape))
    assert by_upstream is not None and np.all(np.isfinite(by_upstream.data)) and np.any(by_upstream.data != 0)


@pytest.mark.parametrize("op", ["relu", "abs"])
def test_grad_of_the_gradient_of_relu_or_abs_alone_is_zero_as_in_pytorch(op):
    x = Tensor(np.array([-1.0, 0.5, 2.0]), requires_grad=True)
    (first,) = tg.grad(getattr(x, op)().sum(), x, create_graph=True)
    (second,) = tg.grad(first.sum(), x)
    np.testing.assert_array_equal(second.data, np.zeros(3))


# --------------------------------------------------------------------------------------------------------------
# Third and fourth derivatives: against PyTorch and the closed forms
# --------------------------------------------------------------------------------------------------------------


def nth_derivatives(x: Tensor, fn, order: int) -> list[np.ndarray]:
    """The 1st..order-th elementwise derivatives of an elementwise `fn`, by differentiating sums of gradients."""
    current = fn(x)
    results = []
    for _ in range(order):
        if current.requires_grad:
            (current,) = tg.grad(current.sum(), x, create_graph=True, allow_unused=True)
        else:  # a derivative that no longer depends on x (6 for x ** 3): the next one is 0
            current = None
        current = Tensor(np.zeros(x.shape)) if current is None else current
        results.append(current.data.copy())
    return results


def closed_forms(name: str, x: np.ndarray) -> list[np.ndarray]:
    """The first four derivatives, written out."""
    if name == "tanh":
        t = np.tanh(x)
        return [1 - t**2, -2 * t * (1 - t**2), (1 - t**2) * (6 * t**2 - 2), 8 * t * (1 - t**2) * (2 - 3 * t**2)]
    if name == "sigmoid":
        s = 1 / (1 + np.exp(-x))
        d1 = s * (1 - s)
        return [d1, d1 * (1 - 2 * s), d1 * (1 - 6 * s + 6 * s**2), d1 * (1 - 2 * s) * (1 - 12 * s + 12 * s**2)]
    if name == "exp":
        return [np.exp(x)] * 4
    if name == "log":
        return [1 / x, -1 / x**2, 2 / x**3, -6 / x**4]
    if name == "sqrt":
        return [0.5 * x**-0.5, -0.25 * x**-1.5, 0.375 * x**-2.5, -0.9375 * x**-3.5]
    if name == "pow_2.5":
        p = 2.5
        return [p * x ** (p - 1), p * (p - 1) * x ** (p - 2), p * (p - 1) * (p - 2) * x ** (p - 3),
                p * (p - 1) * (p - 2) * (p - 3) * x ** (p - 4)]  # fmt: skip
    if name == "pow_3":
        return [3 * x**2, 6 * x, 6 * np.ones_like(x), np.zeros_like(x)]
    if name == "rpow_3":  # 3 ** x
        return [np.log(3.0) ** k * 3.0**x for k in range(1, 5)]
    if name == "reciprocal":
        return [-(x**-2), 2 * x**-3, -6 * x**-4, 24 * x**-5]
    raise KeyError(name)


HIGHER = {
    "tanh": (lambda t: t.tanh(), lambda t: t.tanh(), lambda rng: rng.uniform(-2, 2, 5)),
    "sigmoid": (lambda t: t.sigmoid(), lambda t: t.sigmoid(), lambda rng: rng.uniform(-3, 3, 5)),
    "exp": (lambda t: t.exp(), lambda t: t.exp(), lambda rng: rng.uniform(-2, 2, 5)),
    "log": (lambda t: t.log(), lambda t: t.log(), lambda rng: rng.uniform(0.5, 2, 5)),
    "sqrt": (lambda t: t.sqrt(), lambda t: t.sqrt(), lambda rng: rng.uniform(0.5, 2, 5)),
    "pow_2.5": (lambda t: t**2.5, lambda t: t**2.5, lambda rng: rng.uniform(0.5, 2, 5)),
    "pow_3": (lambda t: t**3, lambda t: t**3, lambda rng: rng.uniform(-2, 2, 5)),
    "rpow_3": (lambda t: 3.0**t, lambda t: 3.0**t, lambda rng: rng.uniform(-2, 2, 5)),
    "reciprocal": (lambda t: 1.0 / t, lambda t: 1.0 / t, lambda rng: rng.uniform(0.5, 2, 5)),
}


@pytest.mark.parametrize("name", list(HIGHER))
def test_third_and_fourth_derivatives_match_closed_forms(name, rng):
    fn, _, sample = HIGHER[name]
    values = sample(rng)
    derivatives = nth_derivatives(Tensor(values, requires_grad=True), fn, 4)
    for order, (mine, expected) in enumerate(zip(derivatives, closed_forms(name, values)), start=1):
        np.testing.assert_allclose(mine, expected, rtol=1e-10, atol=1e-12, err_msg=f"derivative of order {order}")


@pytest.mark.torch
@pytest.mark.parametrize("name", list(HIGHER))
def test_third_and_fourth_derivatives_match_pytorch(torch, name, rng):
    fn, torch_fn, sample = HIGHER[name]
    values = sample(rng)
    mine = nth_derivatives(Tensor(values, requires_grad=True), fn, 4)
    x = torch.tensor(values, requires_grad=True)
    current = torch_fn(x)
    for order in range(4):
        (current,) = torch.autograd.grad(current.sum(), x, create_graph=True)
        np.testing.assert_allclose(mine[order], current.detach().numpy(), err_msg=f"order {order + 1}", **TOLERANCE)


def test_pow_with_tensor_exponent_derivatives_in_the_exponent_are_powers_of_log(rng):
    # d^n/dp^n x ** p = x ** p * log(x) ** n
    base = rng.uniform(0.5, 2.0, 4)
    exponent = Tensor(rng.uniform(-1.0, 2.0, 4), requires_grad=True)
    derivatives = nth_derivatives(exponent, lambda p: Tensor(base) ** p, 4)
    for order, mine in enumerate(derivatives, start=1):
        expected = base**exponent.data * np.log(base) ** order
        np.testing.assert_allclose(mine, expected, rtol=1e-10, err_msg=f"order {order}")


@pytest.mark.torch
def test_mixed_third_derivative_of_pow_with_both_operands_tensors_matches_pytorch(torch, rng):
    base, exponent = rng.uniform(0.5, 2.0, 3), rng.uniform(-1.0, 2.0, 3)
    x, p = Tensor(base, requires_grad=True), Tensor(exponent, requires_grad=True)
    (gx,) = tg.grad((x**p).sum(), x, create_graph=True)  # p x^(p-1)
    (gxp,) = tg.grad(gx.sum(), p, create_graph=True)  # x^(p-1) (1 + p log x)
    (gxpx,) = tg.grad(gxp.sum(), x)
    tx, tp = torch.tensor(base, requires_grad=True), torch.tensor(exponent, requires_grad=True)
    (tgx,) = torch.autograd.grad((tx**tp).sum(), tx, create_graph=True)
    (tgxp,) = torch.autograd.grad(tgx.sum(), tp, create_graph=True)
    (tgxpx,) = torch.autograd.grad(tgxp.sum(), tx)
    np.testing.assert_allclose(gxp.data, base ** (exponent - 1) * (1 + exponent * np.log(base)), rtol=1e-10)
    np.testing.assert_allclose(gxpx.data, tgxpx.numpy(), **TOLERANCE)


def composition(t):
    return (t.sigmoid() * t).tanh()


def test_third_and_fourth_derivatives_of_a_composition_match_finite_differences_of_the_lower_ones(rng):
    values = rng.uniform(-1.5, 1.5, 4)
    derivatives = nth_derivatives(Tensor(values, requires_grad=True), composition, 4)
    step = 1e-5
    plus = nth_derivatives(Tensor(values + step, requires_grad=True), composition, 3)
    minus = nth_derivatives(Tensor(values - step, requires_grad=True), composition, 3)
    for order in (2, 3, 4):  # the derivative of order n is the slope of the one of order n - 1
        slope = (plus[order - 2] - minus[order - 2]) / (2 * step)
        np.testing.assert_allclose(derivatives[order - 1], slope, rtol=1e-6, atol=1e-7, err_msg=f"order {order}")


@pytest.mark.torch
def test_third_and_fourth_derivatives_of_a_composition_match_pytorch(torch, rng):
    values = rng.uniform(-1.5, 1.5, 4)
    mine = nth_derivatives(Tensor(values, requires_grad=True), composition, 4)
    x = torch.tensor(values, requires_grad=True)
    current = (x.sigmoid() * x).tanh()
    for order in range(4):
        (current,) = torch.autograd.grad(current.sum(), x, create_graph=True)
        np.testing.assert_allclose(mine[order], current.detach().numpy(), err_msg=f"order {order + 1}", **TOLERANCE)


def test_fourth_derivative_of_a_cube_is_zero_not_an_error():
    x = Tensor(np.array([0.5, -2.0]), requires_grad=True)
    current = x**3
    for _ in range(4):
        (current,) = tg.grad(current.sum(), x, create_graph=True)
    np.testing.assert_array_equal(current.data, np.zeros(2))


# --------------------------------------------------------------------------------------------------------------
# The fast walk and the general walk, op by op
# --------------------------------------------------------------------------------------------------------------


def first_gradients(fn, arrays, upstream, how):
    """The first derivatives as ndarrays (None for an input that got none), by one of the entry points."""
    inputs = [Tensor(a.copy(), requires_grad=True) for a in arrays]
    out = fn(*inputs)
    seed = upstream.astype(out.dtype)
    if how == "backward":
        out.backward(seed)
    elif how == "create_graph":
        out.backward(seed, create_graph=True)
    else:
        results = tg.grad(out, inputs, seed, allow_unused=True)
        return [None if r is None else r.data for r in results]
    return [
        None if t.grad is None else np.asarray(t.grad.data if isinstance(t.grad, Tensor) else t.grad) for t in inputs
    ]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", list(OPS))
def test_every_op_gives_bitwise_equal_first_derivatives_on_both_walks(name, dtype, rng):
    tg_fn, _, samplers = OPS[name]
    arrays = [np.asarray(sample(rng), dtype=dtype) for sample in samplers]
    upstream = rng.standard_normal(tg_fn(*[Tensor(a) for a in arrays]).shape)
    fast = first_gradients(tg_fn, arrays, upstream, "backward")
    for how in ("grad", "create_graph"):
        general = first_gradients(tg_fn, arrays, upstream, how)
        for position, (a, b) in enumerate(zip(fast, general)):
            assert (a is None) == (b is None)
            if a is not None:
                assert a.dtype == b.dtype, f"{how}: input {position} dtype {b.dtype}, fast walk {a.dtype}"
                assert np.array_equal(a, b, equal_nan=True), f"{how}: input {position} differs: {a} vs {b}"
