"""Signing-key schedule: which keys must exist, which one signs, which may be dropped.

Pure decisions over the stored keys and the time; the engine performs the store calls.

Theory of operation. With dynamic keys, time is cut into intervals of
``access_token_signing_key_update_interval`` seconds. Key ``i`` is stored under a name
derived from ``i`` (so every process computes the same name, and an atomic
insert-if-absent makes concurrent processes converge on one key), may sign from the
start of interval ``i``, and is created during interval ``i - 1``: a key is published a
whole interval before it signs, so every process has seen it before any token it signs
arrives. A manually rotated key signs from the moment it is created. The signing key is
the eligible key with the latest start. A key stops signing when a later key becomes
eligible and keeps verifying until every token it could have signed has expired
(``access_token_validity`` + ``clock_skew_leeway`` + a margin); then it is deleted.

Publishing. The public key set read at a moment holds every key that verifies or will
sign before the end of the next interval; it changes when the next key is created, at
the start of the next interval. :meth:`KeySchedule.jwks_max_age` is how long a copy may
be cached: until then, and never more than :data:`JWKS_MAX_AGE_CAP`. A manual rotation
cannot be foreseen: verifiers fetch the set again when a token names an unknown ``kid``.

Retirement. ``retire_signing_key`` withdraws one key before its time: it writes a
tombstone ``access_token_signing_key/retired/<kid>`` (see :data:`RETIRED_KEY_PREFIX`) and
then deletes the key's entry. Engines load keys and tombstones in one read (every name
under :data:`KEYS_ROOT`), never use a key whose ``kid`` is tombstoned, and delete such an
entry when they find one next to its tombstone (a retirement interrupted between its two
writes, or a key restored from a backup). Tombstones are kept forever: a retired ``kid``
never verifies again. Engines of older versions read only their algorithm's prefix, so the
tombstones are invisible to them (they drop the deleted key all the same).
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass

from ..stores.base import StoredKey
from ..tokens.keys import SigningKey

__all__ = [
    "JWKS_MAX_AGE_CAP",
    "KEYS_ROOT",
    "RETIRED_KEY_PREFIX",
    "KeySchedule",
    "KeyState",
    "retired_kid",
]

KEYS_ROOT = "access_token_signing_key/"
"""The common prefix of every signing-key entry and tombstone in ``key_value`` (the change
feed logs the changes of every name under it)."""
RETIRED_KEY_PREFIX = KEYS_ROOT + "retired/"
"""Tombstones of retired keys: ``RETIRED_KEY_PREFIX + kid``, whose value is a JSON object
``{"kid", "alg", "name", "retired_at"}`` (the key's algorithm and former entry name; when,
in seconds since the epoch)."""

RETIREMENT_MARGIN = 60
JWKS_MAX_AGE_CAP = 3600
"""The longest time, in seconds, a published key set may be cached (static keys, or an
interval that ends later than that)."""


@dataclass(frozen=True, slots=True)
class KeyState:
    """The keys in force at one moment.

    Attributes:
        verification_keys: every key that may still have signed an unexpired token.
        signing_key: the key that signs now.
        obsolete_names: stored entries that no longer verify anything (to delete).
        next_check: when the schedule must be re-evaluated (seconds since the epoch).
    """

    verification_keys: tuple[SigningKey, ...]
    signing_key: SigningKey
    obsolete_names: tuple[str, ...]
    next_check: float


def retired_kid(name: str) -> str | None:
    """The ``kid`` a tombstone entry name retires, or ``None`` if ``name`` is no tombstone."""
    if name.startswith(RETIRED_KEY_PREFIX) and len(name) > len(RETIRED_KEY_PREFIX):
        return name[len(RETIRED_KEY_PREFIX) :]
    return None


class KeySchedule:
    """Key naming and selection for one algorithm and configuration."""

    def __init__(
        self, alg: str, dynamic: bool, interval: int, access_token_validity: int, leeway: int
    ) -> None:
        self.alg = alg
        self.dynamic = dynamic
        self.interval = interval
        self.retention = access_token_validity + leeway + RETIREMENT_MARGIN
        self.prefix = f"access_token_signing_key/{alg}/"

    def required(self, stored_names: set[str], now: float) -> list[tuple[str, int]]:
        """Keys that must exist at ``now`` but are not stored: ``(name, not_before)``."""
        if self.dynamic:
            current = int(now // self.interval)
            wanted = [
                (f"{self.prefix}i{index:012d}", index * self.interval) for index in (current, current + 1)
            ]
        else:
            wanted = [] if stored_names else [(f"{self.prefix}static", 0)]
        return [(name, start) for name, start in wanted if name not in stored_names]

    def next_publication(self, now: float) -> float:
        """When the schedule next creates a key after ``now`` (``math.inf`` with static
        keys): the start of the next interval, when key ``current + 2`` is created."""
        if not self.dynamic:
            return math.inf
        return (now // self.interval + 1) * self.interval

    def jwks_max_age(self, read_at: float, now: float) -> int:
        """Whole seconds from ``now`` that a key set read from the store at ``read_at``
        may be cached: up to the next key's publication, between 0 and
        :data:`JWKS_MAX_AGE_CAP` (``read_at <= now``: the time may pass during the read)."""
        remaining = self.next_publication(read_at) - now
        if remaining >= JWKS_MAX_AGE_CAP:
            return JWKS_MAX_AGE_CAP
        return max(0, math.floor(remaining))

    def manual_key_name(self, now: float) -> str:
        """A unique name for a key created by ``rotate_signing_key`` at ``now``."""
        return f"{self.prefix}m{int(now * 1000):015d}-{secrets.token_hex(4)}"

    def split(self, stored: list[StoredKey]) -> tuple[list[StoredKey], set[str]]:
        """Entries read under :data:`KEYS_ROOT`: those of this algorithm (under
        :attr:`prefix`), and the ``kid`` values of the tombstones. Keys of other
        algorithms are left alone."""
        own = [entry for entry in stored if entry.name.startswith(self.prefix)]
        retired = {kid for entry in stored if (kid := retired_kid(entry.name)) is not None}
        return own, retired

    def parse(self, stored: list[StoredKey]) -> list[tuple[SigningKey, str]]:
        """Load stored entries (raises ``ValueError``, ``KeyError`` or ``TypeError`` on a
        corrupt one): ``(key, entry name)`` pairs."""
        return [(SigningKey.from_stored(entry.value), entry.name) for entry in stored]

    def evaluate(self, parsed: list[tuple[SigningKey, str]], now: float) -> KeyState:
        """Decide the key state from the loaded keys (all under :attr:`prefix`)."""
        entries = sorted(parsed, key=lambda pair: (pair[0].not_before, pair[1]))
        eligible = [pair for pair in entries if pair[0].not_before <= now]
        if not eligible:
            raise LookupError("no signing key is eligible yet")
        verification: list[SigningKey] = []
        obsolete: list[str] = []
        for position, (key, name) in enumerate(entries):
            successor = entries[position + 1][0] if position + 1 < len(entries) else None
            if successor is not None and successor.not_before + self.retention < now:
                obsolete.append(name)
                continue
            verification.append(key)
        next_check = self.next_publication(now)
        upcoming = [key.not_before for key, _ in entries if key.not_before > now]
        if upcoming:
            next_check = min(next_check, min(upcoming))
        return KeyState(tuple(verification), eligible[-1][0], tuple(obsolete), next_check)
