"""Numbered SQL migration files shipped in the package, per dialect.

Files live in ``stores/migrations/<dialect>/NNNN_description.sql``; a file's number is the
schema version it produces. The ``schema_version`` table records what has been applied.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

__all__ = ["Migration", "latest_version", "migrations_for"]

_FILE_NAME = re.compile(r"(\d{4})_[a-z0-9_]+\.sql")


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
            statements = tuple(part.strip() for part in sql.split(";") if part.strip())
            found.append(Migration(int(match.group(1)), entry.name, statements))
    found.sort(key=lambda migration: migration.version)
    if [m.version for m in found] != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migration files of {dialect} are not numbered 1..n")
    return found


def latest_version(dialect: str) -> int:
    """The schema version the package expects for ``dialect``."""
    return len(migrations_for(dialect))
