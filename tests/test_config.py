"""Config (docs/configuration.md): defaults, validation with messages naming the option,
from_env, from_mapping."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest

from sessionward import Config, ConfigError

DOCUMENTED_DEFAULTS: dict[str, Any] = {
    "store": "sqlite:///sessionward.db",
    "access_token_validity": 3600,
    "refresh_token_validity": 8_640_000,
    "access_token_path": "/",
    "refresh_api_path": "/session/refresh",
    "jwks_api_path": "/.well-known/jwks.json",
    "cookie_domain": None,
    "cookie_secure": True,
    "cookie_same_site": "lax",
    "session_expired_status_code": 401,
    "enable_anti_csrf": False,
    "access_token_blacklisting": False,
    "access_token_algorithm": "RS256",
    "access_token_signing_key_dynamic": True,
    "access_token_signing_key_update_interval": 86_400,
    "refresh_token_reuse_grace_period": 10,
    "clock_skew_leeway": 0,
    "session_max_lifetime": None,
    "auto_migrate": True,
    "token_transfer": "any",
    "event_subscribers": (),
    "change_feed": True,
    "change_feed_max_lag": 1.0,
}

INT_OPTIONS = [
    "access_token_validity",
    "refresh_token_validity",
    "session_expired_status_code",
    "access_token_signing_key_update_interval",
    "refresh_token_reuse_grace_period",
    "clock_skew_leeway",
    "session_max_lifetime",
    "verified_token_cache_size",
    "non_persistent_refresh_token_validity",
]
BOOL_OPTIONS = [
    "cookie_secure",
    "enable_anti_csrf",
    "access_token_blacklisting",
    "access_token_signing_key_dynamic",
    "auto_migrate",
    "change_feed",
]


def config_error(**options: Any) -> str:
    with pytest.raises(ConfigError) as info:
        Config(**options)
    return str(info.value)


# -- defaults ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(DOCUMENTED_DEFAULTS))
def test_default_matches_spec(name: str) -> None:
    value = getattr(Config(), name)
    assert value == DOCUMENTED_DEFAULTS[name]
    assert type(value) is type(DOCUMENTED_DEFAULTS[name])


def test_every_spec_option_exists_and_extra_options_are_known() -> None:
    names = {field.name for field in dataclasses.fields(Config)}
    assert set(DOCUMENTED_DEFAULTS) <= names
    assert names - set(DOCUMENTED_DEFAULTS) == {
        "verified_token_cache_size",
        "non_persistent_refresh_token_validity",
        "trusted_proxies",
    }
    assert Config().verified_token_cache_size == 10_000


def test_config_error_is_a_value_error() -> None:
    assert issubclass(ConfigError, ValueError)


def test_config_is_frozen() -> None:
    config = Config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.access_token_validity = 10  # type: ignore[misc]
    with pytest.raises((AttributeError, TypeError)):
        config.not_an_option = 1  # type: ignore[attr-defined]
    derived = dataclasses.replace(config, access_token_validity=900)
    assert derived.access_token_validity == 900
    assert config.access_token_validity == 3600


def test_replace_validates_too() -> None:
    with pytest.raises(ConfigError, match="clock_skew_leeway"):
        dataclasses.replace(Config(), clock_skew_leeway=61)


def test_valid_non_default_values_are_accepted() -> None:
    config = Config(
        store="sqlite:////tmp/x.db?timeout=2",
        access_token_validity=1,
        refresh_token_validity=2,
        access_token_path="/api",
        refresh_api_path="/auth/session/refresh",
        jwks_api_path="/auth/jwks.json",
        cookie_domain=".example.com",
        cookie_secure=True,
        cookie_same_site="none",
        session_expired_status_code=440,
        enable_anti_csrf=True,
        access_token_blacklisting=True,
        access_token_algorithm="EdDSA",
        access_token_signing_key_dynamic=False,
        access_token_signing_key_update_interval=3600,
        refresh_token_reuse_grace_period=0,
        clock_skew_leeway=60,
        session_max_lifetime=1,
        auto_migrate=False,
        verified_token_cache_size=0,
        token_transfer="header",
    )
    assert config.cookie_same_site == "none"
    assert config.session_max_lifetime == 1


@pytest.mark.parametrize("algorithm", ["RS256", "ES256", "EdDSA", "HS256"])
def test_every_algorithm_accepted(algorithm: str) -> None:
    assert Config(access_token_algorithm=algorithm).access_token_algorithm == algorithm


@pytest.mark.parametrize("same_site", ["lax", "strict"])
def test_same_site_lax_and_strict_need_nothing(same_site: str) -> None:
    assert Config(cookie_same_site=same_site, cookie_secure=False).cookie_same_site == same_site


# -- wrong types ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", INT_OPTIONS)
@pytest.mark.parametrize("value", [True, False, 5.0, "5", [5], b"5"])
def test_int_option_rejects_other_types(name: str, value: Any) -> None:
    message = config_error(**{name: value})
    assert message.startswith(f"{name}:")
    assert "integer" in message


@pytest.mark.parametrize("name", BOOL_OPTIONS)
@pytest.mark.parametrize("value", [1, 0, "true", "False", None, 1.0])
def test_bool_option_rejects_other_types(name: str, value: Any) -> None:
    message = config_error(**{name: value})
    assert message.startswith(f"{name}:")
    assert "True or False" in message


@pytest.mark.parametrize(
    "name", ["store", "access_token_path", "refresh_api_path", "jwks_api_path", "cookie_domain"]
)
@pytest.mark.parametrize("value", [1, b"/x", ["/"], ""])
def test_str_option_rejects_other_types_and_empty(name: str, value: Any) -> None:
    message = config_error(**{name: value})
    assert message.startswith(f"{name}:")


# -- ranges -----------------------------------------------------------------------------------

RANGES = [
    ("access_token_validity", 1, 86_400_000),
    ("session_expired_status_code", 400, 599),
    ("access_token_signing_key_update_interval", 3600, 2_592_000),
    ("refresh_token_reuse_grace_period", 0, 300),
    ("clock_skew_leeway", 0, 60),
    ("verified_token_cache_size", 0, 10_000_000),
    ("non_persistent_refresh_token_validity", 1, 3_153_600_000),
]


@pytest.mark.parametrize(("name", "low", "high"), RANGES)
def test_range_bounds_accepted(name: str, low: int, high: int) -> None:
    extra: dict[str, Any] = {}
    if name == "access_token_validity":
        extra["refresh_token_validity"] = high + 1
    assert getattr(Config(**{name: low, **extra}), name) == low
    assert getattr(Config(**{name: high, **extra}), name) == high


@pytest.mark.parametrize(("name", "low", "high"), RANGES)
def test_range_both_ends_rejected_naming_the_range(name: str, low: int, high: int) -> None:
    for value in (low - 1, high + 1, -(10**30)):
        message = config_error(**{name: value})
        assert message.startswith(f"{name}:")
        assert f"from {low} to {high}" in message
        assert repr(value) in message


def test_spec_named_limits() -> None:
    assert "clock_skew_leeway" in config_error(clock_skew_leeway=61)
    assert "refresh_token_reuse_grace_period" in config_error(refresh_token_reuse_grace_period=301)
    assert "access_token_signing_key_update_interval" in config_error(
        access_token_signing_key_update_interval=3599
    )
    assert "access_token_validity" in config_error(access_token_validity=0)
    assert "session_expired_status_code" in config_error(session_expired_status_code=399)
    assert "session_expired_status_code" in config_error(session_expired_status_code=600)


@pytest.mark.parametrize("refresh", [3600, 3599, 1, 0, -1])
def test_refresh_validity_must_exceed_access_validity(refresh: int) -> None:
    message = config_error(access_token_validity=3600, refresh_token_validity=refresh)
    assert message.startswith("refresh_token_validity:")
    assert "3601" in message


def test_refresh_validity_one_more_than_access_is_enough() -> None:
    assert Config(access_token_validity=100, refresh_token_validity=101).refresh_token_validity == 101


def test_refresh_validity_has_a_sane_upper_bound() -> None:
    # A value whose expiry in ms overflows the stores' 64-bit integers is refused up front.
    message = config_error(refresh_token_validity=10**17)
    assert message.startswith("refresh_token_validity:")


@pytest.mark.parametrize("value", [0, -1, 1.5, True, "60"])
def test_session_max_lifetime_invalid(value: Any) -> None:
    assert config_error(session_max_lifetime=value).startswith("session_max_lifetime:")


# -- choices ----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["Lax", "LAX", "", "always", None, 1])
def test_same_site_unknown_value(value: Any) -> None:
    message = config_error(cookie_same_site=value)
    assert message.startswith("cookie_same_site:")
    for allowed in ("'lax'", "'strict'", "'none'"):
        assert allowed in message


@pytest.mark.parametrize(("secure", "anti_csrf"), [(False, False), (True, False), (False, True)])
def test_same_site_none_requires_secure_and_anti_csrf(secure: bool, anti_csrf: bool) -> None:
    message = config_error(cookie_same_site="none", cookie_secure=secure, enable_anti_csrf=anti_csrf)
    assert message.startswith("cookie_same_site:")
    assert "cookie_secure" in message
    assert "enable_anti_csrf" in message


@pytest.mark.parametrize("algorithm", ["none", "None", "rs256", "HS512", "PS256", "", None, 256])
def test_unknown_algorithm(algorithm: Any) -> None:
    message = config_error(access_token_algorithm=algorithm)
    assert message.startswith("access_token_algorithm:")
    for allowed in ("RS256", "ES256", "EdDSA", "HS256"):
        assert allowed in message


@pytest.mark.parametrize("value", ["any", "cookie", "header"])
def test_token_transfer_values(value: str) -> None:
    assert Config(token_transfer=value).token_transfer == value
    assert Config.from_env({"SESSIONWARD_TOKEN_TRANSFER": f" {value} "}).token_transfer == value


@pytest.mark.parametrize("value", ["Any", "COOKIE", "cookies", "bearer", "", "both", None, 1, True])
def test_token_transfer_unknown_value(value: Any) -> None:
    message = config_error(token_transfer=value)
    assert message.startswith("token_transfer:")
    for allowed in ("'any'", "'cookie'", "'header'"):
        assert allowed in message
    if isinstance(value, str):
        with pytest.raises(ConfigError, match=r"^token_transfer:"):
            Config.from_env({"SESSIONWARD_TOKEN_TRANSFER": value})


# -- paths and domain -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["access_token_path", "refresh_api_path", "jwks_api_path"])
@pytest.mark.parametrize(
    "value",
    ["api", "session/refresh", "/a;b", "/a,b", "/a b", "/a\r\nSet-Cookie: x=1", "/\x00", "/\t", "/\x7f"],
)
def test_bad_paths(name: str, value: str) -> None:
    message = config_error(**{name: value})
    assert message.startswith(f"{name}:")
    assert "'/'" in message


def test_jwks_route_is_switched_off_with_none() -> None:
    assert Config(jwks_api_path=None).jwks_api_path is None


def test_jwks_path_must_differ_from_the_refresh_path() -> None:
    message = config_error(jwks_api_path="/auth/refresh", refresh_api_path="/auth/refresh")
    assert message.startswith("jwks_api_path:")
    assert "refresh_api_path" in message


@pytest.mark.parametrize("value", ["a;b.com", "a b.com", "a.com\r\n", "a,b", "\x00"])
def test_bad_cookie_domain(value: str) -> None:
    assert config_error(cookie_domain=value).startswith("cookie_domain:")


# -- store URLs -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///sessionward.db",
        "sqlite:///:memory:",
        "sqlite:////var/lib/app/sessions.db",
        "sqlite:///x.db?timeout=0.5",
        "SQLITE:///x.db",
        "postgresql://user:pw@localhost/db",
        "postgres://localhost/db",
        "redis://localhost:6379/0",
        "rediss://localhost:6380/0",
    ],
)
def test_valid_store_urls(url: str) -> None:
    assert Config(store=url).store == url


@pytest.mark.parametrize(
    "url",
    [
        "sessionward.db",
        "/abs/sessionward.db",
        "mysql://localhost/db",
        "sqlite:sessionward.db",
        "http://example.com",
        "://x",
        "sqlite://host/x.db",
        "sqlite:///",
        "sqlite:///x.db?mode=ro",
        "sqlite:///x.db?timeout=abc",
        "sqlite:///x.db?timeout=-1",
        "sqlite:///x.db?timeout=601",
    ],
)
def test_bad_store_urls(url: str) -> None:
    message = config_error(store=url)
    assert message.startswith("store:")


# -- from_mapping -----------------------------------------------------------------------------


def test_from_mapping_builds_config() -> None:
    config = Config.from_mapping({"access_token_validity": 900, "cookie_secure": False})
    assert config == Config(access_token_validity=900, cookie_secure=False)
    assert Config.from_mapping({}) == Config()


def test_from_mapping_unknown_keys_listed() -> None:
    with pytest.raises(ConfigError) as info:
        Config.from_mapping({"access_token_validty": 900, "zzz_option": 1, "cookie_secure": False})
    message = str(info.value)
    assert "access_token_validty" in message
    assert "zzz_option" in message
    assert "access_token_validity" in message  # the valid names are listed


def test_from_mapping_non_string_key_is_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown option"):
        Config.from_mapping({1: 2, "store": "sqlite:///:memory:"})  # type: ignore[dict-item]


def test_from_mapping_validates_values() -> None:
    with pytest.raises(ConfigError, match=r"^clock_skew_leeway:"):
        Config.from_mapping({"clock_skew_leeway": 120})


# -- from_env ---------------------------------------------------------------------------------


def test_from_env_empty_gives_defaults() -> None:
    assert Config.from_env({}) == Config()


def test_from_env_reads_every_kind() -> None:
    environ = {
        "SESSIONWARD_STORE": "sqlite:///:memory:",
        "SESSIONWARD_ACCESS_TOKEN_VALIDITY": "900",
        "SESSIONWARD_REFRESH_TOKEN_VALIDITY": " 86400 ",
        "SESSIONWARD_ACCESS_TOKEN_PATH": "/api",
        "SESSIONWARD_COOKIE_DOMAIN": "example.com",
        "SESSIONWARD_COOKIE_SECURE": "false",
        "SESSIONWARD_COOKIE_SAME_SITE": "strict",
        "SESSIONWARD_SESSION_EXPIRED_STATUS_CODE": "440",
        "SESSIONWARD_ACCESS_TOKEN_ALGORITHM": "ES256",
        "SESSIONWARD_SESSION_MAX_LIFETIME": "604800",
        "SESSIONWARD_AUTO_MIGRATE": "no",
    }
    config = Config.from_env(environ)
    assert config.store == "sqlite:///:memory:"
    assert config.access_token_validity == 900
    assert config.refresh_token_validity == 86_400
    assert config.access_token_path == "/api"
    assert config.cookie_domain == "example.com"
    assert config.cookie_secure is False
    assert config.cookie_same_site == "strict"
    assert config.session_expired_status_code == 440
    assert config.access_token_algorithm == "ES256"
    assert config.session_max_lifetime == 604_800
    assert config.auto_migrate is False
    assert config.refresh_api_path == "/session/refresh"  # unset: default


@pytest.mark.parametrize("name", BOOL_OPTIONS)
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("true", True),
        ("True", True),
        ("TRUE", True),
        ("1", True),
        ("yes", True),
        ("YES", True),
        ("on", True),
        ("On", True),
        (" true ", True),
        ("false", False),
        ("False", False),
        ("FALSE", False),
        ("0", False),
        ("no", False),
        ("No", False),
        ("off", False),
        ("OFF", False),
        ("\tfalse\n", False),
    ],
)
def test_from_env_bool_spellings(name: str, raw: str, expected: bool) -> None:
    config = Config.from_env({"SESSIONWARD_" + name.upper(): raw})
    assert getattr(config, name) is expected


@pytest.mark.parametrize("name", BOOL_OPTIONS)
@pytest.mark.parametrize("raw", ["", "maybe", "2", "y", "t", "none", "truee"])
def test_from_env_bad_bool(name: str, raw: str) -> None:
    with pytest.raises(ConfigError) as info:
        Config.from_env({"SESSIONWARD_" + name.upper(): raw})
    assert str(info.value).startswith(f"{name}:")


@pytest.mark.parametrize("name", [n for n in INT_OPTIONS if n != "session_max_lifetime"])
@pytest.mark.parametrize("raw", ["", "abc", "1.5", "1e3", "0x10", "ten", "None"])
def test_from_env_bad_int(name: str, raw: str) -> None:
    with pytest.raises(ConfigError) as info:
        Config.from_env({"SESSIONWARD_" + name.upper(): raw})
    assert str(info.value).startswith(f"{name}:")


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("clock_skew_leeway", "61"),
        ("refresh_token_reuse_grace_period", "301"),
        ("access_token_signing_key_update_interval", "3599"),
        ("access_token_validity", "0"),
        ("session_expired_status_code", "200"),
        ("access_token_algorithm", "none"),
        ("cookie_same_site", "NONE"),
        ("access_token_path", "relative"),
        ("jwks_api_path", "jwks.json"),
        ("jwks_api_path", "/session/refresh"),
        ("store", "mysql://x/y"),
        ("store", ""),
        ("non_persistent_refresh_token_validity", "0"),
        ("non_persistent_refresh_token_validity", "1.5"),
        ("trusted_proxies", "10.0.0.1, proxy.internal"),
    ],
)
def test_from_env_invalid_values_name_the_option(name: str, raw: str) -> None:
    with pytest.raises(ConfigError) as info:
        Config.from_env({"SESSIONWARD_" + name.upper(): raw})
    assert str(info.value).startswith(f"{name}:")


def test_from_env_refresh_not_above_access() -> None:
    environ = {"SESSIONWARD_ACCESS_TOKEN_VALIDITY": "7200", "SESSIONWARD_REFRESH_TOKEN_VALIDITY": "7200"}
    with pytest.raises(ConfigError, match=r"^refresh_token_validity:"):
        Config.from_env(environ)


@pytest.mark.parametrize("raw", ["", "none", "None", "NONE", "null", "  "])
def test_from_env_optional_none(raw: str) -> None:
    environ = {"SESSIONWARD_SESSION_MAX_LIFETIME": raw, "SESSIONWARD_COOKIE_DOMAIN": raw}
    config = Config.from_env(environ)
    assert config.session_max_lifetime is None
    assert config.cookie_domain is None


@pytest.mark.parametrize("raw", ["", "none", "  "])
def test_from_env_empty_jwks_path_switches_the_route_off(raw: str) -> None:
    assert Config.from_env({"SESSIONWARD_JWKS_API_PATH": raw}).jwks_api_path is None


def test_from_env_jwks_path() -> None:
    assert Config.from_env({"SESSIONWARD_JWKS_API_PATH": " /keys.json "}).jwks_api_path == "/keys.json"
    assert Config.from_env({}).jwks_api_path == "/.well-known/jwks.json"


def test_from_env_ignores_unrelated_variables() -> None:
    environ = {
        "SESSIONWARD_REQUIRE_SERVICES": "1",
        "SESSIONWARD_SOMETHING_ELSE": "garbage",
        "SESSIONWARD_": "x",
        "ACCESS_TOKEN_VALIDITY": "5",
        "sessionward_access_token_validity": "5",
        "PATH": "/usr/bin",
    }
    assert Config.from_env(environ) == Config()


def test_from_env_custom_prefix() -> None:
    environ = {"APP_CLOCK_SKEW_LEEWAY": "5", "SESSIONWARD_CLOCK_SKEW_LEEWAY": "7"}
    config = Config.from_env(environ, prefix="APP_")
    assert config.clock_skew_leeway == 5


def test_from_env_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSIONWARD_CLOCK_SKEW_LEEWAY", "30")
    monkeypatch.setenv("SESSIONWARD_REQUIRE_SERVICES", "1")
    assert Config.from_env().clock_skew_leeway == 30


def test_error_messages_never_echo_more_than_the_value() -> None:
    message = config_error(clock_skew_leeway=61)
    assert re.fullmatch(r"clock_skew_leeway: expected an integer from 0 to 60; got 61", message)


# -- session metadata options -----------------------------------------------------------------


def test_non_persistent_lifetime_default_and_env() -> None:
    assert Config().non_persistent_refresh_token_validity == 86_400
    config = Config.from_env({"SESSIONWARD_NON_PERSISTENT_REFRESH_TOKEN_VALIDITY": "3600"})
    assert config.non_persistent_refresh_token_validity == 3600


@pytest.mark.parametrize(
    "value",
    [
        ("10.0.0.1",),
        ("10.0.0.0/8", "192.168.1.0/24", "::1", "2001:db8::/32"),
        ["172.16.0.0/12"],  # a settings file's list is kept as a tuple
        (),
    ],
)
def test_trusted_proxies_accepts_addresses_and_networks(value: Any) -> None:
    config = Config(trusted_proxies=value)
    assert config.trusted_proxies == tuple(value)
    assert type(config.trusted_proxies) is tuple


@pytest.mark.parametrize(
    "value", ["10.0.0.1", ("proxy.internal",), ("10.0.0.0/33",), (10,), ("10.0.0.1 ",), None, {"10.0.0.1": 1}]
)
def test_trusted_proxies_rejects_what_is_not_an_address(value: Any) -> None:
    assert config_error(trusted_proxies=value).startswith("trusted_proxies:")


def test_trusted_proxies_from_env_is_a_comma_separated_list() -> None:
    config = Config.from_env({"SESSIONWARD_TRUSTED_PROXIES": " 10.0.0.1, 192.168.0.0/16 ,, ::1"})
    assert config.trusted_proxies == ("10.0.0.1", "192.168.0.0/16", "::1")
    assert Config.from_env({"SESSIONWARD_TRUSTED_PROXIES": ""}).trusted_proxies == ()


# -- change feed ------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [0.05, 0.5, 1, 60, 60.0])
def test_change_feed_max_lag_accepts_seconds_from_0_05_to_60(value: float) -> None:
    config = Config(change_feed_max_lag=value)
    assert config.change_feed_max_lag == value
    assert type(config.change_feed_max_lag) is float


@pytest.mark.parametrize("value", [0.049, 0, -1, 60.01, float("nan"), float("inf"), "1", None, True])
def test_change_feed_max_lag_rejects_the_rest_naming_it(value: Any) -> None:
    message = config_error(change_feed_max_lag=value)
    assert message.startswith("change_feed_max_lag: expected a number of seconds from 0.05 to 60")


def test_change_feed_from_env() -> None:
    config = Config.from_env({"SESSIONWARD_CHANGE_FEED": "off", "SESSIONWARD_CHANGE_FEED_MAX_LAG": "2.5"})
    assert config.change_feed is False
    assert config.change_feed_max_lag == 2.5
    with pytest.raises(ConfigError, match="change_feed_max_lag: expected a number"):
        Config.from_env({"SESSIONWARD_CHANGE_FEED_MAX_LAG": "soon"})
    with pytest.raises(ConfigError, match="change_feed: expected a boolean"):
        Config.from_env({"SESSIONWARD_CHANGE_FEED": "maybe"})
