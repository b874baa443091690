"""Stored state the engine cannot use — a payload over the size budget (left by an older
version), a row with damaged JSON — answers the refresh route with a 401 that clears the
cookies, on every framework and every time: never a 500, never a loop."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import pytest

from frameworks.clients import FRAMEWORKS, open_client
from frameworks.wire import WireClient
from sessionward import Config
from sessionward.stores.sqlite import SQLiteStore


@pytest.fixture(params=FRAMEWORKS)
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[WireClient, Config]]:
    config = Config(store=f"sqlite:///{tmp_path}/s.db", cookie_secure=False, access_token_algorithm="HS256")
    with open_client(str(request.param), config) as client:
        yield client, config


def oversized_payload(config: Config, handle: str) -> None:
    store = SQLiteStore(config.store)
    try:
        assert store.update_jwt_payload(handle, {"blob": "x" * 4000})
    finally:
        store.close()


def damaged_json(config: Config, handle: str) -> None:
    path = config.store.removeprefix("sqlite:///")
    with closing(sqlite3.connect(path)) as connection, connection:
        connection.execute(
            "UPDATE session_info SET jwt_user_payload = '{\"role\": ' WHERE session_handle = ?", (handle,)
        )


@pytest.mark.parametrize("damage", [oversized_payload, damaged_json], ids=lambda f: f.__name__)
def test_unusable_stored_row_answers_refresh_with_401(
    setup: tuple[WireClient, Config], damage: Callable[[Config, str], None]
) -> None:
    client, config = setup
    handle = client.login("alice", {"role": "user"}).json()["handle"]
    damage(config, handle)
    refresh_cookie = client.jar.header_for("/session/refresh")
    for _ in range(2):
        response = client.request("POST", "/session/refresh", cookie=refresh_cookie)
        assert response.status == 401, response.body
        assert response.json() == {"message": "unauthorised"}
        assert response.header("id-refresh-token") == "remove"
        assert response.set_cookies()["sAccessToken"].value == ""
