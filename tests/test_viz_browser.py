"""The explorer in a real browser: headless Chromium, driven through selenium, clicking, expanding, stepping, searching.

Every test opens pages written by `save_graph(..., "x.html")` from local files, with the network switched off in
Chromium's flags, and fails on any message Chromium logs as an error (an exception in the page's script, a
resource it could not load). Without chromium and chromedriver the tests skip, saying what to install; with
TINYGRAD_NN_REQUIRE_BROWSER=1 (as in CI) they fail instead.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

import tinygrad_nn as tg
from tinygrad_nn import Function, Tensor, nn
from tinygrad_nn.autograd import backward_order
from tinygrad_nn.nn import functional as F  # noqa: N812
from tinygrad_nn.viz import draw_graph, save_graph, show_graph
from tinygrad_nn.viz.model import GraphModel

pytestmark = pytest.mark.browser

REQUIRED = os.environ.get("TINYGRAD_NN_REQUIRE_BROWSER") == "1"
# What CI passes (no sandbox as root, no GPU, and nothing that reaches for the network).
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,900",
)


def chromium_and_driver() -> tuple[str | None, str | None, str | None]:
    """(chromium, chromedriver, why not): the programs, or the reason the tests cannot run."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return None, None, "selenium is not installed (pip install -e '.[test]')"
    chromium = next(
        (found for name in ("chromium", "chromium-browser", "google-chrome") if (found := shutil.which(name))), None
    )
    driver = shutil.which("chromedriver")
    if chromium is None or driver is None:
        missing = " and ".join(name for name, path in (("chromium", chromium), ("chromedriver", driver)) if not path)
        return None, None, f"{missing} not found on PATH (apt-get install chromium chromium-driver)"
    return chromium, driver, None


@pytest.fixture(scope="module")
def driver():
    chromium, chromedriver, problem = chromium_and_driver()
    if problem:
        if REQUIRED:
            pytest.fail(f"TINYGRAD_NN_REQUIRE_BROWSER=1 but {problem}")
        pytest.skip(problem)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="tinygrad-nn-chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    options.binary_location = chromium
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(service=Service(chromedriver), options=options)
    yield browser
    browser.quit()
    shutil.rmtree(profile, ignore_errors=True)


class Page:
    """An explorer page open in the browser, with the checks every test wants."""

    def __init__(self, browser, path: Path) -> None:
        from selenium.webdriver.support.ui import WebDriverWait

        self.browser = browser
        browser.get(path.resolve().as_uri())
        WebDriverWait(browser, 20).until(
            lambda b: b.execute_script("return !!(window.tinygradExplorer && window.tinygradExplorer.ready)")
        )

    def js(self, code: str, *arguments):
        return self.browser.execute_script(code, *arguments)

    def api(self, call: str, *arguments):
        return self.browser.execute_script(f"return window.tinygradExplorer.{call};", *arguments)

    def find(self, selector: str):
        from selenium.webdriver.common.by import By

        return self.browser.find_element(By.CSS_SELECTOR, selector)

    def find_all(self, selector: str):
        from selenium.webdriver.common.by import By

        return self.browser.find_elements(By.CSS_SELECTOR, selector)

    def panel(self) -> str:
        return self.find("#tg-panel").text


@pytest.fixture
def open_page(driver, tmp_path):
    """open_page(root, model, **options) writes the explorer and opens it; the test fails on console errors."""
    driver.get_log("browser")  # forget what earlier tests left

    def opener(root, model=None, name="graph", **options) -> Page:
        path = save_graph(root, tmp_path / f"{name}.html", model, **options)
        return Page(driver, path)

    yield opener
    errors = [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, f"the page logged errors: {errors}"


# --------------------------------------------------------------------------------------------------------------
# Graphs
# --------------------------------------------------------------------------------------------------------------


def mlp():
    tg.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3))
    loss = nn.CrossEntropyLoss()(model(Tensor(np.random.default_rng(0).normal(size=(5, 4)))), np.array([0, 1, 2, 1, 0]))
    return model, loss


class Block(nn.Module):
    def __init__(self, width=16):
        super().__init__()
        self.fc = nn.Linear(width, width)
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


def residual(blocks=12):
    tg.manual_seed(0)
    model = ResidualMLP(blocks)
    loss = model(Tensor(np.random.default_rng(0).normal(size=(3, 4)))).sum()
    return model, loss


def tutorial_network():
    tg.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 3, bias=False), nn.Sigmoid(), nn.Linear(3, 3, bias=False), nn.Sigmoid())
    loss = 0.5 * F.mse_loss(model(Tensor(np.array([0.9, 0.1, 0.8]))), np.array([0.99, 0.01, 0.01]), reduction="sum")
    return model, loss


class SplitHalves(Function):
    @staticmethod
    def forward(ctx, x):
        half = x.shape[-1] // 2
        return x[..., :half].copy(), x[..., half:].copy()

    @staticmethod
    def backward(ctx, first, second):
        return np.concatenate([first, second], axis=-1)


def op_index(model, loss):
    """Index in the page's data of each node, as the model numbers ops."""
    graph = GraphModel([loss], model)
    return {id(op.node): op.index for op in graph.ops}, graph


# --------------------------------------------------------------------------------------------------------------
# Opening
# --------------------------------------------------------------------------------------------------------------


def scenario(name):
    if name == "tutorial":
        model, loss = tutorial_network()
        loss.backward()
        return loss, model, {}
    if name == "residual":
        model, loss = residual()
        with tg.retain_grads():
            loss.backward()
        return loss, model, {}
    if name == "collapsed":
        model, loss = mlp()
        return loss, model, {"max_depth": 0}
    if name == "multi-output-and-two-roots":
        x = Tensor(np.arange(1.0, 5.0), requires_grad=True)
        first, second = SplitHalves.apply(x.exp())
        return [(first * second).sum(), first.mean()], None, {}
    if name == "leaf-only":
        return Tensor([1.0, 2.0], requires_grad=True), None, {}
    if name == "problems":
        w = Tensor([-1.0, 0.0, 2.0], requires_grad=True)
        with np.errstate(all="ignore"):
            loss = (w.sqrt() + w.log() + w.relu()).sum()
            loss.backward()
        return loss, None, {"names": {"w": w}}
    if name == "hostile-names":
        x = Tensor([1.0, 2.0], requires_grad=True)
        evil = "</script><img src=x onerror=alert(1)> ' \" & http://example.org"
        return (x * 2).sum(), None, {"names": {evil: x}, "title": evil}
    if name == "gradient-is-a-tensor":  # what higher-order autograd leaves in .grad
        w = Tensor([3.0, 4.0], requires_grad=True)
        loss = (w * w).sum()
        w.grad = Tensor(np.array([6.0, 8.0]))
        return loss, None, {"names": {"w": w}}
    raise AssertionError(name)


SCENARIOS = [
    "tutorial",
    "residual",
    "collapsed",
    "multi-output-and-two-roots",
    "leaf-only",
    "problems",
    "hostile-names",
    "gradient-is-a-tensor",
]


@pytest.mark.parametrize("name", SCENARIOS)
def test_pages_open_offline_without_errors_and_fetch_nothing(open_page, name):
    root, model, options = scenario(name)
    page = open_page(root, model, **options)
    assert page.js("return performance.getEntriesByType('resource').length") == 0  # no script, style or font
    assert page.find("#tg-app").get_attribute("data-ready") == "true"
    data = page.api("data")
    drawn = page.api("visibleNodes()")
    assert drawn, "nothing drawn"
    assert len(page.find_all("#tg-viewport [data-node]")) >= len(drawn)
    assert page.api("steps()") == sum(len(order) for order in data["backward"])


def test_hostile_names_are_shown_as_text(open_page):
    root, model, options = scenario("hostile-names")
    page = open_page(root, model, **options)
    assert page.js("return document.querySelectorAll('img').length") == 0
    assert page.js("return document.title").startswith("</script><img")
    node = page.find("[data-kind='input']")
    node.click()
    assert "</script><img src=x onerror=alert(1)>" in page.panel()


# --------------------------------------------------------------------------------------------------------------
# Pan and zoom
# --------------------------------------------------------------------------------------------------------------


def test_dragging_pans_and_the_wheel_zooms_around_the_pointer(open_page):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.actions.wheel_input import ScrollOrigin

    model, loss = mlp()
    page = open_page(loss, model)
    canvas = page.find("#tg-canvas")
    before = page.api("view()")
    # Grab an empty spot (the left edge of the canvas) and drag.
    ActionChains(page.browser).move_to_element_with_offset(
        canvas, -canvas.size["width"] // 2 + 20, 0
    ).click_and_hold().move_by_offset(120, 45).release().perform()
    moved = page.api("view()")
    assert moved["x"] == pytest.approx(before["x"] + 120, abs=1) and moved["y"] == pytest.approx(
        before["y"] + 45, abs=1
    )
    assert moved["k"] == before["k"]
    ActionChains(page.browser).scroll_from_origin(ScrollOrigin.from_element(canvas), 0, -300).perform()
    zoomed = page.api("view()")
    assert zoomed["k"] > moved["k"] * 1.2
    ActionChains(page.browser).scroll_from_origin(ScrollOrigin.from_element(canvas), 0, 600).perform()
    assert page.api("view()")["k"] < zoomed["k"]
    page.find("#tg-fit").click()
    assert page.api("view()") == pytest.approx(before)
    assert page.api("step()") == 0 and page.api("visibleOps()")  # dragging clicked nothing


# --------------------------------------------------------------------------------------------------------------
# Collapse and expand
# --------------------------------------------------------------------------------------------------------------


def test_clicking_a_module_collapses_it_into_its_box_and_clicking_the_box_expands_it(open_page):
    model, loss = mlp()
    loss.backward()
    page = open_page(loss, model)
    containers = {c["title"]: c for c in page.api("containers()")}
    linear = containers["2: Linear"]
    op = linear["ops"][0]
    assert linear["state"] == "expanded" and op in page.api("visibleOps()")
    page.find(f".tg-cluster[data-container='{linear['id']}'] .tg-cluster-title").click()
    assert page.api(f"container({linear['id']})")["state"] == "collapsed"
    assert op not in page.api("visibleOps()")
    box = page.find(f"[data-node='c{linear['id']}']")
    assert box.get_attribute("data-state") == "collapsed"
    text = box.text
    for line in ("2: Linear", "in (5, 8) float64", "out (5, 8) float64", "2.weight (8, 8) float64", "grad norm"):
        assert line in text.replace("  ", " "), text
    assert "1 op inside, 72 parameters" in text
    assert "2.weight" in page.panel()  # the box's summary in the side panel
    box.click()
    assert page.api(f"container({linear['id']})")["state"] == "expanded" and op in page.api("visibleOps()")
    # Collapsing the outer module (a click on its title bar) hides the inner ones in its box.
    outer = containers["Sequential"]
    page.find(f".tg-cluster[data-container='{outer['id']}'] .tg-cluster-bar").click()
    assert page.api(f"container({linear['id']})")["state"] == "hidden"
    assert {entry["key"] for entry in page.api("visibleNodes()")} >= {f"c{outer['id']}"}
    page.find("#tg-expand-all").click()
    assert all(c["state"] == "expanded" for c in page.api("containers()"))
    page.find("#tg-collapse-all").click()
    assert page.api(f"container({outer['id']})")["state"] == "collapsed"


def test_repeated_blocks_start_folded_with_their_count_and_expand_to_show_their_ops(open_page):
    model, loss = residual(12)
    loss.backward()
    page = open_page(loss, model)
    fold = page.find("[data-kind='fold']")
    assert fold.get_attribute("data-repeats") == "12"
    assert "Block x 12" in fold.text and "36 ops inside" in fold.text
    fold_id = int(fold.get_attribute("data-container"))
    inside = page.api(f"container({fold_id})")["ops"]
    assert len(inside) == 36 and not set(inside) & set(page.api("visibleOps()"))
    fold.click()
    assert set(inside) <= set(page.api("visibleOps()"))  # expanding reveals every op of every block
    blocks = [c for c in page.api("containers()") if c["title"].endswith(": Block")]
    assert len(blocks) == 12 and all(c["state"] == "expanded" for c in blocks)
    expanded = page.find(f".tg-cluster[data-container='{fold_id}']")
    assert expanded.get_attribute("data-repeats") == "12"
    names = [op["name"] for op in page.api("ops()") if op["id"] in inside]
    assert names.count("Linear") == 12 and names.count("ReLU") == 12 and names.count("Add") == 12
    expanded.find_element("css selector", ".tg-cluster-title").click()  # fold it again
    assert page.api(f"container({fold_id})")["state"] == "collapsed"


def test_a_run_of_linear_relu_pairs_folds_as_linear_relu_x_8(open_page):
    tg.manual_seed(0)
    layers = []
    for _ in range(8):
        layers += [nn.Linear(8, 8), nn.ReLU()]
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), *layers, nn.Linear(8, 2))
    page = open_page(model(Tensor(np.ones((2, 4)))).sum(), model)
    fold = page.find("[data-kind='fold']")
    assert fold.text.startswith("▸ Linear-ReLU x 8") and fold.get_attribute("data-repeats") == "8"


# --------------------------------------------------------------------------------------------------------------
# What a node says
# --------------------------------------------------------------------------------------------------------------


def test_hover_and_click_show_shape_dtype_module_path_values_and_gradient(open_page):
    from selenium.webdriver.common.action_chains import ActionChains

    model, loss = mlp()
    loss.backward()
    page = open_page(loss, model)
    weight = page.find("[data-kind='parameter']")  # 0.weight, beside the first Linear
    ActionChains(page.browser).move_to_element(weight).perform()
    tooltip = page.find("#tg-tooltip")
    assert tooltip.is_displayed()
    assert "0.weight" in tooltip.text and "(8, 4) float64" in tooltip.text and "Sequential › 0: Linear" in tooltip.text
    weight.click()
    panel = page.panel()
    gradient = model[0].weight.grad
    for expected in (
        "0.weight",
        "shape (8, 4)",
        "dtype float64",
        "module Sequential › 0: Linear",
        f"norm {np.linalg.norm(gradient):.3g}",
        f"mean {gradient.mean():.3g}",
        f"max {gradient.max():.3g}",
        f"mean {model[0].weight.data.mean():.3g}",
    ):
        assert expected in panel, (expected, panel)
    histograms = page.find_all("#tg-panel .tg-histogram")
    assert len(histograms) == 2  # the values and the gradient
    assert len(histograms[1].find_elements("css selector", "rect")) == 16
    assert "tg-selected" in weight.get_attribute("class")
    page.find("[data-kind='op']").click()
    panel = page.panel()
    assert "Linear" in panel and "module Sequential › 0: Linear" in panel and "output (5, 8) float64" in panel
    assert "step 6 of 6" in panel  # the first Linear is the last op backward reaches


def test_computed_tensors_say_why_they_have_no_values(open_page):
    model, loss = mlp()
    with tg.retain_grads():
        loss.backward()
    page = open_page(loss, model)
    page.find("[data-kind='tensor']").click()
    panel = page.panel()
    assert "not kept: the graph keeps only leaves' and roots' values" in panel
    assert "norm" in panel and "(5, 8)" in panel  # its retained gradient


def test_the_saved_for_backward_switch_shows_what_each_op_saved(open_page):
    model, loss = mlp()
    loss.backward(retain_graph=True)
    page = open_page(loss, model, name="kept")
    ops_before = {el.get_attribute("data-node"): el.text for el in page.find_all("[data-kind='op']")}
    assert not any("saved" in text for text in ops_before.values())
    page.find("#tg-saved").click()
    texts = [el.text for el in page.find_all("[data-kind='op']")]
    assert all("saved:" in text for text in texts)
    linear = next(text for text in texts if text.startswith("Linear"))
    assert "saved: input 0: (5, 4) float64" in linear and "input 1: (8, 4) float64" in linear
    model, loss = mlp()
    loss.backward()
    page = open_page(loss, model, name="freed")
    page.api("showSaved(true)")
    assert all("saved: freed by backward" in el.text for el in page.find_all("[data-kind='op']"))
    page.find("[data-kind='op']").click()
    assert "freed by backward (pass retain_graph=True" in page.panel()


# --------------------------------------------------------------------------------------------------------------
# Search
# --------------------------------------------------------------------------------------------------------------


def test_search_highlights_matches_and_enter_reveals_each_in_turn(open_page):
    from selenium.webdriver.common.keys import Keys

    model, loss = residual(4)
    page = open_page(loss, model)
    box = page.find("#tg-search")
    box.send_keys("fc.weight")
    assert page.find("#tg-search-count").text == "4 matches"
    # All four are inside the folded blocks: the fold is marked as holding matches.
    assert "tg-match-inside" in page.find("[data-kind='fold']").get_attribute("class")
    box.send_keys(Keys.ENTER)
    assert page.find("#tg-search-count").text == "1 of 4 matches"
    assert page.panel().startswith("blocks.0.fc.weight")
    match = page.find(".tg-match")
    assert match.get_attribute("data-kind") == "parameter" and "blocks.0.fc.weight" in match.text
    box.send_keys(Keys.ENTER)
    assert page.panel().startswith("blocks.1.fc.weight")
    assert page.api("search('Linear')") and page.find("#tg-search-count").text == "12 matches"  # 6 ops, 6 calls
    assert page.api("search('no such thing')") == [] and page.find("#tg-search-count").text == "0 matches"
    box.clear()
    box.send_keys(Keys.ESCAPE)
    assert page.find_all(".tg-match") == []


# --------------------------------------------------------------------------------------------------------------
# The backward stepper
# --------------------------------------------------------------------------------------------------------------


def test_the_stepper_walks_backward_in_the_engines_order_lighting_what_it_reached(open_page):
    model, loss = mlp()
    index, graph = op_index(model, loss)
    expected = [index[id(node)] for node in backward_order(loss)]
    page = open_page(loss, model)
    assert page.api("backwardOrder()") == expected
    assert page.find("#tg-step-label").text == f"backward: {len(expected)} steps, press ▶"
    delivered = []
    for step, op in enumerate(expected, start=1):
        page.find("#tg-next").click()
        assert page.api("step()") == step and page.api("currentOp()") == op
        current = page.find_all(".tg-node.tg-current")
        assert [el.get_attribute("data-node") for el in current] == [f"o{op}"]
        assert page.find("#tg-app").get_attribute("data-current-op") == str(op)
        assert len(page.find_all(".tg-node.tg-done[data-kind='op']")) == step - 1
        delivered.append(len(page.find_all(".tg-link.tg-delivered")))
        assert page.find("#tg-step-label").text.startswith(
            f"backward {step} / {len(expected)}: {page.api('ops()')[op]['name']}"
        )
    assert delivered == sorted(delivered) and delivered[-1] > delivered[0]
    visited = page.api("visited()")
    assert visited == expected and len(set(visited)) == len(graph.ops)
    # Each op only after every op that reads its output: the order of the graph.
    position = {op: k for k, op in enumerate(visited)}
    for op in page.api("ops()"):
        for producer in op["producers"]:
            if producer is not None:
                assert position[producer] > position[op["id"]]
    assert page.find("#tg-next").get_attribute("disabled") == "true"
    parameters = page.find_all("[data-kind='parameter']")
    assert all("tg-has-grad" in el.get_attribute("class") for el in parameters)
    page.find("#tg-prev").click()
    assert page.api("step()") == len(expected) - 1
    page.find("#tg-first").click()
    assert (
        page.api("step()") == 0 and page.find_all(".tg-current") == [] and page.find_all(".tg-link.tg-delivered") == []
    )


def test_the_arrow_keys_step_and_a_collapsed_module_lights_up_while_backward_is_inside_it(open_page):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    model, loss = mlp()
    index, _ = op_index(model, loss)
    expected = [index[id(node)] for node in backward_order(loss)]
    page = open_page(loss, model, max_depth=0)
    box = page.find("[data-kind='module']")
    box_ops = set(page.api(f"container({box.get_attribute('data-container')})")["ops"])
    page.js("document.activeElement && document.activeElement.blur()")  # keys to the page, not a button
    for op in expected:
        ActionChains(page.browser).send_keys(Keys.ARROW_RIGHT).perform()
        assert page.api("currentOp()") == op
        lit = "tg-current" in page.find("[data-kind='module']").get_attribute("class")
        assert lit == (op in box_ops)
    ActionChains(page.browser).send_keys(Keys.ARROW_LEFT).perform()
    assert page.api("step()") == len(expected) - 1
    # Space on a focused button presses that button, once, and does not also start playing.
    page.find("#tg-first").click()
    page.find("#tg-next").send_keys(Keys.SPACE)
    assert page.api("step()") == 1 and page.find("#tg-play").text == "▶ play"


def test_play_runs_the_steps_and_pause_stops_them(open_page):
    from selenium.webdriver.support.ui import WebDriverWait

    model, loss = residual(3)
    page = open_page(loss, model)
    page.find("#tg-play").click()
    WebDriverWait(page.browser, 10).until(lambda _: page.api("step()") >= 2)
    page.find("#tg-play").click()  # now the pause button
    stopped = page.api("step()")
    assert page.find("#tg-play").text == "▶ play"
    page.api("goTo(arguments[0])", stopped)  # nothing scheduled changes it any more
    assert page.api("visited()") == page.api("backwardOrder()")[:stopped]


def test_two_roots_are_stepped_one_backward_pass_after_the_other(open_page):
    root, model, options = scenario("multi-output-and-two-roots")
    page = open_page(root, model, **options)
    passes = page.api("data")["backward"]
    assert page.api("steps()") == len(passes[0]) + len(passes[1])
    page.api("goTo(arguments[0])", len(passes[0]) + 1)
    assert "(output 1)" in page.find("#tg-step-label").text
    assert page.api("currentOp()") == passes[1][0]


# --------------------------------------------------------------------------------------------------------------
# Gradient problems and the legend
# --------------------------------------------------------------------------------------------------------------


def test_problem_gradients_are_marked_with_the_static_pictures_legend(open_page):
    w = Tensor([-1.0, 0.0, 2.0], requires_grad=True)
    tiny = Tensor([1.0], requires_grad=True)
    dead = Tensor([1.0, 1.0], requires_grad=True)
    healthy = Tensor([1.0], requires_grad=True)
    with np.errstate(all="ignore"):
        loss = w.sqrt().sum() + (tiny * 1e-9).sum() + (dead * 0.0).sum() + (healthy * 2.0).sum()
        loss.backward()
    names = {"w": w, "tiny": tiny, "dead": dead, "healthy": healthy}
    page = open_page(loss, names=names)
    classes = {el.text.split("\n")[0]: el.get_attribute("class") for el in page.find_all("[data-kind='input']")}
    assert "tg-problem-nonfinite" in classes["w"]
    assert "tg-problem-vanishing" in classes["tiny"]
    assert "tg-problem-zero" in classes["dead"]
    assert "tg-problem" not in classes["healthy"]
    legend = page.find("#tg-legend").text
    static_legend = draw_graph(loss, names=names).source.split("\n", 2)[1]
    for words in ("input", "op", "tensor", "output", "vanishing gradient", "zero gradient", "NaN / inf gradient"):
        assert words in legend and words in static_legend
    nan = page.find("[data-kind='input'].tg-problem-nonfinite rect")
    assert nan.value_of_css_property("stroke") == "rgb(214, 39, 40)"  # #d62728, as in the DOT picture


# --------------------------------------------------------------------------------------------------------------
# Jupyter and big graphs
# --------------------------------------------------------------------------------------------------------------


def test_the_jupyter_frame_runs_the_explorer(driver, tmp_path):
    driver.get_log("browser")
    model, loss = tutorial_network()
    frame = show_graph(loss, model)._repr_html_()
    notebook_like = tmp_path / "cell.html"
    notebook_like.write_text(f"<!DOCTYPE html><html><body><p>cell output:</p>{frame}</body></html>")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(notebook_like.as_uri())
    driver.switch_to.frame(driver.find_element(By.TAG_NAME, "iframe"))
    try:
        WebDriverWait(driver, 20).until(
            lambda b: b.execute_script("return !!(window.tinygradExplorer && tinygradExplorer.ready)")
        )
        driver.find_element(By.ID, "tg-next").click()
        assert driver.execute_script("return tinygradExplorer.step()") == 1
    finally:
        driver.switch_to.default_content()
    errors = [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors


def test_a_5000_op_chain_opens_and_stays_interactive(open_page):
    x = Tensor(np.ones(3), requires_grad=True)
    y = x
    for _ in range(4999):
        y = y * 1.001
    root = y.sum()
    page = open_page(root)
    assert len(page.api("data")["ops"]) == 5000
    drawn = page.find_all("[data-kind='op']")
    assert 0 < len(drawn) < 1000  # only what is near the screen is in the page
    on_screen = page.js(
        "const box = document.getElementById('tg-canvas').getBoundingClientRect();"
        "return [...document.querySelectorAll('[data-kind=op]')].find(function (el) {"
        "  const r = el.getBoundingClientRect();"
        "  return r.top > box.top && r.bottom < box.bottom && r.left > box.left && r.right < box.right; });"
    )
    on_screen.click()
    assert "Mul" in page.panel() or "Sum" in page.panel()
    from selenium.webdriver.support.ui import WebDriverWait

    assert page.find_all("[data-node='o4999']") and not page.find_all("[data-node='o0']")  # it opens at the output
    page.api("goTo(5000)")
    visited = page.api("visited()")
    assert len(visited) == 5000 and len(set(visited)) == 5000
    # The last step is the first Mul, 10,000 nodes up the chain: the view follows it and draws what is there.
    WebDriverWait(page.browser, 10).until(lambda _: page.find_all("[data-node='o0']"))
    assert "tg-current" in page.find("[data-node='o0']").get_attribute("class")
    assert not page.find_all("[data-node='o4999']")
    page.js("tinygradExplorer.select('t5000')")  # the output, back at the other end
    WebDriverWait(page.browser, 10).until(lambda _: page.find_all("[data-node='t5000']"))
    assert page.panel().startswith("output")
    # A taller window shows more of the chain, and more is drawn.
    drawn = len(page.find_all("[data-kind='op']"))
    size = page.browser.get_window_size()
    try:
        page.browser.set_window_size(size["width"], size["height"] * 3)
        WebDriverWait(page.browser, 10).until(lambda _: len(page.find_all("[data-kind='op']")) > drawn)
    finally:
        page.browser.set_window_size(size["width"], size["height"])


# --------------------------------------------------------------------------------------------------------------
# The tutorial networks of examples/
# --------------------------------------------------------------------------------------------------------------

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def tutorial(name: str):
    """(loss, model) of one training step of the tutorial's own network class, built by the example itself."""
    import importlib
    import sys

    sys.path.insert(0, str(EXAMPLES))
    try:
        module = importlib.import_module(name)
    finally:
        sys.path.remove(str(EXAMPLES))
    np.random.seed(0)
    if name == "tutorial_000_python_course":
        network = module.NeuralNetwork(2, 2, 10, 0.1)
        inputs, targets = Tensor(np.array([1.0, 1.5])), np.array([0.99, 0.01])
    elif name == "tutorial_001_make_your_own":
        network = module.Neural_Network(784, 100, 10, 0.1)
        inputs, targets = Tensor(np.random.rand(784)), np.full(10, 0.01)
    elif name == "tutorial_002_003_real_python":
        network = module.NeuralNetwork(0.1)
        inputs, targets = Tensor(np.array([1.66, 1.56])), np.array([1.0])
    else:
        network = module.NN()
        inputs, targets = Tensor(np.array([[0.0, 0.0, 1.0], [1.0, 1.0, 1.0]])), np.array([[0.0], [1.0]])
    loss = 0.5 * F.mse_loss(network.network(inputs), targets, reduction="sum")
    loss.backward()
    return loss, network.network


@pytest.mark.parametrize(
    "name",
    [
        "tutorial_000_python_course",
        "tutorial_001_make_your_own",
        "tutorial_002_003_real_python",
        "tutorial_004_sichkar",
    ],
)
def test_the_tutorial_networks_open_and_step_through_backward(open_page, name):
    loss, model = tutorial(name)
    page = open_page(loss, model, name=name)
    order = page.api("backwardOrder()")
    assert len(order) == len(backward_order(loss)) and len(set(order)) == len(order)
    page.api("goTo(arguments[0])", len(order))
    assert page.api("visited()") == order
    weights = page.find_all("[data-kind='parameter']")
    assert weights and all("tg-has-grad" in el.get_attribute("class") for el in weights)
