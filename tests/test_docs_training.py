"""docs/building-and-training.md runs as written: every code block in order, each printing what the page shows."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import numpy as np
import pytest

import tinygrad_nn as tg

PAGE = Path(__file__).resolve().parent.parent / "docs" / "building-and-training.md"
BLOCK = re.compile(r"```(python|text)\n(.*?)```", re.DOTALL)
SECONDS = re.compile(r"\(\d+\.\d s\)")  # an epoch's time, the one thing that differs between runs


def page_examples() -> list[tuple[str, str | None]]:
    """Each python block with the text block that follows it (None when its output is not shown)."""
    examples: list[tuple[str, str | None]] = []
    for kind, body in BLOCK.findall(PAGE.read_text()):
        if kind == "python":
            examples.append((body, None))
        elif examples and examples[-1][1] is None:
            examples[-1] = (examples[-1][0], body)
    return examples


def test_the_page_prints_what_it_shows(tmp_path, monkeypatch):
    pytest.importorskip("sklearn", reason="the page's data are scikit-learn's digits (the examples extra)")
    monkeypatch.chdir(tmp_path)  # the page saves files: digits.npz, half-way.npz, run/
    numpy_state, framework_state = np.random.get_state(), tg.nn.init.default_generator().bit_generator.state
    namespace: dict = {}
    try:
        for index, (code, shown) in enumerate(page_examples()):
            output = io.StringIO()
            with contextlib.redirect_stdout(output):
                exec(compile(code, f"{PAGE.name}, block {index}", "exec"), namespace)
            if shown is not None:
                assert SECONDS.sub("(s)", output.getvalue()).strip() == SECONDS.sub("(s)", shown).strip(), code
    finally:
        np.random.set_state(numpy_state)
        tg.nn.init.default_generator().bit_generator.state = framework_state
