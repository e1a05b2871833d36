"""draw_graph, render_graph and save_graph: the DOT text they write, and the pictures dot makes of it."""

from __future__ import annotations

import re
import shutil
import subprocess
import time

import graphviz
import numpy as np
import pytest

import tinygrad_nn as tg
from tinygrad_nn import Function, Tensor, nn
from tinygrad_nn.nn import functional as F  # noqa: N812
from tinygrad_nn.viz import GraphvizNotFoundError, draw_graph, render_graph, save_graph

needs_dot = pytest.mark.skipif(
    shutil.which("dot") is None, reason="Graphviz's dot is not installed (apt-get install graphviz)"
)


# --------------------------------------------------------------------------------------------------------------
# Reading DOT text back
# --------------------------------------------------------------------------------------------------------------

NODE_LINE = re.compile(r"^\s*(\w+) \[label=(<.*>)(.*)\]$")


def text_of(label: str) -> str:
    """An HTML-like label as plain text: lines and table rows joined by ' | ', cells by a space."""
    label = label.replace("<br/>", " | ").replace("</tr><tr>", " | ").replace("</td><td", " </td><td")
    text = re.sub(r"<[^>]+>", "", label).replace("&gt;", ">").replace("&lt;", "<").replace("&amp;", "&")
    return re.sub(r" +", " ", text).strip()


def nodes(source: str, with_legend: bool = False) -> dict[str, tuple[str, str]]:
    """node id -> (label text, the rest of its attributes), for every node but the legend."""
    found = {}
    for line in source.splitlines():
        match = NODE_LINE.match(line)
        if match and (with_legend or match.group(1) != "legend"):
            found[match.group(1)] = (text_of(match.group(2)[1:-1]), match.group(3))
    return found


def legend(source: str) -> str:
    """The legend's entries, as text: the legend is the graph's label, one row under the picture."""
    match = re.search(r"\blabel=<(<table.*</table>)>", source.split("\n", 2)[1])
    return text_of(match.group(1)) if match else ""


def node_with(source: str, text: str) -> tuple[str, str, str]:
    """(id, label text, attributes) of the one node whose label contains `text`."""
    matches = [(node_id, label, rest) for node_id, (label, rest) in nodes(source).items() if text in label]
    assert len(matches) == 1, f"{len(matches)} nodes have {text!r} in their label: {matches}"
    return matches[0]


def clusters(source: str) -> list[dict]:
    """Every cluster as {"label", "parent" (the enclosing cluster's label or None), "nodes" (ids directly in it)}."""
    found: list[dict] = []
    stack: list[dict] = []
    for line in source.splitlines():
        stripped = line.strip()
        if stripped.startswith("subgraph cluster_"):
            cluster = {"label": None, "parent": stack[-1]["label"] if stack else None, "nodes": set()}
            found.append(cluster)
            stack.append(cluster)
        elif stripped == "}" and stack:
            stack.pop()
        elif stack and stripped.startswith("graph [") and "label=" in stripped:
            stack[-1]["label"] = text_of(re.search(r"label=<(.*?>)>", stripped).group(1))
        elif stack:
            match = NODE_LINE.match(line)
            if match:
                stack[-1]["nodes"].add(match.group(1))
    return found


def cluster(source: str, label: str) -> dict:
    matches = [c for c in clusters(source) if c["label"] == label]
    assert len(matches) == 1, (
        f"{len(matches)} clusters labelled {label!r}; all: {[c['label'] for c in clusters(source)]}"
    )
    return matches[0]


def attribute(attributes: str, name: str) -> str | None:
    match = re.search(rf'\b{name}="?([^" ]+)"?', attributes)
    return match.group(1) if match else None


def dot_errors(graph: graphviz.Digraph) -> str:
    """What dot prints on stderr while rendering `graph` (empty when the DOT text is clean)."""
    result = subprocess.run(["dot", "-Tsvg"], input=graph.source.encode(), capture_output=True, check=True)
    return result.stderr.decode()


# --------------------------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------------------------


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Sequential(nn.Linear(4, 8), nn.ReLU())
        self.out = nn.Linear(8, 3)

    def forward(self, x):
        return self.out(self.hidden(x))


def mlp_loss():
    tg.manual_seed(0)
    model = MLP()
    x = Tensor(np.random.default_rng(0).normal(size=(5, 4)))
    loss = nn.CrossEntropyLoss()(model(x), np.array([0, 1, 2, 1, 0]))
    return model, loss


def tutorial_network():
    """Tutorial 001's network at its 3-3-3 size, and its loss."""
    tg.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 3, bias=False), nn.Sigmoid(), nn.Linear(3, 3, bias=False), nn.Sigmoid())
    inputs = Tensor(np.array([0.9, 0.1, 0.8]))
    loss = 0.5 * F.mse_loss(model(inputs), np.array([0.99, 0.01, 0.01]), reduction="sum")
    return model, loss


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(16, 16)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.fc(x))


class ResidualMLP(nn.Module):
    def __init__(self, blocks=12):
        super().__init__()
        self.inp = nn.Linear(4, 16)
        self.blocks = nn.ModuleList([Block() for _ in range(blocks)])
        self.out = nn.Linear(16, 1)

    def forward(self, x):
        x = self.inp(x)
        for block in self.blocks:
            x = x + block(x)
        return self.out(x)


def residual_mlp(blocks=12):
    tg.manual_seed(0)
    model = ResidualMLP(blocks)
    loss = model(Tensor(np.random.default_rng(0).normal(size=(3, 4)))).sum()
    loss.backward()
    return model, loss


def three_layer_mlp():
    tg.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3))
    loss = nn.CrossEntropyLoss()(model(Tensor(np.ones((5, 4)))), np.array([0, 1, 2, 1, 0]))
    loss.backward()
    return model, loss


class Cube(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 3 * x**2


class SplitHalves(Function):
    """A user's op with two outputs."""

    @staticmethod
    def forward(ctx, x):
        half = x.shape[-1] // 2
        return x[..., :half].copy(), x[..., half:].copy()

    @staticmethod
    def backward(ctx, grad_first, grad_second):
        return np.concatenate([grad_first, grad_second], axis=-1)


# --------------------------------------------------------------------------------------------------------------
# What the labels say
# --------------------------------------------------------------------------------------------------------------


def test_ops_tensors_and_parameters_are_labelled():
    model, loss = tutorial_network()
    source = draw_graph(loss, model).source
    labels = [label for label, _ in nodes(source).values()]
    ops = sorted(label.split(" | ")[0] for label in labels if label.split(" | ")[0] in {"Linear", "Sigmoid", "Mul"})
    assert ops == ["Linear", "Linear", "Mul", "Sigmoid", "Sigmoid"]
    node_with(source, "MeanSquaredError")
    assert node_with(source, "0.weight")[1] == "0.weight | (3, 3) float64"
    assert node_with(source, "2.weight")[1] == "2.weight | (3, 3) float64"
    assert sum(label == "(3,) float64" for label in labels) == 4  # the outputs of the four layers
    assert node_with(source, "output")[1] == "output | scalar float64"
    # The inputs and the target need no gradient: the ops say so, since there is no edge to draw.
    assert "+1 no-grad input" in node_with(source, "MeanSquaredError")[1]


def test_dtype_is_shown():
    w = Tensor(np.ones((2, 3), dtype=np.float32), requires_grad=True)
    source = draw_graph((w * 2).sum()).source
    assert node_with(source, "input |")[1] == "input | (2, 3) float32"
    assert "scalar float32" in node_with(source, "output")[1]


def test_without_a_model_parameters_are_still_parameters():
    _, loss = tutorial_network()
    source = draw_graph(loss).source
    parameters = [label for label, _ in nodes(source).values() if label.startswith("parameter")]
    assert parameters == ["parameter | (3, 3) float64"] * 2
    assert "0.weight" not in source


def test_user_function_names_and_multiple_outputs():
    x = Tensor(np.arange(1.0, 5.0), requires_grad=True)
    first, second = SplitHalves.apply(Cube.apply(x))
    loss = (first * second).sum()
    source = draw_graph(loss).source
    node_with(source, "Cube")
    split_id, _, _ = node_with(source, "SplitHalves")
    assert node_with(source, "[0] (2,) float64")[0] == f"{split_id}_out0"
    assert node_with(source, "[1] (2,) float64")[0] == f"{split_id}_out1"
    assert f"{split_id} -> {split_id}_out0" in source and f"{split_id} -> {split_id}_out1" in source
    mul_id = node_with(source, "Mul")[0]
    assert f"{split_id}_out0 -> {mul_id}" in source and f"{split_id}_out1 -> {mul_id}" in source


def test_several_roots():
    x = Tensor([1.0, 2.0], requires_grad=True)
    hidden = x.exp()
    source = draw_graph([hidden.sum(), (hidden * 2).mean()]).source
    assert node_with(source, "output 0")[1] == "output 0 | scalar float64"
    assert node_with(source, "output 1")[1] == "output 1 | scalar float64"
    node_with(source, "Exp")  # shared, drawn once


def test_names_title_inputs_intermediates_and_the_output():
    x1, w1 = Tensor(2.0, requires_grad=True), Tensor(-3.0, requires_grad=True)
    b = Tensor(6.88, requires_grad=True)
    n = x1 * w1 + b
    o = n.tanh()
    source = draw_graph(o, names={"x1": x1, "w1": w1, "b": b, "n": n, "o": o}).source
    for name in ("x1", "w1", "b"):
        assert node_with(source, f"{name} |")[1] == f"{name} | scalar float64"
    assert nodes(source)[node_with(source, "Add")[0] + "_out"][0] == "n | scalar float64"
    _, label, style = node_with(source, "o |")
    assert label == "o | scalar float64" and attribute(style, "fillcolor") == "#ecdcf4"  # still an output
    with pytest.raises(TypeError, match=r"names\['n'\] must be a Tensor, got ndarray"):
        draw_graph(o, names={"n": n.data})
    with pytest.raises(TypeError, match="names must be a dict"):
        draw_graph(o, names=[x1])


def test_a_name_wins_over_the_models():
    model, loss = tutorial_network()
    source = draw_graph(loss, model, names={"W_ih": model[0].weight}).source
    assert node_with(source, "W_ih")[1] == "W_ih | (3, 3) float64"
    node_with(source, "2.weight")


def test_the_same_drawing_twice_gives_the_same_text():
    model, loss = mlp_loss()
    assert draw_graph(loss, model).source == draw_graph(loss, model).source


# --------------------------------------------------------------------------------------------------------------
# Modules as clusters
# --------------------------------------------------------------------------------------------------------------


def test_modules_are_nested_clusters_with_name_and_class():
    model, loss = mlp_loss()
    source = draw_graph(loss, model).source
    assert source.count("subgraph cluster_") == 6
    assert cluster(source, "MLP")["parent"] is None
    assert cluster(source, "hidden: Sequential")["parent"] == "MLP"
    assert cluster(source, "hidden.0: Linear")["parent"] == "hidden: Sequential"
    assert cluster(source, "hidden.1: ReLU")["parent"] == "hidden: Sequential"
    assert cluster(source, "out: Linear")["parent"] == "MLP"
    assert cluster(source, "CrossEntropyLoss")["parent"] is None  # a module outside the model: its class only
    # Each op and parameter is in the cluster of the module call it belongs to.
    linear = cluster(source, "hidden.0: Linear")["nodes"]
    assert node_with(source, "hidden.0.weight")[0] in linear
    assert node_with(source, "hidden.0.bias")[0] in linear
    assert node_with(source, "ReLU")[0] in cluster(source, "hidden.1: ReLU")["nodes"]
    assert node_with(source, "CrossEntropy")[0] in cluster(source, "CrossEntropyLoss")["nodes"]
    # The loss, computed outside every module, is in no cluster.
    output = node_with(source, "output")[0]
    assert all(output not in c["nodes"] for c in clusters(source))


def test_two_calls_of_one_module_are_two_clusters():
    tg.manual_seed(0)
    layer = nn.Linear(3, 3)

    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = layer

        def forward(self, x):
            return self.layer(self.layer(x))

    model = Twice()
    source = draw_graph(model(Tensor(np.ones((2, 3)))).sum(), model).source
    calls = [c for c in clusters(source) if c["label"] == "layer: Linear"]
    assert len(calls) == 2
    assert all(c["parent"] == "Twice" for c in calls)
    # The shared weight is drawn once, in the module call enclosing both uses.
    assert node_with(source, "layer.weight")[0] in cluster(source, "Twice")["nodes"]


def test_ops_outside_modules_are_outside_clusters():
    x = Tensor([1.0, 2.0], requires_grad=True)
    source = draw_graph((x * x).sum()).source
    assert "subgraph" not in source


# --------------------------------------------------------------------------------------------------------------
# Colours and legend
# --------------------------------------------------------------------------------------------------------------


def test_kinds_of_node_have_distinct_colours_and_a_legend():
    tg.manual_seed(0)
    model = nn.Linear(2, 1)
    x = Tensor([[1.0, 2.0]], requires_grad=True)
    source = draw_graph(model(x).sum(), model).source
    fills = {
        text: attribute(node_with(source, text)[2], "fillcolor") for text in ("input", "weight", "Linear", "output")
    }
    assert len(set(fills.values())) == 4, fills
    entries = legend(source)
    for word in ("input", "parameter", "op", "tensor", "output"):
        assert word in entries
    # The legend's swatches use the nodes' colours.
    for fill in fills.values():
        assert f'bgcolor="{fill}"' in source.split("\n", 2)[1]


def test_legend_only_lists_what_is_drawn_and_can_be_left_out():
    x = Tensor([1.0, 2.0], requires_grad=True)
    graph = draw_graph((x * x).sum())
    entries = legend(graph.source)
    assert "input" in entries and "parameter" not in entries and "collapsed module" not in entries
    assert legend(draw_graph((x * x).sum(), legend=False).source) == ""


# --------------------------------------------------------------------------------------------------------------
# max_depth
# --------------------------------------------------------------------------------------------------------------


def test_max_depth_collapses_deeper_modules_into_boxes_with_shapes():
    model, loss = mlp_loss()
    source = draw_graph(loss, model, max_depth=1).source
    labels = [label for label, _ in nodes(source).values()]
    assert not any(label.startswith(("Linear", "ReLU")) for label in labels)  # their ops are inside the boxes
    assert [c["label"] for c in clusters(source)] == ["MLP", "CrossEntropyLoss"]
    _, hidden, hidden_style = node_with(source, "hidden: Sequential")
    assert "out (5, 8) float64" in hidden
    assert "hidden.0.weight (8, 4) float64" in hidden  # its own parameters are listed in the box
    assert "2 ops inside" in hidden and "+1 no-grad input" in hidden
    assert attribute(hidden_style, "shape") == "box3d"
    _, out, _ = node_with(source, "out: Linear")
    assert "in (5, 8) float64" in out and "out (5, 3) float64" in out
    assert "out.weight" not in [label.split(" | ")[0] for label in labels]  # no separate parameter nodes
    hidden_id, out_id = node_with(source, "hidden: Sequential")[0], node_with(source, "out: Linear")[0]
    assert f"{hidden_id} -> {out_id}" in source
    assert "collapsed module" in legend(source)


def test_max_depth_zero_collapses_the_whole_model():
    model, loss = mlp_loss()
    source = draw_graph(loss, model, max_depth=0).source
    assert "subgraph" not in source
    _, box, _ = node_with(source, "MLP")
    assert "out (5, 3) float64" in box and "3 ops inside" in box
    node_with(source, "CrossEntropyLoss")


def test_a_root_inside_a_collapsed_module_gets_its_own_box():
    model, _ = mlp_loss()
    out = model(Tensor(np.ones((2, 4))))
    source = draw_graph(out, model, max_depth=0).source
    box_id = node_with(source, "MLP")[0]
    output_id, label, _ = node_with(source, "output")
    assert label == "output | (2, 3) float64"
    assert f"{box_id} -> {output_id}" in source


# --------------------------------------------------------------------------------------------------------------
# Gradients
# --------------------------------------------------------------------------------------------------------------


def test_gradient_norms_are_shown_after_backward_and_the_released_graph_still_draws():
    model, loss = mlp_loss()
    before = draw_graph(loss, model).source
    assert "grad norm" not in before
    loss.backward()
    assert loss.grad_fn._saved is None  # the graph's arrays are released
    source = draw_graph(loss, model).source
    for name, parameter in model.named_parameters():
        assert node_with(source, name)[1].endswith(f"grad norm {np.linalg.norm(parameter.grad):.3g}")
    # Intermediate gradients were not kept, so computed tensors show none.
    assert nodes(source)[node_with(source, "(5, 3) float64")[0]][0] == "(5, 3) float64"
    assert "grad norm" not in draw_graph(loss, model, show_grads=False).source


def test_intermediate_norms_are_shown_under_retain_grads():
    x = Tensor([1.0, -2.0, 3.0], requires_grad=True)
    hidden = x.exp()
    loss = (hidden * hidden).sum()
    with tg.retain_grads():
        loss.backward()
    source = draw_graph(loss).source
    exp_out = node_with(source, "Exp")[0] + "_out"
    expected = np.linalg.norm(2 * np.exp(x.data))
    assert nodes(source)[exp_out][0] == f"(3,) float64 | grad norm {expected:.3g}"
    assert node_with(source, "output")[1].endswith("grad norm 1")


def test_multi_output_nodes_show_each_outputs_retained_gradient():
    x = Tensor(np.arange(1.0, 5.0), requires_grad=True)
    first, _ = SplitHalves.apply(x * 1.0)
    loss = (first * 3).sum()
    with tg.retain_grads():
        loss.backward()
    source = draw_graph(loss).source
    split = node_with(source, "SplitHalves")[0]
    assert nodes(source)[f"{split}_out0"][0] == f"[0] (2,) float64 | grad norm {np.linalg.norm([3, 3]):.3g}"
    assert nodes(source)[f"{split}_out1"][0] == "[1] (2,) float64"  # unused: no gradient reached it


def test_a_zero_gradient_is_highlighted():
    # Inputs that are all negative: the ReLU passes nothing back, so the first layer learns nothing.
    tg.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
    model[0].bias.data[...] = -100.0
    loss = model(Tensor(np.ones((4, 2)))).sum()
    loss.backward()
    assert not model[0].weight.grad.any()
    source = draw_graph(loss, model).source
    _, label, style = node_with(source, "0.weight")
    assert "grad is all zero" in label
    assert attribute(style, "color") == "#e8710a" and attribute(style, "penwidth") == "2.5"
    _, healthy, healthy_style = node_with(source, "2.bias")
    assert "grad norm 4" in healthy and attribute(healthy_style, "penwidth") is None
    assert "zero gradient" in legend(source)


def test_nan_and_inf_gradients_are_highlighted():
    w = Tensor([-1.0, 4.0], requires_grad=True)
    v = Tensor([0.0, 1.0], requires_grad=True)
    with np.errstate(all="ignore"):
        loss = w.sqrt().sum() + v.log().sum()
        loss.backward()
    source = draw_graph(loss).source
    labels = {label: style for _, (label, style) in nodes(source).items() if label.startswith("input")}
    nan_label = next(label for label in labels if "NaN" in label)
    inf_label = next(label for label in labels if "inf" in label)
    assert "grad has 1 NaN of 2" in nan_label and "grad has 1 inf of 2" in inf_label
    assert attribute(labels[nan_label], "color") == "#d62728"
    assert "NaN / inf gradient" in legend(source)


def test_vanishing_gradients_in_a_deep_sigmoid_network_are_flagged():
    tg.manual_seed(0)
    model = nn.Sequential(*[nn.Sequential(nn.Linear(8, 8), nn.Sigmoid()) for _ in range(10)])
    loss = F.mse_loss(model(Tensor(np.random.default_rng(0).normal(size=(16, 8)))), np.zeros((16, 8)))
    loss.backward()
    source = draw_graph(loss, model, fold_repeats=False).source
    first_label, first_style = node_with(source, "0.0.weight")[1:]
    last_label, last_style = node_with(source, "9.0.weight")[1:]
    assert "× largest" in first_label and "dashed" in attribute(first_style, "style")
    assert "×" not in last_label and attribute(last_style, "penwidth") is None
    assert "vanishing" in legend(source)
    assert "×" not in draw_graph(loss, model, vanishing_ratio=None, fold_repeats=False).source
    # Folded (the default), the ten blocks are one box that gives the range of norms and how many vanish.
    _, box, box_style = node_with(draw_graph(loss, model).source, "Linear-Sigmoid x 10")
    weights = [np.linalg.norm(block[0].weight.grad) for block in model]
    assert (
        f"0.weight x 10 (8, 8) float64 ⚠ grad norms {min(weights):.3g} … {max(weights):.3g}, 6 of 10 vanishing" in box
    )
    assert "dashed" in attribute(box_style, "style")
    # Collapsed, the boxes of the first blocks carry the warning.
    collapsed = draw_graph(loss, model, max_depth=1, fold_repeats=False).source
    _, box, box_style = node_with(collapsed, "0: Sequential")
    assert "0.0.weight" in box and "× largest" in box and "dashed" in attribute(box_style, "style")


def test_show_data_prints_small_values_micrograd_style():
    x = Tensor(-4.0, requires_grad=True)
    z = 2 * x + 2 + x
    y = (z * x).relu() + z
    y.backward()
    source = draw_graph(y, show_data=True).source
    # y = relu(z * x) + z with z = 3x + 2: at x = -4, y = 30 and dy/dx = (3x + z) + 3 = -19.
    assert node_with(source, "input |")[1] == "input | scalar float64 | data -4 | grad -19"  # no norm: grad says it
    assert node_with(source, "output")[1].endswith("data 30")
    big = Tensor(np.ones(7), requires_grad=True)
    source = draw_graph((big * 2).sum(), show_data=True).source
    assert "data" not in node_with(source, "input |")[1]
    assert "data" not in draw_graph(y).source


# --------------------------------------------------------------------------------------------------------------
# Size: deep graphs and max_nodes
# --------------------------------------------------------------------------------------------------------------


def chain(length: int) -> Tensor:
    x = Tensor(np.ones(3), requires_grad=True)
    for _ in range(length):
        x = x * 1.001
    return x.sum()


def test_a_chain_of_3000_ops_draws_fast_without_recursion():
    root = chain(3000)
    start = time.perf_counter()
    source = draw_graph(root, max_nodes=None).source
    assert time.perf_counter() - start < 5.0
    labels = [label for label, _ in nodes(source).values()]
    assert sum(label.startswith("Mul") for label in labels) == 3000
    assert "more" not in nodes(source)


def test_past_max_nodes_a_marker_says_how_many_ops_were_left_out():
    source = draw_graph(chain(100), max_nodes=10).source
    labels = [label for label, _ in nodes(source).values()]
    assert sum(label.startswith(("Mul", "Sum")) for label in labels) == 10  # the ten next to the output
    assert nodes(source)["more"][0] == "… 91 more ops not drawn (max_nodes)"
    assert re.search(r"more -> op0 \[style=dashed\]", source)


# --------------------------------------------------------------------------------------------------------------
# Rendering, saving, Jupyter, and the missing dot
# --------------------------------------------------------------------------------------------------------------


@needs_dot
@pytest.mark.parametrize(
    "scenario", ["plain", "collapsed", "problems", "data", "truncated", "multi", "folded", "folded-truncated", "lr"]
)
def test_dot_accepts_the_text_without_complaint(scenario):
    model, loss = mlp_loss()
    if scenario.startswith("folded"):
        model, loss = residual_mlp()
        graph = draw_graph(loss, model, max_nodes=3 if scenario == "folded-truncated" else 500)
    elif scenario == "lr":
        graph = draw_graph(loss, model, rankdir="LR", max_depth=1)
    elif scenario in ("plain", "collapsed"):
        with tg.retain_grads():
            loss.backward()
        graph = draw_graph(loss, model, max_depth=1 if scenario == "collapsed" else None)
    elif scenario == "problems":
        w = Tensor([-1.0, 0.0, 2.0], requires_grad=True)
        with np.errstate(all="ignore"):
            loss = (w.sqrt() + w.relu()).sum()
            loss.backward()
        graph = draw_graph(loss, show_data=True)
    elif scenario == "data":
        x = Tensor(-4.0, requires_grad=True)
        graph = draw_graph((x * x + x).relu(), show_data=True, rankdir="LR")
    elif scenario == "truncated":
        graph = draw_graph(chain(50), max_nodes=5)
    else:
        graph = draw_graph(list(SplitHalves.apply(Tensor(np.ones(4), requires_grad=True) * 2)))
    assert dot_errors(graph) == ""


@needs_dot
def test_render_graph_writes_svg_and_png(tmp_path):
    model, loss = tutorial_network()
    graph = draw_graph(loss, model)
    svg = render_graph(graph, tmp_path / "graph.svg")
    assert svg == tmp_path / "graph.svg"
    assert "<svg" in svg.read_text() and "0.weight" in svg.read_text()
    png = render_graph(graph, tmp_path / "graph.png")
    assert png.read_bytes().startswith(b"\x89PNG")
    assert render_graph(graph, tmp_path / "picture", format="svg").read_text().count("<svg") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["graph.png", "graph.svg", "picture"]  # nothing else


@needs_dot
def test_the_graph_shows_inline_in_jupyter():
    model, loss = tutorial_network()
    bundle = draw_graph(loss, model)._repr_mimebundle_()
    assert "<svg" in bundle["image/svg+xml"]


@needs_dot
def test_save_graph_picks_the_format_from_the_suffix(tmp_path):
    model, loss = tutorial_network()
    assert "<svg" in save_graph(loss, tmp_path / "g.svg", model, max_depth=1).read_text()
    assert save_graph(loss, tmp_path / "g.png", model).read_bytes().startswith(b"\x89PNG")
    assert save_graph(loss, tmp_path / "g.dot", model).read_text() == draw_graph(loss, model).source
    with pytest.raises(ValueError, match=r"'\.txt'|g\.txt"):
        save_graph(loss, tmp_path / "g.txt", model)
    with pytest.raises(ValueError, match="has none"):
        save_graph(loss, tmp_path / "graph", model)


def test_without_dot_rendering_says_what_to_install_and_source_still_works(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    model, loss = tutorial_network()
    graph = draw_graph(loss, model)
    assert "0.weight" in graph.source
    with pytest.raises(GraphvizNotFoundError, match="apt-get install graphviz") as caught:
        render_graph(graph, tmp_path / "graph.svg")
    assert "https://graphviz.org/download/" in str(caught.value)
    assert isinstance(caught.value, graphviz.ExecutableNotFound) and isinstance(caught.value, RuntimeError)
    assert not (tmp_path / "graph.svg").exists()
    with pytest.raises(GraphvizNotFoundError):
        save_graph(loss, tmp_path / "graph.png", model)
    assert save_graph(loss, tmp_path / "graph.gv", model).read_text() == graph.source


# --------------------------------------------------------------------------------------------------------------
# Mistakes
# --------------------------------------------------------------------------------------------------------------


def test_mistakes_are_named():
    model, loss = tutorial_network()
    with pytest.raises(TypeError, match="got a ndarray"):
        draw_graph(np.ones(3))
    with pytest.raises(TypeError, match="item 1 of the list is a float"):
        draw_graph([loss, 1.0])
    with pytest.raises(ValueError, match="empty list"):
        draw_graph([])
    with tg.no_grad():
        prediction = model(Tensor(np.ones(3)))
    with pytest.raises(ValueError, match=r"no graph: .*no_grad\(\)"):
        draw_graph(prediction)
    with pytest.raises(TypeError, match="model must be a Module"):
        draw_graph(loss, model.state_dict())
    with pytest.raises(ValueError, match="max_depth must be None or an integer >= 0, got -1"):
        draw_graph(loss, max_depth=-1)
    with pytest.raises(ValueError, match="max_nodes must be None or an integer >= 1, got 0"):
        draw_graph(loss, max_nodes=0)
    with pytest.raises(ValueError, match="rankdir must be one of TB, LR, BT, RL, got 'down'"):
        draw_graph(loss, rankdir="down")
    with pytest.raises(ValueError, match="not a format Graphviz writes"):
        render_graph(draw_graph(loss), "graph.svg", format="jpeg2000")


def test_a_leaf_that_requires_grad_draws_as_one_node():
    w = Tensor([1.0, 2.0], requires_grad=True)
    source = draw_graph(w).source
    assert node_with(source, "output")[1] == "output | (2,) float64"


# --------------------------------------------------------------------------------------------------------------
# Readable by default: parameters beside their op, the data path straight down, big enough text
# --------------------------------------------------------------------------------------------------------------


def test_a_parameter_used_by_one_op_sits_beside_it_weight_left_bias_right():
    model, loss = three_layer_mlp()
    source = draw_graph(loss, model).source
    for layer in ("0", "2", "4"):
        weight = node_with(source, f"{layer}.weight")[0]
        bias = node_with(source, f"{layer}.bias")[0]
        op = next(node for node in cluster(source, f"{layer}: Linear")["nodes"] if node.startswith("op"))
        assert f"{{rank=same; {weight} {op} {bias};}}" in source
        assert f"{weight} -> {op}\n" in source and f"{op} -> {bias} [dir=back]" in source


def positions(graph: graphviz.Digraph) -> dict[str, tuple[float, float]]:
    """Where dot puts each node: id -> (x, y) in inches, y growing upwards."""
    result = subprocess.run(["dot", "-Tplain"], input=graph.source.encode(), capture_output=True, check=True)
    found = {}
    for line in result.stdout.decode().splitlines():
        parts = line.split()
        if parts and parts[0] == "node":
            found[parts[1]] = (float(parts[2]), float(parts[3]))
    return found


@needs_dot
def test_the_data_path_runs_straight_down_with_the_parameters_on_either_side():
    model, loss = three_layer_mlp()
    graph = draw_graph(loss, model)
    place = positions(graph)
    source = graph.source
    chain = ["op0", "op0_out", "op1", "op1_out", "op2", "op2_out", "op3", "op3_out", "op4", "op4_out"]
    xs = [place[node][0] for node in chain]
    assert max(xs) - min(xs) < 0.05, xs  # one vertical line: no zig-zag between the clusters
    ys = [place[node][1] for node in chain]
    assert ys == sorted(ys, reverse=True)  # each op below its input
    for layer, op in (("0", "op0"), ("2", "op2"), ("4", "op4")):
        weight, bias = node_with(source, f"{layer}.weight")[0], node_with(source, f"{layer}.bias")[0]
        assert place[weight][0] < place[op][0] < place[bias][0]
        assert place[weight][1] == place[op][1] == place[bias][1]


def test_default_fonts_are_large_and_dark():
    model, loss = three_layer_mlp()
    source = draw_graph(loss, model).source
    assert "fontsize=14" in source.split("\n", 3)[2]  # the node defaults
    sizes = {int(size) for size in re.findall(r'point-size="(\d+)"', source)}
    assert min(sizes) >= 11
    greys = set(re.findall(r'<font[^>]* color="(#[0-9a-f]{6})"', source))
    assert all(int(grey[1:3], 16) <= 0x40 for grey in greys), greys  # dark grey at the lightest


@needs_dot
def test_a_png_is_rendered_at_144_dpi_unless_the_graph_says_otherwise(tmp_path):
    model, loss = three_layer_mlp()
    graph = draw_graph(loss, model)
    default = png_size(render_graph(graph, tmp_path / "default.png"))
    graph.attr(dpi="72")
    small = png_size(render_graph(graph, tmp_path / "small.png"))
    assert default[0] >= 800 and default[1] >= 1500  # 860 x 1686 on Graphviz 2.43
    assert small[0] < default[0] / 1.8
    assert "dpi" not in draw_graph(loss, model).source  # the text itself is unchanged


def png_size(path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


# --------------------------------------------------------------------------------------------------------------
# Folding repeated blocks
# --------------------------------------------------------------------------------------------------------------


def test_twelve_residual_blocks_fold_into_one_box():
    model, loss = residual_mlp(12)
    source = draw_graph(loss, model).source
    box_id, box, style = node_with(source, "Block x 12")
    assert box_id.startswith("fold")
    assert "blocks.0 … blocks.11" in box
    assert "in (3, 16) float64" in box and "out (3, 16) float64" in box
    assert "fc.weight x 12 (16, 16) float64" in box and "fc.bias x 12 (16,) float64" in box
    assert "36 ops inside, 3,264 parameters" in box
    assert attribute(style, "shape") == "box3d" and attribute(style, "fillcolor") == "#e4eef0"
    assert "Add" not in [label.split(" | ")[0] for label, _ in nodes(source).values()]  # folded with the blocks
    assert not any(c["label"].startswith("blocks.") for c in clusters(source))
    assert "repeated blocks, folded" in legend(source)
    # In, through the box, out: the box sits on the path from the first layer to the last.
    out_op = next(node for node in cluster(source, "out: Linear")["nodes"] if node.startswith("op"))
    assert re.search(rf"{box_id} -> {out_op}\b", source)


def test_fold_repeats_false_draws_every_block_and_an_integer_sets_the_shortest_run():
    model, loss = residual_mlp(3)
    assert "Block x 3" in draw_graph(loss, model).source
    unfolded = draw_graph(loss, model, fold_repeats=False).source
    assert "Block x" not in unfolded
    assert sum(c["label"].endswith(": Block") for c in clusters(unfolded)) == 3
    assert "Block x" not in draw_graph(loss, model, fold_repeats=4).source
    for wrong in (1, 0.5, "yes"):
        with pytest.raises(ValueError, match=r"fold_repeats must be True, False or .* got"):
            draw_graph(loss, model, fold_repeats=wrong)


def test_a_flat_sequential_folds_linear_relu_pairs():
    tg.manual_seed(0)
    layers = []
    for _ in range(8):
        layers += [nn.Linear(8, 8), nn.ReLU()]
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), *layers, nn.Linear(8, 2))
    source = draw_graph(model(Tensor(np.ones((2, 4)))).sum(), model).source
    _, box, _ = node_with(source, "Linear-ReLU x 8")
    assert "2 … 17" in box and "16 ops inside" in box
    assert node_with(source, "0.weight") and node_with(source, "18.weight")  # the odd layers stay drawn


def test_a_fold_counts_as_one_unit_for_max_nodes():
    model, loss = residual_mlp(12)
    source = draw_graph(loss, model, max_nodes=3).source
    node_with(source, "Block x 12")
    assert nodes(source)["more"][0] == "… 1 more op not drawn (max_nodes)"


# --------------------------------------------------------------------------------------------------------------
# Files: the explorer is the .html suffix
# --------------------------------------------------------------------------------------------------------------


def test_render_graph_points_html_to_save_graph_and_rejects_other_objects(tmp_path):
    model, loss = tutorial_network()
    graph = draw_graph(loss, model)
    with pytest.raises(ValueError, match=r"save_graph\(loss, 'graph.html', model\)"):
        render_graph(graph, tmp_path / "graph.html")
    with pytest.raises(TypeError, match="needs the graph draw_graph returns, got Tensor"):
        render_graph(loss, tmp_path / "graph.svg")


def test_save_graph_writes_the_explorer_for_html_even_without_dot(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    model, loss = tutorial_network()
    page = save_graph(loss, tmp_path / "graph.html", model).read_text()
    assert page.startswith("<!DOCTYPE html>") and "tinygradExplorer" in page
    assert save_graph(loss, tmp_path / "graph", model, format="html").read_text() == page


@needs_dot
def test_render_graph_also_takes_graphviz_source_text(tmp_path):
    source = graphviz.Source("digraph { a -> b }")
    assert "<svg" in render_graph(source, tmp_path / "ab.svg").read_text()
    assert render_graph(source, tmp_path / "ab.png").read_bytes().startswith(b"\x89PNG")
    assert render_graph(source, tmp_path / "ab.dot").read_text() == source.source
