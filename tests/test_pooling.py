"""Pooling: max, average and adaptive average pooling against PyTorch, ties, NaN, indices, gradients, errors."""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_nn as tg
import tinygrad_nn.nn.functional as F  # noqa: N812 - the name PyTorch code uses
from tinygrad_nn import Tensor, nn

TOLERANCE = {"rtol": 1e-10, "atol": 1e-12}


def values_and_gradient(torch, ours_fn, theirs_fn, x, rng):
    """Forward values and the input's gradient, ours against PyTorch's."""
    ours_x, theirs_x = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    ours, theirs = ours_fn(ours_x), theirs_fn(theirs_x)
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), **TOLERANCE)
    upstream = rng.standard_normal(ours.shape)
    ours.backward(upstream)
    theirs.backward(torch.tensor(upstream))
    np.testing.assert_allclose(ours_x.grad, theirs_x.grad.numpy(), **TOLERANCE)


# (kernel_size, stride, padding, dilation, ceil_mode)
MAX_POOL_CASES = [
    (2, None, 0, 1, False),
    (3, 2, 1, 1, False),
    (3, 2, 1, 1, True),
    ((3, 2), (1, 2), (1, 1), (2, 1), False),
    ((2, 3), (2, 3), (1, 0), 1, True),
    (3, 1, 1, 1, False),
    ((4, 2), (3, 2), (2, 1), (1, 2), True),
]


@pytest.mark.torch
@pytest.mark.parametrize("case", MAX_POOL_CASES, ids=str)
def test_max_pool2d_matches_torch_with_ties(torch, rng, case):
    kernel, stride, padding, dilation, ceil_mode = case
    # Values on a coarse grid, so most windows hold tied maxima: the first one (row-major) takes the gradient.
    x = np.round(rng.standard_normal((2, 3, 9, 8)) * 2) / 2
    values_and_gradient(
        torch,
        lambda t: F.max_pool2d(t, kernel, stride, padding, dilation, ceil_mode),
        lambda t: torch.nn.functional.max_pool2d(t, kernel, stride, padding, dilation, ceil_mode),
        x,
        rng,
    )


@pytest.mark.torch
@pytest.mark.parametrize("case", MAX_POOL_CASES[:3], ids=str)
def test_max_pool_indices_match_torch(torch, rng, case):
    kernel, stride, padding, dilation, ceil_mode = case
    x = np.round(rng.standard_normal((2, 3, 9, 8)) * 2) / 2
    _, ours = F.max_pool2d(x, kernel, stride, padding, dilation, ceil_mode, return_indices=True)
    _, theirs = torch.nn.functional.max_pool2d(torch.tensor(x), kernel, stride, padding, dilation, ceil_mode, True)
    np.testing.assert_array_equal(ours.data, theirs.numpy())
    _, unbatched = F.max_pool2d(x[0], kernel, stride, padding, dilation, ceil_mode, return_indices=True)
    np.testing.assert_array_equal(unbatched.data, theirs.numpy()[0])


@pytest.mark.torch
@pytest.mark.parametrize("case", [(2, None, 0, 1, False), (3, 2, 1, 2, True), (4, 3, 2, 1, False)], ids=str)
def test_max_pool1d_matches_torch(torch, rng, case):
    kernel, stride, padding, dilation, ceil_mode = case
    x = np.round(rng.standard_normal((2, 3, 13)) * 2) / 2
    values_and_gradient(
        torch,
        lambda t: F.max_pool1d(t, kernel, stride, padding, dilation, ceil_mode),
        lambda t: torch.nn.functional.max_pool1d(t, kernel, stride, padding, dilation, ceil_mode),
        x,
        rng,
    )


def test_tied_maxima_give_the_gradient_to_the_first():
    x = Tensor(np.array([[[[1.0, 3.0], [3.0, 3.0]]]]), requires_grad=True)
    F.max_pool2d(x, 2).sum().backward()
    np.testing.assert_array_equal(x.grad, [[[[0.0, 1.0], [0.0, 0.0]]]])


@pytest.mark.torch
def test_nan_wins_its_window_like_torch(torch):
    x = np.array([[[[1.0, np.nan, 2.0, 5.0], [np.nan, 0.0, 4.0, 3.0]]]])
    ours_x, theirs_x = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    ours, theirs = F.max_pool2d(ours_x, 2), torch.nn.functional.max_pool2d(theirs_x, 2)
    np.testing.assert_array_equal(ours.data, theirs.detach().numpy())
    ours.sum().backward()
    theirs.sum().backward()
    np.testing.assert_array_equal(ours_x.grad, theirs_x.grad.numpy())


def test_an_infinite_gradient_lands_only_on_the_maximum():
    """The fast scatter multiplies by masks; inf * 0 would leave NaN elsewhere, so that case is exact too."""
    x = Tensor(np.array([[[[1.0, 2.0], [0.0, -1.0]]]]), requires_grad=True)
    F.max_pool2d(x, 2).backward(np.array([[[[np.inf]]]]))
    np.testing.assert_array_equal(x.grad, [[[[0.0, np.inf], [0.0, 0.0]]]])


# (kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
AVG_POOL_CASES = [
    (2, None, 0, False, True, None),
    (3, 2, 1, False, True, None),
    (3, 2, 1, False, False, None),
    (3, 2, 1, True, True, None),
    (3, 2, 1, True, False, None),
    ((3, 2), (2, 1), (1, 1), True, True, None),
    ((2, 3), (3, 2), (1, 0), False, True, 5),
    (3, 3, 1, True, False, 2),
]


@pytest.mark.torch
@pytest.mark.parametrize("case", AVG_POOL_CASES, ids=str)
def test_avg_pool2d_matches_torch(torch, rng, case):
    kernel, stride, padding, ceil_mode, include, divisor = case
    x = rng.standard_normal((2, 3, 9, 8))
    values_and_gradient(
        torch,
        lambda t: F.avg_pool2d(t, kernel, stride, padding, ceil_mode, include, divisor),
        lambda t: torch.nn.functional.avg_pool2d(t, kernel, stride, padding, ceil_mode, include, divisor),
        x,
        rng,
    )


@pytest.mark.torch
@pytest.mark.parametrize("case", [(2, None, 0, False, True), (3, 2, 1, True, False), (4, 3, 2, True, True)], ids=str)
def test_avg_pool1d_matches_torch(torch, rng, case):
    kernel, stride, padding, ceil_mode, include = case
    x = rng.standard_normal((2, 3, 12))
    values_and_gradient(
        torch,
        lambda t: F.avg_pool1d(t, kernel, stride, padding, ceil_mode, include),
        lambda t: torch.nn.functional.avg_pool1d(t, kernel, stride, padding, ceil_mode, include),
        x,
        rng,
    )


@pytest.mark.torch
@pytest.mark.parametrize("output_size", [1, (1, 1), 2, (3, 2), (4, 5), (None, 3), (9, 8), (12, 10)], ids=str)
def test_adaptive_avg_pool2d_matches_torch(torch, rng, output_size):
    x = rng.standard_normal((2, 3, 9, 8))
    values_and_gradient(
        torch,
        lambda t: F.adaptive_avg_pool2d(t, output_size),
        lambda t: torch.nn.functional.adaptive_avg_pool2d(t, output_size),
        x,
        rng,
    )


@pytest.mark.torch
@pytest.mark.parametrize("output_size", [1, 3, 5, 7])
def test_adaptive_avg_pool1d_matches_torch(torch, rng, output_size):
    x = rng.standard_normal((2, 3, 11))
    values_and_gradient(
        torch,
        lambda t: F.adaptive_avg_pool1d(t, output_size),
        lambda t: torch.nn.functional.adaptive_avg_pool1d(t, output_size),
        x,
        rng,
    )


@pytest.mark.torch
def test_pooling_layers_repr_and_call_like_torch(torch, rng):
    pairs = [
        (nn.MaxPool2d(2), torch.nn.MaxPool2d(2)),
        (nn.MaxPool2d(3, 2, 1, ceil_mode=True), torch.nn.MaxPool2d(3, 2, 1, ceil_mode=True)),
        (nn.MaxPool1d(3, 2, dilation=2), torch.nn.MaxPool1d(3, 2, dilation=2)),
        (nn.AvgPool2d(3, 2, 1, count_include_pad=False), torch.nn.AvgPool2d(3, 2, 1, count_include_pad=False)),
        (nn.AvgPool1d(2), torch.nn.AvgPool1d(2)),
        (nn.AdaptiveAvgPool2d(1), torch.nn.AdaptiveAvgPool2d(1)),
        (nn.AdaptiveAvgPool2d((2, None)), torch.nn.AdaptiveAvgPool2d((2, None))),
        (nn.AdaptiveAvgPool1d(4), torch.nn.AdaptiveAvgPool1d(4)),
    ]
    for ours, theirs in pairs:
        assert repr(ours) == repr(theirs)
        assert ours.state_dict() == {} and list(ours.parameters()) == []
        shape = (2, 3, 10) if "1d" in type(ours).__name__ else (2, 3, 10, 9)
        x = rng.standard_normal(shape)
        np.testing.assert_allclose(ours(x).data, theirs(torch.tensor(x)).numpy(), **TOLERANCE)
    ours, theirs = nn.MaxPool2d(2, return_indices=True), torch.nn.MaxPool2d(2, return_indices=True)
    x = rng.standard_normal((1, 2, 6, 6))
    np.testing.assert_array_equal(ours(x)[1].data, theirs(torch.tensor(x))[1].numpy())


# ------------------------------------------------------------------------------------------------------------
# Finite differences to second order (each pooling's gradient is a primitive whose gradient is checked too)
# ------------------------------------------------------------------------------------------------------------


def test_max_pool_gradgradcheck(rng):
    # Distinct values (a permutation), so that no window is near a tie and the kinks are far away.
    x = Tensor(rng.permutation(2 * 2 * 7 * 6).reshape(2, 2, 7, 6) / 10.0, requires_grad=True)
    assert tg.gradcheck(lambda t: F.max_pool2d(t, 3, 2, 1, ceil_mode=True), (x,), order=2)
    assert tg.gradcheck(lambda t: F.max_pool2d(t, 2, 1, dilation=(1, 2)), (x,), order=2)  # overlapping windows


def test_window_scatter_and_gather_are_differentiable_twice(rng):
    x = Tensor(rng.permutation(2 * 6 * 6).reshape(1, 2, 6, 6) / 10.0, requires_grad=True)
    out = F.max_pool2d(x, 3, 2, 1)
    positions = out.grad_fn._saved[0]
    geometry = {"kernel_size": (3, 3), "stride": (2, 2), "padding": ((1, 1), (1, 1)), "dilation": (1, 1)}
    values = Tensor(rng.standard_normal(out.shape), requires_grad=True)
    scatter = tg.functions.WindowScatter
    assert tg.gradgradcheck(lambda v: scatter.apply(v, positions=positions, input_size=(6, 6), **geometry), (values,))
    gather = tg.functions.WindowGather
    assert tg.gradgradcheck(lambda t: gather.apply(t, positions=positions, **geometry), (x,))


@pytest.mark.parametrize(
    "function",
    [
        lambda t: F.avg_pool2d(t, 3, 2, 1, ceil_mode=True, count_include_pad=False),
        lambda t: F.avg_pool2d(t, (2, 3), (1, 2), divisor_override=4),
        lambda t: F.adaptive_avg_pool2d(t, (3, 4)),
        lambda t: F.adaptive_avg_pool2d(t, 1),
        lambda t: F.avg_pool1d(t.reshape(2, 2, 42), 4, 3, 2, True, False),
    ],
    ids=["avg-ceil", "avg-divisor", "adaptive", "global", "avg1d"],
)
def test_average_poolings_gradgradcheck(rng, function):
    x = Tensor(rng.standard_normal((2, 2, 7, 6)), requires_grad=True)
    assert tg.gradcheck(function, (x,), order=2)


def test_float32_stays_float32(rng):
    x = Tensor(rng.standard_normal((2, 3, 8, 8)).astype(np.float32), requires_grad=True)
    for function in (
        lambda t: F.max_pool2d(t, 2),
        lambda t: F.avg_pool2d(t, 3, 2, 1, ceil_mode=True, count_include_pad=False),
        lambda t: F.adaptive_avg_pool2d(t, (3, 5)),
        lambda t: F.adaptive_avg_pool2d(t, 1),
    ):
        y = function(x)
        assert y.dtype == np.float32
        x.grad = None
        y.sum().backward()
        assert x.grad.dtype == np.float32


# ------------------------------------------------------------------------------------------------------------
# Mistakes
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda x: F.max_pool2d(x, 3, padding=2), "padding should be at most half the"),
        (lambda x: F.max_pool2d(x, 0), "kernel_size must be a positive integer"),
        (lambda x: F.max_pool2d(x, 2, stride=0), "stride must be a positive integer"),
        (lambda x: F.max_pool2d(x, (2, 2, 2)), r"or 2 of them"),
        (lambda x: F.max_pool2d(x, 9), r"the window \(9, 9\) is larger than the padded input"),
        (lambda x: F.max_pool2d(x[0, 0], 2), r"expected input of shape \(N, C, H, W\)"),
        (lambda x: F.avg_pool2d(x, 2, divisor_override=0), "divisor_override must be a non-zero integer"),
        (lambda x: F.avg_pool2d(x, 2, padding=2), "padding should be at most half"),
        (lambda x: F.adaptive_avg_pool2d(x, 0), "output_size must be a positive integer or 2 of them"),
        (lambda x: F.adaptive_avg_pool2d(x, (2, 2, 2)), "output_size must be a positive integer or 2 of them"),
        (lambda x: F.max_pool1d(x, 2), r"expected input of shape \(N, C, L\)"),
    ],
)
def test_bad_arguments_are_named(rng, call, message):
    with pytest.raises(ValueError, match=message):
        call(rng.standard_normal((1, 2, 6, 6)))


def test_max_pool_refuses_booleans_and_takes_integers():
    with pytest.raises(TypeError, match="max_pool2d: input must hold numbers"):
        F.max_pool2d(np.zeros((1, 1, 4, 4), dtype=bool), 2)
    out = F.max_pool2d(np.arange(16).reshape(1, 1, 4, 4), 2)
    np.testing.assert_array_equal(out.data, [[[[5, 7], [13, 15]]]])


def test_empty_batches_pass_through(rng):
    empty = Tensor(np.zeros((0, 2, 6, 6)), requires_grad=True)
    for function in (
        lambda t: F.max_pool2d(t, 2),
        lambda t: F.avg_pool2d(t, 3, 2, 1),
        lambda t: F.adaptive_avg_pool2d(t, 2),
    ):
        out = function(empty)
        assert out.shape[:2] == (0, 2)
        out.sum().backward()
        assert empty.grad.shape == (0, 2, 6, 6)
