"""Entry points of the drill's servers (``running_server(..., entry_points=...)``): the
framework test apps of ``frameworks.apps.serve``, with every store call of the process
counted.

Every engine the process makes (``SessionWard`` / ``AsyncSessionWard``) gets its store
wrapped in a recording store (the real store behind it; calls are only counted). A daemon
thread writes the counts, ``{"calls": {method: count}}``, to
``$SESSIONWARD_TEST_DRILL_COUNTS/<framework>-<pid>.json`` every 50 ms.
"""

from __future__ import annotations

import inspect
import json
import os
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from frameworks.apps import serve
from support.stores import RecordingStore

from sessionward import AsyncSessionWard, SessionWard

INTERVAL = 0.05


class AsyncRecordingStore:
    """Delegates to a real async store and counts every method call (coroutine methods are
    counted when called, like the synchronous :class:`RecordingStore`)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if not callable(attribute):
            return attribute

        def count() -> None:
            with self._lock:
                self.calls[name] += 1

        if inspect.iscoroutinefunction(attribute):

            async def call_async(*args: Any, **kwargs: Any) -> Any:
                count()
                return await attribute(*args, **kwargs)

            return call_async

        def call(*args: Any, **kwargs: Any) -> Any:
            count()
            return attribute(*args, **kwargs)

        return call


_recorders: list[Any] = []


def _instrument(framework: str) -> None:
    """Wrap the store of every engine made from now on; start writing the counts."""
    sync_init, async_init = SessionWard.__init__, AsyncSessionWard.__init__

    def sync_wrapped(self: SessionWard, *args: Any, **kwargs: Any) -> None:
        sync_init(self, *args, **kwargs)
        self.store = RecordingStore(self.store)
        _recorders.append(self.store)

    def async_wrapped(self: AsyncSessionWard, *args: Any, **kwargs: Any) -> None:
        async_init(self, *args, **kwargs)
        self.store = AsyncRecordingStore(self.store)
        _recorders.append(self.store)

    SessionWard.__init__ = sync_wrapped  # type: ignore[method-assign]
    AsyncSessionWard.__init__ = async_wrapped  # type: ignore[method-assign]
    target = Path(os.environ["SESSIONWARD_TEST_DRILL_COUNTS"]) / f"{framework}-{os.getpid()}.json"

    def write() -> None:
        while True:
            total: Counter[str] = Counter()
            for recorder in list(_recorders):
                with recorder._lock:
                    total.update(recorder.calls)
            temporary = target.with_suffix(".tmp")
            temporary.write_text(json.dumps({"calls": dict(total)}))
            temporary.replace(target)
            threading.Event().wait(INTERVAL)

    threading.Thread(target=write, name="drill-counts", daemon=True).start()


def flask_app() -> Any:
    """The Flask test app (gunicorn)."""
    _instrument("flask-gunicorn")
    return serve.flask_app()


def fastapi_app() -> Any:
    """The FastAPI test app (uvicorn)."""
    _instrument("fastapi-uvicorn")
    return serve.fastapi_app()


def django_app() -> Any:
    """The Django test app (gunicorn)."""
    _instrument("django-gunicorn")
    return serve.django_app()
