"""The store conformance suite (docs/design/extending.md): one set of tests for every store.

Each test runs against SQLite, PostgreSQL and Redis, each through its sync and its async
driver (``subject`` / ``make_ward`` in ``conftest.py``). Part one pins the contract of every
store operation of ``sessionward.stores.base``; part two replays every scenario of the
refresh and promotion rules (the R0-R5 and V1-V4 tables of docs/design/decision-tables.md,
the grace window, revocation, blacklisting, key convergence) through ``SessionWard`` /
``AsyncSessionWard`` on the store.

Times are real-time based (rows expire in the future by the wall clock, so a store with
native TTLs keeps them); "later" is expressed through the ``now`` argument or a fake clock
that starts at the wall clock and is moved by hand.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Callable
from typing import Any

import pytest
from support.clock import FakeClock
from support.drivers import Subject
from support.rows import make_row, now_ms
from support.tokens import claims, h

from sessionward import (
    SessionTokens,
    TokenTheftDetectedError,
    TryRefreshTokenError,
    UnauthorizedError,
)
from sessionward.errors import GeneralError, StorageUnavailableError
from sessionward.stores.base import Promoted, Promotion, SessionRow, StoredKey

RACERS = 24
VALIDITY = 60
IDLE = 300
GRACE = 10

NASTY_JSON: dict[str, Any] = {
    "ascii": "plain",
    "unicode": "Grüße, 東京, emoji 😀, rtl עברית",
    "escapes": "quote \" apostrophe ' backslash \\ newline \n tab \t nul \u0000 del \x7f",
    "nested": {"a": [1, -2, 2.5, 0.1, 1e300, None, True, False, {"b": [], "c": {}}], "d": {"e": {"f": "g"}}},
    "big": 2**100,
    "negative_big": -(2**63) - 1,
    "empty_string": "",
    "keys with spaces / slashes": {"ключ": "значение", "": "empty key"},
    "list_of_objects": [{"n": i, "s": str(i) * i} for i in range(5)],
}


# =====================================================================================
# Part one: the store operations
# =====================================================================================


def test_migrate_is_idempotent_and_schema_current(subject: Any) -> None:
    version = subject.migrate()
    assert isinstance(version, int) and version >= 1
    subject.insert_session(make_row("h1"))
    assert subject.migrate() == version
    subject.check_schema()
    assert subject.get_session("h1") is not None  # data survives re-migration


def test_check_schema_before_migrate_names_the_command(store_url: str, runner: Any) -> None:
    fresh = Subject(store_url, runner)
    try:
        with pytest.raises(GeneralError, match="sessionward migrate") as info:
            fresh.check_schema()
        assert not isinstance(info.value, StorageUnavailableError)
        fresh.migrate()
        fresh.check_schema()
    finally:
        fresh.close()


def test_insert_get_round_trip(subject: Any) -> None:
    row = make_row("h1")
    subject.insert_session(row)
    assert subject.get_session("h1") == row
    assert subject.get_session("missing") is None
    assert subject.get_session("") is None


@pytest.mark.parametrize("column", ["session_data", "jwt_user_payload"])
def test_json_round_trip_unicode_and_nesting(subject: Any, column: str) -> None:
    row = make_row("h-json", data=NASTY_JSON, payload=NASTY_JSON)
    subject.insert_session(row)
    stored = subject.get_session("h-json")
    assert stored == row
    assert json.dumps(getattr(stored, column), sort_keys=True) == json.dumps(NASTY_JSON, sort_keys=True)
    update = subject.update_session_data if column == "session_data" else subject.update_jwt_payload
    for value in ({}, {"only": "one"}, NASTY_JSON, {"deep": [[[[[[[[[[{"x": "ü"}]]]]]]]]]]}):
        assert update("h-json", value) is True
        assert getattr(subject.get_session("h-json"), column) == value


def test_unusual_ids_are_stored_verbatim(subject: Any) -> None:
    users = ["ünïcødé 用户", "a*", "a?", "a[b]", "a:b", "a%", "a_", "{tag}", "x" * 200]
    for index, user in enumerate(users):
        subject.insert_session(make_row(f"h-{index}", user_id=user, created=now_ms() + index))
    subject.insert_session(make_row("h-plain-ab", user_id="ab"))
    subject.insert_session(make_row("h-plain-a", user_id="a"))
    for index, user in enumerate(users):
        assert subject.get_session(f"h-{index}").user_id == user
        assert subject.get_handles_for_user(user, now_ms()) == [f"h-{index}"]
    # Patterns are never interpreted: "a*" and "a%" are names, not wildcards.
    assert subject.delete_sessions_for_user("a*") == ["h-1"]
    assert subject.delete_sessions_for_user("a%") == ["h-5"]
    assert subject.get_handles_for_user("ab", now_ms()) == ["h-plain-ab"]
    assert subject.get_handles_for_user("a", now_ms()) == ["h-plain-a"]


def test_promote_race_has_exactly_one_winner(subject: Any) -> None:
    base = now_ms()
    subject.insert_session(make_row("h-race", hash2="start", created=base))
    for round_ in range(3):
        expected = subject.get_session("h-race").refresh_token_hash_2
        calls = [
            (
                "promote_returning",
                (_promotion("h-race", expected, f"r{round_}-c{i}", base + i, base + 100_000 + i),),
            )
            for i in range(RACERS)
        ]
        results = subject.race(calls)
        assert all(isinstance(r, Promoted) for r in results), [
            r for r in results if not isinstance(r, Promoted)
        ][:3]
        winners = [i for i, result in enumerate(results) if result.changed]
        assert len(winners) == 1, f"{len(winners)} winners in round {round_}"
        row = subject.get_session("h-race")
        winner = winners[0]
        assert row.refresh_token_hash_2 == f"r{round_}-c{winner}"
        assert row.prev_refresh_token_hash_2 == expected
        assert (row.rotated_at, row.expires_at) == (base + winner, base + 100_000 + winner)


def _promotion(handle: str, expected: str, new: str, now: int, deadline: int, **extra: Any) -> Promotion:
    return Promotion(handle, extra.pop("user_id", "alice"), expected, new, now, deadline, **extra)


def test_promote_returning_is_compare_and_set_answering_the_row(subject: Any) -> None:
    base = now_ms()
    row = make_row("h1", hash2="h2-old", created=base, expires=base + 5_000)
    subject.insert_session(row)
    # Refused: nothing written, the row as found.
    assert subject.promote_returning(_promotion("h1", "wrong", "h2-new", base + 1, base + 9_000)) == (
        False,
        row,
    )
    assert subject.promote_returning(_promotion("missing", "h2-old", "h2-new", base + 1, base + 9_000)) == (
        False,
        None,
    )
    assert subject.get_session("missing") is None  # a failed CAS never creates a row
    changed, promoted = subject.promote_returning(
        _promotion("h1", "h2-old", "h2-new", base + 2, base + 9_000)
    )
    assert changed is True
    assert promoted == subject.get_session("h1")
    assert (promoted.refresh_token_hash_2, promoted.prev_refresh_token_hash_2) == ("h2-new", "h2-old")
    assert (promoted.rotated_at, promoted.expires_at) == (base + 2, base + 9_000)
    assert (promoted.user_id, promoted.session_data, promoted.jwt_user_payload, promoted.created_at_time) == (
        row.user_id,
        row.session_data,
        row.jwt_user_payload,
        row.created_at_time,
    )
    stale = subject.promote_returning(_promotion("h1", "h2-old", "h2-newer", base + 3, base + 10_000))
    assert stale == (False, promoted)
    again = subject.promote_returning(_promotion("h1", "h2-new", "h2-newer", base + 3, base + 10_000))
    assert again.changed and again.row.prev_refresh_token_hash_2 == "h2-new"
    assert subject.get_handles_for_user("alice", base + 9_500) == ["h1"]  # the index follows


def test_promote_returning_refuses_what_a_prior_read_would_refuse(subject: Any) -> None:
    base = now_ms()
    row = make_row("h1", hash2="a", created=base, expires=base + 5_000, payload={"p": "x" * 40})
    subject.insert_session(row)
    payload_length = len('{"p":"' + "x" * 40 + '"}')
    refused = [
        _promotion("h1", "a", "b", base + 1, base + 9_000, user_id="mallory"),  # another user's
        _promotion("h1", "a", "b", base + 5_001, base + 9_000),  # past its idle deadline
        _promotion("h1", "a", "b", base + 1_001, base + 9_000, max_lifetime=1_000),  # past its lifetime
        _promotion("h1", "a", "b", base + 1, base + 9_000, max_payload_json=payload_length - 1),
    ]
    for promotion in refused:
        assert subject.promote_returning(promotion) == (False, row), promotion
    # At the limits, it commits; the deadline is capped by the lifetime.
    changed, promoted = subject.promote_returning(
        _promotion(
            "h1", "a", "b", base + 5_000, base + 9_000, max_lifetime=5_000, max_payload_json=payload_length
        )
    )
    assert changed is True
    assert (promoted.rotated_at, promoted.expires_at) == (base + 5_000, base + 5_000)
    changed, promoted = subject.promote_returning(
        _promotion("h1", "b", "c", base + 5_000, base + 9_000, max_lifetime=60_000)
    )
    assert changed is True and promoted.expires_at == base + 9_000  # under the cap: as asked


def test_promote_returning_race_has_exactly_one_winner(subject: Any) -> None:
    base = now_ms()
    subject.insert_session(make_row("h-race", hash2="start", created=base))
    for round_ in range(3):
        expected = subject.get_session("h-race").refresh_token_hash_2
        calls = [
            (
                "promote_returning",
                (_promotion("h-race", expected, f"r{round_}-c{i}", base + i, base + 100_000 + i),),
            )
            for i in range(RACERS)
        ]
        results = subject.race(calls)
        assert all(isinstance(r, tuple) for r in results), [r for r in results if not isinstance(r, tuple)][
            :3
        ]
        winners = [i for i, outcome in enumerate(results) if outcome.changed]
        assert len(winners) == 1, f"{len(winners)} winners in round {round_}"
        winner = winners[0]
        row = subject.get_session("h-race")
        assert results[winner].row == row
        assert row.refresh_token_hash_2 == f"r{round_}-c{winner}"
        assert row.prev_refresh_token_hash_2 == expected
        assert (row.rotated_at, row.expires_at) == (base + winner, base + 100_000 + winner)
        for outcome in results:  # every loser saw a row: the winner's, or the one it replaced
            assert outcome.row.refresh_token_hash_2 in (expected, row.refresh_token_hash_2)


def test_delete_sessions_returns_only_existing_handles(subject: Any) -> None:
    for handle, user in (("h1", "alice"), ("h2", "alice"), ("h3", "bob")):
        subject.insert_session(make_row(handle, user_id=user))
    assert subject.delete_sessions([]) == []
    removed = subject.delete_sessions(["h2", "nope", "h1", "h2"])
    assert sorted(removed) == ["h1", "h2"]
    assert len(removed) == 2
    assert subject.delete_sessions(["h1", "h2"]) == []
    assert subject.get_session("h1") is None and subject.get_session("h2") is None
    assert subject.get_session("h3") is not None
    assert subject.get_handles_for_user("alice", now_ms()) == []
    assert subject.get_handles_for_user("bob", now_ms()) == ["h3"]


def test_delete_race_reports_each_handle_once(subject: Any) -> None:
    handles = [f"h{i}" for i in range(4)]
    for handle in handles:
        subject.insert_session(make_row(handle))
    results = subject.race([("delete_sessions", (list(handles),)) for _ in range(RACERS)])
    assert not [r for r in results if isinstance(r, BaseException)], results[:3]
    reported = [handle for result in results for handle in result]
    assert sorted(reported) == handles  # each deletion is reported by exactly one caller


def test_delete_sessions_for_user(subject: Any) -> None:
    base = now_ms()
    owners = (("a1", "alice"), ("a2", "alice"), ("b1", "bob"), ("x", "alice-2"))
    for index, (handle, user) in enumerate(owners):
        subject.insert_session(make_row(handle, user_id=user, created=base + index))
    assert sorted(subject.delete_sessions_for_user("alice")) == ["a1", "a2"]
    assert subject.delete_sessions_for_user("alice") == []
    assert subject.delete_sessions_for_user("nobody") == []
    assert subject.get_session("a1") is None
    assert subject.get_handles_for_user("bob", base) == ["b1"]
    assert subject.get_handles_for_user("alice-2", base) == ["x"]


def test_get_handles_for_user_order_and_expiry(subject: Any) -> None:
    base = now_ms()
    subject.insert_session(make_row("late", created=base + 30, expires=base + 100_000))
    subject.insert_session(make_row("early", created=base + 10, expires=base + 50_000))
    subject.insert_session(make_row("mid", created=base + 20, expires=base + 70_000))
    subject.insert_session(make_row("other", user_id="bob", created=base, expires=base + 100_000))
    assert subject.get_handles_for_user("alice", base) == ["early", "mid", "late"]  # oldest first
    assert subject.get_handles_for_user("alice", base + 50_000) == ["early", "mid", "late"]  # inclusive
    assert subject.get_handles_for_user("alice", base + 50_001) == ["mid", "late"]
    assert subject.get_handles_for_user("alice", base + 100_001) == []
    assert subject.get_handles_for_user("nobody", base) == []
    # Listing filters; it never deletes.
    assert subject.get_session("early") is not None


def test_promote_extends_what_listing_sees(subject: Any) -> None:
    base = now_ms()
    subject.insert_session(make_row("h1", hash2="a", created=base, expires=base + 1_000))
    assert subject.promote_returning(_promotion("h1", "a", "b", base + 500, base + 90_000)).changed is True
    assert subject.get_handles_for_user("alice", base + 5_000) == ["h1"]


def test_update_session_data_and_jwt_payload(subject: Any) -> None:
    row = make_row("h1")
    subject.insert_session(row)
    assert subject.update_session_data("h1", {"cart": [1, 2]}) is True
    assert subject.update_jwt_payload("h1", {"plan": "pro"}) is True
    updated = subject.get_session("h1")
    assert updated.session_data == {"cart": [1, 2]}
    assert updated.jwt_user_payload == {"plan": "pro"}
    assert (updated.refresh_token_hash_2, updated.expires_at, updated.created_at_time) == (
        row.refresh_token_hash_2,
        row.expires_at,
        row.created_at_time,
    )
    assert subject.update_session_data("missing", {"a": 1}) is False
    assert subject.update_jwt_payload("missing", {"a": 1}) is False
    assert subject.get_session("missing") is None  # an update never creates a row


def test_delete_expired_sessions(subject: Any) -> None:
    base = now_ms()
    for index in range(3):
        subject.insert_session(make_row(f"old{index}", created=base, expires=base + 10_000))
    subject.insert_session(make_row("edge", created=base, expires=base + 20_000))
    subject.insert_session(make_row("young", user_id="bob", created=base, expires=base + 60_000))
    assert subject.delete_expired_sessions(base) == []
    removed = subject.delete_expired_sessions(base + 20_000)  # strictly before now
    assert sorted(removed) == [("old0", "alice"), ("old1", "alice"), ("old2", "alice")]
    assert all(type(handle) is str and type(user) is str for handle, user in removed)
    for index in range(3):
        assert subject.get_session(f"old{index}") is None
    assert subject.get_handles_for_user("alice", base) == ["edge"]
    assert subject.delete_expired_sessions(base + 20_000) == []
    assert subject.delete_expired_sessions(base + 20_001) == [("edge", "alice")]
    assert subject.get_session("young") is not None
    assert subject.get_handles_for_user("bob", base) == ["young"]
    assert subject.delete_expired_sessions(base + 60_001) == [("young", "bob")]


# -- session metadata -------------------------------------------------------------------


def _with_metadata(row: SessionRow, **metadata: Any) -> SessionRow:
    values: dict[str, Any] = {
        "last_active_at": row.created_at_time + 5,
        "auth_time": row.created_at_time + 3,
        "persistent": False,
        "refresh_validity": 120_000,
        "created_ip": "2001:db8::1",
        "created_user_agent": 'Mozilla/5.0 (X11; Linux) "quoted" ünï 東京 😀',
        "last_ip": "203.0.113.9",
        "last_user_agent": "curl/8.5.0",
    }
    values.update(metadata)
    return dataclasses.replace(row, **values)


def test_metadata_round_trip(subject: Any) -> None:
    base = now_ms()
    full = _with_metadata(make_row("h-full", created=base))
    plain = make_row("h-plain", created=base + 1)
    long_agent = _with_metadata(
        make_row("h-long", created=base + 2), created_user_agent="A" * 512, last_user_agent="", last_ip=""
    )
    for row in (full, plain, long_agent):
        subject.insert_session(row)
        assert subject.get_session(row.session_handle) == row
    stored = subject.get_session("h-full")
    assert stored.persistent is False and stored.refresh_validity == 120_000
    assert (stored.active_at, stored.authenticated_at) == (base + 5, base + 3)
    defaults = subject.get_session("h-plain")
    assert defaults.persistent is True
    assert (defaults.last_active_at, defaults.auth_time, defaults.refresh_validity) == (None, None, None)
    assert (defaults.created_ip, defaults.created_user_agent, defaults.last_ip, defaults.last_user_agent) == (
        None,
        None,
        None,
        None,
    )
    assert (defaults.active_at, defaults.authenticated_at) == (base + 1, base + 1)
    assert subject.get_session("h-long").last_user_agent == ""  # empty is not missing
    assert sorted(subject.get_sessions_for_user("alice", base), key=lambda r: r.session_handle) == [
        full,
        long_agent,
        plain,
    ]
    # Updating the JSON fields leaves the metadata alone.
    assert subject.update_session_data("h-full", {"x": 1}) is True
    assert subject.update_jwt_payload("h-full", {"y": 2}) is True
    assert subject.get_session("h-full") == dataclasses.replace(
        full, session_data={"x": 1}, jwt_user_payload={"y": 2}
    )


def test_promotion_updates_metadata(subject: Any) -> None:
    base = now_ms()
    row = _with_metadata(make_row("h1", hash2="a", created=base), refresh_validity=None, persistent=True)
    subject.insert_session(row)
    changed, promoted = subject.promote_returning(
        _promotion("h1", "a", "b", base + 100, base + 9_000, ip="198.51.100.7", user_agent="Agent ü/2")
    )
    assert changed is True
    assert promoted == subject.get_session("h1")
    assert promoted == dataclasses.replace(
        row,
        refresh_token_hash_2="b",
        prev_refresh_token_hash_2="a",
        rotated_at=base + 100,
        expires_at=base + 9_000,
        last_active_at=base + 100,
        last_ip="198.51.100.7",
        last_user_agent="Agent ü/2",
    )
    # Without a client: activity still moves, the last client seen stays.
    changed, promoted = subject.promote_returning(_promotion("h1", "b", "c", base + 200, base + 9_100))
    assert changed is True
    assert (promoted.last_active_at, promoted.last_ip, promoted.last_user_agent) == (
        base + 200,
        "198.51.100.7",
        "Agent ü/2",
    )
    assert (promoted.created_ip, promoted.created_user_agent, promoted.auth_time) == (
        row.created_ip,
        row.created_user_agent,
        row.auth_time,
    )
    # A refused promotion writes no metadata either.
    refused = subject.promote_returning(
        _promotion("h1", "stale", "d", base + 300, base + 9_200, ip="192.0.2.1")
    )
    assert refused == (False, promoted)
    # One client field alone is written alone.
    changed, promoted = subject.promote_returning(
        _promotion("h1", "c", "d", base + 400, base + 9_300, user_agent="only-agent")
    )
    assert (promoted.last_ip, promoted.last_user_agent) == ("198.51.100.7", "only-agent")
    # An empty user agent is a value, not an absence.
    changed, promoted = subject.promote_returning(
        _promotion("h1", "d", "e", base + 500, base + 9_400, ip="::1", user_agent="")
    )
    assert changed is True and (promoted.last_ip, promoted.last_user_agent) == ("::1", "")
    assert subject.get_session("h1") == promoted


def test_promotion_honours_the_rows_own_refresh_validity(subject: Any) -> None:
    base = now_ms()
    short = make_row("short", hash2="a", created=base)
    short = dataclasses.replace(short, refresh_validity=10_000, persistent=False)
    subject.insert_session(short)
    subject.insert_session(make_row("plain", hash2="a", created=base))
    promotion = _promotion("short", "a", "b", base + 1_000, base + 90_000)
    changed, promoted = subject.promote_returning(promotion)
    assert changed is True
    assert promoted.expires_at == base + 11_000 == promotion.deadline(base, 10_000)
    assert (promoted.refresh_validity, promoted.persistent) == (10_000, False)  # kept across rotation
    # The maximum lifetime caps it further; the asked deadline still caps both.
    changed, promoted = subject.promote_returning(
        _promotion("short", "b", "c", base + 2_000, base + 90_000, max_lifetime=5_000)
    )
    assert changed is True and promoted.expires_at == base + 5_000
    changed, promoted = subject.promote_returning(_promotion("short", "c", "d", base + 3_000, base + 4_000))
    assert changed is True and promoted.expires_at == base + 4_000
    # A row without a lifetime of its own gets the asked deadline.
    changed, promoted = subject.promote_returning(_promotion("plain", "a", "b", base + 1_000, base + 90_000))
    assert changed is True and promoted.expires_at == base + 90_000
    # The store's expiry follows: past the shortened deadline the row is no longer listed.
    assert subject.get_handles_for_user("alice", base + 4_001) == ["plain"]


def test_delete_other_sessions(subject: Any) -> None:
    base = now_ms()
    owners = (("a1", "alice"), ("a2", "alice"), ("a3", "alice"), ("b1", "bob"), ("x", "alice-2"))
    for index, (handle, user) in enumerate(owners):
        subject.insert_session(make_row(handle, user_id=user, created=base + index))
    removed = subject.delete_other_sessions("alice", "a2")
    assert sorted(removed) == ["a1", "a3"] and len(removed) == 2
    assert subject.get_handles_for_user("alice", base) == ["a2"]
    assert subject.delete_other_sessions("alice", "a2") == []
    assert subject.get_handles_for_user("bob", base) == ["b1"]
    assert subject.get_handles_for_user("alice-2", base) == ["x"]
    # ``keep`` only spares a session of this user: naming another user's session (or none)
    # deletes all of this user's sessions and never touches the other user's.
    assert subject.delete_other_sessions("alice", "b1") == ["a2"]
    assert subject.get_session("b1") is not None
    subject.insert_session(make_row("a4", user_id="alice", created=base))
    assert subject.delete_other_sessions("alice", "no-such-handle") == ["a4"]
    assert subject.delete_other_sessions("nobody", "b1") == []
    assert subject.get_handles_for_user("bob", base) == ["b1"]
    # Patterns are names: "a*" spares nothing of "alice-2".
    assert subject.delete_other_sessions("a*", "x") == []
    assert subject.get_handles_for_user("alice-2", base) == ["x"]


def test_delete_other_sessions_races(subject: Any) -> None:
    base = now_ms()
    subject.insert_session(make_row("keep", created=base))
    for index in range(8):
        subject.insert_session(make_row(f"old{index}", created=base + 1 + index))
    new_rows = [make_row(f"new{i}", created=base + 100 + i) for i in range(RACERS // 2)]
    calls: list[tuple[str, tuple[Any, ...]]] = [("insert_session", (row,)) for row in new_rows]
    for position in range(0, len(calls) + 1, 4):
        calls.insert(position, ("delete_other_sessions", ("alice", "keep")))
    results = subject.race(calls)
    assert not [r for r in results if isinstance(r, BaseException)], results[:3]
    reported = [handle for result in results if isinstance(result, list) for handle in result]
    assert len(reported) == len(set(reported))  # each deletion reported by exactly one call
    remaining = subject.get_handles_for_user("alice", base)
    assert "keep" in remaining and "keep" not in reported
    # Every old session is gone; every new one is either deleted (and reported) or kept.
    assert all(f"old{index}" in reported for index in range(8))
    assert sorted(set(reported) | set(remaining)) == sorted(
        ["keep", *(f"old{i}" for i in range(8)), *(row.session_handle for row in new_rows)]
    )
    assert not set(reported) & set(remaining)


def test_get_sessions_for_user_skips_expired(subject: Any) -> None:
    base = now_ms()
    rows = [
        make_row("late", created=base + 30, expires=base + 100_000),
        make_row("early", created=base + 10, expires=base + 50_000),
        _with_metadata(make_row("mid", created=base + 20, expires=base + 70_000)),
    ]
    for row in rows:
        subject.insert_session(row)
    subject.insert_session(make_row("other", user_id="bob", created=base, expires=base + 100_000))
    by_handle = {row.session_handle: row for row in rows}

    def listed(now: int) -> list[SessionRow]:
        return sorted(subject.get_sessions_for_user("alice", now), key=lambda r: r.created_at_time)

    assert listed(base) == [by_handle["early"], by_handle["mid"], by_handle["late"]]
    assert listed(base + 50_000) == [by_handle["early"], by_handle["mid"], by_handle["late"]]  # inclusive
    assert listed(base + 50_001) == [by_handle["mid"], by_handle["late"]]
    assert listed(base + 100_001) == []
    assert subject.get_sessions_for_user("nobody", base) == []
    assert subject.get_sessions_for_user("a*", base) == []
    assert subject.get_session("early") is not None  # listing never deletes


def test_update_auth_time(subject: Any) -> None:
    base = now_ms()
    row = _with_metadata(make_row("h1", created=base))
    subject.insert_session(row)
    assert subject.update_auth_time("h1", base + 7_000) is True
    assert subject.get_session("h1") == dataclasses.replace(
        row, auth_time=base + 7_000, last_active_at=base + 7_000
    )
    plain = make_row("h2", created=base)
    subject.insert_session(plain)
    assert subject.update_auth_time("h2", base + 1) is True
    updated = subject.get_session("h2")
    assert (updated.authenticated_at, updated.active_at) == (base + 1, base + 1)
    assert updated == dataclasses.replace(plain, auth_time=base + 1, last_active_at=base + 1)
    assert subject.update_auth_time("missing", base) is False
    assert subject.get_session("missing") is None  # an update never creates a row


def test_keys_insert_if_absent_load_and_delete(subject: Any) -> None:
    assert subject.load_keys("sig/") == []
    first = StoredKey("sig/0001", "value-1", 1_000)
    assert subject.insert_key_if_absent(first) == first
    assert subject.insert_key_if_absent(StoredKey("sig/0001", "other", 2_000)) == first  # winner kept
    subject.insert_key_if_absent(StoredKey("sig/0002", "value-2 ü", 3_000))
    subject.insert_key_if_absent(StoredKey("sigX0003", "no", 3_000))
    subject.insert_key_if_absent(StoredKey("si", "short", 3_000))
    assert subject.load_keys("sig/") == [first, StoredKey("sig/0002", "value-2 ü", 3_000)]  # by name
    assert [k.name for k in subject.load_keys("")] == ["si", "sig/0001", "sig/0002", "sigX0003"]
    subject.delete_keys([])
    subject.delete_keys(["sig/0001", "missing"])
    assert [k.name for k in subject.load_keys("sig")] == ["sig/0002", "sigX0003"]


def test_load_keys_prefix_is_literal(subject: Any) -> None:
    for name in ("a_b/1", "axb/1", "a%b/1", "a*b/1", "a?b/1", "a[b]/1", "A_b/1"):
        subject.insert_key_if_absent(StoredKey(name, name, 1))
    for prefix in ("a_b/", "a%b/", "a*b/", "a?b/", "a[b]/"):
        assert [k.name for k in subject.load_keys(prefix)] == [prefix + "1"], prefix


def test_insert_key_if_absent_race_converges(subject: Any) -> None:
    for round_ in range(3):
        name = f"race/{round_}"
        proposals = [StoredKey(name, f"value-{i}", 1_000 + i) for i in range(RACERS)]
        results = subject.race([("insert_key_if_absent", (p,)) for p in proposals])
        assert not [r for r in results if isinstance(r, BaseException)], results[:3]
        assert len(set(results)) == 1, "callers saw different winners"
        assert results[0] in proposals
        assert subject.load_keys(name) == [results[0]]


def test_large_values(subject: Any) -> None:
    big = {"blob": "x" * 200_000, "many": list(range(5_000))}
    subject.insert_session(make_row("h-big", data=big))
    assert subject.get_session("h-big").session_data == big
    key = StoredKey("big/1", "k" * 10_000, 5)
    assert subject.insert_key_if_absent(key) == key


def test_store_is_usable_from_many_concurrent_callers(subject: Any) -> None:
    base = now_ms()
    rows = [make_row(f"c{i}", user_id=f"user{i % 3}", created=base + i) for i in range(RACERS)]
    results = subject.race([("insert_session", (row,)) for row in rows])
    assert not [r for r in results if isinstance(r, BaseException)], results[:3]
    reads = subject.race([("get_session", (row.session_handle,)) for row in rows])
    assert reads == rows
    listed = subject.race([("get_handles_for_user", (f"user{i}", base)) for i in range(3)])
    assert sorted(h for handles in listed for h in handles) == sorted(r.session_handle for r in rows)


# =====================================================================================
# Part two: the decision tables through the engine
# =====================================================================================


def committed_child(ward: Any, refresh_token: str) -> tuple[str, str]:
    """Refresh and commit the child by using its access token (V1).

    Returns (child refresh token, replacement access token)."""
    refreshed = ward.refresh_session(refresh_token)
    verified = ward.get_session(refreshed.access_token.value)
    assert verified.new_access_token is not None
    return refreshed.refresh_token.value, verified.new_access_token.value


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock.from_wall_clock()


@pytest.fixture
def ward(make_ward: Callable[..., Any], clock: FakeClock) -> Any:
    return make_ward(clock=clock)


def test_create_stores_one_row_with_hash2_only(ward: Any, subject: Any, clock: FakeClock) -> None:
    tokens = ward.create_new_session("alice", {"p": "ü"}, NASTY_JSON)
    row = subject.get_session(tokens.handle)
    assert row.user_id == "alice"
    assert row.refresh_token_hash_2 == h(h(tokens.refresh_token.value))
    assert tokens.refresh_token.value not in repr(row) and h(tokens.refresh_token.value) not in repr(row)
    assert (row.prev_refresh_token_hash_2, row.rotated_at) == (None, None)
    assert row.created_at_time == clock.ms and row.expires_at == clock.ms + IDLE * 1000
    assert row.session_data == NASTY_JSON and row.jwt_user_payload == {"p": "ü"}
    assert ward.get_session(tokens.access_token.value).jwt_payload == {"p": "ü"}
    assert ward.get_session_data(tokens.handle) == NASTY_JSON


def test_R0_revoked_session_is_unauthorized_and_stays_gone(ward: Any, subject: Any) -> None:
    tokens = ward.create_new_session("alice")
    child = ward.refresh_session(tokens.refresh_token.value)
    assert ward.revoke_session(tokens.handle) is True
    for token in (tokens.refresh_token.value, child.refresh_token.value):
        with pytest.raises(UnauthorizedError):
            ward.refresh_session(token)
    with pytest.raises(UnauthorizedError):
        ward.get_session(child.access_token.value)  # V4
    assert subject.get_session(tokens.handle) is None


def test_R0_undecryptable_token(ward: Any, subject: Any) -> None:
    tokens = ward.create_new_session("alice")
    value = tokens.refresh_token.value
    tampered = value[:-2] + ("A" if value[-2] != "A" else "B") + value[-1]
    for bad in (tampered, "", "x" * 50, tokens.access_token.value):
        with pytest.raises(UnauthorizedError):
            ward.refresh_session(bad)
    assert subject.get_session(tokens.handle) is not None


def test_R1_idle_expiry(ward: Any, clock: FakeClock) -> None:
    tokens = ward.create_new_session("alice")
    clock.advance(IDLE)
    ward.refresh_session(tokens.refresh_token.value)  # exactly at the deadline: alive
    clock.advance(1)
    for _ in range(2):  # never a theft verdict for an expired session
        with pytest.raises(UnauthorizedError):
            ward.refresh_session(tokens.refresh_token.value)


def test_R1_absolute_lifetime(make_ward: Callable[..., Any], clock: FakeClock, subject: Any) -> None:
    ward = make_ward(clock=clock, session_max_lifetime=1000)
    tokens = ward.create_new_session("alice")
    created = clock.ms
    refresh = tokens.refresh_token.value
    for _ in range(4):
        clock.advance(200)
        refresh, _ = committed_child(ward, refresh)
        assert subject.get_session(tokens.handle).expires_at <= created + 1_000_000
    clock.advance(202)
    with pytest.raises(UnauthorizedError):
        ward.refresh_session(refresh)
    with pytest.raises(UnauthorizedError):
        ward.get_session_information(tokens.handle)


def test_R2_current_token_one_successor_nothing_written(
    make_ward: Callable[..., Any], clock: FakeClock, subject: Any
) -> None:
    ward = make_ward(clock=clock, enable_anti_csrf=True)
    tokens = ward.create_new_session("alice", {"role": "a"})
    before = subject.get_session(tokens.handle)
    first = ward.refresh_session(tokens.refresh_token.value)
    clock.advance(GRACE * 3)
    second = ward.refresh_session(tokens.refresh_token.value)
    assert subject.get_session(tokens.handle) == before
    assert first.refresh_token.value == second.refresh_token.value != tokens.refresh_token.value
    assert first.anti_csrf_token == second.anti_csrf_token is not None
    access = claims(second.access_token.value)
    assert access["refreshTokenHash1"] == h(first.refresh_token.value)
    assert access["parentRefreshTokenHash1"] == h(tokens.refresh_token.value)
    assert access["userData"] == {"role": "a"}


def test_R3_first_use_of_child_commits(ward: Any, clock: FakeClock, subject: Any) -> None:
    tokens = ward.create_new_session("alice")
    child = ward.refresh_session(tokens.refresh_token.value)
    clock.advance(5)
    grandchild = ward.refresh_session(child.refresh_token.value)
    row = subject.get_session(tokens.handle)
    assert row.refresh_token_hash_2 == h(h(child.refresh_token.value))
    assert row.prev_refresh_token_hash_2 == h(h(tokens.refresh_token.value))
    assert row.rotated_at == clock.ms
    assert row.expires_at == clock.ms + IDLE * 1000
    assert claims(grandchild.access_token.value)["parentRefreshTokenHash1"] == h(child.refresh_token.value)
    assert ward.refresh_session(child.refresh_token.value).refresh_token == grandchild.refresh_token  # R2
    assert subject.get_session(tokens.handle) == row


def test_R4_grace_window_inclusive_and_anchored_at_commit(
    make_ward: Callable[..., Any], clock: FakeClock, subject: Any
) -> None:
    ward = make_ward(clock=clock, enable_anti_csrf=True)
    tokens = ward.create_new_session("alice")
    child = ward.refresh_session(tokens.refresh_token.value)
    ward.refresh_session(child.refresh_token.value)  # commits the child (R3)
    committed = subject.get_session(tokens.handle)
    clock.advance(GRACE / 2)
    ward.refresh_session(tokens.refresh_token.value)  # R4 inside the window: extends nothing
    clock.advance(GRACE / 2)  # exactly GRACE after the commit: still inside
    recovered = ward.refresh_session(tokens.refresh_token.value)
    assert recovered.refresh_token.value == child.refresh_token.value
    assert recovered.anti_csrf_token == child.anti_csrf_token
    access = claims(recovered.access_token.value)
    assert "parentRefreshTokenHash1" not in access
    assert access["refreshTokenHash1"] == h(child.refresh_token.value)
    assert subject.get_session(tokens.handle) == committed
    assert ward.get_session(recovered.access_token.value).new_access_token is None
    clock.advance(1)  # GRACE + 1 after the commit
    with pytest.raises(TokenTheftDetectedError) as info:
        ward.refresh_session(tokens.refresh_token.value)
    assert (info.value.session_handle, info.value.user_id) == (tokens.handle, "alice")
    assert subject.get_session(tokens.handle) is None


def test_R4_disabled_with_zero_grace(make_ward: Callable[..., Any], clock: FakeClock) -> None:
    ward = make_ward(clock=clock, refresh_token_reuse_grace_period=0)
    tokens = ward.create_new_session("alice")
    child = ward.refresh_session(tokens.refresh_token.value)
    ward.refresh_session(child.refresh_token.value)
    with pytest.raises(TokenTheftDetectedError):
        ward.refresh_session(tokens.refresh_token.value)


def test_R5_older_generation_is_theft_and_revokes(ward: Any, subject: Any) -> None:
    tokens = ward.create_new_session("mallory-victim")
    other = ward.create_new_session("mallory-victim")
    r1, _ = committed_child(ward, tokens.refresh_token.value)
    r2, _ = committed_child(ward, r1)
    with pytest.raises(TokenTheftDetectedError):
        ward.refresh_session(tokens.refresh_token.value)  # two generations back, inside grace
    assert subject.get_session(tokens.handle) is None
    for token in (r1, r2, tokens.refresh_token.value):
        with pytest.raises(UnauthorizedError):
            ward.refresh_session(token)  # gone: no second verdict
    assert ward.get_all_session_handles_for_user("mallory-victim") == [other.handle]


def test_V1_first_use_commits_and_replaces(ward: Any, clock: FakeClock, subject: Any) -> None:
    tokens = ward.create_new_session("alice", {"n": 1})
    refreshed = ward.refresh_session(tokens.refresh_token.value)
    clock.advance(30)
    verified = ward.get_session(refreshed.access_token.value)
    assert verified.new_access_token is not None and verified.front_token is not None
    replacement = claims(verified.new_access_token.value)
    assert "parentRefreshTokenHash1" not in replacement
    assert replacement["exp"] == int(clock.now) + VALIDITY
    row = subject.get_session(tokens.handle)
    assert row.refresh_token_hash_2 == h(h(refreshed.refresh_token.value))
    assert row.prev_refresh_token_hash_2 == h(h(tokens.refresh_token.value))
    assert (row.rotated_at, row.expires_at) == (clock.ms, clock.ms + IDLE * 1000)


def test_V2_already_promoted(ward: Any, clock: FakeClock, subject: Any) -> None:
    tokens = ward.create_new_session("alice")
    refreshed = ward.refresh_session(tokens.refresh_token.value)
    ward.get_session(refreshed.access_token.value)
    row = subject.get_session(tokens.handle)
    clock.advance(3)
    second = ward.get_session(refreshed.access_token.value)
    assert second.new_access_token is not None
    assert claims(second.new_access_token.value)["exp"] == int(clock.now) + VALIDITY
    assert subject.get_session(tokens.handle) == row


def test_V3_session_moved_on(ward: Any, subject: Any) -> None:
    tokens = ward.create_new_session("alice", {"v": "old"})
    child = ward.refresh_session(tokens.refresh_token.value)
    ward.update_jwt_payload(tokens.handle, {"v": "new"})
    committed_child(ward, child.refresh_token.value)
    row = subject.get_session(tokens.handle)
    verified = ward.get_session(child.access_token.value)
    assert (verified.new_access_token, verified.front_token) == (None, None)
    assert verified.jwt_payload == {"v": "old"}
    assert subject.get_session(tokens.handle) == row


def test_V4_row_gone_or_expired(ward: Any, clock: FakeClock) -> None:
    tokens = ward.create_new_session("alice")
    refreshed = ward.refresh_session(tokens.refresh_token.value)
    ward.revoke_session(tokens.handle)
    with pytest.raises(UnauthorizedError):
        ward.get_session(refreshed.access_token.value)
    other = ward.create_new_session("bob")
    clock.advance(IDLE - 30)
    fresh = ward.refresh_session(other.refresh_token.value)  # R2: idle not extended
    clock.advance(31)
    with pytest.raises(UnauthorizedError):
        ward.get_session(fresh.access_token.value)


def test_parallel_refresh_of_uncommitted_child_one_successor(ward: Any, subject: Any) -> None:
    tokens = ward.create_new_session("alice")
    child = ward.refresh_session(tokens.refresh_token.value)
    calls: list[tuple[str, tuple[Any, ...]]] = [("refresh_session", (child.refresh_token.value,))] * RACERS
    calls += [("get_session", (child.access_token.value,))] * RACERS
    results = ward.race(calls)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors[:3]
    refreshed = [r for r in results if isinstance(r, SessionTokens)]
    assert len({r.refresh_token.value for r in refreshed}) == 1
    assert all(r.new_access_token is not None for r in results[RACERS:])
    row = subject.get_session(tokens.handle)
    assert row.refresh_token_hash_2 == h(h(child.refresh_token.value))
    assert row.prev_refresh_token_hash_2 == h(h(tokens.refresh_token.value))


def test_logout_racing_refresh_ends_revoked(ward: Any, subject: Any) -> None:
    for _ in range(5):
        tokens = ward.create_new_session("alice")
        child = ward.refresh_session(tokens.refresh_token.value)
        calls: list[tuple[str, tuple[Any, ...]]] = [("refresh_session", (child.refresh_token.value,))] * 8
        calls.insert(4, ("revoke_session", (tokens.handle,)))
        calls += [("get_session", (child.access_token.value,))] * 4
        results = ward.race(calls)
        assert not [r for r in results if isinstance(r, TokenTheftDetectedError)]
        assert not [r for r in results if isinstance(r, Exception) and not isinstance(r, UnauthorizedError)]
        assert results[4] is True
        assert subject.get_session(tokens.handle) is None
        successors = {r.refresh_token.value for r in results if isinstance(r, SessionTokens)}
        for token in (tokens.refresh_token.value, child.refresh_token.value, *successors):
            with pytest.raises(UnauthorizedError):
                ward.refresh_session(token)
        assert subject.get_session(tokens.handle) is None


def test_revoke_one_many_all_and_listing(ward: Any, clock: FakeClock, subject: Any) -> None:
    a1 = ward.create_new_session("alice").handle
    clock.advance(1)
    a2 = ward.create_new_session("alice").handle
    clock.advance(1)
    a3 = ward.create_new_session("alice").handle
    b1 = ward.create_new_session("bob").handle
    assert ward.get_all_session_handles_for_user("alice") == [a1, a2, a3]
    assert ward.revoke_session(a1) is True
    assert ward.revoke_session(a1) is False
    assert ward.revoke_multiple_sessions([]) == []
    assert ward.revoke_multiple_sessions([a2, a1, "00000000-0000-4000-8000-000000000000", a2]) == [a2]
    assert ward.get_all_session_handles_for_user("alice") == [a3]
    assert ward.revoke_all_sessions_for_user("alice") == [a3]
    assert ward.revoke_all_sessions_for_user("alice") == []
    assert ward.get_all_session_handles_for_user("bob") == [b1]
    assert subject.get_session(b1) is not None


def test_listing_hides_expired_and_sweep_deletes_them(ward: Any, clock: FakeClock, subject: Any) -> None:
    old = [ward.create_new_session("alice").handle for _ in range(3)]
    clock.advance(200)
    young = ward.create_new_session("alice").handle
    assert ward.delete_expired_sessions() == 0
    clock.advance(IDLE - 200 + 1)
    assert ward.get_all_session_handles_for_user("alice") == [young]
    assert ward.delete_expired_sessions() == 3
    assert ward.delete_expired_sessions() == 0
    assert all(subject.get_session(handle) is None for handle in old)
    assert subject.get_session(young) is not None


def test_session_data_payload_and_information(ward: Any, clock: FakeClock) -> None:
    tokens = ward.create_new_session("alice", {"plan": "free"}, {"cart": [1]})
    info = ward.get_session_information(tokens.handle)
    assert (info.user_id, info.session_data, info.jwt_payload) == ("alice", {"cart": [1]}, {"plan": "free"})
    assert (info.created_at, info.expires_at) == (clock.ms, clock.ms + IDLE * 1000)
    ward.update_session_data(tokens.handle, NASTY_JSON)
    assert ward.get_session_data(tokens.handle) == NASTY_JSON
    ward.update_jwt_payload(tokens.handle, {"plan": "pro", "ü": ["ß"]})
    assert ward.get_jwt_payload(tokens.handle) == {"plan": "pro", "ü": ["ß"]}
    refreshed = ward.refresh_session(tokens.refresh_token.value)
    assert claims(refreshed.access_token.value)["userData"] == {"plan": "pro", "ü": ["ß"]}
    ward.revoke_session(tokens.handle)
    for call, args in (
        (ward.get_session_data, (tokens.handle,)),
        (ward.update_session_data, (tokens.handle, {})),
        (ward.get_jwt_payload, (tokens.handle,)),
        (ward.update_jwt_payload, (tokens.handle, {})),
        (ward.get_session_information, (tokens.handle,)),
    ):
        with pytest.raises(UnauthorizedError):
            call(*args)


def test_blacklisting_checks_the_row(make_ward: Callable[..., Any], clock: FakeClock) -> None:
    ward = make_ward(clock=clock, access_token_blacklisting=True)
    tokens = ward.create_new_session("alice")
    other = ward.create_new_session("alice")
    assert ward.get_session(tokens.access_token.value).handle == tokens.handle
    assert ward.get_session(tokens.access_token.value).handle == tokens.handle  # cached, still checked
    ward.revoke_session(tokens.handle)
    with pytest.raises(UnauthorizedError):
        ward.get_session(tokens.access_token.value)
    second = make_ward(clock=clock, access_token_blacklisting=True)
    with pytest.raises(UnauthorizedError):
        second.get_session(tokens.access_token.value)
    assert second.get_session(other.access_token.value).handle == other.handle
    clock.advance(VALIDITY - 1)
    assert ward.get_session(other.access_token.value).handle == other.handle
    second.revoke_all_sessions_for_user("alice")
    with pytest.raises(UnauthorizedError):
        ward.get_session(other.access_token.value)


def test_without_blacklisting_revoked_token_lives_until_expiry(
    make_ward: Callable[..., Any], clock: FakeClock
) -> None:
    # The stateless bound without the change feed (with it, see the change-feed tests).
    ward = make_ward(clock=clock, change_feed=False)
    tokens = ward.create_new_session("alice")
    ward.revoke_session(tokens.handle)
    assert ward.get_session(tokens.access_token.value).handle == tokens.handle
    clock.advance(VALIDITY)
    with pytest.raises(TryRefreshTokenError):
        ward.get_session(tokens.access_token.value)


def test_engines_on_one_store_converge_on_keys(make_ward: Callable[..., Any], clock: FakeClock) -> None:
    wards = [make_ward(clock=clock) for _ in range(4)]
    created = [ward.create_new_session(f"user{i}") for i, ward in enumerate(wards)]
    for ward in wards:
        for tokens in created:
            assert ward.get_session(tokens.access_token.value).handle == tokens.handle
    # A refresh token from one engine rotates in another (one refresh-token key).
    child = wards[1].refresh_session(created[0].refresh_token.value)
    assert wards[2].refresh_session(child.refresh_token.value).handle == created[0].handle
    kid = wards[3].rotate_signing_key()
    fresh = wards[3].create_new_session("rotated")
    header = json.loads(base64.urlsafe_b64decode(fresh.access_token.value.split(".")[0] + "=="))
    assert header["kid"] == kid
    assert wards[0].get_session(fresh.access_token.value).handle == fresh.handle  # learnt on sight


def test_many_sessions_refresh_concurrently_without_interference(ward: Any, subject: Any) -> None:
    sessions = [ward.create_new_session(f"user{i}", {"me": i}, {"mine": i}) for i in range(12)]
    tokens = {s.handle: s.refresh_token.value for s in sessions}
    for _ in range(3):
        results = ward.race([("refresh_session", (tokens[s.handle],)) for s in sessions])
        assert not [r for r in results if isinstance(r, BaseException)], results[:3]
        for session, result in zip(sessions, results, strict=True):
            assert (result.handle, result.user_id, result.jwt_payload) == (
                session.handle,
                session.user_id,
                {"me": int(session.user_id[4:])},
            )
            tokens[session.handle] = result.refresh_token.value
    for session in sessions:
        row = subject.get_session(session.handle)
        assert row.session_data == {"mine": int(session.user_id[4:])}
        assert ward.refresh_session(tokens[session.handle]).handle == session.handle
