"""The command line, ``tinygrad-nn`` (or ``python -m tinygrad_nn``): demo, tutorials, train and graph.

- ``demo``: builds the tutorial network module by module, trains it on scikit-learn's 8x8 digits, prints the
  test accuracy, writes the loss curve and the computation graph, and checks the model's gradients.
- ``tutorials``: runs every tutorial network in ``examples/`` and prints what it published beside what we get.
- ``train``: trains the tutorial network or an MLP on digits, Fashion-MNIST or MNIST; saves weights and plots.
- ``graph``: draws the demo model (or a model saved by ``train``) to SVG or PNG.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import data, nn, optim
from .autograd import no_grad
from .dtypes import DTypeLike
from .gradcheck import gradcheck_report
from .nn import functional as F  # noqa: N812
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
# Models
# --------------------------------------------------------------------------------------------------------------


def tutorial_network(in_features: int, hidden: int, out_features: int, dtype: DTypeLike, seed: int) -> nn.Sequential:
    """Tutorial 001's network: Linear (no bias), Sigmoid, Linear (no bias), Sigmoid; weights uniform in +-0.5."""
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


def mlp(in_features: int, hidden: Sequence[int], out_features: int, dtype: DTypeLike, seed: int) -> nn.Sequential:
    """Linear and ReLU layers of the given hidden sizes, then a Linear to the class scores (logits)."""
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


def tutorial_loss(outputs: Tensor, labels: np.ndarray) -> Tensor:
    """The tutorials' loss: half the summed squared error against targets 0.01 and 0.99, per sample."""
    targets = np.full(outputs.shape, 0.01, dtype=outputs.dtype)
    targets[np.arange(len(labels)), labels] = 0.99
    return 0.5 * F.mse_loss(outputs, targets, reduction="sum") / len(labels)


def tutorial_inputs(x: np.ndarray) -> np.ndarray:
    """The tutorials' input scaling: [0, 1] to 0.01..1.0."""
    return x * 0.99 + 0.01


# --------------------------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------------------------


def accuracy(model: nn.Module, x: np.ndarray, labels: np.ndarray, batch_size: int = 2000) -> float:
    """The fraction of samples whose highest score is their label."""
    correct = 0
    with no_grad():
        for start in range(0, len(x), batch_size):
            scores = model(Tensor(x[start : start + batch_size])).data
            correct += int(np.sum(scores.argmax(axis=1) == labels[start : start + batch_size]))
    return correct / len(x)


def train_epochs(
    model: nn.Module,
    loss_fn: Callable[[Tensor, np.ndarray], Tensor],
    optimizer: optim.Optimizer,
    train_set: tuple[np.ndarray, np.ndarray],
    test_set: tuple[np.ndarray, np.ndarray],
    epochs: int,
    batch_size: int,
    seed: int,
    shuffle: bool = True,
    progress: bool = True,
    scheduler: optim.LRScheduler | None = None,
) -> dict[str, list[float]]:
    """Train for `epochs`, with a progress bar; returns the loss curve and each epoch's test accuracy.

    A `scheduler` steps once per epoch, after the epoch's test.
    """
    tqdm = _need("tqdm").tqdm
    loader = data.DataLoader(*train_set, batch_size=batch_size, shuffle=shuffle, seed=seed)
    history: dict[str, list[float]] = {"step": [], "loss": [], "epoch_loss": [], "test_accuracy": []}
    report_every = max(1, len(loader) // 25)
    step = 0
    for epoch in range(1, epochs + 1):
        model.train()
        losses = []
        # mininterval keeps a log (not a terminal) from filling with a line per refresh.
        bar = tqdm(
            loader, desc=f"epoch {epoch}/{epochs}", unit="batch", leave=True, disable=not progress, mininterval=1
        )
        for x_batch, y_batch in bar:
            loss = loss_fn(model(x_batch), y_batch.data)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            step += 1
            if step % report_every == 0:
                recent = float(np.mean(losses[-report_every:]))
                history["step"].append(step)
                history["loss"].append(recent)
                bar.set_postfix(loss=f"{recent:.4f}", refresh=False)
        model.eval()
        if scheduler is not None:
            scheduler.step()
        history["epoch_loss"].append(float(np.mean(losses)))
        history["test_accuracy"].append(accuracy(model, *test_set))
        loss, test_accuracy = history["epoch_loss"][-1], history["test_accuracy"][-1]
        print(f"epoch {epoch}: mean loss {loss:.4f}, test accuracy {test_accuracy:.4f}")
    return history


def save_curves(history: dict[str, list[float]], out_dir: Path, title: str) -> list[Path]:
    """Write the loss curve (and the test accuracy per epoch, when there are several) as PNGs."""
    matplotlib = _need("matplotlib")
    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    def plot(path: Path, x: Any, y: Any, labels: dict[str, str], **style: Any) -> Path:
        figure, axes = plt.subplots(figsize=(6, 4))
        axes.plot(x, y, **style)
        axes.set(**labels)
        axes.grid(True, alpha=0.3)
        figure.tight_layout()
        figure.savefig(path, dpi=100)
        plt.close(figure)
        return path

    loss_labels = {"title": f"{title}: training loss", "xlabel": "step", "ylabel": "loss (recent mean)"}
    paths = [plot(out_dir / "loss_curve.png", history["step"], history["loss"], loss_labels, color="#1f77b4")]
    accuracies = history["test_accuracy"]
    if len(accuracies) > 1:
        labels = {"title": f"{title}: test accuracy", "xlabel": "epoch", "ylabel": "accuracy"}
        epochs = range(1, len(accuracies) + 1)
        paths.append(plot(out_dir / "test_accuracy.png", epochs, accuracies, labels, marker="o", color="#2ca02c"))
    return paths


def _draw(loss: Tensor, model: nn.Module, path: Path) -> str:
    """Draw the graph to `path`; without Graphviz's dot, write the DOT text instead and say so."""
    from .viz import save_graph

    try:
        return str(save_graph(loss, path, model=model))
    except RuntimeError as error:  # dot is missing: the DOT source still says everything
        source = save_graph(loss, path.with_suffix(".dot"), model=model)
        return f"{source} (could not render SVG: {error})"


# --------------------------------------------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------------------------------------------


def _output_folder(path: str | Path) -> Path:
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise CommandError(f"--out {folder} is a file; give a folder for the outputs")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CommandError(f"--out {folder}: cannot create the folder ({error.strerror or error})") from None
    return folder


def command_demo(args: argparse.Namespace) -> None:
    """Build, train, draw and check the tutorial network on the 8x8 digits."""
    start = time.perf_counter()
    out_dir = _output_folder(args.out)
    print("tinygrad_nn demo: the tutorials' network, built from modules and trained on 8x8 handwritten digits\n")
    (x_train, y_train), (x_test, y_test) = data.load_digits(seed=args.seed)
    x_train, x_test = tutorial_inputs(x_train.astype(np.float64)), tutorial_inputs(x_test.astype(np.float64))
    print(f"data: {len(x_train)} training and {len(x_test)} test images of 8x8 = 64 pixels, 10 classes")

    print("\n1. The network, module by module (tutorial 001's: two Linear layers without bias, sigmoids)")
    model = tutorial_network(64, args.hidden, 10, np.float64, args.seed)
    print(f"   model = nn.Sequential(nn.Linear(64, {args.hidden}, bias=False), nn.Sigmoid(),")
    print(f"                         nn.Linear({args.hidden}, 10, bias=False), nn.Sigmoid())")
    print("   " + repr(model).replace("\n", "\n   "))
    parameters = sum(p.size for p in model.parameters())
    print(f"   {parameters} parameters: " + ", ".join(f"{n} {tuple(p.shape)}" for n, p in model.named_parameters()))

    print(f"\n2. Training: loss 0.5 * sum((target - output)^2), optim.SGD(lr={args.lr}), one image at a time")
    print(f"   test accuracy before training: {accuracy(model, x_test, y_test):.4f}")
    optimizer = optim.SGD(model.parameters(), lr=args.lr)
    history = train_epochs(
        model,
        tutorial_loss,
        optimizer,
        (x_train, y_train),
        (x_test, y_test),
        epochs=args.epochs,
        batch_size=1,
        seed=args.seed,
    )
    final_accuracy = history["test_accuracy"][-1]

    print("\n3. Pictures")
    for path in save_curves(history, out_dir, "Tutorial network on digits"):
        print(f"   {path}")
    sample = Tensor(x_test[:1])
    loss = tutorial_loss(model(sample), y_test[:1])
    loss.backward()
    print(f"   {_draw(loss, model, out_dir / 'graph.svg')}   (one test image's graph, with gradient norms)")
    model.zero_grad()

    print("\n4. Gradient check: every parameter's backward against central differences (float64)")
    probe = Tensor(x_test[:3], requires_grad=True)
    report = gradcheck_report(lambda x: tutorial_loss(model(x), y_test[:3]), [probe])
    model_report = gradcheck_report(model, [probe])
    for line in str(model_report).splitlines():
        print(f"   {line}")
    verdict = "PASSED" if report.ok and model_report.ok else "FAILED"
    print(f"   verdict: {verdict} (loss and model outputs, w.r.t. the input and every parameter)")

    print(f"\nTest accuracy {final_accuracy:.4f} after {args.epochs} epochs; outputs in {out_dir.resolve()}")
    print(f"Done in {time.perf_counter() - start:.1f} s.")
    if verdict != "PASSED":
        raise CommandError("the gradient check failed (see the table above)")


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
    header = ("tutorial", "quantity", "published", "ours")
    widths = [max(len(header[i]), *(len(row[i]) for row in rows)) for i in range(4)]
    print()
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)))


def _load_dataset(name: str, root: str | None) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    if name == "digits":
        return data.load_digits()
    loader = data.load_fashion_mnist if name == "fashion-mnist" else data.load_mnist
    try:
        return loader(root=root)
    except data.DataError as error:
        # The message speaks of root=; on the command line that is --data-root.
        raise CommandError(str(error).replace("pass root= a folder", "pass --data-root a folder")) from None


def command_train(args: argparse.Namespace) -> None:
    """Train the tutorial network or an MLP on a data set; save weights, curves and the configuration."""
    start = time.perf_counter()
    out_dir = _output_folder(args.out)
    dtype = np.dtype(args.dtype)
    (x_train, y_train), (x_test, y_test) = _load_dataset(args.dataset, args.data_root)
    x_train, x_test = x_train.astype(dtype), x_test.astype(dtype)
    features, classes = x_train.shape[1], int(max(y_train.max(), y_test.max())) + 1
    if args.model == "tutorial":
        if len(args.hidden) != 1:
            raise CommandError(
                f"the tutorial network has one hidden layer, so --hidden takes one size, got {args.hidden}"
            )
        x_train, x_test = tutorial_inputs(x_train), tutorial_inputs(x_test)
        model = tutorial_network(features, args.hidden[0], classes, dtype, args.seed)
        loss_fn = tutorial_loss
        defaults = {"lr": 0.1, "batch_size": 1, "epochs": 1, "optimizer": "sgd"}
    else:
        model = mlp(features, args.hidden, classes, dtype, args.seed)
        loss_fn = F.cross_entropy
        defaults = {"lr": 1e-3, "batch_size": 64, "epochs": 20, "optimizer": "adam"}
    defaults["schedule"] = "none" if args.model == "tutorial" else "cosine"
    settings = {key: defaults[key] if getattr(args, key) is None else getattr(args, key) for key in defaults}
    if args.momentum is not None and settings["optimizer"] != "sgd":
        raise CommandError(f"--momentum applies to --optimizer sgd, but this run uses {settings['optimizer']}")
    settings["momentum"] = args.momentum or 0.0
    if settings["optimizer"] == "adam":
        optimizer = optim.Adam(model.parameters(), lr=settings["lr"])
    else:
        optimizer = optim.SGD(model.parameters(), lr=settings["lr"], momentum=settings["momentum"])
    sizes = f"{len(x_train)} training and {len(x_test)} test samples"
    print(f"{args.dataset}: {sizes}, {features} features, {classes} classes")
    print(repr(model))
    momentum = f" momentum={settings['momentum']}" if settings["optimizer"] == "sgd" else ""
    scheduler = None
    if settings["schedule"] == "cosine":
        scheduler = optim.CosineAnnealingLR(optimizer, T_max=settings["epochs"])
    schedule = "cosine-annealed" if settings["schedule"] == "cosine" else "constant"
    epochs = f"{settings['epochs']} epoch{'s' if settings['epochs'] > 1 else ''}"
    print(
        f"{settings['optimizer']}, {schedule} lr={settings['lr']}{momentum}, "
        f"batch size {settings['batch_size']}, {epochs}, {dtype}"
    )
    train_start = time.perf_counter()
    history = train_epochs(
        model,
        loss_fn,
        optimizer,
        (x_train, y_train),
        (x_test, y_test),
        settings["epochs"],
        settings["batch_size"],
        seed=args.seed,
        shuffle=not args.no_shuffle,
        scheduler=scheduler,
    )
    train_seconds = time.perf_counter() - train_start
    save(model.state_dict(), out_dir / "model.npz")
    config = {
        "model": args.model,
        "hidden": list(args.hidden),
        "features": features,
        "classes": classes,
        "dataset": args.dataset,
        "dtype": str(dtype),
        **settings,
        "seed": args.seed,
        "test_accuracy": history["test_accuracy"],
        "train_seconds": train_seconds,
    }
    (out_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    paths = save_curves(history, out_dir, f"{args.model} on {args.dataset}")
    print(
        f"test accuracy {history['test_accuracy'][-1]:.4f}; training took {train_seconds:.1f} s "
        f"(all in {time.perf_counter() - start:.1f} s)"
    )
    print("wrote " + ", ".join(str(p) for p in [out_dir / "model.npz", out_dir / "config.json", *paths]))


def command_graph(args: argparse.Namespace) -> None:
    """Draw the demo model, or a model saved by `train`, with one sample's gradients."""
    from .viz import save_graph

    out = Path(args.out)
    if out.suffix not in (".svg", ".png", ".pdf", ".dot", ".gv"):
        raise CommandError(f"--out {out}: give a file ending in .svg, .png, .pdf or .dot")
    if args.weights:
        weights = Path(args.weights)
        if not weights.is_file():
            raise CommandError(f"--weights {weights}: no such file (train writes model.npz into its --out folder)")
        config_path = weights.with_name("config.json")
        if not config_path.is_file():
            raise CommandError(
                f"{config_path} is missing: graph needs the config.json that train writes beside {weights}"
            )
        config = json.loads(config_path.read_text())
        build = tutorial_network if config["model"] == "tutorial" else mlp
        hidden = config["hidden"][0] if config["model"] == "tutorial" else config["hidden"]
        model = build(config["features"], hidden, config["classes"], np.dtype(config["dtype"]), 0)
        try:
            model.load_state_dict(load(weights))
        except (ValueError, FileNotFoundError) as error:
            raise CommandError(str(error)) from None
        features, classes, kind = config["features"], config["classes"], config["model"]
    else:
        model = tutorial_network(64, args.hidden, 10, np.float64, 0)
        features, classes, kind = 64, 10, "tutorial"
    sample = Tensor(np.random.default_rng(0).random((1, features)))
    label = np.array([0])
    loss = tutorial_loss(model(sample), label) if kind == "tutorial" else F.cross_entropy(model(sample), label)
    loss.backward()
    _output_folder(out.parent)
    print(f"wrote {_draw_to(save_graph, loss, model, out, args.max_depth)} ({classes} classes, {features} inputs)")


def _draw_to(save_graph: Callable[..., Any], loss: Tensor, model: nn.Module, out: Path, max_depth: int | None) -> Path:
    try:
        return save_graph(loss, out, model=model, max_depth=max_depth)
    except RuntimeError as error:
        raise CommandError(str(error)) from None


# --------------------------------------------------------------------------------------------------------------
# Argument parsing
# --------------------------------------------------------------------------------------------------------------


def _hidden_sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--hidden takes sizes separated by commas (512,256), got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"--hidden sizes must be positive whole numbers, got {text!r}")
    return sizes


def _number(kind: type, minimum: float, inclusive: bool) -> Callable[[str], Any]:
    """An argparse type: a finite number of `kind` above `minimum` (or at least it, when `inclusive`)."""
    wanted = f"{'a non-negative' if inclusive else 'a positive'} {'whole number' if kind is int else 'number'}"

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}") from None
        if not math.isfinite(value) or value < minimum or (value == minimum and not inclusive):
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}")
        return value

    return parse


def _positive(kind: type) -> Callable[[str], Any]:
    return _number(kind, 0, inclusive=False)


def _non_negative(kind: type) -> Callable[[str], Any]:
    return _number(kind, 0, inclusive=True)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``tinygrad-nn``."""
    parser = argparse.ArgumentParser(prog="tinygrad-nn", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", help="train, draw and check the tutorial network on 8x8 digits (< 1 min)")
    demo.add_argument("--out", default="out/demo", help="output folder (default: out/demo)")
    demo.add_argument("--epochs", type=_positive(int), default=10, help="epochs (default: 10)")
    demo.add_argument("--hidden", type=_positive(int), default=32, help="hidden units (default: 32)")
    demo.add_argument("--lr", type=_positive(float), default=0.1, help="learning rate (default: 0.1)")
    demo.add_argument("--seed", type=int, default=0, help="seed for the split, weights and order (default: 0)")
    demo.set_defaults(run=command_demo)

    tutorials = commands.add_parser("tutorials", help="run every tutorial network: published numbers beside ours")
    tutorials.add_argument("--out", default="out/tutorials", help="folder for the pictures (default: out/tutorials)")
    tutorials.add_argument(
        "--samples",
        type=_positive(int),
        default=None,
        help="train tutorial 001 on this many Fashion-MNIST images (default: all 60,000)",
    )
    tutorials.set_defaults(run=command_tutorials)

    train = commands.add_parser("train", help="train the tutorial network or an MLP on a data set")
    train.add_argument(
        "--dataset",
        choices=("digits", "fashion-mnist", "mnist"),
        default="digits",
        help="default: digits (no download)",
    )
    train.add_argument(
        "--model", choices=("tutorial", "mlp"), default="mlp", help="tutorial 001's network, or an MLP (default)"
    )
    train.add_argument(
        "--hidden",
        type=_hidden_sizes,
        default=None,
        help="hidden sizes, e.g. 512,256 (default: 200 for tutorial, 512,256 for mlp)",
    )
    train.add_argument("--epochs", type=_positive(int), default=None, help="default: 1 for tutorial, 20 for mlp")
    train.add_argument(
        "--batch-size",
        dest="batch_size",
        type=_positive(int),
        default=None,
        help="default: 1 for tutorial (one image at a time), 64 for mlp",
    )
    train.add_argument(
        "--optimizer", choices=("sgd", "adam"), default=None, help="default: sgd for tutorial, adam for mlp"
    )
    train.add_argument("--lr", type=_positive(float), default=None, help="default: 0.1 for sgd, 0.001 for adam")
    train.add_argument("--momentum", type=_non_negative(float), default=None, help="SGD momentum (default: 0)")
    train.add_argument(
        "--schedule",
        choices=("cosine", "none"),
        default=None,
        help="learning rate: cosine annealing over the epochs (default for mlp) or constant (default for tutorial)",
    )
    train.add_argument("--seed", type=int, default=0, help="seed for the weights and the order (default: 0)")
    train.add_argument("--dtype", choices=("float32", "float64"), default="float32", help="default: float32")
    train.add_argument("--no-shuffle", action="store_true", help="keep the data set's order (as the tutorials do)")
    train.add_argument(
        "--data-root", default=None, help="folder holding the IDX files (default: search, then download)"
    )
    train.add_argument("--out", default="out/train", help="output folder (default: out/train)")
    train.set_defaults(run=command_train)

    graph = commands.add_parser("graph", help="draw the demo model, or a model saved by train, to SVG or PNG")
    graph.add_argument("--weights", default=None, help="a model.npz written by train (its config.json beside it)")
    graph.add_argument("--hidden", type=_positive(int), default=32, help="hidden units of the demo model (default: 32)")
    graph.add_argument(
        "--max-depth", dest="max_depth", type=_non_negative(int), default=None, help="collapse modules deeper than this"
    )
    graph.add_argument(
        "--out", default="out/graph.svg", help="the picture: .svg, .png, .pdf or .dot (default: out/graph.svg)"
    )
    graph.set_defaults(run=command_graph)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0, or 2 for a problem the user can fix)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "hidden", 0) is None:
        args.hidden = [200] if args.model == "tutorial" else [512, 256]
    try:
        args.run(args)
    except CommandError as error:
        print(f"tinygrad-nn {args.command}: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0
