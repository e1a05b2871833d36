"""`Optimizer`: parameter groups, per-parameter state, `zero_grad`, and state dicts that resume bit for bit.

A subclass defines `step` and says what it keeps per parameter (`_array_state`, arrays of the parameter's shape,
and `_number_state`, such as the step count); the base class checks parameters and settings, and turns the state
into PyTorch's state-dict structure and back.
"""

from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import numpy as np

from ..nn.module import Module
from ..tensor import Tensor

__all__ = ["Optimizer"]


def grad_array(parameter: Tensor) -> np.ndarray | None:
    """A parameter's gradient as an ndarray, or None: ``.grad`` is a Tensor after ``backward(create_graph=True)``."""
    grad = parameter._grad  # the slot behind the .grad property: every step reads it, for every parameter
    return grad if grad is None or type(grad) is np.ndarray else grad.data


def _copy_value(value: Any) -> Any:
    """A copy that shares no array or list with the optimizer (numbers and strings are immutable already)."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, (list, tuple, dict)):
        return copy.deepcopy(value)
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _settings_text(keys: Iterable[str]) -> str:
    return ", ".join(repr(key) for key in sorted(keys))


class Optimizer:
    """Base class: keeps `param_groups` (a list of dicts) and per-parameter `state`; subclasses define `step`.

    ``params`` is what PyTorch takes: an iterable of parameters (``model.parameters()``), of ``(name, parameter)``
    pairs (``model.named_parameters()``, whose names go into the state dict as ``param_names``), or of parameter
    groups, dicts with a ``params`` entry and their own settings::

        optim.Adam([{"params": body.parameters()}, {"params": head.parameters(), "lr": 1e-2}], lr=1e-3)

    `state_dict` and `load_state_dict` save and restore the settings and the state (momentum buffers, moment
    estimates, step counts), so that training resumed from them continues bit for bit as if never stopped.
    """

    # What a subclass keeps per parameter: arrays of the parameter's shape, and plain numbers such as "step".
    _array_state: ClassVar[frozenset[str]] = frozenset()
    _number_state: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]) -> None:
        name = type(self).__name__
        if isinstance(params, Tensor):
            raise TypeError(
                f"{name} takes an iterable of parameters (such as model.parameters()), not a single Tensor; "
                "wrap it in a list"
            )
        if isinstance(params, Module):
            raise TypeError(
                f"{name} got the model itself (a {type(params).__name__}); pass its parameters: "
                f"{name}(model.parameters(), ...)"
            )
        if isinstance(params, Mapping):
            hint = (
                "wrap the group in a list: [{'params': ...}]"
                if "params" in params
                else "a mapping such as a state dict holds copies, not the parameters: pass model.parameters()"
            )
            raise TypeError(f"{name} got a {type(params).__name__}; {hint}")
        if isinstance(params, (str, bytes)) or not isinstance(params, Iterable):
            raise TypeError(
                f"{name} takes an iterable of parameters such as model.parameters(), got {type(params).__name__}"
            )
        groups = list(params)
        if not groups:
            raise ValueError(f"{name} got an empty parameter list")
        is_group = [isinstance(group, Mapping) for group in groups]
        if any(is_group) and not all(is_group):
            raise TypeError(
                f"{name} got a list that mixes parameter groups (dicts) with parameters; use one or the other"
            )
        if not is_group[0]:
            groups = [{"params": groups}]
        self.defaults = dict(defaults)
        self.param_groups: list[dict[str, Any]] = []
        self.state: dict[Tensor, dict[str, Any]] = {}
        for group in groups:
            self.add_param_group(dict(group))

    # ---------------------------------------------------------------------------------------------------------
    # Parameters and settings
    # ---------------------------------------------------------------------------------------------------------

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters with its own settings (the rest come from the optimizer's defaults)."""
        name = type(self).__name__
        if not isinstance(param_group, Mapping):
            raise TypeError(f"a parameter group is a dict with a 'params' entry, got {type(param_group).__name__}")
        if "params" not in param_group:
            raise TypeError(f"a parameter group needs a 'params' entry; this one has {sorted(param_group)}")
        params, names = self._unpack_params(param_group["params"])
        known = {id(p) for group in self.param_groups for p in group["params"]}
        if len({id(p) for p in params}) != len(params) or any(id(p) in known for p in params):
            raise ValueError("some parameters appear more than once, in this group or in another group")
        unknown = set(param_group) - set(self.defaults) - {"params", "initial_lr", "param_names"}
        if unknown:
            raise TypeError(f"{name} has no setting {', '.join(sorted(unknown))}")
        group = {**self.defaults, **param_group, "params": params}
        if names is not None:
            group["param_names"] = names
        self._check_settings(group)
        self.param_groups.append(group)

    def _unpack_params(self, params: Any) -> tuple[list[Tensor], list[str] | None]:
        """The group's parameters, checked, and their names when they came as (name, parameter) pairs."""
        name = type(self).__name__
        if isinstance(params, Module):
            raise TypeError(f"{name}: a group's 'params' got a {type(params).__name__}; pass its .parameters()")
        items = [params] if isinstance(params, Tensor) else list(params)
        names = None
        if items and all(isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str) for item in items):
            names = [item[0] for item in items]  # model.named_parameters()
            items = [item[1] for item in items]
        for position, parameter in enumerate(items):
            if not isinstance(parameter, Tensor):
                hint = (
                    " (a name: pass model.parameters(), not a state dict or its keys)"
                    if isinstance(parameter, str)
                    else ""
                )
                raise TypeError(
                    f"{name} can only optimize Tensors; item {position} is a {type(parameter).__name__}{hint}"
                )
            if not parameter.is_leaf:
                raise ValueError(f"{name} can't optimize a computed (non-leaf) tensor, item {position}")
            if not parameter.requires_grad:
                raise ValueError(f"{name} got item {position} with requires_grad=False: it would never change")
            if parameter.dtype.kind != "f":
                raise TypeError(
                    f"{name} can only optimize floating-point tensors; item {position} has dtype {parameter.dtype}"
                )
        return items, names

    def _check_settings(self, group: dict[str, Any]) -> None:
        """Refuse settings that would make `step` meaningless; subclasses add their own rules."""
        name = type(self).__name__
        lr = group["lr"]
        if not _is_number(lr) or not (math.isfinite(lr) and lr >= 0):
            raise ValueError(f"{name}: invalid learning rate {lr!r}; it must be a finite number >= 0")
        for key in ("weight_decay", "momentum", "eps", "alpha", "lr_decay", "initial_accumulator_value", "dampening"):
            if key in group:
                value = group[key]
                if not _is_number(value) or not (math.isfinite(value) and value >= 0):
                    raise ValueError(f"{name}: invalid {key} {value!r}; it must be a finite number >= 0")
        for key in ("maximize", "nesterov", "amsgrad", "centered", "decoupled_weight_decay"):
            if key in group and not isinstance(group[key], (bool, np.bool_)):
                raise TypeError(f"{name}: {key} must be True or False, got {group[key]!r}")

    # ---------------------------------------------------------------------------------------------------------
    # Gradients and steps
    # ---------------------------------------------------------------------------------------------------------

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear every parameter's gradient: to None (the default, as in PyTorch), or to zeros.

        With ``set_to_none=False`` an array gradient is zeroed in place; a Tensor gradient (left by
        ``backward(create_graph=True)``) is replaced by a zero array, detached from its graph as PyTorch does.
        """
        # Through the slot behind .grad (every step runs this for every parameter): the values written here are
        # always valid, so the property's checks are not needed.
        for group in self.param_groups:
            for parameter in group["params"]:
                grad = parameter._grad
                if set_to_none or grad is None:
                    parameter._grad = None
                elif isinstance(grad, Tensor):
                    parameter._grad = np.zeros_like(grad.data)
                else:
                    grad[...] = 0

    def step(self) -> None:
        """Update every parameter that has a gradient; subclasses define the rule."""
        raise NotImplementedError(f"{type(self).__name__} must define step()")

    # ---------------------------------------------------------------------------------------------------------
    # State dict
    # ---------------------------------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The settings and state, in PyTorch's structure, as copies (numbers, tuples, lists and ndarrays).

        ``{"state": {index: {"exp_avg": array, "step": 3, ...}}, "param_groups": [{"lr": ..., "params": [0, 1]}]}``:
        parameters are numbered in the order of the groups, and only parameters with state appear in ``state``.
        Later changes to the optimizer do not change the dict, and the other way round.
        """
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {key: _copy_value(value) for key, value in group.items() if key != "params"}
            packed["params"] = [index.setdefault(id(p), len(index)) for p in group["params"]]
            groups.append(packed)
        state = {}
        for parameter, parameter_state in self.state.items():
            if id(parameter) in index and parameter_state:
                state[index[id(parameter)]] = {key: _copy_value(value) for key, value in parameter_state.items()}
        return {"state": dict(sorted(state.items())), "param_groups": groups}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore settings and state saved by `state_dict` (of an optimizer of this class, with the same groups).

        Everything is checked before anything changes: the number of groups and of parameters in each, every
        group's settings, every state entry's name, and every array's shape; an error lists all that does not
        fit and leaves the optimizer as it was. Arrays are copied and cast to their parameter's dtype. As in
        PyTorch, create a scheduler *before* loading, since creating one resets the learning rate.
        """
        name = type(self).__name__
        if not isinstance(state_dict, Mapping) or "param_groups" not in state_dict or "state" not in state_dict:
            got = sorted(map(str, state_dict)) if isinstance(state_dict, Mapping) else type(state_dict).__name__
            raise ValueError(
                f"{name}.load_state_dict takes what state_dict() returned, a dict with 'state' and 'param_groups'; "
                f"got {got}"
            )
        saved_groups, saved_state = state_dict["param_groups"], state_dict["state"]
        if not isinstance(saved_groups, (list, tuple)) or not all(isinstance(g, Mapping) for g in saved_groups):
            raise ValueError(f"{name}.load_state_dict: 'param_groups' must be a list of dicts")
        if not isinstance(saved_state, Mapping):
            raise ValueError(f"{name}.load_state_dict: 'state' must be a dict from parameter index to its state")
        problems: list[str] = []
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"{name}.load_state_dict changed nothing: the state dict has {len(saved_groups)} parameter group(s), "
                f"this optimizer {len(self.param_groups)}"
            )
        parameter_of: dict[int, Tensor] = {}
        new_groups = []
        for position, (saved, own) in enumerate(zip(saved_groups, self.param_groups)):
            indices = saved.get("params")
            if not isinstance(indices, (list, tuple)) or not all(_is_index(i) for i in indices):
                problems.append(f"group {position}: 'params' must be a list of parameter indices")
                continue
            if len(indices) != len(own["params"]):
                problems.append(
                    f"group {position} has {len(indices)} parameter(s) in the state dict and {len(own['params'])} here"
                )
                continue
            for index, parameter in zip(indices, own["params"]):
                if int(index) in parameter_of:
                    problems.append(f"parameter index {int(index)} appears twice in 'param_groups'")
                parameter_of[int(index)] = parameter
            missing = set(self.defaults) - set(saved)
            if missing:
                problems.append(
                    f"group {position} lacks the setting(s) {_settings_text(missing)} that {name} uses "
                    "(was it saved from another optimizer?)"
                )
                continue
            group = {key: _copy_value(value) for key, value in saved.items() if key != "params"}
            for key, value in own.items():  # JSON has no tuples: give betas back the type they had
                if isinstance(value, tuple) and isinstance(group.get(key), list):
                    group[key] = tuple(group[key])
            group["params"] = own["params"]
            try:
                self._check_settings(group)
            except (TypeError, ValueError) as error:
                problems.append(f"group {position}: {error}")
            new_groups.append(group)
        new_state: dict[Tensor, dict[str, Any]] = {}
        for index, entry in saved_state.items():
            if not _is_index(index) or int(index) not in parameter_of:
                problems.append(f"'state' has an entry for parameter {index!r}, which no group lists")
                continue
            if not isinstance(entry, Mapping):
                problems.append(f"the state of parameter {index} must be a dict, got {type(entry).__name__}")
                continue
            parameter = parameter_of[int(index)]
            new_state[parameter] = self._restore_entry(int(index), entry, parameter, problems)
        if problems:
            raise ValueError(f"{name}.load_state_dict changed nothing, because: " + "; ".join(problems))
        self.param_groups[:] = new_groups
        self.state = {parameter: entry for parameter, entry in new_state.items() if entry}

    def _restore_entry(self, index: int, entry: Mapping[str, Any], parameter: Tensor, problems: list[str]) -> dict:
        name = type(self).__name__
        restored: dict[str, Any] = {}
        for key, value in entry.items():
            if key in self._array_state:
                array = np.asarray(value.data if isinstance(value, Tensor) else value)
                if array.shape != parameter.shape:
                    problems.append(
                        f"parameter {index}: '{key}' has shape {array.shape}, the parameter {parameter.shape}"
                    )
                elif array.dtype.kind not in "fiu":
                    problems.append(f"parameter {index}: '{key}' holds {array.dtype} data, not numbers")
                else:
                    restored[key] = np.array(array, dtype=parameter.dtype, copy=True)
            elif key in self._number_state:
                number = value.item() if isinstance(value, np.ndarray) and value.size == 1 else value
                if not _is_number(number) or not (number >= 0 and float(number).is_integer()):
                    problems.append(f"parameter {index}: '{key}' must be a whole number >= 0, got {value!r}")
                else:
                    restored[key] = int(number)
            else:
                kept = sorted(self._array_state | self._number_state)
                problems.append(
                    f"parameter {index}: {name} keeps no '{key}' (it keeps {', '.join(kept) or 'no state'}; "
                    "was the state dict saved from another optimizer?)"
                )
        return restored

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for index, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {index}")
            lines.extend(
                f"    {key}: {value}" for key, value in sorted(group.items()) if key not in ("params", "param_names")
            )
        return "\n".join(lines) + "\n)"


def _is_index(value: Any) -> bool:
    if isinstance(value, str) and value.isdigit():  # JSON turned the keys into strings
        return True
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 0
