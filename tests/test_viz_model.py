"""The picture's model (tinygrad_nn.viz.model): ops, tensors, module calls, folds, gradients, what ops saved."""

from __future__ import annotations

import math

import numpy as np

import tinygrad_nn as tg
from tinygrad_nn import Function, Tensor, nn
from tinygrad_nn.autograd import backward_order
from tinygrad_nn.nn import functional as F  # noqa: N812
from tinygrad_nn.viz.model import GraphModel, array_summary, describe_saved

# --------------------------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------------------------


class Block(nn.Module):
    def __init__(self, width=16):
        super().__init__()
        self.fc = nn.Linear(width, width)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.fc(x))


class ResidualMLP(nn.Module):
    """Blocks in a ModuleList, called in a loop with the residual add in this module's forward."""

    def __init__(self, blocks=12, width=16):
        super().__init__()
        self.inp = nn.Linear(4, width)
        self.blocks = nn.ModuleList([Block(width) for _ in range(blocks)])
        self.out = nn.Linear(width, 1)

    def forward(self, x):
        x = self.inp(x)
        for block in self.blocks:
            x = x + block(x)
        return self.out(x)


def residual(blocks=12, **options):
    tg.manual_seed(0)
    model = ResidualMLP(blocks)
    loss = model(Tensor(np.random.default_rng(0).normal(size=(3, 4)))).sum()
    loss.backward()
    return model, loss, GraphModel([loss], model, **options)


def flat_mlp(pairs=8):
    """Linear, ReLU, Linear, ReLU, ... in one Sequential: a repeating unit of two modules."""
    tg.manual_seed(0)
    layers = []
    for _ in range(pairs):
        layers += [nn.Linear(8, 8), nn.ReLU()]
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), *layers, nn.Linear(8, 2))
    loss = model(Tensor(np.ones((2, 4)))).sum()
    return model, loss


def folds(graph):
    return [c for c in graph.containers if c.kind == "fold"]


def assert_consistent(graph):
    """Every op after the ops it reads from; every container's contraction leaves the graph acyclic."""
    for op in graph.ops:
        for tensor in op.inputs:
            if tensor is not None and tensor.producer is not None:
                assert tensor.producer.index < op.index
    # A container drawn as one box must not be left and re-entered: no op outside it both reads from it and feeds it.
    for container in graph.containers:
        inside = {id(op) for op in graph._ops_inside(container)}
        allowed = {id(op) for op in graph.ops}
        assert graph._between(inside, allowed) == [], f"{container.title} is not one step of the graph"


# --------------------------------------------------------------------------------------------------------------
# Ops and tensors
# --------------------------------------------------------------------------------------------------------------


def test_ops_come_in_a_forward_order_and_the_walk_nearest_the_output_first():
    _, loss, graph = residual(3)
    assert_consistent(graph)
    assert graph.walk_order[0].node is loss.grad_fn
    assert graph.ops[-1].node is loss.grad_fn
    assert len(graph.ops) == len(graph.walk_order) == len(backward_order(loss))


def test_backward_order_is_the_engines():
    _, loss, graph = residual(4)
    assert [op.node for op in graph.backward[0]] == backward_order(loss)
    # Every op exactly once, each after every op that reads its output.
    position = {id(op): k for k, op in enumerate(graph.backward[0])}
    assert len(position) == len(graph.ops)
    for op in graph.ops:
        for tensor in op.inputs:
            if tensor is not None and tensor.producer is not None:
                assert position[id(tensor.producer)] > position[id(op)]


def test_tensors_have_kinds_titles_shapes_producers_and_consumers():
    tg.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 2), nn.Sigmoid())
    x = Tensor(np.ones((4, 3)), requires_grad=True)
    loss = model(x).sum()
    graph = GraphModel([loss], model, names={"x": x})
    by_title = {t.title: t for t in graph.tensors if t.title}
    assert by_title["x"].kind == "input" and by_title["x"].shape == (4, 3)
    assert by_title["0.weight"].kind == "parameter" and by_title["0.weight"].shape_text == "(2, 3) float64"
    assert by_title["output"].kind == "output" and by_title["output"].shape_text == "scalar float64"
    linear = next(op for op in graph.ops if op.name == "Linear")
    assert [t.title for t in linear.inputs] == ["x", "0.weight", "0.bias"]
    assert by_title["x"].consumers == [(linear, 0)]
    assert linear.outputs[0].producer is linear


def test_multi_output_ops_get_one_tensor_per_output():
    class Split(Function):
        @staticmethod
        def forward(ctx, x):
            return x[:2].copy(), x[2:].copy()

        @staticmethod
        def backward(ctx, first, second):
            return np.concatenate([first, second])

    x = Tensor(np.arange(4.0), requires_grad=True)
    first, _ = Split.apply(x * 1.0)
    graph = GraphModel([(first * 3).sum()])
    split = next(op for op in graph.ops if op.name == "Split")
    assert [t.shape_text for t in split.outputs] == ["[0] (2,) float64", "[1] (2,) float64"]
    assert split.outputs[1].consumers == []  # unused, still drawn


def test_a_leaf_root_and_several_roots():
    w = Tensor([1.0, 2.0], requires_grad=True)
    alone = GraphModel([w])
    assert [t.kind for t in alone.tensors] == ["output"] and alone.ops == [] and alone.backward == [[]]
    hidden = w.exp()
    graph = GraphModel([hidden.sum(), (hidden * 2).mean()])
    assert [t.title for t in graph.root_tensors] == ["output 0", "output 1"]
    assert sum(op.name == "Exp" for op in graph.ops) == 1


def test_no_grad_inputs_are_counted_as_constants():
    w = Tensor([1.0, 2.0], requires_grad=True)
    graph = GraphModel([(w * np.array([3.0, 4.0])).sum()])
    mul = next(op for op in graph.ops if op.name == "Mul")
    assert mul.constants == 1 and mul.inputs[1] is None


# --------------------------------------------------------------------------------------------------------------
# Module calls
# --------------------------------------------------------------------------------------------------------------


def test_calls_nest_as_the_calls_were_with_depth_and_path():
    _, _, graph = residual(2, fold_repeats=0)
    titles = [c.title for c in graph.containers]
    assert titles[0] == "ResidualMLP"
    fc = next(c for c in graph.containers if c.title == "blocks.1.fc: Linear")
    assert fc.depth == 3 and fc.level == 2
    assert fc.path == "ResidualMLP › blocks.1: Block › blocks.1.fc: Linear"
    assert [op.name for op in fc.ops] == ["Linear"]
    add = [op for op in graph.ops if op.name == "Add"]
    assert all(op.container is graph.containers[0] for op in add)  # the residual adds run in the model's forward


def test_two_calls_of_one_module_are_two_containers():
    layer = nn.Linear(3, 3)
    model = nn.Sequential(layer)
    out = layer(model(Tensor(np.ones((1, 3)))))
    graph = GraphModel([out.sum()], model, fold_repeats=0)
    calls = [c for c in graph.containers if c.module is layer]
    assert len(calls) == 2 and calls[0] is not calls[1]


def test_tensors_sit_in_the_innermost_call_around_their_producer_and_consumers():
    _, _, graph = residual(2, fold_repeats=0)
    weight = next(t for t in graph.tensors if t.title == "blocks.0.fc.weight")
    assert weight.container.title == "blocks.0.fc: Linear"
    between = next(op for op in graph.ops if op.name == "Linear" and op.container.title == "blocks.0.fc: Linear")
    assert between.outputs[0].container.title == "blocks.0: Block"  # passed from fc to act
    assert graph.root_tensors[0].container is None


def test_a_parameter_used_by_one_op_flanks_it_weight_left_bias_right():
    _, _, graph = residual(2, fold_repeats=0)
    weight = next(t for t in graph.tensors if t.title == "inp.weight")
    bias = next(t for t in graph.tensors if t.title == "inp.bias")
    assert weight.flank[1] == "left" and bias.flank[1] == "right" and weight.flank[0] is bias.flank[0]
    shared = nn.Linear(2, 2)
    twice = shared(shared(Tensor(np.ones((1, 2))))).sum()
    graph = GraphModel([twice], nn.Sequential(shared))
    assert all(t.flank is None for t in graph.tensors if t.kind == "parameter")  # used by two ops: above them


# --------------------------------------------------------------------------------------------------------------
# Folding repeated blocks
# --------------------------------------------------------------------------------------------------------------


def test_a_residual_mlp_folds_its_blocks_and_the_adds_between_them():
    model, _, graph = residual(12)
    (fold,) = folds(graph)
    assert fold.title == "Block x 12" and fold.repeats == 12 and fold.period == 1
    assert fold.name == "blocks.0 … blocks.11"
    assert [c.title for c in fold.members] == [f"blocks.{k}: Block" for k in range(12)]
    assert [op.name for op in fold.ops] == ["Add"] * 12  # the residual adds, the last one included
    summary = graph.summary(fold)
    assert summary.ops == 12 * 2 + 12
    assert [t.shape_text for t in summary.inputs] == ["(3, 16) float64"]
    assert [t.shape_text for t in summary.outputs] == ["(3, 16) float64"]
    assert summary.parameter_count == 12 * (16 * 16 + 16)
    rows = {row[0]: row for row in summary.parameters}
    norms = [np.linalg.norm(block.fc.weight.grad) for block in model.blocks]
    assert rows["fc.weight x 12"][1] == "(16, 16) float64"
    assert rows["fc.weight x 12"][2] == f"grad norms {min(norms):.3g} … {max(norms):.3g}"
    assert_consistent(graph)


def test_a_flat_sequential_folds_a_unit_of_two_modules():
    model, loss = flat_mlp(8)
    graph = GraphModel([loss], model)
    (fold,) = folds(graph)
    # The first Linear(4, 8) has other shapes; the last Linear(8, 2) too: eight pairs are left.
    assert fold.title == "Linear-ReLU x 8" and fold.period == 2
    assert len(fold.members) == 16 and fold.parent.title == "Sequential"
    assert {row[0] for row in graph.summary(fold).parameters} == {"Linear.weight x 8", "Linear.bias x 8"}
    assert_consistent(graph)


def test_a_sequential_of_sequential_blocks_is_named_by_the_blocks_children():
    tg.manual_seed(0)
    model = nn.Sequential(*[nn.Sequential(nn.Linear(8, 8), nn.Sigmoid()) for _ in range(10)])
    graph = GraphModel([model(Tensor(np.ones((2, 8)))).sum()], model)
    assert [f.title for f in folds(graph)] == ["Linear-Sigmoid x 10"]


def test_fold_repeats_sets_the_shortest_run_and_false_folds_nothing():
    model, loss = flat_mlp(2)
    assert folds(GraphModel([loss], model)) == []  # two pairs: below the default of 3
    assert [f.title for f in folds(GraphModel([loss], model, fold_repeats=2))] == ["Linear-ReLU x 2"]
    model, loss, graph = residual(5, fold_repeats=0)
    assert folds(graph) == []
    assert folds(GraphModel([loss])) == []  # without the model there are no blocks to compare


def test_blocks_fold_by_class_and_parameter_shapes_not_by_a_list_of_known_layers():
    class Scale(nn.Module):  # a layer the viz code has never heard of
        def __init__(self, width):
            super().__init__()
            self.gain = nn.Parameter(np.ones(width))

        def forward(self, x):
            return x * self.gain

    model = nn.Sequential(Scale(4), Scale(4), Scale(4), nn.Linear(4, 4), Scale(4))
    graph = GraphModel([model(Tensor(np.ones((1, 4)))).sum()], model)
    assert [f.title for f in folds(graph)] == ["Scale x 3"]
    different = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 4, bias=False))
    graph = GraphModel([different(Tensor(np.ones((1, 4)))).sum()], different)
    assert folds(graph) == []  # the third has no bias: not the same block


def test_a_run_split_by_another_block_folds_on_both_sides():
    model = nn.Sequential(*[Block(4) for _ in range(3)], nn.Tanh(), *[Block(4) for _ in range(4)])
    graph = GraphModel([model(Tensor(np.ones((1, 4)))).sum()], model)
    assert [f.title for f in folds(graph)] == ["Block x 3", "Block x 4"]
    assert_consistent(graph)


def test_a_block_called_twice_in_one_call_is_not_folded():
    class Reuse(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn.ModuleList([Block(4) for _ in range(3)])

        def forward(self, x):
            for block in [*self.blocks, self.blocks[0]]:
                x = block(x)
            return x

    model = Reuse()
    graph = GraphModel([model(Tensor(np.ones((1, 4)))).sum()], model)
    assert folds(graph) == []


def test_folds_nest_inside_repeated_blocks():
    class Stage(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.Sequential(*[Block(4) for _ in range(3)])

        def forward(self, x):
            return self.layers(x)

    model = nn.Sequential(*[Stage() for _ in range(3)])
    graph = GraphModel([model(Tensor(np.ones((1, 4)))).sum()], model)
    titles = sorted(f.title for f in folds(graph))
    assert titles == ["Block x 3"] * 3 + ["Stage x 3"]
    assert_consistent(graph)


def test_a_merge_of_two_branches_between_blocks_is_folded_with_them_and_stays_acyclic():
    class TwoPaths(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn.ModuleList([Block(4) for _ in range(4)])
            self.gate = nn.Linear(4, 4)

        def forward(self, x):
            for block in self.blocks:
                x = block(x) * self.gate(x).sigmoid() + x  # another module's call between the blocks
            return x

    model = TwoPaths()
    graph = GraphModel([model(Tensor(np.ones((2, 4)))).sum()], model)
    (fold,) = folds(graph)
    assert fold.repeats == 4
    # The gate's calls of iterations 1 and 2 read a block's result and feed a later block: inside the fold. The
    # first reads the fold's input, the last feeds only its output: outside.
    assert [c.title for c in fold.children].count("gate: Linear") == 2
    assert_consistent(graph)


# --------------------------------------------------------------------------------------------------------------
# Gradients
# --------------------------------------------------------------------------------------------------------------


def test_gradients_are_read_and_judged():
    w = Tensor([-1.0, 4.0], requires_grad=True)
    v = Tensor([0.0, 1.0], requires_grad=True)
    z = Tensor([1.0, 2.0], requires_grad=True)
    with np.errstate(all="ignore"):
        loss = w.sqrt().sum() + v.log().sum() + (z * 0.0).sum()
        loss.backward()
    graph = GraphModel([loss], names={"w": w, "v": v, "z": z})
    by_title = {t.title: t for t in graph.tensors}
    assert by_title["w"].problem == "nonfinite" and by_title["w"].note == "grad has 1 NaN of 2"
    assert by_title["v"].note == "grad has 1 inf of 2"
    assert by_title["z"].problem == "zero" and by_title["z"].note == "grad is all zero"
    assert GraphModel([loss], show_grads=False).tensors[0].grad is None


def test_vanishing_is_judged_against_the_largest_norm_in_the_graph():
    a = Tensor([1.0], requires_grad=True)
    b = Tensor([1.0], requires_grad=True)
    loss = (a * 1e-6 + b).sum()
    loss.backward()
    graph = GraphModel([loss], names={"a": a, "b": b})
    by_title = {t.title: t for t in graph.tensors}
    assert by_title["a"].problem == "vanishing" and by_title["a"].note == "grad norm 1e-06 (1e-06 × largest)"
    assert by_title["b"].problem is None and graph.largest_norm == 1.0
    quiet = GraphModel([loss], names={"a": a}, vanishing_ratio=None)
    assert all(t.problem is None for t in quiet.tensors)


def test_retained_gradients_of_computed_tensors_are_read():
    x = Tensor([1.0, 2.0], requires_grad=True)
    hidden = x.exp()
    loss = (hidden * hidden).sum()
    with tg.retain_grads():
        loss.backward()
    graph = GraphModel([loss])
    exp = next(op for op in graph.ops if op.name == "Exp")
    np.testing.assert_allclose(exp.outputs[0].grad, 2 * np.exp(x.data))


def test_a_gradient_that_is_a_tensor_is_read_as_its_array():
    # Higher-order autograd (backward(create_graph=True)) leaves Tensors in .grad.
    w = Tensor([3.0, 4.0], requires_grad=True)
    loss = (w * 2).sum()
    w.grad = Tensor(np.array([3.0, 4.0]))
    graph = GraphModel([loss], names={"w": w})
    tensor = next(t for t in graph.tensors if t.title == "w")
    assert isinstance(tensor.grad, np.ndarray) and tensor.norm == 5.0


# --------------------------------------------------------------------------------------------------------------
# Container summaries
# --------------------------------------------------------------------------------------------------------------


def test_a_call_summary_has_shapes_in_and_out_parameters_and_counts():
    tg.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    loss = nn.CrossEntropyLoss()(model(Tensor(np.ones((5, 4)))), np.array([0, 1, 2, 1, 0]))
    loss.backward()
    graph = GraphModel([loss], model)
    sequential = graph.containers[0]
    summary = graph.summary(sequential)
    assert [t.shape_text for t in summary.inputs] == []  # x needs no gradient: no edge, counted as a constant
    assert summary.constants == 1 and summary.ops == 3
    assert [t.shape_text for t in summary.outputs] == ["(5, 3) float64"]
    assert summary.parameter_count == 4 * 8 + 8 + 8 * 3 + 3
    assert [row[0] for row in summary.parameters] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    relu = next(c for c in graph.containers if c.title == "1: ReLU")
    assert [t.shape_text for t in graph.summary(relu).inputs] == ["(5, 8) float64"]


# --------------------------------------------------------------------------------------------------------------
# What ops saved, and statistics
# --------------------------------------------------------------------------------------------------------------


def test_saved_items_are_described_generically_and_freed_ones_say_so():
    x = Tensor(np.arange(12.0).reshape(3, 4), requires_grad=True)
    y = x * 2.0
    descriptions = describe_saved(y.grad_fn)
    assert descriptions[0] == "input 0: (3, 4) float64, min 0, mean 5.5, max 11"
    assert descriptions[1] == "input 1: 2.0"
    y.sum().backward()
    assert describe_saved(y.grad_fn) is None

    class Odd(Function):
        @staticmethod
        def forward(ctx, a):
            class Broken:
                def __repr__(self):
                    raise RuntimeError("no")

            ctx.save_for_backward(a, Broken(), Tensor([1.0]), "x" * 200, None, {"k": 1})
            return a * 1.0

        @staticmethod
        def backward(ctx, grad):
            return grad

    out = Odd.apply(Tensor(np.ones(2), requires_grad=True))
    text = describe_saved(out.grad_fn)
    assert text[0] == "(2,) float64 [1, 1]"
    assert text[1] == "Broken (no description: RuntimeError)"
    assert text[2] == "Tensor (1,) float64 [1]"
    assert len(text[3]) == 80 and text[3].endswith("...")
    assert text[4:] == ["None", "{'k': 1}"]


def test_array_summary_statistics_and_histogram():
    values = np.array([0.0, 1.0, 2.0, 3.0, np.nan, np.inf, 4.0])
    summary = array_summary(values)
    assert summary["size"] == 7 and summary["nan"] == 1 and summary["inf"] == 1
    assert summary["mean"] == 2.0 and summary["min"] == 0.0 and summary["max"] == 4.0
    assert math.isclose(summary["norm"], math.sqrt(30))
    assert sum(summary["histogram"]["counts"]) == 5  # the finite values
    assert "values" not in summary  # seven elements: more than a handful
    assert array_summary(np.array([2.5]))["values"] == "[2.5]"
    constant = array_summary(np.full(10, 3.0))
    assert constant["histogram"]["counts"][len(constant["histogram"]["counts"]) // 2] == 10
    assert "histogram" not in array_summary(np.array([-1e308, 1e308]))  # no finite width to cut
    assert array_summary(np.zeros((0, 3))) == {"size": 0}
    assert array_summary(np.array([np.nan, np.nan]))["nan"] == 2


def test_a_float32_model_reads_in_float32():
    tg.manual_seed(0)
    model = nn.Linear(3, 2).to(np.float32)
    loss = F.mse_loss(model(Tensor(np.ones((2, 3), dtype=np.float32))), np.zeros((2, 2), dtype=np.float32))
    loss.backward()
    graph = GraphModel([loss], model)
    assert {t.dtype for t in graph.tensors} == {np.dtype(np.float32)}


def test_big_arrays_are_summarised_from_a_sample_and_big_saved_arrays_by_shape_only(monkeypatch):
    from tinygrad_nn.viz import style

    monkeypatch.setattr(style, "STATISTICS_SAMPLE", 100)
    big = np.arange(1000.0)
    summary = array_summary(big)
    assert summary["size"] == 1000 and summary["sampled"] == 100
    assert summary["min"] == 0.0 and summary["max"] == 990.0  # every 10th value
    assert sum(summary["histogram"]["counts"]) == 100
    assert "sampled" not in array_summary(np.arange(100.0))
    # A strided view (what a convolution saves) is not copied to be described.
    windows = np.lib.stride_tricks.sliding_window_view(np.arange(50.0), 5)  # 46 x 5 = 230 elements, a view
    x = Tensor(np.ones(3), requires_grad=True)
    y = x * 2.0
    y.grad_fn._saved = (windows, np.arange(50.0))
    y.grad_fn.inputs = None
    assert describe_saved(y.grad_fn) == ["(46, 5) float64", "(50,) float64, min 0, mean 24.5, max 49"]
