"""The models the command line and the docs train, as recipes: tutorial 001's network and the MLP.

Each recipe is a builder (the network, with its initial weights drawn from a seed of its own), the loss it is
trained with, how it wants its inputs scaled, and the training settings the command line uses by default.
`build_model` rebuilds a model from the plain dict that ``tinygrad-nn train`` writes to ``config.json``, and checks
that dict first, since it comes from a file::

    from tinygrad_nn import models

    model = models.mlp(784, [512, 256], 10, dtype="float32", seed=0)
    model = models.build_model({"model": "mlp", "features": 784, "hidden": [512, 256], "classes": 10,
                                "dtype": "float32"})

The CNN joins `RECIPES` when the convolution layers exist: it will take images ``(channels, height, width)``
rather than a number of features, so its config will add an ``input_shape`` entry beside ``features``.
"""

from __future__ import annotations

import itertools
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import nn
from .dtypes import DTypeLike
from .nn import functional as F  # noqa: N812
from .tensor import Tensor

__all__ = [
    "MAX_PARAMETERS",
    "RECIPES",
    "Recipe",
    "build_model",
    "check_config",
    "mlp",
    "parameter_count",
    "tutorial_inputs",
    "tutorial_loss",
    "tutorial_network",
]

# 100 million float32 weights are 400 MB, and an optimizer such as Adam keeps two more copies; the recipes here
# are far smaller.
MAX_PARAMETERS = 100_000_000
"""The most parameters `check_config` accepts: a larger model is refused before any memory is taken."""


# --------------------------------------------------------------------------------------------------------------
# The networks
# --------------------------------------------------------------------------------------------------------------


def tutorial_network(
    in_features: int = 784, hidden: int = 200, out_features: int = 10, dtype: DTypeLike = np.float64, seed: int = 0
) -> nn.Sequential:
    """Tutorial 001's network: Linear (no bias), Sigmoid, Linear (no bias), Sigmoid; weights uniform in +-0.5.

    The weights come from ``numpy.random.default_rng(seed)``, the hidden layer's first.
    """
    generator = np.random.default_rng(seed)
    model = nn.Sequential(
        nn.Linear(in_features, hidden, bias=False, dtype=dtype),
        nn.Sigmoid(),
        nn.Linear(hidden, out_features, bias=False, dtype=dtype),
        nn.Sigmoid(),
    )
    for layer in (model[0], model[2]):
        nn.init.uniform_(layer.weight, -0.5, 0.5, generator=generator)
    return model


def mlp(
    in_features: int,
    hidden: Sequence[int] = (512, 256),
    out_features: int = 10,
    dtype: DTypeLike = np.float32,
    seed: int = 0,
) -> nn.Sequential:
    """Linear and ReLU layers of the given hidden sizes, then a Linear to the class scores (logits).

    Initialised as PyTorch initialises `nn.Linear`, from ``numpy.random.default_rng(seed)``, layer by layer.
    """
    generator = np.random.default_rng(seed)
    layers: list[nn.Module] = []
    sizes = [in_features, *hidden]
    for fan_in, fan_out in itertools.pairwise(sizes):
        layers += [nn.Linear(fan_in, fan_out, dtype=dtype), nn.ReLU()]
    layers.append(nn.Linear(sizes[-1], out_features, dtype=dtype))
    model = nn.Sequential(*layers)
    for module in model:
        if isinstance(module, nn.Linear):
            module.reset_parameters(generator)
    return model


def tutorial_loss(outputs: Tensor, labels: Any) -> Tensor:
    """The tutorials' loss: half the summed squared error against targets 0.01 and 0.99, per sample.

    `labels` are class indices, an integer array or Tensor of shape (N,).
    """
    labels = np.asarray(labels.data if isinstance(labels, Tensor) else labels)
    targets = np.full(outputs.shape, 0.01, dtype=outputs.dtype)
    targets[np.arange(len(labels)), labels] = 0.99
    return 0.5 * F.mse_loss(outputs, targets, reduction="sum") / len(labels)


def tutorial_inputs(x: np.ndarray) -> np.ndarray:
    """The tutorials' input scaling: [0, 1] to 0.01..1.0 (in x's dtype)."""
    return x * 0.99 + 0.01


def _unchanged(x: np.ndarray) -> np.ndarray:
    return x


# --------------------------------------------------------------------------------------------------------------
# Recipes
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipe:
    """How to build, feed and train one kind of model.

    ``build(in_features, hidden, out_features, dtype, seed)`` makes the network; `loss` is what it is trained
    with (``loss(outputs, labels)``, the batch's mean); `prepare_inputs` scales the data set's [0, 1] features;
    `hidden_layers` is the number of hidden sizes it takes (None: any number, at least one); `training` holds the
    command line's default settings (lr, batch_size, epochs, optimizer, schedule).
    """

    name: str
    description: str
    build: Callable[..., nn.Module]
    loss: Callable[[Tensor, Any], Tensor]
    prepare_inputs: Callable[[np.ndarray], np.ndarray]
    default_hidden: tuple[int, ...]
    hidden_layers: int | None
    training: dict[str, Any] = field(default_factory=dict)


RECIPES: dict[str, Recipe] = {
    "tutorial": Recipe(
        name="tutorial",
        description="tutorial 001's network: Linear without bias, Sigmoid, Linear without bias, Sigmoid",
        build=lambda features, hidden, classes, dtype, seed: tutorial_network(
            features, hidden[0], classes, dtype, seed
        ),
        loss=tutorial_loss,
        prepare_inputs=tutorial_inputs,
        default_hidden=(200,),
        hidden_layers=1,
        training={"lr": 0.1, "batch_size": 1, "epochs": 1, "optimizer": "sgd", "schedule": "none"},
    ),
    "mlp": Recipe(
        name="mlp",
        description="Linear and ReLU layers, then a Linear to the class scores; cross-entropy",
        build=mlp,
        loss=F.cross_entropy,
        prepare_inputs=_unchanged,
        default_hidden=(512, 256),
        hidden_layers=None,
        training={"lr": 1e-3, "batch_size": 64, "epochs": 20, "optimizer": "adam", "schedule": "cosine"},
    ),
    # "cnn": the convolution layers' engineer adds it here, with an input_shape instead of features.
}
"""The recipes by name, as ``tinygrad-nn train --model`` takes them."""


def parameter_count(model: str, features: int, hidden: Sequence[int], classes: int) -> int:
    """How many parameters the recipe `model` has with these sizes, computed without building it."""
    sizes = [features, *hidden, classes]
    weights = sum(fan_in * fan_out for fan_in, fan_out in itertools.pairwise(sizes))
    biases = 0 if model == "tutorial" else sum(sizes[1:])
    return weights + biases


def _whole_number(key: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"'{key}' must be a whole number >= {minimum}, got {value!r}")
    return int(value)


def check_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """Check a model's description (as ``config.json`` holds it) and return its model entries, normalised.

    The entries are ``model`` (a key of `RECIPES`), ``features`` and ``classes`` (whole numbers), ``hidden``
    (a list of whole numbers, as many as the recipe takes) and ``dtype`` (``"float32"`` or ``"float64"``). Other
    entries are ignored. Anything missing, of the wrong kind, or giving more than `MAX_PARAMETERS` parameters
    raises ValueError naming the entry and what it holds.
    """
    if not isinstance(config, Mapping):
        raise ValueError(f"a model config is a JSON object (a dict), got {type(config).__name__}")
    missing = [key for key in ("model", "features", "hidden", "classes", "dtype") if key not in config]
    if missing:
        raise ValueError("the model config lacks " + ", ".join(f"'{key}'" for key in missing))
    name = config["model"]
    if not isinstance(name, str) or name not in RECIPES:
        raise ValueError(f"'model' must be one of {', '.join(RECIPES)}, got {name!r}")
    recipe = RECIPES[name]
    features = _whole_number("features", config["features"], 1)
    classes = _whole_number("classes", config["classes"], 2)
    hidden = config["hidden"]
    if not isinstance(hidden, (list, tuple)) or not hidden:
        raise ValueError(f"'hidden' must be a list of layer sizes such as [512, 256], got {hidden!r}")
    hidden = [_whole_number("hidden", size, 1) for size in hidden]
    if recipe.hidden_layers is not None and len(hidden) != recipe.hidden_layers:
        raise ValueError(f"the {name} model has {recipe.hidden_layers} hidden layer(s), but 'hidden' is {hidden}")
    dtype = config["dtype"]
    if dtype not in ("float32", "float64"):
        raise ValueError(f"'dtype' must be 'float32' or 'float64', got {dtype!r}")
    count = parameter_count(name, features, hidden, classes)
    if count > MAX_PARAMETERS:
        megabytes = count * np.dtype(dtype).itemsize / 1e6
        raise ValueError(
            f"the {name} model with sizes {features}, {', '.join(map(str, hidden))}, {classes} would have {count:,} "
            f"parameters ({megabytes:,.0f} MB of {dtype}); the limit is {MAX_PARAMETERS:,}"
        )
    return {"model": name, "features": features, "hidden": hidden, "classes": classes, "dtype": dtype}


def build_model(config: Mapping[str, Any], seed: int = 0) -> nn.Module:
    """The model a config describes (checked by `check_config`), with initial weights from `seed`."""
    checked = check_config(config)
    recipe = RECIPES[checked["model"]]
    return recipe.build(checked["features"], checked["hidden"], checked["classes"], np.dtype(checked["dtype"]), seed)
