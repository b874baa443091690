"""Session events: what happened to a session, told to the log, to metrics and to subscribers.

The engine emits one event after each store write that changes a session succeeded: a
session was created (:class:`SessionCreated`), refreshed (:class:`SessionRefreshed`), had its
JWT payload, session data or authentication time updated (:class:`SessionUpdated`), was
revoked (:class:`SessionRevoked`, with a :class:`RevocationReason`), or a stolen refresh
token was used (:class:`TokenTheftDetected`). Events are small frozen values: a session
handle, the user id, the time and a few facts. They never carry a token.

:class:`EventBus` delivers them. ``emit(event)``:

1. logs the event on the logger ``"sessionward.events"`` (``INFO``; ``WARNING`` for token
   theft) with structured fields in ``extra=`` (``sessionward_event``, ``session_handle``,
   ``user_id``, ``reason``...);
2. records OpenTelemetry metrics when the ``opentelemetry`` package is importable
   (:mod:`sessionward.metrics`; nothing is imported, and nothing is paid, when it is not);
3. calls each subscriber, synchronously, in the order they subscribed. A subscriber that
   raises is logged with ``logger.exception`` and skipped: the exception never reaches the
   request, and the other subscribers still run.

Subscribers run inline, on the thread (or event loop) that served the request, also under
:class:`~sessionward.AsyncSessionWard`: a subscriber that does slow work (a network call, a
database write) should hand it to a queue or a thread and return at once.

Subscribing and unsubscribing are thread-safe and may happen while events are emitted: the
subscriber list is an immutable tuple replaced as a whole (copy on write), so an emit in
progress calls the subscribers it started with.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal, TypeAlias

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider

    from .metrics import SessionMetrics

__all__ = [
    "EventBus",
    "RevocationReason",
    "SessionCreated",
    "SessionEvent",
    "SessionRefreshed",
    "SessionRevoked",
    "SessionUpdated",
    "Subscriber",
    "TokenTheftDetected",
    "UpdatedField",
]

logger = logging.getLogger("sessionward.events")


class RevocationReason(StrEnum):
    """Why a session was revoked (:attr:`SessionRevoked.reason`); a ``str`` equal to its value."""

    #: The user signed out (``revoke_session`` on the engine, ``Session.revoke_session``).
    USER = "user"
    #: The user signed out their other devices (``revoke_other_sessions``).
    OTHER_DEVICES = "other_devices"
    #: Revoked by the application or an operator: ``revoke_all_sessions_for_user``,
    #: ``revoke_multiple_sessions``, ``sessionward sessions revoke``.
    ADMIN = "admin"
    #: A stolen refresh token was used; the session was ended to protect its owner.
    THEFT = "theft"
    #: The session outlived its lifetime and was swept (``delete_expired_sessions``).
    EXPIRED = "expired"


#: The part of a session that :class:`SessionUpdated` reports as changed.
UpdatedField: TypeAlias = Literal["jwt_payload", "session_data", "auth_time"]


@dataclass(frozen=True, slots=True)
class SessionCreated:
    """A session was created and stored."""

    kind: ClassVar[str] = "session_created"

    #: The session handle (public: it names the session, it is no credential).
    handle: str
    #: The session's user id.
    user_id: str | None
    #: When, in milliseconds since the epoch.
    at: int
    #: ``False`` for a session that ends with the browser (cookies without an expiry).
    persistent: bool
    #: The client's IP address, as the framework adapter determined it, if known.
    ip: str | None
    #: The client's ``User-Agent`` (at most 512 characters), if known.
    user_agent: str | None


@dataclass(frozen=True, slots=True)
class SessionRefreshed:
    """A session's tokens were renewed: a refresh, or a promotion committing a rotation."""

    kind: ClassVar[str] = "session_refreshed"

    handle: str
    user_id: str | None
    at: int
    #: ``True`` when the store write was a promotion: the first use of a refreshed token
    #: committing the rotation of the refresh token.
    promoted: bool
    #: Seconds the engine spent on it, store round trips included.
    duration: float


@dataclass(frozen=True, slots=True)
class SessionUpdated:
    """Part of a stored session changed: its JWT payload, its session data or its
    authentication time (a re-authentication)."""

    kind: ClassVar[str] = "session_updated"

    handle: str
    user_id: str | None
    at: int
    #: What changed: ``"jwt_payload"``, ``"session_data"`` or ``"auth_time"``.
    field: UpdatedField


@dataclass(frozen=True, slots=True)
class SessionRevoked:
    """A session was deleted from the store; its refresh token no longer works."""

    kind: ClassVar[str] = "session_revoked"

    handle: str
    user_id: str | None
    at: int
    #: Why.
    reason: RevocationReason


@dataclass(frozen=True, slots=True)
class TokenTheftDetected:
    """A refresh token that had already been rotated was presented again: someone other
    than the session's current holder has (had) it. The session is revoked as well
    (:class:`SessionRevoked` with :attr:`RevocationReason.THEFT`)."""

    kind: ClassVar[str] = "token_theft_detected"

    handle: str
    user_id: str | None
    at: int


#: Any session event.
SessionEvent: TypeAlias = (
    SessionCreated | SessionRefreshed | SessionUpdated | SessionRevoked | TokenTheftDetected
)

#: A subscriber: called with each event; what it returns is ignored.
Subscriber: TypeAlias = Callable[[SessionEvent], object]


class _Unresolved:
    """Marks metrics not yet looked for (the first emit looks)."""


_UNRESOLVED: Final = _Unresolved()


class EventBus:
    """Delivers session events: to the log, to OpenTelemetry metrics, to subscribers.

    ``subscribers`` are subscribed in order (for example those of
    ``Config.event_subscribers``). With ``metrics=True`` (the default) each event is recorded
    by :class:`sessionward.metrics.SessionMetrics` when ``opentelemetry`` is importable,
    through ``meter_provider`` or else the global one
    (``opentelemetry.metrics.set_meter_provider``); the instruments are created on the first
    emit. ``metrics=False`` records nothing.
    """

    __slots__ = ("_lock", "_meter_provider", "_metrics", "_subscribers")

    def __init__(
        self,
        subscribers: Iterable[Subscriber] = (),
        *,
        metrics: bool = True,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._subscribers: tuple[Subscriber, ...] = tuple(subscribers)
        self._meter_provider = meter_provider
        self._metrics: SessionMetrics | _Unresolved | None = _UNRESOLVED if metrics else None

    @property
    def subscribers(self) -> tuple[Subscriber, ...]:
        """The current subscribers, in the order they are called."""
        return self._subscribers

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Call ``subscriber(event)`` for every event from now on; returns the function that
        unsubscribes it.

        Subscribing the same callable twice calls it twice; each returned function removes one
        subscription, and calling it again does nothing.
        """
        if not callable(subscriber):
            raise TypeError(f"subscriber must be callable; got {subscriber!r}")
        with self._lock:
            self._subscribers = (*self._subscribers, subscriber)
        done = False

        def unsubscribe() -> None:
            nonlocal done
            with self._lock:
                if done:
                    return
                done = True
                current = self._subscribers
                for index, candidate in enumerate(current):
                    if candidate is subscriber:
                        self._subscribers = current[:index] + current[index + 1 :]
                        return

        return unsubscribe

    def emit(self, event: SessionEvent) -> None:
        """Log ``event``, record its metrics, then call every subscriber with it.

        Never raises because of a subscriber or of metrics: their exceptions are logged.
        """
        level = logging.WARNING if type(event) is TokenTheftDetected else logging.INFO
        if logger.isEnabledFor(level):
            _log(level, event)
        metrics = self._metrics
        if metrics is not None:
            if isinstance(metrics, _Unresolved):
                metrics = self._resolve_metrics(event)
            if metrics is not None:
                try:
                    metrics.record(event)
                except Exception:
                    logger.exception(
                        "recording the metrics of a %s event failed", event.kind, extra=_fields(event)
                    )
        for subscriber in self._subscribers:
            try:
                subscriber(event)
            except Exception:
                logger.exception(
                    "event subscriber %s raised on a %s event (session %s); ignored",
                    _describe(subscriber),
                    event.kind,
                    event.handle,
                    extra={**_fields(event), "subscriber": _describe(subscriber)},
                )

    def emit_created(
        self,
        handle: str,
        user_id: str | None,
        at: int,
        persistent: bool,
        ip: str | None,
        user_agent: str | None,
    ) -> None:
        """``emit(SessionCreated(handle, user_id, at, persistent, ip, user_agent))``, the
        event built only when something reads it (a subscriber, the log at ``INFO``, the
        first look for metrics, a metrics failure to log): on every login, the metrics
        alone need nothing but ``persistent``."""
        if self._subscribers or logger.isEnabledFor(logging.INFO):
            self.emit(SessionCreated(handle, user_id, at, persistent, ip, user_agent))
            return
        metrics = self._metrics
        if metrics is None:
            return
        if isinstance(metrics, _Unresolved):
            self.emit(SessionCreated(handle, user_id, at, persistent, ip, user_agent))
            return
        try:
            metrics.record_created(persistent)
        except Exception:
            event = SessionCreated(handle, user_id, at, persistent, ip, user_agent)
            logger.exception("recording the metrics of a %s event failed", event.kind, extra=_fields(event))

    def _resolve_metrics(self, event: SessionEvent) -> SessionMetrics | None:
        # The first emit looks for opentelemetry, once: without it, emit never looks again.
        with self._lock:
            current = self._metrics
            if not isinstance(current, _Unresolved):
                return current
            found: SessionMetrics | None = None
            try:
                from .metrics import metrics_for
            except ImportError:
                pass
            else:
                try:
                    found = metrics_for(self._meter_provider)
                except Exception:
                    logger.exception(
                        "the OpenTelemetry instruments could not be created; metrics are off",
                        extra=_fields(event),
                    )
            self._metrics = found
            return found


def _fields(event: SessionEvent) -> dict[str, Any]:
    # On every record of the logger, so that a format may name them.
    return {"sessionward_event": event.kind, "session_handle": event.handle, "user_id": event.user_id}


def _log(level: int, event: SessionEvent) -> None:
    fields = _fields(event)
    if isinstance(event, SessionRefreshed):
        fields["promoted"] = event.promoted
        fields["duration"] = event.duration
        message = "session %s of user %s %s in %.1f ms"
        args: tuple[object, ...] = (
            event.handle,
            event.user_id,
            "promoted" if event.promoted else "refreshed",
            event.duration * 1000,
        )
    elif isinstance(event, SessionCreated):
        fields["persistent"] = event.persistent
        fields["ip"] = event.ip
        fields["user_agent"] = event.user_agent
        message = "session %s created for user %s (%s, ip %s)"
        args = (
            event.handle,
            event.user_id,
            "persistent" if event.persistent else "until the browser closes",
            event.ip or "unknown",
        )
    elif isinstance(event, SessionUpdated):
        fields["field"] = event.field
        message = "session %s of user %s: %s updated"
        args = (event.handle, event.user_id, event.field)
    elif isinstance(event, SessionRevoked):
        fields["reason"] = event.reason.value
        message = "session %s of user %s revoked (reason: %s)"
        args = (event.handle, event.user_id, event.reason.value)
    else:
        fields["reason"] = RevocationReason.THEFT.value
        message = "refresh token theft detected on session %s of user %s; the session is revoked"
        args = (event.handle, event.user_id)
    logger.log(level, message, *args, extra=fields)


def _describe(subscriber: object) -> str:
    module = getattr(subscriber, "__module__", None)
    name = getattr(subscriber, "__qualname__", None)
    if module and name:
        return f"{module}.{name}"
    return repr(subscriber)
