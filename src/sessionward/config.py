"""Configuration: :class:`Config`, its validation and :meth:`Config.from_env`.

All durations are in seconds. Invalid values raise :class:`~sessionward.errors.ConfigError`
naming the option and what it accepts, at construction time (that is, at start-up).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError
from .stores.sqlite import parse_sqlite_url

__all__ = ["ALGORITHMS", "Config"]

ALGORITHMS = ("RS256", "ES256", "EdDSA", "HS256")
SAME_SITE_VALUES = ("lax", "strict", "none")
#: Values of ``token_transfer``: how tokens may travel (see docs/protocol.md).
TOKEN_TRANSFER_VALUES = ("any", "cookie", "header")
STORE_SCHEMES = ("sqlite", "postgresql", "postgres", "redis", "rediss")
# 100 years: keeps expiry times (ms) within SQLite's 64-bit integers and cookie dates.
MAX_REFRESH_TOKEN_VALIDITY = 3_153_600_000
_FORBIDDEN_IN_COOKIE_ATTRIBUTES = frozenset(";,\r\n\t \x00\x7f")


@dataclass(frozen=True, slots=True)
class Config:
    """Every option of sessionward, with its default.

    Construct with keyword arguments (``Config(access_token_validity=900)``), from a mapping
    (``Config.from_mapping(settings)``) or from ``SESSIONWARD_*`` environment variables
    (``Config.from_env()``). Instances are immutable; use :func:`dataclasses.replace` to derive
    a variant.
    """

    store: str = "sqlite:///sessionward.db"
    access_token_validity: int = 3600
    refresh_token_validity: int = 8_640_000
    access_token_path: str = "/"
    refresh_api_path: str = "/session/refresh"
    jwks_api_path: str | None = "/.well-known/jwks.json"
    cookie_domain: str | None = None
    cookie_secure: bool = True
    cookie_same_site: str = "lax"
    session_expired_status_code: int = 401
    enable_anti_csrf: bool = False
    access_token_blacklisting: bool = False
    access_token_algorithm: str = "RS256"
    access_token_signing_key_dynamic: bool = True
    access_token_signing_key_update_interval: int = 86_400
    refresh_token_reuse_grace_period: int = 10
    clock_skew_leeway: int = 0
    session_max_lifetime: int | None = None
    auto_migrate: bool = True
    verified_token_cache_size: int = 10_000
    token_transfer: str = "any"
    trusted_proxies: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_str(self, "store")
        scheme = self.store.split(":", 1)[0].lower()
        if "://" not in self.store or scheme not in STORE_SCHEMES:
            raise ConfigError(
                f"store: expected a URL starting with one of "
                f"{', '.join(s + '://' for s in STORE_SCHEMES)}; got {self.store!r}"
            )
        if scheme == "sqlite":
            parse_sqlite_url(self.store)  # raises ConfigError naming the store option
        _check_int(self, "access_token_validity", 1, 86_400_000)
        _check_int(self, "refresh_token_validity", self.access_token_validity + 1, MAX_REFRESH_TOKEN_VALIDITY)
        _check_path(self, "access_token_path")
        _check_path(self, "refresh_api_path")
        if self.jwks_api_path is not None:
            _check_path(self, "jwks_api_path")
            if self.jwks_api_path == self.refresh_api_path:
                raise ConfigError("jwks_api_path: must differ from refresh_api_path (or be None: no route)")
        if self.cookie_domain is not None:
            _check_str(self, "cookie_domain")
            if _FORBIDDEN_IN_COOKIE_ATTRIBUTES & set(self.cookie_domain):
                raise ConfigError(
                    "cookie_domain: must not contain ';', ',', whitespace or control characters"
                )
        _check_bool(self, "cookie_secure")
        _check_choice(self, "cookie_same_site", SAME_SITE_VALUES)
        if self.cookie_same_site == "none" and not (self.cookie_secure and self.enable_anti_csrf):
            raise ConfigError(
                "cookie_same_site: 'none' requires cookie_secure=True and enable_anti_csrf=True"
            )
        _check_int(self, "session_expired_status_code", 400, 599)
        _check_bool(self, "enable_anti_csrf")
        _check_bool(self, "access_token_blacklisting")
        _check_choice(self, "access_token_algorithm", ALGORITHMS)
        _check_bool(self, "access_token_signing_key_dynamic")
        _check_int(self, "access_token_signing_key_update_interval", 3600, 2_592_000)
        _check_int(self, "refresh_token_reuse_grace_period", 0, 300)
        _check_int(self, "clock_skew_leeway", 0, 60)
        if self.session_max_lifetime is not None:
            _check_int(self, "session_max_lifetime", 1, None)
        _check_bool(self, "auto_migrate")
        _check_int(self, "verified_token_cache_size", 0, 10_000_000)
        _check_choice(self, "token_transfer", TOKEN_TRANSFER_VALUES)
        _check_trusted_proxies(self)

    @classmethod
    def from_mapping(cls, options: Mapping[str, Any]) -> Config:
        """Build a config from a mapping of option names (e.g. Django's ``SESSIONWARD``).

        Unknown keys raise :class:`ConfigError` listing the valid option names.
        """
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(map(str, set(options) - known))
        if unknown:
            raise ConfigError(
                f"unknown option(s) {', '.join(unknown)}; valid options: {', '.join(sorted(known))}"
            )
        return cls(**dict(options))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, prefix: str = "SESSIONWARD_") -> Config:
        """Build a config from ``SESSIONWARD_<OPTION>`` environment variables.

        ``SESSIONWARD_ACCESS_TOKEN_VALIDITY=900`` sets ``access_token_validity``. Booleans
        accept ``true/false/1/0/yes/no/on/off``; an empty value or ``none`` sets an optional
        option to ``None``; a tuple option (``trusted_proxies``) is a comma-separated list
        (``SESSIONWARD_TRUSTED_PROXIES=10.0.0.0/8,192.0.2.7``, empty: none). Variables with the prefix that name no option are ignored.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            raw = env.get(prefix + field.name.upper())
            if raw is not None:
                values[field.name] = _parse_env_value(field.name, str(field.type), raw)
        return cls(**values)


def _parse_env_value(name: str, type_name: str, raw: str) -> Any:
    text = raw.strip()
    if "None" in type_name and text.lower() in ("", "none", "null"):
        return None
    if type_name.startswith("bool"):
        lowered = text.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name}: expected a boolean (true/false) in the environment; got {raw!r}")
    if type_name.startswith("tuple"):
        return tuple(part.strip() for part in text.split(",") if part.strip())
    if type_name.startswith("int"):
        try:
            return int(text, 10)
        except ValueError:
            raise ConfigError(f"{name}: expected an integer in the environment; got {raw!r}") from None
    return text


def _check_int(config: Config, name: str, low: int, high: int | None) -> None:
    value = getattr(config, name)
    allowed = f"an integer >= {low}" if high is None else f"an integer from {low} to {high}"
    if type(value) is not int or value < low or (high is not None and value > high):
        raise ConfigError(f"{name}: expected {allowed}; got {value!r}")


def _check_bool(config: Config, name: str) -> None:
    value = getattr(config, name)
    if type(value) is not bool:
        raise ConfigError(f"{name}: expected True or False; got {value!r}")


def _check_str(config: Config, name: str) -> None:
    value = getattr(config, name)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{name}: expected a non-empty string; got {value!r}")


def _check_choice(config: Config, name: str, choices: tuple[str, ...]) -> None:
    value = getattr(config, name)
    if value not in choices:
        raise ConfigError(f"{name}: expected one of {', '.join(map(repr, choices))}; got {value!r}")


def _check_path(config: Config, name: str) -> None:
    _check_str(config, name)
    value: str = getattr(config, name)
    if not value.startswith("/") or _FORBIDDEN_IN_COOKIE_ATTRIBUTES & set(value):
        raise ConfigError(
            f"{name}: expected a path starting with '/' without ';', ',', whitespace or "
            f"control characters; got {value!r}"
        )


def _check_trusted_proxies(config: Config) -> None:
    value = config.trusted_proxies
    expected = (
        "expected a tuple of IP addresses or CIDR networks (e.g. ('10.0.0.0/8', '192.0.2.7'))"
    )
    if isinstance(value, list):
        value = tuple(value)
        object.__setattr__(config, "trusted_proxies", value)
    if not isinstance(value, tuple):
        raise ConfigError(f"trusted_proxies: {expected}; got {value!r}")
    for entry in value:
        if not isinstance(entry, str):
            raise ConfigError(f"trusted_proxies: {expected}; got the entry {entry!r}")
        try:
            ipaddress.ip_network(entry.strip(), strict=True)
        except ValueError as exc:
            raise ConfigError(
                f"trusted_proxies: {entry!r} is not an IP address or CIDR network "
                f"(network addresses only: '10.0.0.0/8', not '10.0.0.1/8'): {exc}"
            ) from None
