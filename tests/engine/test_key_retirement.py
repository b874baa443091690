"""Retiring a signing key (docs/engine.md, "Retiring a key"): ``retire_signing_key`` on every
store with both drivers, other engines dropping the key when the change feed reports it
(``KeyManager.on_store_key_change``), tombstones that keep a retired ``kid`` out for good,
and a sync that read the store before a drop not bringing the key back."""

from __future__ import annotations

import base64
import inspect
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.clock import FakeClock
from support.engines import Driven
from support.waiting import wait_until

from sessionward import GeneralError, TryRefreshTokenError
from sessionward.engine.keyring import KEYS_ROOT, RETIRED_KEY_PREFIX
from sessionward.stores.base import StoredKey
from sessionward.stores.changes import Change
from sessionward.stores.sqlite import SQLiteStore
from sessionward.tokens.access import UnknownKeyId


def kid_of(token: str) -> str:
    segment = token.split(".")[0]
    header: dict[str, Any] = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    return str(header["kid"])


def store_call(engine: Driven, method: str, *args: Any) -> Any:
    """Call a store method of ``engine``'s store (awaited on the test's loop when async)."""
    result = getattr(engine.engine.store, method)(*args)
    if inspect.isawaitable(result):
        assert engine.runner is not None
        return engine.runner.run(result)  # type: ignore[arg-type]
    return result


def entries(engine: Driven) -> dict[str, StoredKey]:
    """Every signing-key entry and tombstone in the store, by name."""
    return {entry.name: entry for entry in store_call(engine, "load_keys", KEYS_ROOT)}


def name_of(engine: Driven, kid: str) -> str:
    return next(
        name
        for name, entry in entries(engine).items()
        if not name.startswith(RETIRED_KEY_PREFIX) and json.loads(entry.value)["kid"] == kid
    )


def refused(engine: Driven, token: str) -> bool:
    try:
        engine.get_session(token)
    except TryRefreshTokenError:
        return True
    return False


def change(kind: str, subject: str) -> Change:
    return Change(1, kind, subject, 0)


def test_retiring_the_signing_key_refuses_its_tokens_here_at_once(make_engine: Callable[..., Driven]) -> None:
    engine = make_engine()
    tokens = engine.create_new_session("alice")
    token = tokens.access_token.value
    assert engine.get_session(token).user_id == "alice"  # now in the verified-token cache
    kid = kid_of(token)
    assert [key.kid for key in engine.signing_keys() if key.signing] == [kid]
    name = name_of(engine, kid)

    assert engine.retire_signing_key(kid) is None

    assert refused(engine, token)  # the cached entry too
    assert refused(engine, token)  # and no reload brings it back
    listed = engine.signing_keys()
    assert kid not in {key.kid for key in listed}
    signer = [key.kid for key in listed if key.signing]
    assert len(signer) == 1 and signer != [kid]  # a new key signs
    stored = entries(engine)
    assert RETIRED_KEY_PREFIX + kid in stored
    assert json.loads(stored[RETIRED_KEY_PREFIX + kid].value)["name"] == name
    assert all(
        json.loads(entry.value)["kid"] != kid
        for n, entry in stored.items()
        if not n.startswith(RETIRED_KEY_PREFIX)
    )
    # Signing continues: a new login, and the refresh of the old session, get the new key.
    fresh = engine.create_new_session("bob")
    assert kid_of(fresh.access_token.value) == signer[0]
    assert engine.get_session(fresh.access_token.value).user_id == "bob"
    refreshed = engine.refresh_session(tokens.refresh_token.value)
    assert kid_of(refreshed.access_token.value) == signer[0]
    assert engine.get_session(refreshed.access_token.value).handle == tokens.handle


def test_retiring_a_key_that_no_longer_signs_keeps_the_signer(make_engine: Callable[..., Driven]) -> None:
    engine = make_engine()
    old = engine.create_new_session("alice").access_token.value
    engine.get_session(old)
    old_kid = kid_of(old)
    new_kid = engine.rotate_signing_key()
    current = engine.create_new_session("bob").access_token.value
    assert kid_of(current) == new_kid
    engine.get_session(current)

    engine.retire_signing_key(old_kid)

    assert refused(engine, old)
    assert engine.get_session(current).user_id == "bob"  # other keys are untouched
    assert [key.kid for key in engine.signing_keys() if key.signing] == [new_kid]
    assert kid_of(engine.create_new_session("carol").access_token.value) == new_kid


def test_unknown_and_already_retired_kids(make_engine: Callable[..., Driven]) -> None:
    engine = make_engine()
    token = engine.create_new_session("alice").access_token.value
    before = entries(engine)
    for bad in ("no-such-kid", "", "x" * 5000):
        with pytest.raises(GeneralError) as raised:
            engine.retire_signing_key(bad)
        assert repr(bad) in str(raised.value) or len(bad) > 256
    with pytest.raises(GeneralError):
        engine.retire_signing_key(None)
    assert entries(engine) == before  # nothing written
    assert engine.get_session(token).user_id == "alice"
    kid = kid_of(token)
    engine.retire_signing_key(kid)
    after = entries(engine)
    engine.retire_signing_key(kid)  # already retired: nothing to do, no error
    assert entries(engine) == after


def test_another_engine_refuses_once_the_feed_reports_the_retirement(
    make_engine: Callable[..., Driven],
) -> None:
    first, second = make_engine(change_feed=False), make_engine(change_feed=False)
    token = first.create_new_session("alice").access_token.value
    assert second.get_session(token).user_id == "alice"  # cached in the second engine
    kid = kid_of(token)
    name = name_of(first, kid)

    first.retire_signing_key(kid)
    assert refused(first, token)
    assert second.get_session(token).user_id == "alice"  # nothing told it yet

    # What its change-feed listener hands it: the tombstone, then the entry's removal.
    second.core.keys.on_store_key_change(change("key_added", RETIRED_KEY_PREFIX + kid))
    assert refused(second, token)
    second.core.keys.on_store_key_change(change("key_removed", name))
    assert refused(second, token)
    # Its next login is signed by the key the store's rules choose: the first engine's new key.
    signer = next(key.kid for key in first.signing_keys() if key.signing)
    assert kid_of(second.create_new_session("bob").access_token.value) == signer
    assert kid not in {key.kid for key in second.signing_keys()}


def test_a_removed_key_is_dropped_on_the_feeds_word_alone(make_engine: Callable[..., Driven]) -> None:
    """``key_removed`` of an entry (an operator's DELETE, no tombstone) drops its kid at once,
    before any reload; the next signing reloads and follows the store."""
    first, second = make_engine(change_feed=False), make_engine(change_feed=False)
    old = first.create_new_session("alice").access_token.value
    new_kid = first.rotate_signing_key()
    current = first.create_new_session("bob").access_token.value
    assert second.get_session(current).user_id == "bob"
    name = name_of(first, new_kid)
    store_call(first, "delete_keys", [name])

    second.core.keys.on_store_key_change(change("key_removed", name))
    assert refused(second, current)
    assert second.get_session(old).user_id == "alice"
    assert kid_of(second.create_new_session("carol").access_token.value) == kid_of(old)


def test_a_key_added_elsewhere_signs_here_after_the_feed_reports_it(
    make_engine: Callable[..., Driven], fake_clock: FakeClock
) -> None:
    """A manual rotation by another engine (or ``sessionward keys rotate``): this engine
    verifies the new key's tokens and its next signing follows the store's rules."""
    first, second = make_engine(change_feed=False), make_engine(change_feed=False)
    second.create_new_session("alice")
    first.rotate_signing_key()
    # The second engine learns that key on first sight: one reload, which uses up its
    # reload interval.
    assert second.get_session(first.create_new_session("bob").access_token.value).user_id == "bob"
    fake_clock.advance(1)  # two manual keys of one instant: either may sign
    new_kid = first.rotate_signing_key()
    signed_there = first.create_new_session("carol").access_token.value
    assert kid_of(signed_there) == new_kid
    assert refused(second, signed_there)  # no second reload within the interval
    second.core.keys.on_store_key_change(change("key_added", name_of(first, new_kid)))
    assert second.get_session(signed_there).user_id == "carol"  # reloaded at once
    assert kid_of(second.create_new_session("dave").access_token.value) == new_kid


def test_a_retired_kid_is_never_learned_again(make_engine: Callable[..., Driven]) -> None:
    first = make_engine()
    token = first.create_new_session("alice").access_token.value
    kid = kid_of(token)
    name = name_of(first, kid)
    entry = entries(first)[name]
    first.retire_signing_key(kid)

    # The key comes back (a restored backup, a retirement interrupted after its tombstone),
    # in place of the key the schedule created under its name.
    store_call(first, "delete_keys", [name])
    store_call(first, "insert_key_if_absent", entry)
    assert entries(first)[name] == entry
    for engine in (first, make_engine()):
        assert refused(engine, token)
        assert kid not in {key.kid for key in engine.signing_keys()}
        assert kid_of(engine.create_new_session("bob").access_token.value) != kid
    # A sync found it next to its tombstone and deleted it (the schedule made a new key
    # under that name).
    stored = entries(first)
    assert json.loads(stored[name].value)["kid"] != kid
    assert RETIRED_KEY_PREFIX + kid in stored


def test_jwks_no_longer_lists_a_retired_key(make_engine: Callable[..., Driven]) -> None:
    first, second = make_engine(access_token_algorithm="ES256"), make_engine(access_token_algorithm="ES256")
    token = first.create_new_session("alice").access_token.value
    kid = kid_of(token)
    assert kid in {jwk["kid"] for jwk in second.jwks()["keys"]}
    first.retire_signing_key(kid)
    for engine in (first, second):
        published = {jwk["kid"] for jwk in engine.jwks()["keys"]}
        assert kid not in published and len(published) >= 2
        assert refused(engine, token)


def test_a_sync_that_read_before_a_drop_does_not_bring_the_key_back(tmp_path: Path) -> None:
    """The race of a reload under way when the feed reports a removal: the reload's (stale)
    read must not reinstate the dropped key; the next signing syncs again."""
    from sessionward import Config, SessionWard

    url = f"sqlite:///{tmp_path / 'race.db'}"
    config = Config(store=url, access_token_algorithm="HS256")
    with SessionWard(config) as first, SessionWard(config) as second:
        token = first.create_new_session("alice").access_token.value
        kid = kid_of(token)
        assert second.get_session(token).user_id == "alice"
        keys = second._core.keys
        sync = keys.sync(second._core.clock())
        request = next(sync)  # the sync has asked for the keys...
        stale = getattr(second.store, request.method)(*request.args)  # ...and read them
        first.retire_signing_key(kid)
        keys.on_store_key_change(change("key_added", RETIRED_KEY_PREFIX + kid))
        result: Any = stale  # the stale read arrives after the drop
        with pytest.raises(StopIteration) as done:
            while True:
                request = sync.send(result)
                result = getattr(second.store, request.method)(*request.args)
        assert kid not in {key.kid for key in done.value.value.verification_keys}
        assert refused(Driven(second, None), token)
        assert keys.stale
        assert kid_of(second.create_new_session("bob").access_token.value) != kid
        assert not keys.stale


def test_a_retired_kid_costs_no_key_reload(tmp_path: Path) -> None:
    from support.stores import RecordingStore

    from sessionward import Config, SessionWard

    url = f"sqlite:///{tmp_path / 'reloads.db'}"
    config = Config(store=url, access_token_algorithm="HS256")
    recording = RecordingStore(SQLiteStore(url))
    with SessionWard(config) as first, SessionWard(config, store=recording) as second:
        try:
            token = first.create_new_session("alice").access_token.value
            first.retire_signing_key(kid_of(token))
            second.get_session(first.create_new_session("bob").access_token.value)
            loads = recording.calls["load_keys"]
            for _ in range(20):
                assert refused(Driven(second, None), token)
            assert recording.calls["load_keys"] == loads
        finally:
            recording.inner.close()


@pytest.mark.parametrize(
    "subject",
    [
        "session-handle",
        "refresh_token_key",
        "access_token_signing_key/ES256/i000000000001",
        RETIRED_KEY_PREFIX,
    ],
)
def test_changes_that_are_not_this_engines_keys_change_nothing(
    make_engine: Callable[..., Driven], subject: str
) -> None:
    engine = make_engine()
    token = engine.create_new_session("alice").access_token.value
    engine.get_session(token)
    keys = engine.core.keys
    state = keys.state
    for kind in ("revoked", "payload", "key_added", "key_updated", "key_removed"):
        keys.on_store_key_change(change(kind, subject))
    assert keys.state is state and not keys.stale
    assert engine.get_session(token).user_id == "alice"


def test_no_verification_that_starts_after_a_drop_accepts_the_key(tmp_path: Path) -> None:
    """Threads verify one token while the feed drops its key: a verification that began
    before the drop may still pass, but none that begins after it, even though one under
    way may put the token into the cache after the drop emptied it."""
    import threading

    from sessionward import Config, SessionWard
    from sessionward.engine.flow import perform

    url = f"sqlite:///{tmp_path / 'threads.db'}"
    with SessionWard(Config(store=url, access_token_algorithm="HS256")) as engine:
        token = engine.create_new_session("alice").access_token.value
        kid = kid_of(token)
        keys = engine._core.keys
        core = engine._core
        late_accepts: list[int] = []
        for round_ in range(60):
            perform(engine.store, keys.sync(core.clock()))  # learn the key again
            core.cache.clear()
            dropped = threading.Event()
            stop = threading.Event()

            def verify(
                round_: int = round_, dropped: threading.Event = dropped, stop: threading.Event = stop
            ) -> None:
                while not stop.is_set():
                    after = dropped.is_set()
                    try:
                        core.verify(token, None, False, None)
                    except (TryRefreshTokenError, UnknownKeyId):
                        continue  # refused (or sent to the driver to reload keys)
                    if after:
                        late_accepts.append(round_)

            workers = [threading.Thread(target=verify) for _ in range(3)]
            for worker in workers:
                worker.start()
            keys.drop(kid)
            dropped.set()
            stop.wait(0.002)
            stop.set()
            for worker in workers:
                worker.join()
        assert late_accepts == []


def test_recheck_rereads_the_keys_at_most_once_per_max_age(make_engine: Callable[..., Driven]) -> None:
    """While the change feed is not live, verification may call ``keys.recheck(max_lag)``:
    a retirement the feed missed is seen within ``max_lag``."""
    import time

    from sessionward.engine.flow import aperform, perform

    first, second = make_engine(change_feed=False), make_engine(change_feed=False)
    token = first.create_new_session("alice").access_token.value
    assert second.get_session(token).user_id == "alice"
    keys = second.core.keys

    def recheck(max_age: float) -> None:
        if second.runner is None:
            perform(second.engine.store, keys.recheck(max_age))
        else:
            second.runner.run(aperform(second.engine.store, keys.recheck(max_age)))

    first.retire_signing_key(kid_of(token))
    recheck(60.0)  # synced just now: nothing read
    assert second.get_session(token).user_id == "alice"
    time.sleep(0.06)
    recheck(0.05)
    assert refused(second, token)


def test_a_retirement_is_on_the_change_feed(make_engine: Callable[..., Driven]) -> None:
    """What other engines' listeners receive: the tombstone's ``key_added``, then the key
    entry's ``key_removed`` (triggers on SQL stores, the scripts on Redis)."""
    engine = make_engine()
    kid = kid_of(engine.create_new_session("alice").access_token.value)
    name = name_of(engine, kid)
    since = store_call(engine, "last_change_seq")
    engine.retire_signing_key(kid)
    logged = [(c.kind, c.subject) for c in store_call(engine, "changes_since", since)]
    tombstone = ("key_added", RETIRED_KEY_PREFIX + kid)
    assert tombstone in logged and ("key_removed", name) in logged
    assert logged.index(tombstone) < logged.index(("key_removed", name))


# -- end to end, through the change feed -------------------------------------------------


def test_a_retirement_reaches_other_engines_through_the_feed(make_engine: Callable[..., Driven]) -> None:
    first, second = make_engine(), make_engine()
    token = first.create_new_session("alice").access_token.value
    other = first.create_new_session("bob").access_token.value
    assert second.get_session(token).user_id == "alice"  # cached there
    wait_until(lambda: second.change_feed_state().live)
    kid = kid_of(token)

    first.retire_signing_key(kid)

    wait_until(lambda: refused(second, token))
    assert refused(second, other)  # every token of that key
    signer = next(key.kid for key in first.signing_keys() if key.signing)
    # Its next login follows the store's rules (the new key), without a clock change.
    assert kid_of(second.create_new_session("carol").access_token.value) == signer
    assert second.change_feed_state().live


def test_a_rotation_elsewhere_signs_here_through_the_feed(
    make_engine: Callable[..., Driven], fake_clock: FakeClock
) -> None:
    first, second = make_engine(), make_engine()
    old_kid = kid_of(second.create_new_session("alice").access_token.value)
    wait_until(lambda: second.change_feed_state().live)
    fake_clock.advance(1)
    new_kid = first.rotate_signing_key()
    signed_there = first.create_new_session("bob").access_token.value
    # The frozen clock never reaches the schedule's next check: only the feed tells it.
    wait_until(lambda: kid_of(second.create_new_session("carol").access_token.value) != old_kid)
    assert kid_of(second.create_new_session("dave").access_token.value) == new_kid
    assert second.get_session(signed_there).user_id == "bob"


def test_cli_rotate_and_retire_in_another_process_reach_a_running_engine(
    make_engine: Callable[..., Driven], store_url: str, driver: str, fake_clock: FakeClock
) -> None:
    import subprocess
    import sys
    import time

    from support.processes import child_environment

    if driver == "async":
        pytest.skip("one driver is enough: the other process is the point")
    engine = make_engine()
    old = engine.create_new_session("alice").access_token.value
    wait_until(lambda: engine.change_feed_state().live)
    env = child_environment({"SESSIONWARD_ACCESS_TOKEN_ALGORITHM": "HS256"})

    def cli(action: str, *kid: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "sessionward", "keys", action, "--store", store_url]
            + (["--", *kid] if kid else []),
            capture_output=True,
            text=True,
            check=False,
            env=env,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    new_kid = cli("rotate").split()[-1]
    # The other process signs from its own wall-clock second; this engine's clock catches up
    # (the schedule's next check is still far: only the feed makes it reload).
    fake_clock.now = max(fake_clock.now, float(int(time.time())) + 1)
    # The engine's next signing choice follows the store's rules: the key that signs from now.
    wait_until(lambda: kid_of(engine.create_new_session("bob").access_token.value) == new_kid)
    assert engine.get_session(engine.create_new_session("carol").access_token.value).user_id == "carol"

    assert engine.get_session(old).user_id == "alice"
    cli("retire", kid_of(old))
    wait_until(lambda: refused(engine, old))
    assert kid_of(engine.create_new_session("dave").access_token.value) == new_kid


def test_a_newer_sync_does_not_let_an_older_one_bring_a_dropped_key_back(tmp_path: Path) -> None:
    """Two reloads overlap a removal (no tombstone: an operator's DELETE): the one that
    started after it finishes first, the one that read before it finishes last."""
    from sessionward import Config, SessionWard
    from sessionward.engine.flow import perform

    url = f"sqlite:///{tmp_path / 'overlap.db'}"
    config = Config(store=url, access_token_algorithm="HS256", change_feed=False)
    with SessionWard(config) as first, SessionWard(config) as second:
        old = first.create_new_session("alice").access_token.value
        first.rotate_signing_key()
        token = first.create_new_session("bob").access_token.value
        kid = kid_of(token)
        assert second.get_session(token).user_id == "bob"
        keys, core = second._core.keys, second._core
        older = keys.sync(core.clock())
        request = next(older)
        stale = getattr(second.store, request.method)(*request.args)  # read before the removal
        name = next(n for n, known in keys._kid_by_name.items() if known == kid)
        first.store.delete_keys([name])
        keys.on_store_key_change(change("key_removed", name))
        perform(second.store, keys.sync(core.clock()))  # the newer reload completes first
        result: Any = stale
        with pytest.raises(StopIteration):
            while True:
                request = older.send(result)
                result = getattr(second.store, request.method)(*request.args)
        assert refused(Driven(second, None), token)
        assert second.get_session(old).user_id == "alice"
        assert kid_of(second.create_new_session("carol").access_token.value) != kid
