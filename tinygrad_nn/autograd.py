"""The autograd engine: `Function` (the node of the graph), the backward walk, grad mode and anomaly mode.

How the graph is recorded
-------------------------
Every differentiable operation is a `Function` subclass with a static ``forward(ctx, *arrays)`` and a static
``backward(ctx, *grads)`` on plain ndarrays. ``MyOp.apply(*inputs)`` creates one instance of the class, the
*node* (PyTorch calls it ``grad_fn``; here it is also the ``ctx`` that forward and backward receive), runs
forward and wraps the result in a `Tensor` that points at the node.

A node's ``parents`` hold one *edge* per input, in order: the input's own node when the input was computed, the
input tensor itself when it is a leaf that requires grad, or None when no gradient flows there. Nodes never hold
the intermediate tensors, so an intermediate tensor (and its array) lives only as long as the user keeps it or a
node saved its array for backward.

How backward walks it
---------------------
`run_backward` counts, for each node reachable from the output, how many edges lead into it (one iterative pass,
no recursion, so a chain of 100,000 ops is fine), then visits the nodes from the output towards the leaves, each
once all its consumers have delivered their gradients. Each node's backward gets
the gradient of its output; what it returns is checked and reduced to each input's shape and dtype *here, in one
place*: primitives return gradients in the broadcast shape of their output and never unbroadcast themselves.
Leaf gradients accumulate in ``leaf.grad`` (as in PyTorch, until zeroed); intermediate gradients are dropped as
soon as they have been passed on. Unless ``retain_graph=True``, each node's saved arrays are freed right after
its backward ran; the skeleton of nodes stays, so the graph can still be drawn, but a second backward through it
raises an error.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

import numpy as np

__all__ = [
    "AnomalyError",
    "BackwardError",
    "Function",
    "detect_anomaly",
    "enable_grad",
    "is_grad_enabled",
    "no_grad",
    "retain_grads",
    "set_grad_enabled",
]

# Read on every op, so they are plain module globals (the fastest lookup Python has).
_grad_enabled = True
_anomaly_enabled = False
_retain_grads = False
# The module call the current op happens in, as a chain of (module, enclosing scope) tuples; set by
# nn.Module.__call__ and read by draw_graph to draw modules as clusters. None outside any module.
_scope: tuple | None = None
# The list that `trace_ops` fills, or None (almost always).
_tracer: list | None = None

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))

# Function.apply builds Tensors and the walk tells leaves from nodes, while Tensor's operators call Functions, so
# the two modules need each other. tensor.py imports this one and, once its class exists, sets this name.
Tensor: Any = None


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
        global _grad_enabled
        self._previous = _grad_enabled
        _grad_enabled = self._mode

    def __exit__(self, *exc_info: object) -> None:
        global _grad_enabled
        _grad_enabled = self._previous

    def __call__(self, func: _F) -> _F:
        mode = self._mode

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with set_grad_enabled(mode):
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


class no_grad(_GradMode):
    """Turn off graph recording, as a context manager or a decorator.

    Inside it ops compute their values but record nothing, so their results have ``requires_grad=False``.
    Use it for evaluation and for updates of parameters::

        with tinygrad_nn.no_grad():
            prediction = model(x)

        @tinygrad_nn.no_grad()
        def evaluate(model, x): ...
    """

    _mode = False


class enable_grad(_GradMode):
    """Turn graph recording back on inside a `no_grad` block (context manager or decorator)."""

    _mode = True


class set_grad_enabled(_GradMode):
    """Set graph recording on or off: a function call, a context manager or a decorator, as in PyTorch.

    ``set_grad_enabled(False)`` switches recording off at once; used with ``with``, the previous mode comes back
    at the end of the block.
    """

    def __init__(self, mode: bool) -> None:
        global _grad_enabled
        self._mode = bool(mode)
        self._previous = _grad_enabled
        _grad_enabled = self._mode

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc_info: object) -> None:
        global _grad_enabled
        _grad_enabled = self._previous

    def __call__(self, func: _F) -> _F:
        """Decorate `func` so that it runs with recording set to this mode."""
        # Used as a decorator, the call in __init__ must not change the mode at definition time.
        global _grad_enabled
        _grad_enabled = self._previous
        return super().__call__(func)


def is_grad_enabled() -> bool:
    """Return True when ops record the graph (that is, outside `no_grad`)."""
    return _grad_enabled


# --------------------------------------------------------------------------------------------------------------
# Anomaly mode
# --------------------------------------------------------------------------------------------------------------


class detect_anomaly:
    """Raise `AnomalyError` at the first op whose forward or backward produces NaN or inf.

    The error names the op and the file and line of your code that created it. Numpy's own warnings about
    invalid values are silenced inside the block, since the error says more. It makes every op slower (it
    checks every array and records where each op was called), so use it to hunt a NaN, not to train::

        with tinygrad_nn.detect_anomaly():
            loss = model(x).log().sum()
            loss.backward()
    """

    def __enter__(self) -> detect_anomaly:
        global _anomaly_enabled
        self._previous = _anomaly_enabled
        _anomaly_enabled = True
        return self

    def __exit__(self, *exc_info: object) -> None:
        global _anomaly_enabled
        _anomaly_enabled = self._previous


class retain_grads:
    """Inside it, backward keeps the gradient of every computed tensor, on its node: ``t.grad_fn.grad``.

    Leaves always keep theirs in ``.grad``; intermediate gradients are normally dropped as soon as they have been
    passed on. Keeping them costs memory, so this is for looking (`draw_graph` shows their norms), not for
    training::

        with tinygrad_nn.retain_grads():
            loss.backward()
        tinygrad_nn.draw_graph(loss, model)
    """

    def __enter__(self) -> retain_grads:
        global _retain_grads
        self._previous = _retain_grads
        _retain_grads = True
        return self

    def __exit__(self, *exc_info: object) -> None:
        global _retain_grads
        _retain_grads = self._previous


class OpRecord(NamedTuple):
    """One op run inside `trace_ops`: the Function class, its inputs and options as given, and its output(s)."""

    function: type
    inputs: tuple
    options: dict
    outputs: Any  # a Tensor, or a tuple of Tensors for an op with several outputs


class trace_ops:
    """Record every op this thread runs inside the block, in order, as `OpRecord` entries of a list.

    Recording happens in or out of `no_grad`; inputs are kept as given (the Tensors themselves), so an input is
    linked to the op that made it by identity. It is how an exporter reads a model's forward pass::

        with trace_ops() as records:
            model(x)
        [record.function.__name__ for record in records]     # ['Linear', 'ReLU', 'Linear']
    """

    def __enter__(self) -> list[OpRecord]:
        global _tracer
        self._previous = _tracer
        self.records: list[OpRecord] = []
        _tracer = self.records
        return self.records

    def __exit__(self, *exc_info: object) -> None:
        global _tracer
        _tracer = self._previous


def _user_frame() -> str:
    """File and line of the innermost caller outside this package, as ``path:line``."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
    if frame is None:
        return "<unknown>"
    return f"{frame.f_code.co_filename}:{frame.f_lineno}"


def _nonfinite_summary(array: np.ndarray) -> str | None:
    """Describe the NaN or inf values of a float array, or None when all are finite."""
    if array.dtype.kind != "f" or np.isfinite(array).all():
        return None
    nans = int(np.isnan(array).sum())
    infs = int(np.isinf(array).sum())
    parts = [f"{nans} NaN" if nans else "", f"{infs} inf" if infs else ""]
    first = tuple(int(i) for i in np.argwhere(~np.isfinite(array))[0])
    return f"{' and '.join(p for p in parts if p)} of {array.size} values (first at index {first})"


# --------------------------------------------------------------------------------------------------------------
# Function: the node of the graph
# --------------------------------------------------------------------------------------------------------------


class Function:
    """An operation with its forward and backward on ndarrays; subclass it to write your own op.

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
    """

    # Built-in primitives declare their own empty __slots__; a user's subclass gets a __dict__, so its ctx can
    # carry any attribute (ctx.scale = 2.0), as in PyTorch. `shape` and `dtype` describe the output (None for a
    # node with several outputs, whose `outputs` holds one _OutputRef each); `scope` is the module call the op
    # ran in (only set inside one); `trace` is where it was called (only set in anomaly mode); `grad` is the
    # gradient of the output (only kept inside `retain_grads`).
    __slots__ = ("__weakref__", "_saved", "dtype", "grad", "outputs", "parents", "scope", "shape", "trace")

    # Built-in backwards never return an array that something else holds (only the upstream gradient itself
    # or views of it, which the engine recognises), so their results can become a leaf's .grad without a copy.
    # A user's backward might return a saved array, so its results are copied first.
    _fresh_grads = False

    @staticmethod
    def forward(ctx: Function, *arrays: Any, **options: Any) -> np.ndarray | tuple[np.ndarray, ...]:
        """Compute the op's output from ndarrays; override in a subclass."""
        raise NotImplementedError(f"{type(ctx).__name__} must define a static forward(ctx, *arrays)")

    @staticmethod
    def backward(ctx: Function, *grads: np.ndarray) -> Any:
        """Return the gradient of each input from the gradient of each output; override in a subclass."""
        raise NotImplementedError(f"{type(ctx).__name__} must define a static backward(ctx, *grads)")

    def save_for_backward(self, *arrays: Any) -> None:
        """Keep arrays for backward; they are freed after backward unless the graph is retained."""
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
        if record and _grad_enabled:
            ctx.parents = edges
            if _scope is not None:
                ctx.scope = _scope
        else:
            record = False
            ctx.parents = (None,) * count
        ctx._saved = ()
        if _anomaly_enabled:
            ctx.trace = _user_frame()
            out = _forward_with_anomaly_checks(cls, ctx, arrays, options)
        else:
            out = cls.forward(ctx, *arrays, **options)
        if type(out) is tuple:
            results = _wrap_outputs(cls, ctx, out, record)
            if _tracer is not None:
                _tracer.append(OpRecord(cls, inputs, options, results))
            return results
        if type(out) is not np.ndarray:  # numpy scalars (0-d results), or whatever a user's forward returned
            out = np.asarray(out) if isinstance(out, np.generic) else _as_output_array(cls, out)
        result = _new_tensor(Tensor)
        result.data = out
        result.grad = None
        if record and out.dtype.kind == "f":
            result._requires_grad = True
            result._node = ctx
            ctx.shape = out.shape
            ctx.dtype = out.dtype
        else:
            result._requires_grad = False
            result._node = None
        if _tracer is not None:
            _tracer.append(OpRecord(cls, inputs, options, result))
        return result


_new_tensor = object.__new__


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


def _wrap_outputs(cls: type, ctx: Function, outs: tuple, record: bool) -> tuple:
    results = []
    refs = []
    for index, out in enumerate(outs):
        if type(out) is not np.ndarray:
            out = _as_output_array(cls, out)
        ref = _OutputRef(ctx, index, out.shape, out.dtype)
        refs.append(ref)
        result = _new_tensor(Tensor)
        result.data = out
        result.grad = None
        result._requires_grad = record and out.dtype.kind == "f"
        result._node = ref if result._requires_grad else None
        results.append(result)
    if record:
        ctx.outputs = tuple(refs)
        ctx.shape = None
        ctx.dtype = None
    return tuple(results)


def _forward_with_anomaly_checks(cls: type, ctx: Function, arrays: list, options: dict) -> Any:
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
# The backward walk
# --------------------------------------------------------------------------------------------------------------


def _released_error(node: Function) -> RuntimeError:
    return RuntimeError(
        f"backward() reached {type(node).__name__}, whose saved arrays an earlier backward() already freed: "
        "the graph can be walked once. Pass retain_graph=True to the earlier backward() to walk it again"
    )


def _count_consumers(root: Function, check_released: bool = True) -> dict[Function, int]:
    """For every node reachable from `root`, how many edges lead into it from other reachable nodes.

    A node's backward may run once that many gradients have been delivered to it (HIPS autograd's child counts):
    an order in which every node comes after all of its consumers, found without recursion. It also checks
    that no reachable node was released by an earlier backward, before any gradient is written.
    """
    if check_released and root._saved is None:
        raise _released_error(root)
    pending = {root: 0}
    stack = [root]
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

    The walk visits a node once every node that consumes its output has passed its gradient on (consumer
    counts, a last-in-first-out stack of ready nodes, each node's parents in input order), so this is the order a
    picture of the backward pass should step through. Tells nothing about gradients: nodes that would receive
    none are still listed, as the walk still visits them. A leaf root gives an empty list.
    """
    start = root._node
    if start is None:
        return []
    if start.__class__ is _OutputRef:
        start = start.node
    pending = _count_consumers(start, check_released=False)
    order = []
    ready = [start]
    while ready:
        node = ready.pop()
        order.append(node)
        for edge in node.parents:
            if edge is None or isinstance(edge, Tensor):
                continue
            consumer_of = edge.node if edge.__class__ is _OutputRef else edge
            pending[consumer_of] -= 1
            if pending[consumer_of] == 0:
                ready.append(consumer_of)
    return order


def _reduce_to_shape(node: Function, position: int, grad: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum a gradient in a broadcast shape down to `shape`: the one place where broadcasting is undone."""
    extra = grad.ndim - len(shape)
    if extra >= 0 and all(g == s or s == 1 for g, s in zip(grad.shape[extra:], shape)):
        axes = tuple(range(extra)) + tuple(
            extra + i for i, size in enumerate(shape) if size == 1 and grad.shape[extra + i] != 1
        )
        # Only a sum makes a new array; a reshape alone is a view of `grad` (the caller must not own it).
        return grad.sum(axis=axes).reshape(shape) if axes else grad.reshape(shape)
    raise _BackwardShapeError(
        f"{type(node).__name__}.backward returned a gradient of shape {grad.shape} for input {position}, "
        f"whose shape is {shape}"
    )


def _as_gradient(node: Function, position: int, grad: Any, dtype: np.dtype) -> np.ndarray:
    """Check a gradient's type and dtype; cast a float gradient to the input's float dtype."""
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
    return array.astype(dtype, copy=False) if array.dtype != dtype else array


def _seed(root: Tensor, gradient: Any) -> np.ndarray:
    """The gradient backward starts from: one for a one-element output, else the caller's (copied)."""
    data = root.data
    if gradient is None:
        if data.size != 1:
            raise RuntimeError(
                f"backward() without a gradient needs a single-value output, but this tensor has shape {data.shape}; "
                "call .sum() or .mean() first, or pass gradient= an array of that shape"
            )
        one = np.array(1, dtype=data.dtype)  # cheaper than np.ones, which is Python-level
        return one.reshape(data.shape) if data.ndim else one
    seed = gradient.data if isinstance(gradient, Tensor) else gradient
    seed = np.array(seed, dtype=data.dtype)  # a copy: the walk may hand it to a leaf as its .grad
    if seed.shape != data.shape:
        raise ValueError(f"backward() got a gradient of shape {seed.shape} for a tensor of shape {data.shape}")
    return seed


def run_backward(root: Tensor, gradient: Any = None, retain_graph: bool = False) -> None:
    """Accumulate d(root)/d(leaf) into every leaf's ``.grad``; what ``Tensor.backward`` calls."""
    if not root._requires_grad:
        raise RuntimeError(
            "backward() called on a tensor that does not require grad: no tensor it was computed from has "
            "requires_grad=True, or it was computed inside no_grad()"
        )
    seed = _seed(root, gradient)
    start = root._node
    if start is None:  # the root is itself a leaf
        _accumulate_leaf(root, seed, owned=True)
        return
    grads: dict[Function, Any] = {}
    if start.__class__ is _OutputRef:
        grads[start.node] = [None] * len(start.node.outputs)
        grads[start.node][start.index] = seed
        start = start.node
    else:
        grads[start] = seed
    pending = _count_consumers(start)
    anomaly = _anomaly_enabled
    keep = _retain_grads
    ready = [start]
    while ready:
        node = ready.pop()
        upstream = grads.pop(node, None)
        parents = node.parents
        if upstream is None:  # nothing reached this node (every consumer returned None for it)
            returned = (None,) * len(parents)
        else:
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
                raise BackwardError(
                    f"{type(node).__name__}.backward returned {len(returned)} gradient(s) for {len(parents)} "
                    "input(s) of forward; return one per input (None for an input that needs none)"
                )
        fresh = node._fresh_grads
        position = -1
        for edge in parents:
            position += 1
            if edge is None:
                continue
            grad = returned[position]
            leaf = isinstance(edge, Tensor)
            if grad is not None:
                if leaf:
                    target_shape = edge.data.shape
                    target_dtype = edge.data.dtype
                else:
                    target_shape = edge.shape
                    target_dtype = edge.dtype
                # May this array become a leaf's .grad as it is? Only if nothing else can hold it.
                owned = fresh and grad is not upstream
                if type(grad) is not np.ndarray or (grad.dtype is not target_dtype and grad.dtype != target_dtype):
                    converted = _as_gradient(node, position, grad, target_dtype)
                    owned = owned or converted is not grad
                    grad = converted
                if grad.shape != target_shape:
                    reduced = _reduce_to_shape(node, position, grad, target_shape)
                    owned = (owned and grad.base is None) or reduced.size != grad.size
                    grad = reduced
                elif owned and grad.base is not None:
                    owned = False
                if anomaly:
                    _check_gradient(node, position, grad)
                if leaf:  # accumulate into .grad; a new .grad never shares memory with anything else
                    if edge.grad is None:
                        edge.grad = grad if owned else grad.copy()
                    else:
                        edge.grad += grad
                    continue
                if edge.__class__ is _OutputRef:
                    slots = grads.get(edge.node)
                    if slots is None:
                        slots = grads[edge.node] = [None] * len(edge.node.outputs)
                    previous = slots[edge.index]
                    slots[edge.index] = grad if previous is None else previous + grad
                else:
                    previous = grads.get(edge)
                    grads[edge] = grad if previous is None else previous + grad
            elif leaf:
                continue
            consumer_of = edge.node if edge.__class__ is _OutputRef else edge
            count = pending[consumer_of] - 1
            pending[consumer_of] = count
            if count == 0:
                ready.append(consumer_of)
        if not retain_graph:
            node._saved = None


def _call_backward(node: Function, upstream: list, anomaly: bool) -> Any:
    if not anomaly:
        return node.backward(node, *upstream)
    with np.errstate(all="ignore"):
        return node.backward(node, *upstream)


def _check_gradient(node: Function, position: int, grad: np.ndarray) -> None:
    problem = _nonfinite_summary(grad)
    if problem:
        raise AnomalyError(
            f"{type(node).__name__} backward produced {problem} in the gradient of its input {position}; "
            f"the op was called at {getattr(node, 'trace', '<unknown>')}"
        )


def _accumulate_leaf(leaf: Tensor, grad: np.ndarray, owned: bool) -> None:
    """Add `grad` to ``leaf.grad``; a new .grad never shares memory with anything else."""
    if leaf.grad is None:
        leaf.grad = grad if owned else grad.copy()
    else:
        leaf.grad += grad
