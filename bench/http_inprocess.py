"""In-process cost of one request to the HTTP benchmark apps, without sockets or servers.

    .venv/bin/python bench/http_inprocess.py [--rounds 11] [--frameworks fastapi,flask,django] [--profile]

Calls each app of ``bench/http_apps/`` directly (ASGI for FastAPI on an asyncio loop, WSGI
for Flask and Django) with the request ``wrk`` sends (``Host`` and, except for /plain, the
``Cookie`` of one session), in interleaved rounds (``_harness.py``); reports the median µs
per request. The "cookie sent" references show what carrying the cookie alone costs; for
FastAPI, the "bare FastAPI" rows are the same requests to ``bench_fastapi_bare`` (no
sessionward at all), in the same rounds.
``--profile`` prints a cProfile of the protected endpoint instead. Each framework runs in
its own child process (Django settings are per process).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _harness import Batch, median, run_interleaved, spread, table
from cryptography.hazmat.primitives import serialization

from sessionward import Config, SessionWard

HERE = Path(__file__).resolve().parent
PATHS = ("/plain", "/protected", "/floor")


def prepare_environment(work: Path) -> str:
    """Mint one session in a fresh store, point the apps' config at it; return the cookie."""
    config = Config(store=f"sqlite:///{work}/sessions.db", cookie_secure=False)
    with SessionWard(config) as engine:
        tokens = engine.create_new_session("user-0", {"role": "member", "n": 0})
        key = engine._core.keys.state.signing_key  # type: ignore[union-attr]  # internal: the floor's key
        os.environ["BENCH_FLOOR_PUBLIC_KEY"] = key.public_key.public_bytes(  # type: ignore[union-attr]
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()
    os.environ["SESSIONWARD_STORE"] = config.store
    os.environ["SESSIONWARD_COOKIE_SECURE"] = "false"
    return f"sAccessToken={tokens.access_token.value}; sIdRefreshToken={tokens.id_refresh_token.value}"


def asgi_batch(app: Any, path: str, cookie: str | None) -> Batch:
    headers = [(b"host", b"127.0.0.1:8000")]
    if cookie is not None:
        headers.append((b"cookie", cookie.encode("latin-1")))
    template = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    request_message = {"type": "http.request", "body": b"", "more_body": False}
    loop = asyncio.new_event_loop()

    async def receive() -> dict[str, Any]:
        return request_message

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start" and message["status"] != 200:
            raise RuntimeError(f"{path}: status {message['status']}")

    async def run(n: int) -> float:
        start = loop.time()
        for _ in range(n):
            await app(dict(template), receive, send)
        return loop.time() - start

    return lambda n: loop.run_until_complete(run(n))


def wsgi_batch(app: Callable[..., Any], path: str, cookie: str | None) -> Batch:
    from werkzeug.test import EnvironBuilder

    headers = {"Host": "127.0.0.1:8000"}
    if cookie is not None:
        headers["Cookie"] = cookie
    template = EnvironBuilder(path=path, headers=headers).get_environ()

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        if not status.startswith("200"):
            raise RuntimeError(f"{path}: status {status}")

    def run(n: int) -> float:
        import time

        start = time.perf_counter()
        for _ in range(n):
            body = app(dict(template), start_response)
            for _chunk in body:
                pass
            close = getattr(body, "close", None)
            if close is not None:
                close()
        return time.perf_counter() - start

    return run


def load(framework: str) -> tuple[Callable[[str, str | None], Batch], Any]:
    sys.path.insert(0, str(HERE / "http_apps"))
    if framework == "fastapi":
        import bench_fastapi

        return (lambda path, cookie: asgi_batch(bench_fastapi.app, path, cookie)), bench_fastapi.app
    if framework == "flask":
        import bench_flask

        return (lambda path, cookie: wsgi_batch(bench_flask.app, path, cookie)), bench_flask.app
    import bench_django

    return (lambda path, cookie: wsgi_batch(bench_django.application, path, cookie)), bench_django.application


def child(framework: str, rounds: int, profile: bool) -> None:
    work = Path(tempfile.mkdtemp(prefix="sessionward-inprocess-"))
    cookie = prepare_environment(work)
    make, _app = load(framework)
    if profile:
        batch = make("/protected", cookie)
        batch(2000)
        profiler = cProfile.Profile()
        profiler.enable()
        batch(20000)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(35)
        return
    cases = [(path, path, path != "/plain") for path in PATHS]
    cases.append(("/plain, cookie sent", "/plain", True))
    batches = [(label, make(path, cookie if with_cookie else None)) for label, path, with_cookie in cases]
    if framework == "fastapi":
        import bench_fastapi_bare

        cases += [
            ("/protected-direct", "/protected-direct", True),
            ("/noop-depends, cookie sent", "/noop-depends", True),
        ]
        batches += [(label, make(path, cookie)) for label, path, _ in cases[-2:]]
        # The same requests to the app without sessionward (the reference of http_vs_bare.py).
        for path in ("/plain", "/protected-direct"):
            label = f"{path}, bare FastAPI, cookie sent"
            cases.append((label, path, True))
            batches.append((label, asgi_batch(bench_fastapi_bare.app, path, cookie)))
    results = run_interleaved(batches, rounds)
    for label, _path, _with_cookie in cases:
        values = results[label]
        print(f"{framework}\t{label}\t{median(values):.1f}\t{spread(values)}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--frameworks", default="fastapi,flask,django")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.rounds, args.profile)
        return
    rows = []
    for framework in args.frameworks.split(","):
        command = [sys.executable, __file__, "--child", framework, "--rounds", str(args.rounds)]
        if args.profile:
            subprocess.run([*command, "--profile"], check=True)
            continue
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        for line in output.splitlines():
            fw, path, value, minmax = line.split("\t")
            rows.append((fw, path, value, minmax))
    if rows:
        plain = {fw: float(value) for fw, path, value, _ in rows if path == "/plain"}
        print(
            table(
                ["framework", "endpoint", "µs/request (median)", "min-max", "over /plain"],
                [
                    (fw, path, value, minmax, f"+{float(value) - plain[fw]:.1f} µs")
                    for fw, path, value, minmax in rows
                ],
            )
        )


if __name__ == "__main__":
    main()
