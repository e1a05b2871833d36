"""Functional transforms built on `tinygrad_nn.grad`: vjp, jvp, hvp, vhp, jacobian and hessian.

The signatures and return conventions are those of ``torch.autograd.functional``: `inputs` is a Tensor, an
ndarray or a tuple of them, and `func` takes as many arguments; results are Tensors of the matching shapes, a
single one when `inputs` (or the output) is a single tensor, else tuples. The inputs are differentiated on
copies of their own, so your tensors and their ``.grad`` are left alone; with ``create_graph=True`` the results
are recorded, connected to the inputs you passed (when those require grad), and can be differentiated again.

Each transform is a few lines over `grad`: a vjp is one backward; a jvp is two (the "double-vjp trick": the vjp
``J^T u`` is linear in ``u``, so its vjp with respect to ``u`` is ``J v``); a Hessian-vector product is the vjp of
the gradient; a Jacobian is one vjp per output element. No forward-mode engine is needed.

>>> import numpy as np
>>> from tinygrad_nn import Tensor
>>> x = Tensor(np.array([1.0, 2.0]))
>>> _, hv = hvp(lambda t: (t ** 3).sum(), x, Tensor(np.array([1.0, 0.0])))
>>> hv.data
array([6., 0.])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .autograd import grad
from .functions import Reshape
from .tensor import Tensor, stack

__all__ = ["TransformArgumentError", "hessian", "hvp", "jacobian", "jvp", "vhp", "vjp"]


class TransformArgumentError(ValueError, RuntimeError):
    """A transform was called with a `v` or a function that does not fit: a ValueError and a RuntimeError.

    Raised when `v` is None but a tensor it stands for has more than one element, when `v` has the wrong number
    of entries or shapes, and when the function given to `hvp`, `vhp` or `hessian` does not return a single
    one-element Tensor. ``torch.autograd.functional`` raises RuntimeError in these cases, and this package
    raises ValueError for a wrong argument; this class is both, so code written for either catches it.
    """


def _prepare_inputs(function: str, inputs: Any, create_graph: bool) -> tuple[bool, tuple[Tensor, ...]]:
    """The inputs as fresh tensors that require grad: (was it one tensor, the tensors)."""
    single = not isinstance(inputs, (tuple, list))
    items = (inputs,) if single else tuple(inputs)
    if not items:
        raise ValueError(f"{function}: inputs is empty; give a Tensor, an ndarray or a tuple of them")
    prepared = []
    for position, item in enumerate(items):
        if isinstance(item, Tensor):
            array = item.data
        elif isinstance(item, (np.ndarray, np.generic, float)):
            array = np.asarray(item)
        else:
            raise TypeError(
                f"{function}: input {position} is a {type(item).__name__}; inputs must be Tensors or ndarrays"
            )
        if array.dtype.kind != "f":
            raise TypeError(f"{function}: input {position} has dtype {array.dtype}; only floating-point inputs can "
                            "be differentiated")  # fmt: skip
        if create_graph and isinstance(item, Tensor) and item.requires_grad:
            # A view that is connected to `item`, so the results can be differentiated with respect to it.
            prepared.append(Reshape.apply(item, shape=item.shape))
        else:
            prepared.append(Tensor(array, requires_grad=True))
    return single, tuple(prepared)


def _outputs(function: str, result: Any) -> tuple[bool, tuple[Tensor, ...]]:
    single = isinstance(result, Tensor)
    items = (result,) if single else result
    if not isinstance(items, (tuple, list)) or not items:
        raise TypeError(
            f"{function}: the function must return a Tensor or a tuple of Tensors, got {type(result).__name__}"
        )
    for position, item in enumerate(items):
        if not isinstance(item, Tensor):
            raise TypeError(
                f"{function}: output {position} of the function is a {type(item).__name__}; it must return Tensors"
            )
    return single, tuple(items)


def _vectors(function: str, v: Any, like: tuple[Tensor, ...], what: str) -> tuple[Any, ...]:
    """`v` laid out like `like` (one array per tensor), checked; None only for one-element tensors."""
    if v is None:
        for position, tensor in enumerate(like):
            if tensor.size != 1:
                raise TransformArgumentError(
                    f"{function}: v is None, which only works when every {what} has one element, but {what} "
                    f"{position} has shape {tensor.shape}; pass v"
                )
        return tuple(np.ones(t.shape, dtype=t.dtype) for t in like)
    items = (v,) if not isinstance(v, (tuple, list)) else tuple(v)
    if len(items) != len(like):
        raise TransformArgumentError(f"{function}: v has {len(items)} entries for {len(like)} {what}s")
    vectors = []
    for position, (item, tensor) in enumerate(zip(items, like)):
        value = item if isinstance(item, Tensor) else np.asarray(item, dtype=tensor.dtype)
        if tuple(value.shape) != tuple(tensor.shape):
            raise TransformArgumentError(
                f"{function}: v[{position}] has shape {tuple(value.shape)} but {what} {position} has shape "
                f"{tensor.shape}"
            )
        vectors.append(value)
    return tuple(vectors)


def _grads(outputs: tuple[Tensor, ...], inputs: tuple[Tensor, ...], vectors: tuple[Any, ...], create_graph: bool,
           strict: bool, function: str) -> list[Tensor]:  # fmt: skip
    """Sum over outputs of v^T J, with zeros (or an error, when strict) for inputs no output depends on."""
    live = [(out, v) for out, v in zip(outputs, vectors) if out.requires_grad]
    results: list[Any] = [None] * len(inputs)
    if live:
        seeds = [v if isinstance(v, Tensor) else Tensor(v) for _, v in live]
        results = list(
            grad([out for out, _ in live], inputs, seeds, retain_graph=True, create_graph=create_graph,
                 allow_unused=True)
        )  # fmt: skip
    for position, (value, tensor) in enumerate(zip(results, inputs)):
        if value is None:
            if strict:
                raise RuntimeError(
                    f"{function}: with strict=True, every input must be used, but the output does not depend on "
                    f"input {position} (shape {tensor.shape})"
                )
            results[position] = Tensor(np.zeros(tensor.shape, dtype=tensor.dtype))
        elif not create_graph:
            results[position] = value.detach()
        elif strict and not value.requires_grad:
            raise RuntimeError(
                f"{function}: with strict=True and create_graph=True, the Jacobian must depend on every input, but "
                f"it is independent of input {position} (the function is linear in it), so its derivative would be "
                "0 without a graph"
            )
    return results


def _detached(tensors: tuple[Tensor, ...], create_graph: bool) -> tuple[Tensor, ...]:
    return tensors if create_graph else tuple(t.detach() for t in tensors)


def vjp(
    func: Callable[..., Any], inputs: Any, v: Any = None, create_graph: bool = False, strict: bool = False
) -> tuple[Any, Any]:
    """The vector-Jacobian product ``v^T J`` of `func` at `inputs`: returns ``(func(inputs), vjp)``.

    `v` has the outputs' shapes (None for a one-element output); the vjp has the inputs' shapes.
    """
    single_in, inputs_ = _prepare_inputs("vjp", inputs, create_graph)
    single_out, outputs = _outputs("vjp", func(*inputs_))
    vectors = _vectors("vjp", v, outputs, "output")
    result = _grads(outputs, inputs_, vectors, create_graph, strict, "vjp")
    outputs = _detached(outputs, create_graph)
    return (outputs[0] if single_out else outputs), (result[0] if single_in else tuple(result))


def jvp(
    func: Callable[..., Any], inputs: Any, v: Any = None, create_graph: bool = False, strict: bool = False
) -> tuple[Any, Any]:
    """The Jacobian-vector product ``J v`` of `func` at `inputs`: returns ``(func(inputs), jvp)``.

    `v` has the inputs' shapes (None for a one-element input); the jvp has the outputs' shapes. Computed with
    two backward passes (the double-vjp trick), not a forward-mode engine.
    """
    _, inputs_ = _prepare_inputs("jvp", inputs, create_graph)
    single_out, outputs = _outputs("jvp", func(*inputs_))
    vectors = _vectors("jvp", v, inputs_, "input")
    # u stands for any output gradient: J^T u is linear in u, and its vjp with respect to u along v is J v.
    dummies = tuple(Tensor(np.zeros(out.shape, dtype=out.dtype), requires_grad=True) for out in outputs)
    live = [(position, out, u) for position, (out, u) in enumerate(zip(outputs, dummies)) if out.requires_grad]
    result: list[Any] = [None] * len(outputs)
    if live:
        transposed = grad([o for _, o, _ in live], inputs_, [u for _, _, u in live], create_graph=True,
                          allow_unused=True)  # fmt: skip
        if strict:
            for position, value in enumerate(transposed):
                if value is None:
                    raise RuntimeError(
                        f"jvp: with strict=True, every input must be used, but the output does not depend on input "
                        f"{position} (shape {inputs_[position].shape})"
                    )
        used = [(g, vec) for g, vec in zip(transposed, vectors) if g is not None and g.requires_grad]
        if used:
            products = grad(
                [g for g, _ in used],
                [u for _, _, u in live],
                [vec if isinstance(vec, Tensor) else Tensor(vec) for _, vec in used],
                create_graph=create_graph,
                allow_unused=True,
            )
            for (position, _, _), value in zip(live, products):
                result[position] = value
    if strict and any(r is None for r in result):
        raise RuntimeError("jvp: with strict=True, every output must depend on the inputs")
    if strict and create_graph:
        for position, value in enumerate(result):
            if not value.requires_grad:
                which = ", ".join(f"input {i}" for i in range(len(inputs_)))
                raise RuntimeError(
                    f"jvp: with strict=True and create_graph=True, the Jacobian must depend on the inputs, but that of "
                    f"output {position} is independent of {which} (the function is linear), so its derivative would "
                    "be 0 without a graph"
                )
    result = [
        Tensor(np.zeros(out.shape, dtype=out.dtype)) if r is None else (r if create_graph else r.detach())
        for r, out in zip(result, outputs)
    ]
    outputs = _detached(outputs, create_graph)
    return (outputs[0] if single_out else outputs), (result[0] if single_out else tuple(result))


def vhp(
    func: Callable[..., Any], inputs: Any, v: Any = None, create_graph: bool = False, strict: bool = False
) -> tuple[Any, Any]:
    """The vector-Hessian product ``v^T H`` of a scalar `func` at `inputs`: returns ``(func(inputs), vhp)``.

    One gradient with a graph, then one backward through it along `v`.
    """
    return _vector_hessian("vhp", func, inputs, v, create_graph, strict)


def hvp(
    func: Callable[..., Any], inputs: Any, v: Any = None, create_graph: bool = False, strict: bool = False
) -> tuple[Any, Any]:
    """The Hessian-vector product ``H v`` of a scalar `func` at `inputs`: returns ``(func(inputs), hvp)``.

    The Hessian of a twice-differentiable function is symmetric, so ``H v`` is ``v^T H``, computed the cheap way
    (as `vhp`: one gradient with a graph, one backward through it), where PyTorch's ``hvp`` takes a third pass.
    """
    return _vector_hessian("hvp", func, inputs, v, create_graph, strict)


def _vector_hessian(
    function: str, func: Callable[..., Any], inputs: Any, v: Any, create_graph: bool, strict: bool
) -> tuple[Any, Any]:
    single_in, inputs_ = _prepare_inputs(function, inputs, create_graph)
    output = _scalar_output(function, func(*inputs_))
    vectors = _vectors(function, v, inputs_, "input")
    if not output.requires_grad:
        if strict:
            raise RuntimeError(f"{function}: with strict=True, the output must depend on the inputs")
        zeros = [Tensor(np.zeros(t.shape, dtype=t.dtype)) for t in inputs_]
        return output.detach(), (zeros[0] if single_in else tuple(zeros))
    gradients = grad(output, inputs_, create_graph=True, allow_unused=True)
    if strict:
        for position, value in enumerate(gradients):
            if value is None:
                raise RuntimeError(
                    f"{function}: with strict=True, every input must be used, but the output does not depend on "
                    f"input {position}"
                )
            if not value.requires_grad:
                raise RuntimeError(
                    f"{function}: with strict=True, the gradient must depend on every input, but it is independent "
                    f"of input {position} (the function is linear in it, so its Hessian there is 0)"
                )
    live = [(g, vec) for g, vec in zip(gradients, vectors) if g is not None and g.requires_grad]
    result: list[Any] = [None] * len(inputs_)
    if live:
        result = _grads(tuple(g for g, _ in live), inputs_, tuple(vec for _, vec in live), create_graph, False,
                        function)  # fmt: skip
    result = [Tensor(np.zeros(t.shape, dtype=t.dtype)) if r is None else r for r, t in zip(result, inputs_)]
    output = output if create_graph else output.detach()
    return output, (result[0] if single_in else tuple(result))


def _scalar_output(function: str, result: Any) -> Tensor:
    single, outputs = _outputs(function, result)
    if not single or outputs[0].size != 1:
        shape = outputs[0].shape if single else f"a tuple of {len(outputs)}"
        raise TransformArgumentError(
            f"{function}: the function must return a single Tensor with one element, got {shape}"
        )
    return outputs[0]


def jacobian(func: Callable[..., Any], inputs: Any, create_graph: bool = False, strict: bool = False) -> Any:
    """The Jacobian of `func` at `inputs`: one backward per output element.

    For one input and one output, a Tensor of shape ``output.shape + input.shape``; for several inputs a tuple
    over inputs; for several outputs a tuple over outputs (of those tuples, when both).
    """
    return _jacobian("jacobian", func, inputs, create_graph, strict)


def _jacobian(function: str, func: Callable[..., Any], inputs: Any, create_graph: bool, strict: bool) -> Any:
    single_in, inputs_ = _prepare_inputs(function, inputs, create_graph)
    single_out, outputs = _outputs(function, func(*inputs_))
    table = []
    for out in outputs:
        rows: list[list[Tensor]] = [[] for _ in inputs_]
        for element in range(out.size):
            seed = np.zeros(out.size, dtype=out.dtype)
            seed[element] = 1
            row = _grads((out,), inputs_, (seed.reshape(out.shape),), create_graph, strict, function)
            for position, value in enumerate(row):
                rows[position].append(value)
        blocks = []
        for position, tensor in enumerate(inputs_):
            if out.size == 0:
                block = Tensor(np.zeros(out.shape + tensor.shape, dtype=tensor.dtype))
            elif create_graph:
                block = stack(rows[position]).reshape(out.shape + tensor.shape)
            else:
                block = Tensor(np.stack([r.data for r in rows[position]]).reshape(out.shape + tensor.shape))
            blocks.append(block)
        table.append(blocks[0] if single_in else tuple(blocks))
    return table[0] if single_out else tuple(table)


def hessian(func: Callable[..., Any], inputs: Any, create_graph: bool = False, strict: bool = False) -> Any:
    """The Hessian of a scalar `func` at `inputs`: the Jacobian of its gradient.

    For one input, a Tensor of shape ``input.shape + input.shape``; for several, a tuple of tuples with
    ``H[i][j]`` of shape ``inputs[i].shape + inputs[j].shape``.
    """
    single_in, inputs_ = _prepare_inputs("hessian", inputs, create_graph)

    def gradient(*tensors: Tensor) -> tuple[Tensor, ...]:
        output = _scalar_output("hessian", func(*tensors))
        if not output.requires_grad:
            if strict:
                raise RuntimeError("hessian: with strict=True, the output must depend on the inputs")
            return tuple(Tensor(np.zeros(t.shape, dtype=t.dtype)) for t in tensors)
        results = grad(output, tensors, create_graph=True, allow_unused=True)
        if strict:
            for position, value in enumerate(results):
                if value is None or not value.requires_grad:
                    raise RuntimeError(
                        f"hessian: with strict=True, the gradient must depend on every input, but it is independent "
                        f"of input {position} (the function is "
                        f"{'unused' if value is None else 'linear'} in it, so its Hessian there is 0)"
                    )
        return tuple(Tensor(np.zeros(t.shape, dtype=t.dtype)) if r is None else r for r, t in zip(results, tensors))

    table = _jacobian("hessian", gradient, inputs_, create_graph, strict)
    if single_in:
        return table[0][0] if isinstance(table[0], tuple) else table[0]
    return table
