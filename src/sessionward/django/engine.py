"""The per-process engine: built lazily from ``settings.SESSIONWARD`` on first use, and
rebuilt (the old one closed) when that setting changes (``override_settings`` in tests
sends ``setting_changed``)."""

from __future__ import annotations

import threading
from typing import Any

from django.core.signals import setting_changed  # type: ignore[import-untyped]

from ..engine.sync import SessionWard
from ..session import SessionHandler
from .settings import SETTING_NAME, load_options

__all__ = ["get_engine", "get_handler", "reset_engine"]


class _EngineHolder:
    """The process's engine and handler, built on first use from the settings."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._handler: SessionHandler | None = None

    def get(self) -> SessionHandler:
        handler = self._handler
        if handler is None:
            with self._lock:
                handler = self._handler
                if handler is None:
                    options = load_options()
                    handler = SessionHandler(
                        SessionWard(options.config),
                        on_token_theft_detected=options.on_token_theft_detected,
                        error_handler=options.error_handler,
                    )
                    self._handler = handler
        return handler

    def reset(self) -> None:
        with self._lock:
            handler, self._handler = self._handler, None
        if handler is not None:
            handler.engine.close()


_holder = _EngineHolder()


def get_handler() -> SessionHandler:
    """The request-level handler over the process's engine (built on first use)."""
    return _holder.get()


def get_engine() -> SessionWard:
    """The process's :class:`~sessionward.SessionWard`, configured by ``settings.SESSIONWARD``."""
    return _holder.get().engine


def reset_engine() -> None:
    """Close the engine; the next use builds a new one from the current settings."""
    _holder.reset()


def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == SETTING_NAME:
        _holder.reset()


setting_changed.connect(_on_setting_changed, dispatch_uid="sessionward.django.setting_changed")
