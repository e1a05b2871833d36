"""tinygrad_nn: a small reverse-mode autograd framework on numpy, with PyTorch's names.

>>> from tinygrad_nn import Tensor
>>> w = Tensor([0.5, -1.0], requires_grad=True)
>>> loss = ((w * 3.0).sigmoid() ** 2).sum()
>>> loss.backward()
>>> w.grad.shape
(2,)
"""

from . import data, func, models, monitor, nn, onnx, optim, training
from .autograd import (
    AnomalyError,
    BackwardError,
    DoubleBackwardError,
    Function,
    ModifiedInPlaceError,
    detect_anomaly,
    enable_grad,
    grad,
    is_grad_enabled,
    no_grad,
    once_differentiable,
    retain_grads,
    set_grad_enabled,
)
from .creation import (
    arange,
    empty,
    empty_like,
    eye,
    full,
    full_like,
    ones,
    ones_like,
    rand,
    rand_like,
    randn,
    randn_like,
    tensor,
    zeros,
    zeros_like,
)
from .dtypes import get_default_dtype, set_default_dtype
from .gradcheck import GradcheckError, GradcheckReport, GradcheckWarning, gradcheck, gradcheck_report, gradgradcheck
from .monitor import GradientMonitor
from .random import get_rng_state, manual_seed, set_rng_state
from .serialization import load, load_metadata, save
from .tensor import Tensor, cat, concatenate, maximum, minimum, stack, where
from .viz import GraphExplorer, GraphvizNotFoundError, draw_graph, render_graph, save_graph, show_graph

__version__ = "0.2.0"

__all__ = [
    "AnomalyError",
    "BackwardError",
    "DoubleBackwardError",
    "Function",
    "GradcheckError",
    "GradcheckReport",
    "GradcheckWarning",
    "GradientMonitor",
    "GraphExplorer",
    "GraphvizNotFoundError",
    "ModifiedInPlaceError",
    "Tensor",
    "__version__",
    "arange",
    "cat",
    "concatenate",
    "data",
    "detect_anomaly",
    "draw_graph",
    "empty",
    "empty_like",
    "enable_grad",
    "eye",
    "full",
    "full_like",
    "func",
    "get_default_dtype",
    "get_rng_state",
    "grad",
    "gradcheck",
    "gradcheck_report",
    "gradgradcheck",
    "is_grad_enabled",
    "load",
    "load_metadata",
    "manual_seed",
    "maximum",
    "minimum",
    "models",
    "monitor",
    "nn",
    "no_grad",
    "once_differentiable",
    "ones",
    "ones_like",
    "onnx",
    "optim",
    "rand",
    "rand_like",
    "randn",
    "randn_like",
    "render_graph",
    "retain_grads",
    "save",
    "save_graph",
    "set_default_dtype",
    "set_grad_enabled",
    "set_rng_state",
    "show_graph",
    "stack",
    "tensor",
    "training",
    "where",
    "zeros",
    "zeros_like",
]
