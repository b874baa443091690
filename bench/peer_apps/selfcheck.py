"""Check one peer app in-process: ``python selfcheck.py MODULE`` (``BENCH_ALG`` etc. from env).

Prints the problems found and exits 1 if there are any. One process per app, since each
Django app configures Django's settings at import.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import sys
from typing import Any

import catalog
import httpx


def _is_asgi(app: Any) -> bool:
    call = app if inspect.isfunction(app) else getattr(app, "__call__", None)  # noqa: B004
    return inspect.iscoroutinefunction(call)


async def _check_asgi(app: Any, peer: catalog.PeerApp) -> list[str]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        sync_client = _SyncOverAsync(client)
        return await asyncio.to_thread(catalog.check, sync_client, peer)  # type: ignore[arg-type]


class _SyncOverAsync:
    """A blocking facade over an ``AsyncClient`` (``check`` is written against ``httpx.Client``)."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.loop = asyncio.get_running_loop()

    @property
    def cookies(self) -> httpx.Cookies:
        return self.client.cookies

    def _run(self, coroutine: Any) -> httpx.Response:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self._run(self.client.get(url, **kwargs))

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self._run(self.client.post(url, **kwargs))


def main(module_name: str) -> int:
    peer = next(app for app in catalog.APPS if app.module == module_name)
    app = importlib.import_module(module_name).app
    if _is_asgi(app):
        problems = asyncio.run(_check_asgi(app, peer))
    else:
        with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://bench") as client:
            problems = catalog.check(client, peer)
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
