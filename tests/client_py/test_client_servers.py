"""``SessionAuth`` against real Flask (gunicorn), FastAPI (uvicorn) and Django (gunicorn)
servers on 127.0.0.1, in header mode: sign-in, Bearer calls, expiry, one refresh for many
concurrent calls (counted by the server), sign-out, the end of a session, and a replayed
refresh token ending the session for everyone.

Expiry is real: access tokens live 2 seconds and the tests wait them out (the wait reads the
expiry the server announced in ``front-token``). The refresh grace window is 0, so a
replayed refresh token is a theft at once.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from frameworks.clients import SERVERS, running_server

from client_py.servers import COUNTS_PATH
from sessionward import Config
from sessionward.client import SessionAuth, SessionExpiredError
from sessionward.client.tokens import TokenUpdate

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=SERVERS)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("client-servers")
    config = Config(
        store=f"sqlite:///{directory / 'sessions.db'}",
        access_token_validity=2,
        refresh_token_reuse_grace_period=0,
        access_token_algorithm="HS256",
        cookie_secure=False,
    )
    with running_server(request.param, config, "client_py.servers") as base:
        yield base


def sign_in_as(user_id: str) -> SessionAuth:
    def sign_in(request: httpx.Request) -> httpx.Request:
        return httpx.Request("POST", request.url.join("/login"), json={"user_id": user_id})

    return SessionAuth(sign_in)


def counts(base: str) -> dict[str, int]:
    answer: dict[str, int] = httpx.get(base + COUNTS_PATH).json()
    return answer


def refreshes(base: str) -> int:
    return counts(base).get("POST /session/refresh", 0)


def wait_for_expiry(auth: SessionAuth) -> None:
    expires_at = auth.access_token_expires_at
    assert expires_at is not None
    time.sleep(max(0.0, expires_at / 1000 - time.time()) + 0.3)


def test_sign_in_and_bearer_calls(server: str) -> None:
    auth = sign_in_as("alice")
    logins = counts(server).get("POST /login", 0)
    with httpx.Client(base_url=server, auth=auth, timeout=10) as client:
        first = client.get("/protected")
        second = client.post("/protected")
    assert first.status_code == second.status_code == 200
    assert first.json()["user_id"] == "alice" and auth.user_id == "alice"
    assert first.history[0].request.url.path == "/login"
    assert "set-cookie" not in first.history[0].headers  # header mode: no cookies
    assert counts(server)["POST /login"] == logins + 1
    assert auth.origin == server


def test_an_expired_session_is_refreshed_once_for_twenty_threads(server: str) -> None:
    auth = sign_in_as("bob")
    with httpx.Client(base_url=server, auth=auth, timeout=30) as client:
        assert client.get("/protected").status_code == 200
        wait_for_expiry(auth)
        before = refreshes(server)
        statuses: list[int] = []
        start = threading.Barrier(20, timeout=30)

        def call() -> None:
            start.wait()
            statuses.append(client.get("/protected").status_code)

        threads = [threading.Thread(target=call) for _ in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert statuses == [200] * 20
    assert refreshes(server) == before + 1


def test_an_expired_session_is_refreshed_once_for_twenty_tasks(server: str) -> None:
    auth = sign_in_as("carol")

    async def run() -> list[int]:
        async with httpx.AsyncClient(base_url=server, auth=auth, timeout=30) as client:
            assert (await client.get("/protected")).status_code == 200
            await asyncio.sleep(max(0.0, (auth.access_token_expires_at or 0) / 1000 - time.time()) + 0.3)
            answers = await asyncio.gather(*(client.get("/protected") for _ in range(20)))
            return [answer.status_code for answer in answers]

    before = refreshes(server)
    assert asyncio.run(run()) == [200] * 20
    assert refreshes(server) == before + 1


def test_sign_out_ends_the_session_on_the_server(server: str) -> None:
    auth = sign_in_as("dave")
    with httpx.Client(base_url=server, auth=auth, timeout=10) as client:
        client.get("/protected")
        tokens = auth._state.snapshot()[0]
        assert tokens is not None
        response = auth.sign_out(client)
    assert response is not None and response.status_code == 200 and response.json() == {"status": "OK"}
    assert not auth.signed_in
    # The refresh token is dead; the access token, a JWT, lives on until it expires (no
    # access_token_blacklisting here).
    refresh = httpx.post(
        server + "/session/refresh",
        headers={
            "authorization": f"Bearer {tokens.refresh_token}",
            "st-auth-mode": "header",
            "rid": "session",
        },
    )
    assert refresh.status_code == 401


def test_a_session_revoked_by_the_app_is_dropped(server: str) -> None:
    auth = sign_in_as("erin")
    with httpx.Client(base_url=server, auth=auth, timeout=10) as client:
        client.get("/protected")
        assert client.post("/logout").status_code == 200
        assert not auth.signed_in  # the answer removed the tokens
        again = client.get("/protected")  # signs in anew
    assert again.status_code == 200 and auth.signed_in


def test_without_sign_in_an_ended_session_raises(server: str) -> None:
    auth = SessionAuth()
    with httpx.Client(base_url=server, auth=auth, timeout=10) as client:
        assert client.post("/login", json={"user_id": "frank"}).status_code == 200
        assert client.get("/protected").status_code == 200
        tokens = auth._state.snapshot()[0]
        assert tokens is not None
        # Revoke with another client holding the same session: this one only learns it
        # from the session-expired answer once its access token has expired.
        other = SessionAuth()
        other._state._apply(TokenUpdate(False, tokens.access_token, tokens.refresh_token), server)
        with httpx.Client(base_url=server, auth=other, timeout=10) as revoker:
            assert revoker.post("/logout").status_code == 200
        wait_for_expiry(auth)
        with pytest.raises(SessionExpiredError) as ended:
            client.get("/protected")
    assert ended.value.response.status_code == 401
    assert ended.value.response.json() == {"message": "try refresh token"}
    assert not auth.signed_in


def test_a_replayed_refresh_token_ends_the_session(server: str) -> None:
    victim = sign_in_as("grace")
    with httpx.Client(base_url=server, auth=victim, timeout=10) as client:
        client.get("/protected")
        stolen = victim._state.snapshot()[0]
        assert stolen is not None
        wait_for_expiry(victim)
        assert client.get("/protected").status_code == 200  # refreshed and promoted
    thief = SessionAuth()
    thief._state._apply(TokenUpdate(False, stolen.access_token, stolen.refresh_token), server)
    with httpx.Client(base_url=server, auth=thief, timeout=10) as client, pytest.raises(SessionExpiredError):
        client.get("/protected")
    assert not thief.signed_in
    with httpx.Client(base_url=server, auth=victim, timeout=10) as client:
        wait_for_expiry(victim)
        answer = client.get("/protected")  # the theft deleted the session: a new sign-in
    assert answer.status_code == 200
    assert [r.request.url.path for r in answer.history] == ["/protected", "/session/refresh", "/login"]


def test_a_token_file_carries_the_session_to_the_next_run(server: str, tmp_path: Path) -> None:
    path = tmp_path / "session.json"
    first = SessionAuth(token_file=path)
    with httpx.Client(base_url=server, auth=first, timeout=10) as client:
        client.post("/login", json={"user_id": "heidi"})
    later = SessionAuth(token_file=path)
    with httpx.Client(base_url=server, auth=later, timeout=10) as client:
        assert client.get("/protected").json()["user_id"] == "heidi"
        wait_for_expiry(later)
        assert client.get("/protected").status_code == 200
        later.sign_out(client)
    assert not path.exists()
