"""`Tensor`: an ndarray, its gradient, and the node of the graph that computed it.

Tensor is only the front door: every operator calls a primitive from `functions` through ``Function.apply``,
which does the recording. See `autograd` for how the graph is kept and walked.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from . import autograd
from . import functions as F  # noqa: N812 - short, like torch.nn.functional as F
from .autograd import Function, run_backward
from .dtypes import DTypeLike, as_array, get_default_dtype

__all__ = ["Tensor", "concatenate", "maximum", "minimum", "stack", "where"]

Axis = int | tuple[int, ...] | None


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

    __slots__ = ("__weakref__", "_node", "_requires_grad", "data", "grad")

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
        self.grad: np.ndarray | None = None
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
        out.grad = None
        out._requires_grad = False
        out._node = None
        return out

    def astype(self, dtype: DTypeLike) -> Tensor:
        """The tensor converted to `dtype` (differentiable between float types)."""
        if np.dtype(dtype) == self.data.dtype:
            return self
        return F.Cast.apply(self, dtype=np.dtype(dtype))

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

    def backward(self, gradient: Any = None, retain_graph: bool = False) -> None:
        """Compute the gradient of this tensor with respect to every leaf that requires grad.

        A one-element tensor (a loss) needs no `gradient`; otherwise pass the gradient of some scalar with
        respect to this tensor, an array of its shape. Results *accumulate* into each leaf's ``.grad`` until
        you zero it (``optimizer.zero_grad()``), as in PyTorch. The graph's saved arrays are freed afterwards,
        so a second backward through it raises an error unless the first had ``retain_graph=True``.
        """
        run_backward(self, gradient, retain_graph)

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

    def __neg__(self) -> Tensor:
        return F.Neg.apply(self)

    def __pos__(self) -> Tensor:
        return self

    def __abs__(self) -> Tensor:
        return F.Abs.apply(self)

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

    def sum(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        """Sum over `axis` (an int, a tuple, or None for all), as ``ndarray.sum``."""
        return F.Sum.apply(self, axis=axis, keepdims=keepdims)

    def mean(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        """Mean over `axis` (an int, a tuple, or None for all), as ``ndarray.mean``."""
        return F.Mean.apply(self, axis=axis, keepdims=keepdims)

    def max(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        """Maximum over `axis`; tied maxima share the gradient evenly (as ``torch.amax``)."""
        return F.Max.apply(self, axis=axis, keepdims=keepdims)

    def min(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        """Minimum over `axis`; tied minima share the gradient evenly (as ``torch.amin``)."""
        return F.Min.apply(self, axis=axis, keepdims=keepdims)

    def argmax(self, axis: int | None = None) -> np.ndarray:
        """Indices of the maxima along `axis`, as an integer ndarray (not differentiable)."""
        return np.argmax(self.data, axis=axis)

    def argmin(self, axis: int | None = None) -> np.ndarray:
        """Indices of the minima along `axis`, as an integer ndarray (not differentiable)."""
        return np.argmin(self.data, axis=axis)

    def softmax(self, axis: int = -1) -> Tensor:
        """``exp(x) / sum(exp(x))`` along `axis`, computed stably (inputs of +-1000 are fine)."""
        return F.Softmax.apply(self, axis=axis)

    def log_softmax(self, axis: int = -1) -> Tensor:
        """``log(softmax(x))`` along `axis`, computed stably without taking the log of a softmax."""
        return F.LogSoftmax.apply(self, axis=axis)

    # ---------------------------------------------------------------------------------------------------------
    # Shape
    # ---------------------------------------------------------------------------------------------------------

    def reshape(self, *shape: Any) -> Tensor:
        """The same data in a new shape: ``t.reshape(2, 3)`` or ``t.reshape((2, 3))``; -1 infers one axis."""
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return F.Reshape.apply(self, shape=shape)

    def flatten(self) -> Tensor:
        """The data as a 1-D tensor."""
        return F.Reshape.apply(self, shape=(-1,))

    def transpose(self, *axes: Any) -> Tensor:
        """Permute the axes: no argument reverses them, as numpy's ``transpose``."""
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return F.Transpose.apply(self, axes=axes or None)

    def __getitem__(self, index: Any) -> Tensor:
        return F.Index.apply(self, index=_unwrap_index(index))


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


def concatenate(tensors: Sequence[Any], axis: int = 0) -> Tensor:
    """Join tensors along an existing axis, as ``np.concatenate``."""
    if len(tensors) == 0:
        raise ValueError("concatenate needs at least one tensor")
    return F.Concatenate.apply(*tensors, axis=axis)


def stack(tensors: Sequence[Any], axis: int = 0) -> Tensor:
    """Join tensors of one shape along a new axis, as ``np.stack``."""
    if len(tensors) == 0:
        raise ValueError("stack needs at least one tensor")
    return F.Stack.apply(*tensors, axis=axis)


def maximum(a: Any, b: Any) -> Tensor:
    """Elementwise maximum of two tensors (or a tensor and a number); ties split the gradient."""
    return F.Maximum.apply(a, b)


def minimum(a: Any, b: Any) -> Tensor:
    """Elementwise minimum of two tensors (or a tensor and a number); ties split the gradient."""
    return F.Minimum.apply(a, b)


def where(condition: Any, a: Any, b: Any) -> Tensor:
    """Elements of `a` where `condition` is true and of `b` elsewhere, as ``np.where``."""
    return F.Where.apply(condition, a, b)
