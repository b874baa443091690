"""Run the demo app under uvicorn and tell the user where to point a browser."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["MissingExtraError", "default_store", "run"]

INSTALL_HINT = "pip install 'sessionward[fastapi]'"


class MissingExtraError(RuntimeError):
    """Starlette or uvicorn is not installed (the ``fastapi`` extra)."""


def default_store() -> str:
    """The demo's default store: one SQLite file in the system's temporary directory, so
    that demo sessions survive a restart of the demo and never litter the working
    directory."""
    return f"sqlite:///{Path(tempfile.gettempdir()) / 'sessionward-demo.sqlite3'}"


def run(host: str, port: int, store: str, out: Callable[[str], None] = print) -> None:
    """Serve the demo on ``host:port`` over ``store`` until interrupted (Ctrl-C)."""
    try:
        import uvicorn

        from .app import ACCESS_TOKEN_VALIDITY, create_app
    except ImportError as exc:
        raise MissingExtraError(
            f"the demo needs Starlette and uvicorn ({exc.name} is missing): {INSTALL_HINT}"
        ) from exc
    app = create_app(store)
    shown_host = f"[{host}]" if ":" in host else host
    out(f"sessionward demo: store {store}")
    out(f"sessionward demo: access tokens live {ACCESS_TOKEN_VALIDITY} s, so refreshes happen in view")
    out("sessionward demo: cookie_secure=False (plain http: for development only, never in production)")
    out(f"sessionward demo: open http://{shown_host}:{port}/ in a browser (Ctrl-C stops)")
    uvicorn.run(app, host=host, port=port, log_level="info", lifespan="on")
