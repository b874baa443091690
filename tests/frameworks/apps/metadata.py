"""What the test apps share for the session-metadata routes: the login options a request
body may carry, the ``max_auth_age`` of ``/sensitive``, and the JSON view of
``get_all_sessions_for_user``."""

from __future__ import annotations

from typing import Any

from sessionward import SessionInformation

#: ``GET /sensitive`` refuses a session whose user authenticated longer ago (seconds).
MAX_AUTH_AGE = 2


def login_options(body: dict[str, Any]) -> dict[str, Any]:
    """``persistent`` and ``refresh_token_validity`` from a ``POST /login`` body."""
    options: dict[str, Any] = {}
    if "persistent" in body:
        options["persistent"] = body["persistent"]
    if body.get("refresh_token_validity") is not None:
        options["refresh_token_validity"] = body["refresh_token_validity"]
    return options


def describe_sessions(sessions: list[SessionInformation]) -> list[dict[str, Any]]:
    """The fields a "your devices" page shows, in the order given."""
    return [
        {
            "handle": info.handle,
            "created_at": info.created_at,
            "last_active_at": info.last_active_at,
            "ip": info.ip,
            "user_agent": info.user_agent,
            "created_ip": info.created_ip,
            "created_user_agent": info.created_user_agent,
            "auth_time": info.auth_time,
            "persistent": info.persistent,
        }
        for info in sessions
    ]


#: Events seen by :func:`record_event` (Django's settings name subscribers by import path).
EVENTS: list[Any] = []


def record_event(event: Any) -> None:
    """An event subscriber that remembers every event in :data:`EVENTS`."""
    EVENTS.append(event)
