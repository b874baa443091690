"""The wire protocol (cookies, protocol headers, status codes and bodies), asserted
identically on Flask, FastAPI, plain Starlette and Django.

Every test runs once per framework through that framework's own test client and once
against a real server (gunicorn or uvicorn) for each of Flask, FastAPI and Django (see
``clients.py``). Protocol behaviour is asserted here, not in the per-adapter files, which
keep only what is specific to one framework's API.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from frameworks.clients import WITH_STARLETTE, open_client
from frameworks.wire import SetCookie, WireClient, WireResponse
from sessionward import Config

ClientFactory = Callable[..., WireClient]
SESSION_COOKIES = ("sAccessToken", "sRefreshToken", "sIdRefreshToken")


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


def claims_of(token: str) -> dict[str, Any]:
    segment = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    return decoded


def assert_no_session_cookies(response: WireResponse) -> None:
    assert response.header_values("set-cookie") == []
    assert response.header("id-refresh-token") is None


def assert_cleared(response: WireResponse, config: Config) -> None:
    cookies = response.set_cookies()
    assert set(cookies) == set(SESSION_COOKIES)
    for name, cookie in cookies.items():
        assert cookie.cleared, cookie
        expected_path = config.refresh_api_path if name == "sRefreshToken" else config.access_token_path
        assert cookie.attributes["path"] == expected_path
        assert cookie.attributes.get("domain") == config.cookie_domain
    assert response.header("id-refresh-token") == "remove"


def assert_body(response: WireResponse, status: int, message: str) -> None:
    assert response.status == status, (response.status, response.body)
    assert response.json() == {"message": message}


# -- creation: cookies and headers -----------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"cookie_secure": True, "cookie_same_site": "strict"},
        {"cookie_domain": "example.test", "access_token_path": "/", "refresh_api_path": "/auth/refresh"},
        {"cookie_secure": True, "cookie_same_site": "none", "enable_anti_csrf": True},
    ],
    ids=["defaults", "secure-strict", "domain-custom-path", "samesite-none"],
)
def test_login_sets_the_three_cookies_with_exact_attributes(
    make_client: ClientFactory, options: dict[str, Any]
) -> None:
    client = make_client(**options)
    config = Config(**{"cookie_secure": False, **options})
    before = int(time.time()) * 1000
    response = client.login("alice", {"role": "admin"})
    cookies = response.set_cookies()
    assert set(cookies) == set(SESSION_COOKIES)
    for name, cookie in cookies.items():
        assert "httponly" in cookie.flags
        assert ("secure" in cookie.flags) == config.cookie_secure
        assert cookie.attributes["samesite"].lower() == config.cookie_same_site
        assert cookie.attributes.get("domain") == config.cookie_domain
        expected_path = config.refresh_api_path if name == "sRefreshToken" else config.access_token_path
        assert cookie.attributes["path"] == expected_path
    access = cookies["sAccessToken"]
    exp_ms = claims_of(access.value)["exp"] * 1000
    assert access.expires_ms == exp_ms
    assert before <= exp_ms - config.access_token_validity * 1000 <= before + 2000
    id_value, _, id_expiry = response.header("id-refresh-token").partition(";")  # type: ignore[union-attr]
    assert id_value == cookies["sIdRefreshToken"].value
    assert int(id_expiry) // 1000 == cookies["sIdRefreshToken"].expires_ms // 1000
    assert cookies["sRefreshToken"].expires_ms // 1000 == int(id_expiry) // 1000
    front = response.front_token()
    assert front == {"uid": "alice", "ate": exp_ms, "up": {"role": "admin"}}
    assert (response.header("anti-csrf") is not None) == config.enable_anti_csrf
    exposed = {h.strip() for h in (response.header("access-control-expose-headers") or "").split(",")}
    expected_exposed = {"id-refresh-token", "front-token"} | (
        {"anti-csrf"} if config.enable_anti_csrf else set()
    )
    assert expected_exposed <= exposed
    assert response.header("cache-control") == "no-store"


def test_front_token_escapes_non_ascii_for_atob(make_client: ClientFactory) -> None:
    client = make_client()
    response = client.login("zoë", {"city": "Zürich"})
    raw = base64.b64decode(response.header("front-token") or "")
    assert raw.isascii()
    assert json.loads(raw) == {"uid": "zoë", "ate": response.front_token()["ate"], "up": {"city": "Zürich"}}  # type: ignore[index]


def test_protected_route_answers_with_the_session(make_client: ClientFactory) -> None:
    client = make_client()
    client.login("alice", {"role": "admin"})
    response = client.request("GET", "/protected")
    assert response.status == 200
    body = response.json()
    assert (body["user_id"], body["payload"]) == ("alice", {"role": "admin"})
    assert response.header_values("set-cookie") == []


def test_optional_session(make_client: ClientFactory) -> None:
    client = make_client()
    assert client.request("GET", "/optional").json() == {"user_id": None}
    client.login("bob")
    assert client.request("GET", "/optional").json() == {"user_id": "bob"}


# -- missing cookies (docs/protocol.md) ------------------------------------------------------------


def test_access_cookie_without_id_refresh_cookie_is_the_current_cookie_mode(
    make_client: ClientFactory,
) -> None:
    """Without sIdRefreshToken the access cookie is a current-protocol cookie-mode session
    (a request its SDK did not intercept; test_protocol_current.py): it verifies. A
    duplicated sIdRefreshToken still counts as absent (2020: unauthorised)."""
    client = make_client()
    client.login()
    access_only = f"sAccessToken={client.jar.value('sAccessToken')}"
    response = client.request("GET", "/protected", cookie=access_only)
    assert response.status == 200, response.body
    assert_no_session_cookies(response)
    doubled = f"{access_only}; sIdRefreshToken=x; sIdRefreshToken=y"
    response = client.request("GET", "/protected", cookie=doubled)
    assert_body(response, 401, "unauthorised")
    assert_no_session_cookies(response)


def test_missing_access_cookie_is_try_refresh_without_touching_cookies(make_client: ClientFactory) -> None:
    client = make_client()
    client.login()
    response = client.request(
        "GET", "/protected", cookie=lambda jar: f"sIdRefreshToken={client.jar.value('sIdRefreshToken')}"
    )
    assert_body(response, 401, "try refresh token")
    assert_no_session_cookies(response)


def test_no_cookies_at_all(make_client: ClientFactory) -> None:
    client = make_client()
    response = client.request("GET", "/protected")
    assert_body(response, 401, "unauthorised")
    assert_no_session_cookies(response)


def test_refresh_without_refresh_cookie_touches_nothing(make_client: ClientFactory) -> None:
    client = make_client()
    client.login()
    response = client.request("POST", "/session/refresh", cookie=None)
    assert_body(response, 401, "unauthorised")
    assert_no_session_cookies(response)


def test_custom_session_expired_status(make_client: ClientFactory) -> None:
    client = make_client(session_expired_status_code=440)
    assert client.request("GET", "/protected").status == 440


# -- refresh, promotion, theft -------------------------------------------------------------------


def test_refresh_then_first_use_then_old_refresh_token_is_theft(make_client: ClientFactory) -> None:
    client = make_client(refresh_token_reuse_grace_period=0)
    client.login("alice")
    old_refresh = client.jar.value("sRefreshToken")
    refreshed = client.request("POST", "/session/refresh")
    assert refreshed.status == 200
    cookies = refreshed.set_cookies()
    assert set(cookies) == set(SESSION_COOKIES)
    assert cookies["sRefreshToken"].value != old_refresh
    assert refreshed.front_token()["uid"] == "alice"  # type: ignore[index]
    assert refreshed.header("cache-control") == "no-store"
    # First use of the new access token commits the rotation and mints a replacement.
    first_use = client.request("GET", "/protected")
    assert first_use.status == 200
    assert set(first_use.set_cookies()) == {"sAccessToken"}
    assert "parentRefreshTokenHash1" not in claims_of(first_use.set_cookies()["sAccessToken"].value)
    assert first_use.front_token() is not None
    # The old refresh token is now a theft.
    theft = client.request(
        "POST", "/session/refresh", cookie=f"sRefreshToken={old_refresh}", update_jar=False
    )
    assert_body(theft, 401, "token theft detected")
    assert_cleared(theft, Config(cookie_secure=False))
    # The session is gone for the legitimate client too: its access token stays valid until
    # it expires (blacklisting off, the documented bound), its next refresh fails.
    assert client.request("GET", "/protected").status == 200
    assert_body(client.request("POST", "/session/refresh"), 401, "unauthorised")


def test_refresh_is_idempotent_on_the_wire(make_client: ClientFactory) -> None:
    client = make_client()
    client.login()
    first = client.request("POST", "/session/refresh", update_jar=False)
    second = client.request("POST", "/session/refresh", update_jar=False)
    assert first.set_cookies()["sRefreshToken"].value == second.set_cookies()["sRefreshToken"].value


def test_refresh_route_rejects_other_methods(make_client: ClientFactory) -> None:
    client = make_client()
    client.login()
    response = client.request("GET", "/session/refresh")
    assert response.status in (404, 405)
    assert_no_session_cookies(response)


# -- anti-CSRF -------------------------------------------------------------------------------------


def test_anti_csrf_required_on_post_not_on_get(make_client: ClientFactory) -> None:
    client = make_client(enable_anti_csrf=True)
    client.login()
    assert client.request("GET", "/protected", send_anti_csrf=False).status == 200
    without = client.request("POST", "/protected", send_anti_csrf=False)
    assert_body(without, 401, "try refresh token")
    assert_no_session_cookies(without)
    wrong = client.request("POST", "/protected", headers={"anti-csrf": "x" * 32})
    assert_body(wrong, 401, "try refresh token")
    assert client.request("POST", "/protected").status == 200


def test_anti_csrf_off_means_no_header_needed(make_client: ClientFactory) -> None:
    client = make_client(enable_anti_csrf=False)
    response = client.login()
    assert response.header("anti-csrf") is None
    assert client.request("POST", "/protected", send_anti_csrf=False).status == 200


def test_refresh_route_does_not_require_anti_csrf(make_client: ClientFactory) -> None:
    client = make_client(enable_anti_csrf=True)
    client.login()
    response = client.request("POST", "/session/refresh", send_anti_csrf=False)
    assert response.status == 200
    assert response.header("anti-csrf") is not None


# -- payload, data, logout -----------------------------------------------------------------------


def test_update_jwt_payload_reissues_the_access_token_with_the_same_expiry(
    make_client: ClientFactory,
) -> None:
    client = make_client()
    client.login("alice", {"v": 1})
    before = claims_of(client.jar.value("sAccessToken") or "")
    response = client.request("POST", "/update-payload", json_body={"v": 2})
    assert response.status == 200
    cookies = response.set_cookies()
    assert set(cookies) == {"sAccessToken"}
    after = claims_of(cookies["sAccessToken"].value)
    assert after["exp"] == before["exp"]
    assert after["userData"] == {"v": 2}
    assert response.front_token() == {"uid": "alice", "ate": before["exp"] * 1000, "up": {"v": 2}}
    assert client.request("GET", "/protected").json()["payload"] == {"v": 2}


def test_session_data_round_trip(make_client: ClientFactory) -> None:
    client = make_client()
    client.login("alice", None, {"cart": []})
    assert client.request("GET", "/data").json() == {"cart": []}
    assert client.request("POST", "/data", json_body={"cart": ["book"]}).status == 200
    assert client.request("GET", "/data").json() == {"cart": ["book"]}


def test_logout_clears_cookies_and_ends_the_session(make_client: ClientFactory) -> None:
    client = make_client()
    client.login()
    refresh_cookie = client.jar.value("sRefreshToken")
    response = client.request("POST", "/logout")
    assert response.status == 200
    assert_cleared(response, Config(cookie_secure=False))
    again = client.request("POST", "/session/refresh", cookie=f"sRefreshToken={refresh_cookie}")
    assert_body(again, 401, "unauthorised")


@pytest.mark.parametrize("route", ["/login-then-logout", "/update-then-logout", "/relogin-then-revoke-old"])
def test_revocation_drops_earlier_effects_of_the_same_request(make_client: ClientFactory, route: str) -> None:
    """The last session change of a request wins on its response, whichever response
    object each change was made through (relogin: verify the old session, create a new
    one on the response, then revoke the old one: everything is cleared)."""
    client = make_client(enable_anti_csrf=True)
    if route != "/login-then-logout":
        client.login("carol", {"v": 1})
    response = client.request("POST", route)
    assert response.status == 200, response.body
    assert_cleared(response, Config(cookie_secure=False))
    assert response.header("front-token") is None
    assert response.header("anti-csrf") is None
    assert response.header("access-control-expose-headers") == "id-refresh-token"
    assert response.header("cache-control") == "no-store"


def test_logout_everywhere(make_client: ClientFactory) -> None:
    phone = make_client()
    phone.login("carol")
    laptop = WireClient(phone.transport)
    laptop.login("carol")
    response = laptop.request("POST", "/logout-all")
    assert response.status == 200
    assert len(response.json()["revoked"]) == 2
    assert_body(phone.request("POST", "/session/refresh"), 401, "unauthorised")


def test_never_two_set_cookie_for_one_name(make_client: ClientFactory) -> None:
    client = make_client(enable_anti_csrf=True)
    for response in (
        client.login(),
        client.request("POST", "/session/refresh"),
        client.request("GET", "/protected"),
        client.request("POST", "/update-payload", json_body={"x": 1}),
        client.request("POST", "/logout"),
    ):
        names = [SetCookie.parse(raw).name for raw in response.header_values("set-cookie")]
        assert len(names) == len(set(names)), names
        for header in ("id-refresh-token", "front-token", "anti-csrf"):
            assert len(response.header_values(header)) <= 1


def test_preflight_helper(make_client: ClientFactory) -> None:
    client = make_client()
    response = client.request("OPTIONS", "/protected")
    allowed = {h.strip().lower() for h in (response.header("access-control-allow-headers") or "").split(",")}
    assert {"anti-csrf", "fdi-version", "supertokens-sdk-name", "supertokens-sdk-version"} <= allowed
    assert {"rid", "st-auth-mode", "authorization", "content-type"} <= allowed
    assert response.header("access-control-allow-credentials") == "true"


# -- store unavailable -----------------------------------------------------------------------------


def test_store_unavailable_is_503_with_retry_after_and_recovers(
    make_client: ClientFactory, tmp_path: Path
) -> None:
    db = tmp_path / "down.db"
    client = make_client(store=f"sqlite:///{db}?timeout=0.2")
    client.login("alice")
    client.request("GET", "/protected")
    with closing(sqlite3.connect(db, timeout=1)) as blocker:
        blocker.execute("BEGIN EXCLUSIVE")
        down = client.request("POST", "/login", json_body={"user_id": "bob"}, update_jar=False)
        assert down.status == 503, down.body
        assert down.json() == {"message": "session store unavailable"}
        assert down.header("retry-after") is not None
        assert_no_session_cookies(down)
        refresh = client.request("POST", "/session/refresh", update_jar=False)
        assert refresh.status == 200  # refresh writes nothing: reads still work in WAL mode
        first_use = client.request(
            "GET",
            "/protected",
            cookie=lambda jar: "; ".join(
                f"{c.name}={c.value}" for c in refresh.set_cookies().values() if c.name != "sRefreshToken"
            ),
            update_jar=False,
        )
        assert first_use.status == 503  # promotion needs a write
        assert_no_session_cookies(first_use)
        blocker.execute("ROLLBACK")
    assert client.request("GET", "/protected").status == 200
    assert client.request("POST", "/session/refresh").status == 200


def test_refresh_route_answers_its_own_preflight(make_client: ClientFactory) -> None:
    client = make_client()
    response = client.request("OPTIONS", "/session/refresh", cookie=None)
    assert response.status in (200, 204)
    allowed = {h.strip().lower() for h in (response.header("access-control-allow-headers") or "").split(",")}
    assert {"anti-csrf", "fdi-version"} <= allowed
    assert response.header("access-control-allow-credentials") == "true"
    assert response.header_values("set-cookie") == []
