"""Pictures of the computation graph: `draw_graph` (Graphviz), `show_graph` (the explorer), `save_graph`.

- `draw_graph` describes the graph that computed a tensor in the DOT language, as a `graphviz.Digraph`: an
  op per rounded box, a tensor per square box, a cluster per module call, gradients and their problems marked.
  `render_graph` turns it into SVG, PNG or PDF with Graphviz's ``dot`` program.
- `show_graph` makes the interactive explorer of the same graph: one self-contained HTML page (pan and zoom,
  modules that collapse and expand, repeated blocks folded, a step-by-step replay of backward) that shows inline
  in Jupyter and that `GraphExplorer.save` writes to a file.
- `save_graph` does either in one call, choosing by the file's suffix: ``.html`` is the explorer.

Both pictures are written from one `GraphModel` (`tinygrad_nn.viz.model`), the graph read into ops, tensors and
module calls, and share their colours and legend (`tinygrad_nn.viz.style`), so they always agree.
"""

from .dot import draw_graph
from .files import GraphvizNotFoundError, render_graph, save_graph
from .html import GraphExplorer, show_graph

__all__ = ["GraphExplorer", "GraphvizNotFoundError", "draw_graph", "render_graph", "save_graph", "show_graph"]
