"""A griffe extension for the API reference: turn the package's reST-style examples into Markdown code blocks.

The docstrings are written to read well in ``help()`` and to run under doctest: examples are ``>>>`` sessions or
literal blocks introduced by ``::``. mkdocstrings renders docstrings as Markdown, where ``>>>`` starts nested
quotes and ``::`` means nothing, so this extension rewrites both as fenced code before rendering. The source is
untouched.
"""

from __future__ import annotations

import re
import textwrap
from typing import Any

import griffe

DOCTEST_DIRECTIVE = re.compile(r"\s*#\s*doctest:.*$")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _fence(language: str, lines: list[str]) -> list[str]:
    return [f"```{language}", *textwrap.dedent("\n".join(lines)).splitlines(), "```"]


def markdown_examples(text: str) -> str:
    """The docstring `text` with each ``>>>`` session and each ``::`` literal block as a fenced code block."""
    lines = text.splitlines()
    result: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        stripped = line.strip()
        if stripped.startswith(">>>"):
            # A doctest session: prompts and their output, up to the next blank line.
            session = []
            while index < len(lines) and lines[index].strip():
                session.append(DOCTEST_DIRECTIVE.sub("", lines[index]))
                index += 1
            result.extend(_fence("pycon", session))
            continue
        if stripped.endswith("::"):
            # A literal block: every following line indented deeper than this one (blank lines included).
            introduction = stripped[:-2].rstrip()
            if introduction:
                result.append(line.rstrip()[:-2].rstrip() + ":")
            base = _indent(line)
            index += 1
            block = []
            while index < len(lines) and (not lines[index].strip() or _indent(lines[index]) > base):
                block.append(lines[index])
                index += 1
            while block and not block[-1].strip():
                block.pop()
            while block and not block[0].strip():
                block.pop(0)
            result.append("")
            result.extend(_fence("python", block))
            result.append("")
            continue
        result.append(line)
        index += 1
    return "\n".join(result)


class MarkdownExamples(griffe.Extension):
    """Rewrite every docstring's examples as Markdown code blocks when griffe loads it."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        """Rewrite the docstring of one object."""
        if obj.docstring is not None:
            obj.docstring.value = markdown_examples(obj.docstring.value)
