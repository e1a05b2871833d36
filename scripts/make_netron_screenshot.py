"""Redraw docs/images/moving-on-netron.png: the digits MLP of the moving-on notebook, exported and shown in Netron.

Needs what the picture is of and what takes it: the interop extra, Debian's chromium and chromium-driver, and
Netron's web build, which the `netron` package on PyPI ships (no npm needed)::

    pip install --no-deps --target /tmp/netron-web netron
    python scripts/make_netron_screenshot.py /tmp/netron-web/netron

It serves Netron's files and the model on 127.0.0.1 only, and the browser is kept from resolving any other
host (Netron would otherwise ask a geolocation service whether to show its cookie banner; the page here sets
the consent cookie itself).
"""

from __future__ import annotations

import base64
import functools
import http.server
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

import tinygrad_nn as tg
import tinygrad_nn.onnx
from tinygrad_nn import nn

OUT = Path(__file__).resolve().parent.parent / "docs" / "images" / "moving-on-netron.png"
DRIVER_PORT = 9515


def webdriver(method: str, path: str, body: dict | None = None) -> dict:
    """One W3C WebDriver call to chromedriver (the protocol is plain JSON over HTTP, so no selenium)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{DRIVER_PORT}{path}", method=method, data=data, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)["value"]


def main(netron_web: Path) -> None:
    """Export the model beside a copy of Netron's web build, open it in headless Chromium, click the first Gemm."""
    site = Path(tempfile.mkdtemp())
    shutil.copytree(netron_web, site, dirs_exist_ok=True)
    tg.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 32, dtype=np.float32), nn.ReLU(), nn.Linear(32, 10, dtype=np.float32))
    tinygrad_nn.onnx.export(model, np.zeros((1, 64), np.float32), site / "digits-mlp.onnx")
    (site / "consent.html").write_text(
        '<!doctype html><script>document.cookie = "consent=" + Date.now() + "; path=/; max-age=86400";'
        ' location.replace("index.html?url=digits-mlp.onnx");</script>\n'
    )

    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    handler = functools.partial(QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    driver = subprocess.Popen(["chromedriver", f"--port={DRIVER_PORT}"], stdout=subprocess.DEVNULL)
    try:
        time.sleep(1)
        arguments = ["--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1000,620"]
        arguments.append("--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1")
        options = {"binary": shutil.which("chromium") or "/usr/bin/chromium", "args": arguments}
        capabilities = {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": options}}
        session = webdriver("POST", "/session", {"capabilities": capabilities})["sessionId"]
        try:
            url = f"http://127.0.0.1:{server.server_address[1]}/consent.html"
            webdriver("POST", f"/session/{session}/url", {"url": url})
            time.sleep(6)  # Netron lays the graph out in a worker
            click = "document.querySelector('.node-item-type').dispatchEvent(new MouseEvent('click', {bubbles: true}))"
            webdriver("POST", f"/session/{session}/execute/sync", {"script": click, "args": []})
            time.sleep(2)
            OUT.write_bytes(base64.b64decode(webdriver("GET", f"/session/{session}/screenshot")))
        finally:
            webdriver("DELETE", f"/session/{session}")
    finally:
        driver.terminate()
        server.shutdown()
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
