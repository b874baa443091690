"""Both protocol generations in the wire layer (docs/protocol.md): the mode a request
speaks, the token each mode reads, and what each mode writes."""

from __future__ import annotations

import pytest

from sessionward import Config, TryRefreshTokenError, UnauthorizedError
from sessionward.engine.types import SessionTokens, Token
from sessionward.transport import (
    PREFLIGHT_ALLOW_HEADERS,
    PROTOCOL_HEADERS,
    ResponseEffects,
    WireMode,
    bearer_token,
    choose_mode,
    final_response_headers,
    parse_session_cookies,
    path_matches,
    session_cookie_present,
    session_present,
    sign_out_path,
    stale_cookies_on_refresh,
    tokens_for_refresh,
    tokens_for_verification,
)

LEGACY, COOKIE, INFERRED, HEADER = WireMode.LEGACY, WireMode.COOKIE, WireMode.INFERRED_COOKIE, WireMode.HEADER
CONFIG = Config(store="sqlite:///:memory:", cookie_secure=False)
LEGACY_COOKIES = "sAccessToken=a; sIdRefreshToken=i"
CURRENT_COOKIES = "sAccessToken=a"
NO_COOKIES = None
EXPIRED = "Expires=Thu, 01 Jan 1970 00:00:00 GMT"


def config(**options: object) -> Config:
    return Config(store="sqlite:///:memory:", cookie_secure=False, **options)  # type: ignore[arg-type]


def tokens() -> SessionTokens:
    return SessionTokens(
        "h",
        "u",
        {},
        Token("a.b.c", 2_000_000_000_000),
        Token("r", 2_000_000_000_000),
        Token("i", 2_000_000_000_000),
        "csrf",
        "front",
    )


# -- choose_mode ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operation", "transfer", "auth_mode", "bearer", "cookies", "expected"),
    [
        # verify, token_transfer="any"
        ("verify", "any", None, None, LEGACY_COOKIES, LEGACY),
        ("verify", "any", None, None, NO_COOKIES, LEGACY),
        ("verify", "any", None, None, "sIdRefreshToken=i", LEGACY),
        ("verify", "any", None, None, "sAccessToken=a; sIdRefreshToken=i; sIdRefreshToken=j", LEGACY),
        ("verify", "any", None, None, CURRENT_COOKIES, INFERRED),
        ("verify", "any", None, None, "sAccessToken=a; sAccessToken=b", INFERRED),
        ("verify", "any", None, "t", LEGACY_COOKIES, HEADER),
        ("verify", "any", "cookie", None, LEGACY_COOKIES, COOKIE),
        ("verify", "any", "cookie", "t", CURRENT_COOKIES, COOKIE),
        ("verify", "any", "header", None, CURRENT_COOKIES, HEADER),
        ("verify", "any", "header", "t", NO_COOKIES, HEADER),
        # st-auth-mode other than cookie/header, or sent twice: as if absent
        ("verify", "any", "Cookie", None, CURRENT_COOKIES, INFERRED),
        ("verify", "any", "cookie,cookie", None, LEGACY_COOKIES, LEGACY),
        ("verify", "any", "cookie,header", "t", NO_COOKIES, HEADER),
        ("verify", "any", "", None, NO_COOKIES, LEGACY),
        # token_transfer="cookie": no header mode, Bearer ignored
        ("verify", "cookie", "header", "t", CURRENT_COOKIES, COOKIE),
        ("verify", "cookie", None, "t", LEGACY_COOKIES, LEGACY),
        ("verify", "cookie", None, "t", CURRENT_COOKIES, INFERRED),
        # token_transfer="header": always header mode
        ("verify", "header", None, None, LEGACY_COOKIES, HEADER),
        ("verify", "header", "cookie", None, CURRENT_COOKIES, HEADER),
        # create
        ("create", "any", None, None, NO_COOKIES, LEGACY),
        ("create", "any", None, "t", NO_COOKIES, LEGACY),
        ("create", "any", "cookie", None, NO_COOKIES, COOKIE),
        ("create", "any", "header", None, NO_COOKIES, HEADER),
        ("create", "any", "bogus", None, NO_COOKIES, LEGACY),
        ("create", "cookie", "header", None, NO_COOKIES, COOKIE),
        ("create", "header", None, None, NO_COOKIES, HEADER),
        ("create", "header", "cookie", None, NO_COOKIES, HEADER),
        # refresh
        ("refresh", "any", None, None, "sRefreshToken=r", LEGACY),
        ("refresh", "any", None, None, CURRENT_COOKIES, LEGACY),
        ("refresh", "any", None, "t", "sRefreshToken=r", HEADER),
        ("refresh", "any", "cookie", "t", "sRefreshToken=r", COOKIE),
        ("refresh", "any", "header", None, "sRefreshToken=r", HEADER),
        ("refresh", "cookie", "header", "t", "sRefreshToken=r", COOKIE),
        ("refresh", "cookie", None, "t", "sRefreshToken=r", LEGACY),
        ("refresh", "header", None, None, "sRefreshToken=r", HEADER),
    ],
)
def test_choose_mode(
    operation: str,
    transfer: str,
    auth_mode: str | None,
    bearer: str | None,
    cookies: str | None,
    expected: WireMode,
) -> None:
    tokens = parse_session_cookies(cookies)
    assert choose_mode(operation, transfer, auth_mode, bearer, tokens) is expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("authorization", "token"),
    [
        (None, None),
        ("Bearer abc.def-_", "abc.def-_"),
        ("bearer abc", "abc"),
        ("BEARER abc==", "abc=="),
        ("Bearer a+b/c~", "a+b/c~"),
        ("Bearer", None),
        ("Bearer ", None),
        ("Bearer  abc", None),
        ("Bearer abc def", None),
        ("Bearer\tabc", None),
        ("Basic dXNlcjpwYXNz", None),
        ("Token abc", None),
        ("Bearer abc,Bearer def", None),
        ("Bearer abc, Bearer abc", None),
        ("Bearer a=b", None),
        ("Bearer %ff", None),
        ("Bearer \u00e9", None),
        ("abc", None),
        ("", None),
    ],
)
def test_bearer_token_is_exactly_scheme_space_token(authorization: str | None, token: str | None) -> None:
    assert bearer_token(authorization) == token


def test_a_huge_bearer_token_is_still_just_a_token() -> None:
    assert bearer_token("Bearer " + "a" * 100_000) == "a" * 100_000


# -- optional sessions ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cookies", "auth_mode", "authorization", "transfer", "present"),
    [
        (None, None, None, "any", False),
        ("sIdRefreshToken=i", None, None, "any", True),
        ("sIdRefreshToken=i; sIdRefreshToken=j", None, None, "any", False),
        ("sAccessToken=a; sIdRefreshToken=i; sIdRefreshToken=j", None, None, "any", False),
        (CURRENT_COOKIES, None, None, "any", True),
        ("sAccessToken=a; sAccessToken=b", None, None, "any", False),
        (CURRENT_COOKIES, "cookie", None, "any", True),
        (None, "cookie", None, "any", False),
        ("sIdRefreshToken=i", "cookie", None, "any", True),
        (None, "header", "Bearer t", "any", True),
        (None, None, "Bearer t", "any", True),
        (None, None, "Basic t", "any", False),
        (CURRENT_COOKIES, "header", None, "any", False),
        (LEGACY_COOKIES, "header", None, "any", True),
        (None, None, "Bearer t", "cookie", False),
        (CURRENT_COOKIES, None, "Bearer t", "cookie", True),
        (LEGACY_COOKIES, None, None, "header", False),
        (None, None, "Bearer t", "header", True),
    ],
)
def test_session_present_in_each_mode(
    cookies: str | None, auth_mode: str | None, authorization: str | None, transfer: str, present: bool
) -> None:
    assert (
        session_cookie_present(cookies, auth_mode, authorization, config(token_transfer=transfer)) is present
    )


def test_session_present_without_headers_is_the_cookie_check() -> None:
    assert session_cookie_present("sIdRefreshToken=i") is True
    assert session_present(LEGACY, parse_session_cookies(None), "t", "any") is False


# -- the token each mode reads ------------------------------------------------------------------


def test_header_mode_verifies_the_bearer_token_without_anti_csrf() -> None:
    cookies = parse_session_cookies(LEGACY_COOKIES)
    assert tokens_for_verification(cookies, CONFIG, "POST", None, HEADER, "t") == ("t", False)
    assert tokens_for_verification(cookies, CONFIG, "POST", True, HEADER, "t") == ("t", False)


def test_header_mode_without_a_bearer_token_is_unauthorised_touching_nothing() -> None:
    for cookies in (None, CURRENT_COOKIES):
        with pytest.raises(UnauthorizedError, match="Bearer") as info:
            tokens_for_verification(parse_session_cookies(cookies), CONFIG, "GET", None, HEADER, None)
        assert info.value.clear_cookies is False


def test_header_mode_with_a_2020_session_asks_for_a_refresh() -> None:
    cookies = parse_session_cookies(LEGACY_COOKIES)
    with pytest.raises(TryRefreshTokenError, match="2020"):
        tokens_for_verification(cookies, CONFIG, "GET", None, HEADER, None)
    with pytest.raises(UnauthorizedError):
        tokens_for_verification(cookies, config(token_transfer="header"), "GET", None, HEADER, None)


def test_cookie_mode_reads_the_access_cookie_and_checks_anti_csrf_as_2020() -> None:
    cookies = parse_session_cookies(CURRENT_COOKIES)
    assert tokens_for_verification(cookies, CONFIG, "POST", None, COOKIE) == ("a", True)
    assert tokens_for_verification(cookies, CONFIG, "GET", None, INFERRED) == ("a", False)
    assert tokens_for_verification(cookies, CONFIG, "POST", None, INFERRED) == ("a", True)


@pytest.mark.parametrize("cookies", [None, "sAccessToken=a; sAccessToken=b", "sRefreshToken=r"])
def test_cookie_mode_without_one_access_cookie_asks_for_a_refresh(cookies: str | None) -> None:
    with pytest.raises(TryRefreshTokenError, match="sAccessToken"):
        tokens_for_verification(parse_session_cookies(cookies), CONFIG, "GET", None, COOKIE)


def test_cookie_mode_with_a_2020_session_asks_for_a_refresh_even_with_a_valid_access_cookie() -> None:
    with pytest.raises(TryRefreshTokenError, match="2020"):
        tokens_for_verification(parse_session_cookies(LEGACY_COOKIES), CONFIG, "GET", None, COOKIE)
    doubled = parse_session_cookies("sAccessToken=a; sIdRefreshToken=i; sIdRefreshToken=j")
    assert tokens_for_verification(doubled, CONFIG, "GET", None, COOKIE) == ("a", False)


def test_refresh_token_per_mode() -> None:
    cookies = parse_session_cookies("sRefreshToken=r")
    assert tokens_for_refresh(cookies, CONFIG) == "r"
    assert tokens_for_refresh(cookies, CONFIG, COOKIE) == "r"
    assert tokens_for_refresh(cookies, CONFIG, HEADER, "t") == "t"
    with pytest.raises(UnauthorizedError, match="Bearer") as info:
        tokens_for_refresh(cookies, CONFIG, HEADER, None)
    assert info.value.clear_cookies is False
    legacy = parse_session_cookies("sRefreshToken=r; sIdRefreshToken=i")
    assert tokens_for_refresh(legacy, CONFIG, HEADER, None) == "r"
    with pytest.raises(UnauthorizedError):
        tokens_for_refresh(legacy, config(token_transfer="header"), HEADER, None)
    with pytest.raises(UnauthorizedError, match="sRefreshToken"):
        tokens_for_refresh(parse_session_cookies(None), CONFIG, COOKIE)


@pytest.mark.parametrize(
    ("cookies", "mode", "bearer", "options", "stale"),
    [
        ("sRefreshToken=r", LEGACY, None, {}, ()),
        ("sRefreshToken=r; sIdRefreshToken=i", LEGACY, None, {}, ()),
        ("sRefreshToken=r", COOKIE, None, {}, ()),
        ("sRefreshToken=r; sIdRefreshToken=i", COOKIE, None, {}, ("sIdRefreshToken",)),
        ("sRefreshToken=r; sIdRefreshToken=i; sIdRefreshToken=j", COOKIE, None, {}, ("sIdRefreshToken",)),
        # The refresh route never sees a cookie scoped to /api: always expire it.
        ("sRefreshToken=r", COOKIE, None, {"access_token_path": "/api"}, ("sIdRefreshToken",)),
        ("sRefreshToken=r", COOKIE, None, {"access_token_path": "/session"}, ()),
        ("sRefreshToken=r; sIdRefreshToken=i", HEADER, "t", {}, ()),
        ("sRefreshToken=r", HEADER, None, {}, ()),
        (
            "sRefreshToken=r; sIdRefreshToken=i",
            HEADER,
            None,
            {},
            ("sAccessToken", "sRefreshToken", "sIdRefreshToken"),
        ),
    ],
)
def test_stale_cookies_on_refresh(
    cookies: str, mode: WireMode, bearer: str | None, options: dict[str, str], stale: tuple[str, ...]
) -> None:
    assert stale_cookies_on_refresh(parse_session_cookies(cookies), config(**options), mode, bearer) == stale


@pytest.mark.parametrize(
    ("request_path", "cookie_path", "matches"),
    [
        ("/session/refresh", "/", True),
        ("/session/refresh", "/session", True),
        ("/session/refresh", "/session/", True),
        ("/session/refresh", "/session/refresh", True),
        ("/session/refresh", "/sess", False),
        ("/session/refresh", "/api", False),
        ("/auth/session/refresh", "/auth", True),
    ],
)
def test_path_matches(request_path: str, cookie_path: str, matches: bool) -> None:
    assert path_matches(request_path, cookie_path) is matches


# -- what each mode writes ----------------------------------------------------------------------


def effects_in(mode: WireMode, cfg: Config = CONFIG, stale: tuple[str, ...] = ()) -> ResponseEffects:
    effects = ResponseEffects(cfg, mode=mode, stale_cookies=stale)
    return effects


def test_cookie_mode_issues_two_cookies_front_token_and_anti_csrf() -> None:
    effects = effects_in(COOKIE)
    effects.set_session(tokens())
    assert list(effects.cookies) == ["sAccessToken", "sRefreshToken"]
    assert effects.headers == {"front-token": "front", "anti-csrf": "csrf"}
    legacy = effects_in(LEGACY)
    legacy.set_session(tokens())
    assert effects.cookies["sAccessToken"] == legacy.cookies["sAccessToken"]
    assert effects.cookies["sRefreshToken"] == legacy.cookies["sRefreshToken"]


def test_cookie_mode_refresh_of_a_2020_session_expires_the_id_refresh_cookie() -> None:
    effects = effects_in(COOKIE, config(cookie_domain="example.test"), ("sIdRefreshToken",))
    effects.set_session(tokens())
    assert effects.cookies["sIdRefreshToken"] == (
        f"sIdRefreshToken=; Path=/; {EXPIRED}; Domain=example.test; HttpOnly; SameSite=Lax"
    )
    assert "id-refresh-token" not in effects.headers


def test_header_mode_issues_token_headers_and_no_cookie() -> None:
    effects = effects_in(HEADER)
    effects.set_session(tokens())
    assert effects.cookies == {}
    assert effects.headers == {"st-access-token": "a.b.c", "front-token": "front", "st-refresh-token": "r"}
    final = final_response_headers(effects, [("Content-Type", "application/json")], False)
    assert dict(final)["cache-control"] == "no-store"
    exposed = {name.strip() for name in dict(final)["access-control-expose-headers"].split(",")}
    assert exposed == {"st-access-token", "st-refresh-token", "front-token"}
    assert [name for name, _ in final if name == "set-cookie"] == []


def test_header_mode_reissued_access_token_is_a_header() -> None:
    effects = effects_in(HEADER)
    effects.set_access_token(Token("n.e.w", 1), "front2")
    assert effects.headers == {"st-access-token": "n.e.w", "front-token": "front2"}
    assert effects.cookies == {}


@pytest.mark.parametrize(
    ("mode", "cookies", "headers"),
    [
        (LEGACY, ["sAccessToken", "sRefreshToken", "sIdRefreshToken"], {"id-refresh-token": "remove"}),
        (COOKIE, ["sAccessToken", "sRefreshToken"], {"front-token": "remove"}),
        (INFERRED, ["sAccessToken", "sRefreshToken"], {}),
        (HEADER, [], {"st-access-token": "", "st-refresh-token": "", "front-token": "remove"}),
    ],
)
def test_clear_session_per_mode(mode: WireMode, cookies: list[str], headers: dict[str, str]) -> None:
    effects = effects_in(mode)
    effects.set_session(tokens())
    effects.clear_session()
    assert list(effects.cookies) == cookies
    assert all(EXPIRED in value for value in effects.cookies.values())
    assert effects.headers == headers
    final = dict(final_response_headers(effects, [], None))
    assert final["cache-control"] == "no-store"
    exposed = {name.strip() for name in final.get("access-control-expose-headers", "").split(",") if name}
    assert exposed == set(headers)


def test_clear_session_expires_every_cookie_written_earlier_and_the_stale_ones() -> None:
    effects = effects_in(LEGACY)
    effects.set_session(tokens())
    effects.mode = HEADER
    effects.stale_cookies = ("sIdRefreshToken",)
    effects.clear_session()
    assert list(effects.cookies) == ["sAccessToken", "sRefreshToken", "sIdRefreshToken"]
    assert all(EXPIRED in value for value in effects.cookies.values())
    assert effects.headers == {"st-access-token": "", "st-refresh-token": "", "front-token": "remove"}


def test_discard_keeps_the_mode() -> None:
    effects = effects_in(HEADER, stale=("sIdRefreshToken",))
    effects.set_session(tokens())
    effects.discard()
    assert not effects.pending
    assert (effects.mode, effects.stale_cookies) == (HEADER, ("sIdRefreshToken",))


def test_an_app_header_of_a_protocol_name_is_replaced() -> None:
    effects = effects_in(HEADER)
    effects.set_session(tokens())
    final = final_response_headers(effects, [("st-access-token", "app"), ("ST-Refresh-Token", "app")], None)
    assert [value for name, value in final if name.lower() == "st-access-token"] == ["a.b.c"]
    assert [value for name, value in final if name.lower() == "st-refresh-token"] == ["r"]


def test_protocol_and_preflight_header_lists() -> None:
    assert PROTOCOL_HEADERS == (
        "id-refresh-token",
        "anti-csrf",
        "front-token",
        "st-access-token",
        "st-refresh-token",
    )
    assert {
        "anti-csrf",
        "fdi-version",
        "supertokens-sdk-name",
        "supertokens-sdk-version",
        "rid",
        "st-auth-mode",
        "authorization",
        "content-type",
    } == set(PREFLIGHT_ALLOW_HEADERS)


@pytest.mark.parametrize(
    ("refresh_api_path", "expected"),
    [
        ("/session/refresh", "/signout"),
        ("/auth/session/refresh", "/auth/signout"),
        ("/api/v1/session/refresh", "/api/v1/signout"),
        ("/auth/refresh", None),
        ("/session/refresh/", None),
        ("/my-session/refresh", None),
    ],
)
def test_sign_out_path(refresh_api_path: str, expected: str | None) -> None:
    assert sign_out_path(config(refresh_api_path=refresh_api_path)) == expected


_VERIFY_COOKIES = [
    None,
    "",
    "sAccessToken=a",
    "sAccessToken=a; sIdRefreshToken=i",
    "sIdRefreshToken=i",
    "sAccessToken=a; sAccessToken=b",
    "sAccessToken=a; sIdRefreshToken=i; sIdRefreshToken=j",
    "sAccessToken=a; sRefreshToken=r",
    "other=1",
]


@pytest.mark.parametrize("transfer", ["any", "cookie", "header"])
@pytest.mark.parametrize("cookie_header", _VERIFY_COOKIES)
@pytest.mark.parametrize("auth_mode", [None, "cookie", "header", "junk"])
@pytest.mark.parametrize("authorization", [None, "Bearer t", "Basic x"])
def test_handler_verification_decides_as_the_transport_functions(
    transfer: str, cookie_header: str | None, auth_mode: str | None, authorization: str | None
) -> None:
    """The request handlers' shortcut for the usual request (cookies only) decides exactly
    what choose_mode and tokens_for_verification decide, for every method and option."""
    from types import SimpleNamespace

    from sessionward.session import SessionHandler

    settings = config(token_transfer=transfer)
    handler = SessionHandler(SimpleNamespace(config=settings))  # type: ignore[arg-type]
    for method in ("GET", "get", "HEAD", "OPTIONS", "POST", "delete"):
        for anti_csrf_check in (None, True, False):
            tokens = parse_session_cookies(None if transfer == "header" else cookie_header)
            bearer = bearer_token(authorization)
            mode = choose_mode("verify", transfer, auth_mode, bearer, tokens)
            try:
                expected: object = tokens_for_verification(
                    tokens, settings, method, anti_csrf_check, mode, bearer
                )
            except (UnauthorizedError, TryRefreshTokenError) as error:
                expected = (type(error), str(error), getattr(error, "clear_cookies", None))
            effects = ResponseEffects(settings, mode=COOKIE)
            raw = None if cookie_header is None else cookie_header.encode()
            for header in (cookie_header, raw):
                try:
                    got: object = handler._verification(
                        effects, header, method, anti_csrf_check, auth_mode, authorization
                    )
                except (UnauthorizedError, TryRefreshTokenError) as error:
                    got = (type(error), str(error), getattr(error, "clear_cookies", None))
                assert got == expected
                assert effects.mode is mode
