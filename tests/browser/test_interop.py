"""The session protocol in a real browser: each scenario runs with our client
(``sessionward.js``) and with npm ``supertokens-website`` 4.2.0 and 5.0.10, against the
framework test apps on real servers (uvicorn, gunicorn) on 127.0.0.1.

A test opens the client's test page (``harness.py``), calls the adapter's operations
(``js/common.js``) with ``page.evaluate`` and reads the server's refresh counter. Results
and the differences found are in docs/interop.md.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from browser.browser_env import ACCESS_TOKEN_VALIDITY, CLIENTS, FRAMEWORKS, PageServer

# A little over the access-token validity: the token's exp is at most issued_at + validity.
EXPIRY_WAIT = ACCESS_TOKEN_VALIDITY + 0.3
PAYLOAD_CLIENTS = ("sessionward", "st-5.0.10")  # 4.2.0 has no getJWTPayloadSecurely / getUserId


clients = pytest.mark.parametrize("client", CLIENTS)
frameworks = pytest.mark.parametrize("framework", FRAMEWORKS)


# -- core scenarios: every client x every framework ------------------------------------------------


@frameworks
@clients
def test_sign_in_and_protected_call(open_page: Any, client: str, framework: str) -> None:
    tab = open_page(client, framework)
    assert tab.run("doesSessionExist") is False
    tab.login("alice", {"role": "reader"})
    answer = tab.protected()
    assert answer["status"] == 200, answer
    assert answer["body"]["user_id"] == "alice"
    assert answer["body"]["payload"] == {"role": "reader"}
    if tab.run("supports")["getUserId"]:
        assert tab.run("getUserId") == "alice"


@frameworks
@clients
def test_refresh_after_access_token_expiry(open_page: Any, client: str, framework: str) -> None:
    tab = open_page(client, framework)
    tab.login()
    first = tab.protected()
    assert first["status"] == 200, first
    time.sleep(EXPIRY_WAIT)
    tab.server.reset()
    answer = tab.protected()
    assert answer["status"] == 200, answer
    assert answer["body"]["user_id"] == "alice"
    assert tab.refreshes() == 1
    again = tab.protected()
    assert again["status"] == 200 and tab.refreshes() == 1, again
    assert tab.run("doesSessionExist") is True


@frameworks
@clients
def test_parallel_calls_with_expired_token_refresh_once(open_page: Any, client: str, framework: str) -> None:
    tab = open_page(client, framework)
    tab.login()
    time.sleep(EXPIRY_WAIT)
    tab.server.reset()
    answers = tab.run("parallel", 5, "/protected")
    assert [answer["status"] for answer in answers] == [200] * 5, answers
    assert tab.refreshes() == 1


@frameworks
@clients
def test_sign_out_ends_the_session(open_page: Any, client: str, framework: str) -> None:
    tab = open_page(client, framework)
    tab.login()
    assert tab.run("signOut") == 200
    assert tab.run("doesSessionExist") is False
    answer = tab.protected()
    assert answer["status"] == 401, answer
    assert tab.refreshes() == 0
    if tab.run("supports")["getUserId"]:
        assert tab.run("getUserId") in (None, "")


@frameworks
@clients
def test_call_without_cookies_gets_401_and_no_refresh(open_page: Any, client: str, framework: str) -> None:
    tab = open_page(client, framework)
    answer = tab.protected()
    assert answer["status"] == 401, answer
    assert answer["body"] == {"message": "unauthorised"}
    assert tab.refreshes() == 0
    assert tab.run("doesSessionExist") is False


# -- JWT payload, anti-CSRF -------------------------------------------------------------------------


@frameworks
@clients
def test_jwt_payload_update_reaches_the_client(open_page: Any, client: str, framework: str) -> None:
    tab = open_page(client, framework)
    tab.login("alice", {"role": "reader"})
    client_reads_payload = tab.run("supports")["getJWTPayload"]
    if client_reads_payload:
        assert tab.run("getJWTPayload") == {"role": "reader"}
    update = tab.run("call", "/update-payload", "POST", {"role": "editor", "n": 2})
    assert update["status"] == 200, update
    if client_reads_payload:
        assert tab.run("getJWTPayload") == {"role": "editor", "n": 2}
    time.sleep(EXPIRY_WAIT)
    answer = tab.protected()
    assert answer["status"] == 200 and answer["body"]["payload"] == {"role": "editor", "n": 2}, answer
    assert tab.refreshes() == 1
    if client_reads_payload:
        assert tab.run("getJWTPayload") == {"role": "editor", "n": 2}


@pytest.mark.parametrize("anti_csrf", [True, False], ids=["anti-csrf-on", "anti-csrf-off"])
@frameworks
@clients
def test_anti_csrf(open_page: Any, client: str, framework: str, anti_csrf: bool) -> None:
    tab = open_page(client, framework, enable_anti_csrf=anti_csrf)
    tab.login()
    assert tab.protected("POST")["status"] == 200
    # The same POST around the client (cookies, no anti-csrf header).
    bare = tab.run("raw", "/protected", "POST")
    assert bare["status"] == (401 if anti_csrf else 200), bare
    time.sleep(EXPIRY_WAIT)
    tab.server.reset()
    answer = tab.protected("POST")
    assert answer["status"] == 200, answer
    assert tab.refreshes() == 1
    assert tab.protected("POST")["status"] == 200


# What each client sends on the refresh call (docs/interop.md): the refresh route must not
# require anti-csrf, since 4.2.0 never sends it there; 5.0.x adds fdi-version, which a
# cross-origin refresh therefore needs in its preflight's Access-Control-Allow-Headers.
REFRESH_HEADERS = {
    "sessionward": {"anti-csrf": True, "fdi-version": False},
    "st-4.2.0": {"anti-csrf": False, "fdi-version": False},
    "st-5.0.10": {"anti-csrf": True, "fdi-version": True},
}


@clients
def test_headers_of_the_refresh_call(open_page: Any, client: str) -> None:
    tab = open_page(client, "fastapi", enable_anti_csrf=True)
    tab.login()
    tab.server.reset()
    assert tab.run("attemptRefresh") is True
    counters = tab.server.counters()
    assert counters["refresh"] == 1
    sent = set(counters["refresh_headers"])
    assert {name: name in sent for name in REFRESH_HEADERS[client]} == REFRESH_HEADERS[client], sorted(sent)
    assert "cookie" in sent
    assert tab.protected("POST")["status"] == 200


# -- cross-origin: page on one origin, API on another -----------------------------------------------


@frameworks
@clients
def test_cross_origin_page_and_api(
    open_page: Any, page_server: PageServer, client: str, framework: str
) -> None:
    # Page on 127.0.0.1:<page port>, API on 127.0.0.1:<api port>: two origins, one site, so
    # SameSite=Lax cookies flow with credentials: "include" and the API's CORS allow-list.
    tab = open_page(client, framework, origin=page_server.origin, enable_anti_csrf=True)
    tab.login("carol", {"team": "blue"})
    assert tab.protected("POST")["status"] == 200
    time.sleep(EXPIRY_WAIT)
    tab.server.reset()
    answers = tab.run("parallel", 3, "/protected", "POST")
    assert [answer["status"] for answer in answers] == [200] * 3, answers
    assert tab.refreshes() == 1
    if tab.run("supports")["getJWTPayload"]:
        assert tab.run("getJWTPayload") == {"team": "blue"}
    assert tab.run("signOut") == 200
    assert tab.run("doesSessionExist") is False
    assert tab.protected()["status"] == 401
