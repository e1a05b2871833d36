"""F.pad: the four modes against PyTorch, negative widths, gradients to second order, errors."""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_nn as tg
import tinygrad_nn.nn.functional as F  # noqa: N812 - the name PyTorch code uses
from tinygrad_nn import Tensor

CASES = [
    ("constant", (1, 2), None),
    ("constant", (1, 0, 2, 3), 1.5),
    ("constant", (-1, 2, 1, -2), None),
    ("constant", (0, 0, 0, 0, 1, 1, 1, 0), 0.5),
    ("reflect", (1, 2, 3, 0), None),
    ("reflect", (3, 3, 2, 2), None),
    ("replicate", (2, 1, 0, 3), None),
    ("replicate", (5, 5, 4, 4), None),
    ("circular", (1, 2, 3, 4), None),
    ("circular", (5, 0, 0, 4), None),
]


@pytest.mark.torch
@pytest.mark.parametrize(("mode", "widths", "value"), CASES)
def test_pad_matches_torch(torch, rng, mode, widths, value):
    x = rng.standard_normal((2, 3, 4, 5))
    ours_x, theirs_x = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    options = {} if value is None else {"value": value}
    ours = F.pad(ours_x, widths, mode, **options)
    theirs = torch.nn.functional.pad(theirs_x, widths, mode, **options)
    np.testing.assert_array_equal(ours.data, theirs.detach().numpy())
    upstream = rng.standard_normal(ours.shape)
    ours.backward(upstream)
    theirs.backward(torch.tensor(upstream))
    np.testing.assert_allclose(ours_x.grad, theirs_x.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("mode", "widths", "value"), CASES[:3] + CASES[4:5] + CASES[8:9])
def test_pad_gradgradcheck(rng, mode, widths, value):
    x = Tensor(rng.standard_normal((2, 4, 5)), requires_grad=True)
    assert tg.gradcheck(lambda t: F.pad(t * t, widths[:4], mode, value), (x,), order=2)


def test_constant_pad_keeps_float32_and_the_value():
    y = F.pad(np.zeros((2, 2), dtype=np.float32), (1, 1), value=7)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y.data, [[7, 0, 0, 7], [7, 0, 0, 7]])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda x: F.pad(x, (1,)), "pad must be a sequence of an even number of integers"),
        (lambda x: F.pad(x, (1, 1) * 4), "at most 6 for an input of shape"),
        (lambda x: F.pad(x, 1), "pad must be a sequence"),
        (lambda x: F.pad(x, (1.5, 1)), "pad must be a sequence"),
        (lambda x: F.pad(x, (1, 1), mode="mirror"), "mode must be one of constant, reflect, replicate, circular"),
        (lambda x: F.pad(x, (-3, -3)), r"would leave no cells of an axis of size 5"),
        (lambda x: F.pad(x, (5, 0), mode="reflect"), "reflect padding must be smaller than the axis it pads"),
        (lambda x: F.pad(x, (-1, 0), mode="replicate"), "negative widths crop in modes 'constant' and 'circular'"),
        (lambda x: F.pad(x, (6, 0), mode="circular"), "circular padding can wrap around once at most"),
        (lambda x: F.pad(x, (1, 0), mode="reflect", value=2), "value applies to mode 'constant' only"),
    ],
)
def test_bad_arguments_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call(np.zeros((2, 3, 5)))
