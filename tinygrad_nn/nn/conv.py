"""Convolution layers: `Conv1d` and `Conv2d`, with PyTorch's arguments, initialisation and state-dict keys.

Also `Unflatten`, which turns a batch of flat images (N, 784) back into (N, 1, 28, 28) for the first convolution.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import functions
from ..dtypes import DTypeLike, get_default_dtype
from ..tensor import Tensor
from . import functional as F  # noqa: N812 - PyTorch's customary name
from . import init
from .module import Module, Parameter

__all__ = ["Conv1d", "Conv2d"]

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _ints(layer: str, name: str, value: Any, count: int, minimum: int) -> tuple[int, ...]:
    values = tuple(value) if isinstance(value, (tuple, list)) else (value,) * count
    if len(values) != count or not all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= minimum for v in values
    ):
        kind = "positive" if minimum == 1 else "non-negative"
        plural = f" or {count} of them" if count > 1 else ""
        raise ValueError(f"{layer}: {name} must be a {kind} integer{plural}, got {value!r}")
    return tuple(int(v) for v in values)


class _ConvNd(Module):
    """What Conv1d and Conv2d share: arguments, parameters, initialisation, the forward pass and the repr."""

    _spatial = 2

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        dtype: DTypeLike | None = None,
    ) -> None:
        super().__init__()
        name, spatial = type(self).__name__, self._spatial
        self.in_channels = _ints(name, "in_channels", in_channels, 1, 1)[0]
        self.out_channels = _ints(name, "out_channels", out_channels, 1, 1)[0]
        self.groups = _ints(name, "groups", groups, 1, 1)[0]
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise ValueError(
                f"{name}: in_channels ({in_channels}) and out_channels ({out_channels}) must both be divisible by "
                f"groups ({groups})"
            )
        self.kernel_size = _ints(name, "kernel_size", kernel_size, spatial, 1)
        self.stride = _ints(name, "stride", stride, spatial, 1)
        self.dilation = _ints(name, "dilation", dilation, spatial, 1)
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"{name}: padding_mode must be one of {', '.join(_PADDING_MODES)}, got {padding_mode!r}")
        self.padding_mode = padding_mode
        # PyTorch keeps `padding` as given ('same', 'valid') or as a tuple; the pairs are what the op takes.
        self._pads = F.conv_padding(name, padding, self.kernel_size, self.stride, self.dilation)
        self.padding = padding if isinstance(padding, str) else tuple(before for before, _ in self._pads)
        # For a padding_mode other than zeros the input is padded first (F.pad's order: last axis first).
        self._mode_pad = tuple(width for pair in reversed(self._pads) for width in pair)
        dtype = get_default_dtype() if dtype is None else np.dtype(dtype)
        shape = (self.out_channels, self.in_channels // self.groups, *self.kernel_size)
        self.weight = Parameter(np.empty(shape, dtype=dtype))
        self.bias = Parameter(np.empty(self.out_channels, dtype=dtype)) if bias else None
        self.reset_parameters()

    def reset_parameters(self, generator: np.random.Generator | None = None) -> None:
        """Draw new weights as PyTorch does: kaiming_uniform_ with a=sqrt(5), the bias uniform in +-1/sqrt(fan_in).

        Both are uniform in +-1/sqrt(fan_in), fan_in = in_channels / groups * kernel cells; the draws come from
        `generator` or the default generator (`tinygrad_nn.manual_seed`).
        """
        init.kaiming_uniform_(self.weight, a=math.sqrt(5), generator=generator)
        if self.bias is not None:
            fan_in = self.weight.shape[1] * math.prod(self.kernel_size)
            bound = 1 / math.sqrt(fan_in)
            init.uniform_(self.bias, -bound, bound, generator)

    def _check(self, shape: tuple) -> None:
        name, spatial = type(self).__name__, self._spatial
        axes = "(N, C, L)" if spatial == 1 else "(N, C, H, W)"
        if len(shape) not in (spatial + 1, spatial + 2):
            raise ValueError(
                f"{name}(in_channels={self.in_channels}) takes input of shape {axes} or, unbatched, without N; "
                f"got shape {shape}"
            )
        channels = shape[-spatial - 1]
        if channels != self.in_channels:
            raise ValueError(
                f"{name}(in_channels={self.in_channels}) got input with {channels} channels (input shape {shape})"
            )
        for size, k, (before, after), d in zip(shape[-spatial:], self.kernel_size, self._pads, self.dilation):
            if size + before + after < d * (k - 1) + 1:
                raise ValueError(
                    f"{name}(kernel_size={self.kernel_size}) got input of shape {shape}, smaller than its kernel "
                    f"(dilation {self.dilation}) even with padding {self.padding!r}"
                )

    def forward(self, x: Any) -> Tensor:
        """Convolve `x` (N, C, *spatial), or an unbatched (C, *spatial)."""
        if not isinstance(x, (Tensor, np.ndarray)):
            x = np.asarray(x)
        shape = x.shape
        if len(shape) != self._spatial + 2 or shape[1] != self.in_channels:
            self._check(shape)
            if len(shape) == self._spatial + 1:  # unbatched: as PyTorch, through a batch of one
                out = self.forward(functions.Reshape.apply(x, shape=(1, *shape)))
                return functions.Reshape.apply(out, shape=out.shape[1:])
        pads = self._pads
        if self.padding_mode != "zeros" and any(before or after for before, after in pads):
            x = F.pad(x, self._mode_pad, mode=self.padding_mode)
            pads = ((0, 0),) * self._spatial
        options = {"stride": self.stride, "padding": pads, "dilation": self.dilation, "groups": self.groups}
        try:
            if self.bias is None:
                return functions.Conv.apply(x, self.weight, **options)
            return functions.Conv.apply(x, self.weight, self.bias, **options)
        except ValueError:
            self._check(shape)
            raise

    def extra_repr(self) -> str:
        """The layer's settings, as PyTorch prints them."""
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0,) * self._spatial:
            text += f", padding={self.padding}"
        if self.dilation != (1,) * self._spatial:
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        if self.padding_mode != "zeros":
            text += f", padding_mode={self.padding_mode}"
        return text


class Conv2d(_ConvNd):
    """2-D convolution over (N, C, H, W), as ``torch.nn.Conv2d``: weight (out, in/groups, kH, kW), bias (out,).

    `kernel_size`, `stride`, `padding` and `dilation` are an int or a pair; `padding` may be ``"same"`` (stride 1)
    or ``"valid"``; `padding_mode` is ``"zeros"``, ``"reflect"``, ``"replicate"`` or ``"circular"``. Initialised
    as PyTorch: weight and bias uniform in +-1/sqrt(fan_in)::

        conv = nn.Conv2d(1, 32, kernel_size=3, padding=1)
        features = conv(images)            # (64, 1, 28, 28) -> (64, 32, 28, 28)
    """

    _spatial = 2


class Conv1d(_ConvNd):
    """1-D convolution over (N, C, L), as ``torch.nn.Conv1d``: weight (out, in/groups, k), bias (out,).

    The arguments are `Conv2d`'s, with an int (or a 1-tuple) for each size.
    """

    _spatial = 1
