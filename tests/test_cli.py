"""The command line: demo, tutorials, train and graph, in-process through main() and as the installed programs."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np
import pytest

import tinygrad_nn as tg
from tinygrad_nn import cli, data, models, training

REPOSITORY = Path(__file__).resolve().parent.parent
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
EPOCH_LINE = re.compile(
    r"^epoch (\d+)/\d+: mean loss (\d+\.\d{4}), test loss \d+\.\d{4}, test accuracy (\d\.\d{4}) \(\d+\.\d s\)$",
    re.MULTILINE,
)

needs_dot = pytest.mark.skipif(
    shutil.which("dot") is None, reason="Graphviz's dot is not installed (apt-get install graphviz)"
)


# --------------------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------------------


def run_main(argv: list[str]) -> tuple[int, str, str]:
    """cli.main(argv) in this process: (exit status, stdout, stderr); argparse's SystemExit becomes the status."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            status = cli.main(argv)
        except SystemExit as exit_:
            status = exit_.code
    return status, stdout.getvalue(), stderr.getvalue()


def run_program(command: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=REPOSITORY, capture_output=True, text=True, timeout=timeout)


def entry_point() -> str:
    script = Path(sys.executable).parent / "tinygrad-nn"
    if not script.is_file():
        pytest.skip(f"the tinygrad-nn script is not installed beside {sys.executable} (pip install -e .)")
    return str(script)


def assert_real_png(path: Path) -> None:
    import matplotlib.image

    assert path.is_file(), f"{path} was not written"
    assert path.read_bytes().startswith(PNG_SIGNATURE)
    pixels = matplotlib.image.imread(path)
    assert pixels.shape[0] >= 100 and pixels.shape[1] >= 100
    assert pixels.std() > 0


def assert_real_svg(path: Path, must_mention: tuple[str, ...] = ()) -> str:
    assert path.is_file(), f"{path} was not written"
    text = path.read_text()
    root = ElementTree.fromstring(text)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert len(root.findall(".//{http://www.w3.org/2000/svg}g")) > 3  # nodes and edges were drawn
    for name in must_mention:
        assert name in text, f"{path} does not mention {name!r}"
    return text


def epochs_printed(stdout: str) -> list[tuple[int, float, float]]:
    return [(int(e), float(loss), float(acc)) for e, loss, acc in EPOCH_LINE.findall(stdout)]


def closed_port() -> int:
    """A local port with nothing listening: connecting to it is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(autouse=True)
def keep_global_numpy_state():
    """The tutorials seed numpy's global generator; put it back for the other tests."""
    state = np.random.get_state()
    yield
    np.random.set_state(state)


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No network: every mirror is a refused local port, and the cache is an empty folder of this test's."""
    mirror = f"http://127.0.0.1:{closed_port()}/"
    for name, source in list(data.DATASET_SOURCES.items()):
        monkeypatch.setitem(data.DATASET_SOURCES, name, dataclasses.replace(source, mirrors=(mirror,)))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("TINYGRAD_NN_DATA", raising=False)
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def trained_mlp(tmp_path_factory) -> tuple[Path, str, str]:
    """`train --dataset digits --model mlp --epochs 2`, once for the tests that read what it wrote."""
    out_dir = tmp_path_factory.mktemp("train_mlp")
    status, stdout, stderr = run_main(
        ["train", "--dataset", "digits", "--model", "mlp", "--epochs", "2", "--out", str(out_dir)]
    )
    assert status == 0, stderr
    return out_dir, stdout, stderr


@pytest.fixture(scope="module")
def fashion_mnist_present() -> None:
    try:
        data.load_fashion_mnist(download=False)
    except data.DataError as error:
        pytest.skip(f"Fashion-MNIST is not on this machine (apt-get install dataset-fashion-mnist): {error}")


def one_line_error(stderr: str, command: str) -> str:
    """The single line a command prints when it refuses to work, checked for being just that."""
    assert stderr.endswith("\n") and stderr.count("\n") == 1, stderr
    assert stderr.startswith(f"tinygrad-nn {command}: ") or stderr.startswith("tinygrad-nn: "), stderr
    assert "Traceback" not in stderr
    return stderr


def wrapped_table(stdout: str) -> list[list[str]]:
    """The tutorials table's rows, each a list of cells, with wrapped cells joined again."""
    lines = stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split() == ["tutorial", "quantity", "published", "ours"])
    dashes = lines[header + 1]
    spans = [match.span() for match in re.finditer(r"-+", dashes)]
    assert len(spans) == 4
    rows: list[list[str]] = []
    for line in lines[header + 2 :]:
        if not line.strip():
            break
        cells = [line[start : end + 2].strip() if index < 3 else line[start:].strip() for index, (start, end) in
                 enumerate(spans)]  # fmt: skip
        if cells[0]:
            rows.append(cells)
        else:  # a continuation line of the row above
            rows[-1] = [f"{old} {new}".strip() for old, new in zip(rows[-1], cells)]
    return rows


# --------------------------------------------------------------------------------------------------------------
# demo
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.slow
@needs_dot
def test_demo_trains_draws_and_checks_and_prints_its_published_accuracy(tmp_path):
    out_dir = tmp_path / "demo"
    result = run_program([entry_point(), "demo", "--out", str(out_dir)], timeout=300)
    assert result.returncode == 0, result.stderr
    # Not a terminal: one line per epoch, no progress bar's carriage returns.
    assert "\r" not in result.stdout and "\r" not in result.stderr
    assert [epoch for epoch, _, _ in epochs_printed(result.stdout)] == list(range(1, 11))
    final = re.search(r"^Test accuracy (\d\.\d{4}) after 10 epochs", result.stdout, re.MULTILINE)
    assert final is not None and final.group(1) == "0.9467"  # the number docs/command-line.md publishes
    assert epochs_printed(result.stdout)[-1][2] == float(final.group(1))
    assert "verdict: PASSED" in result.stdout
    assert "0.weight" in result.stdout and "2.weight" in result.stdout  # the gradient check's table
    assert_real_png(out_dir / "loss_curve.png")
    assert_real_png(out_dir / "test_accuracy.png")
    assert_real_svg(out_dir / "graph.svg", must_mention=("0.weight", "2.weight"))
    assert str(out_dir.resolve()) in result.stdout  # it names its output folder


def test_the_demos_progress_bar_labels_its_running_loss(monkeypatch, tmp_path):
    pytest.importorskip("tqdm")

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    monkeypatch.setattr(cli, "gradcheck_report", lambda *a, **k: type("Report", (), {"ok": True})())
    monkeypatch.setattr(cli, "_draw", lambda *a: "graph")
    assert cli.main(["demo", "--epochs", "1", "--hidden", "8", "--out", str(tmp_path)]) == 0
    out = terminal.getvalue()
    assert "running loss" in out and "\r" in out  # a live bar, and its loss says which loss it is
    assert re.search(r"^epoch 1/1: mean loss \d\.\d{4}", out, re.MULTILINE)


# --------------------------------------------------------------------------------------------------------------
# tutorials
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.usefixtures("fashion_mnist_present")
def test_tutorials_prints_one_table_of_published_numbers_beside_ours_within_100_columns(tmp_path):
    status, stdout, stderr = run_main(["tutorials", "--out", str(tmp_path), "--samples", "2000"])
    assert status == 0, stderr
    assert max(len(line) for line in stdout.splitlines()) <= 100
    assert "tutorial 001: 2000 images in " in stdout  # tutorial 001's progress (one line: not a terminal)
    rows = wrapped_table(stdout)
    table = {(tutorial, quantity): (published, ours) for tutorial, quantity, published, ours in rows}
    assert {tutorial for tutorial, _ in table} == {"000", "001", "002+003", "004"}
    expected = {
        ("004", "initial weights"): "[-0.16595599, 0.44064899, -0.99977125]",
        ("004", "weights after 5000 iterations"): "[8.95950703, -0.20975775, -4.27128529]",
        ("004", "output for [1, 0, 0]"): "0.99987151",
        ("002+003", "002: prediction for [1.66, 1.56]"): "0.7985731",
        ("002+003", "002: prediction for [2, 1.5]"): "0.87101915",
        ("002+003", "003: prediction for [1.66, 1.56], seed 42"): "0.7784302101100966",
        ("000", "weights_in_hidden shape"): "(4, 3)",
        ("000", "weights_hidden_out shape"): "(2, 4)",
    }
    for key, number in expected.items():
        assert table[key] == (number, number), key
    assert table[("004", "iterations to reach 0.999")][1] == "730"
    accuracy = table[("001", "Fashion-MNIST test accuracy, 2000 images x 1 epoch")][1]
    assert float(accuracy.split()[0]) > 0.6
    assert table[("004", "iterations-vs-output curve")][1] == "tutorial_004_iterations_vs_output.png"
    assert f"pictures in {tmp_path}" in stdout
    for name in ("tutorial_003_training_error.png", "tutorial_004_iterations_vs_output.png"):
        assert_real_png(tmp_path / name)


def test_the_table_wraps_long_cells_within_100_columns_without_cutting_words():
    rows = [("001", "a quantity with a rather long description " * 2, "published " * 6, "/some/long/path.png")]
    lines = cli._wrapped_table(("tutorial", "quantity", "published", "ours"), rows)
    assert max(len(line) for line in lines) <= 100
    assert wrapped_table("\n".join(lines)) == [[cell.strip() for cell in rows[0]]]


# --------------------------------------------------------------------------------------------------------------
# train
# --------------------------------------------------------------------------------------------------------------


def test_train_mlp_on_digits_prints_each_epoch_and_writes_its_files(trained_mlp):
    out_dir, stdout, stderr = trained_mlp
    epochs = epochs_printed(stdout)
    assert [epoch for epoch, _, _ in epochs] == [1, 2]
    assert epochs[1][1] < epochs[0][1]  # the loss went down
    assert epochs[1][2] > 0.7
    assert stderr == "" and "\r" not in stdout  # not a terminal: no progress bars, one line per epoch
    # The lines docs/command-line.md shows.
    assert re.search(r"^epoch 1/2: mean loss 1\.7912, test loss 1\.1080, test accuracy 0\.7933 \(", stdout, re.M)
    assert re.search(r"^epoch 2/2: mean loss 0\.7917, test loss 0\.6019, test accuracy 0\.8844 \(", stdout, re.M)
    config = json.loads((out_dir / "config.json").read_text())
    assert config["model"] == "mlp" and config["dataset"] == "digits" and config["status"] == "finished"
    assert config["hidden"] == [512, 256] and config["epochs"] == 2
    assert (config["features"], config["classes"]) == (64, 10)
    assert [round(a, 4) for a in config["test_accuracy"]] == [acc for _, _, acc in epochs]
    assert training.load_checkpoint(out_dir / "checkpoint.npz")["epoch"] == 2
    assert_real_png(out_dir / "loss_curve.png")
    assert_real_png(out_dir / "test_accuracy.png")


def test_train_saves_weights_numpy_and_tinygrad_nn_can_read(trained_mlp):
    out_dir, _, _ = trained_mlp
    expected_shapes = {
        "0.weight": (512, 64),
        "0.bias": (512,),
        "2.weight": (256, 512),
        "2.bias": (256,),
        "4.weight": (10, 256),
        "4.bias": (10,),
    }
    with np.load(out_dir / "model.npz", allow_pickle=False) as archive:
        assert {name: archive[name].shape for name in archive.files} == expected_shapes
        from_numpy = {name: archive[name] for name in archive.files}
    state = tg.load(out_dir / "model.npz")
    assert {name: array.shape for name, array in state.items()} == expected_shapes
    for name, array in state.items():
        assert array.dtype == np.float32
        np.testing.assert_array_equal(array, from_numpy[name])
    # They are the trained weights: the same network with them scores the accuracy train printed last.
    config = json.loads((out_dir / "config.json").read_text())
    model = models.build_model(config, seed=123)
    model.load_state_dict(state)
    _, (x_test, y_test) = data.load_digits()
    result = training.evaluate(model, data.DataLoader(x_test, y_test, batch_size=2000))
    assert result.accuracy == config["test_accuracy"][-1]


def test_train_the_tutorial_network_on_digits(tmp_path):
    argv = ["train", "--dataset", "digits", "--model", "tutorial", "--epochs", "1", "--hidden", "32"]
    status, stdout, stderr = run_main([*argv, "--out", str(tmp_path)])
    assert status == 0, stderr
    assert "Sigmoid()" in stdout and "bias=False" in stdout
    (epoch,) = epochs_printed(stdout)
    assert epoch[0] == 1 and epoch[2] > 0.3  # chance is 0.1
    state = tg.load(tmp_path / "model.npz")
    assert {name: array.shape for name, array in state.items()} == {"0.weight": (32, 64), "2.weight": (10, 32)}
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model"] == "tutorial" and config["hidden"] == [32]
    assert (config["optimizer"], config["lr"], config["batch_size"]) == ("sgd", 0.1, 1)
    assert_real_png(tmp_path / "loss_curve.png")


@pytest.mark.parametrize(
    ("argv", "optimizer", "lr"),
    [
        (["--optimizer", "sgd"], "sgd", 0.1),  # the default rate follows the optimizer, as --help says
        (["--optimizer", "rmsprop", "--momentum", "0.5"], "rmsprop", 0.01),
        (["--optimizer", "adagrad", "--schedule", "onecycle"], "adagrad", 0.01),
        (["--optimizer", "adamw", "--lr", "0.002"], "adamw", 0.002),
    ],
)
def test_train_with_each_optimizer(tmp_path, argv, optimizer, lr):
    status, stdout, stderr = run_main(["train", "--hidden", "16", "--epochs", "2", *argv, "--out", str(tmp_path)])
    assert status == 0, stderr
    config = json.loads((tmp_path / "config.json").read_text())
    assert (config["optimizer"], config["lr"]) == (optimizer, lr)
    assert epochs_printed(stdout)[-1][2] > 0.5


@pytest.mark.slow
@pytest.mark.usefixtures("fashion_mnist_present")
def test_tutorial_001_on_fashion_mnist_gives_its_published_accuracy(tmp_path):
    argv = ["train", "--dataset", "fashion-mnist", "--model", "tutorial", "--no-shuffle", "--out", str(tmp_path)]
    status, stdout, stderr = run_main(argv)
    assert status == 0, stderr
    assert "60000 training and 10000 test samples, 784 features, 10 classes" in stdout
    (epoch,) = epochs_printed(stdout)
    assert f"{epoch[2]:.4f}" == "0.8421"  # the number docs/command-line.md publishes


def test_train_mnist_from_an_empty_data_root_says_what_to_do(offline, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    status, stdout, stderr = run_main(
        ["train", "--dataset", "mnist", "--data-root", str(empty), "--out", str(tmp_path / "out")]
    )
    assert status == 2
    assert stderr.startswith("tinygrad-nn train: ")
    assert "Traceback" not in stderr
    assert "MNIST" in stderr and str(empty) in stderr
    assert "TINYGRAD_NN_DATA" in stderr
    assert "epoch" not in stdout
    assert not (tmp_path / "out" / "model.npz").exists()
    assert list(empty.iterdir()) == []  # no half-downloaded files left behind


def test_train_mnist_with_an_empty_data_folder_and_no_network_fails_fast(offline, monkeypatch, tmp_path):
    empty = tmp_path / "data"
    empty.mkdir()
    monkeypatch.setenv("TINYGRAD_NN_DATA", str(empty))
    status, _, stderr = run_main(["train", "--dataset", "mnist", "--out", str(tmp_path / "out")])
    assert status == 2
    assert "could not download" in stderr and "127.0.0.1" in stderr
    assert "TINYGRAD_NN_DATA" in stderr
    assert not any(offline.rglob("*.part"))


def test_missing_data_message_names_the_command_line_option(offline, tmp_path):
    status, _, stderr = run_main(["train", "--dataset", "mnist", "--data-root", str(tmp_path), "--out", str(tmp_path)])
    assert status == 2
    assert "--data-root" in stderr


def test_the_epoch_axis_has_whole_numbers(monkeypatch, tmp_path):
    import matplotlib.pyplot as plt

    ticks = {}
    real_close = plt.close

    def remember_ticks(figure):
        axes = figure.axes[0]
        ticks[axes.get_xlabel()] = [t for t in axes.get_xticks() if axes.get_xlim()[0] <= t <= axes.get_xlim()[1]]
        real_close(figure)

    monkeypatch.setattr(plt, "close", remember_ticks)
    history = training.History(epochs=[1, 2, 3], loss=[1.0, 0.5, 0.2], metrics={"test_accuracy": [0.5, 0.7, 0.8]},
                               epoch_time=[1.0] * 3, step_loss=list(np.linspace(1, 0, 30)))  # fmt: skip
    cli.save_curves(history, tmp_path, "test", steps_per_epoch=10)
    assert ticks["epoch"] and all(float(t).is_integer() for t in ticks["epoch"])
    assert all(float(t).is_integer() for t in ticks["step"])


# --------------------------------------------------------------------------------------------------------------
# train: a checkpoint every epoch, Ctrl-C, --resume
# --------------------------------------------------------------------------------------------------------------

TUTORIAL_ON_DIGITS = ["train", "--dataset", "digits", "--model", "tutorial", "--hidden", "16", "--epochs", "40"]


@pytest.mark.slow
def test_ctrl_c_keeps_the_last_checkpoint_and_resume_ends_where_an_uninterrupted_run_ends(tmp_path):
    uninterrupted, interrupted = tmp_path / "uninterrupted", tmp_path / "interrupted"
    status, _, stderr = run_main([*TUTORIAL_ON_DIGITS, "--out", str(uninterrupted)])
    assert status == 0, stderr

    process = subprocess.Popen(
        [sys.executable, "-m", "tinygrad_nn", *TUTORIAL_ON_DIGITS, "--out", str(interrupted)],
        cwd=REPOSITORY, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    checkpoint = interrupted / "checkpoint.npz"
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)  # Ctrl-C, a few epochs in
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, (stdout, stderr)
    saved_epoch = training.load_checkpoint(checkpoint)["epoch"]
    assert 1 <= saved_epoch < 40
    # Ctrl-C lands during the next epoch, or (rarely) just after the checkpoint, before that epoch began.
    when = re.escape(f"during epoch {saved_epoch + 1}") + "|" + re.escape(f"after epoch {saved_epoch}")
    expected = (
        f"tinygrad-nn train: interrupted ({when}); "
        + re.escape(
            f"the checkpoint of epoch {saved_epoch} is {checkpoint}; continue with: tinygrad-nn train --out "
            f"{interrupted} --resume"
        )
        + "\n"
    )
    assert re.fullmatch(expected, stderr), stderr
    assert not (interrupted / "model.npz").exists()
    assert [p.name for p in interrupted.iterdir() if p.name.startswith(".")] == []  # no temporary files

    status, stdout, stderr = run_main(["train", "--out", str(interrupted), "--resume"])  # the settings come along
    assert status == 0, stderr
    assert f"resumed from {checkpoint}: {saved_epoch} of 40 epochs done" in stdout
    assert epochs_printed(stdout)[0][0] == saved_epoch + 1
    expected, resumed = tg.load(uninterrupted / "model.npz"), tg.load(interrupted / "model.npz")
    assert expected.keys() == resumed.keys()
    for name in expected:
        assert np.array_equal(expected[name], resumed[name]), name  # bit for bit
    first, second = (json.loads((folder / "config.json").read_text()) for folder in (uninterrupted, interrupted))
    assert first["test_accuracy"] == second["test_accuracy"]


def test_ctrl_c_before_the_first_checkpoint_says_there_is_none(monkeypatch, tmp_path):
    def interrupted_fit(*args, **kwargs):
        raise training.TrainingInterrupted(
            "interrupted during epoch 1; no checkpoint was written (no epoch had finished)", training.History(), None, 0
        )

    monkeypatch.setattr(training, "fit", interrupted_fit)
    status, _, stderr = run_main(["train", "--hidden", "8", "--out", str(tmp_path)])
    assert status == 130
    assert one_line_error(stderr, "train").endswith("no checkpoint was written (no epoch had finished)\n")


def test_resume_continues_with_the_saved_settings_and_refuses_others(tmp_path):
    status, _, stderr = run_main(["train", "--hidden", "16", "--epochs", "2", "--seed", "3", "--out", str(tmp_path)])
    assert status == 0, stderr
    status, stdout, stderr = run_main(["train", "--out", str(tmp_path), "--resume", "--hidden", "16"])
    assert status == 0, stderr
    assert "2 of 2 epochs done" in stdout and epochs_printed(stdout) == []
    status, stdout, stderr = run_main(["train", "--out", str(tmp_path), "--resume", "--hidden", "32"])
    assert status == 2 and stdout == ""
    assert "which used --hidden [16]; leave --hidden out" in one_line_error(stderr, "train")
    status, _, stderr = run_main(["train", "--out", str(tmp_path), "--resume", "--no-shuffle"])
    assert status == 2 and "which used --no-shuffle off" in stderr


def test_resume_without_an_earlier_run_says_so(tmp_path):
    status, _, stderr = run_main(["train", "--out", str(tmp_path), "--resume"])
    assert status == 2
    assert "there is no checkpoint in" in one_line_error(stderr, "train")
    training.save_checkpoint(tmp_path / "checkpoint.npz", {"epoch": 1})  # a checkpoint, but not of a train run
    status, _, stderr = run_main(["train", "--out", str(tmp_path), "--resume"])
    assert status == 2 and "holds no settings of a train run" in one_line_error(stderr, "train")


def test_resume_takes_the_settings_from_the_checkpoint_not_from_config_json(tmp_path):
    run_main(["train", "--hidden", "8", "--epochs", "2", "--out", str(tmp_path)])
    (tmp_path / "config.json").write_text("damaged, or from another run")
    status, _, stderr = run_main(["train", "--out", str(tmp_path), "--resume"])
    assert status == 0, stderr
    assert json.loads((tmp_path / "config.json").read_text())["hidden"] == [8]  # written again, whole


@pytest.mark.parametrize(
    "change",
    [{"lr": "fast"}, {"epochs": -3}, {"hidden": [10**9]}, {"dataset": "../../etc"}, {"optimizer": "os.system"},
     {"shuffle": "yes"}, {"seed": 1.5}, {"momentum": float("nan")}, {"dataset": ["digits"]}, {"optimizer": {}},
     {"schedule": None}, {"model": ["mlp"]}],
)  # fmt: skip
def test_resume_checks_the_settings_in_a_tampered_checkpoint(tmp_path, change):
    run_main(["train", "--hidden", "8", "--epochs", "1", "--out", str(tmp_path)])
    content = training.load_checkpoint(tmp_path / "checkpoint.npz")
    training.save_checkpoint(tmp_path / "checkpoint.npz", {**content, "metadata": {**content["metadata"], **change}})
    status, stdout, stderr = run_main(["train", "--out", str(tmp_path), "--resume"])
    assert status == 2 and stdout == ""
    assert str(tmp_path / "checkpoint.npz") in one_line_error(stderr, "train")


def test_ctrl_c_in_the_first_epoch_of_a_new_run_says_the_earlier_checkpoint_is_still_there(monkeypatch, tmp_path):
    run_main(["train", "--hidden", "8", "--epochs", "1", "--out", str(tmp_path)])

    def interrupted_fit(*args, **kwargs):
        raise training.TrainingInterrupted(
            "interrupted during epoch 1; no checkpoint was written (no epoch had finished)", training.History(), None, 0
        )

    monkeypatch.setattr(training, "fit", interrupted_fit)
    status, _, stderr = run_main(["train", "--hidden", "16", "--out", str(tmp_path)])
    assert status == 130
    assert one_line_error(stderr, "train").endswith("still holds the earlier run, which --resume would continue\n")


def test_resume_from_a_damaged_checkpoint_is_a_one_line_error(tmp_path):
    run_main(["train", "--hidden", "8", "--epochs", "1", "--out", str(tmp_path)])
    (tmp_path / "checkpoint.npz").write_bytes(b"PK\x03\x04 not really a zip")
    status, _, stderr = run_main(["train", "--out", str(tmp_path), "--resume"])
    assert status == 2 and "checkpoint.npz" in one_line_error(stderr, "train")


# --------------------------------------------------------------------------------------------------------------
# Output that cannot be written: refused before any work
# --------------------------------------------------------------------------------------------------------------


def unwritable_places(tmp_path: Path) -> list[Path]:
    """Folders no file can be written into, even by root: inside a regular file, and /proc."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    return [blocker / "inside", Path("/proc"), Path("/proc/tinygrad-nn-test")]


@pytest.mark.parametrize("command", ["demo", "tutorials", "train"])
def test_an_output_folder_that_cannot_be_written_is_refused_before_any_work(command, tmp_path):
    for folder in unwritable_places(tmp_path):
        start = time.perf_counter()
        status, stdout, stderr = run_main([command, "--out", str(folder)])
        assert status == 2 and stdout == "", (folder, stdout)
        message = one_line_error(stderr, command)
        assert f"--out {folder}" in message and ("cannot create" in message or "cannot write" in message)
        assert time.perf_counter() - start < 5  # refused at once: nothing was trained first


def test_a_read_only_output_folder_is_refused(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders; the /proc cases above cover this as root")
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        status, stdout, stderr = run_main(["train", "--out", str(folder)])
    finally:
        folder.chmod(0o700)
    assert status == 2 and stdout == "" and "cannot write into the folder" in one_line_error(stderr, "train")


def test_graph_output_that_cannot_be_written_is_refused_before_drawing(tmp_path):
    places = [folder / "graph.svg" for folder in unwritable_places(tmp_path)]
    places.append(tmp_path)  # a folder, not a file
    for out in places:
        status, stdout, stderr = run_main(["graph", "--out", str(out)])
        assert status == 2 and stdout == "", out
        assert str(out.parent if out != tmp_path else out) in one_line_error(stderr, "graph")


def test_graph_accepts_an_html_output(tmp_path, monkeypatch):
    from tinygrad_nn import viz

    written = []
    monkeypatch.setattr(viz, "save_graph", lambda loss, out, **options: written.append(out) or out)
    status, _, stderr = run_main(["graph", "--out", str(tmp_path / "graph.html")])
    assert status == 0, stderr
    assert written == [tmp_path / "graph.html"]


# --------------------------------------------------------------------------------------------------------------
# Bad arguments: one line, status 2, never a traceback
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["train", "--hidden", "abc"], "--hidden"),
        (["train", "--hidden", "64,0"], "--hidden"),
        (["train", "--hidden", "8,,8"], "--hidden"),  # a size missing, not silently dropped
        (["train", "--hidden", ",8"], "--hidden"),
        (["train", "--hidden", "8,"], "--hidden"),
        (["train", "--hidden", ""], "--hidden"),
        (["train", "--hidden", "10000000"], "--hidden"),
        (["train", "--hidden", "99999999999999999999999"], "--hidden"),
        (["train", "--hidden", ",".join(["8"] * 101)], "--hidden"),
        (["train", "--hidden", "900000,900000"], "--hidden"),  # each size allowed, the model too large
        (["train", "--epochs", "0"], "--epochs"),
        (["train", "--epochs", "two"], "--epochs"),
        (["train", "--epochs", "10000000000"], "--epochs"),
        (["train", "--lr", "-1"], "--lr"),
        (["train", "--lr", "inf"], "--lr"),
        (["train", "--batch-size", "0"], "--batch-size"),
        (["train", "--momentum", "-0.5"], "--momentum"),
        (["train", "--momentum", "0.9"], "--momentum"),  # with adam, the mlp's default
        (["train", "--seed", "-1"], "--seed"),
        (["train", "--seed", "1.5"], "--seed"),
        (["train", "--threads", "-1"], "--threads"),
        (["train", "--threads", "1.5"], "--threads"),
        (["train", "--threads", "5000"], "--threads"),
        (["train", "--dataset", "cifar10"], "--dataset"),
        (["train", "--model", "rnn"], "--model"),
        (["train", "--model", "cnn", "--hidden", "900000,900000"], "--hidden"),  # a CNN too large, refused at once
        (["train", "--model", "tutorial", "--hidden", "64,32"], "--hidden"),
        (["demo", "--hidden", "0"], "--hidden"),
        (["demo", "--seed", "-5"], "--seed"),
        (["demo", "--epochs", "1e9"], "--epochs"),
        (["tutorials", "--samples", "-5"], "--samples"),
        (["tutorials", "--samples", "70000"], "--samples"),  # Fashion-MNIST has 60,000 training images
        (["graph", "--out", "picture.txt"], "--out"),
        (["graph", "--max-depth", "-1"], "--max-depth"),
        (["graph", "--hidden", "-1"], "--hidden"),
        (["train", "--out", "a\x00b"], "--out"),
        (["train", "--data-root", ""], "--data-root"),
        (["demo", "--out", ""], "--out"),
        (["graph", "--weights", "model\x00.npz"], "--weights"),
        (["graph", "--model", ""], "--weights/--model"),
        (["fit"], "fit"),
        ([], "COMMAND"),
        (["train", "--unknown"], "--unknown"),
    ],
)
def test_bad_arguments_exit_2_with_one_line_naming_the_argument(argv, named, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    status, stdout, stderr = run_main(argv)
    assert status == 2
    assert stdout == ""
    assert named in stderr
    assert stderr.count("\n") == 1 and "Traceback" not in stderr and "usage:" not in stderr
    assert list(tmp_path.iterdir()) == []  # nothing was trained or written


def test_bad_arguments_exit_2_from_python_m_and_the_script(tmp_path):
    result = run_program([sys.executable, "-m", "tinygrad_nn", "train", "--epochs", "0"], timeout=60)
    assert result.returncode == 2
    assert "--epochs" in result.stderr and "positive" in result.stderr
    result = run_program([entry_point(), "graph", "--out", str(tmp_path / "x.txt")], timeout=60)
    assert result.returncode == 2
    assert result.stderr.startswith("tinygrad-nn graph: --out")
    assert ".svg" in result.stderr and "Traceback" not in result.stderr


def test_version_prints_the_version():
    result = run_program([entry_point(), "--version"], timeout=60)
    assert result.returncode == 0
    assert result.stdout == f"tinygrad-nn {tg.__version__}\n"


def test_an_unexpected_error_is_one_line_and_says_how_to_see_the_traceback(monkeypatch, tmp_path):
    def broken(args):
        raise RuntimeError("something internal")

    monkeypatch.setattr(cli, "command_tutorials", broken)  # build_parser, called by main, picks it up
    monkeypatch.delenv("TINYGRAD_NN_DEBUG", raising=False)
    status, _, stderr = run_main(["tutorials", "--out", str(tmp_path)])
    assert status == 1
    assert stderr == (
        "tinygrad-nn tutorials: unexpected RuntimeError: something internal (a bug; set TINYGRAD_NN_DEBUG=1 for the "
        "traceback)\n"
    )


def test_a_full_disk_is_one_line(monkeypatch, tmp_path):
    def full(*args, **kwargs):
        raise OSError(28, "No space left on device", str(tmp_path / "model.npz"))

    monkeypatch.setattr(cli, "save", full)
    status, _, stderr = run_main(["train", "--hidden", "8", "--epochs", "1", "--out", str(tmp_path)])
    assert status == 1
    assert one_line_error(stderr, "train") == f"tinygrad-nn train: No space left on device ({tmp_path / 'model.npz'})\n"


def test_out_that_is_a_file_gets_a_message(tmp_path):
    not_a_folder = tmp_path / "results"
    not_a_folder.write_text("")
    status, _, stderr = run_main(["train", "--hidden", "16", "--epochs", "1", "--out", str(not_a_folder)])
    assert status == 2
    assert f"--out {not_a_folder} is a file" in one_line_error(stderr, "train")


# --------------------------------------------------------------------------------------------------------------
# graph
# --------------------------------------------------------------------------------------------------------------


@needs_dot
def test_graph_draws_the_demo_model_to_svg(tmp_path):
    out = tmp_path / "pictures" / "g.svg"
    status, stdout, stderr = run_main(["graph", "--out", str(out)])
    assert status == 0, stderr
    assert stdout.startswith(f"wrote {out}")
    assert "the first digits test sample" in stdout
    assert_real_svg(out, must_mention=("0.weight", "2.weight"))


@needs_dot
def test_graph_draws_a_trained_model_to_png(trained_mlp, tmp_path):
    out_dir, _, _ = trained_mlp
    out = tmp_path / "g.png"
    result = run_program(
        [sys.executable, "-m", "tinygrad_nn", "graph", "--weights", str(out_dir / "model.npz"), "--out", str(out)],
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "(mlp, 10 classes, 64 inputs;" in result.stdout
    assert_real_png(out)


@needs_dot
def test_graph_of_a_trained_model_shows_its_parameters(trained_mlp, tmp_path):
    out_dir, _, _ = trained_mlp
    out = tmp_path / "g.svg"
    status, _, stderr = run_main(["graph", "--weights", str(out_dir / "model.npz"), "--out", str(out)])
    assert status == 0, stderr
    assert_real_svg(out, must_mention=("0.weight", "4.bias"))


def test_graph_draws_a_real_sample_in_the_models_dtype(trained_mlp, tmp_path, monkeypatch):
    from tinygrad_nn import viz

    drawn = []
    monkeypatch.setattr(viz, "save_graph", lambda loss, out, **options: drawn.append(loss) or out)
    out_dir, _, _ = trained_mlp
    status, stdout, stderr = run_main(
        ["graph", "--weights", str(out_dir / "model.npz"), "--out", str(tmp_path / "g.dot")]
    )
    assert status == 0, stderr
    (loss,) = drawn
    assert loss.dtype == np.float32  # a float64 sample would have made the float32 model's loss float64
    config = json.loads((out_dir / "config.json").read_text())
    model = models.build_model(config)
    model.load_state_dict(tg.load(out_dir / "model.npz"))
    _, (x_test, y_test) = data.load_digits()
    expected = models.RECIPES["mlp"].loss(model(tg.Tensor(x_test[:1])), y_test[:1])
    assert loss.item() == expected.item()  # the first test image, not random noise
    assert f"class {y_test[0]})" in stdout


def test_graph_without_config_json_beside_the_weights_is_a_clear_error(trained_mlp, tmp_path):
    out_dir, _, _ = trained_mlp
    lonely = tmp_path / "model.npz"
    shutil.copy(out_dir / "model.npz", lonely)
    status, stdout, stderr = run_main(["graph", "--weights", str(lonely), "--out", str(tmp_path / "g.svg")])
    assert status == 2
    assert stdout == ""
    assert str(tmp_path / "config.json") in one_line_error(stderr, "graph") and "train" in stderr
    assert not (tmp_path / "g.svg").exists()


def test_graph_with_weights_that_do_not_fit_the_config_is_a_clear_error(trained_mlp, tmp_path):
    out_dir, _, _ = trained_mlp
    shutil.copy(out_dir / "model.npz", tmp_path / "model.npz")
    config = json.loads((out_dir / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "hidden": [32]}))
    status, _, stderr = run_main(["graph", "--weights", str(tmp_path / "model.npz"), "--out", str(tmp_path / "g.svg")])
    assert status == 2
    assert "0.weight" in one_line_error(stderr, "graph") and "(512, 64)" in stderr


HOSTILE_CONFIGS = {
    "not json": b"{model: mlp",
    "not utf-8": b"\xff\xfe\x00garbage",
    "a list": b"[1, 2, 3]",
    "empty": b"",
    "deeply nested": b"[" * 100_000 + b"]" * 100_000,
    "no hidden": json.dumps({"model": "mlp", "features": 64, "classes": 10, "dtype": "float32"}).encode(),
    "hidden text": json.dumps({"model": "mlp", "features": 64, "hidden": "512", "classes": 10, "dtype": "float32",
                               "dataset": "digits"}).encode(),
    "huge hidden": json.dumps({"model": "mlp", "features": 64, "hidden": [10**12], "classes": 10, "dtype": "float32",
                               "dataset": "digits"}).encode(),
    "huge number": b'{"model": "mlp", "features": 1' + b"0" * 5000 + b', "hidden": [8], "classes": 10}',
    "float features": json.dumps({"model": "mlp", "features": 64.5, "hidden": [8], "classes": 10, "dtype": "float32",
                                  "dataset": "digits"}).encode(),
    "unknown model": json.dumps({"model": "__import__('os')", "features": 64, "hidden": [8], "classes": 10,
                                 "dtype": "float32", "dataset": "digits"}).encode(),
    "object dtype": json.dumps({"model": "mlp", "features": 64, "hidden": [8], "classes": 10, "dtype": "object",
                                "dataset": "digits"}).encode(),
    "dataset a list": json.dumps({"model": "mlp", "features": 64, "hidden": [8], "classes": 10, "dtype": "float32",
                                  "dataset": ["digits"]}).encode(),
    "unknown dataset": json.dumps({"model": "mlp", "features": 64, "hidden": [8], "classes": 10, "dtype": "float32",
                                   "dataset": "/etc/passwd"}).encode(),
    "wrong features": json.dumps({"model": "mlp", "features": 784, "hidden": [512, 256], "classes": 10,
                                  "dtype": "float32", "dataset": "digits"}).encode(),
}  # fmt: skip


@pytest.mark.parametrize("name", HOSTILE_CONFIGS)
def test_graph_with_a_malformed_incomplete_or_hostile_config_json_is_one_line(trained_mlp, tmp_path, name):
    out_dir, _, _ = trained_mlp
    shutil.copy(out_dir / "model.npz", tmp_path / "model.npz")
    (tmp_path / "config.json").write_bytes(HOSTILE_CONFIGS[name])
    status, stdout, stderr = run_main(
        ["graph", "--weights", str(tmp_path / "model.npz"), "--out", str(tmp_path / "g.svg")]
    )
    assert status == 2 and stdout == ""
    one_line_error(stderr, "graph")
    assert not (tmp_path / "g.svg").exists()


def test_graph_with_missing_weights_names_the_weights_file(tmp_path):
    status, _, stderr = run_main(
        ["graph", "--weights", str(tmp_path / "nothing.npz"), "--out", str(tmp_path / "g.svg")]
    )
    assert status == 2
    assert re.search(r"nothing\.npz.*(does not exist|no such file|not found|missing)", stderr, re.IGNORECASE)


def test_graph_with_damaged_weights_is_one_line(trained_mlp, tmp_path):
    out_dir, _, _ = trained_mlp
    shutil.copy(out_dir / "config.json", tmp_path / "config.json")
    (tmp_path / "model.npz").write_bytes(b"not a zip")
    status, _, stderr = run_main(["graph", "--weights", str(tmp_path / "model.npz"), "--out", str(tmp_path / "g.svg")])
    assert status == 2 and "model.npz" in one_line_error(stderr, "graph")


# --------------------------------------------------------------------------------------------------------------
# export, and graph as the explorer
# --------------------------------------------------------------------------------------------------------------


def test_export_safetensors_holds_the_state_dict_and_the_settings(trained_mlp, tmp_path):
    pytest.importorskip("safetensors", reason="safetensors is in the interop extra: pip install -e '.[interop]'")
    out_dir, _, _ = trained_mlp
    status, stdout, stderr = run_main(["export", "--weights", str(out_dir), "--out", str(tmp_path / "m.safetensors")])
    assert status == 0, stderr
    assert "wrote" in stdout
    loaded = tg.load(tmp_path / "m.safetensors")
    original = tg.load(out_dir / "model.npz")
    assert sorted(loaded) == sorted(original)  # safetensors keeps its keys sorted
    for name in original:
        np.testing.assert_array_equal(loaded[name], original[name])
    metadata = tg.load_metadata(tmp_path / "m.safetensors")
    assert json.loads(metadata["config"])["model"] == "mlp"
    assert metadata["producer"] == f"tinygrad_nn {tg.__version__}"


def test_export_onnx_runs_in_onnx_runtime_with_the_models_scores(trained_mlp, tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime", reason="onnxruntime is in the interop extra")
    out_dir, _, _ = trained_mlp
    status, _stdout, stderr = run_main(
        ["export", "--weights", str(out_dir / "model.npz"), "--format", "onnx", "--out", str(tmp_path / "m.onnx")]
    )
    assert status == 0, stderr
    config = json.loads((out_dir / "config.json").read_text())
    model = models.build_model(models.check_config(config))
    model.load_state_dict(tg.load(out_dir / "model.npz"))
    (_, _), (x_test, _) = data.load_digits()
    session = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    for batch in (1, 7, 64):
        sample = x_test[:batch].astype(np.float32)
        (scores,) = session.run(None, {"input": sample})
        with tg.no_grad():
            np.testing.assert_allclose(scores, model(tg.Tensor(sample)).data, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--out", "m.txt"], "give --format onnx or safetensors"),
        (["--format", "onnx", "--out", "m.safetensors"], r"\.onnx"),
        (["--weights", "nowhere", "--out", "m.onnx"], "no such file or folder"),
    ],
)
def test_export_mistakes_are_one_line_exit_2(trained_mlp, tmp_path, argv, message):
    out_dir, _, _ = trained_mlp
    arguments = ["export", *(["--weights", str(out_dir)] if "--weights" not in argv else []), *argv]
    arguments = [str(tmp_path / a) if a.startswith("m.") else a for a in arguments]
    status, _stdout, stderr = run_main(arguments)
    assert status == 2
    assert re.search(message, stderr), stderr
    assert len(stderr.strip().splitlines()) == 1 and "Traceback" not in stderr


def test_export_without_config_json_says_so(trained_mlp, tmp_path):
    out_dir, _, _ = trained_mlp
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(out_dir / "model.npz", alone / "model.npz")
    status, _, stderr = run_main(["export", "--weights", str(alone), "--out", str(tmp_path / "m.onnx")])
    assert status == 2 and "config.json is missing" in stderr


@pytest.mark.parametrize("command", ["graph", "export"])
def test_a_config_json_that_is_a_folder_is_named_as_such(trained_mlp, tmp_path, command):
    out_dir, _, _ = trained_mlp
    odd = tmp_path / "odd"
    odd.mkdir()
    shutil.copy(out_dir / "model.npz", odd / "model.npz")
    (odd / "config.json").mkdir()
    out = tmp_path / ("m.onnx" if command == "export" else "m.svg")
    status, _, stderr = run_main([command, "--weights", str(odd), "--out", str(out)])
    assert status == 2 and "config.json is a folder" in stderr, stderr
    assert len(stderr.strip().splitlines()) == 1 and "Traceback" not in stderr


def test_graph_writes_the_interactive_explorer_for_html(trained_mlp, tmp_path):
    out_dir, _, _ = trained_mlp
    out = tmp_path / "graph.html"
    status, _stdout, stderr = run_main(["graph", "--weights", str(out_dir / "model.npz"), "--out", str(out)])
    assert status == 0, stderr
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>") or page.lstrip().lower().startswith("<!doctype html>")
    assert "http://" not in page and "https://" not in page
    assert "0.weight" in page


# --------------------------------------------------------------------------------------------------------------
# train --model cnn, and the commands that read what it wrote
# --------------------------------------------------------------------------------------------------------------

CNN_ON_DIGITS = ["train", "--dataset", "digits", "--model", "cnn", "--epochs", "2"]


@pytest.fixture(scope="module")
def trained_cnn(tmp_path_factory) -> tuple[Path, str, str]:
    """`train --dataset digits --model cnn --epochs 2` (the 8x8 digits as 1 x 8 x 8 images), once."""
    out_dir = tmp_path_factory.mktemp("train_cnn")
    status, stdout, stderr = run_main([*CNN_ON_DIGITS, "--out", str(out_dir)])
    assert status == 0, stderr
    return out_dir, stdout, stderr


def test_train_cnn_on_digits_learns_with_the_recipes_defaults(trained_cnn):
    out_dir, stdout, stderr = trained_cnn
    assert stderr == ""
    assert "digits: 1347 training and 450 test samples, 64 features (1 x 8 x 8 images), 10 classes" in stdout
    assert "Unflatten(dim=1, unflattened_size=(1, 8, 8))" in stdout and "Dropout(p=0.25" in stdout
    assert "adam, cosine-annealed lr=0.001, batch size 64, 2 epochs, float32" in stdout
    epochs = epochs_printed(stdout)
    assert [epoch for epoch, _, _ in epochs] == [1, 2]
    assert epochs[1][1] < epochs[0][1] and epochs[1][2] > 0.85  # chance is 0.1
    config = json.loads((out_dir / "config.json").read_text())
    assert (config["model"], config["features"], config["input_shape"], config["hidden"]) == ("cnn", 64, [1, 8, 8],
                                                                                             [128])  # fmt: skip
    assert (config["optimizer"], config["lr"], config["schedule"], config["batch_size"]) == ("adam", 0.001, "cosine",
                                                                                             64)  # fmt: skip
    assert config["dtype"] == "float32" and config["status"] == "finished"
    state = tg.load(out_dir / "model.npz")
    assert state["1.weight"].shape == (32, 1, 3, 3) and state["10.weight"].shape == (128, 64 * 2 * 2)
    assert state["2.running_var"].dtype == np.float32 and state["2.num_batches_tracked"] == 2 * 22  # 22 batches
    # build_model rebuilds it from config.json: with the saved weights it scores what train printed last.
    model = models.build_model(config, seed=99)
    model.load_state_dict(state)
    _, (x_test, y_test) = data.load_digits()
    assert (
        training.evaluate(model, data.DataLoader(x_test, y_test, batch_size=100)).accuracy
        == (config["test_accuracy"][-1])
    )


def test_train_cnn_repeats_itself_dropout_included(trained_cnn, tmp_path):
    """The same seed gives the same run: train seeds the generator that dropout draws its masks from."""
    out_dir, stdout, _ = trained_cnn
    tg.manual_seed(12345)  # whatever the generator did before, the run is the same
    status, again, stderr = run_main([*CNN_ON_DIGITS, "--out", str(tmp_path)])
    assert status == 0, stderr
    assert epochs_printed(again) == epochs_printed(stdout)
    first, second = tg.load(out_dir / "model.npz"), tg.load(tmp_path / "model.npz")
    assert all(np.array_equal(first[name], second[name]) for name in first)


def fake_fit(monkeypatch) -> dict:
    """Replace training.fit by one that records what train gave it and stops as Ctrl-C would, before any work."""
    seen: dict = {}

    def record(model, loss_fn, optimizer, train_loader, **options):
        seen.update(model=model, loss_fn=loss_fn, optimizer=optimizer, train_loader=train_loader, **options)
        raise training.TrainingInterrupted("interrupted during epoch 1", training.History(), None, 0)

    monkeypatch.setattr(training, "fit", record)
    return seen


@pytest.mark.usefixtures("fashion_mnist_present")
def test_train_cnn_on_fashion_mnist_takes_the_recipe_behind_the_published_accuracy(monkeypatch, tmp_path):
    """What `tinygrad-nn train --dataset fashion-mnist --model cnn` trains, without training it (minutes)."""
    seen = fake_fit(monkeypatch)
    status, stdout, stderr = run_main(["train", "--dataset", "fashion-mnist", "--model", "cnn", "--out", str(tmp_path)])
    assert status == 130, stderr
    assert "60000 training and 10000 test samples, 784 features (1 x 28 x 28 images), 10 classes" in stdout
    assert "adam, cosine-annealed lr=0.001, batch size 64, 8 epochs, float32" in stdout
    recipe = models.RECIPES["cnn"].training
    assert seen["epochs"] == recipe["epochs"] == 8
    assert isinstance(seen["optimizer"], tg.optim.Adam) and seen["optimizer"].param_groups[0]["lr"] == recipe["lr"]
    assert isinstance(seen["scheduler"], tg.optim.lr_scheduler.CosineAnnealingLR)
    assert seen["scheduler"].T_max == 8
    assert seen["train_loader"].batch_size == 64 and seen["loss_fn"] is tg.nn.functional.cross_entropy
    # The 10,000 test images are measured 500 at a time (about 120 MiB of activations, not 400 MiB at 2,000).
    assert seen["val_loader"].batch_size == models.RECIPES["cnn"].eval_batch_size == 500
    # The model is the published one, weight for weight (docs/cnn.md's results were computed from it).
    published = models.cnn(dtype=np.float32, seed=0).state_dict()
    for name, value in seen["model"].state_dict().items():
        assert value.dtype == published[name].dtype and np.array_equal(value, published[name]), name


def test_train_cnn_hidden_sizes_are_its_fully_connected_layers(monkeypatch, tmp_path):
    seen = fake_fit(monkeypatch)
    status, _, stderr = run_main(["train", "--model", "cnn", "--hidden", "32,16", "--dtype", "float64",
                                  "--out", str(tmp_path)])  # fmt: skip
    assert status == 130, stderr
    linears = [m for m in seen["model"] if isinstance(m, tg.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(256, 32), (32, 16), (16, 10)]
    assert {p.dtype for p in seen["model"].parameters()} == {np.dtype(np.float64)}
    assert json.loads((tmp_path / "config.json").read_text())["hidden"] == [32, 16]


def write_idx_images(folder: Path, height: int, width: int, test_size: tuple[int, int] | None = None) -> None:
    """An MNIST-like data set of random images of height x width, in IDX files written by hand (uncompressed)."""
    import struct

    rng = np.random.default_rng(0)
    folder.mkdir()
    for prefix, count, (rows, columns) in (("train", 40, (height, width)), ("t10k", 10, test_size or (height, width))):
        images = rng.integers(0, 256, (count, rows, columns), dtype=np.uint8)
        labels = rng.integers(0, 10, count, dtype=np.uint8)
        header = bytes([0, 0, 8, 3]) + struct.pack(">III", count, rows, columns)
        (folder / f"{prefix}-images-idx3-ubyte").write_bytes(header + images.tobytes())
        (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(bytes([0, 0, 8, 1]) + struct.pack(">I", count)
                                                              + labels.tobytes())  # fmt: skip


@pytest.mark.parametrize(
    ("height", "width", "features"),
    [(20, 30, 600), (32, 8, 256)],  # 256 values are 16 x 16 too: the files' header says which
)
def test_train_cnn_takes_images_that_are_not_square_at_the_size_their_files_say(tmp_path, height, width, features):
    folder = tmp_path / "wide"
    write_idx_images(folder, height, width)
    argv = ["train", "--dataset", "mnist", "--data-root", str(folder), "--epochs", "1", "--model", "cnn"]
    status, stdout, stderr = run_main([*argv, "--out", str(tmp_path / "cnn")])
    assert status == 0, stderr
    assert f"40 training and 10 test samples, {features} features (1 x {height} x {width} images)" in stdout
    assert f"Unflatten(dim=1, unflattened_size=(1, {height}, {width}))" in stdout
    config = json.loads((tmp_path / "cnn" / "config.json").read_text())
    assert config["input_shape"] == [1, height, width] and config["features"] == features
    state = tg.load(tmp_path / "cnn" / "model.npz")
    assert state["10.weight"].shape == (128, 64 * (height // 4) * (width // 4))
    # The run's folder rebuilds it, for graph and --resume alike.
    status, _, stderr = run_main(["graph", "--model", str(tmp_path / "cnn"), "--data-root", str(folder),
                                  "--out", str(tmp_path / "g.dot")])  # fmt: skip
    assert status == 0, stderr


@pytest.mark.parametrize(
    ("height", "width", "test_size", "message"),
    [
        (3, 3, None, "mnist's data: 'input_shape' is [1, 3, 3], but the CNN pools its images twice by 2, so they must "
                     "be at least 4 x 4 pixels"),
        (2, 50, None, "mnist's data: 'input_shape' is [1, 2, 50], but the CNN pools its images twice by 2, so they "
                     "must be at least 4 x 4 pixels"),  # 100 values, not 10 x 10
        (28, 28, (14, 56), "--model cnn: mnist's training images are 28 x 28 pixels but its test images 14 x 56; "
                           "the CNN is built for one size"),
    ],
)  # fmt: skip
def test_train_cnn_refuses_images_it_cannot_take_naming_their_size(tmp_path, height, width, test_size, message):
    folder = tmp_path / "odd"
    write_idx_images(folder, height, width, test_size)
    argv = ["train", "--dataset", "mnist", "--data-root", str(folder), "--epochs", "1", "--out", str(tmp_path / "o")]
    status, stdout, stderr = run_main([*argv, "--model", "cnn"])
    assert status == 2
    assert one_line_error(stderr, "train") == f"tinygrad-nn train: {message}\n"
    assert "epoch" not in stdout and not (tmp_path / "o" / "model.npz").exists()
    status, stdout, stderr = run_main([*argv, "--model", "mlp", "--hidden", "8"])  # flat samples: any size
    assert status == 0, stderr


def test_train_refuses_test_samples_of_another_size_than_the_training_samples(tmp_path):
    folder = tmp_path / "odd"
    write_idx_images(folder, 28, 28, (20, 20))
    status, stdout, stderr = run_main(["train", "--dataset", "mnist", "--data-root", str(folder), "--model", "mlp",
                                       "--out", str(tmp_path / "o")])  # fmt: skip
    assert status == 2 and "epoch" not in stdout
    assert one_line_error(stderr, "train") == (
        "tinygrad-nn train: mnist's training samples have 784 values but its test samples 400: the model takes one "
        "size\n"
    )


def test_train_cnn_on_square_images_of_another_size(tmp_path):
    """Files in --data-root may hold images of another size than the data set's 28 x 28: the CNN follows them."""
    folder = tmp_path / "small"
    write_idx_images(folder, 12, 12)
    status, stdout, stderr = run_main(["train", "--dataset", "mnist", "--data-root", str(folder), "--model", "cnn",
                                       "--epochs", "1", "--out", str(tmp_path / "out")])  # fmt: skip
    assert status == 0, stderr
    assert "144 features (1 x 12 x 12 images)" in stdout
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["input_shape"] == [1, 12, 12] and config["features"] == 144


class InterruptAtStep:
    """A callback raising KeyboardInterrupt after a given optimizer step, as Ctrl-C would."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, state: training.FitState) -> None:
        if state.step == self.step:
            raise KeyboardInterrupt


def test_a_cnn_run_interrupted_and_resumed_ends_bit_for_bit_where_the_uninterrupted_one_ends(
    trained_cnn, monkeypatch, tmp_path
):
    """Dropout draws from the framework's generator: the checkpoint keeps its state, and --resume puts it back."""
    out_dir, stdout, _ = trained_cnn
    real_fit = training.fit

    def interrupted_fit(*args, **options):
        return real_fit(*args, **{**options, "callbacks": [*options["callbacks"], InterruptAtStep(30)]})

    monkeypatch.setattr(training, "fit", interrupted_fit)  # 22 steps an epoch: stopped in the middle of the second
    status, _, stderr = run_main([*CNN_ON_DIGITS, "--out", str(tmp_path)])
    assert status == 130
    assert "interrupted during epoch 2; the checkpoint of epoch 1 is" in one_line_error(stderr, "train")
    monkeypatch.setattr(training, "fit", real_fit)
    tg.manual_seed(999)  # a new process's generator: the checkpoint's state must replace it
    status, resumed, stderr = run_main(["train", "--out", str(tmp_path), "--resume"])
    assert status == 0, stderr
    assert "1 of 2 epochs done" in resumed and epochs_printed(resumed)[0][0] == 2
    expected, got = tg.load(out_dir / "model.npz"), tg.load(tmp_path / "model.npz")
    assert expected.keys() == got.keys()
    for name in expected:
        assert np.array_equal(expected[name], got[name]), name  # bit for bit, running statistics included
    first, second = (json.loads((folder / "config.json").read_text()) for folder in (out_dir, tmp_path))
    assert first["test_accuracy"] == second["test_accuracy"]
    assert epochs_printed(resumed)[-1] == epochs_printed(stdout)[-1]


def test_resume_refuses_a_cnn_checkpoint_whose_images_shape_was_tampered_with(trained_cnn, tmp_path):
    out_dir, _, _ = trained_cnn
    shutil.copytree(out_dir, tmp_path, dirs_exist_ok=True)
    content = training.load_checkpoint(tmp_path / "checkpoint.npz")
    metadata = {**content["metadata"], "input_shape": [1, 28, 28]}
    training.save_checkpoint(tmp_path / "checkpoint.npz", {**content, "metadata": metadata})
    status, stdout, stderr = run_main(["train", "--out", str(tmp_path), "--resume"])
    assert status == 2 and stdout == ""
    assert one_line_error(stderr, "train") == (
        f"tinygrad-nn train: {tmp_path / 'checkpoint.npz'}: 'input_shape' [1, 28, 28] holds 784 values per sample, "
        "but 'features' is 64\n"
    )


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"input_shape": None}, "'input_shape' must be the images' shape"),
        ({"input_shape": [1, 8, 8, 1]}, "'input_shape' must be the images' shape"),
        ({"input_shape": [1, 2, 32]}, "'input_shape' is [1, 2, 32]"),
        ({"input_shape": [1, "8", 8]}, "'input_shape' must hold three whole numbers"),
        ({"hidden": [10**9]}, "would have"),
    ],
)
@pytest.mark.parametrize("command", ["graph", "export"])
def test_graph_and_export_refuse_a_cnn_config_with_a_bad_entry(trained_cnn, tmp_path, change, named, command):
    out_dir, _, _ = trained_cnn
    shutil.copy(out_dir / "model.npz", tmp_path / "model.npz")
    config = json.loads((out_dir / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, **change}))
    out = tmp_path / ("g.svg" if command == "graph" else "m.onnx")
    status, stdout, stderr = run_main([command, "--weights", str(tmp_path), "--out", str(out)])
    assert status == 2 and stdout == ""
    message = one_line_error(stderr, command)
    assert str(tmp_path / "config.json") in message and named in message
    assert not out.exists()


def test_graph_without_input_shape_in_a_cnn_config_names_it(trained_cnn, tmp_path):
    out_dir, _, _ = trained_cnn
    shutil.copy(out_dir / "model.npz", tmp_path / "model.npz")
    config = json.loads((out_dir / "config.json").read_text())
    del config["input_shape"]
    (tmp_path / "config.json").write_text(json.dumps(config))
    status, _, stderr = run_main(["graph", "--model", str(tmp_path), "--out", str(tmp_path / "g.svg")])
    assert status == 2
    assert "the model config lacks 'input_shape'" in one_line_error(stderr, "graph")


@needs_dot
def test_graph_draws_a_trained_cnn_from_its_folder(trained_cnn, tmp_path):
    out_dir, _, _ = trained_cnn
    out = tmp_path / "cnn.svg"
    status, stdout, stderr = run_main(["graph", "--model", str(out_dir), "--out", str(out)])
    assert status == 0, stderr
    assert stdout.startswith(f"wrote {out} (cnn, 10 classes, 64 inputs; the first digits test sample, class ")
    text = assert_real_svg(out, must_mention=("1.weight", "2.weight", "10.weight", "13.bias"))
    # The same picture from model.npz with --weights, and the same again: dropout's masks are seeded.
    again = tmp_path / "again.svg"
    assert run_main(["graph", "--weights", str(out_dir / "model.npz"), "--out", str(again)])[0] == 0
    assert again.read_text() == text


def test_graph_draws_the_cnns_loss_on_its_first_test_image(trained_cnn, tmp_path, monkeypatch):
    from tinygrad_nn import viz

    drawn = []
    monkeypatch.setattr(viz, "save_graph", lambda loss, out, **options: drawn.append(loss) or out)
    out_dir, _, _ = trained_cnn
    status, _, stderr = run_main(["graph", "--model", str(out_dir), "--out", str(tmp_path / "g.dot")])
    assert status == 0, stderr
    (loss,) = drawn
    assert loss.dtype == np.float32 and np.isfinite(loss.item())
    ops = {type(node).__name__ for node in tg.autograd.backward_order(loss)}
    assert {"Conv", "BatchNorm", "MaxPool", "Dropout"} <= ops  # a training step's graph, dropout included


def test_export_onnx_of_a_cnn_runs_in_onnx_runtime_with_its_scores(trained_cnn, tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime", reason="onnxruntime is in the interop extra")
    out_dir, _, _ = trained_cnn
    status, stdout, stderr = run_main(["export", "--weights", str(out_dir), "--out", str(tmp_path / "cnn.onnx")])
    assert status == 0, stderr
    assert "cnn: input (batch, 64) float32" in stdout
    model = models.build_model(json.loads((out_dir / "config.json").read_text()))
    model.load_state_dict(tg.load(out_dir / "model.npz"))
    model.eval()
    _, (x_test, _) = data.load_digits()
    session = onnxruntime.InferenceSession(str(tmp_path / "cnn.onnx"), providers=["CPUExecutionProvider"])
    for batch in (1, 7, 64):
        (scores,) = session.run(None, {"input": x_test[:batch]})
        with tg.no_grad():
            np.testing.assert_allclose(scores, model(x_test[:batch]).data, rtol=1e-4, atol=1e-5)


def test_export_safetensors_of_a_cnn_loads_into_the_recipes_network(trained_cnn, tmp_path):
    pytest.importorskip("safetensors", reason="safetensors is in the interop extra: pip install -e '.[interop]'")
    out_dir, _, _ = trained_cnn
    status, _, stderr = run_main(["export", "--weights", str(out_dir), "--out", str(tmp_path / "cnn.safetensors")])
    assert status == 0, stderr
    loaded = tg.load(tmp_path / "cnn.safetensors")
    config = json.loads(tg.load_metadata(tmp_path / "cnn.safetensors")["config"])
    assert config["input_shape"] == [1, 8, 8]
    model = models.build_model(config)
    model.load_state_dict(loaded)  # every key and shape fits, the batch norms' running statistics included
    for name, value in tg.load(out_dir / "model.npz").items():
        np.testing.assert_array_equal(model.state_dict()[name], value)


# --------------------------------------------------------------------------------------------------------------
# --threads: how many threads numpy's BLAS may use while train trains (1 for the CNN by default)
# --------------------------------------------------------------------------------------------------------------


def blas_threads() -> dict[str, int]:
    """The thread count of every BLAS library loaded (numpy's, and SciPy's once scikit-learn is imported), by file."""
    threadpoolctl = pytest.importorskip("threadpoolctl", reason="threadpoolctl comes with scikit-learn")
    return {
        pool["filepath"]: pool["num_threads"] for pool in threadpoolctl.threadpool_info() if pool["user_api"] == "blas"
    }


def record_blas_limits(monkeypatch) -> list:
    """Record the limits train asks threadpoolctl for, and apply them as it would."""
    threadpoolctl = pytest.importorskip("threadpoolctl", reason="threadpoolctl comes with scikit-learn")
    real, asked = threadpoolctl.threadpool_limits, []

    def recording(limits=None, user_api=None):
        asked.append((limits, user_api))
        return real(limits=limits, user_api=user_api)

    monkeypatch.setattr(threadpoolctl, "threadpool_limits", recording)
    return asked


def fit_seeing_blas(monkeypatch) -> dict:
    """Replace training.fit by one that notes BLAS's threads while it runs, then stops as Ctrl-C would."""
    seen: dict = {}

    def noting(*args, **options):
        seen["threads"] = blas_threads()
        raise training.TrainingInterrupted("interrupted during epoch 1", training.History(), None, 0)

    monkeypatch.setattr(training, "fit", noting)
    return seen


@pytest.mark.parametrize(
    ("argv", "limit", "saved"),
    [
        (["--model", "cnn"], 1, 1),  # the CNN's recipe: its products are too small to gain from a second thread
        (["--model", "cnn", "--threads", "0"], None, 0),
        (["--model", "mlp"], None, 0),
        (["--model", "mlp", "--hidden", "8", "--threads", "1"], 1, 1),
        (["--model", "mlp", "--hidden", "8", "--threads", "3"], 3, 3),
    ],
)
def test_train_limits_blas_threads_while_it_trains_and_puts_them_back(argv, limit, saved, monkeypatch, tmp_path):
    data.load_digits()  # scikit-learn, and SciPy's BLAS with it, loaded before `before` is taken
    before = blas_threads()
    if not before:
        pytest.skip("threadpoolctl finds no BLAS library")
    asked, seen = record_blas_limits(monkeypatch), fit_seeing_blas(monkeypatch)
    status, stdout, stderr = run_main(["train", *argv, "--out", str(tmp_path)])
    assert status == 130, stderr
    assert asked == ([] if limit is None else [(limit, "blas")])
    if limit == 1:  # one thread is always possible, whatever OPENBLAS_NUM_THREADS this process started with
        assert set(seen["threads"].values()) == {1}
        assert ", 1 BLAS thread" in stdout and "BLAS threads" not in stdout
    elif limit is None:
        assert seen["threads"] == before and "BLAS thread" not in stdout
    else:
        assert f", {limit} BLAS threads" in stdout
    assert blas_threads() == before  # put back after training
    assert json.loads((tmp_path / "config.json").read_text())["threads"] == saved


def test_threads_without_threadpoolctl_is_an_error_but_the_cnns_default_only_a_note(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)  # `import threadpoolctl` raises ImportError
    status, stdout, stderr = run_main(["train", "--model", "mlp", "--threads", "2", "--out", str(tmp_path / "a")])
    assert status == 2 and stdout == ""
    assert one_line_error(stderr, "train").startswith(
        "tinygrad-nn train: --threads needs threadpoolctl, which is not installed: pip install threadpoolctl"
    )
    assert not (tmp_path / "a" / "config.json").exists()  # refused before any work
    fake_fit(monkeypatch)
    status, stdout, stderr = run_main(["train", "--model", "cnn", "--out", str(tmp_path / "b")])
    assert status == 130, stderr
    assert "(numpy's BLAS keeps its own threads, not 1: threadpoolctl is not installed)" in stdout


def test_resume_keeps_the_runs_threads_and_refuses_others(trained_cnn, trained_mlp, tmp_path):
    cnn_dir, mlp_dir = tmp_path / "cnn", tmp_path / "mlp"
    shutil.copytree(trained_cnn[0], cnn_dir)
    shutil.copytree(trained_mlp[0], mlp_dir)
    status, stdout, stderr = run_main(["train", "--out", str(cnn_dir), "--resume", "--threads", "2"])
    assert status == 2 and stdout == ""
    assert "which used --threads 1; leave --threads out" in one_line_error(stderr, "train")
    status, _, stderr = run_main(["train", "--out", str(mlp_dir), "--resume", "--threads", "1"])
    assert status == 2 and "which used --threads 0 (numpy's own); leave --threads out" in stderr
    # The same number is no change, and the run (already finished) is continued.
    status, stdout, stderr = run_main(["train", "--out", str(cnn_dir), "--resume", "--threads", "1"])
    assert status == 0, stderr
    assert "2 of 2 epochs done" in stdout


def test_resume_of_a_run_from_before_threads_existed_leaves_blas_alone(trained_mlp, tmp_path, monkeypatch):
    shutil.copytree(trained_mlp[0], tmp_path, dirs_exist_ok=True)
    content = training.load_checkpoint(tmp_path / "checkpoint.npz")
    metadata = {key: value for key, value in content["metadata"].items() if key != "threads"}
    training.save_checkpoint(tmp_path / "checkpoint.npz", {**content, "metadata": metadata})
    asked = record_blas_limits(monkeypatch)
    status, stdout, stderr = run_main(["train", "--out", str(tmp_path), "--resume"])
    assert status == 0, stderr
    assert asked == [] and "BLAS thread" not in stdout
    assert json.loads((tmp_path / "config.json").read_text())["threads"] == 0


@pytest.mark.parametrize("threads", [-1, True, 1.0, "all", None, 5000])
def test_resume_refuses_a_checkpoint_whose_threads_were_tampered_with(trained_mlp, tmp_path, threads):
    shutil.copytree(trained_mlp[0], tmp_path, dirs_exist_ok=True)
    content = training.load_checkpoint(tmp_path / "checkpoint.npz")
    training.save_checkpoint(
        tmp_path / "checkpoint.npz", {**content, "metadata": {**content["metadata"], "threads": threads}}
    )
    status, stdout, stderr = run_main(["train", "--out", str(tmp_path), "--resume"])
    assert status == 2 and stdout == ""
    assert one_line_error(stderr, "train") == (
        f"tinygrad-nn train: {tmp_path / 'checkpoint.npz'}: 'threads' must be a whole number from 0 to 1024, got "
        f"{threads!r}\n"
    )
