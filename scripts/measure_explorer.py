"""How long the graph explorer takes to open a big graph in headless Chromium, and to answer the first click.

Builds a chain of `--ops` ops (5,000 by default: ``x * 1.001`` repeated, then a sum), writes its explorer with
``save_graph(root, "chain.html")``, and opens the page `--runs` times in a fresh headless Chromium tab, each time
measuring:

- *ready*: from the start of navigation to the moment the page has parsed its data, laid out the whole graph and
  drawn what is on screen (``window.tinygradExplorer.ready``), read from the page's own clock;
- *first click*: from asking the browser to load the page to the side panel showing the op that was clicked, read
  from this script's clock: opening, laying out, drawing and one interaction, end to end;
- the page's own breakdown: parsing the data, laying out, drawing.

Needs chromium and chromedriver (``apt-get install chromium chromium-driver``) and selenium (the test extra).
Run: ``python scripts/measure_explorer.py [--ops 5000] [--runs 9]``. docs/explorer.md quotes its output.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from tinygrad_nn import Tensor
from tinygrad_nn.viz import save_graph

FLAGS = (
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


def chain(ops: int) -> Tensor:
    """`ops` ops in a line: ops - 1 multiplications and a sum."""
    x = Tensor(np.ones(3), requires_grad=True)
    for _ in range(ops - 1):
        x = x * 1.001
    return x.sum()


def browser(profile: str):
    """Headless Chromium through selenium, with the network switched off as in CI."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver = shutil.which("chromedriver")
    if chromium is None or driver is None:
        raise SystemExit("needs chromium and chromedriver on PATH (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.binary_location = chromium
    return webdriver.Chrome(service=Service(driver), options=options)


def measure(page: Path, runs: int) -> dict[str, list[float]]:
    """Open `page` `runs` times; seconds for each measure, per run."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    results: dict[str, list[float]] = {"ready": [], "first click": [], "parse": [], "layout": [], "draw": []}
    with tempfile.TemporaryDirectory(prefix="tinygrad-nn-measure-") as profile:
        driver = browser(profile)
        try:
            for _ in range(runs):
                driver.get("about:blank")
                start = time.perf_counter()
                driver.get(page.resolve().as_uri())
                WebDriverWait(driver, 60).until(lambda d: d.execute_script("return !!window.tinygradExplorer?.ready"))
                # An op on screen, clicked as a user would: its details must appear in the side panel.
                target = driver.execute_script(
                    "const box = document.getElementById('tg-canvas').getBoundingClientRect();"
                    "return [...document.querySelectorAll('[data-kind=op]')].find(function (el) {"
                    "  const r = el.getBoundingClientRect();"
                    "  return r.top > box.top && r.bottom < box.bottom && r.left > box.left && r.right < box.right; });"
                )
                target.click()
                WebDriverWait(driver, 60).until(lambda d: "module" in d.find_element(By.ID, "tg-panel").text)
                results["first click"].append(time.perf_counter() - start)
                timings = driver.execute_script("return window.tinygradExplorer.timings")
                results["ready"].append(timings["ready"] / 1000)
                results["parse"].append(timings["parse"] / 1000)
                results["layout"].append(timings["layout"] / 1000)
                results["draw"].append(timings["render"] / 1000)
        finally:
            driver.quit()
    return results


def main() -> None:
    """Write the chain's explorer, open it in Chromium, print the medians."""
    parser = argparse.ArgumentParser(description="Time the graph explorer on a long chain in headless Chromium.")
    parser.add_argument("--ops", type=int, default=5000, help="ops in the chain (default 5000)")
    parser.add_argument("--runs", type=int, default=5, help="page loads to time (default 5)")
    arguments = parser.parse_args()
    root = chain(arguments.ops)
    with tempfile.TemporaryDirectory(prefix="tinygrad-nn-explorer-") as folder:
        page = Path(folder) / "chain.html"
        start = time.perf_counter()
        save_graph(root, page)
        written = time.perf_counter() - start
        size = page.stat().st_size
        results = measure(page, arguments.runs)
    print(f"chain of {arguments.ops:,} ops: {arguments.ops + arguments.ops + 1:,} nodes drawn as boxes")
    print(f"machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}")
    print(f"writing the page: {written:.2f} s, {size / 1e6:.1f} MB")
    print(f"median of {arguments.runs} page loads in headless Chromium:")
    for name, values in results.items():
        print(f"  {name:12s} {statistics.median(values):.3f} s   (all: {', '.join(f'{v:.3f}' for v in values)})")


if __name__ == "__main__":
    main()
