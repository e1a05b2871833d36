"""Check analytical gradients against finite differences, and say exactly which element is wrong.

`gradcheck` compares, for every output and every input (or parameter) that requires grad, the Jacobian that
backward computes with central differences of the forward. It works on float64 copies of the inputs, never
changes your tensors or their ``.grad``, and reports in a compact table: for each (output, input) pair the
largest absolute and relative error, the worst element's index, and the numerical and analytical values there.

Where the function has a kink at the point (ReLU or abs at 0) the two one-sided slopes differ; an analytical
value between them is a valid subgradient, so the report calls the point not differentiable instead of wrong.
Strong curvature also makes the one-sided slopes differ, so wherever they do, the slopes are taken again with a
step ten times smaller: a kink's slopes still differ as much, and each keeps its value (the slope from the left
is the same with either step, and so is the one from the right), while curvature's difference shrinks tenfold
(and the closer look's central difference, the more accurate one, is what the analytical value is compared
with). Slopes that change with the step are neither: they fail as wrong.

Before anything is differentiated the function is evaluated twice more at the same point: a function whose
output changes from call to call (random numbers, dropout in training mode, state kept between calls) makes
every finite difference meaningless, so that is reported as the problem, with how to fix it.

`gradgradcheck` (and ``gradcheck(order=2)``) checks second derivatives the same way: the function it checks is
the gradient itself, computed with ``create_graph=True``, as a function of the inputs and of the upstream
gradient.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .autograd import BackwardError, DoubleBackwardError, enable_grad
from .tensor import Tensor

__all__ = ["GradcheckError", "GradcheckReport", "GradcheckWarning", "gradcheck", "gradcheck_report", "gradgradcheck"]


class GradcheckError(RuntimeError):
    """Raised by `gradcheck` when a gradient is wrong; ``.report`` holds the `GradcheckReport`."""

    def __init__(self, report: GradcheckReport) -> None:
        super().__init__(str(report))
        self.report = report


class GradcheckWarning(UserWarning):
    """A gradcheck caveat: a float32 input checked in float64, or a point where the function has a kink."""


@dataclass
class PairResult:
    """How one output's gradient with respect to one input (or parameter) compares."""

    output: int
    input_name: str
    max_abs_error: float
    max_rel_error: float
    input_index: tuple[int, ...]
    output_index: tuple[int, ...]
    numerical: float
    analytical: float
    verdict: str  # "ok", "wrong", or "kink" (not differentiable there; analytical is a valid subgradient)
    kinks: list[tuple[int, ...]] = field(default_factory=list)
    wrong_count: int = 0
    # At the first kink: the slopes from the left and from the right, and the analytical value between them.
    kink_slopes: tuple[float, float, float] | None = None
    # A fast-mode row: numerical and analytical are the projections v^T J u, not one element's values.
    projection: bool = False


@dataclass
class GradcheckReport:
    """The outcome of a gradient check: `ok`, the table `rows`, and `problems` found before comparing."""

    rows: list[PairResult]
    problems: list[str]
    atol: float
    rtol: float
    eps: float
    mode: str = "full"
    order: int = 1  # 2 for gradgradcheck's report: the rows compare derivatives of the gradient

    @property
    def ok(self) -> bool:
        """True when no gradient is wrong (kinks do not count as wrong)."""
        return not self.problems and all(row.verdict != "wrong" for row in self.rows)

    @property
    def kinks(self) -> list[tuple[str, tuple[int, ...]]]:
        """(input name, element index) of every point found not differentiable."""
        return [(row.input_name, index) for row in self.rows for index in row.kinks]

    def __str__(self) -> str:
        lines = []
        title = (
            "gradgradcheck (the second-order check: derivatives of the gradient)" if self.order == 2 else "gradcheck"
        )
        if self.ok:
            lines.append(
                f"{title} passed ({self.mode} check, atol={self.atol:g}, rtol={self.rtol:g}, eps={self.eps:g})"
            )
        else:
            wrong = [row for row in self.rows if row.verdict == "wrong"]
            names = ", ".join(dict.fromkeys(f"`{row.input_name}`" for row in wrong))
            what = "second derivative" if self.order == 2 else "gradient"
            lines.append(
                f"{title} failed: "
                + ("; ".join(self.problems) if self.problems else f"the analytical {what} is wrong for {names}")
            )
            if self.order == 2 and not self.problems:
                lines.append(
                    "  (output k is the gradient of the k-th input or parameter that requires grad; a wrong entry "
                    "means a backward's own derivative, its double backward, is wrong)"
                )
            for row in wrong:
                index = _format_index(row.input_index)
                if row.projection:
                    lines.append(
                        f"  output {row.output} w.r.t. {row.input_name}: the random projection v^T J u is "
                        f"{row.numerical:.6g} numerically, {row.analytical:.6g} analytically"
                    )
                    continue
                lines.append(
                    f"  output {row.output} w.r.t. {row.input_name}, element {index}"
                    + (f" (output element {_format_index(row.output_index)})" if row.output_index else "")
                    + f": numerical {row.numerical:.6g}, analytical {row.analytical:.6g}"
                    + (f"; {row.wrong_count} Jacobian entries wrong in all" if row.wrong_count > 1 else "")
                )
        if self.rows:
            lines.append(_table(self.rows))
        for row in self.rows:
            if row.kinks:
                shown = ", ".join(_format_index(i) for i in row.kinks[:5])
                more = f" and {len(row.kinks) - 5} more" if len(row.kinks) > 5 else ""
                left, right, analytical = row.kink_slopes or (float("nan"),) * 3
                lines.append(
                    f"  not differentiable at {row.input_name} element(s) {shown}{more}: the one-sided slopes "
                    f"differ there (a kink, as ReLU or abs at 0; at {_format_index(row.kinks[0])} from the left "
                    f"{left:.6g}, from the right {right:.6g}); the analytical value {analytical:.6g} lies between "
                    "them, a valid subgradient"
                )
        return "\n".join(lines)


def _format_index(index: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(i) for i in index) + ("," if len(index) == 1 else "") + ")"


def _table(rows: list[PairResult]) -> str:
    header = ("output", "input", "max abs err", "max rel err", "worst element", "numerical", "analytical", "verdict")
    body = [
        (
            str(r.output),
            r.input_name,
            f"{r.max_abs_error:.2e}",
            f"{r.max_rel_error:.2e}",
            "v^T J u" if r.projection else _format_index(r.input_index),
            f"{r.numerical:.6g}",
            f"{r.analytical:.6g}",
            {"ok": "ok", "wrong": "WRONG", "kink": "ok (kink)"}[r.verdict],
        )
        for r in rows
    ]
    widths = [max(len(h), *(len(row[i]) for row in body)) for i, h in enumerate(header)]
    fmt = "  " + " | ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*header), "  " + "-+-".join("-" * w for w in widths)] + [fmt.format(*r) for r in body]
    return "\n".join(line.rstrip() for line in lines)


# --------------------------------------------------------------------------------------------------------------
# Setting up: float64 leaves that gradcheck owns
# --------------------------------------------------------------------------------------------------------------


class _Subject:
    """The function under test, with float64 copies of its inputs and (for a module) its parameters."""

    def __init__(self, fn: Callable[..., Any], inputs: Any) -> None:
        self.fn = fn
        items = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
        self.call_args: list[Any] = []
        self.checked: list[tuple[str, Tensor]] = []
        self._restore: list[tuple[Tensor, np.ndarray, Any]] = []
        try:
            self._set_up(items)
        except BaseException:
            # A GradcheckWarning turned into an error (-W error) may stop us halfway through the parameters:
            # the ones already swapped for float64 copies must go back as they were.
            self.restore()
            raise

    def _set_up(self, items: tuple) -> None:
        for position, item in enumerate(items):
            if isinstance(item, Tensor) and item.requires_grad:
                copy = Tensor(_as_float64(item.data, f"input {position}"), requires_grad=True)
                self.call_args.append(copy)
                self.checked.append((f"input {position}", copy))
            else:
                self.call_args.append(item)
        # A Module (anything with named_parameters) has its parameters checked too, by their dotted names.
        named = getattr(self.fn, "named_parameters", None)
        if callable(named):
            for name, parameter in named():
                if parameter.requires_grad:
                    self._restore.append((parameter, parameter.data, parameter.grad))
                    parameter.data = _as_float64(parameter.data, f"parameter `{name}`")
                    parameter.grad = None
                    self.checked.append((name, parameter))
        if not self.checked:
            raise ValueError(
                "gradcheck: nothing to check, since no input requires grad; create the inputs with "
                "requires_grad=True (or pass a Module with parameters)"
            )

    def restore(self) -> None:
        """Put the module's parameters back as they were (same arrays, same grads)."""
        for parameter, data, grad in self._restore:
            parameter.data = data
            parameter.grad = grad
        self._restore = []

    def outputs(self) -> tuple[Tensor, ...]:
        """Call the function and return its outputs as a tuple of Tensors."""
        result = self.fn(*self.call_args)
        outputs = result if isinstance(result, (tuple, list)) else (result,)
        for position, out in enumerate(outputs):
            if not isinstance(out, Tensor):
                raise TypeError(
                    f"gradcheck: output {position} of the function is a {type(out).__name__}; "
                    "it must return a Tensor or a tuple of Tensors"
                )
        return tuple(outputs)

    def output_arrays(self) -> list[np.ndarray]:
        """The outputs' values as float64 copies (outputs may be views of the inputs being perturbed).

        Evaluated with recording on, as in a real call: a function that takes a gradient itself (a gradient
        penalty) needs its graph.
        """
        return [np.array(out.data, dtype=np.float64) for out in self.outputs()]

    def clear_grads(self) -> None:
        """Forget the gradients accumulated on the checked leaves."""
        for _, tensor in self.checked:
            tensor.grad = None

    def grads(self) -> list[np.ndarray]:
        """The checked leaves' gradients (zeros where backward never reached one)."""
        return [np.zeros_like(t.data) if t.grad is None else t.grad for _, t in self.checked]


def _caller_stacklevel() -> int:
    """The stacklevel that makes a warning point at the first caller outside this package."""
    package = os.path.dirname(os.path.abspath(__file__))
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def _as_float64(array: np.ndarray, name: str) -> np.ndarray:
    if array.dtype != np.float64:
        warnings.warn(
            f"gradcheck: {name} is {array.dtype}; it is checked on a float64 copy, because central differences "
            f"in {array.dtype} are too coarse to judge a gradient",
            GradcheckWarning,
            stacklevel=_caller_stacklevel(),
        )
    return np.array(array, dtype=np.float64)


def _backward(subject: _Subject, outputs: Sequence[Tensor], upstream: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Gradients of sum_k <upstream_k, output_k> with respect to the checked leaves."""
    subject.clear_grads()
    try:
        for out, grad in zip(outputs, upstream):
            if out.requires_grad:
                out.backward(grad, retain_graph=True)
    except DoubleBackwardError as error:
        raise _NotTwiceDifferentiableError(str(error)) from None
    return [np.array(g) for g in subject.grads()]


# --------------------------------------------------------------------------------------------------------------
# The checks
# --------------------------------------------------------------------------------------------------------------


def _structural_problems(subject: _Subject, outputs: Sequence[Tensor], rng: np.random.Generator) -> list[str]:
    """Shape and dtype of the gradients, linearity (zero in, zero out) and repeatability."""
    problems = []
    zeros = _backward(subject, outputs, [np.zeros(o.shape) for o in outputs])
    for (name, tensor), grad in zip(subject.checked, zeros):
        if tensor.grad is not None and (tensor.grad.shape != tensor.shape or tensor.grad.dtype != tensor.dtype):
            problems.append(
                f"the gradient of {name} has shape {tensor.grad.shape} and dtype {tensor.grad.dtype}, "
                f"but {name} has shape {tensor.shape} and dtype {tensor.dtype}"
            )
        if np.any(grad != 0):  # NaN counts too: argmax finds the first one
            index = np.unravel_index(np.argmax(np.abs(grad)), grad.shape)
            where = f"{grad[index]:.6g} at element {_format_index(tuple(int(i) for i in index))}"
            if np.isfinite(grad[index]):
                problems.append(
                    f"backward is not linear in the upstream gradient: a zero upstream gradient gave {name} a "
                    f"nonzero gradient ({where})"
                )
            else:
                problems.append(
                    f"backward is not linear in the upstream gradient: a zero upstream gradient gave {name} a "
                    f"non-finite gradient ({where}), as 0 * inf does where a derivative is infinite"
                )
    upstream = [rng.standard_normal(o.shape) for o in outputs]
    first = _backward(subject, outputs, upstream)
    second = _backward(subject, outputs, upstream)
    for (name, _), a, b in zip(subject.checked, first, second):
        if not np.array_equal(a, b, equal_nan=True):
            problems.append(
                f"backward is not repeatable: the same upstream gradient gave {name} different gradients "
                f"(largest difference {np.nanmax(np.abs(a - b)):.3g})"
            )
    return problems


def _analytical_jacobian(subject: _Subject, outputs: Sequence[Tensor]) -> list[list[np.ndarray]]:
    """jacobian[k][i] has shape (outputs[k].size, checked[i].size): one backward per output element."""
    jacobians = []
    for out in outputs:
        rows = [np.zeros((out.size, t.size)) for _, t in subject.checked]
        if out.requires_grad:
            seed = np.zeros(out.shape)
            flat_seed = seed.reshape(-1)
            for j in range(out.size):
                flat_seed[j] = 1.0
                for i, grad in enumerate(_backward(subject, [out], [seed])):
                    rows[i][j] = grad.ravel()
                flat_seed[j] = 0.0
        jacobians.append(rows)
    return jacobians


# Where the one-sided slopes disagree, they are taken again with a step this much smaller (see the module's doc).
_CLOSER = 0.1


@dataclass
class _Numerical:
    """Finite-difference Jacobians, laid out like `_analytical_jacobian`'s: [output][checked leaf].

    Only the central differences are kept whole; the one-sided slopes are kept for the columns (input elements)
    where they disagree, which is all the kink test needs: ``sides[k][i][e] = (left, right, kink)`` with one
    value per output element.
    """

    central: list[list[np.ndarray]]
    sides: list[list[dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]]]


def _slopes(subject: _Subject, flat: np.ndarray, element: int, step: float, base: list[np.ndarray]) -> list:
    """(central, left, right) differences of every output, raveled, for one element of one leaf."""
    original = flat[element]
    flat[element] = original + step
    plus = subject.output_arrays()
    flat[element] = original - step
    minus = subject.output_arrays()
    flat[element] = original
    return [
        (((p - m) / (2 * step)).ravel(), ((b - m) / step).ravel(), ((p - b) / step).ravel())
        for p, m, b in zip(plus, minus, base)
    ]


def _numerical_jacobian(subject: _Subject, eps: float, atol: float, rtol: float) -> _Numerical:
    """Central differences, one-sided ones where they disagree, and where that disagreement is a real kink."""
    base = subject.output_arrays()
    central = [[np.zeros((b.size, t.size)) for _, t in subject.checked] for b in base]
    sides: list[list[dict]] = [[{} for _ in subject.checked] for _ in base]
    for i, (_, tensor) in enumerate(subject.checked):
        flat = tensor.data.reshape(-1)  # a view: writing to it perturbs the leaf
        for e in range(flat.size):
            slopes = _slopes(subject, flat, e, eps, base)
            disagree = [
                bool(np.any(np.abs(right - left) > atol + rtol * np.abs(middle))) for middle, left, right in slopes
            ]
            if any(disagree):
                closer = _slopes(subject, flat, e, eps * _CLOSER, base)
                for k, ((_, left, right), (near_middle, near_left, near_right)) in enumerate(zip(slopes, closer)):
                    if not disagree[k]:
                        continue
                    spread = np.abs(right - left)
                    near_spread = np.abs(near_right - near_left)
                    # A kink: the sides still disagree up close, as much as before, and each side keeps its slope
                    # (a step ten times smaller finds the same left and the same right slope). Curvature shrinks
                    # the disagreement; a function that drifts or jumps changes the slopes with the step.
                    steady_left = np.abs(near_left - left) <= atol + rtol * np.abs(left)
                    steady_right = np.abs(near_right - right) <= atol + rtol * np.abs(right)
                    kink = (
                        (near_spread > atol + rtol * np.abs(near_middle))
                        & (near_spread >= 0.5 * spread)
                        & steady_left
                        & steady_right
                    )
                    sides[k][i][e] = (near_left, near_right, kink)
                slopes = closer
            for k, (middle, _, _) in enumerate(slopes):
                central[k][i][:, e] = middle
    return _Numerical(central, sides)


def _compare(
    subject: _Subject,
    outputs: Sequence[Tensor],
    analytical: list[list[np.ndarray]],
    numerical: _Numerical,
    atol: float,
    rtol: float,
) -> list[PairResult]:
    rows = []
    for k, out in enumerate(outputs):
        for i, (name, tensor) in enumerate(subject.checked):
            a, n = analytical[k][i], numerical.central[k][i]
            if a.size == 0:
                continue
            with np.errstate(invalid="ignore"):  # inf - inf where both are the same infinity
                error = np.where(a == n, 0.0, np.abs(a - n))
            allowed = atol + rtol * np.abs(n)
            bad = ~(error <= allowed)  # NaN is never within tolerance
            # A kink: the one-sided slopes really differ, and the analytical value is a subgradient between them.
            kink = np.zeros(a.shape, dtype=bool)
            first_kink = None
            for e, (left, right, is_kink) in sorted(numerical.sides[k][i].items()):
                column = is_kink & (a[:, e] >= np.minimum(left, right) - allowed[:, e])
                column &= a[:, e] <= np.maximum(left, right) + allowed[:, e]
                kink[:, e] = column
                if first_kink is None and column.any():
                    j = int(np.argmax(column))
                    first_kink = (float(left[j]), float(right[j]), float(a[j, e]))
            wrong = bad & ~kink
            # The worst element shown: the worst wrong one, else the worst of those that are not kinks.
            score = np.where(wrong, np.nan_to_num(error / allowed, nan=np.inf), 0.0)
            if not wrong.any():
                score = np.where(kink, 0.0, error / allowed)
            j, e = np.unravel_index(int(np.argmax(score)), error.shape)
            rows.append(
                PairResult(
                    output=k,
                    input_name=name,
                    max_abs_error=float(np.max(np.where(kink, 0.0, error))),
                    max_rel_error=float(np.max(np.where(kink, 0.0, error / np.maximum(np.abs(n), 1e-12)))),
                    input_index=tuple(int(x) for x in np.unravel_index(e, tensor.shape)),
                    output_index=tuple(int(x) for x in np.unravel_index(j, out.shape)),
                    numerical=float(n[j, e]),
                    analytical=float(a[j, e]),
                    verdict="wrong" if wrong.any() else ("kink" if kink.any() else "ok"),
                    kinks=sorted(
                        {tuple(int(x) for x in np.unravel_index(c, tensor.shape)) for c in np.nonzero(kink)[1]}
                    ),
                    wrong_count=int(wrong.sum()),
                    kink_slopes=first_kink,
                )
            )
    return rows


def _fast_rows(
    subject: _Subject, outputs: Sequence[Tensor], eps: float, atol: float, rtol: float, rng: np.random.Generator
) -> list[PairResult]:
    """For each (output k, leaf i), compare v_k^T J_ki u_i with its finite-difference estimate (random u, v).

    One backward per output and two forwards per leaf, whatever their sizes.
    """
    upstream = [rng.standard_normal(o.shape) for o in outputs]
    directions = [rng.standard_normal(t.shape) for _, t in subject.checked]
    analytical = np.zeros((len(outputs), len(subject.checked)))
    for k, out in enumerate(outputs):
        if out.requires_grad:
            grads = _backward(subject, [out], [upstream[k]])
            analytical[k] = [np.sum(grad * direction) for grad, direction in zip(grads, directions)]
    numerical = np.zeros_like(analytical)
    for i, (_, tensor) in enumerate(subject.checked):
        original = tensor.data.copy()
        tensor.data[...] = original + eps * directions[i]
        plus = subject.output_arrays()
        tensor.data[...] = original - eps * directions[i]
        minus = subject.output_arrays()
        tensor.data[...] = original
        numerical[:, i] = [np.sum(v * (p - m)) / (2 * eps) for v, p, m in zip(upstream, plus, minus)]
    rows = []
    for k in range(len(outputs)):
        for i, (name, _) in enumerate(subject.checked):
            a, n = float(analytical[k, i]), float(numerical[k, i])
            error = abs(a - n)
            rows.append(
                PairResult(
                    output=k,
                    input_name=name,
                    max_abs_error=error,
                    max_rel_error=error / max(abs(n), 1e-12),
                    input_index=(),
                    output_index=(),
                    numerical=n,
                    analytical=a,
                    verdict="ok" if error <= atol + rtol * abs(n) else "wrong",  # NaN is wrong
                    projection=True,
                )
            )
    return rows


def _nondeterminism(subject: _Subject, outputs: Sequence[Tensor]) -> str | None:
    """Evaluate the function twice more at the same point; describe how the outputs differ, if they do."""
    first = [np.array(out.data, dtype=np.float64) for out in outputs]
    for _ in range(2):
        again = subject.output_arrays()
        for k, (a, b) in enumerate(zip(first, again)):
            if a.shape != b.shape or not np.array_equal(a, b, equal_nan=True):
                if a.shape != b.shape:
                    change = f"shape {a.shape}, then {b.shape}"
                else:
                    with np.errstate(invalid="ignore"):
                        difference = np.where(np.isnan(a) & np.isnan(b), 0.0, np.abs(a - b))
                    index = tuple(int(x) for x in np.unravel_index(int(np.nanargmax(difference)), a.shape))
                    change = f"element {_format_index(index)} was {a[index]:.6g}, then {b[index]:.6g}"
                return (
                    f"the function is not deterministic: called twice at the same point, its output {k} changed "
                    f"({change}), so finite differences measure that change, not the gradient. It draws random "
                    f"numbers or keeps state between calls{_stochastic_hint(subject.fn)}; seed the randomness "
                    "inside the function (tinygrad_nn.manual_seed(0) at its start), or put the model in eval mode "
                    "(model.eval()), before checking gradients"
                )
    return None


def _stochastic_hint(fn: Any) -> str:
    modules = getattr(fn, "named_modules", None)
    if not callable(modules):
        return ""
    for name, module in modules():
        if getattr(module, "training", False) and getattr(module, "_stochastic_in_training", False):
            return f" (its module `{name or '(model)'}` is a {type(module).__name__} in training mode)"
    return ""


# Above this many bytes of Jacobians, or this many evaluations of the function, gradcheck warns before starting.
_LARGE_BYTES = 256 * 2**20
_LARGE_EVALUATIONS = 50_000


def _warn_if_large(subject: _Subject, outputs: Sequence[Tensor], order: int, fast_mode: bool) -> None:
    """Say, before the work starts, what a full check will cost when that is a lot: evaluations and memory."""
    inputs = sum(t.size for _, t in subject.checked)
    outputs_size = sum(o.size for o in outputs)
    entries = inputs * outputs_size
    # Per Jacobian entry: the analytical and the central numerical values (8 bytes each) and a kink flag.
    memory = 17 * entries
    evaluations = 2 * inputs + outputs_size
    if memory <= _LARGE_BYTES and evaluations <= _LARGE_EVALUATIONS:
        return
    what = "gradgradcheck" if order == 2 else "gradcheck"
    fast = (
        "; the fast check failed, so this is the full check that says which element is wrong"
        if fast_mode
        else "; fast_mode=True checks a random projection of it instead, with one backward per output and two "
        "forwards per input"
    )
    warnings.warn(
        f"{what}: the full check compares {outputs_size:,} x {inputs:,} = {entries:,} Jacobian entries, which takes "
        f"{evaluations:,} evaluations of the function (forwards and backwards) and about {_megabytes(memory)} of "
        f"memory{fast}; or check a smaller input",
        GradcheckWarning,
        stacklevel=_caller_stacklevel(),
    )


def _megabytes(count: float) -> str:
    return f"{count / 2**30:,.1f} GiB" if count >= 2**30 else f"{count / 2**20:,.0f} MiB"


def gradcheck_report(
    fn: Callable[..., Any],
    inputs: Any,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    fast_mode: bool = False,
    seed: int = 0,
) -> GradcheckReport:
    """Run the checks of `gradcheck` and return the `GradcheckReport` instead of a verdict.

    Print the report to see the table even when everything passes.
    """
    return _report(fn, inputs, eps, atol, rtol, fast_mode, seed, order=1)


def _report(
    fn: Callable[..., Any], inputs: Any, eps: float, atol: float, rtol: float, fast_mode: bool, seed: int, order: int
) -> GradcheckReport:
    subject = _Subject(fn, inputs)
    rng = np.random.default_rng(seed)  # its own generator: the user's random state is left alone

    def report(rows: list, problems: list, mode: str = "full") -> GradcheckReport:
        return GradcheckReport(rows, problems, atol, rtol, eps, mode=mode, order=order)

    try:
        try:
            outputs = subject.outputs()
            drift = _nondeterminism(subject, outputs)
            if drift:
                return report([], [drift])
            problems = _structural_problems(subject, outputs, rng)
            if problems:
                return report([], problems)
            if fast_mode:
                rows = _fast_rows(subject, outputs, eps, atol, rtol, rng)
                if all(row.verdict == "ok" for row in rows):
                    return report(rows, [], mode="fast")
            _warn_if_large(subject, outputs, order, fast_mode)
            analytical = _analytical_jacobian(subject, outputs)
            numerical = _numerical_jacobian(subject, eps, atol, rtol)
        except BackwardError as error:
            return report([], [str(error)])
        except _NotTwiceDifferentiableError as error:
            return report([], [str(error)])
        rows = _compare(subject, outputs, analytical, numerical, atol, rtol)
        return report(rows, [], mode="full (fast check failed)" if fast_mode else "full")
    finally:
        subject.restore()


def gradcheck(
    fn: Callable[..., Any],
    inputs: Any,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
    fast_mode: bool = False,
    seed: int = 0,
    order: int = 1,
) -> bool:
    """Check the gradients of `fn` at `inputs` against central finite differences.

    `fn` takes the inputs and returns a Tensor or a tuple of Tensors; it may be a Module, whose parameters are
    then checked too and named by their dotted names. Every input that requires grad is checked, on a float64
    copy (float32 inputs with a warning). An element passes when
    ``|analytical - numerical| <= atol + rtol * |numerical|``.

    First it evaluates `fn` twice more at the same point, and fails if the outputs change (randomness, state,
    dropout in training mode). Before comparing values it checks the gradients' shapes and dtypes, that a zero
    upstream gradient gives zero gradients, and that backward gives the same result twice. It warns before a
    check that will take many evaluations or much memory. With ``fast_mode=True`` it first compares one random
    projection ``v^T J u`` per (output, input) pair (one backward per output and two forwards per input, whatever
    their sizes; ``u`` and ``v`` come from a generator seeded with `seed`, so ``np.random`` is left alone) and
    falls back to the full check, with its report, only when that fails. Points where the function has a kink are
    reported as not differentiable (with a `GradcheckWarning`), not as wrong, as long as the analytical value lies
    between the one-sided slopes. ``order=2`` then checks the second derivatives too, with `gradgradcheck`.

    Returns True; on a wrong gradient raises `GradcheckError` whose message names the output, the input (or
    parameter), the worst element and its numerical and analytical values, or returns False when
    ``raise_exception=False``::

        gradcheck(lambda x, w: (x @ w).tanh().sum(), (x, w))
    """
    if order not in (1, 2):
        raise ValueError(f"gradcheck: order must be 1 or 2, got {order!r}")
    report = _report(fn, inputs, eps, atol, rtol, fast_mode, seed, order=1)
    if report.ok and order == 2:
        report = _second_order_report(fn, inputs, None, eps, atol, rtol, fast_mode, seed)
    return _verdict(report, raise_exception)


def _verdict(report: GradcheckReport, raise_exception: bool) -> bool:
    if not report.ok:
        if raise_exception:
            raise GradcheckError(report)
        return False
    if report.kinks:
        warnings.warn(str(report), GradcheckWarning, stacklevel=_caller_stacklevel())
    return True


# --------------------------------------------------------------------------------------------------------------
# Second order
# --------------------------------------------------------------------------------------------------------------


class _NotTwiceDifferentiableError(RuntimeError):
    """The gradient could not be differentiated (a backward that cannot build a graph)."""


class _GradientOf:
    """The function whose Jacobian is the second derivative: (inputs, grad_outputs) -> the gradients of `fn`.

    It returns ``grad(fn(inputs), [inputs that require grad, parameters], grad_outputs, create_graph=True)``; for a
    Module it exposes the module's parameters, so that they are checked (and named) as inputs too.
    """

    def __init__(self, fn: Callable[..., Any], input_count: int, differentiated: list[int]) -> None:
        self.fn = fn
        self.input_count = input_count
        self.differentiated = differentiated
        named = getattr(fn, "named_parameters", None)
        if callable(named):
            self.named_parameters = named

    @enable_grad()  # gradcheck evaluates functions under no_grad; a gradient needs its forward recorded
    def __call__(self, *arguments: Any) -> tuple[Tensor, ...]:
        from .autograd import grad

        inputs, grad_outputs = arguments[: self.input_count], arguments[self.input_count :]
        result = self.fn(*inputs)
        outputs = result if isinstance(result, (tuple, list)) else (result,)
        wrt = [inputs[i] for i in self.differentiated]
        named = getattr(self.fn, "named_parameters", None)
        if callable(named):
            wrt += [p for _, p in named() if p.requires_grad]
        live = [(o, g) for o, g in zip(outputs, grad_outputs) if isinstance(o, Tensor) and o.requires_grad]
        if not live:
            return tuple(Tensor(np.zeros(t.shape)) for t in wrt)
        gradients = grad([o for o, _ in live], wrt, [g for _, g in live], create_graph=True, allow_unused=True)
        return tuple(Tensor(np.zeros(t.shape)) if g is None else g for g, t in zip(gradients, wrt))


def _second_order_report(
    fn: Callable[..., Any],
    inputs: Any,
    grad_outputs: Any,
    eps: float,
    atol: float,
    rtol: float,
    fast_mode: bool,
    seed: int,
) -> GradcheckReport:
    items = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    differentiated = [i for i, item in enumerate(items) if isinstance(item, Tensor) and item.requires_grad]
    if grad_outputs is None:
        # Random upstream gradients that require grad: the second derivative with respect to them is checked too.
        probe = fn(*[Tensor(np.array(i.data, np.float64), requires_grad=i.requires_grad) if isinstance(i, Tensor)
                     else i for i in items])  # fmt: skip
        probes = probe if isinstance(probe, (tuple, list)) else (probe,)
        rng = np.random.default_rng(seed + 1)
        grad_outputs = tuple(Tensor(rng.standard_normal(p.shape), requires_grad=True) for p in probes)
    else:
        grad_outputs = (grad_outputs,) if isinstance(grad_outputs, (Tensor, np.ndarray)) else tuple(grad_outputs)
        grad_outputs = tuple(
            g if isinstance(g, Tensor) else Tensor(np.asarray(g, dtype=np.float64), requires_grad=True)
            for g in grad_outputs
        )
    gradient = _GradientOf(fn, len(items), differentiated)
    # The second derivatives below differentiate the gradient that create_graph computes (each backward called
    # with Tensors). A backward whose Tensor path disagrees with its ndarray path would be checked against
    # itself and pass: so first compare the two gradients at this point.
    mismatch = _graph_path_mismatch(gradient, items, grad_outputs, atol, rtol)
    if mismatch:
        return GradcheckReport(rows=[], problems=[mismatch], atol=atol, rtol=rtol, eps=eps, order=2)
    report = _report(gradient, (*items, *grad_outputs), eps, atol, rtol, fast_mode, seed, order=2)
    names = {f"input {len(items) + k}": f"grad_output {k}" for k in range(len(grad_outputs))}
    for row in report.rows:
        row.input_name = names.get(row.input_name, row.input_name)
    return report


def _graph_path_mismatch(
    gradient: _GradientOf, items: tuple, grad_outputs: tuple, atol: float, rtol: float
) -> str | None:
    """Where the gradient computed with create_graph=True differs from the plain backward's, in words; or None."""
    from .autograd import grad

    try:
        with_graph = gradient(*items, *grad_outputs)
    except Exception:  # the check proper reports what cannot be differentiated, in its own words
        return None
    with enable_grad():
        result = gradient.fn(*items)
    outputs = result if isinstance(result, (tuple, list)) else (result,)
    wrt = [items[i] for i in gradient.differentiated]
    names = [f"input {i}" for i in gradient.differentiated]
    named = getattr(gradient.fn, "named_parameters", None)
    if callable(named):
        for name, parameter in named():
            if parameter.requires_grad:
                wrt.append(parameter)
                names.append(f"parameter `{name}`")
    live = [(o, g.data) for o, g in zip(outputs, grad_outputs) if isinstance(o, Tensor) and o.requires_grad]
    if not live or not wrt:
        return None
    plain = grad([o for o, _ in live], wrt, [g for _, g in live], allow_unused=True)
    for name, first, second in zip(names, plain, with_graph):
        if first is None:
            continue
        ours, theirs = np.asarray(second.data, np.float64), np.asarray(first.data, np.float64)
        if ours.shape != theirs.shape:
            continue
        wrong = ~np.isclose(ours, theirs, rtol=rtol, atol=atol, equal_nan=True)
        if wrong.any():
            index = tuple(int(i) for i in np.argwhere(wrong)[0])
            return (
                f"the gradient of {name} computed with create_graph=True (each backward called with Tensors) is not "
                f"the plain backward's (called with ndarrays): {int(wrong.sum())} of {wrong.size} entries differ, "
                f"first at {index}: {ours[index]:.6g} with Tensors, {theirs[index]:.6g} with ndarrays. A custom "
                "Function's backward must compute the same formula on both (write it once, with operators and "
                "tinygrad_nn.functions.xp)"
            )
    return None


def gradgradcheck(
    fn: Callable[..., Any],
    inputs: Any,
    grad_outputs: Any = None,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
    fast_mode: bool = False,
    seed: int = 0,
) -> bool:
    """Check the second derivatives of `fn`: the derivative of its gradient, against finite differences of it.

    The function checked is ``(inputs, grad_outputs) -> grad(fn(inputs), inputs, grad_outputs,
    create_graph=True)`` (and the parameters, for a Module), as PyTorch's ``gradgradcheck`` does: so the double
    backward of every op on the way is checked, with respect to the inputs and to the upstream gradient.
    `grad_outputs` defaults to random values (from a generator seeded with `seed`). The report is `gradcheck`'s,
    headed as the second-order check: "output k" is the gradient of input k (or of the k-th parameter), and
    "grad_output k" names an upstream gradient. A backward that cannot be differentiated fails with a report
    that says so.
    """
    report = _second_order_report(fn, inputs, grad_outputs, eps, atol, rtol, fast_mode, seed)
    return _verdict(report, raise_exception)
