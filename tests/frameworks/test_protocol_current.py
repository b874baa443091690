"""The current SuperTokens frontend protocol (``st-auth-mode: cookie|header``) beside the
2020 one, asserted identically on Flask, FastAPI, plain Starlette and Django, through each
framework's test client and real servers (docs/protocol.md).

:class:`SdkClient` sends what supertokens-website 20.x and supertokens-web-js send: the
``st-auth-mode`` header on every request, in header mode ``Authorization: Bearer`` with the
tokens it saved from ``st-access-token`` / ``st-refresh-token``, and ``anti-csrf`` once it
has one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from frameworks.clients import WITH_STARLETTE, open_client
from frameworks.wire import WireClient, WireResponse
from sessionward import Config

ClientFactory = Callable[..., WireClient]
REFRESH = "/session/refresh"
SIGN_OUT = "/signout"
TOKEN_HEADERS = ("st-access-token", "st-refresh-token")


@pytest.fixture(params=WITH_STARLETTE)
def framework(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_client(framework: str, tmp_path: Path) -> Iterator[ClientFactory]:
    opened: list[Any] = []

    def factory(**options: Any) -> WireClient:
        options.setdefault("store", f"sqlite:///{tmp_path}/sessions.db")
        options.setdefault("cookie_secure", False)
        options.setdefault("access_token_algorithm", "HS256")
        context = open_client(framework, Config(**options))
        client = context.__enter__()
        opened.append(context)
        return client

    yield factory
    for context in reversed(opened):
        context.__exit__(None, None, None)


class SdkClient:
    """A current-protocol frontend over a :class:`WireClient` (whose jar plays the browser)."""

    def __init__(self, wire: WireClient, mode: str | None) -> None:
        self.wire = wire
        self.mode = mode
        self.access_token: str | None = None
        self.refresh_token: str | None = None
        self.front_token: str | None = None

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        headers: list[tuple[str, str]] | None = None,
        cookie: Any = "jar",
        send_anti_csrf: bool = True,
        update: bool = True,
    ) -> WireResponse:
        sent = list(headers or ())
        names = {name.lower() for name, _ in sent}
        if self.mode is not None and "st-auth-mode" not in names:
            sent.append(("st-auth-mode", self.mode))
        token = self.refresh_token if path == REFRESH else self.access_token
        if self.mode == "header" and token is not None and "authorization" not in names:
            sent.append(("authorization", f"Bearer {token}"))
        response = self.wire.request(
            method,
            path,
            json_body=json_body,
            headers=sent,
            cookie=cookie,
            send_anti_csrf=send_anti_csrf,
            update_jar=update,
        )
        if update:
            self.save(response)
        return response

    def save(self, response: WireResponse) -> None:
        access, refresh = response.header("st-access-token"), response.header("st-refresh-token")
        if access is not None:
            self.access_token = access or None
        if refresh is not None:
            self.refresh_token = refresh or None
        front = response.header("front-token")
        if front == "remove":
            self.front_token = None
            self.wire.anti_csrf = None
        elif front is not None:
            self.front_token = front

    def login(self, user_id: str = "alice", payload: dict[str, Any] | None = None) -> WireResponse:
        response = self.request("POST", "/login", json_body={"user_id": user_id, "payload": payload})
        assert response.status == 200, response.body
        return response


def sdk(make_client: ClientFactory, mode: str | None, **options: Any) -> SdkClient:
    return SdkClient(make_client(**options), mode)


def exposed(response: WireResponse) -> set[str]:
    value = response.header("access-control-expose-headers") or ""
    return {name.strip() for name in value.split(",") if name.strip()}


def front_token(response: WireResponse) -> dict[str, Any]:
    decoded = response.front_token()
    assert decoded is not None
    return decoded


def assert_cookie_mode_tokens(response: WireResponse, *, anti_csrf: bool) -> None:
    cookies = response.set_cookies()
    assert set(cookies) == {"sAccessToken", "sRefreshToken"}
    assert cookies["sAccessToken"].attributes["path"] == "/"
    assert cookies["sRefreshToken"].attributes["path"] == REFRESH
    assert response.header("id-refresh-token") is None
    assert front_token(response)["uid"]
    assert (response.header("anti-csrf") is not None) is anti_csrf
    assert exposed(response) == {"front-token"} | ({"anti-csrf"} if anti_csrf else set())
    assert response.header("cache-control") == "no-store"
    for name in TOKEN_HEADERS:
        assert response.header(name) is None


def assert_header_mode_tokens(response: WireResponse) -> None:
    assert response.header_values("set-cookie") == []
    for name in TOKEN_HEADERS:
        assert response.header(name)
    assert front_token(response)["uid"]
    assert response.header("anti-csrf") is None
    assert response.header("id-refresh-token") is None
    assert exposed(response) == {"front-token", *TOKEN_HEADERS}
    assert response.header("cache-control") == "no-store"


def assert_cookie_mode_ended(response: WireResponse) -> None:
    cookies = response.set_cookies()
    assert set(cookies) == {"sAccessToken", "sRefreshToken"}
    assert all(cookie.cleared for cookie in cookies.values())
    assert response.header("front-token") == "remove"
    assert response.header("id-refresh-token") is None
    assert exposed(response) == {"front-token"}


def assert_header_mode_ended(response: WireResponse) -> None:
    assert response.header_values("set-cookie") == []
    assert response.header("front-token") == "remove"
    for name in TOKEN_HEADERS:
        assert response.header(name) == ""
    assert exposed(response) == {"front-token", *TOKEN_HEADERS}


def assert_untouched(response: WireResponse) -> None:
    assert response.header_values("set-cookie") == []
    for name in ("front-token", "id-refresh-token", "anti-csrf", *TOKEN_HEADERS):
        assert response.header(name) is None


def assert_body(response: WireResponse, status: int, message: str) -> None:
    assert (response.status, response.json()) == (status, {"message": message}), response.body


def handle(client: SdkClient | WireClient) -> str:
    response = client.request("GET", "/protected")
    assert response.status == 200, response.body
    return str(response.json()["handle"])


# -- cookie mode ----------------------------------------------------------------------------------


@pytest.mark.parametrize("anti_csrf", [False, True])
def test_cookie_mode_create_verify_refresh_sign_out(make_client: ClientFactory, anti_csrf: bool) -> None:
    client = sdk(make_client, "cookie", enable_anti_csrf=anti_csrf, refresh_token_reuse_grace_period=0)
    assert_cookie_mode_tokens(client.login("alice", {"role": "admin"}), anti_csrf=anti_csrf)
    protected = client.request("POST", "/protected")
    assert protected.status == 200 and protected.json()["user_id"] == "alice"
    assert_untouched(protected)
    old_refresh = client.wire.jar.value("sRefreshToken")
    # The SDK sends anti-csrf on refresh only sometimes: never required there.
    refreshed = client.request("POST", REFRESH, send_anti_csrf=False)
    assert refreshed.status == 200 and refreshed.json() == {}
    assert_cookie_mode_tokens(refreshed, anti_csrf=anti_csrf)
    assert front_token(refreshed)["up"] == {"role": "admin"}
    first_use = client.request("GET", "/protected")
    assert first_use.status == 200
    assert set(first_use.set_cookies()) == {"sAccessToken"}
    assert first_use.header("front-token") is not None
    assert first_use.header("id-refresh-token") is None
    signed_out = client.request("POST", SIGN_OUT)
    assert (signed_out.status, signed_out.json()) == (200, {"status": "OK"})
    assert_cookie_mode_ended(signed_out)
    gone = client.request("POST", REFRESH, cookie=f"sRefreshToken={old_refresh}", update=False)
    assert_body(gone, 401, "unauthorised")


def test_cookie_mode_anti_csrf_checked_on_non_get(make_client: ClientFactory) -> None:
    client = sdk(make_client, "cookie", enable_anti_csrf=True)
    client.login()
    assert client.request("GET", "/protected", send_anti_csrf=False).status == 200
    without = client.request("POST", "/protected", send_anti_csrf=False)
    assert_body(without, 401, "try refresh token")
    assert_untouched(without)
    wrong = client.request("POST", "/protected", headers=[("anti-csrf", "x" * 32)])
    assert_body(wrong, 401, "try refresh token")
    assert_body(client.request("POST", SIGN_OUT, send_anti_csrf=False), 401, "try refresh token")
    assert client.request("POST", "/protected").status == 200


def test_cookie_mode_without_access_cookie_asks_for_a_refresh(make_client: ClientFactory) -> None:
    client = sdk(make_client, "cookie")
    client.login()
    for cookie in (None, "sAccessToken=a; sAccessToken=b"):
        response = client.request("GET", "/protected", cookie=cookie, update=False)
        assert_body(response, 401, "try refresh token")
        assert_untouched(response)
    no_refresh_cookie = client.request("POST", REFRESH, cookie=None, update=False)
    assert_body(no_refresh_cookie, 401, "unauthorised")
    assert_untouched(no_refresh_cookie)


def test_cookie_mode_revocation_ends_the_session_with_front_token_remove(make_client: ClientFactory) -> None:
    client = sdk(make_client, "cookie", enable_anti_csrf=True)
    client.login("carol")
    response = client.request("POST", "/logout")
    assert response.status == 200
    assert_cookie_mode_ended(response)
    assert response.header("anti-csrf") is None
    again = SdkClient(WireClient(client.wire.transport), "cookie")
    again.login("dave")
    both = again.request("POST", "/login-then-logout")
    assert both.status == 200
    assert_cookie_mode_ended(both)


def test_cookie_mode_theft_clears_with_front_token_remove(make_client: ClientFactory) -> None:
    client = sdk(make_client, "cookie", refresh_token_reuse_grace_period=0)
    client.login()
    old = client.wire.jar.value("sRefreshToken")
    assert client.request("POST", REFRESH).status == 200
    assert client.request("GET", "/protected").status == 200
    theft = client.request("POST", REFRESH, cookie=f"sRefreshToken={old}", update=False)
    assert_body(theft, 401, "token theft detected")
    assert_cookie_mode_ended(theft)


def test_update_payload_in_cookie_mode_reissues_the_access_cookie(make_client: ClientFactory) -> None:
    client = sdk(make_client, "cookie")
    client.login("alice", {"v": 1})
    response = client.request("POST", "/update-payload", json_body={"v": 2})
    assert response.status == 200
    assert set(response.set_cookies()) == {"sAccessToken"}
    assert front_token(response)["up"] == {"v": 2}
    assert response.header("id-refresh-token") is None


def test_requests_the_sdk_does_not_intercept_use_the_cookie_session(make_client: ClientFactory) -> None:
    """A page navigation carries the cookies but no st-auth-mode: the access cookie without
    sIdRefreshToken is the current cookie mode, and ending the session there never sends
    front-token: remove (the client might be a 2020 one)."""
    client = sdk(make_client, "cookie")
    client.login("alice")
    navigation = SdkClient(client.wire, None)
    page = navigation.request("GET", "/protected")
    assert page.status == 200 and page.json()["user_id"] == "alice"
    assert navigation.request("GET", "/optional").json() == {"user_id": "alice"}
    logout = navigation.request("POST", "/logout")
    assert logout.status == 200
    cookies = logout.set_cookies()
    assert set(cookies) == {"sAccessToken", "sRefreshToken"}
    assert all(cookie.cleared for cookie in cookies.values())
    assert_no_protocol_headers(logout)


def assert_no_protocol_headers(response: WireResponse) -> None:
    for name in ("front-token", "id-refresh-token", "anti-csrf", *TOKEN_HEADERS):
        assert response.header(name) is None


# -- header mode ----------------------------------------------------------------------------------


def test_header_mode_create_verify_refresh_sign_out(make_client: ClientFactory) -> None:
    client = sdk(make_client, "header", enable_anti_csrf=True, refresh_token_reuse_grace_period=0)
    login = client.login("alice", {"role": "admin"})
    assert_header_mode_tokens(login)
    assert client.wire.jar.cookies == {}
    # No anti-CSRF in header mode: a POST without it is fine.
    protected = client.request("POST", "/protected", send_anti_csrf=False)
    assert protected.status == 200 and protected.json()["payload"] == {"role": "admin"}
    assert_untouched(protected)
    old_refresh = client.refresh_token
    refreshed = client.request("POST", REFRESH)
    assert refreshed.status == 200 and refreshed.json() == {}
    assert_header_mode_tokens(refreshed)
    assert client.refresh_token != old_refresh
    first_use = client.request("GET", "/protected")
    assert first_use.status == 200
    assert first_use.header_values("set-cookie") == []
    assert first_use.header("st-access-token") and first_use.header("front-token")
    assert first_use.header("st-refresh-token") is None
    assert exposed(first_use) == {"front-token", "st-access-token"}
    signed_out = client.request("POST", SIGN_OUT)
    assert (signed_out.status, signed_out.json()) == (200, {"status": "OK"})
    assert_header_mode_ended(signed_out)
    gone = client.request("POST", REFRESH, headers=[("authorization", f"Bearer {old_refresh}")], update=False)
    assert_body(gone, 401, "unauthorised")
    assert gone.header_values("set-cookie") == []


def test_header_mode_sets_no_cookies_and_ignores_them(make_client: ClientFactory) -> None:
    cookie_user = sdk(make_client, "cookie")
    cookie_user.login("alice")
    header_view = SdkClient(cookie_user.wire, "header")
    for path, method in (("/protected", "GET"), ("/protected", "POST")):
        response = header_view.request(method, path, update=False)
        assert_body(response, 401, "unauthorised")
        assert_untouched(response)
    assert header_view.request("GET", "/optional", update=False).json() == {"user_id": None}
    refresh = header_view.request("POST", REFRESH, update=False)
    assert_body(refresh, 401, "unauthorised")
    assert_untouched(refresh)
    # A Bearer token wins over the cookies, which are never read.
    bob = SdkClient(WireClient(cookie_user.wire.transport), "header")
    bob.login("bob")
    mixed = header_view.request(
        "GET", "/protected", headers=[("authorization", f"Bearer {bob.access_token}")], update=False
    )
    assert mixed.status == 200 and mixed.json()["user_id"] == "bob"


def test_bearer_without_st_auth_mode_is_header_mode(make_client: ClientFactory) -> None:
    client = sdk(make_client, "header")
    client.login("alice")
    plain = SdkClient(client.wire, None)
    bearer = [("authorization", f"Bearer {client.access_token}")]
    assert plain.request("GET", "/protected", headers=bearer).json()["user_id"] == "alice"
    assert plain.request("GET", "/optional", headers=bearer).json() == {"user_id": "alice"}
    refresh = plain.request("POST", REFRESH, headers=[("authorization", f"Bearer {client.refresh_token}")])
    assert refresh.status == 200
    assert_header_mode_tokens(refresh)
    # Creating a session without st-auth-mode is the 2020 protocol, Bearer or not.
    legacy = plain.request("POST", "/login", json_body={"user_id": "x"}, headers=bearer)
    assert set(legacy.set_cookies()) == {"sAccessToken", "sRefreshToken", "sIdRefreshToken"}


def test_header_mode_optional_session_and_revocation(make_client: ClientFactory) -> None:
    client = sdk(make_client, "header")
    assert client.request("GET", "/optional").json() == {"user_id": None}
    client.login("erin", {"v": 1})
    assert client.request("GET", "/optional").json() == {"user_id": "erin"}
    updated = client.request("POST", "/update-payload", json_body={"v": 2})
    assert updated.status == 200 and updated.header_values("set-cookie") == []
    assert front_token(updated)["up"] == {"v": 2}
    assert client.request("GET", "/protected").json()["payload"] == {"v": 2}
    logout = client.request("POST", "/logout")
    assert logout.status == 200
    assert_header_mode_ended(logout)
    assert client.access_token is None and client.refresh_token is None


# -- migration from the 2020 protocol --------------------------------------------------------------


@pytest.mark.parametrize("mode", ["cookie", "header"])
def test_a_2020_session_moves_to_the_current_protocol_without_a_new_login(
    make_client: ClientFactory, mode: str
) -> None:
    client = sdk(make_client, None)
    client.login("alice", {"v": 1})
    before = handle(client)
    client.mode = mode
    asked = client.request("GET", "/protected")
    assert_body(asked, 401, "try refresh token")
    assert_untouched(asked)
    assert client.request("GET", "/optional", update=False).status == 401
    refreshed = client.request("POST", REFRESH)
    assert refreshed.status == 200, refreshed.body
    cookies = refreshed.set_cookies()
    assert cookies["sIdRefreshToken"].cleared
    assert cookies["sIdRefreshToken"].attributes["path"] == "/"
    assert front_token(refreshed)["uid"] == "alice"
    assert refreshed.header("id-refresh-token") is None
    if mode == "cookie":
        assert set(cookies) == {"sAccessToken", "sRefreshToken", "sIdRefreshToken"}
        assert not cookies["sAccessToken"].cleared and not cookies["sRefreshToken"].cleared
    else:
        assert set(cookies) == {"sAccessToken", "sRefreshToken", "sIdRefreshToken"}
        assert all(cookie.cleared for cookie in cookies.values())
        assert client.access_token and client.refresh_token
    assert client.wire.jar.value("sIdRefreshToken") is None
    assert handle(client) == before
    assert client.request("POST", REFRESH).status == 200
    assert handle(client) == before


def test_migration_clears_the_id_refresh_cookie_on_its_own_path_and_domain(
    make_client: ClientFactory,
) -> None:
    client = sdk(make_client, None, cookie_domain="example.test", access_token_path="/")
    client.login("alice")
    client.mode = "cookie"
    refreshed = client.request("POST", REFRESH)
    assert refreshed.status == 200, refreshed.body
    cleared = refreshed.set_cookies()["sIdRefreshToken"]
    assert cleared.cleared
    assert (cleared.attributes["path"], cleared.attributes.get("domain")) == ("/", "example.test")


# -- the 2020 protocol is unchanged ----------------------------------------------------------------


def test_2020_answers_never_carry_current_protocol_headers(make_client: ClientFactory) -> None:
    client = sdk(make_client, None, enable_anti_csrf=True, refresh_token_reuse_grace_period=0)
    login = client.login()
    assert set(login.set_cookies()) == {"sAccessToken", "sRefreshToken", "sIdRefreshToken"}
    old = client.wire.jar.value("sRefreshToken")
    responses = [
        login,
        client.request("POST", REFRESH),
        client.request("GET", "/protected"),
        client.request("POST", REFRESH, cookie=f"sRefreshToken={old}", update=False),
        client.request("POST", "/login", json_body={"user_id": "bob"}),
        client.request("POST", SIGN_OUT),
    ]
    for response in responses:
        assert response.header("front-token") != "remove"
        for name in TOKEN_HEADERS:
            assert response.header(name) is None
    signed_out = responses[-1]
    assert (signed_out.status, signed_out.json()) == (200, {"status": "OK"})
    assert signed_out.header("id-refresh-token") == "remove"
    assert signed_out.header("front-token") is None
    assert set(signed_out.set_cookies()) == {"sAccessToken", "sRefreshToken", "sIdRefreshToken"}


# -- sign-out route --------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [None, "cookie", "header"])
def test_sign_out_without_a_session_is_the_normal_401(make_client: ClientFactory, mode: str | None) -> None:
    client = sdk(make_client, mode)
    response = client.request("POST", SIGN_OUT)
    expected = "try refresh token" if mode == "cookie" else "unauthorised"
    assert_body(response, 401, expected)
    assert_untouched(response)


def test_sign_out_route_answers_its_preflight_and_sits_beside_the_refresh_route(
    make_client: ClientFactory,
) -> None:
    client = make_client(refresh_api_path="/auth/session/refresh")
    preflight = client.request("OPTIONS", "/auth/signout", cookie=None)
    assert preflight.status in (200, 204)
    allowed = {h.strip().lower() for h in (preflight.header("access-control-allow-headers") or "").split(",")}
    assert {"rid", "st-auth-mode", "authorization", "anti-csrf", "fdi-version", "content-type"} <= allowed
    assert preflight.header("access-control-allow-credentials") == "true"
    current = SdkClient(client, "cookie")
    current.login()
    refreshed = current.request("POST", "/auth/session/refresh")
    assert refreshed.status == 200
    assert refreshed.set_cookies()["sRefreshToken"].attributes["path"] == "/auth/session/refresh"
    signed_out = current.request("POST", "/auth/signout")
    assert signed_out.status == 200, signed_out.body
    assert signed_out.header("front-token") == "remove"
    assert client.request("POST", SIGN_OUT).status in (404, 405)


def test_no_sign_out_route_when_the_refresh_path_is_custom(make_client: ClientFactory) -> None:
    client = make_client(refresh_api_path="/auth/refresh")
    current = SdkClient(client, "cookie")
    current.login()
    for path in (SIGN_OUT, "/auth/signout"):
        assert current.request("POST", path, update=False).status in (404, 405)
    assert current.request("POST", "/auth/refresh").status == 200


# -- token_transfer --------------------------------------------------------------------------------


def test_token_transfer_cookie_never_issues_header_mode(make_client: ClientFactory) -> None:
    client = sdk(make_client, "header", token_transfer="cookie")
    login = client.login("alice")
    assert_cookie_mode_tokens(login, anti_csrf=False)
    assert client.request("GET", "/protected").status == 200
    assert client.access_token is None
    bearer = client.request("GET", "/protected", headers=[("authorization", "Bearer x.y.z")], cookie=None)
    assert_body(bearer, 401, "try refresh token")
    legacy = SdkClient(WireClient(client.wire.transport), None)
    assert set(legacy.login().set_cookies()) == {"sAccessToken", "sRefreshToken", "sIdRefreshToken"}
    assert legacy.request("GET", "/protected").status == 200


def test_token_transfer_header_never_reads_or_sets_cookies(make_client: ClientFactory) -> None:
    client = sdk(make_client, None, token_transfer="header")
    assert_header_mode_tokens(client.login("alice"))
    assert_body(client.request("GET", "/protected"), 401, "unauthorised")
    client.mode = "header"
    assert client.request("GET", "/protected").status == 200
    assert_header_mode_tokens(client.request("POST", REFRESH))
    cookie_client = SdkClient(WireClient(client.wire.transport), "cookie")
    assert_header_mode_tokens(cookie_client.login("bob"))
    as_cookies = client.request(
        "GET",
        "/protected",
        cookie=f"sAccessToken={client.access_token}; sIdRefreshToken=i",
        update=False,
        headers=[("authorization", "x")],
    )
    assert_body(as_cookies, 401, "unauthorised")
    assert_untouched(as_cookies)


# -- hostile input ---------------------------------------------------------------------------------


def test_hostile_current_protocol_headers_never_500(make_client: ClientFactory) -> None:
    header_user = sdk(make_client, "header")
    header_user.login("victim")
    legacy = SdkClient(WireClient(header_user.wire.transport), None)
    legacy.login("legacy")
    access, refresh = header_user.access_token or "", header_user.refresh_token or ""
    # st-auth-mode twice or unknown: as if absent (the 2020 cookies then decide).
    for headers in (
        [("st-auth-mode", "header"), ("st-auth-mode", "header")],
        [("st-auth-mode", "cookie"), ("st-auth-mode", "header")],
        [("st-auth-mode", "HEADER")],
        [("st-auth-mode", "\u00e9" * 10)],
    ):
        response = legacy.request("GET", "/protected", headers=headers, update=False)
        assert response.status == 200 and response.json()["user_id"] == "legacy", headers
    # Authorization twice, malformed, or the wrong token: no token, or try refresh.
    header_mode = [("st-auth-mode", "header")]
    for authorization, message in (
        ([f"Bearer {access}", f"Bearer {access}"], "unauthorised"),
        ([f"Bearer {access}", "Bearer x"], "unauthorised"),
        ([f"Basic {access}"], "unauthorised"),
        ([f"Bearer  {access}"], "unauthorised"),
        (["Bearer %ff%00"], "unauthorised"),
        (["Bearer"], "unauthorised"),
        ([f"Bearer {refresh}"], "try refresh token"),
        (["Bearer " + "a" * 9000], "try refresh token"),
        ([f"Bearer {access}.x"], "try refresh token"),
    ):
        headers = header_mode + [("authorization", value) for value in authorization]
        for method in ("GET", "POST"):
            response = legacy.wire.request(
                method, "/protected", headers=headers, cookie=None, update_jar=False
            )
            assert_body(response, 401, message)
            assert_untouched(response)
            assert access not in response.body.decode()
    for authorization in (
        [f"Bearer {access}"],
        [f"Bearer {refresh}", f"Bearer {refresh}"],
        ["Bearer " + "b" * 9000],
    ):
        headers = header_mode + [("authorization", value) for value in authorization]
        response = legacy.wire.request("POST", REFRESH, headers=headers, cookie=None, update_jar=False)
        assert response.status == 401, response.body[:200]
        assert set(json.loads(response.body)) == {"message"}
        assert response.header_values("set-cookie") == []
    assert header_user.request("GET", "/protected").status == 200
    assert legacy.request("GET", "/protected").status == 200
