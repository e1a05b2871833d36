"""Optimizers and learning-rate schedulers with PyTorch's names, arguments and update rules.

``step()`` changes each parameter's ``.data`` in place and records nothing in any graph; ``zero_grad()`` clears
the gradients (to None, as PyTorch does by default). Parameters may be given as a list, or as a list of
parameter groups (dicts with a ``params`` entry and their own settings)::

    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    optimizer = optim.Adam([{"params": body.parameters()}, {"params": head.parameters(), "lr": 1e-2}], lr=1e-3)
    scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=20)

Every optimizer and scheduler has ``state_dict()`` and ``load_state_dict()``, in PyTorch's structure, so that
training stopped and resumed from them continues bit for bit. The schedulers live in `optim.lr_scheduler`, as in
PyTorch, and are also importable from `optim` itself.
"""

from . import lr_scheduler
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .lr_scheduler import (
    ChainedScheduler,
    ConstantLR,
    CosineAnnealingLR,
    CosineAnnealingWarmRestarts,
    CyclicLR,
    ExponentialLR,
    LambdaLR,
    LinearLR,
    LRScheduler,
    MultiplicativeLR,
    MultiStepLR,
    OneCycleLR,
    PolynomialLR,
    ReduceLROnPlateau,
    SequentialLR,
    StepLR,
)
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = [
    "SGD",
    "Adagrad",
    "Adam",
    "AdamW",
    "ChainedScheduler",
    "ConstantLR",
    "CosineAnnealingLR",
    "CosineAnnealingWarmRestarts",
    "CyclicLR",
    "ExponentialLR",
    "LRScheduler",
    "LambdaLR",
    "LinearLR",
    "MultiStepLR",
    "MultiplicativeLR",
    "OneCycleLR",
    "Optimizer",
    "PolynomialLR",
    "RMSprop",
    "ReduceLROnPlateau",
    "SequentialLR",
    "StepLR",
    "lr_scheduler",
]
