"""The documentation runs as written: each page's code blocks, in order, print what the page shows.

How a page is read (the convention is described for authors in docs/design.md, "Code blocks in the docs"):

- Every ```python block of a page runs, in the order of the page, in one namespace, in a temporary working
  folder, as in a fresh interpreter. Numpy's global random state, the package's generator, the default dtype,
  grad mode and the ONNX converters are put back afterwards, and the hooks a page registered must be gone with
  its objects, so pages cannot leak into each other or into the rest of the suite.
- A ```text block that comes right after a ```python block (with only prose between them) is what that block
  prints; it is compared with what the block printed, after the normalisation below. A ```text block after a
  shell block is a command's output: `test_the_command_prints_what_the_page_shows` runs the command-line page's,
  and the tutorials' "The numbers" are compared with what their example scripts print.
- A block that shows a traceback (its text starts with ``Traceback (most recent call last):``) must raise: the
  shown traceback's first frame must be the block's line that raised, and its last line the exception, by
  module-qualified name and message. The frames in between are the package's and are not compared.
- A ```python block whose fence has a title (```python title="sketch") is not run: the title says what it is
  instead (a sketch, a fragment of a package file, a quote from a tutorial). Such blocks are rare.
- Blocks are compiled as if the page's runnable blocks had been saved one after another in one file,
  ``<folder>/<page>.py`` (hyphens made underscores), so line numbers in messages are that file's. A block whose
  last line is an expression keeps its value, as Jupyter would show it (graphs.md's pictures are compared so).

Normalisation, only for what really differs between runs: a duration (a number followed by ``s``, ``ms`` or
``us``) becomes ``<time>``; a memory address (``0x7f...``) becomes ``0x...``; the temporary folder becomes
``/tmp/project``. Trailing spaces at the end of a line and blank lines at the ends are ignored.

A page that needs something optional is skipped, saying what is missing, unless CI requires it
(TINYGRAD_NN_REQUIRE_TORCH=1, TINYGRAD_NN_REQUIRE_INTEROP=1); Graphviz's dot, scikit-learn and Fashion-MNIST are
installed in CI.

Besides the pages' blocks, the module checks what the pages claim about the code: docs/design.md's import rules
and layer picture against the imports in the source, and numbers quoted from benchmarks/README.md against it.
"""

from __future__ import annotations

import ast
import contextlib
import gc
import importlib
import importlib.util
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tinygrad_nn as tg

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

# What each page's blocks need besides the package (see `require`). A page missing here fails
# test_every_page_is_run, so a new page cannot go untested.
PAGES: dict[str, tuple[str, ...]] = {
    "README.md": ("sklearn", "safetensors", "onnx"),
    "docs/index.md": (),
    "docs/getting-started.md": ("sklearn",),
    "docs/tensor-and-autograd.md": (),
    "docs/building-and-training.md": ("sklearn",),
    "docs/data.md": ("sklearn", "debian-fashion-mnist"),
    "docs/custom-layers.md": (),
    "docs/higher-order.md": (),
    "docs/hooks.md": (),
    "docs/graphs.md": ("dot",),
    "docs/explorer.md": (),
    "docs/command-line.md": (),
    "docs/moving-on.md": ("torch", "safetensors", "onnx", "onnxruntime"),
    "docs/design.md": (),
    "docs/tutorials/index.md": (),
    "docs/tutorials/000-python-course.md": (),
    "docs/tutorials/001-make-your-own.md": ("fashion-mnist",),
    "docs/tutorials/002-003-real-python.md": (),
    "docs/tutorials/004-sichkar.md": (),
}
# Pages with no Python on them, whose Python is not ours to run here, or that a test of their own runs.
NOT_RUN = {
    "docs/cnn.md": "tests/test_cnn.py runs its blocks, compares their output and checks its tables against the run",
    "docs/changelog.md": "the changelog has no code",
    "docs/monitoring.md": "tests/test_monitor_docs.py runs examples/gradient_monitor.py, whose output the page shows",
    "docs/performance.md": "benchmarks/README.md, included; its numbers are measurements (make bench)",
}

FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
TRACEBACK = "Traceback (most recent call last):"
DURATION = re.compile(r"\b\d+(?:\.\d+)?(?:e[+-]?\d+)? ?(?:s|ms|us|µs)\b")
ADDRESS = re.compile(r"\b0x[0-9a-fA-F]{6,}\b")
SHOWN_FOLDER = "/tmp/project"
DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"


@dataclass
class Block:
    """One fenced block of a page."""

    language: str  # python, text, sh, ...
    title: str | None  # the fence's title="...", if any
    body: str  # dedented to the fence's indentation
    line: int  # the line of the page where the block's code starts (1-based)
    end: int  # the line of its closing fence


@dataclass
class Example:
    """A runnable python block, what the page shows it prints (None when it shows nothing), and what it did."""

    block: Block
    shown: str | None
    printed: str = ""  # filled in by run_page: its output, or the summary of the traceback it raised
    value: Any = None  # the value of its last line, when that is an expression (as Jupyter would show it)


def blocks_of(text: str) -> list[Block]:
    """The fenced blocks of a Markdown text, in order (fences may be indented, as inside a list)."""
    blocks: list[Block] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        indent, fence, info = opening["indent"], opening["fence"], opening["info"].strip()
        if fence[0] == "`" and "`" in info:  # CommonMark: not a fence but inline code (```` ```python ````)
            index += 1
            continue
        language = info.split()[0] if info else ""
        title = re.search(r'title="([^"]*)"', info)
        body: list[str] = []
        index += 1
        start = index + 1
        while index < len(lines):
            closing = FENCE.match(lines[index])
            if closing and closing["fence"].startswith(fence[0] * len(fence)) and not closing["info"].strip():
                break
            line = lines[index]
            body.append(line[len(indent) :] if line.startswith(indent) else line.lstrip())
            index += 1
        else:
            raise ValueError(f"a fence opened at line {start - 1} is never closed")
        index += 1
        blocks.append(Block(language, title[1] if title else None, "\n".join(body) + "\n", start, index))
    return blocks


def examples_of(text: str) -> list[Example]:
    """Each runnable python block with the text block right after it (None when no text block follows)."""
    examples: list[Example] = []
    previous: Block | None = None
    for block in blocks_of(text):
        if block.language == "python" and block.title is None:
            examples.append(Example(block, None))
        elif block.language == "text" and examples and examples[-1].block is previous:
            examples[-1].shown = block.body
        previous = block
    return examples


def normalise(output: str, folder: Path | None = None) -> str:
    """What is compared of an output: timings, addresses and the temporary folder made the same every run."""
    if folder is not None:
        output = output.replace(str(folder.resolve()), SHOWN_FOLDER).replace(str(folder), SHOWN_FOLDER)
    output = DURATION.sub("<time>", output)
    output = ADDRESS.sub("0x...", output)
    return "\n".join(line.rstrip() for line in output.strip("\n").splitlines())


def require(need: str) -> None:
    """Skip the test, saying what is missing and how to get it, unless CI requires `need`; then fail."""
    required_by = {
        "torch": "TINYGRAD_NN_REQUIRE_TORCH",
        "safetensors": "TINYGRAD_NN_REQUIRE_INTEROP",
        "onnx": "TINYGRAD_NN_REQUIRE_INTEROP",
        "onnxruntime": "TINYGRAD_NN_REQUIRE_INTEROP",
    }
    if need == "dot":
        problem = None if shutil.which("dot") else "Graphviz's dot program is not on PATH (apt-get install graphviz)"
    elif need == "fashion-mnist":
        problem = fashion_mnist_missing()
    elif need == "debian-fashion-mnist":  # a page that reads the files by their path
        found = Path(DEBIAN_FASHION_MNIST).is_dir()
        problem = None if found else f"{DEBIAN_FASHION_MNIST} is absent (apt-get install dataset-fashion-mnist)"
    else:
        try:
            importlib.import_module(need)
            problem = None
        except ImportError:
            extra = {"sklearn": "examples", "torch": "torch"}.get(need, "interop")
            problem = f"{need} is not installed (pip install -e '.[{extra}]')"
    if problem is None:
        return
    variable = required_by.get(need)
    if variable and os.environ.get(variable) == "1":
        pytest.fail(f"{variable}=1 but {problem}")
    pytest.skip(problem)


def fashion_mnist_missing() -> str | None:
    """Why Fashion-MNIST cannot be loaded without a download, or None when it can."""
    from tinygrad_nn.data import DataError, load_fashion_mnist

    try:
        load_fashion_mnist(download=False)
    except DataError as error:
        return f"Fashion-MNIST is not on this machine (apt-get install dataset-fashion-mnist): {error}"
    return None


@contextlib.contextmanager
def state_put_back():
    """Run a page as a fresh interpreter would, and put back what it may change globally afterwards.

    Put back: numpy's and the package's random states, the default dtype, grad mode, the working folder, the ONNX
    converters a page registers. PyTorch, when a test already imported it, gets its own default dtype, float32,
    for the page (tests/conftest.py's `torch` fixture makes it float64 for the comparisons). The hooks a page
    registers must be gone once its objects are (the caller drops them before this returns): a hook still
    counted would send every later backward off the fast path.
    """
    numpy_state, framework_state = np.random.get_state(), tg.get_rng_state()
    dtype, grad_enabled, folder = tg.get_default_dtype(), tg.is_grad_enabled(), os.getcwd()
    converters = dict(tg.onnx._CONVERTERS)
    torch = sys.modules.get("torch")
    torch_dtype = torch.get_default_dtype() if torch is not None else None
    if torch is not None:
        torch.set_default_dtype(torch.float32)
    hooks = hook_counts()
    try:
        yield
    finally:
        gc.collect()  # a page's models and tensors sit in reference cycles; their hooks go with them
        assert hook_counts() == hooks, "a page left hooks registered after its objects were gone"
        np.random.set_state(numpy_state)
        tg.set_rng_state(framework_state)
        tg.set_default_dtype(dtype)
        tg.set_grad_enabled(grad_enabled)
        os.chdir(folder)
        tg.onnx._CONVERTERS.clear()
        tg.onnx._CONVERTERS.update(converters)
        if torch is not None:
            torch.set_default_dtype(torch_dtype)


def hook_counts() -> tuple[int, int, int]:
    """How many tensor, post-accumulate and module hooks exist (the engine's counts)."""
    from tinygrad_nn import autograd
    from tinygrad_nn.nn import module

    return autograd._tensor_hook_count, autograd._post_hook_count, module._module_hook_count


def run_page(page: str, folder: Path) -> list[Example]:
    """Run a page's python blocks in `folder`, filling in what each printed (or raised) and its last value."""
    text = (ROOT / page).read_text(encoding="utf-8")
    script = folder / (Path(page).stem.replace("-", "_") + ".py")
    namespace: dict = {"__name__": "__main__"}
    examples = examples_of(text)
    offset = 0  # lines of the blocks before this one, as if they were saved one after another in `script`
    sources = []
    with state_put_back(), namespace_dropped(namespace):
        os.chdir(folder)
        for example in examples:
            code = example.block.body
            tree = ast.parse(code, str(script))
            ast.increment_lineno(tree, offset)
            last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
            sources.append(code)
            script.write_text("".join(sources))  # so that tracebacks can quote the lines
            output = io.StringIO()
            with contextlib.redirect_stdout(output):
                try:
                    exec(compile(tree, str(script), "exec"), namespace)
                    if last is not None:
                        example.value = eval(compile(ast.Expression(last.value), str(script), "eval"), namespace)
                except Exception as error:
                    if example.shown is None or not example.shown.lstrip().startswith(TRACEBACK):
                        raise AssertionError(
                            f"{page}: the block at line {example.block.line} raised {type(error).__name__}: {error}"
                        ) from error
                    output.write(traceback_summary(error, str(script)))
            example.printed = output.getvalue()
            offset += code.count("\n")
    return examples


@contextlib.contextmanager
def namespace_dropped(namespace: dict):
    """Empty a page's namespace at the end, so that what it made can be collected."""
    try:
        yield
    finally:
        namespace.clear()


def traceback_summary(error: BaseException, script: str) -> str:
    """What of a traceback is compared: the first frame in the page's script, and the exception's last line."""
    frames = [frame for frame in traceback.extract_tb(error.__traceback__) if frame.filename == script]
    first = frames[0] if frames else None
    kind = type(error)
    name = kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
    where = f'  File "{first.filename}", line {first.lineno}, in {first.name}\n' if first else ""
    return f"{TRACEBACK}\n{where}{name}: {error}\n"


def shown_summary(shown: str) -> str:
    """The same parts of a traceback the page shows: its first frame line and its last line."""
    lines = shown.strip("\n").splitlines()
    frames = [line for line in lines if line.startswith('  File "')]
    return "\n".join([TRACEBACK, *frames[:1], lines[-1]]) + "\n"


# --------------------------------------------------------------------------------------------------------------
# The harness's own tests: it must see a mismatch, a block that raises, and a title.
# --------------------------------------------------------------------------------------------------------------


def test_blocks_are_read_with_their_titles_indentation_and_lines():
    text = (
        "Intro\n\n```python\nprint(1)\n```\n\nsome prose\n\n```text\n1\n```\n\n- a list item:\n\n"
        '    ```python title="sketch"\n    x = ...\n    ```\n\n````text\n```\n````\n\n'
        "  ```` ```python ```` is inline code, not a fence\n"
    )
    blocks = blocks_of(text)
    assert [(b.language, b.title, b.line) for b in blocks] == [
        ("python", None, 4),
        ("text", None, 10),
        ("python", "sketch", 16),
        ("text", None, 20),
    ]
    assert blocks[2].body == "x = ...\n"
    assert blocks[3].body == "```\n"
    (example,) = examples_of(text)
    assert example.block.body == "print(1)\n" and example.shown == "1\n"


def test_a_text_block_after_a_shell_block_is_not_a_python_blocks_output():
    text = "```python\nprint(1)\n```\n\n```sh\nls\n```\n\n```text\nfile\n```\n"
    (example,) = examples_of(text)
    assert example.shown is None


def test_an_unclosed_fence_is_an_error():
    with pytest.raises(ValueError, match="never closed"):
        blocks_of("```python\nprint(1)\n")


def test_normalisation_covers_only_times_addresses_and_the_folder(tmp_path):
    output = f"epoch 1 (0.1 s), 12.5 ms a step, 3 us, object at 0x7f3a2b1c9d40, {tmp_path}/run/a.npz  \n\n"
    assert (
        normalise(output, tmp_path)
        == "epoch 1 (<time>), <time> a step, <time>, object at 0x..., /tmp/project/run/a.npz"
    )
    assert normalise("0.9467 accuracy, 5 samples, 3 steps") == "0.9467 accuracy, 5 samples, 3 steps"


def test_a_page_that_prints_something_else_fails(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("```python\nprint(1 + 1)\n```\n\n```text\n3\n```\n")
    (example,) = run_page(str(page), tmp_path)
    assert normalise(example.printed) != normalise(example.shown)


def test_a_raising_block_is_an_error_unless_the_page_shows_its_traceback(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("```python\nx = 1\n```\n\n```python\n1 / 0\n```\n")
    with pytest.raises(AssertionError, match="ZeroDivisionError"):
        run_page(str(page), tmp_path)
    script = tmp_path / "page.py"
    page.write_text(
        "```python\nx = 1\n```\n\n```python\n1 / 0\n```\n\n```text\n"
        f'{TRACEBACK}\n  File "{script}", line 2, in <module>\n    1 / 0\n    ~~^~~\n'
        "ZeroDivisionError: division by zero\n```\n"
    )
    (_, example) = run_page(str(page), tmp_path)
    assert example.printed == shown_summary(example.shown)


def test_a_traceback_shown_for_a_block_that_does_not_raise_or_raises_elsewhere_fails(tmp_path):
    page = tmp_path / "page.md"
    script = tmp_path / "page.py"
    shown = f'{TRACEBACK}\n  File "{script}", line 1, in <module>\nZeroDivisionError: division by zero\n'
    page.write_text(f"```python\nx = 1\n```\n\n```text\n{shown}```\n")
    (example,) = run_page(str(page), tmp_path)
    assert normalise(example.printed) != normalise(shown_summary(example.shown))
    page.write_text(f"```python\nx = 1\n1 / 0\n```\n\n```text\n{shown}```\n")  # raised on line 2, not 1
    (example,) = run_page(str(page), tmp_path)
    assert normalise(example.printed) != normalise(shown_summary(example.shown))


def test_a_titled_block_is_not_run_and_its_text_is_not_an_output(tmp_path):
    page = tmp_path / "page.md"
    page.write_text('```python title="sketch"\nraise SystemExit\n```\n\n```text\nanything\n```\n')
    assert run_page(str(page), tmp_path) == []


def test_pages_do_not_leak_random_state_dtype_or_grad_mode(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "```python\nimport numpy as np\nimport tinygrad_nn as tg\nnp.random.seed(5)\ntg.manual_seed(5)\n"
        "tg.set_default_dtype('float32')\ntg.set_grad_enabled(False)\n"
        "class Op(tg.Function):\n    pass\ntg.onnx.register_onnx_op(Op)(lambda graph, record: None)\n```\n"
    )
    before = (np.random.get_state()[1].copy(), tg.get_rng_state(), tg.get_default_dtype(), tg.onnx.registered_ops())
    run_page(str(page), tmp_path)
    assert np.array_equal(np.random.get_state()[1], before[0])
    assert tg.get_rng_state() == before[1]
    assert tg.get_default_dtype() == before[2] and tg.is_grad_enabled()
    assert tg.onnx.registered_ops() == before[3]


# --------------------------------------------------------------------------------------------------------------
# The pages
# --------------------------------------------------------------------------------------------------------------


def test_every_page_is_run():
    pages = {str(path.relative_to(ROOT)) for path in DOCS.rglob("*.md") if "api" not in path.parts}
    assert pages | {"README.md"} == set(PAGES) | set(NOT_RUN)


# Pages that train on all of Fashion-MNIST (tens of seconds); `make test` runs them too.
SLOW_PAGES = {"docs/tutorials/001-make-your-own.md"}


@pytest.mark.parametrize(
    "page", [pytest.param(page, marks=pytest.mark.slow) if page in SLOW_PAGES else page for page in sorted(PAGES)]
)
def test_the_page_prints_what_it_shows(page, tmp_path):
    for need in PAGES[page]:
        require(need)
    for example in run_page(page, tmp_path):
        if example.shown is None:
            continue
        if example.shown.lstrip().startswith(TRACEBACK):
            expected = normalise(shown_summary(example.shown), tmp_path)
        else:
            expected = normalise(example.shown, tmp_path)
        assert normalise(example.printed, tmp_path) == expected, f"{page}, the block at line {example.block.line}"


# --------------------------------------------------------------------------------------------------------------
# docs/design.md: the layers and the import rules are the source's
# --------------------------------------------------------------------------------------------------------------

PACKAGE = ROOT / "tinygrad_nn"
DESIGN = (DOCS / "design.md").read_text(encoding="utf-8")


def layer_of(parts: list[str]) -> str:
    """The layer of a module given as its dotted parts after ``tinygrad_nn``: ``functions.xp`` is `functions`."""
    return parts[0] if parts else "__init__"


def package_imports() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """Which layers each layer imports: at module level, and inside functions (made only when they run)."""
    layers = {path.stem for path in PACKAGE.iterdir() if path.suffix == ".py" or (path / "__init__.py").exists()}
    top: dict[str, set[str]] = {}
    lazy: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        package = parts[:-1]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        source = layer_of(parts)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        module_level = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package[: len(package) - (node.level - 1)] + (node.module.split(".") if node.module else [])
                if base:
                    targets = [layer_of(base)]
                else:  # from . import name: a module of the package, or a name defined in __init__.py
                    targets = [alias.name if alias.name in layers else "__init__" for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tinygrad_nn"):
                targets = [layer_of(node.module.split(".")[1:])]
            elif isinstance(node, ast.Import):
                targets = [layer_of(a.name.split(".")[1:]) for a in node.names if a.name.startswith("tinygrad_nn")]
            kind = top if id(node) in module_level else lazy
            kind.setdefault(source, set()).update(target for target in targets if target != source)
    return top, lazy


def design_table() -> dict[str, set[str] | tuple[str, set[str]]]:
    """The table of docs/design.md's "What may import what": module -> the layers it says it imports."""
    section = DESIGN[DESIGN.index("| module | what it holds | imports from the package |") :]
    rows = {}
    for line in section.splitlines()[2:]:
        if not line.startswith("| "):
            break
        module, _, imports = (cell.strip() for cell in line.strip("|").split(" | "))
        named = set(re.findall(r"`(\w+)/?`", imports))
        # "all of the above except `a` and `b`" is every layer but those.
        rows[module.strip("`/")] = ("all but", named) if imports.startswith("all of the above") else named
    return rows


def design_diagram() -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """The arrows of the picture of the layers: solid and dashed, between the package's layers."""
    source = DESIGN[DESIGN.index("digraph layers {") :]
    source = source[: source.index("\n```")]
    solid, dashed = set(), set()
    for start, ends, attributes in re.findall(r"^\s*(\w+)\s*->\s*(\{[^}]*\}|\w+)\s*(\[[^\]]*\])?;", source, re.M):
        for end in ends.strip("{}").split():
            (dashed if "dashed" in attributes else solid).add((start, end))
    return solid, dashed


def transitive_reduction(graph: dict[str, set[str]]) -> set[tuple[str, str]]:
    """The edges of `graph` that no longer path implies."""

    def reachable(start: str, without: tuple[str, str]) -> set[str]:
        seen: set[str] = set()
        stack = [end for end in graph.get(start, ()) if (start, end) != without]
        while stack:
            node = stack.pop()
            if node not in seen:
                seen.add(node)
                stack.extend(graph.get(node, ()))
        return seen

    return {(start, end) for start, ends in graph.items() for end in ends if end not in reachable(start, (start, end))}


def test_the_design_table_lists_what_each_layer_imports():
    top, _ = package_imports()
    table = design_table()
    layers = set(top) | {layer for imported in top.values() for layer in imported}
    assert set(table) == layers - {"__main__"}
    for module, said in table.items():
        if isinstance(said, tuple):
            assert top[module] == layers - {"__init__", "__main__"} - said[1], module
        else:
            assert top.get(module, set()) == said, module


def test_no_layer_imports_one_above_it():
    top, _ = package_imports()
    graph = {layer: imported - {"__init__"} for layer, imported in top.items()}
    order: list[str] = []  # a topological order exists only if there is no cycle
    remaining = dict(graph)
    while remaining:
        free = [layer for layer, imported in remaining.items() if not (imported & set(remaining))]
        assert free, f"an import cycle among {sorted(remaining)}"
        order += free
        for layer in free:
            del remaining[layer]
    assert order


def test_the_design_picture_draws_the_imports():
    top, lazy = package_imports()
    solid, dashed = design_diagram()
    graph = {layer: imported - {"__init__"} for layer, imported in top.items() if layer not in ("__init__", "__main__")}
    layers = set(graph)
    assert {edge for edge in solid if edge[0] in layers} == transitive_reduction(graph)
    lazy_edges = {(s, e) for s, ends in lazy.items() for e in ends if e != "__init__" and e not in top.get(s, set())}
    assert dashed == lazy_edges


def test_the_design_names_who_reads_the_version_at_run_time():
    _, lazy = package_imports()
    readers = {layer for layer, imported in lazy.items() if "__init__" in imported}
    (line,) = [line for line in DESIGN.splitlines() if "read `tinygrad_nn.__version__`" in line]
    assert set(re.findall(r"`(\w+)`", line.split(" read ")[0])) == readers


def test_the_design_tree_names_every_module():
    tree = DESIGN[DESIGN.index("```text\ntinygrad_nn/") :]
    tree = tree[: tree.index("\n```\n")]
    entries = {path.name for path in PACKAGE.iterdir() if path.suffix == ".py" or (path / "__init__.py").exists()}
    for name in entries - {"__main__.py"}:
        shown = name if name.endswith(".py") else name + "/"
        assert re.search(rf"^  {re.escape(shown)} ", tree, re.M), name
    for path in (PACKAGE / "functions").glob("*.py"):
        if path.name != "__init__.py":
            assert re.search(rf"^    {re.escape(path.name)} ", tree, re.M), path.name


# --------------------------------------------------------------------------------------------------------------
# docs/graphs.md: each picture is what the code above it draws
# --------------------------------------------------------------------------------------------------------------

PICTURE = re.compile(r"\]\(images/([\w-]+)\.svg\)")


def test_the_pictures_of_drawing_graphs_are_what_its_code_draws(tmp_path):
    """The pictures are made by scripts/make_doc_images.py; the page's blocks must draw the same graphs."""
    require("dot")
    import graphviz

    spec = importlib.util.spec_from_file_location("make_doc_images", ROOT / "scripts" / "make_doc_images.py")
    pictures = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pictures)
    lines = (DOCS / "graphs.md").read_text(encoding="utf-8").splitlines()
    compared = []
    for example in run_page("docs/graphs.md", tmp_path):
        if not isinstance(example.value, graphviz.Digraph):
            continue
        after = "\n".join(lines[example.block.end :])
        after = after[: after.find("```")] if "```" in after else after
        shown = PICTURE.search(after)
        assert shown, f"the graph drawn by the block at line {example.block.line} is not shown"
        assert example.value.source == pictures.PICTURES[shown[1]]().source, shown[1]
        compared.append(shown[1])
    assert compared == [
        "tutorial-001-before",
        "tutorial-001-after",
        "micrograd",
        "mlp-clusters",
        "mlp-max-depth",
        "vanishing-gradient-folded",
        "vanishing-gradient",
    ]


# --------------------------------------------------------------------------------------------------------------
# docs/command-line.md: the commands print what the page shows; the numbers it quotes are the benchmarks'
# --------------------------------------------------------------------------------------------------------------

COMMAND_NEEDS = {"demo": ("sklearn", "dot"), "train": ("sklearn",)}


def command_examples(text: str) -> list[tuple[str, str]]:
    """Each shell block of one ``tinygrad-nn`` command followed by a text block: the command and its output."""
    examples = []
    previous: Block | None = None
    for block in blocks_of(text):
        if block.language == "text" and previous is not None and previous.language == "sh":
            commands = [line for line in previous.body.splitlines() if line.strip()]
            if len(commands) == 1 and commands[0].startswith("tinygrad-nn "):
                examples.append((commands[0].split("#")[0].strip(), block.body))
        previous = block
    return examples


def test_every_command_with_an_output_on_the_page_is_run():
    commands = [command for command, _ in command_examples((DOCS / "command-line.md").read_text(encoding="utf-8"))]
    assert commands == ["tinygrad-nn train --epochs 2 > train.log", "tinygrad-nn demo"]


@pytest.mark.parametrize("index", [0, 1], ids=["train", "demo"])
def test_the_command_prints_what_the_page_shows(index, tmp_path):
    from tinygrad_nn import cli

    command, shown = command_examples((DOCS / "command-line.md").read_text(encoding="utf-8"))[index]
    argv = shlex.split(command)[1:]
    if ">" in argv:  # the page sends stdout to a file, so it is not a terminal: so is a StringIO
        argv = argv[: argv.index(">")]
    for need in COMMAND_NEEDS[argv[0]]:
        require(need)
    output = io.StringIO()
    with state_put_back(), contextlib.redirect_stdout(output):
        os.chdir(tmp_path)
        assert cli.main(argv) == 0
    assert normalise(output.getvalue(), tmp_path) == normalise(shown, tmp_path)


def benchmark_accuracies() -> dict[str, tuple[str, float]]:
    """benchmarks/README.md's Fashion-MNIST table: command -> (test accuracy, training seconds)."""
    readme = (ROOT / "benchmarks" / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("| command | network | test accuracy | training time |") :]
    rows = {}
    for line in table.splitlines()[2:]:
        if not line.startswith("| "):
            break
        command, _, accuracy, seconds = (cell.strip() for cell in line.strip("|").split(" | "))
        rows[command.strip("`")] = (accuracy, float(seconds.removesuffix(" s")))
    return rows


def test_the_command_lines_training_numbers_are_the_benchmarks():
    measured = benchmark_accuracies()
    page = (DOCS / "command-line.md").read_text(encoding="utf-8")
    quoted = re.findall(r"^(tinygrad-nn train [^#\n]*?)\s+# (0\.\d{4}) in about (\d+) s$", page, re.M)
    assert len(quoted) == 3  # the CNN, the MLP and the tutorial network on Fashion-MNIST
    for command, accuracy, seconds in quoted:
        assert measured[command][0] == accuracy, command
        assert abs(measured[command][1] - float(seconds)) <= 0.1 * float(seconds), command  # "about"


# --------------------------------------------------------------------------------------------------------------
# The tutorials: "The numbers" on each page are what its example script prints
# --------------------------------------------------------------------------------------------------------------

TUTORIAL_SCRIPTS = {
    "docs/tutorials/000-python-course.md": ("tutorial_000_python_course.py", ()),
    "docs/tutorials/001-make-your-own.md": ("tutorial_001_make_your_own.py", ("fashion-mnist",)),
    "docs/tutorials/002-003-real-python.md": ("tutorial_002_003_real_python.py", ()),
    "docs/tutorials/004-sichkar.md": ("tutorial_004_sichkar.py", ()),
}


def the_numbers(page: str) -> str:
    """The text block of a tutorial page's section "The numbers": what its example prints."""
    text = (ROOT / page).read_text(encoding="utf-8")
    section = text[text.index("## The numbers") :]
    (shown,) = [block.body for block in blocks_of(section.split("\n## ")[0]) if block.language == "text"]
    return shown


@pytest.mark.parametrize(
    "page",
    [
        "docs/tutorials/000-python-course.md",
        pytest.param("docs/tutorials/001-make-your-own.md", marks=pytest.mark.slow),
        "docs/tutorials/002-003-real-python.md",
        pytest.param("docs/tutorials/004-sichkar.md", marks=pytest.mark.slow),
    ],
)
def test_the_tutorials_numbers_are_what_its_example_prints(page, tmp_path):
    script, needs = TUTORIAL_SCRIPTS[page]
    for need in needs:
        require(need)
    shown = the_numbers(page)
    assert f"`python examples/{script}` prints" in (ROOT / page).read_text(encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / script)], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    assert normalise(done.stdout, tmp_path) == normalise(shown, tmp_path)


def test_the_tutorial_001_page_quotes_the_benchmarks_time():
    (accuracy, seconds) = benchmark_accuracies()["python examples/tutorial_001_make_your_own.py"]
    page = (DOCS / "tutorials" / "001-make-your-own.md").read_text(encoding="utf-8")
    assert f"took {seconds:.0f} s on\nthe machine of [the benchmarks]" in page
    assert f"test accuracy {accuracy}\n" in page  # the page's own block prints the same accuracy


def test_the_tutorials_table_quotes_the_numbers_the_examples_print():
    index = (DOCS / "tutorials" / "index.md").read_text(encoding="utf-8").replace("−", "-")
    table = index[index.index("| tutorial | example file |") : index.index("\n\n", index.index("| tutorial |"))]
    quoted = set(re.findall(r"-?\d+\.\d{4,}", table))
    printed = "\n".join(the_numbers(page) for page in TUTORIAL_SCRIPTS)
    assert len(quoted) >= 10
    assert {number for number in quoted if number not in printed} == set()


# --------------------------------------------------------------------------------------------------------------
# Other claims the pages make about the repository
# --------------------------------------------------------------------------------------------------------------


def test_getting_started_lists_every_extra_with_what_it_installs():
    tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    page = (DOCS / "getting-started.md").read_text(encoding="utf-8")
    table = page[page.index("| extra | what it adds | needed for |") :].split("\n\n")[0].splitlines()[2:]
    listed = {}
    for row in table:
        extra, adds, _ = (cell.strip() for cell in row.strip("|").split(" | "))
        listed[extra.strip("`")] = {name.strip().lower() for name in adds.split(",")}
    assert set(listed) == set(extras)
    for extra, requirements in extras.items():
        names = {re.split(r"[<>=\[;]", requirement)[0].strip().lower() for requirement in requirements}
        assert listed[extra] == {"pytorch" if name == "torch" else name for name in names}, extra


def test_the_home_page_gives_the_size_of_the_package():
    lines = sum(len(path.read_text(encoding="utf-8").splitlines()) for path in PACKAGE.rglob("*.py"))
    page = (DOCS / "index.md").read_text(encoding="utf-8")
    (quoted,) = re.findall(r"about ([\d,]+) lines of Python", page)
    # "about": within a tenth, so that the page stays true as the package grows a little.
    assert abs(lines - int(quoted.replace(",", ""))) <= 0.1 * lines, lines


def tutorial_example(name: str):
    """One of the example scripts in examples/, imported as a module (examples/ is not a package)."""
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(ROOT / "examples"))


def test_the_004_page_describes_the_curve_its_example_draws():
    example = tutorial_example("tutorial_004_sichkar")
    page = (DOCS / "tutorials" / "004-sichkar.md").read_text(encoding="utf-8")
    quoted = re.search(r"climbs from (\S+) after 10 iterations to (\S+) after 100 and (\S+) after 990", page)
    assert quoted
    outputs = []
    with state_put_back():  # the tutorial seeds numpy's global generator
        for count in (10, 100, 990):
            network = example.NN()
            network.training_process(example.INPUTS, example.OUTPUTS, count)
            outputs.append(network.run_nn(example.TEST_INPUT)[0])
    assert [f"{output:.{len(shown) - 2}f}" for output, shown in zip(outputs, quoted.groups())] == list(quoted.groups())


def test_the_003_page_describes_the_error_curve_its_example_draws():
    example = tutorial_example("tutorial_002_003_real_python")
    page = (DOCS / "tutorials" / "002-003-real-python.md").read_text(encoding="utf-8")
    quoted = re.search(
        r"It falls from (\S+) to (\S+) by iteration\s+300 and then moves between (\S+) and (\S+) for the rest", page
    )
    assert quoted
    with state_put_back():
        np.random.seed(42)  # as the example does, before making the network
        errors = example.NeuralNetwork(alpha=0.1).train(example.INPUT_VECTORS, example.TARGETS, 10_000)
    computed = (errors[0], errors[3], min(errors[3:]), max(errors[3:]))  # one value every 100 iterations
    assert tuple(f"{value:.2f}" for value in computed) == quoted.groups()


@pytest.mark.slow
def test_the_001_page_gives_the_accuracy_of_the_books_rule():
    require("fashion-mnist")
    example = tutorial_example("tutorial_001_make_your_own")
    page = (DOCS / "tutorials" / "001-make-your-own.md").read_text(encoding="utf-8")
    quoted = re.search(r"the book's rule written in plain numpy reaches (\S+)\ntest accuracy", page)
    assert quoted
    (x_train, y_train), (x_test, y_test) = tg.data.load_fashion_mnist()
    with state_put_back():
        np.random.seed(0)  # the same initial weights as the page's step 5 and the example
        w_ih = np.random.rand(200, 784) - 0.5
        w_ho = np.random.rand(10, 200) - 0.5
    for image, label in zip(example.scaled(x_train), y_train):
        w_ih, w_ho = example.hand_written_update(
            w_ih, w_ho, image, example.one_hot_targets(label), 0.1, books_rule=True
        )
    hidden = 1 / (1 + np.exp(-(example.scaled(x_test) @ w_ih.T)))
    scores = 1 / (1 + np.exp(-(hidden @ w_ho.T)))
    assert f"{np.mean(scores.argmax(axis=1) == y_test):.4f}" == quoted[1]
