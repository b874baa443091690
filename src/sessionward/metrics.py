"""OpenTelemetry metrics of session events (extra ``sessionward[otel]``).

:class:`~sessionward.events.EventBus` records every event it emits through
:class:`SessionMetrics` when the ``opentelemetry`` package (the API) is importable. The
instruments come from ``opentelemetry.metrics.get_meter("sessionward", version)``, created
on the first event:

========================================  =========  ==========  =================================
instrument                                kind       unit        attributes
========================================  =========  ==========  =================================
``sessionward.sessions.created``          counter    {session}   ``persistent``
``sessionward.sessions.refreshed``        counter    {session}   ``promoted``
``sessionward.sessions.updated``          counter    {session}   ``field``
``sessionward.sessions.revoked``          counter    {session}   ``reason``
``sessionward.token_theft.detected``      counter    {session}
``sessionward.refresh.duration``          histogram  s           ``promoted``
========================================  =========  ==========  =================================

No attribute names a user, a session or a client: the series stay few. The OpenTelemetry
API records nothing until the application installs an SDK ``MeterProvider`` (with an
exporter such as Prometheus); see docs/metrics.md.

Importing this module imports ``opentelemetry`` (``ImportError`` without it); ``import
sessionward`` never does.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry import metrics as otel_metrics

from .events import (
    RevocationReason,
    SessionCreated,
    SessionEvent,
    SessionRefreshed,
    SessionRevoked,
    SessionUpdated,
    TokenTheftDetected,
)

if TYPE_CHECKING:
    from opentelemetry.metrics import CallbackOptions, MeterProvider

__all__ = [
    "FEED_INSTRUMENT_NAMES",
    "INSTRUMENT_NAMES",
    "METER_NAME",
    "REFRESH_DURATION_BUCKETS",
    "ChangeFeedGauges",
    "SessionMetrics",
    "metrics_for",
    "observe_change_feed",
]

#: The name of the meter (the OpenTelemetry instrumentation scope).
METER_NAME = "sessionward"
#: The name of every instrument :class:`SessionMetrics` creates.
INSTRUMENT_NAMES = (
    "sessionward.sessions.created",
    "sessionward.sessions.refreshed",
    "sessionward.sessions.updated",
    "sessionward.sessions.revoked",
    "sessionward.token_theft.detected",
    "sessionward.refresh.duration",
)
#: The observable gauges of the change feed (:class:`ChangeFeedGauges`), one series per
#: engine (attribute ``engine``: a number given in the order the engines started).
FEED_INSTRUMENT_NAMES = ("sessionward.change_feed.lag", "sessionward.change_feed.connected")
#: Bucket boundaries (seconds) advised for ``sessionward.refresh.duration``: a refresh takes
#: from a fraction of a millisecond (SQLite) to tens of milliseconds (a remote store).
REFRESH_DURATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

_PROMOTED: Mapping[bool, Mapping[str, bool]] = {True: {"promoted": True}, False: {"promoted": False}}
_PERSISTENT: Mapping[bool, Mapping[str, bool]] = {True: {"persistent": True}, False: {"persistent": False}}
_REASON: Mapping[RevocationReason, Mapping[str, str]] = {r: {"reason": r.value} for r in RevocationReason}
_FIELD: Mapping[str, Mapping[str, str]] = {
    field: {"field": field} for field in ("jwt_payload", "session_data", "auth_time")
}


class SessionMetrics:
    """The instruments of session events, from the meter ``"sessionward"`` of
    ``meter_provider`` (the global one when ``None``)."""

    __slots__ = ("_created", "_refresh_duration", "_refreshed", "_revoked", "_theft", "_updated")

    def __init__(self, meter_provider: MeterProvider | None = None) -> None:
        from . import __version__

        meter = otel_metrics.get_meter(METER_NAME, __version__, meter_provider=meter_provider)
        self._created = meter.create_counter(
            "sessionward.sessions.created", unit="{session}", description="Sessions created."
        )
        self._refreshed = meter.create_counter(
            "sessionward.sessions.refreshed",
            unit="{session}",
            description="Session refreshes; promoted=true for the promotions that commit a rotation.",
        )
        self._updated = meter.create_counter(
            "sessionward.sessions.updated",
            unit="{session}",
            description="Updates of a stored session, by field (jwt_payload, session_data, auth_time).",
        )
        self._revoked = meter.create_counter(
            "sessionward.sessions.revoked", unit="{session}", description="Sessions revoked, by reason."
        )
        self._theft = meter.create_counter(
            "sessionward.token_theft.detected",
            unit="{session}",
            description="Refresh tokens presented again after their rotation (token theft).",
        )
        self._refresh_duration = meter.create_histogram(
            "sessionward.refresh.duration",
            unit="s",
            description="Time the engine spent on a refresh or a promotion, store round trips included.",
            explicit_bucket_boundaries_advisory=REFRESH_DURATION_BUCKETS,
        )

    def record(self, event: SessionEvent) -> None:
        """Record ``event`` on its instruments."""
        if isinstance(event, SessionRefreshed):
            attributes = _PROMOTED[event.promoted]
            self._refreshed.add(1, attributes)
            self._refresh_duration.record(event.duration, attributes)
        elif isinstance(event, SessionCreated):
            self.record_created(event.persistent)
        elif isinstance(event, SessionUpdated):
            self._updated.add(1, _FIELD.get(event.field) or {"field": str(event.field)})
        elif isinstance(event, SessionRevoked):
            self._revoked.add(1, _REASON[event.reason])
        elif isinstance(event, TokenTheftDetected):
            self._theft.add(1)

    def record_created(self, persistent: bool) -> None:
        """Record a :class:`~sessionward.events.SessionCreated` event of a session with
        this ``persistent`` (what :meth:`record` of the event does, without the event)."""
        self._created.add(1, _PERSISTENT[persistent])


_global_lock = threading.Lock()
_global: SessionMetrics | None = None


def metrics_for(meter_provider: MeterProvider | None) -> SessionMetrics:
    """The :class:`SessionMetrics` of ``meter_provider``: a new one for a given provider, one
    shared by every caller for the global provider (``None``).

    The global instruments work through OpenTelemetry's proxy until the application sets its
    ``MeterProvider``, so engines created before that set-up report as well.
    """
    global _global
    if meter_provider is not None:
        return SessionMetrics(meter_provider)
    with _global_lock:
        if _global is None:
            _global = SessionMetrics()
        return _global


class ChangeFeedGauges:
    """The change feed's observable gauges on the meter ``"sessionward"`` of
    ``meter_provider`` (the global one when ``None``), observing every engine registered
    with :meth:`add` (held weakly: a collected engine stops reporting).

    ``sessionward.change_feed.lag`` (ms): time since the engine's listener last heard from
    the store (no point before the first time). ``sessionward.change_feed.connected``
    (``1`` / ``0``): whether verification trusts the feed now (``live``).
    """

    def __init__(self, meter_provider: MeterProvider | None = None) -> None:
        from opentelemetry.metrics import Observation

        from . import __version__

        self._observation = Observation
        self._feeds: weakref.WeakKeyDictionary[Any, Mapping[str, str]] = weakref.WeakKeyDictionary()
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()
        meter = otel_metrics.get_meter(METER_NAME, __version__, meter_provider=meter_provider)
        meter.create_observable_gauge(
            "sessionward.change_feed.lag",
            callbacks=[self._lag],
            unit="ms",
            description="Time since the change feed's listener last heard from the store.",
        )
        meter.create_observable_gauge(
            "sessionward.change_feed.connected",
            callbacks=[self._connected],
            unit="1",
            description="1 while verification trusts the change feed (live), else 0 (the store is read).",
        )

    def add(self, feed: Any) -> None:
        """Observe ``feed`` (an engine's :class:`~sessionward.engine.feed.FeedState`)."""
        with self._lock:
            if feed not in self._feeds:
                self._feeds[feed] = {"engine": str(next(self._numbers))}

    def _states(self) -> list[tuple[Any, Mapping[str, str]]]:
        with self._lock:
            feeds = list(self._feeds.items())
        return [(feed.state(), attributes) for feed, attributes in feeds if not feed.closed]

    def _lag(self, options: CallbackOptions) -> Iterable[Any]:
        for state, attributes in self._states():
            if state.lag_ms is not None:
                yield self._observation(state.lag_ms, attributes)

    def _connected(self, options: CallbackOptions) -> Iterable[Any]:
        for state, attributes in self._states():
            yield self._observation(1 if state.live else 0, attributes)


_gauges_lock = threading.Lock()
_global_gauges: ChangeFeedGauges | None = None


def observe_change_feed(feed: Any, meter_provider: MeterProvider | None = None) -> ChangeFeedGauges:
    """Report ``feed`` on the change-feed gauges of ``meter_provider`` (engines use the
    global provider, whose gauges are created once); returns the gauges."""
    global _global_gauges
    if meter_provider is not None:
        gauges = ChangeFeedGauges(meter_provider)
    else:
        with _gauges_lock:
            if _global_gauges is None:
                _global_gauges = ChangeFeedGauges()
            gauges = _global_gauges
    gauges.add(feed)
    return gauges
