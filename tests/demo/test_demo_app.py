"""The demo app's HTTP API, through its ASGI app (Starlette's TestClient, built on httpx2)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from starlette.exceptions import StarletteDeprecationWarning

from sessionward.browser import CLIENT_SCRIPT_PATH
from sessionward.demo.app import ACCESS_TOKEN_VALIDITY, create_app, demo_config

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

    def sign_in(self, name: str) -> dict[str, Any]:
        response = self.call("POST", "/api/signin", {"name": name})
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


def test_the_demo_config_suits_plain_http_and_shows_refreshes(store: str) -> None:
    config = demo_config(store)
    assert config.cookie_secure is False and config.enable_anti_csrf is True
    assert config.access_token_validity == ACCESS_TOKEN_VALIDITY == 15
    assert config.access_token_blacklisting is True


def test_pages_and_the_client_are_served(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "/assets/demo.js" in page.text and "https://" not in page.text  # no CDN: works offline
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
        assert [(row["handle"], row["current"]) for row in listed] == [(first, True), (second, False)]
        assert alice.call("DELETE", f"/api/sessions/{second}").json() == {"revoked": True, "current": False}
        assert other.call("GET", "/api/me").status_code == 401  # blacklisting: revoked at once
        assert [row["handle"] for row in alice.call("GET", "/api/sessions").json()["sessions"]] == [first]


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
