"""Learning-rate schedulers with ``torch.optim.lr_scheduler``'s names, arguments and arithmetic.

Each scheduler sets ``group["lr"]`` of its optimizer's groups. As in PyTorch, creating one applies the rate of
step 0 (and records each group's starting rate as ``initial_lr``), and each `step()`, called after
``optimizer.step()``, moves to the next epoch (or batch, for `OneCycleLR`). The rates are computed the way
PyTorch computes them, most from the previous rate (so a rate you change by hand carries on from there), which
makes the sequences equal to PyTorch's to the last bit. `ReduceLROnPlateau` steps on a metric instead::

    scheduler = optim.lr_scheduler.StepLR(optimizer, step_size=10, gamma=0.5)
    for epoch in range(30):
        train_one_epoch()
        scheduler.step()

`state_dict` and `load_state_dict` save and restore a scheduler's position (numbers and lists only). As in
PyTorch, create the scheduler first and then load the optimizer's state, since creating a scheduler resets the
learning rate.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar

from .optimizer import Optimizer

__all__ = [
    "CosineAnnealingLR",
    "ExponentialLR",
    "LRScheduler",
    "LambdaLR",
    "MultiStepLR",
    "OneCycleLR",
    "ReduceLROnPlateau",
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
        if epoch is None:
            self.last_epoch += 1
            rates = self.get_lr()
        else:
            warnings.warn(
                f"{type(self).__name__}.step(epoch) is deprecated, as in PyTorch: call step() once per epoch",
                UserWarning,
                stacklevel=2,
            )
            self.last_epoch = _whole(type(self).__name__, "epoch", epoch, 0)
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
        return {key: _plain_copy(value) for key, value in vars(self).items() if key not in self._not_state}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore a position saved by `state_dict` of a scheduler of this class (over as many groups).

        Every entry is checked first (a known name, a value of the kind this scheduler holds, one value per
        group where there is one per group); an error lists all that does not fit and changes nothing.
        """
        name = type(self).__name__
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"{name}.load_state_dict takes a dict from state_dict(), got {type(state_dict).__name__}")
        own = self.state_dict()
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
        if problems:
            raise ValueError(f"{name}.load_state_dict changed nothing, because: " + "; ".join(problems))
        for key, value in state_dict.items():
            setattr(self, key, _plain_copy(value))
        self._after_load()

    # Entries with one value per parameter group, and entries that may be None.
    _per_group_state: ClassVar[frozenset[str]] = frozenset({"base_lrs", "_last_lr", "min_lrs"})
    _nullable: ClassVar[frozenset[str]] = frozenset({"default_min_lr"})

    def _after_load(self) -> None:
        """Turn loaded lists back into what the scheduler holds (subclasses that need it)."""


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
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"LambdaLR takes an Optimizer, got {type(optimizer).__name__}")
        self.lr_lambdas = _per_group("LambdaLR", "lr_lambda", lr_lambda, optimizer)
        for function in self.lr_lambdas:
            if not callable(function):
                raise TypeError(f"LambdaLR: lr_lambda must be a function of the epoch, got {type(function).__name__}")
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
