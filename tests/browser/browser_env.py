"""Shared pieces of the real-browser suite: headless Debian Chromium driven by Playwright, the
framework test apps on real servers on 127.0.0.1 (uvicorn, gunicorn) wrapped by
``harness.py``, a page server on a second origin, and the SuperTokens SDK bundles.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.processes import TESTS, child_environment, config_environment, free_port

from browser import harness, sdk
from sessionward import Config, SessionWard

HERE = Path(__file__).resolve().parent
CHROMIUM = Path(os.environ.get("SESSIONWARD_CHROMIUM", "/usr/bin/chromium"))
CLIENT_SCRIPT = TESTS.parent / "src" / "sessionward" / "static" / "sessionward.js"
SDK_CLIENTS = {f"st-{version}": version for version in sdk.SDK_VERSIONS}
CLIENTS = ("sessionward", *SDK_CLIENTS)
CURRENT_CLIENTS = sdk.CURRENT_CLIENTS  # today's protocol (test_interop_current.py)
FRAMEWORKS = ("fastapi", "flask", "django")
ACCESS_TOKEN_VALIDITY = 2  # seconds: expiry scenarios wait this long
JS_ASSETS = HERE / "js"
# A site of several host names (www., api., app.) that Chromium resolves to 127.0.0.1
# (--host-resolver-rules in conftest.py): the cookie_domain scenarios.
EXAMPLE_SITE = "example.test"


def require_client(request: pytest.FixtureRequest, client: str) -> None:
    if client == "sessionward":
        if not CLIENT_SCRIPT.exists():
            pytest.skip("src/sessionward/static/sessionward.js is not there yet (the browser client)")
    elif client in CURRENT_CLIENTS:
        request.getfixturevalue("current_sdk_assets")
    else:
        request.getfixturevalue("sdk_assets")


class PageServer:
    """Test pages and assets on a second origin (another port on 127.0.0.1), no API."""

    def __init__(self, assets: list[Path]) -> None:
        page_harness = harness.Harness(Config(store="sqlite:///:memory:"), assets, ())

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                answer = page_harness.answer("GET", self.path, {})
                status, headers, body = answer if answer else (404, [], b"not found")
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@dataclasses.dataclass
class Server:
    framework: str
    base: str
    process: subprocess.Popen[bytes]
    config: Config
    engine: SessionWard | None = None  # on the server's store, for what a test does beside it
    # One connection pool for the test routes: a client per request costs more than a page's
    # worth of browser work (an SSL context each).
    http: httpx.Client = dataclasses.field(default_factory=lambda: httpx.Client(timeout=10))

    def store_engine(self) -> SessionWard:
        """A session engine on the server's store (revocations from the test)."""
        if self.engine is None:
            self.engine = SessionWard(self.config)
        return self.engine

    def counters(self) -> dict[str, Any]:
        result: dict[str, Any] = self.http.get(self.base + "/test/counters").json()
        return result

    def reset(self) -> None:
        self.http.post(self.base + "/test/reset").raise_for_status()

    def stop(self) -> str:
        if self.engine is not None:
            self.engine.close()
        self.http.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        output = self.process.stdout.read().decode(errors="replace") if self.process.stdout else ""
        if self.process.stdout:
            self.process.stdout.close()
        return output


def server_command(framework: str, port: int) -> list[str]:
    if framework == "fastapi":
        return [
            sys.executable,
            "-m",
            "uvicorn",
            "--app-dir",
            str(TESTS),
            "--factory",
            "browser.harness:fastapi_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ]
    # gthread: a browser sends parallel requests (one refresh among several API calls).
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--chdir",
        str(TESTS),
        "-w",
        "1",
        "--threads",
        "8",
        "-b",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
        f"browser.harness:{framework}_app()",
    ]


class ServerPool:
    """Real servers started on first use, one per (framework, options), stopped at the end."""

    def __init__(self, assets: list[Path], allow_origins: list[str], tmp: Path) -> None:
        self.assets = assets
        self.allow_origins = allow_origins
        self.tmp = tmp
        self.servers: dict[tuple[Any, ...], Server] = {}

    def get(self, framework: str, **options: Any) -> Server:
        key = (framework, *sorted(options.items()))
        if key not in self.servers:
            self.servers[key] = self.start(framework, len(self.servers), **options)
        return self.servers[key]

    def start(self, framework: str, index: int, **options: Any) -> Server:
        config = Config(
            store=f"sqlite:///{self.tmp / f'sessions-{index}.db'}",
            access_token_validity=ACCESS_TOKEN_VALIDITY,
            **{"cookie_secure": False, **options},
        )
        port = free_port()
        env = child_environment(
            {
                **config_environment(config),
                "PYTHONUNBUFFERED": "1",
                "HARNESS_ASSETS": os.pathsep.join(str(path) for path in self.assets),
                "HARNESS_ALLOW_ORIGINS": ",".join(self.allow_origins),
            }
        )
        process = subprocess.Popen(
            server_command(framework, port), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        server = Server(framework, f"http://127.0.0.1:{port}", process, config)
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(server.base + "/health", timeout=2).status_code == 200:
                    return server
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{framework} server did not start:\n{server.stop()[-3000:]}")
            time.sleep(0.05)

    def close(self) -> None:
        for server in self.servers.values():
            server.stop()


class Profile:
    """A browser profile (Playwright context) with one tab, reused by the tests of a module:
    :meth:`wipe` leaves it as fresh as a new one for the session clients (no cookies, no
    storage on the origin it visited, no page), without a new renderer process each time."""

    def __init__(self, browser: Any) -> None:
        self.context = browser.new_context()
        self.context.set_default_timeout(20_000)
        self.page = self.context.new_page()

    def wipe(self) -> None:
        # The page's origin is the only one it visited since the last wipe.
        if self.page.url.startswith("http"):
            self.page.evaluate("() => { localStorage.clear(); sessionStorage.clear(); }")
        self.page.goto("about:blank")
        self.context.clear_cookies()

    def close(self) -> None:
        self.context.close()


class ClientPage:
    """One browser tab with one client's test page, talking to one API server."""

    def __init__(self, page: Any, server: Server, client: str) -> None:
        self.page = page
        self.server = server
        self.client = client
        self.errors: list[str] = []
        page.on("pageerror", self._page_error)

    def _page_error(self, error: Any) -> None:
        self.errors.append(str(error))

    def detach(self) -> None:
        """Stop listening to the tab (it goes on serving other tests)."""
        self.page.remove_listener("pageerror", self._page_error)

    def open(self, origin: str | None = None, init: dict[str, Any] | None = None) -> ClientPage:
        """Load the test page (from ``origin``, default the API's) and initialise the client
        (``init``: more options for the adapter's ``init``)."""
        self.page.goto(self.page_url(origin))
        return self.initialise(init)

    def page_url(self, origin: str | None = None) -> str:
        return f"{origin or self.server.base}/test/page/{self.client}.html"

    def start_loading(self, origin: str | None = None) -> ClientPage:
        """Start loading the test page and return at once (several tabs load side by side);
        :meth:`initialise` waits for it."""
        self.page.goto(self.page_url(origin), wait_until="commit")
        return self

    def initialise(self, init: dict[str, Any] | None = None) -> ClientPage:
        """Wait for the loaded test page, then initialise the client."""
        self.page.wait_for_function("window.harnessReady === true")
        options = {"apiBase": self.server.base, "refreshPath": self.server.config.refresh_api_path}
        self.run("init", {**options, **(init or {})})
        return self

    def run(self, operation: str, *args: Any) -> Any:
        return self.page.evaluate(f"(args) => window.harness[{operation!r}](...args)", list(args))

    def login(self, user_id: str = "alice", payload: dict[str, Any] | None = None) -> None:
        answer = self.run("login", user_id, payload or {})
        assert answer["status"] == 200, answer
        assert self.run("doesSessionExist") is True

    def protected(self, method: str = "GET") -> dict[str, Any]:
        result: dict[str, Any] = self.run("call", "/protected", method)
        return result

    def refreshes(self) -> int:
        count: int = self.server.counters()["refresh"]
        return count
