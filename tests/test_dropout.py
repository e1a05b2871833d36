"""Dropout: mask statistics and scaling, the two modes, seeding, gradients, and gradcheck's advice."""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_nn as tg
import tinygrad_nn.nn.functional as F  # noqa: N812 - the name PyTorch code uses
from tinygrad_nn import Tensor, nn


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_mask_keeps_one_minus_p_and_scales_by_its_inverse(p):
    tg.manual_seed(0)
    x = Tensor(np.full((400, 500), 2.0))
    y = F.dropout(x, p).data
    kept = y != 0
    # 200,000 Bernoulli draws: the kept fraction is within 5 standard deviations of 1 - p.
    spread = 5 * np.sqrt(p * (1 - p) / kept.size)
    assert abs(kept.mean() - (1 - p)) < spread
    np.testing.assert_allclose(y[kept], 2.0 / (1 - p), rtol=1e-15)
    # No pattern by row or column: each row keeps about the same fraction.
    assert abs(kept.mean(axis=1) - (1 - p)).max() < 5 * np.sqrt(p * (1 - p) / 500)


def test_expected_value_is_preserved():
    tg.manual_seed(1)
    x = np.linspace(-1, 1, 100_000)
    means = [F.dropout(Tensor(x), 0.3).data.mean() - x.mean() for _ in range(5)]
    assert abs(np.mean(means)) < 0.01


def test_gradient_is_the_same_mask_and_scale():
    tg.manual_seed(2)
    x = Tensor(np.ones((50, 40)), requires_grad=True)
    y = F.dropout(x, 0.25)
    y.backward(np.full(y.shape, 3.0))
    np.testing.assert_array_equal(x.grad, 3.0 * y.data)  # y = mask / 0.75, and x = 1


def test_p_zero_and_one_and_eval_mode():
    x = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    assert F.dropout(x, 0.0) is x
    assert F.dropout(x, 0.9, training=False) is x
    y = F.dropout(x, 1.0)
    np.testing.assert_array_equal(y.data, 0)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, 0)
    layer = nn.Dropout(0.5)
    layer.eval()
    assert layer(x) is x
    layer.train()
    assert layer(x) is not x


def test_the_default_generator_and_a_given_one_make_runs_repeatable():
    x = Tensor(np.ones((10, 10)))
    tg.manual_seed(7)
    first = F.dropout(x, 0.5).data
    tg.manual_seed(7)
    np.testing.assert_array_equal(F.dropout(x, 0.5).data, first)
    layer = nn.Dropout(0.5, generator=np.random.default_rng(3))
    again = nn.Dropout(0.5, generator=np.random.default_rng(3))
    np.testing.assert_array_equal(layer(x).data, again(x).data)
    np.testing.assert_array_equal(
        F.dropout(x, 0.5, generator=np.random.default_rng(4)).data,
        F.dropout(x, 0.5, generator=np.random.default_rng(4)).data,
    )


def test_float32_stays_float32():
    x = Tensor(np.ones((4, 4), dtype=np.float32), requires_grad=True)
    y = nn.Dropout(0.3)(x)
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32


def test_second_derivative_through_dropout(rng):
    """Dropout is linear in x with a fixed mask: gradgradcheck holds when the mask is seeded inside the function."""
    x = Tensor(rng.standard_normal((3, 4)), requires_grad=True)

    def function(t):
        return F.dropout(t * t, 0.4, generator=np.random.default_rng(0))

    assert tg.gradcheck(function, (x,), order=2)


def test_gradcheck_of_a_model_in_training_mode_says_to_use_eval_or_seed(rng):
    model = nn.Sequential(nn.Linear(3, 4, dtype=np.float64), nn.Dropout(0.5), nn.Linear(4, 2, dtype=np.float64))
    x = Tensor(rng.standard_normal((2, 3)), requires_grad=True)
    with pytest.raises(tg.GradcheckError) as caught:
        tg.gradcheck(model, (x,))
    message = str(caught.value)
    assert "`1` is a Dropout in training mode" in message
    assert "model.eval()" in message and "manual_seed" in message
    model.eval()
    assert tg.gradcheck(model, (x,))


def test_repr_and_bad_probabilities():
    assert repr(nn.Dropout()) == "Dropout(p=0.5, inplace=False)"
    assert repr(nn.Dropout(0.2, inplace=True)) == "Dropout(p=0.2, inplace=True)"
    for p in (-0.1, 1.5, "0.5", True, None, float("nan")):
        with pytest.raises(ValueError, match="the dropout probability p must be between 0 and 1"):
            nn.Dropout(p)
        with pytest.raises(ValueError, match="the dropout probability p must be between 0 and 1"):
            F.dropout(np.ones(3), p)


@pytest.mark.torch
def test_layer_matches_torch_in_eval_mode_and_in_scale(torch):
    theirs = torch.nn.Dropout(0.3)
    ours = nn.Dropout(0.3)
    assert repr(ours) == repr(theirs)
    x = np.ones((200, 200))
    theirs_y = theirs(torch.tensor(x)).numpy()
    ours_y = ours(x).data
    # The masks differ (different generators); the kept values and the kept fraction agree.
    assert set(np.unique(ours_y)) == set(np.unique(theirs_y))
    assert abs((ours_y != 0).mean() - (theirs_y != 0).mean()) < 0.02
    ours.eval()
    theirs.eval()
    np.testing.assert_array_equal(ours(x).data, theirs(torch.tensor(x)).numpy())
