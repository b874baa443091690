"""sessionward.metrics (docs/metrics.md): what EventBus records through a real OpenTelemetry
SDK MeterProvider, the global provider set up after the first event, and a real Prometheus
scrape over 127.0.0.1."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk.metrics", reason="needs opentelemetry-sdk (extra dev)")

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader, NumberDataPoint

import sessionward
from sessionward.events import (
    EventBus,
    RevocationReason,
    SessionCreated,
    SessionEvent,
    SessionRefreshed,
    SessionRevoked,
    SessionUpdated,
    TokenTheftDetected,
)
from sessionward.metrics import INSTRUMENT_NAMES, REFRESH_DURATION_BUCKETS

EVENTS: list[SessionEvent] = [
    SessionCreated("h1", "alice", 1, True, "203.0.113.9", "Firefox/120"),
    SessionCreated("h2", "alice", 2, False, None, None),
    SessionCreated("h3", "bob", 3, True, None, None),
    SessionRefreshed("h1", "alice", 4, False, 0.002),
    SessionRefreshed("h1", "alice", 5, True, 0.0004),
    SessionRefreshed("h1", "alice", 6, False, 0.03),
    SessionUpdated("h1", "alice", 7, "jwt_payload"),
    SessionUpdated("h1", "alice", 8, "auth_time"),
    SessionUpdated("h3", "bob", 9, "jwt_payload"),
    SessionRevoked("h2", "alice", 10, RevocationReason.OTHER_DEVICES),
    SessionRevoked("h3", "bob", 11, RevocationReason.THEFT),
    SessionRevoked("h4", None, 12, RevocationReason.EXPIRED),
    TokenTheftDetected("h3", "bob", 11),
]


def _points(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    """Instrument name -> its data points, from the sessionward meter only."""
    data = reader.get_metrics_data()
    assert data is not None
    found: dict[str, list[Any]] = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            assert scope.scope.name == "sessionward"
            assert scope.scope.version == sessionward.__version__
            for metric in scope.metrics:
                found[metric.name] = list(metric.data.data_points)
    return found


def _by_attributes(points: list[NumberDataPoint]) -> dict[tuple[tuple[str, Any], ...], float]:
    return {tuple(sorted((point.attributes or {}).items())): point.value for point in points}


def test_every_instrument_counts_its_events_by_attribute() -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    try:
        bus = EventBus(meter_provider=provider)
        for event in EVENTS:
            bus.emit(event)
        points = _points(reader)
    finally:
        provider.shutdown()
    assert set(points) == set(INSTRUMENT_NAMES)
    assert _by_attributes(points["sessionward.sessions.created"]) == {
        (("persistent", True),): 2,
        (("persistent", False),): 1,
    }
    assert _by_attributes(points["sessionward.sessions.refreshed"]) == {
        (("promoted", False),): 2,
        (("promoted", True),): 1,
    }
    assert _by_attributes(points["sessionward.sessions.updated"]) == {
        (("field", "jwt_payload"),): 2,
        (("field", "auth_time"),): 1,
    }
    assert _by_attributes(points["sessionward.sessions.revoked"]) == {
        (("reason", "other_devices"),): 1,
        (("reason", "theft"),): 1,
        (("reason", "expired"),): 1,
    }
    assert _by_attributes(points["sessionward.token_theft.detected"]) == {(): 1}
    histograms: list[HistogramDataPoint] = points["sessionward.refresh.duration"]
    by_promoted = {point.attributes["promoted"]: point for point in histograms if point.attributes}
    assert by_promoted[False].count == 2
    assert by_promoted[False].sum == pytest.approx(0.032)
    assert by_promoted[False].max == pytest.approx(0.03)
    assert by_promoted[True].count == 1
    assert by_promoted[True].sum == pytest.approx(0.0004)
    assert tuple(by_promoted[True].explicit_bounds) == REFRESH_DURATION_BUCKETS


def test_no_attribute_names_a_user_a_session_or_a_client() -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    try:
        bus = EventBus(meter_provider=provider)
        for event in EVENTS:
            bus.emit(event)
        points = _points(reader)
    finally:
        provider.shutdown()
    attribute_names = {name for series in points.values() for p in series for name in (p.attributes or {})}
    assert attribute_names == {"persistent", "promoted", "field", "reason"}
    values = {str(v) for series in points.values() for p in series for v in (p.attributes or {}).values()}
    assert not values & {"alice", "bob", "h1", "h2", "h3", "h4", "203.0.113.9", "Firefox/120"}


def test_two_buses_on_one_provider_add_up_on_the_same_instruments(caplog: pytest.LogCaptureFixture) -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    try:
        first, second = EventBus(meter_provider=provider), EventBus(meter_provider=provider)
        first.emit(EVENTS[0])
        second.emit(EVENTS[0])
        points = _points(reader)
    finally:
        provider.shutdown()
    assert _by_attributes(points["sessionward.sessions.created"]) == {(("persistent", True),): 2}
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_emit_created_records_without_subscriber_or_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="sessionward.events")
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    try:
        bus = EventBus(meter_provider=provider)
        bus.emit_created("h1", "alice", 1, True, None, None)  # the first looks for the metrics
        bus.emit_created("h2", "alice", 2, False, None, None)
        bus.emit_created("h3", "bob", 3, True, "203.0.113.9", "Firefox/120")
        points = _points(reader)
    finally:
        provider.shutdown()
    assert _by_attributes(points["sessionward.sessions.created"]) == {
        (("persistent", True),): 2,
        (("persistent", False),): 1,
    }
    assert [r.getMessage() for r in caplog.records] == []


def test_a_failing_record_of_emit_created_is_logged_with_the_event_fields(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = EventBus(metrics=True)

    class Failing:
        def record_created(self, persistent: bool) -> None:
            raise RuntimeError("exporter down")

    bus._metrics = Failing()  # type: ignore[assignment]
    with caplog.at_level(logging.ERROR, logger="sessionward.events"):
        bus.emit_created("h1", "alice", 1, True, None, None)  # does not raise
    (error,) = [r for r in caplog.records if r.name == "sessionward.events"]
    assert error.exc_info is not None and error.exc_info[0] is RuntimeError
    assert error.sessionward_event == "session_created"  # type: ignore[attr-defined]
    assert error.session_handle == "h1"  # type: ignore[attr-defined]


def test_metrics_false_records_nothing() -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    try:
        bus = EventBus(metrics=False, meter_provider=provider)
        for event in EVENTS:
            bus.emit(event)
        data = reader.get_metrics_data()
    finally:
        provider.shutdown()
    assert data is None or all(not r.scope_metrics for r in data.resource_metrics)


def test_a_failing_meter_provider_turns_metrics_off_and_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    class Broken(MeterProvider):
        def get_meter(self, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("exporter misconfigured")

    broken = Broken()
    try:
        bus = EventBus(meter_provider=broken)
        seen: list[SessionEvent] = []
        bus.subscribe(seen.append)
        with caplog.at_level(logging.ERROR, logger="sessionward.events"):
            bus.emit(EVENTS[0])
            bus.emit(EVENTS[1])
    finally:
        broken.shutdown()
    assert seen == EVENTS[:2]
    errors = [r for r in caplog.records if r.name == "sessionward.events" and r.levelno == logging.ERROR]
    assert len(errors) == 1  # looked for once, then off
    assert "OpenTelemetry" in errors[0].getMessage()
    assert errors[0].sessionward_event == "session_created"  # type: ignore[attr-defined]


def _run(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_global_provider_set_after_the_first_event_receives_the_next_ones() -> None:
    # The global MeterProvider can be set once per process: a process of its own.
    out = _run(
        """
        from opentelemetry import metrics
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from sessionward.events import EventBus, SessionCreated

        bus = EventBus()
        bus.emit(SessionCreated("h0", "u", 1, True, None, None))  # before the set-up: not counted
        reader = InMemoryMetricReader()
        metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
        for handle in ("h1", "h2"):
            bus.emit(SessionCreated(handle, "u", 2, True, None, None))
        EventBus().emit(SessionCreated("h3", "u", 3, True, None, None))  # another engine, same instruments
        for resource in reader.get_metrics_data().resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    print(metric.name, [p.value for p in metric.data.data_points])
        """
    )
    assert out.strip() == "sessionward.sessions.created [3]"


def test_a_real_prometheus_scrape_shows_the_counters() -> None:
    # The set-up of docs/metrics.md, on a port the system picks, in a process of its own
    # (the global MeterProvider and prometheus_client's default registry are per process).
    out = _run(
        """
        import urllib.request
        from opentelemetry import metrics
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from opentelemetry.sdk.metrics import MeterProvider
        from prometheus_client import start_http_server

        from sessionward.events import (
            EventBus, RevocationReason, SessionCreated, SessionRefreshed, SessionRevoked,
            SessionUpdated, TokenTheftDetected,
        )

        server, thread = start_http_server(0, addr="127.0.0.1")
        provider = MeterProvider(metric_readers=[PrometheusMetricReader()])
        metrics.set_meter_provider(provider)

        bus = EventBus()
        bus.emit(SessionCreated("h1", "alice", 1, True, None, None))
        bus.emit(SessionCreated("h2", "bob", 1, False, None, None))
        bus.emit(SessionRefreshed("h1", "alice", 2, True, 0.0015))
        bus.emit(SessionUpdated("h1", "alice", 3, "session_data"))
        bus.emit(SessionRevoked("h2", "bob", 4, RevocationReason.USER))
        bus.emit(TokenTheftDetected("h1", "alice", 5))
        bus.emit(SessionRevoked("h1", "alice", 5, RevocationReason.THEFT))

        url = f"http://127.0.0.1:{server.server_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            print(response.headers["Content-Type"])
            print(response.read().decode())
        provider.shutdown()
        server.shutdown()
        server.server_close()
        thread.join(10)
        """
    )
    content_type, _, body = out.partition("\n")
    assert content_type.startswith("text/plain")
    samples = _samples(body)
    assert samples[("sessionward_sessions_created_total", 'persistent="true"')] == 1
    assert samples[("sessionward_sessions_created_total", 'persistent="false"')] == 1
    assert samples[("sessionward_sessions_refreshed_total", 'promoted="true"')] == 1
    assert samples[("sessionward_sessions_updated_total", 'field="session_data"')] == 1
    assert samples[("sessionward_sessions_revoked_total", 'reason="user"')] == 1
    assert samples[("sessionward_sessions_revoked_total", 'reason="theft"')] == 1
    assert samples[("sessionward_token_theft_detected_total", "")] == 1
    assert samples[("sessionward_refresh_duration_seconds_count", 'promoted="true"')] == 1
    assert samples[("sessionward_refresh_duration_seconds_sum", 'promoted="true"')] == pytest.approx(0.0015)
    assert samples[("sessionward_refresh_duration_seconds_bucket", 'le="0.0025",promoted="true"')] == 1
    assert samples[("sessionward_refresh_duration_seconds_bucket", 'le="0.001",promoted="true"')] == 0
    assert "alice" not in body and "h1" not in body


def _samples(exposition: str) -> dict[tuple[str, str], float]:
    """(metric name, its labels but the instrumentation scope's, sorted) -> value."""
    from prometheus_client.parser import text_string_to_metric_families

    samples: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            labels = {k: v for k, v in sample.labels.items() if not k.startswith("otel_scope_")}
            key = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
            samples[(sample.name, key)] = sample.value
    return samples
