"""The ``postgresql://`` store URL: libpq conninfo and sessionward's own pool parameters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict

from ...errors import ConfigError

__all__ = ["SCHEMES", "PostgresSettings", "parse_postgres_url"]

SCHEMES = ("postgresql", "postgres")
_OWN_PARAMS = ("pool_min", "pool_max", "pool_timeout", "pool_check")
_DEFAULT_CONNECT_TIMEOUT = 5
_CHECK_MODES: dict[str, Literal["idle", "always", "never"]] = {
    "idle": "idle",
    "always": "always",
    "never": "never",
    "true": "always",
    "false": "never",
}


@dataclass(frozen=True, slots=True)
class PostgresSettings:
    """A parsed ``postgresql://`` store URL."""

    conninfo: str
    pool_min: int = 1
    pool_max: int = 10
    pool_timeout: float = 5.0
    pool_check: Literal["idle", "always", "never"] = "idle"
    connect_kwargs: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    #: The URL without its password, for error messages.
    redacted_url: str = ""


def _number(name: str, raw: str, low: float, high: float, integer: bool) -> float:
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        raise ConfigError(f"store: postgres URL parameter {name} must be a number; got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"store: postgres URL parameter {name} must be between {low:g} and {high:g}")
    return value


def _redacted(scheme: str, netloc: str, path: str, query: list[tuple[str, str]]) -> str:
    """The URL without the password of its user part or a ``password`` parameter."""
    userinfo, at, hostport = netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    shown = "&".join(f"{quote(n, safe='')}={quote(v, safe='')}" for n, v in query if n != "password")
    return urlunsplit((scheme, f"{user}{at}{hostport}", path, shown, ""))


def parse_postgres_url(url: str) -> PostgresSettings:
    """Split a ``postgresql://`` URL into libpq conninfo and sessionward's pool options."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in SCHEMES:
        raise ConfigError(f"store: expected a postgresql:// URL; got scheme {parts.scheme!r}")
    own: dict[str, str] = {}
    passed: list[tuple[str, str]] = []
    query = parse_qsl(parts.query, keep_blank_values=True)
    for name, value in query:
        if name in _OWN_PARAMS:
            own[name] = value
        else:
            passed.append((name, value))
    libpq_query = "&".join(f"{quote(n, safe='')}={quote(v, safe='')}" for n, v in passed)
    conninfo = urlunsplit(("postgresql", parts.netloc, parts.path, libpq_query, ""))
    try:
        options = conninfo_to_dict(conninfo)
    except psycopg.Error as exc:
        raise ConfigError(f"store: invalid postgres URL: {exc}") from None
    pool_min = int(_number("pool_min", own.get("pool_min", "1"), 0, 1000, True))
    pool_max = int(_number("pool_max", own.get("pool_max", "10"), 1, 1000, True))
    if pool_max < pool_min:
        raise ConfigError("store: postgres URL parameter pool_max must be at least pool_min")
    check = own.get("pool_check", "idle").lower()
    if check not in _CHECK_MODES:
        raise ConfigError(
            f"store: postgres URL parameter pool_check must be idle, always or never; got {check!r}"
        )
    kwargs: dict[str, Any] = {"autocommit": True}
    if "connect_timeout" not in options:
        kwargs["connect_timeout"] = _DEFAULT_CONNECT_TIMEOUT
    host = parts.hostname or "localhost"
    description = f"{host}:{parts.port or 5432}{parts.path or '/'}"
    return PostgresSettings(
        conninfo=conninfo,
        pool_min=pool_min,
        pool_max=pool_max,
        pool_timeout=_number("pool_timeout", own.get("pool_timeout", "5"), 0.1, 600, False),
        pool_check=_CHECK_MODES[check],
        connect_kwargs=kwargs,
        description=description,
        redacted_url=_redacted(parts.scheme, parts.netloc, parts.path, query),
    )
