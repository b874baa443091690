"""Today's SuperTokens frontends in a real browser: npm ``supertokens-website`` 20.1.6 and
``supertokens-web-js`` 0.16.0 (its session recipe), unmodified, against the framework test
apps on real servers (uvicorn, gunicorn) on 127.0.0.1 speaking the current protocol.

Every combination of SDK x token transfer (cookie, header) x page origin (the API's, or a
second one: CORS with credentials) x anti-CSRF (on, off) x framework runs the whole session
life in one test (``test_session_life``); a 2020 session made with 5.0.10 is taken over by
today's SDKs with one refresh (``test_2020_session_migrates``). Results and the differences
found are in docs/interop.md.

Expiry: the servers issue 2 s access tokens whose ``exp`` is whole seconds, so a test waits
for the ``ate`` of the client's front token (plus a margin) rather than a fixed time, and
the steps that must not meet an expiry come right after a refresh made just past one (a
token with nearly 2 s to live).
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from browser.browser_env import CURRENT_CLIENTS, FRAMEWORKS, ClientPage, PageServer, Server

EXPIRY_MARGIN = 0.1  # seconds past the access token's exp
# The cookies holding the session's tokens: the API's (HttpOnly) in cookie mode, the ones the
# SDK writes with document.cookie in header mode.
TOKEN_COOKIES = {
    "cookie": {"access": "sAccessToken", "refresh": "sRefreshToken"},
    "header": {"access": "st-access-token", "refresh": "st-refresh-token"},
}
ALL_TOKEN_COOKIES = {name for names in TOKEN_COOKIES.values() for name in names.values()}

frameworks = pytest.mark.parametrize("framework", FRAMEWORKS)
clients = pytest.mark.parametrize("client", CURRENT_CLIENTS)


def cookies(tab: ClientPage) -> dict[str, dict[str, Any]]:
    """The browser profile's cookies by name (every host is 127.0.0.1)."""
    return {cookie["name"]: cookie for cookie in tab.page.context.cookies()}


def token_cookies(tab: ClientPage) -> set[str]:
    return {name for name, cookie in cookies(tab).items() if name in ALL_TOKEN_COOKIES and cookie["value"]}


def answers(server: Server) -> list[tuple[int, str | None]]:
    """What the refresh requests since the last reset were answered: (status, front-token)."""
    return [(status, front) for status, front in server.counters()["refresh_answers"]]


def wait_for_expiry(tab: ClientPage) -> None:
    """Sleep until the tab's access token has expired (its front token's ``ate``)."""
    front = tab.run("frontToken")
    assert front is not None, "no front token: no session in the page"
    delay = front["ate"] / 1000 + EXPIRY_MARGIN - time.time()
    if delay > 0:
        time.sleep(delay)


def sign_in(tab: ClientPage, user_id: str, payload: dict[str, Any]) -> str:
    """Sign in through the SDK; the new session's handle."""
    answer = tab.run("login", user_id, payload)
    assert answer["status"] == 200, answer
    assert tab.run("doesSessionExist") is True
    handle: str = answer["body"]["handle"]
    return handle


def replay_refresh(server: Server, mode: str, refresh_token: str) -> httpx.Response:
    """A refresh with ``refresh_token`` from outside the browser (a thief's copy)."""
    headers = {"st-auth-mode": mode, "rid": "session"}
    if mode == "cookie":
        headers["cookie"] = f"sRefreshToken={refresh_token}"
    else:
        headers["authorization"] = f"Bearer {refresh_token}"
    return httpx.post(server.base + server.config.refresh_api_path, headers=headers, timeout=10)


def live_handles(server: Server, user_id: str) -> list[str]:
    return server.store_engine().get_all_session_handles_for_user(user_id)


def check_ended(tab: ClientPage) -> None:
    """No session left in the page: the SDK says so, no token cookie, a call gets 401 and
    makes no refresh."""
    assert tab.run("doesSessionExist") is False
    assert token_cookies(tab) == set()
    before = tab.server.counters()["refresh"]
    answer = tab.protected()
    assert answer["status"] == 401, answer
    assert tab.server.counters()["refresh"] == before


@pytest.mark.parametrize("anti_csrf", [True, False], ids=["anti-csrf-on", "anti-csrf-off"])
@pytest.mark.parametrize("origin", ["same-origin", "cross-origin"])
@pytest.mark.parametrize("mode", ["cookie", "header"])
@clients
@frameworks
def test_session_life(
    open_profiles: Any,
    page_server: PageServer,
    framework: str,
    client: str,
    mode: str,
    origin: str,
    anti_csrf: bool,
) -> None:
    # Three browser profiles, so that one wait for expiry serves every scenario that needs
    # one: `tab` (sign-in, expiry with one call, calls around the SDK, sign-out), `crowd`
    # (parallel calls after expiry, attemptRefreshingSession, theft) and `revoked` (a session
    # revoked on the server).
    page_origin = page_server.origin if origin == "cross-origin" else None
    options = {"init": {"tokenTransferMethod": mode}, "enable_anti_csrf": anti_csrf}
    tabs: list[ClientPage] = open_profiles(client, framework, page_origin, count=3, **options)
    tab, revoked, crowd = tabs
    server = tab.server
    names = TOKEN_COOKIES[mode]

    # A fresh page: one refresh, answered 401 without tokens; no session, and no more refreshes.
    assert tab.run("doesSessionExist") is False
    assert [status for status, _ in answers(server)] == [401]
    assert answers(server)[0][1] != "token"
    assert tab.protected()["status"] == 401
    assert tab.run("getUserId") is None
    assert server.counters()["refresh"] == 1

    revoked_handle = sign_in(revoked, "bob", {})
    assert server.store_engine().revoke_session(revoked_handle) is True
    crowd_handle = sign_in(crowd, "carol", {})
    stolen = cookies(crowd)[names["refresh"]]["value"]  # its first refresh token, replayed below

    # Sign-in, the session as the SDK reports it, and where the tokens are.
    handle = sign_in(tab, "alice", {"role": "reader"})
    assert tab.run("getUserId") == "alice"
    payload = tab.run("getJWTPayload")
    assert payload["role"] == "reader", payload
    jar = cookies(tab)
    assert "sIdRefreshToken" not in jar
    access_token = tab.run("getAccessToken")
    if mode == "header":
        assert isinstance(access_token, str) and access_token
        assert not {"sAccessToken", "sRefreshToken"} & set(jar), sorted(jar)
    else:
        assert access_token is None
        assert jar["sAccessToken"]["httpOnly"] and jar["sRefreshToken"]["httpOnly"]
        assert not {"st-access-token", "st-refresh-token"} & set(jar), sorted(jar)
    for method in ("GET", "POST"):
        answer = tab.protected(method)
        assert answer["status"] == 200, answer
        assert (answer["body"]["user_id"], answer["body"]["handle"]) == ("alice", handle)

    for each in (revoked, crowd, tab):
        wait_for_expiry(each)

    # Expiry: one refresh, then the call is retried; the next calls need none.
    server.reset()
    answer = tab.protected()
    assert answer["status"] == 200 and answer["body"]["handle"] == handle, answer
    assert answers(server) == [(200, "token")]
    assert tab.protected("POST")["status"] == 200
    assert server.counters()["refresh"] == 1

    # Calls around the SDK, with a token nearly 2 s from expiry.
    if mode == "cookie":
        # The session cookies without the anti-csrf header.
        bare = tab.run("raw", "/protected", "POST", {"st-auth-mode": "cookie"})
        assert bare["status"] == (401 if anti_csrf else 200), bare
    else:
        # No anti-CSRF in header mode, even with it on; no cookie carries the session.
        token = tab.run("getAccessToken")
        bearer = {"st-auth-mode": "header", "authorization": f"Bearer {token}"}
        assert tab.run("raw", "/protected", "POST", bearer)["status"] == 200
        assert tab.run("raw", "/protected", "POST", {"st-auth-mode": "header"})["status"] == 401

    # Sign-out through the SDK (POST {apiBasePath}/signout), the token still fresh.
    server.reset()
    assert tab.run("signOut") == {"status": 200, "body": {"status": "OK"}}
    assert handle not in live_handles(server, "alice")
    check_ended(tab)
    assert server.counters()["refresh"] == 0

    # Five parallel calls after expiry: one refresh; then attemptRefreshingSession.
    server.reset()
    parallel = crowd.run("parallel", 5, "/protected", "POST")
    assert [answer["status"] for answer in parallel] == [200] * 5, parallel
    assert {answer["body"]["handle"] for answer in parallel} == {crowd_handle}
    assert answers(server) == [(200, "token")]
    server.reset()
    assert crowd.run("attemptRefresh") is True
    assert answers(server) == [(200, "token")]
    sent = set(server.counters()["refresh_headers"])  # what the SDK sends on a refresh
    assert {"st-auth-mode", "rid", "fdi-version"} <= sent, sorted(sent)
    assert ("authorization" in sent) == (mode == "header"), sorted(sent)
    assert ("anti-csrf" in sent) == (mode == "cookie" and anti_csrf), sorted(sent)
    assert crowd.protected()["status"] == 200

    # Theft: the first refresh token, replayed after two rotations, ends the session on the
    # server; the browser's next refresh is refused and ends it in the page.
    thief = replay_refresh(server, mode, stolen)
    assert thief.status_code == 401, thief.text
    assert thief.headers.get("front-token") == "remove"
    assert crowd_handle not in live_handles(server, "carol")
    server.reset()
    assert crowd.run("attemptRefresh") is False
    assert answers(server) == [(401, "remove")]
    check_ended(crowd)

    # The session revoked on the server ends in the browser at its next call.
    server.reset()
    answer = revoked.protected()
    assert answer["status"] == 401, answer
    assert answers(server) == [(401, "remove")]
    check_ended(revoked)


@clients
@frameworks
def test_2020_session_migrates(open_page: Any, framework: str, client: str) -> None:
    # A session made by the 2020 SDK (sIdRefreshToken, anti-CSRF on) ...
    old: ClientPage = open_page("st-5.0.10", framework, enable_anti_csrf=True)
    old.login("erin", {"plan": "gold"})
    before = old.protected()
    assert before["status"] == 200, before
    assert "sIdRefreshToken" in cookies(old)
    old.page.close()
    # ... taken over by a page of today's SDK in the same browser profile: one refresh, the
    # same session, and the 2020 cookie gone.
    new: ClientPage = open_page(
        client, framework, init={"tokenTransferMethod": "cookie"}, enable_anti_csrf=True
    )
    assert new.run("doesSessionExist") is True
    assert answers(new.server) == [(200, "token")]
    assert "sIdRefreshToken" not in cookies(new)
    assert new.run("getUserId") == "erin"
    assert new.run("getJWTPayload")["plan"] == "gold"
    for method in ("GET", "POST"):
        answer = new.protected(method)
        assert answer["status"] == 200, answer
        assert answer["body"]["handle"] == before["body"]["handle"]
        assert answer["body"]["payload"] == {"plan": "gold"}
    assert new.server.counters()["refresh"] == 1
