"""The browser tests' server side: the framework test apps (``tests/frameworks/apps``)
wrapped by a small WSGI/ASGI layer that adds what a browser test needs and nothing of the
session protocol:

- ``GET /test/page/<client>.html``: the test page of a client, which loads the client and
  its adapter (``tests/browser/js/adapter-<client>.js``) and exposes it as ``window.harness``;
- ``GET /test/assets/<file>``: the adapters and the SuperTokens SDK bundles;
- ``GET /test/counters`` / ``POST /test/reset``: how many refresh requests (``POST
  refresh_api_path``) reached the server, the header names of the last one, and what each
  was answered (status, and ``front-token``: absent, ``remove`` or a token);
- CORS for the origins in ``HARNESS_ALLOW_ORIGINS``: ``Access-Control-Allow-Origin`` (that
  origin, never ``*``) and ``-Allow-Credentials`` on every answer; preflights of the refresh
  route, of the sign-out route (the refresh path's base + ``/signout``) and of
  ``/protected`` reach the app (the library answers them), other preflights are answered
  here.

Configured from the environment: ``SESSIONWARD_*`` (``Config.from_env``),
``HARNESS_ASSETS`` (directories, ``os.pathsep``-separated), ``HARNESS_ALLOW_ORIGINS``
(comma-separated origins).
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from sessionward import Config

CLIENTS = {
    # client id -> classic scripts the page loads before the adapter
    "sessionward": (),
    "st-4.2.0": ("supertokens-website-4.2.0.js",),
    "st-5.0.10": ("supertokens-website-5.0.10.js",),
    "st-20.1.6": ("supertokens-website-20.1.6.js",),
    "webjs-0.16.0": ("supertokens-web-js-0.16.0.js",),
}
PAGE_PATH = re.compile(r"^/test/page/([A-Za-z0-9.-]+)\.html$")
ASSET_PATH = re.compile(r"^/test/assets/([A-Za-z0-9._-]+\.js)$")
# Preflights the app answers itself (the library's preflight helper); others are answered here.
APP_PREFLIGHT_PATHS = ("/protected",)
REFRESH_SUFFIX = "/session/refresh"

Answer = tuple[int, list[tuple[str, str]], bytes]


def page(client: str) -> bytes:
    scripts = "".join(f'<script src="/test/assets/{name}"></script>\n' for name in CLIENTS[client])
    return (
        '<!doctype html>\n<html><head><meta charset="utf-8"><title>'
        + client
        + "</title></head><body>\n"
        + scripts
        + f'<script type="module">\nimport * as harness from "/test/assets/adapter-{client}.js";\n'
        "window.harness = harness;\nwindow.harnessReady = true;\n</script>\n</body></html>\n"
    ).encode()


class Harness:
    """The framework-neutral part: answers test routes, counts refreshes, decorates CORS."""

    def __init__(self, config: Config, assets: Iterable[Path], allow_origins: Iterable[str]) -> None:
        self.refresh_path = config.refresh_api_path
        self.assets = [Path(directory) for directory in assets]
        self.allow_origins = {origin for origin in allow_origins if origin}
        self.refreshes = 0
        self.refresh_headers: list[str] = []  # names of the last refresh request's headers
        # (status, front-token: None | "remove" | "token") of each refresh answer
        self.refresh_answers: list[tuple[int, str | None]] = []
        self.lock = threading.Lock()
        base = self.refresh_path.removesuffix(REFRESH_SUFFIX)
        self.app_preflight_paths = {self.refresh_path, base.rstrip("/") + "/signout", *APP_PREFLIGHT_PATHS}

    @classmethod
    def from_env(cls) -> Harness:
        assets = [Path(part) for part in os.environ.get("HARNESS_ASSETS", "").split(os.pathsep) if part]
        origins = os.environ.get("HARNESS_ALLOW_ORIGINS", "").split(",")
        return cls(Config.from_env(), assets, origins)

    def answer(self, method: str, path: str, headers: dict[str, str]) -> Answer | None:
        """The answer to a test route or a harness-answered preflight, else ``None``."""
        if method == "POST" and path == self.refresh_path:
            with self.lock:
                self.refreshes += 1
                self.refresh_headers = sorted(headers)
            return None
        if method == "GET" and (match := PAGE_PATH.match(path)) and match.group(1) in CLIENTS:
            return (
                200,
                [("content-type", "text/html; charset=utf-8"), ("cache-control", "no-store")],
                page(match.group(1)),
            )
        if method == "GET" and (match := ASSET_PATH.match(path)):
            for directory in self.assets:
                candidate = directory / match.group(1)
                if candidate.is_file():
                    return (
                        200,
                        [("content-type", "text/javascript; charset=utf-8"), ("cache-control", "no-store")],
                        candidate.read_bytes(),
                    )
            return 404, [("content-type", "text/plain")], b"no such asset"
        if path == "/test/counters" and method == "GET":
            with self.lock:
                counters = {
                    "refresh": self.refreshes,
                    "refresh_headers": self.refresh_headers,
                    "refresh_answers": self.refresh_answers,
                }
            body = json.dumps(counters).encode()
            return 200, [("content-type", "application/json"), ("cache-control", "no-store")], body
        if path == "/test/reset" and method == "POST":
            with self.lock:
                self.refreshes = 0
                self.refresh_headers = []
                self.refresh_answers = []
            return 200, [("content-type", "application/json")], b"{}"
        if method == "OPTIONS" and path not in self.app_preflight_paths:
            requested = headers.get("access-control-request-headers", "")
            allow = [("access-control-allow-methods", "GET, POST, OPTIONS")]
            if requested:
                allow.append(("access-control-allow-headers", requested))
            return 204, allow, b""
        return None

    def answered(self, method: str, path: str, status: int, headers: Iterable[tuple[str, str]]) -> None:
        """Note the app's answer to a refresh request."""
        if method != "POST" or path != self.refresh_path:
            return
        front = next((value for name, value in headers if name.lower() == "front-token"), None)
        with self.lock:
            self.refresh_answers.append((status, front if front in (None, "remove") else "token"))

    def cors(self, headers: dict[str, str], existing: Iterable[str]) -> list[tuple[str, str]]:
        """CORS headers to add to an answer for a request from an allowed origin."""
        origin = headers.get("origin")
        if origin not in self.allow_origins:
            return []
        present = {name.lower() for name in existing}
        if "access-control-allow-origin" in present:
            return []  # the app answered CORS itself (the client script: "*")
        extra = [("access-control-allow-origin", origin), ("vary", "Origin")]
        if "access-control-allow-credentials" not in present:
            extra.append(("access-control-allow-credentials", "true"))
        if headers.get("access-control-request-method") and "access-control-allow-methods" not in present:
            extra.append(("access-control-allow-methods", "GET, POST, OPTIONS"))
        return extra


def wsgi(app: Callable[..., Any], harness: Harness) -> Callable[..., Any]:
    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        headers = {
            key[5:].replace("_", "-").lower(): value
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        answer = harness.answer(environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""), headers)
        if answer is not None:
            status, response_headers, body = answer
            response_headers = response_headers + harness.cors(headers, (k for k, _ in response_headers))
            start_response(f"{status} X", response_headers)
            return [body]

        def start(status: str, response_headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            harness.answered(
                environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""), int(status[:3]), response_headers
            )
            extra = harness.cors(headers, (k for k, _ in response_headers))
            return start_response(status, list(response_headers) + extra, exc_info)

        return app(environ, start)

    return wrapped


def asgi(app: Callable[..., Any], harness: Harness) -> Callable[..., Any]:
    async def wrapped(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]}
        answer = harness.answer(scope["method"], scope["path"], headers)
        if answer is not None:
            status, response_headers, body = answer
            response_headers = response_headers + harness.cors(headers, (k for k, _ in response_headers))
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [(k.encode(), v.encode()) for k, v in response_headers],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return

        async def decorated(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                sent = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in message.get("headers", [])]
                harness.answered(scope["method"], scope["path"], message["status"], sent)
                existing = [k for k, _ in sent]
                extra = [(k.encode(), v.encode()) for k, v in harness.cors(headers, existing)]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await app(scope, receive, decorated)

    return wrapped


# Entry points for the servers (uvicorn --factory, gunicorn "browser.harness:flask_app()").


def fastapi_app() -> Any:
    from frameworks.apps import fastapi_app as module

    return asgi(module.create_app(Config.from_env()), Harness.from_env())


def flask_app() -> Any:
    from frameworks.apps import flask_app as module

    return wsgi(module.create_app(Config.from_env()).wsgi_app, Harness.from_env())


def django_app() -> Any:
    from frameworks.apps import django_app as module

    return wsgi(module.wsgi_application(Config.from_env()), Harness.from_env())
