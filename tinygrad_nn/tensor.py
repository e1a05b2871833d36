"""`Tensor`: an ndarray, its gradient, and the node of the graph that computed it.

Tensor is only the front door: every operator calls a primitive from `functions` through ``Function.apply``,
which does the recording. See `autograd` for how the graph is kept and walked.

Methods take numpy's argument names (``axis``, ``keepdims``) and PyTorch's (``dim``, ``keepdim``) alike.
"""

from __future__ import annotations

import math
import warnings
import weakref
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np

from . import autograd
from . import functions as F  # noqa: N812 - short, like torch.nn.functional as F
from .autograd import Function, RemovableHandle, run_backward
from .dtypes import DTypeLike, as_array, get_default_dtype

__all__ = ["Tensor", "cat", "concatenate", "maximum", "minimum", "stack", "where"]

Axis = int | tuple[int, ...] | None

_UNSET: Any = object()


class MinMax(NamedTuple):
    """What ``t.max(dim=...)`` and ``t.min(dim=...)`` return, as PyTorch's ``torch.return_types.max``."""

    values: Tensor
    indices: Tensor


def _axis(function: str, axis: Any, dim: Any, default: Any = None) -> Any:
    """Numpy's `axis` or PyTorch's `dim`: either spelling, not both (`default` when neither is given)."""
    if dim is _UNSET:
        return default if axis is _UNSET else axis
    if axis is not None and axis is not _UNSET:
        raise TypeError(f"{function}() got both axis={axis!r} and dim={dim!r}; they are two names for one argument")
    return tuple(dim) if isinstance(dim, list) else dim


def _keepdims(function: str, keepdims: Any, keepdim: Any) -> bool:
    """Numpy's `keepdims` or PyTorch's `keepdim`: either spelling, not both."""
    if keepdim is _UNSET:
        return bool(keepdims)
    if keepdims:
        raise TypeError(f"{function}() got both keepdims and keepdim; they are two names for one argument")
    return bool(keepdim)


def _sizes(function: str, sizes: tuple) -> tuple:
    """``f(2, 3)`` or ``f((2, 3))``, PyTorch's two spellings of a shape argument."""
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = tuple(sizes[0])
    for size in sizes:
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)):
            raise TypeError(f"{function}() takes whole numbers, got {size!r} in {sizes}")
    return tuple(int(size) for size in sizes)


def _unwrap_index(index: Any) -> Any:
    """Turn Tensors and lists inside an index into ndarrays, so numpy indexes with them."""
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, list):
        return np.asarray([i.data if isinstance(i, Tensor) else i for i in index])
    if type(index) is tuple:
        return tuple(_unwrap_index(part) for part in index)
    return index


class Tensor:
    """An n-dimensional array that records the operations applied to it, for reverse-mode autograd.

    ``Tensor(data, requires_grad=False, dtype=None)`` takes a number, a (nested) list or an ndarray. Python
    numbers and lists become the default float dtype (float64, see `set_default_dtype`); ndarrays keep theirs.
    An ndarray is shared, not copied, unless a dtype conversion or ``requires_grad=True`` asks for a copy (a
    leaf that an optimizer will update must not alias your array). Only floating-point tensors can require grad.

    >>> x = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    >>> y = (x * x).sum()
    >>> y.backward()
    >>> x.grad
    array([2., 4., 6.])
    """

    __slots__ = ("__weakref__", "_grad", "_hooks", "_modified_seq", "_node", "_post_hooks", "_requires_grad", "data")

    # Make numpy hand `ndarray + Tensor` (and every other mixed operator) to Tensor's reflected methods instead
    # of turning the Tensor into an array and losing the graph.
    __array_ufunc__ = None

    def __init__(self, data: Any, requires_grad: bool = False, dtype: DTypeLike | None = None) -> None:
        if isinstance(data, Tensor):
            data = data.data
        array = as_array(data, dtype)
        if requires_grad:
            _check_can_require_grad(array.dtype)
            if array is data or (isinstance(data, np.ndarray) and np.may_share_memory(array, data)):
                array = array.copy()
        self.data: np.ndarray = array
        self._grad: Any = None
        self._requires_grad = bool(requires_grad)
        self._node: Any = None

    # ---------------------------------------------------------------------------------------------------------
    # Attributes
    # ---------------------------------------------------------------------------------------------------------

    @property
    def requires_grad(self) -> bool:
        """Whether gradients flow to this tensor (set on leaves; computed tensors inherit it)."""
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, flag: bool) -> None:
        self.requires_grad_(flag)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Set `requires_grad` on a leaf in place and return the tensor (as in PyTorch)."""
        if self._node is not None and not requires_grad:
            raise RuntimeError(
                "requires_grad can only be switched off on a leaf tensor; use .detach() for a computed one"
            )
        if requires_grad:
            _check_can_require_grad(self.data.dtype)
        self._requires_grad = bool(requires_grad) or self._node is not None
        return self

    @property
    def grad(self) -> Any:
        """The gradient accumulated by backward: an ndarray of this tensor's shape and dtype, or None.

        After ``backward(create_graph=True)`` it is a Tensor instead, with the graph that computed it, so that it
        can be differentiated again. Only leaves get one (and tensors that called `retain_grad`); reading it on
        another computed tensor warns, as in PyTorch. Assigning checks the shape and dtype.
        """
        grad = self._grad
        if grad is None and self._node is not None and not self.retains_grad:
            warnings.warn(
                "the .grad of a computed (non-leaf) tensor is not kept by backward(), so it is None; call "
                ".retain_grad() on the tensor before backward() to keep it, or run backward() inside "
                "tinygrad_nn.retain_grads() to keep every intermediate gradient (for pictures)",
                UserWarning,
                stacklevel=2,
            )
        return grad

    @grad.setter
    def grad(self, value: Any) -> None:
        if value is not None:
            if not isinstance(value, (np.ndarray, Tensor)):
                raise TypeError(f"a tensor's .grad must be an ndarray, a Tensor or None, got {type(value).__name__}")
            if value.shape != self.data.shape or value.dtype != self.data.dtype:
                raise ValueError(
                    f"assigned .grad has shape {tuple(value.shape)} and dtype {value.dtype}, but the tensor has "
                    f"shape {self.data.shape} and dtype {self.data.dtype}; they must match"
                )
        self._grad = value

    @property
    def retains_grad(self) -> bool:
        """True for a computed tensor that keeps its gradient in ``.grad`` (see `retain_grad`)."""
        node = self._node
        hooks = getattr(node, "_hooks", None) if node is not None else None
        return bool(hooks) and any(getattr(hook, "_retains", lambda: None)() is self for _, hook in hooks)

    def retain_grad(self) -> None:
        """Keep this computed tensor's gradient in ``.grad`` after backward (leaves always keep theirs).

        As in PyTorch, the gradient accumulates over backward calls until you set ``.grad`` to None.
        """
        if self._node is None:
            if not self._requires_grad:
                raise RuntimeError("retain_grad() on a tensor that does not require grad: it will get no gradient")
            return
        if self.retains_grad:
            return
        target = weakref.ref(self)

        def keep(grad: Any) -> None:
            tensor = target()
            if tensor is None:
                return
            if tensor._grad is None:
                tensor._grad = grad.copy() if isinstance(grad, np.ndarray) else grad
            else:
                tensor._grad = tensor._grad + grad

        keep._retains = target  # type: ignore[attr-defined]
        self._register_node_hook(keep)

    def register_hook(self, hook: Any) -> RemovableHandle:
        """Call ``hook(grad)`` whenever backward computes this tensor's gradient; returns a removable handle.

        The hook may return a replacement gradient (same shape), which is what flows on (and, for a leaf, what
        ``.grad`` accumulates); returning None keeps the gradient. Hooks run in the order registered::

            handle = x.register_hook(lambda grad: print("x got", grad))
            handle.remove()
        """
        if not callable(hook):
            raise TypeError(f"register_hook takes a function of the gradient, got {type(hook).__name__}")
        if not self._requires_grad:
            raise RuntimeError(
                "cannot register a hook on a tensor that does not require grad: no gradient will ever reach it"
            )
        if self._node is None:
            return autograd._add_tensor_hook(autograd._hook_list(self), hook)
        return self._register_node_hook(hook)

    def register_post_accumulate_grad_hook(self, hook: Any) -> RemovableHandle:
        """Call ``hook(tensor)`` each time backward has finished accumulating into this leaf's ``.grad``.

        PyTorch's hook of the same name: once per backward, after the gradient is in ``.grad`` (a gradient monitor
        reads it there). Leaves only; it keeps backward on its fast path. Returns a removable handle.
        """
        if not callable(hook):
            raise TypeError(f"register_post_accumulate_grad_hook takes a function, got {type(hook).__name__}")
        if self._node is not None:
            raise RuntimeError(
                "post-accumulate-grad hooks are for leaf tensors (parameters), whose .grad backward accumulates; "
                "for a computed tensor use register_hook"
            )
        if not self._requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that does not require grad: it gets no .grad")
        return autograd._add_post_accumulate_hook(self, hook)

    def _register_node_hook(self, hook: Any) -> RemovableHandle:
        node = self._node
        index = None
        if isinstance(node, autograd._OutputRef):
            index, node = node.index, node.node
        return autograd._add_tensor_hook(autograd._hook_list(node), (index, hook))

    @property
    def is_leaf(self) -> bool:
        """True when no recorded op computed this tensor (it was created by you, or under no_grad)."""
        return self._node is None

    @property
    def grad_fn(self) -> Function | None:
        """The node of the graph that computed this tensor (a `Function` instance), or None for a leaf."""
        node = self._node
        return getattr(node, "node", node)  # for an output of a multi-output op, the op's node itself

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape, as numpy gives it."""
        return self.data.shape

    @property
    def ndim(self) -> int:
        """The number of axes."""
        return self.data.ndim

    @property
    def size(self) -> int:
        """The number of elements."""
        return self.data.size

    @property
    def dtype(self) -> np.dtype:
        """The numpy dtype of the data (and of the gradient)."""
        return self.data.dtype

    @property
    def T(self) -> Tensor:
        """The tensor with its axes reversed (numpy's ``.T``)."""
        return F.Transpose.apply(self)

    def item(self) -> Any:
        """The single value of a one-element tensor, as a Python number."""
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, this one has shape {self.shape}")
        return self.data.item()

    def tolist(self) -> Any:
        """The data as nested Python lists."""
        return self.data.tolist()

    def numpy(self) -> np.ndarray:
        """The underlying ndarray (shared, not copied, as ``torch.Tensor.numpy`` shares memory)."""
        return self.data

    def detach(self) -> Tensor:
        """A new leaf tensor sharing this one's data, outside the graph (no grad)."""
        out = Tensor.__new__(Tensor)
        out.data = self.data
        out._grad = None
        out._requires_grad = False
        out._node = None
        return out

    def astype(self, dtype: DTypeLike) -> Tensor:
        """The tensor converted to `dtype`: differentiable between float types.

        A cast to an integer or bool dtype is an explicit way out of the graph: the result does not require grad,
        as with PyTorch's ``.long()`` and ``.bool()``. A cast to a complex, object or other non-real dtype of a
        tensor that requires grad (with grad mode on) is a TypeError, as any other op whose result could not carry
        the gradient; ``.detach()`` first if no gradient is wanted.
        """
        target = np.dtype(dtype)
        if target == self.data.dtype:
            return self
        if target.kind not in "fiub" and self._requires_grad and autograd._local.state.grad_enabled:
            raise TypeError(
                f"astype: the result has dtype {target}, which cannot carry a gradient, from a tensor that requires "
                "grad; tinygrad_nn differentiates real floating-point tensors only (.detach() the tensor first if no "
                "gradient is wanted)"
            )
        return F.Cast.apply(self, dtype=target)

    def zero_grad(self) -> None:
        """Forget the accumulated gradient (set ``.grad`` to None)."""
        self.grad = None

    def __array__(self, dtype: DTypeLike | None = None, copy: bool | None = None) -> np.ndarray:
        # numpy 2's protocol: copy=True always copies, copy=False never does (an error if it would have to).
        return np.array(self.data, dtype=dtype, copy=copy)

    def __len__(self) -> int:
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self.data)

    def __iter__(self) -> Iterator[Tensor]:
        if self.data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(len(self.data)))

    def __bool__(self) -> bool:
        return bool(self.data)

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __repr__(self) -> str:
        prefix = type(self).__name__ + "("
        body = np.array2string(self.data, separator=", ", prefix=prefix)
        extras = []
        if self.data.dtype != get_default_dtype():
            extras.append(f"dtype={self.data.dtype}")
        if self._node is not None:
            extras.append(f"grad_fn={type(self.grad_fn).__name__}")
        elif self._requires_grad:
            extras.append("requires_grad=True")
        return prefix + body + "".join(", " + e for e in extras) + ")"

    # ---------------------------------------------------------------------------------------------------------
    # Autograd
    # ---------------------------------------------------------------------------------------------------------

    def backward(
        self, gradient: Any = None, retain_graph: bool | None = None, create_graph: bool = False, inputs: Any = None
    ) -> None:
        """Compute the gradient of this tensor with respect to every leaf that requires grad.

        A one-element tensor (a loss) needs no `gradient`; otherwise pass the gradient of some scalar with
        respect to this tensor, an array of its shape. Results *accumulate* into each leaf's ``.grad`` until
        you zero it (``optimizer.zero_grad()``), as in PyTorch. The graph's saved arrays are freed afterwards,
        so a second backward through it raises an error unless the first had ``retain_graph=True``.

        With ``create_graph=True`` the gradients are themselves recorded: ``.grad`` becomes a Tensor that can be
        differentiated again (``retain_graph`` then defaults to True). With ``inputs`` (a tensor or a list),
        only those get a ``.grad``. To get gradients without touching ``.grad``, use `tinygrad_nn.grad`.
        """
        run_backward(self, gradient, retain_graph, create_graph, inputs)

    # ---------------------------------------------------------------------------------------------------------
    # Arithmetic operators
    # ---------------------------------------------------------------------------------------------------------

    def __add__(self, other: Any) -> Tensor:
        return F.Add.apply(self, other)

    def __radd__(self, other: Any) -> Tensor:
        return F.Add.apply(other, self)

    def __sub__(self, other: Any) -> Tensor:
        return F.Sub.apply(self, other)

    def __rsub__(self, other: Any) -> Tensor:
        return F.Sub.apply(other, self)

    def __mul__(self, other: Any) -> Tensor:
        return F.Mul.apply(self, other)

    def __rmul__(self, other: Any) -> Tensor:
        return F.Mul.apply(other, self)

    def __truediv__(self, other: Any) -> Tensor:
        return F.Div.apply(self, other)

    def __rtruediv__(self, other: Any) -> Tensor:
        return F.Div.apply(other, self)

    def __pow__(self, exponent: Any) -> Tensor:
        return F.Pow.apply(self, exponent)

    def __rpow__(self, base: Any) -> Tensor:
        return F.Pow.apply(base, self)

    def __matmul__(self, other: Any) -> Tensor:
        return F.MatMul.apply(self, other)

    def __rmatmul__(self, other: Any) -> Tensor:
        return F.MatMul.apply(other, self)

    def dot(self, other: Any) -> Tensor:
        """The product of vectors or matrices, as ``ndarray.dot`` for 1-D and 2-D operands (``@`` for more axes)."""
        other_ndim = other.ndim if isinstance(other, (Tensor, np.ndarray)) else np.ndim(other)
        if self.data.ndim > 2 or other_ndim > 2:
            raise ValueError(
                f"dot: shapes {self.shape} and {np.shape(other)}: dot takes 1-D and 2-D tensors (numpy's dot of "
                "more axes is not matmul's); use @ for batches of matrices"
            )
        return F.MatMul.apply(self, other)

    def __neg__(self) -> Tensor:
        return F.Neg.apply(self)

    def __pos__(self) -> Tensor:
        return self

    def __abs__(self) -> Tensor:
        return F.Abs.apply(self)

    # In-place operators. On a leaf that requires grad they are PyTorch's: inside no_grad they change the data in
    # place (the hand-written SGD step ``with no_grad(): w -= lr * w.grad``), and outside it they are an error,
    # since a parameter turned into a computed tensor stops being a parameter. Anywhere else they rebind the name
    # to a new recorded tensor (``h += b`` is ``h = h + b``), as micrograd's do.

    def _in_place(self, other: Any, function: type, symbol: str, update: Any) -> Tensor:
        if self._node is None and self._requires_grad:
            if autograd._local.state.grad_enabled:
                raise RuntimeError(
                    f"`{symbol}` on a leaf tensor that requires grad (a parameter) would turn it into a computed "
                    f"tensor and lose it as a parameter; update its data instead (`w.data {symbol} ...`, or "
                    f"`with tinygrad_nn.no_grad(): w {symbol} ...`), or let an optimizer do it "
                    "(optim.SGD(params, lr).step())"
                )
            value = other.data if isinstance(other, Tensor) else other
            try:
                update(self.data, value, out=self.data, casting="same_kind")
            except (ValueError, TypeError) as error:
                raise type(error)(f"in-place `{symbol}` on a tensor of shape {self.shape}: {error}") from None
            autograd.note_modified_in_place(self)  # a graph that read the old values must not use the new ones
            return self
        return function.apply(self, other)

    def __iadd__(self, other: Any) -> Tensor:
        return self._in_place(other, F.Add, "+=", np.add)

    def __isub__(self, other: Any) -> Tensor:
        return self._in_place(other, F.Sub, "-=", np.subtract)

    def __imul__(self, other: Any) -> Tensor:
        return self._in_place(other, F.Mul, "*=", np.multiply)

    def __itruediv__(self, other: Any) -> Tensor:
        return self._in_place(other, F.Div, "/=", np.true_divide)

    # Comparisons give boolean tensors outside the graph (they have no gradient), as in numpy and PyTorch.
    # Defining __eq__ removes the default hash, so Tensors hash by identity explicitly.
    __hash__ = object.__hash__

    def __eq__(self, other: Any) -> Tensor:  # type: ignore[override]
        return Tensor(np.equal(self.data, _data(other)))

    def __ne__(self, other: Any) -> Tensor:  # type: ignore[override]
        return Tensor(np.not_equal(self.data, _data(other)))

    def __lt__(self, other: Any) -> Tensor:
        return Tensor(np.less(self.data, _data(other)))

    def __le__(self, other: Any) -> Tensor:
        return Tensor(np.less_equal(self.data, _data(other)))

    def __gt__(self, other: Any) -> Tensor:
        return Tensor(np.greater(self.data, _data(other)))

    def __ge__(self, other: Any) -> Tensor:
        return Tensor(np.greater_equal(self.data, _data(other)))

    # ---------------------------------------------------------------------------------------------------------
    # Elementwise functions
    # ---------------------------------------------------------------------------------------------------------

    def exp(self) -> Tensor:
        """``e ** x``, elementwise."""
        return F.Exp.apply(self)

    def log(self) -> Tensor:
        """Natural logarithm, elementwise."""
        return F.Log.apply(self)

    def sqrt(self) -> Tensor:
        """Square root, elementwise."""
        return F.Sqrt.apply(self)

    def abs(self) -> Tensor:
        """Absolute value, elementwise (gradient 0 at 0)."""
        return F.Abs.apply(self)

    def tanh(self) -> Tensor:
        """Hyperbolic tangent, elementwise."""
        return F.Tanh.apply(self)

    def sigmoid(self) -> Tensor:
        """``1 / (1 + exp(-x))``, elementwise; 0 and 1 at +-800 without overflow warnings."""
        return F.Sigmoid.apply(self)

    def relu(self) -> Tensor:
        """``max(x, 0)``, elementwise (gradient 0 at 0)."""
        return F.ReLU.apply(self)

    def clip(self, min: Any = None, max: Any = None) -> Tensor:
        """Limit values to ``[min, max]`` (either may be None); gradient passes inside the bounds, inclusive."""
        return F.Clip.apply(self, low=min, high=max)

    # ---------------------------------------------------------------------------------------------------------
    # Reductions
    # ---------------------------------------------------------------------------------------------------------

    def sum(self, axis: Axis = None, keepdims: bool = False, *, dim: Any = _UNSET, keepdim: Any = _UNSET) -> Tensor:
        """Sum over `axis` (an int, a tuple, or None for all), as ``ndarray.sum``; `dim`/`keepdim` work too."""
        axis, keepdims = _axis("sum", axis, dim), _keepdims("sum", keepdims, keepdim)
        return F.Sum.apply(self, axis=axis, keepdims=keepdims)

    def mean(self, axis: Axis = None, keepdims: bool = False, *, dim: Any = _UNSET, keepdim: Any = _UNSET) -> Tensor:
        """Mean over `axis` (an int, a tuple, or None for all), as ``ndarray.mean``; `dim`/`keepdim` work too."""
        axis, keepdims = _axis("mean", axis, dim), _keepdims("mean", keepdims, keepdim)
        return F.Mean.apply(self, axis=axis, keepdims=keepdims)

    def max(
        self, axis: Axis = None, keepdims: bool = False, *, dim: Any = _UNSET, keepdim: Any = _UNSET
    ) -> Tensor | MinMax:
        """Maximum over `axis`, numpy's way; or PyTorch's ``(values, indices)`` when asked with ``dim=``.

        - ``t.max()``, ``t.max(axis)``, ``t.max(axis=1)``: the values, like numpy's ``max`` and ``torch.amax``;
          tied maxima share the gradient evenly. `argmax` gives the positions.
        - ``t.max(dim=1)`` (one axis, PyTorch's keyword): a `MinMax` named tuple ``(values, indices)``, as
          ``torch.max(t, dim)``; the gradient goes to the position in `indices` (the first maximum), and
          `indices` is an int64 Tensor.
        """
        if isinstance(dim, (int, np.integer)) and not isinstance(dim, bool):
            return self._extreme_along("max", np.argmax, dim, _keepdims("max", keepdims, keepdim), axis)
        axis, keepdims = _axis("max", axis, dim), _keepdims("max", keepdims, keepdim)
        return F.Max.apply(self, axis=axis, keepdims=keepdims)

    def min(
        self, axis: Axis = None, keepdims: bool = False, *, dim: Any = _UNSET, keepdim: Any = _UNSET
    ) -> Tensor | MinMax:
        """Minimum over `axis` (values, as ``torch.amin``); with ``dim=``, PyTorch's ``(values, indices)``.

        As `max`: tied minima share the gradient evenly, except with ``dim=``, where the first minimum takes it.
        """
        if isinstance(dim, (int, np.integer)) and not isinstance(dim, bool):
            return self._extreme_along("min", np.argmin, dim, _keepdims("min", keepdims, keepdim), axis)
        axis, keepdims = _axis("min", axis, dim), _keepdims("min", keepdims, keepdim)
        return F.Min.apply(self, axis=axis, keepdims=keepdims)

    def _extreme_along(self, name: str, arg: Any, dim: int, keepdim: bool, axis: Any) -> MinMax:
        """PyTorch's ``max(dim)``/``min(dim)``: the values picked at their positions, and the positions."""
        _axis(name, axis, dim)  # both spellings at once is an error
        shape = self.data.shape
        position = _axis_index(name, int(dim), max(len(shape), 1))
        if not shape:  # a 0-d tensor: PyTorch allows dim 0 or -1, and returns it with index 0
            indices = np.zeros((), np.int64)
            return MinMax(self.reshape(()), Tensor(indices))
        if shape[position] == 0:
            raise ValueError(f"{name}: axis {dim} of shape {shape} is empty: there is no {name}imum to take")
        values = F.PickExtreme.apply(self, axis=position, keepdims=keepdim, which=name)
        indices = arg(self.data, axis=position, keepdims=keepdim)
        return MinMax(values, Tensor(indices.astype(np.int64, copy=False)))

    def var(
        self, axis: Axis = None, keepdims: bool = False, *, correction: float = _UNSET, dim: Any = _UNSET,
        keepdim: Any = _UNSET, ddof: float | None = None, unbiased: bool | None = None,
    ) -> Tensor:  # fmt: skip
        """Variance over `axis`: ``sum((x - mean)^2) / (N - correction)``.

        ``correction=1`` (the default, as in PyTorch) is the unbiased sample variance; 0 is numpy's default
        (numpy calls it ``ddof``, PyTorch's older spelling is ``unbiased=False``; all are accepted, one at a
        time). ``x.var(False)`` is PyTorch's ``x.var(unbiased=False)``, over every element.
        """
        if isinstance(axis, (bool, np.bool_)):  # PyTorch's var(unbiased) overload: a bool is never an axis
            if unbiased is not None:
                raise TypeError(f"var() got unbiased={unbiased!r} and a positional {axis!r}, which means unbiased")
            axis, unbiased = _UNSET, bool(axis)
        axis, keepdims = _axis("var", axis, dim), _keepdims("var", keepdims, keepdim)
        correction = _correction("var", correction, ddof, unbiased)
        axes = _reduced_axes("var", axis, self.data.ndim)
        count = self.data.size if axes is None else math.prod(self.data.shape[a] for a in axes)
        centred = self - self.mean(axis=axes, keepdims=True)
        squares = (centred * centred).sum(axis=axes, keepdims=keepdims)
        return squares / max(count - correction, 0)

    def std(
        self, axis: Axis = None, keepdims: bool = False, *, correction: float = _UNSET, dim: Any = _UNSET,
        keepdim: Any = _UNSET, ddof: float | None = None, unbiased: bool | None = None,
    ) -> Tensor:  # fmt: skip
        """Standard deviation over `axis`: the square root of `var` (``correction=1`` by default, as PyTorch).

        Takes `var`'s arguments, ``unbiased`` and ``ddof`` included.
        """
        if isinstance(axis, (bool, np.bool_)):
            if unbiased is not None:
                raise TypeError(f"std() got unbiased={unbiased!r} and a positional {axis!r}, which means unbiased")
            axis, unbiased = _UNSET, bool(axis)
        axis, keepdims = _axis("std", axis, dim), _keepdims("std", keepdims, keepdim)
        correction = _correction("std", correction, ddof, unbiased)
        _reduced_axes("std", axis, self.data.ndim)  # so that a bad axis is reported as std's, not var's
        return self.var(axis, keepdims, correction=correction).sqrt()

    def norm(
        self, p: Any = "fro", axis: Axis = None, keepdims: bool = False, *, dim: Any = _UNSET, keepdim: Any = _UNSET
    ) -> Tensor:
        """The vector p-norm over `axis` (all elements by default): ``sum(|x|^p)^(1/p)``, as ``torch.norm``.

        `p` is "fro" or 2 (Euclidean), 1, ``inf`` (the largest ``|x|``), ``-inf`` (the smallest), 0 (the number
        of non-zero elements) or any other real number, negative ones included (``sum(|x|^p)^(1/p)``, 0 when an
        element is 0), as ``torch.linalg.vector_norm``. The gradient at a zero norm is 0, as in PyTorch, and so
        is that of p=0 and, for p below 1, that at a zero element.
        """
        axis, keepdims = _axis("norm", axis, dim), _keepdims("norm", keepdims, keepdim)
        order = 2.0 if isinstance(p, str) and p == "fro" else p
        if isinstance(order, (bool, np.bool_)) or not isinstance(order, (int, float, np.integer, np.floating)):
            raise ValueError(f"norm: p must be 'fro' or a number (inf, -inf and negative numbers included), got {p!r}")
        if np.isnan(order):
            raise ValueError("norm: p is NaN; give 'fro' or a number (inf, -inf and negative numbers included)")
        _reduced_axes("norm", axis, self.data.ndim)
        return F.Norm.apply(self, order=float(order), axis=axis, keepdims=keepdims)

    def argmax(self, axis: int | None = None, keepdims: bool = False, *, dim: Any = _UNSET,
               keepdim: Any = _UNSET) -> np.ndarray:  # fmt: skip
        """Indices of the maxima along `axis` (of the flattened data for None), as an integer ndarray."""
        axis, keepdims = _axis("argmax", axis, dim), _keepdims("argmax", keepdims, keepdim)
        return np.argmax(self.data, axis=axis, keepdims=keepdims)

    def argmin(self, axis: int | None = None, keepdims: bool = False, *, dim: Any = _UNSET,
               keepdim: Any = _UNSET) -> np.ndarray:  # fmt: skip
        """Indices of the minima along `axis` (of the flattened data for None), as an integer ndarray."""
        axis, keepdims = _axis("argmin", axis, dim), _keepdims("argmin", keepdims, keepdim)
        return np.argmin(self.data, axis=axis, keepdims=keepdims)

    def softmax(self, axis: int = _UNSET, *, dim: Any = _UNSET) -> Tensor:
        """``exp(x) / sum(exp(x))`` along `axis` (or `dim`; the last by default), stable at +-1000."""
        return F.Softmax.apply(self, axis=_axis("softmax", axis, dim, -1))

    def log_softmax(self, axis: int = _UNSET, *, dim: Any = _UNSET) -> Tensor:
        """``log(softmax(x))`` along `axis` (or `dim`; the last by default), without the log of a softmax."""
        return F.LogSoftmax.apply(self, axis=_axis("log_softmax", axis, dim, -1))

    # ---------------------------------------------------------------------------------------------------------
    # Shape
    # ---------------------------------------------------------------------------------------------------------

    def reshape(self, *shape: Any) -> Tensor:
        """The same data in a new shape: ``t.reshape(2, 3)`` or ``t.reshape((2, 3))``; -1 infers one axis."""
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return F.Reshape.apply(self, shape=shape)

    def view(self, *shape: Any) -> Tensor:
        """PyTorch's name for `reshape` (numpy arrays have no strides to keep, so it never fails for that)."""
        return self.reshape(*shape)

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        """Merge the axes from `start_dim` to `end_dim` into one; with no argument, the data as a 1-D tensor."""
        shape = self.data.shape
        if not shape:
            return F.Reshape.apply(self, shape=(1,))
        start, end = _axis_index("flatten", start_dim, len(shape)), _axis_index("flatten", end_dim, len(shape))
        if start > end:
            raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} for shape {shape}")
        new_shape = (*shape[:start], math.prod(shape[start : end + 1]), *shape[end + 1 :])
        return F.Reshape.apply(self, shape=new_shape)

    def unsqueeze(self, dim: int) -> Tensor:
        """Insert an axis of size 1 at `dim` (negative counts from the end of the result), as PyTorch."""
        shape = list(self.data.shape)
        position = _axis_index("unsqueeze", dim, len(shape) + 1)
        shape.insert(position, 1)
        return F.Reshape.apply(self, shape=tuple(shape))

    def squeeze(self, dim: Axis = None, *, axis: Axis = None) -> Tensor:
        """Remove axes of size 1: all of them, or those at `dim` (an int or a tuple) whose size is 1."""
        if axis is not None:
            dim = axis
        shape = self.data.shape
        if dim is None:
            chosen = {i for i, size in enumerate(shape) if size == 1}
        else:
            dims = dim if isinstance(dim, (tuple, list)) else (dim,)
            chosen = {_axis_index("squeeze", d, max(len(shape), 1)) for d in dims}
            chosen = {i for i in chosen if i < len(shape) and shape[i] == 1}  # PyTorch leaves other sizes alone
        return F.Reshape.apply(self, shape=tuple(size for i, size in enumerate(shape) if i not in chosen))

    def transpose(self, *axes: Any) -> Tensor:
        """Permute the axes, as numpy's ``transpose``, or swap two, as ``torch.transpose(dim0, dim1)``.

        No argument reverses the axes (``.T``) and a tuple is a permutation; two separate axes are swapped (for a
        matrix, numpy's reading of ``transpose(1, 0)`` agrees).
        """
        if len(axes) == 1 and (isinstance(axes[0], (tuple, list)) or axes[0] is None):
            axes = () if axes[0] is None else tuple(axes[0])
        elif len(axes) == 2:
            return self.swapaxes(*axes)
        return F.Transpose.apply(self, axes=axes or None)

    def permute(self, *dims: Any) -> Tensor:
        """Reorder the axes: ``t.permute(2, 0, 1)``, as PyTorch (numpy's ``transpose`` with axes)."""
        dims = _sizes("permute", dims)
        if sorted(d % max(self.data.ndim, 1) for d in dims) != list(range(self.data.ndim)):
            raise ValueError(f"permute: {dims} is not an order of the {self.data.ndim} axes of shape {self.shape}")
        return F.Transpose.apply(self, axes=dims)

    def swapaxes(self, axis1: int, axis2: int) -> Tensor:
        """Swap two axes, as ``ndarray.swapaxes``."""
        ndim = self.data.ndim
        first, second = _axis_index("swapaxes", axis1, ndim), _axis_index("swapaxes", axis2, ndim)
        order = list(range(ndim))
        order[first], order[second] = order[second], order[first]
        return F.Transpose.apply(self, axes=tuple(order))

    @property
    def mT(self) -> Tensor:
        """The last two axes swapped (a batch of matrices transposed), as ``ndarray.mT``."""
        if self.data.ndim < 2:
            raise ValueError(f"mT needs at least two axes, this tensor has shape {self.shape}")
        return self.swapaxes(-1, -2)

    def expand(self, *sizes: Any) -> Tensor:
        """Broadcast to a bigger shape without copying: -1 keeps a size, as ``torch.Tensor.expand``."""
        sizes = _sizes("expand", sizes)
        shape = self.data.shape
        extra = len(sizes) - len(shape)
        if extra < 0:
            raise ValueError(f"expand: {sizes} has fewer axes than the tensor's shape {shape}")
        target = tuple(shape[i - extra] if size == -1 and i >= extra else size for i, size in enumerate(sizes))
        return F.Expand.apply(self, shape=target)

    def broadcast_to(self, shape: Any) -> Tensor:
        """Broadcast to `shape` (numpy's rules), as ``np.broadcast_to``; its gradient sums back."""
        return F.Expand.apply(self, shape=_sizes("broadcast_to", (shape,)))

    def repeat(self, *sizes: Any) -> Tensor:
        """Tile the tensor `sizes` times along each axis, as ``torch.Tensor.repeat`` (numpy's ``tile``)."""
        sizes = _sizes("repeat", sizes)
        shape = self.data.shape
        if len(sizes) < len(shape):
            raise ValueError(f"repeat: give at least one count per axis of shape {shape}, got {sizes}")
        if min(sizes, default=0) < 0:
            raise ValueError(f"repeat: the counts must be >= 0 (0 gives an empty axis), got {sizes} for shape {shape}")
        shape = (1,) * (len(sizes) - len(shape)) + shape
        # (a, b) tiled (r, s): as (1, a, 1, b), broadcast to (r, a, s, b), then merged: no copy until the merge.
        spread = tuple(x for size in shape for x in (1, size))
        tiled = tuple(x for count, size in zip(sizes, shape) for x in (count, size))
        result = F.Reshape.apply(self, shape=spread)
        result = F.Expand.apply(result, shape=tiled)
        return F.Reshape.apply(result, shape=tuple(count * size for count, size in zip(sizes, shape)))

    def split(self, split_size_or_sections: Any, dim: int = 0) -> tuple[Tensor, ...]:
        """Pieces along `dim`: of `split_size` each (the last may be smaller), or of the sizes in a list."""
        length = self.data.shape[_axis_index("split", dim, self.data.ndim)]
        if isinstance(split_size_or_sections, (list, tuple)):
            sizes = [int(size) for size in split_size_or_sections]
            if sum(sizes) != length or min(sizes, default=0) < 0:
                raise ValueError(f"split: sizes {sizes} must add up to {length}, the length of axis {dim}")
        else:
            size = int(split_size_or_sections)
            if size < 1:
                raise ValueError(f"split: split_size must be at least 1, got {split_size_or_sections!r}")
            sizes = [min(size, length - start) for start in range(0, length, size)] or [0]
        return self._pieces(sizes, dim)

    def chunk(self, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:
        """`chunks` pieces along `dim`, each ``ceil(length / chunks)`` long (the last may be shorter or fewer)."""
        if isinstance(chunks, bool) or not isinstance(chunks, (int, np.integer)) or chunks < 1:
            raise ValueError(f"chunk: chunks must be a whole number >= 1, got {chunks!r}")
        length = self.data.shape[_axis_index("chunk", dim, self.data.ndim)]
        return self.split(max(-(-length // int(chunks)), 1), dim)

    def _pieces(self, sizes: list[int], dim: int) -> tuple[Tensor, ...]:
        axis = _axis_index("split", dim, self.data.ndim)
        pieces = []
        start = 0
        for size in sizes:
            index = (slice(None),) * axis + (slice(start, start + size),)
            pieces.append(F.Index.apply(self, index=index))
            start += size
        return tuple(pieces)

    def __getitem__(self, index: Any) -> Tensor:
        return F.Index.apply(self, index=_unwrap_index(index))


def _axis_index(function: str, axis: Any, ndim: int) -> int:
    """An axis counted from 0, or an IndexError naming the function and the number of axes."""
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"{function}: an axis must be a whole number, got {axis!r}")
    if not -ndim <= axis < ndim:
        raise IndexError(f"{function}: axis {axis} is out of range for {ndim} axes")
    return int(axis) % ndim


def _reduced_axes(function: str, axis: Any, ndim: int) -> tuple[int, ...] | None:
    """The axes a reduction runs over, counted from 0 (None for all), checked as numpy checks sum's axes.

    An axis out of range is numpy's ``AxisError`` (an IndexError and a ValueError, as from `sum`), naming the
    function and the number of axes.
    """
    if axis is None:
        return None
    axes = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    counted = []
    for a in axes:
        if isinstance(a, (bool, np.bool_)) or not isinstance(a, (int, np.integer)):
            raise TypeError(f"{function}: an axis must be a whole number, got {a!r} in axis={axis!r}")
        if not -ndim <= a < ndim:
            raise np.exceptions.AxisError(f"{function}: axis {a} is out of range for {ndim} axes (axis={axis!r})")
        counted.append(int(a) % ndim)
    if len(set(counted)) != len(counted):
        raise ValueError(f"{function}: axis={axis!r} names the same axis twice (for {ndim} axes)")
    return tuple(counted)


def _correction(function: str, correction: Any, ddof: Any, unbiased: Any) -> float:
    """The one correction of var and std, from whichever of `correction`, `ddof` and `unbiased` was given."""
    given = {
        name: value
        for name, value in (("correction", correction), ("ddof", ddof), ("unbiased", unbiased))
        if value is not None and value is not _UNSET
    }
    if len(given) > 1:
        spelled = " and ".join(f"{name}={value!r}" for name, value in given.items())
        raise TypeError(f"{function}() got {spelled}; they are spellings of one argument, give one")
    if "unbiased" in given:
        if not isinstance(unbiased, (bool, np.bool_)):
            raise TypeError(f"{function}(): unbiased must be True or False, got {unbiased!r}")
        return 1 if unbiased else 0
    value = given.get("correction", given.get("ddof", 1))
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{function}(): correction must be a number, got {value!r}")
    return value


autograd.Tensor = Tensor  # see the note where autograd declares this name


def _data(value: Any) -> Any:
    return value.data if isinstance(value, Tensor) else value


def _check_can_require_grad(dtype: np.dtype) -> None:
    if dtype.kind != "f":
        raise TypeError(
            f"only floating-point tensors can require grad, but this one has dtype {dtype}; "
            "create it with dtype=float (or from float data)"
        )


# --------------------------------------------------------------------------------------------------------------
# Module-level operations
# --------------------------------------------------------------------------------------------------------------


def concatenate(tensors: Sequence[Any], axis: int = _UNSET, *, dim: Any = _UNSET) -> Tensor:
    """Join tensors along an existing axis (0 by default), as ``np.concatenate`` and ``torch.cat`` (`dim`)."""
    if len(tensors) == 0:
        raise ValueError("concatenate needs at least one tensor")
    return F.Concatenate.apply(*tensors, axis=_axis("concatenate", axis, dim, 0))


cat = concatenate  # PyTorch's name


def stack(tensors: Sequence[Any], axis: int = _UNSET, *, dim: Any = _UNSET) -> Tensor:
    """Join tensors of one shape along a new axis (0 by default), as ``np.stack`` (`dim` works too)."""
    if len(tensors) == 0:
        raise ValueError("stack needs at least one tensor")
    return F.Stack.apply(*tensors, axis=_axis("stack", axis, dim, 0))


def maximum(a: Any, b: Any) -> Tensor:
    """Elementwise maximum of two tensors (or a tensor and a number); ties split the gradient."""
    return F.Maximum.apply(a, b)


def minimum(a: Any, b: Any) -> Tensor:
    """Elementwise minimum of two tensors (or a tensor and a number); ties split the gradient."""
    return F.Minimum.apply(a, b)


def where(condition: Any, a: Any, b: Any) -> Tensor:
    """Elements of `a` where `condition` is true and of `b` elsewhere, as ``np.where``."""
    return F.Where.apply(condition, a, b)
