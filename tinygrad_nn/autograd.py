"""The autograd engine: `Function` (the node of the graph), the backward walks, `grad`, hooks, and the modes.

How the graph is recorded
-------------------------
Every differentiable operation is a `Function` subclass with a static ``forward(ctx, *arrays)`` and a static
``backward(ctx, *grads)``. ``MyOp.apply(*inputs)`` creates one instance of the class, the *node* (PyTorch calls
it ``grad_fn``; here it is also the ``ctx`` that forward and backward receive), runs forward on the inputs'
ndarrays and wraps the result in a `Tensor` that points at the node.

A node's ``parents`` hold one *edge* per input, in order: the input's own node when the input was computed, the
input tensor itself when it is a leaf that requires grad, or None when no gradient flows there. Nodes never hold
the intermediate tensors, so an intermediate tensor (and its array) lives only as long as the user keeps it or a
node saved its array for backward.

What a node saves, and how a gradient can be differentiated again
------------------------------------------------------------------
A built-in primitive's forward keeps what its backward needs in three places: ``ctx.inputs`` (the arrays of its
first inputs, in order), ``ctx.output`` (its result) and ``ctx._saved`` (anything else: shapes, axes, masks).
A user's Function passes arrays to ``ctx.save_for_backward``, and the engine works out which of them are inputs
or outputs by identity, right after forward.

A plain backward calls each backward with ndarrays: the fast path, pure numpy. With ``create_graph=True`` the
engine calls *the same* backward with Tensors instead: the upstream gradients, and each saved input or output
rebuilt as a tensor that points at the edge that produced it (PyTorch's idea: remember the producing node next
to the saved array, not the tensor). The backward's arithmetic then records a graph of its own, which can be
differentiated again, to any order. Backward formulas are written once, with operators and methods that
ndarrays and Tensors share, and the few functions of `tinygrad_nn.functions.xp` that pick numpy or the
matching primitive by their arguments' type.

How backward walks the graph
----------------------------
Every recorded node gets a sequence number, higher than those of its inputs' nodes (they were made before it). The
walk keeps the nodes that have received a gradient in a heap and always takes the highest number next (as PyTorch's
engine does), so each node runs after every node that consumes its output has delivered: no recursion (a chain of
100,000 ops is fine) and no pass to count consumers first. What a backward returns is checked and reduced to each
input's shape and dtype *here, in one place*: primitives return gradients in the broadcast shape of their output
and never unbroadcast themselves. Leaf gradients accumulate in ``leaf.grad`` (as in PyTorch, until zeroed);
intermediate gradients are dropped as soon as they have been passed on. Unless the graph is retained, each node's
saved arrays are freed right after its backward ran; the skeleton of nodes stays, so the graph can still be drawn,
but a second backward through it raises an error.

There are two walks. `_walk_arrays` is the first-order fast path that training uses: ndarrays only, one flat
loop. `_Walk` does everything else (create_graph, `grad` with its chosen inputs, tensor hooks, several outputs
at once) and is written to be read. Both visit nodes in the same order (`backward_order`), and the tests check
that they give the same gradients bit for bit.

Modes are per thread
--------------------
`no_grad`, `enable_grad`, `set_grad_enabled`, `detect_anomaly`, `retain_grads`, `trace_ops` and the module scope
that pictures read are thread-local, as PyTorch's grad mode is: one thread evaluating under no_grad never stops
another thread's training. Each op fetches its thread's state object once (`_local.state`) and reads plain
attributes of it.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import os
import sys
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, TypeVar

import numpy as np

__all__ = [
    "AnomalyError",
    "BackwardError",
    "DoubleBackwardError",
    "Function",
    "ModifiedInPlaceError",
    "OpRecord",
    "RemovableHandle",
    "backward",
    "backward_order",
    "detect_anomaly",
    "enable_grad",
    "grad",
    "in_place_stamp",
    "is_grad_enabled",
    "no_grad",
    "note_modified_in_place",
    "once_differentiable",
    "retain_grads",
    "run_backward",
    "set_grad_enabled",
    "trace_ops",
]

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))

# Function.apply builds Tensors and the walk tells leaves from nodes, while Tensor's operators call Functions, so
# the two modules need each other. tensor.py imports this one and, once its class exists, sets this name.
Tensor: Any = None


# --------------------------------------------------------------------------------------------------------------
# Per-thread state
# --------------------------------------------------------------------------------------------------------------


class _ThreadState:
    """What one thread's ops read: grad mode, anomaly mode, retain_grads, the module scope and the tracer.

    `unusual` is True when anomaly mode or a tracer is on, so that `Function.apply` tests one flag for both.
    """

    __slots__ = ("anomaly", "grad_enabled", "retain_grads", "scope", "tracer", "unusual")

    def __init__(self) -> None:
        self.grad_enabled = True
        self.anomaly = False
        self.retain_grads = False
        # The module call the current op happens in, as a chain of (module, enclosing scope) tuples; set by
        # nn.Module.__call__ and read by draw_graph to draw modules as clusters. None outside any module.
        self.scope: tuple | None = None
        self.tracer: list | None = None
        self.unusual = False

    def update_unusual(self) -> None:
        self.unusual = self.anomaly or self.tracer is not None


class _Local(threading.local):
    """Each thread's `_ThreadState`, made on the thread's first op (so every new thread starts in grad mode)."""

    def __init__(self) -> None:
        self.state = _ThreadState()


_local = _Local()


def _state() -> _ThreadState:
    """The calling thread's state."""
    return _local.state


# --------------------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------------------


class BackwardError(RuntimeError):
    """A Function's backward returned something that cannot be the gradient of its inputs.

    The message names the Function, the input and what was wrong (count, shape or dtype). Shape problems are
    also `ValueError` and dtype problems also `TypeError`, so either spelling catches them.
    """


class _BackwardShapeError(BackwardError, ValueError):
    """A backward returned a gradient that cannot be reduced to its input's shape."""


class _BackwardTypeError(BackwardError, TypeError):
    """A backward returned a gradient that is not a floating-point array."""


class DoubleBackwardError(RuntimeError):
    """Differentiating a gradient reached a backward that could not record a graph (see `once_differentiable`)."""


class ModifiedInPlaceError(RuntimeError):
    """backward reached an op whose saved input was changed in place after the op ran (PyTorch raises too)."""


class AnomalyError(RuntimeError, FloatingPointError):
    """Raised inside `detect_anomaly` when an op's forward or backward produces NaN or inf."""


# --------------------------------------------------------------------------------------------------------------
# Grad mode
# --------------------------------------------------------------------------------------------------------------

_F = TypeVar("_F", bound=Callable[..., Any])


class _GradMode:
    """Base of the grad-mode switches: a context manager that is also a decorator, with or without ()."""

    _mode = True

    def __new__(cls, *args: Any) -> Any:
        # `@no_grad` without parentheses hands the function straight to the class, as PyTorch 2 allows.
        if cls is not set_grad_enabled and len(args) == 1 and callable(args[0]):
            return cls()(args[0])
        return super().__new__(cls)

    def __enter__(self) -> None:
        state = _local.state
        # A stack of previous modes, so that one object entered twice (or in two threads) restores correctly.
        self.__dict__.setdefault("_previous", []).append((state, state.grad_enabled))
        state.grad_enabled = self._mode

    def __exit__(self, *exc_info: object) -> None:
        state, previous = self._previous.pop()
        state.grad_enabled = previous

    def __call__(self, func: _F) -> _F:
        mode = self._mode

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            state = _local.state
            previous = state.grad_enabled
            state.grad_enabled = mode
            try:
                return func(*args, **kwargs)
            finally:
                state.grad_enabled = previous

        return wrapper  # type: ignore[return-value]


class no_grad(_GradMode):
    """Turn off graph recording in this thread, as a context manager or a decorator.

    Inside it ops compute their values but record nothing, so their results have ``requires_grad=False``.
    Use it for evaluation and for updates of parameters. Like PyTorch's, it affects only the thread that
    entered it::

        with tinygrad_nn.no_grad():
            prediction = model(x)

        @tinygrad_nn.no_grad()
        def evaluate(model, x): ...
    """

    _mode = False


class enable_grad(_GradMode):
    """Turn graph recording back on inside a `no_grad` block (context manager or decorator; this thread only)."""

    _mode = True


class set_grad_enabled(_GradMode):
    """Set graph recording on or off: a function call, a context manager or a decorator, as in PyTorch.

    ``set_grad_enabled(False)`` switches recording off at once, in the calling thread; used with ``with``, the
    previous mode comes back at the end of the block.
    """

    def __init__(self, mode: bool) -> None:
        state = _local.state
        self._mode = bool(mode)
        self._state = state
        self._before = state.grad_enabled
        state.grad_enabled = self._mode

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc_info: object) -> None:
        self._state.grad_enabled = self._before

    def __call__(self, func: _F) -> _F:
        """Decorate `func` so that it runs with recording set to this mode."""
        # Used as a decorator, the switch in __init__ must not change the mode at definition time.
        self._state.grad_enabled = self._before
        return super().__call__(func)


def is_grad_enabled() -> bool:
    """Return True when ops record the graph in this thread (that is, outside `no_grad`)."""
    return _local.state.grad_enabled


# --------------------------------------------------------------------------------------------------------------
# Anomaly mode, retain_grads and tracing
# --------------------------------------------------------------------------------------------------------------


class _ThreadSwitch:
    """Base of the on/off context managers that set one attribute of the calling thread's state."""

    _attribute = ""

    def _set(self, value: Any) -> None:
        state = _local.state
        self.__dict__.setdefault("_previous", []).append((state, getattr(state, self._attribute)))
        setattr(state, self._attribute, value)
        state.update_unusual()

    def __exit__(self, *exc_info: object) -> None:
        state, previous = self._previous.pop()
        setattr(state, self._attribute, previous)
        state.update_unusual()


class detect_anomaly(_ThreadSwitch):
    """Raise `AnomalyError` at the first op whose forward or backward produces NaN or inf (in this thread).

    The error names the op and the file and line of your code that created it. Numpy's own warnings about
    invalid values are silenced inside the block, since the error says more. It makes every op slower (it
    checks every array and records where each op was called), so use it to hunt a NaN, not to train::

        with tinygrad_nn.detect_anomaly():
            loss = model(x).log().sum()
            loss.backward()
    """

    _attribute = "anomaly"

    def __enter__(self) -> detect_anomaly:
        self._set(True)
        return self


class retain_grads(_ThreadSwitch):
    """Inside it, backward keeps the gradient of every computed tensor, on its node: ``t.grad_fn.grad``.

    Leaves always keep theirs in ``.grad``; intermediate gradients are normally dropped as soon as they have been
    passed on. Keeping them costs memory, so this is for looking (`draw_graph` shows their norms), not for
    training. For one tensor, ``t.retain_grad()`` is cheaper::

        with tinygrad_nn.retain_grads():
            loss.backward()
        tinygrad_nn.draw_graph(loss, model)
    """

    _attribute = "retain_grads"

    def __enter__(self) -> retain_grads:
        self._set(True)
        return self


class OpRecord(NamedTuple):
    """One op run inside `trace_ops`: the Function class, its inputs and options as given, and its output(s)."""

    function: type
    inputs: tuple
    options: dict
    outputs: Any  # a Tensor, or a tuple of Tensors for an op with several outputs


class trace_ops(_ThreadSwitch):
    """Record every op this thread runs inside the block, in order, as `OpRecord` entries of a list.

    Recording happens in or out of `no_grad`; inputs are kept as given (the Tensors themselves), so an input is
    linked to the op that made it by identity. It is how an exporter reads a model's forward pass::

        with trace_ops() as records:
            model(x)
        [record.function.__name__ for record in records]     # ['Linear', 'ReLU', 'Linear']
    """

    _attribute = "tracer"

    def __enter__(self) -> list[OpRecord]:
        records: list[OpRecord] = []
        self._set(records)
        return records


def _user_frame() -> str:
    """File and line of the innermost caller outside this package, as ``path:line``."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
    if frame is None:
        return "<unknown>"
    return f"{frame.f_code.co_filename}:{frame.f_lineno}"


def _nonfinite_summary(array: Any) -> str | None:
    """Describe the NaN or inf values of a float array, or None when all are finite."""
    array = np.asarray(array)
    if array.dtype.kind != "f" or np.isfinite(array).all():
        return None
    nans = int(np.isnan(array).sum())
    infs = int(np.isinf(array).sum())
    parts = [f"{nans} NaN" if nans else "", f"{infs} inf" if infs else ""]
    first = tuple(int(i) for i in np.argwhere(~np.isfinite(array))[0])
    return f"{' and '.join(p for p in parts if p)} of {array.size} values (first at index {first})"


# --------------------------------------------------------------------------------------------------------------
# Hooks
# --------------------------------------------------------------------------------------------------------------


class RemovableHandle:
    """What ``register_*hook`` returns: ``handle.remove()`` unregisters the hook (a second remove does nothing).

    Also a context manager that removes the hook at the end of the block, as PyTorch's handle is.
    """

    __slots__ = ("_on_remove", "_removed")

    def __init__(self, on_remove: Callable[[], None]) -> None:
        self._on_remove = on_remove
        self._removed = False

    def remove(self) -> None:
        """Unregister the hook."""
        if not self._removed:
            self._removed = True
            self._on_remove()

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.remove()


# How many tensor hooks exist, in every thread: while there are none, backward takes the fast path, which does not
# look for them. Changed only under the lock.
_tensor_hook_count = 0
# How many post-accumulate-grad hooks exist (`Tensor.register_post_accumulate_grad_hook`): the fast walk looks for
# them only while there are some. They do not need the general walk, so a gradient monitor keeps the fast path.
_post_hook_count = 0
_hook_lock = threading.Lock()


def _count_tensor_hooks(change: int) -> None:
    global _tensor_hook_count
    _tensor_hook_count += change


def _count_post_hooks(change: int) -> None:
    global _post_hook_count
    _post_hook_count += change


class _Hooks(list):
    """A hook list with its tally: how many of its hooks count in the process's total (None once its owner died).

    `count` adds to the total it counts in (tensor hooks or post-accumulate hooks). The owner's finalizer holds
    only the tally and `count`, never the list: a hook that refers to its owner (a closure over the tensor, a
    monitor's bound method) would otherwise keep the owner alive for ever, and its hooks counting.
    """

    __slots__ = ("count", "tally")

    def __init__(self, count: Callable[[int], None]) -> None:
        super().__init__()
        self.count = count
        self.tally: list[int | None] = [0]


def _owned_hooks(owner: Any, attribute: str, count: Callable[[int], None]) -> _Hooks:
    """The owner's hook list in `attribute`, made on first use; when the owner dies its hooks stop counting."""
    hooks = getattr(owner, attribute, None)
    if hooks is None:
        hooks = _Hooks(count)
        setattr(owner, attribute, hooks)
        weakref.finalize(owner, _forget_hooks, hooks.tally, count)
    return hooks


def _forget_hooks(tally: list, count: Callable[[int], None]) -> None:
    with _hook_lock:
        count(-(tally[0] or 0))
        tally[0] = None


def _hook_list(owner: Any) -> _Hooks:
    """The tensor-hook list of a leaf tensor or a node, made on first use.

    When the owner dies its hooks stop counting (a weakref finalizer), so a hook left on a temporary tensor, or a
    `retain_grad`, does not keep every later backward off the fast path.
    """
    return _owned_hooks(owner, "_hooks", _count_tensor_hooks)


def _add_post_accumulate_hook(leaf: Any, hook: Any) -> RemovableHandle:
    """Register `hook(leaf)` to run after backward has accumulated into ``leaf.grad``; counted like tensor hooks."""
    return _add_tensor_hook(_owned_hooks(leaf, "_post_hooks", _count_post_hooks), [hook])


def _run_post_accumulate_hooks(leaves: dict) -> None:
    """Call each leaf's post-accumulate hooks, once per backward, after every gradient has been accumulated."""
    for leaf, hooks in leaves.items():
        for (hook,) in list(hooks):
            hook(leaf)


def _add_tensor_hook(hooks: _Hooks, entry: Any) -> RemovableHandle:
    """Append `entry` to a hook list (of a leaf or a node) and count it; the handle takes it out again."""
    tally, count = hooks.tally, hooks.count
    with _hook_lock:
        hooks.append(entry)
        tally[0] += 1
        count(1)

    def remove() -> None:
        with _hook_lock:
            for position, item in enumerate(hooks):
                if item is entry:
                    del hooks[position]
                    if tally[0] is not None:  # else its owner died, and its hooks stopped counting then
                        tally[0] -= 1
                        count(-1)
                    break

    return RemovableHandle(remove)


def _run_tensor_hooks(hooks: list, grad: Any, describe: str) -> Any:
    """Call each hook on the gradient in turn; a hook that returns something replaces the gradient.

    A `retain_grad` hook runs after all the others, whenever it was registered, as in PyTorch 2: the kept
    gradient is the one that flows on.
    """
    ordered = [hook for hook in hooks if not hasattr(hook, "_retains")]
    ordered += [hook for hook in hooks if hasattr(hook, "_retains")]
    for hook in ordered:
        replaced = hook(grad)
        if replaced is None:
            continue
        if isinstance(replaced, Tensor):
            replacement = replaced if isinstance(grad, Tensor) else replaced.data
        else:
            replacement = np.asarray(replaced)
            if isinstance(grad, Tensor):
                replacement = _constant_tensor(replacement)
        if np.shape(replacement) != np.shape(grad):
            raise ValueError(
                f"the hook {getattr(hook, '__name__', hook)!r} on {describe} returned a gradient of shape "
                f"{np.shape(replacement)} for a gradient of shape {np.shape(grad)}; return one of the same shape "
                "(or None to keep it)"
            )
        grad = replacement
    return grad


# --------------------------------------------------------------------------------------------------------------
# Function: the node of the graph
# --------------------------------------------------------------------------------------------------------------


class Function:
    """An operation with its forward and backward; subclass it to write your own op.

    Write ``forward`` and ``backward`` as static methods, as in ``torch.autograd.Function``::

        class Cube(tinygrad_nn.Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x)
                return x ** 3

            @staticmethod
            def backward(ctx, grad):
                (x,) = ctx.saved_tensors
                return grad * 3 * x ** 2

        y = Cube.apply(t)          # a Tensor; y.grad_fn is the Cube node

    ``forward(ctx, *arrays, **options)`` receives the ndarrays of tensor inputs (other inputs, such as Python
    numbers, as they are) and returns an ndarray, or a tuple of ndarrays. ``backward(ctx, *grads)`` receives one
    gradient per output and returns one gradient (or None) per input of forward: a single array when forward
    had one input. A gradient may have the broadcast shape of the output; the engine sums it down to the input's
    shape and casts it to the input's dtype. ``ctx.needs_input_grad`` says which inputs need one.

    The backward above is differentiable too: under ``backward(create_graph=True)`` or ``tinygrad_nn.grad(...,
    create_graph=True)`` the engine calls it with Tensors (the gradient, and the saved inputs and outputs), and
    its operators record a graph. Functions such as ``np.cos`` do not work on Tensors; use
    ``tinygrad_nn.functions.xp`` (``xp.exp``, ``xp.where``, ...), which works on both, or decorate a backward that
    only works on arrays with `once_differentiable`.
    """

    # Built-in primitives declare their own empty __slots__; a user's subclass gets a __dict__, so its ctx can
    # carry any attribute (ctx.scale = 2.0), as in PyTorch. `shape` and `dtype` describe the output (None for a
    # node with several outputs, whose `outputs` holds one _OutputRef each); `scope` is the module call the op
    # ran in (only set inside one); `trace` is where it was called (only set in anomaly mode); `grad` is the
    # gradient of the output (only kept inside `retain_grads`); `inputs`, `output` and `_saved` are what
    # backward needs (see the module's doc); `_hooks` holds the hooks of the tensor(s) this node computed.
    __slots__ = (
        "__weakref__",
        "_hooks",
        "_saved",
        "dtype",
        "grad",
        "inputs",
        "output",
        "outputs",
        "parents",
        "scope",
        "seq",
        "shape",
        "trace",
    )

    # Built-in backwards never return an array that something else holds (only the upstream gradient itself
    # or views of it, which the engine recognises), so their results can become a leaf's .grad without a copy.
    # A user's backward might return a saved array, so its results are copied first.
    _fresh_grads = False
    # An explicit conversion (Cast to an integer dtype) may leave the graph; any other op whose result is not a
    # number while an input requires grad is an error (see _check_result_dtype).
    _leaves_graph = False
    # A backward that reads its inputs even where its derivative is flat (a mask, a sign): under create_graph its
    # gradients stay connected to the inputs (see _FlatDerivative).
    _backward_reads_inputs = False
    # When the upstream gradient itself requires grad and the op's derivative is flat (a mask, a sign: the
    # gradient depends on the upstream only), whether it still hangs off the inputs, with derivative 0. PyTorch's
    # relu and abs (and the 1- and inf-norms) read their input or output in a differentiable formula, so their
    # input gets zeros there; clamp's and max's formula is a mask, so the input is unused. Ops whose gradient
    # depends on their input anyway (pow, the 2-norm) need nothing.
    _flat_through_inputs = False

    @staticmethod
    def forward(ctx: Function, *arrays: Any, **options: Any) -> np.ndarray | tuple[np.ndarray, ...]:
        """Compute the op's output from ndarrays; override in a subclass."""
        raise NotImplementedError(f"{type(ctx).__name__} must define a static forward(ctx, *arrays)")

    @staticmethod
    def backward(ctx: Function, *grads: Any) -> Any:
        """Return the gradient of each input from the gradient of each output; override in a subclass."""
        raise NotImplementedError(f"{type(ctx).__name__} must define a static backward(ctx, *grads)")

    def save_for_backward(self, *arrays: Any) -> None:
        """Keep arrays for backward; they are freed after backward unless the graph is retained.

        Save inputs and outputs of forward (the arrays forward received or returned): under ``create_graph``
        backward gets them back as Tensors connected to the graph. Anything else saved is a constant to a
        second derivative.
        """
        self._saved = arrays

    @property
    def saved_tensors(self) -> tuple:
        """The arrays given to `save_for_backward`, in order."""
        saved = self._saved
        if saved is None:
            raise RuntimeError(
                f"the arrays {type(self).__name__} saved for backward were freed by an earlier backward(); "
                "pass retain_graph=True to the first backward() to go through the graph again"
            )
        return saved

    @property
    def needs_input_grad(self) -> tuple[bool, ...]:
        """One bool per input of forward: True where a gradient has to flow."""
        return tuple([edge is not None for edge in self.parents])

    @property
    def name(self) -> str:
        """The op's name: its class name (how graph pictures and error messages show it)."""
        return type(self).__name__

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"

    @classmethod
    def apply(cls, *inputs: Any, **options: Any) -> Any:
        """Run the op on `inputs` (Tensors, arrays or numbers) and record it when a tensor input needs grad.

        Returns a `Tensor`, or a tuple of Tensors when forward returns a tuple.
        """
        # Every op of every model comes through here, so this is written for speed: no helper calls, no
        # comprehensions, and the one-, two- and three-input cases (Linear with a bias is the commonest op of
        # all) without a loop. An input's edge is its node, or itself for a leaf that requires grad, or None.
        # A numpy scalar (np.sqrt(d), arr.mean()) becomes a Python number, so it never upcasts a float32 tensor:
        # PyTorch's rule for numbers, where numpy's own would make np.float64 win.
        ctx = cls.__new__(cls)
        count = len(inputs)
        if count > 3 or count == 0:
            arrays = list(inputs)
            edges = [None] * count
            record = False
            for position, item in enumerate(inputs):
                if isinstance(item, Tensor):
                    arrays[position] = item.data
                    if item._requires_grad:
                        edges[position] = item._node or item
                        record = True
                elif isinstance(item, np.generic):
                    arrays[position] = item.item()
            edges = tuple(edges)
        else:
            first = inputs[0]
            if isinstance(first, Tensor):
                first_edge = (first._node or first) if first._requires_grad else None
                first = first.data
            else:
                first_edge = None
                if isinstance(first, np.generic):
                    first = first.item()
            if count == 1:
                arrays = (first,)
                edges = (first_edge,)
                record = first_edge is not None
            else:
                second = inputs[1]
                if isinstance(second, Tensor):
                    second_edge = (second._node or second) if second._requires_grad else None
                    second = second.data
                else:
                    second_edge = None
                    if isinstance(second, np.generic):
                        second = second.item()
                if count == 2:
                    arrays = (first, second)
                    edges = (first_edge, second_edge)
                    record = first_edge is not None or second_edge is not None
                else:
                    third = inputs[2]
                    if isinstance(third, Tensor):
                        third_edge = (third._node or third) if third._requires_grad else None
                        third = third.data
                    else:
                        third_edge = None
                        if isinstance(third, np.generic):
                            third = third.item()
                    arrays = (first, second, third)
                    edges = (first_edge, second_edge, third_edge)
                    record = first_edge is not None or second_edge is not None or third_edge is not None
        state = _local.state
        if record and state.grad_enabled:
            ctx.parents = edges
            ctx.seq = _next_seq()
            scope = state.scope
            if scope is not None:
                ctx.scope = scope
        else:
            record = False
            ctx.parents = (None,) * count
        ctx._saved = ()
        unusual = state.unusual
        if unusual:  # anomaly mode or a tracer: rare, kept out of the common line
            out = _forward_unusual(cls, ctx, state, arrays, options)
        elif options:
            out = cls.forward(ctx, *arrays, **options)
        else:  # most ops have no options: a call without unpacking an empty dict is cheaper
            out = cls.forward(ctx, *arrays)
        if type(out) is tuple:
            result = _wrap_outputs(cls, ctx, out, record, arrays)
        else:
            if type(out) is not np.ndarray:  # numpy scalars (0-d results), or whatever a user's forward returned
                out = np.asarray(out) if isinstance(out, np.generic) else _as_output_array(cls, out)
            result = _new_tensor(Tensor)
            result.data = out
            result._grad = None
            if record and out.dtype.kind == "f":
                result._requires_grad = True
                result._node = ctx
                ctx.shape = out.shape
                ctx.dtype = out.dtype
                if not cls._fresh_grads and ctx._saved:
                    _note_saved_roles(ctx, arrays, (out,))
            else:
                if record and not cls._leaves_graph:
                    _check_result_dtype(cls, out.dtype)
                result._requires_grad = False
                result._node = None
        if unusual and state.tracer is not None:
            state.tracer.append(OpRecord(cls, inputs, options, result))
        return result


_new_tensor = object.__new__
# Every recorded node gets the next number: a node is made after the nodes of its inputs, so it always has a
# higher number than they do, and walking nodes from the highest number down visits every node after all of
# its consumers (the order PyTorch's engine uses too, by sequence number). Atomic under the GIL.
_next_seq = itertools.count().__next__

# In-place changes of a tensor's values (``w -= ...`` under no_grad) are numbered from the same counter, on the
# tensor itself (``_modified_seq``), and the latest is kept here. A node older than the latest change may read a
# changed value in its backward, so the walks check such a node's leaf inputs before running it (PyTorch's
# version counter, which raises there too). In a training loop every node is newer than the last optimizer
# step, and the check is one comparison of integers per node.
_last_modified_seq = -1


def note_modified_in_place(tensor: Any) -> None:
    """Record that `tensor`'s values were changed in place.

    A backward still to come through an older node that read them then raises `ModifiedInPlaceError` instead of
    computing a gradient from the new values.
    """
    global _last_modified_seq
    seq = _next_seq()
    tensor._modified_seq = seq
    _last_modified_seq = seq


def in_place_stamp() -> int:
    """A new number for changes made in place now, recorded as the latest: for an optimizer's step.

    The optimizer sets ``parameter._modified_seq`` to it for each parameter it changes, which is what
    `note_modified_in_place` does for one tensor, at the cost of one attribute per parameter.
    """
    global _last_modified_seq
    _last_modified_seq = seq = _next_seq()
    return seq


def _check_unmodified(node: Function) -> None:
    """Raise if a leaf input of `node` whose values its backward reads was changed in place after it ran."""
    for position, edge in enumerate(node.parents):
        if not isinstance(edge, Tensor) or getattr(edge, "_modified_seq", -1) < node.seq:
            continue
        data = edge.data
        kept = [getattr(node, name, None) for name in ("inputs", "_saved")]
        kept = [item for group in kept if isinstance(group, tuple) for item in group]
        kept.append(getattr(node, "output", None))
        if any(item is data or (isinstance(item, Tensor) and item is edge) for item in kept):
            raise ModifiedInPlaceError(
                f"{type(node).__name__}'s input {position} (a leaf tensor of shape {data.shape}) was modified in "
                f"place after {type(node).__name__} used it, and its backward needs the values it saw: the gradient "
                "would be computed from the new ones. Change the tensor after backward() (as an optimizer's "
                "step does), or compute the loss again after changing it"
            )


class _OutputRef:
    """The edge to output ``index`` of a node whose forward returned several arrays."""

    __slots__ = ("dtype", "index", "node", "shape")

    def __init__(self, node: Function, index: int, shape: tuple, dtype: np.dtype) -> None:
        self.node = node
        self.index = index
        self.shape = shape
        self.dtype = dtype


def _as_output_array(cls: type, out: Any) -> np.ndarray:
    if isinstance(out, Tensor):
        raise TypeError(f"{cls.__name__}.forward returned a Tensor; forward works on ndarrays, return out.data")
    return np.asarray(out)


def _check_result_dtype(cls: type, dtype: np.dtype) -> None:
    """Refuse a recorded op whose result cannot carry a gradient because numpy promoted it to a non-number."""
    # Integer results (an argmax of a user's op) leave the graph quietly, as in PyTorch. A complex, object or
    # boolean result from a tensor that requires grad is numpy's promotion at work (x * 1j, x * an object array)
    # and would silently drop the gradient, so it is an error.
    if dtype.kind in "iu":
        return
    raise TypeError(
        f"{cls.__name__.lower()}: the result has dtype {dtype}, which cannot carry a gradient, from a tensor that "
        "requires grad; tinygrad_nn differentiates real floating-point tensors only (check the other operand's "
        "dtype, or .detach() the tensor first if no gradient is wanted)"
    )


def _wrap_outputs(cls: type, ctx: Function, outs: tuple, record: bool, arrays: Any) -> tuple:
    results = []
    refs = []
    for index, out in enumerate(outs):
        if type(out) is not np.ndarray:
            out = _as_output_array(cls, out)
        ref = _OutputRef(ctx, index, out.shape, out.dtype)
        refs.append(ref)
        result = _new_tensor(Tensor)
        result.data = out
        result._grad = None
        result._requires_grad = record and out.dtype.kind == "f"
        result._node = ref if result._requires_grad else None
        results.append(result)
    if record:
        ctx.outputs = tuple(refs)
        ctx.shape = None
        ctx.dtype = None
        if not cls._fresh_grads and ctx._saved:
            _note_saved_roles(ctx, arrays, tuple(r.data for r in results))
    return tuple(results)


def _note_saved_roles(ctx: Function, arrays: Any, outs: tuple) -> None:
    """For a user's Function: which saved arrays are inputs (by position) or outputs (by index), by identity."""
    roles = []
    for item in ctx._saved:
        role = None
        for position, array in enumerate(arrays):
            if item is array and isinstance(array, np.ndarray):
                role = ("input", position)
                break
        else:
            for index, out in enumerate(outs):
                if item is out:
                    role = ("output", index)
                    break
        roles.append(role)
    ctx.__dict__["_roles"] = roles


def _forward_unusual(cls: type, ctx: Function, state: _ThreadState, arrays: Any, options: dict) -> Any:
    """Forward, when anomaly mode or a tracer is on in this thread."""
    if state.anomaly:
        ctx.trace = _user_frame()
        return _forward_with_anomaly_checks(cls, ctx, arrays, options)
    return cls.forward(ctx, *arrays, **options)


def _forward_with_anomaly_checks(cls: type, ctx: Function, arrays: Any, options: dict) -> Any:
    """Run forward inside `detect_anomaly`: numpy's warnings off, NaN or inf from finite inputs an error."""
    with np.errstate(all="ignore"):
        out = cls.forward(ctx, *arrays, **options)
    inputs_finite = all(not isinstance(a, np.ndarray) or a.dtype.kind != "f" or np.isfinite(a).all() for a in arrays)
    if inputs_finite:
        outs = out if type(out) is tuple else (out,)
        for position, array in enumerate(outs):
            problem = _nonfinite_summary(np.asarray(array))
            if problem:
                which = f"output {position}" if len(outs) > 1 else "output"
                raise AnomalyError(
                    f"{cls.__name__} forward produced {problem} in its {which} from finite inputs; "
                    f"the op was called at {ctx.trace}"
                )
    return out


# --------------------------------------------------------------------------------------------------------------
# Shared pieces of the walks
# --------------------------------------------------------------------------------------------------------------


def _released_error(node: Function) -> RuntimeError:
    return RuntimeError(
        f"backward() reached {type(node).__name__}, whose saved arrays an earlier backward() already freed: "
        "the graph can be walked once. Pass retain_graph=True to the earlier backward() to walk it again"
    )


def _count_consumers(roots: Sequence[Function], check_released: bool = True) -> dict[Function, int]:
    """For every node reachable from `roots`, how many edges lead into it from other reachable nodes.

    A node's backward may run once that many gradients have been delivered to it (HIPS autograd's child counts):
    an order in which every node comes after all of its consumers, found without recursion. It also checks
    that no reachable node was released by an earlier backward, before any gradient is written.
    """
    pending: dict[Function, int] = {}
    stack = []
    for root in roots:
        if root not in pending:
            if check_released and root._saved is None:
                raise _released_error(root)
            pending[root] = 0
            stack.append(root)
    while stack:
        for edge in stack.pop().parents:
            if edge is None or isinstance(edge, Tensor):
                continue
            if edge.__class__ is _OutputRef:
                edge = edge.node
            count = pending.get(edge)
            if count is None:
                if check_released and edge._saved is None:
                    raise _released_error(edge)
                pending[edge] = 1
                stack.append(edge)
            else:
                pending[edge] = count + 1
    return pending


def backward_order(root: Any) -> list[Function]:
    """The nodes that ``root.backward()`` would call, in the order the walk calls them; nothing is run.

    The walk visits nodes from the most recently made down (each node's number is higher than its inputs'
    nodes', so a node comes after every node that consumes its output): this lists every node reachable from
    `root` in that order. A node that would receive no gradient (every consumer returned None for it) is listed,
    though the walk skips it. A leaf root gives an empty list.
    """
    start = root._node
    if start is None:
        return []
    if start.__class__ is _OutputRef:
        start = start.node
    return sorted(_count_consumers([start], check_released=False), key=lambda node: -node.seq)


def _reduce_to_shape(node: Function, position: int, grad: Any, shape: tuple) -> Any:
    """Sum a gradient in a broadcast shape down to `shape`: the one place where broadcasting is undone.

    Works on ndarrays and on Tensors alike (their ``sum`` and ``reshape`` methods), so a graph-building
    backward gets the same reduction, recorded.
    """
    grad_shape = grad.shape
    extra = len(grad_shape) - len(shape)
    if extra >= 0 and all(g == s or s == 1 for g, s in zip(grad_shape[extra:], shape)):
        axes = tuple(range(extra)) + tuple(
            extra + i for i, size in enumerate(shape) if size == 1 and grad_shape[extra + i] != 1
        )
        # Only a sum makes a new array; a reshape alone is a view of `grad` (the caller must not own it).
        return grad.sum(axis=axes).reshape(shape) if axes else grad.reshape(shape)
    raise _BackwardShapeError(
        f"{type(node).__name__}.backward returned a gradient of shape {tuple(grad_shape)} for input {position}, "
        f"whose shape is {shape}"
    )


def _as_gradient(node: Function, position: int, grad: Any, dtype: np.dtype) -> np.ndarray:
    """Check an array gradient's type and dtype; cast a float gradient to the input's float dtype."""
    if isinstance(grad, Tensor):
        raise _BackwardTypeError(
            f"{type(node).__name__}.backward returned a Tensor for input {position}; return an ndarray"
        )
    array = np.asarray(grad)
    if array.dtype.kind != "f" and not (node._fresh_grads and array.dtype.kind in "iub"):
        raise _BackwardTypeError(
            f"{type(node).__name__}.backward returned a gradient of dtype {array.dtype} for input {position}, "
            f"whose dtype is {dtype}; gradients must be floating-point"
        )
    return array if array.dtype is dtype or array.dtype == dtype else array.astype(dtype)


def _seed(root: Any, gradient: Any, keep_tensor: bool, position: int | None = None) -> Any:
    """The gradient backward starts from: one for a one-element output, else the caller's (copied).

    With `keep_tensor` (create_graph), a Tensor gradient is kept as it is, graph and all, so that the result can
    be differentiated with respect to it too (how `jvp` works). `position` is set for grad()'s outputs, whose
    errors name ``grad_outputs``.
    """
    data = root.data
    if gradient is None:
        if data.size != 1:
            if position is not None:
                raise RuntimeError(
                    f"grad(): output {position} is not a single-value output (it has shape {data.shape}), so it "
                    "needs a gradient: pass grad_outputs, one array of each output's shape"
                )
            raise RuntimeError(
                f"backward() without a gradient needs a single-value output, but this tensor has shape {data.shape}; "
                "call .sum() or .mean() first, or pass gradient= an array of that shape"
            )
        one = np.array(1, dtype=data.dtype)  # cheaper than np.ones, which is Python-level
        return one.reshape(data.shape) if data.ndim else one
    given = tuple(np.shape(gradient.data if isinstance(gradient, Tensor) else gradient))
    if given != data.shape:
        if position is not None:
            raise ValueError(
                f"grad(): grad_outputs[{position}] has shape {given}, but output {position} has shape {data.shape}"
            )
        raise ValueError(f"backward() got a gradient of shape {given} for a tensor of shape {data.shape}")
    if keep_tensor and isinstance(gradient, Tensor):
        return gradient if gradient.dtype == data.dtype else gradient.astype(data.dtype)
    seed = gradient.data if isinstance(gradient, Tensor) else gradient
    return np.array(seed, dtype=data.dtype)  # a copy: the walk may hand it to a leaf as its .grad


def _check_gradient(node: Function, position: int, grad: Any) -> None:
    problem = _nonfinite_summary(grad.data if isinstance(grad, Tensor) else grad)
    if problem:
        raise AnomalyError(
            f"{type(node).__name__} backward produced {problem} in the gradient of its input {position}; "
            f"the op was called at {getattr(node, 'trace', '<unknown>')}"
        )


def _release(node: Function) -> None:
    node._saved = None
    node.inputs = None
    node.output = None


def _no_grad_error() -> RuntimeError:
    return RuntimeError(
        "backward() called on a tensor that does not require grad: no tensor it was computed from has "
        "requires_grad=True, or it was computed inside no_grad()"
    )


# --------------------------------------------------------------------------------------------------------------
# The first-order fast path
# --------------------------------------------------------------------------------------------------------------


def _walk_arrays(root: Any, seed: np.ndarray, retain_graph: bool, state: _ThreadState) -> None:
    """Accumulate d(root)/d(leaf) into every leaf's ``.grad``: ndarrays only, no hooks, one flat loop.

    What a plain ``loss.backward()`` runs. `_Walk` does the same walk for every other case, more slowly and
    more readably; the two are kept in step by tests that compare their results bit for bit. This one is spelled
    out for speed (leaves and nodes in separate branches): every training step runs it.

    Nodes are visited from the highest sequence number down, each once it has a gradient: every node's consumers
    have higher numbers, so all of them have delivered by then, and no count of consumers is needed. A node that
    receives no gradient is never visited. A node released by an earlier backward is found when a gradient first
    reaches it (as in PyTorch, leaves reached before that keep what they got).
    """
    start = root._node
    if start is None:  # the root is itself a leaf
        _accumulate_leaf(root, seed, owned=False)
        if _post_hook_count and getattr(root, "_post_hooks", None):
            _run_post_accumulate_hooks({root: root._post_hooks})
        return
    if start.__class__ is _OutputRef:
        grads: dict[Function, Any] = {start.node: [None] * len(start.node.outputs)}
        grads[start.node][start.index] = seed
        start = start.node
    else:
        grads = {start: seed}
    if start._saved is None:
        raise _released_error(start)
    anomaly = state.anomaly
    keep = state.retain_grads
    modified = _last_modified_seq
    posts = {} if _post_hook_count else None  # leaves with post-accumulate hooks, run once at the end
    # Nodes that have received a gradient, highest number first: each comes after all its consumers.
    ready = [(-start.seq, start)]
    push, pop = heapq.heappush, heapq.heappop
    while ready:
        node = pop(ready)[1]
        if node.seq < modified:
            _check_unmodified(node)
        upstream = grads.pop(node)
        parents = node.parents
        if keep:
            node.grad = upstream
        if node.shape is None:  # several outputs: missing gradients are zeros, as in PyTorch
            upstream = [np.zeros(r.shape, r.dtype) if g is None else g for g, r in zip(upstream, node.outputs)]
            returned = _call_backward(node, upstream, anomaly)
        elif anomaly:
            returned = _call_backward(node, [upstream], anomaly)
        else:
            returned = node.backward(node, upstream)
        if type(returned) is not tuple:
            returned = (returned,)
        if len(returned) != len(parents):
            raise _count_error(node, returned)
        fresh = node._fresh_grads
        for position, edge in enumerate(parents):
            if edge is None:
                continue
            grad = returned[position]
            if isinstance(edge, Tensor):  # a leaf: accumulate into .grad, which never shares memory
                if grad is None:
                    continue
                data = edge.data
                # May this array become the .grad as it is? Only if nothing else can hold it.
                owned = fresh and grad is not upstream
                dtype = data.dtype
                if type(grad) is not np.ndarray or (grad.dtype is not dtype and grad.dtype != dtype):
                    converted = _as_gradient(node, position, grad, dtype)
                    owned = owned or converted is not grad
                    grad = converted
                if grad.shape != data.shape:
                    reduced = _reduce_to_shape(node, position, grad, data.shape)
                    owned = (owned and grad.base is None) or reduced.size != grad.size
                    grad = reduced
                elif owned and grad.base is not None:
                    owned = False
                if anomaly:
                    _check_gradient(node, position, grad)
                existing = edge._grad
                if existing is None:
                    edge._grad = grad if owned else grad.copy()
                elif type(existing) is np.ndarray:
                    existing += grad
                else:  # a Tensor left by backward(create_graph=True): it stays a Tensor, a detached sum
                    edge._grad = _constant_tensor(existing.data + grad)
                if posts is not None and getattr(edge, "_post_hooks", None):
                    posts[edge] = edge._post_hooks
                continue
            if grad is None:
                continue
            if edge.__class__ is _OutputRef:
                grad = _fit_gradient(node, position, grad, edge.shape, edge.dtype, anomaly)
                parent = edge.node
                slots = grads.get(parent)
                if slots is None:
                    if parent._saved is None:
                        raise _released_error(parent)
                    slots = grads[parent] = [None] * len(parent.outputs)
                    push(ready, (-parent.seq, parent))
                previous = slots[edge.index]
                slots[edge.index] = grad if previous is None else previous + grad
            else:
                dtype = edge.dtype
                kind = type(grad)
                if kind is np.ndarray:
                    if (grad.dtype is not dtype and grad.dtype != dtype) or grad.shape != edge.shape or anomaly:
                        grad = _fit_gradient(node, position, grad, edge.shape, dtype, anomaly)
                elif not (kind is dtype.type and not edge.shape and not anomaly):
                    grad = _fit_gradient(node, position, grad, edge.shape, dtype, anomaly)
                previous = grads.get(edge)
                if previous is None:
                    if edge._saved is None:
                        raise _released_error(edge)
                    grads[edge] = grad
                    push(ready, (-edge.seq, edge))
                else:
                    grads[edge] = previous + grad
        if not retain_graph:
            node._saved = None
            node.inputs = None
            node.output = None
    if posts:
        _run_post_accumulate_hooks(posts)


def _fit_gradient(node: Function, position: int, grad: Any, shape: tuple, dtype: np.dtype, anomaly: bool) -> Any:
    """A returned gradient checked and made fit for a computed input: an ndarray of its dtype and shape."""
    if type(grad) is not np.ndarray or grad.dtype != dtype:
        grad = _as_gradient(node, position, grad, dtype)
    if grad.shape != shape:
        grad = _reduce_to_shape(node, position, grad, shape)
    if anomaly:
        _check_gradient(node, position, grad)
    return grad


def _call_backward(node: Function, upstream: list, anomaly: bool) -> Any:
    if not anomaly:
        return node.backward(node, *upstream)
    with np.errstate(all="ignore"):
        return node.backward(node, *upstream)


def _count_error(node: Function, returned: tuple) -> BackwardError:
    return BackwardError(
        f"{type(node).__name__}.backward returned {len(returned)} gradient(s) for {len(node.parents)} "
        "input(s) of forward; return one per input (None for an input that needs none)"
    )


def _accumulate_leaf(leaf: Any, grad: np.ndarray, owned: bool) -> None:
    """Add `grad` to ``leaf.grad``; a new .grad never shares memory with anything else."""
    existing = leaf._grad
    if existing is None:
        leaf._grad = grad if owned else grad.copy()
    elif type(existing) is np.ndarray:
        existing += grad
    else:  # a Tensor left by backward(create_graph=True) stays a Tensor, as in PyTorch (detached: nothing records)
        leaf._grad = _constant_tensor(existing.data + grad)


# --------------------------------------------------------------------------------------------------------------
# The general walk: create_graph, grad(), hooks, several outputs
# --------------------------------------------------------------------------------------------------------------


def _constant_tensor(array: Any) -> Any:
    """A Tensor holding `array`, outside any graph."""
    tensor = _new_tensor(Tensor)
    tensor.data = np.asarray(array)
    tensor._grad = None
    tensor._requires_grad = False
    tensor._node = None
    return tensor


def _connected_tensor(array: Any, edge: Any) -> Any:
    """The tensor that `edge` produced, rebuilt around the array a node saved of it (for create_graph).

    A leaf is itself (gradients must reach it); a computed tensor is a new Tensor pointing at the node (or the
    output of a multi-output node) that computed it; an input that needed no gradient stays a plain array.
    """
    if edge is None or not isinstance(array, (np.ndarray, np.generic)):
        return array
    if isinstance(edge, Tensor):
        return edge
    tensor = _new_tensor(Tensor)
    tensor.data = np.asarray(array)  # a 0-d result may have been saved as a numpy scalar
    tensor._grad = None
    tensor._requires_grad = True
    tensor._node = edge
    return tensor


class _GraphContext:
    """What a node's backward receives as ``ctx`` under create_graph: the node, with graph-connected values.

    ``inputs`` and ``output`` (a primitive's saved inputs and result) and ``saved_tensors`` (a user's Function)
    are Tensors that point at the edges that produced them; everything else is read from the node itself.
    """

    def __init__(self, node: Function) -> None:
        object.__setattr__(self, "_node", node)
        parents = node.parents
        inputs = getattr(node, "inputs", None)
        if inputs is not None:
            self.inputs = tuple(_connected_tensor(array, edge) for array, edge in zip(inputs, parents))
        output = getattr(node, "output", None)
        if output is not None:
            self.output = _connected_tensor(output, node)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._node, name)

    @property
    def saved_tensors(self) -> tuple:
        """The saved arrays, with inputs and outputs of forward as graph-connected Tensors."""
        node = self._node
        saved = node.saved_tensors
        roles = node.__dict__.get("_roles") if hasattr(node, "__dict__") else None
        if not roles:
            return saved
        rebuilt = []
        for item, role in zip(saved, roles):
            if role is None:
                rebuilt.append(item)
            elif role[0] == "input":
                rebuilt.append(_connected_tensor(item, node.parents[role[1]]))
            else:
                edge = node if node.shape is not None else node.outputs[role[1]]
                rebuilt.append(_connected_tensor(item, edge))
        return tuple(rebuilt)

    @property
    def needs_input_grad(self) -> tuple[bool, ...]:
        """One bool per input of forward: True where a gradient has to flow."""
        return self._node.needs_input_grad


def once_differentiable(backward: _F) -> _F:
    """Mark a Function's backward as working on ndarrays only (PyTorch's decorator of the same name).

    Under ``create_graph=True`` the engine then calls it with arrays, and the gradients it returns carry a node
    that raises a clear error if anything tries to differentiate through them; a first-order backward is not
    affected. Put it under ``@staticmethod``::

        class Erf(tinygrad_nn.Function):
            @staticmethod
            @once_differentiable
            def backward(ctx, grad): ...
    """
    backward._once_differentiable = True  # type: ignore[attr-defined]
    return backward


class _NotDifferentiable(Function):
    """Stands behind a gradient whose backward could not build a graph; differentiating through it is an error.

    Made by `_flag_not_differentiable`, never applied: it has no forward.
    """

    @staticmethod
    def backward(ctx: Function, grad: Any) -> Any:
        raise DoubleBackwardError(
            f"cannot differentiate through the gradient computed by {ctx.function}.backward: {ctx.reason}. "
            "Write its backward with operators and tinygrad_nn.functions.xp functions, which work on Tensors "
            "too, so that create_graph=True can record it (see 'Writing and checking a custom layer' in the docs)"
        )


class _FlatDerivative(Function):
    """Stands behind a gradient that came out constant from a backward that reads its inputs (a mask, a sign).

    PyTorch's rule, under create_graph: a backward's result depends on everything its formula reads, so the
    gradient of relu, abs, clip, max or a power still hangs off the op's inputs, with derivative 0 there. A
    second derivative then gives zeros, where a disconnected constant would make it an error. Made by
    `_connect_flat`, never applied.
    """

    _fresh_grads = True  # fresh zeros: the engine may keep them as a .grad without a copy

    @staticmethod
    def backward(ctx: Function, grad: Any) -> Any:
        return tuple(None if edge is None else np.zeros(_edge_shape(edge), _edge_dtype(edge)) for edge in ctx.parents)


class _FlatThrough(Function):
    """`_FlatDerivative` for a gradient that already has a graph (the upstream gradient required grad).

    Its first parent is the gradient's own producer, which gets the gradient unchanged; the op's inputs follow,
    with derivative 0, as PyTorch's: d/dx of relu'(x) * u is zeros, not "unused", when u requires grad.
    """

    _fresh_grads = True  # the upstream gradient itself, and fresh zeros

    @staticmethod
    def backward(ctx: Function, grad: Any) -> Any:
        _through, *inputs = ctx.parents
        return (grad, *(None if edge is None else np.zeros(_edge_shape(edge), _edge_dtype(edge)) for edge in inputs))


def _edge_shape(edge: Any) -> tuple:
    return edge.data.shape if isinstance(edge, Tensor) else edge.shape


def _edge_dtype(edge: Any) -> np.dtype:
    return edge.data.dtype if isinstance(edge, Tensor) else edge.dtype


def _connect_flat(node: Function, returned: tuple) -> tuple:
    """Gradients of a backward that reads its inputs, each connected to them (see `_FlatDerivative`)."""
    dependencies = tuple(edge for edge in node.parents if edge is not None)
    connected = []
    for grad, edge in zip(returned, node.parents):
        if grad is None or edge is None:
            connected.append(grad)
            continue
        if isinstance(grad, Tensor) and grad._requires_grad:
            if not node._flat_through_inputs:
                connected.append(grad)
                continue
            through = _FlatThrough.__new__(_FlatThrough)
            through.parents = (grad._node or grad, *dependencies)
            through.seq = _next_seq()
            through._saved = ()
            through.shape = grad.data.shape
            through.dtype = grad.data.dtype
            tensor = _constant_tensor(grad.data)
            tensor._requires_grad = True
            tensor._node = through
            connected.append(tensor)
            continue
        array = np.asarray(grad.data if isinstance(grad, Tensor) else grad)
        flat = _FlatDerivative.__new__(_FlatDerivative)
        flat.parents = dependencies
        flat.seq = _next_seq()
        flat._saved = ()
        flat.shape = array.shape
        flat.dtype = array.dtype
        tensor = _constant_tensor(array)
        tensor._requires_grad = True
        tensor._node = flat
        connected.append(tensor)
    return tuple(connected)


def _as_tensor_grads(values: Sequence[Any]) -> list[Any]:
    return [value if value is None or isinstance(value, Tensor) else _constant_tensor(value) for value in values]


def _call_backward_for_graph(node: Function, upstream: list, anomaly: bool) -> tuple:
    """Call a node's backward with Tensors, so that it records a graph; fall back, flagged, when it cannot."""
    backward_function = type(node).backward
    reason = None
    if getattr(backward_function, "_once_differentiable", False):
        reason = "it is marked @once_differentiable"
    else:
        context = _GraphContext(node)
        try:
            if anomaly:
                with np.errstate(all="ignore"):
                    returned = node.backward(context, *upstream)
            else:
                returned = node.backward(context, *upstream)
        except TypeError as error:
            if node._fresh_grads:
                raise
            reason = f"called with Tensors, it raised TypeError({error})"
        else:
            if type(returned) is not tuple:
                returned = (returned,)
            if len(returned) != len(node.parents):
                raise _count_error(node, returned)
            if not node._fresh_grads and any(
                isinstance(grad, np.ndarray) and edge is not None for grad, edge in zip(returned, node.parents)
            ):
                # A user's backward that went through numpy (np.asarray, np.dot) left the graph: its result is
                # a constant, so a second derivative through it would be silently zero.
                reason = "it returned an ndarray where a Tensor was expected, so it left the graph"
                returned = tuple(g.data if isinstance(g, Tensor) else g for g in returned)
                return _flag_not_differentiable(node, returned, upstream, reason)
            if node._backward_reads_inputs:
                return _connect_flat(node, returned)
            return returned
    arrays = [g.data if isinstance(g, Tensor) else g for g in upstream]
    returned = _call_backward(node, arrays, anomaly)
    if type(returned) is not tuple:
        returned = (returned,)
    if len(returned) != len(node.parents):
        raise _count_error(node, returned)
    return _flag_not_differentiable(node, returned, upstream, reason)


def _flag_not_differentiable(node: Function, returned: tuple, upstream: list, reason: str) -> tuple:
    """Wrap each gradient of a backward that could not build a graph behind a `_NotDifferentiable` node.

    The node hangs off everything the gradient should have depended on (the upstream gradients that require
    grad and the op's own inputs), so the result requires grad like a real one, and only differentiating
    through it raises, naming the op: an error, never a silent zero.
    """
    dependencies = [g._node or g for g in upstream if isinstance(g, Tensor) and g._requires_grad]
    dependencies += [edge for edge in node.parents if edge is not None]
    flagged = []
    for grad, edge in zip(returned, node.parents):
        if grad is None or edge is None:
            flagged.append(None)
            continue
        array = np.asarray(grad.data if isinstance(grad, Tensor) else grad)
        if not dependencies:
            flagged.append(_constant_tensor(array))
            continue
        flag = _NotDifferentiable.__new__(_NotDifferentiable)
        flag.parents = tuple(dependencies)
        flag.seq = _next_seq()
        flag._saved = ()
        flag.shape = array.shape
        flag.dtype = array.dtype
        flag.function = type(node).__name__
        flag.reason = reason
        tensor = _constant_tensor(array)
        tensor._requires_grad = True
        tensor._node = flag
        flagged.append(tensor)
    return tuple(flagged)


class _Walk:
    """One backward pass for the general cases: several roots, chosen inputs, hooks, create_graph.

    `targets` (the inputs of `grad`) are captured instead of accumulated, and then only the part of the graph
    that leads to them is walked; without targets every leaf gets its gradient in ``.grad``.
    """

    def __init__(self, roots: Sequence[Any], seeds: Sequence[Any], retain_graph: bool, create_graph: bool,
                 targets: Sequence[Any] | None, accumulate: bool) -> None:  # fmt: skip
        self.retain_graph = retain_graph
        self.create_graph = create_graph
        self.accumulate = accumulate
        state = _local.state
        self.anomaly = state.anomaly
        self.keep = state.retain_grads
        self.grads: dict[Function, Any] = {}
        self.leaf_grads: dict[Any, Any] = {}  # every leaf's gradient, summed, delivered at the end
        self.captured: dict[Any, Any] = {}
        self.target_leaves = {}
        self.target_nodes: dict[Function, list] = {}
        if targets is not None:
            for target in targets:
                edge = target._node
                if edge is None:
                    self.target_leaves[target] = True
                else:
                    node, index = (edge.node, edge.index) if edge.__class__ is _OutputRef else (edge, None)
                    self.target_nodes.setdefault(node, []).append((index, target))
        self.targets = targets
        self.starts: list[Function] = []
        for root, seed in zip(roots, seeds):
            self._start(root, seed)

    def _start(self, root: Any, seed: Any) -> None:
        edge = root._node
        if edge is None:  # the root is a leaf: its gradient is the seed (a Tensor under create_graph)
            if self.create_graph and not isinstance(seed, Tensor):
                seed = _constant_tensor(seed)
            self._deliver_to_leaf(root, seed)
            return
        if edge.__class__ is _OutputRef:
            node = edge.node
            slots = self.grads.setdefault(node, [None] * len(node.outputs))
            slots[edge.index] = seed if slots[edge.index] is None else slots[edge.index] + seed
        else:
            node = edge
            previous = self.grads.get(node)
            self.grads[node] = seed if previous is None else previous + seed
        self.starts.append(node)

    def _deliver_to_leaf(self, leaf: Any, grad: Any) -> None:
        previous = self.leaf_grads.get(leaf)
        self.leaf_grads[leaf] = grad if previous is None else previous + grad

    def _needed(self, starts: list[Function]) -> set[Function] | None:
        """The nodes from which some target can be reached (None: every node, when there are no targets)."""
        if self.targets is None:
            return None
        order = []  # every reachable node, after all of its parents (a depth-first post-order)
        visited: set[Function] = set()
        stack: list[tuple[Function, bool]] = [(node, False) for node in starts]
        while stack:
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
                continue
            if node in visited:
                continue
            visited.add(node)
            stack.append((node, True))
            for edge in node.parents:
                if edge is not None and not isinstance(edge, Tensor):
                    parent = edge.node if edge.__class__ is _OutputRef else edge
                    if parent not in visited:
                        stack.append((parent, False))
        needed: set[Function] = set()
        for node in order:
            if node in self.target_nodes:
                needed.add(node)
                continue
            for edge in node.parents:
                if edge is None:
                    continue
                if isinstance(edge, Tensor):
                    if edge in self.target_leaves:
                        needed.add(node)
                        break
                elif (edge.node if edge.__class__ is _OutputRef else edge) in needed:
                    needed.add(node)
                    break
        return needed

    def run(self) -> None:
        if not self.starts:
            self._finish_leaves()
            return
        needed = self._needed(self.starts)
        # As in the fast walk: nodes with a gradient, highest sequence number first (after all their consumers).
        ready = []
        for node in dict.fromkeys(self.starts):
            if node._saved is None:
                raise _released_error(node)
            if needed is None or node in needed:
                heapq.heappush(ready, (-node.seq, node))
        state = _local.state
        grad_mode = state.grad_enabled
        state.grad_enabled = self.create_graph  # a graph-building backward records; a plain one never does
        try:
            while ready:
                node = heapq.heappop(ready)[1]
                self._visit(node, ready, needed)
        finally:
            state.grad_enabled = grad_mode
        self._finish_leaves()

    def _visit(self, node: Function, ready: list, needed: set | None) -> None:
        if node.seq < _last_modified_seq:
            _check_unmodified(node)
        upstream = self.grads.pop(node, None)
        parents = node.parents
        returned: tuple = (None,) * len(parents)
        if upstream is not None:
            upstream = self._node_hooks(node, upstream)
            if node in self.target_nodes:
                for index, target in self.target_nodes[node]:
                    value = upstream if index is None else upstream[index]
                    if value is not None:
                        self.captured[target] = value
            if self.keep:
                node.grad = upstream
            walks_on = needed is None or any(
                edge is not None
                and (
                    (isinstance(edge, Tensor) and edge in self.target_leaves)
                    or (
                        not isinstance(edge, Tensor) and (edge.node if edge.__class__ is _OutputRef else edge) in needed
                    )
                )
                for edge in parents
            )
            if walks_on:
                returned = self._call(node, upstream)
        for position, edge in enumerate(parents):
            if edge is None:
                continue
            grad = returned[position]
            if isinstance(edge, Tensor):
                if grad is not None and (self.accumulate or edge in self.target_leaves):
                    grad = self._checked(node, position, grad, edge.data.shape, edge.data.dtype)
                    self._deliver_to_leaf(edge, grad)
                continue
            parent = edge.node if edge.__class__ is _OutputRef else edge
            if grad is None or (needed is not None and parent not in needed):
                continue
            grad = self._checked(node, position, grad, edge.shape, edge.dtype)
            if parent not in self.grads:
                if parent._saved is None:
                    raise _released_error(parent)
                self.grads[parent] = [None] * len(parent.outputs) if edge.__class__ is _OutputRef else None
                heapq.heappush(ready, (-parent.seq, parent))
            if edge.__class__ is _OutputRef:
                slots = self.grads[parent]
                slots[edge.index] = grad if slots[edge.index] is None else slots[edge.index] + grad
            else:
                previous = self.grads[parent]
                self.grads[parent] = grad if previous is None else previous + grad
        if not self.retain_graph:
            _release(node)

    def _node_hooks(self, node: Function, upstream: Any) -> Any:
        hooks = getattr(node, "_hooks", None) if _tensor_hook_count else None
        if not hooks:
            return upstream
        if node.shape is not None:
            return _run_tensor_hooks([hook for _, hook in hooks], upstream, f"the output of {type(node).__name__}")
        upstream = list(upstream)
        for index in range(len(upstream)):
            chosen = [hook for hook_index, hook in hooks if hook_index == index]
            if chosen and upstream[index] is not None:
                upstream[index] = _run_tensor_hooks(chosen, upstream[index], f"output {index} of {type(node).__name__}")
        return upstream

    def _call(self, node: Function, upstream: Any) -> tuple:
        if node.shape is None:  # several outputs: missing gradients are zeros, as in PyTorch
            upstream = [(np.zeros(r.shape, r.dtype) if g is None else g) for g, r in zip(upstream, node.outputs)]
        else:
            upstream = [upstream]
        if self.create_graph:
            return _call_backward_for_graph(node, _as_tensor_grads(upstream), self.anomaly)
        upstream = [g.data if isinstance(g, Tensor) else g for g in upstream]
        returned = _call_backward(node, upstream, self.anomaly)
        if type(returned) is not tuple:
            returned = (returned,)
        if len(returned) != len(node.parents):
            raise _count_error(node, returned)
        return returned

    def _checked(self, node: Function, position: int, grad: Any, shape: tuple, dtype: np.dtype) -> Any:
        """A returned gradient made fit for its input: the right type, dtype and shape (recorded if a Tensor)."""
        if isinstance(grad, Tensor):
            if not self.create_graph:
                if not node._fresh_grads:  # a user's backward: the same error as on the fast path
                    _as_gradient(node, position, grad, dtype)
                grad = grad.data
            elif grad.dtype.kind != "f":
                raise _BackwardTypeError(
                    f"{type(node).__name__}.backward returned a gradient of dtype {grad.dtype} for input "
                    f"{position}, whose dtype is {dtype}; gradients must be floating-point"
                )
            elif grad.dtype != dtype:
                grad = grad.astype(dtype)
        if not isinstance(grad, Tensor):
            grad = _as_gradient(node, position, grad, dtype)
            if self.create_graph:
                grad = _constant_tensor(grad)
        if tuple(grad.shape) != tuple(shape):
            grad = _reduce_to_shape(node, position, grad, tuple(shape))
        if self.anomaly:
            _check_gradient(node, position, grad)
        return grad

    def _finish_leaves(self) -> None:
        posts = {}
        for leaf, grad in self.leaf_grads.items():
            hooks = getattr(leaf, "_hooks", None) if _tensor_hook_count else None
            if hooks:
                grad = _run_tensor_hooks(hooks, grad, "a leaf tensor")
            if leaf in self.target_leaves:
                self.captured[leaf] = grad
            elif self.accumulate:
                self._accumulate(leaf, grad)
                if _post_hook_count and getattr(leaf, "_post_hooks", None):
                    posts[leaf] = leaf._post_hooks
        self.leaf_grads = {}
        if posts:
            _run_post_accumulate_hooks(posts)

    def _accumulate(self, leaf: Any, grad: Any) -> None:
        existing = leaf._grad
        if isinstance(grad, Tensor):
            if existing is None:
                leaf._grad = grad
            else:
                leaf._grad = (existing if isinstance(existing, Tensor) else _constant_tensor(existing)) + grad
            return
        if existing is None:
            leaf._grad = np.array(grad, copy=True)
        elif type(existing) is np.ndarray:
            existing += grad
        else:
            leaf._grad = _constant_tensor(existing.data + grad)


# --------------------------------------------------------------------------------------------------------------
# The public entry points
# --------------------------------------------------------------------------------------------------------------


def _as_tensor_list(value: Any, what: str) -> list[Any]:
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    for position, item in enumerate(items):
        if not isinstance(item, Tensor):
            raise TypeError(f"{what} must be Tensors; item {position} is a {type(item).__name__}")
    if not items:
        raise ValueError(f"{what} is empty")
    return items


def run_backward(
    root: Any, gradient: Any = None, retain_graph: bool | None = None, create_graph: bool = False, inputs: Any = None
) -> None:
    """What ``Tensor.backward`` calls: the fast path for a plain backward, `backward` for everything else."""
    if not create_graph and inputs is None and not _tensor_hook_count:
        if not root._requires_grad:
            raise _no_grad_error()
        data = root.data
        if gradient is None and data.size == 1:
            seed = _UNIT_SEEDS.get((data.dtype, data.shape))
            if seed is None:
                seed = _unit_seed(data)
        else:
            seed = _seed(root, gradient, False)
        _walk_arrays(root, seed, bool(retain_graph), _local.state)
        return
    backward([root], [gradient], retain_graph, create_graph, inputs)


# The seed of a one-element output: one read-only array of ones per dtype and shape, made once (a fresh array
# per backward costs as much as a small op). Read-only keeps the promise that nothing writes into a gradient it
# receives; the walk copies it before it could become a leaf's .grad.
_UNIT_SEEDS: dict[tuple, np.ndarray] = {}


def _unit_seed(data: np.ndarray) -> np.ndarray:
    seed = np.ones(data.shape, dtype=data.dtype)
    seed.flags.writeable = False
    _UNIT_SEEDS[(data.dtype, data.shape)] = seed
    return seed


def backward(
    tensors: Any,
    grad_tensors: Any = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    inputs: Any = None,
) -> None:
    """Accumulate the gradients of `tensors` into the ``.grad`` of the leaves they were computed from.

    ``tensors`` is a Tensor or a sequence of them, ``grad_tensors`` their gradients (None for one-element
    outputs): the sum of their backward passes, walked once. With ``create_graph=True`` the gradients are
    recorded, so ``.grad`` becomes a Tensor that can be differentiated again; ``retain_graph`` defaults to
    `create_graph`. With ``inputs`` (tensors, leaves or computed) only those get a ``.grad``.
    ``t.backward(...)`` is ``backward(t, ...)``.
    """
    roots = _as_tensor_list(tensors, "backward(): tensors")
    if grad_tensors is None:
        grad_tensors = [None] * len(roots)
    elif isinstance(grad_tensors, (list, tuple)):
        grad_tensors = list(grad_tensors)
    else:
        grad_tensors = [grad_tensors]
    if len(grad_tensors) != len(roots):
        raise ValueError(f"backward(): got {len(grad_tensors)} gradients for {len(roots)} tensors")
    retain = create_graph if retain_graph is None else bool(retain_graph)
    for root in roots:
        if not root._requires_grad:
            raise _no_grad_error()
    seeds = [_seed(root, gradient, create_graph) for root, gradient in zip(roots, grad_tensors)]
    targets = None
    if inputs is not None:
        targets = _as_tensor_list(inputs, "backward(): inputs")
        for position, target in enumerate(targets):
            if not target._requires_grad:
                raise RuntimeError(f"backward(): input {position} (shape {target.shape}) does not require grad")
    walk = _Walk(roots, seeds, retain, create_graph, targets, accumulate=targets is None)
    walk.run()
    for target, value in walk.captured.items():  # with inputs=, they get what was captured for them
        walk._accumulate(target, value)


def grad(
    outputs: Any,
    inputs: Any,
    grad_outputs: Any = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    allow_unused: bool = False,
) -> tuple[Any, ...]:
    """The gradients of `outputs` with respect to `inputs`, returned as Tensors: ``torch.autograd.grad``.

    ``.grad`` is left alone. `outputs` and `inputs` are Tensors or sequences of them (inputs may be leaves or
    computed tensors); `grad_outputs` gives each output's gradient (None for a one-element output). With
    ``create_graph=True`` the results are themselves recorded, so they can be differentiated again, to any
    order; ``retain_graph`` defaults to `create_graph`. An input the outputs do not depend on is an error, or
    None in the result with ``allow_unused=True``::

        x = Tensor([1.0, 2.0], requires_grad=True)
        (dx,) = tinygrad_nn.grad((x ** 3).sum(), x, create_graph=True)    # 3 x^2
        (ddx,) = tinygrad_nn.grad(dx.sum(), x)                             # 6 x
    """
    roots = _as_tensor_list(outputs, "grad(): outputs")
    targets = _as_tensor_list(inputs, "grad(): inputs")
    for position, target in enumerate(targets):
        if not target._requires_grad:
            raise RuntimeError(
                f"grad(): input {position} (shape {target.shape}) does not require grad, so nothing can be "
                "differentiated with respect to it; create it with requires_grad=True"
            )
    if grad_outputs is None:
        grad_outputs = [None] * len(roots)
    elif isinstance(grad_outputs, (Tensor, np.ndarray)):
        grad_outputs = [grad_outputs]
    grad_outputs = list(grad_outputs)
    if len(grad_outputs) != len(roots):
        raise ValueError(f"grad(): got {len(grad_outputs)} grad_outputs for {len(roots)} outputs")
    for position, root in enumerate(roots):
        if not root._requires_grad:
            raise RuntimeError(
                f"grad(): output {position} (shape {root.shape}) does not require grad: it was not computed "
                "from a tensor that requires grad, or was computed inside no_grad()"
            )
    retain = create_graph if retain_graph is None else bool(retain_graph)
    seeds = [
        _seed(root, gradient, create_graph, position)
        for position, (root, gradient) in enumerate(zip(roots, grad_outputs))
    ]
    walk = _Walk(roots, seeds, retain, create_graph, targets, accumulate=False)
    walk.run()
    results = []
    for position, target in enumerate(targets):
        value = walk.captured.get(target)
        if value is None:
            if not allow_unused:
                raise RuntimeError(
                    f"grad(): input {position} (shape {target.shape}) was not used to compute the outputs, so it has "
                    "no gradient; pass allow_unused=True to get None for it"
                )
            results.append(None)
        elif isinstance(value, Tensor):
            results.append(value)
        else:  # a copy: the walk's arrays may be views of one another, or of a seed
            results.append(_constant_tensor(np.array(value, copy=True)))
    return tuple(results)
