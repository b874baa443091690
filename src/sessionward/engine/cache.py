"""The verified-token cache of one engine (never global)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection

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

    def evict_sessions(self, handles: Collection[str]) -> int:
        """Forget every entry of the sessions ``handles`` (another thread may verify
        meanwhile); return how many were dropped."""
        entries = self.entries
        while True:
            try:
                # list() copies in one step: no other thread runs while the C loop does.
                snapshot = list(entries.items())
                break
            except RuntimeError:  # changed by another thread during the copy: copy again
                continue
        doomed = [token for token, entry in snapshot if entry[0].handle in handles]
        for token in doomed:
            entries.pop(token, None)
        return len(doomed)
