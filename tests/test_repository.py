"""The repository stands alone and describes itself once: nothing refers to documents outside
it, the version is written in one place, and the licence the metadata declares ships."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

import sessionward

ROOT = Path(__file__).resolve().parent.parent
SKIPPED_DIRECTORIES = {".git", ".venv", ".venv-demo", "node_modules", "__pycache__", ".mypy_cache"}
TEXT_SUFFIXES = {
    ".py",
    ".md",
    ".toml",
    ".js",
    ".html",
    ".css",
    ".txt",
    ".cfg",
    ".ini",
    ".sh",
    ".lua",
    ".sql",
    "",
}
# Written in pieces so that this file does not match itself.
OUTSIDE_REFERENCES = re.compile(
    "|".join(
        [
            re.escape("../" + "shared"),
            r"\b" + "SP" + "EC" + r"(\.md|\s*§)",
            r"(?<![\w/-])" + "notes" + r"/[\w-]+\.md",
        ]
    )
)


def repository_files() -> Iterator[Path]:
    """The files git tracks, or every file outside caches and virtualenvs without git."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=30
        ).stdout.decode()
    except (OSError, subprocess.CalledProcessError):
        for path in ROOT.rglob("*"):
            if path.is_file() and not SKIPPED_DIRECTORIES.intersection(path.relative_to(ROOT).parts):
                yield path
        return
    for name in filter(None, listed.split("\0")):
        yield ROOT / name


def test_nothing_refers_to_documents_outside_the_repository() -> None:
    offenders = []
    for path in repository_files():
        if path.suffix not in TEXT_SUFFIXES or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), start=1):
            if OUTSIDE_REFERENCES.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:100]}")
    assert offenders == []


@pytest.mark.parametrize(
    "line",
    ["see ../" + "shared/x.md", "SP" + "EC §6.3", "the SP" + "EC.md contract", "notes" + "/rotation.md"],
)
def test_the_outside_reference_pattern_catches_what_it_must(line: str) -> None:
    assert OUTSIDE_REFERENCES.search(line)


def test_the_version_is_written_once() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "version" not in project
    assert project["dynamic"] == ["version"]
    assert importlib.metadata.version("sessionward") == sessionward.__version__
    assert re.fullmatch(r"\d+\.\d+\.\d+([ab]\d+|rc\d+)?", sessionward.__version__)


def test_the_declared_licence_ships_with_the_package() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0"
    licence = (ROOT / "LICENSE").read_text()
    assert "Apache License" in licence and "Version 2.0, January 2004" in licence


def test_the_changelog_has_an_unreleased_section_and_the_current_version() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert "## [Unreleased]" in changelog
    assert f"## [{sessionward.__version__}]" in changelog
