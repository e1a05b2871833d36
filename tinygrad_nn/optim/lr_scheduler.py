"""Learning-rate schedulers with ``torch.optim.lr_scheduler``'s names, arguments and arithmetic.

Each scheduler sets ``group["lr"]`` of its optimizer's groups. As in PyTorch, creating one applies the rate of
step 0 (and records each group's starting rate as ``initial_lr``), and each `step()`, called after
``optimizer.step()``, moves to the next epoch (or batch, for `OneCycleLR` and `CyclicLR`). The rates are
computed the way PyTorch computes them, most from the previous rate (so a rate you change by hand carries on from
there), which makes the sequences equal to PyTorch's to the last bit. `ReduceLROnPlateau` steps on a metric
instead, and `SequentialLR` and `ChainedScheduler` drive other schedulers::

    scheduler = optim.lr_scheduler.StepLR(optimizer, step_size=10, gamma=0.5)
    for epoch in range(30):
        train_one_epoch()
        scheduler.step()

`state_dict` and `load_state_dict` save and restore a scheduler's position (numbers and lists only). As in
PyTorch, create the scheduler first and then load the optimizer's state, since creating a scheduler resets the
learning rate.
"""

from __future__ import annotations

import bisect
import itertools
import math
import numbers
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar

from .optimizer import Optimizer

__all__ = [
    "ChainedScheduler",
    "ConstantLR",
    "CosineAnnealingLR",
    "CosineAnnealingWarmRestarts",
    "CyclicLR",
    "ExponentialLR",
    "LRScheduler",
    "LambdaLR",
    "LinearLR",
    "MultiStepLR",
    "MultiplicativeLR",
    "OneCycleLR",
    "PolynomialLR",
    "ReduceLROnPlateau",
    "SequentialLR",
    "StepLR",
]


def _number(scheduler: str, name: str, value: Any, minimum: float = 0.0, *, strict: bool = False) -> float:
    """`value` if it is a finite real number >= `minimum` (> with `strict`), else a ValueError naming it."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if ok and (value > minimum if strict else value >= minimum):
        return value
    relation = ">" if strict else ">="
    raise ValueError(f"{scheduler}: {name} must be a finite number {relation} {minimum:g}, got {value!r}")


def _whole(scheduler: str, name: str, value: Any, minimum: int) -> int:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= minimum:
        return int(value)
    raise ValueError(f"{scheduler}: {name} must be a whole number >= {minimum}, got {value!r}")


def _per_group(scheduler: str, name: str, value: Any, optimizer: Optimizer) -> list[Any]:
    """One value per parameter group: a single value for all, or a list with one per group (PyTorch's rule)."""
    count = len(optimizer.param_groups)
    if isinstance(value, (list, tuple)):
        if len(value) != count:
            raise ValueError(f"{scheduler}: expected {count} values of {name} (one per group), got {len(value)}")
        return list(value)
    return [value] * count


def _kind(value: Any) -> str:
    if value is None:
        return "None"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, numbers.Real):
        return "number"
    if isinstance(value, str):
        return "str"
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, Mapping):
        return "dict"
    return type(value).__name__


def _same_structure(reference: Any, value: Any) -> bool:
    """Whether `value` has the kinds of `reference`: lists of the same kind of item, dicts with the same keys."""
    if _kind(reference) != _kind(value):
        return False
    if isinstance(reference, Mapping):
        return set(reference) == set(value) and all(_same_structure(reference[k], value[k]) for k in reference)
    if isinstance(reference, (list, tuple)) and reference:
        return all(_same_structure(reference[0], item) for item in value)
    if isinstance(reference, (list, tuple)):
        return all(_kind(item) in ("number", "str", "bool", "None") for item in value)
    return True


def _plain_copy(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_plain_copy(item) for item in value]
    if isinstance(value, Mapping):
        return {key: _plain_copy(item) for key, item in value.items()}
    return value


class LRScheduler:
    """Base class of the schedulers: sets each group's ``lr`` from `get_lr` at every `step`.

    ``last_epoch=-1`` (the default) starts the schedule; another value resumes it at that epoch, which needs
    ``initial_lr`` in every group (a scheduler sets it, so load the optimizer's state dict first).
    """

    # Attributes that are not state: the optimizer, and what cannot be saved as numbers (LambdaLR's functions).
    _not_state: ClassVar[frozenset[str]] = frozenset({"optimizer", "_is_initial"})

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        name = type(self).__name__
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{name} takes an Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        last_epoch = _whole(name, "last_epoch", last_epoch, -1)
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for index, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise ValueError(
                        f"{name}(last_epoch={last_epoch}) resumes a schedule, but parameter group {index} has no "
                        "'initial_lr': load the optimizer's state dict first, or start with last_epoch=-1"
                    )
        self.base_lrs: list[float] = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._initial_step()

    def _initial_step(self) -> None:
        """Step to epoch 0 (or the resumed epoch) as the scheduler's creation does; `SequentialLR` calls it too."""
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def get_lr(self) -> list[float]:
        """The rate of each group for the epoch `last_epoch` has just become; subclasses define it."""
        raise NotImplementedError(f"{type(self).__name__} must define get_lr()")

    def step(self, epoch: int | None = None) -> None:
        """Move to the next epoch and set its learning rates (call it after ``optimizer.step()``).

        Passing `epoch` jumps there instead, with the closed-form rate where the scheduler has one; PyTorch
        deprecates this form, and so does this method (it warns).
        """
        self._step_count += 1
        if epoch is not None:
            warnings.warn(
                f"{type(self).__name__}.step(epoch) is deprecated, as in PyTorch: call step() once per epoch",
                UserWarning,
                stacklevel=2,
            )
            epoch = _whole(type(self).__name__, "epoch", epoch, 0)
        self._update_lr(epoch)

    def _update_lr(self, epoch: int | None = None) -> None:
        """Move to the next epoch, or jump to `epoch` (closed form if there is one), and set the rates."""
        if epoch is None:
            self.last_epoch += 1
            rates = self.get_lr()
        else:
            self.last_epoch = epoch
            closed_form = getattr(self, "_closed_form_lr", None)
            rates = closed_form() if closed_form is not None else self.get_lr()
        for group, rate in zip(self.optimizer.param_groups, rates):
            group["lr"] = rate
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def get_last_lr(self) -> list[float]:
        """The learning rate of each group, as the scheduler last set it."""
        return list(self._last_lr)

    def _current_lrs(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]

    # ---------------------------------------------------------------------------------------------------------
    # State dict
    # ---------------------------------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Every attribute except the optimizer, as PyTorch saves it: numbers, strings and lists, copied."""
        return self._own_state()

    def _own_state(self) -> dict[str, Any]:
        return {key: _plain_copy(value) for key, value in vars(self).items() if key not in self._not_state}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore a position saved by `state_dict` of a scheduler of this class (over as many groups).

        Every entry is checked first (a known name, a value of the kind this scheduler holds, one value per
        group where there is one per group); an error lists all that does not fit and changes nothing.
        """
        name = type(self).__name__
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"{name}.load_state_dict takes a dict from state_dict(), got {type(state_dict).__name__}")
        problems = self._state_problems(state_dict)
        if problems:
            raise ValueError(f"{name}.load_state_dict changed nothing, because: " + "; ".join(problems))
        self._apply_state(state_dict)

    def _state_problems(self, state_dict: Any) -> list[str]:
        """What in `state_dict` does not fit this scheduler (empty when it all fits); changes nothing."""
        name = type(self).__name__
        if not isinstance(state_dict, Mapping):
            return [f"the state should be a dict from {name}.state_dict(), got {type(state_dict).__name__}"]
        own = self._own_state()
        problems = []
        for key, value in state_dict.items():
            if key not in own:
                problems.append(f"'{key}' is not part of a {name}'s state (was it saved from another scheduler?)")
                continue
            expected, got = _kind(own[key]), _kind(value)
            nullable = key in self._nullable and {expected, got} <= {"None", "number"}
            if not nullable and not _same_structure(own[key], value):
                problems.append(f"'{key}' should be a {expected} like {own[key]!r}, got {value!r}")
            elif key in self._per_group_state and (got != "list" or len(value) != len(self.optimizer.param_groups)):
                problems.append(
                    f"'{key}' should hold one value per parameter group ({len(self.optimizer.param_groups)}), "
                    f"got {value!r}"
                )
        missing = sorted(set(own) - set(state_dict))
        if missing:
            problems.append("missing " + ", ".join(f"'{key}'" for key in missing))
        return problems

    def _apply_state(self, state_dict: Mapping[str, Any]) -> None:
        """Set the attributes from a state dict that `_state_problems` found no fault with."""
        for key, value in state_dict.items():
            setattr(self, key, _plain_copy(value))
        self._after_load()

    # Entries with one value per parameter group, and entries that may be None.
    _per_group_state: ClassVar[frozenset[str]] = frozenset(
        {"base_lrs", "_last_lr", "min_lrs", "max_lrs", "base_momentums", "max_momentums"}
    )
    _nullable: ClassVar[frozenset[str]] = frozenset({"default_min_lr"})

    def _after_load(self) -> None:
        """Turn loaded lists back into what the scheduler holds (subclasses that need it)."""


def _lr_lambdas(name: str, lr_lambda: Any, optimizer: Any) -> list[Callable[[int], float]]:
    """LambdaLR's and MultiplicativeLR's `lr_lambda`: one function per parameter group, each checked callable."""
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"{name} takes an Optimizer, got {type(optimizer).__name__}")
    functions = _per_group(name, "lr_lambda", lr_lambda, optimizer)
    for function in functions:
        if not callable(function):
            raise TypeError(f"{name}: lr_lambda must be a function of the epoch, got {type(function).__name__}")
    return functions


class LambdaLR(LRScheduler):
    """Set each group's rate to its starting rate times ``lr_lambda(epoch)``.

    `lr_lambda` is one function for every group or a list with one per group. The functions are not part of
    the state dict (as in PyTorch, which can only save callable objects' attributes); recreate them.
    """

    _not_state = LRScheduler._not_state | {"lr_lambdas"}

    def __init__(
        self,
        optimizer: Optimizer,
        lr_lambda: Callable[[int], float] | Sequence[Callable[[int], float]],
        last_epoch: int = -1,
    ) -> None:
        self.lr_lambdas = _lr_lambdas("LambdaLR", lr_lambda, optimizer)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        """``base_lr * lr_lambda(last_epoch)`` for each group."""
        return [base_lr * function(self.last_epoch) for function, base_lr in zip(self.lr_lambdas, self.base_lrs)]


class StepLR(LRScheduler):
    """Multiply the rate by `gamma` every `step_size` epochs."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1) -> None:
        self.step_size = _whole("StepLR", "step_size", step_size, 1)
        self.gamma = _number("StepLR", "gamma", gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        """The previous rate, times `gamma` when the epoch is a non-zero multiple of `step_size`."""
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self._current_lrs()
        return [lr * self.gamma for lr in self._current_lrs()]

    def _closed_form_lr(self) -> list[float]:
        return [base_lr * self.gamma ** (self.last_epoch // self.step_size) for base_lr in self.base_lrs]


class MultiStepLR(LRScheduler):
    """Multiply the rate by `gamma` at each epoch in `milestones` (twice if it is listed twice, as PyTorch)."""

    def __init__(
        self, optimizer: Optimizer, milestones: Iterable[int], gamma: float = 0.1, last_epoch: int = -1
    ) -> None:
        if isinstance(milestones, (str, bytes)) or not isinstance(milestones, Iterable):
            raise TypeError(f"MultiStepLR: milestones must be a list of epochs, got {milestones!r}")
        self.milestones = sorted(_whole("MultiStepLR", "each milestone", m, 0) for m in milestones)
        self.gamma = _number("MultiStepLR", "gamma", gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        """The previous rate, times ``gamma ** n`` when the epoch is listed n times in `milestones`."""
        times = self.milestones.count(self.last_epoch)
        if not times:
            return self._current_lrs()
        return [lr * self.gamma**times for lr in self._current_lrs()]

    def _closed_form_lr(self) -> list[float]:
        passed = sum(1 for milestone in self.milestones if milestone <= self.last_epoch)
        return [base_lr * self.gamma**passed for base_lr in self.base_lrs]


class ExponentialLR(LRScheduler):
    """Multiply the rate by `gamma` every epoch."""

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1) -> None:
        self.gamma = _number("ExponentialLR", "gamma", gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        """The previous rate times `gamma` (unchanged when the scheduler is created)."""
        if self._is_initial:
            return self._current_lrs()
        return [lr * self.gamma for lr in self._current_lrs()]

    def _closed_form_lr(self) -> list[float]:
        return [base_lr * self.gamma**self.last_epoch for base_lr in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """Anneal the rate from its start to `eta_min` along half a cosine over `T_max` epochs (no restarts).

    The rate follows ``eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2``, computed as PyTorch
    does from the previous rate; past `T_max` the cosine climbs back up, as PyTorch's does.
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1) -> None:
        self.T_max = _whole("CosineAnnealingLR", "T_max", T_max, 1)
        self.eta_min = _number("CosineAnnealingLR", "eta_min", eta_min)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        """PyTorch's recursive form of the cosine schedule."""
        epoch, period, eta_min = self.last_epoch, self.T_max, self.eta_min
        if self._is_initial:
            return self._current_lrs()
        if self._step_count == 1 and epoch > 0:  # resumed with last_epoch > 0: no previous rate to go from
            return [
                eta_min + (base_lr - eta_min) * (1 + math.cos(epoch * math.pi / period)) / 2
                for base_lr in self.base_lrs
            ]
        if (epoch - 1 - period) % (2 * period) == 0:  # the bottom of the cosine: the ratio below would be 0 / 0
            return [
                lr + (base_lr - eta_min) * (1 - math.cos(math.pi / period)) / 2
                for lr, base_lr in zip(self._current_lrs(), self.base_lrs)
            ]
        ratio = (1 + math.cos(math.pi * epoch / period)) / (1 + math.cos(math.pi * (epoch - 1) / period))
        return [ratio * (lr - eta_min) + eta_min for lr in self._current_lrs()]

    def _closed_form_lr(self) -> list[float]:
        return [
            self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
            for base_lr in self.base_lrs
        ]


class OneCycleLR(LRScheduler):
    """The 1cycle policy (Smith): up from ``max_lr / div_factor`` to `max_lr`, then down far below; per batch.

    Call `step()` after every batch; the cycle lasts `total_steps` batches (or ``epochs * steps_per_epoch``).
    The rate rises for the first `pct_start` of the cycle and anneals (``"cos"`` or ``"linear"``) down to
    ``max_lr / div_factor / final_div_factor``; ``three_phase=True`` comes back to the start before the final
    descent, as in the paper. With `cycle_momentum` the optimizer's ``momentum`` (SGD, RMSprop) or ``betas[0]``
    (Adam) moves the opposite way, between `max_momentum` and `base_momentum`. As in PyTorch, the settings
    ``initial_lr``, ``max_lr``, ``min_lr``, ``max_momentum`` and ``base_momentum`` are stored in each group::

        scheduler = optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, epochs=10, steps_per_epoch=len(loader))
    """

    def __init__(
        self,
        optimizer: Optimizer,
        max_lr: float | Sequence[float],
        total_steps: int | None = None,
        epochs: int | None = None,
        steps_per_epoch: int | None = None,
        pct_start: float = 0.3,
        anneal_strategy: str = "cos",
        cycle_momentum: bool = True,
        base_momentum: float | Sequence[float] = 0.85,
        max_momentum: float | Sequence[float] = 0.95,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
        last_epoch: int = -1,
    ) -> None:
        name = "OneCycleLR"
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{name} takes an Optimizer, got {type(optimizer).__name__}")
        if total_steps is not None:
            self.total_steps = _whole(name, "total_steps", total_steps, 1)
        elif epochs is not None and steps_per_epoch is not None:
            self.total_steps = _whole(name, "epochs", epochs, 1) * _whole(name, "steps_per_epoch", steps_per_epoch, 1)
        else:
            raise ValueError(f"{name}: give total_steps, or both epochs and steps_per_epoch")
        pct_start = _number(name, "pct_start", pct_start)
        if pct_start > 1:
            raise ValueError(f"{name}: pct_start is a fraction of the cycle, between 0 and 1; got {pct_start}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"{name}: anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")
        div_factor = _number(name, "div_factor", div_factor, strict=True)
        final_div_factor = _number(name, "final_div_factor", final_div_factor, strict=True)
        self.anneal_strategy = anneal_strategy
        rise_end = float(pct_start * self.total_steps) - 1
        if three_phase:
            self._schedule_phases = [
                {"end_step": rise_end, "start_lr": "initial_lr", "end_lr": "max_lr",
                 "start_momentum": "max_momentum", "end_momentum": "base_momentum"},
                {"end_step": float(2 * pct_start * self.total_steps) - 2, "start_lr": "max_lr", "end_lr": "initial_lr",
                 "start_momentum": "base_momentum", "end_momentum": "max_momentum"},
                {"end_step": self.total_steps - 1, "start_lr": "initial_lr", "end_lr": "min_lr",
                 "start_momentum": "max_momentum", "end_momentum": "max_momentum"},
            ]  # fmt: skip
        else:
            self._schedule_phases = [
                {"end_step": rise_end, "start_lr": "initial_lr", "end_lr": "max_lr",
                 "start_momentum": "max_momentum", "end_momentum": "base_momentum"},
                {"end_step": self.total_steps - 1, "start_lr": "max_lr", "end_lr": "min_lr",
                 "start_momentum": "base_momentum", "end_momentum": "max_momentum"},
            ]  # fmt: skip
        max_lrs = [_number(name, "max_lr", lr) for lr in _per_group(name, "max_lr", max_lr, optimizer)]
        if last_epoch == -1:
            for group, top in zip(optimizer.param_groups, max_lrs):
                group["initial_lr"] = top / div_factor
                group["max_lr"] = top
                group["min_lr"] = group["initial_lr"] / final_div_factor
        self.cycle_momentum = bool(cycle_momentum)
        self.use_beta1 = False
        if self.cycle_momentum:
            if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
                raise ValueError(
                    f"{name}: cycle_momentum=True needs an optimizer with momentum or betas (SGD, RMSprop, Adam); "
                    f"{type(optimizer).__name__} has neither: pass cycle_momentum=False"
                )
            self.use_beta1 = "betas" in optimizer.defaults
            tops = [_number(name, "max_momentum", m) for m in _per_group(name, "max_momentum", max_momentum, optimizer)]
            bases = [
                _number(name, "base_momentum", m) for m in _per_group(name, "base_momentum", base_momentum, optimizer)
            ]
            if last_epoch == -1:
                for group, top, base in zip(optimizer.param_groups, tops, bases):
                    if self.use_beta1:
                        group["betas"] = (top, *group["betas"][1:])
                    else:
                        group["momentum"] = top
                    group["max_momentum"] = top
                    group["base_momentum"] = base
        super().__init__(optimizer, last_epoch)

    def _anneal(self, start: float, end: float, fraction: float) -> float:
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * fraction) + 1)
        return (end - start) * fraction + start

    def get_lr(self) -> list[float]:
        """The rate of batch `last_epoch` within its phase; also sets momentum (or beta1) when cycling it."""
        step = self.last_epoch
        if step > self.total_steps:
            raise ValueError(
                f"OneCycleLR: step() was called {step} times, but the cycle has total_steps={self.total_steps}; "
                "make the cycle as long as the training (epochs * steps_per_epoch)"
            )
        rates = []
        for group in self.optimizer.param_groups:
            start_step = 0.0
            for index, phase in enumerate(self._schedule_phases):
                end_step = phase["end_step"]
                if step <= end_step or index == len(self._schedule_phases) - 1:
                    fraction = (step - start_step) / (end_step - start_step)
                    rate = self._anneal(group[phase["start_lr"]], group[phase["end_lr"]], fraction)
                    if self.cycle_momentum:
                        momentum = self._anneal(group[phase["start_momentum"]], group[phase["end_momentum"]], fraction)
                    break
                start_step = phase["end_step"]
            rates.append(rate)
            if self.cycle_momentum:
                if self.use_beta1:
                    group["betas"] = (momentum, *group["betas"][1:])
                else:
                    group["momentum"] = momentum
        return rates


class ReduceLROnPlateau(LRScheduler):
    """Multiply the rate by `factor` when a metric stopped improving for `patience` epochs: ``step(metric)``.

    ``mode="min"`` watches a metric that should go down (a loss), ``"max"`` one that should go up (an
    accuracy). A value counts as better than the best so far by `threshold`, relative
    (``threshold_mode="rel"``) or absolute. After a reduction, `cooldown` epochs pass before bad epochs count
    again; no rate goes below `min_lr` (one for all groups, or one per group), and changes smaller than `eps`
    are skipped::

        scheduler = optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=3)
        for epoch in range(50):
            train_one_epoch()
            scheduler.step(validation_loss())
    """

    _nullable = frozenset({"default_min_lr"})

    def __init__(
        self,
        optimizer: Optimizer,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: float | Sequence[float] = 0,
        eps: float = 1e-8,
    ) -> None:
        name = "ReduceLROnPlateau"
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{name} takes an Optimizer, got {type(optimizer).__name__}")
        factor = _number(name, "factor", factor)
        if factor >= 1.0:
            raise ValueError(f"{name}: factor multiplies the rate down, so it must be below 1; got {factor}")
        if mode not in ("min", "max"):
            raise ValueError(f"{name}: mode must be 'min' (a loss) or 'max' (an accuracy), got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"{name}: threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}")
        self.optimizer = optimizer
        self.factor = factor
        if isinstance(min_lr, (list, tuple)):
            self.default_min_lr = None
            self.min_lrs = [_number(name, "min_lr", m) for m in _per_group(name, "min_lr", min_lr, optimizer)]
        else:
            self.default_min_lr = _number(name, "min_lr", min_lr)
            self.min_lrs = [self.default_min_lr] * len(optimizer.param_groups)
        self.patience = _whole(name, "patience", patience, 0)
        self.cooldown = _whole(name, "cooldown", cooldown, 0)
        self.eps = _number(name, "eps", eps)
        self.mode = mode
        self.threshold = _number(name, "threshold", threshold)
        self.threshold_mode = threshold_mode
        self.mode_worse = math.inf if mode == "min" else -math.inf
        self.last_epoch = 0
        self._last_lr = self._current_lrs()
        self.best = self.mode_worse
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    def _is_better(self, value: float, best: float) -> bool:
        if self.mode == "min":
            return (
                value < best * (1.0 - self.threshold) if self.threshold_mode == "rel" else value < best - self.threshold
            )
        return value > best * (self.threshold + 1.0) if self.threshold_mode == "rel" else value > best + self.threshold

    def step(self, metrics: Any = None, epoch: int | None = None) -> None:
        """Record this epoch's value of the metric, and reduce the rates if it has stopped improving."""
        if metrics is None:
            raise TypeError("ReduceLROnPlateau.step() needs the metric it watches, such as step(validation_loss)")
        try:
            current = float(metrics)
        except (TypeError, ValueError):
            raise TypeError(f"ReduceLROnPlateau.step() takes a number, got {type(metrics).__name__}") from None
        if epoch is None:
            epoch = self.last_epoch + 1
        else:
            warnings.warn(
                "ReduceLROnPlateau.step(metric, epoch) is deprecated, as in PyTorch", UserWarning, stacklevel=2
            )
        self.last_epoch = epoch
        if self._is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs during the cooldown do not count
        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = self._current_lrs()

    def _reduce_lr(self) -> None:
        groups = self.optimizer.param_groups
        if len(self.min_lrs) != len(groups):
            if self.default_min_lr is None:
                raise RuntimeError(
                    f"ReduceLROnPlateau has {len(self.min_lrs)} min_lr values but the optimizer now has "
                    f"{len(groups)} parameter groups (one was added): set min_lrs to one value per group"
                )
            self.min_lrs = [self.default_min_lr] * len(groups)
        for group, min_lr in zip(groups, self.min_lrs):
            old_lr = float(group["lr"])
            new_lr = max(old_lr * self.factor, min_lr)
            if old_lr - new_lr > self.eps:
                group["lr"] = new_lr

    def get_lr(self) -> list[float]:
        """The current rates (this scheduler changes them in `step` only)."""
        return self._current_lrs()


# -------------------------------------------------------------------------------------------------------------
# Warm-up and decay by a factor: ConstantLR, LinearLR, PolynomialLR, MultiplicativeLR
# -------------------------------------------------------------------------------------------------------------


def _fraction(scheduler: str, name: str, value: Any, *, zero: bool) -> float:
    """`value` if it is a number in [0, 1] (or (0, 1] without `zero`), else a ValueError saying why."""
    value = _number(scheduler, name, value, strict=not zero)
    if value > 1:
        raise ValueError(f"{scheduler}: {name} multiplies the starting rate and must be at most 1, got {value!r}")
    return value


class ConstantLR(LRScheduler):
    """Multiply the rate by `factor` for the first `total_iters` epochs, then give it back its starting value.

    A short warm-up at a lower rate: with the defaults the rate is a third of its start for epochs 0 to 4, and
    the start from epoch 5 on. `factor` lies in (0, 1] (PyTorch also takes 0, but then fails at `total_iters`
    dividing by it).
    """

    def __init__(
        self, optimizer: Optimizer, factor: float = 1.0 / 3, total_iters: int = 5, last_epoch: int = -1
    ) -> None:
        self.factor = _fraction("ConstantLR", "factor", factor, zero=False)
        self.total_iters = _whole("ConstantLR", "total_iters", total_iters, 1)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        """The rate times `factor` at epoch 0, divided by it again at `total_iters`, unchanged otherwise."""
        if self.last_epoch == 0:
            return [lr * self.factor for lr in self._current_lrs()]
        if self.last_epoch != self.total_iters:
            return self._current_lrs()
        return [lr * (1.0 / self.factor) for lr in self._current_lrs()]

    def _closed_form_lr(self) -> list[float]:
        return [
            base_lr * (self.factor + (self.last_epoch >= self.total_iters) * (1 - self.factor))
            for base_lr in self.base_lrs
        ]


class LinearLR(LRScheduler):
    """Scale the rate by a factor going in a straight line from `start_factor` to `end_factor` in `total_iters`.

    The usual linear warm-up: ``LinearLR(optimizer, start_factor=0.1, total_iters=10)`` climbs from a tenth of
    the rate to all of it over 10 epochs and stays there. The factors are fractions of the starting rate, as in
    PyTorch: `start_factor` in (0, 1] and `end_factor` in [0, 1] (so it also decays linearly to 0).
    """

    def __init__(
        self,
        optimizer: Optimizer,
        start_factor: float = 1.0 / 3,
        end_factor: float = 1.0,
        total_iters: int = 5,
        last_epoch: int = -1,
    ) -> None:
        self.start_factor = _fraction("LinearLR", "start_factor", start_factor, zero=False)
        self.end_factor = _fraction("LinearLR", "end_factor", end_factor, zero=True)
        self.total_iters = _whole("LinearLR", "total_iters", total_iters, 1)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        """PyTorch's recursive form: the previous rate times the ratio of this epoch's factor to the last one's."""
        if self.last_epoch == 0:
            return [lr * self.start_factor for lr in self._current_lrs()]
        if self._is_initial or self.last_epoch > self.total_iters:
            return self._current_lrs()
        change = self.end_factor - self.start_factor
        ratio = 1.0 + change / (self.total_iters * self.start_factor + (self.last_epoch - 1) * change)
        return [lr * ratio for lr in self._current_lrs()]

    def _closed_form_lr(self) -> list[float]:
        change = self.end_factor - self.start_factor
        return [
            base_lr * (self.start_factor + change * min(self.total_iters, self.last_epoch) / self.total_iters)
            for base_lr in self.base_lrs
        ]


class PolynomialLR(LRScheduler):
    """Decay the rate to 0 in `total_iters` epochs along ``(1 - epoch / total_iters) ** power``, then keep it 0.

    ``power=1`` (the default) is a straight line down; ``power=2`` falls faster at first.
    """

    def __init__(self, optimizer: Optimizer, total_iters: int = 5, power: float = 1.0, last_epoch: int = -1) -> None:
        self.total_iters = _whole("PolynomialLR", "total_iters", total_iters, 1)
        self.power = _number("PolynomialLR", "power", power)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        """PyTorch's recursive form: the previous rate times this epoch's decay over the last one's."""
        if self._is_initial or self.last_epoch > self.total_iters:
            return self._current_lrs()
        decay = (
            (1.0 - self.last_epoch / self.total_iters) / (1.0 - (self.last_epoch - 1) / self.total_iters)
        ) ** self.power
        return [lr * decay for lr in self._current_lrs()]

    def _closed_form_lr(self) -> list[float]:
        return [
            base_lr * (1.0 - min(self.total_iters, self.last_epoch) / self.total_iters) ** self.power
            for base_lr in self.base_lrs
        ]


class MultiplicativeLR(LRScheduler):
    """Multiply each group's rate by ``lr_lambda(epoch)`` at every epoch (from epoch 1 on).

    `lr_lambda` is one function for every group or a list with one per group; each must return a finite
    number >= 0 (checked at every step, naming the epoch). ``lr_lambda=lambda epoch: 0.95`` is `ExponentialLR`
    with ``gamma=0.95``. As with `LambdaLR`, the functions are not part of the state dict; recreate them.
    """

    _not_state = LRScheduler._not_state | {"lr_lambdas"}

    def __init__(
        self,
        optimizer: Optimizer,
        lr_lambda: Callable[[int], float] | Sequence[Callable[[int], float]],
        last_epoch: int = -1,
    ) -> None:
        self.lr_lambdas = _lr_lambdas("MultiplicativeLR", lr_lambda, optimizer)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        """The previous rate times ``lr_lambda(last_epoch)`` (unchanged when the scheduler is created)."""
        if self._is_initial:
            return self._current_lrs()
        rates = []
        for function, lr in zip(self.lr_lambdas, self._current_lrs()):
            factor = _number("MultiplicativeLR", f"lr_lambda({self.last_epoch})", function(self.last_epoch))
            rates.append(lr * factor)
        return rates


# -------------------------------------------------------------------------------------------------------------
# Cycles: CosineAnnealingWarmRestarts, CyclicLR
# -------------------------------------------------------------------------------------------------------------


class CosineAnnealingWarmRestarts(LRScheduler):
    """Cosine annealing from the starting rate to `eta_min` over `T_0` epochs, then restart (SGDR, Loshchilov).

    Each restart jumps back to the starting rate; the period is multiplied by `T_mult` at each one (``T_mult=2``:
    periods of T_0, 2 T_0, 4 T_0, ...). The rate is ``eta_min + (base_lr - eta_min) * (1 + cos(pi * T_cur /
    T_i)) / 2`` with `T_cur` the epochs since the last restart and `T_i` the current period.

    As in PyTorch, `step` may be given the epoch, a fraction included, to anneal within an epoch (this form is
    not deprecated here)::

        for epoch in range(20):
            for i, batch in enumerate(loader):
                train(batch)
                scheduler.step(epoch + i / len(loader))
    """

    def __init__(
        self, optimizer: Optimizer, T_0: int, T_mult: int = 1, eta_min: float = 0.0, last_epoch: int = -1
    ) -> None:
        name = "CosineAnnealingWarmRestarts"
        self.T_0 = _whole(name, "T_0", T_0, 1)
        self.T_i = self.T_0
        self.T_mult = _whole(name, "T_mult", T_mult, 1)
        self.eta_min = _number(name, "eta_min", eta_min)
        self.T_cur: float = _whole(name, "last_epoch", last_epoch, -1)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        """The cosine at ``T_cur / T_i``, from the starting rates (no recursion, as in PyTorch)."""
        return [
            self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * self.T_cur / self.T_i)) / 2
            for base_lr in self.base_lrs
        ]

    def step(self, epoch: float | None = None) -> None:
        """Move on one epoch (or batch), restarting when the period is over; or go to `epoch`, a fraction too."""
        if epoch is None and self.last_epoch < 0:
            epoch = 0
        if epoch is None:
            epoch = self.last_epoch + 1
            self.T_cur = self.T_cur + 1
            if self.T_cur >= self.T_i:
                self.T_cur = self.T_cur % self.T_i
                self.T_i = self.T_i * self.T_mult
        else:
            epoch = _number("CosineAnnealingWarmRestarts", "epoch", epoch)
            if epoch >= self.T_0:
                if self.T_mult == 1:
                    self.T_cur = epoch % self.T_0
                else:
                    # The number of restarts so far: the periods T_0 * T_mult ** k sum to more than epoch at k = n.
                    n = int(math.log(epoch / self.T_0 * (self.T_mult - 1) + 1, self.T_mult))
                    self.T_cur = epoch - self.T_0 * (self.T_mult**n - 1) / (self.T_mult - 1)
                    self.T_i = self.T_0 * self.T_mult**n
            else:
                self.T_i = self.T_0
                self.T_cur = epoch
        self.last_epoch = math.floor(epoch)
        for group, rate in zip(self.optimizer.param_groups, self.get_lr()):
            group["lr"] = rate
        self._last_lr = self._current_lrs()


class CyclicLR(LRScheduler):
    """Cycle the rate between `base_lr` and `max_lr` (cyclical learning rates, Smith); call `step()` per batch.

    Each cycle rises for `step_size_up` batches and falls for `step_size_down` (default: as many). ``mode``
    scales the height of each cycle: ``"triangular"`` keeps it, ``"triangular2"`` halves it every cycle,
    ``"exp_range"`` multiplies it by ``gamma ** batch``. Or give your own ``scale_fn(x)`` (values in [0, 1]),
    evaluated at the cycle number (``scale_mode="cycle"``) or the batch (``"iterations"``); `mode` is then
    ignored. Creating the scheduler sets every group's rate to `base_lr`.

    With `cycle_momentum` (the default) the optimizer's ``momentum`` (SGD, RMSprop) or ``betas[0]`` (Adam)
    moves the opposite way, between `max_momentum` at the bottom of a cycle and `base_momentum` at the top;
    pass ``cycle_momentum=False`` for an optimizer without either (Adagrad). As in PyTorch, a custom `scale_fn`
    is not part of the state dict; recreate it::

        scheduler = optim.lr_scheduler.CyclicLR(optimizer, base_lr=0.01, max_lr=0.1, step_size_up=4 * len(loader))
    """

    _not_state = LRScheduler._not_state | {"_scale_fn_custom"}

    def __init__(
        self,
        optimizer: Optimizer,
        base_lr: float | Sequence[float],
        max_lr: float | Sequence[float],
        step_size_up: int = 2000,
        step_size_down: int | None = None,
        mode: str = "triangular",
        gamma: float = 1.0,
        scale_fn: Callable[[float], float] | None = None,
        scale_mode: str = "cycle",
        cycle_momentum: bool = True,
        base_momentum: float | Sequence[float] = 0.8,
        max_momentum: float | Sequence[float] = 0.9,
        last_epoch: int = -1,
    ) -> None:
        name = "CyclicLR"
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{name} takes an Optimizer, got {type(optimizer).__name__}")
        last_epoch = _whole(name, "last_epoch", last_epoch, -1)
        base_lrs = [_number(name, "base_lr", lr) for lr in _per_group(name, "base_lr", base_lr, optimizer)]
        max_lrs = [_number(name, "max_lr", lr) for lr in _per_group(name, "max_lr", max_lr, optimizer)]
        up = float(_whole(name, "step_size_up", step_size_up, 1))
        # step_size_down=0 is a saw tooth: up for step_size_up batches, then straight back to base_lr.
        down = up if step_size_down is None else float(_whole(name, "step_size_down", step_size_down, 0))
        if scale_fn is None and mode not in ("triangular", "triangular2", "exp_range"):
            raise ValueError(
                f"{name}: mode must be 'triangular', 'triangular2' or 'exp_range' (or give a scale_fn), got {mode!r}"
            )
        if scale_fn is not None and not callable(scale_fn):
            raise TypeError(f"{name}: scale_fn must be a function of the cycle or batch, got {type(scale_fn).__name__}")
        if scale_mode not in ("cycle", "iterations"):
            raise ValueError(f"{name}: scale_mode must be 'cycle' or 'iterations', got {scale_mode!r}")
        self.gamma = _number(name, "gamma", gamma)
        self.optimizer = optimizer
        if last_epoch == -1:
            for group, lr in zip(optimizer.param_groups, base_lrs):
                group["lr"] = lr
        self.max_lrs = max_lrs
        self.total_size = up + down
        self.step_ratio = up / self.total_size
        self.mode = mode
        self._scale_fn_custom = scale_fn
        self.scale_mode = scale_mode
        self._set_scale_mode()
        self.cycle_momentum = bool(cycle_momentum)
        self.use_beta1 = False
        if self.cycle_momentum:
            if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
                raise ValueError(
                    f"{name}: cycle_momentum=True needs an optimizer with momentum or betas (SGD, RMSprop, Adam); "
                    f"{type(optimizer).__name__} has neither: pass cycle_momentum=False"
                )
            self.use_beta1 = "betas" in optimizer.defaults
            self.base_momentums = [
                _number(name, "base_momentum", m) for m in _per_group(name, "base_momentum", base_momentum, optimizer)
            ]
            self.max_momentums = [
                _number(name, "max_momentum", m) for m in _per_group(name, "max_momentum", max_momentum, optimizer)
            ]
            if last_epoch == -1:
                for group, top, base in zip(optimizer.param_groups, self.max_momentums, self.base_momentums):
                    if self.use_beta1:
                        group["betas"] = (top, *group["betas"][1:])
                    else:
                        group["momentum"] = top
                    group["max_momentum"] = top
                    group["base_momentum"] = base
        super().__init__(optimizer, last_epoch)
        # As in PyTorch, the first step uses the groups' initial_lr; from then on the cycle starts at base_lr.
        self.base_lrs = base_lrs

    def _set_scale_mode(self) -> None:
        # The built-in modes fix what their scale is a function of (PyTorch's rule).
        if self._scale_fn_custom is None:
            self.scale_mode = "iterations" if self.mode == "exp_range" else "cycle"

    def scale_fn(self, x: float) -> float:
        """The height of the cycle at `x` (the cycle number or the batch), as a fraction of ``max_lr - base_lr``."""
        if self._scale_fn_custom is not None:
            return self._scale_fn_custom(x)
        if self.mode == "triangular":
            return 1.0
        if self.mode == "triangular2":
            return 1 / (2.0 ** (x - 1))
        return self.gamma**x

    def get_lr(self) -> list[float]:
        """The rate at batch `last_epoch` within its cycle; also sets momentum (or beta1) when cycling it."""
        cycle = math.floor(1 + self.last_epoch / self.total_size)
        x = 1.0 + self.last_epoch / self.total_size - cycle
        # Rising through the first step_ratio of the cycle, falling through the rest.
        scale_factor = x / self.step_ratio if x <= self.step_ratio else (x - 1) / (self.step_ratio - 1)
        where = cycle if self.scale_mode == "cycle" else self.last_epoch
        # scale_fn is called once per group and value, as PyTorch calls it (a custom one may count its calls).
        rates = [
            base_lr + (max_lr - base_lr) * scale_factor * self.scale_fn(where)
            for base_lr, max_lr in zip(self.base_lrs, self.max_lrs)
        ]
        if self.cycle_momentum:
            for group, base, top in zip(self.optimizer.param_groups, self.base_momentums, self.max_momentums):
                momentum = top - (top - base) * scale_factor * self.scale_fn(where)
                if self.use_beta1:
                    group["betas"] = (momentum, *group["betas"][1:])
                else:
                    group["momentum"] = momentum
        return rates

    def _after_load(self) -> None:
        self._set_scale_mode()


# -------------------------------------------------------------------------------------------------------------
# Schedulers of schedulers: SequentialLR, ChainedScheduler
# -------------------------------------------------------------------------------------------------------------


def _children(container: str, optimizer: Optimizer, schedulers: Any) -> list[LRScheduler]:
    """The schedulers a container drives, checked: at least one, each a scheduler of `optimizer`, none twice."""
    if not isinstance(schedulers, (list, tuple)):
        raise TypeError(f"{container}: schedulers must be a list of schedulers, got {type(schedulers).__name__}")
    if not schedulers:
        raise ValueError(f"{container}: schedulers is empty; give at least one scheduler")
    for index, scheduler in enumerate(schedulers):
        if not isinstance(scheduler, LRScheduler):
            raise TypeError(
                f"{container}: schedulers[{index}] must be one of optim.lr_scheduler's, got {type(scheduler).__name__}"
            )
        if isinstance(scheduler, ReduceLROnPlateau):
            raise ValueError(
                f"{container}: schedulers[{index}] is a ReduceLROnPlateau, which steps on a metric; it cannot be "
                "driven by step() without one (step it yourself, after the others)"
            )
        if scheduler.optimizer is not optimizer:
            raise ValueError(
                f"{container}: schedulers[{index}] ({type(scheduler).__name__}) sets the rates of another "
                f"{type(scheduler.optimizer).__name__} than the one given; all must share one optimizer"
            )
        for earlier in range(index):
            if schedulers[earlier] is scheduler:
                raise ValueError(f"{container}: schedulers[{index}] is schedulers[{earlier}] again; give each once")
    return list(schedulers)


class _Container(LRScheduler):
    """What SequentialLR and ChainedScheduler share: their children's states inside their own."""

    _not_state = LRScheduler._not_state | {"_schedulers"}
    _schedulers: list[LRScheduler]

    def state_dict(self) -> dict[str, Any]:
        """Its own position and, under ``_schedulers``, each scheduler's state dict (PyTorch's layout)."""
        return {**self._own_state(), "_schedulers": [child.state_dict() for child in self._schedulers]}

    def _state_problems(self, state_dict: Any) -> list[str]:
        if not isinstance(state_dict, Mapping):
            return super()._state_problems(state_dict)
        problems = super()._state_problems({k: v for k, v in state_dict.items() if k != "_schedulers"})
        children = state_dict.get("_schedulers")
        if children is None:
            problems.append("missing '_schedulers' (the state of each scheduler)")
        elif not isinstance(children, (list, tuple)) or len(children) != len(self._schedulers):
            problems.append(
                f"'_schedulers' should hold the states of {len(self._schedulers)} schedulers, got {children!r}"
            )
        else:
            for index, (child, state) in enumerate(zip(self._schedulers, children)):
                problems += [f"schedulers[{index}] ({type(child).__name__}): {p}" for p in child._state_problems(state)]
        return problems

    def _apply_state(self, state_dict: Mapping[str, Any]) -> None:
        super()._apply_state({k: v for k, v in state_dict.items() if k != "_schedulers"})
        for child, state in zip(self._schedulers, state_dict["_schedulers"]):
            child._apply_state(state)


class SequentialLR(_Container):
    """Run `schedulers` one after another, switching to the next at each epoch in `milestones`.

    The usual warm-up then decay::

        warmup = optim.lr_scheduler.LinearLR(optimizer, start_factor=0.1, total_iters=5)
        decay = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=45)
        scheduler = optim.lr_scheduler.SequentialLR(optimizer, [warmup, decay], milestones=[5])

    All must be schedulers of `optimizer` (not ReduceLROnPlateau), with one milestone fewer than schedulers,
    increasing; only the first may itself be a SequentialLR or ChainedScheduler. As in PyTorch, creating it puts
    the rates back at their start and restarts the first scheduler; at a milestone the next one starts from its
    epoch 0 (with its closed form where it has one). The state dict holds each scheduler's state.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        schedulers: Sequence[LRScheduler],
        milestones: Sequence[int],
        last_epoch: int = -1,
    ) -> None:
        name = "SequentialLR"
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{name} takes an Optimizer, got {type(optimizer).__name__}")
        children = _children(name, optimizer, schedulers)
        if isinstance(milestones, (str, bytes)) or not isinstance(milestones, Iterable):
            raise TypeError(f"{name}: milestones must be a list of epochs, got {milestones!r}")
        milestones = [_whole(name, "each milestone", m, 1) for m in milestones]
        if len(milestones) != len(children) - 1:
            raise ValueError(
                f"{name}: {len(children)} schedulers need {len(children) - 1} milestones (the epochs where the next "
                f"one starts), got {len(milestones)}: {milestones}"
            )
        if any(later <= earlier for earlier, later in itertools.pairwise(milestones)):
            raise ValueError(f"{name}: milestones must increase, got {milestones}")
        for index, child in enumerate(children[1:], 1):
            if isinstance(child, _Container):
                # A scheduler starts at its milestone from its epoch 0, which a container does not have (PyTorch
                # fails there, at the milestone); first in line, it starts as when it was created.
                raise ValueError(
                    f"{name}: schedulers[{index}] is a {type(child).__name__}, which cannot start at a milestone; "
                    "only the first scheduler may be a SequentialLR or ChainedScheduler"
                )
        self._schedulers = children
        self._milestones = milestones
        self.last_epoch = _whole(name, "last_epoch", last_epoch, -1) + 1
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"]
        self._undo_creation_step(self)
        first = self._schedulers[bisect.bisect_right(self._milestones, 0)]
        first._initial_step()
        self._last_lr = first.get_last_lr()

    def _undo_creation_step(self, scheduler: LRScheduler) -> None:
        # Each scheduler stepped to epoch 0 when it was created; take that back (in nested containers too).
        if isinstance(scheduler, _Container):
            for child in scheduler._schedulers:
                self._undo_creation_step(child)
        elif scheduler is not self:
            scheduler.last_epoch -= 1

    def step(self) -> None:  # type: ignore[override]
        """Move to the next epoch, with the scheduler whose turn it is (starting it at its milestone)."""
        self.last_epoch += 1
        index = bisect.bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[index]
        if index > 0 and self._milestones[index - 1] == self.last_epoch:
            scheduler._update_lr(0)
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()

    def get_lr(self) -> list[float]:
        """The current rates (the scheduler whose turn it is sets them in `step`)."""
        return self._current_lrs()


class ChainedScheduler(_Container):
    """Step several schedulers together at each `step`, each multiplying in its own change.

    For example a warm-up and a decay at once: ``ChainedScheduler([ConstantLR(opt, 0.1, 2), ExponentialLR(opt,
    0.9)])``. Note the order of the arguments, PyTorch's: the schedulers first, then (optionally) the optimizer,
    which defaults to the first scheduler's. All must be schedulers of it (not ReduceLROnPlateau). The state dict
    holds each scheduler's state.
    """

    def __init__(self, schedulers: Sequence[LRScheduler], optimizer: Optimizer | None = None) -> None:
        name = "ChainedScheduler"
        if optimizer is None:
            if isinstance(schedulers, (list, tuple)) and schedulers and isinstance(schedulers[0], LRScheduler):
                optimizer = schedulers[0].optimizer
        elif not isinstance(optimizer, Optimizer):
            raise TypeError(f"{name}: optimizer must be an Optimizer (or None), got {type(optimizer).__name__}")
        self._schedulers = _children(name, optimizer, schedulers)
        self.optimizer = optimizer
        self._last_lr = self._current_lrs()

    def step(self) -> None:  # type: ignore[override]
        """Step every scheduler, in order."""
        for scheduler in self._schedulers:
            scheduler.step()
        self._last_lr = self._current_lrs()

    def get_lr(self) -> list[float]:
        """The current rates (the schedulers set them in `step`)."""
        return self._current_lrs()
