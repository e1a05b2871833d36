"""Parameter initialisation with PyTorch's names; every function fills a tensor in place and returns it.

Random draws come from the `generator` argument (a ``numpy.random.Generator``) or, without one, from the
package's default generator, which `manual_seed` resets: the global numpy random state is never touched.
"""

from __future__ import annotations

import math

import numpy as np

from ..random import default_generator, generator_or_default, manual_seed
from ..tensor import Tensor

__all__ = [
    "calculate_gain",
    "constant_",
    "default_generator",
    "kaiming_normal_",
    "kaiming_uniform_",
    "manual_seed",
    "normal_",
    "ones_",
    "trunc_normal_",
    "uniform_",
    "xavier_normal_",
    "xavier_uniform_",
    "zeros_",
]

_generator = generator_or_default


def _fill(tensor: Tensor, values: np.ndarray) -> Tensor:
    # Fill in place (keeps the array an optimizer may already hold), in the tensor's own dtype.
    if tensor.dtype.kind != "f":
        raise TypeError(f"nn.init fills floating-point tensors; this one has dtype {tensor.dtype}")
    tensor.data[...] = values
    return tensor


def _fans(tensor: Tensor) -> tuple[int, int]:
    shape = tensor.shape
    if len(shape) < 2:
        raise ValueError(
            f"fan in and fan out need a tensor with at least 2 axes (out_features, in_features, ...), got shape {shape}"
        )
    receptive_field = math.prod(shape[2:])
    return shape[1] * receptive_field, shape[0] * receptive_field


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for a nonlinearity, as ``torch.nn.init.calculate_gain``."""
    linear = ("linear", "conv1d", "conv2d", "conv3d", "sigmoid", "identity")
    if nonlinearity in linear:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unknown nonlinearity '{nonlinearity}'")


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0, generator: np.random.Generator | None = None) -> Tensor:
    """Fill with values drawn uniformly from [a, b)."""
    return _fill(tensor, _generator(generator).uniform(a, b, size=tensor.shape))


def normal_(
    tensor: Tensor, mean: float = 0.0, std: float = 1.0, generator: np.random.Generator | None = None
) -> Tensor:
    """Fill with values drawn from a normal distribution N(mean, std^2)."""
    return _fill(tensor, _generator(generator).normal(mean, std, size=tensor.shape))


def constant_(tensor: Tensor, value: float) -> Tensor:
    """Fill with `value`."""
    return _fill(tensor, np.full(tensor.shape, value))


def zeros_(tensor: Tensor) -> Tensor:
    """Fill with zeros."""
    return constant_(tensor, 0.0)


def ones_(tensor: Tensor) -> Tensor:
    """Fill with ones."""
    return constant_(tensor, 1.0)


def _normal_cdf(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def _truncated_standard_normal(low: float, high: float, size: int, generator: np.random.Generator) -> np.ndarray:
    """Exact draws from N(0, 1) restricted to [low, high], by rejection from the best of three proposals.

    - a normal proposal accepts with probability P(low <= z <= high): good for wide intervals;
    - a uniform proposal on [low, high] accepts with probability pdf(z) / max pdf: good for narrow ones (such
      as tutorial 000's +-1/sqrt(784) = +-0.036, where a normal proposal would keep fewer than 3 draws in 100);
    - for an interval far in the tail, Robert's (1995) exponential proposal from `low`, which accepts more
      than 3 in 4 however far out the tail is (draws beyond `high` are rejected too).
    """
    if low > high:
        raise ValueError(f"trunc_normal_: the lower bound {low} is above the upper bound {high}")
    if low == high:
        return np.full(size, low)
    if high <= 0:  # left of the mean: draw from the mirror image on the right
        return -_truncated_standard_normal(-high, -low, size, generator)
    mass = _normal_cdf(high) - _normal_cdf(low)
    peak = max(low, 0.0)  # where the density is highest inside the interval
    width = high - low
    uniform_rate = 0.0  # beyond 30 standard deviations exp(peak**2 / 2) overflows; the exponential fits there
    if math.isfinite(width) and peak < 30:
        uniform_rate = mass * math.sqrt(2 * math.pi) * math.exp(0.5 * peak**2) / width
    use_exponential = low > 0 and mass < 0.3 and uniform_rate < 0.3
    out = np.empty(size)
    filled = 0
    while filled < size:
        want = size - filled
        if use_exponential:
            rate = (low + math.sqrt(low * low + 4)) / 2
            z = low + generator.exponential(1 / rate, size=want * 2 + 16)
            keep = (generator.random(z.size) <= np.exp(-0.5 * (z - rate) ** 2)) & (z <= high)
        elif uniform_rate > mass:
            z = generator.uniform(low, high, size=int(want / max(uniform_rate, 1e-3)) + 16)
            keep = generator.random(z.size) <= np.exp(0.5 * (peak**2 - z**2))
        else:
            z = generator.standard_normal(size=int(want / max(mass, 1e-3)) + 16)
            keep = (z >= low) & (z <= high)
        accepted = z[keep][:want]
        out[filled : filled + accepted.size] = accepted
        filled += accepted.size
    return out


def trunc_normal_(
    tensor: Tensor,
    mean: float = 0.0,
    std: float = 1.0,
    a: float = -2.0,
    b: float = 2.0,
    generator: np.random.Generator | None = None,
) -> Tensor:
    """Fill with draws from N(mean, std^2) restricted to [a, b] (bounds in the values' units, as PyTorch).

    Exact for any interval, without SciPy. Tutorial 000's weights are
    ``trunc_normal_(w, mean=0, std=1, a=-1/sqrt(fan_in), b=1/sqrt(fan_in))``.
    """
    if std <= 0:
        raise ValueError(f"trunc_normal_: std must be positive, got {std}")
    low, high = (a - mean) / std, (b - mean) / std
    draws = _truncated_standard_normal(low, high, tensor.size, _generator(generator))
    return _fill(tensor, (mean + std * draws).reshape(tensor.shape))


def xavier_uniform_(tensor: Tensor, gain: float = 1.0, generator: np.random.Generator | None = None) -> Tensor:
    """Glorot uniform: U(-bound, bound) with bound = gain * sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = _fans(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor: Tensor, gain: float = 1.0, generator: np.random.Generator | None = None) -> Tensor:
    """Glorot normal: N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _fans(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), generator)


def _kaiming_std(tensor: Tensor, a: float, mode: str, nonlinearity: str) -> float:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"kaiming init: mode must be 'fan_in' or 'fan_out', got '{mode}'")
    fan_in, fan_out = _fans(tensor)
    fan = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform_(
    tensor: Tensor,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: np.random.Generator | None = None,
) -> Tensor:
    """He uniform: U(-bound, bound) with bound = gain * sqrt(3 / fan); `a` is the leaky ReLU slope."""
    bound = math.sqrt(3.0) * _kaiming_std(tensor, a, mode, nonlinearity)
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(
    tensor: Tensor,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: np.random.Generator | None = None,
) -> Tensor:
    """He normal: N(0, std^2) with std = gain / sqrt(fan); `a` is the leaky ReLU slope."""
    return normal_(tensor, 0.0, _kaiming_std(tensor, a, mode, nonlinearity), generator)
