"""`Module`, `Parameter`, `Sequential` and `ModuleList`: models defined module by module, as in PyTorch."""

from __future__ import annotations

import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from os import PathLike
from typing import Any, NamedTuple

import numpy as np

from .. import autograd
from ..autograd import Function, RemovableHandle
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
    `named_parameters()` (dotted names such as ``hidden.weight``), `state_dict()` and `zero_grad()` find it;
    `register_buffer` adds state that is saved but not trained (batch norm's running statistics). Calling the
    module runs `forward`, with any hooks registered on it.
    """

    training: bool

    def __init__(self) -> None:
        # Parameters, buffers and submodules are kept in __dict__ (so reading self.weight costs nothing extra)
        # and, in registration order, in these registries; __setattr__ and __delattr__ keep them in step.
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent_buffers", set())
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
        buffers = self.__dict__.get("_buffers", {})
        if isinstance(value, Parameter):
            modules.pop(name, None)
            buffers.pop(name, None)
            parameters[name] = value
        elif isinstance(value, Module):
            parameters.pop(name, None)
            buffers.pop(name, None)
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
        elif name in buffers:
            value = _buffer_array(type(self).__name__, name, value)
            buffers[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        self._buffers.pop(name, None)
        self._non_persistent_buffers.discard(name)
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

    def register_buffer(self, name: str, tensor: Any, persistent: bool = True) -> None:
        """Register state that is not a parameter: an ndarray (or None) saved in `state_dict` but not trained.

        Batch norm's running statistics are buffers. They are in ``state_dict()`` under ``<module>.<name>``
        (unless ``persistent=False``), move with ``load_state_dict`` and ``to(dtype)``, and are not in
        ``parameters()``, so no optimizer touches them. Read and assign them as attributes::

            self.register_buffer("running_mean", np.zeros(features))
        """
        if not isinstance(name, str) or not name or "." in name:
            raise KeyError(f"register_buffer: a buffer's name must be a non-empty string without dots, got {name!r}")
        if "_buffers" not in self.__dict__:
            raise AttributeError(f"cannot register buffer '{name}' before Module.__init__() ran")
        if name in self._parameters or name in self._modules or (name in self.__dict__ and name not in self._buffers):
            raise KeyError(f"'{name}' is already an attribute of {type(self).__name__} that is not a buffer")
        array = None if tensor is None else _buffer_array(type(self).__name__, name, tensor)
        self._buffers[name] = array
        if persistent:
            self._non_persistent_buffers.discard(name)
        else:
            self._non_persistent_buffers.add(name)
        object.__setattr__(self, name, array)

    def add_module(self, name: str, module: Module | None) -> None:
        """Register `module` as a submodule called `name`."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module('{name}') needs a Module or None, got {type(module).__name__}")
        self._modules[name] = module
        object.__setattr__(self, name, module)

    register_module = add_module

    # ---------------------------------------------------------------------------------------------------------
    # Calling, and hooks
    # ---------------------------------------------------------------------------------------------------------

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Compute the module's output; every subclass defines it."""
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run `forward` with these arguments and return its result (running any hooks registered on it)."""
        if _module_hook_count and self.__dict__.get("_hooks"):
            return _call_with_hooks(self, args, kwargs)
        # Record which module call each op happens in, so draw_graph can draw modules as clusters: one tuple per
        # call and two attribute writes on this thread's state, which is all the recording costs.
        state = autograd._local.state
        enclosing = state.scope
        state.scope = (self, enclosing)
        try:
            return self.forward(*args, **kwargs)
        finally:
            state.scope = enclosing

    def register_forward_pre_hook(self, hook: Callable[..., Any], *, prepend: bool = False) -> RemovableHandle:
        """Call ``hook(module, args)`` before each forward; it may return new args (a tuple, or one value).

        Returns a handle whose ``remove()`` unregisters it. Hooks run in the order registered (``prepend=True``
        puts this one first), as in PyTorch.
        """
        return self._add_hook("forward_pre", hook, prepend)

    def register_forward_hook(self, hook: Callable[..., Any], *, prepend: bool = False) -> RemovableHandle:
        """Call ``hook(module, args, output)`` after each forward; it may return a new output.

        What a "print the activations" or a dead-unit counter needs. Returns a removable handle.
        """
        return self._add_hook("forward", hook, prepend)

    def register_full_backward_hook(self, hook: Callable[..., Any], prepend: bool = False) -> RemovableHandle:
        """Call ``hook(module, grad_input, grad_output)`` when backward has the gradients of this module's inputs.

        ``grad_input`` and ``grad_output`` are tuples of gradients (ndarrays, or Tensors under create_graph), one
        per tensor input and output, None for an input that needs none. The hook may return a new
        ``grad_input`` tuple, which is what flows on. Returns a removable handle.
        """
        return self._add_hook("backward", hook, prepend)

    def register_full_backward_pre_hook(self, hook: Callable[..., Any], prepend: bool = False) -> RemovableHandle:
        """Call ``hook(module, grad_output)`` when backward reaches this module's outputs; it may return new ones."""
        return self._add_hook("backward_pre", hook, prepend)

    def _add_hook(self, kind: str, hook: Callable[..., Any], prepend: bool) -> RemovableHandle:
        global _module_hook_count
        if not callable(hook):
            raise TypeError(f"a hook must be callable, got {type(hook).__name__}")
        hooks = self.__dict__.get("_hooks")
        if hooks is None:
            hooks = {"forward_pre": [], "forward": [], "backward": [], "backward_pre": []}
            object.__setattr__(self, "_hooks", hooks)
            object.__setattr__(self, "_hook_tally", [0])
            # A dead module's hooks stop counting. The finalizer holds the tally only, never the hooks: a hook
            # that refers to the module (a monitor's bound method) would keep it alive for ever.
            weakref.finalize(self, _forget_module_hooks, self.__dict__["_hook_tally"])
        tally = self.__dict__["_hook_tally"]
        entry = [hook]  # a fresh object, so that remove() takes out exactly this registration
        with autograd._hook_lock:
            hooks[kind].insert(0, entry) if prepend else hooks[kind].append(entry)
            tally[0] += 1
            _module_hook_count += 1

        def remove() -> None:
            global _module_hook_count
            with autograd._hook_lock:
                for position, item in enumerate(hooks[kind]):
                    if item is entry:
                        del hooks[kind][position]
                        if tally[0] is not None:  # else the module died, and its hooks stopped counting then
                            tally[0] -= 1
                            _module_hook_count -= 1
                        break

        return RemovableHandle(remove)

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
        yield from self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        """Yield every parameter (each once), for an optimizer: ``optim.SGD(model.parameters(), lr=0.1)``."""
        for _, parameter in self.named_parameters(recurse=recurse):
            yield parameter

    def named_buffers(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, np.ndarray]]:
        """Yield ``(dotted name, buffer)`` for every buffer, such as ``("1.running_mean", array)``."""
        yield from self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[np.ndarray]:
        """Yield every buffer (each once)."""
        for _, buffer in self.named_buffers(recurse=recurse):
            yield buffer

    def _named_members(self, registry: str, prefix: str, recurse: bool, remove_duplicate: bool) -> Iterator[Any]:
        seen: set[int] = set()
        modules = self.named_modules(prefix, remove_duplicate) if recurse else iter([(prefix, self)])
        for module_name, module in modules:
            for name, member in getattr(module, registry).items():
                if member is None or (remove_duplicate and id(member) in seen):
                    continue
                seen.add(id(member))
                yield (f"{module_name}.{name}" if module_name else name), member

    def apply(self, fn: Callable[[Module], Any]) -> Module:
        """Call ``fn(module)`` on every submodule (children first) and then on this one; returns self.

        The PyTorch way to initialise a model's weights::

            model.apply(lambda m: nn.init.zeros_(m.bias) if isinstance(m, nn.Linear) else None)
        """
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    # ---------------------------------------------------------------------------------------------------------
    # Training state
    # ---------------------------------------------------------------------------------------------------------

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear every parameter's gradient: to None (the default, as in PyTorch), or to zeros."""
        for parameter in self.parameters():
            grad = parameter._grad
            if set_to_none or grad is None:
                parameter._grad = None
            elif isinstance(grad, np.ndarray):
                grad[...] = 0
            else:  # a Tensor from backward(create_graph=True): zeros, outside any graph
                parameter._grad = np.zeros_like(grad.data)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Switch gradients on or off for every parameter (False freezes the module); returns self."""
        for parameter in self.parameters():
            parameter.requires_grad_(requires_grad)
        return self

    def train(self, mode: bool = True) -> Module:
        """Put this module and its descendants in training mode (or evaluation mode with False); returns self.

        Dropout and batch norm behave differently in the two modes, as in PyTorch.
        """
        if not isinstance(mode, bool):
            raise TypeError(f"train() takes True or False, got {mode!r}")
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self) -> Module:
        """Put this module and its descendants in evaluation mode (``training = False``); returns self."""
        return self.train(False)

    def to(self, *args: Any, **kwargs: Any) -> Module:
        """Convert every floating-point parameter, gradient and buffer to a floating-point dtype, in place.

        ``model.to(np.float32)`` or ``model.to("float64")``; returns self. There is only the CPU:
        ``to("cpu")`` does nothing and ``to("cuda")`` is an error that says so.
        """
        dtype = kwargs.pop("dtype", None)
        kwargs.pop("device", None) if kwargs.get("device") in (None, "cpu") else None
        if kwargs:
            raise TypeError(f"Module.to() got unexpected arguments {sorted(kwargs)}")
        for argument in args:
            if isinstance(argument, str) and argument.split(":")[0] in _DEVICES:
                if argument.split(":")[0] != "cpu":
                    raise RuntimeError(
                        f"Module.to({argument!r}): tinygrad_nn runs on numpy, on the CPU only; there is no GPU "
                        "backend. Move the model to PyTorch for that (see 'Moving on' in the docs)"
                    )
                continue
            dtype = argument
        if dtype is None:
            return self
        try:
            target = np.dtype(dtype)
        except TypeError:
            raise TypeError(
                f"Module.to() takes a floating-point dtype (np.float32, 'float64'), got {dtype!r}"
            ) from None
        if target.kind != "f":
            raise TypeError(f"Module.to() takes a floating-point dtype, got {target}")
        for parameter in self.parameters():
            parameter.data = parameter.data.astype(target, copy=False)
            grad = parameter._grad
            if grad is not None:
                parameter._grad = (grad.data if isinstance(grad, Tensor) else grad).astype(target, copy=False)
        for module in self.modules():
            for name, buffer in module._buffers.items():
                if buffer is not None and buffer.dtype.kind == "f":
                    setattr(module, name, buffer.astype(target, copy=False))
        return self

    def float(self) -> Module:
        """Convert to float32 (PyTorch's name); returns self."""
        return self.to(np.float32)

    def double(self) -> Module:
        """Convert to float64 (PyTorch's name); returns self."""
        return self.to(np.float64)

    def cpu(self) -> Module:
        """Return self: everything already lives in numpy arrays on the CPU."""
        return self

    def cuda(self, *args: Any) -> Module:
        """There is no GPU backend: a clear error (move the model to PyTorch for that)."""
        return self.to("cuda")

    # ---------------------------------------------------------------------------------------------------------
    # State dict
    # ---------------------------------------------------------------------------------------------------------

    def state_dict(self, prefix: str = "") -> OrderedDict[str, np.ndarray]:
        """Copies of every parameter's and persistent buffer's array, by dotted name, in PyTorch's order and keys.

        What `tinygrad_nn.save` writes, and what PyTorch's ``load_state_dict`` takes for the same model. As in
        PyTorch, a shared parameter appears under each of its names.
        """
        state: OrderedDict[str, np.ndarray] = OrderedDict()
        for module_name, module in self.named_modules(prefix.rstrip("."), remove_duplicate=False):
            dotted = f"{module_name}." if module_name else ""
            for name, parameter in module._parameters.items():
                if parameter is not None:
                    state[dotted + name] = parameter.data.copy()
            for name, buffer in module._buffers.items():
                if buffer is not None and name not in module._non_persistent_buffers:
                    state[dotted + name] = buffer.copy()
        return state

    def _state_entries(self) -> dict[str, tuple[Module, str, str, Any]]:
        """Every state-dict name: (module, attribute, kind, current array), kind "parameter" or "buffer"."""
        entries = {}
        for module_name, module in self.named_modules(remove_duplicate=False):
            dotted = f"{module_name}." if module_name else ""
            for name, parameter in module._parameters.items():
                if parameter is not None:
                    entries[dotted + name] = (module, name, "parameter", parameter.data)
            for name, buffer in module._buffers.items():
                if buffer is not None and name not in module._non_persistent_buffers:
                    entries[dotted + name] = (module, name, "buffer", buffer)
        return entries

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True) -> IncompatibleKeys:
        """Copy arrays from `state_dict` into the parameters and buffers with the same dotted names.

        All or nothing: every key, shape and value is checked and converted to its target's dtype before
        anything is written, so on any error (a bad shape, a value that overflows the dtype under
        ``np.errstate(all="raise")``) the model is unchanged. With ``strict=True`` (the default) missing and
        unexpected keys are errors; with False they are returned. Takes what `state_dict` and
        `tinygrad_nn.load` return (PyTorch's state dicts converted to numpy too).
        """
        owner = type(self).__name__
        if isinstance(state_dict, (str, bytes, PathLike)):
            raise TypeError(
                f"load_state_dict takes a state dict, not a path ({state_dict!r}); read the file first: "
                "model.load_state_dict(tinygrad_nn.load(path))"
            )
        if not isinstance(state_dict, Mapping):
            hint = ""
            if isinstance(state_dict, (list, tuple)):
                hint = "; for a list of (name, array) pairs pass dict(pairs)"
            elif isinstance(state_dict, Module):
                hint = "; pass other_model.state_dict()"
            raise TypeError(
                f"load_state_dict takes a mapping of names to arrays (what state_dict() and tinygrad_nn.load() "
                f"return), got {type(state_dict).__name__}{hint}"
            )
        for key in state_dict:
            if not isinstance(key, str):
                raise TypeError(f"load_state_dict: keys must be dotted names (strings), got {key!r} of type "
                                f"{type(key).__name__}")  # fmt: skip
        entries = self._state_entries()
        missing = [name for name in entries if name not in state_dict]
        unexpected = [name for name in state_dict if name not in entries]
        converted: dict[str, np.ndarray] = {}
        mismatched = []
        unusable = []
        for name, (_, _, _, current) in entries.items():
            if name not in state_dict:
                continue
            value = state_dict[name]
            try:
                array = np.asarray(value.data if isinstance(value, Tensor) else value)
            except (TypeError, ValueError) as error:
                unusable.append(f"{name}: a {type(value).__name__} is not an array ({error})")
                continue
            if array.shape != current.shape:
                mismatched.append(f"{name}: the checkpoint has shape {array.shape}, the model {current.shape}")
            elif array.dtype.kind not in "fiub":
                unusable.append(f"{name}: the checkpoint holds {array.dtype} data, not numbers")
            else:
                try:
                    converted[name] = np.array(array, dtype=current.dtype, copy=True)
                except (FloatingPointError, OverflowError, ValueError) as error:
                    unusable.append(f"{name}: its values do not fit the model's {current.dtype} ({error})")
        problems = []
        if strict and missing:
            problems.append("missing keys: " + ", ".join(missing))
        if strict and unexpected:
            problems.append("unexpected keys: " + ", ".join(unexpected))
        if mismatched:
            problems.append("mismatched shapes: " + "; ".join(mismatched))
        if unusable:
            problems.append("unusable values: " + "; ".join(unusable))
        if problems:
            raise ValueError(f"load_state_dict into {owner} changed nothing, because of " + ". ".join(problems))
        # Only now, with every value converted, is anything written: a plain copy of same-dtype arrays.
        for name, array in converted.items():
            entries[name][3][...] = array
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

    def summary(self) -> str:
        """A table of every module with parameters: its dotted name, class, parameter shapes and count, and totals.

        ::

            print(model.summary())
        """
        rows = []
        for name, module in self.named_modules():
            own = [(n, p) for n, p in module._parameters.items() if p is not None]
            if not own:
                continue
            shapes = ", ".join(f"{n} {tuple(p.shape)}" for n, p in own)
            rows.append((name or "(model)", type(module).__name__, shapes, sum(p.size for _, p in own)))
        total = sum(p.size for p in self.parameters())
        trainable = sum(p.size for p in self.parameters() if p.requires_grad)
        buffers = sum(b.size for b in self.buffers())
        header = ("module", "class", "parameters", "count")
        widths = [max([len(header[i])] + [len(str(row[i])) for row in rows]) for i in range(4)]
        lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths)), "  ".join("-" * w for w in widths)]
        lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)) for row in rows]
        lines.append(f"{total:,} parameters ({trainable:,} trainable), {buffers:,} buffer values")
        return "\n".join(line.rstrip() for line in lines)


_DEVICES = ("cpu", "cuda", "mps", "xpu", "meta", "hip", "xla", "vulkan", "mkldnn", "opengl", "opencl", "ideep",
            "ve", "fpga", "ort", "mtia", "privateuseone", "lazy", "ipu", "hpu", "tpu", "gpu")  # fmt: skip


def _buffer_array(owner: str, name: str, value: Any) -> np.ndarray | None:
    """A buffer's value as an ndarray (None stays None); Tensors give their data."""
    if value is None:
        return None
    array = value.data if isinstance(value, Tensor) else value
    if not isinstance(array, (np.ndarray, np.generic)):
        raise TypeError(f"{owner}: buffer '{name}' must be an ndarray, a Tensor or None, got {type(value).__name__}")
    array = np.asarray(array)
    if array.dtype.kind not in "fiub":
        raise TypeError(f"{owner}: buffer '{name}' must hold numbers, got dtype {array.dtype}")
    return array


# How many module hooks exist, in every module of every thread: while there are none, Module.__call__ and
# Sequential.__call__ take their fast paths, which do not look for hooks.
_module_hook_count = 0


def _forget_module_hooks(tally: list) -> None:
    global _module_hook_count
    with autograd._hook_lock:
        _module_hook_count -= tally[0] or 0
        tally[0] = None


class _HookRecord:
    """What the two halves of a module's backward hooks share during one call.

    `arguments` holds each positional argument's (shape, dtype) when it is a Tensor, else None, so that
    grad_input has one entry per positional argument, as in PyTorch; `wrapped` are the positions of the tensors
    that require grad (the inputs of the `_ModuleInputsHook` node), `outputs` the same for the outputs.
    """

    __slots__ = ("arguments", "grad_output", "module", "outputs", "wrapped")

    def __init__(self, module: Module, arguments: list, wrapped: list[int]) -> None:
        self.module = module
        self.arguments = arguments
        self.wrapped = wrapped
        self.outputs: tuple[int, list[int]] = (0, [])
        self.grad_output: tuple | None = None


def _run_backward_hooks(record: _HookRecord, grad_input: tuple) -> tuple:
    """Call the full backward hooks, once per pass through the module's outputs (then grad_output is spent)."""
    grad_output, record.grad_output = record.grad_output, None
    for (hook,) in list(record.module._hooks["backward"]):
        replaced = hook(record.module, grad_input, grad_output)
        if replaced is not None:
            replaced = tuple(replaced) if isinstance(replaced, (tuple, list)) else (replaced,)
            if len(replaced) != len(grad_input):
                raise ValueError(
                    f"a full backward hook of {type(record.module).__name__} returned {len(replaced)} gradients "
                    f"for {len(grad_input)} inputs; return one per positional argument (None where there is none)"
                )
            grad_input = replaced
    return grad_input


class _ModuleOutputsHook(Function):
    """Identity on a module's tensor outputs: backward records grad_output (after the backward pre-hooks)."""

    @staticmethod
    def forward(ctx: Any, *arrays: Any, record: _HookRecord | None = None) -> Any:
        ctx.record = record
        return arrays

    @staticmethod
    def backward(ctx: Any, *grads: Any) -> Any:
        record = ctx.record
        count, positions = record.outputs
        grad_output = [None] * count
        for position, grad in zip(positions, grads):
            grad_output[position] = grad
        grad_output = tuple(grad_output)
        for (hook,) in list(record.module._hooks["backward_pre"]):
            replaced = hook(record.module, grad_output)
            if replaced is not None:
                grad_output = tuple(replaced) if isinstance(replaced, (tuple, list)) else (replaced,)
        record.grad_output = grad_output
        if not record.wrapped:  # no gradient will reach the inputs: the hooks run now
            _run_backward_hooks(record, (None,) * len(record.arguments))
        return tuple(grad_output[position] for position in positions)


class _ModuleInputsHook(Function):
    """Identity on a module's inputs that require grad: backward calls the full backward hooks with grad_input.

    Only in a pass that came through the module's outputs: a second derivative that reaches the inputs through
    what the module's ops saved does not call them again, as in PyTorch.
    """

    @staticmethod
    def forward(ctx: Any, *arrays: Any, record: _HookRecord | None = None) -> Any:
        ctx.record = record
        return arrays

    @staticmethod
    def backward(ctx: Any, *grads: Any) -> Any:
        record = ctx.record
        if record.grad_output is None:
            return grads
        grad_input: list[Any] = [None if argument is None else np.zeros(*argument) for argument in record.arguments]
        for position, grad in zip(record.wrapped, grads):
            grad_input[position] = grad
        grad_input = _run_backward_hooks(record, tuple(grad_input))
        return tuple(grad_input[position] for position in record.wrapped)


def _call_with_hooks(module: Module, args: tuple, kwargs: dict) -> Any:
    """`Module.__call__` when the module has hooks: pre-hooks, forward, forward hooks, backward hooks."""
    hooks = module._hooks
    for (hook,) in list(hooks["forward_pre"]):
        replaced = hook(module, args)
        if replaced is not None:
            args = replaced if isinstance(replaced, tuple) else (replaced,)
    record = None
    if hooks["backward"] or hooks["backward_pre"]:
        arguments = [(a.shape, a.dtype) if isinstance(a, Tensor) else None for a in args]
        wrapped = [i for i, a in enumerate(args) if isinstance(a, Tensor) and a.requires_grad]
        record = _HookRecord(module, arguments, wrapped)
        if wrapped and autograd.is_grad_enabled():
            outputs = _ModuleInputsHook.apply(*(args[i] for i in wrapped), record=record)
            args = list(args)
            for i, tensor in zip(wrapped, outputs):
                args[i] = tensor
            args = tuple(args)
    state = autograd._local.state
    enclosing = state.scope
    state.scope = (module, enclosing)
    try:
        output = module.forward(*args, **kwargs)
    finally:
        state.scope = enclosing
    for (hook,) in list(hooks["forward"]):
        replaced = hook(module, args, output)
        if replaced is not None:
            output = replaced
    if record is not None:
        single = isinstance(output, Tensor)
        outputs = (output,) if single else output
        if isinstance(outputs, tuple) and any(isinstance(o, Tensor) and o.requires_grad for o in outputs):
            positions = [i for i, o in enumerate(outputs) if isinstance(o, Tensor) and o.requires_grad]
            record.outputs = (len(outputs), positions)
            wrapped_outputs = _ModuleOutputsHook.apply(*(outputs[i] for i in positions), record=record)
            outputs = list(outputs)
            for i, tensor in zip(positions, wrapped_outputs):
                outputs[i] = tensor
            output = outputs[0] if single else tuple(outputs)
    return output


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
        if _module_hook_count:  # some module somewhere has hooks: let each child's own __call__ run them
            return Module.__call__(self, x)
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
