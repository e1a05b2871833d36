"""What the tutorial examples share: the results table and where pictures go."""

from __future__ import annotations

import argparse
from pathlib import Path

Row = tuple[str, str, str]  # (quantity, published, ours)


def print_table(title: str, rows: list[Row]) -> None:
    """Print rows of (quantity, published, ours) under a title, in aligned columns."""
    header = ("quantity", "published", "ours")
    widths = [max(len(header[i]), *(len(row[i]) for row in rows)) for i in range(3)]
    print(title)
    print("  " + "  ".join(h.ljust(w) for h, w in zip(header, widths)))
    print("  " + "  ".join("-" * w for w in widths))
    for row in rows:
        print("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)))


def output_folder(description: str) -> Path:
    """Parse --out (default out/tutorials) and return the folder, created."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", type=Path, default=Path("out/tutorials"), help="folder for the pictures")
    folder = parser.parse_args().out
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    return plt


def save_line_plot(path: Path, x: list, y: list, title: str, xlabel: str, ylabel: str) -> Path:
    """Draw y against x as a line and save it as a PNG (matplotlib without a display)."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(6, 4))
    axes.plot(x, y, "b")
    axes.set(title=title, xlabel=xlabel, ylabel=ylabel)
    axes.grid(True, alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def save_histogram(path: Path, values, bounds: tuple[float, float], title: str, xlabel: str) -> Path:
    """Histogram of `values` with dashed lines at `bounds`, saved as a PNG."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(6, 4))
    axes.hist(values, bins=40, color="#4a74a8")
    for bound in bounds:
        axes.axvline(bound, color="#d62728", linestyle="--")
    axes.set(title=title, xlabel=xlabel, ylabel="count")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
