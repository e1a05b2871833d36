"""The monitor's pictures (plot_flow, plot_history, plot_histograms, draw_graph's monitor=) and train --monitor."""

from __future__ import annotations

import builtins
import contextlib
import io
import json
import shutil
import subprocess

import numpy as np
import pytest

import tinygrad_nn as tg
from tinygrad_nn import cli, models, nn, optim, training
from tinygrad_nn.monitor import GradientMonitor
from tinygrad_nn.nn import functional as F  # noqa: N812
from tinygrad_nn.viz import draw_graph

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")


@pytest.fixture(scope="module")
def matplotlib():
    return pytest.importorskip("matplotlib", reason="the pictures need matplotlib (the examples extra)")


def blobs(samples=256, features=16, classes=4, seed=0):
    generator = np.random.default_rng(seed)
    centres = generator.standard_normal((classes, features)) * 2
    labels = generator.integers(0, classes, samples)
    return centres[labels] + generator.standard_normal((samples, features)), labels


def trained(model, optimizer, steps=12, every=1, batch=32):
    x, y = blobs()
    with GradientMonitor(model, every=every, histogram_steps=4) as monitor:
        for step in range(steps):
            rows = slice(step * batch % len(x), step * batch % len(x) + batch)
            loss = F.cross_entropy(model(tg.Tensor(x[rows])), y[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return monitor


@pytest.fixture
def dead_network():
    """An MLP whose second hidden layer is dead (its bias pushed to -100): findings to draw."""
    model = models.mlp(16, [32, 16], 4, dtype="float64", seed=0)
    model[2].bias.data[...] = -100.0
    return model, trained(model, optim.Adam(model.parameters(), lr=1e-3))


# --------------------------------------------------------------------------------------------------------------
# plot_flow, plot_history, plot_histograms
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["plot_flow", "plot_history", "plot_histograms"])
def test_each_picture_is_written_where_asked_or_returned_as_a_figure(matplotlib, dead_network, method, tmp_path):
    _, monitor = dead_network
    path = getattr(monitor, method)(tmp_path / f"{method}.png")
    assert path == tmp_path / f"{method}.png"
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    svg = getattr(monitor, method)(str(tmp_path / f"{method}.svg"))
    assert svg.read_text(encoding="utf-8").lstrip().startswith("<?xml")
    figure = getattr(monitor, method)()
    assert isinstance(figure, matplotlib.figure.Figure)


def test_plot_flow_names_every_parameter_and_marks_the_ones_behind_findings(matplotlib, dead_network):
    _, monitor = dead_network
    figure = monitor.plot_flow()
    (axes,) = figure.axes
    labels = [label.get_text() for label in axes.get_yticklabels()]
    assert labels == ["0.weight  (32, 16)", "0.bias  (32,)", "2.weight  (16, 32)", "2.bias  (16,)",
                      "4.weight  (4, 16)", "4.bias  (4,)"]  # fmt: skip
    assert axes.get_xscale() == "log"
    texts = [text.get_text() for text in axes.texts]
    # Layers 0 and 2: nothing flows back through the dead layer; 4.weight: its inputs are all zero.
    assert texts.count("gradient all zero") == 5
    legend = [text.get_text() for text in figure.legends[0].get_texts()]
    assert legend == ["max |g|", "mean |g|", "vanishing or zero gradient"]
    assert "averaged over 12 recorded steps (steps 1-12)" in axes.get_title()


def test_plot_history_draws_a_line_per_layer_and_names_the_findings_in_its_panels(matplotlib, dead_network):
    _, monitor = dead_network
    figure = monitor.plot_history()
    gradient, update, units = figure.axes
    assert gradient.get_yscale() == "log" and update.get_yscale() == "log"
    assert [line.get_label() for line in gradient.lines][:3] == ["0 (Linear)", "2 (Linear)", "4 (Linear)"]
    assert "zero gradient: 0, 2" in gradient.get_title(loc="left")
    assert "dead units: 3" in units.get_title(loc="left")
    assert [line.get_label() for line in units.lines][:2] == ["1 (relu): dead", "3 (relu): dead"]
    dead = units.lines[1].get_ydata()
    assert np.all(np.asarray(dead)[1:] == 1.0)


def test_plot_history_of_a_long_run_draws_medians_of_runs_of_steps(matplotlib):
    model = models.mlp(16, [8], 4, dtype="float64", seed=0)
    monitor = trained(model, optim.SGD(model.parameters(), lr=0.05), steps=900, batch=8)
    figure = monitor.plot_history()
    line = figure.axes[0].lines[0]
    assert len(line.get_xdata()) == 300 and "median of every 3 recorded steps" in figure.axes[-1].get_xlabel()


def test_plot_histograms_stacks_the_kept_steps_and_takes_steps_and_parameters(matplotlib, dead_network):
    _, monitor = dead_network
    figure = monitor.plot_histograms()
    visible = [axes for axes in figure.axes if axes.get_visible()]
    assert [axes.get_title() for axes in visible][:2] == ["0.weight", "0.bias"]
    kept = [label.get_text() for label in visible[4].get_yticklabels()]
    assert kept[0] == "step 1" and kept[-1] == "step 12"  # earliest at the back, the latest always kept
    figure = monitor.plot_histograms(steps=[2, 12], parameters=["4.weight"])
    (axes,) = [axes for axes in figure.axes if axes.get_visible()]
    assert [label.get_text() for label in axes.get_yticklabels()] == ["step 1", "step 12"]  # nearest kept to 2: 1
    assert axes.get_title() == "4.weight"


def test_a_sampled_parameters_histogram_says_how_many_entries_it_shows(matplotlib):
    model = models.mlp(16, [128], 4, dtype="float64", seed=0)
    x, y = blobs()
    with GradientMonitor(model, sample_size=500) as monitor:
        F.cross_entropy(model(tg.Tensor(x[:32])), y[:32]).backward()
    titles = [axes.get_title() for axes in monitor.plot_histograms().axes if axes.get_visible()]
    assert titles[0] == "0.weight  (500 of 2,048 entries)"


def test_histogram_steps_and_parameters_are_checked(matplotlib, dead_network):
    _, monitor = dead_network
    with pytest.raises(ValueError, match=r"step 13 was not recorded; the recorded steps are 1-12"):
        monitor.plot_histograms(steps=[1, 13])
    with pytest.raises(TypeError, match=r"steps must be whole numbers, got 2\.5"):
        monitor.plot_histograms(steps=[2.5])
    with pytest.raises(ValueError, match="steps must be a non-empty list"):
        monitor.plot_histograms(steps=[])
    with pytest.raises(KeyError, match=r"no parameter named '9\.weight'"):
        monitor.plot_histograms(parameters=["9.weight"])
    with pytest.raises(TypeError, match="parameters must be a list of names, got str"):
        monitor.plot_histograms(parameters="0.weight")


def test_without_matplotlib_the_pictures_say_how_to_install_it(dead_network, monkeypatch):
    _, monitor = dead_network
    real_import = builtins.__import__

    def without_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_matplotlib)
    with pytest.raises(ImportError, match=r"plot_flow draws with matplotlib, which is not installed: pip install"):
        monitor.plot_flow()


def test_pictures_before_any_step_say_how_to_record():
    with pytest.raises(RuntimeError, match="plot_history: no step recorded yet"):
        GradientMonitor(models.mlp(4, [4], 2)).plot_history()


# --------------------------------------------------------------------------------------------------------------
# draw_graph(..., monitor=...)
# --------------------------------------------------------------------------------------------------------------


def one_step_graph(model):
    x, y = blobs(8)
    loss = F.cross_entropy(model(tg.Tensor(x)), y)
    loss.backward()
    return loss


def test_draw_graph_notes_parameters_by_their_training_averages_and_verdicts(dead_network):
    model, monitor = dead_network
    loss = one_step_graph(model)
    source = draw_graph(loss, model, monitor=monitor).source
    averages = monitor.parameter_averages()
    assert f"mean grad norm {averages['4.weight']['grad_norm']:.3g} (12 steps)" in source
    assert "grad zero in 100% of steps; mean grad norm 0 (12 steps)" in source  # layers 0 and 2
    assert "100% of units dead (median over training)" in source  # on the dead ReLU's op
    assert "dead or saturated units" in source and "zero gradient" in source  # the legend
    one_step = draw_graph(loss, model).source
    assert "mean grad norm" not in one_step


def test_draw_graph_with_a_monitor_takes_its_model_and_marks_collapsed_modules(dead_network):
    model, monitor = dead_network
    loss = one_step_graph(model)
    source = draw_graph(loss, monitor=monitor, max_depth=1).source
    assert "3: ReLU" in source and "⚠ 100% of units dead (median over training)" in source
    assert "0.weight" in source  # the monitor's model names the parameters


def test_draw_graph_marks_vanishing_gradients_of_a_deep_sigmoid_stack_from_the_averages():
    layers = []
    for _ in range(8):
        layers += [nn.Linear(16, 16), nn.Sigmoid()]
    tg.manual_seed(0)
    model = nn.Sequential(*layers, nn.Linear(16, 4))
    monitor = trained(model, optim.SGD(model.parameters(), lr=0.1))
    source = draw_graph(one_step_graph(model), model, monitor=monitor, fold_repeats=False).source
    assert source.count("× output layer's; mean grad norm") >= 6  # weights and biases of the early layers
    assert "vanishing gradient" in source


def test_draw_graph_refuses_a_monitor_of_another_model_and_things_that_are_not_monitors(dead_network):
    model, monitor = dead_network
    loss = one_step_graph(model)
    other = models.mlp(16, [32, 16], 4, dtype="float64", seed=1)
    with pytest.raises(ValueError, match=r"the monitor watches another model than the one given \(Sequential\)"):
        draw_graph(one_step_graph(other), other, monitor=monitor)
    with pytest.raises(TypeError, match=r"monitor must be a GradientMonitor \(or None\), got dict"):
        draw_graph(loss, model, monitor={})
    unrelated = tg.Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(ValueError, match="the monitor watches none of the parameters in this graph"):
        draw_graph((unrelated * 2).sum(), monitor=monitor)


@needs_dot
def test_draw_graph_with_a_monitor_renders(dead_network, tmp_path):
    model, monitor = dead_network
    path = tg.render_graph(draw_graph(one_step_graph(model), model, monitor=monitor), tmp_path / "graph.png")
    assert path.read_bytes()[:8] == PNG_SIGNATURE


# --------------------------------------------------------------------------------------------------------------
# tinygrad-nn train --monitor
# --------------------------------------------------------------------------------------------------------------


def run_main(argv):
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            status = cli.main(argv)
        except SystemExit as exit_:
            status = exit_.code
    return status, stdout.getvalue(), stderr.getvalue()


TUTORIAL = ["train", "--model", "tutorial", "--hidden", "16", "--epochs", "2"]


@pytest.fixture(scope="module")
def monitored_run(tmp_path_factory):
    pytest.importorskip("sklearn", reason="train's default data set is scikit-learn's digits (the examples extra)")
    pytest.importorskip("matplotlib", reason="train draws with matplotlib (the examples extra)")
    out = tmp_path_factory.mktemp("monitored")
    status, stdout, stderr = run_main([*TUTORIAL, "--monitor", "--out", str(out)])
    assert status == 0, stderr
    return out, stdout


def test_train_monitor_writes_three_pictures_and_prints_the_findings(monitored_run):
    out, stdout = monitored_run
    assert "sgd, constant lr=0.1 momentum=0.0, batch size 1, 2 epochs, float32, gradient monitor every step" in stdout
    assert "gradient monitor: no findings (2694 recorded steps, steps 1-2694)" in stdout
    for name in cli.MONITOR_PICTURES:
        assert (out / name).read_bytes()[:8] == PNG_SIGNATURE
        assert str(out / name) in stdout.splitlines()[-1]
    assert json.loads((out / "config.json").read_text())["monitor"] == 1


def test_train_monitor_every_and_a_finding(tmp_path):
    pytest.importorskip("sklearn", reason="the digits are scikit-learn's")
    pytest.importorskip("matplotlib", reason="train draws with matplotlib")
    argv = ["train", "--hidden", "32,16", "--epochs", "1", "--optimizer", "sgd", "--lr", "10", "--schedule", "none"]
    status, stdout, stderr = run_main([*argv, "--monitor", "3", "--out", str(tmp_path)])
    assert status == 0, stderr
    assert "gradient monitor every 3 steps" in stdout
    assert "gradient monitor: " in stdout and "update ratio too large: " in stdout


def test_resume_brings_the_monitor_back_and_refuses_to_add_or_drop_it(monitored_run, tmp_path):
    out, _ = monitored_run
    status, resumed, stderr = run_main(["train", "--out", str(out), "--resume"])
    assert status == 0, stderr
    assert "gradient monitor: no findings (2694 recorded steps, steps 1-2694)" in resumed
    status, _, stderr = run_main(["train", "--out", str(out), "--resume", "--monitor", "2"])
    assert status == 2
    assert stderr.startswith(f"tinygrad-nn train: --resume continues the run in {out}, which used --monitor 1;")


def test_resume_of_an_unmonitored_run_refuses_monitor(tmp_path):
    pytest.importorskip("sklearn", reason="the digits are scikit-learn's")
    pytest.importorskip("matplotlib", reason="train draws with matplotlib")
    status, _, stderr = run_main([*TUTORIAL, "--epochs", "1", "--out", str(tmp_path)])
    assert status == 0, stderr
    status, _, stderr = run_main(["train", "--out", str(tmp_path), "--resume", "--monitor"])
    assert status == 2 and "which used --monitor off; leave --monitor out" in stderr


def test_a_checkpoint_from_before_monitor_existed_resumes_without_it(tmp_path):
    pytest.importorskip("sklearn", reason="the digits are scikit-learn's")
    pytest.importorskip("matplotlib", reason="train draws with matplotlib")
    status, _, stderr = run_main([*TUTORIAL, "--epochs", "1", "--out", str(tmp_path)])
    assert status == 0, stderr
    checkpoint = tmp_path / training.CHECKPOINT_NAME
    content = training.load_checkpoint(checkpoint)
    del content["metadata"]["monitor"]
    training.save_checkpoint(checkpoint, content)
    status, stdout, stderr = run_main(["train", "--out", str(tmp_path), "--resume"])
    assert status == 0, stderr and "gradient monitor" not in stdout


@pytest.mark.parametrize("bad", ["0", "-1", "x", "1.5", "1000001"])
def test_bad_monitor_values_exit_2_naming_the_option(bad, tmp_path):
    status, _, stderr = run_main(["train", "--monitor", bad, "--out", str(tmp_path)])
    assert status == 2
    assert stderr.startswith("tinygrad-nn train: argument --monitor: expected a positive whole number up to 1,000,000")


def test_a_tampered_monitor_setting_in_a_checkpoint_is_a_one_line_error(monitored_run, tmp_path):
    out, _ = monitored_run
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    checkpoint = copy / training.CHECKPOINT_NAME
    content = training.load_checkpoint(checkpoint)
    content["metadata"]["monitor"] = "often"
    training.save_checkpoint(checkpoint, content)
    status, _, stderr = run_main(["train", "--out", str(copy), "--resume"])
    assert status == 2
    assert (
        stderr == f"tinygrad-nn train: {checkpoint}: 'monitor' must be null or a whole number of steps, got 'often'\n"
    )


def test_the_help_describes_monitor():
    done = subprocess.run(
        [*cli_program(), "train", "--help"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert "--monitor [EVERY]" in done and "gradient_flow.png" in done


def cli_program():
    import sys

    return [sys.executable, "-m", "tinygrad_nn"]
