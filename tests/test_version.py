"""The version: one number, in tinygrad_nn.__version__, the installed package's metadata and CHANGELOG.md."""

from __future__ import annotations

import ast
import importlib.metadata
import re
from pathlib import Path

import pytest

import tinygrad_nn

REPOSITORY = Path(__file__).resolve().parent.parent
# A release heading in Keep a Changelog's format: "## [0.1.0] - 2026-11-23".
RELEASE = re.compile(r"^## \[(?P<version>\d+\.\d+\.\d+[^\]]*)\] - (?P<date>\d{4}-\d{2}-\d{2})\s*$", re.MULTILINE)


def test_version_is_a_release_number():
    assert re.fullmatch(r"\d+\.\d+\.\d+", tinygrad_nn.__version__)


def test_pyproject_takes_the_version_from_the_package():
    tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")
    pyproject = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())
    assert "version" in pyproject["project"]["dynamic"]
    attribute = pyproject["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    module, name = attribute.rsplit(".", 1)
    # setuptools reads the attribute without importing the package: the literal assigned in the module's source.
    source = REPOSITORY.joinpath(*module.split(".")).with_suffix(".py")
    if not source.exists():
        source = REPOSITORY.joinpath(*module.split("."), "__init__.py")
    assigned = {
        target.id: node.value
        for node in ast.parse(source.read_text()).body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    assert ast.literal_eval(assigned[name]) == tinygrad_nn.__version__


def test_installed_metadata_has_the_same_version():
    installed = importlib.metadata.version("tinygrad-nn")
    assert installed == tinygrad_nn.__version__, (
        f"the installed metadata says {installed}, the package {tinygrad_nn.__version__}: "
        "reinstall with pip install -e . (or remove .venv and run make again)"
    )


def test_changelog_latest_release_is_the_version():
    changelog = (REPOSITORY / "CHANGELOG.md").read_text()
    releases = [match["version"] for match in RELEASE.finditer(changelog)]
    assert releases, "CHANGELOG.md has no release heading like '## [0.1.0] - 2026-11-23'"
    assert releases[0] == tinygrad_nn.__version__, (
        f"CHANGELOG.md's latest release is {releases[0]}, tinygrad_nn.__version__ is {tinygrad_nn.__version__}"
    )


def test_the_license_is_an_spdx_expression_not_the_deprecated_table():
    # setuptools warns on every install about `license = { text = ... }` (deprecated; an error from 2027-02-18).
    tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")
    project = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT"
    assert project["license-files"] == ["LICENSE"]
    assert (REPOSITORY / "LICENSE").read_text().startswith("MIT License")
