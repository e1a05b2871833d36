"""Draw the pictures of the docs: Graphviz pictures into docs/images/, and the explorer's pages and screenshots.

Every picture comes from a small, seeded computation, so running this again gives the same pictures.

- The static pictures of docs/graphs.md (SVG; ``--format png`` to look at them as PNG) need Graphviz's ``dot``.
- The explorer's pages, docs/explorer-pages/*.html, need nothing; the site links to them and embeds one.
- The explorer's screenshots and the GIF of its backward stepper (docs/images/explorer-*) need headless Chromium
  and selenium; without them the script says so and leaves the committed ones alone.

Run it from anywhere: ``python scripts/make_doc_images.py [--out DIR] [--format svg|png]``.
"""

from __future__ import annotations

import argparse
import io
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import graphviz
import numpy as np

import tinygrad_nn as tg
from tinygrad_nn import Tensor, nn
from tinygrad_nn.nn import functional as F  # noqa: N812
from tinygrad_nn.viz import draw_graph, render_graph, save_graph

DOCS = Path(__file__).resolve().parent.parent / "docs"
DOCS_IMAGES = DOCS / "images"
DOCS_EXPLORER = DOCS / "explorer-pages"


def tutorial_network() -> tuple[nn.Sequential, Tensor]:
    """Tutorial 001's network at the tutorial's own 3-3-3 size, with its weights and its one training sample."""
    np.random.seed(7)
    model = nn.Sequential(nn.Linear(3, 3, bias=False), nn.Sigmoid(), nn.Linear(3, 3, bias=False), nn.Sigmoid())
    model[0].weight.data[...] = np.random.rand(3, 3) - 0.5
    model[2].weight.data[...] = np.random.rand(3, 3) - 0.5
    inputs, targets = Tensor(np.array([0.9, 0.1, 0.5])), np.array([0.99, 0.01, 0.01])
    loss = 0.5 * F.mse_loss(model(inputs), targets, reduction="sum")
    return model, loss


def tutorial_before() -> graphviz.Digraph:
    """The tutorial's network before backward: ops, shapes and parameter names."""
    model, loss = tutorial_network()
    return draw_graph(loss, model)


def tutorial_after() -> graphviz.Digraph:
    """The same after backward inside retain_grads: every tensor's gradient norm, and the loss's value."""
    model, loss = tutorial_network()
    with tg.retain_grads():
        loss.backward()
    return draw_graph(loss, model, show_data=True)


def micrograd() -> graphviz.Digraph:
    """The neuron of micrograd's lecture, o = tanh(x1 w1 + x2 w2 + b): scalars with values and gradients."""
    x1, x2 = Tensor(2.0, requires_grad=True), Tensor(0.0, requires_grad=True)
    w1, w2 = Tensor(-3.0, requires_grad=True), Tensor(1.0, requires_grad=True)
    b = Tensor(6.8813735870195432, requires_grad=True)
    n = x1 * w1 + x2 * w2 + b
    o = n.tanh()
    with tg.retain_grads():
        o.backward()
    names = {"x1": x1, "x2": x2, "w1": w1, "w2": w2, "b": b, "n": n, "o": o}
    return draw_graph(o, names=names, show_data=True, rankdir="LR")


class MLP(nn.Module):
    """Two named parts, one of them a Sequential: enough nesting to show clusters."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden = nn.Sequential(nn.Linear(784, 100), nn.ReLU())
        self.classifier = nn.Linear(100, 10)

    def forward(self, x: Tensor) -> Tensor:
        """Scores for the ten classes."""
        return self.classifier(self.hidden(x))


def mlp_loss() -> tuple[MLP, Tensor]:
    """The MLP on a batch of 64 random images, with its cross-entropy loss, after backward."""
    tg.manual_seed(0)
    model = MLP().to(np.float32)
    rng = np.random.default_rng(0)
    images = Tensor(rng.random((64, 784), dtype=np.float32))
    loss = nn.CrossEntropyLoss()(model(images), rng.integers(0, 10, size=64))
    loss.backward()
    return model, loss


def mlp_clusters() -> graphviz.Digraph:
    """Every module call a cluster, nested as the calls were."""
    model, loss = mlp_loss()
    return draw_graph(loss, model)


def mlp_max_depth() -> graphviz.Digraph:
    """The same with max_depth=1: the model's children collapsed into boxes."""
    model, loss = mlp_loss()
    return draw_graph(loss, model, max_depth=1)


def sigmoid_blocks() -> tuple[nn.Sequential, Tensor]:
    """Ten blocks of Linear(8, 8) and Sigmoid, after backward: the gradient shrinks by about ten at each."""
    tg.manual_seed(0)
    model = nn.Sequential(*[nn.Sequential(nn.Linear(8, 8), nn.Sigmoid()) for _ in range(10)])
    x = Tensor(np.random.default_rng(0).normal(size=(16, 8)))
    loss = F.mse_loss(model(x), np.zeros((16, 8)))
    loss.backward()
    return model, loss


def vanishing() -> graphviz.Digraph:
    """Each of the ten sigmoid blocks as a box (not folded), flagged from block 5 down."""
    model, loss = sigmoid_blocks()
    return draw_graph(loss, model, max_depth=1, fold_repeats=False)


def vanishing_folded() -> graphviz.Digraph:
    """The same ten blocks folded into one box, as draw_graph draws them by default."""
    model, loss = sigmoid_blocks()
    return draw_graph(loss, model)


class Block(nn.Module):
    """A residual MLP's block: Linear and ReLU (the residual add is in the model's forward)."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        self.fc = nn.Linear(width, width)
        self.act = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        """The block's update of x."""
        return self.act(self.fc(x))


class ResidualMLP(nn.Module):
    """An input layer, twelve residual blocks in a ModuleList, an output layer."""

    def __init__(self, blocks: int = 12, width: int = 16) -> None:
        super().__init__()
        self.inp = nn.Linear(4, width)
        self.blocks = nn.ModuleList([Block(width) for _ in range(blocks)])
        self.out = nn.Linear(width, 1)

    def forward(self, x: Tensor) -> Tensor:
        """X through the blocks, each adding its output to its input."""
        x = self.inp(x)
        for block in self.blocks:
            x = x + block(x)
        return self.out(x)


def residual_mlp() -> tuple[ResidualMLP, Tensor]:
    """The residual MLP on a batch of 3, with a squared-error loss, after backward inside retain_grads."""
    tg.manual_seed(0)
    model = ResidualMLP()
    x = Tensor(np.random.default_rng(0).normal(size=(3, 4)))
    loss = F.mse_loss(model(x), np.zeros((3, 1)))
    with tg.retain_grads():
        loss.backward(retain_graph=True)
    return model, loss


def residual_folded() -> graphviz.Digraph:
    """Twelve residual blocks folded into one box: Block x 12."""
    model, loss = residual_mlp()
    return draw_graph(loss, model)


def dead_relu() -> graphviz.Digraph:
    """A ReLU layer whose inputs are all negative passes no gradient back: zero gradients."""
    tg.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
    model[0].bias.data[...] = -100.0
    loss = model(Tensor(np.ones((4, 2)))).sum()
    loss.backward()
    return draw_graph(loss, model)


def autograd_example() -> graphviz.Digraph:
    """The first example of docs/tensor-and-autograd.md, y = sum(w * x), after backward.

    The leaf w gets its gradient; x (data) needs none, so no edge leads to it.
    """
    w = Tensor([0.5, -1.0], requires_grad=True)
    x = Tensor(np.array([2.0, 3.0]))
    y = (w * x).sum()
    with tg.retain_grads():
        y.backward()
    return draw_graph(y, names={"w": w, "y": y}, show_data=True, rankdir="LR")


def double_backward() -> graphviz.Digraph:
    """The gradient of y = sum(tanh(x * x)) computed with create_graph=True (docs/higher-order.md).

    Its graph holds the forward's Tanh node (the gradient reads tanh's output) and the ops of the two backward
    formulas: what the second derivative walks.
    """
    x = Tensor([0.5, -1.0], requires_grad=True)
    y = (x * x).tanh().sum()
    (gradient,) = tg.grad(y, x, create_graph=True)
    return draw_graph(gradient, names={"x": x, "dy/dx": gradient}, rankdir="LR")


PICTURES: dict[str, Callable[[], graphviz.Digraph]] = {
    "double-backward": double_backward,
    "autograd-example": autograd_example,
    "tutorial-001-before": tutorial_before,
    "tutorial-001-after": tutorial_after,
    "micrograd": micrograd,
    "mlp-clusters": mlp_clusters,
    "mlp-max-depth": mlp_max_depth,
    "vanishing-gradient": vanishing,
    "vanishing-gradient-folded": vanishing_folded,
    "residual-folded": residual_folded,
    "dead-relu": dead_relu,
}


# --------------------------------------------------------------------------------------------------------------
# The explorer: pages for the site, screenshots, and the backward stepper as a GIF
# --------------------------------------------------------------------------------------------------------------


def explorer_pages(folder: Path) -> dict[str, Path]:
    """Write the explorers the docs link to and embed; return them by name."""
    folder.mkdir(parents=True, exist_ok=True)
    model, loss = tutorial_network()
    with tg.retain_grads():
        loss.backward(retain_graph=True)
    pages = {"tutorial-001": save_graph(loss, folder / "tutorial-001.html", model, title="Tutorial 001's network")}
    model, loss = residual_mlp()
    pages["residual-mlp"] = save_graph(loss, folder / "residual-mlp.html", model, title="A residual MLP, 12 blocks")
    model, loss = sigmoid_blocks()
    pages["vanishing"] = save_graph(loss, folder / "vanishing.html", model, title="Ten sigmoid blocks")
    return pages


CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
)


def open_browser(profile: str, width: int, height: int):
    """Headless Chromium, or None (and why) when it or selenium is missing."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        return None, "selenium is not installed (pip install -e '.[test]')"
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver = shutil.which("chromedriver")
    if chromium is None or driver is None:
        return None, "chromium and chromedriver are not on PATH (apt-get install chromium chromium-driver)"
    options = webdriver.ChromeOptions()
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--window-size={width},{height}")
    options.add_argument(f"--user-data-dir={profile}")
    options.binary_location = chromium
    return webdriver.Chrome(service=Service(driver), options=options), ""


def load(browser, page: Path) -> None:
    """Open an explorer page and wait until it is drawn."""
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(page.resolve().as_uri())
    WebDriverWait(browser, 30).until(lambda b: b.execute_script("return !!window.tinygradExplorer?.ready"))


def screenshots(pages: dict[str, Path], out: Path) -> list[Path]:
    """The explorer's screenshots and the stepper's GIF, or [] with a note when there is no browser."""
    from PIL import Image

    written = []
    api = "return window.tinygradExplorer."
    with tempfile.TemporaryDirectory(prefix="tinygrad-nn-docs-") as profile:
        browser, problem = open_browser(profile, 1280, 800)
        if browser is None:
            print(f"skipped the explorer's screenshots: {problem}")
            return []
        try:
            # The residual MLP as it opens: its twelve blocks folded into one box, the box's details in the panel.
            load(browser, pages["residual-mlp"])
            fold = browser.execute_script(api + "containers().find(c => c.kind === 'fold').id")
            browser.execute_script(api + "select(arguments[0])", f"c{fold}")
            written.append(save_screenshot(browser, out / "explorer-folded.png"))
            # Unfolded, a parameter selected: its shape, its module path, its values and its gradient.
            browser.execute_script(api + "expand(arguments[0])", fold)
            weight = browser.execute_script(api + "data.tensors.findIndex(t => t.title === 'blocks.0.fc.weight')")
            browser.execute_script(api + "select(arguments[0])", f"t{weight}")
            written.append(save_screenshot(browser, out / "explorer-expanded.png"))
            # What each op saved for backward (kept: backward ran with retain_graph=True).
            load(browser, pages["tutorial-001"])
            browser.execute_script(api + "showSaved(true)")
            written.append(save_screenshot(browser, out / "explorer-saved.png"))
            # The backward stepper, one frame per step, in a narrow window without the side panel.
            browser.set_window_size(760, 980)
            load(browser, pages["tutorial-001"])
            browser.execute_script("document.getElementById('tg-panel').style.display = 'none';")
            browser.execute_script(api + "fit()")
            frames = []
            for step in range(browser.execute_script(api + "steps()") + 1):
                browser.execute_script(api + "goTo(arguments[0])", step)
                frames.append(Image.open(io.BytesIO(browser.get_screenshot_as_png())).convert("RGB"))
            graph = browser.execute_script("return document.getElementById('tg-viewport').getBoundingClientRect()")
        finally:
            browser.quit()
    gif = out / "explorer-backward.gif"
    small = [frame.resize((frame.width * 4 // 5, frame.height * 4 // 5)) for frame in frames]
    palette = [frame.quantize(colors=64, method=Image.Quantize.MEDIANCUT) for frame in small]
    durations = [1500] + [1000] * (len(palette) - 2) + [2500]
    palette[0].save(gif, save_all=True, append_images=palette[1:], duration=durations, loop=0, optimize=True)
    written.append(gif)
    # Four of the frames side by side, the graph only, for readers whose viewer does not play GIFs.
    left = max(0, int(graph["left"]) - 30)
    right = min(frames[0].width, int(graph["right"]) + 30)
    top = max(0, int(graph["top"]) - 10)
    bottom = min(frames[0].height, int(graph["bottom"]) + 10)
    chosen = [frames[round(k * (len(frames) - 1) / 3)] for k in range(4)]
    crops = [frame.crop((left, top, right, bottom)) for frame in chosen]
    strip = Image.new("RGB", (sum(crop.width for crop in crops) + 24 * 3, crops[0].height), "white")
    for position, crop in enumerate(crops):
        strip.paste(crop, (position * (crop.width + 24), 0))
    strip = strip.resize((strip.width * 3 // 4, strip.height * 3 // 4))
    strip.save(out / "explorer-backward-strip.png", optimize=True)
    written.append(out / "explorer-backward-strip.png")
    return written


def save_screenshot(browser, path: Path) -> Path:
    """The browser's window as a PNG at `path`."""
    from PIL import Image

    image = Image.open(io.BytesIO(browser.get_screenshot_as_png())).convert("RGB")
    image.save(path, optimize=True)
    return path


def main() -> None:
    """Write every picture."""
    parser = argparse.ArgumentParser(description="Draw the pictures of docs/graphs.md and docs/explorer.md.")
    parser.add_argument("--out", type=Path, default=DOCS_IMAGES, help=f"folder to write to (default {DOCS_IMAGES})")
    parser.add_argument("--format", default="svg", help="svg (default) or png")
    arguments = parser.parse_args()
    arguments.out.mkdir(parents=True, exist_ok=True)
    for name, make in PICTURES.items():
        path = render_graph(make(), arguments.out / f"{name}.{arguments.format}")
        print(path)
    pages = explorer_pages(DOCS_EXPLORER)
    for path in pages.values():
        print(path)
    for path in screenshots(pages, arguments.out):
        print(path)


if __name__ == "__main__":
    main()
