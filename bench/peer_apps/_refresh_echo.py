"""The benchmark's refresh-token echo (no import of sessionward: the supertokens-jwt-ref
app uses it from its own virtualenv).

wrk's Lua ``response`` callback sees one value per header name, so of the three
``Set-Cookie`` headers of a refresh it would see only the last; the echo copies the new
refresh cookie(s) into one extra response header, as the ``Cookie`` value of the next
refresh, which the chained-refresh script reads. It runs on the refresh route only and
costs the app it wraps (sessionward, and the supertokens-jwt-ref app, whose refresh needs
its ``sIdRefreshToken`` too) a few µs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

import _env

REFRESH_PATH = "/session/refresh"
_COOKIE = re.compile(r"\s*([^=;\s]+)=([^;]*)")


def refresh_cookie_of(set_cookie_values: Iterable[str], names: tuple[str, ...]) -> str | None:
    """``name=value; ...`` of the cookies ``names`` set by a response (None if one is missing)."""
    found: dict[str, str] = {}
    for value in set_cookie_values:
        match = _COOKIE.match(value)
        if match and match.group(1) in names:
            found[match.group(1)] = match.group(2)
    if len(found) != len(names):
        return None
    return "; ".join(f"{name}={found[name]}" for name in names)


def wsgi_echo(
    app: Callable[..., Any], path: str = REFRESH_PATH, names: tuple[str, ...] = ("sRefreshToken",)
) -> Callable[..., Any]:
    """Wrap a WSGI app so that a refresh answer repeats the new refresh token in one header."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("PATH_INFO") != path:
            return app(environ, start_response)

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            token = refresh_cookie_of((v for k, v in headers if k.lower() == "set-cookie"), names)
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
                token = refresh_cookie_of(cookies, ("sRefreshToken",))
                if token:
                    echo_header = (_env.REFRESH_HEADER.encode(), token.encode())
                    message = {**message, "headers": [*headers, echo_header]}
            await send(message)

        await self.app(scope, receive, echo)
