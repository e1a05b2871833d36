"""The picture's model: the graph that computed some tensors, read into ops, tensors and module calls.

`GraphModel` walks the nodes that computed the roots (the skeleton that stays after backward) and describes what
any picture of them needs, in no output format: every op (`OpInfo`), every tensor (`TensorInfo`: leaves, op
outputs, the roots, each with its shape, dtype, gradient and what is wrong with that gradient), every module call
and every run of repeated blocks (`Container`, nested as the calls were), where each tensor belongs, and the
order in which ``backward()`` visits the ops. The Graphviz writer (`dot`) and the explorer (`html`) both read it
and nothing else, so the two pictures cannot disagree.

The walk is iterative, so a graph of 100,000 ops is no problem.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..autograd import Function, _OutputRef, backward_order
from ..nn.module import Module, ModuleList, Parameter, Sequential
from ..tensor import Tensor
from . import style

__all__ = ["Container", "ContainerSummary", "GraphModel", "OpInfo", "TensorInfo", "array_summary", "describe_saved"]

# Repeating units longer than this many modules are not looked for (a period of 8 covers every block in practice).
_MAX_PERIOD = 8


def as_array(value: Any) -> np.ndarray | None:
    """A gradient or data as an ndarray: a Tensor's array (higher-order autograd leaves Tensors in .grad)."""
    if value is None:
        return None
    if isinstance(value, Tensor):
        return value.data
    return np.asarray(value)


class TensorInfo:
    """A tensor of the picture: a leaf (an input or a parameter), an output of an op, or a root.

    `kind` is "input", "parameter", "tensor" (an op's output) or "output" (a root). `container` is the innermost
    module call (or fold) that encloses its producer and all its consumers, where it is drawn; None is the top
    level. `flank` is ``(op, "left" | "right")`` for a parameter drawn beside the one op that uses it.
    """

    __slots__ = (
        "_shape_text",
        "consumers",
        "container",
        "data",
        "dtype",
        "flank",
        "grad",
        "index",
        "kind",
        "norm",
        "note",
        "output_index",
        "problem",
        "producer",
        "shape",
        "title",
    )

    def __init__(self, index: int, kind: str, title: str, shape: tuple, dtype: Any) -> None:
        self.index = index
        self.kind = kind
        self.title = title
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.output_index: int | None = None  # which output of a multi-output op
        self.producer: OpInfo | None = None
        self.consumers: list[tuple[OpInfo, int]] = []  # (op, input position)
        self.container: Container | None = None
        self.flank: tuple[OpInfo, str] | None = None
        self.data: np.ndarray | None = None  # only leaves and roots keep their values
        self.grad: np.ndarray | None = None
        self.norm: float | None = None
        self.problem: str | None = None  # a key of style.PROBLEMS
        self.note: str | None = None  # what the pictures say about the gradient
        self._shape_text: str | None = None

    @property
    def shape_text(self) -> str:
        """``(5, 8) float64``; ``[1] (2,) float64`` for the second output of a multi-output op."""
        if self._shape_text is None:
            text = style.shape_text(self.shape, self.dtype)
            self._shape_text = text if self.output_index is None else f"[{self.output_index}] {text}"
        return self._shape_text

    @property
    def size(self) -> int:
        """The number of elements."""
        return math.prod(self.shape)

    def __repr__(self) -> str:
        return f"<TensorInfo {self.index} {self.kind} {self.title!r} {self.shape_text}>"


class OpInfo:
    """An op of the picture: one node of the graph, with its inputs and outputs as `TensorInfo`.

    `index` is the op's place in a forward order of the graph (every op after the ops it reads from); `call` is
    the module call it ran in, `container` the same or the fold around that call.
    """

    __slots__ = ("call", "constants", "container", "index", "inputs", "name", "node", "outputs")

    def __init__(self, node: Function) -> None:
        self.node = node
        self.name = type(node).__name__
        self.index = -1
        self.call: Container | None = None
        self.container: Container | None = None
        self.inputs: list[TensorInfo | None] = []  # one per edge of node.parents; None: no gradient flows there
        self.outputs: list[TensorInfo] = []
        self.constants = 0  # inputs that need no gradient (the graph keeps no edge to them)

    def __repr__(self) -> str:
        return f"<OpInfo {self.index} {self.name}>"


class Container:
    """A module call (`kind` "call") or a run of repeated blocks (`kind` "fold"), with what is inside it.

    A call's `title` is ``name: Class`` (the class alone for a module outside the model, or for the model
    itself); a fold's is ``Linear-ReLU x 8``, and its `members` are the calls it folds. `depth` counts module
    calls from the top (a model's own call is 1), the measure `max_depth` uses; `level` counts every container
    around this one.
    """

    __slots__ = (
        "children",
        "class_name",
        "depth",
        "index",
        "kind",
        "level",
        "members",
        "module",
        "name",
        "ops",
        "parent",
        "period",
        "repeats",
        "title",
        "unit",
    )

    def __init__(self, kind: str, parent: Container | None) -> None:
        self.kind = kind
        self.parent = parent
        self.index = -1
        self.children: list[Container] = []
        self.ops: list[OpInfo] = []  # directly inside, not in a child
        self.module: Module | None = None
        self.name = ""  # the dotted name in the model ("" when it has none)
        self.class_name = ""
        self.title = ""
        self.depth = 0
        self.level = 0
        self.members: list[Container] = []  # a fold's calls
        self.repeats = 0  # a fold's number of blocks
        self.period = 0  # a fold's modules per block
        self.unit = ""  # a fold's block, as class names: "Linear-ReLU"

    @property
    def path(self) -> str:
        """Where it is: the titles of the calls around it and its own, outermost first, joined by " › "."""
        titles = []
        container: Container | None = self
        while container is not None:
            titles.append(container.title)
            container = container.parent
        return " › ".join(reversed(titles))

    def encloses(self, other: Container | None) -> bool:
        """True when `other` is this container or inside it."""
        while other is not None:
            if other is self:
                return True
            other = other.parent
        return False

    def __repr__(self) -> str:
        return f"<Container {self.index} {self.kind} {self.title!r}>"


class ContainerSummary:
    """What a collapsed module call or a folded run shows: shapes in and out, parameters, gradient norms, ops.

    `parameters` lists each parameter inside as ``(title, shape text, note, problem)``; a fold lists one row per
    parameter of its block, with the range of the blocks' gradient norms.
    """

    __slots__ = ("constants", "inputs", "ops", "outputs", "parameter_count", "parameters", "problem")

    def __init__(self) -> None:
        self.inputs: list[TensorInfo] = []
        self.outputs: list[TensorInfo] = []
        self.parameters: list[tuple[str, str, str | None, str | None]] = []
        self.parameter_count = 0  # elements of all parameters inside
        self.ops = 0
        self.constants = 0
        self.problem: str | None = None


class GraphModel:
    """The graph that computed `roots`, read into ops, tensors and module calls for a picture.

    - `model`: parameters get their dotted names, module calls ``name: Class`` titles.
    - `names`: ``{"x": x}``, titles for other tensors; they win over the model's.
    - `show_grads`: read gradients (leaves' ``.grad``, and computed tensors' kept by `retain_grads`) and judge
      them: zero, NaN/inf, or vanishing (norm below `vanishing_ratio` times the largest in the graph).
    - `fold_repeats`: fold runs of at least this many identical blocks (same class, same parameter shapes,
      consecutive in a `Sequential` or `ModuleList`) into one container each; 0 folds nothing.
    - `monitor`: a `GradientMonitor` that watched the model in training: the parameters it watched get its mean
      gradient norms and its verdicts instead of one step's, and `module_notes` its verdicts on activation
      modules (dead or saturated units).
    """

    def __init__(
        self,
        roots: Sequence[Tensor],
        model: Module | None = None,
        names: Mapping[str, Tensor] | None = None,
        *,
        show_grads: bool = True,
        vanishing_ratio: float | None = style.VANISHING_RATIO,
        fold_repeats: int = style.FOLD_MIN_REPEATS,
        monitor: Any = None,
    ) -> None:
        self.roots = list(roots)
        self.model = model
        self.names = dict(names or {})  # keeps the named tensors, and so their ids, alive
        self.vanishing_ratio = vanishing_ratio
        self.parameter_names: dict[int, str] = {}
        self.module_names: dict[int, str] = {}
        if model is not None:
            self.parameter_names = {id(p): name for name, p in model.named_parameters()}
            self.module_names = {id(m): name for name, m in model.named_modules()}
        self.ops: list[OpInfo] = []  # forward order
        self.walk_order: list[OpInfo] = []  # breadth-first from the roots: nearest the output first
        self.tensors: list[TensorInfo] = []
        self.root_tensors: list[TensorInfo] = []
        self.containers: list[Container] = []  # every container after its parent
        self.top: list[Container] = []  # containers at the top level
        self.top_ops: list[OpInfo] = []  # ops at the top level
        self._summaries: dict[int, ContainerSummary] = {}
        self._inside_cache: dict[int, list[TensorInfo]] | None = None
        self._leaf_of: dict[int, Tensor] = {}  # TensorInfo index -> the leaf Tensor
        self._walk()
        self._read_tensors()
        self._read_calls()
        if fold_repeats and model is not None:
            self._fold(fold_repeats)
        self._finish_containers()
        self._place_tensors()
        if show_grads:
            self._read_gradients()
        self.largest_norm = self._judge_gradients()
        # Module calls' notes and problems from a GradientMonitor: id(module) -> (note, problem key).
        self.module_notes: dict[int, tuple[str, str | None]] = {}
        if monitor is not None:
            self._read_monitor(monitor)
        self.backward = [[self._op_of[node] for node in backward_order(root)] for root in self.roots]

    # ---------------------------------------------------------------------------------------------------------
    # Walking
    # ---------------------------------------------------------------------------------------------------------

    def _walk(self) -> None:
        """Every node reachable from the roots: breadth-first (for max_nodes), then in a forward order."""
        seen: dict[Function, OpInfo] = {}
        queue: deque[Function] = deque()
        for root in self.roots:
            node = _edge_node(root._node)
            if node is not None and node not in seen:
                seen[node] = OpInfo(node)
                queue.append(node)
        walk_order = []
        while queue:
            node = queue.popleft()
            walk_order.append(seen[node])
            for edge in node.parents:
                parent = _edge_node(edge)
                if parent is not None and parent not in seen:
                    seen[parent] = OpInfo(parent)
                    queue.append(parent)
        self._op_of = seen
        self.walk_order = walk_order
        # A forward order: depth first from the roots, each op after everything it reads from, the inputs of an op
        # in argument order (in q @ k, what made q before what made k): as close to the order the ops ran in as
        # the graph tells. Iterative, so a chain of 100,000 ops is fine.
        order: list[OpInfo] = []
        placed: set[Function] = set()
        for root in self.roots:
            start = _edge_node(root._node)
            if start is None or start in placed:
                continue
            placed.add(start)
            stack = [(start, iter(start.parents))]
            while stack:
                node, edges = stack[-1]
                for edge in edges:
                    parent = _edge_node(edge)
                    if parent is not None and parent not in placed:
                        placed.add(parent)
                        stack.append((parent, iter(parent.parents)))
                        break
                else:
                    stack.pop()
                    order.append(seen[node])
        self.ops = order
        for index, op in enumerate(self.ops):
            op.index = index

    def _read_tensors(self) -> None:
        """A TensorInfo per leaf and per op output, in forward order, with producers, consumers and titles."""
        leaf_names = dict(self.parameter_names)
        computed_names: dict[tuple[int, int | None], str] = {}
        for name, tensor in self.names.items():
            if tensor._node is None:
                leaf_names[id(tensor)] = name
            else:
                computed_names[_edge_key(tensor._node)] = name
        root_titles = {}
        for position, root in enumerate(self.roots):
            title = "output" if len(self.roots) == 1 else f"output {position}"
            key = id(root) if root._node is None else _edge_key(root._node)
            root_titles[key] = leaf_names.get(id(root), title) if root._node is None else computed_names.get(key, title)

        leaves: dict[int, TensorInfo] = {}
        outputs: dict[tuple[int, int | None], TensorInfo] = {}
        for op in self.ops:
            node = op.node
            for position, edge in enumerate(node.parents):
                if edge is None:
                    op.inputs.append(None)
                    op.constants += 1
                    continue
                if isinstance(edge, Tensor):
                    tensor = leaves.get(id(edge))
                    if tensor is None:
                        kind = (
                            "parameter" if isinstance(edge, Parameter) or id(edge) in self.parameter_names else "input"
                        )
                        tensor = self._new_tensor(kind, leaf_names.get(id(edge), kind), edge.shape, edge.dtype)
                        tensor.data = edge.data
                        leaves[id(edge)] = tensor
                        self._leaf_of[tensor.index] = edge
                else:
                    tensor = outputs[_edge_key(edge)]
                tensor.consumers.append((op, position))
                op.inputs.append(tensor)
            if node.shape is None and getattr(node, "outputs", None):  # several outputs: one tensor each
                specs = [(ref.index, ref.shape, ref.dtype) for ref in node.outputs]
            else:
                dtype = node.dtype if node.dtype is not None else np.float64
                specs = [(None, node.shape if node.shape is not None else (), dtype)]
            for index, shape, dtype in specs:
                key = (id(node), index)
                tensor = self._new_tensor("tensor", computed_names.get(key, ""), shape, dtype)
                tensor.producer = op
                tensor.output_index = index
                op.outputs.append(tensor)
                outputs[key] = tensor
        for root in self.roots:
            if root._node is None:
                tensor = leaves.get(id(root))
                if tensor is None:  # a leaf drawn on its own
                    tensor = self._new_tensor("output", "", root.shape, root.dtype)
                    leaves[id(root)] = tensor
                    self._leaf_of[tensor.index] = root
                key: Any = id(root)
            else:
                key = _edge_key(root._node)
                tensor = outputs[key]
            tensor.kind = "output"
            tensor.title = root_titles[key]
            tensor.data = root.data
            if not any(tensor is seen for seen in self.root_tensors):
                self.root_tensors.append(tensor)

    def _new_tensor(self, kind: str, title: str, shape: tuple, dtype: Any) -> TensorInfo:
        tensor = TensorInfo(len(self.tensors), kind, title, shape, dtype)
        self.tensors.append(tensor)
        return tensor

    def leaf(self, tensor: TensorInfo) -> Tensor | None:
        """The leaf Tensor behind a TensorInfo (None for an op's output)."""
        return self._leaf_of.get(tensor.index)

    # ---------------------------------------------------------------------------------------------------------
    # Module calls and folds
    # ---------------------------------------------------------------------------------------------------------

    def _read_calls(self) -> None:
        """A Container per module call the ops ran in, nested as the calls were, children in forward order."""
        calls: dict[int, Container] = {}
        for op in self.ops:
            chain = []
            scope = getattr(op.node, "scope", None)
            while scope is not None and id(scope) not in calls:
                chain.append(scope)
                scope = scope[1]
            parent = calls[id(scope)] if scope is not None else None
            for scope in reversed(chain):  # new calls, outermost first
                call = Container("call", parent)
                module = scope[0]
                call.module = module
                call.class_name = type(module).__name__
                call.name = self.module_names.get(id(module), "")
                call.title = f"{call.name}: {call.class_name}" if call.name else call.class_name
                call.depth = 1 if parent is None else parent.depth + 1
                (self.top if parent is None else parent.children).append(call)
                calls[id(scope)] = call
                parent = call
            op.call = parent
            op.container = parent
            (self.top_ops if parent is None else parent.ops).append(op)

    def _fold(self, min_repeats: int) -> None:
        """Fold each run of at least `min_repeats` identical blocks of a Sequential or ModuleList into a Container."""
        assert self.model is not None
        runs = []
        for module in self.model.modules():
            if isinstance(module, (Sequential, ModuleList)):
                children = [child for child in module._modules.values() if child is not None]
                signatures = [_signature(child) for child in children]
                for start, period, repeats in _find_runs(signatures, min_repeats):
                    units = [children[start + k * period : start + (k + 1) * period] for k in range(repeats)]
                    runs.append(units)
        if not runs:
            return
        calls_of: dict[int, list[Container]] = {}
        for call in self._all_calls():
            calls_of.setdefault(id(call.module), []).append(call)
        folded: set[int] = set()  # ids of calls already inside a fold
        for units in runs:
            by_parent: dict[int, tuple[Container | None, list[Container]]] = {}
            for unit in units:
                for module in unit:
                    for call in calls_of.get(id(module), []):
                        key = id(call.parent)
                        by_parent.setdefault(key, (call.parent, []))[1].append(call)
            for parent, calls in by_parent.values():
                modules = [call.module for call in calls]
                if len({id(m) for m in modules}) != len(modules):  # a block called twice: not a plain run
                    continue
                called = {id(m) for m in modules}
                present = [unit for unit in units if any(id(m) in called for m in unit)]
                if len(present) < min_repeats or any(id(call) in folded for call in calls):
                    continue
                fold = self._make_fold(parent, calls, present, folded)
                if fold is not None:
                    folded.update(id(call) for call in fold.children)

    def _all_calls(self) -> list[Container]:
        found, stack = [], list(reversed(self.top))
        while stack:
            call = stack.pop()
            found.append(call)
            stack.extend(reversed(call.children))
        return found

    def _make_fold(
        self, parent: Container | None, members: list[Container], units: list[list[Module]], folded: set[int]
    ) -> Container | None:
        """Fold `members` (calls, children of `parent`) with whatever runs between them; None when it can't."""
        siblings = self.top if parent is None else parent.children
        in_parent = {id(op) for op in self._ops_inside(parent)}
        taken_calls = list(members)
        taken_ops: list[OpInfo] = []
        # Ops between two blocks (a residual add in the parent's forward, say) go into the fold too, so the folded
        # box is one step of the graph: whatever reads a block's output and feeds a later block is inside it.
        while True:
            inside = {id(op) for call in taken_calls for op in self._ops_inside(call)} | {id(op) for op in taken_ops}
            between = self._between(inside, in_parent)
            if not between:
                break
            grown = False
            for op in between:
                child = _child_of(op.call, parent)
                if child is None:
                    if op.container is not parent:  # already in another fold
                        return None
                    if all(op is not taken for taken in taken_ops):
                        taken_ops.append(op)
                        grown = True
                elif all(child is not taken for taken in taken_calls):
                    if id(child) in folded or child.kind == "fold":
                        return None
                    taken_calls.append(child)
                    grown = True
            if not grown:
                break
        # The merge after the last block (the last residual add) belongs to the run too: an op of the parent that
        # reads only from the fold, at least two of its tensors.
        owner_ops = self.top_ops if parent is None else parent.ops
        inside = {id(op) for call in taken_calls for op in self._ops_inside(call)} | {id(op) for op in taken_ops}
        for op in sorted(owner_ops, key=lambda op: op.index):
            if op.container is not parent or id(op) in inside:
                continue
            sources = {id(t) for t in op.inputs if t is not None and t.producer is not None}
            if len(sources) >= 2 and all(
                t.producer is None or id(t.producer) in inside for t in op.inputs if t is not None
            ):
                taken_ops.append(op)
                inside.add(id(op))
        fold = Container("fold", parent)
        fold.children = sorted(taken_calls, key=lambda call: min(op.index for op in self._ops_inside(call)))
        fold.members = sorted(members, key=lambda call: min(op.index for op in self._ops_inside(call)))
        fold.ops = sorted(taken_ops, key=lambda op: op.index)
        fold.repeats = len(units)
        fold.period = len(units[0])
        fold.unit = "-".join(_unit_names(units[0]))
        fold.title = f"{fold.unit} x {fold.repeats}"
        fold.name = (
            f"{fold.members[0].name or fold.members[0].title} … {fold.members[-1].name or fold.members[-1].title}"
        )
        fold.class_name = "fold"
        fold.depth = fold.members[0].depth
        position = min(index for index, sibling in enumerate(siblings) if any(sibling is c for c in taken_calls))
        remaining = [sibling for sibling in siblings if all(sibling is not c for c in taken_calls)]
        remaining.insert(min(position, len(remaining)), fold)
        siblings[:] = remaining
        for call in fold.children:
            call.parent = fold
        owner_ops[:] = [op for op in owner_ops if all(op is not taken for taken in taken_ops)]
        for op in taken_ops:
            op.container = fold
        return fold

    def _ops_inside(self, container: Container | None) -> list[OpInfo]:
        """Every op in `container` or in a container inside it (every op, for None)."""
        if container is None:
            return self.ops
        found, stack = [], [container]
        while stack:
            current = stack.pop()
            found.extend(current.ops)
            stack.extend(current.children)
        return found

    def _between(self, inside: set[int], allowed: set[int]) -> list[OpInfo]:
        """Ops outside `inside` (but in `allowed`) that read from it and feed it, directly or not."""
        consumers: dict[int, list[OpInfo]] = self._consumer_ops()
        ops = {id(op): op for op in self.ops}
        downstream: set[int] = set()
        stack = [ops[key] for key in inside]
        while stack:
            for consumer in consumers[id(stack.pop())]:
                key = id(consumer)
                if key not in downstream and key in allowed:
                    downstream.add(key)
                    stack.append(consumer)
        upstream: set[int] = set()
        stack = [ops[key] for key in inside]
        while stack:
            for tensor in stack.pop().inputs:
                producer = tensor.producer if tensor is not None else None
                if producer is not None and id(producer) not in upstream and id(producer) in allowed:
                    upstream.add(id(producer))
                    stack.append(producer)
        return [ops[key] for key in sorted((downstream & upstream) - inside, key=lambda key: ops[key].index)]

    def _consumer_ops(self) -> dict[int, list[OpInfo]]:
        if not hasattr(self, "_consumers_cache"):
            cache: dict[int, list[OpInfo]] = {id(op): [] for op in self.ops}
            for op in self.ops:
                for tensor in op.inputs:
                    if tensor is not None and tensor.producer is not None:
                        cache[id(tensor.producer)].append(op)
            self._consumers_cache = cache
        return self._consumers_cache

    def _finish_containers(self) -> None:
        """Number the containers, parents first, and note how deep each one is."""
        stack = [(container, 0) for container in reversed(self.top)]
        while stack:
            container, level = stack.pop()
            container.index = len(self.containers)
            container.level = level
            self.containers.append(container)
            stack.extend((child, level + 1) for child in reversed(container.children))

    # ---------------------------------------------------------------------------------------------------------
    # Where tensors go
    # ---------------------------------------------------------------------------------------------------------

    def _place_tensors(self) -> None:
        """Each tensor in the innermost container around its producer and consumers; inputs and roots on top.

        A tensor passed from one module to the next sits between their clusters, and a parameter used only inside
        one module sits in it (and is listed in its box when it is collapsed). A parameter used by one op only, in
        the op's own container, is drawn beside it: the first half of an op's such parameters on its left (a
        Linear's weight), the rest on its right (its bias), so the op's data input can come straight from above.
        """
        flanking: dict[int, list[TensorInfo]] = {}
        for tensor in self.tensors:
            if tensor.kind in ("input", "output"):
                tensor.container = None
                continue
            places = [op.container for op, _ in tensor.consumers]
            if tensor.producer is not None:
                places.append(tensor.producer.container)
            tensor.container = _common(places) if places else None
            if tensor.kind == "parameter":
                users = {id(op) for op, _ in tensor.consumers}
                op = tensor.consumers[0][0]
                if len(users) == 1 and len(tensor.consumers) == 1 and op.container is tensor.container:
                    flanking.setdefault(id(op), []).append(tensor)
        for group in flanking.values():
            group.sort(key=lambda tensor: tensor.consumers[0][1])
            left = (len(group) + 1) // 2
            for position, tensor in enumerate(group):
                tensor.flank = (tensor.consumers[0][0], "left" if position < left else "right")

    # ---------------------------------------------------------------------------------------------------------
    # Gradients
    # ---------------------------------------------------------------------------------------------------------

    def _read_gradients(self) -> None:
        """Leaves' .grad; computed tensors' gradients where backward ran inside retain_grads."""
        for tensor in self.tensors:
            leaf = self._leaf_of.get(tensor.index)
            if leaf is not None:
                tensor.grad = as_array(leaf.grad)
        for op in self.ops:
            retained = getattr(op.node, "grad", None)  # only set by backward inside retain_grads()
            if retained is None:
                continue
            if len(op.outputs) == 1 and op.outputs[0].output_index is None:
                op.outputs[0].grad = as_array(retained)
            else:
                for tensor in op.outputs:
                    index = tensor.output_index or 0
                    tensor.grad = as_array(retained[index]) if index < len(retained) else None

    def _judge_gradients(self) -> float:
        """Note each gradient's norm or what is wrong with it; vanishing is judged against the largest norm."""
        norms = []
        for tensor in self.tensors:
            grad = tensor.grad
            if grad is None:
                continue
            if grad.dtype.kind in "fc" and not np.isfinite(grad).all():
                nans, infs = int(np.isnan(grad).sum()), int(np.isinf(grad).sum())
                counts = " and ".join([f"{nans} NaN"] * (nans > 0) + [f"{infs} inf"] * (infs > 0))
                tensor.problem, tensor.note = "nonfinite", f"grad has {counts} of {grad.size}"
                continue
            norm = float(np.linalg.norm(grad.ravel().astype(np.float64, copy=False)))
            tensor.norm = norm
            if norm == 0.0:
                tensor.problem, tensor.note = "zero", "grad is all zero"
            else:
                tensor.note = f"grad norm {style.number(norm)}"
                norms.append(norm)
        largest = max(norms, default=0.0)
        if self.vanishing_ratio is not None:
            for tensor in self.tensors:
                norm = tensor.norm
                if norm and tensor.problem is None and norm < self.vanishing_ratio * largest:
                    tensor.problem = "vanishing"
                    tensor.note = f"grad norm {style.number(norm)} ({norm / largest:.0e} × largest)"
        return largest

    def _read_monitor(self, monitor: Any) -> None:
        """Replace one step's gradient notes by a GradientMonitor's averages over training, and its verdicts.

        Each parameter the monitor watched gets its mean gradient norm over the recorded steps, and the problem of
        the monitor's findings about it (vanishing, zero, exploding, NaN/inf) instead of this one step's; each
        activation module with most of its units dead or saturated gets a note and the "inactive" problem.
        """
        averages = monitor.parameter_averages()
        names_of = {id(parameter): name for name, parameter in monitor.model.named_parameters()}
        found = [finding for finding in monitor.findings() if finding.severity == "warning"]
        verdicts: dict[str, tuple[str, str]] = {}  # parameter name -> (problem, words), the worst one
        for finding in found:
            problem = _MONITOR_PROBLEMS.get(finding.kind)
            for name in finding.parameters if problem else ():
                if name not in verdicts or style.worst_problem([verdicts[name][0], problem]) == problem:
                    verdicts[name] = (problem, _verdict_words(finding))
        watched = 0
        for tensor in self.tensors:
            leaf = self._leaf_of.get(tensor.index)
            name = names_of.get(id(leaf)) if leaf is not None else None
            if name is None:
                continue
            watched += 1
            entry = averages[name]
            problem, words = verdicts.get(name, (None, ""))
            tensor.problem = problem
            if entry["steps"]:
                tensor.norm = entry["grad_norm"]
                mean = f"mean grad norm {style.number(entry['grad_norm'])} ({entry['steps']:,} steps)"
                tensor.note = f"{words}; {mean}" if words else mean
            else:
                tensor.norm = None
                tensor.note = "no gradient in training" + ("" if leaf.requires_grad else " (frozen)")
        if not watched:
            raise ValueError(
                "draw_graph: the monitor watches none of the parameters in this graph; pass the monitor of the model "
                "that computed it"
            )
        modules = dict(monitor.model.named_modules())
        for finding in found:
            if finding.kind in ("dead_units", "saturated_units") and finding.layer in modules:
                what = "dead" if finding.kind == "dead_units" else "saturated"
                note = f"{finding.value:.0%} of units {what} (median over training)"
                self.module_notes[id(modules[finding.layer])] = (note, "inactive")

    # ---------------------------------------------------------------------------------------------------------
    # Questions the writers ask
    # ---------------------------------------------------------------------------------------------------------

    def chain(self, container: Container | None) -> list[Container]:
        """`container` and the containers around it, outermost first ([] for the top level)."""
        chain = []
        while container is not None:
            chain.append(container)
            container = container.parent
        chain.reverse()
        return chain

    def summary(self, container: Container) -> ContainerSummary:
        """What the box of a collapsed `container` shows (computed once)."""
        cached = self._summaries.get(id(container))
        if cached is not None:
            return cached
        summary = ContainerSummary()
        ops = self._ops_inside(container)
        summary.ops = len(ops)
        summary.constants = sum(op.constants for op in ops)
        inside_ids = {id(op) for op in ops}
        seen: set[int] = set()
        for op in sorted(ops, key=lambda op: op.index):
            for tensor in op.inputs:
                if tensor is None or id(tensor) in seen or container.encloses(tensor.container):
                    continue
                if tensor.producer is None or id(tensor.producer) not in inside_ids:
                    seen.add(id(tensor))
                    summary.inputs.append(tensor)
            for tensor in op.outputs:
                if not container.encloses(tensor.container):
                    summary.outputs.append(tensor)
        parameters = self._parameters_inside().get(id(container), [])
        summary.parameter_count = sum(tensor.size for tensor in parameters)
        summary.problem = style.worst_problem(tensor.problem for tensor in parameters)
        if container.kind == "fold":
            summary.parameters = self._fold_parameter_rows(container, parameters)
        else:
            summary.parameters = [(t.title, t.shape_text, t.note, t.problem) for t in parameters]
        self._summaries[id(container)] = summary
        return summary

    def _parameters_inside(self) -> dict[int, list[TensorInfo]]:
        """The parameters in each container or in a container inside it, by id of the container (one pass)."""
        if self._inside_cache is None:
            inside: dict[int, list[TensorInfo]] = {}
            for tensor in self.tensors:
                if tensor.kind != "parameter":
                    continue
                container = tensor.container
                while container is not None:
                    inside.setdefault(id(container), []).append(tensor)
                    container = container.parent
            self._inside_cache = inside
        return self._inside_cache

    def _fold_parameter_rows(
        self, fold: Container, parameters: list[TensorInfo]
    ) -> list[tuple[str, str, str | None, str | None]]:
        """One row per parameter of the block: ``fc.weight x 12``, with the range of the blocks' gradient norms."""
        groups: dict[tuple[str, str], list[TensorInfo]] = {}
        for tensor in parameters:
            owner = _child_of(tensor.container, fold)  # the block (or the call between blocks) it belongs to
            prefix = f"{owner.name}." if owner is not None and owner.name else ""
            relative = tensor.title[len(prefix) :] if prefix and tensor.title.startswith(prefix) else tensor.title
            # With several modules per block (Linear, ReLU, ...) the class says whose parameter it is.
            label = relative if owner is None or fold.period == 1 else f"{owner.class_name}.{relative}"
            groups.setdefault((label, tensor.shape_text), []).append(tensor)
        rows = []
        for (label, shape), tensors in groups.items():
            title = f"{label} x {len(tensors)}" if len(tensors) > 1 else label
            norms = [t.norm for t in tensors if t.norm is not None]
            problems = [t.problem for t in tensors if t.problem]
            worst = style.worst_problem(problems)
            note = None
            if norms:
                low, high = min(norms), max(norms)
                note = (
                    f"grad norm {style.number(low)}"
                    if low == high
                    else f"grad norms {style.number(low)} … {style.number(high)}"
                )
            if problems:
                counted = f"{len(problems)} of {len(tensors)} {style.PROBLEMS[worst].legend.split()[0]}"
                note = f"{note}, {counted}" if note else counted
            rows.append((title, shape, note, worst))
        return rows


# --------------------------------------------------------------------------------------------------------------
# Descriptions the explorer shows
# --------------------------------------------------------------------------------------------------------------


def array_summary(array: Any) -> dict[str, Any]:
    """Statistics of an array for the explorer's panel: size, mean, std, min, max, norm, a histogram, the values.

    Computed in float64 over the finite values; ``nan`` and ``inf`` count how many others there are. Tensors with
    at most `style.SMALL_TENSOR` elements also list their values. Of an array with more than
    `style.STATISTICS_SAMPLE` elements, every k-th value is taken (``sampled`` says how many).
    """
    array = np.asarray(array)
    summary: dict[str, Any] = {"size": int(array.size)}
    if array.dtype.kind not in "biuf" or array.size == 0:
        return summary
    values = array.reshape(-1)
    if values.size > style.STATISTICS_SAMPLE:
        values = values[:: -(-values.size // style.STATISTICS_SAMPLE)]
        summary["sampled"] = int(values.size)
    values = values.astype(np.float64, copy=False)
    finite_mask = np.isfinite(values)
    finite = values[finite_mask] if not finite_mask.all() else values
    summary["nan"] = int(np.isnan(values).sum())
    summary["inf"] = int(np.isinf(values).sum())
    if array.size <= style.SMALL_TENSOR:
        summary["values"] = style.values_text(array)
    if finite.size:
        with np.errstate(over="ignore", invalid="ignore"):  # values near the float64 limits: inf is the answer
            summary.update(
                mean=float(finite.mean()),
                std=float(finite.std()),
                min=float(finite.min()),
                max=float(finite.max()),
                norm=float(np.linalg.norm(finite)),
            )
        low, high = summary["min"], summary["max"]
        if low == high:
            low, high = low - 0.5, high + 0.5
        # Values near the float64 limits leave no finite width to cut into bins: no histogram then.
        if finite.size > 1 and math.isfinite(high - low):
            counts, _ = np.histogram(finite, bins=style.HISTOGRAM_BINS, range=(low, high))
            summary["histogram"] = {"low": low, "high": high, "counts": counts.tolist()}
    return summary


def describe_saved(node: Function) -> list[str] | None:
    """What an op saved for backward, one line per item; None once backward freed it.

    A built-in primitive keeps the inputs its backward needs (``node.inputs``), its result (``node.output``) and
    constants such as shapes and masks (``node._saved``); a user's Function keeps what it gave
    ``save_for_backward`` (``node._saved``). Arrays are described by shape, dtype and a few statistics; anything
    else by its repr, shortened.
    """
    saved = getattr(node, "_saved", ())
    if saved is None:
        return None
    if not isinstance(saved, (tuple, list)):
        saved = (saved,)
    lines = []
    inputs = getattr(node, "inputs", None)
    if inputs:
        lines += [f"input {position}: {_describe_item(item)}" for position, item in enumerate(inputs)]
    output = getattr(node, "output", None)
    if output is not None:
        lines.append(f"output: {_describe_item(np.asarray(output))}")
    return lines + [_describe_item(item) for item in saved]


def _describe_item(item: Any) -> str:
    try:
        if isinstance(item, Tensor):
            return "Tensor " + _describe_item(item.data)
        if isinstance(item, np.ndarray):
            text = style.shape_text(item.shape, item.dtype)
            if item.size <= style.SMALL_TENSOR:
                return f"{text} {style.values_text(item)}"
            if item.dtype.kind in "biuf" and item.size <= style.STATISTICS_SAMPLE:
                values = item.astype(np.float64, copy=False)
                finite = values[np.isfinite(values)]
                if finite.size:
                    return (
                        f"{text}, min {style.number(float(finite.min()))}, mean {style.number(float(finite.mean()))}, "
                        f"max {style.number(float(finite.max()))}"
                    )
            return text
        if isinstance(item, Function):
            return f"node {type(item).__name__}"
        if isinstance(item, _OutputRef):
            return f"output {item.index} of node {type(item.node).__name__}"
        text = repr(item)
    except Exception as error:  # a user's object whose repr fails must not break the picture
        return f"{type(item).__name__} (no description: {type(error).__name__})"
    return text if len(text) <= 80 else text[:77] + "..."


# --------------------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------------------


def _verdict_words(finding: Any) -> str:
    """A GradientMonitor's finding about a parameter, in the few words a box has room for."""
    if finding.kind == "zero_gradient":
        return f"grad zero in {finding.value:.0%} of steps"
    if finding.kind == "vanishing":
        return f"grad {finding.value:.0e} × output layer's"
    if finding.kind == "exploding":
        return "exploding grad"
    return "NaN/inf grad"


# A GradientMonitor's kinds of finding about parameters, and the problem each is drawn as.
_MONITOR_PROBLEMS = {
    "vanishing": "vanishing",
    "zero_gradient": "zero",
    "exploding": "exploding",
    "nonfinite": "nonfinite",
}


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


def _common(containers: list[Container | None]) -> Container | None:
    """The innermost container enclosing all of these (None: the top level)."""
    common: list[Container] | None = None
    for container in containers:
        chain = []
        while container is not None:
            chain.append(container)
            container = container.parent
        chain.reverse()
        if common is None:
            common = chain
            continue
        length = 0
        while length < min(len(common), len(chain)) and common[length] is chain[length]:
            length += 1
        common = common[:length]
    return common[-1] if common else None


def _child_of(container: Container | None, parent: Container | None) -> Container | None:
    """The container directly inside `parent` that holds `container` (None when it is `parent` itself)."""
    child = None
    while container is not None and container is not parent:
        child = container
        container = container.parent
    return child


def _signature(module: Module) -> tuple:
    """What makes two blocks "the same": their class, their submodules' classes and their parameters' shapes."""
    structure = tuple((name, type(sub)) for name, sub in module.named_modules())
    parameters = tuple((name, p.shape, p.dtype.str) for name, p in module.named_parameters())
    return (type(module), structure, parameters)


def _find_runs(signatures: list[tuple], min_repeats: int) -> list[tuple[int, int, int]]:
    """Runs of a unit of `period` items repeated at least `min_repeats` times: (start, period, repeats) each.

    Greedy from the left; at each place the period covering the most items wins, the shortest on a tie. A unit
    of several modules starts with one that has parameters where it can (Linear-ReLU, not ReLU-Linear): a run of
    Linear, ReLU pairs after a lone ReLU reads as ReLU-Linear pairs just as well.
    """

    def repeats_at(start: int, period: int) -> int:
        unit = signatures[start : start + period]
        repeats = 1
        while signatures[start + repeats * period : start + (repeats + 1) * period] == unit:
            repeats += 1
        return repeats

    def has_parameters(position: int) -> bool:
        return bool(signatures[position][2])

    runs = []
    start = 0
    count = len(signatures)
    while start < count:
        best: tuple[int, int, int] | None = None  # (items covered, period, repeats)
        for period in range(1, min(_MAX_PERIOD, (count - start) // min_repeats) + 1):
            repeats = repeats_at(start, period)
            if repeats >= min_repeats and (best is None or repeats * period > best[0]):
                best = (repeats * period, period, repeats)
        if best is None:
            start += 1
            continue
        covered, period, repeats = best
        if period > 1 and not has_parameters(start):
            for shift in range(1, period):
                if start + shift < count and has_parameters(start + shift):
                    shifted = repeats_at(start + shift, period)
                    if shifted * period >= covered:
                        start, repeats = start + shift, shifted
                    break
        runs.append((start, period, repeats))
        start += period * repeats
    return runs


def _unit_names(unit: list[Module]) -> list[str]:
    """A block's name in a fold's title: its classes, a Sequential standing for its children's."""
    names = []
    for module in unit:
        if isinstance(module, (Sequential, ModuleList)) and len(module) > 0:
            names.extend(type(child).__name__ for child in module)
        else:
            names.append(type(module).__name__)
    return names


# --------------------------------------------------------------------------------------------------------------
# Checking what the caller passed (both writers take the same arguments)
# --------------------------------------------------------------------------------------------------------------


def read_roots(root: Any, caller: str) -> list[Tensor]:
    """The tensors to draw from, each once, checked: a Tensor or a non-empty list of Tensors with a graph."""
    given_list = isinstance(root, (list, tuple))
    items = list(root) if given_list else [root]
    if not items:
        raise ValueError(f"{caller} got an empty list; pass the tensor (or tensors) whose graph to draw")
    roots: list[Tensor] = []
    for position, item in enumerate(items):
        if not isinstance(item, Tensor):
            what = f"item {position} of the list is" if given_list else "got"
            raise TypeError(f"{caller} needs a Tensor or a list of Tensors; {what} a {type(item).__name__}")
        if item._node is None and not item.requires_grad:
            raise ValueError(
                f"{caller} got a tensor of shape {item.shape} with no graph: it does not require grad (it was "
                "computed inside no_grad(), or from inputs that don't require grad), so no ops were recorded"
            )
        if not any(item is seen for seen in roots):
            roots.append(item)
    return roots


def read_names(names: Any, caller: str) -> dict[str, Tensor]:
    """`names` checked: None, or a mapping of names to Tensors."""
    if names is None:
        return {}
    if not isinstance(names, Mapping):
        raise TypeError(f"{caller}: names must be a dict of name -> Tensor, got {type(names).__name__}")
    for name, tensor in names.items():
        if not isinstance(tensor, Tensor):
            raise TypeError(f"{caller}: names[{name!r}] must be a Tensor, got {type(tensor).__name__}")
    return {str(name): tensor for name, tensor in names.items()}


def read_model(model: Any, caller: str) -> Module | None:
    """`model` checked: None or a Module."""
    if model is not None and not isinstance(model, Module):
        raise TypeError(f"{caller}: model must be a Module (or None), got {type(model).__name__}")
    return model


def read_max_depth(max_depth: Any, caller: str) -> int | None:
    """`max_depth` checked: None or an integer >= 0."""
    if max_depth is not None and (isinstance(max_depth, bool) or not isinstance(max_depth, int) or max_depth < 0):
        raise ValueError(f"{caller}: max_depth must be None or an integer >= 0, got {max_depth!r}")
    return max_depth


def read_vanishing_ratio(vanishing_ratio: Any, caller: str) -> float | None:
    """`vanishing_ratio` checked: None or a positive number."""
    if vanishing_ratio is None:
        return None
    if isinstance(vanishing_ratio, bool) or not isinstance(vanishing_ratio, (int, float)) or not vanishing_ratio > 0:
        raise ValueError(f"{caller}: vanishing_ratio must be None or a positive number, got {vanishing_ratio!r}")
    return float(vanishing_ratio)


def read_monitor(monitor: Any, model: Module | None, caller: str) -> Any:
    """`monitor` checked: None, or a GradientMonitor (anything with its model, averages and findings)."""
    if monitor is None:
        return None
    if not all(hasattr(monitor, name) for name in ("model", "parameter_averages", "findings")):
        raise TypeError(f"{caller}: monitor must be a GradientMonitor (or None), got {type(monitor).__name__}")
    if model is not None and model is not monitor.model:
        watched = {id(parameter) for parameter in monitor.model.parameters()}
        if not any(id(parameter) in watched for parameter in model.parameters()):
            raise ValueError(f"{caller}: the monitor watches another model than the one given ({type(model).__name__})")
    return monitor


def read_fold_repeats(fold_repeats: Any, caller: str) -> int:
    """`fold_repeats` as the smallest run to fold: True is `style.FOLD_MIN_REPEATS`, False is 0 (no folding)."""
    if fold_repeats is True:
        return style.FOLD_MIN_REPEATS
    if fold_repeats is False or fold_repeats is None:
        return 0
    if isinstance(fold_repeats, int) and fold_repeats >= 2:
        return fold_repeats
    raise ValueError(
        f"{caller}: fold_repeats must be True, False or the smallest number of repeats to fold (an integer >= 2), "
        f"got {fold_repeats!r}"
    )
