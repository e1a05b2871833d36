"""The primitives: one `Function` per operation, its forward and its backward side by side, grouped by family.

- `elementwise`: arithmetic and functions of one tensor;
- `reduce`: sum, mean, max, min, norm;
- `shape`: reshape, transpose, broadcast, indexing, concatenate, stack;
- `matmul`: ``@`` and the fused `Linear`;
- `conv`: convolution (and its two gradients), max, average and adaptive pooling, constant padding;
- `normalization`: softmax and log-softmax, batch norm and layer norm;
- `dropout`: the one primitive that draws random numbers;
- `embedding`: table lookup;
- `losses`: the fused losses;
- `xp`: the array namespace the backward formulas are written in (numpy for ndarrays, these primitives for
  Tensors), which makes every op differentiable again under ``create_graph``.

`base` says what every primitive promises the engine. Every primitive is importable from here by name
(``tinygrad_nn.functions.Linear``).
"""

from . import xp
from .base import Primitive
from .conv import (
    AdaptiveAvgPool,
    AvgPool,
    AvgPoolTranspose,
    Conv,
    ConvTranspose,
    ConvWeightGrad,
    MaxPool,
    Pad,
    WindowGather,
    WindowScatter,
)
from .dropout import Dropout
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
from .embedding import Embedding
from .losses import (
    BinaryCrossEntropy,
    BinaryCrossEntropyWithLogits,
    CrossEntropy,
    CrossEntropyWithProbabilities,
    MeanSquaredError,
)
from .matmul import Linear, MatMul
from .normalization import BatchNorm, LayerNorm, LogSoftmax, Softmax
from .reduce import Max, Mean, Min, Norm, PickExtreme, Sum
from .shape import Concatenate, Expand, Index, Reshape, ScatterAdd, Stack, Transpose

__all__ = [
    "Abs",
    "AdaptiveAvgPool",
    "Add",
    "AvgPool",
    "AvgPoolTranspose",
    "BatchNorm",
    "BinaryCrossEntropy",
    "BinaryCrossEntropyWithLogits",
    "Cast",
    "Clip",
    "Concatenate",
    "Conv",
    "ConvTranspose",
    "ConvWeightGrad",
    "CrossEntropy",
    "CrossEntropyWithProbabilities",
    "Div",
    "Dropout",
    "Embedding",
    "Exp",
    "Expand",
    "Index",
    "LayerNorm",
    "Linear",
    "Log",
    "Log1p",
    "LogSoftmax",
    "MatMul",
    "Max",
    "MaxPool",
    "Maximum",
    "Mean",
    "MeanSquaredError",
    "Min",
    "Minimum",
    "Mul",
    "Neg",
    "Norm",
    "Pad",
    "PickExtreme",
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
    "WindowGather",
    "WindowScatter",
    "xp",
]
