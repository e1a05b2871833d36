"""Pooling layers, with PyTorch's arguments: max, average and adaptive average pooling over 1 or 2 axes."""

from __future__ import annotations

from typing import Any

from ..tensor import Tensor
from . import functional as F  # noqa: N812 - PyTorch's customary name
from .module import Module

__all__ = ["AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AvgPool1d", "AvgPool2d", "MaxPool1d", "MaxPool2d"]


def _single(value: Any) -> Any:
    return value if isinstance(value, (tuple, list)) else (value,)


class _MaxPoolNd(Module):
    _function = staticmethod(F.max_pool2d)

    def __init__(
        self,
        kernel_size: Any,
        stride: Any = None,
        padding: Any = 0,
        dilation: Any = 1,
        return_indices: bool = False,
        ceil_mode: bool = False,
    ) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.dilation = dilation
        self.return_indices = return_indices
        self.ceil_mode = ceil_mode

    def forward(self, x: Any) -> Any:
        """Pool `x`; with ``return_indices=True``, also each maximum's flat index in its input plane."""
        return self._function(
            x, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode, self.return_indices
        )

    def extra_repr(self) -> str:
        """The layer's settings, as PyTorch prints them."""
        return (
            f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
            f"dilation={self.dilation}, ceil_mode={self.ceil_mode}"
        )


class MaxPool2d(_MaxPoolNd):
    """The maximum of each window of (N, C, H, W), as ``torch.nn.MaxPool2d``; `stride` defaults to `kernel_size`.

    The first maximum of a window (in row-major order) takes the gradient, as in PyTorch; `padding` (at most half
    the kernel) pads with -inf::

        pool = nn.MaxPool2d(2)             # (64, 32, 28, 28) -> (64, 32, 14, 14)
    """

    _function = staticmethod(F.max_pool2d)


class MaxPool1d(_MaxPoolNd):
    """The maximum of each window of (N, C, L), as ``torch.nn.MaxPool1d``; the arguments as `MaxPool2d`'s."""

    _function = staticmethod(F.max_pool1d)


class AvgPool2d(Module):
    """The mean of each window of (N, C, H, W), as ``torch.nn.AvgPool2d``; `stride` defaults to `kernel_size`.

    `count_include_pad` says whether zero padding counts in the divisor; `divisor_override` replaces it.
    """

    def __init__(
        self,
        kernel_size: Any,
        stride: Any = None,
        padding: Any = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        divisor_override: int | None = None,
    ) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override

    def forward(self, x: Any) -> Tensor:
        """Pool `x`."""
        return F.avg_pool2d(
            x, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad,
            self.divisor_override,
        )  # fmt: skip

    def extra_repr(self) -> str:
        """The layer's settings, as PyTorch prints them."""
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool1d(Module):
    """The mean of each window of (N, C, L), as ``torch.nn.AvgPool1d``; the arguments as `AvgPool2d`'s."""

    def __init__(
        self,
        kernel_size: Any,
        stride: Any = None,
        padding: Any = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
    ) -> None:
        super().__init__()
        # PyTorch keeps AvgPool1d's sizes as 1-tuples (its other pooling layers keep them as given).
        self.kernel_size = _single(kernel_size)
        self.stride = _single(stride if stride is not None else kernel_size)
        self.padding = _single(padding)
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad

    def forward(self, x: Any) -> Tensor:
        """Pool `x`."""
        return F.avg_pool1d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad)

    def extra_repr(self) -> str:
        """The layer's settings, as PyTorch prints them."""
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool2d(Module):
    """Average (N, C, H, W) down to `output_size` (an int or a pair; None keeps a size), as PyTorch.

    ``AdaptiveAvgPool2d(1)`` is global average pooling: one value per channel, whatever the input's size.
    """

    def __init__(self, output_size: Any) -> None:
        super().__init__()
        self.output_size = output_size

    def forward(self, x: Any) -> Tensor:
        """Pool `x`."""
        return F.adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self) -> str:
        """The layer's settings, as PyTorch prints them."""
        return f"output_size={self.output_size}"


class AdaptiveAvgPool1d(Module):
    """Average (N, C, L) down to `output_size` cells, as ``torch.nn.AdaptiveAvgPool1d``."""

    def __init__(self, output_size: Any) -> None:
        super().__init__()
        self.output_size = output_size

    def forward(self, x: Any) -> Tensor:
        """Pool `x`."""
        return F.adaptive_avg_pool1d(x, self.output_size)

    def extra_repr(self) -> str:
        """The layer's settings, as PyTorch prints them."""
        return f"output_size={self.output_size}"
