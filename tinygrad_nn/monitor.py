"""The gradient monitor: what happens to a model's gradients, weights and units over training, with a verdict.

`GradientMonitor` watches a model while it trains, in your own loop or as a `fit` callback::

    from tinygrad_nn.monitor import GradientMonitor

    with GradientMonitor(model) as monitor:          # or monitor.attach() ... monitor.detach()
        for x, y in loader:
            loss = loss_fn(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    for finding in monitor.findings():
        print(finding)
    monitor.plot_flow("flow.png")          # mean and max |g| per parameter
    monitor.plot_history("history.png")    # gradient norm, update ratio and dead units per layer, over steps
    monitor.plot_histograms("histograms.png")

    history = training.fit(model, loss_fn, optimizer, loader, epochs=5, callbacks=[GradientMonitor(model)])

What it records, per parameter (dotted name) at each step it samples (every `every`-th backward pass): the
gradient's norm, its mean and max |g|, the weight norm, and the update-to-weight ratio of the optimizer step that
follows; per activation module (ReLU, Sigmoid, Tanh), the fraction of its units that are dead (a ReLU's output is
zero for every sample) or saturated (a sigmoid's or tanh's output is within `saturation_tolerance` of its bounds
for every sample). `findings` turns the records into verdicts, each naming the layer, the steps and the picture
behind it.

How it records, and what that costs: one post-accumulate-grad hook per parameter (which keeps backward on its
fast path) and one forward hook per activation module; the first hook to run after a backward reads every
gradient at once. The gradient norm, max |g| and the weight norm are exact. For a parameter with more than
`sample_size` entries, mean |g|, the update ratio and the histograms are taken over a fixed sample of
`sample_size` of its entries, evenly spaced from a start that a generator of the monitor's own chooses:
estimates, which keep the cost of a step small; ``sample_size=None`` makes them exact, and costs several times as
much. Detached, the monitor costs nothing: no hook stays behind.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .autograd import RemovableHandle, is_grad_enabled
from .nn.layers import ReLU, Sigmoid, Tanh
from .nn.module import Module
from .tensor import Tensor

__all__ = [
    "DEAD_FRACTION",
    "EXPLODING_GROWTH",
    "PERSISTENCE",
    "SATURATED_FRACTION",
    "UPDATE_RATIO_RANGE",
    "VANISHING_RATIO",
    "Finding",
    "GradientMonitor",
]

# --------------------------------------------------------------------------------------------------------------
# Thresholds of the findings (each is also an argument of GradientMonitor.findings)
# --------------------------------------------------------------------------------------------------------------

VANISHING_RATIO = 1e-3
"""A layer's gradient norm below this times the output layer's is vanishing."""

EXPLODING_GROWTH = 1e3
"""A layer's gradient norm above this times its norm at the first recorded steps is exploding."""

DEAD_FRACTION = 0.5
"""More than this fraction of a ReLU module's units dead is a finding."""

SATURATED_FRACTION = 0.5
"""More than this fraction of a sigmoid's or tanh's units saturated is a finding."""

UPDATE_RATIO_RANGE = (1e-5, 1e-1)
"""Update-to-weight ratios outside this range are far from the healthy 1e-3 (a factor of 100 either way)."""

PERSISTENCE = 0.5
"""A condition must hold in at least this fraction of the recorded steps to become a finding."""

# The statistics recorded per parameter and sampled step, in the order of the records' middle axis.
_STATISTICS = ("grad_norm", "grad_mean_abs", "grad_max_abs", "weight_norm", "update_ratio")
_GRAD_NORM, _MEAN_ABS, _MAX_ABS, _WEIGHT_NORM, _UPDATE_RATIO = range(5)

# The activation modules watched: kind, the centre of the output's range and its half width.
_ACTIVATIONS: tuple[tuple[type, str, float, float], ...] = (
    (ReLU, "relu", 0.0, 0.0),
    (Sigmoid, "sigmoid", 0.5, 0.5),
    (Tanh, "tanh", 0.0, 1.0),
)

_STATE_FORMAT = "tinygrad_nn GradientMonitor"
_STATE_VERSION = 1
_INITIAL_ROWS = 64


# --------------------------------------------------------------------------------------------------------------
# Checking arguments
# --------------------------------------------------------------------------------------------------------------


def _whole_number(owner: str, name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{owner}: {name} must be a whole number >= {minimum}, got {value!r}")
    return int(value)


def _positive_number(owner: str, name: str, value: Any, below: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{owner}: {name} must be a positive number, got {value!r}")
    if below is not None and value >= below:
        raise ValueError(f"{owner}: {name} must be below {below}, got {value!r}")
    return float(value)


def _evenly_spaced(size: int, row: int, count: int, generator: np.random.Generator) -> slice:
    """`count` evenly spaced entries of a flat parameter of `size` entries, rows of `row`: a slice, from a random start.

    A slice, not a list of indices: reading it is a strided view, which costs a fraction of gathering scattered
    entries from a big parameter. The step is chosen to share no factor with the row length, so that the entries
    fall in every column as well as in every row.
    """
    step = size // count
    while step > 1 and math.gcd(step, row) != 1:
        step -= 1
    start = int(generator.integers(0, size - step * (count - 1)))
    return slice(start, start + step * (count - 1) + 1, step)


# --------------------------------------------------------------------------------------------------------------
# Activation sites
# --------------------------------------------------------------------------------------------------------------


class _Site:
    """One activation module at one width (a module reused at several widths is several sites), and its units.

    `quiet` counts, per unit, the samples in a row (most recent last) in which the unit was dead or saturated;
    None when it has to start again (a batch was skipped). `values` holds the fraction recorded at each sampled
    step, `rows` the record row of each.
    """

    __slots__ = (
        "centre",
        "feeder",
        "kind",
        "module_name",
        "name",
        "pending",
        "quiet",
        "rows",
        "threshold",
        "units",
        "values",
    )

    def __init__(self, module_name: str, kind: str, centre: float, half: float, tolerance: float, units: int) -> None:
        self.module_name = module_name
        self.name = module_name
        self.kind = kind
        self.centre = centre
        # closeness(x) = half**2 - (x - centre)**2 is 0 at the bounds and grows towards the centre: an output is
        # within `tolerance` of a bound when its closeness is at most this.
        self.threshold = half * half - (half - tolerance) ** 2
        self.units = units
        self.quiet: np.ndarray | None = None
        self.pending: float | None = None  # the fraction of the step being recorded
        self.rows: list[int] = []
        self.values: list[float] = []
        self.feeder: str | None = None  # the layer (with parameters) whose output the module gets, when known

    def closeness(self, data: np.ndarray) -> np.ndarray:
        """How far from its bounds each output is (see `threshold`): x (1 - x) for a sigmoid, 1 - x**2 for tanh."""
        if self.kind == "sigmoid":
            return data * (1 - data)
        return 1 - data * data


# --------------------------------------------------------------------------------------------------------------
# Findings
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One verdict of `GradientMonitor.findings`: what is wrong, where, when, and the picture that shows it.

    - `kind`: ``"vanishing"``, ``"exploding"``, ``"nonfinite"``, ``"zero_gradient"``, ``"dead_units"``,
      ``"saturated_units"``, ``"update_ratio"``, ``"not_updated"`` or ``"no_gradient"``.
    - `layer`: the dotted name of the module concerned (``"0"``, ``"encoder.fc1"``; the model's class name for
      parameters of the model itself); `parameters`: the parameters concerned, by dotted name (for dead or
      saturated units, those of the layer that feeds the activation module, when the graph tells).
    - `steps`: the first and last recorded step at which the condition held.
    - `figure`: the method whose picture shows it (``"plot_history"``, ``"plot_flow"``).
    - `value`: the number behind the verdict (a ratio, a fraction, a norm); `message`: the verdict in words,
      with that number, which is also what ``str(finding)`` gives.
    - `severity`: ``"warning"``, or ``"note"`` for what may be intended (a frozen parameter).
    """

    kind: str
    layer: str
    parameters: tuple[str, ...]
    steps: tuple[int, int]
    figure: str
    value: float
    message: str
    severity: str = "warning"

    def __str__(self) -> str:
        return self.message


# --------------------------------------------------------------------------------------------------------------
# The monitor
# --------------------------------------------------------------------------------------------------------------


class GradientMonitor:
    """Record a model's gradients, weights, updates and activations over training; judge them; draw them.

    ``GradientMonitor(model, every=1)`` records at every `every`-th backward pass (the first included) once
    attached: by ``with GradientMonitor(model) as monitor:``, by `attach` and `detach`, or by passing it to
    `fit` in ``callbacks=[...]`` (which attaches it for the run). A step is one backward pass that reaches the
    model's parameters; in `fit` it is fit's optimizer step, so the numbers agree with ``FitState.step`` (a
    resumed run included; a monitor used for a second run goes on counting from the first).

    - `sample_size`: a parameter with more entries than this gets its mean |g|, update ratio and histograms
      from a fixed, evenly spaced sample of this many entries (estimates); None takes every entry (exact,
      slower). The gradient norm, max |g| and the weight norm are always exact.
    - `dead_window`: a ReLU unit is dead, and a sigmoid or tanh unit saturated, when it has been so for each of
      the last `dead_window` samples it saw: the whole batch when batches are at least that big, the last few
      batches when they are smaller (a batch of one image says nothing alone).
    - `saturation_tolerance`: how close to its bounds (0 and 1 for a sigmoid, -1 and 1 for tanh) an output must
      be to count as saturated.
    - `histogram_steps`: how many steps' gradient samples to keep for `plot_histograms`, spread evenly over the
      run (the latest step is always kept besides).
    - `seed`: the monitor's own generator, which chooses the sampled entries; it never draws from the
      framework's or numpy's generators, so training is the same with and without it.

    The parameters watched are the model's when the monitor is made. A parameter that does not require grad
    (frozen) is recorded too; it gets no gradient, and `findings` notes it.
    """

    def __init__(
        self,
        model: Module,
        every: int = 1,
        *,
        sample_size: int | None = 1024,
        dead_window: int = 64,
        saturation_tolerance: float = 1e-3,
        histogram_steps: int = 32,
        seed: int = 0,
    ) -> None:
        owner = "GradientMonitor"
        if not isinstance(model, Module):
            raise TypeError(f"{owner} watches a Module (a model), got {type(model).__name__}")
        self.model = model
        self.every = _whole_number(owner, "every", every, 1)
        self.sample_size = None if sample_size is None else _whole_number(owner, "sample_size", sample_size, 1)
        self.dead_window = _whole_number(owner, "dead_window", dead_window, 1)
        self.saturation_tolerance = _positive_number(owner, "saturation_tolerance", saturation_tolerance, 0.5)
        self.histogram_steps = _whole_number(owner, "histogram_steps", histogram_steps, 2)
        self.seed = _whole_number(owner, "seed", seed, 0)

        named = list(model.named_parameters())
        if not named:
            raise ValueError(f"{owner}: the model ({type(model).__name__}) has no parameters to watch")
        self._names = [name for name, _ in named]
        self._params = [parameter for _, parameter in named]
        self._shapes = [tuple(parameter.shape) for parameter in self._params]
        modules = dict(model.named_modules())
        self._module_names = {id(module): name for name, module in modules.items()}
        layer_names: list[str] = []
        self._layer_of: list[int] = []
        for name in self._names:
            layer = name.rpartition(".")[0]
            if layer not in layer_names:
                layer_names.append(layer)
            self._layer_of.append(layer_names.index(layer))
        self._layer_names = layer_names
        self._layer_classes = [type(modules[layer]).__name__ for layer in layer_names]
        self._build_layout()
        self._activation_modules = [
            (name, module, kind, centre, half)
            for name, module in modules.items()
            for cls, kind, centre, half in _ACTIVATIONS
            if isinstance(module, cls)
        ]
        self._handles: list[RemovableHandle] = []
        self._attached_by_fit = False
        self._reset_records()

    # ---------------------------------------------------------------------------------------------------------
    # Layout: where each parameter's sample sits in the flat buffers
    # ---------------------------------------------------------------------------------------------------------

    def _build_layout(self) -> None:
        generator = np.random.default_rng(self.seed)
        self._sample_index: list[slice | None] = []
        lengths = []
        for parameter in self._params:
            size = parameter.size
            if size == 0:
                self._sample_index.append(None)
                lengths.append(1)  # a NaN stands in for the empty parameter, so that every segment has an entry
            elif self.sample_size is None or size <= self.sample_size:
                self._sample_index.append(None)
                lengths.append(size)
            else:
                self._sample_index.append(_evenly_spaced(size, parameter.shape[-1], self.sample_size, generator))
                lengths.append(self.sample_size)
        self._starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.intp)
        self._lengths = np.asarray(lengths, dtype=np.float64)
        self._total = int(sum(lengths))
        self._nan_piece = np.full(1, np.nan)
        self._nan_segments = [np.full(length, np.nan) for length in lengths]  # a gradient that is missing
        self._empty_slots = [slot for slot, parameter in enumerate(self._params) if parameter.size == 0]
        single = [slot for slot, parameter in enumerate(self._params) if parameter.dtype == np.float32]
        self._single_slots = np.asarray(single, dtype=np.intp) if single else None
        self._sampled_slots = [slot for slot, index in enumerate(self._sample_index) if index is not None]
        # A sampled parameter's sum of squared changes, scaled to the whole parameter.
        self._scale = np.asarray(
            [
                p.size / length if index is not None else 1.0
                for p, index, length in zip(self._params, self._sample_index, lengths)
            ]
        )
        # Working buffers, reused every step: the gradients' samples, a scratch buffer, and two for the weights'
        # samples (one holds the weights before the update that the other will measure).
        self._gradient_buffer = np.full(self._total, np.nan)
        self._scratch = np.empty(self._total)
        self._weight_buffers = (np.empty(self._total), np.empty(self._total))

    def _reset_records(self) -> None:
        count = len(self._params)
        self._step = 0  # backward passes seen (or fit's step)
        self._rows = 0
        self._row_steps = np.zeros(_INITIAL_ROWS, dtype=np.int64)
        self._records = np.full((_INITIAL_ROWS, len(_STATISTICS), count), np.nan)
        self._received = np.ones((_INITIAL_ROWS, count), dtype=bool)  # False: the parameter had no gradient
        self._awaiting_update: int | None = None  # the row whose update ratio waits for the weights after the step
        self._weights_then: np.ndarray | None = None  # the weights' samples before that update
        self._sites: dict[tuple[int, int], _Site] = {}
        self._ones: dict[tuple[int, np.dtype], np.ndarray] = {}
        self._site_list: list[_Site] = []
        self._histograms: list[tuple[int, np.ndarray]] = []
        self._histogram_stride = 1
        self._output_slot: int | None = None  # the parameter whose gradient backward reaches first
        self._visited = [True] * count
        self._ran_since_callback = False

    # ---------------------------------------------------------------------------------------------------------
    # Attaching
    # ---------------------------------------------------------------------------------------------------------

    @property
    def attached(self) -> bool:
        """True while the monitor's hooks are on the model."""
        return bool(self._handles)

    def attach(self) -> GradientMonitor:
        """Put the hooks on the model and start recording; returns the monitor. Attaching twice does nothing.

        Raises ValueError when no parameter of the model requires grad (there would be nothing to record).
        """
        if self._handles:
            return self
        trainable = [(slot, p) for slot, p in enumerate(self._params) if p.requires_grad]
        if not trainable:
            raise ValueError(
                f"GradientMonitor: none of the {len(self._params)} parameters of the model requires grad, so no "
                "backward will reach them; unfreeze some (requires_grad_(True)) before attaching"
            )
        self._slot_of = {id(p): slot for slot, p in trainable}
        handles = [p.register_post_accumulate_grad_hook(self._on_gradient) for _, p in trainable]
        self._site_keys = {}
        for name, module, kind, centre, half in self._activation_modules:
            self._site_keys[id(module)] = (name, kind, centre, half)
            handles.append(module.register_forward_hook(self._on_activation))
        self._handles = handles
        # Hooks run only inside a backward, so the first call after attaching always starts a step.
        self._visited = [True] * len(self._params)
        return self

    def detach(self) -> None:
        """Take the hooks off (the records stay); the update of the last recorded step is settled first."""
        if self._awaiting_update is not None:
            self._settle_update()
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def __enter__(self) -> GradientMonitor:
        return self.attach()

    def __exit__(self, *exc_info: object) -> None:
        self.detach()

    # ---------------------------------------------------------------------------------------------------------
    # fit's callbacks
    # ---------------------------------------------------------------------------------------------------------

    def on_train_begin(self, state: Any) -> None:
        """Fit starts: attach (unless attached already), and detach again when it ends."""
        if not self._handles:
            self.attach()
            self._attached_by_fit = True
        self._ran_since_callback = False

    def on_after_backward(self, state: Any) -> None:
        """The step's gradients are there: record them now if no hook did (no watched parameter got one)."""
        if not self._ran_since_callback:
            self._begin_step()
        self._ran_since_callback = False

    def on_step_end(self, state: Any) -> None:
        """The optimizer has stepped: the update ratio of the step just recorded can be measured."""
        if self._awaiting_update is not None:
            self._settle_update()

    def on_train_end(self, state: Any) -> None:
        """Fit ends, however it ends: detach if fit attached."""
        if self._attached_by_fit:
            self._attached_by_fit = False
            self.detach()

    # ---------------------------------------------------------------------------------------------------------
    # Recording (the hooks): every line here runs at every step, so it is written for speed
    # ---------------------------------------------------------------------------------------------------------

    def _on_gradient(self, parameter: Any) -> None:
        """A parameter's gradient is accumulated; the first call after a backward records the whole step.

        Backward runs these hooks after every gradient is in place, so the first one can read them all. It knows
        it is the first of a backward because that parameter's hook already ran since the last step began (or
        nothing ran since attaching). Two backward passes that reach no parameter in common, one right after the
        other, count as one step outside `fit` (in fit, its step decides).
        """
        slot = self._slot_of[id(parameter)]
        visited = self._visited
        if visited[slot]:
            self._output_slot = slot  # the first leaf backward reached: nearest the output
            self._begin_step()
            visited = self._visited
        visited[slot] = True

    def _begin_step(self) -> None:
        self._step += 1
        self._ran_since_callback = True
        self._visited = [False] * len(self._params)
        sampled = not (self._step - 1) % self.every
        if not sampled and self._awaiting_update is None:
            return
        # One pass over the weights' samples serves twice: as the weights after the previous recorded step's
        # update (its update ratio), and as the weights before this step's.
        weights = self._sample_weights()
        if self._awaiting_update is not None:
            self._settle_update(weights)
        if sampled:
            self._record([p.grad for p in self._params], weights)

    def _sample_weights(self) -> np.ndarray:
        """The weights' samples, into the working buffer that does not hold the weights before an update."""
        buffer = self._weight_buffers[self._weights_then is self._weight_buffers[0]]
        pieces: list[Any] = [None] * len(self._params)  # local: views that must not outlive the step
        for slot, parameter in enumerate(self._params):
            index = self._sample_index[slot]
            data = parameter.data.reshape(-1)
            pieces[slot] = data if index is None else data[index]
        for slot in self._empty_slots:
            pieces[slot] = self._nan_piece
        np.concatenate(pieces, out=buffer)
        return buffer

    def _settle_update(self, weights: np.ndarray | None = None) -> None:
        """The update of the step awaiting it: the sum of (weights now - weights then) squared, per parameter."""
        if weights is None:
            weights = self._sample_weights()
        row = self._awaiting_update
        self._awaiting_update = None
        change = self._scratch
        np.subtract(weights, self._weights_then, out=change)
        np.multiply(change, change, out=change)
        np.add.reduceat(change, self._starts, out=self._records[row, _UPDATE_RATIO])

    def _record(self, grads: list[Any], weights: np.ndarray) -> None:
        """One recorded step: every statistic but the update, which the next step settles.

        The records hold sums, the fewest numpy calls per step: squared norms, sums of |g|, the largest |g|, sums
        of squared weights and of squared changes. `_values` turns them into norms, means and ratios when read.
        """
        row = self._new_row()
        block = self._records[row]
        squares = block[_GRAD_NORM]
        pieces: list[Any] = [None] * len(self._params)  # local: views that must not outlive the step
        for slot, grad in enumerate(grads):
            if grad is None:
                pieces[slot] = self._nan_segments[slot]
                self._received[row, slot] = False
                continue
            if type(grad) is not np.ndarray:  # a Tensor, after backward(create_graph=True)
                grad = grad.data
            grad = grad.reshape(-1)
            squares[slot] = grad.dot(grad)  # exact, as numpy.linalg.norm computes it (before its square root)
            index = self._sample_index[slot]
            pieces[slot] = grad if index is None else grad[index]
        for slot in self._empty_slots:
            pieces[slot] = self._nan_piece
        gradients, scratch, starts = self._gradient_buffer, self._scratch, self._starts
        np.concatenate(pieces, out=gradients)
        np.abs(gradients, out=scratch)
        np.add.reduceat(scratch, starts, out=block[_MEAN_ABS])
        np.maximum.reduceat(scratch, starts, out=block[_MAX_ABS])
        # The weight norm is exact, computed as the gradient's (numpy.linalg.norm's dot product), and so is a
        # sampled parameter's largest |g|: reductions over the whole array that allocate nothing (mean |g| would
        # need |g| written out: it stays the sample's).
        weight_squares = block[_WEIGHT_NORM]
        for slot, parameter in enumerate(self._params):
            data = parameter.data.reshape(-1)
            weight_squares[slot] = data.dot(data)
        largest = block[_MAX_ABS]
        for slot in self._sampled_slots:
            grad = grads[slot]
            if grad is not None:
                grad = (grad if type(grad) is np.ndarray else grad.data).reshape(-1)
                largest[slot] = max(grad.max(), -grad.min())
        for slot in self._empty_slots:
            weight_squares[slot] = np.nan
        self._weights_then = weights
        self._awaiting_update = row
        for site in self._site_list:
            if site.pending is not None:
                site.rows.append(row)
                site.values.append(site.pending)
                site.pending = None
        if row % self._histogram_stride == 0:
            self._keep_histogram()

    def _values(self) -> np.ndarray:
        """The records as the statistics they are, (steps, statistics, parameters): norms, means, ratios."""
        raw = self._records[: self._rows]
        values = np.empty_like(raw)
        with np.errstate(divide="ignore", invalid="ignore"):  # weights all zero (a bias at its start): inf or NaN
            # The square root of the dot product, rounded to the gradient's precision: numpy.linalg.norm(grad),
            # to the last bit (rounding float64's square root of a float32 to float32 gives float32's).
            np.sqrt(raw[:, _GRAD_NORM], out=values[:, _GRAD_NORM])
            if self._single_slots is not None:
                values[:, _GRAD_NORM, self._single_slots] = values[:, _GRAD_NORM, self._single_slots].astype(np.float32)
            np.divide(raw[:, _MEAN_ABS], self._lengths, out=values[:, _MEAN_ABS])
            values[:, _MAX_ABS] = raw[:, _MAX_ABS]
            # Exact, as the gradient norm: numpy.linalg.norm(p.data) to the last bit.
            np.sqrt(raw[:, _WEIGHT_NORM], out=values[:, _WEIGHT_NORM])
            if self._single_slots is not None:
                values[:, _WEIGHT_NORM, self._single_slots] = values[:, _WEIGHT_NORM, self._single_slots].astype(
                    np.float32
                )
            # The change's squares are a sampled parameter's sample: scaled to the whole parameter, over its exact
            # squared norm (for a parameter taken whole the scale is 1, and the ratio exact).
            np.sqrt(raw[:, _UPDATE_RATIO] * self._scale / raw[:, _WEIGHT_NORM], out=values[:, _UPDATE_RATIO])
        return values

    def _new_row(self) -> int:
        row = self._rows
        if row == len(self._row_steps):
            self._row_steps = np.concatenate([self._row_steps, np.zeros(row, dtype=np.int64)])
            self._records = np.concatenate([self._records, np.full_like(self._records, np.nan)])
            self._received = np.concatenate([self._received, np.ones_like(self._received)])
        self._row_steps[row] = self._step
        self._rows = row + 1
        return row

    def _keep_histogram(self) -> None:
        """Keep this step's gradient samples: it is one of the evenly spread steps."""
        self._histograms.append((self._step, self._gradient_buffer.astype(np.float32)))
        if len(self._histograms) > self.histogram_steps:
            # Full: keep every other one, and from now on every other row's, so the kept ones stay even.
            self._histograms = self._histograms[::2]
            self._histogram_stride *= 2

    def _on_activation(self, module: Module, args: tuple, output: Any) -> None:
        """After an activation module's forward: count its dead (or saturated) units."""
        if not isinstance(output, Tensor) or not is_grad_enabled():
            return  # evaluation under no_grad is not training
        data = output.data
        shape = data.shape
        if not shape:
            return
        samples, units = (shape[0], shape[1]) if len(shape) > 1 else (1, shape[0])
        site = self._sites.get((id(module), units))
        if site is None:
            site = self._new_site(module, units, args)
        sampled = not self._step % self.every  # the coming backward is step self._step + 1
        if samples >= self.dead_window:  # this batch alone decides
            site.quiet = None
            if sampled:
                site.pending = self._quiet_count(site, data) / units
            return
        # Small batches: count, per unit, the samples in a row it has been quiet, across batches.
        quiet_now = self._quiet_units(site, data)
        counts = site.quiet
        site.quiet = counts = np.where(quiet_now, samples if counts is None else counts + samples, 0)
        if sampled:
            site.pending = np.count_nonzero(counts >= self.dead_window) / units

    def _quiet_count(self, site: _Site, data: np.ndarray) -> int:
        """How many units were dead or saturated for every sample: `_quiet_units`, counted with fewer calls."""
        if data.ndim != 2:
            return int(np.count_nonzero(self._quiet_units(site, data)))
        ones = self._ones_for(data)
        if site.kind == "relu":
            return data.shape[1] - int(np.count_nonzero(ones.dot(data)))
        closeness = site.closeness(data)
        candidates = np.flatnonzero(ones.dot(closeness) <= data.shape[0] * site.threshold)
        if not candidates.size:  # the common case: no unit is anywhere near saturated
            return 0
        return int(np.count_nonzero(closeness[:, candidates].max(axis=0) <= site.threshold))

    def _ones_for(self, data: np.ndarray) -> np.ndarray:
        """A vector of ones to sum a batch's rows with, in the batch's size and dtype (made once)."""
        key = (data.shape[0], data.dtype)
        ones = self._ones.get(key)
        if ones is None:
            ones = self._ones[key] = np.ones(data.shape[0], dtype=data.dtype)
        return ones

    def _quiet_units(self, site: _Site, data: np.ndarray) -> np.ndarray:
        """Which units were dead (ReLU: zero) or saturated (sigmoid, tanh: near a bound) for every sample."""
        if data.ndim != 2:  # one sample (1-d), or images (units are channels, over the batch and positions)
            axis = (0, *range(2, data.ndim)) if data.ndim > 2 else None
            if site.kind == "relu":
                return ~data.any(axis=axis) if axis is not None else data == 0
            closeness = site.closeness(data)
            return (closeness.max(axis=axis) if axis is not None else closeness) <= site.threshold
        # A batch of vectors: sums over the batch by a matrix-vector product, several times faster than numpy's
        # reductions along the first axis.
        ones = self._ones_for(data)
        if site.kind == "relu":
            return ones.dot(data) == 0  # outputs are >= 0: a unit sums to zero only when it is zero throughout
        # closeness >= 0 is small only near a bound; a unit whose sum is above samples * threshold is not saturated
        # (most units), the few others are checked sample by sample.
        closeness = site.closeness(data)
        quiet = ones.dot(closeness) <= data.shape[0] * site.threshold
        candidates = np.flatnonzero(quiet)
        if candidates.size:
            quiet[candidates] = closeness[:, candidates].max(axis=0) <= site.threshold
        return quiet

    def _new_site(self, module: Module, units: int, args: tuple) -> _Site:
        name, kind, centre, half = self._site_keys[id(module)]
        site = _Site(name, kind, centre, half, self.saturation_tolerance, units)
        # The layer whose output this is (a Linear before its ReLU): its weights decide which units die. The op
        # that made the input knows the module call it ran in.
        node = args[0].grad_fn if args and isinstance(args[0], Tensor) else None
        scope = getattr(node, "scope", None)
        feeder = self._module_names.get(id(scope[0])) if scope else None
        if feeder is not None and feeder in self._layer_names:
            site.feeder = feeder
        widths = [other for other in self._site_list if other.module_name == name]
        if widths:  # one module at several widths: each width its own site, named by it
            for other in [*widths, site]:
                other.name = f"{name} ({other.units} units)"
        self._sites[(id(module), units)] = site
        self._site_list.append(site)
        return site

    # ---------------------------------------------------------------------------------------------------------
    # What was recorded
    # ---------------------------------------------------------------------------------------------------------

    @property
    def steps(self) -> np.ndarray:
        """The recorded steps' numbers (1-based), in order."""
        return self._row_steps[: self._rows].copy()

    @property
    def parameter_names(self) -> list[str]:
        """The watched parameters' dotted names, in the model's order; the columns of the statistics."""
        return list(self._names)

    @property
    def layer_names(self) -> list[str]:
        """The modules that own the parameters, by dotted name ("" for the model itself), in the model's order."""
        return list(self._layer_names)

    @property
    def activation_names(self) -> list[str]:
        """The activation modules seen in training, by dotted name; the columns of `activation_fraction`."""
        return [site.name for site in self._site_list]

    @property
    def activation_kinds(self) -> list[str]:
        """For each of `activation_names`: ``"relu"`` (dead units), ``"sigmoid"`` or ``"tanh"`` (saturated)."""
        return [site.kind for site in self._site_list]

    def _statistic(self, index: int) -> np.ndarray:
        return self._values()[:, index]

    @property
    def grad_norm(self) -> np.ndarray:
        """The gradient's norm, an array (steps, parameters); NaN where a parameter had no gradient."""
        return self._statistic(_GRAD_NORM)

    @property
    def grad_mean_abs(self) -> np.ndarray:
        """The mean |g| of each gradient, (steps, parameters); over the sampled entries of big parameters."""
        return self._statistic(_MEAN_ABS)

    @property
    def grad_max_abs(self) -> np.ndarray:
        """The largest |g| of each gradient, (steps, parameters); over the sampled entries of big parameters."""
        return self._statistic(_MAX_ABS)

    @property
    def weight_norm(self) -> np.ndarray:
        """The weights' norm before the step's update, (steps, parameters)."""
        return self._statistic(_WEIGHT_NORM)

    @property
    def update_ratio(self) -> np.ndarray:
        """|update| / |weights| of the optimizer step after each recorded backward, (steps, parameters).

        NaN until the step is settled (by the next backward, fit's ``on_step_end``, or `detach`); inf for
        weights that were all zero. Over the sampled entries of big parameters.
        """
        return self._statistic(_UPDATE_RATIO)

    @property
    def received(self) -> np.ndarray:
        """Whether each parameter had a gradient at each recorded step, (steps, parameters) of bools."""
        return self._received[: self._rows].copy()

    @property
    def activation_fraction(self) -> np.ndarray:
        """The fraction of dead (ReLU) or saturated (sigmoid, tanh) units, (steps, activation modules).

        NaN where a module did not run with grad enabled in that step.
        """
        fractions = np.full((self._rows, len(self._site_list)), np.nan)
        for column, site in enumerate(self._site_list):
            fractions[site.rows, column] = site.values
        return fractions

    def history(self, name: str) -> dict[str, np.ndarray]:
        """One parameter's or activation module's records over the steps, by name, as 1-d arrays.

        A parameter's: ``step``, ``grad_norm``, ``grad_mean_abs``, ``grad_max_abs``, ``weight_norm`` and
        ``update_ratio``; an activation module's: ``step`` and ``dead_fraction`` (ReLU) or
        ``saturated_fraction`` (sigmoid, tanh)::

            monitor.history("0.weight")["grad_norm"]
        """
        if name in self._names:
            column = self._names.index(name)
            values = self._values()
            result = {"step": self.steps}
            for index, statistic in enumerate(_STATISTICS):
                result[statistic] = values[:, index, column].copy()
            return result
        for column, site in enumerate(self._site_list):
            if site.name == name:
                key = "dead_fraction" if site.kind == "relu" else "saturated_fraction"
                return {"step": self.steps, key: self.activation_fraction[:, column]}
        known = ", ".join([*self._names, *(site.name for site in self._site_list)])
        raise KeyError(f"GradientMonitor.history: no parameter or activation module named {name!r}; known: {known}")

    def parameter_averages(self) -> dict[str, dict[str, float]]:
        """Each parameter's statistics averaged over the recorded steps at which it had a gradient.

        ``{"0.weight": {"grad_norm": ..., "grad_mean_abs": ..., "grad_max_abs": ..., "weight_norm": ...,
        "update_ratio": ..., "steps": ..., "zero_steps": ...}}``: means of the finite values (the update ratio's
        median, which a first step from zero weights would otherwise dominate), how many steps had a gradient,
        and in how many of them it was all zero. What ``draw_graph(..., monitor=monitor)`` colours by.
        """
        averages = {}
        received = self._received[: self._rows]
        every = self._values()
        for column, name in enumerate(self._names):
            rows = received[:, column]
            values = every[:, :, column][rows]
            entry: dict[str, float] = {"steps": int(rows.sum())}
            for index, statistic in enumerate(_STATISTICS):
                finite = values[:, index][np.isfinite(values[:, index])]
                if not finite.size:
                    entry[statistic] = math.nan
                elif index == _UPDATE_RATIO:
                    entry[statistic] = float(np.median(finite))
                else:
                    entry[statistic] = float(finite.mean())
            entry["zero_steps"] = int(np.count_nonzero(values[:, _GRAD_NORM] == 0))
            averages[name] = entry
        return averages

    def __repr__(self) -> str:
        state = "attached" if self._handles else "detached"
        every = "every step" if self.every == 1 else f"every {self.every} steps"
        return (
            f"GradientMonitor({type(self.model).__name__}, {len(self._names)} parameters, "
            f"{len(self._activation_modules)} activation modules, {every}, {self._rows} steps recorded, {state})"
        )

    # ---------------------------------------------------------------------------------------------------------
    # State, for fit's checkpoints
    # ---------------------------------------------------------------------------------------------------------

    def _settings(self) -> dict[str, Any]:
        return {
            "every": self.every,
            "sample_size": self.sample_size,
            "dead_window": self.dead_window,
            "saturation_tolerance": self.saturation_tolerance,
            "histogram_steps": self.histogram_steps,
            "seed": self.seed,
        }

    def state_dict(self) -> dict[str, Any]:
        """Everything recorded, as numbers, strings, lists and arrays (copies), for `fit`'s checkpoints.

        `fit` saves it with each checkpoint and a resumed run restores it (`load_state_dict`), so that a run
        stopped and resumed records exactly what a run that never stopped records.
        """
        rows = self._rows
        histograms = self._histogram_list()
        return {
            "format": _STATE_FORMAT,
            "version": _STATE_VERSION,
            "settings": self._settings(),
            "parameters": list(self._names),
            "shapes": [list(shape) for shape in self._shapes],
            "step": self._step,
            "row_steps": self._row_steps[:rows].copy(),
            "records": self._records[:rows].copy(),
            "received": self._received[:rows].copy(),
            "awaiting_update": self._awaiting_update,
            "weights_then": None if self._weights_then is None else self._weights_then.copy(),
            "output_slot": self._output_slot,
            "sites": [
                {
                    "module": site.module_name,
                    "kind": site.kind,
                    "units": site.units,
                    "rows": np.asarray(site.rows, dtype=np.int64),
                    "values": np.asarray(site.values, dtype=np.float64),
                    "quiet": None if site.quiet is None else site.quiet.copy(),
                    "pending": site.pending,
                    "feeder": site.feeder,
                }
                for site in self._site_list
            ],
            "histogram_steps": np.asarray([step for step, _ in histograms], dtype=np.int64),
            "histogram_samples": (
                np.stack([samples for _, samples in histograms]) if histograms else np.zeros((0, self._total))
            ).astype(np.float32),
            "histogram_stride": self._histogram_stride,
            "histogram_kept": len(self._histograms),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what `state_dict` saved, into a monitor of the same model made with the same settings.

        ValueError (naming what differs) when the state belongs to another model or other settings, or is not a
        monitor's state at all; nothing changes then.
        """
        where = "GradientMonitor.load_state_dict"
        if not isinstance(state, Mapping):
            raise TypeError(f"{where} takes the dict state_dict() returns, got {type(state).__name__}")
        if state.get("format") != _STATE_FORMAT or state.get("version") != _STATE_VERSION:
            raise ValueError(f"{where}: this is not the state of a GradientMonitor (format version {_STATE_VERSION})")
        try:
            restored = self._read_state(state)
        except (KeyError, TypeError, IndexError) as error:
            detail = f"missing {error}" if isinstance(error, KeyError) else str(error)
            raise ValueError(f"{where}: the state is damaged ({detail})") from None
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None
        for name, value in restored.items():
            setattr(self, name, value)
        self._visited = [True] * len(self._params)
        self._ran_since_callback = False

    def _read_state(self, state: Mapping[str, Any]) -> dict[str, Any]:
        """Check a state and return the attributes it sets; raises before anything is changed."""
        settings = dict(state["settings"])
        for name, value in self._settings().items():
            if settings.get(name) != value:
                raise ValueError(
                    f"it was recorded with {name}={settings.get(name)!r}, this monitor has {name}={value!r}"
                )
        names = [str(name) for name in state["parameters"]]
        if names != self._names:
            missing = [name for name in self._names if name not in names]
            extra = [name for name in names if name not in self._names]
            raise ValueError(
                "it was recorded on a model with other parameters"
                + (f"; this model also has {', '.join(missing)}" if missing else "")
                + (f"; that model also had {', '.join(extra)}" if extra else "")
            )
        shapes = [tuple(int(size) for size in shape) for shape in state["shapes"]]
        for name, shape, own in zip(names, shapes, self._shapes):
            if shape != own:
                raise ValueError(f"its parameter {name} has shape {shape}, this model's {own}")
        count = len(names)
        row_steps = np.asarray(state["row_steps"], dtype=np.int64).reshape(-1)
        rows = len(row_steps)
        records = np.asarray(state["records"], dtype=np.float64)
        received = np.asarray(state["received"], dtype=bool)
        if records.shape != (rows, len(_STATISTICS), count) or received.shape != (rows, count):
            raise ValueError(f"its records do not fit {rows} steps of {count} parameters")
        step = int(state["step"])
        if step < 0 or (rows and (row_steps.min() < 1 or row_steps.max() > step or np.any(np.diff(row_steps) <= 0))):
            raise ValueError("its step numbers are out of order")
        awaiting = state["awaiting_update"]
        awaiting = None if awaiting is None else int(awaiting)
        weights_then = _optional_array(state["weights_then"], (self._total,))
        if awaiting is not None and (not 0 <= awaiting < rows or weights_then is None):
            raise ValueError("its pending update does not fit its records")
        output_slot = state["output_slot"]
        output_slot = None if output_slot is None else int(output_slot)
        if output_slot is not None and not 0 <= output_slot < count:
            raise ValueError(f"its output parameter {output_slot} is not one of the {count}")
        capacity = max(_INITIAL_ROWS, rows)
        full_steps = np.zeros(capacity, dtype=np.int64)
        full_steps[:rows] = row_steps
        full_records = np.full((capacity, len(_STATISTICS), count), np.nan)
        full_records[:rows] = records
        full_received = np.ones((capacity, count), dtype=bool)
        full_received[:rows] = received
        modules = {name: (kind, centre, half) for name, _, kind, centre, half in self._activation_modules}
        module_ids = {name: id(module) for name, module, *_ in self._activation_modules}
        sites: dict[tuple[int, int], _Site] = {}
        site_list = []
        for entry in state["sites"]:
            module_name, kind, units = str(entry["module"]), str(entry["kind"]), int(entry["units"])
            if module_name not in modules or modules[module_name][0] != kind:
                raise ValueError(f"it watched a {kind} module {module_name!r} that this model does not have")
            _, centre, half = modules[module_name]
            site = _Site(module_name, kind, centre, half, self.saturation_tolerance, units)
            site.rows = [int(row) for row in np.asarray(entry["rows"]).reshape(-1)]
            site.values = [float(value) for value in np.asarray(entry["values"]).reshape(-1)]
            if len(site.rows) != len(site.values) or any(not 0 <= row < rows for row in site.rows):
                raise ValueError(f"its counts of {module_name} do not fit its records")
            site.quiet = _optional_array(entry["quiet"], (units,), np.int64)
            site.pending = None if entry["pending"] is None else float(entry["pending"])
            feeder = entry.get("feeder")
            if feeder is not None and feeder not in self._layer_names:
                raise ValueError(f"its module {module_name} is fed by a layer {feeder!r} this model does not have")
            site.feeder = feeder
            sites[(module_ids[module_name], units)] = site
            site_list.append(site)
        for site in site_list:  # names as _new_site gives them
            if sum(other.module_name == site.module_name for other in site_list) > 1:
                site.name = f"{site.module_name} ({site.units} units)"
        histogram_steps = np.asarray(state["histogram_steps"], dtype=np.int64).reshape(-1)
        samples = np.asarray(state["histogram_samples"], dtype=np.float32)
        if samples.shape != (len(histogram_steps), self._total):
            raise ValueError("its gradient samples do not fit its steps")
        kept = int(state["histogram_kept"])
        stride = int(state["histogram_stride"])
        if not 0 <= kept <= len(histogram_steps) or stride < 1:
            raise ValueError("its gradient samples are not counted right")
        histograms = [(int(step), samples[index].copy()) for index, step in enumerate(histogram_steps)]
        gradient_buffer = np.full(self._total, np.nan)
        if len(histograms) > kept:  # the latest step's samples, kept apart from the evenly spread ones
            gradient_buffer[:] = histograms[-1][1]
        return {
            "_step": step,
            "_rows": rows,
            "_row_steps": full_steps,
            "_records": full_records,
            "_received": full_received,
            "_awaiting_update": awaiting,
            "_weights_then": None if weights_then is None else self._own_weight_buffer(weights_then),
            "_output_slot": output_slot,
            "_sites": sites,
            "_site_list": site_list,
            "_histograms": histograms[:kept],
            "_histogram_stride": stride,
            "_gradient_buffer": gradient_buffer,
        }

    def _own_weight_buffer(self, values: np.ndarray) -> np.ndarray:
        buffer = self._weight_buffers[0]
        buffer[:] = values
        return buffer

    def _histogram_list(self) -> list[tuple[int, np.ndarray]]:
        """The kept steps' gradient samples, and the latest recorded step's when it is not among them."""
        kept = list(self._histograms)
        if self._rows:
            latest = int(self._row_steps[self._rows - 1])
            if not kept or kept[-1][0] != latest:
                kept.append((latest, self._gradient_buffer.astype(np.float32)))
        return kept

    # ---------------------------------------------------------------------------------------------------------
    # Layers: the parameters' records gathered per module
    # ---------------------------------------------------------------------------------------------------------

    def _layer_text(self, layer: int) -> str:
        name, cls = self._layer_names[layer], self._layer_classes[layer]
        return f"{name} ({cls})" if name else f"the model's own ({cls})"

    def _layer_label(self, layer: int) -> str:
        return self._layer_names[layer] or self._layer_classes[layer]

    def _output_layer(self) -> int | None:
        """The layer whose gradient backward reaches first (nearest the loss), or the last one with gradients."""
        if self._output_slot is not None:
            return self._layer_of[self._output_slot]
        received = self._received[: self._rows].any(axis=0)
        with_gradients = [self._layer_of[slot] for slot in range(len(self._params)) if received[slot]]
        return max(with_gradients) if with_gradients else None

    def _layer_series(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per layer and step: its gradient norm, its update ratio, and whether it had a gradient.

        The norm is that of all the layer's parameters together; each result is (steps, layers), NaN where undefined.
        """
        rows = self._rows
        membership = np.zeros((len(self._params), len(self._layer_names)))
        membership[np.arange(len(self._params)), self._layer_of] = 1.0
        received = self._received[:rows]
        values = self._values()
        norms = values[:, _GRAD_NORM]
        with np.errstate(over="ignore", invalid="ignore"):
            squares = np.where(received, norms * norms, 0.0)
            has = (received @ membership) > 0
            grad_norm = np.where(has, np.sqrt(squares @ membership), np.nan)
            weight = values[:, _WEIGHT_NORM]
            change = values[:, _UPDATE_RATIO] * weight
            usable = received & np.isfinite(change) & (weight > 0)
            change_squares = np.where(usable, change * change, 0.0) @ membership
            weight_squares = np.where(usable, weight * weight, 0.0) @ membership
            update = np.where((usable @ membership) > 0, np.sqrt(change_squares / weight_squares), np.nan)
        return grad_norm, update, has

    # ---------------------------------------------------------------------------------------------------------
    # Findings
    # ---------------------------------------------------------------------------------------------------------

    def findings(
        self,
        *,
        vanishing_ratio: float = VANISHING_RATIO,
        exploding_growth: float = EXPLODING_GROWTH,
        dead_fraction: float = DEAD_FRACTION,
        saturated_fraction: float = SATURATED_FRACTION,
        update_ratio_range: tuple[float, float] = UPDATE_RATIO_RANGE,
        persistence: float = PERSISTENCE,
    ) -> list[Finding]:
        """What is wrong with the training recorded so far: a list of `Finding`, worst first; empty when healthy.

        A condition becomes a finding when it holds in at least `persistence` of the recorded steps at which it can
        be judged; NaN/inf gradients count from one step, explosions from two (one, if only one was recorded).

        - ``nonfinite``: a gradient holding NaN or inf (or too big for its dtype).
        - ``exploding``: a layer's gradient norm above `exploding_growth` times the smallest of its first five
          recorded norms, or above 1 / `vanishing_ratio` times the output layer's.
        - ``vanishing``: a layer's gradient norm below `vanishing_ratio` times the output layer's (the layer
          that backward reaches first); or below 10 times that, with updates too small to learn (the update ratio
          below `update_ratio_range`), when the fading gradient is why the layer stalls.
        - ``zero_gradient``: a layer whose gradient is exactly zero (what dead units after it cause).
        - ``dead_units``: more than `dead_fraction` of a ReLU module's units dead; ``saturated_units``: more
          than `saturated_fraction` of a sigmoid's or tanh's units saturated.
        - ``update_ratio``: a layer's update-to-weight ratio outside `update_ratio_range`, far from the healthy
          1e-3, judged at the steps where its gradient is not zero; or above 10 times its high end (an update as
          big as the weights) at any one step; ``not_updated``: gradients, but weights that
          never change (missing from the optimizer, or a learning rate of 0).
        - ``no_gradient``: a parameter that never received a gradient: a warning when it requires grad (it takes
          no part in the loss), a note when it is frozen (``requires_grad=False``), which is usually intended.

        Raises RuntimeError when no step has been recorded yet.
        """
        owner = "GradientMonitor.findings"
        thresholds = _Thresholds(
            vanishing_ratio=_positive_number(owner, "vanishing_ratio", vanishing_ratio, 1.0),
            exploding_growth=_positive_number(owner, "exploding_growth", exploding_growth),
            dead_fraction=_fraction(owner, "dead_fraction", dead_fraction),
            saturated_fraction=_fraction(owner, "saturated_fraction", saturated_fraction),
            update_range=_ratio_range(owner, update_ratio_range),
        )
        persistence = _fraction(owner, "persistence", persistence, allow_zero=False)
        if not self._rows:
            raise RuntimeError(
                f"{owner}: no step recorded yet: attach the monitor (with GradientMonitor(model) as monitor:, "
                "monitor.attach(), or fit's callbacks) and train"
            )
        if self._awaiting_update is not None and not self._handles:
            self._settle_update()
        judge = _Judge(self.steps, persistence)
        found = self._parameter_findings(judge)
        layer_norm, layer_update, has = self._layer_series()
        output = self._output_layer()
        for layer in range(len(self._layer_names)):
            if has[:, layer].any():
                found += self._layer_findings(judge, thresholds, layer, layer_norm, layer_update, has, output)
        found += self._activation_findings(judge, thresholds)
        order = list(_KINDS)
        found.sort(key=lambda finding: (finding.severity != "warning", order.index(finding.kind)))
        return found

    def _finding(
        self,
        kind: str,
        layer: int,
        steps: tuple[int, int],
        figure: str,
        value: float,
        message: str,
        names: tuple[str, ...] | None = None,
        severity: str = "warning",
    ) -> Finding:
        if names is None:
            names = tuple(name for name, owner in zip(self._names, self._layer_of) if owner == layer)
        return Finding(kind, self._layer_label(layer), names, steps, figure, float(value), message, severity)

    def _parameter_findings(self, judge: _Judge) -> list[Finding]:
        """NaN or inf gradients, and parameters that never received one, per layer."""
        found = []
        received = self._received[: self._rows]
        broken_each = received & ~np.isfinite(self._values()[:, _GRAD_NORM])
        everywhere = np.ones(self._rows, dtype=bool)
        span = judge.range_of(everywhere)
        for layer in range(len(self._layer_names)):
            slots = [slot for slot in range(len(self._params)) if self._layer_of[slot] == layer]
            text = self._layer_text(layer)
            broken = broken_each[:, slots].any(axis=1)
            if broken.any():  # never fine, not even once
                names = tuple(self._names[slot] for slot in slots if broken_each[:, slot].any())
                found.append(
                    self._finding(
                        "nonfinite",
                        layer,
                        judge.range_of(broken),
                        "plot_history",
                        float(broken.sum()),
                        f"NaN or inf gradient: {text}: the gradient of {', '.join(names)} holds NaN or inf "
                        f"({judge.describe(broken, everywhere)}): from NaN or inf in the data, or from weights or a "
                        "loss that overflowed (lower the learning rate, or clip the gradients; plot_history)",
                        names,
                    )
                )
            never = [slot for slot in slots if not received[:, slot].any()]
            unused = tuple(self._names[slot] for slot in never if self._params[slot].requires_grad)
            frozen = tuple(self._names[slot] for slot in never if not self._params[slot].requires_grad)
            if unused:
                takes = "it takes" if len(unused) == 1 else "they take"
                found.append(
                    self._finding(
                        "no_gradient",
                        layer,
                        span,
                        "plot_flow",
                        0.0,
                        f"no gradient: {text}: {', '.join(unused)} never received a gradient ({_steps_text(span)}): "
                        f"{takes} no part in computing the loss (or only through detach() or no_grad; plot_flow)",
                        unused,
                    )
                )
            if frozen:
                does, gets, them = ("does", "it gets", "it") if len(frozen) == 1 else ("do", "they get", "them")
                found.append(
                    self._finding(
                        "no_gradient",
                        layer,
                        span,
                        "plot_flow",
                        0.0,
                        f"frozen: {text}: {', '.join(frozen)} {does} not require grad, so {gets} no gradient "
                        f"({_steps_text(span)}); expected if you froze {them} (plot_flow)",
                        frozen,
                        severity="note",
                    )
                )
        return found

    def _layer_findings(
        self,
        judge: _Judge,
        thresholds: _Thresholds,
        layer: int,
        layer_norm: np.ndarray,
        layer_update: np.ndarray,
        has: np.ndarray,
        output: int | None,
    ) -> list[Finding]:
        """One layer's gradient norm against its own start and the output layer's, and its update ratio."""
        found = []
        text = self._layer_text(layer)
        norms, ratios = layer_norm[:, layer], layer_update[:, layer]
        finite = has[:, layer] & np.isfinite(norms)
        flowing = finite & (norms > 0)  # steps at which the layer had a gradient that was not all zero
        # An explosion: far above the smallest of the first norms (the first steps may be exploding already).
        if flowing.any():
            initial = float(norms[flowing][:5].min())
            grown = flowing & (norms > thresholds.exploding_growth * initial)
            if judge.happened(grown):
                peak = float(norms[grown].max())
                found.append(
                    self._finding(
                        "exploding",
                        layer,
                        judge.range_of(grown),
                        "plot_history",
                        peak / initial,
                        f"exploding gradient: {text}: its gradient norm grew to {_number(peak)}, "
                        f"{_number(peak / initial)} times its {_number(initial)} at the start (above "
                        f"{thresholds.exploding_growth:g} times in {judge.describe(grown, finite)}; plot_history)",
                    )
                )
        zero = finite & (norms == 0)
        if judge.holds(zero, finite):
            found.append(
                self._finding(
                    "zero_gradient",
                    layer,
                    judge.range_of(zero),
                    "plot_flow",
                    judge.fraction(zero, finite),
                    f"zero gradient: {text}: its gradient is all zero in {judge.describe(zero, finite)}: nothing "
                    "flows back to it (dead units after it stop the gradient; plot_flow)",
                )
            )
        relative_median = None  # the layer's gradient norm over the output layer's (median), when comparable
        vanishing = False
        if output is not None and layer != output:
            reference = layer_norm[:, output]
            comparable = flowing & np.isfinite(reference) & (reference > 0)
            with np.errstate(divide="ignore", invalid="ignore"):
                relative = norms / reference
            if comparable.any():
                relative_median = float(np.median(relative[comparable]))
            for kind, held, bound in (
                ("vanishing", comparable & (relative < thresholds.vanishing_ratio), thresholds.vanishing_ratio),
                ("exploding", comparable & (relative > 1 / thresholds.vanishing_ratio), 1 / thresholds.vanishing_ratio),
            ):
                if not judge.holds(held, comparable):
                    continue
                side = "below" if kind == "vanishing" else "above"
                message = (
                    f"{kind} gradient: {text}: its gradient norm is {_number(relative_median)} times that of the "
                    f"output layer {self._layer_label(output)} (median; {side} {bound:g} times in "
                    f"{judge.describe(held, comparable)})"
                )
                if kind == "vanishing":
                    vanishing = True
                    moving = flowing & np.isfinite(ratios)
                    if moving.any():
                        message += f"; each step changes its weights by {_number(np.median(ratios[moving]))} of them"
                found.append(
                    self._finding(
                        kind, layer, judge.range_of(held), "plot_history", relative_median, message + " (plot_history)"
                    )
                )
        # The update ratio, where there was a gradient to scale (a layer whose gradient died stops moving).
        moving = flowing & np.isfinite(ratios)
        if not moving.any():
            return found
        if not ratios[moving].any():
            found.append(
                self._finding(
                    "not_updated",
                    layer,
                    judge.range_of(moving),
                    "plot_history",
                    0.0,
                    f"not updated: {text}: it received gradients but its weights never changed "
                    f"({_steps_text(judge.range_of(moving))}): is it missing from the optimizer's parameters, or is "
                    "its learning rate 0? (plot_history)",
                )
            )
            return found
        low, high = thresholds.update_range
        median = float(np.median(ratios[moving]))
        too_large, too_small = moving & (ratios > high), moving & (ratios < low)
        if judge.holds(too_large, moving):
            found.append(
                self._finding(
                    "update_ratio",
                    layer,
                    judge.range_of(too_large),
                    "plot_history",
                    median,
                    f"update ratio too large: {text}: each step changes its weights by {_number(median)} of their "
                    f"norm (median; healthy is about 1e-3; above {high:g} in "
                    f"{judge.describe(too_large, moving, 'steps with a gradient')}): lower the learning rate "
                    "(plot_history)",
                )
            )
        else:
            # A step that moved the weights by as much as they are (10 times the high end: 1 by default) is never
            # fine, even once: Adam at a learning rate of 10 does it at its first step, and then its weights grow
            # so fast that later ratios look tame.
            leap = moving & (ratios > 10 * high)
            if leap.any():
                peak = float(ratios[leap].max())
                found.append(
                    self._finding(
                        "update_ratio",
                        layer,
                        judge.range_of(leap),
                        "plot_history",
                        peak,
                        f"update ratio too large: {text}: a step changed its weights by {_number(peak)} times their "
                        f"norm (above {10 * high:g} in {judge.describe(leap, moving, 'steps with a gradient')}; "
                        f"healthy is about 1e-3): lower the learning rate (plot_history)",
                    )
                )
        if judge.holds(too_small, moving) and not vanishing:
            stalled = f"each step changes its weights by {_number(median)} of their norm (median; below {low:g} in"
            stalled += f" {judge.describe(too_small, moving, 'steps with a gradient')})"
            output_label = self._layer_label(output) if output is not None else ""
            if relative_median is not None and relative_median < 10 * thresholds.vanishing_ratio:
                # Barely moving, with a gradient faded to near the vanishing threshold: the fading is the cause,
                # and a higher learning rate is not the cure (the output layer would blow up first).
                found.append(
                    self._finding(
                        "vanishing",
                        layer,
                        judge.range_of(too_small),
                        "plot_history",
                        relative_median,
                        f"vanishing gradient: {text}: its gradient norm is {_number(relative_median)} times that of "
                        f"the output layer {output_label} (median), and its weights barely move: {stalled} "
                        "(plot_history)",
                    )
                )
            else:
                found.append(
                    self._finding(
                        "update_ratio",
                        layer,
                        judge.range_of(too_small),
                        "plot_history",
                        median,
                        f"update ratio too small: {text}: {stalled}; healthy is about 1e-3: raise the learning rate "
                        "(plot_history)",
                    )
                )
        return found

    def _activation_findings(self, judge: _Judge, thresholds: _Thresholds) -> list[Finding]:
        """ReLU modules with most units dead, sigmoid and tanh modules with most units saturated."""
        found = []
        fractions = self.activation_fraction
        for column, site in enumerate(self._site_list):
            values = fractions[:, column]
            defined = np.isfinite(values)
            relu = site.kind == "relu"
            limit = thresholds.dead_fraction if relu else thresholds.saturated_fraction
            held = defined & (values > limit)
            if not judge.holds(held, defined):
                continue
            median = float(np.median(values[defined]))
            kind = {"relu": "ReLU", "sigmoid": "Sigmoid", "tanh": "Tanh"}[site.kind]
            bounds = "0 or 1" if site.kind == "sigmoid" else "-1 or 1"
            what = "output zero" if relu else f"are within {self.saturation_tolerance:g} of {bounds}"
            after, names = "", ()
            if site.feeder is not None:
                layer = self._layer_names.index(site.feeder)
                after = f", after {self._layer_text(layer)}"
                names = tuple(name for name, owner in zip(self._names, self._layer_of) if owner == layer)
            found.append(
                Finding(
                    "dead_units" if relu else "saturated_units",
                    site.module_name or type(self.model).__name__,
                    names,
                    judge.range_of(held),
                    "plot_history",
                    median,
                    f"{'dead' if relu else 'saturated'} units: {site.name} ({kind}){after}: {median:.0%} of its "
                    f"{site.units} units {what} for every sample (at least {self.dead_window} in a row; median; "
                    f"more than {limit:.0%} in {judge.describe(held, defined)}; plot_history)",
                )
            )
        return found

    def report(self, **thresholds: Any) -> str:
        """The findings as text, one per line (or a line saying there are none); takes `findings`' thresholds."""
        found = self.findings(**thresholds)
        steps = self.steps
        span = _steps_text((int(steps[0]), int(steps[-1])))
        if not found:
            return f"gradient monitor: no findings ({len(steps)} recorded steps, {span})"
        count = f"{len(found)} finding{'s' if len(found) != 1 else ''}"
        lines = [f"gradient monitor: {count} ({len(steps)} recorded steps, {span})"]
        lines += [f"- {finding}" for finding in found]
        return "\n".join(lines)

    # ---------------------------------------------------------------------------------------------------------
    # Pictures
    # ---------------------------------------------------------------------------------------------------------

    def plot_flow(self, path: str | os.PathLike[str] | None = None) -> Any:
        """Mean and max |g| per parameter, averaged over the recorded steps: plot_grad_flow, on a log scale.

        One pair of bars per parameter, named and in the model's order (the input's layer at the top): the max |g|
        wide and light, the mean |g| narrow and dark. Parameters behind a finding are coloured (orange: vanishing or
        zero; red: exploding or NaN), and one that never got a gradient says so. Saved to `path` (the format by
        its suffix: .png, .svg, .pdf) and the path returned; without a path, the matplotlib Figure is returned
        (Jupyter shows it). Needs matplotlib.
        """
        Figure = _figure_class("plot_flow")
        self._check_recorded("plot_flow")
        averages = self.parameter_averages()
        marks = self._marks()
        count = len(self._names)
        figure = Figure(figsize=(8.5, 1.9 + 0.34 * count), layout="constrained")
        axes = figure.add_subplot()
        positions = np.arange(count)[::-1]  # the first parameter at the top
        means = np.array([averages[name]["grad_mean_abs"] for name in self._names])
        maxima = np.array([averages[name]["grad_max_abs"] for name in self._names])
        positive = np.concatenate([means, maxima])
        positive = positive[np.isfinite(positive) & (positive > 0)]
        floor = positive.min() / 4 if positive.size else 1e-12
        colours_max, colours_mean = [], []
        for name in self._names:
            light, dark = _FLOW_COLOURS[marks.get(name, "ok")]
            colours_max.append(light)
            colours_mean.append(dark)
        drawable_max = np.where(np.isfinite(maxima) & (maxima > 0), maxima, np.nan)
        drawable_mean = np.where(np.isfinite(means) & (means > 0), means, np.nan)
        axes.barh(positions, drawable_max, height=0.78, color=colours_max, left=floor, label="max |g|")
        axes.barh(positions, drawable_mean, height=0.38, color=colours_mean, left=floor, label="mean |g|")
        axes.set_xscale("log")
        axes.set_xlim(left=floor)
        for position, name in zip(positions, self._names):
            entry = averages[name]
            note = None
            if not entry["steps"]:
                frozen = not self._params[self._names.index(name)].requires_grad
                note = "no gradient (frozen)" if frozen else "no gradient"
            elif entry["zero_steps"] == entry["steps"]:
                note = "gradient all zero"
            elif entry["zero_steps"] >= entry["steps"] / 2:
                note = f"all zero in {entry['zero_steps'] / entry['steps']:.0%} of the steps"
            if note:
                end = drawable_max[list(positions).index(position)]
                where = floor * 1.15 if not np.isfinite(end) else end * 1.3
                axes.text(where, position, note, va="center", fontsize=9, color="#a33a00")
        labels = [f"{name}  {self._param_shape_text(slot)}" for slot, name in enumerate(self._names)]
        axes.set_yticks(positions, labels=labels, fontsize=9)
        sampled = any(index is not None for index in self._sample_index)
        axes.set_xlabel(
            "|gradient|, log scale"
            + (f"; mean of parameters over {self.sample_size:,} entries: over a fixed sample" if sampled else "")
        )
        axes.grid(True, axis="x", which="major", alpha=0.3)
        handles = [
            _patch(figure, _FLOW_COLOURS["ok"][0], "max |g|"),
            _patch(figure, _FLOW_COLOURS["ok"][1], "mean |g|"),
        ]
        handles += [_patch(figure, _FLOW_COLOURS[mark][1], _MARK_WORDS[mark]) for mark in sorted(set(marks.values()))]
        figure.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=9, frameon=False)
        axes.set_title(self._title("Gradient flow: mean and max |g| per parameter", "averaged over"), fontsize=11)
        return _finish(figure, path)

    def plot_history(self, path: str | os.PathLike[str] | None = None) -> Any:
        """Per layer over the steps: gradient norm and update-to-weight ratio (log scales), and dead units.

        One line per layer (its parameters together), coloured from the input's layer (dark) to the output's
        (yellow). The update ratio's panel shades the healthy range around 1e-3 (`UPDATE_RATIO_RANGE`); a third
        panel, when the model has ReLU, sigmoid or tanh modules, shows the fraction of their units dead or
        saturated. Long runs are drawn as the median of each 1/400 of the steps. Layers behind a finding are named
        in the panel's title. Saved to `path` and the path returned, or the Figure returned. Needs matplotlib.
        """
        Figure = _figure_class("plot_history")
        self._check_recorded("plot_history")
        found = self.findings()
        steps = self.steps
        layer_norm, layer_update, _ = self._layer_series()
        fractions = self.activation_fraction
        panels = 3 if self._site_list else 2
        figure = Figure(figsize=(9.5, 1.4 + 2.7 * panels), layout="constrained")
        axes = figure.subplots(panels, 1, sharex=True, squeeze=False)[:, 0]
        binned_steps, width = _bins(steps)
        colours = _layer_colours(len(self._layer_names))
        labels = [
            f"{self._layer_label(layer)} ({self._layer_classes[layer]})" for layer in range(len(self._layer_names))
        ]
        low, high = UPDATE_RATIO_RANGE
        for layer, label in enumerate(labels):
            norms = np.where(layer_norm[:, layer] > 0, layer_norm[:, layer], np.nan)
            axes[0].plot(binned_steps, _binned(norms, width), color=colours[layer], label=label, linewidth=1.4)
            ratios = np.where(layer_update[:, layer] > 0, layer_update[:, layer], np.nan)
            axes[1].plot(binned_steps, _binned(ratios, width), color=colours[layer], label=label, linewidth=1.4)
        output = self._output_layer()
        if output is not None:
            limit = VANISHING_RATIO * layer_norm[:, output]
            axes[0].plot(
                binned_steps,
                _binned(np.where(limit > 0, limit, np.nan), width),
                color="#e8710a",
                linestyle="--",
                linewidth=1,
                label=f"{VANISHING_RATIO:g} x output layer: vanishing below",
            )
        silent = [finding for finding in found if finding.kind == "zero_gradient"]
        if silent:
            names = ", ".join(finding.layer for finding in silent)
            first = min(finding.steps[0] for finding in silent)
            axes[0].text(
                0.01,
                0.03,
                f"{names}: gradient all zero from step {first} (a log scale cannot show 0)",
                transform=axes[0].transAxes,
                fontsize=8,
                color="#a33a00",
            )
        axes[1].axhspan(low, high, color="#2ca02c", alpha=0.08, label=f"healthy: {low:g} to {high:g}")
        axes[1].axhline(1e-3, color="#2ca02c", linestyle="--", linewidth=1)
        for axis, ylabel in ((axes[0], "gradient norm"), (axes[1], "update / weight norm")):
            if np.isfinite(axis.get_ylim()).all() and axis.lines and _has_data(axis):
                axis.set_yscale("log")
            axis.set_ylabel(ylabel)
        axes[0].set_title(
            _panel_title("Gradient norm per layer", found, ("vanishing", "exploding", "nonfinite", "zero_gradient")),
            fontsize=10,
            loc="left",
        )
        axes[1].set_title(
            _panel_title("Update-to-weight ratio per optimizer step", found, ("update_ratio", "not_updated")),
            fontsize=10,
            loc="left",
        )
        if self._site_list:
            site_colours = _layer_colours(len(self._site_list))
            for column, site in enumerate(self._site_list):
                word = "dead" if site.kind == "relu" else "saturated"
                axes[2].plot(
                    binned_steps,
                    _binned(fractions[:, column], width),
                    color=site_colours[column],
                    label=f"{site.name} ({site.kind}): {word}",
                    linewidth=1.4,
                )
            axes[2].axhline(DEAD_FRACTION, color="#d62728", linestyle="--", linewidth=1, label="half the units")
            axes[2].set_ylim(-0.03, 1.03)
            axes[2].set_ylabel("fraction of units")
            axes[2].set_title(
                _panel_title(
                    "Dead (ReLU) and saturated (sigmoid, tanh) units", found, ("dead_units", "saturated_units")
                ),
                fontsize=10,
                loc="left",
            )
        for axis in axes:
            axis.grid(True, alpha=0.3)
            axis.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False)
        note = f" (median of every {width} recorded steps)" if width > 1 else ""
        axes[-1].set_xlabel(f"step{note}")
        figure.suptitle(self._title("Gradient history", "over"), fontsize=11)
        return _finish(figure, path)

    def plot_histograms(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        steps: Sequence[int] | None = None,
        parameters: Sequence[str] | None = None,
    ) -> Any:
        """Each parameter's gradient distribution at a few steps, stacked as in TensorBoard's histogram view.

        One panel per parameter (or per name in `parameters`); in it, one histogram per step, the earliest at the
        back (top) and the latest in front. `steps` chooses the steps (each is drawn from the kept step nearest
        to it: the monitor keeps `histogram_steps` of them, spread over the run, and the latest); by default six
        spread over the run. Values come from the fixed sample of entries of parameters bigger than
        `sample_size`; the x range of a panel is its largest |g| (the 99.5th percentile, so a few outliers do not
        squash the rest). Saved to `path` and the path returned, or the Figure returned. Needs matplotlib.
        """
        Figure = _figure_class("plot_histograms")
        self._check_recorded("plot_histograms")
        kept = self._histogram_list()
        chosen = self._chosen_histograms(kept, steps)
        if parameters is None:
            slots = list(range(len(self._names)))
        else:
            if isinstance(parameters, str) or not isinstance(parameters, Sequence):
                raise TypeError(f"plot_histograms: parameters must be a list of names, got {type(parameters).__name__}")
            unknown = [name for name in parameters if name not in self._names]
            if unknown:
                raise KeyError(f"plot_histograms: no parameter named {unknown[0]!r}; known: {', '.join(self._names)}")
            slots = [self._names.index(name) for name in parameters]
            if not slots:
                raise ValueError("plot_histograms: parameters is empty; name at least one, or leave it out for all")
        columns = min(3, len(slots))
        rows = -(-len(slots) // columns)
        figure = Figure(figsize=(4.3 * columns, 0.9 + 2.4 * rows), layout="constrained")
        grid = figure.subplots(rows, columns, squeeze=False)
        colours = _layer_colours(len(chosen))
        for axis in grid.ravel()[len(slots) :]:
            axis.set_visible(False)
        for axis, slot in zip(grid.ravel(), slots):
            start, length = int(self._starts[slot]), int(self._lengths[slot])
            series = [samples[start : start + length].astype(np.float64) for _, samples in chosen]
            finite = [values[np.isfinite(values)] for values in series]
            every = np.concatenate(finite) if finite else np.zeros(0)
            title = self._names[slot]
            if self._sample_index[slot] is not None:
                title += f"  ({length:,} of {self._params[slot].size:,} entries)"
            axis.set_title(title, fontsize=9)
            axis.set_yticks([])
            if not every.size:
                axis.text(0.5, 0.5, "no gradient", ha="center", va="center", transform=axis.transAxes, color="#a33a00")
                continue
            reach = float(np.percentile(np.abs(every), 99.5)) or float(np.abs(every).max()) or 1.0
            edges = np.linspace(-reach, reach, int(np.clip(2 * math.sqrt(length), 8, 40)) + 1)
            centres = (edges[:-1] + edges[1:]) / 2
            offsets = []
            for order, ((step, _), values) in enumerate(zip(chosen, finite)):
                offset = (len(chosen) - 1 - order) * 0.55
                offsets.append((offset, f"step {step}"))
                if not values.size:
                    continue
                counts, _ = np.histogram(np.clip(values, -reach, reach), bins=edges)
                height = counts / counts.max() if counts.max() else counts.astype(float)
                axis.fill_between(
                    centres,
                    offset,
                    offset + height,
                    color=colours[order],
                    alpha=0.85,
                    zorder=order,
                    linewidth=0.6,
                    edgecolor="white",
                )
            axis.set_yticks([offset for offset, _ in offsets], labels=[label for _, label in offsets], fontsize=8)
            axis.set_xlim(-reach, reach)
            axis.ticklabel_format(axis="x", style="sci", scilimits=(-2, 3))
            axis.tick_params(axis="x", labelsize=8)
        figure.suptitle(
            self._title("Gradient distributions per parameter", "at", [step for step, _ in chosen]), fontsize=11
        )
        return _finish(figure, path)

    def _chosen_histograms(
        self, kept: list[tuple[int, np.ndarray]], steps: Sequence[int] | None
    ) -> list[tuple[int, np.ndarray]]:
        """The kept samples nearest each asked step (six spread over the run by default), each once, in order."""
        if steps is None:
            if len(kept) <= 6:
                return kept
            picks = np.unique(np.round(np.linspace(0, len(kept) - 1, 6)).astype(int))
            return [kept[index] for index in picks]
        if isinstance(steps, (str, bytes)) or not isinstance(steps, Sequence) or not steps:
            raise ValueError(f"plot_histograms: steps must be a non-empty list of step numbers, got {steps!r}")
        first, last = int(self._row_steps[0]), int(self._row_steps[self._rows - 1])
        available = np.array([step for step, _ in kept])
        picked: list[int] = []
        for step in steps:
            if isinstance(step, bool) or not isinstance(step, numbers.Integral):
                raise TypeError(f"plot_histograms: steps must be whole numbers, got {step!r}")
            if not first <= step <= last:
                raise ValueError(
                    f"plot_histograms: step {step} was not recorded; the recorded steps are {first}-{last}"
                )
            index = int(np.abs(available - step).argmin())
            if index not in picked:
                picked.append(index)
        return [kept[index] for index in sorted(picked)]

    def _check_recorded(self, what: str) -> None:
        if not self._rows:
            raise RuntimeError(
                f"GradientMonitor.{what}: no step recorded yet: attach the monitor (with GradientMonitor(model) as "
                "monitor:, monitor.attach(), or fit's callbacks) and train"
            )
        if self._awaiting_update is not None and not self._handles:
            self._settle_update()

    def _marks(self) -> dict[str, str]:
        """Each parameter behind a finding, and what to mark it with: "faint" (vanishing, zero) or "broken"."""
        marks = {}
        for finding in self.findings():
            mark = {"vanishing": "faint", "zero_gradient": "faint", "exploding": "broken", "nonfinite": "broken"}.get(
                finding.kind
            )
            for name in finding.parameters if mark else ():
                if marks.get(name) != "broken":
                    marks[name] = mark
        return marks

    def _param_shape_text(self, slot: int) -> str:
        shape = self._shapes[slot]
        return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"

    def _title(self, what: str, word: str, steps: Sequence[int] | None = None) -> str:
        """``What: Sequential, word 129 recorded steps (1-129)`` on two lines."""
        if steps is not None:
            when = "steps " + ", ".join(map(str, steps))
        else:
            recorded = self.steps
            plural = "s" if len(recorded) != 1 else ""
            when = f"{len(recorded)} recorded step{plural} ({_steps_text((int(recorded[0]), int(recorded[-1])))})"
        return f"{what}\n{type(self.model).__name__}, {word} {when}"


_KINDS = (
    "nonfinite",
    "exploding",
    "vanishing",
    "zero_gradient",
    "dead_units",
    "saturated_units",
    "update_ratio",
    "not_updated",
    "no_gradient",
)


@dataclass(frozen=True)
class _Thresholds:
    vanishing_ratio: float
    exploding_growth: float
    dead_fraction: float
    saturated_fraction: float
    update_range: tuple[float, float]


class _Judge:
    """How long a condition held: fractions of the recorded steps, their range, and the words for both."""

    def __init__(self, steps: np.ndarray, persistence: float) -> None:
        self.steps = steps
        self.persistence = persistence

    def fraction(self, held: np.ndarray, defined: np.ndarray) -> float:
        count = int(defined.sum())
        return int(held.sum()) / count if count else 0.0

    def holds(self, held: np.ndarray, defined: np.ndarray) -> bool:
        """Whether it held in at least `persistence` of the steps at which it could be judged."""
        return bool(held.any()) and self.fraction(held, defined) >= self.persistence

    def happened(self, held: np.ndarray) -> bool:
        """Whether it held at two steps at least (at one, when only one was recorded): for what is never fine."""
        return int(held.sum()) >= min(2, len(self.steps))

    def range_of(self, held: np.ndarray) -> tuple[int, int]:
        chosen = self.steps[held]
        return int(chosen[0]), int(chosen[-1])

    def describe(self, held: np.ndarray, defined: np.ndarray, among: str = "recorded steps") -> str:
        """``12 of 40 recorded steps (30%), steps 3-97``: how often it held, and from when to when."""
        count, total = int(held.sum()), int(defined.sum())
        span = _steps_text(self.range_of(held))
        if count == total:
            return f"all {total} {among}, {span}" if total > 1 else span
        share = f"{count / total:.0%}"
        if share in ("0%", "100%"):  # 1344 of 1347 is not 100%
            share = f"{count / total:.1%}"
        return f"{count} of {total} {among} ({share}), {span}"


def _steps_text(span: tuple[int, int]) -> str:
    first, last = span
    return f"step {first}" if first == last else f"steps {first}-{last}"


def _number(value: float) -> str:
    """Two significant digits: 0.0031, 4.2e-07, 1.3e+03."""
    return f"{value:.2g}"


def _fraction(owner: str, name: str, value: Any, allow_zero: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (0 <= value <= 1):
        raise ValueError(f"{owner}: {name} must be a number from 0 to 1, got {value!r}")
    if not allow_zero and value == 0:
        raise ValueError(f"{owner}: {name} must be above 0, got {value!r}")
    return float(value)


def _ratio_range(owner: str, value: Any) -> tuple[float, float]:
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ValueError(f"{owner}: update_ratio_range must be (low, high), got {value!r}")
    low = _positive_number(owner, "update_ratio_range's low end", value[0])
    high = _positive_number(owner, "update_ratio_range's high end", value[1])
    if low >= high:
        raise ValueError(f"{owner}: update_ratio_range must have low < high, got {tuple(value)}")
    return low, high


def _optional_array(value: Any, shape: tuple[int, ...], dtype: Any = np.float64) -> np.ndarray | None:
    """None, or `value` as an array of `shape` (ValueError otherwise)."""
    if value is None:
        return None
    array = np.array(value, dtype=dtype)
    if array.shape != shape:
        raise ValueError(f"an array of shape {array.shape} where {shape} belongs")
    return array


# --------------------------------------------------------------------------------------------------------------
# Drawing helpers
# --------------------------------------------------------------------------------------------------------------

# Bars of plot_flow: (max |g|, mean |g|) colours, for a parameter behind no finding, a faint one and a broken one.
_FLOW_COLOURS = {
    "ok": ("#b9cde5", "#2f5f98"),
    "faint": ("#fbd3a8", "#e8710a"),
    "broken": ("#f2b0b0", "#d62728"),
}
_MARK_WORDS = {"faint": "vanishing or zero gradient", "broken": "exploding or NaN gradient"}
_MAX_POINTS = 400  # a longer history is drawn as the medians of this many runs of steps


def _figure_class(what: str) -> Any:
    """The Figure class of matplotlib (no pyplot: nothing global, no display needed), or an ImportError saying so."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(
            f"GradientMonitor.{what} draws with matplotlib, which is not installed: pip install matplotlib (in a "
            "clone, pip install -e '.[examples]' installs it with the other extras)"
        ) from None
    return Figure


def _finish(figure: Any, path: str | os.PathLike[str] | None) -> Any:
    """Save the figure to `path` and return the path, or return the figure."""
    if path is None:
        return figure
    path = Path(path)
    figure.savefig(path, dpi=110)
    return path


def _patch(figure: Any, colour: str, label: str) -> Any:
    from matplotlib.patches import Patch

    return Patch(facecolor=colour, label=label)


def _layer_colours(count: int) -> list[Any]:
    """`count` colours from dark (the input's end) to yellow (the output's), matplotlib's viridis."""
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    return [cmap(0.9 * index / max(1, count - 1)) for index in range(count)]


def _bins(steps: np.ndarray) -> tuple[np.ndarray, int]:
    """The steps to draw at, and how many recorded steps each point stands for."""
    width = max(1, -(-len(steps) // _MAX_POINTS))
    if width == 1:
        return steps, 1
    usable = len(steps) // width * width
    return steps[:usable].reshape(-1, width)[:, -1], width


def _binned(values: np.ndarray, width: int) -> np.ndarray:
    """The median of each run of `width` values (NaNs left out; NaN for a run of NaNs)."""
    if width == 1:
        return values
    usable = len(values) // width * width
    runs = values[:usable].reshape(-1, width)
    result = np.full(len(runs), np.nan)
    has = np.isfinite(runs).any(axis=1)
    if has.any():
        result[has] = np.nanmedian(runs[has], axis=1)
    return result


def _has_data(axis: Any) -> bool:
    return any(np.isfinite(np.asarray(line.get_ydata(), dtype=float)).any() for line in axis.lines)


def _panel_title(title: str, found: list[Finding], kinds: Sequence[str]) -> str:
    """The panel's title, with the layers behind its findings: ``... (vanishing: 0, 2)``."""
    parts = []
    for kind in kinds:
        layers = [finding.layer for finding in found if finding.kind == kind and finding.severity == "warning"]
        if layers:
            parts.append(f"{kind.replace('_', ' ')}: {', '.join(dict.fromkeys(layers))}")
    return f"{title}  ⚠ {'; '.join(parts)}" if parts else title
