"""The Graphviz picture: `draw_graph` writes a `GraphModel` as DOT text, a `graphviz.Digraph`.

What is drawn: a rounded box per op, a square box per tensor, a nested cluster per module call, a box per
module call collapsed by `max_depth`, a box per run of repeated blocks (``Linear-ReLU x 8``), and a legend. A
parameter used by one op only sits beside it (the weight on the left, the bias on the right), so the op's data
input comes straight from above and the main path of the picture runs down in a line.
"""

from __future__ import annotations

import html
import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import graphviz

from ..nn.module import Module
from ..tensor import Tensor
from . import style
from .model import (
    Container,
    GraphModel,
    OpInfo,
    TensorInfo,
    read_fold_repeats,
    read_max_depth,
    read_model,
    read_monitor,
    read_names,
    read_roots,
    read_vanishing_ratio,
)

__all__ = ["draw_graph"]

_RANKDIRS = ("TB", "LR", "BT", "RL")


def draw_graph(
    root: Tensor | Sequence[Tensor],
    model: Module | None = None,
    *,
    names: Mapping[str, Tensor] | None = None,
    show_grads: bool = True,
    show_data: bool = False,
    max_depth: int | None = None,
    max_nodes: int | None = 500,
    fold_repeats: bool | int = True,
    rankdir: str = "TB",
    vanishing_ratio: float | None = style.VANISHING_RATIO,
    legend: bool = True,
    monitor: Any = None,
) -> graphviz.Digraph:
    """Draw the graph that computed `root` (a Tensor, or a list of Tensors) as a `graphviz.Digraph`.

    Ops are labelled with their `Function`'s class name; every op's output and every leaf is a tensor box with
    its shape and dtype. With `model`, parameters carry their dotted names (``0.weight``) and every module call
    is a cluster labelled with name and class (``0: Linear``), nested as the calls were; two calls of one
    module are two clusters. A parameter used by one op only is drawn beside it, weight on the left and bias on
    the right. A legend in the picture names the colours. Works before and after ``backward()``.

    - `names`: titles for other tensors, such as ``{"x": x, "loss": loss}``: inputs, intermediate results, the
      output (like torchviz's ``params``; a name given here wins over the model's).
    - `show_grads`: after backward, show the norm of each leaf's gradient, and of each computed tensor's when
      backward ran inside `retain_grads`. A gradient that is all zero, or holds NaN or inf, gets a coloured
      border and a note; so does a *vanishing* one, whose norm is below `vanishing_ratio` times the largest
      gradient norm in the graph (None turns that off).
    - `show_data`: also print the values and gradients of tensors with at most 6 elements (micrograd-style).
      Computed tensors do not keep their values, so only leaves and the root(s) have data to print.
    - `max_depth`: draw clusters for this many levels of module nesting; a module call nested deeper becomes
      one box with its name, its class, the shapes that flow in and out, its parameters with their gradient
      norms and their count (0 collapses the whole model into one box).
    - `max_nodes`: draw at most this many ops (a collapsed module or a fold counts as one), nearest the output
      first, and a marker saying how many were left out. None draws everything.
    - `fold_repeats`: a run of 3 or more identical blocks in a row (same class, same parameter shapes, children
      of a `Sequential` or `ModuleList`) becomes one box, ``Linear-ReLU x 8`` or ``Block x 12``, with the
      shapes in and out and the range of the blocks' gradient norms. An integer sets the shortest run to fold;
      False folds nothing. Needs `model`.
    - `rankdir`: "TB" (output at the bottom), "LR", "BT" or "RL". `legend`: False leaves the legend out.
    - `monitor`: a `GradientMonitor` (tinygrad_nn.monitor) that watched the model in training: each parameter
      is then noted and coloured by its mean gradient norm over the recorded steps and the monitor's verdicts
      (vanishing, zero, exploding, NaN/inf), not by this one step's, and an activation module with most units
      dead or saturated gets its cluster marked. `model` defaults to the monitor's.

    ``graph.source`` is the DOT text, which needs no Graphviz program; in Jupyter the returned graph shows
    inline; `render_graph` writes it as a picture::

        loss = loss_fn(model(x), y)
        loss.backward()
        graph = draw_graph(loss, model)
        render_graph(graph, "graph.svg")
    """
    caller = "draw_graph"
    roots = read_roots(root, caller)
    model = read_model(model, caller)
    monitor = read_monitor(monitor, model, caller)
    if model is None and monitor is not None:
        model = monitor.model
    max_depth = read_max_depth(max_depth, caller)
    if max_nodes is not None and (isinstance(max_nodes, bool) or not isinstance(max_nodes, int) or max_nodes < 1):
        raise ValueError(f"{caller}: max_nodes must be None or an integer >= 1, got {max_nodes!r}")
    if rankdir not in _RANKDIRS:
        raise ValueError(f"{caller}: rankdir must be one of {', '.join(_RANKDIRS)}, got {rankdir!r}")
    graph_model = GraphModel(
        roots,
        model,
        read_names(names, caller),
        show_grads=show_grads,
        vanishing_ratio=read_vanishing_ratio(vanishing_ratio, caller),
        fold_repeats=read_fold_repeats(fold_repeats, caller),
        monitor=monitor,
    )
    return _DotWriter(graph_model, max_depth, max_nodes).write(show_data=show_data, rankdir=rankdir, legend=legend)


class _DotWriter:
    """Decides what is drawn (which containers are boxes, which ops fit in max_nodes), then writes it as DOT."""

    def __init__(self, model: GraphModel, max_depth: int | None, max_nodes: int | None) -> None:
        self.model = model
        # A fold is always drawn folded; a module call deeper than max_depth is a box.
        self.collapsed = {
            id(c) for c in model.containers if c.kind == "fold" or (max_depth is not None and c.depth > max_depth)
        }
        self._choose_units(max_nodes)

    def _box_of(self, container: Container | None) -> Container | None:
        """The outermost collapsed container around `container` (itself included), or None."""
        box = None
        while container is not None:
            if id(container) in self.collapsed:
                box = container
            container = container.parent
        return box

    def _hidden(self, container: Container | None) -> bool:
        return self._box_of(container) is not None

    def _choose_units(self, max_nodes: int | None) -> None:
        """Each op's unit (itself or its box), taking units breadth-first from the output until max_nodes."""
        self.unit_of: dict[int, Any] = {}  # id(op) -> the OpInfo or the Container drawn for it
        admitted: dict[int, Any] = {}
        self.left_out = 0
        for op in self.model.walk_order:
            box = self._box_of(op.container)
            unit = op if box is None else box
            if id(unit) not in admitted:
                if max_nodes is not None and len(admitted) >= max_nodes:
                    self.left_out += 1
                    continue
                admitted[id(unit)] = unit
            self.unit_of[id(op)] = unit
        first_op = {}
        for op in self.model.ops:
            unit = self.unit_of.get(id(op))
            if unit is not None and id(unit) not in first_op:
                first_op[id(unit)] = op.index
        self.units = sorted(admitted.values(), key=lambda unit: first_op[id(unit)])
        self.unit_ids: dict[int, str] = {}
        for position, unit in enumerate(self.units):
            prefix = "op" if isinstance(unit, OpInfo) else "fold" if unit.kind == "fold" else "module"
            self.unit_ids[id(unit)] = f"{prefix}{position}"

    # ---------------------------------------------------------------------------------------------------------
    # Writing
    # ---------------------------------------------------------------------------------------------------------

    def write(self, *, show_data: bool, rankdir: str, legend: bool) -> graphviz.Digraph:
        graph = graphviz.Digraph(
            "graph",
            graph_attr={
                "rankdir": rankdir,
                "fontname": style.FONT,
                "fontsize": str(style.FONT_SIZE),
                "fontcolor": style.TEXT,
                "bgcolor": "white",
                "nodesep": "0.3",
                "ranksep": "0.35",
                "newrank": "true",
            },
            node_attr={
                "fontname": style.FONT,
                "fontsize": str(style.FONT_SIZE),
                "fontcolor": style.TEXT,
                "shape": "box",
                "style": "filled",
                "penwidth": "1.2",
                "margin": "0.12,0.06",
                "height": "0.35",
            },
            edge_attr={"color": style.EDGE, "arrowsize": "0.7"},
        )
        self.show_data = show_data
        # Node statements by the container they are drawn in (key 0: the top level); rows of flanked ops.
        self.members: dict[int, list[tuple[str, str, dict[str, str]]]] = {}
        self.rows: dict[int, list[list[str]]] = {}
        self.clusters: dict[int, Container] = {}
        self.edges: dict[tuple[str, str], dict[str, str]] = {}
        self.kinds: set[str] = set()
        self.problems: set[str] = set()
        self.tensor_ids: dict[int, str] = {}
        self.flanked: set[int] = set()

        self._place_units()
        self._place_tensors()
        marker_needed = self._connect()
        if marker_needed:
            count = self.left_out
            label = f"… {count:,} more op{'s' if count != 1 else ''} not drawn (max_nodes)"
            line = _line(label, size=style.SMALL_FONT_SIZE, colour=style.SECONDARY_TEXT)
            self._place(None, "more", f"<{line}>", {"style": "dashed", "color": "#8c8c8c"})

        self._write_members(graph, 0)
        self._write_clusters(graph)
        for (tail, head), attributes in self.edges.items():
            graph.edge(tail, head, **attributes)
        if legend:
            # The legend is the graph's label, not a node: a node would share a rank with the first ops and
            # stretch it to the legend's height.
            graph.graph_attr.update(label=_legend(self.kinds, self.problems), labelloc="b", labeljust="c")
        return graph

    def _place(self, container: Container | None, node_id: str, label: str, attributes: dict[str, str]) -> None:
        scope = container
        while scope is not None and id(scope) not in self.clusters:  # a cluster needs its enclosing ones too
            self.clusters[id(scope)] = scope
            scope = scope.parent
        self.members.setdefault(0 if container is None else id(container), []).append((node_id, label, attributes))

    def _place_units(self) -> None:
        for unit in self.units:
            node_id = self.unit_ids[id(unit)]
            if isinstance(unit, OpInfo):
                self.kinds.add("op")
                note, problem = self._op_note(unit)
                if problem:
                    self.problems.add(problem)
                self._place(unit.container, node_id, _op_label(unit, note, problem), _op_style(problem))
            else:
                summary = self.model.summary(unit)
                self.kinds.add(unit.kind if unit.kind == "fold" else "module")
                problem = style.worst_problem([summary.problem, self._module_note(unit)[1]])
                if problem:
                    self.problems.add(problem)
                self._place(unit.parent, node_id, self._box_label(unit), _box_style(unit, problem))

    def _drawn(self, tensor: TensorInfo) -> bool:
        """A tensor is drawn when its container is visible and it comes from a drawn op, a leaf or is a root."""
        if self._hidden(tensor.container):
            return False
        if tensor.producer is None:
            return any(id(op) in self.unit_of for op, _ in tensor.consumers) or tensor.kind == "output"
        unit = self.unit_of.get(id(tensor.producer))
        return unit is not None and (isinstance(unit, OpInfo) or tensor.kind == "output")

    def _place_tensors(self) -> None:
        leaves = 0
        flanks: dict[int, dict[str, list[TensorInfo]]] = {}
        for tensor in self.model.tensors:
            if not self._drawn(tensor):
                continue
            if tensor.producer is None:
                node_id = f"leaf{leaves}"
                leaves += 1
            else:
                unit_id = self.unit_ids[id(self.unit_of[id(tensor.producer)])]
                if isinstance(self.unit_of[id(tensor.producer)], OpInfo):
                    index = tensor.output_index
                    node_id = unit_id + ("_out" if index is None else f"_out{index}")
                else:
                    node_id = f"{unit_id}_out{tensor.index}"
            self.tensor_ids[id(tensor)] = node_id
            self.kinds.add(tensor.kind)
            if tensor.problem:
                self.problems.add(tensor.problem)
            label, attributes = _tensor_label(tensor, self.show_data), _tensor_style(tensor)
            if tensor.flank is not None and self.unit_of.get(id(tensor.flank[0])) is tensor.flank[0]:
                op, side = tensor.flank
                flanks.setdefault(id(op), {"left": [], "right": []})[side].append(tensor)
            self._place(tensor.container, node_id, label, attributes)
        # A flanked op and its parameters share a rank: [weight] -> (Linear) <- [bias].
        for unit in self.units:
            sides = flanks.get(id(unit))
            if sides is None:
                continue
            op_id = self.unit_ids[id(unit)]
            self.flanked.update(id(t) for t in sides["left"] + sides["right"])
            left = [self.tensor_ids[id(t)] for t in sides["left"]]
            right = [self.tensor_ids[id(t)] for t in sides["right"]]
            key = 0 if unit.container is None else id(unit.container)
            self.rows.setdefault(key, []).append([*left, op_id, *right])
            for tensor in sides["left"]:
                self._edge(self.tensor_ids[id(tensor)], op_id)
            for tensor in sides["right"]:  # drawn from the op backwards, so dot puts the bias on the right
                self._edge(op_id, self.tensor_ids[id(tensor)], dir="back")
            for first, second in (*itertools.pairwise(left), *itertools.pairwise(right)):
                self._edge(first, second, style="invis")

    def _connect(self) -> bool:
        """Every edge: op -> its outputs, tensor -> the ops that read it; True if some input was left out."""
        marker_needed = False
        for unit in self.units:
            if isinstance(unit, OpInfo):
                for tensor in unit.outputs:
                    if id(tensor) in self.tensor_ids:
                        self._edge(self.unit_ids[id(unit)], self.tensor_ids[id(tensor)])
        for op in self.model.ops:
            consumer = self.unit_of.get(id(op))
            if consumer is None:
                continue
            head = self.unit_ids[id(consumer)]
            for tensor in op.inputs:
                if tensor is None or (tensor.flank is not None and id(tensor) in self.flanked):
                    continue
                tail = self.tensor_ids.get(id(tensor))
                if tail is not None:
                    self._edge(tail, head)
                    continue
                producer = self.unit_of.get(id(tensor.producer)) if tensor.producer is not None else None
                if tensor.producer is not None and producer is None:  # beyond max_nodes
                    marker_needed = True
                    self._edge("more", head, style="dashed")
                elif producer is not None and producer is not consumer:  # a box's output, drawn as the edge
                    self._edge(self.unit_ids[id(producer)], head)
        for tensor in self.model.tensors:  # roots and other drawn outputs of boxes
            node_id = self.tensor_ids.get(id(tensor))
            if node_id is not None and tensor.producer is not None:
                unit = self.unit_of[id(tensor.producer)]
                if not isinstance(unit, OpInfo):
                    self._edge(self.unit_ids[id(unit)], node_id)
        return marker_needed

    def _edge(self, tail: str, head: str, **attributes: str) -> None:
        self.edges.setdefault((tail, head), attributes)

    def _write_clusters(self, graph: graphviz.Digraph) -> None:
        """A subgraph per module call, filled, then nested innermost first (attaching one copies its text)."""
        subgraphs: dict[int, graphviz.Digraph] = {}
        for number, (key, container) in enumerate(self.clusters.items()):
            title = _line(container.title, size=style.SMALL_FONT_SIZE, colour=style.TEXT)
            attributes = {"color": style.CLUSTER_BORDER}
            note, problem = self._module_note(container)
            if note is not None and not self._single_op(container):  # a monitor's verdict on the module
                title += "<br/>" + _line("⚠ " + note, size=style.TINY_FONT_SIZE, colour=_note_colour(problem))
                attributes = {"color": style.PROBLEMS[problem].colour, "penwidth": "2.5"} if problem else attributes
                if problem:
                    self.problems.add(problem)
            subgraph = graphviz.Digraph(
                f"cluster_{number}",
                graph_attr={
                    "label": f"<{title}>",
                    "labeljust": "l",
                    "labelloc": "t",
                    "style": "rounded,filled",
                    "fillcolor": style.CLUSTER_FILLS[container.level % len(style.CLUSTER_FILLS)],
                    "margin": "10",
                    **attributes,
                },
            )
            self._write_members(subgraph, key)
            subgraphs[key] = subgraph
        for key in sorted(subgraphs, key=lambda k: -self.clusters[k].level):  # stable: siblings keep their order
            parent = self.clusters[key].parent
            (graph if parent is None else subgraphs[id(parent)]).subgraph(subgraphs[key])

    def _module_note(self, container: Container) -> tuple[str | None, str | None]:
        """A monitor's note and problem for a module call (None, None for none, and for a fold)."""
        if container.kind != "call" or container.module is None:
            return None, None
        return self.model.module_notes.get(id(container.module), (None, None))

    @staticmethod
    def _single_op(container: Container) -> bool:
        """A module call of one op and nothing else (an activation): its op carries the module's note."""
        return len(container.ops) == 1 and not container.children

    def _op_note(self, op: OpInfo) -> tuple[str | None, str | None]:
        """The monitor's note on the module call that is this op alone, drawn on the op (not over the edge above)."""
        if op.call is None or op.container is not op.call or not self._single_op(op.call):
            return None, None
        return self._module_note(op.call)

    def _write_members(self, subgraph: graphviz.Digraph, key: int) -> None:
        for node_id, label, attributes in self.members.get(key, []):
            subgraph.node(node_id, label, **attributes)
        self._write_rows(subgraph, key)

    def _write_rows(self, graph: graphviz.Digraph, key: int) -> None:
        for row in self.rows.get(key, []):
            graph.body.append("\t{rank=same; " + " ".join(row) + ";}\n")

    def _box_label(self, container: Container) -> str:
        """A collapsed module call or a folded run: title, shapes in and out, parameters and their gradients."""
        summary = self.model.summary(container)
        small, tiny = style.SMALL_FONT_SIZE, style.TINY_FONT_SIZE
        rows = [[_line(container.title, bold=True)]]
        note, problem = self._module_note(container)
        if note is not None:
            rows.append([_line("⚠ " + note, size=small, colour=_note_colour(problem))])
        if container.kind == "fold":
            rows.append([_line(container.name, size=small, colour=style.SECONDARY_TEXT)])
        for word, tensors in (("in", summary.inputs), ("out", summary.outputs)):
            rows.extend([_line(word, size=small), _line(tensor.shape_text, size=small)] for tensor in tensors)
        for title, shape, note, problem in summary.parameters:
            row = [_line(title, size=small), _line(shape, size=small)]
            if note is not None:
                warning = "⚠ " if problem else ""
                row.append(_line(warning + note, size=small, colour=_note_colour(problem)))
            rows.append(row)
        if self.show_data and container.kind == "call":
            for tensor in self.model.tensors:
                inside = tensor.kind == "parameter" and container.encloses(tensor.container)
                if inside and tensor.grad is not None and tensor.grad.size <= style.SMALL_TENSOR:
                    grad = f"grad {style.values_text(tensor.grad)}"
                    rows.append([_line(tensor.title, size=small), _line(grad, size=small)])
        parts = [style.count_text(summary.ops, "op") + " inside"]
        if summary.parameter_count:
            parts.append(style.count_text(summary.parameter_count, "parameter"))
        if summary.constants:
            parts.append(f"+{style.count_text(summary.constants, 'no-grad input')}")
        rows.append([_line(", ".join(parts), size=tiny, colour=style.SECONDARY_TEXT)])
        return _table(rows)


# --------------------------------------------------------------------------------------------------------------
# Labels and styles
# --------------------------------------------------------------------------------------------------------------


def _escape(text: str) -> str:
    return html.escape(text, quote=False)


def _line(text: str, *, size: float | None = None, colour: str | None = None, bold: bool = False) -> str:
    """One piece of an HTML-like label, escaped."""
    if not text:
        return ""  # dot rejects an empty <font></font>
    body = f"<b>{_escape(text)}</b>" if bold else _escape(text)
    attributes = (f' point-size="{size}"' if size else "") + (f' color="{colour}"' if colour else "")
    return f"<font{attributes}>{body}</font>" if attributes else body


def _table(rows: list[list[str]]) -> str:
    """An HTML-like table without borders: a one-cell row spans the table, other cells align left."""
    width = max(len(row) for row in rows)
    cells = []
    for row in rows:
        if len(row) == 1:
            cells.append(f'<tr><td colspan="{width}">{row[0]}</td></tr>')
        else:
            padded = row + [""] * (width - len(row))
            cells.append("<tr>" + "".join(f'<td align="left">{cell}</td>' for cell in padded) + "</tr>")
    return f'<<table border="0" cellborder="0" cellspacing="0" cellpadding="1">{"".join(cells)}</table>>'


def _note_colour(problem: str | None) -> str:
    return style.SECONDARY_TEXT if problem is None else style.PROBLEMS[problem].colour


def _tensor_label(tensor: TensorInfo, show_data: bool) -> str:
    small = style.SMALL_FONT_SIZE
    lines = []
    if tensor.title:
        lines.append(_line(tensor.title, bold=True))
    lines.append(_line(tensor.shape_text, size=small) if tensor.title else _escape(tensor.shape_text))
    small_grad = tensor.grad is not None and tensor.grad.size <= style.SMALL_TENSOR
    if tensor.problem is not None:
        lines.append(_line("⚠ " + str(tensor.note), size=small, colour=_note_colour(tensor.problem), bold=True))
    elif tensor.note is not None and not (show_data and small_grad):  # the norm says nothing the values don't
        lines.append(_line(tensor.note, size=small, colour=style.SECONDARY_TEXT))
    if show_data:
        if tensor.data is not None and tensor.data.size <= style.SMALL_TENSOR:
            lines.append(_line(f"data {style.values_text(tensor.data)}", size=small, colour=style.SECONDARY_TEXT))
        if small_grad:
            lines.append(_line(f"grad {style.values_text(tensor.grad)}", size=small, colour=style.SECONDARY_TEXT))
    return "<" + "<br/>".join(lines) + ">"


def _problem_style(base: str, problem: str | None) -> dict[str, str]:
    if problem is None:
        return {"style": base}
    marking = style.PROBLEMS[problem]
    return {"color": marking.colour, "penwidth": "2.5", "style": f"{base},{marking.dash}" if marking.dash else base}


def _tensor_style(tensor: TensorInfo) -> dict[str, str]:
    kind = style.KINDS[tensor.kind]
    return {"fillcolor": kind.fill, "color": kind.border, **_problem_style("filled", tensor.problem)}


def _op_label(op: OpInfo, note: str | None = None, problem: str | None = None) -> str:
    lines = [_line(op.name, bold=True)]
    if op.constants:
        text = f"+{style.count_text(op.constants, 'no-grad input')}"
        lines.append(_line(text, size=style.TINY_FONT_SIZE, colour=style.SECONDARY_TEXT))
    if note is not None:
        lines.append(_line("⚠ " + note, size=style.SMALL_FONT_SIZE, colour=_note_colour(problem), bold=True))
    return "<" + "<br/>".join(lines) + ">"


def _op_style(problem: str | None = None) -> dict[str, str]:
    kind = style.KINDS["op"]
    return {"fillcolor": kind.fill, "color": kind.border, **_problem_style("filled,rounded", problem)}


def _box_style(container: Container, problem: str | None) -> dict[str, str]:
    kind = style.KINDS["fold" if container.kind == "fold" else "module"]
    return {"shape": "box3d", "fillcolor": kind.fill, "color": kind.border, **_problem_style("filled", problem)}


def _legend(kinds: set[str], problems: set[str]) -> str:
    """The legend, one row under the picture: a swatch per kind of node, and per gradient problem, in it."""
    title = _line("legend", size=style.SMALL_FONT_SIZE, colour=style.SECONDARY_TEXT, bold=True)
    cells = [f'<td border="0">{title}</td>']
    for entry in style.legend_entries(kinds, problems):
        text = _line(entry["text"], size=style.SMALL_FONT_SIZE)
        if entry["key"] in style.PROBLEMS:
            dash = f' style="{entry["dash"]}"' if entry["dash"] else ""
            cells.append(f'<td color="{entry["border"]}" border="2"{dash}>{text}</td>')
        else:
            cells.append(f'<td bgcolor="{entry["fill"]}" color="{entry["border"]}">{text}</td>')
    return f'<<table border="0" cellborder="1" cellspacing="4" cellpadding="3"><tr>{"".join(cells)}</tr></table>>'
