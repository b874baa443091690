"""The framework-neutral wire layer: cookie parsing, Set-Cookie formatting, error mapping."""

from __future__ import annotations

import json
from urllib.parse import unquote

import hypothesis.strategies as st
import pytest
from hypothesis import example, given, settings

from sessionward import (
    Config,
    GeneralError,
    SessionWardError,
    StorageUnavailableError,
    TokenTheftDetectedError,
    TryRefreshTokenError,
    UnauthorizedError,
    transport,
)
from sessionward.engine.types import SessionTokens, Token
from sessionward.transport import (
    DUPLICATE,
    RequestTokens,
    ResponseEffects,
    error_response,
    final_response_headers,
    merge_header_list,
    parse_session_cookies,
    session_cookie_present,
    single_header,
    tokens_for_refresh,
    tokens_for_verification,
)

CONFIG = Config(store="sqlite:///:memory:", cookie_secure=False)
SESSION_COOKIES = ("sAccessToken", "sRefreshToken", "sIdRefreshToken")


def tokens(access: str = "a.b.c", refresh: str = "r", id_refresh: str = "i") -> SessionTokens:
    return SessionTokens(
        "h",
        "u",
        {},
        Token(access, 2_000_000_000_000),
        Token(refresh, 2_000_000_000_000),
        Token(id_refresh, 2_000_000_000_000),
        "csrf",
        "front",
    )


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, (None, None, None)),
        ("", (None, None, None)),
        ("sAccessToken=a; sIdRefreshToken=i", ("a", None, "i")),
        ('other=1;sAccessToken=a%2Bb;  sRefreshToken="r"', ("a+b", "r", None)),
        ("sAccessToken=a; sAccessToken=b", (DUPLICATE, None, None)),
        ("sAccessToken=a, sAccessToken=b", (DUPLICATE, None, None)),
        ("sIdRefreshToken=i,sAccessToken=a", ("a", None, "i")),
        ("saccesstoken=a; __Host-sAccessToken=b", (None, None, None)),
        ("sAccessToken", (None, None, None)),
        ("sAccessToken=%ff%fe", ("%ff%fe", None, None)),
        (";;;=;", (None, None, None)),
        (" \tsAccessToken\xa0=\x85a\u3000;\x1csIdRefreshToken = i ", ("a", None, "i")),
        ('sAccessToken="a"; sAccessToken="a"', (DUPLICATE, None, None)),
        ("sAccessToken=a;sAccessToken", ("a", None, None)),
        ("x=sAccessToken=b; sAccessToken=a", ("a", None, None)),
        ("sAccessToken==a=", ("=a=", None, None)),
        ('sRefreshToken="%2B"', (None, "+", None)),
        ('sRefreshToken="', (None, '"', None)),
        ("sIdRefreshToken=", (None, None, "")),
    ],
)
def test_parse_session_cookies(header: str | None, expected: tuple[object, ...]) -> None:
    assert tuple(parse_session_cookies(header)) == expected
    assert tuple(parse_session_cookies(header)) == expected  # a second time: from the cache


def reference_parse(cookie_header: str | None) -> RequestTokens:
    """The parser as it was before the fast path and the cache: the oracle for both."""
    values: dict[str, str] = {}
    repeated: set[str] = set()
    if cookie_header:
        for pair in cookie_header.replace(",", ";").split(";"):
            name, sep, value = pair.partition("=")
            name = name.strip()
            if not sep or name not in SESSION_COOKIES:
                continue
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            try:
                decoded = unquote(value, errors="strict")
            except UnicodeDecodeError:
                decoded = value
            if name in values:
                repeated.add(name)
            values[name] = decoded
    return RequestTokens(*(DUPLICATE if name in repeated else values.get(name) for name in SESSION_COOKIES))


# Cookie headers made of the pieces hostile input is made of: our names and near misses,
# both separators, stray "=", quotes, percent escapes (valid, invalid UTF-8, truncated) and
# every kind of whitespace str.strip() removes.
_PIECES = st.sampled_from(
    [
        "sAccessToken",
        "sRefreshToken",
        "sIdRefreshToken",
        "saccesstoken",
        "__Host-sAccessToken",
        "sAccessTokens",
        "xsIdRefreshToken",
        "other",
        "=",
        ";",
        ",",
        "; ",
        ", ",
        " ",
        "\t",
        "\xa0",
        "\x85",
        "\x1c",
        "\u3000",
        '"',
        "%",
        "%2B",
        "%ff",
        "%e2%82",
        "%E2%82%AC",
        "a",
        "b.c-d_e",
        "\xe9",
    ]
)
_HEADERS = st.lists(_PIECES, max_size=24).map("".join)


@settings(max_examples=500, deadline=None)
@given(header=_HEADERS)
@example(header="sAccessToken=a; sAccessToken=a")
@example(header="sIdRefreshToken=i,sIdRefreshToken=i")
@example(header=' sAccessToken =%ff; sIdRefreshToken\x85="i"')
def test_parse_matches_the_reference_parser_cached_or_not(header: str) -> None:
    expected = reference_parse(header)
    transport.request._parsed_headers.pop(header, None)
    assert parse_session_cookies(header) == expected  # parsed
    assert parse_session_cookies(header) == expected  # remembered
    assert parse_session_cookies("".join(list(header))) == expected  # an equal, distinct str
    try:
        raw = header.encode("latin-1")
    except UnicodeEncodeError:
        return
    # An ASGI header value: the same bytes, read as latin-1, cached apart.
    transport.request._parsed_raw_headers.pop(raw, None)
    assert parse_session_cookies(raw) == expected
    assert parse_session_cookies(bytes(bytearray(raw))) == expected


def test_parsed_headers_are_remembered_per_exact_string() -> None:
    header = "sAccessToken=tok; sIdRefreshToken=idr"
    first = parse_session_cookies(header)
    assert transport.request._parsed_headers[header] is first
    assert parse_session_cookies(header + " ") is not first
    assert parse_session_cookies(header + " ") == first
    raw = parse_session_cookies(header.encode())
    assert raw == first
    assert transport.request._parsed_raw_headers[header.encode()] is raw
    assert parse_session_cookies(b"sAccessToken=t\xe9; sIdRefreshToken=i") == ("t\xe9", None, "i")


def test_parsed_header_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transport.request, "_PARSED_CACHE_SIZE", 8)
    monkeypatch.setattr(transport.request, "_parsed_headers", {})
    monkeypatch.setattr(transport.request, "_parsed_raw_headers", {})
    for i in range(50):
        assert parse_session_cookies(f"sAccessToken=t{i}; sAccessToken=u") == (DUPLICATE, None, None)
        assert parse_session_cookies(f"sIdRefreshToken=i{i}") == (None, None, f"i{i}")
        assert parse_session_cookies(f"sIdRefreshToken=i{i}".encode()) == (None, None, f"i{i}")
        assert len(transport.request._parsed_headers) <= 8
        assert len(transport.request._parsed_raw_headers) <= 8


def test_long_headers_are_parsed_every_time_not_remembered() -> None:
    header = "a=" + "x" * transport.request._PARSED_MAX_LENGTH + "; sAccessToken=t; sIdRefreshToken=i"
    assert parse_session_cookies(header) == ("t", None, "i")
    assert header not in transport.request._parsed_headers
    assert parse_session_cookies(header.encode()) == ("t", None, "i")
    assert header.encode() not in transport.request._parsed_raw_headers


@pytest.mark.parametrize("header", ["sRefreshToken=r", "sRefreshToken=r; sRefreshToken=s", "sRefreshToken="])
def test_headers_carrying_a_refresh_token_are_not_remembered(header: str) -> None:
    assert parse_session_cookies(header).refresh_token is not None
    assert header not in transport.request._parsed_headers
    assert parse_session_cookies(header.encode()).refresh_token is not None
    assert header.encode() not in transport.request._parsed_raw_headers


def test_missing_id_refresh_cookie_is_unauthorised_without_clearing() -> None:
    with pytest.raises(UnauthorizedError) as info:
        tokens_for_verification(parse_session_cookies("sAccessToken=a"), CONFIG, "GET", None)
    assert info.value.clear_cookies is False


def test_missing_access_cookie_is_try_refresh_naming_the_refresh_path() -> None:
    with pytest.raises(TryRefreshTokenError, match="/session/refresh"):
        tokens_for_verification(parse_session_cookies("sIdRefreshToken=i"), CONFIG, "GET", None)


@pytest.mark.parametrize(
    ("method", "check"),
    [("GET", False), ("HEAD", False), ("OPTIONS", False), ("POST", True), ("delete", True)],
)
def test_anti_csrf_default_by_method(method: str, check: bool) -> None:
    cookies = parse_session_cookies("sAccessToken=a; sIdRefreshToken=i")
    assert tokens_for_verification(cookies, CONFIG, method, None) == ("a", check)
    assert tokens_for_verification(cookies, CONFIG, method, not check) == ("a", not check)


def test_refresh_without_cookie_names_the_refresh_path_and_clears_nothing() -> None:
    with pytest.raises(UnauthorizedError, match="refresh_api_path") as info:
        tokens_for_refresh(parse_session_cookies("sAccessToken=a"), CONFIG)
    assert info.value.clear_cookies is False


def test_set_session_writes_exact_cookies_and_headers() -> None:
    config = Config(store="sqlite:///:memory:", cookie_domain="example.test", cookie_same_site="strict")
    effects = ResponseEffects(config)
    effects.set_session(tokens(access="x/y+z"))
    assert effects.cookies["sAccessToken"] == (
        "sAccessToken=x/y+z; Path=/; Expires=Wed, 18 May 2033 03:33:20 GMT; Domain=example.test; "
        "Secure; HttpOnly; SameSite=Strict"
    )
    assert effects.cookies["sRefreshToken"].startswith("sRefreshToken=r; Path=/session/refresh;")
    assert effects.headers == {
        "front-token": "front",
        "id-refresh-token": "i;2000000000000",
        "anti-csrf": "csrf",
    }
    existing = [("Access-Control-Expose-Headers", "X-Custom, front-token")]
    headers = dict(final_response_headers(effects, existing, None))
    assert headers["Access-Control-Expose-Headers"] == "X-Custom, front-token, id-refresh-token, anti-csrf"
    assert headers["cache-control"] == "no-store"


def test_cookie_values_are_percent_encoded() -> None:
    effects = ResponseEffects(CONFIG)
    effects.set_session(tokens(refresh="a;b,c d%"))
    assert effects.cookies["sRefreshToken"].startswith("sRefreshToken=a%3Bb%2Cc%20d%25;")


def test_clear_session_expires_each_cookie_on_its_path() -> None:
    effects = ResponseEffects(CONFIG)
    effects.set_session(tokens())
    effects.clear_session()
    assert effects.cookies["sRefreshToken"] == (
        "sRefreshToken=; Path=/session/refresh; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; SameSite=Lax"
    )
    assert effects.headers == {"id-refresh-token": "remove"}


def test_oversized_cookie_is_refused_with_a_clear_error() -> None:
    effects = ResponseEffects(CONFIG)
    with pytest.raises(GeneralError, match="4096"):
        effects.set_session(tokens(access="a" * 5000))


def test_merge_header_list_dedupes_case_insensitively() -> None:
    assert merge_header_list("Content-Type, anti-csrf", ["ANTI-CSRF", "front-token"]) == (
        "Content-Type, anti-csrf, front-token"
    )
    assert merge_header_list(None, []) == ""


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, None), ("tok", "tok"), ("", ""), ("a,b", None), ("a, b", None), ("a,", None), (",", None)],
)
def test_a_protocol_header_sent_more_than_once_counts_as_absent(
    value: str | None, expected: str | None
) -> None:
    assert single_header(value) == expected


@pytest.mark.parametrize(
    ("header", "present"),
    [
        (None, False),
        # The current protocol's cookie mode: an access cookie without sIdRefreshToken.
        ("sAccessToken=a", True),
        ("sAccessToken=a; sIdRefreshToken=i; sIdRefreshToken=i", False),
        ("sIdRefreshToken=i", True),
        ("sIdRefreshToken=i; sIdRefreshToken=i", False),
        ("sIdRefreshToken=i, sIdRefreshToken=j", False),
    ],
)
def test_session_cookie_present(header: str | None, present: bool) -> None:
    assert session_cookie_present(header) is present


def test_revocation_after_create_leaves_only_the_removal() -> None:
    effects = ResponseEffects(CONFIG)
    effects.set_session(tokens())
    applied = final_response_headers(effects, [("Access-Control-Expose-Headers", "X-App")], None)
    assert dict(applied)["Access-Control-Expose-Headers"] == "X-App, id-refresh-token, anti-csrf, front-token"
    effects.clear_session()
    final = final_response_headers(effects, applied, None)
    names = [name for name, _ in final if name != "set-cookie"]
    assert names == ["Access-Control-Expose-Headers", "cache-control", "id-refresh-token"]
    assert dict(final)["Access-Control-Expose-Headers"] == "X-App, id-refresh-token"
    assert [value.split("=")[0] for name, value in final if name == "set-cookie"] == [
        "sAccessToken",
        "sRefreshToken",
        "sIdRefreshToken",
    ]


@pytest.mark.parametrize(
    ("error", "status", "message", "clear"),
    [
        (TryRefreshTokenError("x"), 401, "try refresh token", False),
        (UnauthorizedError("x"), 401, "unauthorised", True),
        (UnauthorizedError("x", clear_cookies=False), 401, "unauthorised", False),
        (TokenTheftDetectedError("h", "u"), 401, "token theft detected", True),
        (StorageUnavailableError("db down: /var/lib/secret"), 503, "session store unavailable", False),
        (GeneralError("internal detail"), 500, "internal error", False),
    ],
)
def test_error_mapping(error: SessionWardError, status: int, message: str, clear: bool) -> None:
    answer = error_response(
        error,
        Config(store="sqlite:///:memory:", session_expired_status_code=440) if status == 401 else CONFIG,
    )
    assert answer.status == (440 if status == 401 else status)
    assert json.loads(answer.body) == {"message": message}
    assert answer.clear_cookies is clear
    assert (dict(answer.headers).get("retry-after") is not None) == (status == 503)


def test_final_headers_keep_the_app_headers_and_replace_only_session_ones() -> None:
    effects = ResponseEffects(CONFIG)
    effects.set_session(tokens())
    existing = [
        ("Content-Type", "application/json"),
        ("Set-Cookie", "theme=dark; Path=/"),
        ("Set-Cookie", "sAccessToken=stale; Path=/"),
        ("front-token", "stale"),
        ("Cache-Control", "max-age=60"),
    ]
    final = final_response_headers(effects, existing, None)
    assert final[:3] == [
        ("Content-Type", "application/json"),
        ("Set-Cookie", "theme=dark; Path=/"),
        ("Cache-Control", "no-store"),
    ]
    assert [value for name, value in final if name.lower() == "front-token"] == ["front"]
    cookies = [value.split("=")[0] for name, value in final if name.lower() == "set-cookie"]
    assert cookies == ["theme", "sAccessToken", "sRefreshToken", "sIdRefreshToken"]


def test_nothing_pending_leaves_the_headers_as_they_are() -> None:
    existing = [("X-A", "1"), ("front-token", "app's own")]
    assert final_response_headers(ResponseEffects(CONFIG), existing, False) == existing


def test_discard_forgets_minted_tokens() -> None:
    effects = ResponseEffects(CONFIG)
    effects.set_session(tokens())
    effects.discard()
    assert not effects.pending


def test_secure_cookies_warn_only_on_plain_http(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(transport.response, "_insecure_cookie_warned", False)
    effects = ResponseEffects(Config(store="sqlite:///:memory:"))
    effects.set_session(tokens())
    with caplog.at_level("WARNING", logger="sessionward"):
        final_response_headers(effects, [], True)
        final_response_headers(effects, [], None)
        assert caplog.records == []
        final_response_headers(effects, [], False)
        final_response_headers(effects, [], False)
    assert len(caplog.records) == 1
    assert "cookie_secure=False" in caplog.records[0].getMessage()
