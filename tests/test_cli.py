"""The command line: demo, tutorials, train and graph, in-process through main() and as the installed programs."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import re
import shutil
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np
import pytest

import tinygrad_nn as tg
from tinygrad_nn import cli, data

REPOSITORY = Path(__file__).resolve().parent.parent
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
EPOCH_LINE = re.compile(r"^epoch (\d+): mean loss (\d+\.\d{4}), test accuracy (\d\.\d{4})$", re.MULTILINE)

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


# --------------------------------------------------------------------------------------------------------------
# demo
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.slow
@needs_dot
def test_demo_trains_draws_and_checks_in_under_a_minute(tmp_path):
    out_dir = tmp_path / "demo"
    start = time.perf_counter()
    result = run_program([entry_point(), "demo", "--out", str(out_dir)], timeout=120)
    seconds = time.perf_counter() - start
    assert result.returncode == 0, result.stderr
    assert seconds < 60
    # The progress bar (tqdm, on stderr) went through every one of the 1,347 training images, each epoch.
    assert result.stderr.count("1347/1347") >= 10
    assert [epoch for epoch, _, _ in epochs_printed(result.stdout)] == list(range(1, 11))
    final = re.search(r"^Test accuracy (\d\.\d{4}) after 10 epochs", result.stdout, re.MULTILINE)
    assert final is not None and float(final.group(1)) >= 0.9
    assert epochs_printed(result.stdout)[-1][2] == float(final.group(1))
    assert "verdict: PASSED" in result.stdout
    assert "0.weight" in result.stdout and "2.weight" in result.stdout  # the gradient check's table
    assert_real_png(out_dir / "loss_curve.png")
    assert_real_svg(out_dir / "graph.svg", must_mention=("0.weight", "2.weight"))
    assert str(out_dir.resolve()) in result.stdout  # it names its output folder


# --------------------------------------------------------------------------------------------------------------
# tutorials
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.usefixtures("fashion_mnist_present")
def test_tutorials_prints_one_table_of_published_numbers_beside_ours(tmp_path):
    status, stdout, stderr = run_main(["tutorials", "--out", str(tmp_path), "--samples", "2000"])
    assert status == 0, stderr
    lines = stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split() == ["tutorial", "quantity", "published", "ours"])
    rows = [re.split(r"\s{2,}", line.strip()) for line in lines[header + 2 :] if line.strip()]
    assert all(len(row) == 4 for row in rows), rows
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
    for name in ("tutorial_003_training_error.png", "tutorial_004_iterations_vs_output.png"):
        assert_real_png(tmp_path / name)


# --------------------------------------------------------------------------------------------------------------
# train
# --------------------------------------------------------------------------------------------------------------


def test_train_mlp_on_digits_prints_each_epoch_and_writes_its_files(trained_mlp):
    out_dir, stdout, stderr = trained_mlp
    epochs = epochs_printed(stdout)
    assert [epoch for epoch, _, _ in epochs] == [1, 2]
    assert epochs[1][1] < epochs[0][1]  # the loss went down
    assert epochs[1][2] > 0.8
    assert "epoch 1/2" in stderr and "epoch 2/2" in stderr  # the progress bars
    config = json.loads((out_dir / "config.json").read_text())
    assert config["model"] == "mlp" and config["dataset"] == "digits"
    assert config["hidden"] == [512, 256] and config["epochs"] == 2
    assert (config["features"], config["classes"]) == (64, 10)
    assert [round(a, 4) for a in config["test_accuracy"]] == [acc for _, _, acc in epochs]
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
    model = cli.mlp(64, [512, 256], 10, np.float32, seed=123)
    model.load_state_dict(state)
    _, (x_test, y_test) = data.load_digits()
    assert cli.accuracy(model, x_test, y_test) == config["test_accuracy"][-1]


def test_train_the_tutorial_network_on_digits(tmp_path):
    status, stdout, stderr = run_main(
        [
            "train",
            "--dataset",
            "digits",
            "--model",
            "tutorial",
            "--epochs",
            "1",
            "--hidden",
            "32",
            "--out",
            str(tmp_path),
        ]
    )
    assert status == 0, stderr
    assert "Sigmoid()" in stdout and "bias=False" in stdout
    (epoch,) = epochs_printed(stdout)
    assert epoch[0] == 1 and epoch[2] > 0.3  # chance is 0.1
    assert "1347/1347" in stderr  # one image at a time
    state = tg.load(tmp_path / "model.npz")
    assert {name: array.shape for name, array in state.items()} == {"0.weight": (32, 64), "2.weight": (10, 32)}
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model"] == "tutorial" and config["hidden"] == [32]
    assert (config["optimizer"], config["lr"], config["batch_size"]) == ("sgd", 0.1, 1)
    assert_real_png(tmp_path / "loss_curve.png")


@pytest.mark.slow
@pytest.mark.usefixtures("fashion_mnist_present")
def test_train_mlp_on_fashion_mnist(tmp_path):
    argv = ["train", "--dataset", "fashion-mnist", "--model", "mlp", "--epochs", "1", "--hidden", "64"]
    status, stdout, stderr = run_main([*argv, "--out", str(tmp_path)])
    assert status == 0, stderr
    assert "60000 training and 10000 test samples, 784 features, 10 classes" in stdout
    (epoch,) = epochs_printed(stdout)
    assert epoch[2] > 0.8  # measured 0.8338
    assert tg.load(tmp_path / "model.npz")["0.weight"].shape == (64, 784)


def test_train_mnist_from_an_empty_data_root_says_what_to_do(offline, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    start = time.perf_counter()
    status, stdout, stderr = run_main(
        ["train", "--dataset", "mnist", "--data-root", str(empty), "--out", str(tmp_path / "out")]
    )
    assert time.perf_counter() - start < 10
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
    start = time.perf_counter()
    status, _, stderr = run_main(["train", "--dataset", "mnist", "--out", str(tmp_path / "out")])
    assert time.perf_counter() - start < 10
    assert status == 2
    assert "could not download" in stderr and "127.0.0.1" in stderr
    assert "TINYGRAD_NN_DATA" in stderr
    assert not any(offline.rglob("*.part"))


def test_missing_data_message_names_the_command_line_option(offline, tmp_path):
    status, _, stderr = run_main(["train", "--dataset", "mnist", "--data-root", str(tmp_path), "--out", str(tmp_path)])
    assert status == 2
    assert "--data-root" in stderr


# --------------------------------------------------------------------------------------------------------------
# Bad arguments
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["train", "--hidden", "abc"], "--hidden"),
        (["train", "--hidden", "64,0"], "--hidden"),
        (["train", "--epochs", "0"], "--epochs"),
        (["train", "--epochs", "two"], "--epochs"),
        (["train", "--lr", "-1"], "--lr"),
        (["train", "--batch-size", "0"], "--batch-size"),
        (["train", "--momentum", "-0.5"], "--momentum"),
        (["train", "--dataset", "cifar10"], "--dataset"),
        (["train", "--model", "cnn"], "--model"),
        (["demo", "--hidden", "0"], "--hidden"),
        (["tutorials", "--samples", "-5"], "--samples"),
        (["graph", "--out", "picture.txt"], "--out"),
        (["fit"], "fit"),
    ],
)
def test_bad_arguments_exit_2_naming_the_argument(argv, named, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    status, stdout, stderr = run_main(argv)
    assert status == 2
    assert stdout == ""
    assert named in stderr
    assert "Traceback" not in stderr
    assert list(tmp_path.iterdir()) == []  # nothing was trained or written


def test_bad_arguments_exit_2_from_python_m_and_the_script(tmp_path):
    result = run_program([sys.executable, "-m", "tinygrad_nn", "train", "--epochs", "0"], timeout=60)
    assert result.returncode == 2
    assert "--epochs" in result.stderr and "positive" in result.stderr
    result = run_program([entry_point(), "graph", "--out", str(tmp_path / "x.txt")], timeout=60)
    assert result.returncode == 2
    assert result.stderr.startswith("tinygrad-nn graph: --out")
    assert ".svg" in result.stderr and "Traceback" not in result.stderr


def test_lr_nan_is_a_bad_argument(tmp_path):
    status, _, stderr = run_main(["train", "--lr", "nan", "--epochs", "1", "--out", str(tmp_path)])
    assert status == 2
    assert "--lr" in stderr


def test_momentum_with_adam_is_not_silently_ignored(tmp_path):
    status, stdout, stderr = run_main(
        ["train", "--model", "mlp", "--hidden", "16", "--epochs", "1", "--momentum", "0.9", "--out", str(tmp_path)]
    )
    # The folder's name (test_momentum_...) must not count as a mention.
    assert status != 0 or "momentum" in (stdout + stderr).replace(str(tmp_path), "")


def test_tutorial_model_refuses_several_hidden_sizes(tmp_path):
    status, _, stderr = run_main(
        ["train", "--model", "tutorial", "--hidden", "64,32", "--epochs", "1", "--out", str(tmp_path)]
    )
    assert status == 2
    assert "--hidden" in stderr


def test_out_that_is_a_file_gets_a_message(tmp_path):
    not_a_folder = tmp_path / "results"
    not_a_folder.write_text("")
    status, _, stderr = run_main(["train", "--hidden", "16", "--epochs", "1", "--out", str(not_a_folder)])
    assert status == 2
    assert "--out" in stderr or str(not_a_folder) in stderr


def test_graph_negative_max_depth_gets_a_message(tmp_path):
    status, _, stderr = run_main(["graph", "--max-depth", "-1", "--out", str(tmp_path / "g.svg")])
    assert status == 2
    assert "--max-depth" in stderr


# --------------------------------------------------------------------------------------------------------------
# graph
# --------------------------------------------------------------------------------------------------------------


@needs_dot
def test_graph_draws_the_demo_model_to_svg(tmp_path):
    out = tmp_path / "pictures" / "g.svg"
    status, stdout, stderr = run_main(["graph", "--out", str(out)])
    assert status == 0, stderr
    assert stdout.startswith(f"wrote {out}")
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
    assert "(10 classes, 64 inputs)" in result.stdout
    assert_real_png(out)


@needs_dot
def test_graph_of_a_trained_model_shows_its_parameters(trained_mlp, tmp_path):
    out_dir, _, _ = trained_mlp
    out = tmp_path / "g.svg"
    status, _, stderr = run_main(["graph", "--weights", str(out_dir / "model.npz"), "--out", str(out)])
    assert status == 0, stderr
    assert_real_svg(out, must_mention=("0.weight", "4.bias"))


def test_graph_without_config_json_beside_the_weights_is_a_clear_error(trained_mlp, tmp_path):
    out_dir, _, _ = trained_mlp
    lonely = tmp_path / "model.npz"
    shutil.copy(out_dir / "model.npz", lonely)
    status, stdout, stderr = run_main(["graph", "--weights", str(lonely), "--out", str(tmp_path / "g.svg")])
    assert status == 2
    assert stdout == ""
    assert stderr.startswith("tinygrad-nn graph: ")
    assert str(tmp_path / "config.json") in stderr and "train" in stderr
    assert "Traceback" not in stderr
    assert not (tmp_path / "g.svg").exists()


def test_graph_with_weights_that_do_not_fit_the_config_is_a_clear_error(trained_mlp, tmp_path):
    out_dir, _, _ = trained_mlp
    shutil.copy(out_dir / "model.npz", tmp_path / "model.npz")
    config = json.loads((out_dir / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "hidden": [32]}))
    status, _, stderr = run_main(["graph", "--weights", str(tmp_path / "model.npz"), "--out", str(tmp_path / "g.svg")])
    assert status == 2
    assert "0.weight" in stderr and "(512, 64)" in stderr


def test_graph_with_missing_weights_names_the_weights_file(tmp_path):
    status, _, stderr = run_main(
        ["graph", "--weights", str(tmp_path / "nothing.npz"), "--out", str(tmp_path / "g.svg")]
    )
    assert status == 2
    assert re.search(r"nothing\.npz.*(does not exist|no such file|not found|missing)", stderr, re.IGNORECASE)


def test_an_out_folder_that_cannot_be_created_is_a_message_not_a_traceback(capsys, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert cli.main(["demo", "--out", str(blocker / "inside")]) == 2
    error = capsys.readouterr().err
    assert "cannot create the folder" in error and "Traceback" not in error
