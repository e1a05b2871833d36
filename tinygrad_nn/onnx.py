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
a node and returns its output's name; ``graph.constant(array)`` adds a constant of the array's own rank (a
number is a 0-d constant). That is all a new primitive needs (convolution, say, is a few lines mapping its
options to ``Conv``'s attributes); ``graph.batch_size()`` is there for the rare op with a size that is the batch.

Every primitive a forward pass can run has a converter (the tests find them all); the few without one are the
gradients' own ops, which only a backward pass applies. What `export` cannot write, it refuses with an
`ExportError` naming the op, the module it ran in and the line of the user's code, before any file is written.

This module needs the optional `onnx` package (``pip install onnx``, or the ``interop`` extra); importing it
does not, so the error comes from `export` itself, with the command that installs it.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from . import autograd
from . import functions as F  # noqa: N812 - short, like torch.nn.functional as F
from .autograd import OpRecord, trace_ops
from .serialization import check_destination, write_atomically
from .tensor import Tensor

__all__ = ["DEFAULT_OPSET", "ExportError", "OnnxGraph", "export", "register_onnx_op", "registered_ops"]

DEFAULT_OPSET = 17
"""The ONNX opset `export` writes unless told otherwise: supported by every ONNX Runtime since 1.13 (2022)."""

_MIN_OPSET = 13  # Softmax on one axis, Squeeze/Unsqueeze/ReduceSum with axes as inputs: all from opset 13 on
_INT64_MAX = np.iinfo(np.int64).max
_PROTOBUF_LIMIT = 2**31  # bytes: protobuf cannot serialise a message of 2 GiB or more
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep  # tinygrad_nn/: its frames are not the user's


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


# What ONNX's standard operators compute in: complex numbers, long doubles, strings and objects have no place
# there (ONNX has complex tensor types, but no arithmetic operator accepts them).
_ONNX_DTYPES = frozenset(
    [np.dtype(np.bool_)]
    + [np.dtype(f"int{bits}") for bits in (8, 16, 32, 64)]
    + [np.dtype(f"uint{bits}") for bits in (8, 16, 32, 64)]
    + [np.dtype(f"float{bits}") for bits in (16, 32, 64)]
)


def _check_dtype(dtype: Any, what: str) -> None:
    """Refuse, naming it, a dtype that no ONNX operator computes in."""
    dtype = np.dtype(dtype)
    if dtype.newbyteorder("=") not in _ONNX_DTYPES:
        raise ExportError(
            f"export: {what} has dtype {dtype}, which ONNX operators do not compute in; ONNX takes bool, integers "
            "of 8 to 64 bits, float16, float32 and float64, so cast it first (model.to(np.float32) for parameters, "
            "x.astype(np.float32) in forward)"
        )


def _native(array: np.ndarray) -> np.ndarray:
    """`array` as a C-ordered array of native byte order, of the same rank (np.ascontiguousarray makes 0-d 1-D)."""
    return np.asarray(array, dtype=array.dtype.newbyteorder("="), order="C")


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
        self._values: set[str] = set()  # every value name a node, an initializer or a graph input holds
        self._keep_alive: list[Any] = []  # tensors whose id() is a key above
        self.nodes: list[Any] = []
        self.initializers: dict[str, Any] = {}
        self._counter = 0
        self._scope_name = ""
        self._twin: OpRecord | None = None
        self._input_names: list[str] = []
        self._batch: int | None = None  # the traced batch size, when the batch axis is dynamic
        self._batch_size: str | None = None

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
            self._values.add(name)
            if dtype is not None:
                self._dtypes[name] = np.dtype(dtype)
        return names[0] if outputs == 1 else names

    def constant(self, array: Any, dtype: Any = None) -> str:
        """Add a constant (an initializer named ``const_<k>``) holding `array`, of its own rank; return its name.

        A 0-d array or a number stays 0-d (a scalar, as ``Dropout``'s ratio and ``Clip``'s bounds must be), so
        that it broadcasts as numpy's does and a scalar op's result stays 0-d.
        """
        array = _native(np.asarray(array, dtype=dtype))
        _check_dtype(array.dtype, "a constant")
        self._counter += 1
        name = f"const_{self._counter}"
        self.initializers[name] = self._onnx.numpy_helper.from_array(array, name)
        self._dtypes[name] = array.dtype
        self._values.add(name)
        return name

    def int64s(self, values: Sequence[int]) -> str:
        """A 1-D int64 constant, the form ONNX takes shapes, axes and slice bounds in."""
        return self.constant(np.asarray(list(values), dtype=np.int64).reshape(-1))

    def cast(self, name: str, dtype: Any) -> str:
        """`name` cast to `dtype`, or `name` itself when it already has that dtype."""
        dtype = np.dtype(dtype)
        if self._dtypes.get(name) == dtype:
            return name
        _check_dtype(dtype, "a cast")
        return self.node("Cast", [name], to=self._onnx.helper.np_dtype_to_tensor_dtype(dtype))

    def batch_size(self) -> str:
        """A 1-D int64 value holding the batch size, read from the first graph input's shape at run time.

        For a converter whose op has a size that follows the batch (an ``expand`` to ``len(x)`` rows): written
        once, the first time a converter asks.
        """
        if self._batch_size is None:
            shape = self.node("Shape", [self._input_names[0]])
            self.set_dtype(shape, np.int64)
            zero, one = self.int64s([0]), self.int64s([1])
            self._batch_size = self.node("Slice", [shape, zero, one])
        return self._batch_size

    def set_dtype(self, name: str, dtype: Any) -> None:
        """Record the dtype of a value a node produced (when it differs from its first input's)."""
        self._dtypes[name] = np.dtype(dtype)

    # -- bookkeeping -------------------------------------------------------------------------------------------

    def _bind(self, tensor: Tensor, name: str) -> None:
        self._names[id(tensor)] = name
        self._values.add(name)
        self._dtypes.setdefault(name, tensor.data.dtype)
        self._keep_alive.append(tensor)

    def _name_of_tensor(self, tensor: Tensor) -> str:
        name = self._names.get(id(tensor))
        if name is not None:
            return name
        parameter = self._parameters.get(id(tensor))
        if parameter is not None:
            name = parameter[0]
            _check_dtype(tensor.data.dtype, f"the parameter {name}")
            # Of its own rank: a 0-d parameter (a learned temperature) stays 0-d, as in the state dict.
            self.initializers[name] = self._onnx.numpy_helper.from_array(_native(tensor.data), name)
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
    `ExportError`. So does an op without an ONNX converter (register one with `register_onnx_op`), and a value
    of a dtype ONNX operators do not compute in (complex, long double); each message names the op, the module it
    ran in and the line of your code that ran it. The path is checked before the model runs (its folder must
    exist, and it must not be a directory), and the file is written only once the whole model has converted and
    passed ``onnx.checker``, under a temporary name that is then renamed: a failed export never leaves a file,
    whole or broken. Needs the `onnx` package (``pip install onnx``).
    """
    onnx = _onnx()
    opset = DEFAULT_OPSET if opset is None else opset
    latest = onnx.defs.onnx_opset_version()
    if isinstance(opset, bool) or not isinstance(opset, int) or not _MIN_OPSET <= opset <= latest:
        raise ValueError(f"export: opset must be a whole number from {_MIN_OPSET} to {latest}, got {opset!r}")
    if not isinstance(dynamic_batch, (bool, np.bool_)):  # a string such as "no" would be true
        raise TypeError(f"export: dynamic_batch must be True or False, got {dynamic_batch!r}")
    target = None
    if path is not None:
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"export: path must be a file name (str or os.PathLike) or None, got {path!r}")
        target = Path(path)
        check_destination(target, "export", "model.onnx")
    examples = _example_arrays(example_input)
    input_names = _names("input", input_names, len(examples))
    for name, array in zip(input_names, examples):
        _check_dtype(array.dtype, f"input '{name}'")
        if dynamic_batch and array.ndim == 0:
            raise ExportError(f"export: input '{name}' is 0-d, so it has no batch axis; pass dynamic_batch=False")
    if not hasattr(model, "named_parameters") or not callable(model):
        raise TypeError(f"export takes an nn.Module, got {type(model).__name__}")
    parameters = {id(tensor): (name, tensor) for name, tensor in model.named_parameters()}
    module_names = {id(module): name for name, module in model.named_modules()}

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
    _check_convertible(first, parameters, module_names)
    _check_same_ops(first, second, parameters, dynamic_batch, module_names)
    output_names = _names("output", output_names, len(first.outputs))
    if set(output_names) & set(input_names):
        raise ValueError(f"export: input and output names must differ, got {input_names} and {output_names}")

    graph = OnnxGraph(onnx, opset, parameters)
    graph._input_names = input_names
    graph._batch = len(examples[0]) if dynamic_batch else None
    for tensor, name in zip(first.inputs, input_names):
        graph._bind(tensor, name)
    for index, (record, twin) in enumerate(zip(first.records, second.records)):
        graph._scope_name = _scope_name(first.scopes[index], module_names)
        graph._twin = twin
        try:
            results = _CONVERTERS[record.function](graph, record)
        except ExportError as error:  # what the converter refuses, and now where the op came from
            raise ExportError(
                f"{error} (op #{index}, {record.function.__name__}, ran {_origin(first, index, module_names)}.)"
            ) from None
        except Exception as error:  # a converter's own mistake, most likely a user's: say which op it was
            raise ExportError(
                f"export: the ONNX converter of {record.function.__name__} failed on op #{index} "
                f"({_origin(first, index, module_names)}): {type(error).__name__}: {error}"
            ) from error
        produced = record.outputs if isinstance(record.outputs, tuple) else (record.outputs,)
        names = results if isinstance(results, (list, tuple)) else [results]
        if len(names) != len(produced) or not all(isinstance(name, str) and name for name in names):
            raise ExportError(
                f"export: the ONNX converter of {record.function.__name__} returned {names!r} for op #{index}; "
                f"it must return the ONNX name of each of the op's {len(produced)} output(s)"
            )
        unknown = [name for name in names if name not in graph._values]
        if unknown:
            raise ExportError(
                f"export: the ONNX converter of {record.function.__name__} returned {unknown[0]!r} for op #{index}, "
                "which no node, constant or input of the graph produces; return what graph.node() returned"
            )
        for tensor, name in zip(produced, names):
            graph._bind(tensor, name)
    graph._scope_name = ""
    model_proto = _assemble(onnx, graph, input_names, output_names, first, second, dynamic_batch)
    if target is not None:
        _write(model_proto, target)
    return model_proto


def _write(model_proto: Any, path: Path) -> None:
    """Write the model's bytes under a temporary name beside `path`, then rename it: never half a file."""
    size = model_proto.ByteSize()
    if size >= _PROTOBUF_LIMIT:
        raise ExportError(
            f"export: the model takes {size / 2**30:.2f} GiB as one ONNX file, over protobuf's limit of 2 GiB; "
            "a model this big needs its weights in a separate file, which tinygrad_nn.onnx does not write"
        )
    data = model_proto.SerializeToString()

    def write(name: str) -> None:
        with open(name, "wb") as file:
            file.write(data)

    write_atomically(path, write)


def _example_arrays(example_input: Any) -> list[np.ndarray]:
    items = list(example_input) if isinstance(example_input, (tuple, list)) else [example_input]
    if not items:
        raise ValueError("export: example_input is empty; pass an array of the shape the model takes")
    arrays = []
    for position, item in enumerate(items):
        array = np.asarray(item.data if isinstance(item, Tensor) else item)
        if array.dtype.kind not in "fiubc":
            raise TypeError(
                f"export: example inputs must hold numbers or bools, but input {position} has dtype {array.dtype}"
            )
        arrays.append(_native(array))
    return arrays


def _names(kind: str, names: Sequence[str] | None, count: int) -> list[str]:
    if names is None:
        return [kind] if count == 1 else [f"{kind}_{index}" for index in range(count)]
    names = list(names)
    if len(names) != count or not all(isinstance(name, str) and name for name in names) or len(set(names)) != count:
        raise ValueError(f"export: {kind}_names must be {count} distinct non-empty strings, got {names}")
    return names


# -- tracing: each op with the module it ran in and the line of the user's code that ran it -----------------------


class _Trace(NamedTuple):
    """One traced forward pass."""

    records: list[OpRecord]
    scopes: list[Any]  # per op: the module call it ran in, as the engine's (module, enclosing) chain, or None
    lines: list[str | None]  # per op: ``file:line`` of the innermost frame outside tinygrad_nn, inside the model
    inputs: list[Tensor]
    outputs: list[Tensor]


class _ScopedRecords(list):
    """The list `trace_ops` appends to, noting at each append the module call and the user's line."""

    def __init__(self) -> None:
        super().__init__()
        self.scopes: list[Any] = []
        self.lines: list[str | None] = []

    def append(self, record: OpRecord) -> None:
        super().append(record)
        # The engine appends right after the op ran, while Module.__call__ still holds the op's module as the
        # thread's scope: it is set for every op, recorded for backward or not.
        self.scopes.append(autograd._local.state.scope)
        self.lines.append(_user_line())


class _trace_with_scopes(trace_ops):  # noqa: N801 - a context manager, named like the one it extends
    """`trace_ops`, whose list also says where each op came from."""

    def __enter__(self) -> _ScopedRecords:
        records = _ScopedRecords()
        self._set(records)
        return records


def _user_line() -> str | None:
    """``file:line`` of the innermost caller outside this package, if it is inside the traced model."""
    frame = sys._getframe(2)
    while frame is not None:
        code = frame.f_code
        if code is _trace.__code__:  # reached export itself: the op came from the package's own modules
            return None
        if not code.co_filename.startswith(_PACKAGE_DIR):
            return f"{code.co_filename}:{frame.f_lineno}"
        frame = frame.f_back
    return None


def _trace(model: Any, arrays: list[np.ndarray]) -> _Trace:
    inputs = [Tensor(array) for array in arrays]
    with _trace_with_scopes() as records:
        result = model(*inputs)
    outputs = list(result) if isinstance(result, (tuple, list)) else [result]
    if not outputs or not all(isinstance(output, Tensor) for output in outputs):
        raise ExportError(f"export: the model must return a Tensor or a tuple of Tensors, got {type(result).__name__}")
    return _Trace(list(records), records.scopes, records.lines, inputs, outputs)


def _scope_name(scope: Any, module_names: dict[int, str]) -> str:
    """``encoder.0/`` for an op run inside the module ``encoder.0``: node names group by module in Netron."""
    name = module_names.get(id(scope[0]), "") if scope else ""
    return f"{name}/" if name else ""


def _origin(trace: _Trace, index: int, module_names: dict[int, str]) -> str:
    """Where op `index` came from: its module's dotted name and class, and the line of the user's code."""
    scope = trace.scopes[index]
    if not scope:
        place = "outside any module"
    else:
        module = scope[0]
        name = module_names.get(id(module))
        kind = type(module).__name__
        if name is None:
            place = f"in a {kind} module that is not a submodule of the model"
        elif name == "":
            place = f"in the model's own forward ({kind})"
        else:
            place = f"in module '{name}' ({kind})"
    line = trace.lines[index]
    return place if line is None else f"{place}, at {line}"


def _check_convertible(trace: _Trace, parameters: dict[int, tuple[str, Tensor]], module_names: dict) -> None:
    """Refuse, before anything is written, ops without a converter (all of them at once) and unusable dtypes."""
    missing: dict[type, list[int]] = {}
    for index, record in enumerate(trace.records):
        if record.function not in _CONVERTERS:
            missing.setdefault(record.function, []).append(index)
            continue
        for value in record.inputs:
            if isinstance(value, Tensor) and id(value) in parameters:
                _check_dtype(value.data.dtype, f"the parameter {parameters[id(value)][0]}")
        for output in record.outputs if isinstance(record.outputs, tuple) else (record.outputs,):
            where = f"the result of op #{index}, {record.function.__name__} ({_origin(trace, index, module_names)}),"
            _check_dtype(output.data.dtype, where)
    if missing:
        raise ExportError(_no_converter_message(trace, missing, module_names))


def _no_converter_message(trace: _Trace, missing: dict[type, list[int]], module_names: dict[int, str]) -> str:
    lines = []
    for function, indices in missing.items():
        for index in indices[:3]:
            lines.append(
                f"op #{index}, {function.__name__} (from {function.__module__}), has no ONNX form; it ran "
                f"{_origin(trace, index, module_names)}"
            )
        if len(indices) > 3:
            lines.append(f"... and {len(indices) - 3} more {function.__name__} ops")
    message = "export: " + "\n".join(lines) + "\n\n"
    users = [function for function in missing if not function.__module__.startswith(F.__name__ + ".")]
    if len(users) < len(missing):
        # Every primitive a forward pass runs has a converter (tests/test_onnx.py checks it); the rest are the
        # gradients' own ops, which only a backward pass records.
        message += (
            "tinygrad_nn's primitives without an ONNX form are the ones gradients are made of: the model computes "
            "a gradient inside its forward pass (backward() or tinygrad_nn.grad with create_graph=True), and "
            "export writes forward passes only.\n\n"
        )
    if users:
        name = users[0].__name__
        message += (
            f"tinygrad_nn.onnx knows {', '.join(sorted(cls.__name__ for cls in _CONVERTERS))}. If {name} is "
            "your own Function, register a converter that writes it as standard ONNX operators:\n\n"
            f"    @tinygrad_nn.onnx.register_onnx_op({name})\n"
            "    def convert(graph, record):\n"
            "        x = graph.input(record, 0, graph.output_dtype(record))\n"
            '        return graph.node("SomeOnnxOp", [x])\n\n'
            "(see the 'Moving on' page of the documentation). "
        )
    return message + "No file was written."


# -- the two traced passes must be the same program --------------------------------------------------------------


def _check_same_ops(
    first: _Trace, second: _Trace, parameters: dict[int, tuple[str, Tensor]], dynamic: bool, module_names: dict
) -> None:
    records, inputs = first.records, first.inputs
    other_records, other_inputs = second.records, second.inputs
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
        ran = f" (The op ran {_origin(first, index, module_names)}.)"
        for position, (value, other_value) in enumerate(zip(record.inputs, twin.inputs)):
            kind = _kind(value, produced, parameters)
            other_kind = _kind(other_value, other_produced, parameters)
            if kind != other_kind:
                raise ExportError(
                    f"export: {where} input {position} is {kind} in one pass and {other_kind} in another.{ran}"
                )
            if kind in ("a constant", "a number or array") and not _same(_plain(value), _plain(other_value)):
                raise ExportError(
                    f"export: {where} input {position} is a tensor computed outside the recorded ops that changes "
                    f"with the model's input (shape {np.shape(_plain(value))} for one example, "
                    f"{np.shape(_plain(other_value))} for another); the exported graph would freeze it. Compute it "
                    "with Tensor operations (e.g. tinygrad_nn.where, maximum, clip) rather than comparisons, "
                    f"numpy, or .data.{ran}"
                )
        for key in set(record.options) | set(twin.options):
            value, other_value = record.options.get(key), twin.options.get(key)
            if _same(value, other_value):
                continue
            if record.function in (F.Reshape, F.Expand) and key == "shape" and dynamic:
                continue  # the batch-sized entries are read at run time (checked by the converter)
            raise ExportError(
                f"export: {where} option {key}= differs between a batch of {len(inputs[0].data)} and one of "
                f"{len(other_inputs[0].data)} ({value!r} and {other_value!r}); the exported graph would freeze one "
                f"of them, so this op cannot take a batch of any size (try dynamic_batch=False).{ran}"
                if dynamic
                else f"export: {where} option {key}= depends on the input's values ({value!r} and {other_value!r})."
                f"{ran}"
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
    input_names: list[str],
    output_names: list[str],
    first: _Trace,
    second: _Trace,
    dynamic_batch: bool,
) -> Any:
    from . import __version__

    helper = onnx.helper
    inputs, outputs = first.inputs, first.outputs
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

    other_inputs, other_outputs = second.inputs, second.outputs
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


def _reduce(graph: OnnxGraph, op_type: str, x: str, axes: list[int] | None, keepdims: bool) -> str:
    """An ONNX reduction of `x` over `axes`: None is every axis, and ``[]`` none at all (numpy's ``axis=()``)."""
    if axes is None:
        return graph.node(op_type, [x], keepdims=int(keepdims))
    if not axes:  # ONNX reads an empty list of axes as "all of them"; numpy's axis=() leaves every value alone
        return graph.node("Identity", [x])
    # ReduceSum takes its axes as an input from opset 13, the others from opset 18.
    if op_type == "ReduceSum" or graph.opset >= 18:
        return graph.node(op_type, [x, graph.int64s(axes)], keepdims=int(keepdims))
    return graph.node(op_type, [x], axes=axes, keepdims=int(keepdims))


def _reduction(function: type, op_type: str) -> None:
    @register_onnx_op(function)
    def convert(graph: OnnxGraph, record: OpRecord) -> str:
        # In the output's dtype first: numpy's mean of integers is float64, and its sum of bools an integer.
        x = graph.input(record, 0, graph.output_dtype(record))
        axes = _axes(record.options.get("axis"))
        return _reduce(graph, op_type, x, axes, bool(record.options.get("keepdims", False)))


for _function, _op_type in [(F.Sum, "ReduceSum"), (F.Mean, "ReduceMean"), (F.Max, "ReduceMax"), (F.Min, "ReduceMin")]:
    _reduction(_function, _op_type)


@register_onnx_op(F.PickExtreme)
def _pick_extreme(graph: OnnxGraph, record: OpRecord) -> str:
    """``max(x, dim)``'s values: ArgMax (the first of ties, as numpy's) and GatherElements, found from the input."""
    x = graph.input(record, 0)
    axis = int(record.options.get("axis", 0))
    which = record.options.get("which", "max")
    positions = graph.node("ArgMax" if which == "max" else "ArgMin", [x], axis=axis, keepdims=1)
    values = graph.node("GatherElements", [x, positions], axis=axis)
    if record.options.get("keepdims", False):
        return values
    return graph.node("Squeeze", [values, graph.int64s([axis])])


@register_onnx_op(F.Norm)
def _norm(graph: OnnxGraph, record: OpRecord) -> str:
    """The vector p-norm: ReduceL2, ReduceL1, the largest or smallest ``|x|``, or ``sum(|x|^p)^(1/p)``."""
    dtype = graph.output_dtype(record)
    x = graph.input(record, 0, dtype)
    order = float(record.options.get("order", 2.0))
    axes = _axes(record.options.get("axis"))
    keepdims = bool(record.options.get("keepdims", False))
    if order == 0:  # numpy's "0-norm": how many values are not 0
        return _reduce(graph, "ReduceSum", graph.cast(_nonzero(graph, x, dtype), dtype), axes, keepdims)
    if axes == []:  # a norm over no axes at all is |x|, whatever the order
        return graph.node("Abs", [x])
    if order == 2:
        return _reduce(graph, "ReduceL2", x, axes, keepdims)
    if order == 1:
        return _reduce(graph, "ReduceL1", x, axes, keepdims)
    if np.isinf(order):
        return _reduce(graph, "ReduceMax" if order > 0 else "ReduceMin", graph.node("Abs", [x]), axes, keepdims)
    powers = graph.node("Pow", [graph.node("Abs", [x]), graph.constant(np.asarray(order, dtype))])
    total = _reduce(graph, "ReduceSum", powers, axes, keepdims)
    return graph.node("Pow", [total, graph.constant(np.reciprocal(np.asarray(order, dtype)))])


def _nonzero(graph: OnnxGraph, x: str, dtype: Any) -> str:
    """A bool value: True where `x` is not 0."""
    equal = graph.node("Equal", [x, graph.constant(np.zeros((), dtype))])
    graph.set_dtype(equal, np.bool_)
    return graph.node("Not", [equal])


# -- shapes ---------------------------------------------------------------------------------------------------------


def _shape_value(graph: OnnxGraph, shape: list[int], other: list[int], keep: Sequence[bool] = ()) -> str:
    """An int64 shape for Reshape or Expand whose sizes that follow the batch are the batch size at run time.

    `shape` is the size in the traced pass and `other` in the pass with a batch one larger; where `keep` is True
    the size is the input's own and is written as 1 (Expand's "keep the input's size"). A size that changes with
    the batch in any other way than being the batch has no ONNX form here and is an `ExportError`.
    """
    batch = graph._batch
    pieces: list[Any] = []  # ints, or the name of the batch size
    for axis, (size, other_size) in enumerate(zip(shape, other)):
        if axis < len(keep) and keep[axis]:
            pieces.append(1)
        elif size == other_size:
            pieces.append(size)
        elif batch is not None and (size, other_size) == (batch, batch + 1):
            pieces.append(None)
        else:
            raise ExportError(
                f"export: a shape of {tuple(shape)} (and {tuple(other)} for a batch one larger) has a size that "
                "changes with the batch without being the batch size; compute it from the batch with -1 in a "
                "reshape, or pass dynamic_batch=False"
            )
    if None not in pieces:
        return graph.int64s(pieces)
    parts, run = [], []
    for piece in pieces:
        if piece is None:
            if run:
                parts.append(graph.int64s(run))
                run = []
            parts.append(graph.batch_size())
        else:
            run.append(piece)
    if run:
        parts.append(graph.int64s(run))
    return graph.node("Concat", parts, axis=0) if len(parts) > 1 else parts[0]


@register_onnx_op(F.Reshape)
def _reshape(graph: OnnxGraph, record: OpRecord) -> str:
    shape = _shape_list(record.options["shape"])
    twin = graph.twin(record)
    other = shape if twin is None else _shape_list(twin.options["shape"])
    if len(shape) != len(other):
        raise ExportError(
            f"export: a reshape to {tuple(shape)} becomes one to {tuple(other)} for a batch one larger; a graph holds "
            "one number of axes, so pass dynamic_batch=False"
        )
    varying = [axis for axis, (a, b) in enumerate(zip(shape, other)) if a != b]
    if len(varying) == 1 and -1 not in shape:
        shape[varying[0]] = -1  # the one size that follows the batch is whatever the rest leaves: a constant
        target = graph.int64s(shape)
    else:  # several, or -1 taken already (x.reshape(len(x), -1)): the batch size read at run time
        target = _shape_value(graph, shape, other)
    attributes = {"allowzero": 1} if 0 in shape and graph.opset >= 14 else {}
    return graph.node("Reshape", [graph.input(record, 0), target], **attributes)


def _shape_list(shape: Any) -> list[int]:
    return [int(size) for size in np.asarray(shape, dtype=np.int64).reshape(-1)]


@register_onnx_op(F.Expand)
def _expand(graph: OnnxGraph, record: OpRecord) -> str:
    """``broadcast_to`` (and ``expand``, ``repeat``) as Expand; a size that is the batch is read at run time."""
    shape = _shape_list(record.options["shape"])
    twin = graph.twin(record)
    other = shape if twin is None else _shape_list(twin.options["shape"])
    own = graph.input_shape(record, 0)
    own = (1,) * (len(shape) - len(own)) + own
    # ONNX's Expand broadcasts both ways, so a 1 keeps the input's own size: an axis the input already has at
    # full size (its batch axis, say) needs no number at all.
    keep = [size == own_size and size != 1 for size, own_size in zip(shape, own)]
    return graph.node("Expand", [graph.input(record, 0), _shape_value(graph, shape, other, keep)])


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
    if not options.get("training", True) and not _float32_attribute_too_coarse(dtype):
        mean = graph.constant(np.asarray(options["running_mean"], dtype=dtype))
        var = graph.constant(np.asarray(options["running_var"], dtype=dtype))
        return graph.node("BatchNormalization", [x, scale, bias, mean, var], epsilon=eps)
    view = graph.int64s([1, -1] + [1] * (len(shape) - 2))
    if not options.get("training", True):  # float64: the forward's fixed affine map, with eps in float64
        param_shape = (1, -1) + (1,) * (len(shape) - 2)
        running_var = np.asarray(options["running_var"]).reshape(param_shape)
        inv_std = graph.constant(((running_var + eps) ** -0.5).astype(dtype))
        factor = graph.node("Mul", [inv_std, graph.node("Reshape", [scale, view])])
        mean = graph.constant(-np.asarray(options["running_mean"]).reshape(param_shape).astype(dtype))
        shift = graph.node("Add", [graph.node("Mul", [mean, factor]), graph.node("Reshape", [bias, view])])
        return graph.node("Add", [graph.node("Mul", [x, factor]), shift])
    # Batch statistics (a model whose batch norm keeps no running statistics): the formula in ONNX operators.
    axes = [0, *range(2, len(shape))]
    return _normalize_nodes(
        graph, x, axes, eps, graph.node("Reshape", [scale, view]), graph.node("Reshape", [bias, view])
    )


def _float32_attribute_too_coarse(dtype: Any) -> bool:
    """Whether a float attribute (ONNX stores them as float32: an ``epsilon``) would round a `dtype` computation.

    For float64 models the normalisations are written as plain operators with eps a float64 constant instead:
    a float32 eps of 1e-3 is off by 5e-11, which shows in every output of a float64 batch norm.
    """
    return np.dtype(dtype).itemsize > 4


def _normalize_nodes(graph: OnnxGraph, x: str, axes: list[int], eps: float, scale: str | None, bias: str | None) -> str:
    """``(x - mean) / sqrt(var + eps) * scale + bias`` over `axes`, in plain ONNX operators."""
    centered = graph.node("Sub", [x, _reduce(graph, "ReduceMean", x, axes, keepdims=True)])
    variance = _reduce(graph, "ReduceMean", graph.node("Mul", [centered, centered]), axes, keepdims=True)
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
    if graph.opset < 17 or _float32_attribute_too_coarse(dtype):  # LayerNormalization arrived in opset 17
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
    ratio = graph.constant(np.asarray(record.options.get("p", 0.5), dtype=dtype))  # 0-d, as Dropout wants
    training = graph.constant(np.asarray(True))
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


@register_onnx_op(F.ScatterAdd)
def _scatter_add(graph: OnnxGraph, record: OpRecord) -> str:
    """Zeros with the input added at an index, as ScatterElements on the flattened zeros.

    The index (slices, integers, arrays) becomes the flat positions it picks, which the export works out here
    with numpy; a position picked twice needs ``reduction="add"``, which ScatterElements has from opset 16.
    """
    dtype = graph.output_dtype(record)
    shape = tuple(int(size) for size in record.options["shape"])
    index = record.options.get("index")
    positions = np.arange(math.prod(shape), dtype=np.int64).reshape(shape)[index]
    # The zeros made when the model runs, not stored: a scatter into an embedding table would store the table.
    fill = graph._onnx.numpy_helper.from_array(np.zeros(1, dtype))
    zeros = graph.node("ConstantOfShape", [graph.int64s([math.prod(shape)])], value=fill)
    graph.set_dtype(zeros, dtype)
    if positions.size == 0:
        return graph.node("Reshape", [zeros, graph.int64s(shape)])
    repeated = np.unique(positions).size < positions.size
    if repeated and record.options.get("unique", False):
        raise ExportError(
            "export: a ScatterAdd marked unique=True picks some positions more than once; ONNX leaves the result of "
            "such a scatter undefined, so it cannot be exported (drop unique=True to add them up)"
        )
    if repeated and graph.opset < 16:
        raise ExportError(
            f"export: this ScatterAdd adds into some positions more than once, which needs ScatterElements with "
            f"reduction='add', from opset 16; export with opset=16 or later (this export asked for {graph.opset})"
        )
    values = graph.input(record, 0, dtype)
    if graph.input_shape(record, 0) != positions.shape:  # numpy broadcasts the values over the picked positions
        values = graph.node("Expand", [values, graph.int64s(positions.shape)])
    flat = graph.node("Reshape", [values, graph.int64s([-1])])
    attributes = {"reduction": "add"} if repeated else {}
    indices = graph.constant(positions.reshape(-1))
    scattered = graph.node("ScatterElements", [zeros, indices, flat], axis=0, **attributes)
    return graph.node("Reshape", [scattered, graph.int64s(shape)])


# -- log1p, and the losses -----------------------------------------------------------------------------------------


def _log1p_nodes(graph: OnnxGraph, x: str, dtype: Any) -> str:
    """``log(1 + x)``, accurate for small x, from Log (ONNX has no log1p).

    Goldberg's trick: with ``u = 1 + x`` rounded, ``log(u) * x / (u - 1)`` is within a few ulps of log1p(x),
    because the rounding error of u cancels between the log and the division. Where u rounds to 1, the answer
    is x itself; where ``u - 1`` gives x back exactly (large x, and inf) the log is right as it is.
    """
    one = graph.constant(np.ones((), dtype))
    shifted = graph.node("Add", [x, one])
    back = graph.node("Sub", [shifted, one])
    rounded_away = graph.node("Equal", [back, graph.constant(np.zeros((), dtype))])
    exact = graph.node("Equal", [back, x])
    graph.set_dtype(rounded_away, np.bool_)
    graph.set_dtype(exact, np.bool_)
    ratio = graph.node("Where", [exact, one, graph.node("Div", [x, back])])
    return graph.node("Where", [rounded_away, x, graph.node("Mul", [graph.node("Log", [shifted]), ratio])])


@register_onnx_op(F.Log1p)
def _log1p(graph: OnnxGraph, record: OpRecord) -> str:
    dtype = graph.output_dtype(record)
    return _log1p_nodes(graph, graph.input(record, 0, dtype), dtype)


def _reduce_loss(graph: OnnxGraph, elementwise: str, reduction: str) -> str:
    if reduction == "none":
        return elementwise
    return _reduce(graph, "ReduceSum" if reduction == "sum" else "ReduceMean", elementwise, None, keepdims=False)


def _scalar(graph: OnnxGraph, value: float, dtype: Any) -> str:
    return graph.constant(np.asarray(value, dtype=dtype))


@register_onnx_op(F.MeanSquaredError)
def _mse_loss(graph: OnnxGraph, record: OpRecord) -> str:
    dtype = graph.output_dtype(record)
    difference = graph.node("Sub", [graph.input(record, 0, dtype), graph.input(record, 1, dtype)])
    squares = graph.node("Mul", [difference, difference])
    return _reduce_loss(graph, squares, record.options.get("reduction", "mean"))


@register_onnx_op(F.BinaryCrossEntropy)
def _binary_cross_entropy(graph: OnnxGraph, record: OpRecord) -> str:
    """``-w (t log p + (1 - t) log(1 - p))`` with the logs floored at -100, as the forward (and PyTorch) does.

    The forward refuses probabilities outside [0, 1]; the exported graph cannot raise, and gives NaN there.
    """
    dtype = graph.output_dtype(record)
    probability, target = graph.input(record, 0, dtype), graph.input(record, 1, dtype)
    one, floor = _scalar(graph, 1, dtype), _scalar(graph, -100, dtype)

    def clamped_log(value: str) -> str:
        return graph.node("Max", [graph.node("Log", [value]), floor])

    positive = graph.node("Mul", [target, clamped_log(probability)])
    negative = graph.node("Mul", [graph.node("Sub", [one, target]), clamped_log(graph.node("Sub", [one, probability]))])
    elementwise = graph.node("Neg", [graph.node("Add", [positive, negative])])
    weight = record.options.get("weight")
    if weight is not None:
        elementwise = graph.node("Mul", [elementwise, _option_constant(graph, weight, dtype)])
    return _reduce_loss(graph, elementwise, record.options.get("reduction", "mean"))


@register_onnx_op(F.BinaryCrossEntropyWithLogits)
def _binary_cross_entropy_with_logits(graph: OnnxGraph, record: OpRecord) -> str:
    """``(1 - t) x + lw softplus(-x)``, with ``softplus(-x) = max(-x, 0) + log1p(exp(-|x|))``: stable anywhere."""
    dtype = graph.output_dtype(record)
    logits, target = graph.input(record, 0, dtype), graph.input(record, 1, dtype)
    one, zero = _scalar(graph, 1, dtype), _scalar(graph, 0, dtype)
    negated = graph.node("Neg", [logits])
    small = graph.node("Exp", [graph.node("Neg", [graph.node("Abs", [logits])])])
    softplus = graph.node("Add", [graph.node("Max", [negated, zero]), _log1p_nodes(graph, small, dtype)])
    pos_weight = record.options.get("pos_weight")
    if pos_weight is not None:  # lw = (pos_weight - 1) t + 1
        excess = graph.node("Sub", [_option_constant(graph, pos_weight, dtype), one])
        softplus = graph.node("Mul", [graph.node("Add", [graph.node("Mul", [excess, target]), one]), softplus])
    elementwise = graph.node("Add", [graph.node("Mul", [graph.node("Sub", [one, target]), logits]), softplus])
    weight = record.options.get("weight")
    if weight is not None:
        elementwise = graph.node("Mul", [elementwise, _option_constant(graph, weight, dtype)])
    return _reduce_loss(graph, elementwise, record.options.get("reduction", "mean"))


def _option_constant(graph: OnnxGraph, value: Any, dtype: Any) -> str:
    """A constant holding an option's array (a loss's weights), in `dtype`."""
    return graph.constant(np.asarray(_plain(value), dtype=dtype))


def _class_axis(ndim: int) -> int:
    """Where the classes are: axis 1 of (N, C, ...), the only axis of a single row (C,)."""
    return 1 if ndim > 1 else 0


@register_onnx_op(F.CrossEntropy)
def _cross_entropy(graph: OnnxGraph, record: OpRecord) -> str:
    """SoftmaxCrossEntropyLoss, which has PyTorch's (and the forward's) weights, ignore_index and reductions.

    A single row (C,) with a 0-d target becomes a batch of one, and back. A target out of range, which the
    forward refuses, is an error in ONNX Runtime too.
    """
    dtype = graph.output_dtype(record)
    options = record.options
    logits = graph.input(record, 0, dtype)
    target = graph.input(record, 1, np.int64)
    single = len(graph.input_shape(record, 0)) == 1
    if single:
        logits = graph.node("Unsqueeze", [logits, graph.int64s([0])])
        target = graph.node("Unsqueeze", [target, graph.int64s([0])])
    inputs = [logits, target]
    if options.get("weight") is not None:
        inputs.append(_option_constant(graph, options["weight"], dtype))
    reduction = options.get("reduction", "mean")
    loss = graph.node(
        "SoftmaxCrossEntropyLoss", inputs, reduction=reduction, ignore_index=int(options.get("ignore_index", -100))
    )
    if single and reduction == "none":
        loss = graph.node("Squeeze", [loss, graph.int64s([0])])
    return loss


@register_onnx_op(F.CrossEntropyWithProbabilities)
def _cross_entropy_with_probabilities(graph: OnnxGraph, record: OpRecord) -> str:
    """``-sum_c w_c p_c log_softmax(x)_c`` over the class axis, then the mean over the samples (or the sum)."""
    dtype = graph.output_dtype(record)
    ndim = len(graph.input_shape(record, 0))
    axis = _class_axis(ndim)
    log_probabilities = graph.node("LogSoftmax", [graph.input(record, 0, dtype)], axis=axis)
    weighted = graph.node("Mul", [graph.input(record, 1, dtype), log_probabilities])
    weight = record.options.get("weight")
    if weight is not None:  # (C,), along the class axis: (C, 1, 1, ...) for (N, C, d1, ...)
        per_class = np.asarray(_plain(weight), dtype=dtype).reshape((-1,) + (1,) * (ndim - axis - 1))
        weighted = graph.node("Mul", [weighted, graph.constant(per_class)])
    losses = graph.node("Neg", [_reduce(graph, "ReduceSum", weighted, [axis], keepdims=False)])
    return _reduce_loss(graph, losses, record.options.get("reduction", "mean"))
