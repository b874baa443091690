"""Run the demo app under uvicorn and tell the user where to point a browser."""

from __future__ import annotations

import errno
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path

from ..errors import ConfigError

__all__ = [
    "MAX_ACCESS_TOKEN_VALIDITY",
    "CannotListenError",
    "MissingExtraError",
    "check_access_token_validity",
    "check_max_auth_age",
    "default_store",
    "run",
]

INSTALL_HINT = "pip install 'sessionward[demo]'"

MAX_ACCESS_TOKEN_VALIDITY = 86_400
"""The longest access-token validity ``sessionward demo`` accepts (a day): the demo is about
watching refreshes happen."""


class MissingExtraError(RuntimeError):
    """Starlette or uvicorn is not installed (the ``demo`` extra)."""


class CannotListenError(RuntimeError):
    """The demo cannot listen on its host and port (most often: the port is taken)."""


def check_can_listen(host: str, port: int) -> None:
    """Raise :class:`CannotListenError` with a one-line explanation unless a server could
    bind ``host:port`` now (probed the way uvicorn binds, then released)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise CannotListenError(
                    f"port {port} on {host} is already in use (another demo or server?): "
                    f"choose a free one with --port, e.g. --port {port + 1}"
                ) from None
            raise CannotListenError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}; choose another --host or --port"
            ) from None


def default_store() -> str:
    """The demo's default store: one SQLite file in the system's temporary directory, so
    that demo sessions survive a restart of the demo and never litter the working
    directory."""
    return f"sqlite:///{Path(tempfile.gettempdir()) / 'sessionward-demo.sqlite3'}"


def check_access_token_validity(seconds: int) -> int:
    """``seconds`` if it is a sensible demo access-token validity, else :class:`ConfigError`
    naming the ``--access-token-validity`` option."""
    if type(seconds) is not int or not 1 <= seconds <= MAX_ACCESS_TOKEN_VALIDITY:
        raise ConfigError(
            f"--access-token-validity: give whole seconds from 1 to {MAX_ACCESS_TOKEN_VALIDITY}, "
            f"not {seconds!r}"
        )
    return seconds


def check_max_auth_age(seconds: int) -> int:
    """``seconds`` if it is a sensible ``max_auth_age`` for the demo's protected action, else
    :class:`ConfigError` naming the ``--max-auth-age`` option."""
    if type(seconds) is not int or not 1 <= seconds <= MAX_ACCESS_TOKEN_VALIDITY:
        raise ConfigError(
            f"--max-auth-age: give whole seconds from 1 to {MAX_ACCESS_TOKEN_VALIDITY}, not {seconds!r}"
        )
    return seconds


def run(
    host: str,
    port: int,
    store: str,
    out: Callable[[str], None] = print,
    access_token_validity: int | None = None,
    max_auth_age: int | None = None,
) -> None:
    """Serve the demo on ``host:port`` over ``store`` until interrupted (Ctrl-C), with
    access tokens valid ``access_token_validity`` seconds (default: the demo's 15 s) and
    its protected action ("view recovery codes") needing a sign-in at most
    ``max_auth_age`` seconds old (default: 60 s).

    Raises :class:`CannotListenError` before serving when ``host:port`` cannot be bound."""
    if access_token_validity is not None:
        check_access_token_validity(access_token_validity)
    if max_auth_age is not None:
        check_max_auth_age(max_auth_age)
    try:
        import uvicorn

        from .app import ACCESS_TOKEN_VALIDITY, MAX_AUTH_AGE, create_app, demo_config
    except ImportError as exc:
        raise MissingExtraError(
            f"the demo needs Starlette and uvicorn ({exc.name} is missing): {INSTALL_HINT}"
        ) from exc
    check_can_listen(host, port)
    validity = ACCESS_TOKEN_VALIDITY if access_token_validity is None else access_token_validity
    step_up = MAX_AUTH_AGE if max_auth_age is None else max_auth_age
    app = create_app(store, demo_config(store, validity), max_auth_age=step_up)
    shown_host = f"[{host}]" if ":" in host else host
    out(f"sessionward demo: store {store}")
    out(f"sessionward demo: access tokens live {validity} s, so refreshes happen in view")
    out(f"sessionward demo: recovery codes need a sign-in at most {step_up} s old (max_auth_age)")
    out("sessionward demo: cookie_secure=False (plain http: for development only, never in production)")
    out(f"sessionward demo: open http://{shown_host}:{port}/ in a browser (Ctrl-C stops)")
    uvicorn.run(app, host=host, port=port, log_level="info", lifespan="on")
