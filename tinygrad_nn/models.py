"""The models the command line and the docs train, as recipes: tutorial 001's network, the MLP and the CNN.

Each recipe is a builder (the network, with its initial weights drawn from a seed of its own), the loss it is
trained with, how it wants its inputs scaled, and the training settings the command line uses by default.
`build_model` rebuilds a model from the plain dict that ``tinygrad-nn train`` writes to ``config.json``, and checks
that dict first, since it comes from a file::

    from tinygrad_nn import models

    model = models.mlp(784, [512, 256], 10, dtype="float32", seed=0)
    model = models.build_model({"model": "mlp", "features": 784, "hidden": [512, 256], "classes": 10,
                                "dtype": "float32"})

The CNN takes the same flat samples as the others, (N, features), and knows the shape of the images in them: its
config adds an ``input_shape`` entry, ``[channels, height, width]``, beside ``features``::

    model = models.cnn((1, 28, 28), [128], 10, dtype="float32", seed=0)
    model = models.build_model({"model": "cnn", "features": 784, "input_shape": [1, 28, 28], "hidden": [128],
                                "classes": 10, "dtype": "float32"})
"""

from __future__ import annotations

import itertools
import math
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
    "cnn",
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


CNN_DROPOUT = 0.25
"""The dropout probability after each of the CNN's hidden fully connected layers."""

CNN_CHANNELS = (32, 64)
"""The output channels of the CNN's two convolution blocks."""

# Each block halves the height and width (a 2 x 2 max pooling, rounding down), so an image must be at least 4 x 4
# to leave one pixel after both.
_CNN_SHRINK = 2 ** len(CNN_CHANNELS)


def _check_input_shape(input_shape: Any, where: str) -> tuple[int, int, int]:
    """`input_shape` as three whole numbers (channels, height, width), or ValueError naming `where`."""
    if isinstance(input_shape, (str, bytes)) or not isinstance(input_shape, Sequence) or len(input_shape) != 3:
        raise ValueError(
            f"{where} must be the images' shape [channels, height, width], such as [1, 28, 28], got {input_shape!r:.80}"
        )
    for size in input_shape:
        if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 1:
            raise ValueError(f"{where} must hold three whole numbers >= 1, got {list(input_shape)!r:.80}")
    channels, height, width = (int(size) for size in input_shape)
    if height < _CNN_SHRINK or width < _CNN_SHRINK:
        raise ValueError(
            f"{where} is {[channels, height, width]}, but the CNN pools its images twice by 2, so they must be at "
            f"least {_CNN_SHRINK} x {_CNN_SHRINK} pixels"
        )
    return channels, height, width


def cnn(
    input_shape: Sequence[int] = (1, 28, 28),
    hidden: Sequence[int] = (128,),
    out_features: int = 10,
    dtype: DTypeLike = np.float32,
    seed: int = 0,
) -> nn.Sequential:
    """The default CNN: two convolution blocks, then fully connected layers to the class scores (logits).

    It takes flat images, (N, channels * height * width), as the data loaders give them, and unflattens them to
    `input_shape` (channels, height, width). Then conv 3x3 (32) - batch norm - ReLU - max pool 2, and conv 3x3
    (64) - batch norm - ReLU - max pool 2; then for each size in `hidden` a Linear, ReLU and dropout 0.25; then a
    Linear to `out_features`. With the defaults (Fashion-MNIST's 1 x 28 x 28 images, one hidden layer of 128):

    >>> model = cnn()
    >>> sum(p.size for p in model.parameters())
    421738

    The convolutions have no bias: the batch norm after each subtracts the mean, which would cancel it (its
    gradient would be 0). The convolutions and linear layers are initialised as PyTorch's, from
    ``numpy.random.default_rng(seed)``, layer by layer; building one also draws from the default generator
    (`tinygrad_nn.manual_seed`), as every layer's constructor does, and its dropout draws from it in training.
    """
    channels, height, width = _check_input_shape(input_shape, "cnn: input_shape")
    if isinstance(hidden, (str, bytes)) or not isinstance(hidden, Sequence) or not hidden:
        raise ValueError(f"cnn: hidden must be a list of layer sizes such as [128], got {hidden!r:.80}")
    generator = np.random.default_rng(seed)
    first, second = CNN_CHANNELS
    layers: list[nn.Module] = [
        nn.Unflatten(1, (channels, height, width)),
        nn.Conv2d(channels, first, 3, padding=1, bias=False, dtype=dtype),  # batch norm's shift makes a bias useless
        nn.BatchNorm2d(first, dtype=dtype),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(first, second, 3, padding=1, bias=False, dtype=dtype),
        nn.BatchNorm2d(second, dtype=dtype),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
    ]
    sizes = [second * (height // _CNN_SHRINK) * (width // _CNN_SHRINK), *hidden]
    for fan_in, fan_out in itertools.pairwise(sizes):
        layers += [nn.Linear(fan_in, fan_out, dtype=dtype), nn.ReLU(), nn.Dropout(CNN_DROPOUT)]
    layers.append(nn.Linear(sizes[-1], out_features, dtype=dtype))
    model = nn.Sequential(*layers)
    # The draws are float64 whatever the dtype, rounded into the weights: the same network in float32 is the
    # float64 one rounded (the published results were computed from these weights).
    for module in model:
        if isinstance(module, (nn.Conv2d, nn.Linear)):
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

    ``build(inputs, hidden, out_features, dtype, seed)`` makes the network, where `inputs` is the number of
    features, or for a recipe that takes `images` the images' shape ``(channels, height, width)`` (its config has
    an ``input_shape`` entry); `loss` is what it is trained with (``loss(outputs, labels)``, the batch's mean);
    `prepare_inputs` scales the data set's [0, 1] features; `hidden_layers` is the number of hidden sizes it takes
    (None: any number, at least one); `training` holds the command line's default settings (lr, batch_size,
    epochs, optimizer, schedule, and dtype where it has one); `eval_batch_size` is how many samples it is measured
    on at a time (a convolution's activations are large: a smaller batch keeps evaluation's memory small);
    `threads` is how many threads the command line lets numpy's matrix products use while it trains (0: numpy's
    own number).
    """

    name: str
    description: str
    build: Callable[..., nn.Module]
    loss: Callable[[Tensor, Any], Tensor]
    prepare_inputs: Callable[[np.ndarray], np.ndarray]
    default_hidden: tuple[int, ...]
    hidden_layers: int | None
    training: dict[str, Any] = field(default_factory=dict)
    images: bool = False
    eval_batch_size: int = 2000
    threads: int = 0


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
    "cnn": Recipe(
        name="cnn",
        description="two blocks of convolution, batch norm, ReLU and max pooling, then Linear, ReLU and dropout "
        "layers of the hidden sizes, and a Linear to the class scores; cross-entropy",
        build=cnn,
        loss=F.cross_entropy,
        prepare_inputs=_unchanged,
        default_hidden=(128,),
        hidden_layers=None,
        # Reaches 0.92 on Fashion-MNIST's test images (docs/cnn.md, docs/command-line.md).
        training={
            "lr": 1e-3,
            "batch_size": 64,
            "epochs": 8,
            "optimizer": "adam",
            "schedule": "cosine",
            "dtype": "float32",
        },
        images=True,
        # 500 Fashion-MNIST images at a time hold about 120 MiB of activations; 2,000 would hold 400 MiB.
        eval_batch_size=500,
        # Its matrix products are small (64 x 288 by 288 x 12,544 at most): on 2 cores an epoch takes 52 s on one
        # BLAS thread and 52 to 188 s on two, which spin while they wait and lose whenever another process holds a
        # core (benchmark 9, benchmarks/README.md).
        threads=1,
    ),
}
"""The recipes by name, as ``tinygrad-nn train --model`` takes them."""


def parameter_count(
    model: str, features: int, hidden: Sequence[int], classes: int, input_shape: Sequence[int] | None = None
) -> int:
    """How many parameters the recipe `model` has with these sizes, computed without building it.

    The CNN's count depends on its images' shape, `input_shape` (channels, height, width); the others ignore it.
    """
    if model == "cnn":
        if input_shape is None:
            raise ValueError("parameter_count: the cnn's count needs its input_shape (channels, height, width)")
        channels, height, width = _check_input_shape(input_shape, "parameter_count: input_shape")
        first, second = CNN_CHANNELS
        convolutions = channels * first * 9 + first * second * 9  # no bias
        norms = 2 * (first + second)  # weight and bias of each batch norm
        flat = second * (height // _CNN_SHRINK) * (width // _CNN_SHRINK)
        sizes = [flat, *hidden, classes]
        return convolutions + norms + sum(fan_in * fan_out + fan_out for fan_in, fan_out in itertools.pairwise(sizes))
    sizes = [features, *hidden, classes]
    weights = sum(fan_in * fan_out for fan_in, fan_out in itertools.pairwise(sizes))
    biases = 0 if model == "tutorial" else sum(sizes[1:])
    return weights + biases


def _whole_number(key: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"'{key}' must be a whole number >= {minimum}, got {value!r:.80}")
    return int(value)


def check_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """Check a model's description (as ``config.json`` holds it) and return its model entries, normalised.

    The entries are ``model`` (a key of `RECIPES`), ``features`` and ``classes`` (whole numbers), ``hidden``
    (a list of whole numbers, as many as the recipe takes) and ``dtype`` (``"float32"`` or ``"float64"``); the
    CNN's also ``input_shape``, ``[channels, height, width]``, whose product is ``features`` (images at least
    4 x 4). Other entries are ignored. Anything missing, of the wrong kind, or giving more than `MAX_PARAMETERS`
    parameters raises ValueError naming the entry and what it holds.
    """
    if not isinstance(config, Mapping):
        raise ValueError(f"a model config is a JSON object (a dict), got {type(config).__name__}")
    missing = [key for key in ("model", "features", "hidden", "classes", "dtype") if key not in config]
    if missing:
        raise ValueError("the model config lacks " + ", ".join(f"'{key}'" for key in missing))
    name = config["model"]
    if not isinstance(name, str) or name not in RECIPES:
        raise ValueError(f"'model' must be one of {', '.join(RECIPES)}, got {name!r:.80}")
    recipe = RECIPES[name]
    features = _whole_number("features", config["features"], 1)
    classes = _whole_number("classes", config["classes"], 2)
    hidden = config["hidden"]
    if not isinstance(hidden, (list, tuple)) or not hidden:
        raise ValueError(f"'hidden' must be a list of layer sizes such as [512, 256], got {hidden!r:.80}")
    hidden = [_whole_number("hidden", size, 1) for size in hidden]
    if recipe.hidden_layers is not None and len(hidden) != recipe.hidden_layers:
        raise ValueError(f"the {name} model has {recipe.hidden_layers} hidden layer(s), but 'hidden' is {hidden}")
    dtype = config["dtype"]
    if dtype not in ("float32", "float64"):
        raise ValueError(f"'dtype' must be 'float32' or 'float64', got {dtype!r:.80}")
    checked: dict[str, Any] = {"model": name, "features": features}
    input_shape = None
    if recipe.images:
        if "input_shape" not in config:
            raise ValueError(f"the model config lacks 'input_shape', the {name}'s [channels, height, width]")
        input_shape = list(_check_input_shape(config["input_shape"], "'input_shape'"))
        if math.prod(input_shape) != features:
            raise ValueError(
                f"'input_shape' {input_shape} holds {math.prod(input_shape):,} values per sample, but 'features' "
                f"is {features:,}"
            )
        checked["input_shape"] = input_shape
    count = parameter_count(name, features, hidden, classes, input_shape)
    if count > MAX_PARAMETERS:
        megabytes = count * np.dtype(dtype).itemsize / 1e6
        sizes = "x".join(map(str, input_shape)) if input_shape else str(features)
        raise ValueError(
            f"the {name} model with sizes {sizes}, {', '.join(map(str, hidden))}, {classes} would have {count:,} "
            f"parameters ({megabytes:,.0f} MB of {dtype}); the limit is {MAX_PARAMETERS:,}"
        )
    return {**checked, "hidden": hidden, "classes": classes, "dtype": dtype}


def build_model(config: Mapping[str, Any], seed: int = 0) -> nn.Module:
    """The model a config describes (checked by `check_config`), with initial weights from `seed`."""
    checked = check_config(config)
    recipe = RECIPES[checked["model"]]
    inputs = tuple(checked["input_shape"]) if recipe.images else checked["features"]
    return recipe.build(inputs, checked["hidden"], checked["classes"], np.dtype(checked["dtype"]), seed)
