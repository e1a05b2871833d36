"""The command line, ``tinygrad-nn`` (or ``python -m tinygrad_nn``): demo, tutorials, train, graph and export.

- ``demo``: builds the tutorial network module by module, trains it on scikit-learn's 8x8 digits, prints the
  test accuracy, writes the loss curve and the computation graph, and checks the model's gradients.
- ``tutorials``: runs every tutorial network in ``examples/`` and prints what it published beside what we get.
- ``train``: trains a model of `tinygrad_nn.models` (tutorial 001's network, an MLP or a CNN) on digits,
  Fashion-MNIST or MNIST, with a checkpoint after every epoch (``--resume`` continues from it); saves weights,
  configuration and plots. ``--monitor`` watches the gradients with a `tinygrad_nn.monitor.GradientMonitor`,
  draws its three pictures and prints its findings.
- ``graph``: draws the demo model (or a model saved by ``train``, from its folder) on a real sample of its data
  set, as a picture or as the interactive explorer (``--out graph.html``).
- ``export``: writes a model saved by ``train`` as ONNX (ONNX Runtime, Netron) or safetensors (PyTorch).

This module parses arguments and prints; the models are `tinygrad_nn.models`' and the training loop is
`tinygrad_nn.training.fit`. Every problem the user can fix ends with one line on stderr and exit status 2; an
interruption (Ctrl-C) with status 130, saying where the last checkpoint is. No command ends in a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import importlib.util
import json
import math
import os
import struct
import sys
import textwrap
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from . import data, models, nn, optim, training
from .gradcheck import gradcheck_report
from .monitor import GradientMonitor
from .serialization import load, save
from .tensor import Tensor

__all__ = ["main"]

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"
TUTORIAL_FILES = (
    ("000", "tutorial_000_python_course.py"),
    ("001", "tutorial_001_make_your_own.py"),
    ("002+003", "tutorial_002_003_real_python.py"),
    ("004", "tutorial_004_sichkar.py"),
)
# The size of each data set's samples and its number of classes, known before loading it, so that a model too
# large for memory is refused at once. Every one holds square grey images, flattened (8 x 8 or 28 x 28).
DATASETS = {"digits": (64, 10), "fashion-mnist": (784, 10), "mnist": (784, 10)}
OPTIMIZERS = {
    "sgd": (optim.SGD, 0.1),
    "adam": (optim.Adam, 1e-3),
    "adamw": (optim.AdamW, 1e-3),
    "rmsprop": (optim.RMSprop, 1e-2),
    "adagrad": (optim.Adagrad, 1e-2),
}
GRAPH_SUFFIXES = (".svg", ".png", ".pdf", ".dot", ".gv", ".html")
TABLE_WIDTH = 100
MAX_HIDDEN_SIZE = 1_000_000
MAX_HIDDEN_LAYERS = 100


class CommandError(Exception):
    """A problem the user can fix; main() prints it (without a traceback) and exits with status 2."""


def _need(module: str) -> Any:
    """Import an optional dependency, or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise CommandError(
            f"this command needs {module}, which is not installed: pip install {module} (in a clone, "
            "pip install -e '.[examples]' installs it with the other extras)"
        ) from None


# --------------------------------------------------------------------------------------------------------------
# Where the outputs go: checked before any work
# --------------------------------------------------------------------------------------------------------------


def _check_can_write_into(folder: Path, option: str) -> None:
    probe = folder / f".tinygrad-nn-write-test-{os.getpid()}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise CommandError(f"{option} {folder}: cannot write into the folder ({error.strerror or error})") from None


def _output_folder(path: str | Path, option: str = "--out") -> Path:
    """The output folder, created, after making sure a file can be written into it."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise CommandError(f"{option} {folder} is a file; give a folder for the outputs")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CommandError(f"{option} {folder}: cannot create the folder ({error.strerror or error})") from None
    _check_can_write_into(folder, option)
    return folder


def _output_file(path: str | Path, suffixes: Sequence[str], option: str = "--out") -> Path:
    """An output file whose folder exists (or was created) and can be written, and that is not a folder."""
    out = Path(path)
    if out.suffix.lower() not in suffixes:
        raise CommandError(f"{option} {out}: give a file ending in {', '.join(suffixes[:-1])} or {suffixes[-1]}")
    if out.is_dir():
        raise CommandError(f"{option} {out} is a folder; give a file name such as {out / ('graph' + suffixes[0])}")
    _output_folder(out.parent if str(out.parent) else Path("."), option)
    if out.exists() and not os.access(out, os.W_OK):
        raise CommandError(f"{option} {out}: the file exists and cannot be overwritten")
    return out


# --------------------------------------------------------------------------------------------------------------
# Printing
# --------------------------------------------------------------------------------------------------------------


def save_curves(history: training.History, out_dir: Path, title: str, steps_per_epoch: int) -> list[Path]:
    """Write the loss curve (and the test accuracy per epoch, when there are several) as PNGs."""
    matplotlib = _need("matplotlib")
    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    def plot(path: Path, x: Any, y: Any, labels: dict[str, str], **style: Any) -> Path:
        figure, axes = plt.subplots(figsize=(6, 4))
        axes.plot(x, y, **style)
        axes.set(**labels)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps and epochs are whole numbers
        axes.grid(True, alpha=0.3)
        figure.tight_layout()
        figure.savefig(path, dpi=100)
        plt.close(figure)
        return path

    # The loss of every step is noisy: plot the mean of each 1/25 of an epoch, at the step that ends it.
    window = max(1, steps_per_epoch // 25)
    losses = np.asarray(history.step_loss)
    full = len(losses) // window * window
    means = losses[:full].reshape(-1, window).mean(axis=1)
    steps = np.arange(1, len(means) + 1) * window
    loss_labels = {"title": f"{title}: training loss", "xlabel": "step", "ylabel": f"loss (mean of {window} steps)"}
    paths = [plot(out_dir / "loss_curve.png", steps, means, loss_labels, color="#1f77b4")]
    accuracies = history.metrics.get("test_accuracy", [])
    if len(accuracies) > 1:
        labels = {"title": f"{title}: test accuracy", "xlabel": "epoch", "ylabel": "accuracy"}
        paths.append(
            plot(out_dir / "test_accuracy.png", history.epochs, accuracies, labels, marker="o", color="#2ca02c")
        )
    return paths


def _draw(loss: Tensor, model: nn.Module, path: Path) -> str:
    """Draw the graph to `path`; without Graphviz's dot, write the DOT text instead and say so."""
    from .viz import save_graph

    try:
        return str(save_graph(loss, path, model=model))
    except RuntimeError as error:  # dot is missing: the DOT source still says everything
        source = save_graph(loss, path.with_suffix(".dot"), model=model)
        return f"{source} (could not render SVG: {error})"


def _wrapped_table(header: Sequence[str], rows: Sequence[Sequence[str]], width: int = TABLE_WIDTH) -> list[str]:
    """Rows in aligned columns no wider than `width` in all, long cells wrapped onto continuation lines.

    The widest columns give way first, but never below their longest word, so no word is ever cut.
    """
    columns = len(header)
    natural = [max(len(header[i]), *(len(row[i]) for row in rows)) for i in range(columns)]
    shortest = [max([len(header[i])] + [len(word) for row in rows for word in row[i].split()]) for i in range(columns)]
    widths = list(natural)
    budget = width - 2 * (columns - 1)
    while sum(widths) > budget:
        narrowable = [i for i in range(columns) if widths[i] > shortest[i]]
        if not narrowable:
            break
        widest = max(narrowable, key=lambda i: widths[i])
        widths[widest] -= 1

    def lines_of(cells: Sequence[str]) -> list[str]:
        wrapped = [
            textwrap.wrap(cell, w, break_long_words=False, break_on_hyphens=False) or [""]
            for cell, w in zip(cells, widths)
        ]
        height = max(len(parts) for parts in wrapped)
        out = []
        for line in range(height):
            parts = [(wrapped[i][line] if line < len(wrapped[i]) else "").ljust(widths[i]) for i in range(columns)]
            out.append("  ".join(parts).rstrip())
        return out

    lines = lines_of(header)
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines += lines_of(row)
    return lines


class _EpochLog:
    """A callback remembering the last epoch that finished, for the message after Ctrl-C."""

    def __init__(self) -> None:
        self.finished = 0

    def on_epoch_end(self, state: training.FitState) -> None:
        self.finished = state.epoch


# --------------------------------------------------------------------------------------------------------------
# demo
# --------------------------------------------------------------------------------------------------------------


def command_demo(args: argparse.Namespace) -> None:
    """Build, train, draw and check the tutorial network on the 8x8 digits."""
    start = time.perf_counter()
    out_dir = _output_folder(args.out)
    recipe = models.RECIPES["tutorial"]
    print("tinygrad_nn demo: the tutorials' network, built from modules and trained on 8x8 handwritten digits\n")
    (x_train, y_train), (x_test, y_test) = data.load_digits(seed=args.seed)
    x_train = recipe.prepare_inputs(x_train.astype(np.float64))
    x_test = recipe.prepare_inputs(x_test.astype(np.float64))
    print(f"data: {len(x_train)} training and {len(x_test)} test images of 8x8 = 64 pixels, 10 classes")

    print("\n1. The network, module by module (tutorial 001's: two Linear layers without bias, sigmoids)")
    model = models.tutorial_network(64, args.hidden, 10, np.float64, args.seed)
    print(f"   model = nn.Sequential(nn.Linear(64, {args.hidden}, bias=False), nn.Sigmoid(),")
    print(f"                         nn.Linear({args.hidden}, 10, bias=False), nn.Sigmoid())")
    print("   " + repr(model).replace("\n", "\n   "))
    parameters = sum(p.size for p in model.parameters())
    print(f"   {parameters} parameters: " + ", ".join(f"{n} {tuple(p.shape)}" for n, p in model.named_parameters()))

    print(f"\n2. Training: loss 0.5 * sum((target - output)^2), optim.SGD(lr={args.lr}), one image at a time")
    test_loader = data.DataLoader(x_test, y_test, batch_size=2000)
    print(f"   test accuracy before training: {training.evaluate(model, test_loader).accuracy:.4f}")
    optimizer = optim.SGD(model.parameters(), lr=args.lr)
    train_loader = data.DataLoader(x_train, y_train, batch_size=1, shuffle=True, seed=args.seed)
    history = training.fit(
        model, recipe.loss, optimizer, train_loader, epochs=args.epochs, val_loader=test_loader, val_name="test"
    )
    final_accuracy = history.metrics["test_accuracy"][-1]

    print("\n3. Pictures")
    for path in save_curves(history, out_dir, "Tutorial network on digits", len(train_loader)):
        print(f"   {path}")
    loss = recipe.loss(model(Tensor(x_test[:1])), y_test[:1])
    loss.backward()
    print(f"   {_draw(loss, model, out_dir / 'graph.svg')}   (one test image's graph, with gradient norms)")
    model.zero_grad()

    print("\n4. Gradient check: every parameter's backward against central differences (float64)")
    probe = Tensor(x_test[:3], requires_grad=True)
    report = gradcheck_report(lambda x: recipe.loss(model(x), y_test[:3]), [probe])
    model_report = gradcheck_report(model, [probe])
    for line in str(model_report).splitlines():
        print(f"   {line}")
    verdict = "PASSED" if report.ok and model_report.ok else "FAILED"
    print(f"   verdict: {verdict} (loss and model outputs, w.r.t. the input and every parameter)")

    print(f"\nTest accuracy {final_accuracy:.4f} after {args.epochs} epochs; outputs in {out_dir.resolve()}")
    print(f"Done in {time.perf_counter() - start:.1f} s.")
    if verdict != "PASSED":
        raise CommandError("the gradient check failed (see the table above)")


# --------------------------------------------------------------------------------------------------------------
# tutorials
# --------------------------------------------------------------------------------------------------------------


def _load_example(file_name: str) -> Any:
    path = EXAMPLES_DIR / file_name
    if not path.is_file():
        raise CommandError(
            f"the tutorial examples live in the source tree ({EXAMPLES_DIR}), which this installation does not "
            "have: run `tinygrad-nn tutorials` from a clone of the repository (pip install -e .)"
        )
    if str(EXAMPLES_DIR) not in sys.path:
        sys.path.insert(0, str(EXAMPLES_DIR))  # the examples import their shared helpers from _common
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def command_tutorials(args: argparse.Namespace) -> None:
    """Run every tutorial network and print one table of published numbers beside ours."""
    out_dir = _output_folder(args.out)
    rows = []
    for tutorial, file_name in TUTORIAL_FILES:
        print(f"running tutorial {tutorial} ({file_name}) ...", flush=True)
        module = _load_example(file_name)
        try:
            if tutorial == "001":
                results = module.reproduce(out_dir, samples=args.samples)
            else:
                results = module.reproduce(out_dir)
        except data.DataError as error:
            results = [("Fashion-MNIST", "-", f"not run: {str(error).splitlines()[0]}")]
        rows += [(tutorial, *row) for row in results]
    # A picture's cell names its file; the folder is said once, below the table.
    rows = [
        (*row[:3], Path(row[3]).name if Path(row[3]).parent == out_dir and row[3].endswith(".png") else row[3])
        for row in rows
    ]
    print()
    for line in _wrapped_table(("tutorial", "quantity", "published", "ours"), rows):
        print(line)
    print(f"\npictures in {out_dir}")


# --------------------------------------------------------------------------------------------------------------
# train
# --------------------------------------------------------------------------------------------------------------


def _load_dataset(name: str, root: str | None) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    if name == "digits":
        return data.load_digits()
    loader = data.load_fashion_mnist if name == "fashion-mnist" else data.load_mnist
    try:
        return loader(root=root)
    except data.DataError as error:
        # The message speaks of root=; on the command line that is --data-root.
        raise CommandError(str(error).replace("pass root= a folder", "pass --data-root a folder")) from None


# The settings of a train run, as config.json records them, and the option each comes from.
_SETTING_OPTIONS = {
    "dataset": "--dataset",
    "model": "--model",
    "hidden": "--hidden",
    "epochs": "--epochs",
    "batch_size": "--batch-size",
    "optimizer": "--optimizer",
    "lr": "--lr",
    "momentum": "--momentum",
    "schedule": "--schedule",
    "seed": "--seed",
    "dtype": "--dtype",
    "shuffle": "--no-shuffle",
    "monitor": "--monitor",
    "threads": "--threads",
}
# What --monitor writes into --out.
MONITOR_PICTURES = ("gradient_flow.png", "gradient_history.png", "gradient_histograms.png")
MAX_MONITOR_EVERY = 1_000_000
MAX_THREADS = 1024


def _given_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given on the command line (None for those left to their defaults)."""
    given = {key: getattr(args, key) for key in _SETTING_OPTIONS if key != "shuffle"}
    given["shuffle"] = None if args.no_shuffle is None else not args.no_shuffle
    return given


def _fresh_settings(given: dict[str, Any]) -> dict[str, Any]:
    """Every setting of a new run: what was given, and each default (which may depend on the model)."""
    settings = {"dataset": "digits", "model": "mlp", "seed": 0, "shuffle": True, "monitor": None}
    settings.update({key: value for key, value in given.items() if value is not None and key in settings})
    recipe = models.RECIPES[settings["model"]]
    settings["dtype"] = recipe.training.get("dtype", "float32") if given["dtype"] is None else given["dtype"]
    settings["hidden"] = list(recipe.default_hidden if given["hidden"] is None else given["hidden"])
    for key in ("epochs", "batch_size", "optimizer", "schedule"):
        settings[key] = recipe.training[key] if given[key] is None else given[key]
    settings["lr"] = OPTIMIZERS[settings["optimizer"]][1] if given["lr"] is None else given["lr"]
    settings["momentum"] = given["momentum"]
    if settings["momentum"] is not None and settings["optimizer"] not in ("sgd", "rmsprop"):
        raise CommandError(
            f"--momentum applies to --optimizer sgd or rmsprop, but this run uses {settings['optimizer']}"
        )
    settings["momentum"] = settings["momentum"] or 0.0
    settings["threads"] = recipe.threads if given["threads"] is None else given["threads"]
    if recipe.hidden_layers is not None and len(settings["hidden"]) != recipe.hidden_layers:
        raise CommandError(
            f"the {recipe.name} network has {recipe.hidden_layers} hidden layer(s), so --hidden takes "
            f"{recipe.hidden_layers} size(s), got {','.join(map(str, settings['hidden']))}"
        )
    return settings


def _idx_image_size(dataset: str, root: str | None) -> tuple[int, int]:
    """The (rows, columns) of an IDX data set's images, from its files' headers: the loaders flatten them.

    Called after the data set was loaded, so its files are there and were checked; only their first 16 bytes are
    read again. Training and test images of different sizes are refused here, naming both.
    """
    folder = data._find_or_download(dataset, root, download=False)  # the folder the loader read
    sizes = []
    for name in (data._TRAIN_IMAGES, data._TEST_IMAGES):
        path = data._idx_file_in(folder, name)
        assert path is not None  # the loader found it a moment ago
        with path.open("rb") as file:
            compressed = file.read(2) == b"\x1f\x8b"
            file.seek(0)
            header = (gzip.GzipFile(fileobj=file) if compressed else file).read(16)
        rows, columns = struct.unpack(">II", header[8:16])  # after the magic and the count: (N, rows, columns)
        sizes.append((rows, columns))
    if sizes[0] != sizes[1]:
        raise CommandError(
            f"--model cnn: {dataset}'s training images are {sizes[0][0]} x {sizes[0][1]} pixels but its test images "
            f"{sizes[1][0]} x {sizes[1][1]}; the CNN is built for one size"
        )
    return sizes[0]


def _image_shape(dataset: str, features: int, root: str | None = None, loaded: bool = False) -> list[int]:
    """The (channels, height, width) of a data set's flattened samples: grey images, one channel.

    Before the data is loaded, the data set's own size (8 x 8 digits, 28 x 28 (Fashion-)MNIST); after, for
    (Fashion-)MNIST, the size its files hold (files in --data-root may hold images of any size, square or not).
    """
    if loaded and dataset != "digits":
        return [1, *_idx_image_size(dataset, root)]
    side = math.isqrt(features)
    return [1, side, side]


def _model_config(
    settings: dict[str, Any], features: int, classes: int, input_shape: list[int] | None = None
) -> dict[str, Any]:
    """The model entries of a run's config: what `models.build_model` rebuilds the network from."""
    config: dict[str, Any] = {"model": settings["model"], "features": features}
    if models.RECIPES[settings["model"]].images:
        config["input_shape"] = input_shape or _image_shape(settings["dataset"], features)
    return {**config, "hidden": settings["hidden"], "classes": classes, "dtype": settings["dtype"]}


def _read_config(path: Path) -> dict[str, Any]:
    """config.json as a dict, or a CommandError saying what is wrong with the file (it may be anything)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise CommandError(f"{path}: cannot read it ({getattr(error, 'strerror', None) or error})") from None
    try:
        config = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise CommandError(f"{path} is not valid JSON ({str(error).splitlines()[0][:200]})") from None
    if not isinstance(config, dict):
        raise CommandError(f"{path} must hold a JSON object, it holds a {type(config).__name__}")
    return config


def _one_of(value: Any, choices: Any) -> bool:
    """Whether `value` is one of the strings `choices` (a file may hold a list or a dict there instead)."""
    return isinstance(value, str) and value in choices


def _checked_settings(config: dict[str, Any], path: Path) -> dict[str, Any]:
    """The training settings of a config.json written by train, every one checked, since the file may be anything."""

    def bad(key: str, wanted: str) -> NoReturn:
        raise CommandError(f"{path}: '{key}' must be {wanted}, got {config.get(key)!r:.80}")

    try:
        models.check_config(config)
    except ValueError as error:
        raise CommandError(f"{path}: {error}") from None
    if not _one_of(config.get("dataset"), DATASETS):
        bad("dataset", "one of " + ", ".join(DATASETS))
    for key in ("epochs", "batch_size"):
        value = config.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10**9:
            bad(key, "a whole number >= 1")
    seed = config.get("seed")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        bad("seed", "a whole number >= 0")
    if not _one_of(config.get("optimizer"), OPTIMIZERS):
        bad("optimizer", "one of " + ", ".join(OPTIMIZERS))
    if not _one_of(config.get("schedule"), ("cosine", "onecycle", "none")):
        bad("schedule", "cosine, onecycle or none")
    for key, positive in (("lr", True), ("momentum", False)):
        value = config.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            bad(key, "a number")
        if value < 0 or (positive and value == 0):
            bad(key, "a positive number" if positive else "a number >= 0")
    if not isinstance(config.get("shuffle"), bool):
        bad("shuffle", "true or false")
    monitor = config.get("monitor")  # runs from before --monitor existed have none
    if monitor is not None and (isinstance(monitor, bool) or not isinstance(monitor, int)):
        bad("monitor", "null or a whole number of steps")
    if monitor is not None and not 1 <= monitor <= MAX_MONITOR_EVERY:
        bad("monitor", f"null or a whole number from 1 to {MAX_MONITOR_EVERY:,}")
    threads = config.get("threads", 0)  # runs from before --threads existed have none: numpy's own threads
    if isinstance(threads, bool) or not isinstance(threads, int) or not 0 <= threads <= MAX_THREADS:
        bad("threads", f"a whole number from 0 to {MAX_THREADS}")
    settings = {key: config.get(key) if key in ("monitor", "threads") else config[key] for key in _SETTING_OPTIONS}
    return {**settings, "threads": threads}


def _resumed_settings(given: dict[str, Any], out_dir: Path, checkpoint: Path) -> dict[str, Any]:
    """The settings of the run being resumed, which its checkpoint holds; an option given now must agree."""
    if not checkpoint.is_file():
        raise CommandError(
            f"--resume: there is no checkpoint in {out_dir} (no run there finished an epoch); start the run "
            "without --resume"
        )
    try:
        metadata = training.load_checkpoint(checkpoint).get("metadata")
    except ValueError as error:
        raise CommandError(f"--resume: {error}") from None
    if not isinstance(metadata, dict):
        raise CommandError(f"--resume: {checkpoint} holds no settings of a train run (was it written by fit?)")
    settings = _checked_settings(metadata, checkpoint)
    for key, value in given.items():
        saved = settings[key]
        if value is not None and (list(value) if key == "hidden" else value) != saved:
            option = _SETTING_OPTIONS[key]
            shown = {"shuffle": "off" if saved else "on", "monitor": saved or "off"}.get(key, saved)
            if key == "threads" and not saved:
                shown = "0 (numpy's own)"
            raise CommandError(
                f"--resume continues the run in {out_dir}, which used {option} {shown}; leave {option} out "
                "(or start a new run in another --out folder)"
            )
    return settings


def _build_optimizer(settings: dict[str, Any], model: nn.Module) -> optim.Optimizer:
    optimizer_class, _ = OPTIMIZERS[settings["optimizer"]]
    if settings["optimizer"] in ("sgd", "rmsprop"):
        return optimizer_class(model.parameters(), lr=settings["lr"], momentum=settings["momentum"])
    return optimizer_class(model.parameters(), lr=settings["lr"])


def _build_scheduler(settings: dict[str, Any], optimizer: optim.Optimizer, steps_per_epoch: int) -> Any:
    if settings["schedule"] == "cosine":
        return optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=settings["epochs"])
    if settings["schedule"] == "onecycle":
        return optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=settings["lr"],
            epochs=settings["epochs"],
            steps_per_epoch=steps_per_epoch,
            cycle_momentum=settings["optimizer"] != "adagrad",
        )
    return None


def _blas_threads(threads: int, given: bool) -> Callable[[], contextlib.AbstractContextManager[Any]]:
    """What limits numpy's matrix products (its BLAS) to `threads` threads while training runs; 0: no limit.

    threadpoolctl does it (it comes with the examples extra). Without it, a limit asked for with --threads is
    an error, and a recipe's own limit is left out with a note. Checked now; applied when training starts.
    """
    if not threads:
        return contextlib.nullcontext
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        if given:
            raise CommandError(
                "--threads needs threadpoolctl, which is not installed: pip install threadpoolctl (in a clone, "
                "pip install -e '.[examples]' installs it with the other extras)"
            ) from None
        print(f"(numpy's BLAS keeps its own threads, not {threads}: threadpoolctl is not installed)")
        return contextlib.nullcontext
    return lambda: threadpool_limits(limits=threads, user_api="blas")


def _write_json(path: Path, content: dict[str, Any]) -> None:
    """Write JSON through a temporary file and a rename, so that no reader sees half of it."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        temporary.write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def command_train(args: argparse.Namespace) -> None:
    """Train a model on a data set, with a checkpoint every epoch; save weights, curves and the configuration."""
    start = time.perf_counter()
    out_dir = Path(args.out)
    checkpoint = out_dir / training.CHECKPOINT_NAME
    given = _given_settings(args)
    settings = _resumed_settings(given, out_dir, checkpoint) if args.resume else _fresh_settings(given)
    model_config = _model_config(settings, *DATASETS[settings["dataset"]])
    try:
        models.check_config(model_config)  # a model too large for memory is refused before any work
    except ValueError as error:
        raise CommandError(f"--hidden: {error}") from None
    _output_folder(out_dir)  # every argument is sound: make sure the results can be written, before any work
    if settings["monitor"]:
        _need("matplotlib")  # for the monitor's pictures: say so now, not after training
    blas_threads = _blas_threads(settings["threads"], given["threads"] is not None)
    recipe = models.RECIPES[settings["model"]]
    dtype = np.dtype(settings["dtype"])
    (x_train, y_train), (x_test, y_test) = _load_dataset(settings["dataset"], args.data_root)
    x_train = recipe.prepare_inputs(x_train.astype(dtype))
    x_test = recipe.prepare_inputs(x_test.astype(dtype))
    # From the data itself: files in --data-root may hold images of another size than the data set's.
    features, classes = x_train.shape[1], int(max(y_train.max(), y_test.max())) + 1
    if x_test.shape[1] != features:
        raise CommandError(
            f"{settings['dataset']}'s training samples have {features:,} values but its test samples "
            f"{x_test.shape[1]:,}: the model takes one size"
        )
    shape = _image_shape(settings["dataset"], features, args.data_root, loaded=True) if recipe.images else None
    model_config = _model_config(settings, features, classes, shape)
    try:
        models.check_config(model_config)  # the data's own sizes: images too small, or a model too large
    except ValueError as error:
        raise CommandError(f"{settings['dataset']}'s data: {error}") from None
    # The framework's generator, which dropout draws its masks from (and every layer's constructor): seeded, so
    # that a run repeats; --resume puts back its state from the checkpoint.
    nn.init.manual_seed(settings["seed"])
    model = models.build_model(model_config, seed=settings["seed"])
    optimizer = _build_optimizer(settings, model)
    train_loader = data.DataLoader(
        x_train, y_train, batch_size=settings["batch_size"], shuffle=settings["shuffle"], seed=settings["seed"]
    )
    test_loader = data.DataLoader(x_test, y_test, batch_size=recipe.eval_batch_size)
    scheduler = _build_scheduler(settings, optimizer, len(train_loader))
    # A callback with a state: fit saves it in each checkpoint, and --resume brings it back with the run.
    monitor = GradientMonitor(model, every=settings["monitor"]) if settings["monitor"] else None

    shape = model_config.get("input_shape")
    images = f" ({' x '.join(map(str, shape))} images)" if shape else ""
    print(f"{settings['dataset']}: {len(x_train)} training and {len(x_test)} test samples, {features} features"
          f"{images}, {classes} classes")  # fmt: skip
    print(repr(model))
    momentum = f" momentum={settings['momentum']}" if settings["optimizer"] in ("sgd", "rmsprop") else ""
    schedule = {"cosine": "cosine-annealed", "onecycle": "one-cycle", "none": "constant"}[settings["schedule"]]
    epochs = f"{settings['epochs']} epoch{'s' if settings['epochs'] > 1 else ''}"
    watched = ""
    if settings["monitor"]:
        every = "every step" if settings["monitor"] == 1 else f"every {settings['monitor']} steps"
        watched = f", gradient monitor {every}"
    count = settings["threads"]
    threads = f", {count} BLAS thread{'s' if count > 1 else ''}" if count else ""
    print(f"{settings['optimizer']}, {schedule} lr={settings['lr']}{momentum}, batch size {settings['batch_size']}, "
          f"{epochs}, {dtype}{threads}{watched}")  # fmt: skip
    earlier_checkpoint = not args.resume and checkpoint.is_file()
    if earlier_checkpoint:
        print(f"(replacing the checkpoint of an earlier run in {out_dir}; --resume would have continued it)")
    run_settings = {**model_config, "dataset": settings["dataset"],
                    **{k: v for k, v in settings.items() if k not in model_config and k != "dataset"}}  # fmt: skip
    config = {**run_settings, "status": "training"}
    _write_json(out_dir / "config.json", config)

    train_start = time.perf_counter()
    try:
        with blas_threads():
            history = training.fit(
                model,
                recipe.loss,
                optimizer,
                train_loader,
                epochs=settings["epochs"],
                val_loader=test_loader,
                val_name="test",
                scheduler=scheduler,
                callbacks=[monitor] if monitor is not None else [],
                checkpoint_dir=out_dir,
                resume=args.resume,
                metadata=run_settings,  # what --resume rebuilds the run from
            )
    except training.TrainingInterrupted as interruption:
        if interruption.checkpoint:
            hint = f"; continue with: tinygrad-nn train --out {out_dir} --resume"
        elif earlier_checkpoint and checkpoint.is_file():
            hint = f"; {checkpoint} still holds the earlier run, which --resume would continue"
        else:
            hint = ""
        raise KeyboardInterrupt(f"{interruption}{hint}") from None
    except ValueError as error:  # a checkpoint that does not fit this run
        raise CommandError(str(error)) from None
    train_seconds = time.perf_counter() - train_start
    save(model.state_dict(), out_dir / "model.npz")
    config.update(status="finished", test_accuracy=history.metrics["test_accuracy"], train_seconds=train_seconds)
    _write_json(out_dir / "config.json", config)
    paths = save_curves(history, out_dir, f"{settings['model']} on {settings['dataset']}", len(train_loader))
    if monitor is not None:
        flow, history_picture, histograms = (out_dir / name for name in MONITOR_PICTURES)
        paths += [monitor.plot_flow(flow), monitor.plot_history(history_picture), monitor.plot_histograms(histograms)]
        print(monitor.report())
    print(
        f"test accuracy {history.metrics['test_accuracy'][-1]:.4f}; training took {train_seconds:.1f} s "
        f"(all in {time.perf_counter() - start:.1f} s)"
    )
    written = [out_dir / "model.npz", out_dir / "config.json", checkpoint, *paths]
    print("wrote " + ", ".join(str(p) for p in written))


# --------------------------------------------------------------------------------------------------------------
# graph
# --------------------------------------------------------------------------------------------------------------


def command_graph(args: argparse.Namespace) -> None:
    """Draw the demo model, or a model saved by `train`, on a real sample of its data set, with its gradients."""
    from .viz import save_graph

    out = _output_file(args.out, GRAPH_SUFFIXES)
    if args.weights:
        weights, config_path, config, checked = _trained_model(args.weights, "graph")
        dataset = config.get("dataset")
        if not _one_of(dataset, DATASETS):
            raise CommandError(f"{config_path}: 'dataset' must be one of {', '.join(DATASETS)}, got {dataset!r:.80}")
        model = models.build_model(checked)
        try:
            model.load_state_dict(load(weights))
        except (ValueError, FileNotFoundError) as error:
            raise CommandError(f"--weights {weights}: {error}") from None
    else:
        checked = {"model": "tutorial", "features": 64, "hidden": [args.hidden], "classes": 10, "dtype": "float64"}
        dataset = "digits"
        model = models.build_model(checked)
    recipe = models.RECIPES[checked["model"]]
    _, (x_test, y_test) = _load_dataset(dataset, args.data_root)
    if x_test.shape[1] != checked["features"]:
        raise CommandError(
            f"the model takes {checked['features']} features, but {dataset}'s samples have {x_test.shape[1]}"
        )
    if y_test[0] >= checked["classes"]:
        raise CommandError(f"the model has {checked['classes']} classes, but {dataset}'s first label is {y_test[0]}")
    # The first test sample, prepared and typed as the model was trained on it.
    sample = recipe.prepare_inputs(x_test[:1].astype(checked["dtype"]))
    nn.init.manual_seed(0)  # a training step's graph: the same dropout masks every time it is drawn
    loss = recipe.loss(model(Tensor(sample)), y_test[:1])
    loss.backward()
    try:
        drawn = save_graph(loss, out, model=model, max_depth=args.max_depth)
    except (RuntimeError, ValueError) as error:  # Graphviz missing, or a format this version cannot write
        raise CommandError(str(error)) from None
    print(f"wrote {drawn} ({checked['model']}, {checked['classes']} classes, {checked['features']} inputs; "
          f"the first {dataset} test sample, class {y_test[0]})")  # fmt: skip


EXPORT_FORMATS = {"onnx": ".onnx", "safetensors": ".safetensors"}


def _trained_model(weights_option: str, command: str) -> tuple[Path, Path, dict[str, Any], dict[str, Any]]:
    """What train wrote: (model.npz, config.json, the config, the checked settings), from its folder or model.npz.

    `command` (graph, export) is named when config.json is missing or is not a file.
    """
    given = Path(weights_option)
    weights = given / "model.npz" if given.is_dir() else given
    if not weights.is_file():
        raise CommandError(
            f"--weights {given}: no such file or folder (give the folder train wrote, with model.npz and "
            "config.json in it, or its model.npz)"
        )
    config_path = _config_beside(weights, command)
    config = _read_config(config_path)
    try:
        checked = models.check_config(config)
    except ValueError as error:
        raise CommandError(f"{config_path}: {error}") from None
    return weights, config_path, config, checked


def command_export(args: argparse.Namespace) -> None:
    """Write a model that train saved as ONNX (for ONNX Runtime, Netron) or safetensors (for PyTorch)."""
    chosen = args.format or next((f for f, suffix in EXPORT_FORMATS.items() if args.out.endswith(suffix)), None)
    if chosen is None:
        raise CommandError(
            f"--out {args.out}: give --format onnx or safetensors, or end --out in .onnx or .safetensors"
        )
    out = _output_file(args.out, (EXPORT_FORMATS[chosen],))
    weights, _, config, checked = _trained_model(args.weights, "export")
    try:
        state = load(weights)
    except (ValueError, FileNotFoundError) as error:
        raise CommandError(f"--weights {weights}: {error}") from None
    if chosen == "safetensors":
        from . import __version__

        metadata = {"producer": f"tinygrad_nn {__version__}", "config": json.dumps(config, sort_keys=True)}
        try:
            save(state, out, metadata=metadata)
        except ImportError as error:
            raise CommandError(str(error)) from None
        print(f"wrote {out} ({len(state)} tensors; the training settings are in its metadata, under 'config')")
        return
    from . import onnx

    model = models.build_model(checked)
    try:
        model.load_state_dict(state)
    except (TypeError, ValueError) as error:
        raise CommandError(f"--weights {weights}: {error}") from None
    model.eval()
    example = np.zeros((1, checked["features"]), dtype=checked["dtype"])
    try:
        onnx.export(model, example, out, input_names=["input"], output_names=["scores"])
    except ImportError as error:
        raise CommandError(str(error)) from None
    except onnx.ExportError as error:
        raise CommandError(f"cannot export this model to ONNX: {error}") from None
    print(f"wrote {out} ({checked['model']}: input (batch, {checked['features']}) {checked['dtype']}, prepared as "
          f"the recipe prepares it; output (batch, {checked['classes']}) scores)")  # fmt: skip


# --------------------------------------------------------------------------------------------------------------
# Argument parsing
# --------------------------------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse, with a mistake reported on one line (and exit status 2) instead of the usage text."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _path(text: str) -> str:
    """An argparse type for file and folder names: the operating system takes any but an empty one or NUL."""
    if not text or "\x00" in text:
        raise argparse.ArgumentTypeError(f"expected a file or folder name, got {text!r:.60}")
    return text


def _config_beside(weights: Path, command: str) -> Path:
    """The config.json beside `weights`, or a CommandError saying it is missing or is not a regular file."""
    config_path = weights.with_name("config.json")
    if config_path.is_file():
        return config_path
    if config_path.exists() or config_path.is_symlink():
        kind = "a folder" if config_path.is_dir() else "not a regular file"
        raise CommandError(f"{config_path} is {kind}: {command} needs the config.json file that train writes there")
    raise CommandError(f"{config_path} is missing: {command} needs the config.json that train writes beside {weights}")


def _hidden_sizes(text: str) -> list[int]:
    parts = text.split(",")
    if any(not part.strip() for part in parts):  # "8,,8", ",8", "8,": a size is missing, not silently dropped
        raise argparse.ArgumentTypeError(f"--hidden takes sizes separated by commas (512,256), got {text!r}")
    try:
        sizes = [int(part) for part in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--hidden takes sizes separated by commas (512,256), got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"--hidden sizes must be positive whole numbers, got {text!r}")
    if max(sizes) > MAX_HIDDEN_SIZE or len(sizes) > MAX_HIDDEN_LAYERS:
        raise argparse.ArgumentTypeError(
            f"--hidden takes at most {MAX_HIDDEN_LAYERS} layers of at most {MAX_HIDDEN_SIZE:,} units, got {text!r:.60}"
        )
    return sizes


def _number(kind: type, minimum: float, inclusive: bool, maximum: float | None = None) -> Callable[[str], Any]:
    """An argparse type: a finite number of `kind` above `minimum` (or at least it, when `inclusive`)."""
    wanted = f"{'a non-negative' if inclusive else 'a positive'} {'whole number' if kind is int else 'number'}"
    if maximum is not None:
        wanted += f" up to {maximum:,}"

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r:.60}") from None
        if not math.isfinite(value) or value < minimum or (value == minimum and not inclusive):
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r:.60}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r:.60}")
        return value

    return parse


def _positive(kind: type, maximum: float | None = None) -> Callable[[str], Any]:
    return _number(kind, 0, inclusive=False, maximum=maximum)


def _non_negative(kind: type, maximum: float | None = None) -> Callable[[str], Any]:
    return _number(kind, 0, inclusive=True, maximum=maximum)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``tinygrad-nn``."""
    from . import __version__

    parser = _Parser(prog="tinygrad-nn", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"tinygrad-nn {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", help="train, draw and check the tutorial network on 8x8 digits (< 1 min)")
    demo.add_argument("--out", type=_path, default="out/demo", help="output folder (default: out/demo)")
    demo.add_argument("--epochs", type=_positive(int, 10_000), default=10, help="epochs (default: 10)")
    demo.add_argument("--hidden", type=_positive(int, 100_000), default=32, help="hidden units (default: 32)")
    demo.add_argument("--lr", type=_positive(float), default=0.1, help="learning rate (default: 0.1)")
    demo.add_argument(
        "--seed", type=_non_negative(int), default=0, help="seed for the split, weights and order (default: 0)"
    )
    demo.set_defaults(run=command_demo)

    tutorials = commands.add_parser("tutorials", help="run every tutorial network: published numbers beside ours")
    tutorials.add_argument(
        "--out", type=_path, default="out/tutorials", help="folder for the pictures (default: out/tutorials)"
    )
    tutorials.add_argument(
        "--samples",
        type=_positive(int, 60_000),
        default=None,
        help="train tutorial 001 on this many Fashion-MNIST images (default: all 60,000)",
    )
    tutorials.set_defaults(run=command_tutorials)

    train = commands.add_parser("train", help="train a model on a data set, with a checkpoint every epoch")
    train.add_argument("--dataset", choices=tuple(DATASETS), default=None, help="default: digits (no download)")
    train.add_argument(
        "--model",
        choices=tuple(models.RECIPES),
        default=None,
        help="tutorial 001's network, an MLP (default), or a CNN",
    )
    train.add_argument(
        "--hidden",
        type=_hidden_sizes,
        default=None,
        help="hidden sizes, e.g. 512,256 (default: 200 for tutorial, 512,256 for mlp, and 128 for cnn: the sizes "
        "of its fully connected layers after the convolutions)",
    )
    train.add_argument(
        "--epochs", type=_positive(int, 100_000), default=None, help="default: 1 for tutorial, 20 for mlp, 8 for cnn"
    )
    train.add_argument(
        "--batch-size",
        dest="batch_size",
        type=_positive(int, 10_000_000),
        default=None,
        help="default: 1 for tutorial (one image at a time), 64 for mlp and cnn",
    )
    train.add_argument(
        "--optimizer", choices=tuple(OPTIMIZERS), default=None, help="default: sgd for tutorial, adam for mlp and cnn"
    )
    train.add_argument(
        "--lr",
        type=_positive(float),
        default=None,
        help="default: 0.1 for sgd, 0.001 for adam and adamw, 0.01 for rmsprop and adagrad",
    )
    train.add_argument("--momentum", type=_non_negative(float), default=None, help="SGD's or RMSprop's (default: 0)")
    train.add_argument(
        "--schedule",
        choices=("cosine", "onecycle", "none"),
        default=None,
        help="learning rate: cosine annealing over the epochs (default for mlp and cnn), one cycle with --lr as its "
        "peak, or constant (default for tutorial)",
    )
    train.add_argument(
        "--seed",
        type=_non_negative(int),
        default=None,
        help="seed for the weights, the order and dropout's masks (default: 0)",
    )
    train.add_argument("--dtype", choices=("float32", "float64"), default=None, help="default: float32")
    train.add_argument(
        "--no-shuffle",
        action="store_const",
        const=True,
        default=None,
        help="keep the data set's order (as the tutorials do)",
    )
    train.add_argument(
        "--data-root", type=_path, default=None, help="folder holding the IDX files (default: search, then download)"
    )
    train.add_argument("--out", type=_path, default="out/train", help="output folder (default: out/train)")
    train.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its last checkpoint, with its settings",
    )
    train.add_argument(
        "--threads",
        type=_non_negative(int, MAX_THREADS),
        default=None,
        help="threads for numpy's matrix products (BLAS) while training, 0 for numpy's own number (default: 1 for "
        "cnn, whose products are too small to gain from more; 0 for the others)",
    )
    train.add_argument(
        "--monitor",
        nargs="?",
        const=1,
        default=None,
        type=_positive(int, MAX_MONITOR_EVERY),
        metavar="EVERY",
        help="watch the gradients every step (or every EVERY steps): write gradient_flow.png, "
        "gradient_history.png and gradient_histograms.png, and print the findings",
    )
    train.set_defaults(run=command_train)

    graph = commands.add_parser("graph", help="draw the demo model, or a model saved by train, on a real sample")
    graph.add_argument(
        "--weights",
        "--model",
        dest="weights",
        type=_path,
        default=None,
        help="a model saved by train: the folder it wrote (model.npz and config.json), or its model.npz",
    )
    graph.add_argument(
        "--hidden", type=_positive(int, 100_000), default=32, help="hidden units of the demo model (default: 32)"
    )
    graph.add_argument(
        "--max-depth", dest="max_depth", type=_non_negative(int), default=None, help="collapse modules deeper than this"
    )
    graph.add_argument(
        "--data-root",
        type=_path,
        default=None,
        help="folder holding the IDX files, for a model trained on (Fashion-)MNIST",
    )
    graph.add_argument(
        "--out",
        type=_path,
        default="out/graph.svg",
        help="the picture: .svg, .png, .pdf, .dot or .html (default: out/graph.svg)",
    )
    graph.set_defaults(run=command_graph)

    export = commands.add_parser("export", help="write a model saved by train as ONNX or safetensors")
    export.add_argument(
        "--weights", type=_path, required=True, help="the folder train wrote (model.npz and config.json), or model.npz"
    )
    export.add_argument(
        "--format", choices=tuple(EXPORT_FORMATS), default=None, help="onnx or safetensors (default: from --out)"
    )
    export.add_argument("--out", type=_path, required=True, help="the file to write: .onnx or .safetensors")
    export.set_defaults(run=command_export)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0; 2 for a problem the user can fix; 130 for Ctrl-C)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    name = f"tinygrad-nn {args.command}"
    try:
        args.run(args)
    except CommandError as error:
        print(f"{name}: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as interruption:  # Ctrl-C; fit's says where its last checkpoint is
        print(f"{name}: {str(interruption) or 'interrupted'}", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (| head): nothing left to say
        sys.stderr.close()
        return 1
    except OSError as error:  # the disk filled up, a file vanished: say which, without a traceback
        where = f" ({error.filename})" if error.filename else ""
        print(f"{name}: {error.strerror or error}{where}", file=sys.stderr)
        return 1
    except MemoryError:
        print(f"{name}: out of memory; try a smaller --hidden or --batch-size", file=sys.stderr)
        return 1
    except Exception as error:  # a bug: one line, and the way to the traceback
        if os.environ.get("TINYGRAD_NN_DEBUG"):
            raise
        print(
            f"{name}: unexpected {type(error).__name__}: {error} (a bug; set TINYGRAD_NN_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return 1
    return 0
