"""Session fixation: a login always creates a new session, whatever session cookies the
browser already carries (planted by an attacker, or left from another user); nothing a
client sends chooses or reuses a handle, and the planted session stays the attacker's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from frameworks.clients import FRAMEWORKS, open_client
from frameworks.wire import WireClient
from sessionward import Config


@pytest.fixture(params=FRAMEWORKS)
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[WireClient]:
    config = Config(store=f"sqlite:///{tmp_path}/s.db", cookie_secure=False, access_token_algorithm="HS256")
    with open_client(str(request.param), config) as wire:
        yield wire


def test_login_over_planted_cookies_creates_a_new_session(client: WireClient) -> None:
    attacker_handle = client.login("mallory").json()["handle"]
    planted = client.jar.header_for("/protected")
    assert planted
    victim = client.request(
        "POST",
        "/login",
        json_body={"user_id": "victim", "payload": None, "data": None, "handle": attacker_handle},
        cookie=planted,
    )
    assert victim.status == 200
    victim_handle = victim.json()["handle"]
    assert victim_handle != attacker_handle
    cookies = victim.set_cookies()
    assert {"sAccessToken", "sRefreshToken", "sIdRefreshToken"} <= set(cookies)
    assert cookies["sAccessToken"].value not in planted
    # The planted cookies still belong to the attacker's session, the new ones to the victim.
    mine = client.request("GET", "/protected")
    assert mine.json()["user_id"] == "victim" and mine.json()["handle"] == victim_handle
    theirs = client.request("GET", "/protected", cookie=planted, update_jar=False)
    assert theirs.json()["user_id"] == "mallory" and theirs.json()["handle"] == attacker_handle
