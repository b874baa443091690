"""Entry points of the real servers the client tests start (see
``frameworks.clients.running_server``): each framework's test app, wrapped so that the
server counts the requests it receives by method and path, and tells them at
``GET /_counts`` (a JSON object ``{"POST /session/refresh": 1, ...}``, that route
excluded)."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from frameworks.apps import serve

COUNTS_PATH = "/_counts"


class _Counts:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def add(self, method: str, path: str) -> None:
        with self._lock:
            self._counts[f"{method} {path}"] += 1

    def body(self) -> bytes:
        with self._lock:
            return json.dumps(dict(self._counts)).encode()


class CountingWsgi:
    """A WSGI app that counts, then hands over to ``app``."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.counts = _Counts()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        if (method, path) == ("GET", COUNTS_PATH):
            body = self.counts.body()
            start_response(
                "200 OK", [("content-type", "application/json"), ("content-length", str(len(body)))]
            )
            return [body]
        self.counts.add(method, path)
        result: Iterable[bytes] = self.app(environ, start_response)
        return result


class CountingAsgi:
    """An ASGI app that counts HTTP requests, then hands over to ``app`` (lifespan too)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.counts = _Counts()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            if (scope["method"], scope["path"]) == ("GET", COUNTS_PATH):
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [(b"content-type", b"application/json")],
                    }
                )
                await send({"type": "http.response.body", "body": self.counts.body()})
                return
            self.counts.add(scope["method"], scope["path"])
        await self.app(scope, receive, send)


def flask_app() -> CountingWsgi:
    return CountingWsgi(serve.flask_app())


def fastapi_app() -> CountingAsgi:
    return CountingAsgi(serve.fastapi_app())


def django_app() -> CountingWsgi:
    return CountingWsgi(serve.django_app())
