"""GradientMonitor's records: what it measures, when, at what cost to training (none), and its state.

Every recorded number is checked against the same number computed by hand from ``.grad`` and ``.data`` around
each step; the findings are in test_monitor_findings.py, the pictures in test_monitor_pictures.py.
"""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest

import tinygrad_nn as tg
from tinygrad_nn import autograd, data, nn, optim, training
from tinygrad_nn.monitor import GradientMonitor
from tinygrad_nn.nn import functional as F  # noqa: N812
from tinygrad_nn.nn import module as nn_module

# --------------------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------------------


def mlp(sizes=(12, 40, 20, 3), activation=nn.ReLU, dtype=np.float64, seed=0):
    """Linear layers with `activation` between them, initialised from `seed`."""
    generator = np.random.default_rng(seed)
    layers = []
    for index, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
        linear = nn.Linear(fan_in, fan_out, dtype=dtype)
        linear.reset_parameters(generator)
        layers.append(linear)
        if index < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


def batches(count, batch=16, features=12, classes=3, dtype=np.float64, seed=0):
    generator = np.random.default_rng(seed)
    return [
        (tg.Tensor(generator.standard_normal((batch, features)).astype(dtype)), generator.integers(0, classes, batch))
        for _ in range(count)
    ]


def train(model, optimizer, steps, loss_fn=F.cross_entropy, each=None):
    """A plain training loop; `each(step)` is called after every backward, before the optimizer steps."""
    for step, (inputs, targets) in enumerate(steps, start=1):
        loss = loss_fn(model(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        if each is not None:
            each(step)
        optimizer.step()


def snapshot(model):
    return {name: (p.grad.copy(), p.data.copy()) for name, p in model.named_parameters()}


def hook_counts():
    """How many post-accumulate and module hooks exist in the process (what 'nothing left behind' means)."""
    return autograd._post_hook_count, nn_module._module_hook_count


# --------------------------------------------------------------------------------------------------------------
# What it records
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gradient_norms_are_the_norms_of_grad_by_hand(dtype):
    model = mlp(dtype=dtype)
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    by_hand = []
    with GradientMonitor(model, sample_size=100) as monitor:  # 0.weight (480 entries) is sampled; norms stay exact
        train(model, optimizer, batches(6, dtype=dtype), each=lambda step: by_hand.append(snapshot(model)))
    assert monitor.steps.tolist() == [1, 2, 3, 4, 5, 6]
    for row, seen in enumerate(by_hand):
        for column, name in enumerate(monitor.parameter_names):
            grad, weight = seen[name]
            assert monitor.grad_norm[row, column] == pytest.approx(float(np.linalg.norm(grad)), rel=1e-6)
            assert monitor.grad_norm[row, column] == float(np.linalg.norm(grad))  # computed the same way: equal
            # The weight norm and the largest |g| are exact too, sampled parameter or not.
            assert monitor.weight_norm[row, column] == float(np.linalg.norm(weight))
            assert monitor.grad_max_abs[row, column] == float(np.abs(grad).max())


def test_small_parameters_get_exact_statistics_and_sample_size_none_makes_all_exact():
    for sample_size in (1000, None):  # 1000: every parameter of this model is small enough to be taken whole
        model = mlp()
        optimizer = optim.SGD(model.parameters(), lr=0.1)
        by_hand = []

        def keep(step, model=model, by_hand=by_hand):
            by_hand.append(snapshot(model))

        with GradientMonitor(model, sample_size=sample_size) as monitor:
            train(model, optimizer, batches(4), each=keep)
        for row, seen in enumerate(by_hand):
            for column, name in enumerate(monitor.parameter_names):
                grad, weight = seen[name]
                assert monitor.grad_mean_abs[row, column] == pytest.approx(np.abs(grad).mean(), rel=1e-12)
                assert monitor.grad_max_abs[row, column] == np.abs(grad).max()
                assert monitor.weight_norm[row, column] == pytest.approx(np.linalg.norm(weight), rel=1e-12)


def test_big_parameters_get_exact_norms_and_a_mean_estimated_from_a_fixed_even_sample():
    model = mlp(sizes=(200, 300, 3))  # 0.weight has 60,000 entries
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    by_hand = []
    with GradientMonitor(model, sample_size=2000) as monitor:
        train(model, optimizer, batches(5, features=200), each=lambda step: by_hand.append(snapshot(model)))
    column = monitor.parameter_names.index("0.weight")
    for row, seen in enumerate(by_hand):
        grad, weight = seen["0.weight"]
        assert monitor.grad_norm[row, column] == float(np.linalg.norm(grad))  # exact, always
        assert monitor.weight_norm[row, column] == float(np.linalg.norm(weight))
        assert monitor.grad_max_abs[row, column] == float(np.abs(grad).max())
        assert monitor.grad_mean_abs[row, column] == pytest.approx(np.abs(grad).mean(), rel=0.1)
        assert monitor.grad_mean_abs[row, column] != np.abs(grad).mean()  # an estimate: from 2,000 of 60,000


def test_the_update_ratio_of_plain_sgd_is_lr_times_the_gradient_over_the_weights():
    model = mlp()
    optimizer = optim.SGD(model.parameters(), lr=0.05)
    by_hand = []
    with GradientMonitor(model, sample_size=None) as monitor:
        train(model, optimizer, batches(5), each=lambda step: by_hand.append(snapshot(model)))
    for row, seen in enumerate(by_hand):
        for column, name in enumerate(monitor.parameter_names):
            grad, weight = seen[name]
            expected = 0.05 * np.linalg.norm(grad) / np.linalg.norm(weight)
            assert monitor.update_ratio[row, column] == pytest.approx(expected, rel=1e-9)


def test_the_update_ratio_measures_each_recorded_step_alone_with_adam_and_every():
    model = mlp()
    optimizer = optim.Adam(model.parameters(), lr=1e-2)
    weights = []
    with GradientMonitor(model, every=3, sample_size=None) as monitor:

        def keep(step):
            weights.append({name: p.data.copy() for name, p in model.named_parameters()})

        train(model, optimizer, batches(10), each=keep)
    final = {name: p.data.copy() for name, p in model.named_parameters()}
    weights.append(final)  # after the last step
    assert monitor.steps.tolist() == [1, 4, 7, 10]
    for row, step in enumerate(monitor.steps):
        before, after = weights[step - 1], weights[step]  # around the optimizer step of that backward
        for column, name in enumerate(monitor.parameter_names):
            expected = np.linalg.norm(after[name] - before[name]) / np.linalg.norm(before[name])
            assert monitor.update_ratio[row, column] == pytest.approx(expected, rel=1e-9)


def test_the_last_update_waits_for_the_optimizer_and_detach_settles_it():
    model = mlp()
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    monitor = GradientMonitor(model).attach()
    train(model, optimizer, batches(2))
    assert np.isfinite(monitor.update_ratio[0]).all()
    assert np.isnan(monitor.update_ratio[1]).all()  # the second step's update is not known until something follows
    monitor.detach()
    assert np.isfinite(monitor.update_ratio[1]).all()


def test_each_backward_is_a_step_even_when_gradients_accumulate_in_place():
    model = mlp()
    inputs, targets = batches(1)[0]
    with GradientMonitor(model) as monitor:
        for _ in range(3):  # no zero_grad: .grad is added to in place
            F.cross_entropy(model(inputs), targets).backward()
        loss = F.cross_entropy(model(inputs), targets)
        loss.backward(retain_graph=True)
        loss.backward()
    assert monitor.steps.tolist() == [1, 2, 3, 4, 5]
    grad = model[0].weight.grad
    assert monitor.grad_norm[-1, 0] == float(np.linalg.norm(grad))  # the accumulated gradient, as .grad holds it


def test_gradients_left_as_tensors_by_create_graph_are_read_too():
    model = mlp()
    inputs, targets = batches(1)[0]
    with GradientMonitor(model) as monitor:
        F.cross_entropy(model(inputs), targets).backward(create_graph=True)
    grad = model[0].weight.grad
    assert isinstance(grad, tg.Tensor)
    assert monitor.grad_norm[0, 0] == float(np.linalg.norm(grad.data))


def test_a_frozen_parameter_is_recorded_without_a_gradient():
    model = mlp()
    model[0].weight.requires_grad_(False)
    optimizer = optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    with GradientMonitor(model) as monitor:
        train(model, optimizer, batches(3))
    column = monitor.parameter_names.index("0.weight")
    assert not monitor.received[:, column].any() and monitor.received[:, column + 1].all()
    assert np.isnan(monitor.grad_norm[:, column]).all()
    assert (monitor.update_ratio[:, column] == 0).all()  # its weights are still watched: they do not move
    assert monitor.parameter_averages()["0.weight"]["steps"] == 0


def test_history_gives_one_parameter_or_activation_module_by_name():
    model = mlp()
    with GradientMonitor(model) as monitor:
        train(model, optim.SGD(model.parameters(), lr=0.1), batches(3))
    record = monitor.history("2.bias")
    assert list(record) == ["step", "grad_norm", "grad_mean_abs", "grad_max_abs", "weight_norm", "update_ratio"]
    assert np.array_equal(record["grad_norm"], monitor.grad_norm[:, monitor.parameter_names.index("2.bias")])
    assert list(monitor.history("1")) == ["step", "dead_fraction"]
    with pytest.raises(KeyError, match=r"no parameter or activation module named '2\.weights'; known: 0\.weight"):
        monitor.history("2.weights")


def test_parameter_averages_are_means_over_the_steps_with_a_gradient():
    model = mlp()
    with GradientMonitor(model) as monitor:
        train(model, optim.SGD(model.parameters(), lr=0.1), batches(4))
    averages = monitor.parameter_averages()
    assert list(averages) == monitor.parameter_names
    assert averages["0.weight"]["grad_norm"] == pytest.approx(monitor.grad_norm[:, 0].mean())
    assert averages["0.weight"]["update_ratio"] == pytest.approx(np.median(monitor.update_ratio[:, 0]))
    assert averages["0.weight"]["steps"] == 4 and averages["0.weight"]["zero_steps"] == 0


def test_a_nan_gradient_is_recorded_as_nan_but_received():
    model = mlp()
    inputs, targets = batches(1)[0]
    inputs.data[0, 0] = np.nan
    with GradientMonitor(model) as monitor:
        F.cross_entropy(model(inputs), targets).backward()
    assert monitor.received.all()
    assert np.isnan(monitor.grad_norm[0, 0])


def test_an_empty_parameter_is_harmless():
    class WithEmpty(nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = nn.Linear(3, 2)
            self.nothing = nn.Parameter(np.zeros(0))

        def forward(self, x):
            return self.layer(x) + self.nothing.sum()

    model = WithEmpty()
    with GradientMonitor(model) as monitor:
        model(tg.Tensor(np.ones((4, 3)))).sum().backward()
    column = monitor.parameter_names.index("nothing")
    assert monitor.grad_norm[0, column] == 0.0 and np.isnan(monitor.grad_mean_abs[0, column])
    assert np.isfinite(monitor.grad_norm[0, :column]).all()


# --------------------------------------------------------------------------------------------------------------
# Activations: dead and saturated units
# --------------------------------------------------------------------------------------------------------------


def test_dead_units_are_counted_exactly():
    model = mlp(sizes=(12, 8, 3))
    model[0].bias.data[:3] = -1e3  # three of the eight units can never fire
    with GradientMonitor(model) as monitor:
        train(model, optim.SGD(model.parameters(), lr=0.01), batches(3, batch=64))
    assert monitor.activation_names == ["1"] and monitor.activation_kinds == ["relu"]
    assert monitor.activation_fraction[:, 0].tolist() == [3 / 8] * 3


def test_with_small_batches_a_unit_is_dead_only_after_the_window_of_samples():
    model = mlp(sizes=(12, 8, 3))
    model[0].bias.data[:2] = -1e3
    with GradientMonitor(model, dead_window=4) as monitor:
        train(model, optim.SGD(model.parameters(), lr=0.01), batches(6, batch=1))
    fractions = monitor.activation_fraction[:, 0]
    assert fractions[:3].max() < 2 / 8  # one sample, or three, say little
    assert fractions[3:].min() >= 2 / 8  # four in a row do


def test_saturated_sigmoid_and_tanh_units_are_counted_including_units_split_between_both_bounds():
    for activation, bound in ((nn.Sigmoid, 0.0), (nn.Tanh, -1.0)):
        model = mlp(sizes=(12, 6, 3), activation=activation)
        weight, bias = model[0].weight.data, model[0].bias.data
        weight[:2] = 0.0
        bias[0], bias[1] = 1e3, -1e3  # unit 0 at its top bound, unit 1 at its bottom one
        weight[2] = 0.0
        weight[2, 0] = 1e4  # unit 2 at either bound, by the sign of the first input
        inputs = [(tg.Tensor(np.where(np.arange(64)[:, None] % 2, 1.0, -1.0) * np.ones((64, 12))), np.zeros(64, int))]
        with GradientMonitor(model) as monitor:
            train(model, optim.SGD(model.parameters(), lr=0.0), inputs)
        assert monitor.activation_fraction[0, 0] == 3 / 6, activation
        assert bound in (0.0, -1.0)


def test_forwards_under_no_grad_are_not_training():
    model = mlp(sizes=(12, 8, 3))
    model[0].bias.data[:3] = -1e3
    with GradientMonitor(model, dead_window=2) as monitor:
        with tg.no_grad():
            for inputs, _ in batches(5, batch=1):
                model(inputs)
        train(model, optim.SGD(model.parameters(), lr=0.0), batches(1, batch=1))
    assert monitor.activation_fraction[0, 0] == 0.0  # one training sample only: nothing is dead yet


def test_one_activation_module_used_at_two_widths_counts_each_width_apart():
    class Shared(nn.Module):
        def __init__(self):
            super().__init__()
            self.first, self.second = nn.Linear(12, 8), nn.Linear(8, 4)
            self.act = nn.ReLU()

        def forward(self, x):
            return self.act(self.second(self.act(self.first(x))))

    model = Shared()
    model.first.bias.data[:] = -1e3  # every unit of the first width dead
    model.second.bias.data[:] = [1.0, -1.0, 1.0, -1.0]  # the second gets only zeros: its bias decides
    with GradientMonitor(model) as monitor:
        model(batches(1, batch=64)[0][0]).sum().backward()
    assert monitor.activation_names == ["act (8 units)", "act (4 units)"]
    assert monitor.activation_fraction[0].tolist() == [1.0, 0.5]
    assert monitor.history("act (8 units)")["dead_fraction"].tolist() == [1.0]
    (dead,) = [finding for finding in monitor.findings() if finding.kind == "dead_units"]
    assert dead.layer == "act" and dead.parameters == ("first.weight", "first.bias")  # the layer that feeds it
    assert str(dead).startswith("dead units: act (8 units) (ReLU), after first (Linear): 100% of its 8 units")


def test_images_count_channels_over_the_batch_and_positions():
    class Channels(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(np.array([1.0, -1.0, 1.0, -1.0]).reshape(1, 4, 1, 1))
            self.act = nn.ReLU()

        def forward(self, x):
            return self.act(x * self.scale)

    model = Channels()
    images = tg.Tensor(np.abs(np.random.default_rng(0).standard_normal((64, 4, 3, 3))) + 0.1)
    with GradientMonitor(model) as monitor:
        model(images).sum().backward()
    assert monitor.activation_fraction[0, 0] == 0.5  # channels 1 and 3 are negative everywhere


# --------------------------------------------------------------------------------------------------------------
# Attaching, detaching, cost
# --------------------------------------------------------------------------------------------------------------


def test_a_monitor_made_but_not_attached_registers_nothing_and_records_nothing():
    before = hook_counts()
    model = mlp()
    monitor = GradientMonitor(model)
    assert hook_counts() == before
    train(model, optim.SGD(model.parameters(), lr=0.1), batches(2))
    assert monitor.steps.tolist() == [] and not monitor.attached


def test_detach_takes_every_hook_off_and_recording_stops():
    before = hook_counts()
    model = mlp()
    monitor = GradientMonitor(model).attach()
    assert monitor.attached and hook_counts() != before
    monitor.attach()  # twice: nothing more
    train(model, optim.SGD(model.parameters(), lr=0.1), batches(2))
    monitor.detach()
    monitor.detach()
    assert hook_counts() == before and not monitor.attached
    train(model, optim.SGD(model.parameters(), lr=0.1), batches(2))
    assert monitor.steps.tolist() == [1, 2]


def test_the_with_block_detaches_when_the_block_raises():
    before = hook_counts()
    model = mlp()
    with pytest.raises(ZeroDivisionError), GradientMonitor(model):
        train(model, optim.SGD(model.parameters(), lr=0.1), batches(1))
        raise ZeroDivisionError
    assert hook_counts() == before


def test_the_monitor_changes_nothing_in_training_and_draws_from_no_generator():
    results = []
    for watched in (False, True):
        np.random.seed(5)
        random.seed(5)
        tg.manual_seed(5)
        model = mlp()
        optimizer = optim.Adam(model.parameters(), lr=1e-2)
        if watched:
            with GradientMonitor(model, sample_size=50, seed=3):
                train(model, optimizer, batches(6))
        else:
            train(model, optimizer, batches(6))
        states = (np.random.get_state()[1].copy(), random.getstate(), tg.get_rng_state())
        results.append(({name: p.data.copy() for name, p in model.named_parameters()}, states))
    (bare, bare_states), (watched, watched_states) = results
    assert all(np.array_equal(bare[name], watched[name]) for name in bare)  # bit for bit
    assert np.array_equal(bare_states[0], watched_states[0]) and bare_states[1:] == watched_states[1:]


# --------------------------------------------------------------------------------------------------------------
# As a fit callback, and its state in fit's checkpoints
# --------------------------------------------------------------------------------------------------------------


def fit_setup(seed=0, shuffle_seed=0):
    generator = np.random.default_rng(7)
    x = generator.standard_normal((96, 12))
    y = generator.integers(0, 3, 96)
    model = mlp(seed=seed)
    optimizer = optim.Adam(model.parameters(), lr=1e-2)
    loader = data.DataLoader(x, y, batch_size=16, shuffle=True, seed=shuffle_seed)
    return model, optimizer, loader, data.DataLoader(x[:32], y[:32], batch_size=32)


class InterruptAt:
    def __init__(self, step):
        self.step = step

    def on_step_end(self, state):
        if state.step == self.step:
            raise KeyboardInterrupt


def test_as_a_fit_callback_the_steps_are_fits_and_no_hook_is_left():
    before = hook_counts()
    model, optimizer, loader, val_loader = fit_setup()
    monitor = GradientMonitor(model, every=2)
    training.fit(model, F.cross_entropy, optimizer, loader, epochs=2, val_loader=val_loader, callbacks=[monitor],
                 progress=False)  # fmt: skip
    assert monitor.steps.tolist() == list(range(1, 13, 2))
    assert np.isfinite(monitor.update_ratio).all()  # on_step_end settled every one, the last included
    assert hook_counts() == before and not monitor.attached
    assert np.isfinite(monitor.activation_fraction).all()  # evaluation under no_grad did not count


def test_fit_interrupted_and_resumed_with_the_monitor_is_bit_for_bit_the_uninterrupted_run(tmp_path):
    model, optimizer, loader, val_loader = fit_setup()
    expected_monitor = GradientMonitor(model, sample_size=100)
    training.fit(model, F.cross_entropy, optimizer, loader, epochs=4, val_loader=val_loader,
                 callbacks=[expected_monitor], progress=False)  # fmt: skip
    expected_weights = {name: p.data.copy() for name, p in model.named_parameters()}

    model, optimizer, loader, val_loader = fit_setup()
    with pytest.raises(training.TrainingInterrupted):
        training.fit(model, F.cross_entropy, optimizer, loader, epochs=4, val_loader=val_loader,
                     callbacks=[GradientMonitor(model, sample_size=100), InterruptAt(15)], checkpoint_dir=tmp_path,
                     progress=False)  # fmt: skip

    model, optimizer, loader, val_loader = fit_setup(seed=9, shuffle_seed=9)  # another process: other weights
    monitor = GradientMonitor(model, sample_size=100)
    training.fit(model, F.cross_entropy, optimizer, loader, epochs=4, val_loader=val_loader,
                 callbacks=[monitor, InterruptAt(-1)], checkpoint_dir=tmp_path, resume=True,
                 progress=False)  # fmt: skip
    for name, parameter in model.named_parameters():
        assert np.array_equal(parameter.data, expected_weights[name]), name
    expected, resumed = expected_monitor.state_dict(), monitor.state_dict()
    assert expected.keys() == resumed.keys()
    for key in expected:
        if key == "sites":
            for first, second in zip(expected[key], resumed[key]):
                assert all(np.array_equal(first[k], second[k]) for k in first if first[k] is not None), key
        elif isinstance(expected[key], np.ndarray):
            assert np.array_equal(expected[key], resumed[key], equal_nan=True), key
        elif key != "weights_then":  # which of two buffers holds it does not matter; its values do
            assert expected[key] == resumed[key], key
    assert monitor.steps.tolist() == list(range(1, 25))
    assert monitor.findings() == expected_monitor.findings()


def test_state_dict_round_trip_into_a_fresh_monitor_continues_the_same_records():
    steps = batches(5)
    whole_model, split_model = mlp(), mlp()
    whole = GradientMonitor(whole_model, sample_size=100)
    with whole:
        train(whole_model, optim.SGD(whole_model.parameters(), lr=0.1), steps)
    optimizer = optim.SGD(split_model.parameters(), lr=0.1)
    first = GradientMonitor(split_model, sample_size=100)
    with first:
        train(split_model, optimizer, steps[:3])
    second = GradientMonitor(split_model, sample_size=100)
    second.load_state_dict(first.state_dict())
    with second:
        train(split_model, optimizer, steps[3:])
    assert second.steps.tolist() == [1, 2, 3, 4, 5]
    for name in ("grad_norm", "grad_mean_abs", "grad_max_abs", "weight_norm", "update_ratio", "activation_fraction"):
        assert np.array_equal(getattr(whole, name), getattr(second, name)), name


def test_load_state_dict_refuses_another_model_other_settings_and_garbage_and_changes_nothing():
    model = mlp()
    monitor = GradientMonitor(model).attach()
    train(model, optim.SGD(model.parameters(), lr=0.1), batches(2))
    monitor.detach()
    state = monitor.state_dict()
    other = GradientMonitor(mlp(sizes=(12, 40, 3)))
    with pytest.raises(ValueError, match=r"recorded on a model with other parameters; that model also had 4\.weight"):
        other.load_state_dict(state)
    with pytest.raises(ValueError, match=r"parameter 0\.weight has shape \(40, 12\), this model's \(40, 13\)"):
        GradientMonitor(mlp(sizes=(13, 40, 20, 3))).load_state_dict(state)
    with pytest.raises(ValueError, match="recorded with every=1, this monitor has every=5"):
        GradientMonitor(mlp(), every=5).load_state_dict(state)
    with pytest.raises(ValueError, match="not the state of a GradientMonitor"):
        GradientMonitor(mlp()).load_state_dict({"steps": [1, 2]})
    with pytest.raises(TypeError, match="takes the dict state_dict"):
        GradientMonitor(mlp()).load_state_dict([1, 2])
    fresh = GradientMonitor(mlp())
    for damage in (
        {"records": state["records"][:1]},
        {"row_steps": np.array([2, 1])},
        {"awaiting_update": 7},
        {"output_slot": 99},
        {"sites": [{**state["sites"][0], "module": "9"}]},
        {"histogram_samples": np.zeros((1, 3), np.float32)},
    ):
        with pytest.raises(ValueError):
            fresh.load_state_dict({**state, **damage})
        assert fresh.steps.tolist() == []  # refused: nothing changed
    fresh.load_state_dict(state)
    assert fresh.steps.tolist() == [1, 2]


# --------------------------------------------------------------------------------------------------------------
# Mistakes
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"model": "model"}, TypeError, "watches a Module .a model., got str"),
        ({"every": 0}, ValueError, "every must be a whole number >= 1, got 0"),
        ({"every": 1.5}, ValueError, "every must be a whole number >= 1, got 1.5"),
        ({"every": True}, ValueError, "every must be a whole number >= 1, got True"),
        ({"sample_size": 0}, ValueError, "sample_size must be a whole number >= 1, got 0"),
        ({"dead_window": -1}, ValueError, "dead_window must be a whole number >= 1"),
        ({"saturation_tolerance": 0.5}, ValueError, "saturation_tolerance must be below 0.5, got 0.5"),
        ({"saturation_tolerance": float("nan")}, ValueError, "saturation_tolerance must be a positive number"),
        ({"histogram_steps": 1}, ValueError, "histogram_steps must be a whole number >= 2"),
        ({"seed": -3}, ValueError, "seed must be a whole number >= 0"),
    ],
)
def test_bad_arguments_say_which_and_what_was_given(arguments, error, message):
    model = arguments.pop("model", mlp())
    with pytest.raises(error, match=message):
        GradientMonitor(model, **arguments)


def test_a_model_without_parameters_or_with_every_parameter_frozen_is_refused():
    with pytest.raises(ValueError, match=r"the model \(ReLU\) has no parameters to watch"):
        GradientMonitor(nn.ReLU())
    model = mlp().requires_grad_(False)
    with pytest.raises(ValueError, match="none of the 6 parameters of the model requires grad"):
        GradientMonitor(model).attach()


def test_reading_findings_or_pictures_before_any_step_says_how_to_record():
    monitor = GradientMonitor(mlp())
    with pytest.raises(RuntimeError, match="no step recorded yet: attach the monitor"):
        monitor.findings()
    assert "0 steps recorded, detached" in repr(monitor)


# --------------------------------------------------------------------------------------------------------------
# Against PyTorch
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.torch
def test_norms_and_update_ratios_agree_with_pytorch_on_the_same_network(torch):
    model = mlp()
    reference = torch.nn.Sequential(
        torch.nn.Linear(12, 40), torch.nn.ReLU(), torch.nn.Linear(40, 20), torch.nn.ReLU(), torch.nn.Linear(20, 3)
    ).double()
    with torch.no_grad():
        for ours, theirs in zip(model.parameters(), reference.parameters()):
            theirs.copy_(torch.from_numpy(ours.data))
    steps = batches(4)
    with GradientMonitor(model, sample_size=None) as monitor:
        train(model, optim.Adam(model.parameters(), lr=1e-2), steps)
    optimizer = torch.optim.Adam(reference.parameters(), lr=1e-2)
    for row, (inputs, targets) in enumerate(steps):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(
            reference(torch.from_numpy(inputs.data)), torch.from_numpy(targets)
        ).backward()
        before = [p.detach().clone() for p in reference.parameters()]
        optimizer.step()
        for column, (parameter, then) in enumerate(zip(reference.parameters(), before)):
            assert monitor.grad_norm[row, column] == pytest.approx(parameter.grad.norm().item(), rel=1e-9)
            ratio = ((parameter.detach() - then).norm() / then.norm()).item()
            assert monitor.update_ratio[row, column] == pytest.approx(ratio, rel=1e-6)
