"""``settings.SESSIONWARD`` read and checked."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings  # type: ignore[import-untyped]
from django.utils.module_loading import import_string  # type: ignore[import-untyped]

from ..config import Config
from ..errors import ConfigError
from ..session import ErrorHandler, TheftHook

__all__ = ["HOOK_KEYS", "SETTING_NAME", "Options", "load_options"]

SETTING_NAME = "SESSIONWARD"
HOOK_KEYS = ("on_token_theft_detected", "error_handler")


@dataclass(frozen=True)
class Options:
    """``settings.SESSIONWARD`` read and checked: the config and the two hooks."""

    config: Config
    on_token_theft_detected: TheftHook | None
    error_handler: ErrorHandler | None


def _hook(name: str, value: Any) -> Any:
    if value is None or callable(value):
        return value
    if isinstance(value, str):
        try:
            loaded = import_string(value)
        except ImportError as exc:
            raise ConfigError(f"{SETTING_NAME}[{name!r}]: cannot import {value!r}: {exc}") from None
        if callable(loaded):
            return loaded
    raise ConfigError(f"{SETTING_NAME}[{name!r}]: expected a callable or a dotted path to one; got {value!r}")


def load_options() -> Options:
    """Read ``settings.SESSIONWARD`` (a dict of :class:`~sessionward.Config` field names,
    plus ``on_token_theft_detected`` and ``error_handler``); raises ``ConfigError``."""
    raw = getattr(settings, SETTING_NAME, None)
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"settings.{SETTING_NAME}: expected a dict of options; got {type(raw).__name__}")
    options = dict(raw)
    hooks = {name: _hook(name, options.pop(name, None)) for name in HOOK_KEYS}
    return Options(Config.from_mapping(options), hooks["on_token_theft_detected"], hooks["error_handler"])
