"""Train the default CNN on Fashion-MNIST, ours and PyTorch's same recipe, and draw the figures of docs/cnn.md.

The network and the recipe are the package's, `tinygrad_nn.models.cnn` and ``models.RECIPES["cnn"]``: what
``tinygrad-nn train --dataset fashion-mnist --model cnn`` trains too (over the package's DataLoader's batches
rather than the orders drawn here, which PyTorch's run shares).

What it writes into --out (docs/images by default):

- ``cnn-graph.svg`` and ``cnn-graph-max-depth.svg``: the CNN's graph for one batch, modules as clusters, and the
  same with ``max_depth=1`` (no training needed: ``--pictures-only`` draws just these);
- ``cnn-curves.svg``: the training loss and the test accuracy after each epoch, both frameworks;
- ``cnn-confusion.svg``: our confusion matrix on the 10,000 test images, with each class's accuracy;
- ``cnn-results.json``: every number the page quotes (accuracies, times, per-class accuracy, the machine).

It prints the Markdown tables of the page. Both frameworks start from the same weights and see the same batches
in the same order; PyTorch runs on one thread (its fastest setting on 2 cores) unless --torch-threads says
otherwise, and numpy's BLAS on as many as OPENBLAS_NUM_THREADS says (the page's numbers: one). ``--limit``
trains on fewer images (the test suite runs it that way, in seconds).

    OPENBLAS_NUM_THREADS=1 python scripts/cnn_results.py    # the full run behind docs/cnn.md (about 15 minutes)
    python scripts/cnn_results.py --pictures-only
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

import tinygrad_nn as tg
from tinygrad_nn import Tensor, models, optim
from tinygrad_nn.nn import functional as F  # noqa: N812

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from cnn_epoch import torch_cnn  # noqa: E402 - PyTorch's copy of the network lives beside its benchmark

# The network and its recipe are the package's: what `tinygrad-nn train --model cnn` trains.
RECIPE = models.RECIPES["cnn"].training

CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def pictures(out: Path) -> list[Path]:
    """The CNN's graph for a batch of 8 random images: every module a cluster, then collapsed to depth 1."""
    tg.manual_seed(0)
    model = models.cnn(dtype=np.float32, seed=0)
    images = Tensor(np.random.default_rng(0).random((8, 784), dtype=np.float32))
    loss = F.cross_entropy(model(images), np.arange(8))
    with tg.retain_grads():
        loss.backward()
    paths = []
    for name, depth in (("cnn-graph", None), ("cnn-graph-max-depth", 1)):
        graph = tg.viz.draw_graph(loss, model, max_depth=depth)
        paths.append(tg.viz.render_graph(graph, out / f"{name}.svg"))
    return paths


def batches(count: int, epochs: int, seed: int) -> list[np.ndarray]:
    """Each epoch's order of the training images (the same for both frameworks)."""
    rng = np.random.default_rng(seed)
    return [rng.permutation(count) for _ in range(epochs)]


def train_ours(x, y, x_test, y_test, orders, report_every: int) -> dict:
    """The recipe in tinygrad_nn: the loss every `report_every` steps, the test accuracy and time of each epoch."""
    tg.manual_seed(0)
    model = models.cnn(dtype=np.float32, seed=0)
    optimizer = optim.Adam(model.parameters(), lr=RECIPE["lr"])
    scheduler = optim.CosineAnnealingLR(optimizer, T_max=len(orders))
    history = {"loss": [], "step": [], "test_accuracy": [], "epoch_seconds": []}
    step, losses = 0, []
    for order in orders:
        model.train()
        start = time.perf_counter()
        for first in range(0, len(order), RECIPE["batch_size"]):
            rows = order[first : first + RECIPE["batch_size"]]
            loss = F.cross_entropy(model(x[rows]), y[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            step += 1
            if step % report_every == 0:
                history["step"].append(step)
                history["loss"].append(float(np.mean(losses[-report_every:])))
        history["epoch_seconds"].append(time.perf_counter() - start)
        scheduler.step()
        model.eval()
        with tg.no_grad():
            scores = np.concatenate([model(x_test[i : i + 1000]).data for i in range(0, len(x_test), 1000)])
        history["test_accuracy"].append(float(np.mean(scores.argmax(axis=1) == y_test)))
        print(f"tinygrad_nn epoch {len(history['test_accuracy'])}: {history['test_accuracy'][-1]:.4f}", flush=True)
    history["predictions"] = scores.argmax(axis=1)
    return history


def train_torch(torch, x, y, x_test, y_test, orders, report_every: int) -> dict:
    """The same recipe in PyTorch, from our initial weights, over the same batches."""
    model = torch_cnn(torch, models.cnn(dtype=np.float32, seed=0).state_dict())
    optimizer = torch.optim.Adam(model.parameters(), lr=RECIPE["lr"])
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=len(orders))
    images, labels, test_images = torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(x_test)
    history = {"loss": [], "step": [], "test_accuracy": [], "epoch_seconds": []}
    step, losses = 0, []
    torch.manual_seed(0)
    for order in orders:
        model.train()
        start = time.perf_counter()
        for first in range(0, len(order), RECIPE["batch_size"]):
            rows = torch.from_numpy(order[first : first + RECIPE["batch_size"]])
            loss = torch.nn.functional.cross_entropy(model(images[rows]), labels[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            step += 1
            if step % report_every == 0:
                history["step"].append(step)
                history["loss"].append(float(np.mean(losses[-report_every:])))
        history["epoch_seconds"].append(time.perf_counter() - start)
        scheduler.step()
        model.eval()
        with torch.no_grad():
            scores = torch.cat([model(test_images[i : i + 1000]) for i in range(0, len(x_test), 1000)]).numpy()
        history["test_accuracy"].append(float(np.mean(scores.argmax(axis=1) == y_test)))
        print(f"PyTorch epoch {len(history['test_accuracy'])}: {history['test_accuracy'][-1]:.4f}", flush=True)
    return history


def confusion(labels: np.ndarray, predictions: np.ndarray, classes: int = 10) -> np.ndarray:
    """Counts: row = true class, column = predicted class."""
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (labels, predictions), 1)
    return matrix


def _matplotlib() -> None:
    """Matplotlib without a display, writing SVG with stable ids (so that a new run changes only what changed)."""
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["svg.hashsalt"] = "tinygrad_nn"


def draw_curves(path: Path, ours: dict, theirs: dict | None, steps_per_epoch: int, test_images: int) -> Path:
    """Training loss (log scale) and test accuracy per epoch, both frameworks side by side."""
    _matplotlib()
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    for history, label, colour in ((ours, "tinygrad_nn", "#1f77b4"), (theirs, "PyTorch", "#ff7f0e")):
        if history is None:
            continue
        left.plot(np.array(history["step"]) / steps_per_epoch, history["loss"], label=label, color=colour, lw=1.2)
        epochs = np.arange(1, len(history["test_accuracy"]) + 1)
        right.plot(epochs, history["test_accuracy"], marker="o", label=label, color=colour)
    left.set(xlabel="epoch", ylabel="training loss (cross-entropy)", title="Training loss", yscale="log")
    right.axhline(0.92, color="#888888", lw=0.8, ls="--")
    right.set(xlabel="epoch", ylabel="test accuracy", title=f"Test accuracy ({test_images:,} images)")
    for axes in (left, right):
        axes.grid(alpha=0.3)
        axes.legend()
    figure.tight_layout()
    figure.savefig(path, metadata={"Date": None})
    plt.close(figure)
    return path


def draw_confusion(path: Path, matrix: np.ndarray) -> Path:
    """The confusion matrix, shaded by each row's share, with each class's accuracy in its label."""
    _matplotlib()
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7.2, 6.2))
    shares = matrix / matrix.sum(axis=1, keepdims=True)
    axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for row in range(len(matrix)):
        for column in range(len(matrix)):
            if matrix[row, column]:
                colour = "white" if shares[row, column] > 0.5 else "black"
                axes.text(column, row, matrix[row, column], ha="center", va="center", fontsize=7, color=colour)
    axes.set_xticks(range(len(CLASSES)), CLASSES, rotation=45, ha="right")
    axes.set_yticks(range(len(CLASSES)), [f"{name} ({shares[i, i]:.2f})" for i, name in enumerate(CLASSES)])
    title = f"Confusion matrix, {matrix.sum():,} test images"
    axes.set(xlabel="predicted class", ylabel="true class (its accuracy)", title=title)
    figure.tight_layout()
    figure.savefig(path, metadata={"Date": None})
    plt.close(figure)
    return path


def _threads(count: int | str) -> str:
    return f"{count} threads" if count == "default" or int(count) > 1 else "1 thread"


def tables(results: dict) -> str:
    """The page's two tables in Markdown: both frameworks' accuracy and time, and our accuracy per class."""
    ours, theirs = results["tinygrad_nn"], results.get("pytorch")
    lines = [
        "| | test accuracy | training time | time per epoch |",
        "|---|---:|---:|---:|",
        f"| tinygrad_nn, {_threads(results['blas_threads'])} | {ours['test_accuracy'][-1]:.4f} | "
        f"{sum(ours['epoch_seconds']):.0f} s | "
        f"{np.mean(ours['epoch_seconds']):.1f} s |",
    ]
    if theirs:
        lines.append(
            f"| PyTorch {results['torch_version']}, {_threads(results['torch_threads'])} | "
            f"{theirs['test_accuracy'][-1]:.4f} | {sum(theirs['epoch_seconds']):.0f} s | "
            f"{np.mean(theirs['epoch_seconds']):.1f} s |"
        )
    lines += ["", "| class | accuracy |", "|---|---:|"]
    lines += [f"| {name} | {accuracy:.3f} |" for name, accuracy in zip(CLASSES, results["class_accuracy"])]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    """Draw the pictures, train both, draw the curves and the confusion matrix, print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    parser.add_argument("--epochs", type=int, default=RECIPE["epochs"])
    parser.add_argument("--limit", type=int, default=None, help="train on the first LIMIT images only")
    parser.add_argument("--no-torch", action="store_true", help="train ours only")
    parser.add_argument("--torch-threads", type=int, default=1)
    parser.add_argument("--pictures-only", action="store_true")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    written = pictures(args.out)
    if args.pictures_only:
        print("wrote " + ", ".join(str(p) for p in written))
        return {}
    (x, y), (x_test, y_test) = tg.data.load_fashion_mnist()
    if args.limit:
        x, y, x_test, y_test = x[: args.limit], y[: args.limit], x_test[: args.limit], y_test[: args.limit]
    orders = batches(len(x), args.epochs, seed=0)
    steps_per_epoch = -(-len(x) // RECIPE["batch_size"])
    report_every = max(1, steps_per_epoch // 25)
    results: dict = {"recipe": RECIPE, "epochs": args.epochs, "images": len(x), "test_images": len(x_test)}
    results["machine"] = f"{platform.processor() or platform.machine()}, numpy {np.__version__}"
    # numpy's BLAS reads its thread count once, from the environment: OPENBLAS_NUM_THREADS=1 python scripts/...
    setting = os.environ.get("OPENBLAS_NUM_THREADS", "").strip()
    results["blas_threads"] = setting if setting.isdigit() and int(setting) > 0 else "default"
    torch = None
    if not args.no_torch:
        try:
            import torch
        except ImportError:
            print("PyTorch is not installed: training ours only")
    if torch is not None:
        torch.set_num_threads(args.torch_threads)
        results["torch_version"], results["torch_threads"] = torch.__version__.split("+")[0], args.torch_threads
        results["pytorch"] = train_torch(torch, x, y, x_test, y_test, orders, report_every)
    ours = train_ours(x, y, x_test, y_test, orders, report_every)
    matrix = confusion(y_test, ours.pop("predictions"))
    results["tinygrad_nn"] = ours
    results["confusion"] = matrix.tolist()
    results["class_accuracy"] = (np.diag(matrix) / matrix.sum(axis=1)).tolist()
    curves = draw_curves(args.out / "cnn-curves.svg", ours, results.get("pytorch"), steps_per_epoch, len(x_test))
    written.append(curves)
    written.append(draw_confusion(args.out / "cnn-confusion.svg", matrix))
    (args.out / "cnn-results.json").write_text(json.dumps(results, indent=1) + "\n")
    print(tables(results))
    print("wrote " + ", ".join(str(p) for p in [*written, args.out / "cnn-results.json"]))
    return results


if __name__ == "__main__":
    main()
