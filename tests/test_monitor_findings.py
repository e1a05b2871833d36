"""GradientMonitor.findings on networks with known pathologies, and its silence on healthy ones.

Each pathology is built the way a learner meets it: a deep sigmoid stack, a ReLU layer whose bias was pushed far
negative, a learning rate of 10, a frozen parameter, a parameter the loss never uses, one the optimizer never
got, a NaN in the data. The findings must name the right layers, the steps and the picture; the healthy networks
(tutorial 001's at its published settings, the command line's MLP) must get none.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import tinygrad_nn as tg
from tinygrad_nn import data, models, nn, optim, training
from tinygrad_nn.monitor import GradientMonitor
from tinygrad_nn.nn import functional as F  # noqa: N812

# --------------------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------------------


def stack(depth, width=32, features=16, classes=4, activation=nn.Sigmoid, seed=0):
    """`depth` Linear+activation blocks and a Linear output, PyTorch's initialisation from `seed`."""
    generator = np.random.default_rng(seed)
    sizes = [features] + [width] * depth
    layers: list[nn.Module] = []
    for fan_in, fan_out in itertools.pairwise(sizes):
        layers += [nn.Linear(fan_in, fan_out), activation()]
    layers.append(nn.Linear(width, classes))
    model = nn.Sequential(*layers)
    for module in model:
        if isinstance(module, nn.Linear):
            module.reset_parameters(generator)
    return model


def blobs(samples=512, features=16, classes=4, seed=0):
    """Classes as Gaussian blobs: a problem every healthy network here learns."""
    generator = np.random.default_rng(seed)
    centres = generator.standard_normal((classes, features)) * 2
    labels = generator.integers(0, classes, samples)
    return centres[labels] + generator.standard_normal((samples, features)), labels


def fit(model, optimizer, epochs=3, batch_size=32, monitor=None, **monitor_options):
    x, y = blobs()
    monitor = monitor or GradientMonitor(model, **monitor_options)
    loader = data.DataLoader(x, y, batch_size=batch_size, shuffle=True, seed=0)
    training.fit(model, F.cross_entropy, optimizer, loader, epochs=epochs, callbacks=[monitor], progress=False)
    return monitor


def kinds(found):
    return {finding.kind for finding in found}


def about(found, kind):
    return [finding for finding in found if finding.kind == kind]


# --------------------------------------------------------------------------------------------------------------
# Pathologies
# --------------------------------------------------------------------------------------------------------------


def test_an_8_layer_sigmoid_stack_has_vanishing_gradients_in_its_early_layers():
    model = stack(8)
    found = fit(model, optim.SGD(model.parameters(), lr=0.1)).findings()
    vanishing = about(found, "vanishing")
    layers = [finding.layer for finding in vanishing]
    assert layers[:3] == ["0", "2", "4"]  # the earliest, in order
    assert "16" not in layers and "14" not in layers  # not the output layer, nor the one next to it
    first = vanishing[0]
    assert first.parameters == ("0.weight", "0.bias") and first.figure == "plot_history"
    assert first.value < 1e-3 and first.steps[0] == 1
    assert "vanishing gradient: 0 (Linear): its gradient norm is" in str(first)
    assert "times that of the output layer 16" in first.message
    assert "update_ratio" not in kinds(found)  # their tiny updates belong to the vanishing finding


def test_the_same_stack_with_relu_and_he_initialisation_is_healthy():
    model = stack(8, activation=nn.ReLU)
    generator = np.random.default_rng(0)
    for module in model:
        if isinstance(module, nn.Linear):
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu", generator=generator)
            nn.init.zeros_(module.bias)
    monitor = fit(model, optim.SGD(model.parameters(), lr=0.05))
    assert monitor.findings() == []


def test_a_relu_layer_with_its_bias_pushed_very_negative_is_dead_and_so_is_the_gradient_before_it():
    model = models.mlp(16, [64, 32], 4, dtype="float64", seed=0)
    model[2].bias.data[...] = -100.0
    found = fit(model, optim.Adam(model.parameters(), lr=1e-3)).findings()
    (dead,) = about(found, "dead_units")
    assert dead.layer == "3" and dead.value == 1.0
    assert dead.parameters == ("2.weight", "2.bias")  # the layer that feeds it, whose bias is at fault
    assert "dead units: 3 (ReLU), after 2 (Linear): 100% of its 32 units output zero for every sample" in str(dead)
    assert [finding.layer for finding in about(found, "zero_gradient")] == ["0", "2"]
    assert all(finding.layer != "4" for finding in found)  # the output layer still learns (its bias)
    assert "1" not in [finding.layer for finding in about(found, "dead_units")]


def test_a_learning_rate_of_10_is_named_by_its_update_ratios():
    model = models.mlp(16, [64, 32], 4, dtype="float64", seed=0)
    found = fit(model, optim.SGD(model.parameters(), lr=10.0)).findings()
    too_large = [finding for finding in about(found, "update_ratio") if "too large" in finding.message]
    assert too_large, [str(finding) for finding in found]
    assert all(finding.value > 0.1 for finding in too_large)
    assert "lower the learning rate" in too_large[0].message


def test_a_learning_rate_of_10_with_adam_explodes_the_gradients():
    model = models.mlp(16, [64, 32], 4, dtype="float64", seed=0)
    found = fit(model, optim.Adam(model.parameters(), lr=10.0)).findings()
    exploding = about(found, "exploding")
    assert exploding and exploding[0].value > 1e3
    assert exploding[0].steps[0] <= 3  # from the first steps


@pytest.mark.parametrize("hidden", [[64], [64, 32]])
def test_a_learning_rate_of_10_with_adam_is_named_even_when_the_gradients_do_not_explode(hidden):
    # Adam's step is about lr per entry whatever the gradient: the first step moves the weights by many times
    # their norm, then the weights grow so fast that later ratios look tame and the gradients grow only ~100x.
    tg.manual_seed(0)
    generator = np.random.default_rng(0)
    x = generator.standard_normal((512, 20))
    y = (x @ generator.standard_normal((20, 5))).argmax(1)
    model = models.mlp(20, hidden, 5, dtype="float64", seed=0)
    optimizer = optim.Adam(model.parameters(), lr=10.0)
    with GradientMonitor(model) as monitor:
        for step in range(60):
            rows = slice(step * 64 % 512, step * 64 % 512 + 64)
            optimizer.zero_grad()
            F.cross_entropy(model(tg.Tensor(x[rows])), y[rows]).backward()
            optimizer.step()
    found = monitor.findings()
    too_large = about(found, "update_ratio")
    assert "0" in {finding.layer for finding in too_large}, [str(finding) for finding in found]
    assert all(finding.steps[0] == 1 for finding in too_large)  # from the very first step
    assert max(finding.value for finding in too_large) > 1  # that step moved some layer by more than its norm
    assert "lower the learning rate" in too_large[0].message


def test_a_frozen_parameter_gets_a_note_not_a_warning():
    model = models.mlp(16, [64, 32], 4, dtype="float64", seed=0)
    model[0].weight.requires_grad_(False)
    monitor = fit(model, optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3))
    (note,) = monitor.findings()
    assert (note.kind, note.severity, note.layer, note.parameters) == ("no_gradient", "note", "0", ("0.weight",))
    assert note.figure == "plot_flow" and note.steps == (1, 48)
    assert str(note) == (
        "frozen: 0 (Linear): 0.weight does not require grad, so it gets no gradient (steps 1-48); expected if you "
        "froze it (plot_flow)"
    )


def test_a_parameter_the_loss_never_uses_is_a_warning():
    class Unused(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = models.mlp(16, [32], 4, dtype="float64", seed=0)
            self.spare = nn.Linear(4, 4)

        def forward(self, x):
            return self.body(x)

    model = Unused()
    (warning,) = fit(model, optim.Adam(model.parameters(), lr=1e-3)).findings()
    assert (warning.kind, warning.severity, warning.layer) == ("no_gradient", "warning", "spare")
    assert warning.parameters == ("spare.weight", "spare.bias")
    assert "never received a gradient (steps 1-48): they take no part in computing the loss" in str(warning)


def test_a_parameter_left_out_of_the_optimizer_is_not_updated():
    model = models.mlp(16, [32], 4, dtype="float64", seed=0)
    optimizer = optim.Adam([model[2].weight, model[2].bias], lr=1e-3)  # the first layer forgotten
    found = fit(model, optimizer).findings()
    (stuck,) = about(found, "not_updated")
    assert stuck.layer == "0"
    assert "missing from the optimizer's parameters" in str(stuck)


def test_a_nan_in_the_data_is_a_nonfinite_gradient_from_its_step():
    model = models.mlp(16, [32], 4, dtype="float64", seed=0)
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    x, y = blobs(64)
    x[40, 3] = np.nan  # in the third batch of 16
    monitor = GradientMonitor(model)
    with monitor:
        for start in range(0, 64, 16):
            loss = F.cross_entropy(model(tg.Tensor(x[start : start + 16])), y[start : start + 16])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    nonfinite = about(monitor.findings(), "nonfinite")
    assert [finding.layer for finding in nonfinite] == ["0", "2"]
    assert nonfinite[0].steps == (3, 3) and nonfinite[1].steps == (3, 4)  # once is enough
    assert str(nonfinite[0]) == (
        "NaN or inf gradient: 0 (Linear): the gradient of 0.weight holds NaN or inf (1 of 4 recorded steps (25%), "
        "step 3): from NaN or inf in the data, or from weights or a loss that overflowed (lower the learning rate, "
        "or clip the gradients; plot_history)"
    )


def test_gradients_growing_a_thousandfold_are_exploding():
    model = models.mlp(16, [32], 4, dtype="float64", seed=0)
    x, y = blobs(64)
    with GradientMonitor(model) as monitor:
        for step in range(6):
            loss = F.cross_entropy(model(tg.Tensor(x[:16])), y[:16]) * 10.0 ** (step * 1.5)
            model.zero_grad()
            loss.backward()
    exploding = about(monitor.findings(), "exploding")
    assert {finding.layer for finding in exploding} == {"0", "2"}
    assert exploding[0].steps == (4, 6)


# --------------------------------------------------------------------------------------------------------------
# Healthy networks
# --------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits():
    pytest.importorskip("sklearn", reason="the 8x8 digits are scikit-learn's (the examples extra)")
    return data.load_digits()


def test_tutorial_001s_network_at_its_published_settings_has_no_finding(digits):
    (x_train, y_train), _ = digits
    model = models.tutorial_network(64, 200, 10, seed=0)
    monitor = GradientMonitor(model)
    loader = data.DataLoader(models.tutorial_inputs(x_train.astype(np.float64)), y_train, batch_size=1)
    training.fit(model, models.tutorial_loss, optim.SGD(model.parameters(), lr=0.1), loader, epochs=1,
                 callbacks=[monitor], progress=False)  # fmt: skip
    assert monitor.findings() == []
    assert monitor.report() == "gradient monitor: no findings (1347 recorded steps, steps 1-1347)"


def test_the_command_lines_mlp_with_adam_has_no_finding(digits):
    (x_train, y_train), _ = digits
    model = models.mlp(64, [512, 256], 10, dtype="float32", seed=0)
    monitor = GradientMonitor(model, every=5)
    loader = data.DataLoader(x_train, y_train, batch_size=64, shuffle=True, seed=0)
    training.fit(model, F.cross_entropy, optim.Adam(model.parameters(), lr=1e-3), loader, epochs=3,
                 callbacks=[monitor], progress=False)  # fmt: skip
    assert monitor.findings() == []


def test_a_shallow_sigmoid_network_with_plain_sgd_has_no_finding():
    model = stack(2)
    assert fit(model, optim.SGD(model.parameters(), lr=0.05)).findings() == []


# --------------------------------------------------------------------------------------------------------------
# Thresholds, order, words
# --------------------------------------------------------------------------------------------------------------


def test_the_thresholds_are_arguments():
    model = stack(8)
    monitor = fit(model, optim.SGD(model.parameters(), lr=0.1))
    assert len(about(monitor.findings(), "vanishing")) == 5
    # Layers 0, 2 and 4 are below 1e-5 of the output layer; layer 6 (4e-5) is within 10 times that, and stalls.
    strict = about(monitor.findings(vanishing_ratio=1e-5), "vanishing")
    assert [finding.layer for finding in strict] == ["0", "2", "4", "6"]
    assert "its weights barely move" in strict[3].message and "barely move" not in strict[2].message
    assert about(monitor.findings(vanishing_ratio=1e-9), "vanishing") == []
    lenient = monitor.findings(vanishing_ratio=1e-9, update_ratio_range=(1e-12, 1.0))
    assert lenient == []


def test_persistence_decides_how_long_a_condition_must_hold():
    model = models.mlp(16, [64, 32], 4, dtype="float64", seed=0)
    monitor = fit(model, optim.SGD(model.parameters(), lr=10.0))
    dead = about(monitor.findings(persistence=0.5), "dead_units")
    assert dead and all(finding.value < 1.0 or finding.steps[0] > 1 for finding in dead)
    assert about(monitor.findings(persistence=1.0), "dead_units") == []  # no unit is dead before the first step


@pytest.mark.parametrize(
    ("thresholds", "message"),
    [
        ({"vanishing_ratio": 0}, "vanishing_ratio must be a positive number, got 0"),
        ({"vanishing_ratio": 2}, "vanishing_ratio must be below 1.0, got 2"),
        ({"exploding_growth": -1}, "exploding_growth must be a positive number"),
        ({"dead_fraction": 1.5}, "dead_fraction must be a number from 0 to 1, got 1.5"),
        ({"saturated_fraction": "half"}, "saturated_fraction must be a number from 0 to 1"),
        ({"persistence": 0}, "persistence must be above 0"),
        ({"update_ratio_range": 1e-3}, r"update_ratio_range must be \(low, high\), got 0.001"),
        ({"update_ratio_range": (1e-1, 1e-5)}, r"update_ratio_range must have low < high, got \(0.1, 1e-05\)"),
    ],
)
def test_bad_thresholds_are_refused_by_name(thresholds, message):
    model = stack(1)
    monitor = fit(model, optim.SGD(model.parameters(), lr=0.1), epochs=1)
    with pytest.raises(ValueError, match=message):
        monitor.findings(**thresholds)


def test_warnings_come_first_then_notes_and_report_lists_them():
    model = models.mlp(16, [64, 32], 4, dtype="float64", seed=0)
    model[2].bias.data[...] = -100.0
    model[4].weight.requires_grad_(False)
    monitor = fit(model, optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3), epochs=1)
    found = monitor.findings()
    assert [finding.severity for finding in found] == ["warning"] * (len(found) - 1) + ["note"]
    report = monitor.report().splitlines()
    assert report[0] == f"gradient monitor: {len(found)} findings (16 recorded steps, steps 1-16)"
    assert report[1:] == [f"- {finding}" for finding in found]
