"""The demo app's HTTP API, through its ASGI app (Starlette's TestClient, built on httpx2)."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx2
import pytest
from starlette.exceptions import StarletteDeprecationWarning

from sessionward import Config, SessionWard
from sessionward.browser import CLIENT_SCRIPT_PATH
from sessionward.demo.app import ACCESS_TOKEN_VALIDITY, MAX_AUTH_AGE, create_app, demo_config

with warnings.catch_warnings():
    # Starlette >= 1.0 prefers httpx2 and warns when its TestClient falls back to httpx.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient


class Browser:
    """A TestClient that, like sessionward.js, echoes the last ``anti-csrf`` header."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.anti_csrf: str | None = None

    def call(self, method: str, path: str, json: Any = None) -> httpx2.Response:
        headers = {"anti-csrf": self.anti_csrf} if self.anti_csrf else {}
        response = self.client.request(method, path, json=json, headers=headers)
        if response.headers.get("anti-csrf"):
            self.anti_csrf = response.headers["anti-csrf"]
        return response

    def sign_in(self, name: str, **fields: Any) -> dict[str, Any]:
        response = self.call("POST", "/api/signin", {"name": name, **fields})
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def refresh_and_use(self) -> None:
        assert self.call("POST", "/session/refresh").status_code == 200
        assert self.call("GET", "/api/me").status_code == 200  # first use commits the rotation


@pytest.fixture
def store(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/demo.db"


@pytest.fixture
def client(store: str) -> Iterator[TestClient]:
    with TestClient(create_app(store), base_url="http://127.0.0.1:8000") as test_client:
        yield test_client


@pytest.fixture
def browser(client: TestClient) -> Browser:
    return Browser(client)


CHROME_LINUX = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
FIREFOX_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"


@pytest.fixture
def device(store: str) -> Iterator[Callable[..., Browser]]:
    """Opens another "device": its own demo app on the test's store and its own cookie jar,
    sending ``user_agent`` from the address ``ip``."""
    with ExitStack() as stack:

        def open_device(user_agent: str = CHROME_LINUX, ip: str = "198.51.100.7", **options: Any) -> Browser:
            app = create_app(store, **options)
            client = TestClient(
                app, base_url="http://127.0.0.1:8000", headers={"user-agent": user_agent}, client=(ip, 50000)
            )
            return Browser(stack.enter_context(client))

        yield open_device


def backdate_sign_in(store: str, handle: str, seconds: float) -> None:
    """Make ``handle``'s sign-in ``seconds`` older, in the store (the next minted access
    token carries it)."""
    with SessionWard(Config(store=store)) as ward:
        assert ward.store.update_auth_time(handle, int((time.time() - seconds) * 1000)) is True


def set_cookies(response: httpx2.Response) -> dict[str, str]:
    """The response's ``Set-Cookie`` lines by cookie name."""
    return {line.split("=", 1)[0]: line for line in response.headers.get_list("set-cookie")}


def test_the_demo_config_suits_plain_http_and_shows_refreshes(store: str) -> None:
    config = demo_config(store)
    assert config.cookie_secure is False and config.enable_anti_csrf is True
    assert config.access_token_validity == ACCESS_TOKEN_VALIDITY == 15
    assert config.access_token_blacklisting is True


def test_pages_and_the_client_are_served(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "/assets/demo.js" in page.text and "https://" not in page.text  # no CDN: works offline
    assert f'data-max-auth-age="{MAX_AUTH_AGE}"' in page.text and "{{" not in page.text
    script = client.get("/assets/demo.js")
    assert script.status_code == 200 and CLIENT_SCRIPT_PATH in script.text
    assert client.get("/assets/demo.css").headers["content-type"].startswith("text/css")
    assert client.get("/assets/secret.py").status_code == 404
    assert client.get(CLIENT_SCRIPT_PATH).headers["content-type"] == "text/javascript; charset=utf-8"


def test_sign_in_and_protected_call(browser: Browser) -> None:
    assert browser.call("GET", "/api/me").status_code == 401
    signed_in = browser.sign_in("  alice ")
    assert signed_in["user_id"] == "alice"
    me = browser.call("GET", "/api/me")
    assert me.status_code == 200
    assert me.json() == {
        "user_id": "alice",
        "handle": signed_in["handle"],
        "jwt_payload": {"name": "alice", "role": "reader"},
    }


@pytest.mark.parametrize("name", ["", "   ", "x" * 65, 42])
def test_sign_in_needs_a_name(browser: Browser, name: Any) -> None:
    response = browser.call("POST", "/api/signin", {"name": name})
    assert response.status_code == 400 and "name" in response.json()["message"]


def test_update_payload_and_session_data(browser: Browser) -> None:
    browser.sign_in("alice")
    updated = browser.call("POST", "/api/payload", {"payload": {"role": "editor"}})
    assert updated.status_code == 200 and updated.json() == {"jwt_payload": {"role": "editor"}}
    assert "front-token" in updated.headers  # the new access token carries the payload now
    assert browser.call("GET", "/api/me").json()["jwt_payload"] == {"role": "editor"}
    assert browser.call("POST", "/api/payload", {"payload": [1]}).status_code == 400
    saved = browser.call("PUT", "/api/data", {"data": {"cart": ["book"]}})
    assert saved.json() == {"data": {"cart": ["book"]}}
    assert browser.call("GET", "/api/data").json() == {"data": {"cart": ["book"]}}


def test_writes_need_the_anti_csrf_header(browser: Browser) -> None:
    browser.sign_in("alice")
    browser.anti_csrf = None
    assert browser.call("PUT", "/api/data", {"data": {}}).status_code == 401


def test_list_and_revoke_sessions(client: TestClient, store: str) -> None:
    alice = Browser(client)
    first = alice.sign_in("alice")["handle"]
    with TestClient(create_app(store), base_url="http://127.0.0.1:8000") as other_client:
        other = Browser(other_client)
        second = other.sign_in("alice")["handle"]
        listed = alice.call("GET", "/api/sessions").json()["sessions"]
        assert {(row["handle"], row["current"]) for row in listed} == {(first, True), (second, False)}
        assert alice.call("DELETE", f"/api/sessions/{second}").json() == {"revoked": True, "current": False}
        assert other.call("GET", "/api/me").status_code == 401  # blacklisting: revoked at once
        assert [row["handle"] for row in alice.call("GET", "/api/sessions").json()["sessions"]] == [first]


def test_devices_list_newest_activity_first_with_this_device(device: Callable[..., Browser]) -> None:
    laptop = device(CHROME_LINUX, "198.51.100.7")
    phone = device(FIREFOX_WINDOWS, "203.0.113.9")
    bob = device()
    started = int(time.time() * 1000)
    first = laptop.sign_in("alice")["handle"]
    second = phone.sign_in("alice")["handle"]
    bob.sign_in("bob")
    # The laptop uses its session after a refresh (a promotion): its activity is the newest.
    laptop.refresh_and_use()
    answer = laptop.call("GET", "/api/sessions").json()
    now = answer["now"]
    assert started <= now <= time.time() * 1000
    rows = answer["sessions"]
    assert [row["handle"] for row in rows] == [first, second]  # bob's session is not alice's
    assert rows[0]["last_active_at"] >= rows[1]["last_active_at"]
    assert rows[0] == {
        "handle": first,
        "device": "Chrome on Linux",
        "user_agent": CHROME_LINUX,
        "ip": "198.51.100.7",
        "last_active_at": rows[0]["last_active_at"],
        "created_at": rows[0]["created_at"],
        "expires_at": rows[0]["expires_at"],
        "persistent": True,
        "current": True,
    }
    assert rows[1]["device"] == "Firefox on Windows" and rows[1]["ip"] == "203.0.113.9"
    assert rows[1]["current"] is False and rows[1]["user_agent"] == FIREFOX_WINDOWS
    for row in rows:
        assert started <= row["created_at"] <= row["last_active_at"] <= now < row["expires_at"]
    # Seen from the phone, the same two devices, the phone being "this device".
    seen = phone.call("GET", "/api/sessions").json()["sessions"]
    assert [(row["handle"], row["current"]) for row in seen] == [(first, False), (second, True)]
    # Now the phone is the most recently active one.
    phone.refresh_and_use()
    listed = laptop.call("GET", "/api/sessions").json()["sessions"]
    assert [row["handle"] for row in listed] == [second, first]


def test_devices_list_ignores_a_spoofed_forwarded_for_and_tames_hostile_agents(
    device: Callable[..., Browser],
) -> None:
    hostile = "<img src=x onerror=alert(1)>" + "A" * 5000
    tab = device(hostile, "192.0.2.44")
    tab.client.headers["x-forwarded-for"] = "10.9.8.7"  # no trusted proxy: ignored
    tab.sign_in("alice")
    (row,) = tab.call("GET", "/api/sessions").json()["sessions"]
    assert row["ip"] == "192.0.2.44"
    assert row["device"] == "Unknown device"  # the page shows this, never the raw header
    assert len(row["user_agent"]) <= 512  # capped by the engine


def test_sign_out_other_devices(device: Callable[..., Browser]) -> None:
    laptop, phone, tablet, bob = device(), device(FIREFOX_WINDOWS), device(), device()
    kept = laptop.sign_in("alice")["handle"]
    phone.sign_in("alice")
    tablet.sign_in("alice")
    bob.sign_in("bob")
    signed_out = laptop.call("POST", "/api/signout-others")
    assert signed_out.status_code == 200 and signed_out.json() == {"revoked": 2}
    for other in (phone, tablet):
        gone = other.call("GET", "/api/me")
        assert gone.status_code == 401  # blacklisting: at once, not at the access token's expiry
        assert other.call("POST", "/session/refresh").status_code == 401
    assert laptop.call("GET", "/api/me").status_code == 200
    assert [row["handle"] for row in laptop.call("GET", "/api/sessions").json()["sessions"]] == [kept]
    assert bob.call("GET", "/api/me").status_code == 200  # another user's sessions stay
    again = laptop.call("POST", "/api/signout-others")
    assert again.json() == {"revoked": 0}
    laptop.anti_csrf = None
    assert laptop.call("POST", "/api/signout-others").status_code == 401  # a write: anti-CSRF


_SESSION_COOKIES = ("sAccessToken", "sRefreshToken", "sIdRefreshToken")


def test_remember_me_unchecked_gives_browser_session_cookies(browser: Browser) -> None:
    signed_in = browser.call("POST", "/api/signin", {"name": "alice", "remember": False})
    assert signed_in.status_code == 200 and signed_in.json()["persistent"] is False
    cookies = set_cookies(signed_in)
    assert set(_SESSION_COOKIES) <= set(cookies)
    for line in cookies.values():
        assert "expires=" not in line.lower() and "max-age=" not in line.lower(), line
    (row,) = browser.call("GET", "/api/sessions").json()["sessions"]
    assert row["persistent"] is False
    # The server keeps the session at most a day unused (Config.non_persistent_refresh_token_validity).
    assert row["expires_at"] - row["created_at"] <= 86_400_000 + 1000
    # Still so after a refresh.
    refreshed = browser.call("POST", "/session/refresh")
    assert refreshed.status_code == 200
    cookies = set_cookies(refreshed)
    assert {"sAccessToken", "sRefreshToken"} <= set(cookies)
    for line in cookies.values():
        assert "expires=" not in line.lower() and "max-age=" not in line.lower(), line
    assert browser.call("GET", "/api/me").status_code == 200


def test_remember_me_checked_gives_lasting_cookies(browser: Browser) -> None:
    signed_in = browser.sign_in("alice", remember=True)
    assert signed_in["persistent"] is True
    response = browser.call("POST", "/api/signin", {"name": "alice"})  # the default: remembered
    cookies = set_cookies(response)
    for name in _SESSION_COOKIES:
        assert "expires=" in cookies[name].lower(), cookies[name]
    (row, _) = browser.call("GET", "/api/sessions").json()["sessions"]
    assert row["persistent"] is True


@pytest.mark.parametrize("remember", ["no", 0, None, [True]])
def test_remember_must_be_a_boolean(browser: Browser, remember: Any) -> None:
    response = browser.call("POST", "/api/signin", {"name": "alice", "remember": remember})
    assert response.status_code == 400 and "remember" in response.json()["message"]


def test_recovery_codes_need_a_recent_sign_in(device: Callable[..., Browser], store: str) -> None:
    tab = device()
    handle = tab.sign_in("alice")["handle"]
    fresh = tab.call("GET", "/api/recovery-codes")
    assert fresh.status_code == 200, fresh.text
    codes = fresh.json()["codes"]
    assert len(codes) == 8 and len(set(codes)) == 8 and fresh.json()["max_auth_age"] == MAX_AUTH_AGE

    # A sign-in older than max_auth_age: 403, which the client must not answer with a refresh.
    backdate_sign_in(store, handle, MAX_AUTH_AGE + 30)
    tab.refresh_and_use()  # the new access token carries the old sign-in time
    stale = tab.call("GET", "/api/recovery-codes")
    assert stale.status_code == 403
    assert stale.json() == {"message": "re-authentication required"}
    assert "front-token" not in stale.headers and "set-cookie" not in stale.headers
    assert tab.call("GET", "/api/me").status_code == 200  # still signed in

    # The wrong name is refused and changes nothing.
    for wrong in ("bob", "Alice", "alice2"):
        refused = tab.call("POST", "/api/reauthenticate", {"name": wrong})
        assert refused.status_code == 403 and "name" in refused.json()["message"]
    assert tab.call("GET", "/api/recovery-codes").status_code == 403
    assert tab.call("POST", "/api/reauthenticate", {"name": ""}).status_code == 400

    # The right name: a new access token, then the action succeeds.
    confirmed = tab.call("POST", "/api/reauthenticate", {"name": " alice "})
    assert confirmed.status_code == 200 and "front-token" in confirmed.headers
    assert abs(confirmed.json()["auth_time"] - time.time() * 1000) < 5000
    again = tab.call("GET", "/api/recovery-codes")
    assert again.status_code == 200 and again.json()["codes"] == codes
    assert [row["handle"] for row in tab.call("GET", "/api/sessions").json()["sessions"]] == [handle]


def test_reauthenticate_needs_a_session_and_the_anti_csrf_header(browser: Browser) -> None:
    assert browser.call("POST", "/api/reauthenticate", {"name": "alice"}).status_code == 401
    assert browser.call("GET", "/api/recovery-codes").status_code == 401
    browser.sign_in("alice")
    browser.anti_csrf = None
    assert browser.call("POST", "/api/reauthenticate", {"name": "alice"}).status_code == 401


def test_max_auth_age_is_the_apps_option(device: Callable[..., Browser], store: str) -> None:
    tab = device(max_auth_age=3600)
    handle = tab.sign_in("alice")["handle"]
    backdate_sign_in(store, handle, MAX_AUTH_AGE + 30)  # older than the default, within 3600 s
    tab.refresh_and_use()
    assert tab.call("GET", "/api/recovery-codes").status_code == 200
    assert 'data-max-auth-age="3600"' in tab.client.get("/").text


def test_cannot_revoke_someone_elses_session(client: TestClient, store: str) -> None:
    alice = Browser(client)
    alice.sign_in("alice")
    with TestClient(create_app(store), base_url="http://127.0.0.1:8000") as other_client:
        bob = Browser(other_client)
        bobs = bob.sign_in("bob")["handle"]
        assert alice.call("DELETE", f"/api/sessions/{bobs}").status_code == 404
        assert bob.call("GET", "/api/me").status_code == 200


def test_sign_out_and_sign_out_everywhere(client: TestClient, store: str) -> None:
    alice = Browser(client)
    alice.sign_in("alice")
    signed_out = alice.call("POST", "/api/signout")
    assert signed_out.json() == {"signed_out": True}
    assert signed_out.headers["id-refresh-token"] == "remove"
    assert alice.call("GET", "/api/me").status_code == 401
    alice.sign_in("alice")
    with TestClient(create_app(store), base_url="http://127.0.0.1:8000") as other_client:
        other = Browser(other_client)
        other.sign_in("alice")
        assert alice.call("POST", "/api/signout-everywhere").json() == {"revoked": 2}
        assert other.call("GET", "/api/me").status_code == 401
        assert alice.call("GET", "/api/me").status_code == 401


def test_theft_simulation_revokes_the_session(browser: Browser) -> None:
    handle = browser.sign_in("alice")["handle"]
    stolen = browser.call("POST", "/session/refresh/demo-steal")
    assert stolen.status_code == 200 and len(stolen.json()["fingerprint"]) == 12
    browser.refresh_and_use()
    browser.refresh_and_use()  # the copy is now two generations old: no grace window applies
    replay = browser.call("POST", "/api/demo-replay")
    assert replay.status_code == 200
    assert replay.json()["verdict"] == "token theft detected"
    assert replay.json()["session_revoked"] is True and replay.json()["handle"] == handle
    after = browser.call("GET", "/api/me")
    assert after.status_code == 401
    assert after.headers["id-refresh-token"] == "remove"
    refresh = browser.call("POST", "/session/refresh")
    assert refresh.status_code == 401  # the victim's own refresh token died with the session
    assert browser.call("GET", "/api/sessions").status_code == 401


def test_replaying_a_current_token_is_reported_honestly(browser: Browser) -> None:
    browser.sign_in("alice")
    browser.call("POST", "/session/refresh/demo-steal")
    replay = browser.call("POST", "/api/demo-replay").json()
    assert replay["verdict"] == "accepted" and replay["session_revoked"] is False
    assert browser.call("GET", "/api/me").status_code == 200
    again = browser.call("POST", "/api/demo-replay")
    assert again.status_code == 400 and "steal one first" in again.json()["message"]
