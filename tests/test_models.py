"""tinygrad_nn.models: the recipes the command line and the docs train, and the checks on a model's config."""

from __future__ import annotations

import numpy as np
import pytest

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
    assert set(models.RECIPES) == {"tutorial", "mlp"}
    tutorial, mlp = models.RECIPES["tutorial"], models.RECIPES["mlp"]
    assert tutorial.loss is models.tutorial_loss and tutorial.hidden_layers == 1
    assert tutorial.training == {"lr": 0.1, "batch_size": 1, "epochs": 1, "optimizer": "sgd", "schedule": "none"}
    assert mlp.loss is nn.functional.cross_entropy and mlp.default_hidden == (512, 256)
    assert mlp.prepare_inputs(np.array([0.5])) == 0.5


@pytest.mark.parametrize(
    "config",
    [
        {"model": "mlp", "features": 64, "hidden": [32, 16], "classes": 10, "dtype": "float32"},
        {"model": "tutorial", "features": 784, "hidden": [200], "classes": 10, "dtype": "float64"},
    ],
)
def test_build_model_is_the_recipe_and_parameter_count_counts_it(config):
    model = models.build_model(config, seed=5)
    recipe = models.RECIPES[config["model"]]
    hidden = config["hidden"]
    direct = recipe.build(config["features"], hidden, config["classes"], np.dtype(config["dtype"]), 5)
    for a, b in zip(model.parameters(), direct.parameters()):
        np.testing.assert_array_equal(a.data, b.data)
    count = models.parameter_count(config["model"], config["features"], hidden, config["classes"])
    assert count == sum(p.size for p in model.parameters())


def test_check_config_keeps_only_the_model_entries():
    config = {"model": "mlp", "features": 64, "hidden": [8], "classes": 10, "dtype": "float64", "lr": 0.1}
    assert models.check_config(config) == {"model": "mlp", "features": 64, "hidden": [8], "classes": 10,
                                           "dtype": "float64"}  # fmt: skip


GOOD = {"model": "mlp", "features": 64, "hidden": [32], "classes": 10, "dtype": "float32"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"model": "cnn"}, "'model' must be one of tutorial, mlp, got 'cnn'"),
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


def test_check_config_names_missing_entries_and_refuses_non_dicts():
    with pytest.raises(ValueError, match="the model config lacks 'hidden', 'dtype'"):
        models.check_config({"model": "mlp", "features": 64, "classes": 10})
    with pytest.raises(ValueError, match="a model config is a JSON object"):
        models.check_config(["mlp"])
