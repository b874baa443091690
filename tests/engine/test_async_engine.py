"""``AsyncSessionWard`` mirrors ``SessionWard`` and never blocks the event loop
(docs/design/architecture.md): every store call runs in the store's worker thread, and the loop keeps serving
other tasks while a store call waits on a locked database."""

from __future__ import annotations

import asyncio
import inspect
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from support.clock import FakeClock
from support.stores import RecordingStore

from sessionward import (
    AsyncSessionWard,
    Config,
    SessionInformation,
    SessionTokens,
    SessionWard,
    SessionWardError,
    TokenTheftDetectedError,
    VerifiedSession,
)
from sessionward.stores.sqlite import SQLiteStore
from sessionward.stores.threaded import ThreadedAsyncStore

SYNC_ONLY = {"close"}
ASYNC_ONLY = {"aclose", "get_session_nowait"}
NOT_IO = {"subscribe", "change_feed_state"}  # plain methods on both engines


def config_for(path: Path, **options: Any) -> Config:
    settings: dict[str, Any] = {
        "access_token_algorithm": "HS256",
        "access_token_validity": 60,
        "refresh_token_validity": 600,
        "refresh_token_reuse_grace_period": 10,
        "enable_anti_csrf": True,
    }
    settings.update(options)
    return Config(store=f"sqlite:///{path}", **settings)


def public_methods(cls: type) -> set[str]:
    return {name for name, _ in inspect.getmembers(cls, inspect.isfunction) if not name.startswith("_")}


def test_same_method_names_and_signatures() -> None:
    sync_methods = public_methods(SessionWard) - SYNC_ONLY
    async_methods = public_methods(AsyncSessionWard) - ASYNC_ONLY
    assert sync_methods == async_methods
    expected = {
        "create_new_session", "get_session", "refresh_session", "revoke_session",
        "revoke_multiple_sessions", "revoke_all_sessions_for_user",
        "get_all_session_handles_for_user", "get_session_data", "update_session_data",
        "get_jwt_payload", "update_jwt_payload", "get_session_information",
        "rotate_signing_key", "jwks", "delete_expired_sessions", "revoke_other_sessions",
        "get_all_sessions_for_user", "mark_reauthenticated", "subscribe",
    }  # fmt: skip
    assert expected <= sync_methods
    for name in sorted(NOT_IO):
        assert not inspect.iscoroutinefunction(getattr(AsyncSessionWard, name)), name
        assert inspect.signature(getattr(AsyncSessionWard, name)) == inspect.signature(
            getattr(SessionWard, name)
        )
    for name in sorted(sync_methods - NOT_IO):
        sync_method = getattr(SessionWard, name)
        async_method = getattr(AsyncSessionWard, name)
        assert inspect.iscoroutinefunction(async_method), name
        assert not inspect.iscoroutinefunction(sync_method), name
        sync_params = inspect.signature(sync_method).parameters
        async_params = inspect.signature(async_method).parameters
        assert [(p.name, p.kind, p.default) for p in sync_params.values()] == [
            (p.name, p.kind, p.default) for p in async_params.values()
        ], name
    assert inspect.iscoroutinefunction(AsyncSessionWard.aclose)
    assert inspect.iscoroutinefunction(AsyncSessionWard.__aenter__)
    assert inspect.iscoroutinefunction(AsyncSessionWard.__aexit__)


Call = Callable[..., Awaitable[Any]]


def shape(value: Any) -> Any:
    """What must agree between the engines (tokens and handles are random)."""
    if isinstance(value, SessionTokens):
        return ("tokens", value.user_id, value.jwt_payload, value.anti_csrf_token is not None)
    if isinstance(value, VerifiedSession):
        return ("verified", value.user_id, value.jwt_payload, value.new_access_token is not None)
    if isinstance(value, SessionInformation):
        return (
            "info",
            value.user_id,
            value.session_data,
            value.jwt_payload,
            value.created_at,
            value.expires_at,
        )
    if isinstance(value, dict) and "keys" in value:
        return ("jwks", len(value["keys"]))
    if isinstance(value, list):
        return ("list", len(value))
    if isinstance(value, str):
        return "str"
    return value


async def scenario(call: Call, clock: FakeClock) -> list[Any]:
    """Every engine method, including the error paths, driven through ``call``."""
    log: list[Any] = []

    async def record(name: str, *args: Any) -> Any:
        try:
            result = await call(name, *args)
        except SessionWardError as exc:
            log.append((name, type(exc).__name__))
            return None
        log.append((name, shape(result)))
        return result

    first = await record("create_new_session", "alice", {"p": 1}, {"d": 1})
    second = await record("create_new_session", "alice")
    other = await record("create_new_session", "bob", None, {"d": 2})
    await record("get_session", first.access_token.value, first.anti_csrf_token, True)
    await record("get_session", first.access_token.value, "wrong", True)
    await record("get_session", "not-a-token")
    child = await record("refresh_session", first.refresh_token.value)
    await record("refresh_session", first.refresh_token.value, first.anti_csrf_token)
    await record("get_session", child.access_token.value)  # promotion
    await record("get_session", child.access_token.value)  # already promoted
    await record("refresh_session", "garbage")
    await record("get_session_data", first.handle)
    await record("update_session_data", first.handle, {"d": 3})
    await record("get_session_data", first.handle)
    await record("get_jwt_payload", first.handle)
    await record("update_jwt_payload", first.handle, {"p": 2})
    await record("get_jwt_payload", first.handle)
    await record("refresh_session", child.refresh_token.value)
    await record("get_session_information", first.handle)
    await record("get_session_information", "00000000-0000-4000-8000-000000000000")
    await record("get_all_session_handles_for_user", "alice")
    await record("rotate_signing_key")
    await record("jwks")
    await record("get_session", first.access_token.value)
    clock.now += 11
    await record("refresh_session", first.refresh_token.value)  # theft
    await record("refresh_session", child.refresh_token.value)  # revoked
    await record("revoke_session", second.handle)
    await record("revoke_session", second.handle)
    await record("revoke_multiple_sessions", [second.handle, other.handle])
    third = await record("create_new_session", "carol")
    await record("revoke_all_sessions_for_user", "carol")
    await record("update_session_data", third.handle, {})
    await record("create_new_session", "dave")
    clock.now += 601
    await record("delete_expired_sessions")
    await record("create_new_session", "")
    await record("create_new_session", "erin", {"bad": float("nan")})
    return log


def test_async_engine_behaves_like_the_sync_engine(tmp_path: Path) -> None:
    sync_clock, async_clock = FakeClock(), FakeClock()

    async def run_both() -> tuple[list[Any], list[Any]]:
        with SessionWard(config_for(tmp_path / "sync.db"), clock=sync_clock) as sync_engine:

            async def sync_call(name: str, *args: Any) -> Any:
                return getattr(sync_engine, name)(*args)

            sync_log = await scenario(sync_call, sync_clock)
        async with AsyncSessionWard(config_for(tmp_path / "async.db"), clock=async_clock) as async_engine:

            async def async_call(name: str, *args: Any) -> Any:
                return await getattr(async_engine, name)(*args)

            async_log = await scenario(async_call, async_clock)
        return sync_log, async_log

    sync_log, async_log = asyncio.run(run_both())
    assert async_log == sync_log
    nowait_clock = FakeClock()

    async def run_nowait() -> list[Any]:
        async with AsyncSessionWard(config_for(tmp_path / "nowait.db"), clock=nowait_clock) as engine:
            answered_at_once: list[bool] = []

            async def nowait_call(name: str, *args: Any) -> Any:
                if name != "get_session":
                    return await getattr(engine, name)(*args)
                result = engine.get_session_nowait(*args)
                answered_at_once.append(isinstance(result, VerifiedSession))
                return result if isinstance(result, VerifiedSession) else await result

            log = await scenario(nowait_call, nowait_clock)
            # Not started yet, then a promotion: an awaitable; a cached token: at once.
            assert False in answered_at_once and True in answered_at_once
            return log

    assert asyncio.run(run_nowait()) == sync_log
    # The scenario reaches every error path.
    assert ("get_session", "TryRefreshTokenError") in sync_log
    assert ("refresh_session", "UnauthorizedError") in sync_log
    assert ("refresh_session", "TokenTheftDetectedError") in sync_log
    assert ("create_new_session", "GeneralError") in sync_log
    assert ("delete_expired_sessions", 1) in sync_log


def test_store_calls_run_in_the_worker_thread(tmp_path: Path) -> None:
    recording = RecordingStore(SQLiteStore(f"sqlite:///{tmp_path / 'a.db'}"))
    store = ThreadedAsyncStore(recording)

    async def run() -> str:
        engine = AsyncSessionWard(config_for(tmp_path / "a.db"), store=store)
        tokens = await engine.create_new_session("alice")
        child = await engine.refresh_session(tokens.refresh_token.value)
        await engine.get_session(child.access_token.value)
        await engine.revoke_all_sessions_for_user("alice")
        await engine.aclose()
        await store.close()
        return threading.current_thread().name

    loop_thread = asyncio.run(run())
    # change_listener only starts the listener's own thread (no store I/O).
    threads = {thread.name for name, thread in recording.threads if name != "change_listener"}
    assert threads
    assert all(name.startswith("sessionward-store") for name in threads), threads
    assert loop_thread not in threads


def test_event_loop_keeps_running_while_the_store_waits(tmp_path: Path) -> None:
    """A promotion waits on a database locked by another connection; meanwhile a ticker
    task keeps ticking, so the wait happens off the event loop."""
    path = tmp_path / "locked.db"

    async def run() -> tuple[int, float, bool]:
        async with AsyncSessionWard(config_for(path), store=f"sqlite:///{path}?timeout=5") as engine:
            tokens = await engine.create_new_session("alice")
            child = await engine.refresh_session(tokens.refresh_token.value)
            ticks = 0
            stop = asyncio.Event()

            async def ticker() -> None:
                nonlocal ticks
                while not stop.is_set():
                    await asyncio.sleep(0.01)
                    ticks += 1

            with closing(sqlite3.connect(path, isolation_level=None)) as blocker:
                blocker.execute("BEGIN EXCLUSIVE")
                ticking = asyncio.create_task(ticker())
                promotion = asyncio.create_task(engine.get_session(child.access_token.value))
                started = time.monotonic()
                await asyncio.sleep(0.5)
                assert not promotion.done()  # still waiting for the lock
                ticks_while_blocked = ticks
                blocker.execute("ROLLBACK")
                verified = await promotion
                elapsed = time.monotonic() - started
                stop.set()
                await ticking
            return ticks_while_blocked, elapsed, verified.new_access_token is not None

    ticks, elapsed, promoted = asyncio.run(run())
    assert promoted
    assert elapsed >= 0.5
    assert ticks >= 10, ticks  # ~50 expected; a blocked loop would give 0


def test_many_tasks_interleave_with_a_ticker(tmp_path: Path) -> None:
    async def run() -> tuple[int, int]:
        async with AsyncSessionWard(config_for(tmp_path / "busy.db")) as engine:
            ticks = 0
            stop = asyncio.Event()

            async def ticker() -> None:
                nonlocal ticks
                while not stop.is_set():
                    await asyncio.sleep(0)
                    ticks += 1

            async def user(index: int) -> int:
                tokens = await engine.create_new_session(f"user{index}")
                child = await engine.refresh_session(tokens.refresh_token.value)
                verified = await engine.get_session(child.access_token.value)
                assert verified.new_access_token is not None
                return len(await engine.get_all_session_handles_for_user(f"user{index}"))

            ticking = asyncio.create_task(ticker())
            counts = await asyncio.gather(*(user(i) for i in range(30)))
            stop.set()
            await ticking
            return ticks, sum(counts)

    ticks, total = asyncio.run(run())
    assert total == 30
    assert ticks > 30  # the ticker ran between store calls


def test_engine_survives_several_event_loops(tmp_path: Path) -> None:
    """asyncio.run more than once (CLIs, tests): locks are per loop, the store outlives them."""
    engine = AsyncSessionWard(config_for(tmp_path / "loops.db"))
    tokens = asyncio.run(engine.create_new_session("alice"))
    child = asyncio.run(engine.refresh_session(tokens.refresh_token.value))
    verified = asyncio.run(engine.get_session(child.access_token.value))
    assert verified.new_access_token is not None
    asyncio.run(engine.aclose())


def test_get_session_nowait_answers_at_once_only_without_io(tmp_path: Path) -> None:
    async def run() -> None:
        # No change feed: it could load the other engine's new key before the call below.
        config = config_for(tmp_path / "n.db", change_feed=False)
        async with AsyncSessionWard(config) as engine, AsyncSessionWard(config) as other:
            tokens = await engine.create_new_session("alice")
            token = tokens.access_token.value
            verified = engine.get_session_nowait(token)
            assert isinstance(verified, VerifiedSession) and verified.user_id == "alice"
            for pending in (
                engine.get_session_nowait(token, None, False, True),  # check_database: a read
                engine.get_session_nowait(token, None, False, False, 3600),  # max_auth_age
            ):
                assert not isinstance(pending, VerifiedSession)
                assert (await pending).handle == tokens.handle
            # A token signed by a key this engine has not loaded yet: the awaitable reloads.
            await other.rotate_signing_key()
            foreign = (await other.create_new_session("bob")).access_token.value
            pending = engine.get_session_nowait(foreign)
            assert not isinstance(pending, VerifiedSession)
            assert (await pending).user_id == "bob"
            with pytest.raises(SessionWardError):
                engine.get_session_nowait("not-a-token")  # raised at once

    asyncio.run(run())


def test_async_errors_are_the_sync_errors(tmp_path: Path) -> None:
    clock = FakeClock()

    async def run() -> None:
        async with AsyncSessionWard(config_for(tmp_path / "e.db"), clock=clock) as engine:
            tokens = await engine.create_new_session("alice")
            child = await engine.refresh_session(tokens.refresh_token.value)
            await engine.get_session(child.access_token.value)
            clock.now += 11
            with pytest.raises(TokenTheftDetectedError) as caught:
                await engine.refresh_session(tokens.refresh_token.value)
            assert caught.value.session_handle == tokens.handle
            assert caught.value.user_id == "alice"

    asyncio.run(run())
