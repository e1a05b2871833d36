"""Export a model to ONNX: one traced forward pass, written as standard ONNX operators with the `onnx` package.

`export` runs the model on an example input inside `autograd.trace_ops`, which records every primitive it runs
with its inputs and options, and turns each record into ONNX nodes through a small registry: one *converter*
per primitive class, registered with `register_onnx_op`. Parameters become initializers named by their dotted
names (``0.weight``), exactly the keys of the state dict. The result passes ``onnx.checker`` and runs in ONNX
Runtime, Netron draws it, and nothing of PyTorch is needed.

A converter receives the `OnnxGraph` being built and the `OpRecord` of one op, and returns the ONNX name of the
op's output (or a list, for an op with several outputs)::

    @register_onnx_op(functions.Exp)
    def _exp(graph, record):
        return graph.node("Exp", [graph.input(record, 0, graph.output_dtype(record))])

``graph.input(record, i, dtype)`` is the ONNX name of the op's i-th input, cast to `dtype` when it differs (a
Python number or an array becomes a constant of that dtype); ``graph.node(op_type, inputs, **attributes)`` adds
a node and returns its output's name; ``graph.constant(array)`` adds a constant. That is all a new primitive
needs (convolution, say, is a few lines mapping its options to ``Conv``'s attributes).

This module needs the optional `onnx` package (``pip install onnx``, or the ``interop`` extra); importing it
does not, so the error comes from `export` itself, with the command that installs it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import functions as F  # noqa: N812 - short, like torch.nn.functional as F
from .autograd import OpRecord, trace_ops
from .tensor import Tensor

__all__ = ["DEFAULT_OPSET", "ExportError", "OnnxGraph", "export", "register_onnx_op", "registered_ops"]

DEFAULT_OPSET = 17
"""The ONNX opset `export` writes unless told otherwise: supported by every ONNX Runtime since 1.13 (2022)."""

_MIN_OPSET = 13  # Softmax on one axis, Squeeze/Unsqueeze/ReduceSum with axes as inputs: all from opset 13 on
_INT64_MAX = np.iinfo(np.int64).max


class ExportError(ValueError):
    """The model cannot be exported as it is; the message names the op and what to change."""


Converter = Callable[["OnnxGraph", OpRecord], Any]
_CONVERTERS: dict[type, Converter] = {}


def register_onnx_op(function_class: type) -> Callable[[Converter], Converter]:
    """Register the converter of one primitive (a `Function` subclass): a decorator.

    The converter is called as ``converter(graph, record)`` with the `OnnxGraph` being built and the op's
    `OpRecord`, and returns the ONNX name of the op's output (a list of names for several outputs). The class
    must match exactly: a subclass of a registered primitive needs a converter of its own, since its forward
    may compute something else. Registering a class again replaces its converter::

        @register_onnx_op(Cube)
        def convert_cube(graph, record):
            x = graph.input(record, 0, graph.output_dtype(record))
            return graph.node("Pow", [x, graph.constant(np.array(3, graph.output_dtype(record)))])
    """
    if not isinstance(function_class, type):
        raise TypeError(f"register_onnx_op takes a Function class, got {function_class!r}")

    def decorator(converter: Converter) -> Converter:
        _CONVERTERS[function_class] = converter
        return converter

    return decorator


def registered_ops() -> list[type]:
    """The primitive classes that have an ONNX converter, in the order they were registered."""
    return list(_CONVERTERS)


def _onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise ImportError(
            "ONNX export needs the onnx package: pip install onnx (in a clone of tinygrad_nn, "
            "pip install -e '.[interop]' installs it with ONNX Runtime)"
        ) from None
    return onnx


# -------------------------------------------------------------------------------------------------------------
# The graph being built
# -------------------------------------------------------------------------------------------------------------


class OnnxGraph:
    """The ONNX graph being written: what a converter uses to name inputs, add nodes and add constants."""

    def __init__(self, onnx: Any, opset: int, parameters: dict[int, tuple[str, Tensor]]) -> None:
        self.opset = opset
        """The opset being written: converters choose between operator versions with it."""
        self._onnx = onnx
        self._parameters = parameters
        self._names: dict[int, str] = {}  # id(tensor) -> ONNX name of its value
        self._dtypes: dict[str, np.dtype] = {}  # ONNX value name -> numpy dtype
        self._keep_alive: list[Any] = []  # tensors whose id() is a key above
        self.nodes: list[Any] = []
        self.initializers: dict[str, Any] = {}
        self._counter = 0
        self._scope_name = ""
        self._twin: OpRecord | None = None

    # -- what converters call ------------------------------------------------------------------------------

    def input(self, record: OpRecord, index: int, dtype: Any = None) -> str:
        """The ONNX name of the op's `index`-th input, cast to `dtype` if given and different.

        A Tensor input is the value that produced it (a graph input, an earlier op's output, or a parameter's
        initializer); a Python number or an array becomes a constant (of `dtype`, or its own).
        """
        value = record.inputs[index]
        if isinstance(value, Tensor):
            name = self._name_of_tensor(value)
        else:
            name = self.constant(np.asarray(value, dtype=dtype))
        return self.cast(name, dtype) if dtype is not None else name

    def input_shape(self, record: OpRecord, index: int) -> tuple[int, ...]:
        """The shape of the op's `index`-th input in the traced pass."""
        return tuple(np.shape(_plain(record.inputs[index])))

    def output_dtype(self, record: OpRecord) -> np.dtype:
        """The dtype of the op's (first) output."""
        outputs = record.outputs
        return (outputs[0] if isinstance(outputs, tuple) else outputs).dtype

    def twin(self, record: OpRecord) -> OpRecord | None:
        """The same op in the second traced pass (with a batch one larger when the batch axis is dynamic)."""
        return self._twin if self._twin is not None and self._twin.function is record.function else None

    def node(self, op_type: str, inputs: Sequence[str], outputs: int = 1, **attributes: Any) -> Any:
        """Add a node; return its output's name (a list of names when `outputs` > 1).

        An empty string in `inputs` is an omitted optional input. The outputs' dtype is taken to be the first
        input's (for Cast, its ``to``); say otherwise with `set_dtype` when it matters.
        """
        self._counter += 1
        base = f"{self._scope_name}{op_type}_{self._counter}"
        names = [base if outputs == 1 else f"{base}:{index}" for index in range(outputs)]
        node = self._onnx.helper.make_node(op_type, list(inputs), names, name=base, **attributes)
        self.nodes.append(node)
        first = next((name for name in inputs if name), None)
        dtype = self._dtypes.get(first) if first is not None else None
        if op_type == "Cast":
            dtype = self._onnx.helper.tensor_dtype_to_np_dtype(attributes["to"])
        for name in names:
            if dtype is not None:
                self._dtypes[name] = np.dtype(dtype)
        return names[0] if outputs == 1 else names

    def constant(self, array: Any, dtype: Any = None) -> str:
        """Add a constant (an initializer named ``const_<k>``) holding `array`; return its name."""
        array = np.asarray(array, dtype=dtype)
        self._counter += 1
        name = f"const_{self._counter}"
        self.initializers[name] = self._onnx.numpy_helper.from_array(np.ascontiguousarray(array), name)
        self._dtypes[name] = array.dtype
        return name

    def int64s(self, values: Sequence[int]) -> str:
        """A 1-D int64 constant, the form ONNX takes shapes, axes and slice bounds in."""
        return self.constant(np.asarray(list(values), dtype=np.int64).reshape(-1))

    def cast(self, name: str, dtype: Any) -> str:
        """`name` cast to `dtype`, or `name` itself when it already has that dtype."""
        dtype = np.dtype(dtype)
        if self._dtypes.get(name) == dtype:
            return name
        return self.node("Cast", [name], to=self._onnx.helper.np_dtype_to_tensor_dtype(dtype))

    def set_dtype(self, name: str, dtype: Any) -> None:
        """Record the dtype of a value a node produced (when it differs from its first input's)."""
        self._dtypes[name] = np.dtype(dtype)

    # -- bookkeeping -------------------------------------------------------------------------------------------

    def _bind(self, tensor: Tensor, name: str) -> None:
        self._names[id(tensor)] = name
        self._dtypes.setdefault(name, tensor.data.dtype)
        self._keep_alive.append(tensor)

    def _name_of_tensor(self, tensor: Tensor) -> str:
        name = self._names.get(id(tensor))
        if name is not None:
            return name
        parameter = self._parameters.get(id(tensor))
        if parameter is not None:
            name = parameter[0]
            self.initializers[name] = self._onnx.numpy_helper.from_array(np.ascontiguousarray(tensor.data), name)
        else:  # a tensor made outside the recorded ops, checked to be the same in both traced passes
            name = self.constant(tensor.data)
        self._bind(tensor, name)
        return name


# -------------------------------------------------------------------------------------------------------------
# export
# -------------------------------------------------------------------------------------------------------------


def export(
    model: Any,
    example_input: Any,
    path: str | os.PathLike[str] | None,
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
    dynamic_batch: bool = True,
    opset: int | None = None,
) -> Any:
    """Write `model` as an ONNX file at `path` by tracing one forward pass on `example_input`; return the model.

    `example_input` is an array or Tensor (or a tuple of them, for a model of several inputs) of the shape the
    model takes; its values do not matter. With ``dynamic_batch=True`` (the default) the first axis of every
    input, and the axes of the outputs that follow it, are named ``batch`` and may have any size. Inputs are
    named ``input`` (``input_0``, ``input_1``, ... for several) and outputs ``output`` unless `input_names` and
    `output_names` say otherwise; the parameters become initializers named by their dotted names, as in the
    state dict. `opset` defaults to `DEFAULT_OPSET`. Pass ``path=None`` to get the ``onnx.ModelProto`` without
    writing a file::

        import tinygrad_nn.onnx
        tinygrad_nn.onnx.export(model, x_test[:1], "model.onnx")
        # then, in ONNX Runtime:
        session = onnxruntime.InferenceSession("model.onnx")
        logits = session.run(None, {"input": x_test})[0]

    The model runs twice (in evaluation mode, its training flags restored afterwards): on the example and on a
    batch one larger, to find which sizes follow the batch and to make sure that nothing the model computes
    outside the recorded ops (a comparison, numpy on ``.data``) depends on the input; such a model raises
    `ExportError`, as does an op without an ONNX converter (register one with `register_onnx_op`). The written
    model is checked with ``onnx.checker``. Needs the `onnx` package (``pip install onnx``).
    """
    onnx = _onnx()
    opset = DEFAULT_OPSET if opset is None else opset
    latest = onnx.defs.onnx_opset_version()
    if isinstance(opset, bool) or not isinstance(opset, int) or not _MIN_OPSET <= opset <= latest:
        raise ValueError(f"export: opset must be a whole number from {_MIN_OPSET} to {latest}, got {opset!r}")
    examples = _example_arrays(example_input)
    input_names = _names("input", input_names, len(examples))
    if dynamic_batch:
        for name, array in zip(input_names, examples):
            if array.ndim == 0:
                raise ExportError(f"export: input '{name}' is 0-d, so it has no batch axis; pass dynamic_batch=False")
    if not hasattr(model, "named_parameters") or not callable(model):
        raise TypeError(f"export takes an nn.Module, got {type(model).__name__}")
    parameters = {id(tensor): (name, tensor) for name, tensor in model.named_parameters()}

    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        first = _trace(model, examples)
        # The second pass has one row more (dynamic batch) or the rows reversed: anything that changes between
        # the passes apart from the batch size is a value the graph would otherwise freeze.
        others = [np.concatenate([a[::-1], a[:1]]) if dynamic_batch else a[::-1].copy() for a in examples]
        if not dynamic_batch:
            others = [a if a.ndim else a.copy() for a in others]
        second = _trace(model, others)
    finally:
        for module, training in modes:
            object.__setattr__(module, "training", training)
    records, inputs, outputs = first
    _check_same_ops(first, second, parameters, dynamic_batch)
    output_names = _names("output", output_names, len(outputs))
    if set(output_names) & set(input_names):
        raise ValueError(f"export: input and output names must differ, got {input_names} and {output_names}")

    graph = OnnxGraph(onnx, opset, parameters)
    module_names = {id(module): name for name, module in model.named_modules()}
    for tensor, name in zip(inputs, input_names):
        graph._bind(tensor, name)
    for index, (record, twin) in enumerate(zip(records, second[0])):
        converter = _CONVERTERS.get(record.function)
        if converter is None:
            raise ExportError(_no_converter_message(record.function, index))
        graph._scope_name = _scope_name(record, module_names)
        graph._twin = twin
        results = converter(graph, record)
        produced = record.outputs if isinstance(record.outputs, tuple) else (record.outputs,)
        names = results if isinstance(results, (list, tuple)) else [results]
        if len(names) != len(produced):
            raise ExportError(
                f"the ONNX converter of {record.function.__name__} returned {len(names)} names for "
                f"{len(produced)} outputs"
            )
        for tensor, name in zip(produced, names):
            graph._bind(tensor, name)
    graph._scope_name = ""
    model_proto = _assemble(onnx, graph, inputs, input_names, outputs, output_names, first, second, dynamic_batch)
    if path is not None:
        onnx.save(model_proto, os.fspath(path))
    return model_proto


def _example_arrays(example_input: Any) -> list[np.ndarray]:
    items = list(example_input) if isinstance(example_input, (tuple, list)) else [example_input]
    if not items:
        raise ValueError("export: example_input is empty; pass an array of the shape the model takes")
    arrays = []
    for item in items:
        array = np.asarray(item.data if isinstance(item, Tensor) else item)
        if array.dtype.kind not in "fiub":
            raise TypeError(f"export: example inputs must hold numbers, got dtype {array.dtype}")
        arrays.append(array)
    return arrays


def _names(kind: str, names: Sequence[str] | None, count: int) -> list[str]:
    if names is None:
        return [kind] if count == 1 else [f"{kind}_{index}" for index in range(count)]
    names = list(names)
    if len(names) != count or not all(isinstance(name, str) and name for name in names) or len(set(names)) != count:
        raise ValueError(f"export: {kind}_names must be {count} distinct non-empty strings, got {names}")
    return names


def _trace(model: Any, arrays: list[np.ndarray]) -> tuple[list[OpRecord], list[Tensor], list[Tensor]]:
    inputs = [Tensor(array) for array in arrays]
    with trace_ops() as records:
        result = model(*inputs)
    outputs = list(result) if isinstance(result, (tuple, list)) else [result]
    if not outputs or not all(isinstance(output, Tensor) for output in outputs):
        raise ExportError(f"export: the model must return a Tensor or a tuple of Tensors, got {type(result).__name__}")
    return records, inputs, outputs


def _scope_name(record: OpRecord, module_names: dict[int, str]) -> str:
    """``encoder.0/`` for an op run inside the module ``encoder.0``: node names group by module in Netron."""
    output = record.outputs[0] if isinstance(record.outputs, tuple) else record.outputs
    node = output.grad_fn
    scope = getattr(node, "scope", None) if node is not None and not isinstance(record.outputs, tuple) else None
    if not scope:
        return ""
    name = module_names.get(id(scope[0]), "")
    return f"{name}/" if name else ""


def _no_converter_message(function: type, index: int) -> str:
    name = function.__name__
    return (
        f"op #{index}, {name} (from {function.__module__}), has no ONNX form: tinygrad_nn.onnx knows "
        f"{', '.join(sorted(cls.__name__ for cls in _CONVERTERS))}. If {name} is your own Function, register a "
        f"converter that writes it as standard ONNX operators:\n\n"
        f"    @tinygrad_nn.onnx.register_onnx_op({name})\n"
        f"    def convert(graph, record):\n"
        f"        x = graph.input(record, 0, graph.output_dtype(record))\n"
        f'        return graph.node("SomeOnnxOp", [x])\n\n'
        "(see the 'Moving on' page of the documentation)"
    )


# -- the two traced passes must be the same program --------------------------------------------------------------


def _check_same_ops(first: tuple, second: tuple, parameters: dict[int, tuple[str, Tensor]], dynamic: bool) -> None:
    records, inputs, _ = first
    other_records, other_inputs, _ = second
    if len(records) != len(other_records) or any(a.function is not b.function for a, b in zip(records, other_records)):
        names = [r.function.__name__ for r in records]
        other = [r.function.__name__ for r in other_records]
        raise ExportError(
            "export: the model ran different ops on two inputs of the same kind "
            f"({names} and then {other}); a graph can hold only one sequence of ops, so control flow that "
            "depends on the input's values cannot be exported"
        )
    produced: set[int] = {id(tensor) for tensor in inputs}
    other_produced: set[int] = {id(tensor) for tensor in other_inputs}
    for index, (record, twin) in enumerate(zip(records, other_records)):
        where = f"op #{index}, {record.function.__name__},"
        for position, (value, other_value) in enumerate(zip(record.inputs, twin.inputs)):
            kind = _kind(value, produced, parameters)
            other_kind = _kind(other_value, other_produced, parameters)
            if kind != other_kind:
                raise ExportError(f"export: {where} input {position} is {kind} in one pass and {other_kind} in another")
            if kind in ("a constant", "a number or array") and not _same(_plain(value), _plain(other_value)):
                raise ExportError(
                    f"export: {where} input {position} is a tensor computed outside the recorded ops that changes "
                    f"with the model's input (shape {np.shape(_plain(value))} for one example, "
                    f"{np.shape(_plain(other_value))} for another); the exported graph would freeze it. Compute it "
                    "with Tensor operations (e.g. tinygrad_nn.where, maximum, clip) rather than comparisons, "
                    "numpy, or .data"
                )
        for key in set(record.options) | set(twin.options):
            value, other_value = record.options.get(key), twin.options.get(key)
            if _same(value, other_value):
                continue
            if record.function is F.Reshape and key == "shape" and dynamic:
                continue  # the batch-sized entry becomes -1 (checked by the Reshape converter)
            raise ExportError(
                f"export: {where} option {key}= differs between a batch of {len(inputs[0].data)} and one of "
                f"{len(other_inputs[0].data)} ({value!r} and {other_value!r}); the exported graph would freeze one "
                "of them, so this op cannot take a batch of any size (try dynamic_batch=False)"
                if dynamic
                else f"export: {where} option {key}= depends on the input's values ({value!r} and {other_value!r})"
            )
        for tensor in record.outputs if isinstance(record.outputs, tuple) else (record.outputs,):
            produced.add(id(tensor))
        for tensor in twin.outputs if isinstance(twin.outputs, tuple) else (twin.outputs,):
            other_produced.add(id(tensor))


def _kind(value: Any, produced: set[int], parameters: dict) -> str:
    if isinstance(value, Tensor):
        if id(value) in produced:
            return "computed by the graph"
        if id(value) in parameters:
            return f"the parameter {parameters[id(value)][0]}"
        return "a constant"
    return "a number or array"


def _plain(value: Any) -> Any:
    return value.data if isinstance(value, Tensor) else value


def _same(a: Any, b: Any) -> bool:
    """Whether two inputs or options are the same: arrays by shape, dtype and value, containers item by item."""
    if isinstance(a, (np.ndarray, np.generic)) or isinstance(b, (np.ndarray, np.generic)):
        a, b = np.asarray(a), np.asarray(b)
        return a.shape == b.shape and a.dtype == b.dtype and bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, slice) and isinstance(b, slice):
        return _same((a.start, a.stop, a.step), (b.start, b.stop, b.step))
    return type(a) is type(b) and (a == b or (a != a and b != b))


# -- putting the model together ------------------------------------------------------------------------------------


def _assemble(
    onnx: Any,
    graph: OnnxGraph,
    inputs: list[Tensor],
    input_names: list[str],
    outputs: list[Tensor],
    output_names: list[str],
    first: tuple,
    second: tuple,
    dynamic_batch: bool,
) -> Any:
    from . import __version__

    helper = onnx.helper
    batch = len(inputs[0].data) if dynamic_batch else None
    # Rename each output's value to the output's name (an Identity where that value is a graph input, a
    # parameter or another output already).
    renames: dict[str, str] = {}
    taken = set(input_names) | set(graph.initializers)
    for tensor, name in zip(outputs, output_names):
        value = graph._name_of_tensor(tensor)
        if value in taken or value in renames:
            graph.node("Identity", [value])
            value = graph.nodes[-1].output[0]
        renames[value] = name
        taken.add(value)
    for node in graph.nodes:
        for position, name in enumerate(node.output):
            if name in renames:
                node.output[position] = renames[name]
        for position, name in enumerate(node.input):
            if name in renames:
                node.input[position] = renames[name]
    nodes = _needed_nodes(graph.nodes, set(output_names))
    used = {name for node in nodes for name in node.input}
    initializers = [tensor for name, tensor in graph.initializers.items() if name in used]

    def value_info(name: str, array: np.ndarray, other: np.ndarray | None) -> Any:
        dims: list[Any] = list(array.shape)
        if other is not None:
            for axis, (size, other_size) in enumerate(zip(array.shape, other.shape)):
                if size != other_size:
                    dims[axis] = "batch" if (size, other_size) == (batch, batch + 1) else f"{name}_dim{axis}"
        return helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(array.dtype), dims)

    other_inputs, other_outputs = second[1], second[2]
    graph_inputs = [
        value_info(name, tensor.data, other.data if dynamic_batch else None)
        for name, tensor, other in zip(input_names, inputs, other_inputs)
    ]
    graph_outputs = [
        value_info(name, tensor.data, other.data if dynamic_batch else None)
        for name, tensor, other in zip(output_names, outputs, other_outputs)
    ]
    onnx_graph = helper.make_graph(nodes, "tinygrad_nn", graph_inputs, graph_outputs, initializer=initializers)
    opset_import = [helper.make_opsetid("", graph.opset)]
    model = helper.make_model(
        onnx_graph,
        opset_imports=opset_import,
        producer_name="tinygrad_nn",
        producer_version=__version__,
        ir_version=helper.find_min_ir_version_for(opset_import),
    )
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as error:
        raise ExportError(f"export: the ONNX graph written does not pass onnx.checker: {error}") from None
    return model


def _needed_nodes(nodes: list[Any], outputs: set[str]) -> list[Any]:
    """The nodes the outputs depend on, in order: ops whose results the model computed but never used are dropped."""
    needed = set(outputs)
    kept = []
    for node in reversed(nodes):
        if needed & set(node.output):
            kept.append(node)
            needed.update(name for name in node.input if name)
    return kept[::-1]


# -------------------------------------------------------------------------------------------------------------
# The converters: one per primitive of tinygrad_nn.functions
# -------------------------------------------------------------------------------------------------------------


def _elementwise(function: type, op_type: str) -> None:
    @register_onnx_op(function)
    def convert(graph: OnnxGraph, record: OpRecord) -> str:
        # numpy's result dtype (a float32 tensor times a Python float stays float32); ONNX wants both sides in it.
        dtype = graph.output_dtype(record)
        return graph.node(op_type, [graph.input(record, i, dtype) for i in range(len(record.inputs))])


for _function, _op_type in [
    (F.Add, "Add"),
    (F.Sub, "Sub"),
    (F.Mul, "Mul"),
    (F.Div, "Div"),
    (F.Pow, "Pow"),
    (F.Maximum, "Max"),
    (F.Minimum, "Min"),
    (F.MatMul, "MatMul"),
    (F.Neg, "Neg"),
    (F.Exp, "Exp"),
    (F.Log, "Log"),
    (F.Sqrt, "Sqrt"),
    (F.Abs, "Abs"),
    (F.Tanh, "Tanh"),
    (F.Sigmoid, "Sigmoid"),
    (F.ReLU, "Relu"),
]:
    _elementwise(_function, _op_type)


@register_onnx_op(F.Where)
def _where(graph: OnnxGraph, record: OpRecord) -> str:
    dtype = graph.output_dtype(record)
    condition = graph.input(record, 0, np.bool_)
    return graph.node("Where", [condition, graph.input(record, 1, dtype), graph.input(record, 2, dtype)])


@register_onnx_op(F.Clip)
def _clip(graph: OnnxGraph, record: OpRecord) -> str:
    dtype = graph.output_dtype(record)
    bounds = [record.options.get("low"), record.options.get("high")]
    names = ["" if bound is None else graph.constant(np.asarray(bound, dtype=dtype)) for bound in bounds]
    return graph.node("Clip", [graph.input(record, 0, dtype), *names])


@register_onnx_op(F.Cast)
def _cast(graph: OnnxGraph, record: OpRecord) -> str:
    return graph.cast(graph.input(record, 0), graph.output_dtype(record))


def _axes(axis: Any) -> list[int] | None:
    if axis is None:
        return None
    return [int(a) for a in axis] if isinstance(axis, (tuple, list)) else [int(axis)]


def _reduction(function: type, op_type: str) -> None:
    @register_onnx_op(function)
    def convert(graph: OnnxGraph, record: OpRecord) -> str:
        # In the output's dtype first: numpy's mean of integers is float64, and its sum of bools an integer.
        x = graph.input(record, 0, graph.output_dtype(record))
        axes = _axes(record.options.get("axis"))
        keepdims = int(bool(record.options.get("keepdims", False)))
        if axes is None:
            return graph.node(op_type, [x], keepdims=keepdims)
        # ReduceSum takes its axes as an input from opset 13, the others from opset 18.
        if op_type == "ReduceSum" or graph.opset >= 18:
            return graph.node(op_type, [x, graph.int64s(axes)], keepdims=keepdims)
        return graph.node(op_type, [x], axes=axes, keepdims=keepdims)


for _function, _op_type in [(F.Sum, "ReduceSum"), (F.Mean, "ReduceMean"), (F.Max, "ReduceMax"), (F.Min, "ReduceMin")]:
    _reduction(_function, _op_type)


@register_onnx_op(F.Reshape)
def _reshape(graph: OnnxGraph, record: OpRecord) -> str:
    shape = _shape_list(record.options["shape"])
    twin = graph.twin(record)
    other = shape if twin is None else _shape_list(twin.options["shape"])
    if other != shape:
        varying = [axis for axis, (a, b) in enumerate(zip(shape, other)) if a != b]
        if len(shape) != len(other) or len(varying) != 1 or -1 in shape:
            raise ExportError(
                f"export: a reshape to {tuple(shape)} (and to {tuple(other)} for a batch one larger) has more than "
                "one size that follows the batch; reshape with -1 for the batch axis, or pass dynamic_batch=False"
            )
        shape[varying[0]] = -1  # the one size that follows the batch is whatever the rest leaves
    attributes = {"allowzero": 1} if 0 in shape and graph.opset >= 14 else {}
    return graph.node("Reshape", [graph.input(record, 0), graph.int64s(shape)], **attributes)


def _shape_list(shape: Any) -> list[int]:
    return [int(size) for size in np.asarray(shape, dtype=np.int64).reshape(-1)]


@register_onnx_op(F.Transpose)
def _transpose(graph: OnnxGraph, record: OpRecord) -> str:
    ndim = len(graph.input_shape(record, 0))
    axes = record.options.get("axes")
    perm = list(range(ndim))[::-1] if axes is None else [int(axis) % ndim for axis in axes]
    return graph.node("Transpose", [graph.input(record, 0)], perm=perm)


@register_onnx_op(F.Concatenate)
def _concatenate(graph: OnnxGraph, record: OpRecord) -> str:
    dtype = graph.output_dtype(record)
    axis = int(record.options.get("axis", 0))
    return graph.node("Concat", [graph.input(record, i, dtype) for i in range(len(record.inputs))], axis=axis)


@register_onnx_op(F.Stack)
def _stack(graph: OnnxGraph, record: OpRecord) -> str:
    dtype = graph.output_dtype(record)
    ndim = len(graph.input_shape(record, 0)) + 1
    axis = int(record.options.get("axis", 0)) % ndim
    axes = graph.int64s([axis])
    parts = [graph.node("Unsqueeze", [graph.input(record, i, dtype), axes]) for i in range(len(record.inputs))]
    return graph.node("Concat", parts, axis=axis)


@register_onnx_op(F.Linear)
def _linear(graph: OnnxGraph, record: OpRecord) -> str:
    dtype = graph.output_dtype(record)
    x, weight = graph.input(record, 0, dtype), graph.input(record, 1, dtype)
    bias = graph.input(record, 2, dtype) if len(record.inputs) == 3 and record.inputs[2] is not None else None
    if len(graph.input_shape(record, 0)) == 2:  # PyTorch's own export: Gemm with the weight transposed
        return graph.node("Gemm", [x, weight] + ([bias] if bias else []), transB=1)
    out = graph.node("MatMul", [x, graph.node("Transpose", [weight], perm=[1, 0])])
    return graph.node("Add", [out, bias]) if bias else out


@register_onnx_op(F.Softmax)
def _softmax(graph: OnnxGraph, record: OpRecord) -> str:
    x = graph.input(record, 0, graph.output_dtype(record))
    return graph.node("Softmax", [x], axis=int(record.options.get("axis", -1)))


@register_onnx_op(F.LogSoftmax)
def _log_softmax(graph: OnnxGraph, record: OpRecord) -> str:
    x = graph.input(record, 0, graph.output_dtype(record))
    return graph.node("LogSoftmax", [x], axis=int(record.options.get("axis", -1)))


# -- indexing ---------------------------------------------------------------------------------------------------


@register_onnx_op(F.Index)
def _index(graph: OnnxGraph, record: OpRecord) -> str:
    """Basic indexing (ints, slices, None, ...) as Slice, Squeeze and Unsqueeze; integer arrays as Gather(ND)."""
    shape = graph.input_shape(record, 0)
    parts = _expand_index(record.options.get("index"), len(shape))
    x = graph.input(record, 0)
    if not any(isinstance(part, np.ndarray) for part in parts):
        return _basic_index(graph, x, parts)
    if any(part is None for part in parts):
        raise ExportError(
            "export: an index mixing integer or boolean arrays with None (np.newaxis) has no ONNX form here; "
            "add the axis with reshape after indexing"
        )
    # With arrays present, numpy treats integers as 0-d arrays, and a boolean array as its nonzero() indices.
    converted: list[Any] = []
    for part in parts:
        if isinstance(part, np.ndarray) and part.dtype == bool:
            converted.extend(np.nonzero(part))
        elif isinstance(part, (int, np.integer)):
            converted.append(np.asarray(part, dtype=np.int64))
        else:
            converted.append(part)
    slices = [part if isinstance(part, slice) else slice(None) for part in converted]
    x = _basic_index(graph, x, slices)
    array_axes = [axis for axis, part in enumerate(converted) if isinstance(part, np.ndarray)]
    arrays = np.broadcast_arrays(*[converted[axis].astype(np.int64) for axis in array_axes])
    if len(array_axes) == 1:
        return graph.node("Gather", [x, graph.constant(arrays[0])], axis=array_axes[0])
    # Several arrays: bring their axes to the front, gather the points, and (when the arrays sat side by side)
    # put the result's axes back where numpy puts them.
    ndim = len(converted)
    rest = [axis for axis in range(ndim) if axis not in array_axes]
    if array_axes != list(range(len(array_axes))):
        x = graph.node("Transpose", [x], perm=array_axes + rest)
    out = graph.node("GatherND", [x, graph.constant(np.stack(arrays, axis=-1))])
    first = array_axes[0]
    adjacent = array_axes == list(range(first, first + len(array_axes)))
    if adjacent and first > 0:
        index_ndim = arrays[0].ndim
        perm = (
            list(range(index_ndim, index_ndim + first))
            + list(range(index_ndim))
            + list(range(index_ndim + first, index_ndim + len(rest)))
        )
        out = graph.node("Transpose", [out], perm=perm)
    return out


def _expand_index(index: Any, ndim: int) -> list[Any]:
    parts = list(index) if type(index) is tuple else [index]
    for part in parts:
        if isinstance(part, np.ndarray) and part.dtype.kind not in "iub":
            raise ExportError(f"export: an index array of dtype {part.dtype} has no ONNX form (integers or booleans)")
        if not (part is None or part is Ellipsis or isinstance(part, (slice, int, np.integer, np.ndarray))):
            raise ExportError(f"export: the index part {part!r} has no ONNX form here")
    consumed = sum(
        part.ndim if isinstance(part, np.ndarray) and part.dtype == bool else 1
        for part in parts
        if part is not None and part is not Ellipsis
    )
    position = next((i for i, part in enumerate(parts) if part is Ellipsis), None)
    if position is not None:
        parts[position : position + 1] = [slice(None)] * (ndim - consumed)
    else:
        parts += [slice(None)] * (ndim - consumed)
    return parts


def _basic_index(graph: OnnxGraph, x: str, parts: list[Any]) -> str:
    starts, ends, axes, steps = [], [], [], []
    squeeze, unsqueeze = [], []
    axis = 0
    out_position = 0
    for part in parts:
        if part is None:
            unsqueeze.append(out_position)
            out_position += 1
            continue
        if isinstance(part, slice):
            start, stop, step = part.start, part.stop, 1 if part.step is None else int(part.step)
            if (start, stop, step) != (None, None, 1):
                if start is None:
                    start = 0 if step > 0 else _INT64_MAX
                if stop is None:
                    stop = _INT64_MAX if step > 0 else -_INT64_MAX - 1
                starts.append(int(start)), ends.append(int(stop)), axes.append(axis), steps.append(step)
            out_position += 1
        else:  # an integer: a slice of one, then squeezed away
            index = int(part)
            starts.append(index), ends.append(index + 1 if index != -1 else _INT64_MAX), axes.append(axis)
            steps.append(1)
            squeeze.append(axis)
        axis += 1
    if axes:
        x = graph.node("Slice", [x, graph.int64s(starts), graph.int64s(ends), graph.int64s(axes), graph.int64s(steps)])
    if squeeze:
        x = graph.node("Squeeze", [x, graph.int64s(squeeze)])
    if unsqueeze:
        x = graph.node("Unsqueeze", [x, graph.int64s(unsqueeze)])
    if not (axes or squeeze or unsqueeze):
        x = graph.node("Identity", [x])
    return x


# -- convolution, pooling, normalisation, dropout, embedding, padding ---------------------------------------------


def _pads(pairs: Any) -> list[int]:
    """(before, after) per spatial axis as ONNX's pads: every axis's start, then every axis's end."""
    return [int(before) for before, _ in pairs] + [int(after) for _, after in pairs]


@register_onnx_op(F.Conv)
def _conv(graph: OnnxGraph, record: OpRecord) -> str:
    dtype = graph.output_dtype(record)
    options = record.options
    inputs = [graph.input(record, 0, dtype), graph.input(record, 1, dtype)]
    if len(record.inputs) == 3 and record.inputs[2] is not None:
        inputs.append(graph.input(record, 2, dtype))
    return graph.node(
        "Conv",
        inputs,
        kernel_shape=list(graph.input_shape(record, 1)[2:]),
        strides=list(options.get("stride", (1, 1))),
        pads=_pads(options.get("padding", ((0, 0), (0, 0)))),
        dilations=list(options.get("dilation", (1, 1))),
        group=int(options.get("groups", 1)),
    )


@register_onnx_op(F.MaxPool)
def _max_pool(graph: OnnxGraph, record: OpRecord) -> str:
    options = record.options
    padding = options.get("padding", (0, 0))
    return graph.node(
        "MaxPool",
        [graph.input(record, 0)],
        kernel_shape=list(options["kernel_size"]),
        strides=list(options["stride"]),
        pads=[int(p) for p in padding] * 2,
        dilations=list(options.get("dilation", (1,) * len(padding))),
        ceil_mode=int(bool(options.get("ceil_mode", False))),
    )


@register_onnx_op(F.AvgPool)
def _avg_pool(graph: OnnxGraph, record: OpRecord) -> str:
    options = record.options
    x = graph.input(record, 0, graph.output_dtype(record))
    kernel, stride, padding = options["kernel_size"], options["stride"], options["padding"]
    ceil_mode, include_pad = bool(options.get("ceil_mode")), bool(options.get("count_include_pad", True))
    divisor_override = options.get("divisor_override")
    if not ceil_mode and divisor_override is None:
        return graph.node(
            "AveragePool",
            [x],
            kernel_shape=list(kernel),
            strides=list(stride),
            pads=[int(p) for p in padding] * 2,
            count_include_pad=int(include_pad),
        )
    # ceil_mode's divisors at the edge and divisor_override differ between runtimes and ONNX's AveragePool, so
    # the exact form: a sum over each window (a depthwise Conv of ones) times the divisors our forward uses.
    shape = graph.input_shape(record, 0)
    channels, dtype = shape[1], graph.output_dtype(record)
    output_size, pads = F.conv.pool_geometry(shape[2:], kernel, stride, padding, (1,) * len(kernel), ceil_mode)
    ones = graph.constant(np.ones((channels, 1, *kernel), dtype=dtype))
    sums = graph.node(
        "Conv", [x, ones], kernel_shape=list(kernel), strides=list(stride), pads=_pads(pads), group=int(channels)
    )
    scale = F.conv._avg_pool_scale(
        shape[2:], kernel, stride, padding, output_size, include_pad, divisor_override, np.dtype(dtype)
    )
    return graph.node("Mul", [sums, graph.constant(np.asarray(scale, dtype=dtype))])


@register_onnx_op(F.AdaptiveAvgPool)
def _adaptive_avg_pool(graph: OnnxGraph, record: OpRecord) -> str:
    output_size = tuple(record.options["output_size"])
    shape = graph.input_shape(record, 0)
    dtype = graph.output_dtype(record)
    x = graph.input(record, 0, dtype)
    if all(size == 1 for size in output_size):
        return graph.node("GlobalAveragePool", [x])
    if all(size % out == 0 for size, out in zip(shape[2:], output_size)):  # equal windows: a plain average pool
        kernel = [size // out for size, out in zip(shape[2:], output_size)]
        return graph.node("AveragePool", [x], kernel_shape=kernel, strides=kernel)
    # Windows of different sizes: one matmul per spatial axis by the averaging matrix, as the forward pass does.
    ndim = len(shape)
    for offset, (size, out) in enumerate(zip(shape[2:], output_size)):
        axis = 2 + offset
        matrix = graph.constant(F.conv.adaptive_pool_matrix(size, out, dtype).T)
        if axis == ndim - 1:
            x = graph.node("MatMul", [x, matrix])
        else:
            perm = list(range(ndim))
            perm[axis], perm[-1] = perm[-1], perm[axis]
            x = graph.node(
                "Transpose", [graph.node("MatMul", [graph.node("Transpose", [x], perm=perm), matrix])], perm=perm
            )
    return x


@register_onnx_op(F.BatchNorm)
def _batch_norm(graph: OnnxGraph, record: OpRecord) -> str:
    options = record.options
    dtype = graph.output_dtype(record)
    shape = graph.input_shape(record, 0)
    channels = shape[1]
    x = graph.input(record, 0, dtype)
    scale = graph.input(record, 1, dtype) if record.inputs[1] is not None else graph.constant(np.ones(channels, dtype))
    bias = (
        graph.input(record, 2, dtype)
        if len(record.inputs) > 2 and record.inputs[2] is not None
        else graph.constant(np.zeros(channels, dtype))
    )
    eps = float(options.get("eps", 1e-5))
    if not options.get("training", True):
        mean = graph.constant(np.asarray(options["running_mean"], dtype=dtype))
        var = graph.constant(np.asarray(options["running_var"], dtype=dtype))
        return graph.node("BatchNormalization", [x, scale, bias, mean, var], epsilon=eps)
    # Batch statistics (a model whose batch norm keeps no running statistics): the formula in ONNX operators.
    axes = [0, *range(2, len(shape))]
    view = graph.int64s([1, -1] + [1] * (len(shape) - 2))
    return _normalize_nodes(
        graph, x, axes, eps, graph.node("Reshape", [scale, view]), graph.node("Reshape", [bias, view])
    )


def _reduce_mean(graph: OnnxGraph, x: str, axes: list[int]) -> str:
    if graph.opset >= 18:
        return graph.node("ReduceMean", [x, graph.int64s(axes)], keepdims=1)
    return graph.node("ReduceMean", [x], axes=axes, keepdims=1)


def _normalize_nodes(graph: OnnxGraph, x: str, axes: list[int], eps: float, scale: str | None, bias: str | None) -> str:
    """``(x - mean) / sqrt(var + eps) * scale + bias`` over `axes`, in plain ONNX operators."""
    centered = graph.node("Sub", [x, _reduce_mean(graph, x, axes)])
    variance = _reduce_mean(graph, graph.node("Mul", [centered, centered]), axes)
    dtype = graph._dtypes.get(x, np.dtype(np.float32))
    std = graph.node("Sqrt", [graph.node("Add", [variance, graph.constant(np.asarray(eps, dtype=dtype))])])
    out = graph.node("Div", [centered, std])
    if scale is not None:
        out = graph.node("Mul", [out, scale])
    if bias is not None:
        out = graph.node("Add", [out, bias])
    return out


@register_onnx_op(F.LayerNorm)
def _layer_norm(graph: OnnxGraph, record: OpRecord) -> str:
    options = record.options
    dtype = graph.output_dtype(record)
    x = graph.input(record, 0, dtype)
    count = int(options.get("normalized_ndim", 1))
    eps = float(options.get("eps", 1e-5))
    ndim = len(graph.input_shape(record, 0))
    weight = graph.input(record, 1, dtype) if record.inputs[1] is not None else None
    bias = graph.input(record, 2, dtype) if len(record.inputs) > 2 and record.inputs[2] is not None else None
    if graph.opset < 17:  # LayerNormalization arrived in opset 17
        return _normalize_nodes(graph, x, list(range(ndim - count, ndim)), eps, weight, bias)
    if weight is None:
        weight = graph.constant(np.ones(graph.input_shape(record, 0)[ndim - count :], dtype=dtype))
    inputs = [x, weight] + ([bias] if bias is not None else [])
    return graph.node("LayerNormalization", inputs, axis=-count, epsilon=eps)


@register_onnx_op(F.Dropout)
def _dropout(graph: OnnxGraph, record: OpRecord) -> str:
    """Recorded only in training mode (an eval-mode Dropout is no op at all): ONNX's Dropout in training mode.

    Export puts the model in eval mode, so this is a ``functional.dropout(x, training=True)`` written into a
    forward pass: the exported graph drops values at random too (ONNX Runtime draws its own masks).
    """
    dtype = graph.output_dtype(record)
    scalar = graph.int64s([])  # OnnxGraph.constant stores at least 1-D arrays; Dropout wants 0-d ones
    ratio = graph.node("Reshape", [graph.constant(np.asarray([record.options.get("p", 0.5)], dtype=dtype)), scalar])
    training = graph.node("Reshape", [graph.constant(np.asarray([True])), scalar])
    return graph.node("Dropout", [graph.input(record, 0, dtype), ratio, training])


@register_onnx_op(F.Embedding)
def _embedding(graph: OnnxGraph, record: OpRecord) -> str:
    indices = graph.cast(graph.input(record, 0), np.int64)
    return graph.node("Gather", [graph.input(record, 1), indices], axis=0)


@register_onnx_op(F.Pad)
def _pad(graph: OnnxGraph, record: OpRecord) -> str:
    dtype = graph.output_dtype(record)
    widths = record.options["widths"]
    x = graph.input(record, 0, dtype)
    if any(before < 0 or after < 0 for before, after in widths):  # crop first: Slice, then pad what is left
        shape = graph.input_shape(record, 0)
        starts = [max(-before, 0) for before, _ in widths]
        ends = [size - max(-after, 0) for size, (_, after) in zip(shape, widths)]
        axes = [axis for axis in range(len(widths)) if widths[axis][0] < 0 or widths[axis][1] < 0]
        x = graph.node(
            "Slice",
            [x, graph.int64s([starts[a] for a in axes]), graph.int64s([ends[a] for a in axes]), graph.int64s(axes)],
        )
        widths = tuple((max(before, 0), max(after, 0)) for before, after in widths)
    value = graph.constant(np.asarray(record.options.get("value", 0.0), dtype=dtype))
    return graph.node("Pad", [x, graph.int64s(_pads(widths)), value], mode="constant")
