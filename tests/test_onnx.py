"""tinygrad_nn.onnx.export: every primitive and the built-in models, run in ONNX Runtime against our forward pass."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import sys

import numpy as np
import pytest

import tinygrad_nn as tg
import tinygrad_nn.onnx as tonnx
from tinygrad_nn import Function, Tensor, functions, nn

BATCHES = (1, 7, 64)


@pytest.fixture(autouse=True)
def _needs_onnx(onnx, onnxruntime):
    """Every test here needs onnx and ONNX Runtime (skipped without, unless TINYGRAD_NN_REQUIRE_INTEROP=1)."""


class Lambda(nn.Module):
    """A module whose forward is `function`, holding optional parameters (for ops no layer calls)."""

    def __init__(self, function, **parameters):
        super().__init__()
        for name, value in parameters.items():
            setattr(self, name, nn.Parameter(value))
        self.function = function

    def forward(self, *inputs):
        return self.function(self, *inputs)


def run_both(model, inputs, path, onnxruntime, input_names=None):
    """Our forward pass and ONNX Runtime's on the same inputs (a list of arrays)."""
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = input_names or [i.name for i in session.get_inputs()]
    theirs = session.run(None, dict(zip(names, inputs)))
    with tg.no_grad():
        ours = model(*[Tensor(x) for x in inputs])
    ours = list(ours) if isinstance(ours, tuple) else [ours]
    return [o.data for o in ours], theirs


def assert_exports_and_matches(model, make_input, tmp_path, onnxruntime, batches=BATCHES, **options):
    """Export with an example batch of 3, then compare with ONNX Runtime at each batch size (to 1e-5 relative)."""
    path = tmp_path / "model.onnx"
    tonnx.export(model, make_input(3), path, **options)
    for batch in batches:
        ours, theirs = run_both(model, [make_input(batch)], path, onnxruntime)
        for mine, other in zip(ours, theirs):
            assert mine.shape == other.shape, (batch, mine.shape, other.shape)
            assert mine.dtype == other.dtype, (batch, mine.dtype, other.dtype)
            tolerance = 1e-5 if mine.dtype == np.float32 else 1e-12
            np.testing.assert_allclose(other, mine, rtol=tolerance, atol=tolerance)
    return path


def floats(*shape_after_batch, dtype=np.float32, low=-2.0, high=2.0, seed=0):
    """make_input(batch): uniform values of shape (batch, *shape_after_batch)."""

    def make(batch):
        rng = np.random.default_rng(seed + batch)
        return rng.uniform(low, high, size=(batch, *shape_after_batch)).astype(dtype)

    return make


# ------------------------------------------------------------------------------------------------------------
# Models
# ------------------------------------------------------------------------------------------------------------


def mlp(dtype):
    return nn.Sequential(
        nn.Linear(20, 32, dtype=dtype),
        nn.ReLU(),
        nn.Linear(32, 16, dtype=dtype),
        nn.Tanh(),
        nn.Linear(16, 10, dtype=dtype),
    )


def tutorial_network(dtype):
    return nn.Sequential(
        nn.Linear(64, 30, bias=False, dtype=dtype),
        nn.Sigmoid(),
        nn.Linear(30, 10, bias=False, dtype=dtype),
        nn.Sigmoid(),
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_an_mlp_runs_in_onnx_runtime_at_every_batch_size(tmp_path, onnxruntime, dtype):
    tg.manual_seed(0)
    assert_exports_and_matches(mlp(dtype), floats(20, dtype=dtype), tmp_path, onnxruntime)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tutorial_001s_network_runs_in_onnx_runtime(tmp_path, onnxruntime, dtype):
    tg.manual_seed(1)
    assert_exports_and_matches(
        tutorial_network(dtype), floats(64, dtype=dtype, low=0.01, high=1.0), tmp_path, onnxruntime
    )


def test_a_classifier_with_flatten_and_softmax(tmp_path, onnxruntime):
    tg.manual_seed(2)
    model = nn.Sequential(
        nn.Flatten(), nn.Linear(28, 12, dtype=np.float32), nn.ReLU(), nn.Linear(12, 4, dtype=np.float32), nn.Softmax()
    )
    assert_exports_and_matches(model, floats(4, 7), tmp_path, onnxruntime)


def test_initializers_are_the_parameters_named_as_in_the_state_dict(tmp_path, onnx):
    tg.manual_seed(0)
    model = mlp(np.float32)
    proto = tonnx.export(model, floats(20)(2), tmp_path / "model.onnx")
    initializers = {tensor.name: onnx.numpy_helper.to_array(tensor) for tensor in proto.graph.initializer}
    assert set(initializers) == set(model.state_dict())
    for name, array in model.state_dict().items():
        assert initializers[name].tobytes() == array.tobytes(), name
    assert proto.producer_name == "tinygrad_nn"
    assert [op.version for op in proto.opset_import] == [tonnx.DEFAULT_OPSET]
    reloaded = onnx.load(tmp_path / "model.onnx")
    onnx.checker.check_model(reloaded, full_check=True)
    (graph_input,) = reloaded.graph.input
    (graph_output,) = reloaded.graph.output
    assert graph_input.name == "input" and graph_output.name == "output"
    assert [d.dim_param or d.dim_value for d in graph_input.type.tensor_type.shape.dim] == ["batch", 20]
    assert [d.dim_param or d.dim_value for d in graph_output.type.tensor_type.shape.dim] == ["batch", 10]
    # Netron groups nodes by module: each node's name starts with its module's dotted name.
    assert [node.name.split("/")[0] for node in reloaded.graph.node] == ["0", "1", "2", "3", "4"]


def test_fixed_batch_export_keeps_the_example_shape(tmp_path, onnx, onnxruntime):
    tg.manual_seed(0)
    model = mlp(np.float32)
    proto = tonnx.export(model, floats(20)(5), tmp_path / "model.onnx", dynamic_batch=False)
    assert [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim] == [5, 20]
    ours, theirs = run_both(model, [floats(20)(5)], tmp_path / "model.onnx", onnxruntime)
    np.testing.assert_allclose(theirs[0], ours[0], rtol=1e-5, atol=1e-6)


def test_names_opsets_and_path_none(tmp_path, onnx, onnxruntime):
    tg.manual_seed(0)
    model = mlp(np.float32)
    proto = tonnx.export(model, floats(20)(2), None, input_names=["pixels"], output_names=["logits"], opset=13)
    assert list(tmp_path.iterdir()) == []
    assert proto.graph.input[0].name == "pixels" and proto.graph.output[0].name == "logits"
    assert proto.opset_import[0].version == 13
    for opset in (13, 18, onnx.defs.onnx_opset_version()):
        tonnx.export(
            Lambda(lambda m, x: x.max(axis=1) + x.mean(axis=(0, 1), keepdims=True)), floats(5)(2), None, opset=opset
        )


def test_training_flags_are_restored(tmp_path):
    model = mlp(np.float32)
    model.train()
    model[2].eval()
    tonnx.export(model, floats(20)(2), tmp_path / "model.onnx")
    assert model.training and model[0].training and not model[2].training


# ------------------------------------------------------------------------------------------------------------
# Every primitive
# ------------------------------------------------------------------------------------------------------------

rng = np.random.default_rng(42)
WEIGHT = rng.standard_normal((5, 3)).astype(np.float32)
COLUMN = rng.standard_normal((5,)).astype(np.float32)
MASK = np.array([True, False, True, True, False])

OPS = {
    "add-sub-mul-div": (lambda m, x: (x + 1.5) * 2 - x / 3 + 4 / (x * x + 1) - 2.0 * x, floats(5)),
    "broadcast-array": (lambda m, x: x * COLUMN + np.float32(0.5) - COLUMN / 2, floats(5)),
    "parameter-arithmetic": (lambda m, x: (x - m.w) * m.w, floats(5), {"w": COLUMN}),
    "neg-abs": (lambda m, x: -abs(x) + (-x).abs(), floats(5)),
    "pow": (lambda m, x: x**2 + abs(x) ** 0.5 + 2.0**x + x**3, floats(5)),
    "tensor-pow": (lambda m, x: abs(x) ** m.w, floats(5), {"w": COLUMN}),
    "exp-log-sqrt": (lambda m, x: x.exp() + (x * x + 1).log() + (x * x).sqrt(), floats(5)),
    "activations": (lambda m, x: x.sigmoid() + x.relu() + x.tanh(), floats(5)),
    "softmax": (lambda m, x: x.softmax() + x.log_softmax(axis=1) + x.softmax(axis=0), floats(5)),
    "softmax-3d": (lambda m, x: x.softmax(axis=1) + x.log_softmax(axis=-1), floats(4, 5)),
    "reshape-flatten": (lambda m, x: x.reshape(-1, 20).reshape(len(x), 5, 4) + 1, floats(4, 5)),
    "flatten-all": (lambda m, x: x.flatten().sum(), floats(3)),
    "transpose": (lambda m, x: x.transpose(0, 2, 1) + x.transpose((0, 2, 1)) * 2, floats(4, 4)),
    "T": (lambda m, x: x.T @ x, floats(3)),
    "matmul": (lambda m, x: x @ m.w, floats(5), {"w": WEIGHT}),
    "batched-matmul": (lambda m, x: x @ x.transpose(0, 2, 1), floats(3, 4)),
    "matmul-vector": (lambda m, x: x @ COLUMN, floats(5)),
    "linear-3d": (lambda m, x: nn.functional.linear(x, m.w.T, m.b), floats(4, 5), {"w": WEIGHT, "b": WEIGHT[0]}),
    "linear-no-bias": (lambda m, x: nn.functional.linear(x, m.w.T), floats(5), {"w": WEIGHT}),
    "clip": (lambda m, x: x.clip(-0.5, 0.5) + x.clip(min=0.1) + x.clip(max=-0.1), floats(5)),
    "maximum-minimum": (
        lambda m, x: tg.maximum(x, 0.3) + tg.minimum(x, m.w) + tg.maximum(0.0, x),
        floats(5),
        {"w": COLUMN},
    ),
    "where": (lambda m, x: tg.where(MASK, x, -x) + tg.where(COLUMN > 0, 1.0, x), floats(5)),
    "where-parameter-mask": (lambda m, x: tg.where(m.w > 0, x, m.w), floats(5), {"w": COLUMN}),
    "sum-mean": (lambda m, x: x.sum(axis=1) + x.mean(axis=-1) + x.sum() + x.mean(), floats(5)),
    "keepdims": (lambda m, x: x - x.mean(axis=1, keepdims=True) + x.sum(axis=(1, 2), keepdims=True), floats(3, 4)),
    "max-min": (lambda m, x: x.max(axis=1) - x.min(axis=-1) + x.max() + x.min(axis=(0, 1)), floats(5)),
    "max-keepdims": (lambda m, x: x - x.max(axis=1, keepdims=True), floats(5)),
    # PyTorch's max(dim): the positions come from the model's input in ONNX Runtime too, never from the trace.
    "max-dim-values": (lambda m, x: x.max(dim=1).values + x.min(dim=0, keepdim=True).values.sum(), floats(5)),
    "cast": (lambda m, x: x.astype(np.float64).exp().astype(np.float32) + x, floats(5)),
    "cast-int": (lambda m, x: (x * 10).astype(np.int32).astype(np.float32), floats(5)),
    "concatenate": (
        lambda m, x: tg.concatenate([x, x * 2, m.w.reshape(1, 5) * 0 + x[:, :1]], axis=1),
        floats(5),
        {"w": COLUMN},
    ),
    "concatenate-batch": (lambda m, x: tg.concatenate([x, x], axis=0), floats(5)),
    "stack": (
        lambda m, x: (
            tg.stack([x, -x], axis=1) + tg.stack([x, x], axis=-1).sum(axis=-1, keepdims=True).transpose(0, 2, 1)
        ),
        floats(5),
    ),
    "slices": (lambda m, x: x[:, 1:4] + x[:, ::-1][:, :3] + x[..., -3:], floats(5)),
    "slice-steps": (
        lambda m, x: x[:, ::2][:, :2] + x[:, 4::-2][:, 1:] + x[:, -1:0:-2] + x[:, 10:-10:-3][:, :2],
        floats(5),
    ),
    "int-index": (lambda m, x: x[:, 0] + x[:, -1] + x[..., 2], floats(5)),
    "int-and-none": (lambda m, x: x[:, None, 1:3] + x[:, 3, None, None], floats(5)),
    "3d-mixed": (lambda m, x: x[:, 1, ::-1] + x[:, :, 2], floats(4, 4)),
    "int-array": (lambda m, x: x[:, np.array([4, 0, 0, -1])] + x[:, [1, 2, 3, 3]], floats(5)),
    "int-array-2d": (lambda m, x: x[:, np.array([[0, 1], [2, 3]])].sum(axis=2), floats(5)),
    "bool-mask": (lambda m, x: x[:, MASK] * 2, floats(5)),
    "two-arrays-adjacent": (lambda m, x: x[:, np.array([0, 1, 2]), np.array([3, 2, 1])], floats(4, 4)),
    "two-arrays-apart": (lambda m, x: x[np.array([0, 0]), :, np.array([1, 2])].T + 0, floats(4, 3)),
    "int-and-array": (lambda m, x: x[:, 1, np.array([0, 2])], floats(4, 3)),
    "identity": (lambda m, x: x, floats(5)),
    "parameter-only-output": (lambda m, x: (x.sum() * 0 + m.w, m.w), floats(5), {"w": COLUMN}),
}


# The cases whose index picks along the batch axis itself: exported for the example's batch size only.
FIXED_BATCH = {"two-arrays-apart"}


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("case", list(OPS))
def test_each_primitive_matches_onnx_runtime(tmp_path, onnxruntime, case, dtype):
    function, make_input, *parameters = OPS[case]
    model = Lambda(
        function, **{name: value.astype(dtype) for name, value in (parameters[0] if parameters else {}).items()}
    )
    make = lambda batch: make_input(batch).astype(dtype)  # noqa: E731
    if case in FIXED_BATCH:
        assert_exports_and_matches(model, make, tmp_path, onnxruntime, batches=(3,), dynamic_batch=False)
    else:
        assert_exports_and_matches(model, make, tmp_path, onnxruntime)


# ------------------------------------------------------------------------------------------------------------
# The primitives added after the first export: norm, expand, log1p, scatter-add and the losses, in both dtypes
# ------------------------------------------------------------------------------------------------------------

LABELS = np.array([0, 4, -100, 2, 1])  # class indices for 5 rows, one ignored
CLASS_WEIGHT = np.linspace(0.5, 2.0, 5)  # float64, as numpy makes it


def sparse(*shape_after_batch, dtype=np.float32, seed=0):
    """make_input(batch): like floats, with about half the values exactly 0 (and some rows all 0)."""
    make = floats(*shape_after_batch, dtype=dtype, seed=seed)

    def make_sparse(batch):
        values = make(batch)
        values[np.abs(values) < 1] = 0
        values[::3] = 0
        return values

    return make_sparse


def pairs(*shape_after_batch, dtype=np.float32, low=-2.0, high=2.0, target=None):
    """make_input(batch) for a model of two inputs: values and a target of the same shape (a list of 2 arrays)."""
    make = floats(*shape_after_batch, dtype=dtype, low=low, high=high)
    make_target = target or floats(*shape_after_batch, dtype=dtype, seed=100)
    return lambda batch: [make(batch), make_target(batch)]


def binary(*shape_after_batch, dtype=np.float32):
    """make_input(batch): 0s and 1s, as targets of a binary cross-entropy."""
    make = floats(*shape_after_batch, dtype=dtype, seed=200)
    return lambda batch: (make(batch) > 0).astype(dtype)


NORM_ORDERS = [2, 1, 3, 0.5, np.inf, -np.inf]

# name: (forward, make_input(dtype), export options); every case runs in float32 and float64.
MORE_OPS = {
    **{
        f"norm-{order}": (
            lambda m, x, order=order: (
                x.norm(p=order, axis=1)
                + x.norm(p=order, axis=(0, 1), keepdims=True)[0, 0]
                + x.norm(p=order, dim=-1, keepdim=True).sum(axis=1)
                + x.norm(p=order)
            ),
            lambda dtype: floats(4, dtype=dtype),
            {},
        )
        for order in NORM_ORDERS
    },
    "norm-at-zero": (
        lambda m, x: x.norm(axis=1) + x.norm(p=1, axis=1) + x.norm(p=3, axis=1) + x.norm(p=np.inf, axis=1),
        lambda dtype: sparse(4, dtype=dtype),
        {},
    ),
    "norm-3d": (lambda m, x: x.norm(axis=(1, 2)) + x.norm(p=1, axis=(0, 2)).sum(), lambda d: floats(3, 4, dtype=d), {}),
    "norm-order-0": (  # the primitive's own "0-norm" (how many values are not 0); Tensor.norm refuses p=0
        lambda m, x: functions.Norm.apply(x, order=0.0, axis=1) + functions.Norm.apply(x, order=0.0).reshape(1),
        lambda dtype: sparse(5, dtype=dtype),
        {},
    ),
    "norm-negative-order": (  # numpy's formula for a negative p: (sum |x|^p)^(1/p)
        lambda m, x: functions.Norm.apply(x, order=-1.5, axis=1, keepdims=True),
        lambda dtype: floats(5, dtype=dtype, low=0.5, high=2.0),
        {},
    ),
    "norm-negative-order-at-zero": (  # a 0 makes |x|^p infinite and the norm 0, in numpy and in ONNX alike
        lambda m, x: functions.Norm.apply(x, order=-1.5, axis=1) + functions.Norm.apply(x, order=-np.inf, axis=1),
        lambda dtype: sparse(5, dtype=dtype),
        {},
    ),
    "norm-over-no-axes": (  # axis=() reduces nothing: |x|, or for order 0 whether x is not 0
        lambda m, x: x.norm(axis=()) + x.norm(p=np.inf, axis=()) + functions.Norm.apply(x, order=0.0, axis=()),
        lambda dtype: sparse(4, dtype=dtype),
        {},
    ),
    "norm-opset-13": (  # before opset 18 the reductions take their axes as attributes
        lambda m, x: x.norm(axis=1) + x.norm(p=1, axis=1) + x.norm(p=np.inf, axis=1) + x.norm(p=-np.inf, axis=1),
        lambda dtype: floats(4, dtype=dtype),
        {"opset": 13},
    ),
    "norm-opset-18": (
        lambda m, x: x.norm(axis=1) + x.norm(p=1, axis=1) + x.norm(p=np.inf, axis=1) + x.norm(p=-np.inf, axis=1),
        lambda dtype: floats(4, dtype=dtype),
        {"opset": 18},
    ),
    "reductions-over-no-axes": (  # numpy's axis=() leaves every value; ONNX reads no axes as all of them
        lambda m, x: x.sum(axis=()) + x.mean(axis=()) + x.max(axis=()) - x.min(axis=(), keepdims=True),
        lambda dtype: floats(4, dtype=dtype),
        {},
    ),
    "expand": (
        lambda m, x: x[:, :1].expand(-1, 3) + x.sum(axis=1, keepdims=True).broadcast_to((len(x), 3)),
        lambda dtype: floats(4, dtype=dtype),
        {},
    ),
    "expand-a-parameter-to-the-batch": (  # a size that is the batch is read from the input's shape at run time
        lambda m, x: m.w.expand(len(x), 2, 4) * x.reshape(len(x), 1, 4),
        lambda dtype: floats(4, dtype=dtype),
        {"w": COLUMN[:4]},
    ),
    "expand-a-scalar": (lambda m, x: x.sum().expand(len(x), 2, 3) + 1, lambda d: floats(3, dtype=d), {}),
    "repeat": (
        lambda m, x: x.repeat(2, 3).reshape(2, len(x), 12)[1] + x.repeat(1, 3),
        lambda dtype: floats(4, dtype=dtype),
        {},
    ),
    "repeat-new-axes": (
        lambda m, x: x.reshape(len(x), 1, 4).repeat(1, 2, 1).reshape(len(x), -1) + m.w.repeat(2),
        lambda dtype: floats(4, dtype=dtype),
        {"w": COLUMN[:4]},
    ),
    "log1p": (
        lambda m, x: functions.Log1p.apply(x) + functions.Log1p.apply(x * 1e-6) * 1e6,
        lambda dtype: floats(5, dtype=dtype, low=-0.9, high=3.0),
        {},
    ),
    "scatter-add-repeated": (  # position 0 twice: ScatterElements adds
        lambda m, x: functions.ScatterAdd.apply(x, shape=(3, 5), index=np.array([0, 2, 0, 1])),
        lambda dtype: floats(5, dtype=dtype),
        {"dynamic_batch": False, "batch": 4},
    ),
    "scatter-add-slices": (
        lambda m, x: functions.ScatterAdd.apply(x, shape=(4, 8), index=(slice(None), slice(1, 6))),
        lambda dtype: floats(5, dtype=dtype),
        {"dynamic_batch": False, "batch": 4},
    ),
    "scatter-add-two-arrays": (
        lambda m, x: functions.ScatterAdd.apply(
            x, shape=(6, 6), index=(np.array([[0], [1], [1], [5]]), np.array([0, 1, 1, 2, 2]))
        ),
        lambda dtype: floats(5, dtype=dtype),
        {"dynamic_batch": False, "batch": 4},
    ),
    "scatter-add-broadcast-value": (
        lambda m, x: functions.ScatterAdd.apply(x[0, 0], shape=(6,), index=np.array([1, 1, 2])),
        lambda dtype: floats(5, dtype=dtype),
        {"dynamic_batch": False, "batch": 4},
    ),
    "scatter-add-unique-opset-13": (  # no position twice: no reduction needed, so any opset
        lambda m, x: functions.ScatterAdd.apply(x, shape=(5, 5), index=np.array([0, 2, 4, 1]), unique=True),
        lambda dtype: floats(5, dtype=dtype),
        {"dynamic_batch": False, "batch": 4, "opset": 13},
    ),
    "scatter-add-nothing": (
        lambda m, x: functions.ScatterAdd.apply(x[:0], shape=(2, 5), index=slice(0, 0)) + x[:2],
        lambda dtype: floats(5, dtype=dtype),
        {"dynamic_batch": False, "batch": 4},
    ),
    "mse": (
        lambda m, x, t: F.mse_loss(x, t) + F.mse_loss(x, t, reduction="sum"),
        lambda dtype: pairs(5, dtype=dtype),
        {},
    ),
    "mse-none": (lambda m, x, t: F.mse_loss(x, t, reduction="none"), lambda dtype: pairs(2, 3, dtype=dtype), {}),
    "bce": (
        lambda m, p, t: F.binary_cross_entropy(p, t) + F.binary_cross_entropy(p, t, weight=m.weight, reduction="sum"),
        lambda dtype: pairs(5, dtype=dtype, low=0.0, high=1.0, target=binary(5, dtype=dtype)),
        {},
    ),
    "bce-at-0-and-1": (  # log 0 is floored at -100, as in PyTorch
        lambda m, p, t: F.binary_cross_entropy((p * 3 - 1).clip(0, 1), t, reduction="none"),
        lambda dtype: pairs(5, dtype=dtype, low=0.0, high=1.0, target=binary(5, dtype=dtype)),
        {},
    ),
    "bce-with-logits": (
        lambda m, x, t: (
            F.binary_cross_entropy_with_logits(x * 30, t)
            + F.binary_cross_entropy_with_logits(x, t, weight=m.weight, pos_weight=m.weight[::-1].copy())
        ),
        lambda dtype: pairs(5, dtype=dtype, target=binary(5, dtype=dtype)),
        {},
    ),
    "bce-with-logits-none": (
        lambda m, x, t: F.binary_cross_entropy_with_logits(x * 40, t, reduction="none"),
        lambda dtype: pairs(5, dtype=dtype, target=binary(5, dtype=dtype)),
        {},
    ),
    "cross-entropy": (  # the labels are part of the model here: F.cross_entropy reads a target's array
        lambda m, x: (
            F.cross_entropy(x, LABELS)
            + F.cross_entropy(x, LABELS, weight=m.weight, reduction="sum")
            + F.cross_entropy(x, np.array([0, 4, 3, 2, 4]), weight=m.weight, ignore_index=4, reduction="none").sum()
        ),
        lambda dtype: floats(5, dtype=dtype),
        {"dynamic_batch": False, "batch": 5},
    ),
    "cross-entropy-every-target-ignored": (  # NaN, as PyTorch
        lambda m, x: F.cross_entropy(x, np.full(5, -100)),
        lambda dtype: floats(5, dtype=dtype),
        {"dynamic_batch": False, "batch": 5},
    ),
    "cross-entropy-one-row": (
        lambda m, x: F.cross_entropy(x[0], np.array(3)) + F.cross_entropy(x[1], np.array(1), reduction="none"),
        lambda dtype: floats(5, dtype=dtype),
        {"dynamic_batch": False, "batch": 2},
    ),
    "cross-entropy-3d": (
        lambda m, x: F.cross_entropy(x, np.array([[0, 1, 4], [2, -100, 3]]), weight=m.weight, reduction="none"),
        lambda dtype: floats(5, 3, dtype=dtype),
        {"dynamic_batch": False, "batch": 2},
    ),
    "cross-entropy-labels-as-an-input": (  # the primitive itself takes them as a tensor: an integer graph input
        lambda m, x, labels: functions.CrossEntropy.apply(x, labels, weight=m.weight),
        lambda dtype: lambda batch: [floats(5, dtype=dtype)(batch), np.arange(batch) % 5],
        {},
    ),
    "cross-entropy-probabilities": (
        lambda m, x, p: F.cross_entropy(x, p.softmax(axis=1)) + F.cross_entropy(x, p.softmax(), weight=m.weight),
        lambda dtype: pairs(5, dtype=dtype),
        {},
    ),
    "cross-entropy-probabilities-3d": (
        lambda m, x, p: F.cross_entropy(x, p.softmax(axis=1), weight=m.weight, reduction="none"),
        lambda dtype: pairs(5, 3, dtype=dtype),
        {},
    ),
    "scalar-arithmetic": (  # numbers are 0-d constants: a 0-d result stays 0-d
        lambda m, x: (x.sum() * 2 + 1.5) / 3 - x.mean(axis=(0, 1)) ** 2 + tg.maximum(x.max(), 0.5),
        lambda dtype: floats(4, dtype=dtype),
        {},
    ),
    "scalar-parameter": (lambda m, x: x * m.t + m.t, lambda d: floats(4, dtype=d), {"t": np.array(1.5, np.float32)}),
    "zero-d-index-array": (lambda m, x: x[:, np.array(2)] + x[:, np.array(-1)], lambda d: floats(4, dtype=d), {}),
    "reshape-batch-and-minus-one": (  # the batch size read at run time: -1 is taken already
        lambda m, x: x.reshape(len(x), -1) + x.reshape(len(x), 2, -1).reshape(len(x), 20),
        lambda dtype: floats(4, 5, dtype=dtype),
        {},
    ),
}


def as_inputs(value):
    return value if isinstance(value, list) else [value]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("case", list(MORE_OPS))
def test_each_added_primitive_matches_onnx_runtime(tmp_path, onnxruntime, case, dtype):
    function, make_input, options = MORE_OPS[case]
    options = dict(options)
    parameters = {name: options.pop(name).astype(dtype) for name in ("w", "t") if name in options}
    model = Lambda(function, **parameters)
    model.weight = CLASS_WEIGHT.astype(dtype)  # a loss's weights, in the model's dtype (a plain array)
    make = make_input(dtype)
    batch = options.pop("batch", 3)
    path = tmp_path / "model.onnx"
    with np.errstate(divide="ignore", invalid="ignore"):  # log(0) and 0 ** -p, as the cases mean them
        tonnx.export(model, tuple(as_inputs(make(batch))), path, **options)
    dynamic = options.get("dynamic_batch", True)
    for size in (1, 7) if dynamic else (batch,):
        inputs = as_inputs(make(size))
        with np.errstate(divide="ignore", invalid="ignore"):
            ours, theirs = run_both(model, inputs, path, onnxruntime)
        for mine, other in zip(ours, theirs):
            assert mine.shape == other.shape, (size, mine.shape, other.shape)
            assert mine.dtype == other.dtype, (size, mine.dtype, other.dtype)
            tolerance = 1e-5 if mine.dtype == np.float32 else 1e-12
            np.testing.assert_allclose(other, mine, rtol=tolerance, atol=tolerance)


def test_log1p_keeps_its_accuracy_for_small_values_and_its_special_values(tmp_path, onnxruntime):
    """ONNX has no Log1p; the converter's form stays within a few ulps of numpy's, where log(1 + x) would not."""
    model = Lambda(lambda m, x: functions.Log1p.apply(x))
    for dtype in (np.float32, np.float64):
        tiny = np.finfo(dtype).tiny
        extremes = [np.finfo(dtype).max, np.inf, -1.0, -np.inf, np.nan, -2.0]
        values = np.array(
            [0.0, -0.0, tiny, 1e-30, -1e-30, 1e-12, 1e-8, -1e-8, 3e-5, -0.5, -0.999, 1.0, 10.0, 1e10, 1e30, *extremes],
            dtype=dtype,
        ).reshape(1, -1)
        path = tmp_path / f"log1p-{np.dtype(dtype).name}.onnx"
        with np.errstate(divide="ignore", invalid="ignore"):  # numpy warns of log1p(-1) and log1p(-2)
            tonnx.export(model, values, path)
            ours, theirs = run_both(model, [values], path, onnxruntime)
            expected = np.log1p(values)
        np.testing.assert_array_equal(ours[0], expected)
        finite = np.isfinite(expected)
        np.testing.assert_array_equal(theirs[0][~finite], expected[~finite])  # -inf at -1, NaN below, inf at inf
        ulps = np.abs(theirs[0][finite] - expected[finite]) / np.spacing(np.abs(expected[finite]))
        assert ulps.max() <= 4, (dtype, ulps.max())
        naive = np.log(1 + values[finite])  # what a plain Log(Add(x, 1)) gives: 0 for 1e-30
        assert np.abs(naive - expected[finite]).max() > 1e-31


def test_a_float32_loss_with_float64_weights_agrees_to_float32_precision(tmp_path, onnxruntime):
    """numpy computes such a loss partly in float32 and ends in float64; the export computes it all in float64."""
    model = Lambda(
        lambda m, x, t: (
            F.cross_entropy(x, t.softmax(), weight=CLASS_WEIGHT)
            + F.binary_cross_entropy_with_logits(x, t.sigmoid(), pos_weight=CLASS_WEIGHT)
            + F.binary_cross_entropy(x.sigmoid(), t.sigmoid(), weight=CLASS_WEIGHT)
        )
    )
    make = pairs(5)
    path = tmp_path / "mixed.onnx"
    tonnx.export(model, tuple(make(3)), path)
    ours, theirs = run_both(model, make(7), path, onnxruntime)
    assert ours[0].dtype == theirs[0].dtype == np.float64
    np.testing.assert_allclose(theirs[0], ours[0], rtol=1e-6)


def test_scatter_add_into_a_position_twice_needs_opset_16():
    model = Lambda(lambda m, x: functions.ScatterAdd.apply(x, shape=(3, 5), index=np.array([0, 2, 0, 1])))
    with pytest.raises(
        tonnx.ExportError, match=r"needs ScatterElements with reduction='add', from opset 16.*asked for 15"
    ):
        tonnx.export(model, floats(5)(4), None, dynamic_batch=False, opset=15)
    assert tonnx.export(model, floats(5)(4), None, dynamic_batch=False, opset=16) is not None


def test_a_scatter_add_stores_its_positions_but_not_its_zeros(tmp_path, onnx, onnxruntime):
    """Scattering 2 rows into a table of 1000 x 50: the file holds the 100 positions, the zeros are made at run time."""
    model = Lambda(lambda m, x: functions.ScatterAdd.apply(x, shape=(1000, 50), index=np.array([3, 997])))
    path = tmp_path / "scatter.onnx"
    proto = tonnx.export(model, floats(50)(2), path, dynamic_batch=False)
    assert sum(onnx.numpy_helper.to_array(i).size for i in proto.graph.initializer) < 200
    assert "ConstantOfShape" in {node.op_type for node in proto.graph.node}
    x = floats(50)(2)
    ours, theirs = run_both(model, [x], path, onnxruntime)
    assert theirs[0].shape == (1000, 50) and theirs[0].dtype == np.float32
    np.testing.assert_array_equal(theirs[0], ours[0])


def test_a_scatter_add_whose_shape_follows_the_batch_says_to_fix_the_batch():
    model = Lambda(lambda m, x: functions.ScatterAdd.apply(x, shape=(len(x) + 1, 5), index=slice(1, None)))
    with pytest.raises(tonnx.ExportError, match=r"op #0, ScatterAdd, option shape= differs .* dynamic_batch=False"):
        tonnx.export(model, floats(5)(4), None)


def test_an_expand_to_a_size_that_is_not_the_batch_is_refused():
    model = Lambda(lambda m, x: x.sum().expand(2 * len(x)))
    with pytest.raises(tonnx.ExportError, match=r"changes with the batch without being the batch size"):
        tonnx.export(model, floats(5)(4), None)


def test_a_0d_parameter_is_a_0d_initializer():
    model = Lambda(lambda m, x: (x * m.temperature).sum(axis=1) + m.temperature, temperature=np.array(0.5, np.float32))
    proto = tonnx.export(model, floats(4)(3), None)
    (initializer,) = [i for i in proto.graph.initializer if i.name == "temperature"]
    assert list(initializer.dims) == []  # the state dict's shape ()
    assert [d.dim_param or d.dim_value for d in proto.graph.output[0].type.tensor_type.shape.dim] == ["batch"]


def test_dropout_and_clip_constants_are_scalars(onnx):
    """Constants keep their rank: Dropout's ratio and training flag and Clip's bounds are 0-d, as ONNX asks."""
    model = Lambda(lambda m, x: F.dropout(x, 0.25, training=True).clip(-1.0, 1.0) * 2)
    proto = tonnx.export(model, floats(5)(3), None)
    assert [node.op_type for node in proto.graph.node] == ["Dropout", "Clip", "Mul"]
    shapes = {init.name: list(init.dims) for init in proto.graph.initializer}
    for node in proto.graph.node:
        for name in node.input[1:]:
            assert shapes[name] == [], (node.op_type, name, shapes[name])


# The primitives that only a backward pass applies: each is the gradient of a forward op, made by that op's
# backward (through functions.xp) and never by a Tensor method, a layer or nn.functional. A model meets them
# only by computing a gradient inside its forward pass, which export refuses with a message of its own
# (test_a_gradient_computed_inside_forward_is_refused_as_such).
GRADIENT_ONLY = {
    "ConvTranspose": "the gradient of Conv with respect to its input (there is no transposed-convolution layer)",
    "ConvWeightGrad": "the gradient of Conv with respect to its weight",
    "WindowScatter": "MaxPool's backward: the gradient sent to each window's winning position",
    "WindowGather": "the gradient of WindowScatter (MaxPool's second derivative)",
    "AvgPoolTranspose": "AvgPool's backward: each window's gradient spread over the window",
}


def builtin_primitives():
    """Every Function subclass defined in a module of the tinygrad_nn.functions package, found by walking it."""
    found = {}
    for info in pkgutil.walk_packages(functions.__path__, functions.__name__ + "."):
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, Function) and value.__module__ == module.__name__:
                found[value.__name__] = value
    del found["Primitive"]  # the base class every primitive derives from, not an op
    return found


def test_every_builtin_primitive_has_a_converter():
    primitives = builtin_primitives()
    # The walk finds the families' modules, not only what functions/__init__.py re-exports.
    assert {"Linear", "Conv", "Norm", "Expand", "Log1p", "ScatterAdd", "CrossEntropy"} <= set(primitives)
    assert len(primitives) >= 50
    registered = set(tonnx.registered_ops())
    missing = sorted(name for name, cls in primitives.items() if cls not in registered and name not in GRADIENT_ONLY)
    assert missing == [], f"forward primitives without an ONNX converter: {missing}"
    # The list of exceptions stays true: each is a primitive, and none has quietly gained a converter.
    assert set(GRADIENT_ONLY) <= set(primitives)
    assert not {primitives[name] for name in GRADIENT_ONLY} & registered


def test_the_coverage_test_fails_for_a_new_forward_primitive_without_a_converter(monkeypatch):
    class Softsign(functions.Primitive):
        __slots__ = ()

        @staticmethod
        def forward(ctx, x):
            return x / (1 + np.abs(x))

    Softsign.__module__ = functions.elementwise.__name__
    monkeypatch.setattr(functions.elementwise, "Softsign", Softsign, raising=False)
    with pytest.raises(AssertionError, match=r"without an ONNX converter: \['Softsign'\]"):
        test_every_builtin_primitive_has_a_converter()


def test_several_inputs_and_outputs(tmp_path, onnxruntime):
    model = Lambda(lambda m, a, b: (a * b + m.w, (a - b).relu()), w=COLUMN)
    a, b = floats(5, seed=1), floats(5, seed=2)
    path = tmp_path / "two.onnx"
    proto = tonnx.export(model, (a(3), b(3)), path, output_names=["product", "difference"])
    assert [i.name for i in proto.graph.input] == ["input_0", "input_1"]
    assert [o.name for o in proto.graph.output] == ["product", "difference"]
    ours, theirs = run_both(model, [a(7), b(7)], path, onnxruntime)
    for mine, other in zip(ours, theirs):
        np.testing.assert_allclose(other, mine, rtol=1e-6)


# ------------------------------------------------------------------------------------------------------------
# What export refuses, and how a user's op is registered
# ------------------------------------------------------------------------------------------------------------


class Cube(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return 3 * grad * x**2


def test_a_users_function_is_an_error_naming_it_and_saying_how_to_register_it(tmp_path):
    model = Lambda(lambda m, x: Cube.apply(x.relu()))
    with pytest.raises(tonnx.ExportError) as caught:
        tonnx.export(model, floats(5)(2), tmp_path / "model.onnx")
    message = str(caught.value)
    assert "op #1, Cube (from test_onnx), has no ONNX form" in message
    assert "@tinygrad_nn.onnx.register_onnx_op(Cube)" in message
    assert list(tmp_path.iterdir()) == []


def test_a_registered_converter_exports_a_users_function(tmp_path, onnxruntime, monkeypatch):
    monkeypatch.setattr(tonnx, "_CONVERTERS", dict(tonnx._CONVERTERS))  # the registration ends with the test

    @tonnx.register_onnx_op(Cube)
    def convert_cube(graph, record):
        dtype = graph.output_dtype(record)
        return graph.node("Pow", [graph.input(record, 0, dtype), graph.constant(np.array(3, dtype))])

    assert Cube in tonnx.registered_ops()
    assert_exports_and_matches(Lambda(lambda m, x: Cube.apply(x) + 1), floats(5), tmp_path, onnxruntime)


def test_a_subclass_of_a_primitive_needs_its_own_converter(tmp_path):
    class LeakyReLU(functions.ReLU):
        @staticmethod
        def forward(ctx, x):
            return np.where(x > 0, x, 0.01 * x)

    with pytest.raises(tonnx.ExportError, match=r"LeakyReLU .* has no ONNX form"):
        tonnx.export(Lambda(lambda m, x: LeakyReLU.apply(x)), floats(5)(2), None)


def test_register_onnx_op_takes_a_class():
    with pytest.raises(TypeError, match="takes a Function class"):
        tonnx.register_onnx_op("ReLU")


def test_a_value_computed_outside_the_graph_is_refused(tmp_path):
    # x > 0 is a plain boolean tensor, outside the graph: exported, it would be frozen at the example's values.
    model = Lambda(lambda m, x: tg.where(x > 0, x, 0.0))
    with pytest.raises(tonnx.ExportError, match=r"op #0, Where, input 0 is a tensor computed outside the recorded"):
        tonnx.export(model, floats(5)(3), tmp_path / "model.onnx")
    model = Lambda(lambda m, x: x * Tensor(np.sign(x.data)))
    with pytest.raises(tonnx.ExportError, match="changes with the model's input"):
        tonnx.export(model, floats(5)(3), None, dynamic_batch=False)


def test_control_flow_that_depends_on_the_batch_is_refused():
    model = Lambda(lambda m, x: tg.stack([row.relu() for row in x]))
    with pytest.raises(tonnx.ExportError, match="ran different ops on two inputs"):
        tonnx.export(model, floats(5)(3), None)


def test_an_option_that_follows_the_batch_is_refused_unless_the_batch_is_fixed(tmp_path, onnxruntime):
    model = Lambda(lambda m, x: x[: len(x) // 2])
    with pytest.raises(tonnx.ExportError, match=r"option index= differs between a batch of 5 and one of 6"):
        tonnx.export(model, floats(3)(5), None)
    path = tmp_path / "fixed.onnx"
    tonnx.export(model, floats(3)(5), path, dynamic_batch=False)
    ours, theirs = run_both(model, [floats(3)(5)], path, onnxruntime)
    np.testing.assert_array_equal(theirs[0], ours[0])


def test_a_reshape_with_the_batch_size_written_in_becomes_minus_one(tmp_path, onnx, onnxruntime):
    path = assert_exports_and_matches(
        Lambda(lambda m, x: x.reshape(len(x), 2, 10).sum(axis=1)), floats(20), tmp_path, onnxruntime
    )
    (reshape,) = [node for node in onnx.load(str(path)).graph.node if node.op_type == "Reshape"]
    (shape,) = [i for i in onnx.load(str(path)).graph.initializer if i.name == reshape.input[1]]
    assert list(onnx.numpy_helper.to_array(shape)) == [-1, 2, 10]  # a constant: no Shape node needed


def test_a_reshape_with_the_batch_size_and_minus_one_reads_the_batch_at_run_time(tmp_path, onnx, onnxruntime):
    """x.reshape(len(x), -1), PyTorch's usual flatten, once refused: the batch size comes from the input's Shape."""
    model = Lambda(lambda m, x: x.reshape(len(x), -1) @ m.w, w=rng.standard_normal((20, 3)).astype(np.float32))
    path = assert_exports_and_matches(model, floats(4, 5), tmp_path, onnxruntime)
    assert {"Shape", "Concat"} <= {node.op_type for node in onnx.load(str(path)).graph.node}
    model = Lambda(lambda m, x: x.reshape(2 * len(x), -1))  # twice the batch: not something Shape gives
    with pytest.raises(tonnx.ExportError, match=r"changes with the batch without being the batch size.*op #0, Reshape"):
        tonnx.export(model, floats(4, 5)(3), None)


def test_bad_arguments_are_named(tmp_path):
    model = mlp(np.float32)
    x = floats(20)(2)
    with pytest.raises(ValueError, match=r"opset must be a whole number from 13 to \d+, got 12"):
        tonnx.export(model, x, None, opset=12)
    for wrong in ("no", 0, None):
        with pytest.raises(TypeError, match=rf"dynamic_batch must be True or False, got {wrong!r}"):
            tonnx.export(model, x, None, dynamic_batch=wrong)
    with pytest.raises(ValueError, match=r"input_names must be 1 distinct non-empty strings, got \['a', 'b'\]"):
        tonnx.export(model, x, None, input_names=["a", "b"])
    with pytest.raises(ValueError, match="input and output names must differ"):
        tonnx.export(model, x, None, input_names=["x"], output_names=["x"])
    with pytest.raises(tonnx.ExportError, match="input 'input' is 0-d, so it has no batch axis"):
        tonnx.export(Lambda(lambda m, x: x * 2), np.float32(1.0), None)
    with pytest.raises(tonnx.ExportError, match="must return a Tensor or a tuple of Tensors, got ndarray"):
        tonnx.export(Lambda(lambda m, x: x.data), x, None)
    with pytest.raises(TypeError, match=r"export takes an nn\.Module, got function"):
        tonnx.export(lambda x: x, x, None)
    with pytest.raises(TypeError, match="example inputs must hold numbers"):
        tonnx.export(model, np.array(["a"]), None)


def test_an_index_mixing_arrays_and_none_is_refused_clearly():
    model = Lambda(lambda m, x: x[:, None, np.array([0, 1])])
    with pytest.raises(tonnx.ExportError, match="mixing integer or boolean arrays with None"):
        tonnx.export(model, floats(5)(3), None)


class Head(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(5, 5, dtype=np.float32)

    def forward(self, x):
        return Cube.apply(self.linear(x)) + Cube.apply(x)  # two ops without a converter, in module 'body.1'


class Nested(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(5, 5, dtype=np.float32), Head())

    def forward(self, x):
        return Cube.apply(self.body(x).relu())  # and one in the model's own forward


def line_of(text, function):
    """``file:line`` of the line of `function`'s source that contains `text`."""
    lines, start = inspect.getsourcelines(function)
    (offset,) = [i for i, line in enumerate(lines) if text in line]
    return f"{inspect.getsourcefile(function)}:{start + offset}"


def test_every_op_without_a_converter_is_named_with_its_module_and_line(tmp_path):
    path = tmp_path / "model.onnx"
    with pytest.raises(tonnx.ExportError) as caught:
        tonnx.export(Nested(), floats(5)(2), path)
    message = str(caught.value)
    head_line, own_line = line_of("two ops without", Head.forward), line_of("and one in", Nested.forward)
    assert (
        f"op #2, Cube (from test_onnx), has no ONNX form; it ran in module 'body.1' (Head), at {head_line}" in message
    )
    assert (
        f"op #3, Cube (from test_onnx), has no ONNX form; it ran in module 'body.1' (Head), at {head_line}" in message
    )
    assert (
        f"op #6, Cube (from test_onnx), has no ONNX form; it ran in the model's own forward (Nested), at {own_line}"
        in message
    )
    assert "@tinygrad_nn.onnx.register_onnx_op(Cube)" in message and message.endswith("No file was written.")
    assert list(tmp_path.iterdir()) == []


def test_a_failed_export_leaves_an_existing_file_alone(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"the last good export")
    with pytest.raises(tonnx.ExportError):
        tonnx.export(Nested(), floats(5)(2), path)
    assert path.read_bytes() == b"the last good export"
    assert list(tmp_path.iterdir()) == [path]  # and no temporary file beside it


def test_an_export_writes_the_file_and_nothing_else(tmp_path, onnx):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"an older export")
    proto = tonnx.export(mlp(np.float32), floats(20)(2), path)
    assert list(tmp_path.iterdir()) == [path]
    assert path.read_bytes() == proto.SerializeToString()
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)


def test_a_gradient_computed_inside_forward_is_refused_as_such():
    class GradientPenalty(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 1, 3, dtype=np.float32)

        def forward(self, x):
            out = self.conv(x.reshape(len(x), 1, 4, 4)).sum()
            (grad,) = tg.grad(out, [self.conv.weight], create_graph=True)
            return out + (grad * grad).sum()

    with pytest.raises(tonnx.ExportError) as caught:
        tonnx.export(GradientPenalty(), floats(16)(2), None)
    message = str(caught.value)
    assert re.search(r"op #\d+, ConvWeightGrad \(from tinygrad_nn\.functions\.conv\), has no ONNX form", message)
    assert "computes a gradient inside its forward pass" in message
    assert "register_onnx_op" not in message  # that advice is for the user's own Functions


def test_dtypes_onnx_cannot_compute_in_are_named():
    with pytest.raises(tonnx.ExportError, match=r"input 'input' has dtype complex64, which ONNX operators do not"):
        tonnx.export(mlp(np.float32), floats(20)(2).astype(np.complex64), None)
    if np.dtype(np.longdouble) == np.float64:
        pytest.skip("np.longdouble is float64 here")
    model = Lambda(lambda m, x: x * m.w, w=np.ones(5, np.longdouble))
    with pytest.raises(tonnx.ExportError, match=r"the parameter w has dtype float\d+, which ONNX operators do not"):
        tonnx.export(model, floats(5)(2), None)
    model = Lambda(lambda m, x: x.astype(np.longdouble).sum())
    with pytest.raises(
        tonnx.ExportError, match=r"the result of op #0, Cast \(in the model's own forward \(Lambda\), at .*test_onnx"
    ):
        tonnx.export(model, floats(5)(2), None)


def test_the_path_is_checked_before_the_model_runs(tmp_path):
    calls = []
    model = Lambda(lambda m, x: calls.append(1) or x * 2)
    x = floats(5)(2)
    with pytest.raises(FileNotFoundError, match=r"export: the folder .*missing for .*model\.onnx does not exist"):
        tonnx.export(model, x, tmp_path / "missing" / "model.onnx")
    with pytest.raises(IsADirectoryError, match=r"export: .* is a directory; give a file name such as .*model\.onnx"):
        tonnx.export(model, x, tmp_path)
    for wrong in (42, b"model.onnx", ["model.onnx"]):
        with pytest.raises(TypeError, match=r"export: path must be a file name \(str or os\.PathLike\) or None"):
            tonnx.export(model, x, wrong)
    assert calls == [] and list(tmp_path.iterdir()) == []
    tonnx.export(model, x, str(tmp_path / "model.onnx"))  # a str works as well as a Path
    assert calls == [1, 1] and (tmp_path / "model.onnx").is_file()


def test_a_converter_that_fails_is_named_with_the_op(monkeypatch):
    monkeypatch.setattr(tonnx, "_CONVERTERS", dict(tonnx._CONVERTERS))
    model = Lambda(lambda m, x: Cube.apply(x) + 1)

    @tonnx.register_onnx_op(Cube)
    def broken(graph, record):
        return graph.node("Pow", [graph.input(record, 0), graph.constant(np.float32(3))])[99]

    with pytest.raises(
        tonnx.ExportError, match=r"converter of Cube failed on op #0 \(in the model's own forward.*IndexError"
    ):
        tonnx.export(model, floats(5)(2), None)

    tonnx.register_onnx_op(Cube)(lambda graph, record: None)
    with pytest.raises(tonnx.ExportError, match=r"converter of Cube returned \[None\] for op #0; it must return"):
        tonnx.export(model, floats(5)(2), None)

    tonnx.register_onnx_op(Cube)(lambda graph, record: "made_up")
    with pytest.raises(tonnx.ExportError, match=r"returned 'made_up' for op #0, which no node, constant or input"):
        tonnx.export(model, floats(5)(2), None)


def test_without_onnx_export_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(
        ImportError, match=re.escape("pip install onnx (in a clone of tinygrad_nn, pip install -e '.[interop]'")
    ):
        tonnx.export(mlp(np.float32), floats(20)(2), None)


# ------------------------------------------------------------------------------------------------------------
# Convolution, pooling, normalisation, dropout, embedding and padding
# ------------------------------------------------------------------------------------------------------------

F = nn.functional


def small_cnn(dtype):
    """The default CNN's layers at a small size, with batch norm's running statistics moved off 0 and 1."""
    tg.manual_seed(4)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(6 * 3 * 3, 8),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(8, 5),
    ).to(dtype)
    model[1].running_mean[...] = np.linspace(-0.5, 0.5, 4)
    model[1].running_var[...] = np.linspace(0.5, 2.0, 4)
    return model


def test_a_cnn_runs_in_onnx_runtime_at_every_batch_size(tmp_path, onnxruntime, onnx):
    # float32 only: ONNX Runtime's CPU provider has no float64 Conv (the float64 graph is valid ONNX all the same).
    model = small_cnn(np.float32)
    model.train()
    tonnx.export(model, floats(1, 12, 12)(3), tmp_path / "trained.onnx")
    assert model.training and model[10].training  # export evaluated in eval mode, then restored the flags
    model.eval()
    path = assert_exports_and_matches(model, floats(1, 12, 12), tmp_path, onnxruntime)
    ops = [node.op_type for node in onnx.load(str(path)).graph.node]
    assert ops[:4] == ["Conv", "BatchNormalization", "Relu", "MaxPool"] and "Dropout" not in ops
    initializers = {i.name for i in onnx.load(str(path)).graph.initializer}
    assert {"0.weight", "0.bias", "1.weight", "1.bias", "4.weight", "8.weight"} <= initializers


CNN_OPS = {
    "conv2d-options": (
        lambda m, x: F.conv2d(x, m.w, m.b, stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2),
        floats(4, 9, 8),
        {"w": rng.standard_normal((6, 2, 3, 2)).astype(np.float32), "b": COLUMN[:1].repeat(6)},
    ),
    "conv2d-same-even": (
        lambda m, x: F.conv2d(x, m.w, padding="same"),
        floats(2, 7, 6),
        {"w": rng.standard_normal((3, 2, 4, 2)).astype(np.float32)},
    ),
    "conv1d": (
        lambda m, x: F.conv1d(x, m.w, stride=2, padding=1),
        floats(2, 11),
        {"w": rng.standard_normal((3, 2, 3)).astype(np.float32)},
    ),
    "conv2d-reflect": (lambda m, x: m.conv(x), floats(2, 6, 5), {}),
    "max-pool": (lambda m, x: F.max_pool2d(x, 3, 2, 1) + F.max_pool2d(x, 3, 2, 1, dilation=1), floats(2, 9, 8)),
    "max-pool-ceil-dilation": (lambda m, x: F.max_pool2d(x, 2, 2, 1, dilation=(2, 1), ceil_mode=True), floats(2, 9, 8)),
    "max-pool1d": (lambda m, x: F.max_pool1d(x, 3, 2), floats(2, 11)),
    "avg-pool": (
        lambda m, x: F.avg_pool2d(x, 3, 2, 1) + F.avg_pool2d(x, 3, 2, 1, count_include_pad=False),
        floats(2, 9, 8),
    ),
    "avg-pool-ceil": (lambda m, x: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False), floats(2, 9, 8)),
    "avg-pool-divisor": (lambda m, x: F.avg_pool2d(x, 2, 1, divisor_override=3), floats(2, 5, 4)),
    "avg-pool1d": (lambda m, x: F.avg_pool1d(x, 2), floats(2, 8)),
    "global-average": (lambda m, x: F.adaptive_avg_pool2d(x, 1).reshape(-1, 2), floats(2, 5, 7)),
    "adaptive-even": (lambda m, x: F.adaptive_avg_pool2d(x, (2, 3)), floats(2, 6, 9)),
    "adaptive-uneven": (lambda m, x: F.adaptive_avg_pool2d(x, (4, 3)), floats(2, 9, 7)),
    "adaptive1d": (lambda m, x: F.adaptive_avg_pool1d(x, 3), floats(2, 7)),
    "batch-norm-eval": (
        lambda m, x: F.batch_norm(x, m.mean, m.var, m.w, m.b, training=False, eps=1e-3),
        floats(3, 4),
        {"w": COLUMN[:3], "b": COLUMN[2:], "mean": COLUMN[1:4], "var": abs(COLUMN[:3]) + 0.5},
    ),
    "batch-norm-no-affine": (lambda m, x: m.bn(x), floats(3, 2, 2), {}),
    "batch-norm-batch-statistics": (lambda m, x: F.batch_norm(x, None, None, training=True), floats(3, 2, 2)),
    "layer-norm": (
        lambda m, x: F.layer_norm(x, (3, 4), m.w, m.b),
        floats(3, 4),
        {"w": np.linspace(0.5, 2, 12, dtype=np.float32).reshape(3, 4), "b": WEIGHT[:4, :].T.copy()},
    ),
    "layer-norm-plain": (lambda m, x: F.layer_norm(x, 5), floats(5)),
    "pad-constant": (lambda m, x: F.pad(x, (1, 2, 0, 1), value=0.5), floats(3, 4)),
    "pad-crop": (lambda m, x: F.pad(x, (-1, 2, 1, -1)), floats(3, 4)),
    "pad-modes": (
        lambda m, x: (
            F.pad(x, (1, 1, 2, 0), mode="reflect")
            + F.pad(x, (1, 1, 2, 0), mode="replicate")
            + F.pad(x, (1, 1, 2, 0), mode="circular")
        ),
        floats(2, 4, 5),
    ),
}


# The cases whose ONNX operators ONNX Runtime's CPU provider computes in float32 only, with the first such one.
NO_FLOAT64_IN_ONNX_RUNTIME = {
    "conv2d-options": "Conv",
    "conv2d-same-even": "Conv",
    "conv1d": "Conv",
    "conv2d-reflect": "Conv",
    "avg-pool": "AveragePool",
    "avg-pool-ceil": "Conv",  # the exact form of ceil_mode's edge windows: a Conv of ones
    "avg-pool-divisor": "Conv",
    "avg-pool1d": "AveragePool",
    "global-average": "GlobalAveragePool",
    "adaptive-even": "AveragePool",
}


@pytest.mark.parametrize("case", list(CNN_OPS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_each_cnn_op_matches_onnx_runtime(tmp_path, onnxruntime, case, dtype):
    function, make_input, *parameters = CNN_OPS[case]
    arrays = {name: value.astype(dtype) for name, value in (parameters[0] if parameters else {}).items()}
    model = Lambda(function, **{k: v for k, v in arrays.items() if k in ("w", "b")})
    for name, value in arrays.items():
        if name not in ("w", "b"):
            setattr(model, name, value)  # running statistics: arrays, not parameters
    model.conv = nn.Conv2d(2, 3, 3, padding=(1, 2), padding_mode="reflect", dtype=dtype)
    model.bn = nn.BatchNorm2d(3, affine=False, dtype=dtype)
    model.bn.running_var[...] = 2.0
    model.eval()  # as exported: running statistics
    make = lambda batch: make_input(batch).astype(dtype)  # noqa: E731
    if dtype == np.float64 and case in NO_FLOAT64_IN_ONNX_RUNTIME:
        # Valid ONNX (export ran onnx.checker), which ONNX Runtime's CPU provider has no float64 kernel for.
        proto = tonnx.export(model, make(3), None)
        assert NO_FLOAT64_IN_ONNX_RUNTIME[case] in {node.op_type for node in proto.graph.node}
        with pytest.raises(Exception, match=rf"NOT_IMPLEMENTED.*{NO_FLOAT64_IN_ONNX_RUNTIME[case]}"):
            onnxruntime.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
        return
    assert_exports_and_matches(model, make, tmp_path, onnxruntime, batches=(1, 7))


def test_float64_batch_and_layer_norm_keep_eps_in_float64(tmp_path, onnx, onnxruntime):
    """ONNX stores an epsilon attribute as a float32: for float64 the norms are written as plain operators."""
    assert np.isclose(abs(float(np.float32(1e-3)) - 1e-3), 5e-11, rtol=0.1)  # the error docs/moving-on.md quotes
    model = nn.Sequential(nn.BatchNorm1d(4, eps=1e-3), nn.LayerNorm(4, eps=1e-3)).to(np.float64)
    model[0].running_var[...] = np.linspace(0.5, 2.0, 4)
    model[0].running_mean[...] = np.linspace(-1.0, 1.0, 4)
    model[0].weight.data[...] = np.linspace(0.5, 1.5, 4)
    model.eval()
    path = assert_exports_and_matches(model, floats(4, dtype=np.float64), tmp_path, onnxruntime)
    ops = {node.op_type for node in onnx.load(str(path)).graph.node}
    assert not ops & {"BatchNormalization", "LayerNormalization"}
    proto = tonnx.export(model.to(np.float32), floats(4)(3), None)  # float32 keeps ONNX's own operators
    assert {"BatchNormalization", "LayerNormalization"} <= {node.op_type for node in proto.graph.node}


@pytest.mark.parametrize("opset", [13, 17])
def test_layer_norm_before_and_after_opset_17(tmp_path, onnx, onnxruntime, opset):
    model = nn.Sequential(nn.LayerNorm(6, dtype=np.float32))
    model[0].weight.data[...] = np.linspace(0.5, 2, 6)
    path = assert_exports_and_matches(model, floats(4, 6), tmp_path, onnxruntime, opset=opset)
    ops = {node.op_type for node in onnx.load(str(path)).graph.node}
    assert ("LayerNormalization" in ops) == (opset >= 17)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_an_embedding_takes_integer_indices_as_its_input(tmp_path, onnx, onnxruntime, dtype):
    tg.manual_seed(0)
    model = nn.Sequential(nn.Embedding(10, 4, padding_idx=0), nn.Flatten(), nn.Linear(12, 2)).to(dtype)
    path = tmp_path / "embedding.onnx"
    proto = tonnx.export(model, np.array([[1, 2, 3], [0, 9, 4]]), path)
    assert "Gather" in [node.op_type for node in proto.graph.node]
    for indices in (np.array([[5, 5, 0]]), np.random.default_rng(0).integers(0, 10, (7, 3))):
        ours, theirs = run_both(model, [indices], path, onnxruntime)
        assert theirs[0].dtype == ours[0].dtype == dtype
        tolerance = 1e-6 if dtype == np.float32 else 1e-13
        np.testing.assert_allclose(theirs[0], ours[0], rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_dropout_in_training_mode_inside_forward_exports_as_random_dropout(tmp_path, onnxruntime, dtype):
    """An nn.Dropout is no op in eval mode; F.dropout(training=True) written into forward stays random."""
    model = Lambda(lambda m, x: F.dropout(x, 0.25, training=True))
    path = tmp_path / "dropout.onnx"
    tonnx.export(model, np.ones((2, 4000), dtype), path)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = session.run(None, {"input": np.ones((5, 4000), dtype)})[0]
    assert out.dtype == dtype
    kept = out != 0
    assert abs(kept.mean() - 0.75) < 5 * np.sqrt(0.75 * 0.25 / out.size)
    np.testing.assert_allclose(out[kept], 1 / 0.75, rtol=1e-6 if dtype == np.float32 else 1e-15)


def test_a_pytorch_style_training_flag_in_batch_norm_is_restored_after_export(tmp_path):
    model = small_cnn(np.float32)
    before = model[1].running_mean.copy()
    tonnx.export(model, floats(1, 12, 12)(2), tmp_path / "m.onnx")
    np.testing.assert_array_equal(model[1].running_mean, before)  # export ran in eval mode: no update
    assert int(model[1].num_batches_tracked) == 0
