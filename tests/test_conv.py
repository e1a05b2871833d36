"""Convolution: F.conv1d/conv2d and nn.Conv1d/Conv2d against PyTorch, gradients to second order, errors, layout.

The PyTorch comparisons run in float64 (the `torch` fixture sets PyTorch's default dtype) and agree to 1e-10;
the gradient checks use finite differences (tinygrad_nn.gradcheck) on small shapes.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import tinygrad_nn as tg
import tinygrad_nn.nn.functional as F  # noqa: N812 - the name PyTorch code uses
from tinygrad_nn import Tensor, functions, nn

TOLERANCE = {"rtol": 1e-10, "atol": 1e-10}


def compare_with_torch(torch, ours_fn, theirs_fn, arrays, rng, second_order=False):
    """Forward values and the gradients of every input (and, optionally, of a second backward) against PyTorch."""
    ours_inputs = [Tensor(a, requires_grad=True) for a in arrays]
    theirs_inputs = [torch.tensor(a, requires_grad=True) for a in arrays]
    ours, theirs = ours_fn(*ours_inputs), theirs_fn(*theirs_inputs)
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), **TOLERANCE)
    upstream = rng.standard_normal(ours.shape)
    if not second_order:
        ours.backward(upstream)
        theirs.backward(torch.tensor(upstream))
        for mine, other in zip(ours_inputs, theirs_inputs):
            np.testing.assert_allclose(mine.grad, other.grad.numpy(), **TOLERANCE)
        return
    # Second order: the squared norm of the first gradients, differentiated again (and by the upstream gradient).
    ours_up, theirs_up = Tensor(upstream, requires_grad=True), torch.tensor(upstream, requires_grad=True)
    ours_grads = tg.grad((ours * ours_up).sum(), ours_inputs, create_graph=True)
    theirs_grads = torch.autograd.grad((theirs * theirs_up).sum(), theirs_inputs, create_graph=True)
    sum((g * g).sum() for g in ours_grads).backward()
    sum((g * g).sum() for g in theirs_grads).backward()
    for mine, other in zip([*ours_inputs, ours_up], [*theirs_inputs, theirs_up]):
        if other.grad is None:  # PyTorch's None: nothing depends on it (a bias, in a second derivative)
            assert mine.grad is None or not np.any(mine.grad)
            continue
        np.testing.assert_allclose(mine.grad, other.grad.numpy(), rtol=1e-9, atol=1e-9)


# Every argument of conv2d the issue names, in combination: (input shape, weight shape, options).
CONV2D_CASES = {
    "plain": ((2, 3, 7, 6), (4, 3, 3, 3), {}),
    "padding-1": ((2, 3, 7, 6), (4, 3, 3, 3), {"padding": 1}),
    "padding-pair": ((2, 3, 7, 6), (4, 3, 3, 2), {"padding": (2, 1)}),
    "stride-2": ((2, 3, 9, 8), (4, 3, 3, 3), {"stride": 2, "padding": 1}),
    "stride-pair-odd": ((2, 2, 11, 9), (3, 2, 2, 3), {"stride": (3, 2), "padding": (1, 0)}),
    "dilation": ((2, 2, 9, 9), (3, 2, 3, 3), {"dilation": 2, "padding": 2}),
    "dilation-pair": ((1, 2, 10, 8), (3, 2, 2, 3), {"dilation": (3, 1), "stride": (1, 2)}),
    "groups-2": ((2, 4, 6, 6), (6, 2, 3, 3), {"groups": 2, "padding": 1}),
    "depthwise": ((2, 3, 6, 5), (6, 1, 3, 3), {"groups": 3, "stride": 2}),
    "same-odd": ((2, 3, 7, 6), (4, 3, 3, 3), {"padding": "same"}),
    "same-even-kernel": ((2, 3, 7, 6), (4, 3, 4, 2), {"padding": "same"}),
    "same-dilated": ((2, 3, 7, 8), (4, 3, 3, 2), {"padding": "same", "dilation": (2, 3)}),
    "valid": ((2, 3, 7, 6), (4, 3, 3, 3), {"padding": "valid"}),
    "1x1": ((3, 5, 4, 4), (2, 5, 1, 1), {}),
    "kernel-equals-input": ((2, 2, 3, 4), (3, 2, 3, 4), {}),
    "batch-1-odd": ((1, 1, 5, 7), (2, 1, 3, 3), {"stride": (2, 3), "padding": (1, 2)}),
    "everything": (
        (3, 4, 13, 11),
        (6, 2, 3, 2),
        {"stride": (2, 1), "padding": (2, 1), "dilation": (1, 2), "groups": 2},
    ),
}


@pytest.mark.torch
@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")  # PyTorch's note on its copy
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("case", list(CONV2D_CASES))
def test_conv2d_values_and_gradients_match_torch(torch, rng, case, bias):
    input_shape, weight_shape, options = CONV2D_CASES[case]
    arrays = [rng.standard_normal(input_shape), rng.standard_normal(weight_shape)]
    if bias:
        arrays.append(rng.standard_normal(weight_shape[0]))

    def ours(x, w, b=None):
        return F.conv2d(x, w, b, **options)

    def theirs(x, w, b=None):
        return torch.nn.functional.conv2d(x, w, b, **options)

    compare_with_torch(torch, ours, theirs, arrays, rng)


@pytest.mark.torch
@pytest.mark.parametrize("case", ["padding-1", "stride-pair-odd", "dilation-pair", "groups-2", "same-even-kernel"])
def test_conv2d_second_derivatives_match_torch(torch, rng, case):
    input_shape, weight_shape, options = CONV2D_CASES[case]
    arrays = [rng.standard_normal(input_shape), rng.standard_normal(weight_shape), rng.standard_normal(weight_shape[0])]
    compare_with_torch(
        torch,
        lambda x, w, b: F.conv2d(x, w, b, **options),
        lambda x, w, b: torch.nn.functional.conv2d(x, w, b, **options),
        arrays,
        rng,
        second_order=True,
    )


CONV1D_CASES = {
    "plain": ((2, 3, 9), (4, 3, 3), {}),
    "stride-padding": ((2, 3, 10), (4, 3, 4), {"stride": 3, "padding": 2}),
    "dilation-groups": ((2, 4, 11), (2, 2, 3), {"dilation": 2, "groups": 2}),
    "same": ((1, 2, 8), (3, 2, 4), {"padding": "same", "dilation": 3}),
}


@pytest.mark.torch
@pytest.mark.parametrize("case", list(CONV1D_CASES))
def test_conv1d_matches_torch(torch, rng, case):
    input_shape, weight_shape, options = CONV1D_CASES[case]
    arrays = [rng.standard_normal(input_shape), rng.standard_normal(weight_shape), rng.standard_normal(weight_shape[0])]
    compare_with_torch(
        torch,
        lambda x, w, b: F.conv1d(x, w, b, **options),
        lambda x, w, b: torch.nn.functional.conv1d(x, w, b, **options),
        arrays,
        rng,
    )


@pytest.mark.torch
@pytest.mark.parametrize("spatial", [1, 2])
def test_unbatched_input_gives_an_unbatched_output_like_torch(torch, rng, spatial):
    shape, weight_shape = ((3, 9), (2, 3, 3)) if spatial == 1 else ((3, 6, 5), (2, 3, 3, 3))
    ours_fn, theirs_fn = (
        (F.conv1d, torch.nn.functional.conv1d) if spatial == 1 else (F.conv2d, torch.nn.functional.conv2d)
    )
    arrays = [rng.standard_normal(shape), rng.standard_normal(weight_shape)]
    compare_with_torch(
        torch, lambda x, w: ours_fn(x, w, padding=1), lambda x, w: theirs_fn(x, w, padding=1), arrays, rng
    )


# ------------------------------------------------------------------------------------------------------------
# Finite differences: first and second order, through each of the three convolution primitives
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [{"padding": 1}, {"stride": 2, "padding": (1, 0)}, {"dilation": 2, "groups": 2, "padding": "same"}],
    ids=["padding", "stride", "dilation-groups-same"],
)
def test_conv2d_gradgradcheck(rng, options):
    x = Tensor(rng.standard_normal((2, 2, 5, 5)), requires_grad=True)
    w = Tensor(rng.standard_normal((2, 2 // options.get("groups", 1), 3, 3)), requires_grad=True)
    b = Tensor(rng.standard_normal(2), requires_grad=True)
    assert tg.gradcheck(lambda x, w, b: F.conv2d(x, w, b, **options), (x, w, b), order=2)


def test_conv_transpose_and_weight_grad_are_differentiable_twice(rng):
    """The gradients of Conv are primitives too; checking their own second derivatives covers the third order."""
    options = {"stride": (2, 1), "padding": ((1, 0), (1, 1)), "dilation": (1, 2), "groups": 1}
    grad = Tensor(rng.standard_normal((2, 3, 3, 5)), requires_grad=True)  # the output size for a 5 x 5 input
    weight = Tensor(rng.standard_normal((3, 2, 2, 2)), requires_grad=True)
    x = Tensor(rng.standard_normal((2, 2, 5, 5)), requires_grad=True)
    assert tg.gradgradcheck(
        lambda g, w: functions.ConvTranspose.apply(g, w, input_size=(5, 5), **options), (grad, weight)
    )
    assert tg.gradgradcheck(lambda x, g: functions.ConvWeightGrad.apply(x, g, kernel_size=(2, 2), **options), (x, grad))


def test_conv1d_gradcheck(rng):
    x = Tensor(rng.standard_normal((2, 3, 7)), requires_grad=True)
    conv = nn.Conv1d(3, 2, 3, stride=2, padding=1, dtype=np.float64)
    assert tg.gradcheck(conv, (x,))


def test_conv2d_module_gradcheck_includes_its_parameters(rng):
    tg.manual_seed(0)
    conv = nn.Conv2d(2, 3, (2, 3), stride=(1, 2), padding=1, dtype=np.float64)
    x = Tensor(rng.standard_normal((2, 2, 4, 5)), requires_grad=True)
    assert tg.gradcheck(conv, (x,), order=2)


# ------------------------------------------------------------------------------------------------------------
# The layer: PyTorch's arguments, initialisation, keys and repr
# ------------------------------------------------------------------------------------------------------------

MODULE_CASES = [
    {"in_channels": 1, "out_channels": 4, "kernel_size": 3, "padding": 1},
    {"in_channels": 4, "out_channels": 6, "kernel_size": (3, 2), "stride": (2, 1), "dilation": (1, 2), "groups": 2},
    {"in_channels": 3, "out_channels": 2, "kernel_size": 4, "padding": "same", "bias": False},
    {"in_channels": 2, "out_channels": 2, "kernel_size": 3, "padding": (2, 1), "padding_mode": "reflect"},
    {"in_channels": 2, "out_channels": 4, "kernel_size": 3, "padding": "same", "padding_mode": "replicate"},
    {"in_channels": 2, "out_channels": 2, "kernel_size": 2, "padding": 1, "padding_mode": "circular", "stride": 2},
    {"in_channels": 2, "out_channels": 3, "kernel_size": 3, "padding": "valid"},
]


@pytest.mark.torch
@pytest.mark.parametrize("options", MODULE_CASES, ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()))
def test_conv2d_module_matches_torch_keys_repr_and_values(torch, rng, options):
    theirs = torch.nn.Conv2d(**options)
    ours = nn.Conv2d(**options, dtype=np.float64)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert repr(ours) == repr(theirs)
    ours.load_state_dict({name: value.detach().numpy() for name, value in theirs.state_dict().items()})
    x = rng.standard_normal((2, options["in_channels"], 7, 6))
    ours_x, theirs_x = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    ours_y, theirs_y = ours(ours_x), theirs(theirs_x)
    np.testing.assert_allclose(ours_y.data, theirs_y.detach().numpy(), **TOLERANCE)
    upstream = rng.standard_normal(ours_y.shape)
    ours_y.backward(upstream)
    theirs_y.backward(torch.tensor(upstream))
    np.testing.assert_allclose(ours_x.grad, theirs_x.grad.numpy(), **TOLERANCE)
    for name, parameter in ours.named_parameters():
        np.testing.assert_allclose(parameter.grad, dict(theirs.named_parameters())[name].grad.numpy(), **TOLERANCE)


@pytest.mark.torch
def test_conv1d_module_matches_torch(torch, rng):
    options = {"in_channels": 3, "out_channels": 4, "kernel_size": 3, "stride": 2, "padding": 2, "dilation": 2}
    theirs, ours = torch.nn.Conv1d(**options), nn.Conv1d(**options, dtype=np.float64)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict({name: value.detach().numpy() for name, value in theirs.state_dict().items()})
    x = rng.standard_normal((2, 3, 11))
    np.testing.assert_allclose(ours(x).data, theirs(torch.tensor(x)).detach().numpy(), **TOLERANCE)


def test_initialisation_is_pytorchs_bound_and_follows_the_seed():
    tg.manual_seed(3)
    conv = nn.Conv2d(4, 8, (3, 5), groups=2)
    fan_in = 2 * 3 * 5
    bound = 1 / math.sqrt(fan_in)
    assert np.abs(conv.weight.data).max() <= bound
    assert np.abs(conv.bias.data).max() <= bound
    # Uniform in the whole interval, not a narrower one: the extremes come close to the bound.
    assert np.abs(conv.weight.data).max() > 0.9 * bound
    assert abs(conv.weight.data.std() - bound / math.sqrt(3)) < 0.15 * bound
    tg.manual_seed(3)
    again = nn.Conv2d(4, 8, (3, 5), groups=2)
    np.testing.assert_array_equal(conv.weight.data, again.weight.data)
    generator = np.random.default_rng(5)
    conv.reset_parameters(generator)
    assert not np.array_equal(conv.weight.data, again.weight.data)


def test_float32_stays_float32_forward_and_backward(rng):
    conv = nn.Conv2d(3, 4, 3, padding=1, dtype=np.float32)
    x = Tensor(rng.standard_normal((2, 3, 6, 6)).astype(np.float32), requires_grad=True)
    y = conv(x)
    assert y.dtype == np.float32
    (y * y).sum().backward()
    assert x.grad.dtype == conv.weight.grad.dtype == conv.bias.grad.dtype == np.float32


def test_non_contiguous_inputs_give_the_same_result(rng):
    conv = nn.Conv2d(3, 2, 3, stride=2, padding=1, dtype=np.float64)
    x = rng.standard_normal((6, 3, 10, 9))
    expected = conv(np.ascontiguousarray(x[::2, :, 1:, ::-1])).data
    np.testing.assert_allclose(conv(x[::2, :, 1:, ::-1]).data, expected, rtol=1e-12)
    fortran = np.asfortranarray(x)
    np.testing.assert_allclose(conv(fortran).data, conv(x).data, rtol=1e-12)


def test_output_is_channel_major_in_memory_but_reads_as_nchw(rng):
    """The layout the matmuls produce; any reader sees the usual (N, C, H, W) values."""
    x = rng.standard_normal((2, 3, 5, 5))
    w = rng.standard_normal((4, 3, 3, 3))
    y = F.conv2d(x, w, padding=1).data
    assert y.shape == (2, 4, 5, 5)
    assert y.swapaxes(0, 1).flags.c_contiguous
    # Direct definition of the first output channel of the first image, pixel (2, 3).
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    np.testing.assert_allclose(y[0, 0, 2, 3], np.sum(padded[0, :, 2:5, 3:6] * w[0]), rtol=1e-12)


def test_unflatten_feeds_flat_images_to_a_convolution():
    images = np.arange(2 * 784, dtype=np.float64).reshape(2, 784)
    out = nn.Unflatten(1, (1, 28, 28))(images)
    assert out.shape == (2, 1, 28, 28)
    np.testing.assert_array_equal(out.data[1, 0, 3], images[1, 84:112])
    assert nn.Unflatten(-1, (-1, 4))(np.zeros((3, 8))).shape == (3, 2, 4)
    assert repr(nn.Unflatten(1, (1, 28, 28))) == "Unflatten(dim=1, unflattened_size=(1, 28, 28))"
    with pytest.raises(ValueError, match=r"784 values, which do not split into \(1, 28, 27\)"):
        nn.Unflatten(1, (1, 28, 27))(images)
    with pytest.raises(IndexError, match="dim=3 is out of range"):
        nn.Unflatten(3, (1, 2))(images)
    for bad in [(-1, -1), (True, 4), (), (0, 4), "14"]:
        with pytest.raises(ValueError, match="one may be -1"):
            nn.Unflatten(1, bad)


# ------------------------------------------------------------------------------------------------------------
# Mistakes, named where they are made
# ------------------------------------------------------------------------------------------------------------


def test_wrong_channel_count_names_the_layer_and_the_shapes():
    conv = nn.Conv2d(3, 8, 3)
    with pytest.raises(
        ValueError, match=r"Conv2d\(in_channels=3\) got input with 1 channels \(input shape \(8, 1, 28, 28\)\)"
    ):
        conv(np.zeros((8, 1, 28, 28)))


def test_wrong_number_of_axes_says_which_shapes_it_takes():
    with pytest.raises(ValueError, match=r"Conv2d\(in_channels=3\) takes input of shape \(N, C, H, W\)"):
        nn.Conv2d(3, 8, 3)(np.zeros((8, 3)))
    # Three axes are an unbatched (C, H, W) image, as in PyTorch: here with 8 channels.
    with pytest.raises(ValueError, match=r"got input with 8 channels \(input shape \(8, 3, 28\)\)"):
        nn.Conv2d(3, 8, 3)(np.zeros((8, 3, 28)))
    with pytest.raises(ValueError, match=r"Conv1d\(in_channels=2\) takes input of shape \(N, C, L\)"):
        nn.Conv1d(2, 8, 3)(np.zeros((8, 2, 5, 5)))


def test_an_input_smaller_than_the_kernel_is_refused():
    with pytest.raises(ValueError, match=r"smaller than its kernel"):
        nn.Conv2d(1, 1, 5)(np.zeros((1, 1, 4, 9)))
    with pytest.raises(ValueError, match=r"kernel \(3, 3\) .* is larger than the padded input"):
        F.conv2d(np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 3, 3)))


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"in_channels": 3, "out_channels": 4, "kernel_size": 3, "groups": 2}, "must both be divisible by groups"),
        ({"in_channels": 0, "out_channels": 4, "kernel_size": 3}, "in_channels must be a positive integer"),
        ({"in_channels": 2, "out_channels": 4, "kernel_size": 0}, "kernel_size must be a positive integer"),
        ({"in_channels": 2, "out_channels": 4, "kernel_size": (3, 3, 3)}, r"kernel_size .* or 2 of them"),
        ({"in_channels": 2, "out_channels": 4, "kernel_size": 3, "stride": 0}, "stride must be a positive integer"),
        ({"in_channels": 2, "out_channels": 4, "kernel_size": 3, "stride": True}, "stride must be a positive integer"),
        ({"in_channels": 2, "out_channels": 4, "kernel_size": 3, "padding": -1}, "padding must be a non-negative"),
        ({"in_channels": 2, "out_channels": 4, "kernel_size": 3, "padding": "full"}, "padding must be 'valid', 'same'"),
        (
            {"in_channels": 2, "out_channels": 4, "kernel_size": 3, "padding": "same", "stride": 2},
            "not supported for strided",
        ),
        (
            {"in_channels": 2, "out_channels": 4, "kernel_size": 3, "padding_mode": "mirror"},
            "padding_mode must be one of",
        ),
        (
            {"in_channels": 2, "out_channels": 4, "kernel_size": 3, "dilation": 1.5},
            "dilation must be a positive integer",
        ),
    ],
)
def test_bad_layer_arguments_are_named(arguments, message):
    with pytest.raises(ValueError, match=message):
        nn.Conv2d(**arguments)


def test_the_gradient_primitives_check_the_gradient_fits_the_convolution(rng):
    with pytest.raises(
        ValueError, match=r"a gradient of spatial size \(3, 3\) does not fit .* whose output has size \(3, 5\)"
    ):
        functions.ConvWeightGrad.apply(
            rng.standard_normal((1, 2, 5, 5)), rng.standard_normal((1, 3, 3, 3)), kernel_size=(2, 2), stride=(2, 1),
            padding=((1, 0), (1, 1)), dilation=(1, 2), groups=1,
        )  # fmt: skip
    with pytest.raises(ValueError, match=r"conv_transpose: a gradient of spatial size \(4, 4\)"):
        functions.ConvTranspose.apply(
            rng.standard_normal((1, 3, 4, 4)), rng.standard_normal((3, 2, 3, 3)), input_size=(5, 5), stride=(1, 1),
            padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1,
        )  # fmt: skip


def test_functional_checks_weight_bias_and_groups():
    x = np.zeros((2, 4, 5, 5))
    with pytest.raises(
        ValueError, match=r"has 4 channels, but the weight of shape \(3, 3, 3, 3\) with groups=1 expects 3"
    ):
        F.conv2d(x, np.zeros((3, 3, 3, 3)))
    with pytest.raises(ValueError, match=r"weight must have shape \(out_channels, in_channels / groups"):
        F.conv2d(x, np.zeros((3, 4, 3)))
    with pytest.raises(ValueError, match=r"bias must have shape \(3,\)"):
        F.conv2d(x, np.zeros((3, 4, 3, 3)), np.zeros(4))
    with pytest.raises(ValueError, match=r"out_channels \(3\) must be divisible by groups \(2\)"):
        F.conv2d(x, np.zeros((3, 2, 3, 3)), groups=2)
    with pytest.raises(ValueError, match="groups must be a positive integer"):
        F.conv2d(x, np.zeros((3, 4, 3, 3)), groups=0)
    with pytest.raises(ValueError, match=r"expected input of shape \(N, C, H, W\) or, unbatched, \(C, H, W\)"):
        F.conv2d(np.zeros((5, 5)), np.zeros((3, 4, 3, 3)))


def test_a_conv_in_a_model_records_one_node_and_draws(rng):
    """The graph holds one Conv node per layer (bias included), which draw_graph names."""
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU())
    loss = model(Tensor(rng.standard_normal((1, 1, 5, 5)))).sum()
    assert type(loss.grad_fn.parents[0].parents[0]).__name__ == "Conv"
    assert "Conv" in tg.viz.draw_graph(loss, model).source


def test_a_large_batch_without_gradients_is_convolved_in_slices_with_the_same_result(rng, monkeypatch):
    """Evaluation at a large batch builds its columns a slice of the batch at a time, to cap their memory."""
    x = rng.standard_normal((7, 3, 6, 5))
    conv = nn.Conv2d(3, 4, 3, stride=(1, 2), padding=1, dtype=np.float64)
    expected = conv(x).data  # with gradients: all at once (the columns are kept for the weight's gradient)
    monkeypatch.setattr(functions.conv, "_COLUMN_CHUNK_VALUES", 3 * 9 * 6 * 3 * 2)  # two images per slice
    calls = []
    original = functions.conv._columns
    monkeypatch.setattr(functions.conv, "_columns", lambda x, *args: calls.append(len(x)) or original(x, *args))
    with tg.no_grad():
        sliced = conv(x).data
    assert calls == [2, 2, 2, 1]
    np.testing.assert_allclose(sliced, expected, rtol=1e-13, atol=1e-13)


def test_lists_and_nested_sequences_are_taken_as_arrays():
    image = [[[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]]]  # (C, H, W), unbatched
    kernel = np.ones((1, 1, 2, 2))
    np.testing.assert_array_equal(F.conv2d(image, kernel).data, [[[8.0, 12.0], [20.0, 24.0]]])
    np.testing.assert_array_equal(F.max_pool2d(image, 2, 1).data, [[[4.0, 5.0], [7.0, 8.0]]])
    np.testing.assert_array_equal(F.pad([1.0, 2.0], (1, 0)).data, [0.0, 1.0, 2.0])
    layer = nn.Conv2d(1, 1, 2, bias=False, dtype=np.float64)
    layer.weight.data[...] = 1
    np.testing.assert_array_equal(layer([image]).data, [[[[8.0, 12.0], [20.0, 24.0]]]])
    assert nn.BatchNorm1d(2)([[1.0, 2.0], [3.0, 6.0]]).shape == (2, 2)
    assert nn.LayerNorm(2)([[1.0, 2.0]]).shape == (1, 2)
    assert F.dropout([1.0, 2.0], 0.5, training=False).shape == (2,)
