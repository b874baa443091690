"""sessionward.events (docs/events.md): the event values, EventBus delivery (order, logging
with structured fields, failing subscribers, unsubscribe, subscribe while emitting from other
threads) and Config.event_subscribers with resolve_subscribers."""

from __future__ import annotations

import dataclasses
import logging
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sessionward import Config, ConfigError
from sessionward.config import resolve_subscribers
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

EVENTS: list[SessionEvent] = [
    SessionCreated("h-created", "alice", 1_700_000_000_000, True, "203.0.113.9", "Firefox/120"),
    SessionRefreshed("h-refreshed", "alice", 1_700_000_000_001, False, 0.0042),
    SessionRefreshed("h-promoted", "alice", 1_700_000_000_002, True, 0.0011),
    SessionUpdated("h-updated", "bob", 1_700_000_000_003, "jwt_payload"),
    SessionRevoked("h-revoked", "bob", 1_700_000_000_004, RevocationReason.OTHER_DEVICES),
    TokenTheftDetected("h-stolen", "carol", 1_700_000_000_005),
]


@pytest.fixture
def bus() -> EventBus:
    return EventBus(metrics=False)


# -- the values ------------------------------------------------------------------------------


def test_revocation_reasons_are_the_documented_strings() -> None:
    assert {reason.name: reason.value for reason in RevocationReason} == {
        "USER": "user",
        "OTHER_DEVICES": "other_devices",
        "ADMIN": "admin",
        "THEFT": "theft",
        "EXPIRED": "expired",
    }
    assert isinstance(RevocationReason.THEFT, str)
    assert RevocationReason("expired") is RevocationReason.EXPIRED
    assert f"{RevocationReason.ADMIN}" == "admin"


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_events_are_frozen_slotted_values_without_tokens(event: SessionEvent) -> None:
    names = [field.name for field in dataclasses.fields(event)]
    assert names[:3] == ["handle", "user_id", "at"]
    assert not [name for name in names if "token" in name or "hash" in name]
    assert not hasattr(event, "__dict__")
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.handle = "other"  # type: ignore[misc]
    assert event == dataclasses.replace(event)
    assert hash(event) == hash(dataclasses.replace(event))


def test_each_kind_has_its_own_name() -> None:
    kinds = {type(event): event.kind for event in EVENTS}
    assert kinds == {
        SessionCreated: "session_created",
        SessionRefreshed: "session_refreshed",
        SessionUpdated: "session_updated",
        SessionRevoked: "session_revoked",
        TokenTheftDetected: "token_theft_detected",
    }


def test_the_user_id_may_be_unknown() -> None:
    event = SessionRevoked("h", None, 1, RevocationReason.EXPIRED)
    assert event.user_id is None


# -- delivery --------------------------------------------------------------------------------


def test_subscribers_get_every_event_in_subscription_order(bus: EventBus) -> None:
    calls: list[tuple[str, SessionEvent]] = []
    bus.subscribe(lambda event: calls.append(("first", event)))
    bus.subscribe(lambda event: calls.append(("second", event)))
    for event in EVENTS:
        bus.emit(event)
    assert calls == [(name, event) for event in EVENTS for name in ("first", "second")]


def test_the_initial_subscribers_come_first() -> None:
    calls: list[str] = []
    bus = EventBus([lambda e: calls.append("a"), lambda e: calls.append("b")], metrics=False)
    bus.subscribe(lambda e: calls.append("c"))
    bus.emit(EVENTS[0])
    assert calls == ["a", "b", "c"]
    assert len(bus.subscribers) == 3


def test_what_a_subscriber_returns_is_ignored(bus: EventBus) -> None:
    bus.subscribe(lambda event: "ignored")
    bus.emit(EVENTS[0])


def test_unsubscribe_stops_delivery_and_is_idempotent(bus: EventBus) -> None:
    seen: list[SessionEvent] = []
    unsubscribe = bus.subscribe(seen.append)
    bus.emit(EVENTS[0])
    unsubscribe()
    unsubscribe()
    bus.emit(EVENTS[1])
    assert seen == [EVENTS[0]]
    assert bus.subscribers == ()


def test_a_callable_subscribed_twice_is_called_twice_and_unsubscribed_once_per_call(bus: EventBus) -> None:
    seen: list[SessionEvent] = []
    first = bus.subscribe(seen.append)
    bus.subscribe(seen.append)
    bus.emit(EVENTS[0])
    assert len(seen) == 2
    first()
    first()  # the second call must not remove the other subscription
    bus.emit(EVENTS[1])
    assert seen[2:] == [EVENTS[1]]


def test_a_non_callable_subscriber_is_refused(bus: EventBus) -> None:
    with pytest.raises(TypeError, match="callable"):
        bus.subscribe("package.module:function")  # type: ignore[arg-type]


def test_a_subscriber_that_unsubscribes_itself_while_called_does_not_disturb_the_others(
    bus: EventBus,
) -> None:
    calls: list[str] = []

    def once(event: SessionEvent) -> None:
        calls.append("once")
        unsubscribe()

    unsubscribe = bus.subscribe(once)
    bus.subscribe(lambda event: calls.append("always"))
    bus.emit(EVENTS[0])
    bus.emit(EVENTS[1])
    assert calls == ["once", "always", "always"]


def test_an_emit_in_progress_calls_the_subscribers_it_started_with(bus: EventBus) -> None:
    calls: list[str] = []
    late: list[SessionEvent] = []

    def subscribes_another(event: SessionEvent) -> None:
        calls.append("first")
        if len(calls) == 1:
            bus.subscribe(late.append)
            removed()

    def removed_during_emit(event: SessionEvent) -> None:
        calls.append("removed")

    bus.subscribe(subscribes_another)
    removed = bus.subscribe(removed_during_emit)
    bus.emit(EVENTS[0])
    # the emit in progress still called the one removed meanwhile, not the one added
    assert calls == ["first", "removed"] and late == []
    bus.emit(EVENTS[1])
    assert calls == ["first", "removed", "first"] and late == [EVENTS[1]]


# -- logging ---------------------------------------------------------------------------------


def _records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == "sessionward.events"]


@pytest.mark.parametrize(
    ("event", "level", "fields", "words"),
    [
        (
            EVENTS[0],
            logging.INFO,
            {"persistent": True, "ip": "203.0.113.9", "user_agent": "Firefox/120"},
            ["h-created", "created", "alice", "203.0.113.9"],
        ),
        (
            EVENTS[1],
            logging.INFO,
            {"promoted": False, "duration": 0.0042},
            ["h-refreshed", "refreshed", "4.2 ms"],
        ),
        (EVENTS[2], logging.INFO, {"promoted": True, "duration": 0.0011}, ["h-promoted", "promoted"]),
        (EVENTS[3], logging.INFO, {"field": "jwt_payload"}, ["h-updated", "bob", "jwt_payload updated"]),
        (EVENTS[4], logging.INFO, {"reason": "other_devices"}, ["h-revoked", "revoked", "other_devices"]),
        (EVENTS[5], logging.WARNING, {"reason": "theft"}, ["h-stolen", "carol", "theft"]),
    ],
    ids=["created", "refreshed", "promoted", "updated", "revoked", "theft"],
)
def test_every_event_is_logged_with_structured_fields(
    bus: EventBus,
    caplog: pytest.LogCaptureFixture,
    event: SessionEvent,
    level: int,
    fields: dict[str, Any],
    words: list[str],
) -> None:
    caplog.set_level(logging.INFO, logger="sessionward.events")
    bus.emit(event)
    (record,) = _records(caplog)
    assert record.levelno == level
    assert record.sessionward_event == event.kind  # type: ignore[attr-defined]
    assert record.session_handle == event.handle  # type: ignore[attr-defined]
    assert record.user_id == event.user_id  # type: ignore[attr-defined]
    for name, value in fields.items():
        assert getattr(record, name) == value, name
    message = record.getMessage()
    for word in words:
        assert word in message
    assert record.exc_info is None


def test_logging_is_skipped_when_the_logger_is_off(bus: EventBus, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="sessionward.events")
    seen: list[SessionEvent] = []
    bus.subscribe(seen.append)
    for event in EVENTS:
        bus.emit(event)
    assert _records(caplog) == []
    assert seen == EVENTS


def test_theft_is_logged_as_a_warning_even_when_info_is_off(
    bus: EventBus, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="sessionward.events")
    for event in EVENTS:
        bus.emit(event)
    assert [record.sessionward_event for record in _records(caplog)] == ["token_theft_detected"]  # type: ignore[attr-defined]


# -- emit_created: the event built only when something reads it ------------------------------

CREATED_ARGS = ("h-created", "alice", 1_700_000_000_000, False, "203.0.113.9", "Firefox/120")


def test_emit_created_hands_subscribers_the_event_emit_would(
    bus: EventBus, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="sessionward.events")
    seen: list[SessionEvent] = []
    bus.subscribe(seen.append)
    bus.emit_created(*CREATED_ARGS)
    assert seen == [SessionCreated(*CREATED_ARGS)]
    assert _records(caplog) == []


def test_emit_created_logs_as_emit_does_without_subscribers(
    bus: EventBus, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sessionward.events")
    bus.emit_created(*CREATED_ARGS)
    bus.emit(SessionCreated(*CREATED_ARGS))
    made, emitted = _records(caplog)
    assert made.getMessage() == emitted.getMessage()
    assert {k: v for k, v in vars(made).items() if k not in _VOLATILE} == {
        k: v for k, v in vars(emitted).items() if k not in _VOLATILE
    }


_VOLATILE = {"created", "msecs", "relativeCreated", "lineno", "funcName", "thread", "threadName"}


def test_emit_created_without_anything_reading_it_builds_no_event(
    bus: EventBus, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.ERROR, logger="sessionward.events")

    def never(*args: Any) -> None:
        raise AssertionError("no event expected")

    monkeypatch.setattr("sessionward.events.SessionCreated", never)
    bus.emit_created(*CREATED_ARGS)  # metrics off, no subscriber, log off
    assert _records(caplog) == []


# -- failing subscribers ---------------------------------------------------------------------


class Explodes:
    """A subscriber object whose call fails."""

    def __call__(self, event: SessionEvent) -> None:
        raise RuntimeError("subscriber bug")


def test_a_raising_subscriber_is_logged_and_never_stops_the_others(
    bus: EventBus, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sessionward.events")
    seen: list[str] = []

    def broken(event: SessionEvent) -> None:
        raise ValueError("boom")

    bus.subscribe(lambda event: seen.append("before"))
    bus.subscribe(broken)
    bus.subscribe(Explodes())
    bus.subscribe(lambda event: seen.append("after"))
    bus.emit(EVENTS[4])  # does not raise
    assert seen == ["before", "after"]
    failures = [record for record in _records(caplog) if record.levelno == logging.ERROR]
    assert len(failures) == 2
    first, second = failures
    assert first.exc_info is not None and first.exc_info[0] is ValueError
    assert "broken" in first.getMessage() and "session_revoked" in first.getMessage()
    assert first.subscriber.endswith("broken")  # type: ignore[attr-defined]
    assert first.sessionward_event == "session_revoked"  # type: ignore[attr-defined]
    assert first.session_handle == "h-revoked"  # type: ignore[attr-defined]
    assert second.exc_info is not None and second.exc_info[0] is RuntimeError
    assert "Explodes" in second.getMessage()


def test_a_raising_subscriber_fails_again_on_the_next_event_and_is_still_logged(
    bus: EventBus, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="sessionward.events")
    bus.subscribe(Explodes())
    for event in EVENTS:
        bus.emit(event)
    assert len(_records(caplog)) == len(EVENTS)


def test_a_format_naming_the_common_fields_formats_every_record_of_the_logger(
    bus: EventBus, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sessionward.events")
    bus.subscribe(Explodes())
    for event in EVENTS:
        bus.emit(event)
    formatter = logging.Formatter("%(sessionward_event)s %(session_handle)s %(user_id)s %(message)s")
    lines = [formatter.format(record) for record in _records(caplog)]
    assert len(lines) == 2 * len(EVENTS)
    assert all(
        line.startswith(f"{e.kind} {e.handle} {e.user_id} ")
        for line, e in zip(lines[::2], EVENTS, strict=True)
    )
    assert all("Traceback" in line and "subscriber bug" in line for line in lines[1::2])


# -- threads ---------------------------------------------------------------------------------


def test_subscribe_and_unsubscribe_while_other_threads_emit() -> None:
    bus = EventBus(metrics=False)
    stable: list[SessionEvent] = []
    bus.subscribe(stable.append)
    stop = threading.Event()
    errors: list[BaseException] = []
    emitted = [0] * 4

    def emitter(index: int) -> None:
        try:
            while not stop.is_set():
                bus.emit(EVENTS[1])
                emitted[index] += 1
        except BaseException as exc:  # pragma: no cover - the failure this test looks for
            errors.append(exc)

    def churner() -> None:
        try:
            for _ in range(2000):
                unsubscribe = bus.subscribe(lambda event: None)
                unsubscribe()
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)

    emitters = [threading.Thread(target=emitter, args=(i,)) for i in range(4)]
    churners = [threading.Thread(target=churner) for _ in range(4)]
    for thread in emitters + churners:
        thread.start()
    for thread in churners:
        thread.join(timeout=60)
    stop.set()
    for thread in emitters:
        thread.join(timeout=60)
    assert errors == []
    # every churned subscription is gone, the stable one saw every emit exactly once
    assert bus.subscribers == (stable.append,)
    assert len(stable) == sum(emitted)


def test_concurrent_subscriptions_are_never_lost() -> None:
    bus = EventBus(metrics=False)
    barrier = threading.Barrier(8)
    counts = [0] * 8

    def subscribe(index: int) -> None:
        barrier.wait()
        for _ in range(200):

            def count(event: SessionEvent, index: int = index) -> None:
                counts[index] += 1

            bus.subscribe(count)

    threads = [threading.Thread(target=subscribe, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(bus.subscribers) == 1600
    bus.emit(EVENTS[0])
    assert counts == [200] * 8


# -- configuration ---------------------------------------------------------------------------


def subscriber_for_config(event: SessionEvent) -> None:
    """A subscriber given to the configuration as a callable."""


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A module on sys.path: ``<name>.hooks`` with a function, a class with a static method,
    a non-callable, and a sibling module that fails on import."""
    name = f"events_plugin_{uuid.uuid4().hex[:12]}"
    package = tmp_path / name
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "hooks.py").write_text(
        textwrap.dedent(
            """
            seen = []

            def record(event):
                seen.append(event)

            class Audit:
                @staticmethod
                def on_event(event):
                    seen.append(("audit", event))

            NOT_CALLABLE = 42
            """
        )
    )
    (package / "broken.py").write_text("raise RuntimeError('broken at import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    for module in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[module]


def test_event_subscribers_default_to_none() -> None:
    assert Config().event_subscribers == ()
    assert resolve_subscribers(Config()) == ()


def test_event_subscribers_accept_callables_and_import_paths(plugin: str) -> None:
    config = Config(
        event_subscribers=(subscriber_for_config, f"{plugin}.hooks:record", f"{plugin}.hooks:Audit.on_event")
    )
    hooks = __import__(f"{plugin}.hooks", fromlist=["record"])
    assert resolve_subscribers(config) == (subscriber_for_config, hooks.record, hooks.Audit.on_event)
    bus = EventBus(resolve_subscribers(config), metrics=False)
    bus.emit(EVENTS[0])
    assert hooks.seen == [EVENTS[0], ("audit", EVENTS[0])]


def test_a_list_from_a_settings_file_becomes_a_tuple(plugin: str) -> None:
    config = Config.from_mapping({"event_subscribers": [f"{plugin}.hooks:record"]})
    assert config.event_subscribers == (f"{plugin}.hooks:record",)


def test_event_subscribers_from_the_environment_are_a_comma_separated_list(plugin: str) -> None:
    env = {"SESSIONWARD_EVENT_SUBSCRIBERS": f" {plugin}.hooks:record , {plugin}.hooks:Audit.on_event ,"}
    config = Config.from_env(env)
    assert config.event_subscribers == (f"{plugin}.hooks:record", f"{plugin}.hooks:Audit.on_event")
    assert len(resolve_subscribers(config)) == 2
    assert Config.from_env({"SESSIONWARD_EVENT_SUBSCRIBERS": ""}).event_subscribers == ()


@pytest.mark.parametrize(
    "value",
    [
        "package.module:function",  # a string, not a tuple of them
        42,
        None,
        (42,),
        ("package.module",),
        ("package.module:",),
        (":function",),
        ("package module:function",),
        ("package.module:function; import os",),
        ("../evil:function",),
        ("package.module:function:again",),
        ("",),
    ],
)
def test_malformed_event_subscribers_name_the_option(value: Any) -> None:
    with pytest.raises(ConfigError, match=r"^event_subscribers: "):
        Config(event_subscribers=value)


@pytest.mark.parametrize(
    ("target", "says"),
    [
        ("{plugin}.missing:record", "ModuleNotFoundError"),
        ("no_such_top_level_package_for_events:record", "ModuleNotFoundError"),
        ("{plugin}.hooks:absent", "has no attribute 'absent'"),
        ("{plugin}.hooks:Audit.absent", "has no attribute 'Audit.absent'"),
        ("{plugin}.broken:record", "RuntimeError: broken at import"),
        ("{plugin}.hooks:NOT_CALLABLE", "is not callable"),
    ],
)
def test_resolution_errors_name_the_option_and_the_string(plugin: str, target: str, says: str) -> None:
    path = target.format(plugin=plugin)
    config = Config(event_subscribers=(subscriber_for_config, path))
    with pytest.raises(ConfigError) as info:
        resolve_subscribers(config)
    message = str(info.value)
    assert message.startswith("event_subscribers: ")
    assert repr(path) in message
    assert says in message


# -- import cost -----------------------------------------------------------------------------


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


def test_importing_sessionward_imports_no_opentelemetry() -> None:
    out = _run(
        """
        import sys
        import sessionward, sessionward.events, sessionward.config
        loaded = sorted(m for m in sys.modules if m.startswith("opentelemetry") or m == "sessionward.metrics")
        print(loaded)
        """
    )
    assert out.strip() == "[]"


def test_without_opentelemetry_emit_works_and_never_looks_again() -> None:
    out = _run(
        """
        import builtins, logging, sys
        sys.modules["opentelemetry"] = None  # as if it were not installed
        from sessionward.events import EventBus, SessionRefreshed
        attempts = []
        real_import = builtins.__import__
        def counting_import(name, *args, **kwargs):
            if "metrics" in name:
                attempts.append(name)
            return real_import(name, *args, **kwargs)
        builtins.__import__ = counting_import
        bus = EventBus()
        seen = []
        bus.subscribe(seen.append)
        for _ in range(3):
            bus.emit(SessionRefreshed("h", "u", 1, False, 0.001))
        builtins.__import__ = real_import
        print(len(seen), attempts, "sessionward.metrics" in sys.modules)
        """
    )
    assert out.split() == ["3", "['metrics']", "False"]
