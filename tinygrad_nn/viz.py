"""Graphviz pictures of the computation graph: `draw_graph`, `render_graph` and `save_graph`.

`draw_graph` walks the nodes that computed a tensor (the skeleton `backward` walks, which stays after backward)
and describes it in the DOT language with the `graphviz` package: a rounded box per op (its `Function`'s class
name), a square box per tensor (shape and dtype, and the gradient's norm once there is one) and, when the model
is given, the dotted names of its parameters and a nested cluster per module call. Writing DOT text needs
nothing else; turning it into a picture needs Graphviz's ``dot`` program, which `render_graph` asks for by name
when it is missing.

The walk is iterative and breadth-first from the output, so a graph of 100,000 ops is no problem, and when
`max_nodes` cuts it short the part next to the output is what gets drawn.
"""

from __future__ import annotations

import html
from collections import deque
from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import graphviz
import numpy as np

from .autograd import Function, _OutputRef
from .nn.module import Module, Parameter
from .tensor import Tensor

__all__ = ["GraphvizNotFoundError", "draw_graph", "render_graph", "save_graph"]

# --------------------------------------------------------------------------------------------------------------
# Look: one font, muted fills, a border colour per kind of node; a problem with a gradient overrides the border.
# --------------------------------------------------------------------------------------------------------------

_FONT = "Helvetica,Arial,sans-serif"
_GREY_TEXT = "#555555"

# kind: (fill, border, legend text)
_KINDS = {
    "input": ("#dff2d8", "#4f9a45", "input"),
    "parameter": ("#fdebc8", "#c28a1e", "parameter"),
    "op": ("#dce8f7", "#4a74a8", "op"),
    "tensor": ("#ffffff", "#8c8c8c", "tensor"),
    "output": ("#ecdcf4", "#8a4fa8", "output"),
    "module": ("#e6e6e6", "#5f5f5f", "collapsed module"),
}

# problem: (colour, extra border style, legend text), mildest first
_PROBLEMS = {
    "vanishing": ("#e8710a", "dashed", "vanishing gradient"),
    "zero": ("#e8710a", "", "zero gradient"),
    "nonfinite": ("#d62728", "", "NaN / inf gradient"),
}

_CLUSTER_FILLS = ("#f6f6f6", "#ececec", "#e2e2e2")

# With show_data=True, tensors with at most this many elements show their values.
_SMALL_TENSOR = 6

_RANKDIRS = ("TB", "LR", "BT", "RL")

# Formats whose text is the graph's own DOT source: writing them needs no Graphviz program.
_SOURCE_FORMATS = ("dot", "gv")


# --------------------------------------------------------------------------------------------------------------
# Public functions
# --------------------------------------------------------------------------------------------------------------


def draw_graph(
    root: Tensor | Sequence[Tensor],
    model: Module | None = None,
    *,
    names: Mapping[str, Tensor] | None = None,
    show_grads: bool = True,
    show_data: bool = False,
    max_depth: int | None = None,
    max_nodes: int | None = 500,
    rankdir: str = "TB",
    vanishing_ratio: float | None = 1e-3,
    legend: bool = True,
) -> graphviz.Digraph:
    """Draw the graph that computed `root` (a Tensor, or a list of Tensors) as a `graphviz.Digraph`.

    Ops are labelled with their `Function`'s class name; every op's output and every leaf is a tensor box with
    its shape and dtype. With `model`, parameters carry their dotted names (``0.weight``) and every module call
    is a cluster labelled with name and class (``0: Linear``), nested as the calls were; two calls of one
    module are two clusters. A legend in the picture names the colours. Works before and after ``backward()``.

    - `names`: titles for other tensors, such as ``{"x": x, "loss": loss}``: inputs, intermediate results, the
      output (like torchviz's ``params``; a name given here wins over the model's).

    - `show_grads`: after backward, show the norm of each leaf's gradient, and of each computed tensor's when
      backward ran inside `retain_grads`. A gradient that is all zero, or holds NaN or inf, gets a coloured
      border and a note; so does a *vanishing* one, whose norm is below `vanishing_ratio` times the largest
      gradient norm in the picture (None turns that off).
    - `show_data`: also print the values and gradients of tensors with at most 6 elements (micrograd-style).
      Computed tensors do not keep their values, so only leaves and the root(s) have data to print.
    - `max_depth`: draw clusters for this many levels of module nesting; a module call nested deeper becomes
      one box with its name, its class, the shapes that flow in and out and its parameters (0 collapses the
      whole model into one box).
    - `max_nodes`: draw at most this many ops (a collapsed module counts as one), nearest the output first,
      and a marker saying how many were left out. None draws everything.
    - `rankdir`: "TB" (output at the bottom), "LR", "BT" or "RL". `legend`: False leaves the legend out.

    ``graph.source`` is the DOT text, which needs no Graphviz program; in Jupyter the returned graph shows
    inline; `render_graph` writes it as a picture::

        loss = loss_fn(model(x), y)
        loss.backward()
        graph = draw_graph(loss, model)
        render_graph(graph, "graph.svg")
    """
    roots = _as_roots(root)
    if model is not None and not isinstance(model, Module):
        raise TypeError(f"draw_graph: model must be a Module (or None), got {type(model).__name__}")
    if max_depth is not None and (isinstance(max_depth, bool) or not isinstance(max_depth, int) or max_depth < 0):
        raise ValueError(f"draw_graph: max_depth must be None or an integer >= 0, got {max_depth!r}")
    if max_nodes is not None and (isinstance(max_nodes, bool) or not isinstance(max_nodes, int) or max_nodes < 1):
        raise ValueError(f"draw_graph: max_nodes must be None or an integer >= 1, got {max_nodes!r}")
    if rankdir not in _RANKDIRS:
        raise ValueError(f"draw_graph: rankdir must be one of {', '.join(_RANKDIRS)}, got {rankdir!r}")
    if vanishing_ratio is not None and not (isinstance(vanishing_ratio, (int, float)) and vanishing_ratio > 0):
        raise ValueError(f"draw_graph: vanishing_ratio must be None or a positive number, got {vanishing_ratio!r}")
    drawing = _Drawing(roots, model, _check_names(names), max_depth, max_nodes)
    return drawing.to_dot(
        show_grads=show_grads, show_data=show_data, rankdir=rankdir, vanishing_ratio=vanishing_ratio, legend=legend
    )


class GraphvizNotFoundError(graphviz.ExecutableNotFound):
    """Rendering needs Graphviz's ``dot`` program and it is not on PATH; the message says how to install it.

    A subclass of ``graphviz.ExecutableNotFound`` (itself a `RuntimeError`), so either name catches it.
    """

    def __init__(self, message: str) -> None:
        RuntimeError.__init__(self, message)


def render_graph(graph: graphviz.Graph | graphviz.Digraph, path: str | PathLike, format: str | None = None) -> Path:
    """Write `graph` to exactly `path` and return that path.

    The format is `format`, else the suffix of `path` (``.svg``, ``.png``, ``.pdf``...), else SVG. ``.dot`` and
    ``.gv`` (or ``format="dot"``) write the DOT source and need no Graphviz program; every other format runs
    Graphviz's ``dot``, and raises `GraphvizNotFoundError`, which says what to install, when it is missing.
    """
    path = Path(path)
    chosen = (format or path.suffix.lstrip(".") or "svg").lower()
    if chosen in _SOURCE_FORMATS:
        path.write_text(graph.source, encoding="utf-8")
        return path
    if chosen not in graphviz.FORMATS:
        given = f"format={format!r}" if format else f"the suffix of {path.name!r}"
        raise ValueError(
            f"render_graph: {given} is not a format Graphviz writes; use svg, png, pdf or dot "
            f"(all of them: {', '.join(sorted(graphviz.FORMATS))})"
        )
    try:
        picture = graph.pipe(format=chosen)
    except graphviz.ExecutableNotFound as error:
        raise GraphvizNotFoundError(
            f"writing {path.name} as {chosen} needs Graphviz's 'dot' program, which is not on PATH. Install "
            "Graphviz itself (pip's graphviz package only writes DOT text): 'apt-get install graphviz' on Debian "
            "or Ubuntu, 'brew install graphviz' on macOS, 'conda install graphviz', or from "
            "https://graphviz.org/download/. Without it, graph.source and .dot files still work."
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
    """Draw the graph of `root` with `draw_graph` (`model` and `options` go to it), write it to `path`, return it.

    The format comes from the suffix: ``.svg``, ``.png`` and ``.pdf`` are rendered by Graphviz's ``dot``;
    ``.dot`` and ``.gv`` are the DOT source, which needs no Graphviz program::

        save_graph(loss, "graph.svg", model, max_depth=1)
    """
    path = Path(path)
    if format is None and not path.suffix:
        raise ValueError(
            f"save_graph takes the format from the file's suffix, and {str(path)!r} has none: "
            "end it in .svg, .png, .pdf or .dot (or pass format=)"
        )
    return render_graph(draw_graph(root, model, **options), path, format)


# --------------------------------------------------------------------------------------------------------------
# Reading the graph
# --------------------------------------------------------------------------------------------------------------


def _as_roots(root: Any) -> list[Tensor]:
    """The tensors to draw from, each once, checked."""
    given_list = isinstance(root, (list, tuple))
    items = list(root) if given_list else [root]
    if not items:
        raise ValueError("draw_graph got an empty list; pass the tensor (or tensors) whose graph to draw")
    roots: list[Tensor] = []
    for position, item in enumerate(items):
        if not isinstance(item, Tensor):
            what = f"item {position} of the list is" if given_list else "got"
            raise TypeError(f"draw_graph needs a Tensor or a list of Tensors; {what} a {type(item).__name__}")
        if item._node is None and not item.requires_grad:
            raise ValueError(
                f"draw_graph got a tensor of shape {item.shape} with no graph: it does not require grad (it was "
                "computed inside no_grad(), or from inputs that don't require grad), so no ops were recorded"
            )
        if not any(item is seen for seen in roots):
            roots.append(item)
    return roots


def _check_names(names: Any) -> dict[str, Tensor]:
    if names is None:
        return {}
    if not isinstance(names, Mapping):
        raise TypeError(f"draw_graph: names must be a dict of name -> Tensor, got {type(names).__name__}")
    for name, tensor in names.items():
        if not isinstance(tensor, Tensor):
            raise TypeError(f"draw_graph: names[{name!r}] must be a Tensor, got {type(tensor).__name__}")
    return {str(name): tensor for name, tensor in names.items()}


def _edge_node(edge: Any) -> Function | None:
    """The op behind an edge of ``node.parents``; None for a leaf or a constant."""
    if edge is None or isinstance(edge, Tensor):
        return None
    if isinstance(edge, _OutputRef):
        return edge.node
    return edge


def _edge_key(edge: Any) -> tuple[int, int | None]:
    """Which output of which op an edge carries: (id of the node, output index or None for a single output)."""
    if isinstance(edge, _OutputRef):
        return id(edge.node), edge.index
    return id(edge), None


class _Unit:
    """What an op is drawn as: itself, or the box of the collapsed module call it happened in."""

    __slots__ = ("box_scope", "constants", "container", "folded", "inputs", "node", "node_id", "ops", "outputs")

    def __init__(self, node: Function | None, box_scope: tuple | None, container: tuple | None) -> None:
        self.node = node  # the op, when drawn as itself
        self.box_scope = box_scope  # the collapsed module call, when drawn as a box
        self.container = container  # the module call (cluster) it is drawn in; None at the top level
        self.ops: list[Function] = []
        self.node_id = ""
        # For a box: what flows in and out (node id -> shape text), its no-grad inputs, its own parameters.
        self.inputs: dict[str, str] = {}
        self.outputs: dict[Any, str] = {}
        self.constants = 0
        self.folded: list[_TensorBox] = []


class _TensorBox:
    """A tensor to draw: a leaf, or an output of an op."""

    __slots__ = ("container", "data", "folded", "grad", "kind", "node_id", "note", "problem", "shape_text", "title")

    def __init__(self, node_id: str, kind: str, title: str, shape: tuple, dtype: Any, container: tuple | None) -> None:
        self.node_id = node_id
        self.kind = kind  # a key of _KINDS
        self.title = title
        self.shape_text = _shape_text(shape, dtype)
        self.container = container
        self.folded = False  # listed inside a collapsed module's box instead of drawn
        self.grad: np.ndarray | None = None
        self.data: np.ndarray | None = None
        self.note: str | None = None  # what the picture says about the gradient
        self.problem: str | None = None  # a key of _PROBLEMS


def _shape_text(shape: tuple, dtype: Any) -> str:
    return f"{'scalar' if shape == () else str(tuple(shape))} {np.dtype(dtype)}"


def _scope_chain(scope: tuple | None) -> list[tuple]:
    """A scope as the list of its module calls, outermost first."""
    chain = []
    while scope is not None:
        chain.append(scope)
        scope = scope[1]
    chain.reverse()
    return chain


class _Drawing:
    """One walk of the graph (`__init__`), the things to draw (`_lay_out`), then their DOT text (`to_dot`)."""

    def __init__(
        self,
        roots: list[Tensor],
        model: Module | None,
        names: dict[str, Tensor],
        max_depth: int | None,
        max_nodes: int | None,
    ) -> None:
        self.roots = roots
        self.max_depth = max_depth
        # Names by identity: of leaves (the model's parameters, then the caller's names), of computed tensors.
        self.leaf_names: dict[int, str] = {}
        self.computed_names: dict[tuple[int, int | None], str] = {}
        self.module_names: dict[int, str] = {}
        self.parameter_ids: set[int] = set()
        if model is not None:
            self.leaf_names = {id(p): name for name, p in model.named_parameters()}
            self.parameter_ids = set(self.leaf_names)
            self.module_names = {id(m): name for name, m in model.named_modules()}
        self.named = names  # keeps the named tensors, and so their ids, alive while drawing
        for name, tensor in names.items():
            if tensor._node is None:
                self.leaf_names[id(tensor)] = name
            else:
                self.computed_names[_edge_key(tensor._node)] = name
        self._chains: dict[int, list[tuple]] = {}
        self._walk(max_nodes)
        self._lay_out()

    def _chain(self, scope: tuple | None) -> list[tuple]:
        # Keyed by identity: two calls of one module are equal tuples, but two different scopes.
        if scope is None:
            return []
        chain = self._chains.get(id(scope))
        if chain is None:
            chain = self._chains[id(scope)] = _scope_chain(scope)
        return chain

    def _walk(self, max_nodes: int | None) -> None:
        """Visit the ops breadth-first from the roots; give each a unit until `max_nodes` units exist."""
        self.unit_of: dict[Function, _Unit] = {}
        units: list[_Unit] = []
        boxes: dict[int, _Unit] = {}
        self.left_out = 0
        seen: set[Function] = set()
        queue: deque[Function] = deque()
        for root in self.roots:
            node = _edge_node(root._node)
            if node is not None and node not in seen:
                seen.add(node)
                queue.append(node)
        max_depth = self.max_depth
        while queue:
            node = queue.popleft()
            chain = self._chain(getattr(node, "scope", None))
            room = max_nodes is None or len(units) < max_nodes
            unit: _Unit | None = None
            if max_depth is not None and len(chain) > max_depth:
                unit = boxes.get(id(chain[max_depth]))
                if unit is None and room:
                    unit = _Unit(None, chain[max_depth], chain[max_depth - 1] if max_depth else None)
                    boxes[id(chain[max_depth])] = unit
                    units.append(unit)
            elif room:
                unit = _Unit(node, None, chain[-1] if chain else None)
                units.append(unit)
            if unit is None:
                self.left_out += 1
            else:
                unit.ops.append(node)
                self.unit_of[node] = unit
            for edge in node.parents:
                parent = _edge_node(edge)
                if parent is not None and parent not in seen:
                    seen.add(parent)
                    queue.append(parent)
        # Forward order (inputs first): dot orders each rank by first mention, so the picture reads that way.
        units.reverse()
        for position, unit in enumerate(units):
            unit.node_id = f"op{position}" if unit.box_scope is None else f"module{position}"
        self.units = units

    # ---------------------------------------------------------------------------------------------------------
    # What to draw, and where
    # ---------------------------------------------------------------------------------------------------------

    def _lay_out(self) -> None:
        self.tensors: list[_TensorBox] = []
        self.edges: dict[tuple[str, str], dict[str, str]] = {}
        root_of: dict[tuple[int, int | None], Tensor] = {}
        self.root_titles: dict[int, str] = {}
        for position, root in enumerate(self.roots):
            title = "output" if len(self.roots) == 1 else f"output {position}"
            if root._node is None:
                self.root_titles[id(root)] = self.leaf_names.get(id(root), title)
            else:
                self.root_titles[id(root)] = self.computed_names.get(_edge_key(root._node), title)
                root_of[_edge_key(root._node)] = root

        # Where a tensor is drawn depends on who uses it: in the innermost module call that encloses its producer
        # and all its consumers, so a tensor passed from one module to the next sits between their clusters,
        # and a parameter used only inside one collapsed module is listed in its box.
        leaves: dict[int, Tensor] = {}
        leaf_users: dict[int, list[_Unit]] = {}
        self.output_users: dict[tuple[int, int | None], list[_Unit]] = {}
        for unit in self.units:
            for node in unit.ops:
                for edge in node.parents:
                    if edge is None:
                        continue
                    if isinstance(edge, Tensor):
                        leaves.setdefault(id(edge), edge)
                        users = leaf_users.setdefault(id(edge), [])
                    else:
                        users = self.output_users.setdefault(_edge_key(edge), [])
                    if not any(unit is user for user in users):
                        users.append(unit)

        self.leaf_ids: dict[int, str] = {}
        for position, (key, leaf) in enumerate(leaves.items()):
            users = leaf_users[key]
            kind, title = self._leaf_title(leaf)
            if any(leaf is root for root in self.roots):
                kind, title = "output", self.root_titles[id(leaf)]
            collapsed_owner = kind == "parameter" and len(users) == 1 and users[0].box_scope is not None
            container = self._common_container(users) if kind == "parameter" else None
            box = self._add_tensor(f"leaf{position}", kind, title, leaf.shape, leaf.dtype, container)
            box.grad, box.data = leaf.grad, leaf.data
            if collapsed_owner:
                box.folded = True
                users[0].folded.append(box)
            else:
                self.leaf_ids[key] = box.node_id
        for position, root in enumerate(self.roots, start=len(leaves)):
            if root._node is None and id(root) not in self.leaf_ids:  # a leaf drawn on its own
                title = self.root_titles[id(root)]
                box = self._add_tensor(f"leaf{position}", "output", title, root.shape, root.dtype, None)
                box.grad, box.data = root.grad, root.data
                self.leaf_ids[id(root)] = box.node_id

        self.marker_needed = self.left_out > 0
        for unit in self.units:
            for node in unit.ops:
                for edge in node.parents:
                    if edge is None:
                        unit.constants += 1
                    else:
                        self._connect(edge, unit)
            if unit.node is not None:
                self._add_outputs(unit, unit.node, root_of)
            else:
                for node in unit.ops:
                    self._add_box_roots(unit, node, root_of)

    def _add_tensor(
        self, node_id: str, kind: str, title: str, shape: tuple, dtype: Any, container: tuple | None
    ) -> _TensorBox:
        box = _TensorBox(node_id, kind, title, shape, dtype, container)
        self.tensors.append(box)
        return box

    def _add_outputs(self, unit: _Unit, node: Function, root_of: dict) -> None:
        """The tensor box of each output of an op drawn as itself."""
        retained = getattr(node, "grad", None)  # only set by backward inside retain_grads()
        if node.shape is None:  # several outputs; the retained gradient is a list, one entry per output
            outputs = [(ref.index, ref.shape, ref.dtype) for ref in node.outputs]
        else:
            outputs = [(None, node.shape, node.dtype)]
        for index, shape, dtype in outputs:
            key = (id(node), index)
            root = root_of.get(key)
            if root is None:
                users = self.output_users.get(key, [])
                title = self.computed_names.get(key, "")
                box = self._add_tensor("", "tensor", title, shape, dtype, self._common_container([unit, *users]))
            else:  # what comes out of the whole computation sits outside every module
                box = self._add_tensor("", "output", self.root_titles[id(root)], shape, dtype, None)
                box.data = root.data
            box.node_id = unit.node_id + ("_out" if index is None else f"_out{index}")
            if index is not None:
                box.shape_text = f"[{index}] {box.shape_text}"
            box.grad = retained if index is None or retained is None else retained[index]
            self._edge(unit.node_id, box.node_id)

    def _add_box_roots(self, unit: _Unit, node: Function, root_of: dict) -> None:
        """A root computed inside a collapsed module: its tensor box, fed by the module's box."""
        retained = getattr(node, "grad", None)
        for index in [None] if node.shape is not None else [ref.index for ref in node.outputs]:
            root = root_of.get((id(node), index))
            if root is None:
                continue
            box = self._add_tensor("", "output", self.root_titles[id(root)], root.shape, root.dtype, None)
            box.node_id = unit.node_id + ("_out" if index is None else f"_out{index}")
            box.grad = retained if index is None or retained is None else retained[index]
            box.data = root.data
            unit.outputs[box.node_id] = box.shape_text
            self._edge(unit.node_id, box.node_id)

    def _connect(self, edge: Any, consumer: _Unit) -> None:
        """The arrow from where an input of `consumer` comes from; nothing inside one collapsed module."""
        if isinstance(edge, Tensor):
            tail = self.leaf_ids.get(id(edge))
            if tail is None:  # a parameter listed in the consumer's own box
                return
            shape_text = _shape_text(edge.shape, edge.dtype)
        else:
            producer = self.unit_of.get(_edge_node(edge))
            shape_text = _shape_text(edge.shape, edge.dtype)
            if producer is None:  # beyond max_nodes
                self.marker_needed = True
                self._edge("more", consumer.node_id, style="dashed")
                return
            if producer is consumer:
                return
            if producer.box_scope is None:
                index = edge.index if isinstance(edge, _OutputRef) else None
                tail = producer.node_id + ("_out" if index is None else f"_out{index}")
            else:
                tail = producer.node_id
                producer.outputs[_edge_key(edge)] = shape_text
        if consumer.box_scope is not None:
            consumer.inputs[tail] = shape_text
        self._edge(tail, consumer.node_id)

    def _edge(self, tail: str, head: str, **attributes: str) -> None:
        self.edges.setdefault((tail, head), attributes)

    def _common_container(self, units: list[_Unit]) -> tuple | None:
        """The innermost module call enclosing all these units (None: the top level)."""
        common = self._chain(units[0].container)
        for unit in units[1:]:
            chain = self._chain(unit.container)
            length = 0
            while length < min(len(common), len(chain)) and common[length] is chain[length]:
                length += 1
            common = common[:length]
        return common[-1] if common else None

    def _leaf_title(self, leaf: Tensor) -> tuple[str, str]:
        """(kind, title) of a leaf: a parameter (with its dotted name if the model has it), or an input."""
        kind = "parameter" if isinstance(leaf, Parameter) or id(leaf) in self.parameter_ids else "input"
        return kind, self.leaf_names.get(id(leaf), kind)

    def _module_title(self, module: Module) -> str:
        name = self.module_names.get(id(module))
        return f"{name}: {type(module).__name__}" if name else type(module).__name__

    # ---------------------------------------------------------------------------------------------------------
    # Gradients
    # ---------------------------------------------------------------------------------------------------------

    def _judge_gradients(self, vanishing_ratio: float | None) -> None:
        """Note each gradient's norm, or what is wrong with it; vanishing is judged against the largest norm."""
        norms = {}
        for box in self.tensors:
            if box.grad is None:
                continue
            grad = np.asarray(box.grad)
            if grad.dtype.kind == "f" and not np.isfinite(grad).all():
                nans, infs = int(np.isnan(grad).sum()), int(np.isinf(grad).sum())
                counts = " and ".join([f"{nans} NaN"] * (nans > 0) + [f"{infs} inf"] * (infs > 0))
                box.problem, box.note = "nonfinite", f"grad has {counts} of {grad.size}"
                continue
            norm = float(np.linalg.norm(grad.ravel().astype(np.float64, copy=False)))
            if norm == 0.0:
                box.problem, box.note = "zero", "grad is all zero"
            else:
                norms[id(box)] = norm
                box.note = f"grad norm {norm:.3g}"
        largest = max(norms.values(), default=0.0)
        if vanishing_ratio is None:
            return
        for box in self.tensors:
            norm = norms.get(id(box))
            if norm is not None and norm < vanishing_ratio * largest:
                box.problem = "vanishing"
                box.note = f"grad norm {norm:.3g} ({norm / largest:.0e} × largest)"

    # ---------------------------------------------------------------------------------------------------------
    # DOT
    # ---------------------------------------------------------------------------------------------------------

    def to_dot(
        self, *, show_grads: bool, show_data: bool, rankdir: str, vanishing_ratio: float | None, legend: bool
    ) -> graphviz.Digraph:
        graph = graphviz.Digraph(
            "graph",
            graph_attr={
                "rankdir": rankdir,
                "fontname": _FONT,
                "fontsize": "11",
                "bgcolor": "white",
                "nodesep": "0.3",
                "ranksep": "0.3",
                "newrank": "true",
            },
            node_attr={
                "fontname": _FONT,
                "fontsize": "11",
                "shape": "box",
                "style": "filled",
                "penwidth": "1.2",
                "margin": "0.1,0.05",
                "height": "0.3",
            },
            edge_attr={"color": "#6b6b6b", "arrowsize": "0.7"},
        )
        if show_grads:
            self._judge_gradients(vanishing_ratio)
        else:
            for box in self.tensors:
                box.grad = None
        # Node statements grouped by the module call they are drawn in (key 0: the top level).
        members: dict[int, list[tuple[str, str, dict[str, str]]]] = {}
        clusters: dict[int, tuple] = {}
        kinds: set[str] = set()
        problems: set[str] = set()

        def place(container: tuple | None, node_id: str, label: str, attributes: dict[str, str]) -> None:
            scope = container
            while scope is not None and id(scope) not in clusters:  # a cluster needs its enclosing ones too
                clusters[id(scope)] = scope
                scope = scope[1]
            members.setdefault(0 if container is None else id(container), []).append((node_id, label, attributes))

        for unit in self.units:
            if unit.node is not None:
                kinds.add("op")
                place(unit.container, unit.node_id, _op_label(type(unit.node).__name__, unit.constants), _op_style())
            else:
                kinds.add("module")
                problems.update(box.problem for box in unit.folded if box.problem)
                place(unit.container, unit.node_id, self._module_label(unit, show_data), _module_style(unit))
        for box in self.tensors:
            if not box.folded:
                kinds.add(box.kind)
                if box.problem:
                    problems.add(box.problem)
                place(box.container, box.node_id, _tensor_label(box, show_data), _tensor_style(box))
        if self.marker_needed:
            label = f"… {self.left_out:,} more op{'s' if self.left_out != 1 else ''} not drawn (max_nodes)"
            place(None, "more", f"<{_line(label, size=10, colour=_GREY_TEXT)}>", _marker_style())

        for node_id, label, attributes in members.get(0, []):
            graph.node(node_id, label, **attributes)
        self._write_clusters(graph, clusters, members)
        for (tail, head), attributes in self.edges.items():
            graph.edge(tail, head, **attributes)
        if legend:
            graph.node("legend", _legend(kinds, problems), shape="plaintext", style="", margin="0")
        return graph

    def _write_clusters(self, graph: graphviz.Digraph, clusters: dict[int, tuple], members: dict[int, list]) -> None:
        """A subgraph per module call, filled, then nested innermost first (attaching one copies its text)."""
        subgraphs: dict[int, graphviz.Digraph] = {}
        depth = {key: len(self._chain(scope)) for key, scope in clusters.items()}
        for number, (key, scope) in enumerate(clusters.items()):
            title = _line(self._module_title(scope[0]), size=10, colour="#333333")
            subgraph = graphviz.Digraph(
                f"cluster_{number}",
                graph_attr={
                    "label": f"<{title}>",
                    "labeljust": "l",
                    "style": "rounded,filled",
                    "fillcolor": _CLUSTER_FILLS[(depth[key] - 1) % len(_CLUSTER_FILLS)],
                    "color": "#b4b4b4",
                    "margin": "10",
                },
            )
            for node_id, label, attributes in members.get(key, []):
                subgraph.node(node_id, label, **attributes)
            subgraphs[key] = subgraph
        for key in sorted(subgraphs, key=lambda k: -depth[k]):  # sorted() is stable: siblings keep their order
            enclosing = clusters[key][1]
            (graph if enclosing is None else subgraphs[id(enclosing)]).subgraph(subgraphs[key])

    def _module_label(self, unit: _Unit, show_data: bool) -> str:
        """A collapsed module call: a table of its name and class, the shapes in and out, and its parameters."""
        assert unit.box_scope is not None
        rows = [[_line(self._module_title(unit.box_scope[0]), bold=True)]]
        for word, shapes in (("in", unit.inputs.values()), ("out", unit.outputs.values())):
            rows.extend([_line(word, size=10), _line(shape, size=10)] for shape in shapes)
        for box in unit.folded:
            row = [_line(box.title, size=10), _line(box.shape_text, size=10)]
            if box.note is not None:
                warning = "⚠ " if box.problem else ""
                row.append(_line(warning + box.note, size=10, colour=_note_colour(box.problem)))
            if show_data and box.grad is not None and np.size(box.grad) <= _SMALL_TENSOR:
                row.append(_line(f"grad {_values(box.grad)}", size=10, colour=_GREY_TEXT))
            rows.append(row)
        count = len(unit.ops)
        summary = f"{count} op{'s' if count != 1 else ''} inside"
        if unit.constants:
            summary += f", +{unit.constants} no-grad input{'s' if unit.constants != 1 else ''}"
        rows.append([_line(summary, size=9, colour=_GREY_TEXT)])
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


def _values(array: Any) -> str:
    """A handful of values, micrograd-style: ``0.5`` or ``[0.1, -2, 3.5]``."""
    array = np.asarray(array)
    # Adding 0.0 turns -0.0 into 0.0, which reads better.
    texts = [f"{v + 0.0:.4g}" if isinstance(v, float) else str(v) for v in array.ravel().tolist()]
    return texts[0] if array.ndim == 0 else "[" + ", ".join(texts) + "]"


def _note_colour(problem: str | None) -> str:
    return _GREY_TEXT if problem is None else _PROBLEMS[problem][0]


def _tensor_label(box: _TensorBox, show_data: bool) -> str:
    lines = []
    if box.title:
        lines.append(_line(box.title, bold=True))
    lines.append(_line(box.shape_text, size=10) if box.title else _escape(box.shape_text))
    grad_printed = show_data and box.grad is not None and np.size(box.grad) <= _SMALL_TENSOR
    if box.problem is not None:
        lines.append(_line("⚠ " + str(box.note), size=10, colour=_note_colour(box.problem), bold=True))
    elif box.note is not None and not grad_printed:  # the norm says nothing the printed values don't
        lines.append(_line(box.note, size=10, colour=_GREY_TEXT))
    if show_data:
        if box.data is not None and box.data.size <= _SMALL_TENSOR:
            lines.append(_line(f"data {_values(box.data)}", size=10, colour=_GREY_TEXT))
        if box.grad is not None and np.size(box.grad) <= _SMALL_TENSOR:
            lines.append(_line(f"grad {_values(box.grad)}", size=10, colour=_GREY_TEXT))
    return "<" + "<br/>".join(lines) + ">"


def _problem_style(style: str, problem: str | None) -> dict[str, str]:
    if problem is None:
        return {"style": style}
    colour, extra, _ = _PROBLEMS[problem]
    return {"color": colour, "penwidth": "2.5", "style": f"{style},{extra}" if extra else style}


def _tensor_style(box: _TensorBox) -> dict[str, str]:
    fill, border, _ = _KINDS[box.kind]
    return {"fillcolor": fill, "color": border, **_problem_style("filled", box.problem)}


def _op_label(name: str, constants: int) -> str:
    lines = [_line(name, bold=True)]
    if constants:
        lines.append(_line(f"+{constants} no-grad input{'s' if constants != 1 else ''}", size=9, colour=_GREY_TEXT))
    return "<" + "<br/>".join(lines) + ">"


def _op_style() -> dict[str, str]:
    fill, border, _ = _KINDS["op"]
    return {"fillcolor": fill, "color": border, "style": "filled,rounded"}


def _module_style(unit: _Unit) -> dict[str, str]:
    fill, border, _ = _KINDS["module"]
    order = list(_PROBLEMS)
    found = [box.problem for box in unit.folded if box.problem]
    worst = max(found, key=order.index) if found else None
    return {"shape": "box3d", "fillcolor": fill, "color": border, **_problem_style("filled", worst)}


def _marker_style() -> dict[str, str]:
    return {"style": "dashed", "color": "#8c8c8c"}


def _legend(kinds: set[str], problems: set[str]) -> str:
    """The legend as one HTML-like table: a swatch per kind of node, and per gradient problem, in the picture."""
    rows = [f'<tr><td border="0">{_line("legend", size=10, colour=_GREY_TEXT, bold=True)}</td></tr>']
    for kind, (fill, border, text) in _KINDS.items():
        if kind in kinds:
            rows.append(f'<tr><td align="left" bgcolor="{fill}" color="{border}">{_line(text, size=10)}</td></tr>')
    for problem, (colour, extra, text) in _PROBLEMS.items():
        if problem in problems:
            style = f' style="{extra}"' if extra else ""
            rows.append(f'<tr><td align="left" color="{colour}" border="2"{style}>{_line(text, size=10)}</td></tr>')
    return f'<<table border="0" cellborder="1" cellspacing="3" cellpadding="3">{"".join(rows)}</table>>'
