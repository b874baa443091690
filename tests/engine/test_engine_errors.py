"""SessionWard input validation, management calls on missing sessions, and store ownership."""

from __future__ import annotations

import decimal
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from sessionward import Config, ConfigError, GeneralError, SessionWard, UnauthorizedError
from sessionward.errors import StorageUnavailableError
from sessionward.stores.sqlite import SQLiteStore

MISSING = "00000000-0000-4000-8000-000000000000"


def nested_dicts(depth: int) -> dict[str, Any]:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value  # type: ignore[no-any-return]


def nested_lists(depth: int) -> dict[str, Any]:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return {"a": value}


@pytest.fixture
def fast_config() -> Config:
    return Config(store="sqlite:///:memory:", access_token_algorithm="HS256")


@pytest.fixture
def ward(fast_config: Config) -> Iterator[SessionWard]:
    with SessionWard(fast_config) as engine:
        yield engine


def assert_general_error(call: Callable[[], Any], argument: str) -> str:
    with pytest.raises(GeneralError) as info:
        call()
    assert type(info.value) is GeneralError  # not StorageUnavailableError, not a crash
    message = str(info.value)
    assert message.startswith(f"{argument}:"), message
    return message


# -- user_id ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "user_id",
    [
        None,
        123,
        1.5,
        b"alice",
        ["alice"],
        {"id": "alice"},
        True,
        "",
        "x" * 257,
        "é" * 129,
        "\ud800",
        "a\udfffb",
    ],
)
def test_create_rejects_bad_user_id(ward: SessionWard, user_id: Any) -> None:
    assert_general_error(lambda: ward.create_new_session(user_id), "user_id")
    assert ward.get_all_session_handles_for_user("") == []


@pytest.mark.parametrize("user_id", ["x" * 256, "é" * 128, "🔑" * 64, " ", "a\x00b", "ユーザー"])
def test_create_accepts_edge_user_ids(ward: SessionWard, user_id: str) -> None:
    tokens = ward.create_new_session(user_id)
    assert tokens.user_id == user_id
    assert ward.get_session(tokens.access_token.value).user_id == user_id
    assert ward.get_all_session_handles_for_user(user_id) == [tokens.handle]


def test_too_long_user_id_message_gives_the_limit(ward: SessionWard) -> None:
    assert "256" in assert_general_error(lambda: ward.create_new_session("x" * 300), "user_id")


@pytest.mark.parametrize(
    ("user_id", "got"),
    [(42, "got int"), (None, "got NoneType"), (b"alice", "got bytes"), ("", "got an empty string")],
)
def test_bad_user_id_message_names_what_it_got(ward: SessionWard, user_id: Any, got: str) -> None:
    message = assert_general_error(lambda: ward.create_new_session(user_id), "user_id")
    assert message == f"user_id: expected a non-empty string, {got}"


# -- JSON objects -----------------------------------------------------------------------------

NOT_A_DICT: list[Any] = [[], ["a", 1], "{}", 1, 1.5, True, b"{}", (("a", 1),), {"a", "b"}]

NOT_JSON: list[Any] = [
    {"a": {1, 2}},
    {"a": frozenset()},
    {"a": b"bytes"},
    {"a": bytearray(b"x")},
    {"a": float("nan")},
    {"a": float("inf")},
    {"a": float("-inf")},
    {"a": [1, float("nan")]},
    {"a": object()},
    {"a": decimal.Decimal("1.5")},
    {"a": 1j},
    {"a": {"b": {"c": [object()]}}},
    {"a": "\ud800"},
    {"a": ["ok", "\udc00"]},
    {1: "a"},
    {None: "a"},
    {True: "a"},
    {1.5: "a"},
    {("a",): "a"},
    {"a": {2: "b"}},
    {"a": [{"b": 1}, {3: 4}]},
    nested_dicts(29),
    nested_dicts(100),
    nested_dicts(5000),
    nested_lists(28),
    nested_lists(5000),
]


def describe(value: Any) -> str:
    try:
        return repr(value)[:40]
    except RecursionError:
        return "deeply-nested"


@pytest.mark.parametrize("argument", ["jwt_payload", "session_data"])
@pytest.mark.parametrize("value", NOT_A_DICT, ids=describe)
def test_create_rejects_non_dict(ward: SessionWard, argument: str, value: Any) -> None:
    message = assert_general_error(
        lambda: ward.create_new_session("alice", **dict[str, Any]({argument: value})), argument
    )
    assert "dict" in message
    assert ward.get_all_session_handles_for_user("alice") == []


@pytest.mark.parametrize("argument", ["jwt_payload", "session_data"])
@pytest.mark.parametrize("value", NOT_JSON, ids=describe)
def test_create_rejects_non_json(ward: SessionWard, argument: str, value: Any) -> None:
    assert_general_error(
        lambda: ward.create_new_session("alice", **dict[str, Any]({argument: value})), argument
    )
    assert ward.get_all_session_handles_for_user("alice") == []


def test_deep_nesting_message(ward: SessionWard) -> None:
    message = assert_general_error(lambda: ward.create_new_session("a", nested_dicts(50)), "jwt_payload")
    assert "nested" in message


@pytest.mark.parametrize("argument", ["jwt_payload", "session_data"])
def test_create_accepts_json_edge_values(ward: SessionWard, argument: str) -> None:
    value = {
        "none": None,
        "bools": [True, False],
        "ints": [0, -1, 2**63, -(2**63)],
        "floats": [0.0, -0.0, 1e308, 5e-324],
        "text": 'ü\u2028\x00"\\</script>',
        "": "",
        "nested": nested_dicts(20),
        "lists": nested_lists(20),
    }
    tokens = ward.create_new_session("alice", **dict[str, Any]({argument: value}))
    if argument == "jwt_payload":
        assert ward.get_jwt_payload(tokens.handle) == value
        assert ward.get_session(tokens.access_token.value).jwt_payload == value
    else:
        assert ward.get_session_data(tokens.handle) == value


def test_create_none_means_empty(ward: SessionWard) -> None:
    tokens = ward.create_new_session("alice", None, None)
    info = ward.get_session_information(tokens.handle)
    assert (info.jwt_payload, info.session_data) == ({}, {})


@pytest.mark.parametrize("argument", ["jwt_payload", "session_data"])
def test_create_rejects_lone_surrogate_keys(ward: SessionWard, argument: str) -> None:
    assert_general_error(
        lambda: ward.create_new_session("alice", **dict[str, Any]({argument: {"\ud800": 1}})), argument
    )


@pytest.mark.parametrize("argument", ["jwt_payload", "session_data"])
def test_create_rejects_unserialisable_huge_int(ward: SessionWard, argument: str) -> None:
    assert_general_error(
        lambda: ward.create_new_session("alice", **dict[str, Any]({argument: {"n": 10**5000}})), argument
    )


# -- update_* validation ----------------------------------------------------------------------

UPDATES = [("update_session_data", "session_data"), ("update_jwt_payload", "jwt_payload")]


@pytest.mark.parametrize(("method", "argument"), UPDATES)
@pytest.mark.parametrize("value", NOT_A_DICT, ids=describe)
def test_update_rejects_non_dict(ward: SessionWard, method: str, argument: str, value: Any) -> None:
    tokens = ward.create_new_session("alice", {"p": 1}, {"d": 1})
    assert_general_error(lambda: getattr(ward, method)(tokens.handle, value), argument)
    info = ward.get_session_information(tokens.handle)
    assert (info.jwt_payload, info.session_data) == ({"p": 1}, {"d": 1})  # unchanged


@pytest.mark.parametrize(("method", "argument"), UPDATES)
@pytest.mark.parametrize("value", NOT_JSON, ids=describe)
def test_update_rejects_non_json(ward: SessionWard, method: str, argument: str, value: Any) -> None:
    tokens = ward.create_new_session("alice", {"p": 1}, {"d": 1})
    assert_general_error(lambda: getattr(ward, method)(tokens.handle, value), argument)
    info = ward.get_session_information(tokens.handle)
    assert (info.jwt_payload, info.session_data) == ({"p": 1}, {"d": 1})


@pytest.mark.parametrize(("method", "argument"), UPDATES)
def test_update_validates_before_looking_up_the_session(
    ward: SessionWard, method: str, argument: str
) -> None:
    assert_general_error(lambda: getattr(ward, method)(MISSING, {"a": {1, 2}}), argument)


def test_updates_take_effect(ward: SessionWard) -> None:
    tokens = ward.create_new_session("alice", {"p": 1}, {"d": 1})
    ward.update_session_data(tokens.handle, {"d": 2})
    ward.update_jwt_payload(tokens.handle, {"p": 2})
    assert ward.get_session_data(tokens.handle) == {"d": 2}
    assert ward.get_jwt_payload(tokens.handle) == {"p": 2}
    ward.update_session_data(tokens.handle, {})
    assert ward.get_session_data(tokens.handle) == {}


# -- management calls on a missing handle -----------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda w, h: w.get_session_data(h),
        lambda w, h: w.update_session_data(h, {"a": 1}),
        lambda w, h: w.get_jwt_payload(h),
        lambda w, h: w.update_jwt_payload(h, {"a": 1}),
        lambda w, h: w.get_session_information(h),
    ],
    ids=["get_session_data", "update_session_data", "get_jwt_payload", "update_jwt_payload", "info"],
)
@pytest.mark.parametrize("handle", [MISSING, "", "not-a-uuid", "x" * 10_000, "'; DROP TABLE session_info;--"])
def test_missing_handle_is_unauthorized(
    ward: SessionWard, call: Callable[[SessionWard, str], Any], handle: str
) -> None:
    ward.create_new_session("alice")
    with pytest.raises(UnauthorizedError):
        call(ward, handle)
    assert len(ward.get_all_session_handles_for_user("alice")) == 1


def test_revoked_handle_is_unauthorized(ward: SessionWard) -> None:
    tokens = ward.create_new_session("alice", {"p": 1}, {"d": 1})
    assert ward.revoke_session(tokens.handle) is True
    for call in (
        lambda: ward.get_session_data(tokens.handle),
        lambda: ward.update_session_data(tokens.handle, {}),
        lambda: ward.get_jwt_payload(tokens.handle),
        lambda: ward.update_jwt_payload(tokens.handle, {}),
        lambda: ward.get_session_information(tokens.handle),
    ):
        with pytest.raises(UnauthorizedError):
            call()


def test_revoke_missing_returns_false_or_empty(ward: SessionWard) -> None:
    kept = ward.create_new_session("alice")
    assert ward.revoke_session(MISSING) is False
    assert ward.revoke_multiple_sessions([MISSING, "other"]) == []
    assert ward.revoke_multiple_sessions([]) == []
    assert ward.revoke_all_sessions_for_user("nobody") == []
    assert ward.get_all_session_handles_for_user("nobody") == []
    assert ward.get_all_session_handles_for_user("alice") == [kept.handle]


def test_revoke_returns_only_existing(ward: SessionWard) -> None:
    one = ward.create_new_session("alice")
    two = ward.create_new_session("bob")
    assert ward.revoke_multiple_sessions([one.handle, MISSING, one.handle]) == [one.handle]
    assert ward.revoke_session(one.handle) is False
    assert ward.revoke_all_sessions_for_user("bob") == [two.handle]
    assert ward.revoke_all_sessions_for_user("bob") == []


@pytest.mark.parametrize("handles", ["a-handle", [1, 2], [None], ["ok", b"bytes"]], ids=describe)
def test_revoke_multiple_rejects_non_string_handles(ward: SessionWard, handles: Any) -> None:
    assert_general_error(lambda: ward.revoke_multiple_sessions(handles), "handles")


# -- store ownership --------------------------------------------------------------------------


def test_context_manager_closes_its_store(fast_config: Config) -> None:
    with SessionWard(fast_config) as engine:
        engine.create_new_session("alice")
        store = engine.store
    with pytest.raises(GeneralError, match="closed") as info:
        store.get_session(MISSING)
    assert not isinstance(info.value, StorageUnavailableError)


def test_context_manager_closes_a_store_given_by_url(tmp_path: Path, fast_config: Config) -> None:
    with SessionWard(fast_config, store=f"sqlite:///{tmp_path}/owned.db") as engine:
        tokens = engine.create_new_session("alice")
        store = engine.store
    with pytest.raises(GeneralError, match="closed"):
        store.get_session(tokens.handle)


def test_close_closes_its_store(fast_config: Config) -> None:
    engine = SessionWard(fast_config)
    engine.create_new_session("alice")
    engine.close()
    with pytest.raises(GeneralError, match="closed"):
        engine.store.get_session(MISSING)


def test_context_manager_closes_store_on_error(fast_config: Config) -> None:
    with pytest.raises(UnauthorizedError), SessionWard(fast_config) as engine:
        store = engine.store
        engine.get_session_data(MISSING)
    with pytest.raises(GeneralError, match="closed"):
        store.get_session(MISSING)


def test_engine_given_a_store_object_does_not_close_it(tmp_path: Path, fast_config: Config) -> None:
    store = SQLiteStore(f"sqlite:///{tmp_path}/shared.db")
    try:
        with SessionWard(fast_config, store=store) as engine:
            assert engine.store is store
            tokens = engine.create_new_session("alice", session_data={"d": 1})
        engine.close()  # explicit close too
        row = store.get_session(tokens.handle)  # still usable
        assert row is not None
        assert row.session_data == {"d": 1}
        # A second engine on the same store object sees the session and the same keys.
        with SessionWard(fast_config, store=store) as again:
            assert again.get_session(tokens.access_token.value).handle == tokens.handle
            assert again.get_session_data(tokens.handle) == {"d": 1}
        assert store.get_session(tokens.handle) is not None
    finally:
        store.close()


@pytest.mark.parametrize(("method", "argument"), UPDATES)
def test_update_with_none_is_refused_not_a_silent_wipe(ward: SessionWard, method: str, argument: str) -> None:
    tokens = ward.create_new_session("alice", {"p": 1}, {"d": 1})
    assert_general_error(lambda: getattr(ward, method)(tokens.handle, None), argument)
    info = ward.get_session_information(tokens.handle)
    assert (info.jwt_payload, info.session_data) == ({"p": 1}, {"d": 1})


def test_corrupt_stored_row_is_unauthorised_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = Config(store=f"sqlite:///{tmp_path}/s.db", access_token_algorithm="HS256")
    with SessionWard(config) as engine:
        created = engine.create_new_session("alice", {"role": "user"})
        refreshed = engine.refresh_session(created.refresh_token.value)
        with closing(sqlite3.connect(tmp_path / "s.db")) as connection, connection:
            connection.execute(
                "UPDATE session_info SET session_data = '{' WHERE session_handle = ?", (created.handle,)
            )
        with caplog.at_level("ERROR", logger="sessionward.engine"):
            with pytest.raises(UnauthorizedError):
                engine.refresh_session(created.refresh_token.value)
            with pytest.raises(UnauthorizedError):
                engine.get_session(refreshed.access_token.value)  # promotion reads the row
            with pytest.raises(UnauthorizedError):
                engine.get_session_data(created.handle)
        assert f"session {created.handle} is unusable" in caplog.text
        assert created.refresh_token.value not in caplog.text
        assert engine.revoke_session(created.handle)  # and it can still be removed


# -- a SQLite file in a missing directory -----------------------------------------------------


def test_sqlite_file_in_a_missing_directory_is_refused_at_construction(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir"
    with pytest.raises(ConfigError) as info:
        SessionWard(Config(store=f"sqlite:///{missing}/sessions.db"))
    message = str(info.value)
    assert f"{missing}/sessions.db" in message and "does not exist" in message
    assert not missing.exists()  # never created behind the operator's back


def test_sqlite_relative_file_in_the_working_directory_is_accepted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with SessionWard(Config(store="sqlite:///sessions.db", access_token_algorithm="HS256")) as engine:
        engine.create_new_session("alice")
    assert (tmp_path / "sessions.db").exists()
