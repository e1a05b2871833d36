"""The explorer's page, read as text: self-contained, its data, its options and mistakes, Jupyter's frame."""

from __future__ import annotations

import html
import json
import re

import numpy as np
import pytest

import tinygrad_nn as tg
from tinygrad_nn import Tensor, nn
from tinygrad_nn.autograd import backward_order
from tinygrad_nn.viz import GraphExplorer, save_graph, show_graph
from tinygrad_nn.viz.model import GraphModel


def tutorial_network():
    tg.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 3, bias=False), nn.Sigmoid(), nn.Linear(3, 3, bias=False), nn.Sigmoid())
    loss = ((model(Tensor(np.array([0.9, 0.1, 0.8]))) - np.array([0.99, 0.01, 0.01])) ** 2).sum()
    return model, loss


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.fc(x))


def blocks_model(count=5):
    tg.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), *[Block() for _ in range(count)], nn.Linear(8, 1))
    loss = model(Tensor(np.ones((2, 4)))).sum()
    loss.backward()
    return model, loss


def payload(page: str) -> dict:
    match = re.search(r'<script type="application/json" id="tg-data">(.*?)</script>', page, re.DOTALL)
    return json.loads(match.group(1))


# --------------------------------------------------------------------------------------------------------------
# Self-contained
# --------------------------------------------------------------------------------------------------------------


def assert_self_contained(page: str) -> None:
    assert "http://" not in page and "https://" not in page
    assert not re.search(r"\b(?:src|href)\s*=\s*[\"'](?!data:|#)", page), "the page refers to another file"
    assert "@import" not in page
    assert "url(" not in page
    assert "<script src" not in page and '<link rel="stylesheet"' not in page


def test_the_page_is_one_self_contained_file(tmp_path):
    model, loss = tutorial_network()
    loss.backward()
    path = save_graph(loss, tmp_path / "graph.html", model)
    page = path.read_text(encoding="utf-8")
    assert_self_contained(page)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert page.count("<script") == 2  # the data, and the explorer itself, inline


def test_user_text_cannot_break_out_of_the_page_or_make_a_url():
    x = Tensor([1.0, 2.0], requires_grad=True)
    hostile = '</script><script>alert("x")</script> http://example.org <b>&amp;'
    explorer = show_graph((x * 2).sum(), names={hostile: x}, title=hostile)
    page = explorer.html
    assert_self_contained(page)
    assert page.count("</script>") == 2  # only the page's own
    assert "<b>&amp;" not in page
    data = payload(page)
    assert data["tensors"][0]["title"] == hostile  # the JSON still holds the text itself
    assert data["title"] == hostile


def test_nan_and_inf_statistics_are_written_as_valid_json():
    w = Tensor([-1.0, 4.0, 0.0], requires_grad=True)
    with np.errstate(all="ignore"):
        loss = (w.sqrt() + w.log()).sum()
        loss.backward()
    data = payload(show_graph(loss, names={"w": w}).html)
    grad = next(t for t in data["tensors"] if t["title"] == "w")["grad"]
    assert grad["nan"] == 1 and grad["inf"] == 1
    assert next(t for t in data["tensors"] if t["title"] == "w")["problem"] == "nonfinite"


# --------------------------------------------------------------------------------------------------------------
# The data the page holds
# --------------------------------------------------------------------------------------------------------------


def test_the_data_mirrors_the_model_and_the_engines_backward_order():
    model, loss = blocks_model(5)
    graph = GraphModel([loss], model)
    data = payload(show_graph(loss, model).html)
    assert [op["name"] for op in data["ops"]] == [op.name for op in graph.ops]
    index = {id(op.node): op.index for op in graph.ops}
    assert data["backward"] == [[index[id(node)] for node in backward_order(loss)]]
    (fold,) = [c for c in data["containers"] if c["kind"] == "fold"]
    assert fold["title"] == "Block x 5" and fold["repeats"] == 5 and fold["collapsed"] is True
    assert fold["opCount"] == 10 and fold["parameterCount"] == 5 * (64 + 8)
    assert all(c["collapsed"] is False for c in data["containers"] if c["kind"] == "call")
    weight = next(t for t in data["tensors"] if t["title"] == "0.weight")
    assert weight["kind"] == "parameter" and weight["shape"] == [8, 4] and weight["dtype"] == "float64"
    assert weight["flank"][1] == "left"
    assert weight["grad"]["norm"] == pytest.approx(np.linalg.norm(model[0].weight.grad))
    assert sum(weight["grad"]["histogram"]["counts"]) == 32
    assert weight["data"]["mean"] == pytest.approx(model[0].weight.data.mean())
    legend = {entry["text"] for entry in data["legend"]}
    assert {"parameter", "op", "tensor", "output", "collapsed module", "repeated blocks, folded"} <= legend


def test_max_depth_says_which_modules_start_collapsed():
    model, loss = blocks_model(2)
    data = payload(show_graph(loss, model, max_depth=1, fold_repeats=False).html)
    states = {c["title"]: c["collapsed"] for c in data["containers"]}
    assert states["Sequential"] is False and states["0: Linear"] is True and states["1.fc: Linear"] is True


def test_saved_arrays_are_described_and_freed_ones_are_null():
    model, loss = tutorial_network()
    before = payload(show_graph(loss, model).html)
    linear = next(op for op in before["ops"] if op["name"] == "Linear")
    assert linear["saved"][0].startswith("input 0: (3,) float64")
    loss.backward()
    after = payload(show_graph(loss, model).html)
    assert all(op["saved"] is None for op in after["ops"])
    loss2 = model(Tensor(np.ones(3))).sum()
    loss2.backward(retain_graph=True)
    kept = payload(show_graph(loss2, model).html)
    assert all(op["saved"] is not None for op in kept["ops"])


def test_several_roots_give_one_backward_pass_each():
    x = Tensor([1.0, 2.0], requires_grad=True)
    hidden = x.exp()
    first, second = hidden.sum(), (hidden * 2).mean()
    data = payload(show_graph([first, second]).html)
    assert len(data["backward"]) == 2 and len(data["roots"]) == 2
    assert [data["ops"][k]["name"] for k in data["backward"][0]] == ["Sum", "Exp"]
    assert [data["ops"][k]["name"] for k in data["backward"][1]] == ["Mean", "Mul", "Exp"]


# --------------------------------------------------------------------------------------------------------------
# Jupyter, the object, options and mistakes
# --------------------------------------------------------------------------------------------------------------


def test_in_jupyter_the_page_shows_in_a_sandboxed_frame():
    model, loss = tutorial_network()
    explorer = show_graph(loss, model, title="tutorial 001", height=500)
    frame = explorer._repr_html_()
    assert frame.startswith("<iframe srcdoc=") and 'sandbox="allow-scripts"' in frame and "height: 500px" in frame
    source = re.search(r'srcdoc="([^"]*)"', frame).group(1)
    assert html.unescape(source) == explorer.html
    assert "tutorial 001" in repr(explorer) and "ops" in repr(explorer)
    assert isinstance(explorer, GraphExplorer)


def test_save_writes_the_page_and_returns_the_path(tmp_path):
    model, loss = tutorial_network()
    explorer = show_graph(loss, model)
    path = explorer.save(tmp_path / "page.html")
    assert path == tmp_path / "page.html" and path.read_text(encoding="utf-8") == explorer.html


def test_options_of_the_graphviz_picture_are_refused_with_a_reason(tmp_path):
    model, loss = tutorial_network()
    with pytest.raises(
        TypeError, match=r"save_graph: the HTML explorer does not take rankdir \(an option of the Graphviz"
    ):
        save_graph(loss, tmp_path / "g.html", model, rankdir="LR")
    with pytest.raises(TypeError, match=r"does not take colour; it takes names, show_grads"):
        save_graph(loss, tmp_path / "g.html", model, colour="red")
    assert not (tmp_path / "g.html").exists()


def test_mistakes_are_named_by_the_function_called():
    model, loss = tutorial_network()
    with pytest.raises(TypeError, match="show_graph needs a Tensor or a list of Tensors; got a ndarray"):
        show_graph(np.ones(3))
    with pytest.raises(ValueError, match="save_graph got an empty list"):
        save_graph([], "never.html")
    with pytest.raises(TypeError, match="show_graph: model must be a Module"):
        show_graph(loss, {"weight": 1})
    with pytest.raises(ValueError, match="show_graph: max_depth must be None or an integer >= 0, got -2"):
        show_graph(loss, max_depth=-2)
    with pytest.raises(ValueError, match="show_graph: height must be a whole number of pixels, at least 100"):
        show_graph(loss, height=10)
    with pytest.raises(TypeError, match="show_graph: title must be a string, got int"):
        show_graph(loss, title=3)
    with pytest.raises(ValueError, match="show_graph: vanishing_ratio must be None or a positive number"):
        show_graph(loss, vanishing_ratio=0)
    with pytest.raises(TypeError, match=r"show_graph: names\['x'\] must be a Tensor"):
        show_graph(loss, names={"x": 1.0})
    with tg.no_grad():
        constant = model(Tensor(np.ones(3)))
    with pytest.raises(ValueError, match=r"show_graph got a tensor of shape .* with no graph"):
        show_graph(constant)


def test_the_explorer_is_exported_from_the_viz_package():
    import tinygrad_nn.viz as viz

    assert {"show_graph", "GraphExplorer", "draw_graph", "save_graph", "render_graph"} <= set(viz.__all__)
    assert tg.draw_graph is viz.draw_graph and tg.save_graph is viz.save_graph


def test_the_explorers_script_and_style_can_be_inlined_as_they_are():
    from pathlib import Path

    import tinygrad_nn.viz.html as page

    folder = Path(page.__file__).parent
    script = (folder / "explorer.js").read_text(encoding="utf-8")
    style = (folder / "explorer.css").read_text(encoding="utf-8")
    for text in (script, style):
        assert "</script" not in text.lower() and "</style" not in text.lower() and "<!--" not in text
        assert "http:" not in text and "https:" not in text
    assert "createElementNS" not in script  # that needs the SVG namespace, a URL
