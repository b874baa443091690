"""Open the test app of one framework, through its own test client or a real server, as a
:class:`frameworks.wire.WireClient`.

``FRAMEWORKS`` lists the in-process variants (each framework's own test client) and the
real servers on 127.0.0.1: FastAPI under uvicorn, Flask and Django under gunicorn.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.cookies import SimpleCookie
from pathlib import Path
from typing import IO, Any

import httpx
from support.processes import TESTS, child_environment, config_environment, free_port

from frameworks.wire import Headers, WireClient, WireResponse
from sessionward import Config

IN_PROCESS = ("flask", "fastapi", "django")
SERVERS = ("flask-gunicorn", "fastapi-uvicorn", "django-gunicorn")
FRAMEWORKS = IN_PROCESS + SERVERS
WITH_STARLETTE = (*FRAMEWORKS, "starlette")
"""The protocol suite also runs on plain Starlette (the FastAPI adapter without ``Depends``)."""


@contextmanager
def open_client(framework: str, config: Config) -> Iterator[WireClient]:
    opener = {
        "flask": _flask,
        "fastapi": _fastapi,
        "starlette": _starlette,
        "django": _django,
    }.get(framework)
    if opener is not None:
        with opener(config) as client:
            yield client
    else:
        with _server(framework, config) as client:
            yield client


@contextmanager
def _flask(config: Config) -> Iterator[WireClient]:
    from frameworks.apps import flask_app

    app = flask_app.create_app(config)
    test_client = app.test_client(use_cookies=False)

    def transport(method: str, path: str, headers: Headers, body: bytes | None) -> WireResponse:
        response = test_client.open(path, method=method, headers=headers, data=body)
        return WireResponse(response.status_code, list(response.headers.items()), response.get_data())

    try:
        yield WireClient(transport)
    finally:
        app.extensions["sessionward"].engine.close()


@contextmanager
def _fastapi(config: Config) -> Iterator[WireClient]:
    from frameworks.apps import fastapi_app

    with _asgi(fastapi_app.create_app(config)) as client:
        yield client


@contextmanager
def _starlette(config: Config) -> Iterator[WireClient]:
    from frameworks.apps import fastapi_app

    with _asgi(fastapi_app.create_starlette_app(config)) as client:
        yield client


@contextmanager
def _asgi(app: Any) -> Iterator[WireClient]:
    from starlette.testclient import TestClient

    # The peer is 127.0.0.1, as for the other frameworks' test clients and the real servers
    # (Starlette's default, "testclient", is no IP address).
    with TestClient(app, base_url="http://testserver", client=("127.0.0.1", 50000)) as test_client:

        def transport(method: str, path: str, headers: Headers, body: bytes | None) -> WireResponse:
            test_client.cookies.clear()
            raw_headers = [(key.encode("latin-1"), value.encode("latin-1")) for key, value in headers]
            response = test_client.request(method, path, headers=raw_headers, content=body)
            return WireResponse(response.status_code, list(response.headers.multi_items()), response.content)

        yield WireClient(transport)


@contextmanager
def _django(config: Config) -> Iterator[WireClient]:
    from django.test import Client  # type: ignore[import-untyped]

    from frameworks.apps import django_app

    with django_app.configured(config):
        test_client = Client()

        def transport(method: str, path: str, headers: Headers, body: bytes | None) -> WireResponse:
            test_client.cookies = SimpleCookie()
            # Django's test client takes one value per header name: repeats are joined with
            # "," as a WSGI server (gunicorn) joins them.
            joined: dict[str, str] = {}
            for key, value in headers:
                key = key.lower()
                joined[key] = f"{joined[key]},{value}" if key in joined else value
            content_type = joined.pop("content-type", "")
            response = test_client.generic(
                method,
                path,
                data=body or b"",
                content_type=content_type,
                headers=joined,
            )
            raw = [(key, value) for key, value in response.items()]
            raw += [("set-cookie", morsel.OutputString()) for morsel in response.cookies.values()]
            return WireResponse(response.status_code, raw, response.content)

        yield WireClient(transport)


def _server_command(framework: str, port: int, entry_points: str) -> list[str]:
    bind = f"127.0.0.1:{port}"
    if framework == "fastapi-uvicorn":
        return [
            sys.executable,
            "-m",
            "uvicorn",
            "--app-dir",
            str(TESTS),
            "--factory",
            f"{entry_points}:fastapi_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--log-level",
            "warning",
            # uvicorn would otherwise rewrite the peer from X-Forwarded-For (it trusts
            # 127.0.0.1 by default): the peer must be what the connection says, as under
            # gunicorn, for the trusted-proxy tests.
            "--no-proxy-headers",
        ]
    app = "flask_app" if framework == "flask-gunicorn" else "django_app"
    # Cookie headers up to 16 KB reach the app, so oversized tokens get the library's answer.
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--chdir",
        str(TESTS),
        "-w",
        "1",
        "-b",
        bind,
        "--limit-request-field_size",
        "16384",
        "--log-level",
        "warning",
        f"{entry_points}:{app}()",
    ]


@contextmanager
def running_server(
    framework: str, config: Config, entry_points: str = "frameworks.apps.serve", log: Path | None = None
) -> Iterator[str]:
    """Serve a test app on 127.0.0.1 in a child process (one of :data:`SERVERS`) until the
    block ends; yields its base URL. ``entry_points`` is the module (under ``tests/``)
    whose ``flask_app``, ``fastapi_app`` and ``django_app`` build the apps; the app must
    answer ``GET /health`` with 200. ``log``: a file that receives the server's output
    (otherwise a pipe that nobody reads while it runs: a server that logs a lot, such as
    one answering 503 in a loop, would block on it)."""
    port = free_port()
    env = child_environment({**config_environment(config), "PYTHONUNBUFFERED": "1"})
    output: IO[bytes] | int = subprocess.PIPE if log is None else log.open("ab")
    try:
        process = subprocess.Popen(
            _server_command(framework, port, entry_points),
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    finally:
        if not isinstance(output, int):
            output.close()  # the child has its own copy
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=10) as probe:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if probe.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    if log is not None:
                        said = log.read_text(errors="replace")
                    else:
                        said = process.stdout.read().decode(errors="replace") if process.stdout else ""
                    raise RuntimeError(f"{framework} server did not start:\n{said[-3000:]}")
                time.sleep(0.05)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()


@contextmanager
def _server(framework: str, config: Config) -> Iterator[WireClient]:
    with running_server(framework, config) as base, httpx.Client(base_url=base, timeout=10) as http:

        def transport(method: str, path: str, headers: Headers, body: bytes | None) -> WireResponse:
            http.cookies.clear()
            raw_headers = [(key.encode("latin-1"), value.encode("latin-1")) for key, value in headers]
            response = http.request(method, path, headers=raw_headers, content=body)
            return WireResponse(response.status_code, list(response.headers.multi_items()), response.content)

        yield WireClient(transport, base_url=base)
