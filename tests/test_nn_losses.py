"""Losses, as modules and in nn.functional: values against numpy written out by hand, gradients, and errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import tinygrad_nn as tg
import tinygrad_nn.nn.functional as F  # noqa: N812 - the name PyTorch code uses
from tinygrad_nn import Tensor, nn

REDUCTIONS = ["mean", "sum", "none"]


def reduce(elementwise, reduction, count=None):
    if reduction == "none":
        return elementwise
    total = elementwise.sum()
    return total if reduction == "sum" else total / (elementwise.size if count is None else count)


def log_softmax(x, axis):
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


# ------------------------------------------------------------------------------------------------------------
# Values against numpy, module and functional form, every reduction
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_loss_values(rng, reduction):
    prediction, target = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    expected = reduce((prediction - target) ** 2, reduction)
    np.testing.assert_allclose(F.mse_loss(Tensor(prediction), target, reduction=reduction).data, expected, rtol=1e-14)
    module = nn.MSELoss(reduction=reduction)
    np.testing.assert_allclose(module(Tensor(prediction), Tensor(target)).data, expected, rtol=1e-14)


def test_mse_loss_by_hand():
    loss = F.mse_loss(Tensor([1.0, 2.0, 4.0]), Tensor([1.0, 0.0, 1.0]))
    assert loss.item() == pytest.approx((0 + 4 + 9) / 3)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weight_shape", [None, (3,), (4, 3)])
def test_bce_loss_values(rng, reduction, weight_shape):
    probability, target = rng.uniform(0.01, 0.99, (4, 3)), rng.uniform(0, 1, (4, 3))
    weight = None if weight_shape is None else rng.uniform(0.5, 2, weight_shape)
    elementwise = -(target * np.log(probability) + (1 - target) * np.log(1 - probability))
    expected = reduce(elementwise * (1 if weight is None else weight), reduction)
    ours = F.binary_cross_entropy(Tensor(probability), target, weight=weight, reduction=reduction)
    np.testing.assert_allclose(ours.data, expected, rtol=1e-13)
    module = nn.BCELoss(weight=None if weight is None else Tensor(weight), reduction=reduction)
    np.testing.assert_allclose(module(Tensor(probability), Tensor(target)).data, expected, rtol=1e-13)


def test_bce_clamps_log_zero_at_minus_100():
    # A certain and wrong answer costs exactly 100 (PyTorch clamps the logs), a certain right one costs 0.
    loss = F.binary_cross_entropy(Tensor([0.0, 1.0, 1.0, 0.0]), np.array([1.0, 0.0, 1.0, 0.0]), reduction="none")
    assert loss.data.tolist() == [100.0, 100.0, 0.0, 0.0]


def test_bce_gradient_at_zero_and_one_is_finite():
    probability = Tensor([0.0, 1.0], requires_grad=True)
    F.binary_cross_entropy(probability, np.array([1.0, 0.0]), reduction="sum").backward()
    # (p - t) / max(p (1 - p), 1e-12)
    np.testing.assert_allclose(probability.grad, [-1e12, 1e12])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("with_weight", [False, True])
@pytest.mark.parametrize("with_pos_weight", [False, True])
def test_bce_with_logits_values(rng, reduction, with_weight, with_pos_weight):
    logits, target = rng.standard_normal((4, 3)) * 3, rng.uniform(0, 1, (4, 3))
    weight = rng.uniform(0.5, 2, (4, 3)) if with_weight else None
    pos_weight = rng.uniform(0.5, 3, (3,)) if with_pos_weight else None
    positive = 1 if pos_weight is None else pos_weight
    elementwise = -(positive * target * np.log(sigmoid(logits)) + (1 - target) * np.log(1 - sigmoid(logits)))
    expected = reduce(elementwise * (1 if weight is None else weight), reduction)
    ours = F.binary_cross_entropy_with_logits(
        Tensor(logits), target, weight=weight, reduction=reduction, pos_weight=pos_weight
    )
    np.testing.assert_allclose(ours.data, expected, rtol=1e-12)
    module = nn.BCEWithLogitsLoss(weight=weight, reduction=reduction, pos_weight=pos_weight)
    np.testing.assert_allclose(module(Tensor(logits), Tensor(target)).data, expected, rtol=1e-12)


def test_bce_with_logits_is_stable_for_huge_scores():
    logits = Tensor([-1000.0, 1000.0, -1000.0, 1000.0], requires_grad=True)
    target = np.array([0.0, 1.0, 1.0, 0.0])
    loss = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    assert loss.data.tolist() == [0.0, 0.0, 1000.0, 1000.0]
    loss.sum().backward()
    assert logits.grad.tolist() == [0.0, 0.0, -1.0, 1.0]  # sigmoid(x) - t


def test_bce_with_logits_equals_bce_after_a_sigmoid(rng):
    logits, target = rng.standard_normal(6), rng.uniform(0, 1, 6)
    direct = F.binary_cross_entropy_with_logits(Tensor(logits), target)
    composed = F.binary_cross_entropy(nn.Sigmoid()(Tensor(logits)), target)
    assert direct.item() == pytest.approx(composed.item(), rel=1e-13)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("with_weight", [False, True])
def test_cross_entropy_with_class_indices_values(rng, reduction, with_weight):
    logits = rng.standard_normal((5, 4)) * 2
    labels = np.array([0, 3, 1, 1, 2])
    weight = rng.uniform(0.5, 2, 4) if with_weight else np.ones(4)
    elementwise = -weight[labels] * log_softmax(logits, 1)[np.arange(5), labels]
    expected = reduce(elementwise, reduction, count=weight[labels].sum())  # mean: divided by the summed weights
    ours = F.cross_entropy(Tensor(logits), labels, weight=weight if with_weight else None, reduction=reduction)
    np.testing.assert_allclose(ours.data, expected, rtol=1e-13)
    module = nn.CrossEntropyLoss(weight=Tensor(weight) if with_weight else None, reduction=reduction)
    np.testing.assert_allclose(module(Tensor(logits), labels).data, expected, rtol=1e-13)


def test_cross_entropy_by_hand():
    # Two equal scores and one far below: log(2) for a pick of either of the equal ones.
    loss = F.cross_entropy(Tensor([[0.0, 0.0, -1000.0]]), np.array([1]))
    assert loss.item() == pytest.approx(np.log(2.0), rel=1e-15)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_with_k_dimensional_input(rng, reduction):
    logits = rng.standard_normal((2, 3, 4, 5))  # (N, C, d1, d2)
    labels = rng.integers(0, 3, (2, 4, 5))
    log_probs = log_softmax(logits, 1)
    picked = np.take_along_axis(log_probs, labels[:, np.newaxis], axis=1)[:, 0]
    ours = F.cross_entropy(Tensor(logits), labels, reduction=reduction)
    np.testing.assert_allclose(ours.data, reduce(-picked, reduction), rtol=1e-13)


def test_cross_entropy_of_one_row_with_a_scalar_target():
    logits = np.array([2.0, -1.0, 0.5])
    loss = F.cross_entropy(Tensor(logits), 0)
    assert loss.item() == pytest.approx(-log_softmax(logits, 0)[0], rel=1e-14)


@pytest.mark.parametrize(
    "labels",
    [
        np.array([2, 0, 1]),
        np.array([2, 0, 1], dtype=np.int32),
        np.array([2, 0, 1], dtype=np.uint8),
        Tensor(np.array([2, 0, 1])),
        [2, 0, 1],
    ],
    ids=["int64", "int32", "uint8", "int-tensor", "list"],
)
def test_cross_entropy_class_indices_in_any_integer_form(rng, labels):
    logits = rng.standard_normal((3, 4))
    expected = -log_softmax(logits, 1)[np.arange(3), [2, 0, 1]].mean()
    assert F.cross_entropy(Tensor(logits), labels).item() == pytest.approx(expected, rel=1e-14)
    assert nn.CrossEntropyLoss()(Tensor(logits), labels).item() == pytest.approx(expected, rel=1e-14)


def test_cross_entropy_of_a_float_tensor_of_labels_says_to_use_integers():
    # Tensor([0, 1]) is a float tensor here (unlike PyTorch), so it would be read as probabilities.
    with pytest.raises(ValueError, match="class indices must be an integer array"):
        F.cross_entropy(Tensor(np.zeros((2, 3))), Tensor([0, 1]))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("ignore_index", [-100, 1])
def test_cross_entropy_ignore_index(rng, reduction, ignore_index):
    logits = rng.standard_normal((6, 3))
    labels = np.array([0, 1, 2, 1, ignore_index, 0])
    weight = np.array([0.5, 2.0, 1.5])
    keep = labels != ignore_index
    safe = np.where(keep, labels, 0)
    sample_weight = np.where(keep, weight[safe], 0.0)
    elementwise = -sample_weight * log_softmax(logits, 1)[np.arange(6), safe]
    expected = reduce(elementwise, reduction, count=sample_weight.sum())
    ours = F.cross_entropy(Tensor(logits), labels, weight=weight, ignore_index=ignore_index, reduction=reduction)
    np.testing.assert_allclose(ours.data, expected, rtol=1e-13)
    if reduction == "none":
        assert np.all(ours.data[~keep] == 0.0)


def test_cross_entropy_ignored_samples_get_no_gradient(rng):
    logits = Tensor(rng.standard_normal((3, 4)), requires_grad=True)
    F.cross_entropy(logits, np.array([1, -100, 3])).backward()
    assert np.all(logits.grad[1] == 0.0)
    np.testing.assert_allclose(logits.grad.sum(axis=1), 0.0, atol=1e-15)  # softmax - one_hot sums to 0


def test_cross_entropy_with_every_target_ignored_is_nan_like_pytorch():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = F.cross_entropy(Tensor(np.zeros((2, 3))), np.array([-100, -100]))
    assert np.isnan(loss.item())


@pytest.mark.parametrize("shape, targets", [((2, 3), [-100, -100]), ((2, 3, 4), np.full((2, 4), -100))])
def test_cross_entropy_with_every_target_ignored_has_a_zero_gradient_like_pytorch(shape, targets):
    logits = Tensor(np.random.default_rng(0).standard_normal(shape), requires_grad=True)
    F.cross_entropy(logits, np.array(targets)).backward()
    np.testing.assert_array_equal(logits.grad, np.zeros(shape))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("with_weight", [False, True])
def test_cross_entropy_with_probability_targets(rng, reduction, with_weight):
    logits = rng.standard_normal((4, 3))
    raw = rng.uniform(0, 1, (4, 3))
    probabilities = raw / raw.sum(axis=1, keepdims=True)
    weight = rng.uniform(0.5, 2, 3) if with_weight else np.ones(3)
    elementwise = -(weight * probabilities * log_softmax(logits, 1)).sum(axis=1)
    expected = reduce(elementwise, reduction)  # the mean is over samples, whatever the weights
    ours = F.cross_entropy(Tensor(logits), probabilities, weight=weight if with_weight else None, reduction=reduction)
    np.testing.assert_allclose(ours.data, expected, rtol=1e-13)


def test_cross_entropy_with_one_hot_probabilities_equals_class_indices(rng):
    logits = rng.standard_normal((5, 4))
    labels = np.array([3, 0, 0, 2, 1])
    one_hot = np.eye(4)[labels]
    by_index = F.cross_entropy(Tensor(logits), labels).item()
    assert F.cross_entropy(Tensor(logits), one_hot).item() == pytest.approx(by_index, rel=1e-14)
    assert F.cross_entropy(Tensor(logits), Tensor(one_hot)).item() == pytest.approx(by_index, rel=1e-14)


# ------------------------------------------------------------------------------------------------------------
# Gradients
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_gradcheck_mse_loss_through_input_and_target(rng, reduction):
    prediction = Tensor(rng.standard_normal((3, 2)), requires_grad=True)
    target = Tensor(rng.standard_normal((3, 2)), requires_grad=True)
    assert tg.gradcheck(nn.MSELoss(reduction=reduction), [prediction, target])


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_gradcheck_bce_loss_through_input_and_target(rng, reduction):
    probability = Tensor(rng.uniform(0.1, 0.9, (3, 2)), requires_grad=True)
    target = Tensor(rng.uniform(0, 1, (3, 2)), requires_grad=True)
    weight = rng.uniform(0.5, 2, (2,))
    assert tg.gradcheck(
        lambda p, t: F.binary_cross_entropy(p, t, weight=weight, reduction=reduction), [probability, target]
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("with_pos_weight", [False, True])
def test_gradcheck_bce_with_logits_through_input_and_target(rng, reduction, with_pos_weight):
    logits = Tensor(rng.standard_normal((3, 2)) * 2, requires_grad=True)
    target = Tensor(rng.uniform(0, 1, (3, 2)), requires_grad=True)
    loss = nn.BCEWithLogitsLoss(
        weight=rng.uniform(0.5, 2, (3, 2)),
        reduction=reduction,
        pos_weight=rng.uniform(0.5, 3, 2) if with_pos_weight else None,
    )
    assert tg.gradcheck(loss, [logits, target])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 2, 2), (3,)], ids=["2d", "k-dimensional", "one-row"])
def test_gradcheck_cross_entropy_with_class_indices(rng, reduction, shape):
    logits = Tensor(rng.standard_normal(shape), requires_grad=True)
    labels = rng.integers(0, 3, shape[:1] + shape[2:]) if len(shape) > 1 else np.array(1)
    if labels.ndim:
        labels.flat[0] = -100  # one ignored target
    loss = nn.CrossEntropyLoss(weight=np.array([0.5, 1.0, 2.0]), reduction=reduction)
    assert tg.gradcheck(lambda x: loss(x, labels), [logits])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 2)], ids=["2d", "k-dimensional"])
def test_gradcheck_cross_entropy_with_probabilities_through_input_and_target(rng, reduction, shape):
    logits = Tensor(rng.standard_normal(shape), requires_grad=True)
    raw = rng.uniform(0, 1, shape)
    target = Tensor(raw / raw.sum(axis=1, keepdims=True), requires_grad=True)
    weight = np.array([0.5, 1.0, 2.0])
    assert tg.gradcheck(lambda x, t: F.cross_entropy(x, t, weight=weight, reduction=reduction), [logits, target])


def test_target_gets_no_gradient_unless_it_requires_one(rng):
    prediction = Tensor(rng.standard_normal(3), requires_grad=True)
    target = Tensor(rng.standard_normal(3))
    F.mse_loss(prediction, target).backward()
    assert target.grad is None and prediction.grad is not None


def test_loss_weights_never_get_a_gradient(rng):
    weight = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    logits = Tensor(rng.standard_normal((2, 3)), requires_grad=True)
    F.cross_entropy(logits, np.array([0, 2]), weight=weight).backward()
    assert weight.grad is None and logits.grad is not None


# ------------------------------------------------------------------------------------------------------------
# Errors that name what the user got wrong
# ------------------------------------------------------------------------------------------------------------

ALL_LOSSES = [nn.MSELoss, nn.BCELoss, nn.BCEWithLogitsLoss, nn.CrossEntropyLoss]
ALL_FUNCTIONS = [F.mse_loss, F.binary_cross_entropy, F.binary_cross_entropy_with_logits, F.cross_entropy]


@pytest.mark.parametrize("loss", ALL_LOSSES, ids=lambda c: c.__name__)
def test_a_bad_reduction_is_refused_when_the_module_is_made(loss):
    with pytest.raises(ValueError, match=rf"{loss.__name__}: reduction must be 'mean', 'sum' or 'none', got 'avg'"):
        loss(reduction="avg")


@pytest.mark.parametrize("function", ALL_FUNCTIONS, ids=lambda f: f.__name__)
def test_a_bad_reduction_is_refused_by_the_function(function):
    target = np.array([0, 1]) if function is F.cross_entropy else np.full((2, 2), 0.5)
    with pytest.raises(ValueError, match=rf"{function.__name__}: reduction must be .*got 'elementwise_mean'"):
        function(Tensor(np.full((2, 2), 0.5)), target, reduction="elementwise_mean")


@pytest.mark.parametrize(
    "function", [F.mse_loss, F.binary_cross_entropy, F.binary_cross_entropy_with_logits], ids=lambda f: f.__name__
)
def test_column_against_row_is_refused_not_broadcast(function):
    # (N, 1) against (N,) would broadcast to (N, N): almost always a bug, so it is an error naming both shapes.
    with pytest.raises(ValueError, match=rf"{function.__name__}: input of shape \(4, 1\) and target of shape \(4,\)"):
        function(Tensor(np.full((4, 1), 0.5)), np.full(4, 0.5))


@pytest.mark.parametrize(("bad", "span"), [(1.5, "from 0.5 to 1.5"), (-0.2, "from -0.2 to 0.5")])
def test_bce_of_values_outside_zero_one_suggests_the_logits_version(bad, span):
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\].*use binary_cross_entropy_with_logits"):
        F.binary_cross_entropy(Tensor([0.5, bad]), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=f"they range {span}"):
        nn.BCELoss()(Tensor([0.5, bad]), np.array([0.0, 1.0]))


@pytest.mark.parametrize(
    ("shape", "labels", "bad"),
    [((2, 3), [0, 3], "3"), ((2, 3), [-1, 0], "-1"), ((2, 3, 2), [[0, 1], [5, 0]], "5"), ((3,), 7, "7")],
)
def test_cross_entropy_target_out_of_range_names_it(shape, labels, bad):
    with pytest.raises(IndexError, match=rf"target {bad} is out of range for 3 classes \(0 to 2\)"):
        F.cross_entropy(Tensor(np.zeros(shape)), np.array(labels))


def test_cross_entropy_index_targets_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r"input of shape \(2, 3\) must have shape \(2,\), got \(3,\)"):
        F.cross_entropy(Tensor(np.zeros((2, 3))), np.array([0, 1, 1]))
    with pytest.raises(ValueError, match=r"must have shape \(2, 4\), got \(2,\)"):
        F.cross_entropy(Tensor(np.zeros((2, 3, 4))), np.array([0, 1]))


def test_cross_entropy_float_targets_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r"float targets are class probabilities and need the input's shape \(2, 3\)"):
        F.cross_entropy(Tensor(np.zeros((2, 3))), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"got \(3, 2\)"):
        F.cross_entropy(Tensor(np.zeros((2, 3))), np.full((3, 2), 0.5))


def test_cross_entropy_boolean_targets_are_a_type_error():
    with pytest.raises(TypeError, match="integer class indices or float probabilities, got bool"):
        F.cross_entropy(Tensor(np.zeros((2, 3))), np.array([True, False]))


def test_cross_entropy_weight_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r"weight must have shape \(3,\), one per class, got \(2,\)"):
        F.cross_entropy(Tensor(np.zeros((2, 3))), np.array([0, 1]), weight=np.ones(2))
    with pytest.raises(ValueError, match=r"weight must have shape \(3,\)"):
        nn.CrossEntropyLoss(weight=np.ones((1, 3)))(Tensor(np.zeros((2, 3))), np.array([0, 1]))


def test_cross_entropy_needs_a_class_axis():
    with pytest.raises(ValueError, match="must have a class axis, got a 0-d input"):
        F.cross_entropy(Tensor(1.0), np.array(0))


def test_bce_weight_of_the_wrong_shape_is_named():
    with pytest.raises(ValueError, match="weight"):
        F.binary_cross_entropy(Tensor(np.full((2, 3), 0.5)), np.zeros((2, 3)), weight=np.ones(2))


def test_bce_with_logits_pos_weight_of_the_wrong_shape_is_named():
    with pytest.raises(ValueError, match="pos_weight"):
        F.binary_cross_entropy_with_logits(Tensor(np.zeros((2, 3))), np.zeros((2, 3)), pos_weight=np.ones(2))
