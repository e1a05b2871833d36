"""Writing pictures to files: `render_graph` and `save_graph`.

`render_graph` writes a drawn graph as SVG, PNG, PDF or DOT; `save_graph` draws and writes in one call, the
explorer's HTML included.
"""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import graphviz

from ..nn.module import Module
from ..tensor import Tensor
from .dot import draw_graph

__all__ = ["GraphvizNotFoundError", "render_graph", "save_graph"]

# Formats whose text is the graph's own DOT source: writing them needs no Graphviz program.
_SOURCE_FORMATS = ("dot", "gv")
_HTML_FORMATS = ("html", "htm")
# Pixel formats are rendered at this resolution unless the graph sets its own dpi (Graphviz's default, 96, makes a
# picture whose text is small on today's screens).
_RASTER_FORMATS = ("png", "jpg", "jpeg", "gif", "bmp", "tif", "tiff", "webp")
RASTER_DPI = 144


class GraphvizNotFoundError(graphviz.ExecutableNotFound):
    """Rendering needs Graphviz's ``dot`` program and it is not on PATH; the message says how to install it.

    A subclass of ``graphviz.ExecutableNotFound`` (itself a `RuntimeError`), so either name catches it.
    """

    def __init__(self, message: str) -> None:
        RuntimeError.__init__(self, message)


def render_graph(
    graph: graphviz.Graph | graphviz.Digraph | graphviz.Source, path: str | PathLike, format: str | None = None
) -> Path:
    """Write `graph` to exactly `path` and return that path.

    The format is `format`, else the suffix of `path` (``.svg``, ``.png``, ``.pdf``...), else SVG. Pixel formats
    (PNG, JPEG...) are rendered at 144 dpi unless the graph sets its own (``graph.attr(dpi="96")``). ``.dot`` and
    ``.gv`` (or ``format="dot"``) write the DOT source and need no Graphviz program; every other format runs
    Graphviz's ``dot``, and raises `GraphvizNotFoundError`, which says what to install, when it is missing.
    The HTML explorer is made from the tensor, not from a drawn graph: ``save_graph(loss, "graph.html", model)``.
    """
    path = Path(path)
    if not isinstance(graph, (graphviz.Graph, graphviz.Digraph, graphviz.Source)):
        raise TypeError(f"render_graph needs the graph draw_graph returns, got {type(graph).__name__}")
    chosen = (format or path.suffix.lstrip(".") or "svg").lower()
    if chosen in _SOURCE_FORMATS:
        path.write_text(graph.source, encoding="utf-8")
        return path
    if chosen in _HTML_FORMATS:
        raise ValueError(
            f"render_graph writes Graphviz's formats, and {path.name} asks for HTML: the explorer is made from the "
            "tensor itself, so use save_graph(loss, 'graph.html', model) or show_graph(loss, model).save(path)"
        )
    if chosen not in graphviz.FORMATS:
        given = f"format={format!r}" if format else f"the suffix of {path.name!r}"
        raise ValueError(
            f"render_graph: {given} is not a format Graphviz writes; use svg, png, pdf or dot "
            f"(all of them: {', '.join(sorted(graphviz.FORMATS))})"
        )
    drawn = isinstance(graph, (graphviz.Graph, graphviz.Digraph))  # graphviz.Source has no attributes to set
    if chosen in _RASTER_FORMATS and drawn and "dpi" not in graph.graph_attr:
        graph = graph.copy()
        graph.graph_attr["dpi"] = str(RASTER_DPI)
    try:
        picture = graph.pipe(format=chosen)
    except graphviz.ExecutableNotFound as error:
        raise GraphvizNotFoundError(
            f"writing {path.name} as {chosen} needs Graphviz's 'dot' program, which is not on PATH. Install "
            "Graphviz itself (pip's graphviz package only writes DOT text): 'apt-get install graphviz' on Debian "
            "or Ubuntu, 'brew install graphviz' on macOS, 'conda install graphviz', or from "
            "https://graphviz.org/download/. Without it, graph.source, .dot files and the .html explorer still work."
        ) from error
    path.write_bytes(picture)
    return path


def save_graph(
    root: Tensor | Sequence[Tensor],
    path: str | PathLike,
    model: Module | None = None,
    *,
    format: str | None = None,
    **options: Any,
) -> Path:
    """Draw the graph of `root` and write it to `path`; return the path. The format comes from the suffix.

    - ``.html``: the interactive explorer (`show_graph`), one self-contained file that opens offline in a
      browser; needs no Graphviz program. `options` go to `show_graph`.
    - ``.svg``, ``.png``, ``.pdf``: the static picture of `draw_graph` (`options` go to it), rendered by
      Graphviz's ``dot``.
    - ``.dot``, ``.gv``: the DOT source of that picture, which needs no Graphviz program.

    ::

        save_graph(loss, "graph.svg", model, max_depth=1)
        save_graph(loss, "graph.html", model)
    """
    path = Path(path)
    if format is None and not path.suffix:
        raise ValueError(
            f"save_graph takes the format from the file's suffix, and {str(path)!r} has none: "
            "end it in .html, .svg, .png, .pdf or .dot (or pass format=)"
        )
    chosen = (format or path.suffix.lstrip(".")).lower()
    if chosen in _HTML_FORMATS:
        from .html import _explorer

        return _explorer("save_graph", root, model, **options).save(path)
    return render_graph(draw_graph(root, model, **options), path, format)
