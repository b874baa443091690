"""sessionward's configuration for the peer apps, and the benchmark's refresh-token echo.

wrk's Lua ``response`` callback sees one value per header name, so of the three
``Set-Cookie`` headers of a refresh it would see only the last; the echo copies the new
``sRefreshToken`` into one extra response header that the chained-refresh script reads.
It runs on the refresh route only and costs sessionward, never the peers, a few µs.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from typing import Any

import _env

from sessionward import Config

REFRESH_PATH = "/session/refresh"
_REFRESH_COOKIE = re.compile(r"sRefreshToken=([^;]*)")


def config() -> Config:
    """The store per algorithm in the work directory; cookies over plain http."""
    store = os.environ.get("SESSIONWARD_STORE") or f"sqlite:///{_env.db_path('sessionward')}"
    return Config(store=store, cookie_secure=False, access_token_algorithm=_env.ALG)


def refresh_token_of(set_cookie_values: Iterable[str]) -> str | None:
    for value in set_cookie_values:
        match = _REFRESH_COOKIE.match(value.strip())
        if match:
            return match.group(1)
    return None


def wsgi_echo(app: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a WSGI app so that a refresh answer repeats the new refresh token in one header."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("PATH_INFO") != REFRESH_PATH:
            return app(environ, start_response)

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            token = refresh_token_of(v for k, v in headers if k.lower() == "set-cookie")
            if token:
                headers = [*headers, (_env.REFRESH_HEADER, token)]
            return start_response(status, headers, exc_info)

        return app(environ, start)

    return wrapped


class AsgiEcho:
    """The same for an ASGI app."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != REFRESH_PATH:
            await self.app(scope, receive, send)
            return

        async def echo(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                cookies = (v.decode("latin-1") for k, v in headers if k.lower() == b"set-cookie")
                token = refresh_token_of(cookies)
                if token:
                    echo_header = (_env.REFRESH_HEADER.encode(), token.encode())
                    message = {**message, "headers": [*headers, echo_header]}
            await send(message)

        await self.app(scope, receive, echo)
