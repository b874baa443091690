"""Signing keys seen from one engine: loading them from the store, creating the ones the
schedule requires, reloading on an unknown ``kid`` (single-flight), manual rotation and
the public key set. The schedule itself (which keys must exist, which one signs) is the
pure :class:`~sessionward.engine.keyring.KeySchedule`; this module performs it as flows.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

from ..config import Config
from ..errors import GeneralError
from ..stores.base import Store, StoredKey
from ..tokens.access import AccessTokenCodec
from ..tokens.keys import SigningKey, generate_signing_key
from .cache import VerifiedTokenCache
from .flow import Flow, call
from .keyring import KeySchedule, KeyState
from .types import KeyInfo

__all__ = ["KEY_RELOAD_MIN_INTERVAL", "KeyManager"]

KEY_RELOAD_MIN_INTERVAL = 5.0


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
        self._reload_guard = threading.Lock()
        self._last_reload = -math.inf

    def sync(self, now: float, extra: StoredKey | None = None) -> Flow[KeyState]:
        """Load signing keys, create the ones the schedule requires, drop obsolete ones."""
        stored = yield from call(Store.load_keys, self.schedule.prefix)
        if extra is not None:
            stored.append((yield from call(Store.insert_key_if_absent, extra)))
        names = {entry.name for entry in stored}
        for name, not_before in self.schedule.required(names, now):
            key = generate_signing_key(self.schedule.alg, not_before)
            proposal = StoredKey(name, key.to_stored(), int(now * 1000))
            stored.append((yield from call(Store.insert_key_if_absent, proposal)))
        try:
            state = self.schedule.evaluate(stored, now)
        except LookupError as exc:
            if not isinstance(exc, KeyError):
                raise GeneralError("no stored signing key may sign yet (clock skew?)") from exc
            raise GeneralError("a stored signing key is corrupt") from exc
        except (ValueError, TypeError) as exc:
            raise GeneralError("a stored signing key is corrupt") from exc
        previous = self.state
        self.access_codec.set_keys(state.verification_keys)
        self.state = state
        if previous is not None and {k.kid for k in previous.verification_keys} - {
            k.kid for k in state.verification_keys
        }:
            self.cache.clear()
        if state.obsolete_names:
            yield from call(Store.delete_keys, list(state.obsolete_names))
        return state

    def claim_key_reload(self, kid: str) -> bool:
        """Whether this caller should reload keys for the unknown ``kid`` now.

        At most one reload per :data:`KEY_RELOAD_MIN_INTERVAL` seconds, so a flood of
        tokens with made-up ``kid`` values costs at most one store query per interval.
        """
        with self._reload_guard:
            if self.access_codec.has_kid(kid):
                return False
            now = time.monotonic()
            if now - self._last_reload < KEY_RELOAD_MIN_INTERVAL:
                return False
            self._last_reload = now
            return True

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
