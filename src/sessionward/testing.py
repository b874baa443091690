"""Helpers for your own tests: log a test client in without going through a login form,
and make its access token "expire" to exercise the refresh flow.

::

    from sessionward.testing import login_flask_client, expire_access_token

    def test_profile(app):
        client = app.test_client()
        login_flask_client(client, "user-42", jwt_payload={"role": "admin"})
        assert client.get("/profile").status_code == 200
        expire_access_token(client)
        assert client.get("/profile").status_code == 401   # "try refresh token"

The session is created with the app's own engine (same store, same keys), and the cookies
a browser would hold are put into the client's cookie jar with the paths the protocol uses.
Each helper returns the :class:`~sessionward.SessionTokens`.
"""

from __future__ import annotations

import asyncio
import importlib
from typing import Any

from .config import Config
from .engine.aio import AsyncSessionWard
from .engine.sync import SessionWard
from .engine.types import SessionTokens
from .transport import (
    ACCESS_TOKEN_COOKIE,
    ID_REFRESH_TOKEN_COOKIE,
    REFRESH_TOKEN_COOKIE,
    ResponseEffects,
)

__all__ = [
    "expire_access_token",
    "login_django_client",
    "login_flask_client",
    "login_starlette_client",
    "session_cookies",
]


def session_cookies(tokens: SessionTokens, config: Config) -> list[tuple[str, str, str]]:
    """``(name, value, path)`` of the three cookies a browser holds for ``tokens``."""
    return [
        (ACCESS_TOKEN_COOKIE, tokens.access_token.value, config.access_token_path),
        (REFRESH_TOKEN_COOKIE, tokens.refresh_token.value, config.refresh_api_path),
        (ID_REFRESH_TOKEN_COOKIE, tokens.id_refresh_token.value, config.access_token_path),
    ]


def login_flask_client(
    client: Any,
    user_id: str,
    jwt_payload: dict[str, Any] | None = None,
    session_data: dict[str, Any] | None = None,
) -> SessionTokens:
    """Create a session with the Flask app's engine and put its cookies in ``client``
    (a ``FlaskClient`` with cookies enabled)."""
    extension = client.application.extensions["sessionward"]
    engine: SessionWard = extension.engine
    tokens = engine.create_new_session(user_id, jwt_payload, session_data)
    for name, value, path in session_cookies(tokens, engine.config):
        client.set_cookie(name, value, path=path, domain=engine.config.cookie_domain or "localhost")
    return tokens


def login_starlette_client(
    client: Any,
    user_id: str,
    jwt_payload: dict[str, Any] | None = None,
    session_data: dict[str, Any] | None = None,
) -> SessionTokens:
    """Create a session with the app's engine (FastAPI or Starlette, set up with
    ``sessionward.fastapi.init``) and put its cookies in ``client`` (a ``TestClient``).

    With ``cookie_secure=True`` (the default) the cookies only travel over https: create
    the client with ``base_url="https://testserver"``."""
    engine: AsyncSessionWard = client.app.state.sessionward
    coroutine = engine.create_new_session(user_id, jwt_payload, session_data)
    portal = getattr(client, "portal", None)
    if portal is not None:
        tokens: SessionTokens = portal.call(lambda: coroutine)
    else:
        tokens = asyncio.run(coroutine)
    # Feed the jar the exact Set-Cookie headers a login response carries, so cookies land
    # under the same domain as the ones later responses set (never two copies of a name).
    effects = ResponseEffects(engine.config)
    effects.set_session(tokens)
    request = client.build_request("GET", engine.config.access_token_path)
    http_package = importlib.import_module(type(request).__module__.split(".")[0])
    response = http_package.Response(
        200, headers=[("set-cookie", value) for value in effects.cookies.values()], request=request
    )
    client.cookies.extract_cookies(response)
    return tokens


def login_django_client(
    client: Any,
    user_id: str,
    jwt_payload: dict[str, Any] | None = None,
    session_data: dict[str, Any] | None = None,
) -> SessionTokens:
    """Create a session with the configured Django engine and put its cookies in ``client``
    (a ``django.test.Client`` or ``AsyncClient``)."""
    from .django import get_engine  # imported here: Django is an optional extra

    engine = get_engine()
    tokens = engine.create_new_session(user_id, jwt_payload, session_data)
    for name, value, path in session_cookies(tokens, engine.config):
        client.cookies[name] = value
        client.cookies[name]["path"] = path
    return tokens


def expire_access_token(client: Any) -> None:
    """Drop the access-token cookie from a Flask, Starlette/httpx or Django test client,
    as a browser does when it expires: the next request answers "try refresh token" and a
    POST to the refresh route renews it."""
    application = getattr(client, "application", None)
    if application is not None and "sessionward" in getattr(application, "extensions", {}):
        config: Config = application.extensions["sessionward"].config  # Flask
        client.delete_cookie(
            ACCESS_TOKEN_COOKIE, domain=config.cookie_domain or "localhost", path=config.access_token_path
        )
        return
    cookies = getattr(client, "cookies", None)
    if cookies is None:
        raise TypeError(f"cannot find the cookie jar of {type(client).__name__}")
    jar = getattr(cookies, "jar", None)
    if jar is not None:  # httpx.Cookies (Starlette's TestClient)
        for cookie in list(jar):
            if cookie.name == ACCESS_TOKEN_COOKIE:
                jar.clear(cookie.domain, cookie.path, cookie.name)
        return
    cookies.pop(ACCESS_TOKEN_COOKIE, None)  # http.cookies.SimpleCookie (Django)
