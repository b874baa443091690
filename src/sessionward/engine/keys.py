"""Signing keys seen from one engine: loading them from the store, creating the ones the
schedule requires, reloading on an unknown ``kid`` (single-flight), manual rotation,
retirement, reacting to the store's change feed and the public key set. The schedule
itself (which keys must exist, which one signs) is the pure
:class:`~sessionward.engine.keyring.KeySchedule`; this module performs it as flows.

Theory of operation (keys changed elsewhere). The keys in memory (``state``, the codec's
verification keys) change in three ways:

- a key *sync* (a flow: one read of every entry under ``access_token_signing_key/``, then
  the inserts and deletions the schedule asks for) installs what it read;
- :meth:`KeyManager.on_store_key_change`, called by the change-feed listener on its own
  thread, never reads the store: a removed (or rewritten) key's ``kid`` is dropped from
  memory at once and the verified-token cache emptied, so its tokens are refused from the
  next request; any change also marks the keys *stale*, so the next signing syncs first
  and the next token naming an unknown ``kid`` reloads without waiting for the reload
  interval. The reload thus happens on the engine's own thread or event loop, through its
  own (sync or async) store;
- :meth:`KeyManager.retire` (``retire_signing_key``) drops the key here before it deletes
  it from the store.

A sync that read the store before a removal was notified must not bring the removed key
back: every drop gets a generation number, and a sync filters out the keys dropped after
it started (keys dropped before it started are absent from what it read); drops are
remembered for :data:`DROP_MEMORY` seconds. Retired keys
(tombstoned, see :mod:`sessionward.engine.keyring`) are filtered by every sync, forever.
"""

from __future__ import annotations

import dataclasses
import json
import math
import threading
import time
from collections.abc import Callable
from typing import Any

from ..config import Config
from ..errors import GeneralError
from ..stores.base import Store, StoredKey
from ..stores.changes import Change
from ..tokens.access import AccessTokenCodec
from ..tokens.keys import SigningKey, generate_signing_key
from .cache import VerifiedTokenCache
from .flow import Flow, call
from .keyring import KEYS_ROOT, RETIRED_KEY_PREFIX, KeySchedule, KeyState, retired_kid
from .types import KeyInfo

__all__ = ["KEY_RELOAD_MIN_INTERVAL", "KeyManager"]

KEY_RELOAD_MIN_INTERVAL = 5.0
DROP_MEMORY = 600.0
"""Seconds a dropped ``kid`` is remembered, to filter it out of syncs that read the store
before the drop (far longer than any store read may take)."""
MAX_KID_LENGTH = 256


class KeyManager:
    """The signing and verification keys of one engine.

    Keeps the access-token codec's verification keys in step with the store and empties
    the engine's verified-token cache whenever a verification key is dropped.
    """

    def __init__(
        self,
        config: Config,
        clock: Callable[[], float],
        access_codec: AccessTokenCodec,
        cache: VerifiedTokenCache,
    ) -> None:
        self.clock = clock
        self.access_codec = access_codec
        self.cache = cache
        self.schedule = KeySchedule(
            config.access_token_algorithm,
            config.access_token_signing_key_dynamic,
            config.access_token_signing_key_update_interval,
            config.access_token_validity,
            config.clock_skew_leeway,
        )
        self.state: KeyState | None = None
        self.retired: set[str] = set()
        """Every retired ``kid`` this engine has seen a tombstone of (or retired itself)."""
        self.stale = False
        """The store's keys changed since the last sync (set by the change feed)."""
        self._kid_by_name: dict[str, str] = {}
        # kid -> (generation of its drop, time.monotonic() of it); kept DROP_MEMORY seconds
        self._dropped: dict[str, tuple[int, float]] = {}
        self._generation = 0
        self._lock = threading.Lock()
        self._reload_guard = threading.Lock()
        self._last_reload = -math.inf
        self._checked_at = -math.inf  # time.monotonic() of the last sync (or claim of one)

    def sync(self, now: float, extra: StoredKey | None = None) -> Flow[KeyState]:
        """Load signing keys, create the ones the schedule requires, drop obsolete ones."""
        generation = self._generation
        own, tombstones = self.schedule.split((yield from call(Store.load_keys, KEYS_ROOT)))
        with self._lock:
            self.retired |= tombstones
            retired = set(self.retired)
        try:
            parsed = self.schedule.parse(own)
            if extra is not None:
                parsed += self.schedule.parse([(yield from call(Store.insert_key_if_absent, extra))])
            # A key stored next to its own tombstone: a retirement interrupted between its
            # two writes (or a restored backup). Finish it.
            doomed = [name for key, name in parsed if key.kid in tombstones]
            parsed = [(key, name) for key, name in parsed if key.kid not in retired]
            names = {name for _, name in parsed}
            for name, not_before in self.schedule.required(names, now):
                key = generate_signing_key(self.schedule.alg, not_before)
                proposal = StoredKey(name, key.to_stored(), int(now * 1000))
                stored = yield from call(Store.insert_key_if_absent, proposal)
                parsed += [pair for pair in self.schedule.parse([stored]) if pair[0].kid not in retired]
            state = self.schedule.evaluate(parsed, now)
        except LookupError as exc:
            if not isinstance(exc, KeyError):
                raise GeneralError("no stored signing key may sign yet (clock skew?)") from exc
            raise GeneralError("a stored signing key is corrupt") from exc
        except (ValueError, TypeError) as exc:
            raise GeneralError("a stored signing key is corrupt") from exc
        state = self._install(state, parsed, generation)
        obsolete = [*state.obsolete_names, *doomed]
        if obsolete:
            yield from call(Store.delete_keys, obsolete)
        return state

    def _install(self, state: KeyState, parsed: list[tuple[SigningKey, str]], generation: int) -> KeyState:
        """Make ``state`` (read at ``generation``) the keys in force, minus the keys dropped
        since that generation."""
        with self._lock:
            late = {kid for kid, (at, _) in self._dropped.items() if at > generation}
            if late:
                keys = tuple(key for key in state.verification_keys if key.kid not in late)
                state = dataclasses.replace(state, verification_keys=keys)
            if self._generation == generation:
                self.stale = False
            else:  # the store changed while we read it: the next signing syncs again
                state = dataclasses.replace(state, next_check=-math.inf)
            self._checked_at = max(self._checked_at, time.monotonic())
            previous = self.state
            self.access_codec.set_keys(state.verification_keys)
            self.state = state
            self._kid_by_name = {name: key.kid for key, name in parsed}
            if previous is not None and {k.kid for k in previous.verification_keys} - {
                k.kid for k in state.verification_keys
            }:
                self.cache.clear()  # after set_keys: see drop()
        return state

    def drop(self, kid: str) -> None:
        """Stop verifying (and signing with) ``kid`` in this engine at once, without a store
        read: its tokens are refused from the next verification, cached ones included. A
        sync already under way cannot bring it back; a later sync re-learns it if the
        store still holds it (and it is not retired)."""
        with self._lock:
            self._generation += 1
            now = time.monotonic()
            if self._dropped:  # forget drops no sync under way can predate
                self._dropped = {k: v for k, v in self._dropped.items() if now - v[1] < DROP_MEMORY}
            self._dropped[kid] = (self._generation, now)
            self.stale = True
            state = self.state
            if state is None or not any(key.kid == kid for key in state.verification_keys):
                return
            keys = tuple(key for key in state.verification_keys if key.kid != kid)
            # The codec first, the cache second: a verification that read the old cache
            # puts its entry into that discarded dict; one that reads the new cache
            # decodes with the new keys.
            self.access_codec.set_keys(keys)
            self.cache.clear()
            next_check = -math.inf if state.signing_key.kid == kid else state.next_check
            self.state = dataclasses.replace(state, verification_keys=keys, next_check=next_check)

    def mark_stale(self) -> None:
        """The store's keys may have changed (a key-feed reconnection, say): sync before the
        next signing, and let the next unknown ``kid`` reload at once."""
        with self._lock:
            self._generation += 1
            self.stale = True
            state = self.state
            if state is not None:
                self.state = dataclasses.replace(state, next_check=-math.inf)

    def on_store_key_change(self, change: Change) -> None:
        """React to one change of the store's change feed (called on the listener's thread;
        never reads the store, never raises for a well-formed change).

        ``key_removed`` / ``key_updated`` of a key of this engine's algorithm drop its
        ``kid`` at once (:meth:`drop`); a tombstone (``key_added`` of
        ``access_token_signing_key/retired/<kid>``) drops and retires ``kid``. Every key
        change also marks the keys stale (:meth:`mark_stale`), so the engine reloads them
        on its own thread or loop: the next signing syncs, and a token naming a new
        ``kid`` reloads at once (``key_added`` of a key this engine wrote itself is
        skipped). Other kinds of change are ignored.
        """
        kind, name = change.kind, change.subject
        if not kind.startswith("key_") or not name.startswith(KEYS_ROOT):
            return
        kid = retired_kid(name)
        if kid is not None:
            if kind == "key_added":
                with self._lock:
                    self.retired.add(kid)
                self.drop(kid)
            return
        if not name.startswith(self.schedule.prefix):
            return  # a key of another algorithm
        known = self._kid_by_name.get(name)
        if kind == "key_added" and known is not None:
            return  # our own insert (or one a sync of ours has read already)
        if kind != "key_added" and known is not None:
            self.drop(known)
        self.mark_stale()

    def claim_key_reload(self, kid: str) -> bool:
        """Whether this caller should reload keys for the unknown ``kid`` now.

        At most one reload per :data:`KEY_RELOAD_MIN_INTERVAL` seconds, so a flood of
        tokens with made-up ``kid`` values costs at most one store query per interval,
        except right after the change feed reported a key change (the keys are stale):
        then the first caller reloads at once. A retired ``kid`` never causes a reload.
        """
        with self._reload_guard:
            if self.access_codec.has_kid(kid) or kid in self.retired:
                return False
            now = time.monotonic()
            if not self.stale and now - self._last_reload < KEY_RELOAD_MIN_INTERVAL:
                return False
            self._last_reload = now
            return True

    def recheck(self, max_age: float) -> Flow[None]:
        """Sync the keys if the last sync is older than ``max_age`` seconds (one caller
        at a time does it; the others go on with the keys in memory).

        For verification while the change feed is not live: the feed may have missed a
        retirement, so the keys are re-read at most once per ``max_age`` instead.
        """
        with self._reload_guard:
            now = time.monotonic()
            if now - self._checked_at < max_age:
                return
            self._checked_at = now
        yield from self.sync(self.clock())

    def reload_for(self, kid: str) -> Flow[None]:
        """After :class:`UnknownKeyId`: reload the keys, unless another caller did so within
        the last :data:`KEY_RELOAD_MIN_INTERVAL` seconds (drivers serialise callers)."""
        if self.claim_key_reload(kid):
            yield from self.sync(self.clock())

    def rotate(self) -> Flow[str]:
        """Create a key that signs at once in this engine; return its ``kid``."""
        now = self.clock()
        key = generate_signing_key(self.schedule.alg, int(now))
        entry = StoredKey(self.schedule.manual_key_name(now), key.to_stored(), int(now * 1000))
        yield from self.sync(now, extra=entry)
        return key.kid

    def retire(self, kid: str) -> Flow[None]:
        """Withdraw the key ``kid`` for good (``retire_signing_key``): ``GeneralError``
        naming it when the store holds no key of this engine's algorithm with that ``kid``;
        nothing to do when it is retired already.

        If it signs now, a new key is created first (as :meth:`rotate` does), so signing
        continues. Then the tombstone is written, the key is dropped here
        (:meth:`drop`: its tokens are refused from the next verification, cached ones
        included) and its entry deleted: the change feed tells the other engines (the
        tombstone's ``key_added``, then the entry's ``key_removed``). Keys are synced last,
        so the schedule recreates a key it requires in place of the retired one (with a
        new ``kid``).
        """
        if type(kid) is not str or not kid or len(kid) > MAX_KID_LENGTH:
            raise GeneralError(f"no signing key with kid {kid!r}")
        now = self.clock()
        state = yield from self.sync(now)
        if kid in self.retired:
            self.drop(kid)
            return
        names = [name for name, known in self._kid_by_name.items() if known == kid]
        if not names:
            raise GeneralError(
                f"no signing key with kid {kid!r} (algorithm {self.schedule.alg}) in the store"
            )
        if state.signing_key.kid == kid:
            key = generate_signing_key(self.schedule.alg, int(now))
            entry = StoredKey(self.schedule.manual_key_name(now), key.to_stored(), int(now * 1000))
            yield from self.sync(now, extra=entry)
        tombstone = json.dumps(
            {"kid": kid, "alg": self.schedule.alg, "name": names[0], "retired_at": int(now)},
            separators=(",", ":"),
        )
        marker = StoredKey(RETIRED_KEY_PREFIX + kid, tombstone, int(now * 1000))
        yield from call(Store.insert_key_if_absent, marker)
        with self._lock:
            self.retired.add(kid)
        self.drop(kid)
        yield from call(Store.delete_keys, names)
        yield from self.sync(self.clock())

    def jwks(self) -> Flow[dict[str, Any]]:
        """The public verification keys as an RFC 7517 key set (empty under HS256)."""
        state = yield from self.sync(self.clock())
        return _key_set(state)

    def jwks_with_max_age(self) -> Flow[tuple[dict[str, Any], int]]:
        """The key set after a fresh sync, and how many seconds it may be cached
        (:meth:`~sessionward.engine.keyring.KeySchedule.jwks_max_age`)."""
        read_at = self.clock()
        state = yield from self.sync(read_at)
        return _key_set(state), self.schedule.jwks_max_age(read_at, self.clock())

    def signing_keys(self) -> Flow[list[KeyInfo]]:
        """The verification keys in force, oldest first, after a fresh key sync."""
        state = yield from self.sync(self.clock())
        return [
            KeyInfo(key.kid, key.alg, key.not_before, key is state.signing_key)
            for key in state.verification_keys
        ]

    def signing_key(self, now: float) -> Flow[SigningKey]:
        """The key that signs at ``now``, after a store sync when the schedule says so."""
        state = self.state
        if state is None or now >= state.next_check:
            state = yield from self.sync(now)
        return state.signing_key

    def minting_key(self) -> Flow[tuple[SigningKey, float]]:
        """The signing key and the time to mint with: a clock read after every store call
        that precedes the minting, so a token never starts its life already aged by a wait."""
        key = yield from self.signing_key(self.clock())
        return key, self.clock()


def _key_set(state: KeyState) -> dict[str, Any]:
    keys = [jwk for key in state.verification_keys if (jwk := key.public_jwk()) is not None]
    return {"keys": keys}
