"""The demo's theft simulation: an "attacker" copies the refresh token of a session, the
victim keeps using the session (the token rotates), then the attacker replays the copy.

Nothing is faked: :meth:`StolenTokens.replay` hands the copied token to the engine's
``refresh_session`` and reports what the engine answered. Copies live in memory, one per
session handle, and only for this demo process.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ..engine.aio import AsyncSessionWard
from ..errors import TokenTheftDetectedError, UnauthorizedError

__all__ = ["ReplayVerdict", "StolenTokens"]


@dataclass(frozen=True, slots=True)
class ReplayVerdict:
    """What the engine answered to the replayed refresh token."""

    verdict: str
    """``"token theft detected"``, ``"accepted"`` or ``"unauthorised"``."""
    explanation: str
    session_revoked: bool


def fingerprint(token: str) -> str:
    """A short, non-reversible label of a token, safe to show on a page."""
    return hashlib.sha256(token.encode()).hexdigest()[:12]


class StolenTokens:
    """Refresh tokens copied by the simulated attacker, by session handle."""

    def __init__(self) -> None:
        self._by_handle: dict[str, str] = {}

    def steal(self, handle: str, refresh_token: str) -> str:
        """Keep a copy of ``refresh_token`` for ``handle``; return its fingerprint."""
        self._by_handle[handle] = refresh_token
        return fingerprint(refresh_token)

    def has(self, handle: str) -> bool:
        """Whether a copy is held for ``handle``."""
        return handle in self._by_handle

    async def replay(self, engine: AsyncSessionWard, handle: str) -> ReplayVerdict:
        """Refresh with the copy held for ``handle`` (forgetting it) and report the verdict."""
        token = self._by_handle.pop(handle)
        try:
            await engine.refresh_session(token)
        except TokenTheftDetectedError:
            return ReplayVerdict(
                "token theft detected",
                "The copied refresh token had been rotated away: its reuse can only be a thief "
                "(or a victim holding a stolen copy). The engine revoked the whole session.",
                True,
            )
        except UnauthorizedError as exc:
            return ReplayVerdict("unauthorised", f"The engine refused the copy: {exc}.", False)
        return ReplayVerdict(
            "accepted",
            "The copy was still the current refresh token (or its immediate predecessor within "
            "refresh_token_reuse_grace_period): nothing distinguishes it from the real client yet. "
            "Rotate the session (use it after a refresh) before replaying.",
            False,
        )
