"""Entry points of the worker-model test's servers (``test_feed_worker_models.py``): the
Flask and FastAPI test apps of ``frameworks.apps``, each response saying which worker
served it and what that worker's change feed looks like.

Every engine the process makes gets its store wrapped in a recording store (calls are only
counted, as in ``drill_apps.py``). Every response carries the header ``x-worker``, a JSON
object describing the process that answered, taken after the request was handled:

- ``pid``, ``ppid``; ``thread``: the native id of the thread that handled the request;
- ``calls``: the store calls this process made so far (every engine, every method);
- ``listeners``: native ids of the threads of this process named like a change-feed
  listener (``sessionward-changes…``);
- ``feeds``: per engine that started its feed: ``live`` (``change_feed_state()``),
  ``pid`` (the process that started the listener's thread), ``thread`` (its native id, or
  ``null`` when not running here), ``connection`` (the PostgreSQL backend pid or the Redis
  client id of the listener's connection; ``null`` on SQLite).

With ``SESSIONWARD_TEST_WARM_START=1`` the Flask factory starts its engine at once (its
listener included) and writes that description, as ``loaded-<pid>.json``, to
``$SESSIONWARD_TEST_WORKER_DIR``: under gunicorn ``--preload`` the factory runs in the
master, so this is the master's listener, before any worker is forked.
"""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from pathlib import Path
from typing import Any

from frameworks.apps import fastapi_app as fastapi_module
from frameworks.apps import flask_app as flask_module
from reliability.drill_apps import AsyncRecordingStore
from support.stores import RecordingStore

from sessionward import AsyncSessionWard, Config, SessionWard

LISTENER_THREAD_PREFIX = "sessionward-changes"
HEADER = "x-worker"

_recorders: list[Any] = []
_engines: list[Any] = []
_instrumented = False


def _instrument() -> None:
    """Wrap the store of every engine made from now on and remember the engine."""
    global _instrumented
    if _instrumented:
        return
    _instrumented = True
    sync_init, async_init = SessionWard.__init__, AsyncSessionWard.__init__

    def sync_wrapped(self: SessionWard, *args: Any, **kwargs: Any) -> None:
        sync_init(self, *args, **kwargs)
        self.store = RecordingStore(self.store)
        _recorders.append(self.store)
        _engines.append(self)

    def async_wrapped(self: AsyncSessionWard, *args: Any, **kwargs: Any) -> None:
        async_init(self, *args, **kwargs)
        self.store = AsyncRecordingStore(self.store)
        _recorders.append(self.store)
        _engines.append(self)

    SessionWard.__init__ = sync_wrapped  # type: ignore[method-assign]
    AsyncSessionWard.__init__ = async_wrapped  # type: ignore[method-assign]


def _feed(engine: Any) -> dict[str, Any] | None:
    listener = engine._core.feed.listener
    if listener is None:
        return None
    thread = listener._thread if listener.running else None
    connection = getattr(listener, "backend_pid", None) or getattr(listener, "client_id", None)
    return {
        "live": engine.change_feed_state().live,
        "pid": listener._pid,
        "thread": None if thread is None else thread.native_id,
        "connection": connection,
    }


def describe() -> dict[str, Any]:
    """This process, its store calls and its change-feed listeners (see the module docstring)."""
    calls: Counter[str] = Counter()
    for recorder in list(_recorders):
        with recorder._lock:
            calls.update(recorder.calls)
    return {
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "thread": threading.get_native_id(),
        "calls": sum(calls.values()),
        "listeners": sorted(
            thread.native_id or 0
            for thread in threading.enumerate()
            if thread.name.startswith(LISTENER_THREAD_PREFIX)
        ),
        "feeds": [feed for engine in list(_engines) if (feed := _feed(engine)) is not None],
    }


def _header() -> tuple[str, str]:
    return HEADER, json.dumps(describe(), separators=(",", ":"))


def flask_app() -> Any:
    """The Flask test app (gunicorn), every response with ``x-worker``."""
    _instrument()
    app = flask_module.create_app(Config.from_env())
    inner = app.wsgi_app

    def wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        def start(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            return start_response(status, [*headers, _header()], *exc_info)

        return inner(environ, start)

    app.wsgi_app = wsgi_app  # type: ignore[method-assign]
    if os.environ.get("SESSIONWARD_TEST_WARM_START") == "1":
        app.extensions["sessionward"].engine.jwks()  # start-up, and the listener
        target = Path(os.environ["SESSIONWARD_TEST_WORKER_DIR"]) / f"loaded-{os.getpid()}.json"
        target.write_text(json.dumps(describe()))
    return app


Message = MutableMapping[str, Any]


def fastapi_app() -> Any:
    """The FastAPI test app (uvicorn, or gunicorn with uvicorn's worker class), every
    response with ``x-worker``."""
    _instrument()
    app = fastapi_module.create_app(Config.from_env())

    async def asgi(
        scope: Message, receive: Callable[[], Awaitable[Message]], send: Callable[[Message], Awaitable[None]]
    ) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                name, value = _header()
                message["headers"] = [*message.get("headers", []), (name.encode(), value.encode())]
            await send(message)

        await app(scope, receive, send_with_header)

    return asgi
