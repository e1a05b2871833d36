"""What reading grad mode costs an op, per way of keeping it per thread (issue #11's measurement).

Each candidate does what `Function.apply` does with the state on every op: read three flags (grad mode, the
"unusual" flag for anomaly mode or a tracer, and the module scope). Printed as the Markdown table of
benchmarks/README.md: the median of 9 runs of a million reads each.

    python scripts/measure_thread_state.py
"""

from __future__ import annotations

import statistics
import threading
import timeit


class _State:
    __slots__ = ("grad_enabled", "scope", "unusual")

    def __init__(self) -> None:
        self.grad_enabled, self.unusual, self.scope = True, False, None


class _Local(threading.local):
    def __init__(self) -> None:
        self.state = _State()
        self.grad_enabled, self.unusual, self.scope = True, False, None


_GRAD_ENABLED, _UNUSUAL, _SCOPE = True, False, None
_local = _Local()
_main_thread, _main_state = threading.get_ident(), _State()


def module_globals() -> bool:
    """The first version: three module globals, shared by every thread (what issue #11 fixes)."""
    return _GRAD_ENABLED and not _UNUSUAL and _SCOPE is None


def local_per_flag() -> bool:
    """A `threading.local` attribute read for each flag."""
    return _local.grad_enabled and not _local.unusual and _local.scope is None


def state_once() -> bool:
    """The thread's state object fetched once from a `threading.local`, then plain attributes (the choice)."""
    state = _local.state
    return state.grad_enabled and not state.unusual and state.scope is None


def thread_id_check() -> bool:
    """A check of the thread's id against the main thread's, whose state is a plain global."""
    state = _main_state if threading.get_ident() == _main_thread else _local.state
    return state.grad_enabled and not state.unusual and state.scope is None


CANDIDATES = {
    "three module globals (not per thread)": module_globals,
    "a threading.local read per flag": local_per_flag,
    "the thread's state fetched once per op (chosen)": state_once,
    "a thread-id check, then the state": thread_id_check,
}


def main(number: int = 1_000_000, repeat: int = 9) -> dict[str, float]:
    """Print and return each candidate's nanoseconds per op."""
    costs = {
        name: statistics.median(timeit.repeat(function, number=number, repeat=repeat)) / number * 1e9
        for name, function in CANDIDATES.items()
    }
    print("| reading grad mode, per op | time |\n|---|---:|")
    for name, nanoseconds in costs.items():
        print(f"| {name} | {nanoseconds:.0f} ns |")
    return costs


if __name__ == "__main__":
    main()
