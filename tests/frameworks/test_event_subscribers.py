"""Event subscribers configured through each framework's own settings (Flask's app.config,
FastAPI's init options, Django's SESSIONWARD dict with import paths) see the sessions the
app creates, with the client the request came from."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from frameworks.apps import metadata
from sessionward import Config
from sessionward.events import SessionCreated


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return Config(
        store=f"sqlite:///{tmp_path}/events.db", cookie_secure=False, access_token_algorithm="HS256"
    )


@pytest.fixture(autouse=True)
def clean_events() -> Iterator[None]:
    metadata.EVENTS.clear()
    yield
    metadata.EVENTS.clear()


def created(events: list[Any], handle: str) -> SessionCreated:
    matching = [event for event in events if isinstance(event, SessionCreated) and event.handle == handle]
    assert len(matching) == 1, events
    return matching[0]


def test_flask_app_config(config: Config) -> None:
    from frameworks.apps import flask_app

    seen: list[Any] = []
    options = {field.name: getattr(config, field.name) for field in dataclasses.fields(config)}
    app = flask_app.create_app(config, SESSIONWARD={**options, "event_subscribers": [seen.append]})
    try:
        response = app.test_client().post(
            "/login", json={"user_id": "alice", "persistent": False}, headers={"User-Agent": "agent/flask"}
        )
        assert response.status_code == 200
        event = created(seen, response.get_json()["handle"])
        assert (event.user_id, event.persistent, event.ip, event.user_agent) == (
            "alice",
            False,
            "127.0.0.1",
            "agent/flask",
        )
    finally:
        app.extensions["sessionward"].close()


def test_fastapi_init_options(config: Config) -> None:
    from frameworks.apps import fastapi_app

    seen: list[Any] = []
    app = fastapi_app.create_app(config, event_subscribers=(seen.append,))
    with TestClient(app, client=("192.0.2.10", 4000)) as client:
        response = client.post("/login", json={"user_id": "alice"}, headers={"User-Agent": "agent/fastapi"})
        assert response.status_code == 200
    event = created(seen, response.json()["handle"])
    assert (event.user_id, event.persistent, event.ip, event.user_agent) == (
        "alice",
        True,
        "192.0.2.10",
        "agent/fastapi",
    )


def test_django_settings_import_path(config: Config) -> None:
    from django.test import Client  # type: ignore[import-untyped]

    from frameworks.apps import django_app

    subscribed = dataclasses.replace(config, event_subscribers=("frameworks.apps.metadata:record_event",))
    with django_app.configured(subscribed):
        response = Client().post(
            "/login",
            data={"user_id": "alice"},
            content_type="application/json",
            headers={"user-agent": "agent/django"},
        )
        assert response.status_code == 200
    event = created(metadata.EVENTS, response.json()["handle"])
    assert (event.user_id, event.ip, event.user_agent) == ("alice", "127.0.0.1", "agent/django")
