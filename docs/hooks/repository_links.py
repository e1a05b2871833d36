"""An MkDocs hook: links from the docs to files of the repository outside docs/ (examples, notebooks, source).

The pages link to such files relatively (``../../examples/tutorial_004_sichkar.py``), which works when the Markdown
is read in the repository, on GitHub for instance. The site holds only docs/, so for every file linked like that
the build adds a page that shows it (a listing for a folder) and points the link there. A notebook's page shows
its cells, with the links of its text pointed at the site's pages. A link to a file that does not exist is left
alone, and MkDocs reports it as broken, which fails a ``--strict`` build.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Callable
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files, InclusionLevel
from mkdocs.structure.pages import Page

# The target of a Markdown link or image: ](target) or ](target "title"), without its #anchor.
LINK = re.compile(r"(?<=\]\()(?P<target>[^)\s#]+)(?P<anchor>#[^)\s]*)?(?=[\s)])")
# Where the generated pages go in the site.
PREFIX = "repository"
# Files shown as text on their page, with the language for highlighting; notebooks are shown cell by cell.
LANGUAGES = {".py": "python", ".toml": "toml", ".cfg": "ini", ".txt": "text", ".yml": "yaml", ".yaml": "yaml"}

# page src_uri -> {link target as written: src_uri of the page it now points at}
_retargeted: dict[str, dict[str, str]] = {}


def _shown(path: Path) -> bool:
    return path.is_dir() or path.suffix in LANGUAGES or path.suffix == ".ipynb"


def _listed(path: Path) -> bool:
    return not path.name.startswith((".", "_")) and path.is_file() and _shown(path)


def _is_relative(target: str) -> bool:
    return "://" not in target and not target.startswith(("/", "mailto:"))


class Site:
    """Where things are, and the pages generated so far (src_uri -> the repository path each one shows)."""

    def __init__(self, config: MkDocsConfig) -> None:
        self.docs_dir = Path(config.docs_dir).resolve()
        self.root = Path(config.config_file_path).resolve().parent
        self.pages: dict[str, Path] = {}
        self.pending: list[str] = []

    def page_for(self, path: Path) -> str | None:
        """The src_uri that stands for repository `path` on the site (queued for generation), or None."""
        if not path.exists() or not path.is_relative_to(self.root):
            return None
        if path.is_relative_to(self.docs_dir):
            return path.relative_to(self.docs_dir).as_posix()
        if not _shown(path):
            return None
        relative = path.relative_to(self.root).as_posix()
        uri = f"{PREFIX}/{relative}/index.md" if path.is_dir() else f"{PREFIX}/{relative}.md"
        if uri not in self.pages:
            self.pages[uri] = path
            self.pending.append(uri)
        return uri

    def retarget(self, text: str, folder: Path, page_uri: str, keep: Callable[[str], bool]) -> tuple[str, dict]:
        """`text` with its relative links, written from repository `folder`, pointed at the site's pages.

        Only links whose new page satisfies `keep` change. Returns the text and {old target: new page uri}.
        """
        changed: dict[str, str] = {}

        def replace(match: re.Match) -> str:
            target = match.group("target")
            if not _is_relative(target):
                return match.group(0)
            uri = self.page_for((folder / target).resolve())
            if uri is None or not keep(uri):
                return match.group(0)
            changed[target] = uri
            relative = posixpath.relpath(uri, posixpath.dirname(page_uri) or ".")
            return relative + (match.group("anchor") or "")

        return LINK.sub(replace, text), changed


def _fence(text: str) -> str:
    """A backtick fence longer than any run of backticks in `text`."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def _notebook_page(site: Site, path: Path, uri: str) -> str:
    relative = path.relative_to(site.root).as_posix()
    lines = [
        f"# `{relative}`",
        "",
        f"A notebook in the repository, shown here without its outputs. Run it in Jupyter from a clone: "
        f"`jupyter lab {relative}`.",
        "",
    ]
    for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
        source = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            source = re.sub(r"^(#+) ", r"#\1 ", source, flags=re.MULTILINE)  # the page title stays the only h1
            source, _ = site.retarget(source, path.parent, uri, keep=lambda _: True)
            lines += [source, ""]
        elif cell["cell_type"] == "code":
            fence = _fence(source)
            lines += [f"{fence}python", source, fence, ""]
    return "\n".join(lines)


def _file_page(path: Path, root: Path) -> str:
    text = path.read_text(encoding="utf-8").rstrip("\n")
    fence = _fence(text)
    return "\n".join(
        [
            f"# `{path.relative_to(root).as_posix()}`",
            "",
            "A file in the repository (not part of the installed package), as it was when this site was built.",
            "",
            f"{fence}{LANGUAGES[path.suffix]}",
            text,
            fence,
        ]
    )


def _folder_page(site: Site, path: Path) -> str:
    lines = [f"# `{path.relative_to(site.root).as_posix()}/`", "", "The files in this folder of the repository:", ""]
    for child in sorted(path.iterdir()):
        if _listed(child):
            site.page_for(child)
            lines.append(f"- [`{child.name}`]({child.name}.md)")
        elif child.is_file() and not child.name.startswith((".", "_")):
            lines.append(f"- `{child.name}`")
    return "\n".join(lines)


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Find the links that leave docs/ and add a page for each file or folder they name."""
    site = Site(config)
    _retargeted.clear()
    for file in list(files.documentation_pages()):
        folder = (site.docs_dir / file.src_uri).parent
        # Only links that leave docs/ change; the rest MkDocs checks and converts as usual.
        _, changed = site.retarget(file.content_string, folder, file.src_uri, keep=lambda uri: uri.startswith(PREFIX))
        if changed:
            _retargeted[file.src_uri] = changed
    while site.pending:
        uri = site.pending.pop()
        path = site.pages[uri]
        if path.is_dir():
            content = _folder_page(site, path)
        elif path.suffix == ".ipynb":
            content = _notebook_page(site, path, uri)
        else:
            content = _file_page(path, site.root)
        files.append(File.generated(config, uri, content=content, inclusion=InclusionLevel.NOT_IN_NAV))
    return files


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Point the page's links to repository files at the pages made for them."""
    changed = _retargeted.get(page.file.src_uri)
    if not changed:
        return markdown

    def replace(match: re.Match) -> str:
        target = match.group("target")
        if target not in changed:
            return match.group(0)
        relative = posixpath.relpath(changed[target], posixpath.dirname(page.file.src_uri) or ".")
        return relative + (match.group("anchor") or "")

    return LINK.sub(replace, markdown)
