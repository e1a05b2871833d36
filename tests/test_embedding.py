"""Embedding: lookups and gradients against PyTorch, the padding row, initialisation, errors."""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_nn as tg
import tinygrad_nn.nn.functional as F  # noqa: N812 - the name PyTorch code uses
from tinygrad_nn import Tensor, nn


@pytest.mark.torch
@pytest.mark.parametrize("padding_idx", [None, 2, -1])
def test_lookup_and_gradient_match_torch(torch, rng, padding_idx):
    theirs = torch.nn.Embedding(7, 4, padding_idx=padding_idx)
    ours = nn.Embedding(7, 4, padding_idx=padding_idx)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["weight"]
    ours.load_state_dict({"weight": theirs.weight.detach().numpy()})
    indices = np.array([[0, 2, 2, 6], [6, 1, 2, 0], [3, 3, 3, 5]])  # repeats, and the padding row
    ours_y, theirs_y = ours(indices), theirs(torch.tensor(indices))
    np.testing.assert_array_equal(ours_y.data, theirs_y.detach().numpy())
    upstream = rng.standard_normal(ours_y.shape)
    ours_y.backward(upstream)
    theirs_y.backward(torch.tensor(upstream))
    np.testing.assert_allclose(ours.weight.grad, theirs.weight.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.torch
def test_functional_embedding_matches_torch(torch, rng):
    weight = rng.standard_normal((5, 3))
    indices = np.array([4, 0, 4])
    ours_w, theirs_w = Tensor(weight, requires_grad=True), torch.tensor(weight, requires_grad=True)
    ours = F.embedding(Tensor(indices), ours_w, padding_idx=0)
    theirs = torch.nn.functional.embedding(torch.tensor(indices), theirs_w, padding_idx=0)
    np.testing.assert_array_equal(ours.data, theirs.detach().numpy())
    ours.sum().backward()
    theirs.sum().backward()
    np.testing.assert_array_equal(ours_w.grad, theirs_w.grad.numpy())


def test_repeated_indices_add_their_gradients_and_the_padding_row_gets_none():
    layer = nn.Embedding(4, 2, padding_idx=1, dtype=np.float64)
    np.testing.assert_array_equal(layer.weight.data[1], 0)
    out = layer(np.array([3, 3, 1, 0, 3]))
    out.backward(np.ones((5, 2)))
    np.testing.assert_array_equal(layer.weight.grad, [[1, 1], [0, 0], [0, 0], [3, 3]])


def test_initialisation_is_standard_normal_and_seeded():
    tg.manual_seed(0)
    layer = nn.Embedding(1000, 50)
    assert abs(layer.weight.data.mean()) < 0.01 and abs(layer.weight.data.std() - 1) < 0.01
    tg.manual_seed(0)
    np.testing.assert_array_equal(nn.Embedding(1000, 50).weight.data, layer.weight.data)


def test_from_pretrained_copies_and_freezes():
    table = np.arange(12.0).reshape(4, 3)
    frozen = nn.Embedding.from_pretrained(table)
    assert not frozen.weight.requires_grad
    table[0, 0] = 100
    assert frozen.weight.data[0, 0] == 0
    np.testing.assert_array_equal(frozen(np.array([2])).data, [[6.0, 7.0, 8.0]])
    trainable = nn.Embedding.from_pretrained(np.ones((2, 2)), freeze=False, padding_idx=0)
    assert trainable.weight.requires_grad and trainable.padding_idx == 0


def test_second_derivatives(rng):
    # The padding row (2) is not looked up here: where it is, its gradient is 0 by definition, which finite
    # differences cannot agree with.
    weight = Tensor(rng.standard_normal((5, 3)), requires_grad=True)
    indices = np.array([[1, 4], [4, 0]])
    assert tg.gradcheck(lambda w: F.embedding(indices, w, padding_idx=2) * w.sum(), (weight,), order=2)


def test_float32_table_gives_float32_rows_and_gradients():
    layer = nn.Embedding(5, 2, dtype=np.float32)
    y = layer(np.array([1, 2]))
    assert y.dtype == np.float32
    y.sum().backward()
    assert layer.weight.grad.dtype == np.float32


@pytest.mark.parametrize(
    ("indices", "error", "message"),
    [
        (np.array([0, 5]), IndexError, r"Embedding\(5, 2\) got index 5; indices must be in \[0, 5\)"),
        (np.array([-1, 2]), IndexError, r"got index -1"),
        (np.array([0.0, 1.0]), TypeError, r"takes integer indices, got dtype float64"),
    ],
)
def test_bad_indices_are_named(indices, error, message):
    with pytest.raises(error, match=message):
        nn.Embedding(5, 2)(indices)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="num_embeddings must be a positive integer"):
        nn.Embedding(0, 3)
    with pytest.raises(ValueError, match="padding_idx must be an index into the 5 rows"):
        nn.Embedding(5, 3, padding_idx=5)
    with pytest.raises(NotImplementedError, match="max_norm, scale_grad_by_freq and sparse are not supported"):
        nn.Embedding(5, 3, max_norm=1.0)
    with pytest.raises(ValueError, match=r"weight must be a table \(num_embeddings, embedding_dim\)"):
        F.embedding(np.array([0]), np.ones(3))
    with pytest.raises(ValueError, match=r"embeddings must be 2-D"):
        nn.Embedding.from_pretrained(np.ones(3))
