"""sessionward's configuration for the peer apps (store per algorithm in the work directory)."""

from __future__ import annotations

import os

import _env
from _refresh_echo import AsgiEcho, wsgi_echo

from sessionward import Config

__all__ = ["AsgiEcho", "config", "wsgi_echo"]


def config() -> Config:
    """The store per algorithm in the work directory; cookies over plain http."""
    store = os.environ.get("SESSIONWARD_STORE") or f"sqlite:///{_env.db_path('sessionward')}"
    return Config(store=store, cookie_secure=False, access_token_algorithm=_env.ALG)
