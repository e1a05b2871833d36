"""tinygrad_nn.models: the recipes the command line and the docs train, and the checks on a model's config."""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_nn as tg
from tinygrad_nn import Tensor, models, nn


def test_tutorial_network_is_the_books():
    model = models.tutorial_network(784, 200, 10, np.float64, seed=3)
    assert [type(m).__name__ for m in model] == ["Linear", "Sigmoid", "Linear", "Sigmoid"]
    assert model[0].bias is None and model[2].bias is None
    assert model[0].weight.shape == (200, 784) and model[2].weight.shape == (10, 200)
    for layer in (model[0], model[2]):
        assert layer.weight.dtype == np.float64
        assert layer.weight.data.min() >= -0.5 and layer.weight.data.max() < 0.5
        assert layer.weight.data.std() == pytest.approx(1 / np.sqrt(12), rel=0.05)  # uniform on a unit interval
    again = models.tutorial_network(784, 200, 10, np.float64, seed=3)
    np.testing.assert_array_equal(again[0].weight.data, model[0].weight.data)
    assert not np.array_equal(
        models.tutorial_network(784, 200, 10, np.float64, seed=4)[0].weight.data, model[0].weight.data
    )


def test_mlp_has_relu_between_linears_and_pytorchs_initialisation():
    model = models.mlp(64, [32, 16], 10, np.float32, seed=0)
    assert [type(m).__name__ for m in model] == ["Linear", "ReLU", "Linear", "ReLU", "Linear"]
    assert [m.out_features for m in model if isinstance(m, nn.Linear)] == [32, 16, 10]
    for layer in (model[0], model[2], model[4]):
        bound = 1 / np.sqrt(layer.in_features)
        assert layer.weight.dtype == np.float32
        assert np.abs(layer.weight.data).max() <= bound and np.abs(layer.bias.data).max() <= bound
    assert [p.shape for p in models.mlp(784).parameters()] == [(512, 784), (512,), (256, 512), (256,), (10, 256), (10,)]


def test_the_same_seed_gives_the_same_mlp_whatever_the_default_generator_did():
    first = models.mlp(8, [4], 3, np.float64, seed=7)
    nn.init.manual_seed(123)
    second = models.mlp(8, [4], 3, np.float64, seed=7)
    for a, b in zip(first.parameters(), second.parameters()):
        np.testing.assert_array_equal(a.data, b.data)


def test_tutorial_loss_is_half_the_summed_squared_error_per_sample():
    outputs = Tensor(np.array([[0.2, 0.9], [0.6, 0.1]]))
    labels = np.array([1, 0])
    expected = 0.5 * ((0.2 - 0.01) ** 2 + (0.9 - 0.99) ** 2 + (0.6 - 0.99) ** 2 + (0.1 - 0.01) ** 2) / 2
    assert models.tutorial_loss(outputs, labels).item() == pytest.approx(expected, rel=1e-15)
    assert models.tutorial_loss(outputs, Tensor(labels)).item() == models.tutorial_loss(outputs, labels).item()


def test_tutorial_inputs_map_zero_and_one_to_the_books_range():
    np.testing.assert_allclose(models.tutorial_inputs(np.array([0.0, 1.0])), [0.01, 1.0])
    assert models.tutorial_inputs(np.zeros(2, np.float32)).dtype == np.float32


def test_recipes_name_their_parts_and_defaults():
    assert set(models.RECIPES) == {"tutorial", "mlp", "cnn"}
    tutorial, mlp, cnn = models.RECIPES["tutorial"], models.RECIPES["mlp"], models.RECIPES["cnn"]
    assert tutorial.loss is models.tutorial_loss and tutorial.hidden_layers == 1
    assert tutorial.training == {"lr": 0.1, "batch_size": 1, "epochs": 1, "optimizer": "sgd", "schedule": "none"}
    assert mlp.loss is nn.functional.cross_entropy and mlp.default_hidden == (512, 256)
    assert mlp.prepare_inputs(np.array([0.5])) == 0.5
    assert not tutorial.images and not mlp.images
    # The CNN's recipe is the one docs/cnn.md publishes: 8 epochs of Adam, cosine-annealed, batches of 64.
    assert cnn.build is models.cnn and cnn.loss is nn.functional.cross_entropy and cnn.images
    assert cnn.default_hidden == (128,) and cnn.hidden_layers is None
    assert cnn.training == {"lr": 1e-3, "batch_size": 64, "epochs": 8, "optimizer": "adam", "schedule": "cosine",
                            "dtype": "float32"}  # fmt: skip
    assert cnn.prepare_inputs(np.array([0.5])) == 0.5
    assert cnn.eval_batch_size < tutorial.eval_batch_size == mlp.eval_batch_size


# ------------------------------------------------------------------------------------------------------------
# The CNN
# ------------------------------------------------------------------------------------------------------------


def test_the_default_cnn_takes_flat_fashion_mnist_images():
    model = models.cnn()
    assert [type(m).__name__ for m in model] == [
        "Unflatten", "Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d", "Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d",
        "Flatten", "Linear", "ReLU", "Dropout", "Linear",
    ]  # fmt: skip
    assert model[0].unflattened_size == (1, 28, 28)
    assert model[1].bias is None and model[5].bias is None  # batch norm right after cancels a bias
    assert (model[10].in_features, model[10].out_features, model[13].out_features) == (64 * 7 * 7, 128, 10)
    assert model[12].p == models.CNN_DROPOUT == 0.25
    assert {p.dtype for p in model.parameters()} == {np.dtype(np.float32)}
    assert sum(p.size for p in model.parameters()) == 421_738
    model.eval()
    with tg.no_grad():
        assert model(np.zeros((3, 784), np.float32)).shape == (3, 10)


@pytest.mark.parametrize(
    ("input_shape", "flat"),
    [((1, 8, 8), 64 * 2 * 2), ((3, 12, 20), 64 * 3 * 5), ((2, 7, 4), 64 * 1 * 1), ((1, 30, 30), 64 * 7 * 7)],
)
def test_the_cnn_takes_images_of_any_shape_from_4_x_4(input_shape, flat):
    """Square or not, sides that 4 does not divide are rounded down by the pooling, as PyTorch's."""
    model = models.cnn(input_shape, [16], 3, np.float64, seed=1)
    assert model[1].in_channels == input_shape[0] and model[10].in_features == flat
    x = np.random.default_rng(0).random((2, int(np.prod(input_shape))))
    model.eval()
    with tg.no_grad():
        assert model(x).shape == (2, 3)
    assert models.parameter_count("cnn", int(np.prod(input_shape)), [16], 3, input_shape) == sum(
        p.size for p in model.parameters()
    )


def test_the_cnns_hidden_sizes_are_its_fully_connected_layers():
    model = models.cnn((1, 8, 8), [64, 32], 10)
    linears = [m for m in model if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(256, 64), (64, 32), (32, 10)]
    assert [type(m).__name__ for m in model][10:] == ["Linear", "ReLU", "Dropout"] * 2 + ["Linear"]
    assert models.parameter_count("cnn", 64, [64, 32], 10, [1, 8, 8]) == sum(p.size for p in model.parameters())


def test_the_same_seed_gives_the_same_cnn_and_manual_seed_the_same_dropout():
    first = models.cnn((1, 8, 8), seed=7)
    tg.manual_seed(123)  # the weights come from the seed alone, whatever the default generator did
    second = models.cnn((1, 8, 8), seed=7)
    for (name, a), b in zip(first.state_dict().items(), second.state_dict().values()):
        np.testing.assert_array_equal(a, b, err_msg=name)
    other = models.cnn((1, 8, 8), seed=8)
    assert not np.array_equal(other.state_dict()["1.weight"], first.state_dict()["1.weight"])

    x = np.random.default_rng(0).random((16, 64), dtype=np.float32)

    def training_output(seed):
        tg.manual_seed(seed)
        return models.cnn((1, 8, 8), seed=7)(x).data  # training mode: batch statistics and dropout

    np.testing.assert_array_equal(training_output(5), training_output(5))
    assert not np.array_equal(training_output(5), training_output(6))  # only the dropout masks differ


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ((np.float32,), "cnn: input_shape must be the images' shape [channels, height, width], such as [1, 28, 28]"),
        (((28, 28),), "cnn: input_shape must be the images' shape"),
        (("1x28x28",), "cnn: input_shape must be the images' shape"),
        (((1, 28, 28.0),), "cnn: input_shape must hold three whole numbers >= 1, got [1, 28, 28.0]"),
        (((0, 28, 28),), "must hold three whole numbers >= 1"),
        (((1, 3, 28),), "cnn: input_shape is [1, 3, 28], but the CNN pools its images twice by 2, so they must be "
                        "at least 4 x 4 pixels"),
        (((1, 28, 28), []), "cnn: hidden must be a list of layer sizes such as [128], got []"),
        (((1, 28, 28), "128"), "cnn: hidden must be a list of layer sizes"),
    ],
)  # fmt: skip
def test_the_cnn_names_a_mistaken_argument(arguments, message):
    with pytest.raises(ValueError) as error:
        models.cnn(*arguments)
    assert message in str(error.value)


@pytest.mark.parametrize(
    "config",
    [
        {"model": "mlp", "features": 64, "hidden": [32, 16], "classes": 10, "dtype": "float32"},
        {"model": "tutorial", "features": 784, "hidden": [200], "classes": 10, "dtype": "float64"},
        {"model": "cnn", "features": 64, "input_shape": [1, 8, 8], "hidden": [128], "classes": 10, "dtype": "float32"},
        {"model": "cnn", "features": 600, "input_shape": [2, 15, 20], "hidden": [8, 4], "classes": 3,
         "dtype": "float64"},
    ],
)  # fmt: skip
def test_build_model_is_the_recipe_and_parameter_count_counts_it(config):
    model = models.build_model(config, seed=5)
    recipe = models.RECIPES[config["model"]]
    hidden = config["hidden"]
    inputs = tuple(config["input_shape"]) if recipe.images else config["features"]
    direct = recipe.build(inputs, hidden, config["classes"], np.dtype(config["dtype"]), 5)
    assert repr(model) == repr(direct)
    for a, b in zip(model.parameters(), direct.parameters()):
        assert a.dtype == np.dtype(config["dtype"])
        np.testing.assert_array_equal(a.data, b.data)
    count = models.parameter_count(
        config["model"], config["features"], hidden, config["classes"], config.get("input_shape")
    )
    assert count == sum(p.size for p in model.parameters())


def test_the_cnns_parameter_count_needs_its_images_shape():
    with pytest.raises(ValueError, match="the cnn's count needs its input_shape"):
        models.parameter_count("cnn", 784, [128], 10)


def test_check_config_keeps_only_the_model_entries():
    config = {"model": "mlp", "features": 64, "hidden": [8], "classes": 10, "dtype": "float64", "lr": 0.1}
    assert models.check_config(config) == {"model": "mlp", "features": 64, "hidden": [8], "classes": 10,
                                           "dtype": "float64"}  # fmt: skip
    # An image shape means nothing to the MLP; to the CNN it is the shape its flat samples are unflattened to.
    assert "input_shape" not in models.check_config({**config, "input_shape": "anything"})
    cnn = {**config, "model": "cnn", "input_shape": (1, 8, 8)}
    assert models.check_config(cnn) == {"model": "cnn", "features": 64, "input_shape": [1, 8, 8], "hidden": [8],
                                        "classes": 10, "dtype": "float64"}  # fmt: skip


GOOD = {"model": "mlp", "features": 64, "hidden": [32], "classes": 10, "dtype": "float32"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"model": "rnn"}, "'model' must be one of tutorial, mlp, cnn, got 'rnn'"),
        ({"model": ["mlp"]}, "'model' must be one of"),
        ({"features": -1}, "'features' must be a whole number >= 1, got -1"),
        ({"features": 64.0}, "'features' must be a whole number >= 1, got 64.0"),
        ({"features": True}, "'features' must be a whole number"),
        ({"features": "64"}, "'features' must be a whole number"),
        ({"classes": 1}, "'classes' must be a whole number >= 2"),
        ({"hidden": "32"}, "'hidden' must be a list of layer sizes"),
        ({"hidden": []}, "'hidden' must be a list of layer sizes"),
        ({"hidden": [32, 0]}, "'hidden' must be a whole number >= 1, got 0"),
        ({"hidden": [[32]]}, "'hidden' must be a whole number >= 1, got [32]"),
        (
            {"hidden": [10**12]},
            "mlp model with sizes 64, 1000000000000, 10 would have 75,000,000,000,010 parameters "
            "(300,000,000 MB of float32); the limit is 100,000,000",
        ),
        ({"features": 10**30}, "parameters"),
        ({"dtype": "float16"}, "'dtype' must be 'float32' or 'float64', got 'float16'"),
        ({"dtype": None}, "'dtype' must be"),
        (
            {"model": "tutorial", "hidden": [32, 32]},
            "the tutorial model has 1 hidden layer(s), but 'hidden' is [32, 32]",
        ),
    ],
)
def test_check_config_refuses_what_does_not_describe_a_model(change, message):
    with pytest.raises(ValueError) as error:
        models.check_config({**GOOD, **change})
    assert message in str(error.value)


CNN = {"model": "cnn", "features": 784, "input_shape": [1, 28, 28], "hidden": [128], "classes": 10,
       "dtype": "float32"}  # fmt: skip


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"input_shape": "1x28x28"}, "'input_shape' must be the images' shape [channels, height, width], such as "
                                     "[1, 28, 28], got '1x28x28'"),
        ({"input_shape": {"height": 28}}, "'input_shape' must be the images' shape"),
        ({"input_shape": None}, "'input_shape' must be the images' shape"),
        ({"input_shape": [784]}, "'input_shape' must be the images' shape"),
        ({"input_shape": [1, 1, 28, 28]}, "'input_shape' must be the images' shape"),
        ({"input_shape": [1, 28, 28.0]}, "'input_shape' must hold three whole numbers >= 1, got [1, 28, 28.0]"),
        ({"input_shape": [1, -28, -28]}, "'input_shape' must hold three whole numbers >= 1"),
        ({"input_shape": [True, 28, 28]}, "'input_shape' must hold three whole numbers >= 1"),
        ({"input_shape": ["1", "28", "28"]}, "'input_shape' must hold three whole numbers >= 1"),
        ({"input_shape": [1, 28, 28], "features": 64},
         "'input_shape' [1, 28, 28] holds 784 values per sample, but 'features' is 64"),
        ({"input_shape": [1, 2, 392]}, "'input_shape' is [1, 2, 392], but the CNN pools its images twice by 2, so "
                                       "they must be at least 4 x 4 pixels"),
        ({"input_shape": [1, 10**6, 10**6], "features": 10**12},
         "the cnn model with sizes 1x1000000x1000000, 128, 10 would have 512,000,000,020,330 parameters"),
        ({"input_shape": [10**8, 4, 4], "features": 16 * 10**8}, "parameters"),
        ({"hidden": [10**9]}, "the cnn model with sizes 1x28x28, 1000000000, 10 would have"),
        ({"hidden": [128, 0]}, "'hidden' must be a whole number >= 1, got 0"),
    ],
)  # fmt: skip
def test_check_config_refuses_a_bad_cnn_entry_and_names_it(change, message):
    with pytest.raises(ValueError) as error:
        models.check_config({**CNN, **change})
    assert message in str(error.value)


def test_a_cnn_config_without_its_images_shape_is_refused():
    config = {key: value for key, value in CNN.items() if key != "input_shape"}
    with pytest.raises(
        ValueError, match=r"the model config lacks 'input_shape', the cnn's \[channels, height, width\]"
    ):
        models.check_config(config)
    with pytest.raises(ValueError, match="lacks 'input_shape'"):
        models.build_model(config)


def test_check_config_names_missing_entries_and_refuses_non_dicts():
    with pytest.raises(ValueError, match="the model config lacks 'hidden', 'dtype'"):
        models.check_config({"model": "mlp", "features": 64, "classes": 10})
    with pytest.raises(ValueError, match="a model config is a JSON object"):
        models.check_config(["mlp"])
