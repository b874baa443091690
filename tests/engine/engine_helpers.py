"""Helpers shared by the engine tests: a fake clock, a counting store proxy, token peeks."""

from __future__ import annotations

import base64
import hashlib
import json
from collections import Counter
from typing import Any

from sessionward.stores.sqlite import SQLiteStore

T0 = 1_700_000_000.0


def h(value: str) -> str:
    """Hex SHA-256, as the engine hashes tokens."""
    return hashlib.sha256(value.encode()).hexdigest()


def claims(token: str) -> dict[str, Any]:
    """The (unverified) claims of an access token."""
    segment = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    return decoded


class FakeClock:
    """A clock the test moves by hand (seconds since the epoch)."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class CountingStore:
    """Delegates to a real store and counts the calls made to it."""

    def __init__(self, inner: SQLiteStore) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return attribute(*args, **kwargs)

        return call
