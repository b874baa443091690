"""What the three adapters share beyond the wire: the public names users import, the error
for ``verify_session`` used without parentheses, and the warning for Secure cookies set on
a plain-http request."""

from __future__ import annotations

import importlib
import inspect
import logging
from pathlib import Path
from typing import Any

import pytest

from frameworks.apps import django_app
from frameworks.clients import IN_PROCESS, open_client
from sessionward import Config, GeneralError, SessionWard, transport

django_app.ensure_configured()

_MANAGEMENT = [
    "get_all_session_handles_for_user",
    "get_all_sessions_for_user",
    "get_jwt_payload",
    "get_session_data",
    "get_session_information",
    "revoke_all_sessions_for_user",
    "revoke_multiple_sessions",
    "revoke_other_sessions",
    "revoke_session",
    "update_jwt_payload",
    "update_session_data",
]
_REQUEST_LEVEL = ["create_new_session", "get_session", "preflight", "refresh_session", "verify_session"]
# What every adapter exposes, under the same names and with the same positional parameters.
SHARED_API = [*_MANAGEMENT, *_REQUEST_LEVEL, "Session", "get_engine"]
ADAPTERS = ["sessionward.flask", "sessionward.fastapi", "sessionward.django"]

# The exact ``__all__`` of every public module: adding or removing a public name is a
# deliberate change of this list (and of the docs and the changelog).
PUBLIC_NAMES = {
    "sessionward": [
        "AsyncSessionWard",
        "ChangeFeedState",
        "ClientInfo",
        "Config",
        "ConfigError",
        "GeneralError",
        "PayloadTooLargeError",
        "ReauthenticationRequiredError",
        "SessionInformation",
        "SessionTokens",
        "SessionWard",
        "SessionWardError",
        "StorageUnavailableError",
        "Token",
        "TokenTheftDetectedError",
        "TryRefreshTokenError",
        "UnauthorizedError",
        "VerifiedSession",
    ],
    "sessionward.flask": [
        *SHARED_API,
        "CLIENT_SCRIPT_ENDPOINT",
        "EXTENSION_KEY",
        "ErrorHandler",
        "JWKS_ENDPOINT",
        "REFRESH_ENDPOINT",
        "SIGN_OUT_ENDPOINT",
        "SessionWardExtension",
        "TheftHook",
        "current_session",
        "init",
    ],
    "sessionward.fastapi": [
        *SHARED_API,
        "AsyncSession",
        "ErrorHandler",
        "STATE_CONTEXT_KEY",
        "STATE_SESSION_KEY",
        "SessionWardMiddleware",
        "TheftHook",
        "init",
        "logger",
    ],
    "sessionward.django": [
        *SHARED_API,
        "SessionWardMiddleware",
        "SetCookieMorsel",
        "apply_effects",
        "reset_engine",
    ],
    "sessionward.client": [
        "RefreshError",
        "SessionAuth",
        "SessionExpiredError",
        "SignInError",
        "TokenFileError",
    ],
}


@pytest.mark.parametrize("module_name", sorted(PUBLIC_NAMES))
def test_public_names_are_pinned(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert sorted(module.__all__) == sorted(PUBLIC_NAMES[module_name])
    assert [name for name in module.__all__ if not hasattr(module, name)] == []


def test_the_errors_module_exports_every_error_class() -> None:
    errors = importlib.import_module("sessionward.errors")
    classes = {name for name, value in vars(errors).items() if isinstance(value, type)}
    assert {name for name in classes if name.endswith("Error")} <= set(errors.__all__)


def _positional_parameters(function: Any) -> list[str]:
    """Parameter names after the request/response argument, keyword-only ones left out (an
    adapter may add its own keyword-only options, such as FastAPI's ``app=``)."""
    parameters = [
        parameter
        for parameter in inspect.signature(function).parameters.values()
        if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD)
    ]
    names = [parameter.name for parameter in parameters]
    return names[1:] if names and names[0] in {"request", "response", "request_or_response"} else names


# get_engine takes the app on Flask and FastAPI; Django has one engine per process.
@pytest.mark.parametrize("name", sorted(set(SHARED_API) - {"Session", "get_engine"}))
def test_every_adapter_exposes_the_same_request_api(name: str) -> None:
    functions = [getattr(importlib.import_module(adapter), name) for adapter in ADAPTERS]
    assert all(callable(function) for function in functions)
    signatures = {adapter: _positional_parameters(f) for adapter, f in zip(ADAPTERS, functions, strict=True)}
    assert len({tuple(parameters) for parameters in signatures.values()}) == 1, signatures


# The keyword-only options of the request-level calls, the same on every adapter.
_KEYWORD_OPTIONS = {
    "create_new_session": {"persistent": True, "refresh_token_validity": None},
    "get_session": {"check_database": False, "max_auth_age": None},
    "verify_session": {"check_database": False, "max_auth_age": None},
}


@pytest.mark.parametrize("name", sorted(_KEYWORD_OPTIONS))
@pytest.mark.parametrize("adapter", ADAPTERS)
def test_every_adapter_takes_the_same_keyword_options(adapter: str, name: str) -> None:
    parameters = inspect.signature(getattr(importlib.import_module(adapter), name)).parameters
    for option, default in _KEYWORD_OPTIONS[name].items():
        assert parameters[option].kind is inspect.Parameter.KEYWORD_ONLY, (adapter, name, option)
        assert parameters[option].default == default


def test_every_adapter_reaches_its_engine_through_get_engine(tmp_path: Path) -> None:
    import flask
    import starlette.applications

    import sessionward.django
    import sessionward.fastapi
    import sessionward.flask

    config = Config(store=f"sqlite:///{tmp_path / 'sessions.db'}", cookie_secure=False)
    flask_app = flask.Flask(__name__)
    extension = sessionward.flask.init(flask_app, config)
    try:
        assert sessionward.flask.get_engine(flask_app) is extension.engine
        with flask_app.app_context():
            assert sessionward.flask.get_engine() is extension.engine
    finally:
        extension.close()
    starlette_app = starlette.applications.Starlette()
    engine = sessionward.fastapi.init(starlette_app, config)
    assert sessionward.fastapi.get_engine(starlette_app) is engine
    assert isinstance(sessionward.django.get_engine(), SessionWard)


def test_init_twice_and_a_missing_init_fail_the_same_way(tmp_path: Path) -> None:
    import flask
    import starlette.applications

    import sessionward.fastapi
    import sessionward.flask

    config = Config(store=f"sqlite:///{tmp_path / 'sessions.db'}", cookie_secure=False)
    flask_app = flask.Flask(__name__)
    starlette_app = starlette.applications.Starlette()
    for module, app in ((sessionward.flask, flask_app), (sessionward.fastapi, starlette_app)):
        with pytest.raises(GeneralError, match=rf"^{module.__name__}\.init\(\) was not called for this app$"):
            module.get_engine(app)
    extension = sessionward.flask.init(flask_app, config)
    sessionward.fastapi.init(starlette_app, config)
    try:
        for module, app in ((sessionward.flask, flask_app), (sessionward.fastapi, starlette_app)):
            with pytest.raises(
                GeneralError, match=rf"^{module.__name__}\.init\(\) was already called for this app$"
            ):
                module.init(app, config)
    finally:
        extension.close()


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
