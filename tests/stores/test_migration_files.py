"""Splitting migration files into statements, and the shipped files themselves."""

from __future__ import annotations

import pytest

from sessionward.stores.schema import STATEMENT_END, migrations_for, split_statements


def test_a_file_without_the_marker_is_split_on_semicolons() -> None:
    assert split_statements("CREATE TABLE a (x INT);\n\nCREATE INDEX i ON a (x);\n") == (
        "CREATE TABLE a (x INT)",
        "CREATE INDEX i ON a (x)",
    )


def test_with_the_marker_only_marker_lines_split_and_bodies_keep_their_semicolons() -> None:
    text = """-- a comment before anything
CREATE TABLE a (x INT);
@END@
CREATE TRIGGER t AFTER DELETE ON a
BEGIN
    INSERT INTO b VALUES (OLD.x);
    INSERT INTO c VALUES (OLD.x);
END;
  @END@
-- only a comment: not a statement
@END@
CREATE INDEX i ON a (x)""".replace("@END@", STATEMENT_END)
    statements = split_statements(text)
    assert len(statements) == 3
    assert statements[0].endswith("CREATE TABLE a (x INT);")
    assert statements[1].startswith("CREATE TRIGGER t") and statements[1].count(";") == 3
    assert statements[2] == "CREATE INDEX i ON a (x)"


def test_a_marker_inside_a_line_does_not_split() -> None:
    text = f"SELECT 1; -- {STATEMENT_END} here\nSELECT 2;"
    assert split_statements(text) == ("SELECT 1", f"-- {STATEMENT_END} here\nSELECT 2")


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
def test_the_change_log_migration_creates_its_table_and_triggers(dialect: str) -> None:
    migration = migrations_for(dialect)[2]
    assert migration.version == 3 and migration.name == "0003_change_log.sql"
    assert all("CREATE " in statement for statement in migration.statements)
    triggers = [s for s in migration.statements if "CREATE TRIGGER" in s]
    assert len(triggers) == 5
    assert any("CREATE TABLE change_log" in s for s in migration.statements)
