"""The payload size budget over HTTP, on every framework: a login whose payload could never
refresh is refused before anything is stored, and a stored payload that no longer fits
(left by an older version) answers the refresh route with a 401 that clears the cookies —
the same answer on every refresh, never a 500."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from clients import FRAMEWORKS, open_client
from wire import WireClient

from sessionward import Config
from sessionward.stores.sqlite import SQLiteStore


@pytest.fixture(params=FRAMEWORKS)
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[WireClient, Config]]:
    config = Config(store=f"sqlite:///{tmp_path}/s.db", cookie_secure=False, access_token_algorithm="HS256")
    with open_client(str(request.param), config) as client:
        yield client, config


def test_stored_payload_over_the_budget_answers_refresh_with_401(
    setup: tuple[WireClient, Config],
) -> None:
    client, config = setup
    handle = client.login("alice", {"role": "user"}).json()["handle"]
    store = SQLiteStore(config.store)
    try:
        assert store.update_jwt_payload(handle, {"blob": "x" * 4000})
    finally:
        store.close()
    refresh_cookie = client.jar.header_for("/session/refresh")
    for _ in range(2):
        response = client.request("POST", "/session/refresh", cookie=refresh_cookie)
        assert response.status == 401, response.body
        assert response.json() == {"message": "unauthorised"}
        assert response.header("id-refresh-token") == "remove"
        assert response.set_cookies()["sAccessToken"].value == ""
