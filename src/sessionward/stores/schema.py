"""Numbered SQL migration files shipped in the package, per dialect.

Files live in ``stores/migrations/<dialect>/NNNN_description.sql``; a file's number is the
schema version it produces. The ``schema_version`` table records what has been applied.

A file is split into statements on ``;``, unless it holds lines that consist of
:data:`STATEMENT_END` alone (trigger and function bodies contain ``;``): then it is split on
those lines only, and each statement keeps its own text, ``;`` included. The marker is an SQL
comment, so such a file still runs as it is in ``sqlite3`` or ``psql``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

__all__ = ["STATEMENT_END", "Migration", "latest_version", "migrations_for", "split_statements"]

_FILE_NAME = re.compile(r"(\d{4})_[a-z0-9_]+\.sql")

STATEMENT_END = "-- end-statement"
"""A line holding only this ends a statement in a migration file that contains ``;`` inside
statements (see the module docstring)."""


def split_statements(sql: str) -> tuple[str, ...]:
    """The statements of one migration file's text, without empty ones."""
    lines = sql.splitlines()
    if not any(line.strip() == STATEMENT_END for line in lines):
        return tuple(part.strip() for part in sql.split(";") if part.strip())
    statements: list[str] = []
    current: list[str] = []
    for line in [*lines, STATEMENT_END]:
        if line.strip() == STATEMENT_END:
            text = "\n".join(current).strip()
            if _has_code(text):
                statements.append(text)
            current = []
        else:
            current.append(line)
    return tuple(statements)


def _has_code(text: str) -> bool:
    """Whether ``text`` holds more than comment lines and semicolons."""
    return any(line.strip().strip(";") and not line.strip().startswith("--") for line in text.splitlines())


@dataclass(frozen=True, slots=True)
class Migration:
    """One migration: the version it produces and its SQL statements."""

    version: int
    name: str
    statements: tuple[str, ...]


def migrations_for(dialect: str) -> list[Migration]:
    """Every migration of ``dialect`` in version order."""
    folder = resources.files("sessionward.stores") / "migrations" / dialect
    found = []
    for entry in folder.iterdir():
        match = _FILE_NAME.fullmatch(entry.name)
        if match:
            sql = entry.read_text(encoding="utf-8")
            statements = split_statements(sql)
            found.append(Migration(int(match.group(1)), entry.name, statements))
    found.sort(key=lambda migration: migration.version)
    if [m.version for m in found] != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migration files of {dialect} are not numbered 1..n")
    return found


def latest_version(dialect: str) -> int:
    """The schema version the package expects for ``dialect``."""
    return len(migrations_for(dialect))
