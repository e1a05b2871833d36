"""Functions behind the layers and losses, with PyTorch's names: ``import tinygrad_nn.nn.functional as F``.

Each checks its arguments in the caller's terms (names, shapes, allowed values), then calls one primitive.
Inputs may be Tensors or arrays; targets and weights never need a gradient, but a target Tensor that requires
grad gets one.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import functions
from ..tensor import Tensor

__all__ = [
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "linear",
    "log_softmax",
    "mse_loss",
    "relu",
    "sigmoid",
    "softmax",
    "tanh",
]

_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(function: str, reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{function}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _array(value: Any) -> Any:
    """The array of a Tensor (for arguments that never get a gradient, such as weights)."""
    if value is None:
        return None
    return value.data if isinstance(value, Tensor) else np.asarray(value)


def _shape(value: Any) -> tuple:
    # np.shape works on anything, but goes through Python; Tensors and arrays know their shape.
    return value.shape if isinstance(value, (Tensor, np.ndarray)) else np.shape(value)


def _check_same_shape(function: str, prediction: Any, target: Any) -> None:
    if _shape(prediction) != _shape(target):
        raise ValueError(
            f"{function}: input of shape {np.shape(prediction)} and target of shape {np.shape(target)} must have "
            "the same shape (broadcasting them is almost always a bug, e.g. (N, 1) against (N,))"
        )


def _elementwise_weight(function: str, argument: str, weight: Any, input: Any) -> Any:
    """A weight that rescales each element: it must broadcast to the input's shape."""
    weight = _array(weight)
    if weight is not None:
        try:
            fits = np.broadcast_shapes(weight.shape, np.shape(input)) == np.shape(input)
        except ValueError:
            fits = False
        if not fits:
            raise ValueError(
                f"{function}: {argument} of shape {weight.shape} does not broadcast to the input's shape "
                f"{np.shape(input)}"
            )
    return weight


def linear(input: Any, weight: Any, bias: Any = None) -> Tensor:
    """``input @ weight.T + bias``, with PyTorch's layout: weight is (out_features, in_features)."""
    if bias is None:
        return functions.Linear.apply(input, weight)
    return functions.Linear.apply(input, weight, bias)


def sigmoid(input: Any) -> Tensor:
    """``1 / (1 + exp(-x))``, elementwise."""
    return functions.Sigmoid.apply(input)


def relu(input: Any) -> Tensor:
    """``max(x, 0)``, elementwise."""
    return functions.ReLU.apply(input)


def tanh(input: Any) -> Tensor:
    """Hyperbolic tangent, elementwise."""
    return functions.Tanh.apply(input)


def softmax(input: Any, axis: int = -1, *, dim: int | None = None) -> Tensor:
    """Softmax along `axis` (or PyTorch's `dim`), computed stably."""
    return functions.Softmax.apply(input, axis=axis if dim is None else dim)


def log_softmax(input: Any, axis: int = -1, *, dim: int | None = None) -> Tensor:
    """Log-softmax along `axis` (or PyTorch's `dim`), computed stably."""
    return functions.LogSoftmax.apply(input, axis=axis if dim is None else dim)


def mse_loss(input: Any, target: Any, reduction: str = "mean") -> Tensor:
    """Mean squared error ``(input - target) ** 2``, reduced by `reduction` ('mean', 'sum' or 'none')."""
    # The checks are inline (not the helpers) because this runs once per training step.
    if reduction not in _REDUCTIONS:
        _check_reduction("mse_loss", reduction)
    input_shape = input.data.shape if isinstance(input, Tensor) else np.shape(input)
    if isinstance(target, Tensor):
        target_shape = target.data.shape
    else:
        target_shape = target.shape if isinstance(target, np.ndarray) else np.shape(target)
    if input_shape != target_shape:
        _check_same_shape("mse_loss", input, target)
    return functions.MeanSquaredError.apply(input, target, reduction=reduction)


def binary_cross_entropy(input: Any, target: Any, weight: Any = None, reduction: str = "mean") -> Tensor:
    """Binary cross-entropy of probabilities in [0, 1] against targets in [0, 1] (logs clamped at -100)."""
    _check_reduction("binary_cross_entropy", reduction)
    _check_same_shape("binary_cross_entropy", input, target)
    weight = _elementwise_weight("binary_cross_entropy", "weight", weight, input)
    return functions.BinaryCrossEntropy.apply(input, target, weight=weight, reduction=reduction)


def binary_cross_entropy_with_logits(
    input: Any, target: Any, weight: Any = None, reduction: str = "mean", pos_weight: Any = None
) -> Tensor:
    """Binary cross-entropy of raw scores (the sigmoid is applied inside, stably)."""
    _check_reduction("binary_cross_entropy_with_logits", reduction)
    _check_same_shape("binary_cross_entropy_with_logits", input, target)
    function = "binary_cross_entropy_with_logits"
    weight = _elementwise_weight(function, "weight", weight, input)
    pos_weight = _elementwise_weight(function, "pos_weight", pos_weight, input)
    return functions.BinaryCrossEntropyWithLogits.apply(
        input, target, weight=weight, pos_weight=pos_weight, reduction=reduction
    )


def cross_entropy(
    input: Any, target: Any, weight: Any = None, ignore_index: int = -100, reduction: str = "mean"
) -> Tensor:
    """Cross-entropy of raw scores (logits) against class indices or class probabilities, as PyTorch's.

    `input` has the classes on axis 1: (N, C), or (N, C, d1, ...), or a single row (C,). `target` is either
    integer class indices of shape (N,) (or (N, d1, ...), or a scalar for one row), given as a numpy array or
    a Tensor, or probabilities with the input's shape. `weight` (C,) rescales each class; targets equal to
    `ignore_index` are left out, and 'mean' divides by the summed weights of the targets.
    """
    _check_reduction("cross_entropy", reduction)
    logits_shape = np.shape(input)
    if len(logits_shape) == 0:
        raise ValueError("cross_entropy: input must have a class axis, got a 0-d input")
    classes = logits_shape[1] if len(logits_shape) > 1 else logits_shape[0]
    weight = _array(weight)
    if weight is not None and weight.shape != (classes,):
        raise ValueError(f"cross_entropy: weight must have shape ({classes},), one per class, got {weight.shape}")
    target_array = target.data if isinstance(target, Tensor) else np.asarray(target)
    if target_array.dtype.kind in "iu":
        expected = logits_shape[:1] + logits_shape[2:] if len(logits_shape) > 1 else ()
        if target_array.shape != expected:
            raise ValueError(
                f"cross_entropy: class-index targets for input of shape {logits_shape} must have shape {expected}, "
                f"got {target_array.shape}"
            )
        return functions.CrossEntropy.apply(
            input, target_array, weight=weight, ignore_index=ignore_index, reduction=reduction
        )
    if target_array.dtype.kind != "f":
        raise TypeError(
            f"cross_entropy: targets must be integer class indices or float probabilities, got {target_array.dtype}"
        )
    if target_array.shape != logits_shape:
        raise ValueError(
            f"cross_entropy: float targets are class probabilities and need the input's shape {logits_shape}, "
            f"got {target_array.shape} (class indices must be an integer array)"
        )
    return functions.CrossEntropyWithProbabilities.apply(input, target, weight=weight, reduction=reduction)


# ---------------------------------------------------------------------------------------------------------------
# Convolution, pooling, normalisation, dropout, embedding and padding (the layers after Linear)
# ---------------------------------------------------------------------------------------------------------------

__all__ += [
    "adaptive_avg_pool1d",
    "adaptive_avg_pool2d",
    "avg_pool1d",
    "avg_pool2d",
    "batch_norm",
    "conv1d",
    "conv2d",
    "dropout",
    "embedding",
    "layer_norm",
    "max_pool1d",
    "max_pool2d",
    "pad",
]


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _ints(function: str, name: str, value: Any, count: int, minimum: int) -> tuple[int, ...]:
    """An int or a sequence of `count` ints (each >= minimum) as a tuple of `count` ints, as PyTorch's ``_pair``."""
    values = tuple(value) if isinstance(value, (tuple, list)) else (value,) * count
    if len(values) != count or not all(_is_int(v) and v >= minimum for v in values):
        kind = "positive" if minimum == 1 else "non-negative"
        raise ValueError(
            f"{function}: {name} must be a {kind} integer or {count} of them, got {value!r}"
            if count > 1
            else f"{function}: {name} must be a {kind} integer, got {value!r}"
        )
    return tuple(int(v) for v in values)


def _as_input(value: Any) -> Any:
    """A Tensor as it is; anything else (a list, a number) as an ndarray, which the primitives take."""
    return value if isinstance(value, (Tensor, np.ndarray)) else np.asarray(value)


def _spatial_input(function: str, input: Any, spatial: int) -> tuple[Any, bool]:
    """The input with a batch axis (added when it is unbatched, as PyTorch allows), and whether one was added."""
    input = _as_input(input)
    shape = _shape(input)
    if len(shape) == spatial + 2:
        return input, False
    if len(shape) == spatial + 1:
        return functions.Reshape.apply(input, shape=(1, *shape)), True
    axes = "N, C, " + ", ".join("DHW"[3 - spatial :][i] if spatial > 1 else "L" for i in range(spatial))
    raise ValueError(
        f"{function}: expected input of shape ({axes}) or, unbatched, ({axes[3:]}), got shape {shape} "
        f"({len(shape)} axes)"
    )


def _unbatch(output: Tensor, added: bool) -> Tensor:
    return functions.Reshape.apply(output, shape=output.shape[1:]) if added else output


def conv_padding(
    function: str, padding: Any, kernel_size: tuple, stride: tuple, dilation: tuple
) -> tuple[tuple[int, int], ...]:
    """PyTorch's `padding` argument as a (before, after) pair per spatial axis.

    An int or a tuple pads both sides; ``"valid"`` is no padding; ``"same"`` pads so that the output has the
    input's size (stride 1 only), the odd cell going after, as PyTorch.
    """
    spatial = len(kernel_size)
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * spatial
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(
                    f"{function}: padding='same' is not supported for strided convolutions (stride {stride})"
                )
            totals = [d * (k - 1) for k, d in zip(kernel_size, dilation)]
            return tuple((total // 2, total - total // 2) for total in totals)
        raise ValueError(f"{function}: padding must be 'valid', 'same', an integer or a tuple, got {padding!r}")
    return tuple((p, p) for p in _ints(function, "padding", padding, spatial, 0))


def _conv(
    function: str, spatial: int, input: Any, weight: Any, bias: Any, stride: Any, padding: Any, dilation: Any,
    groups: int,
) -> Tensor:  # fmt: skip
    x, added = _spatial_input(function, input, spatial)
    weight_shape = _shape(weight)
    if len(weight_shape) != spatial + 2:
        raise ValueError(
            f"{function}: weight must have shape (out_channels, in_channels / groups, *kernel_size), "
            f"{spatial + 2} axes, got {weight_shape}"
        )
    if 0 in weight_shape:
        # PyTorch refuses these too: an empty kernel has no window to slide, and no output channel is no layer.
        raise ValueError(
            f"{function}: weight of shape {weight_shape} has a zero size; out_channels, in_channels / groups and "
            "every kernel size must be at least 1"
        )
    if not _is_int(groups) or groups < 1:
        raise ValueError(f"{function}: groups must be a positive integer, got {groups!r}")
    channels = _shape(x)[1]
    if channels != weight_shape[1] * groups:
        raise ValueError(
            f"{function}: input of shape {_shape(input)} has {channels} channels, but the weight of shape "
            f"{weight_shape} with groups={groups} expects {weight_shape[1] * groups}"
        )
    if weight_shape[0] % groups:
        raise ValueError(f"{function}: out_channels ({weight_shape[0]}) must be divisible by groups ({groups})")
    if bias is not None and _shape(bias) != (weight_shape[0],):
        raise ValueError(
            f"{function}: bias must have shape ({weight_shape[0]},), one per output channel, got {_shape(bias)}"
        )
    stride = _ints(function, "stride", stride, spatial, 1)
    dilation = _ints(function, "dilation", dilation, spatial, 1)
    kernel_size = tuple(weight_shape[2:])
    pads = conv_padding(function, padding, kernel_size, stride, dilation)
    for size, k, (before, after), d in zip(_shape(x)[2:], kernel_size, pads, dilation):
        if size + before + after < d * (k - 1) + 1:
            raise ValueError(
                f"{function}: the kernel {kernel_size} (dilation {dilation}) is larger than the padded input "
                f"(input shape {_shape(input)}, padding {padding!r})"
            )
    options = {"stride": stride, "padding": pads, "dilation": dilation, "groups": int(groups)}
    if bias is None:
        return _unbatch(functions.Conv.apply(x, weight, **options), added)
    return _unbatch(functions.Conv.apply(x, weight, bias, **options), added)


def conv2d(
    input: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0, dilation: Any = 1, groups: int = 1
) -> Tensor:
    """2-D convolution (cross-correlation, as PyTorch) of input (N, C, H, W) with weight (O, C/groups, kH, kW).

    `stride`, `padding` and `dilation` are an int or a pair; `padding` may also be ``"same"`` or ``"valid"``.
    An unbatched input (C, H, W) gives an unbatched output.
    """
    return _conv("conv2d", 2, input, weight, bias, stride, padding, dilation, groups)


def conv1d(
    input: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0, dilation: Any = 1, groups: int = 1
) -> Tensor:
    """1-D convolution of input (N, C, L) with weight (O, C/groups, k); the options as `conv2d`'s."""
    return _conv("conv1d", 1, input, weight, bias, stride, padding, dilation, groups)


def _pool_options(
    function: str, spatial: int, input_shape: tuple, kernel_size: Any, stride: Any, padding: Any, dilation: Any,
    ceil_mode: bool,
) -> tuple:  # fmt: skip
    kernel = _ints(function, "kernel_size", kernel_size, spatial, 1)
    strides = kernel if stride is None or (isinstance(stride, (tuple, list)) and not stride) else stride
    strides = _ints(function, "stride", strides, spatial, 1)
    pads = _ints(function, "padding", padding, spatial, 0)
    dilations = _ints(function, "dilation", dilation, spatial, 1)
    for p, k, d in zip(pads, kernel, dilations):
        if p > (d * (k - 1) + 1) // 2:
            raise ValueError(
                f"{function}: padding should be at most half the (dilated) kernel size, got padding={padding!r} "
                f"with kernel_size={kernel_size!r}" + (f" and dilation={dilation!r}" if d > 1 else "")
            )
    output_size, _ = functions.conv.pool_geometry(input_shape[2:], kernel, strides, pads, dilations, bool(ceil_mode))
    if min(output_size) < 1:
        raise ValueError(
            f"{function}: the window {kernel} is larger than the padded input (input shape {input_shape}, "
            f"padding {pads}), so there is no output"
        )
    return kernel, strides, pads, dilations


def _max_pool(
    function: str, spatial: int, input: Any, kernel_size: Any, stride: Any, padding: Any, dilation: Any,
    ceil_mode: bool, return_indices: bool,
) -> Any:  # fmt: skip
    x, added = _spatial_input(function, input, spatial)
    dtype = x.dtype
    if dtype.kind not in "fiu":
        raise TypeError(f"{function}: input must hold numbers (floats or integers), got dtype {dtype}")
    kernel, strides, pads, dilations = _pool_options(
        function, spatial, _shape(x), kernel_size, stride, padding, dilation, ceil_mode
    )
    options = {"kernel_size": kernel, "stride": strides, "padding": pads, "dilation": dilations}
    out = _unbatch(functions.MaxPool.apply(x, ceil_mode=bool(ceil_mode), **options), added)
    if not return_indices:
        return out
    indices = _max_pool_indices(_array(x), kernel, strides, pads, dilations, bool(ceil_mode))
    return out, Tensor(indices[0] if added else indices)


def _max_pool_indices(x: np.ndarray, kernel: tuple, stride: tuple, padding: tuple, dilation: tuple, ceil: bool) -> Any:
    """PyTorch's `return_indices`: each maximum's flat index in its channel's (unpadded) input plane."""
    output_size, pads = functions.conv.pool_geometry(x.shape[2:], kernel, stride, padding, dilation, ceil)
    _, positions = functions.conv._max_pool_array(x, kernel, stride, pads, dilation, output_size)
    offsets = np.unravel_index(positions, kernel)
    flat = np.zeros(positions.shape, dtype=np.int64)
    for axis, (size, s, p, d) in enumerate(zip(x.shape[2:], stride, padding, dilation)):
        start = (np.arange(output_size[axis]) * s - p).reshape((-1,) + (1,) * (len(kernel) - axis - 1))
        flat = flat * size + start + offsets[axis].astype(np.int64) * d
    return flat


def max_pool2d(
    input: Any, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1, ceil_mode: bool = False,
    return_indices: bool = False,
) -> Any:  # fmt: skip
    """2-D max pooling of input (N, C, H, W) (or (C, H, W)); the first maximum of a window takes its gradient.

    `stride` defaults to `kernel_size`; `padding` (at most half the kernel) pads with -inf. With
    `return_indices` it also returns each maximum's flat index in its input plane, as PyTorch.
    """
    return _max_pool("max_pool2d", 2, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool1d(
    input: Any, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1, ceil_mode: bool = False,
    return_indices: bool = False,
) -> Any:  # fmt: skip
    """1-D max pooling of input (N, C, L) (or (C, L)); the options as `max_pool2d`'s."""
    return _max_pool("max_pool1d", 1, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def _avg_pool(
    function: str, spatial: int, input: Any, kernel_size: Any, stride: Any, padding: Any, ceil_mode: bool,
    count_include_pad: bool, divisor_override: Any,
) -> Tensor:  # fmt: skip
    x, added = _spatial_input(function, input, spatial)
    kernel, strides, pads, _ = _pool_options(function, spatial, _shape(x), kernel_size, stride, padding, 1, ceil_mode)
    if divisor_override is not None and (not _is_int(divisor_override) or divisor_override == 0):
        raise ValueError(f"{function}: divisor_override must be a non-zero integer or None, got {divisor_override!r}")
    out = functions.AvgPool.apply(
        x,
        kernel_size=kernel,
        stride=strides,
        padding=pads,
        ceil_mode=bool(ceil_mode),
        count_include_pad=bool(count_include_pad),
        divisor_override=None if divisor_override is None else int(divisor_override),
    )
    return _unbatch(out, added)


def avg_pool2d(
    input: Any, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
    count_include_pad: bool = True, divisor_override: int | None = None,
) -> Tensor:  # fmt: skip
    """2-D average pooling of input (N, C, H, W) (or (C, H, W)), with PyTorch's options and divisors."""
    return _avg_pool(
        "avg_pool2d", 2, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
    )


def avg_pool1d(
    input: Any, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> Tensor:  # fmt: skip
    """1-D average pooling of input (N, C, L) (or (C, L)); the options as `avg_pool2d`'s."""
    return _avg_pool("avg_pool1d", 1, input, kernel_size, stride, padding, ceil_mode, count_include_pad, None)


def _adaptive_avg_pool(function: str, spatial: int, input: Any, output_size: Any) -> Tensor:
    x, added = _spatial_input(function, input, spatial)
    sizes = tuple(output_size) if isinstance(output_size, (tuple, list)) else (output_size,) * spatial
    if len(sizes) != spatial or not all(s is None or (_is_int(s) and s >= 1) for s in sizes):
        raise ValueError(
            f"{function}: output_size must be a positive integer or {spatial} of them (None keeps the input's "
            f"size), got {output_size!r}"
        )
    if 0 in _shape(x)[2:]:
        raise ValueError(
            f"{function}: input of shape {_shape(x)} has a spatial size of 0, so there is nothing to average (only "
            "the batch and channel axes may be empty)"
        )
    resolved = tuple(int(size if out is None else out) for size, out in zip(_shape(x)[2:], sizes))
    return _unbatch(functions.AdaptiveAvgPool.apply(x, output_size=resolved), added)


def adaptive_avg_pool2d(input: Any, output_size: Any) -> Tensor:
    """Average pooling of input (N, C, H, W) to `output_size` (an int, or a pair; None keeps that size).

    Each output cell averages the cells ``floor(i * H / out)`` to ``ceil((i + 1) * H / out)``, as PyTorch;
    ``output_size=1`` is the global average pooling at the end of a CNN.
    """
    return _adaptive_avg_pool("adaptive_avg_pool2d", 2, input, output_size)


def adaptive_avg_pool1d(input: Any, output_size: Any) -> Tensor:
    """Average pooling of input (N, C, L) to `output_size` cells, as `adaptive_avg_pool2d`."""
    return _adaptive_avg_pool("adaptive_avg_pool1d", 1, input, output_size)


def batch_norm(
    input: Any, running_mean: Any, running_var: Any, weight: Any = None, bias: Any = None, training: bool = False,
    momentum: float = 0.1, eps: float = 1e-5,
) -> Tensor:  # fmt: skip
    """Batch norm of input (N, C, ...) per channel, as ``torch.nn.functional.batch_norm``.

    With ``training=True`` it uses the batch's statistics and updates `running_mean` and `running_var` (arrays
    or Tensors, changed in place; either may be None) with `momentum`; with False it uses them.
    """
    input = _as_input(input)
    shape = _shape(input)
    if len(shape) < 2:
        raise ValueError(f"batch_norm: input must have shape (N, C, ...), got {shape}")
    channels = shape[1]
    running = []
    for name, value in (("running_mean", running_mean), ("running_var", running_var)):
        array = _array(value)
        if array is not None and array.shape != (channels,):
            raise ValueError(f"batch_norm: {name} must have shape ({channels},), one per channel, got {array.shape}")
        running.append(array)
    for name, value in (("weight", weight), ("bias", bias)):
        if value is not None and _shape(value) != (channels,):
            raise ValueError(f"batch_norm: {name} must have shape ({channels},), one per channel, got {_shape(value)}")
    if not training and (running[0] is None or running[1] is None):
        raise ValueError("batch_norm: with training=False it normalises with running_mean and running_var; give both")
    if training and int(np.prod(shape)) // max(channels, 1) <= 1:
        raise ValueError(
            f"batch_norm: expected more than 1 value per channel when training, got input of shape {shape}"
        )
    return functions.BatchNorm.apply(
        input, weight, bias, running_mean=running[0], running_var=running[1], training=bool(training),
        momentum=float(momentum), eps=float(eps),
    )  # fmt: skip


def _normalized_shape(function: str, normalized_shape: Any) -> tuple[int, ...]:
    shape = tuple(normalized_shape) if isinstance(normalized_shape, (tuple, list)) else (normalized_shape,)
    if not shape or not all(_is_int(size) and size >= 1 for size in shape):
        raise ValueError(
            f"{function}: normalized_shape must be a positive integer or a tuple of them, got {normalized_shape!r}"
        )
    return tuple(int(size) for size in shape)


def layer_norm(input: Any, normalized_shape: Any, weight: Any = None, bias: Any = None, eps: float = 1e-5) -> Tensor:
    """Normalise each sample over its last axes, whose shape must be `normalized_shape`, as PyTorch's layer norm."""
    normalized = _normalized_shape("layer_norm", normalized_shape)
    input = _as_input(input)
    shape = _shape(input)
    if tuple(shape[len(shape) - len(normalized) :]) != normalized or len(shape) < len(normalized):
        raise ValueError(
            f"layer_norm: normalized_shape {normalized} must be the last axes of the input, got input of shape {shape}"
        )
    for name, value in (("weight", weight), ("bias", bias)):
        if value is not None and tuple(_shape(value)) != normalized:
            raise ValueError(f"layer_norm: {name} must have shape {normalized}, got {_shape(value)}")
    return functions.LayerNorm.apply(input, weight, bias, normalized_ndim=len(normalized), eps=float(eps))


def _check_probability(function: str, p: Any) -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)) or not 0 <= p <= 1:
        raise ValueError(f"{function}: the dropout probability p must be between 0 and 1, got {p!r}")
    return float(p)


def dropout(
    input: Any, p: float = 0.5, training: bool = True, inplace: bool = False, *,
    generator: np.random.Generator | None = None,
) -> Tensor:  # fmt: skip
    """Zero each element with probability `p` and scale the rest by ``1 / (1 - p)``; the input itself if not training.

    The mask comes from `generator` or the default one (`tinygrad_nn.manual_seed`). `inplace` is accepted for
    PyTorch's signature; the result is always a new tensor.
    """
    p = _check_probability("dropout", p)
    input = _as_input(input)
    if not training or p == 0:
        return input if isinstance(input, Tensor) else Tensor(input)
    return functions.Dropout.apply(input, p=p, generator=generator)


def embedding(
    input: Any, weight: Any, padding_idx: int | None = None, max_norm: float | None = None, norm_type: float = 2.0,
    scale_grad_by_freq: bool = False, sparse: bool = False,
) -> Tensor:  # fmt: skip
    """The rows of `weight` (num_embeddings, embedding_dim) at the integer `input` indices: shape (*input, dim).

    The row `padding_idx` gets no gradient. `max_norm`, `scale_grad_by_freq` and `sparse` are not supported.
    """
    if max_norm is not None or scale_grad_by_freq or sparse:
        raise NotImplementedError(
            "embedding: max_norm, scale_grad_by_freq and sparse are not supported; leave them at their defaults"
        )
    weight_shape = _shape(weight)
    if len(weight_shape) != 2:
        raise ValueError(f"embedding: weight must be a table (num_embeddings, embedding_dim), got shape {weight_shape}")
    indices = _array(input)
    if indices.dtype.kind not in "iu":
        raise TypeError(f"embedding: input must hold integer indices, got dtype {indices.dtype}")
    padding_idx = _padding_index("embedding", padding_idx, weight_shape[0])
    return functions.Embedding.apply(input if isinstance(input, Tensor) else indices, weight, padding_idx=padding_idx)


def _padding_index(function: str, padding_idx: Any, rows: int) -> int | None:
    if padding_idx is None:
        return None
    if not _is_int(padding_idx) or not -rows <= padding_idx < rows:
        raise ValueError(
            f"{function}: padding_idx must be an index into the {rows} rows (or None), got {padding_idx!r}"
        )
    return int(padding_idx) % rows


_PAD_MODES = ("constant", "reflect", "replicate", "circular")


def pad(input: Any, pad: Any, mode: str = "constant", value: float | None = None) -> Tensor:
    """Pad the last axes: `pad` is (left, right) for the last axis, then (top, bottom) for the one before, ...

    `mode` is ``"constant"`` (with `value`, default 0; negative widths crop), ``"reflect"`` (mirrored without
    the edge), ``"replicate"`` (the edge repeated) or ``"circular"`` (wrapped around), as
    ``torch.nn.functional.pad``.
    """
    input = _as_input(input)
    shape = _shape(input)
    widths = tuple(pad) if isinstance(pad, (tuple, list)) else None
    if widths is None or len(widths) % 2 or not all(_is_int(w) for w in widths) or len(widths) > 2 * len(shape):
        raise ValueError(
            f"pad: pad must be a sequence of an even number of integers, (before, after) per axis from the last, at "
            f"most {2 * len(shape)} for an input of shape {shape}, got {pad!r}"
        )
    if mode not in _PAD_MODES:
        raise ValueError(f"pad: mode must be one of {', '.join(_PAD_MODES)}, got {mode!r}")
    pairs = [(0, 0)] * len(shape)
    for position in range(len(widths) // 2):
        pairs[len(shape) - 1 - position] = (int(widths[2 * position]), int(widths[2 * position + 1]))
    for size, (before, after) in zip(shape, pairs):
        if size + before + after < 0 or (mode != "constant" and size + min(before, 0) + min(after, 0) < 1):
            raise ValueError(
                f"pad: widths {widths} would leave no cells of an axis of size {size} (input shape {shape})"
            )
    if mode == "constant":
        fill = 0.0 if value is None else float(value)
        return functions.Pad.apply(input, widths=tuple(pairs), value=fill)
    if value not in (None, 0):
        raise ValueError(f"pad: value applies to mode 'constant' only, got value={value!r} with mode {mode!r}")
    out = input if isinstance(input, Tensor) else Tensor(input)
    for axis, (size, (before, after)) in enumerate(zip(shape, pairs)):
        if before == 0 and after == 0:
            continue
        if mode != "circular" and (before < 0 or after < 0):
            raise ValueError(f"pad: negative widths crop in modes 'constant' and 'circular' only, got {widths}")
        if mode == "reflect" and (before >= size or after >= size):
            raise ValueError(
                f"pad: reflect padding must be smaller than the axis it pads, got ({before}, {after}) for an axis "
                f"of size {size} (input shape {shape})"
            )
        if mode == "circular" and (before > size or after > size):
            raise ValueError(
                f"pad: circular padding can wrap around once at most, got ({before}, {after}) for an axis of size "
                f"{size} (input shape {shape})"
            )
        cells = np.arange(-before, size + after)
        if mode == "reflect":
            cells = np.abs(cells)
            cells = np.where(cells >= size, 2 * (size - 1) - cells, cells)
        elif mode == "replicate":
            cells = np.clip(cells, 0, size - 1)
        else:
            cells = cells % size
        out = functions.Index.apply(out, index=(slice(None),) * axis + (cells,))
    return out
