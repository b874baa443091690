"""The verified-token cache of one engine (never global)."""

from __future__ import annotations

from collections import OrderedDict

from .types import VerifiedSession

__all__ = ["VerifiedTokenCache"]


class VerifiedTokenCache:
    """Verified access tokens of one engine, keyed by the exact token string.

    Bounded (oldest entries evicted first); an entry is used only before its token's
    expiry, and the whole cache is emptied whenever a verification key is dropped.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        # token -> (session, valid until, anti-CSRF token, the token's iat in ms)
        self.entries: OrderedDict[str, tuple[VerifiedSession, float, str | None, int]] = OrderedDict()

    def put(
        self,
        token: str,
        session: VerifiedSession,
        valid_until: float,
        csrf: str | None,
        issued_at_ms: int,
        *,
        into: OrderedDict[str, tuple[VerifiedSession, float, str | None, int]] | None = None,
    ) -> None:
        """Remember a verified token until ``valid_until``. ``into``: the dict the
        verification read before decoding the token (default: the current one); when the
        cache was emptied since, the entry goes into that discarded dict, so a token
        verified with a key dropped meanwhile is never cached."""
        if self.capacity <= 0:
            return
        entries = self.entries if into is None else into
        # popitem(last=False) is O(1); deleting the first key of a plain dict is not.
        while len(entries) >= self.capacity:
            try:
                entries.popitem(last=False)
            except KeyError:  # emptied by another thread meanwhile
                break
        entries[token] = (session, valid_until, csrf, issued_at_ms)

    def clear(self) -> None:
        """Forget every entry (a new dict: readers holding the old one are unaffected)."""
        self.entries = OrderedDict()
