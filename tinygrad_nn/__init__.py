"""tinygrad_nn: a small reverse-mode autograd framework on numpy, with PyTorch's names.

>>> from tinygrad_nn import Tensor
>>> w = Tensor([0.5, -1.0], requires_grad=True)
>>> loss = ((w * 3.0).sigmoid() ** 2).sum()
>>> loss.backward()
>>> w.grad.shape
(2,)
"""

from . import data, nn, optim
from .autograd import (
    AnomalyError,
    BackwardError,
    DoubleBackwardError,
    Function,
    detect_anomaly,
    enable_grad,
    grad,
    is_grad_enabled,
    no_grad,
    once_differentiable,
    retain_grads,
    set_grad_enabled,
)
from .dtypes import get_default_dtype, set_default_dtype
from .gradcheck import GradcheckError, GradcheckReport, GradcheckWarning, gradcheck, gradcheck_report, gradgradcheck
from .nn.init import manual_seed
from .serialization import load, save
from .tensor import Tensor, concatenate, maximum, minimum, stack, where
from .viz import GraphvizNotFoundError, draw_graph, render_graph, save_graph

__version__ = "0.1.0"

__all__ = [
    "AnomalyError",
    "BackwardError",
    "DoubleBackwardError",
    "Function",
    "GradcheckError",
    "GradcheckReport",
    "GradcheckWarning",
    "GraphvizNotFoundError",
    "Tensor",
    "__version__",
    "concatenate",
    "data",
    "detect_anomaly",
    "draw_graph",
    "enable_grad",
    "get_default_dtype",
    "grad",
    "gradcheck",
    "gradcheck_report",
    "gradgradcheck",
    "is_grad_enabled",
    "load",
    "manual_seed",
    "maximum",
    "minimum",
    "nn",
    "no_grad",
    "once_differentiable",
    "optim",
    "render_graph",
    "retain_grads",
    "save",
    "save_graph",
    "set_default_dtype",
    "set_grad_enabled",
    "stack",
    "where",
]
