"""The look both pictures share: colours per kind of node, the gradient problems and their thresholds, the legend.

`dot` (the Graphviz picture) and `html` (the explorer) read everything visual from here, so a parameter is the
same amber, and a vanishing gradient the same dashed orange, in both; the legend of each lists the same entries
in the same words.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

FONT = "Helvetica,Arial,sans-serif"
# Text colours: the main line of a label, and the lines under it (shapes, notes). Dark enough to read in a PNG.
TEXT = "#1a1a1a"
SECONDARY_TEXT = "#3d3d3d"
EDGE = "#5c5c5c"
CLUSTER_BORDER = "#a8a8a8"
# Fills of nested module clusters, outermost first, repeating.
CLUSTER_FILLS = ("#f6f6f6", "#ececec", "#e2e2e2")

# Font sizes of the Graphviz picture, in points: titles, the lines under them, and the smallest notes.
FONT_SIZE = 14
SMALL_FONT_SIZE = 12
TINY_FONT_SIZE = 11


class Kind(NamedTuple):
    """How one kind of node looks: fill, border and the words of its legend entry."""

    fill: str
    border: str
    legend: str


KINDS: dict[str, Kind] = {
    "input": Kind("#dff2d8", "#4f9a45", "input"),
    "parameter": Kind("#fdebc8", "#c28a1e", "parameter"),
    "op": Kind("#dce8f7", "#4a74a8", "op"),
    "tensor": Kind("#ffffff", "#8c8c8c", "tensor"),
    "output": Kind("#ecdcf4", "#8a4fa8", "output"),
    "module": Kind("#e6e6e6", "#5f5f5f", "collapsed module"),
    "fold": Kind("#e4eef0", "#3f7f8c", "repeated blocks, folded"),
}


class Problem(NamedTuple):
    """How a gradient problem is marked: border colour, an extra border style ("" for none), legend words."""

    colour: str
    dash: str
    legend: str


# Mildest first: a box holding several problems shows the last of these it has.
PROBLEMS: dict[str, Problem] = {
    "vanishing": Problem("#e8710a", "dashed", "vanishing gradient"),
    # The next two come only from a GradientMonitor's verdicts over training (draw_graph(..., monitor=...)).
    "inactive": Problem("#9467bd", "dashed", "dead or saturated units"),
    "zero": Problem("#e8710a", "", "zero gradient"),
    "exploding": Problem("#d62728", "dashed", "exploding gradient"),
    "nonfinite": Problem("#d62728", "", "NaN / inf gradient"),
}

# A gradient whose norm is below this times the largest gradient norm in the graph is "vanishing".
VANISHING_RATIO = 1e-3
# Blocks repeated at least this many times in a row are folded into one box (fold_repeats=True).
FOLD_MIN_REPEATS = 3
# Tensors with at most this many elements can print all their values (show_data=True, the explorer's panel).
SMALL_TENSOR = 6
# Bars of the explorer's histograms.
HISTOGRAM_BINS = 16
# Statistics of a bigger array are taken over this many of its values, evenly spaced; an op's saved arrays bigger
# than this (a convolution's sliding windows, say, a view that a summary would copy) get their shape only.
STATISTICS_SAMPLE = 1_000_000


def worst_problem(problems: Any) -> str | None:
    """The most serious of some problem names (None entries ignored), or None."""
    order = list(PROBLEMS)
    found = [problem for problem in problems if problem]
    return max(found, key=order.index) if found else None


def legend_entries(kinds: set[str], problems: set[str]) -> list[dict[str, str]]:
    """The legend of a picture that shows these kinds of node and these problems, in a fixed order.

    Each entry is ``{"key", "text", "fill", "border", "dash"}``; a problem's fill is white, its border its colour.
    """
    entries = [
        {"key": key, "text": kind.legend, "fill": kind.fill, "border": kind.border, "dash": ""}
        for key, kind in KINDS.items()
        if key in kinds
    ]
    entries += [
        {"key": key, "text": problem.legend, "fill": "#ffffff", "border": problem.colour, "dash": problem.dash}
        for key, problem in PROBLEMS.items()
        if key in problems
    ]
    return entries


# --------------------------------------------------------------------------------------------------------------
# Text
# --------------------------------------------------------------------------------------------------------------


def shape_text(shape: tuple | None, dtype: Any) -> str:
    """``(5, 8) float64``, or ``scalar float32`` for a 0-d tensor."""
    if shape is None:
        return str(np.dtype(dtype)) if dtype is not None else "?"
    return f"{'scalar' if tuple(shape) == () else str(tuple(shape))} {np.dtype(dtype)}"


def number(value: float) -> str:
    """A number in 3 significant digits, as the pictures print norms: ``0.0657``, ``1.2e-09``, ``nan``."""
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value + 0.0:.3g}"  # + 0.0 turns -0.0 into 0.0


def values_text(array: Any) -> str:
    """A handful of values, micrograd-style: ``0.5`` or ``[0.1, -2, 3.5]``."""
    array = np.asarray(array)
    texts = [f"{v + 0.0:.4g}" if isinstance(v, float) else str(v) for v in array.ravel().tolist()]
    return texts[0] if array.ndim == 0 else "[" + ", ".join(texts) + "]"


def count_text(count: int, word: str) -> str:
    """``1 op``, ``3 ops``, ``1,024 parameters``."""
    return f"{count:,} {word}{'' if count == 1 else 's'}"
