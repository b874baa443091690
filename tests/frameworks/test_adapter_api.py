"""What the three adapters share beyond the wire: the public names users import, the error
for ``verify_session`` used without parentheses, and the warning for Secure cookies set on
a plain-http request."""

from __future__ import annotations

import importlib
import logging
import sys
from pathlib import Path
from typing import Any

import pytest
from clients import IN_PROCESS, open_client

from sessionward import Config, transport

APPS = Path(__file__).resolve().parent / "apps"
if str(APPS) not in sys.path:
    sys.path.insert(0, str(APPS))

import django_app  # noqa: E402

django_app.ensure_configured()

_MANAGEMENT = [
    "get_all_session_handles_for_user",
    "get_jwt_payload",
    "get_session_data",
    "get_session_information",
    "revoke_all_sessions_for_user",
    "revoke_multiple_sessions",
    "revoke_session",
    "update_jwt_payload",
    "update_session_data",
]
_REQUEST_LEVEL = ["create_new_session", "get_session", "preflight", "refresh_session", "verify_session"]

PUBLIC_NAMES = {
    "sessionward.flask": [
        *_MANAGEMENT,
        *_REQUEST_LEVEL,
        "CLIENT_SCRIPT_ENDPOINT",
        "EXTENSION_KEY",
        "ErrorHandler",
        "REFRESH_ENDPOINT",
        "Session",
        "SessionWardExtension",
        "TheftHook",
        "current_session",
        "init",
    ],
    "sessionward.fastapi": [
        *_MANAGEMENT,
        *_REQUEST_LEVEL,
        "AsyncSession",
        "ErrorHandler",
        "STATE_CONTEXT_KEY",
        "STATE_SESSION_KEY",
        "Session",
        "SessionWardMiddleware",
        "TheftHook",
        "init",
        "logger",
    ],
    "sessionward.django": [
        *_MANAGEMENT,
        *_REQUEST_LEVEL,
        "Session",
        "SessionWardMiddleware",
        "SetCookieMorsel",
        "apply_effects",
        "get_engine",
        "reset_engine",
    ],
    "sessionward.django.api": [
        *_MANAGEMENT,
        "SETTING_NAME",
        "SetCookieMorsel",
        "apply_effects",
        "cookie_header",
        "create_new_session",
        "error_response",
        "get_engine",
        "get_handler",
        "get_session",
        "load_options",
        "preflight",
        "refresh_session",
        "reset_engine",
    ],
}


@pytest.mark.parametrize("module_name", sorted(PUBLIC_NAMES))
def test_public_names_stay_importable(module_name: str) -> None:
    module = importlib.import_module(module_name)
    missing = [name for name in PUBLIC_NAMES[module_name] if not hasattr(module, name)]
    assert missing == []
    exported = set(getattr(module, "__all__", ()))
    assert exported <= set(dir(module))


def test_flask_verify_session_without_parentheses_fails_at_decoration() -> None:
    from sessionward.flask import verify_session

    with pytest.raises(TypeError, match=r"write @verify_session\(\)"):
        verify_session(lambda: None)  # type: ignore[arg-type]


def test_django_verify_session_without_parentheses_fails_at_decoration() -> None:
    from sessionward.django import verify_session

    with pytest.raises(TypeError, match=r"write @verify_session\(\)"):
        verify_session(lambda request: None)  # type: ignore[arg-type]


def test_fastapi_depends_verify_session_without_call_fails_on_first_request() -> None:
    from fastapi import Depends, FastAPI
    from starlette.testclient import TestClient

    from sessionward.fastapi import init, verify_session

    app = FastAPI()
    init(app, store="sqlite:///:memory:", cookie_secure=False)

    @app.get("/me")
    async def me(session: Any = Depends(verify_session)) -> dict[str, Any]:  # noqa: B008
        return {}

    with TestClient(app) as client, pytest.raises(TypeError, match=r"write Depends\(verify_session\(\)\)"):
        client.get("/me")


@pytest.fixture
def fresh_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transport.response, "_insecure_cookie_warned", False)


@pytest.mark.usefixtures("fresh_warning")
@pytest.mark.parametrize("framework", IN_PROCESS)
def test_secure_cookies_on_plain_http_are_logged_once(
    framework: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = Config(store=f"sqlite:///{tmp_path}/sessions.db", access_token_algorithm="HS256")
    assert config.cookie_secure
    with caplog.at_level(logging.WARNING, logger="sessionward"), open_client(framework, config) as client:
        client.login("alice")
        client.login("bob")
    warnings = [r for r in caplog.records if r.name == "sessionward" and r.levelno == logging.WARNING]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert "cookie_secure=False" in message and "plain-http" in message


@pytest.mark.usefixtures("fresh_warning")
@pytest.mark.parametrize("framework", IN_PROCESS)
def test_no_warning_when_cookies_are_not_secure(
    framework: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = Config(
        store=f"sqlite:///{tmp_path}/sessions.db", access_token_algorithm="HS256", cookie_secure=False
    )
    with caplog.at_level(logging.WARNING, logger="sessionward"), open_client(framework, config) as client:
        client.login("alice")
    assert [r for r in caplog.records if r.name == "sessionward"] == []
