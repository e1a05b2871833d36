"""The explorer: `show_graph` writes a `GraphModel` as one self-contained, interactive HTML page.

The page holds the model as JSON and the explorer's own script and style sheet (``explorer.js`` and
``explorer.css`` beside this file), all inline: it fetches nothing, needs no server and no Graphviz, and opens
offline in any current browser. The script lays the graph out itself, in layers from the inputs at the top to
the output at the bottom, one module call at a time, so a click that collapses or expands a module only lays out
again what changed.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

from ..nn.module import Module
from ..tensor import Tensor
from . import style
from .model import (
    GraphModel,
    array_summary,
    describe_saved,
    read_fold_repeats,
    read_max_depth,
    read_model,
    read_names,
    read_roots,
    read_vanishing_ratio,
)

__all__ = ["EXPLORER_OPTIONS", "GraphExplorer", "show_graph"]

_HERE = Path(__file__).resolve().parent
# What the explorer takes besides root and model (save_graph checks its options against these).
EXPLORER_OPTIONS = ("names", "show_grads", "max_depth", "fold_repeats", "vanishing_ratio", "title", "height")


class GraphExplorer:
    """The interactive explorer of a graph, as one self-contained HTML page (`html`).

    In Jupyter it shows inline (``_repr_html_``, the page in a sandboxed frame); `save` writes it to a file that
    opens in any browser, offline. `show_graph` makes one.
    """

    def __init__(self, model: GraphModel, *, max_depth: int | None = None, title: str = "", height: int = 640) -> None:
        self.model = model
        self.title = title or "tinygrad_nn graph"
        self.height = height
        self.html = _page(_payload(model, max_depth, self.title), self.title)

    def save(self, path: str | PathLike) -> Path:
        """Write the page to `path` (UTF-8) and return the path."""
        path = Path(path)
        path.write_text(self.html, encoding="utf-8")
        return path

    def _repr_html_(self) -> str:
        # A frame of its own keeps the page's script, ids and styles apart from the notebook's (and from other
        # explorers in the same notebook); srcdoc needs no file and no server.
        source = html.escape(self.html, quote=True)
        return (
            f'<iframe srcdoc="{source}" sandbox="allow-scripts" title="{html.escape(self.title, quote=True)}" '
            f'style="width: 100%; height: {self.height}px; border: 1px solid #d0d0d0; border-radius: 4px;"></iframe>'
        )

    def __repr__(self) -> str:
        ops, tensors, containers = len(self.model.ops), len(self.model.tensors), len(self.model.containers)
        return f"<GraphExplorer {self.title!r}: {ops} ops, {tensors} tensors, {containers} module calls and folds>"


def show_graph(
    root: Tensor | Sequence[Tensor],
    model: Module | None = None,
    *,
    names: Mapping[str, Tensor] | None = None,
    show_grads: bool = True,
    max_depth: int | None = None,
    fold_repeats: bool | int = True,
    vanishing_ratio: float | None = style.VANISHING_RATIO,
    title: str | None = None,
    height: int = 640,
) -> GraphExplorer:
    """Make the interactive explorer of the graph that computed `root`; in Jupyter it shows inline.

    The explorer is one self-contained HTML page (no network, no server, no Graphviz): pan with the mouse and
    zoom with the wheel; click a module to collapse it into a box (its shapes in and out, its parameters and
    their gradient norms) or to expand it again; runs of identical blocks start folded (``Linear-ReLU x 8``) and
    a click unfolds them; hover or click any node for its shape, dtype, module path, values and gradient (norm,
    mean, max and a histogram); search by name; switch on what each op saved for backward; and step through
    the backward pass in the order ``backward()`` runs it, watching the gradients arrive. Zero, NaN/inf and
    vanishing gradients are marked as in `draw_graph`, with the same legend.

    The options mean what they mean for `draw_graph`; `max_depth` says which modules start collapsed, `title`
    names the page, `height` is the frame's height in pixels in Jupyter. `GraphExplorer.save` writes the page;
    ``save_graph(loss, "graph.html", model)`` does both in one call::

        explorer = show_graph(loss, model)      # the last line of a cell shows it
        explorer.save("graph.html")
    """
    return _explorer(
        "show_graph",
        root,
        model,
        names=names,
        show_grads=show_grads,
        max_depth=max_depth,
        fold_repeats=fold_repeats,
        vanishing_ratio=vanishing_ratio,
        title=title,
        height=height,
    )


def _explorer(caller: str, root: Any, model: Any, **options: Any) -> GraphExplorer:
    """`show_graph` with errors that name `caller` (save_graph passes its options through here)."""
    unknown = sorted(set(options) - set(EXPLORER_OPTIONS))
    if unknown:
        dot_only = {"rankdir", "show_data", "legend", "max_nodes"}
        hint = (
            " (an option of the Graphviz picture, draw_graph; the explorer always shows values in its side panel, "
            "lays itself out top to bottom and draws every op, with modules to collapse)"
            if set(unknown) <= dot_only
            else ""
        )
        raise TypeError(
            f"{caller}: the HTML explorer does not take {', '.join(unknown)}{hint}; it takes "
            f"{', '.join(EXPLORER_OPTIONS)}"
        )
    title = options.get("title")
    if title is not None and not isinstance(title, str):
        raise TypeError(f"{caller}: title must be a string, got {type(title).__name__}")
    height = options.get("height", 640)
    if isinstance(height, bool) or not isinstance(height, int) or height < 100:
        raise ValueError(f"{caller}: height must be a whole number of pixels, at least 100, got {height!r}")
    graph_model = GraphModel(
        read_roots(root, caller),
        read_model(model, caller),
        read_names(options.get("names"), caller),
        show_grads=options.get("show_grads", True),
        vanishing_ratio=read_vanishing_ratio(options.get("vanishing_ratio", style.VANISHING_RATIO), caller),
        fold_repeats=read_fold_repeats(options.get("fold_repeats", True), caller),
    )
    max_depth = read_max_depth(options.get("max_depth"), caller)
    return GraphExplorer(graph_model, max_depth=max_depth, title=title or "", height=height)


# --------------------------------------------------------------------------------------------------------------
# The page
# --------------------------------------------------------------------------------------------------------------


def _payload(model: GraphModel, max_depth: int | None, title: str) -> dict[str, Any]:
    """The model as plain JSON data: ops, tensors and containers by index, the backward order, the legend."""
    containers = []
    for container in model.containers:
        summary = model.summary(container)
        collapsed = container.kind == "fold" or (max_depth is not None and container.depth > max_depth)
        containers.append(
            {
                "kind": container.kind,
                "title": container.title,
                "name": container.name,
                "class": container.class_name,
                "path": container.path,
                "parent": _index(container.parent),
                "depth": container.depth,
                "level": container.level,
                "collapsed": collapsed,
                "repeats": container.repeats,
                "unit": container.unit,
                "inputs": [tensor.index for tensor in summary.inputs],
                "outputs": [tensor.index for tensor in summary.outputs],
                "parameters": [list(row) for row in summary.parameters],
                "parameterCount": summary.parameter_count,
                "opCount": summary.ops,
                "constants": summary.constants,
                "problem": summary.problem,
            }
        )
    ops = []
    for op in model.ops:
        ops.append(
            {
                "name": op.name,
                "container": _index(op.container),
                "path": op.container.path if op.container is not None else "",
                "inputs": [None if tensor is None else tensor.index for tensor in op.inputs],
                "outputs": [tensor.index for tensor in op.outputs],
                "constants": op.constants,
                "saved": describe_saved(op.node),
            }
        )
    tensors = []
    for tensor in model.tensors:
        tensors.append(
            {
                "kind": tensor.kind,
                "title": tensor.title,
                "shape": list(tensor.shape),
                "dtype": str(tensor.dtype),
                "shapeText": tensor.shape_text,
                "container": _index(tensor.container),
                "path": tensor.container.path if tensor.container is not None else "",
                "producer": None if tensor.producer is None else tensor.producer.index,
                "consumers": [[op.index, position] for op, position in tensor.consumers],
                "flank": None if tensor.flank is None else [tensor.flank[0].index, tensor.flank[1]],
                "problem": tensor.problem,
                "note": tensor.note,
                "data": None if tensor.data is None else _finite(array_summary(tensor.data)),
                "grad": None if tensor.grad is None else _finite(array_summary(tensor.grad)),
            }
        )
    kinds = {tensor.kind for tensor in model.tensors} | ({"op"} if model.ops else set())
    kinds |= {"fold" if c.kind == "fold" else "module" for c in model.containers}
    problems = {tensor.problem for tensor in model.tensors if tensor.problem}
    return {
        "title": title,
        "ops": ops,
        "tensors": tensors,
        "containers": containers,
        "roots": [tensor.index for tensor in model.root_tensors],
        "backward": [[op.index for op in order] for order in model.backward],
        "legend": style.legend_entries(kinds, problems),
        "vanishingRatio": model.vanishing_ratio,
        "largestNorm": _finite(model.largest_norm),
    }


def _index(container: Any) -> int | None:
    return None if container is None else container.index


def _json(payload: dict[str, Any]) -> str:
    """JSON safe inside a <script> element, with no "//" anywhere (so no URL can appear in the page's text)."""
    text = json.dumps(payload, separators=(",", ":"), allow_nan=False, default=_plain)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e").replace("/", "\\/")


def _plain(value: Any) -> Any:
    """What json cannot write itself: numpy numbers."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} into the explorer's data")


def _finite(payload: Any) -> Any:
    """Statistics with NaN and inf (which JSON has no words for) as strings, "nan", "inf", "-inf"."""
    if isinstance(payload, float) and not math.isfinite(payload):
        return style.number(payload)
    if isinstance(payload, dict):  # (the histogram's counts, a list, are whole numbers)
        return {key: _finite(value) for key, value in payload.items()}
    return payload


def _css() -> str:
    """The style sheet: the fixed part, then a rule per kind of node and per problem from `style`."""
    rules = [(_HERE / "explorer.css").read_text(encoding="utf-8")]
    for key, kind in style.KINDS.items():
        rules.append(f".tg-kind-{key} > .tg-shape {{ fill: {kind.fill}; stroke: {kind.border}; }}")
        rules.append(f".tg-swatch-{key} {{ background: {kind.fill}; border-color: {kind.border}; }}")
    for key, problem in style.PROBLEMS.items():
        dash = "stroke-dasharray: 6 3;" if problem.dash else ""
        rules.append(f".tg-problem-{key} > .tg-shape {{ stroke: {problem.colour}; stroke-width: 2.5px; {dash} }}")
        rules.append(f".tg-note-{key} {{ fill: {problem.colour}; color: {problem.colour}; font-weight: bold; }}")
        border = "dashed" if problem.dash else "solid"
        rules.append(f".tg-swatch-{key} {{ background: #ffffff; border: 2px {border} {problem.colour}; }}")
    for level, fill in enumerate(style.CLUSTER_FILLS):
        rules.append(f".tg-cluster-level-{level} > .tg-cluster-box {{ fill: {fill}; }}")
    return "\n".join(rules)


def _page(payload: dict[str, Any], title: str) -> str:
    script = (_HERE / "explorer.js").read_text(encoding="utf-8")
    # The page's title is the user's text: escaped, and with "//" broken up so that it cannot read as a URL.
    safe_title = html.escape(title).replace("/", "&#47;")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="tinygrad_nn explorer">
<link rel="icon" href="data:,">
<title>{safe_title}</title>
<style>
{_css()}
</style>
</head>
<body>
<div id="tg-app" class="tg-app" data-ready="false">
  <header class="tg-toolbar">
    <span class="tg-title" title="{safe_title}">{safe_title}</span>
    <span class="tg-group">
      <input id="tg-search" type="search" placeholder="Search names, ops, modules" aria-label="Search"
        autocomplete="off">
      <span id="tg-search-count" class="tg-muted"></span>
    </span>
    <span class="tg-group tg-stepper" role="group" aria-label="Backward stepper">
      <button id="tg-first" type="button" title="Back to the start of backward">start</button>
      <button id="tg-prev" type="button" title="Previous step (left arrow)">&#x25C0;</button>
      <button id="tg-play" type="button" title="Play or pause (space)">&#x25B6; play</button>
      <button id="tg-next" type="button" title="Next step (right arrow)">&#x25B6;</button>
      <span id="tg-step-label" class="tg-step-label"></span>
    </span>
    <span class="tg-group">
      <label class="tg-switch" title="Show what each op saved for backward"><input id="tg-saved"
        type="checkbox"> saved for backward</label>
      <button id="tg-expand-all" type="button" title="Expand every module and fold">expand all</button>
      <button id="tg-collapse-all" type="button" title="Collapse every module">collapse all</button>
      <button id="tg-fit" type="button" title="Fit the graph to the window">fit</button>
    </span>
  </header>
  <div class="tg-main">
    <svg id="tg-canvas" class="tg-canvas" role="img" aria-label="The computation graph"><g id="tg-viewport"></g></svg>
    <aside id="tg-panel" class="tg-panel"></aside>
  </div>
  <footer id="tg-legend" class="tg-legend"></footer>
  <div id="tg-tooltip" class="tg-tooltip" hidden></div>
</div>
<script type="application/json" id="tg-data">{_json(payload)}</script>
<script>
{script}
</script>
</body>
</html>
"""
