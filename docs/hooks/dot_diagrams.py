"""An MkDocs hook: a fenced ``dot`` code block on a page becomes the picture Graphviz draws from it, inline as SVG.

Read in the repository, the page shows the DOT text; on the site, the picture. A block Graphviz cannot draw
fails the build, naming the page.
"""

from __future__ import annotations

import re

import graphviz
from mkdocs.exceptions import PluginError
from mkdocs.structure.pages import Page

DOT_BLOCK = re.compile(r"^```dot\n(?P<source>.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)


def on_page_markdown(markdown: str, page: Page, **kwargs: object) -> str:
    """Replace each fenced dot block of the page with its SVG."""

    def draw(match: re.Match) -> str:
        try:
            svg = graphviz.Source(match.group("source")).pipe(format="svg", encoding="utf-8")
        except (graphviz.ExecutableNotFound, graphviz.CalledProcessError) as error:
            raise PluginError(f"{page.file.src_uri}: Graphviz could not draw a dot block: {error}") from error
        # Keep the <svg> element only, without blank lines, so Markdown passes it through as one block of HTML.
        svg = svg[svg.index("<svg") :]
        lines = [line for line in svg.splitlines() if line.strip()]
        return '<div class="graphviz-diagram">\n' + "\n".join(lines) + "\n</div>"

    return DOT_BLOCK.sub(draw, markdown)
