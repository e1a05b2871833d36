"""`Module`, `Parameter`, `Sequential` and `ModuleList`: models defined module by module, as in PyTorch."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np

from .. import autograd
from ..dtypes import DTypeLike, as_array
from ..tensor import Tensor

__all__ = ["IncompatibleKeys", "Module", "ModuleList", "Parameter", "Sequential"]


class Parameter(Tensor):
    """A Tensor that is a model's parameter: it requires grad, and assigning it to a Module registers it.

    The data is always copied, so an optimizer updating the parameter never changes your array::

        self.scale = Parameter(np.ones(3))
    """

    __slots__ = ()

    def __init__(self, data: Any, requires_grad: bool = True, dtype: DTypeLike | None = None) -> None:
        if isinstance(data, Tensor):
            data = data.data
        # Tensor's rules for the dtype (lists become the default float dtype), then always a copy of our own.
        super().__init__(np.array(as_array(data, dtype), copy=True), requires_grad=requires_grad)


class IncompatibleKeys(NamedTuple):
    """What `Module.load_state_dict` returns: the keys it did not find, and the keys it did not expect."""

    missing_keys: list[str]
    unexpected_keys: list[str]


class Module:
    """Base class of every layer and model; subclass it, assign parameters and modules, write `forward`.

    ::

        class TwoLayer(nn.Module):
            def __init__(self):
                super().__init__()
                self.hidden = nn.Linear(4, 8)
                self.out = nn.Linear(8, 1)

            def forward(self, x):
                return self.out(self.hidden(x).relu())

    Assigning a `Parameter` or a `Module` to an attribute registers it, so `parameters()`,
    `named_parameters()` (dotted names such as ``hidden.weight``), `state_dict()` and `zero_grad()` find it.
    Calling the module runs `forward`.
    """

    training: bool

    def __init__(self) -> None:
        # Parameters and submodules are kept in __dict__ (so reading self.weight costs nothing extra) and, in
        # registration order, in these two registries; __setattr__ and __delattr__ keep them in step.
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # ---------------------------------------------------------------------------------------------------------
    # Registration
    # ---------------------------------------------------------------------------------------------------------

    def __setattr__(self, name: str, value: Any) -> None:
        registries = self.__dict__.get("_parameters"), self.__dict__.get("_modules")
        if registries[0] is None:
            if isinstance(value, (Parameter, Module)):
                raise AttributeError(
                    f"cannot assign {type(value).__name__} '{name}' before Module.__init__() ran: "
                    f"call super().__init__() first in {type(self).__name__}.__init__"
                )
            object.__setattr__(self, name, value)
            return
        parameters, modules = registries
        if isinstance(value, Parameter):
            modules.pop(name, None)
            parameters[name] = value
        elif isinstance(value, Module):
            parameters.pop(name, None)
            modules[name] = value
        elif name in parameters:
            if value is not None:
                raise TypeError(
                    f"cannot assign {type(value).__name__} to '{name}', a parameter of {type(self).__name__}: "
                    "assign a Parameter (or None), or change its values with .data"
                )
            parameters[name] = None
        elif name in modules:
            if value is not None:
                raise TypeError(
                    f"cannot assign {type(value).__name__} to '{name}', a submodule of {type(self).__name__}: "
                    "assign a Module (or None)"
                )
            modules[name] = None
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        object.__delattr__(self, name)

    def register_parameter(self, name: str, parameter: Parameter | None) -> None:
        """Register `parameter` under `name` (None keeps the name with no parameter, like a missing bias)."""
        if parameter is not None and not isinstance(parameter, Parameter):
            raise TypeError(f"register_parameter('{name}') needs a Parameter or None, got {type(parameter).__name__}")
        if name in self._parameters or name not in self.__dict__:
            self._parameters[name] = parameter
            object.__setattr__(self, name, parameter)
        else:
            raise KeyError(f"'{name}' is already an attribute of {type(self).__name__} that is not a parameter")

    def add_module(self, name: str, module: Module | None) -> None:
        """Register `module` as a submodule called `name`."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module('{name}') needs a Module or None, got {type(module).__name__}")
        self._modules[name] = module
        object.__setattr__(self, name, module)

    # ---------------------------------------------------------------------------------------------------------
    # Calling
    # ---------------------------------------------------------------------------------------------------------

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Compute the module's output; every subclass defines it."""
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run `forward` with these arguments and return its result."""
        # Record which module call each op happens in, so draw_graph can draw modules as clusters: one tuple per
        # call and two global writes, which is all the recording costs.
        state = autograd._local.state
        enclosing = state.scope
        state.scope = (self, enclosing)
        try:
            return self.forward(*args, **kwargs)
        finally:
            state.scope = enclosing

    # ---------------------------------------------------------------------------------------------------------
    # Walking the tree
    # ---------------------------------------------------------------------------------------------------------

    def named_modules(self, prefix: str = "", remove_duplicate: bool = True) -> Iterator[tuple[str, Module]]:
        """Yield ``(dotted name, module)`` for this module (name ``prefix``, "" by default) and every descendant.

        A module held in several places is listed once, unless ``remove_duplicate=False``.
        """
        seen: set[int] = set()
        stack = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if remove_duplicate and id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            children = [(f"{name}.{child}" if name else child, sub) for child, sub in module._modules.items()]
            stack.extend(reversed([(n, m) for n, m in children if m is not None]))

    def modules(self) -> Iterator[Module]:
        """Yield this module and every descendant, each once."""
        for _, module in self.named_modules():
            yield module

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """Yield ``(name, module)`` for the direct submodules; one held under two names is listed once."""
        seen: set[int] = set()
        for name, module in self._modules.items():
            if module is not None and id(module) not in seen:
                seen.add(id(module))
                yield name, module

    def children(self) -> Iterator[Module]:
        """Yield the direct submodules."""
        for _, module in self.named_children():
            yield module

    def named_parameters(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Parameter]]:
        """Yield ``(dotted name, parameter)``, such as ``("encoder.0.weight", ...)``.

        A parameter shared by several modules is listed once, under its first name, unless
        ``remove_duplicate=False`` (then under every name, as `state_dict` lists it).
        """
        seen: set[int] = set()
        modules = self.named_modules(prefix, remove_duplicate) if recurse else iter([(prefix, self)])
        for module_name, module in modules:
            for name, parameter in module._parameters.items():
                if parameter is None or (remove_duplicate and id(parameter) in seen):
                    continue
                seen.add(id(parameter))
                yield (f"{module_name}.{name}" if module_name else name), parameter

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        """Yield every parameter (each once), for an optimizer: ``optim.SGD(model.parameters(), lr=0.1)``."""
        for _, parameter in self.named_parameters(recurse=recurse):
            yield parameter

    # ---------------------------------------------------------------------------------------------------------
    # Training state
    # ---------------------------------------------------------------------------------------------------------

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear every parameter's gradient: to None (the default, as in PyTorch), or to zeros."""
        for parameter in self.parameters():
            if set_to_none or parameter.grad is None:
                parameter.grad = None
            else:
                parameter.grad[...] = 0

    def train(self, mode: bool = True) -> Module:
        """Put this module and its descendants in training mode (or evaluation mode with False)."""
        for module in self.modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self) -> Module:
        """Put this module and its descendants in evaluation mode (``training = False``)."""
        return self.train(False)

    def to(self, dtype: DTypeLike) -> Module:
        """Convert every parameter (and its gradient) to a floating-point `dtype`, in place; returns self."""
        target = np.dtype(dtype)
        if target.kind != "f":
            raise TypeError(f"Module.to() takes a floating-point dtype, got {target}")
        for parameter in self.parameters():
            parameter.data = parameter.data.astype(target, copy=False)
            if parameter.grad is not None:
                parameter.grad = parameter.grad.astype(target, copy=False)
        return self

    # ---------------------------------------------------------------------------------------------------------
    # State dict
    # ---------------------------------------------------------------------------------------------------------

    def state_dict(self) -> OrderedDict[str, np.ndarray]:
        """Copies of every parameter's array, by dotted name (what `tinygrad_nn.save` writes).

        As in PyTorch, a shared parameter appears under each of its names.
        """
        named = self.named_parameters(remove_duplicate=False)
        return OrderedDict((name, parameter.data.copy()) for name, parameter in named)

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True) -> IncompatibleKeys:
        """Copy arrays from `state_dict` into the parameters with the same dotted names.

        Every key and shape is checked before anything is written, so on an error nothing changes. With
        ``strict=True`` (the default) missing and unexpected keys are errors; with False they are returned.
        Values are cast to each parameter's dtype.
        """
        own = dict(self.named_parameters(remove_duplicate=False))
        missing = [name for name in own if name not in state_dict]
        unexpected = [name for name in state_dict if name not in own]
        arrays = {}
        mismatched = []
        for name, parameter in own.items():
            if name not in state_dict:
                continue
            value = state_dict[name]
            array = np.asarray(value.data if isinstance(value, Tensor) else value)
            if array.shape != parameter.shape:
                mismatched.append(f"{name}: the checkpoint has shape {array.shape}, the model {parameter.shape}")
            elif array.dtype.kind not in "fiub":
                mismatched.append(f"{name}: the checkpoint holds {array.dtype} data, not numbers")
            else:
                arrays[name] = array
        problems = []
        if strict and missing:
            problems.append("missing keys: " + ", ".join(missing))
        if strict and unexpected:
            problems.append("unexpected keys: " + ", ".join(unexpected))
        if mismatched:
            problems.append("mismatched shapes: " + "; ".join(mismatched))
        if problems:
            raise ValueError(
                f"load_state_dict into {type(self).__name__} changed nothing, because of " + ". ".join(problems)
            )
        for name, array in arrays.items():
            own[name].data[...] = array
        return IncompatibleKeys(missing, unexpected)

    # ---------------------------------------------------------------------------------------------------------
    # Printing
    # ---------------------------------------------------------------------------------------------------------

    def extra_repr(self) -> str:
        """The text inside the parentheses of this module's repr line (e.g. ``in_features=3, ...``)."""
        return ""

    def __repr__(self) -> str:
        lines = []
        for name, module in self._modules.items():
            child = repr(module).replace("\n", "\n  ")
            lines.append(f"  ({name}): {child}")
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not lines:
            return head + ")"
        return head + "\n" + "\n".join(lines) + "\n)"


class Sequential(Module):
    """Modules applied one after another; children are named ``0``, ``1``, ...

    ``Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))``, or from an ordered mapping of names to
    modules. Supports ``seq[0]``, slices (a new Sequential), ``len``, iteration and `append`.
    """

    def __init__(self, *modules: Module | Mapping[str, Module]) -> None:
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], Mapping):
            for name, module in modules[0].items():
                self._add(str(name), module)
        else:
            for index, module in enumerate(modules):
                self._add(str(index), module)

    def _add(self, name: str, module: Any) -> None:
        if not isinstance(module, Module):
            raise TypeError(f"Sequential takes Modules, but item {name} is a {type(module).__name__}")
        self.add_module(name, module)

    def forward(self, x: Any) -> Any:
        """Feed `x` through every module in order."""
        for module in self._modules.values():
            x = module(x)
        return x

    def __call__(self, x: Any) -> Any:
        """Run every module in order; the same as `Module.__call__` for each, one call frame fewer each."""
        # Training steps go through here every time, so Sequential records each child's scope itself (what
        # Module.__call__ does) and calls its forward directly. A child that overrides __call__ still gets it.
        state = autograd._local.state
        enclosing = state.scope
        scope = (self, enclosing)
        try:
            for module in self._modules.values():
                if type(module).__call__ is not Module.__call__:
                    state.scope = scope
                    x = module(x)
                else:
                    state.scope = (module, scope)
                    x = module.forward(x)
        finally:
            state.scope = enclosing
        return x

    def append(self, module: Module) -> Sequential:
        """Add `module` at the end; returns self."""
        self._add(str(len(self._modules)), module)
        return self

    def __getitem__(self, index: int | slice) -> Any:
        items = list(self._modules.values())
        if isinstance(index, slice):
            return Sequential(OrderedDict(list(self._modules.items())[index]))
        try:
            return items[index]
        except IndexError:
            raise IndexError(f"index {index} is out of range for a Sequential of {len(items)} modules") from None

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(list(self._modules.values()))


class ModuleList(Module):
    """A list of modules that registers them (children ``0``, ``1``, ...); call them yourself in `forward`."""

    def __init__(self, modules: Iterable[Module] = ()) -> None:
        super().__init__()
        for module in modules:
            self.append(module)

    def append(self, module: Module) -> ModuleList:
        """Add `module` at the end; returns self."""
        if not isinstance(module, Module):
            raise TypeError(f"ModuleList takes Modules, got {type(module).__name__}")
        self.add_module(str(len(self._modules)), module)
        return self

    def __getitem__(self, index: int | slice) -> Any:
        items = list(self._modules.values())
        if isinstance(index, slice):
            return ModuleList(items[index])
        try:
            return items[index]
        except IndexError:
            raise IndexError(f"index {index} is out of range for a ModuleList of {len(items)} modules") from None

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(list(self._modules.values()))
