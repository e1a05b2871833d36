"""The package's default random generator: what layers initialise from, what dropout and `rand` draw from.

One ``numpy.random.Generator``, reset by `manual_seed`; numpy's global random state is never touched. Its state can
be read and restored (`get_rng_state`, `set_rng_state`), so that training stopped and resumed draws the same
numbers as training that never stopped.
"""

from __future__ import annotations

import copy
import numbers
from typing import Any

import numpy as np

__all__ = ["default_generator", "get_rng_state", "manual_seed", "set_rng_state"]

_default_generator = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Reset the default generator, so that models, dropout masks and `rand` come out the same every run.

    >>> _ = manual_seed(0)
    """
    global _default_generator
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"manual_seed takes a whole number >= 0, got {seed!r}")
    _default_generator = np.random.default_rng(int(seed))
    return _default_generator


def default_generator() -> np.random.Generator:
    """The generator used when a function gets none (reset by `manual_seed`)."""
    return _default_generator


def get_rng_state() -> dict[str, Any]:
    """A copy of the default generator's state (plain numbers, which JSON can hold)."""
    return copy.deepcopy(_default_generator.bit_generator.state)


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the default generator's state from `get_rng_state`."""
    if not isinstance(state, dict) or "bit_generator" not in state:
        raise TypeError(f"set_rng_state takes what get_rng_state returns (a dict), got {type(state).__name__}")
    generator = np.random.default_rng()
    try:
        generator.bit_generator.state = copy.deepcopy(state)
    except (TypeError, ValueError, KeyError) as error:
        raise ValueError(f"set_rng_state: this is not a generator state this numpy can restore ({error})") from None
    global _default_generator
    _default_generator = generator


def generator_or_default(generator: np.random.Generator | None) -> np.random.Generator:
    """`generator`, or the default one when it is None."""
    return _default_generator if generator is None else generator
