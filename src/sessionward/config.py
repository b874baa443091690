"""Configuration: :class:`Config`, its validation and :meth:`Config.from_env`.

All durations are in seconds. Invalid values raise :class:`~sessionward.errors.ConfigError`
naming the option and what it accepts, at construction time (that is, at start-up).
"""

from __future__ import annotations

import dataclasses
import importlib
import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import ConfigError
from .stores.sqlite import parse_sqlite_url

if TYPE_CHECKING:
    from .events import Subscriber

__all__ = ["ALGORITHMS", "Config", "resolve_subscribers"]

ALGORITHMS = ("RS256", "ES256", "EdDSA", "HS256")
SAME_SITE_VALUES = ("lax", "strict", "none")
#: Values of ``token_transfer``: how tokens may travel (see docs/protocol.md).
TOKEN_TRANSFER_VALUES = ("any", "cookie", "header")
STORE_SCHEMES = ("sqlite", "postgresql", "postgres", "redis", "rediss")
# 100 years: keeps expiry times (ms) within SQLite's 64-bit integers and cookie dates.
MAX_REFRESH_TOKEN_VALIDITY = 3_153_600_000
#: Bounds of ``change_feed_max_lag`` (seconds).
MIN_CHANGE_FEED_MAX_LAG = 0.05
MAX_CHANGE_FEED_MAX_LAG = 60.0
_FORBIDDEN_IN_COOKIE_ATTRIBUTES = frozenset(";,\r\n\t \x00\x7f")
# "package.module:function" (the attribute may be dotted: "package.module:Class.method").
_IMPORT_PATH = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


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
    non_persistent_refresh_token_validity: int = 86_400
    trusted_proxies: tuple[str, ...] = ()
    event_subscribers: tuple[Callable[..., object] | str, ...] = ()
    change_feed: bool = True
    change_feed_max_lag: float = 1.0

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
        _check_int(self, "non_persistent_refresh_token_validity", 1, MAX_REFRESH_TOKEN_VALIDITY)
        _check_trusted_proxies(self)
        _check_subscribers(self)
        _check_bool(self, "change_feed")
        _check_float(self, "change_feed_max_lag", MIN_CHANGE_FEED_MAX_LAG, MAX_CHANGE_FEED_MAX_LAG)

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
        option to ``None``. Variables with the prefix that name no option are ignored.
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
        return tuple(item.strip() for item in text.split(",") if item.strip())
    if type_name.startswith("float"):
        try:
            return float(text)
        except ValueError:
            raise ConfigError(f"{name}: expected a number in the environment; got {raw!r}") from None
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


def _check_float(config: Config, name: str, low: float, high: float) -> None:
    value = getattr(config, name)
    if type(value) not in (int, float) or not low <= value <= high:  # NaN fails the comparison
        raise ConfigError(f"{name}: expected a number of seconds from {low} to {high}; got {value!r}")
    if type(value) is int:
        object.__setattr__(config, name, float(value))


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


def _as_tuple(config: Config, name: str, what: str) -> tuple[Any, ...]:
    """The option as a tuple (a list or another non-string iterable is accepted and stored
    as a tuple, as Django settings give lists)."""
    value = getattr(config, name)
    if isinstance(value, (str, bytes, Mapping)):
        raise ConfigError(f"{name}: expected a tuple or list of {what}; got {value!r}")
    try:
        items = tuple(value)
    except TypeError:
        raise ConfigError(f"{name}: expected a tuple or list of {what}; got {value!r}") from None
    if type(value) is not tuple:
        object.__setattr__(config, name, items)
    return items


def _check_trusted_proxies(config: Config) -> None:
    for item in _as_tuple(config, "trusted_proxies", "IP addresses or CIDR networks"):
        if not isinstance(item, str):
            raise ConfigError(
                f"trusted_proxies: expected IP addresses or CIDR networks (strings); got {item!r}"
            )
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ConfigError(
                f"trusted_proxies: expected an IP address or CIDR network (such as 10.0.0.0/8); got {item!r}"
            ) from None


def _check_subscribers(config: Config) -> None:
    value = config.event_subscribers
    if isinstance(value, list):  # settings files write lists; the config keeps a tuple
        value = tuple(value)
        object.__setattr__(config, "event_subscribers", value)
    if not isinstance(value, tuple):
        raise ConfigError(
            f"event_subscribers: expected a tuple of callables or 'package.module:function' "
            f"strings; got {value!r}"
        )
    for item in value:
        if isinstance(item, str):
            if not _IMPORT_PATH.fullmatch(item):
                raise ConfigError(
                    f"event_subscribers: expected 'package.module:function' for a subscriber "
                    f"named by a string; got {item!r}"
                )
        elif not callable(item):
            raise ConfigError(
                f"event_subscribers: expected a callable or a 'package.module:function' string; got {item!r}"
            )


def resolve_subscribers(config: Config) -> tuple[Subscriber, ...]:
    """The subscribers of ``config.event_subscribers``, with each ``"package.module:function"``
    string imported.

    Raises :class:`ConfigError` naming ``event_subscribers`` and the string when the module
    cannot be imported, has no such attribute, or the attribute is not callable.
    """
    resolved: list[Subscriber] = []
    for item in config.event_subscribers:
        if not isinstance(item, str):
            resolved.append(item)
            continue
        module_name, _, attribute_path = item.partition(":")
        try:
            target: object = importlib.import_module(module_name)
        except Exception as exc:
            raise ConfigError(
                f"event_subscribers: cannot import {item!r}: {type(exc).__name__}: {exc}"
            ) from exc
        for attribute in attribute_path.split("."):
            try:
                target = getattr(target, attribute)
            except AttributeError:
                raise ConfigError(
                    f"event_subscribers: cannot import {item!r}: {module_name!r} has no attribute "
                    f"{attribute_path!r}"
                ) from None
        if not callable(target):
            raise ConfigError(f"event_subscribers: {item!r} is not callable; got {target!r}")
        resolved.append(target)
    return tuple(resolved)
