"""The token file of ``SessionAuth``: private (0600) whatever the umask, replaced
atomically, shared by the processes of one user, refused when others may read it, treated
as signed out when its content is not a token file."""

from __future__ import annotations

import json
import logging
import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from client_py.fake_api import ORIGIN, FakeApi, login_request
from sessionward.client import SessionAuth, TokenFileError

pytestmark = pytest.mark.skipif(os.name != "posix", reason="file modes and owners are POSIX")


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    previous = os.umask(0o000)
    try:
        yield
    finally:
        os.umask(previous)


def signed_in(api: FakeApi, path: Path) -> SessionAuth:
    auth = SessionAuth(login_request, token_file=path)
    with httpx.Client(base_url=ORIGIN, transport=api.transport(), auth=auth) as http:
        assert http.get("/me").status_code == 200
    return auth


@pytest.mark.usefixtures("permissive_umask")
def test_the_file_is_created_private_and_holds_json(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    signed_in(FakeApi(), path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    content = json.loads(path.read_text())
    assert content["origin"] == ORIGIN and content["access_token"] == "access-1"
    assert content["refresh_token"] == "refresh-1" and content["version"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tokens.json"]  # no temporary left


def test_a_second_instance_continues_the_session(tmp_path: Path) -> None:
    api, path = FakeApi(), tmp_path / "tokens.json"
    signed_in(api, path)
    later = SessionAuth(login_request, token_file=path)
    assert later.signed_in and later.user_id == "alice"
    with httpx.Client(base_url=ORIGIN, transport=api.transport(), auth=later) as http:
        api.expire_all()
        assert http.get("/me").status_code == 200
    assert api.logins == 1 and api.refreshes == 1
    assert json.loads(path.read_text())["refresh_token"] == "refresh-2"


def test_a_refresh_made_by_another_process_is_picked_up_without_refreshing_again(tmp_path: Path) -> None:
    api, path = FakeApi(), tmp_path / "tokens.json"
    first = signed_in(api, path)
    second = SessionAuth(login_request, token_file=path)
    api.expire_all()
    with httpx.Client(base_url=ORIGIN, transport=api.transport(), auth=first) as http:
        assert http.get("/me").status_code == 200  # refreshes and rewrites the file
    with httpx.Client(base_url=ORIGIN, transport=api.transport(), auth=second) as http:
        assert http.get("/me").status_code == 200
    assert api.refreshes == 1 and api.thefts == 0
    assert api.requests[-1].headers["authorization"] == "Bearer access-2"


def test_sign_out_deletes_the_file(tmp_path: Path) -> None:
    api, path = FakeApi(), tmp_path / "tokens.json"
    auth = signed_in(api, path)
    with httpx.Client(base_url=ORIGIN, transport=api.transport()) as http:
        auth.sign_out(http)
    assert not path.exists() and not auth.signed_in
    assert not SessionAuth(token_file=path).signed_in


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o606])
def test_a_file_others_may_read_or_write_is_refused(tmp_path: Path, mode: int) -> None:
    api, path = FakeApi(), tmp_path / "tokens.json"
    signed_in(api, path)
    path.chmod(mode)
    with pytest.raises(TokenFileError, match=rf"mode {mode:04o}.*chmod 600"):
        SessionAuth(token_file=path)
    path.chmod(0o600)
    assert SessionAuth(token_file=path).signed_in


def test_a_file_made_unsafe_while_running_is_refused_on_the_next_request(tmp_path: Path) -> None:
    api, path = FakeApi(), tmp_path / "tokens.json"
    auth = signed_in(api, path)
    os.utime(path, ns=(0, 0))  # a change the next request notices
    path.chmod(0o644)
    with (
        httpx.Client(base_url=ORIGIN, transport=api.transport(), auth=auth) as http,
        pytest.raises(TokenFileError),
    ):
        http.get("/me")


def test_a_directory_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.mkdir(mode=0o700)
    with pytest.raises(TokenFileError, match="not a regular file"):
        SessionAuth(token_file=path)


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"{not json",
        b"[]",
        b'{"format": "other", "version": 1}',
        json.dumps({"format": "sessionward-client-tokens", "version": 1, "origin": ORIGIN}).encode(),
        json.dumps(
            {
                "format": "sessionward-client-tokens",
                "version": 1,
                "origin": "ftp://x",
                "access_token": "a",
                "refresh_token": "r",
                "front_token": None,
            }
        ).encode(),
        json.dumps(
            {
                "format": "sessionward-client-tokens",
                "version": 1,
                "origin": ORIGIN,
                "access_token": "a b",
                "refresh_token": None,
                "front_token": None,
            }
        ).encode(),
        b"[" * 100_000,
    ],
)
def test_a_corrupted_file_is_treated_as_signed_out_and_replaced(
    tmp_path: Path, content: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "tokens.json"
    path.write_bytes(content)
    path.chmod(0o600)
    with caplog.at_level(logging.WARNING, logger="sessionward.client"):
        auth = SessionAuth(login_request, token_file=path)
    assert not auth.signed_in
    assert [r.getMessage() for r in caplog.records] == [
        f"the token file {path} does not hold sessionward client tokens: treated as signed out "
        "(the next sign-in replaces it)"
    ]
    api = FakeApi()
    with httpx.Client(base_url=ORIGIN, transport=api.transport(), auth=auth) as http:
        assert http.get("/me").status_code == 200
    assert json.loads(path.read_text())["access_token"] == "access-1"
    assert len(caplog.records) == 1  # logged once, not on every request


def test_a_symbolic_link_is_followed_and_kept(tmp_path: Path) -> None:
    target = tmp_path / "real.json"
    link = tmp_path / "link.json"
    link.symlink_to(target)
    signed_in(FakeApi(), link)
    assert link.is_symlink() and json.loads(target.read_text())["access_token"] == "access-1"


def test_an_unwritable_directory_is_a_token_file_error(tmp_path: Path) -> None:
    directory = tmp_path / "missing"
    auth = SessionAuth(login_request, token_file=directory / "tokens.json")
    with (
        httpx.Client(base_url=ORIGIN, transport=FakeApi().transport(), auth=auth) as http,
        pytest.raises(TokenFileError, match="cannot write the token file"),
    ):
        http.get("/me")


def test_repr_names_the_file_not_the_tokens(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    auth = signed_in(FakeApi(), path)
    assert repr(auth) == f"SessionAuth(signed_in=True, origin={ORIGIN!r}, token_file={str(path)!r})"


def test_twenty_threads_sharing_a_token_file_refresh_once(tmp_path: Path) -> None:
    api, path = FakeApi(), tmp_path / "tokens.json"
    auth = signed_in(api, path)
    api.expire_all()
    api.hold_expired = 20
    statuses: list[int] = []
    with httpx.Client(base_url=ORIGIN, transport=api.transport(), auth=auth) as http:

        def call() -> None:
            statuses.append(http.get("/me").status_code)

        threads = [threading.Thread(target=call) for _ in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert statuses == [200] * 20 and api.refreshes == 1
    assert json.loads(path.read_text())["access_token"] == "access-2"
