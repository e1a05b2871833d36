"""The primitives: one `Function` per operation, its forward and its backward side by side, grouped by family.

- `elementwise`: arithmetic and functions of one tensor;
- `reduce`: sum, mean, max, min, norm;
- `shape`: reshape, transpose, broadcast, indexing, concatenate, stack;
- `matmul`: ``@`` and the fused `Linear`;
- `normalization`: softmax and log-softmax;
- `losses`: the fused losses;
- `xp`: the array namespace the backward formulas are written in (numpy for ndarrays, these primitives for
  Tensors), which makes every op differentiable again under ``create_graph``.

`base` says what every primitive promises the engine. Every primitive is importable from here by name
(``tinygrad_nn.functions.Linear``).
"""

from . import xp
from .base import Primitive
from .elementwise import (
    Abs,
    Add,
    Cast,
    Clip,
    Div,
    Exp,
    Log,
    Log1p,
    Maximum,
    Minimum,
    Mul,
    Neg,
    Pow,
    ReLU,
    Sigmoid,
    Sqrt,
    Sub,
    Tanh,
    Where,
)
from .losses import (
    BinaryCrossEntropy,
    BinaryCrossEntropyWithLogits,
    CrossEntropy,
    CrossEntropyWithProbabilities,
    MeanSquaredError,
)
from .matmul import Linear, MatMul
from .normalization import LogSoftmax, Softmax
from .reduce import Max, Mean, Min, Norm, Sum
from .shape import Concatenate, Expand, Index, Reshape, ScatterAdd, Stack, Transpose

__all__ = [
    "Abs",
    "Add",
    "BinaryCrossEntropy",
    "BinaryCrossEntropyWithLogits",
    "Cast",
    "Clip",
    "Concatenate",
    "CrossEntropy",
    "CrossEntropyWithProbabilities",
    "Div",
    "Exp",
    "Expand",
    "Index",
    "Linear",
    "Log",
    "Log1p",
    "LogSoftmax",
    "MatMul",
    "Max",
    "Maximum",
    "Mean",
    "MeanSquaredError",
    "Min",
    "Minimum",
    "Mul",
    "Neg",
    "Norm",
    "Pow",
    "Primitive",
    "ReLU",
    "Reshape",
    "ScatterAdd",
    "Sigmoid",
    "Softmax",
    "Sqrt",
    "Stack",
    "Sub",
    "Sum",
    "Tanh",
    "Transpose",
    "Where",
    "xp",
]
