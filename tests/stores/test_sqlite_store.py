"""SQLiteStore operations, schema, URL parsing and failure behaviour, on real SQLite."""

from __future__ import annotations

import dataclasses
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.rows import make_row as shared_make_row

from sessionward import Config, SessionWard
from sessionward.errors import ConfigError, GeneralError, StorageUnavailableError
from sessionward.stores.base import (
    Promotion,
    SessionRow,
    StoredKey,
    session_insert_columns,
    session_row_insert_values,
    session_row_to_columns,
)
from sessionward.stores.schema import latest_version
from sessionward.stores.sqlite import SQLiteStore, parse_sqlite_url
from sessionward.stores.urls import open_store

SESSION_COLUMNS = [
    "session_handle",
    "user_id",
    "refresh_token_hash_2",
    "prev_refresh_token_hash_2",
    "rotated_at",
    "session_data",
    "jwt_user_payload",
    "created_at_time",
    "expires_at",
    # schema version 2
    "last_active_at",
    "auth_time",
    "persistent",
    "refresh_validity",
    "created_ip",
    "created_user_agent",
    "last_ip",
    "last_user_agent",
]


def _promote(store: SQLiteStore, handle: str, expected: str, new: str, now: int, deadline: int) -> bool:
    """Whether the rotation compare-and-set of ``handle`` (user ``alice``) changed the row."""
    return store.promote_returning(Promotion(handle, "alice", expected, new, now, deadline)).changed


def make_row(
    handle: str = "h1",
    user_id: str = "alice",
    hash2: str = "hash-a",
    created: int = 1_000,
    expires: int = 10_000,
) -> SessionRow:
    """``support.rows.make_row`` on this file's fixed clock."""
    return shared_make_row(handle, user_id, hash2, created, expires)


@pytest.fixture(params=["file", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SQLiteStore]:
    url = f"sqlite:///{tmp_path}/store.db" if request.param == "file" else "sqlite:///:memory:"
    opened = SQLiteStore(url)
    opened.migrate()
    yield opened
    opened.close()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "sessions.db"


@pytest.fixture
def file_store(db_path: Path) -> Iterator[SQLiteStore]:
    opened = SQLiteStore(f"sqlite:///{db_path}")
    opened.migrate()
    yield opened
    opened.close()


def raw_connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(str(path), isolation_level=None, timeout=0)


# -- schema -----------------------------------------------------------------------------------


def test_migrate_creates_spec_tables_and_indexes(db_path: Path) -> None:
    store = SQLiteStore(f"sqlite:///{db_path}")
    try:
        assert store.migrate() == latest_version("sqlite") >= 1
    finally:
        store.close()
    raw = raw_connect(db_path)
    try:
        tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"session_info", "key_value", "schema_version"} <= tables
        columns = [r[1] for r in raw.execute("PRAGMA table_info(session_info)")]
        assert columns == SESSION_COLUMNS
        primary = [r[1] for r in raw.execute("PRAGMA table_info(session_info)") if r[5]]
        assert primary == ["session_handle"]
        key_columns = [r[1] for r in raw.execute("PRAGMA table_info(key_value)")]
        assert key_columns == ["name", "value", "created_at_time"]
        assert [r[1] for r in raw.execute("PRAGMA table_info(key_value)") if r[5]] == ["name"]
        indexed: set[str] = set()
        for index in raw.execute("PRAGMA index_list(session_info)").fetchall():
            indexed.update(r[2] for r in raw.execute(f"PRAGMA index_info({index[1]})"))
        assert {"user_id", "expires_at"} <= indexed
        versions = [r[0] for r in raw.execute("SELECT version FROM schema_version ORDER BY version")]
        assert versions == list(range(1, latest_version("sqlite") + 1))
    finally:
        raw.close()


def test_migrate_is_idempotent(store: SQLiteStore) -> None:
    store.insert_session(make_row())
    version = latest_version("sqlite")
    assert store.migrate() == version
    assert store.migrate() == version
    store.check_schema()
    assert store.get_session("h1") is not None  # data survives re-migration


def test_migrate_idempotent_across_store_objects(db_path: Path) -> None:
    for _ in range(3):
        store = SQLiteStore(f"sqlite:///{db_path}")
        try:
            assert store.migrate() == latest_version("sqlite")
            store.check_schema()
        finally:
            store.close()
    raw = raw_connect(db_path)
    try:
        assert raw.execute("SELECT COUNT(*) FROM schema_version").fetchone()[0] == latest_version("sqlite")
    finally:
        raw.close()


@pytest.mark.parametrize("url_kind", ["file", "memory"])
def test_check_schema_on_empty_database_names_the_command(url_kind: str, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/empty.db" if url_kind == "file" else "sqlite:///:memory:"
    store = SQLiteStore(url)
    try:
        with pytest.raises(GeneralError, match="sessionward migrate") as info:
            store.check_schema()
        assert not isinstance(info.value, StorageUnavailableError)
    finally:
        store.close()


def test_check_schema_on_old_schema_names_the_command(db_path: Path) -> None:
    raw = raw_connect(db_path)
    try:
        raw.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at INTEGER)")
        raw.execute("INSERT INTO schema_version VALUES (0, 0)")
    finally:
        raw.close()
    store = SQLiteStore(f"sqlite:///{db_path}")
    try:
        with pytest.raises(GeneralError, match="sessionward migrate"):
            store.check_schema()
    finally:
        store.close()


def test_engine_without_auto_migrate_on_empty_db_names_the_command(db_path: Path) -> None:
    config = Config(store=f"sqlite:///{db_path}", auto_migrate=False, access_token_algorithm="HS256")
    with SessionWard(config) as engine:
        with pytest.raises(GeneralError, match="sessionward migrate"):
            engine.create_new_session("alice")
        with pytest.raises(GeneralError, match="sessionward migrate"):
            engine.get_all_session_handles_for_user("alice")
    # After migrating, the same configuration works.
    store = SQLiteStore(f"sqlite:///{db_path}")
    try:
        store.migrate()
    finally:
        store.close()
    with SessionWard(config) as engine:
        tokens = engine.create_new_session("alice")
        assert engine.get_all_session_handles_for_user("alice") == [tokens.handle]


# -- sessions ---------------------------------------------------------------------------------


def test_insert_and_get_round_trip(store: SQLiteStore) -> None:
    row = make_row()
    store.insert_session(row)
    assert store.get_session("h1") == row
    assert store.get_session("missing") is None


# Every column named, as the store's INSERT did before it left the defaults out.
_FULL_INSERT = (
    "INSERT INTO session_info ("  # noqa: S608 (constant column names)
    + ", ".join(SESSION_COLUMNS)
    + ") VALUES ("
    + ", ".join("?" * len(SESSION_COLUMNS))
    + ")"
)
_SELECT_ALL_COLUMNS = "SELECT " + ", ".join(SESSION_COLUMNS) + " FROM session_info"  # noqa: S608
_OPTIONAL_VALUES: dict[str, Any] = {
    "prev_refresh_token_hash_2": "hash-prev",
    "rotated_at": 1_500,
    "last_active_at": 1_600,
    "auth_time": 1_700,
    "persistent": False,
    "refresh_validity": 3_600_000,
    "created_ip": "192.0.2.1",
    "created_user_agent": "agent/1.0",
    "last_ip": "192.0.2.2",
    "last_user_agent": "agent/2.0",
}


@pytest.mark.parametrize(
    "fields",
    [(), *[(name,) for name in _OPTIONAL_VALUES], ("last_active_at", "auth_time"), tuple(_OPTIONAL_VALUES)],
    ids=lambda fields: "+".join(fields) or "none",
)
def test_insert_names_only_the_columns_set_and_stores_what_a_full_insert_would(
    fields: tuple[str, ...], db_path: Path, file_store: SQLiteStore
) -> None:
    """The INSERT leaves the columns at their default out (cached per set of columns): the
    stored row, read raw, is exactly what naming every column would have stored."""
    row = dataclasses.replace(make_row(), **{name: _OPTIONAL_VALUES[name] for name in fields})
    mask, _ = session_row_insert_values(row)
    named = session_insert_columns(mask)
    assert [c for c in SESSION_COLUMNS if c in named] == [
        c for c in SESSION_COLUMNS if c in fields or c in named[:7]
    ]
    file_store.insert_session(row)
    file_store.insert_session(dataclasses.replace(row, session_handle="h2"))  # the cached statement
    reference = raw_connect(db_path)
    try:
        reference.execute(_FULL_INSERT, ("h3", *session_row_to_columns(row)[1:]))
        stored = {
            handle: (tuple(values), tuple(type(v) for v in values))
            for handle, *values in reference.execute(_SELECT_ALL_COLUMNS)
        }
    finally:
        reference.close()
    assert stored["h1"] == stored["h2"] == stored["h3"]
    assert file_store.get_session("h1") == row
    assert file_store.get_session("h2") == dataclasses.replace(row, session_handle="h2")


def test_insert_duplicate_handle_is_general_error(store: SQLiteStore) -> None:
    store.insert_session(make_row())
    with pytest.raises(GeneralError) as info:
        store.insert_session(make_row(user_id="bob"))
    assert not isinstance(info.value, StorageUnavailableError)
    assert store.get_session("h1") == make_row()


def test_delete_sessions_returns_existing_handles(store: SQLiteStore) -> None:
    for handle in ("a", "b", "c"):
        store.insert_session(make_row(handle=handle))
    removed = store.delete_sessions(["a", "missing", "a", "c", "c"])
    assert sorted(removed) == ["a", "c"]
    assert store.get_session("a") is None
    assert store.get_session("c") is None
    assert store.get_session("b") is not None
    assert store.delete_sessions(["a", "c"]) == []
    assert store.delete_sessions([]) == []


def test_delete_sessions_for_user(store: SQLiteStore) -> None:
    store.insert_session(make_row(handle="a1", user_id="alice"))
    store.insert_session(make_row(handle="a2", user_id="alice", expires=1))  # expired too
    store.insert_session(make_row(handle="b1", user_id="bob"))
    assert sorted(store.delete_sessions_for_user("alice")) == ["a1", "a2"]
    assert store.delete_sessions_for_user("alice") == []
    assert store.delete_sessions_for_user("nobody") == []
    assert store.get_session("b1") is not None


def test_get_handles_for_user_excludes_expired(store: SQLiteStore) -> None:
    store.insert_session(make_row(handle="old", user_id="alice", created=1, expires=4_999))
    store.insert_session(make_row(handle="edge", user_id="alice", created=2, expires=5_000))
    store.insert_session(make_row(handle="new", user_id="alice", created=3, expires=9_000))
    store.insert_session(make_row(handle="bob", user_id="bob", created=4, expires=9_000))
    assert store.get_handles_for_user("alice", 5_000) == ["edge", "new"]
    assert store.get_handles_for_user("alice", 5_001) == ["new"]
    assert store.get_handles_for_user("alice", 0) == ["old", "edge", "new"]  # oldest first
    assert store.get_handles_for_user("nobody", 0) == []


def test_update_json_columns(store: SQLiteStore) -> None:
    store.insert_session(make_row())
    assert store.update_session_data("h1", {"new": [1]}) is True
    assert store.update_jwt_payload("h1", {"role": "user"}) is True
    row = store.get_session("h1")
    assert row is not None
    assert row.session_data == {"new": [1]}
    assert row.jwt_user_payload == {"role": "user"}
    assert row.refresh_token_hash_2 == "hash-a"


def test_update_missing_returns_false(store: SQLiteStore) -> None:
    assert store.update_session_data("missing", {"a": 1}) is False
    assert store.update_jwt_payload("missing", {"a": 1}) is False
    assert store.get_session("missing") is None


def test_delete_expired_sessions_pairs(store: SQLiteStore) -> None:
    store.insert_session(make_row(handle="e1", expires=100))
    store.insert_session(make_row(handle="e2", user_id="bob", expires=199))
    store.insert_session(make_row(handle="edge", expires=200))
    store.insert_session(make_row(handle="live", expires=10_000))
    assert sorted(store.delete_expired_sessions(200)) == [("e1", "alice"), ("e2", "bob")]
    assert store.delete_expired_sessions(200) == []
    assert store.get_session("edge") is not None
    assert store.get_session("live") is not None
    assert sorted(store.delete_expired_sessions(10**12)) == [("edge", "alice"), ("live", "alice")]


# -- keys -------------------------------------------------------------------------------------


def test_insert_key_if_absent_converges(store: SQLiteStore) -> None:
    first = StoredKey("refresh_token_key", "value-1", 10)
    assert store.insert_key_if_absent(first) == first
    second = StoredKey("refresh_token_key", "value-2", 20)
    assert store.insert_key_if_absent(second) == first
    assert store.load_keys("refresh_token_key") == [first]


def test_insert_key_if_absent_converges_across_store_objects(db_path: Path) -> None:
    one = SQLiteStore(f"sqlite:///{db_path}")
    two = SQLiteStore(f"sqlite:///{db_path}")
    try:
        one.migrate()
        two.migrate()
        stored = one.insert_key_if_absent(StoredKey("k", "from-one", 1))
        assert two.insert_key_if_absent(StoredKey("k", "from-two", 2)) == stored
        assert stored.value == "from-one"
    finally:
        one.close()
        two.close()


def test_load_keys_prefix_filter(store: SQLiteStore) -> None:
    for name in ("sk:RS256:1", "sk:RS256:2", "sk:ES256:1", "refresh_token_key", "SK:RS256:3"):
        store.insert_key_if_absent(StoredKey(name, "v-" + name, 1))
    assert [k.name for k in store.load_keys("sk:RS256:")] == ["sk:RS256:1", "sk:RS256:2"]
    assert [k.name for k in store.load_keys("sk:")] == ["sk:ES256:1", "sk:RS256:1", "sk:RS256:2"]
    assert store.load_keys("nothing") == []
    assert len(store.load_keys("")) == 5
    loaded = store.load_keys("refresh")
    assert loaded == [StoredKey("refresh_token_key", "v-refresh_token_key", 1)]


@pytest.mark.parametrize("prefix", ["a%", "a_", "%", "_", "a\\", "[a]"])
def test_load_keys_prefix_is_literal(store: SQLiteStore, prefix: str) -> None:
    literal = prefix + "key"
    names = [literal, "abkey", "a-key", "axkey", "zzz", "a/bkey", "akey"]
    for name in dict.fromkeys(names):
        store.insert_key_if_absent(StoredKey(name, "v", 1))
    assert [k.name for k in store.load_keys(prefix)] == [literal]


def test_load_keys_non_ascii_prefix(store: SQLiteStore) -> None:
    store.insert_key_if_absent(StoredKey("clé:1", "v", 1))
    store.insert_key_if_absent(StoredKey("cle:1", "v", 1))
    store.insert_key_if_absent(StoredKey("🔑:1", "v", 1))
    assert [k.name for k in store.load_keys("clé:")] == ["clé:1"]
    assert [k.name for k in store.load_keys("🔑")] == ["🔑:1"]


def test_delete_keys(store: SQLiteStore) -> None:
    for name in ("k1", "k2", "k3"):
        store.insert_key_if_absent(StoredKey(name, "v", 1))
    store.delete_keys(["k1", "k3", "missing", "k1"])
    assert [k.name for k in store.load_keys("k")] == ["k2"]
    store.delete_keys([])
    assert [k.name for k in store.load_keys("k")] == ["k2"]


# -- URLs -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "path", "timeout"),
    [
        ("sqlite:///sessionward.db", "sessionward.db", 5.0),
        ("sqlite:///dir/sub/x.db", "dir/sub/x.db", 5.0),
        ("sqlite:////abs/path/x.db", "/abs/path/x.db", 5.0),
        ("sqlite:///:memory:", ":memory:", 5.0),
        ("sqlite:///x.db?timeout=0.2", "x.db", 0.2),
        ("sqlite:///x.db?timeout=0", "x.db", 0.0),
        ("sqlite:///x.db?timeout=600", "x.db", 600.0),
        ("SQLite:///x.db", "x.db", 5.0),
    ],
)
def test_parse_sqlite_url(url: str, path: str, timeout: float) -> None:
    assert parse_sqlite_url(url) == (path, timeout)


@pytest.mark.parametrize(
    "url",
    [
        "sqlite://host/x.db",
        "sqlite://user@host/x.db",
        "sqlite://localhost:5/x.db",
        "sqlite:///",
        "sqlite://",
        "postgresql:///x.db",
        "sqlite:///x.db?mode=ro",
        "sqlite:///x.db?timeout=1&cache=shared",
        "sqlite:///x.db?timeout=abc",
        "sqlite:///x.db?timeout=",
        "sqlite:///x.db?timeout=-0.1",
        "sqlite:///x.db?timeout=601",
        "sqlite:///x.db?timeout=nan",
        "sqlite:///x.db?timeout=inf",
    ],
)
def test_bad_sqlite_urls(url: str) -> None:
    with pytest.raises(ConfigError, match=r"^store:"):
        parse_sqlite_url(url)
    with pytest.raises(ConfigError, match=r"^store:"):
        SQLiteStore(url)


def test_unknown_param_is_named() -> None:
    with pytest.raises(ConfigError, match="mode"):
        parse_sqlite_url("sqlite:///x.db?mode=ro")


def test_relative_url_is_relative_to_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    store = SQLiteStore("sqlite:///sub/rel.db")
    try:
        store.migrate()
    finally:
        store.close()
    assert (tmp_path / "sub" / "rel.db").is_file()


def test_absolute_url(tmp_path: Path) -> None:
    target = tmp_path / "abs.db"
    url = f"sqlite:///{target}"
    assert url.startswith("sqlite:////")
    store = SQLiteStore(url)
    try:
        store.migrate()
        store.insert_session(make_row())
    finally:
        store.close()
    raw = raw_connect(target)
    try:
        assert raw.execute("SELECT session_handle FROM session_info").fetchall() == [("h1",)]
    finally:
        raw.close()


def test_open_store_by_url(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/o.db?timeout=1")
    try:
        assert isinstance(store, SQLiteStore)
        store.migrate()
    finally:
        store.close()
    for bad in ("nothing", "mysql://x/y", "redis+cluster://x"):
        with pytest.raises(ConfigError, match=r"^store:"):
            open_store(bad)


def test_memory_stores_are_independent() -> None:
    one = SQLiteStore("sqlite:///:memory:")
    two = SQLiteStore("sqlite:///:memory:")
    try:
        one.migrate()
        two.migrate()
        one.insert_session(make_row())
        assert two.get_session("h1") is None
        assert one.get_session("h1") is not None
    finally:
        one.close()
        two.close()


# -- files, locks and failures ----------------------------------------------------------------


def test_file_database_uses_wal(file_store: SQLiteStore, db_path: Path) -> None:
    file_store.insert_session(make_row())
    raw = raw_connect(db_path)
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        raw.close()


def test_two_store_objects_share_a_file(file_store: SQLiteStore, db_path: Path) -> None:
    other = SQLiteStore(f"sqlite:///{db_path}")
    try:
        file_store.insert_session(make_row())
        assert other.get_session("h1") == make_row()
        assert _promote(other, "h1", "hash-a", "hash-b", 1, 2) is True
        assert _promote(file_store, "h1", "hash-a", "hash-c", 1, 2) is False
    finally:
        other.close()


def test_locked_database_is_storage_unavailable_then_recovers(db_path: Path) -> None:
    store = SQLiteStore(f"sqlite:///{db_path}?timeout=0.2")
    try:
        store.migrate()
        store.insert_session(make_row(handle="before"))
        locker = raw_connect(db_path)
        try:
            locker.execute("BEGIN EXCLUSIVE")
            with pytest.raises(StorageUnavailableError, match="locked"):
                store.insert_session(make_row(handle="during"))
            with pytest.raises(StorageUnavailableError):
                _promote(store, "before", "hash-a", "hash-b", 1, 2)
            with pytest.raises(StorageUnavailableError):
                store.delete_sessions(["before"])
            with pytest.raises(StorageUnavailableError):
                store.insert_key_if_absent(StoredKey("k", "v", 1))
            with pytest.raises(StorageUnavailableError):
                store.migrate()
            locker.execute("ROLLBACK")
        finally:
            locker.close()
        # The lock is gone: the same store object works again, nothing was half-done.
        assert store.get_session("during") is None
        store.insert_session(make_row(handle="after"))
        assert store.delete_sessions(["before"]) == ["before"]
        assert store.insert_key_if_absent(StoredKey("k", "v", 1)) == StoredKey("k", "v", 1)
        assert store.migrate() == latest_version("sqlite")
        assert store.get_handles_for_user("alice", 0) == ["after"]
    finally:
        store.close()


def test_locked_database_through_engine_is_storage_unavailable(db_path: Path) -> None:
    config = Config(store=f"sqlite:///{db_path}?timeout=0.2", access_token_algorithm="HS256")
    with SessionWard(config) as engine:
        tokens = engine.create_new_session("alice")
        locker = raw_connect(db_path)
        try:
            locker.execute("BEGIN EXCLUSIVE")
            with pytest.raises(StorageUnavailableError):
                engine.create_new_session("bob")
            with pytest.raises(StorageUnavailableError):
                engine.revoke_session(tokens.handle)
            locker.execute("ROLLBACK")
        finally:
            locker.close()
        assert engine.get_all_session_handles_for_user("alice") == [tokens.handle]
        assert engine.revoke_session(tokens.handle) is True


@pytest.mark.parametrize(
    "garbage",
    [
        b"this is definitely not an SQLite database " * 200,
        bytes(range(256)) * 64,
        b"SQLite format 3\x00" + b"\xff" * 4080,
    ],
)
def test_corrupt_file_is_storage_unavailable(db_path: Path, garbage: bytes) -> None:
    db_path.write_bytes(garbage)
    store = SQLiteStore(f"sqlite:///{db_path}")
    try:
        for operation in (
            store.migrate,
            store.check_schema,
            lambda: store.get_session("h1"),
            lambda: store.insert_session(make_row()),
            lambda: store.load_keys(""),
            lambda: store.insert_key_if_absent(StoredKey("k", "v", 1)),
            lambda: store.delete_expired_sessions(0),
        ):
            with pytest.raises(StorageUnavailableError):
                operation()
    finally:
        store.close()


def test_corrupted_after_use_is_storage_unavailable(db_path: Path) -> None:
    store = SQLiteStore(f"sqlite:///{db_path}")
    try:
        store.migrate()
        store.insert_session(make_row())
        store.close()
        for suffix in ("-wal", "-shm"):
            Path(str(db_path) + suffix).unlink(missing_ok=True)
        db_path.write_bytes(b"\x00garbage" * 1000)
        reopened = SQLiteStore(f"sqlite:///{db_path}")
        try:
            with pytest.raises(StorageUnavailableError):
                reopened.get_session("h1")
            # A repaired file makes the same store object work again.
            db_path.unlink()
            assert reopened.migrate() == latest_version("sqlite")
        finally:
            reopened.close()
    finally:
        store.close()


def test_unopenable_path_is_storage_unavailable(tmp_path: Path) -> None:
    directory = tmp_path / "a-directory.db"
    directory.mkdir()
    store = SQLiteStore(f"sqlite:///{directory}")
    try:
        with pytest.raises(StorageUnavailableError):
            store.migrate()
        with pytest.raises(StorageUnavailableError):
            store.get_session("h1")
    finally:
        store.close()


def test_file_in_a_missing_directory_is_refused_at_construction(tmp_path: Path) -> None:
    path = tmp_path / "no" / "such" / "dir" / "x.db"
    with pytest.raises(ConfigError, match="does not exist") as info:
        SQLiteStore(f"sqlite:///{path}")
    assert str(path) in str(info.value)
    assert not (tmp_path / "no").exists()


def test_closed_store_raises_general_error(store: SQLiteStore) -> None:
    store.insert_session(make_row())
    store.close()
    store.close()  # idempotent
    for operation in (
        store.migrate,
        store.check_schema,
        lambda: store.get_session("h1"),
        lambda: store.insert_session(make_row(handle="h2")),
        lambda: _promote(store, "h1", "hash-a", "b", 1, 2),
        lambda: store.delete_sessions(["h1"]),
        lambda: store.load_keys(""),
    ):
        with pytest.raises(GeneralError, match="closed") as info:
            operation()
        assert not isinstance(info.value, StorageUnavailableError)


def test_closed_before_use_raises_general_error(tmp_path: Path) -> None:
    store = SQLiteStore(f"sqlite:///{tmp_path}/never.db")
    store.close()
    with pytest.raises(GeneralError, match="closed"):
        store.migrate()
    assert not (tmp_path / "never.db").exists()


# -- fork -------------------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is not available on this platform")
@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
def test_forked_child_reopens_its_connection(file_store: SQLiteStore) -> None:
    file_store.insert_session(make_row(handle="parent"))
    assert file_store.get_session("parent") is not None
    parent_connection = file_store._connection
    assert parent_connection is not None
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            row = file_store.get_session("parent")
            file_store.insert_session(make_row(handle="child"))
            ok = (
                row is not None
                and row.session_handle == "parent"
                and _promote(file_store, "parent", "hash-a", "hash-child", 5, 6)
                and file_store.get_session("child") is not None
                # the child opened its own connection instead of sharing the parent's
                and file_store._connection is not None
                and file_store._connection is not parent_connection
            )
            file_store.close()
            code = 0 if ok else 2
        except BaseException:
            code = 3
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    # The parent's own connection is unaffected and sees the child's writes.
    child_row = file_store.get_session("child")
    assert child_row is not None
    parent_row = file_store.get_session("parent")
    assert parent_row is not None
    assert parent_row.refresh_token_hash_2 == "hash-child"
    file_store.insert_session(make_row(handle="parent-again"))
    assert file_store._connection is parent_connection
