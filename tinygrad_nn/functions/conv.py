"""Convolution and pooling over 1, 2 or 3 spatial axes (NCL, NCHW, NCDHW): windowed views and BLAS matmuls.

The convolution is im2col on a strided view: ``as_strided`` gives every window of the (padded) input without a
copy, one reshape copies them into a matrix of columns, and one matmul per group multiplies it by the weight.
Its two gradients are primitives of their own, so that every gradient is differentiable again:

- `ConvTranspose` (the gradient with respect to the input) multiplies the transposed weight by the upstream
  gradient and scatter-adds the columns back onto the input, one strided add per kernel position (col2im);
- `ConvWeightGrad` (the gradient with respect to the weight) multiplies the upstream gradient by the columns.

The three are bilinear and each one's derivatives are the other two, which is what makes ``gradgradcheck`` pass
to any order. Pooling works the same way, with a loop over the kernel positions (never over pixels): max
pooling records which window position won (the first maximum, as PyTorch) and `WindowScatter` / `WindowGather`
move gradients to and from those positions; average pooling and `AvgPoolTranspose` are each other's adjoints.

Memory layout: results are laid out channel-major in memory, ``(C, N, *spatial)``, and handed out as the
``(N, C, *spatial)`` view. That is the layout the matmuls produce and consume (a matrix of shape
``(channels, batch * pixels)``), so a network of convolutions, pooling and elementwise ops never transposes its
activations; numpy's elementwise ops keep the layout of their inputs.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from . import xp
from .base import Primitive

__all__ = [
    "AdaptiveAvgPool",
    "AvgPool",
    "AvgPoolTranspose",
    "Conv",
    "ConvTranspose",
    "ConvWeightGrad",
    "MaxPool",
    "Pad",
    "WindowGather",
    "WindowScatter",
    "adaptive_avg_pool_array",
    "avg_pool_array",
    "avg_pool_transpose_array",
    "conv_array",
    "conv_output_size",
    "conv_transpose_array",
    "conv_weight_grad_array",
    "pad_array",
    "pool_geometry",
    "window_gather_array",
    "window_scatter_array",
]


# --------------------------------------------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------------------------------------------


def conv_output_size(
    input_size: tuple, kernel_size: tuple, stride: tuple, padding: tuple, dilation: tuple
) -> tuple[int, ...]:
    """The spatial size of a convolution's (or pooling's) output; `padding` holds a (before, after) pair per axis."""
    return tuple(
        (size + before + after - d * (k - 1) - 1) // s + 1
        for size, k, s, (before, after), d in zip(input_size, kernel_size, stride, padding, dilation)
    )


def _window_slices(kernel_size: tuple, stride: tuple, dilation: tuple, output_size: tuple) -> list[tuple]:
    """For each kernel position (in row-major order), the index of the padded input it reads for every output.

    ``padded[index]`` has shape (N, C, *output_size): the input value under that kernel position for each output
    pixel, as a strided view.
    """
    slices = []
    for position in itertools.product(*(range(k) for k in kernel_size)):
        spatial = tuple(
            slice(p * d, p * d + s * (o - 1) + 1, s) for p, d, s, o in zip(position, dilation, stride, output_size)
        )
        slices.append((slice(None), slice(None), *spatial))
    return slices


def _channel_major(shape: tuple, dtype: Any, fill: float = 0.0) -> np.ndarray:
    """A new array of `shape` (N, C, ...), laid out as (C, N, ...) in memory, filled with `fill`."""
    memory_shape = (shape[1], shape[0], *shape[2:])
    array = np.zeros(memory_shape, dtype=dtype) if fill == 0 else np.full(memory_shape, fill, dtype=dtype)
    return array.swapaxes(0, 1)


def _crop(padded: np.ndarray, padding: tuple, size: tuple) -> np.ndarray:
    """The interior of a padded array: the view without `padding` ((before, after) per spatial axis)."""
    if not any(before or after for before, after in padding) and padded.shape[2:] == tuple(size):
        return padded
    return padded[(slice(None), slice(None), *(slice(b, b + s) for (b, _), s in zip(padding, size)))]


def _pad_spatial(x: np.ndarray, padding: tuple, fill: float = 0.0) -> np.ndarray:
    """`x` (N, C, *spatial) padded with `fill`, channel-major in memory; `x` itself when there is no padding."""
    if not any(before or after for before, after in padding):
        return x
    sizes = tuple(s + b + a for s, (b, a) in zip(x.shape[2:], padding))
    padded = _channel_major((*x.shape[:2], *sizes), x.dtype, fill)
    padded[(slice(None), slice(None), *(slice(b, b + s) for (b, _), s in zip(padding, x.shape[2:])))] = x
    return padded


def _channel_major_layout(array: np.ndarray) -> np.ndarray:
    """`array` (N, C, ...) itself when it is laid out (C, N, ...) in memory, else a copy that is."""
    if array.swapaxes(0, 1).flags.c_contiguous:
        return array
    return np.ascontiguousarray(array.swapaxes(0, 1)).swapaxes(0, 1)


def _as_channel_major_matrix(array: np.ndarray, groups: int) -> np.ndarray:
    """(N, C, *spatial) as (groups, C / groups, N * pixels): free when `array` is channel-major, else one copy."""
    n, c = array.shape[:2]
    return array.swapaxes(0, 1).reshape(groups, c // groups, n * math.prod(array.shape[2:]))


# --------------------------------------------------------------------------------------------------------------
# Convolution: the numpy computations
# --------------------------------------------------------------------------------------------------------------


def _columns(x: np.ndarray, kernel_size: tuple, stride: tuple, padding: tuple, dilation: tuple, groups: int) -> tuple:
    """im2col: every window of the padded input as a column, shape (groups, C/groups * kernel, N * out_pixels).

    Returns the columns and the output's spatial size. The windows are a strided view of the padded input
    (no copy); the reshape into a matrix is the one copy.
    """
    padded = _pad_spatial(x, padding)
    n, c = padded.shape[:2]
    output_size = conv_output_size(x.shape[2:], kernel_size, stride, padding, dilation)
    if min(output_size) < 1:
        raise ValueError(
            f"conv: the kernel {tuple(kernel_size)} (dilation {tuple(dilation)}) is larger than the padded input "
            f"{tuple(padded.shape[2:])}, so there is no output (input shape {x.shape}, padding {tuple(padding)})"
        )
    batch_stride, channel_stride, *pixel_strides = padded.strides
    channels = c // groups
    windows = as_strided(
        padded,
        shape=(groups, channels, *kernel_size, n, *output_size),
        strides=(
            channels * channel_stride,
            channel_stride,
            *(step * d for step, d in zip(pixel_strides, dilation)),
            batch_stride,
            *(step * s for step, s in zip(pixel_strides, stride)),
        ),
        writeable=False,
    )
    return windows.reshape(groups, channels * math.prod(kernel_size), n * math.prod(output_size)), output_size


def _check_conv(x: Any, weight: Any, groups: int) -> None:
    if np.ndim(x) != np.ndim(weight) or np.ndim(x) < 3:
        raise ValueError(
            f"conv: input of shape {np.shape(x)} and weight of shape {np.shape(weight)} need the same number of "
            "axes, at least 3: (N, C, *spatial) and (out_channels, in_channels / groups, *kernel)"
        )
    channels, out_channels, per_group = np.shape(x)[1], np.shape(weight)[0], np.shape(weight)[1]
    if channels != per_group * groups or out_channels % groups:
        raise ValueError(
            f"conv: input of shape {np.shape(x)} has {channels} channels, but the weight of shape {np.shape(weight)} "
            f"with groups={groups} expects {per_group * groups} (and out_channels divisible by groups)"
        )


def _check_output_size(
    name: str, output_size: tuple, input_size: tuple, kernel_size: tuple, stride: tuple, padding: tuple, dilation: tuple
) -> None:
    expected = conv_output_size(input_size, kernel_size, stride, padding, dilation)
    if tuple(output_size) != expected:
        raise ValueError(
            f"{name}: a gradient of spatial size {tuple(output_size)} does not fit a convolution of an input of size "
            f"{tuple(input_size)} (kernel {tuple(kernel_size)}, stride {tuple(stride)}, padding {tuple(padding)}, "
            f"dilation {tuple(dilation)}), whose output has size {expected}"
        )


# Above this many column values (64 MiB of float32) a convolution whose columns are not kept for backward builds
# them a slice of the batch at a time: evaluating 2,000 images at once would otherwise hold a 450 MiB matrix for
# the default CNN's second convolution, for no gain in speed.
_COLUMN_CHUNK_VALUES = 2**24


def conv_array(
    x: np.ndarray,
    weight: np.ndarray,
    stride: tuple,
    padding: tuple,
    dilation: tuple,
    groups: int,
    keep_columns: bool = True,
) -> tuple[np.ndarray, np.ndarray | None]:
    """The convolution (cross-correlation, as PyTorch) without bias; returns (output, columns).

    With ``keep_columns=False`` the columns are not returned (None), and a large batch is convolved in slices.
    """
    _check_conv(x, weight, groups)
    kernel_size = weight.shape[2:]
    n, out_channels = x.shape[0], weight.shape[0]
    kernels = weight.reshape(groups, out_channels // groups, -1)
    output_size = conv_output_size(x.shape[2:], kernel_size, stride, padding, dilation)
    per_image = x.shape[1] * math.prod(kernel_size) * math.prod(output_size)
    if keep_columns or n * per_image <= _COLUMN_CHUNK_VALUES or n == 1:
        columns, output_size = _columns(x, kernel_size, stride, padding, dilation, groups)
        product = np.matmul(kernels, columns)  # (groups, out_channels / groups, N * out_pixels)
        out = product.reshape(out_channels, n, *output_size).swapaxes(0, 1)
        return out, columns if keep_columns else None
    chunk = max(1, _COLUMN_CHUNK_VALUES // per_image)
    dtype = np.result_type(x, weight)
    out = _channel_major((n, out_channels, *output_size), dtype)
    for start in range(0, n, chunk):  # slices of the batch, each one matmul
        part, _ = conv_array(x[start : start + chunk], weight, stride, padding, dilation, groups, keep_columns=False)
        out[start : start + chunk] = part
    return out, None


def conv_transpose_array(
    grad: np.ndarray,
    weight: np.ndarray,
    input_size: tuple,
    stride: tuple,
    padding: tuple,
    dilation: tuple,
    groups: int,
) -> np.ndarray:
    """The transposed convolution: the gradient of `conv_array` with respect to its input (col2im)."""
    n, out_channels = grad.shape[:2]
    per_group, kernel_size = weight.shape[1], weight.shape[2:]
    output_size = grad.shape[2:]
    _check_output_size("conv_transpose", output_size, input_size, kernel_size, stride, padding, dilation)
    kernels = weight.reshape(groups, out_channels // groups, -1)
    # (groups, C/groups * kernel, N * out_pixels): what each column of the forward pass receives.
    column_grads = np.matmul(kernels.mT, _as_channel_major_matrix(grad, groups))
    column_grads = column_grads.reshape(groups * per_group, *kernel_size, n, *output_size)
    padded_size = tuple(s + b + a for s, (b, a) in zip(input_size, padding))
    padded = _channel_major((n, groups * per_group, *padded_size), column_grads.dtype)
    positions = itertools.product(*(range(k) for k in kernel_size))
    for position, index in zip(positions, _window_slices(kernel_size, stride, dilation, output_size)):
        padded[index] += column_grads[(slice(None), *position)].swapaxes(0, 1)
    return _crop(padded, padding, input_size)


def conv_weight_grad_array(
    x: np.ndarray,
    grad: np.ndarray,
    kernel_size: tuple,
    stride: tuple,
    padding: tuple,
    dilation: tuple,
    groups: int,
    columns: np.ndarray | None = None,
) -> np.ndarray:
    """The gradient of `conv_array` with respect to its weight: upstream gradient times the columns of `x`.

    `columns` are the forward pass's, when it kept them (im2col need not run twice).
    """
    _check_output_size("conv_weight_grad", grad.shape[2:], x.shape[2:], kernel_size, stride, padding, dilation)
    if columns is None:
        columns, _ = _columns(x, kernel_size, stride, padding, dilation, groups)
    out_channels = grad.shape[1]
    product = np.matmul(_as_channel_major_matrix(grad, groups), columns.mT)
    return product.reshape(out_channels, x.shape[1] // groups, *kernel_size)


# --------------------------------------------------------------------------------------------------------------
# Convolution: the primitives
# --------------------------------------------------------------------------------------------------------------


class Conv(Primitive):
    """Convolution (PyTorch's cross-correlation) of x (N, C, *spatial) with weight (O, C/groups, *kernel), + bias.

    Options (one entry per spatial axis): `stride`, `padding` as (before, after) pairs, `dilation`; and `groups`.
    The columns of the forward pass are kept for the weight's gradient when the weight needs one (a constant
    cache for the plain backward; under ``create_graph`` they are recomputed from the graph-connected input).
    """

    __slots__ = ()

    @staticmethod
    def forward(ctx, x, weight, bias=None, stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1):
        keep = ctx.parents[1] is not None  # the weight's gradient reuses the columns
        out, columns = conv_array(x, weight, stride, padding, dilation, groups, keep_columns=keep)
        if bias is not None:
            bias = bias.reshape((-1,) + (1,) * (out.ndim - 2))
            if bias.dtype == out.dtype:
                out += bias
            else:
                out = out + bias
        ctx.inputs = (x, weight)
        ctx._saved = (stride, padding, dilation, groups, columns)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.inputs
        stride, padding, dilation, groups, columns = ctx._saved
        edges = ctx.parents
        if type(grad) is np.ndarray and edges[0] is not None and edges[1] is not None:
            grad = _channel_major_layout(grad)  # both gradients read it as (channels, batch * pixels): one copy
        grad_x = grad_weight = grad_bias = None
        if edges[0] is not None:
            grad_x = xp.conv_transpose(grad, weight, x.shape[2:], stride, padding, dilation, groups)
        if edges[1] is not None:
            grad_weight = xp.conv_weight_grad(
                x, grad, weight.shape[2:], stride, padding, dilation, groups, columns=columns
            )
        if len(edges) == 2:
            return grad_x, grad_weight
        if edges[2] is not None:
            grad_bias = grad.sum(axis=(0, *range(2, grad.ndim)))
        return grad_x, grad_weight, grad_bias


class ConvTranspose(Primitive):
    """The transposed convolution of grad (N, O, *out) with weight (O, C/groups, *kernel): (N, C, *input_size).

    It is `Conv`'s gradient with respect to its input; its own gradients are a `Conv` (for grad) and a
    `ConvWeightGrad` (for the weight).
    """

    __slots__ = ()

    @staticmethod
    def forward(ctx, grad, weight, input_size=(), stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1):
        ctx.inputs = (grad, weight)
        ctx._saved = (input_size, stride, padding, dilation, groups)
        return conv_transpose_array(grad, weight, input_size, stride, padding, dilation, groups)

    @staticmethod
    def backward(ctx, upstream):
        grad, weight = ctx.inputs
        _, stride, padding, dilation, groups = ctx._saved
        edges = ctx.parents
        grad_grad = xp.conv(upstream, weight, stride, padding, dilation, groups) if edges[0] is not None else None
        grad_weight = None
        if edges[1] is not None:
            grad_weight = xp.conv_weight_grad(upstream, grad, weight.shape[2:], stride, padding, dilation, groups)
        return grad_grad, grad_weight


class ConvWeightGrad(Primitive):
    """The gradient of a convolution with respect to its weight, from its input x and upstream grad: (O, C/g, *k).

    Its own gradients are a `ConvTranspose` (for x) and a `Conv` (for grad).
    """

    __slots__ = ()

    @staticmethod
    def forward(ctx, x, grad, kernel_size=(), stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1):
        ctx.inputs = (x, grad)
        ctx._saved = (stride, padding, dilation, groups)
        return conv_weight_grad_array(x, grad, kernel_size, stride, padding, dilation, groups)

    @staticmethod
    def backward(ctx, upstream):
        x, grad = ctx.inputs
        stride, padding, dilation, groups = ctx._saved
        edges = ctx.parents
        grad_x = grad_grad = None
        if edges[0] is not None:
            grad_x = xp.conv_transpose(grad, upstream, x.shape[2:], stride, padding, dilation, groups)
        if edges[1] is not None:
            grad_grad = xp.conv(x, upstream, stride, padding, dilation, groups)
        return grad_x, grad_grad


# --------------------------------------------------------------------------------------------------------------
# Pooling: geometry
# --------------------------------------------------------------------------------------------------------------


def pool_geometry(
    input_size: tuple, kernel_size: tuple, stride: tuple, padding: tuple, dilation: tuple, ceil_mode: bool
) -> tuple[tuple[int, ...], tuple[tuple[int, int], ...]]:
    """The output size of a pooling, and the (before, after) padding its windows need, as PyTorch computes them.

    With `ceil_mode` the last window may hang over the end (the output size rounds up), but never starts in the
    right padding; the extra cells it covers count as padding.
    """
    output_size, pads = [], []
    for size, k, s, p, d in zip(input_size, kernel_size, stride, padding, dilation):
        span = size + 2 * p - d * (k - 1) - 1
        count = (span + (s - 1 if ceil_mode else 0)) // s + 1
        if ceil_mode and (count - 1) * s >= size + p:
            count -= 1
        needed = (count - 1) * s + d * (k - 1) + 1  # the padded length the windows reach
        output_size.append(count)
        pads.append((p, max(p, needed - size - p)))
    return tuple(output_size), tuple(pads)


def _positions_dtype(kernel_size: tuple) -> np.dtype:
    return np.dtype(np.uint8 if math.prod(kernel_size) <= 255 else np.int32)


def _windows_overlap(kernel_size: tuple, stride: tuple, dilation: tuple) -> bool:
    return any(s < d * (k - 1) + 1 for k, s, d in zip(kernel_size, stride, dilation))


# --------------------------------------------------------------------------------------------------------------
# Max pooling
# --------------------------------------------------------------------------------------------------------------


def _max_pool_array(
    x: np.ndarray, kernel_size: tuple, stride: tuple, padding: tuple, dilation: tuple, output_size: tuple
) -> tuple[np.ndarray, np.ndarray]:
    """The maxima of the windows and, for each, the kernel position of its first maximum (PyTorch's choice).

    One pass per kernel position, all of them branch-free arithmetic (``np.where`` and masked copies cost ten
    times more on random masks): positions are visited in increasing order, so the position of a strictly
    greater value is always the larger one, and ``maximum(positions, better * k)`` records it; a strict ``>``
    keeps the earliest of tied maxima. A NaN in a window makes its maximum NaN (``np.maximum`` propagates it) and
    wins its gradient, as in PyTorch (the last NaN); that rare case is fixed up afterwards.
    """
    floating = x.dtype.kind == "f"
    fill = -np.inf if floating else np.iinfo(x.dtype).min
    padded = _pad_spatial(x, padding, fill)
    slices = _window_slices(kernel_size, stride, dilation, output_size)
    best = padded[slices[0]].copy(order="K")
    dtype = _positions_dtype(kernel_size)
    positions = np.zeros(best.shape, dtype=dtype)
    better = np.empty(best.shape, dtype=bool)  # scratch, reused at every kernel position
    scratch = np.empty(best.shape, dtype=dtype)
    for index, window in enumerate(slices[1:], 1):
        candidate = padded[window]
        np.greater(candidate, best, out=better)
        np.maximum(best, candidate, out=best)
        np.multiply(better, dtype.type(index), out=scratch, dtype=dtype)
        np.maximum(positions, scratch, out=positions)
    if floating and np.isnan(np.add.reduce(best, axis=None)):
        nan_windows = np.isnan(best)
        for index, window in enumerate(slices):
            np.copyto(positions, index, where=nan_windows & np.isnan(padded[window]), casting="unsafe")
    return best, positions


def _all_finite(array: np.ndarray) -> bool:
    """True when no value is NaN or infinite (one fast pass: the sum is finite unless some value is not)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return bool(np.isfinite(np.add.reduce(array, axis=None))) or bool(np.isfinite(array).all())


def window_scatter_array(
    values: np.ndarray,
    positions: np.ndarray,
    input_size: tuple,
    kernel_size: tuple,
    stride: tuple,
    padding: tuple,
    dilation: tuple,
) -> np.ndarray:
    """Zeros of the input's shape with each value added where its window's chosen position lies (max pooling's grad).

    A value times the mask of its position is branch-free and fast, but an infinite or NaN value would leave NaN
    (inf * 0) at the positions it does not go to, so non-finite values take the slower exact selection.
    """
    n, c = values.shape[:2]
    padded_size = tuple(s + b + a for s, (b, a) in zip(input_size, padding))
    padded = _channel_major((n, c, *padded_size), values.dtype)
    slices = _window_slices(kernel_size, stride, dilation, values.shape[2:])
    overlapping = _windows_overlap(kernel_size, stride, dilation)
    finite = values.dtype.kind != "f" or _all_finite(values)
    chosen = np.empty(positions.shape, dtype=bool)  # scratch, reused at every kernel position
    for index, window in enumerate(slices):
        np.equal(positions, index, out=chosen)
        if not finite:
            share = np.where(chosen, values, 0)
        elif overlapping:
            share = np.multiply(values, chosen)
        else:  # each input cell lies in one window at most: write the share straight into its place
            np.multiply(values, chosen, out=padded[window])
            continue
        padded[window] += share
    return _crop(padded, padding, input_size)


def window_gather_array(
    x: np.ndarray, positions: np.ndarray, kernel_size: tuple, stride: tuple, padding: tuple, dilation: tuple
) -> np.ndarray:
    """For each window, the value of `x` at its chosen position: the transpose of `window_scatter_array`."""
    padded = _pad_spatial(x, padding)
    out = _channel_major((*x.shape[:2], *positions.shape[2:]), x.dtype)
    for index, window in enumerate(_window_slices(kernel_size, stride, dilation, positions.shape[2:])):
        np.copyto(out, padded[window], where=positions == index)
    return out


class MaxPool(Primitive):
    """Max pooling of x (N, C, *spatial) over windows of `kernel_size`; the first maximum takes the gradient.

    Options as PyTorch's ``max_pool2d``: `stride`, `padding` (per axis, both sides), `dilation`, `ceil_mode`.
    The winning positions are kept (a constant) and backward scatters the gradient there (`WindowScatter`).
    """

    __slots__ = ()

    @staticmethod
    def forward(ctx, x, kernel_size=(2, 2), stride=(2, 2), padding=(0, 0), dilation=(1, 1), ceil_mode=False):
        output_size, pads = pool_geometry(x.shape[2:], kernel_size, stride, padding, dilation, ceil_mode)
        out, positions = _max_pool_array(x, kernel_size, stride, pads, dilation, output_size)
        ctx._saved = (positions, x.shape[2:], kernel_size, stride, pads, dilation)
        return out

    @staticmethod
    def backward(ctx, grad):
        positions, input_size, kernel_size, stride, pads, dilation = ctx._saved
        return xp.window_scatter(grad, positions, input_size, kernel_size, stride, pads, dilation)


class WindowScatter(Primitive):
    """Each value added at its window's chosen position of a zero input (max pooling's gradient); see `MaxPool`.

    Its gradient is `WindowGather` at the same positions.
    """

    __slots__ = ()

    @staticmethod
    def forward(ctx, values, positions=None, input_size=(), kernel_size=(), stride=(), padding=(), dilation=()):
        ctx._saved = (positions, kernel_size, stride, padding, dilation)
        return window_scatter_array(values, positions, input_size, kernel_size, stride, padding, dilation)

    @staticmethod
    def backward(ctx, grad):
        positions, kernel_size, stride, padding, dilation = ctx._saved
        return xp.window_gather(grad, positions, kernel_size, stride, padding, dilation)


class WindowGather(Primitive):
    """For each window, the input's value at the window's chosen position; its gradient is `WindowScatter`."""

    __slots__ = ()

    @staticmethod
    def forward(ctx, x, positions=None, kernel_size=(), stride=(), padding=(), dilation=()):
        ctx._saved = (positions, x.shape[2:], kernel_size, stride, padding, dilation)
        return window_gather_array(x, positions, kernel_size, stride, padding, dilation)

    @staticmethod
    def backward(ctx, grad):
        positions, input_size, kernel_size, stride, padding, dilation = ctx._saved
        return xp.window_scatter(grad, positions, input_size, kernel_size, stride, padding, dilation)


# --------------------------------------------------------------------------------------------------------------
# Average pooling
# --------------------------------------------------------------------------------------------------------------


def _avg_pool_scale(
    input_size: tuple,
    kernel_size: tuple,
    stride: tuple,
    padding: tuple,
    output_size: tuple,
    count_include_pad: bool,
    divisor_override: int | None,
    dtype: np.dtype,
) -> float | np.ndarray:
    """1 / the divisor of each window, as PyTorch's avg_pool: a number when every window has the same one.

    With `count_include_pad` a window counts its cells inside the padded input (but not past it, where
    `ceil_mode` lets the last window hang over); without, only its cells inside the input.
    """
    if divisor_override is not None:
        return 1.0 / divisor_override
    counts = []
    for size, k, s, p, o in zip(input_size, kernel_size, stride, padding, output_size):
        start = np.arange(o) * s - p
        end = np.minimum(start + k, size + p)
        if not count_include_pad:
            start, end = np.maximum(start, 0), np.minimum(end, size)
        counts.append(end - start)
    divisor = counts[0].astype(np.float64)
    for count in counts[1:]:
        divisor = np.multiply.outer(divisor, count)
    if np.all(divisor == divisor.flat[0]):
        return 1.0 / float(divisor.flat[0])
    return (1.0 / divisor).astype(dtype)


def avg_pool_array(
    x: np.ndarray,
    kernel_size: tuple,
    stride: tuple,
    padding: tuple,
    ceil_mode: bool,
    count_include_pad: bool,
    divisor_override: int | None,
) -> np.ndarray:
    """PyTorch's average pooling: the sum of each window over its divisor."""
    dilation = (1,) * len(kernel_size)
    output_size, pads = pool_geometry(x.shape[2:], kernel_size, stride, padding, dilation, ceil_mode)
    padded = _pad_spatial(x, pads)
    slices = _window_slices(kernel_size, stride, dilation, output_size)
    out = padded[slices[0]].copy(order="K")
    if out.dtype.kind != "f":
        out = out.astype(np.float64)
    for window in slices[1:]:
        out += padded[window]
    out *= _avg_pool_scale(
        x.shape[2:], kernel_size, stride, padding, output_size, count_include_pad, divisor_override, out.dtype
    )
    return out


def avg_pool_transpose_array(
    grad: np.ndarray,
    input_size: tuple,
    kernel_size: tuple,
    stride: tuple,
    padding: tuple,
    ceil_mode: bool,
    count_include_pad: bool,
    divisor_override: int | None,
) -> np.ndarray:
    """The transpose of `avg_pool_array`: each window's gradient over its divisor, spread over the window."""
    dilation = (1,) * len(kernel_size)
    output_size, pads = pool_geometry(input_size, kernel_size, stride, padding, dilation, ceil_mode)
    scale = _avg_pool_scale(
        input_size, kernel_size, stride, padding, output_size, count_include_pad, divisor_override, grad.dtype
    )
    share = grad * scale
    padded_size = tuple(s + b + a for s, (b, a) in zip(input_size, pads))
    padded = _channel_major((*grad.shape[:2], *padded_size), share.dtype)
    for window in _window_slices(kernel_size, stride, dilation, output_size):
        padded[window] += share
    return _crop(padded, pads, input_size)


class AvgPool(Primitive):
    """Average pooling of x (N, C, *spatial), with PyTorch's options and divisors; its gradient is `AvgPoolTranspose`.

    Options: `kernel_size`, `stride`, `padding` (per axis, both sides), `ceil_mode`, `count_include_pad`,
    `divisor_override`.
    """

    __slots__ = ()

    @staticmethod
    def forward(
        ctx,
        x,
        kernel_size=(2, 2),
        stride=(2, 2),
        padding=(0, 0),
        ceil_mode=False,
        count_include_pad=True,
        divisor_override=None,
    ):
        options = (kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
        ctx._saved = (x.shape[2:], options)
        return avg_pool_array(x, *options)

    @staticmethod
    def backward(ctx, grad):
        input_size, options = ctx._saved
        return xp.avg_pool_transpose(grad, input_size, *options)


class AvgPoolTranspose(Primitive):
    """The transpose of `AvgPool` (its gradient): each value over its divisor, spread over its window."""

    __slots__ = ()

    @staticmethod
    def forward(
        ctx,
        grad,
        input_size=(),
        kernel_size=(2, 2),
        stride=(2, 2),
        padding=(0, 0),
        ceil_mode=False,
        count_include_pad=True,
        divisor_override=None,
    ):
        options = (kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
        ctx._saved = (options,)
        return avg_pool_transpose_array(grad, input_size, *options)

    @staticmethod
    def backward(ctx, upstream):
        (options,) = ctx._saved
        return xp.avg_pool(upstream, *options)


# --------------------------------------------------------------------------------------------------------------
# Adaptive average pooling
# --------------------------------------------------------------------------------------------------------------


def adaptive_pool_matrix(size: int, output: int, dtype: Any) -> np.ndarray:
    """(output, size): row i averages the cells from floor(i * size / output) to ceil((i + 1) * size / output)."""
    rows = np.arange(output)
    start = (rows * size) // output
    end = -((-(rows + 1) * size) // output)  # ceil division
    cells = np.arange(size)
    inside = (cells >= start[:, None]) & (cells < end[:, None])
    return (inside / (end - start)[:, None]).astype(dtype)


def _along_axes(x: Any, matrices: list, transpose: bool) -> Any:
    """Multiply every spatial axis a of `x` by ``matrices[a]`` (or its transpose): one matmul per axis.

    Written with the operators and methods that arrays and Tensors share, so it serves forward and backward.
    """
    ndim = len(x.shape)
    for offset, matrix in enumerate(matrices):
        axis = ndim - len(matrices) + offset
        operand = matrix if transpose else matrix.T
        x = x @ operand if axis == ndim - 1 else (x.swapaxes(axis, ndim - 1) @ operand).swapaxes(axis, ndim - 1)
    return x


def adaptive_avg_pool_array(x: np.ndarray, output_size: tuple) -> np.ndarray:
    """PyTorch's adaptive average pooling to `output_size` (a global mean when every size is 1)."""
    spatial = tuple(range(2, x.ndim))
    if all(size == 1 for size in output_size):
        return np.mean(x, axis=spatial, keepdims=True, dtype=None if x.dtype.kind == "f" else np.float64)
    dtype = x.dtype if x.dtype.kind == "f" else np.float64
    matrices = [adaptive_pool_matrix(size, out, dtype) for size, out in zip(x.shape[2:], output_size)]
    return _along_axes(x.astype(dtype, copy=False), matrices, transpose=False)


class AdaptiveAvgPool(Primitive):
    """Adaptive average pooling of x (N, C, *spatial) to `output_size`, with PyTorch's windows.

    Each spatial axis is averaged by a constant matrix, so forward and backward are one matmul per axis (and a
    mean, for a global pooling to size 1).
    """

    __slots__ = ()

    @staticmethod
    def forward(ctx, x, output_size=(1, 1)):
        ctx._saved = (x.shape, output_size)
        return adaptive_avg_pool_array(x, output_size)

    @staticmethod
    def backward(ctx, grad):
        shape, output_size = ctx._saved
        dtype = xp.value(grad).dtype
        if all(size == 1 for size in output_size):
            return xp.broadcast_to(grad / math.prod(shape[2:]), shape)
        matrices = [adaptive_pool_matrix(size, out, dtype) for size, out in zip(shape[2:], output_size)]
        return _along_axes(grad, matrices, transpose=True)


# --------------------------------------------------------------------------------------------------------------
# Padding
# --------------------------------------------------------------------------------------------------------------


def pad_array(x: np.ndarray, widths: tuple, value: float = 0.0) -> np.ndarray:
    """`x` with `widths[a]` = (before, after) cells of `value` added on axis a; negative widths remove cells."""
    cropped = x[tuple(slice(max(-before, 0), size - max(-after, 0)) for size, (before, after) in zip(x.shape, widths))]
    shape = tuple(size + max(before, 0) + max(after, 0) for size, (before, after) in zip(cropped.shape, widths))
    out = np.zeros(shape, dtype=x.dtype) if value == 0 else np.full(shape, value, dtype=x.dtype)
    interior = tuple(slice(max(before, 0), max(before, 0) + size) for size, (before, _) in zip(cropped.shape, widths))
    out[interior] = cropped
    return out


class Pad(Primitive):
    """Constant padding: `widths` holds a (before, after) pair per axis (negative crops); the gradient crops back."""

    __slots__ = ()

    @staticmethod
    def forward(ctx, x, widths=(), value=0.0):
        ctx._saved = (widths,)
        return pad_array(x, widths, value)

    @staticmethod
    def backward(ctx, grad):
        (widths,) = ctx._saved
        if all(before >= 0 and after >= 0 for before, after in widths):  # only padded: a view of grad
            return grad[tuple(slice(before, size - after) for size, (before, after) in zip(grad.shape, widths))]
        return xp.pad(grad, tuple((-before, -after) for before, after in widths))
