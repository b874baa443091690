"""Sessions people can see and control, over HTTP, on Flask, FastAPI, plain Starlette and
Django (each framework's own test client and a real server): remember-me cookies, step-up
re-authentication (``max_auth_age``), ``check_database`` after a revocation made by
another engine, the client's IP address through trusted proxies only, the metadata
``get_all_sessions_for_user`` reports, and "sign out my other devices"."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from frameworks.apps.metadata import MAX_AUTH_AGE
from frameworks.clients import WITH_STARLETTE, open_client
from frameworks.wire import CookieJar, WireClient, WireResponse
from sessionward import Config, SessionWard

ClientFactory = Callable[..., WireClient]
SESSION_COOKIES = ("sAccessToken", "sRefreshToken", "sIdRefreshToken")


@pytest.fixture(params=WITH_STARLETTE)
def framework(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/sessions.db"


@pytest.fixture
def make_client(framework: str, store: str) -> Iterator[ClientFactory]:
    opened: list[Any] = []

    def factory(**options: Any) -> WireClient:
        options.setdefault("store", store)
        options.setdefault("cookie_secure", False)
        options.setdefault("access_token_algorithm", "HS256")
        context = open_client(framework, Config(**options))
        client = context.__enter__()
        opened.append(context)
        return client

    yield factory
    for context in reversed(opened):
        context.__exit__(None, None, None)


def login(
    client: WireClient, user_id: str = "alice", headers: list[tuple[str, str]] | None = None, **body: Any
) -> WireResponse:
    response = client.request("POST", "/login", json_body={"user_id": user_id, **body}, headers=headers)
    assert response.status == 200, response.body
    return response


def devices(client: WireClient) -> list[dict[str, Any]]:
    response = client.request("GET", "/devices")
    assert response.status == 200, response.body
    sessions: list[dict[str, Any]] = response.json()["sessions"]
    return sessions


def session_cookie_attributes(response: WireResponse) -> dict[str, set[str]]:
    """The attribute names of each session cookie the response sets (not clears)."""
    return {
        name: set(cookie.attributes)
        for name, cookie in response.set_cookies().items()
        if name in SESSION_COOKIES and cookie.value
    }


def copy_jar(client: WireClient) -> CookieJar:
    return copy_jar_of(client.jar)


def copy_jar_of(source: CookieJar) -> CookieJar:
    jar = CookieJar()
    jar.cookies = dict(source.cookies)
    return jar


# -- remember me ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["2020", "cookie"])
def test_remember_me_off_means_browser_session_cookies_also_after_refresh(
    make_client: ClientFactory, mode: str
) -> None:
    client = make_client(access_token_validity=1)
    headers = [("st-auth-mode", "cookie")] if mode == "cookie" else []
    created = login(client, headers=headers, persistent=False)
    attributes = session_cookie_attributes(created)
    expected = {"sAccessToken", "sRefreshToken"} | ({"sIdRefreshToken"} if mode == "2020" else set())
    assert set(attributes) == expected
    for name, names in attributes.items():
        assert "expires" not in names and "max-age" not in names, (name, names)
        assert "path" in names

    refreshed = client.request("POST", "/session/refresh", headers=headers)
    assert refreshed.status == 200, refreshed.body
    attributes = session_cookie_attributes(refreshed)
    assert {"sAccessToken", "sRefreshToken"} <= set(attributes)
    for name, names in attributes.items():
        assert "expires" not in names and "max-age" not in names, (name, names)

    # First use of the refreshed access token: any replacement token keeps the rule.
    used = client.request("GET", "/protected", headers=headers)
    assert used.status == 200, used.body
    for name, names in session_cookie_attributes(used).items():
        assert "expires" not in names and "max-age" not in names, (name, names)

    # A payload update re-issues the access token on a request that did not create the
    # session: still a browser-session cookie.
    updated = client.request("POST", "/update-payload", json_body={"v": 2}, headers=headers)
    assert updated.status == 200, updated.body
    reissued = session_cookie_attributes(updated)
    assert "sAccessToken" in reissued and "expires" not in reissued["sAccessToken"]
    assert devices(client)[0]["persistent"] is False


def test_remember_me_on_keeps_expiring_cookies(make_client: ClientFactory) -> None:
    client = make_client()
    for response in (login(client, persistent=True), client.request("POST", "/session/refresh")):
        assert response.status == 200
        attributes = session_cookie_attributes(response)
        assert set(attributes) == set(SESSION_COOKIES)
        for name, cookie in response.set_cookies().items():
            assert cookie.expires_ms > time.time() * 1000, name
    updated = client.request("POST", "/update-payload", json_body={"v": 2})
    assert "expires" in session_cookie_attributes(updated)["sAccessToken"]
    assert devices(client)[0]["persistent"] is True


def test_refresh_token_validity_may_only_shorten(make_client: ClientFactory) -> None:
    client = make_client(access_token_validity=60, refresh_token_validity=3600)
    created = login(client, refresh_token_validity=120)
    refresh_expiry = created.set_cookies()["sRefreshToken"].expires_ms
    assert refresh_expiry <= (time.time() + 121) * 1000
    too_long = client.request(
        "POST", "/login", json_body={"user_id": "alice", "refresh_token_validity": 7200}, update_jar=False
    )
    assert too_long.status == 500
    assert too_long.header_values("set-cookie") == []


# -- step-up re-authentication -----------------------------------------------------------------


def test_max_auth_age_answers_403_until_the_user_reauthenticates(make_client: ClientFactory) -> None:
    client = make_client()
    login(client, persistent=False)
    fresh = client.request("GET", "/sensitive")
    assert fresh.status == 200, fresh.body
    assert fresh.json()["auth_time"] > 0

    time.sleep(MAX_AUTH_AGE + 0.2)
    stale = client.request("GET", "/sensitive")
    assert stale.status == 403, stale.body
    assert stale.json() == {"message": "re-authentication required"}
    # Not the session-expired answer: nothing cleared, no refresh asked for.
    assert stale.header_values("set-cookie") == []
    assert stale.header("front-token") is None and stale.header("id-refresh-token") is None
    assert client.request("GET", "/protected").status == 200

    again = client.request("POST", "/reauthenticate")
    assert again.status == 200, again.body
    body = again.json()
    assert body["auth_time"] > body["before"]
    assert body["auth_time"] % 1000 == 0  # the claim is whole seconds
    reissued = session_cookie_attributes(again)
    assert "sAccessToken" in reissued
    assert "expires" not in reissued["sAccessToken"]  # a browser-session session stays one
    assert again.front_token() is not None

    after = client.request("GET", "/sensitive")
    assert after.status == 200, after.body
    assert after.json()["auth_time"] == body["auth_time"]
    # The row keeps milliseconds; the token's claim is whole seconds.
    assert devices(client)[0]["auth_time"] // 1000 * 1000 == body["auth_time"]


# -- check_database -----------------------------------------------------------------------------


def test_check_database_sees_a_revocation_made_by_another_engine(
    make_client: ClientFactory, store: str
) -> None:
    client = make_client()
    handle = login(client).json()["handle"]
    assert client.request("GET", "/checked").status == 200
    # Another engine (another process, for the real servers) on the same store.
    with SessionWard(Config(store=store, access_token_algorithm="HS256", cookie_secure=False)) as other:
        assert other.revoke_session(handle)
    refused = client.request("GET", "/checked")
    assert refused.status == 401, refused.body
    assert refused.json() == {"message": "unauthorised"}


# -- the client's address ------------------------------------------------------------------------


def test_forwarded_for_is_ignored_unless_the_peer_is_trusted(make_client: ClientFactory) -> None:
    client = make_client()
    login(client, headers=[("x-forwarded-for", "198.51.100.1"), ("user-agent", "agent/1")])
    (info,) = devices(client)
    assert info["ip"] == info["created_ip"] == "127.0.0.1"
    assert info["user_agent"] == info["created_user_agent"] == "agent/1"


@pytest.mark.parametrize(
    ("forwarded", "expected"),
    [
        ([("x-forwarded-for", "198.51.100.1")], "198.51.100.1"),
        ([("x-forwarded-for", "203.0.113.66, 198.51.100.1, 127.0.0.1")], "198.51.100.1"),
        # A repeated header is one list, in order: the rightmost untrusted entry wins.
        ([("x-forwarded-for", "203.0.113.66"), ("x-forwarded-for", "198.51.100.1")], "198.51.100.1"),
        # Malformed: stop at the trusted peer, never report the sender's choice.
        ([("x-forwarded-for", "198.51.100.1, not-an-ip")], "127.0.0.1"),
        ([("x-forwarded-for", "203.0.113.66:8080, [2001:db8::7]:443")], "2001:db8::7"),
        ([("x-forwarded-for", "1.1.1.1," * 400 + "198.51.100.1")], "198.51.100.1"),
        ([("x-forwarded-for", "%00, _hidden, unknown, ,")], "127.0.0.1"),
        ([], "127.0.0.1"),
    ],
)
def test_forwarded_for_is_honoured_behind_a_trusted_peer(
    make_client: ClientFactory, forwarded: list[tuple[str, str]], expected: str
) -> None:
    client = make_client(trusted_proxies=("127.0.0.1",))
    login(client, headers=[*forwarded, ("user-agent", "agent/1")])
    (info,) = devices(client)
    assert info["ip"] == expected


def test_ip_and_user_agent_recorded_at_create_and_after_refresh(
    make_client: ClientFactory, store: str
) -> None:
    client = make_client(trusted_proxies=("127.0.0.0/8",), access_token_validity=1)
    agent = "Mozilla/5.0 " + "x" * 1000
    login(client, headers=[("x-forwarded-for", "198.51.100.1"), ("user-agent", agent)])
    (created,) = devices(client)
    assert created["created_ip"] == created["ip"] == "198.51.100.1"
    assert created["created_user_agent"] == created["user_agent"] == agent[:512]

    refreshed = client.request(
        "POST", "/session/refresh", headers=[("x-forwarded-for", "198.51.100.2"), ("user-agent", "agent/2")]
    )
    assert refreshed.status == 200, refreshed.body
    # The first use of the refreshed token promotes it.
    used = client.request(
        "GET", "/protected", headers=[("x-forwarded-for", "198.51.100.3"), ("user-agent", "agent/3")]
    )
    assert used.status == 200, used.body
    (after,) = devices(client)
    assert after["created_ip"] == "198.51.100.1" and after["created_user_agent"] == agent[:512]
    assert (after["ip"], after["user_agent"]) == ("198.51.100.3", "agent/3")
    assert after["last_active_at"] >= created["last_active_at"]

    # A refresh that commits a rotation itself (its predecessor's access token was never
    # used) records the client too.
    for n in (4, 5):
        response = client.request(
            "POST",
            "/session/refresh",
            headers=[("x-forwarded-for", f"198.51.100.{n}"), ("user-agent", f"agent/{n}")],
        )
        assert response.status == 200, response.body
    # Read by another engine: using the new access token would promote it (and record
    # that request's client).
    with SessionWard(Config(store=store, access_token_algorithm="HS256", cookie_secure=False)) as other:
        (last,) = other.get_all_sessions_for_user("alice")
    assert (last.ip, last.user_agent) == ("198.51.100.5", "agent/5")
    assert (last.created_ip, last.created_user_agent) == ("198.51.100.1", agent[:512])


# -- sign out other devices ----------------------------------------------------------------------


@pytest.mark.parametrize("route", ["/logout-others", "/logout-others-by-handle"])
def test_revoke_other_sessions(make_client: ClientFactory, route: str) -> None:
    client = make_client()
    jars = []
    for _ in range(3):
        login(client)
        jars.append(copy_jar(client))
    mine = client.request("GET", "/protected").json()["handle"]
    assert len(devices(client)) == 3
    login(client, "bob")
    bob = copy_jar(client)
    client.jar = copy_jar_of(jars[2])

    response = client.request("POST", route)
    assert response.status == 200, response.body
    assert len(response.json()["revoked"]) == 2 and mine not in response.json()["revoked"]
    assert [info["handle"] for info in devices(client)] == [mine]
    for jar in jars[:2]:
        client.jar = jar
        assert client.request("GET", "/checked").status == 401
    client.jar = bob  # another user's session is untouched
    assert client.request("GET", "/checked").status == 200
