"""Session events (provisional: replaced by the full module of the events work).

Only the names the engine emits, with the fields of the shared design; the full module
adds logging and metrics to :class:`EventBus`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Literal

__all__ = [
    "EventBus",
    "RevocationReason",
    "SessionCreated",
    "SessionEvent",
    "SessionRefreshed",
    "SessionRevoked",
    "SessionUpdated",
    "TokenTheftDetected",
]

logger = logging.getLogger("sessionward.events")


class RevocationReason(str, Enum):  # noqa: UP042 (the shared design names str, Enum)
    """Why a session ended."""

    USER = "user"
    OTHER_DEVICES = "other_devices"
    ADMIN = "admin"
    THEFT = "theft"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class SessionCreated:
    """A session was created."""

    handle: str
    user_id: str | None
    at: int
    persistent: bool
    ip: str | None
    user_agent: str | None


@dataclass(frozen=True, slots=True)
class SessionRefreshed:
    """A session was refreshed."""

    handle: str
    user_id: str | None
    at: int
    promoted: bool
    duration: float


@dataclass(frozen=True, slots=True)
class SessionUpdated:
    """A session's stored state changed."""

    handle: str
    user_id: str | None
    at: int
    field: Literal["jwt_payload", "session_data", "auth_time"]


@dataclass(frozen=True, slots=True)
class SessionRevoked:
    """A session ended."""

    handle: str
    user_id: str | None
    at: int
    reason: RevocationReason


@dataclass(frozen=True, slots=True)
class TokenTheftDetected:
    """A superseded refresh token was replayed."""

    handle: str
    user_id: str | None
    at: int


SessionEvent = SessionCreated | SessionRefreshed | SessionUpdated | SessionRevoked | TokenTheftDetected


class EventBus:
    """Calls subscribers with each event; a failing subscriber is logged, never raised."""

    def __init__(self) -> None:
        self._subscribers: tuple[Callable[[SessionEvent], object], ...] = ()

    def subscribe(self, callback: Callable[[SessionEvent], object]) -> Callable[[], None]:
        """Add ``callback``; return the function that removes it."""
        self._subscribers = (*self._subscribers, callback)

        def unsubscribe() -> None:
            self._subscribers = tuple(s for s in self._subscribers if s is not callback)

        return unsubscribe

    def emit(self, event: SessionEvent) -> None:
        """Hand ``event`` to every subscriber."""
        for callback in self._subscribers:
            try:
                callback(event)
            except Exception:
                logger.exception("event subscriber %r failed", callback)
