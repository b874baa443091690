"""``SessionAuth`` against a scripted API (``httpx.MockTransport``): the headers it sends,
the tokens it keeps, sign-in, one refresh and one retry, the end of a session, sign-out."""

from __future__ import annotations

import asyncio
import logging
import threading

import httpx
import pytest

from client_py.fake_api import ORIGIN, FakeApi, front_token, login_request
from sessionward import ConfigError
from sessionward.client import RefreshError, SessionAuth, SessionExpiredError, SignInError
from sessionward.client.tokens import TokenUpdate


def client(api: FakeApi, auth: SessionAuth) -> httpx.Client:
    return httpx.Client(base_url=ORIGIN, transport=api.transport(), auth=auth)


def test_without_a_session_requests_go_out_without_a_token_in_header_mode() -> None:
    api, auth = FakeApi(), SessionAuth()
    with client(api, auth) as http:
        response = http.get("/me")
    assert response.status_code == 401
    sent = api.requests[-1]
    assert sent.headers["st-auth-mode"] == "header"
    assert "authorization" not in sent.headers
    assert not auth.signed_in and api.refreshes == 0


def test_the_tokens_of_a_login_route_called_through_the_client_are_kept() -> None:
    api, auth = FakeApi(), SessionAuth()
    with client(api, auth) as http:
        assert http.post("/login", json={}).status_code == 200
        assert api.requests[-1].headers["st-auth-mode"] == "header"
        assert http.get("/me").json()["user"] == "alice"
    assert api.requests[-1].headers["authorization"] == "Bearer access-1"
    assert auth.signed_in and auth.origin == ORIGIN
    assert auth.user_id == "alice" and auth.jwt_payload == {"n": 1}
    assert auth.access_token_expires_at == 1_700_000_000_001


def test_sign_in_is_called_once_when_there_is_no_session() -> None:
    api, auth = FakeApi(), SessionAuth(login_request)
    with client(api, auth) as http:
        first = http.get("/me")
        second = http.get("/me")
    assert first.status_code == second.status_code == 200
    assert api.logins == 1
    login = next(r for r in api.requests if r.url.path == "/login")
    assert login.headers["st-auth-mode"] == "header"
    assert [r.status_code for r in first.history] == [200]  # the sign-in answer


def test_a_refused_sign_in_raises_with_its_answer() -> None:
    api, auth = FakeApi(login_succeeds=False), SessionAuth(login_request)
    with client(api, auth) as http, pytest.raises(SignInError, match="answered 403") as raised:
        http.get("/me")
    assert raised.value.response.json() == {"message": "wrong password"}
    assert not auth.signed_in


def test_a_sign_in_callable_must_return_a_request() -> None:
    api, auth = FakeApi(), SessionAuth(lambda request: "POST /login")  # type: ignore[arg-type,return-value]
    with client(api, auth) as http, pytest.raises(TypeError, match=r"must return an httpx\.Request"):
        http.get("/me")


def test_an_expired_access_token_is_refreshed_once_and_the_request_retried() -> None:
    api, auth = FakeApi(), SessionAuth(login_request)
    with client(api, auth) as http:
        http.get("/me")
        api.expire_all()
        response = http.post("/me", content=b"payload")
    assert response.status_code == 200 and response.json()["body"] == "payload"
    assert api.refreshes == 1
    assert [(r.request.url.path, r.status_code) for r in response.history] == [
        ("/me", 401),
        ("/session/refresh", 200),
    ]
    refresh = next(r for r in api.requests if r.url.path == "/session/refresh")
    assert refresh.method == "POST"
    assert refresh.headers["authorization"] == "Bearer refresh-1"
    assert refresh.headers["st-auth-mode"] == "header" and refresh.headers["rid"] == "session"
    assert api.requests[-1].headers["authorization"] == "Bearer access-2"


def test_a_new_front_token_alone_does_not_prevent_the_refresh() -> None:
    api, auth = FakeApi(), SessionAuth(login_request)
    with client(api, auth) as http:
        http.get("/me")
        api.expire_all()
        answer = api._answer

        def with_front_token(request: httpx.Request) -> httpx.Response:
            response = answer(request)
            if response.status_code == 401:
                response.headers["front-token"] = front_token("alice", 7)
            return response

        api._answer = with_front_token  # type: ignore[method-assign]
        assert http.get("/me").status_code == 200
    assert api.refreshes == 1


def test_a_streamed_request_body_is_sent_again_on_the_retry() -> None:
    api, auth = FakeApi(), SessionAuth(login_request)
    with client(api, auth) as http:
        http.get("/me")
        api.expire_all()
        response = http.post("/upload", content=iter([b"part one, ", b"part two"]))
    assert response.json()["body"] == "part one, part two"


def test_a_second_expiry_after_the_retry_is_returned_as_is() -> None:
    api, auth = FakeApi(), SessionAuth(login_request)
    with client(api, auth) as http:
        http.get("/me")
        api.expire_all()
        original_refresh = api._refresh

        def refresh_then_expire(request: httpx.Request) -> httpx.Response:
            answer = original_refresh(request)
            api.expire_all()
            return answer

        api._refresh = refresh_then_expire  # type: ignore[method-assign]
        response = http.get("/me")
    assert response.status_code == 401 and response.json() == {"message": "try refresh token"}
    assert api.refreshes == 1


def test_the_session_expired_status_is_configurable() -> None:
    api, auth = FakeApi(status=440), SessionAuth(login_request, session_expired_status_code=440)
    with client(api, auth) as http:
        http.get("/me")
        api.expire_all()
        assert http.get("/me").status_code == 200
    assert api.refreshes == 1


def test_a_custom_refresh_path_and_the_sign_out_path_derived_from_it() -> None:
    auth = SessionAuth(refresh_path="/auth/session/refresh")
    assert auth._sign_out_path == "/auth/signout"
    assert SessionAuth()._sign_out_path == "/signout"
    assert SessionAuth(refresh_path="/refresh")._sign_out_path is None
    assert SessionAuth(sign_out_path="/logout")._sign_out_path == "/logout"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"refresh_path": "session/refresh"}, "refresh_path"),
        ({"refresh_path": "/a b"}, "refresh_path"),
        ({"sign_out_path": "https://elsewhere/signout"}, "sign_out_path"),
        ({"session_expired_status_code": 200}, "session_expired_status_code"),
        ({"session_expired_status_code": "401"}, "session_expired_status_code"),
    ],
)
def test_invalid_options_are_refused(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        SessionAuth(**options)  # type: ignore[arg-type]


def test_a_refused_refresh_without_sign_in_clears_the_session_and_raises() -> None:
    api, auth = FakeApi(), SessionAuth()
    with client(api, auth) as http:
        http.post("/login")
        api.expire_all()
        api.refresh_token = None  # the session was revoked
        with pytest.raises(SessionExpiredError, match="GET /me was answered 401") as raised:
            http.get("/me")
    assert raised.value.response.json() == {"message": "try refresh token"}
    assert raised.value.response.request.url.path == "/me"
    assert not auth.signed_in


def test_a_refused_refresh_with_sign_in_signs_in_again_and_retries() -> None:
    api, auth = FakeApi(), SessionAuth(login_request)
    with client(api, auth) as http:
        http.get("/me")
        api.expire_all()
        api.refresh_token = None
        response = http.get("/me")
    assert response.status_code == 200
    assert api.logins == 2 and api.refreshes == 1


def test_another_refresh_answer_raises_and_keeps_the_session() -> None:
    api, auth = FakeApi(refresh_status=503), SessionAuth(login_request)
    with client(api, auth) as http:
        http.get("/me")
        api.expire_all()
        with pytest.raises(RefreshError, match="answered 503") as raised:
            http.get("/me")
        assert raised.value.response.json() == {"message": "forced"}
        assert auth.signed_in
        api.refresh_status = None
        assert http.get("/me").status_code == 200  # the lock was given back
    assert api.refreshes == 2


def test_a_2xx_refresh_without_tokens_is_a_refresh_error() -> None:
    api, auth = FakeApi(refresh_status=200), SessionAuth(login_request)
    with client(api, auth) as http:
        http.get("/me")
        api.expire_all()
        with pytest.raises(RefreshError, match="no new access token"):
            http.get("/me")


def test_a_replayed_refresh_token_ends_the_session() -> None:
    api = FakeApi()
    thief, victim = SessionAuth(), SessionAuth()
    with client(api, victim) as victim_http:
        victim_http.post("/login")
        stolen = victim._state.snapshot()[0]
        api.expire_all()
        assert victim_http.get("/me").status_code == 200  # rotated: refresh-1 is now used
    assert stolen is not None
    thief._state._apply(TokenUpdate(False, stolen.access_token, stolen.refresh_token), ORIGIN)
    with client(api, thief) as thief_http, pytest.raises(SessionExpiredError):
        thief_http.get("/me")
    assert api.thefts == 1 and not thief.signed_in
    with client(api, victim) as victim_http, pytest.raises(SessionExpiredError):
        victim_http.get("/me")  # the session is over for everyone
    assert not victim.signed_in


@pytest.mark.parametrize(
    "headers",
    [
        {"front-token": "remove"},
        {"st-access-token": "", "st-refresh-token": ""},
        {"st-refresh-token": ""},
    ],
)
def test_a_response_that_ends_the_session_drops_the_tokens(headers: dict[str, str]) -> None:
    api, auth = FakeApi(), SessionAuth()
    with client(api, auth) as http:
        http.post("/login")
        api._answer = lambda request: httpx.Response(200, headers=headers)  # type: ignore[method-assign]
        http.get("/public")
    assert not auth.signed_in


@pytest.mark.parametrize(
    "headers",
    [
        [("st-access-token", "a1"), ("st-access-token", "a2")],
        [("st-access-token", "two words")],
        [("st-access-token", "a,b")],
        [("st-access-token", "x" * 16385)],
    ],
)
def test_malformed_token_headers_are_ignored(headers: list[tuple[str, str]]) -> None:
    api, auth = FakeApi(), SessionAuth()
    with client(api, auth) as http:
        http.post("/login")
        api._answer = lambda request: httpx.Response(200, headers=headers)  # type: ignore[method-assign]
        http.get("/public")
    tokens = auth._state.snapshot()[0]
    assert tokens is not None and tokens.access_token == "access-1"


def test_a_new_access_token_alone_replaces_only_the_access_token() -> None:
    api, auth = FakeApi(), SessionAuth()
    with client(api, auth) as http:
        http.post("/login")
        replacement = {"st-access-token": "access-9", "front-token": front_token("alice", 5, {"v": 2})}
        api._answer = lambda request: httpx.Response(200, headers=replacement)  # type: ignore[method-assign]
        http.get("/public")
    tokens = auth._state.snapshot()[0]
    assert tokens is not None
    assert (tokens.access_token, tokens.refresh_token) == ("access-9", "refresh-1")
    assert auth.jwt_payload == {"v": 2} and auth.access_token_expires_at == 5


def test_tokens_are_only_sent_to_the_origin_that_issued_them() -> None:
    api, auth = FakeApi(), SessionAuth(login_request)
    with client(api, auth) as http:
        http.get("/me")
        other = http.get("http://elsewhere.test/public")
        hostile = {"front-token": "remove"}
        api._answer = lambda request: httpx.Response(200, headers=hostile)  # type: ignore[method-assign]
        http.get("http://elsewhere.test/public")
    sent = [r for r in api.requests if r.url.host == "elsewhere.test"]
    assert other.status_code == 200
    assert "authorization" not in sent[0].headers and "st-auth-mode" not in sent[0].headers
    assert auth.signed_in  # another origin cannot end the session either
    assert api.logins == 1


def test_sign_out_posts_the_route_and_clears_the_session() -> None:
    api, auth = FakeApi(), SessionAuth(login_request)
    with client(api, auth) as http:
        http.get("/me")
        response = auth.sign_out(http)
        assert response is not None and response.json() == {"status": "OK"}
        assert auth.sign_out(http) is None  # nothing stored: nothing sent
    sign_out = next(r for r in api.requests if r.url.path == "/signout")
    assert sign_out.method == "POST" and sign_out.headers["authorization"] == "Bearer access-1"
    assert api.sign_outs == 1 and not auth.signed_in and api.logins == 1


def test_without_a_sign_out_route_sign_out_only_forgets_the_session() -> None:
    api, auth = FakeApi(), SessionAuth(login_request, refresh_path="/refresh")
    with client(api, auth) as http:
        http.get("/me")
        assert auth.sign_out(http) is None
    assert not auth.signed_in and [r.url.path for r in api.requests] == ["/login", "/me"]


def test_sign_out_refreshes_an_expired_access_token_first() -> None:
    api, auth = FakeApi(), SessionAuth(login_request)
    with client(api, auth) as http:
        http.get("/me")
        api.expire_all()
        response = auth.sign_out(http)
    assert response is not None and response.status_code == 200
    assert api.refreshes == 1 and api.sign_outs == 1 and api.logins == 1


def test_sign_out_of_a_session_the_server_ended_counts_as_done() -> None:
    api, auth = FakeApi(), SessionAuth(login_request)
    with client(api, auth) as http:
        http.get("/me")
        api.expire_all()
        api.refresh_token = None
        response = auth.sign_out(http)
    assert response is not None and response.status_code == 401
    assert not auth.signed_in and api.logins == 1  # never signs in to sign out


def test_sign_out_clears_the_session_when_sending_fails() -> None:
    api, auth = FakeApi(), SessionAuth(login_request)
    with client(api, auth) as http:
        http.get("/me")

        def broken(request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("down", request=request)

        api._answer = broken  # type: ignore[method-assign]
        with pytest.raises(httpx.ConnectError):
            auth.sign_out(http)
    assert not auth.signed_in


def test_repr_and_logs_never_show_a_token(caplog: pytest.LogCaptureFixture) -> None:
    api, auth = FakeApi(), SessionAuth(login_request)
    with caplog.at_level(logging.DEBUG), client(api, auth) as http:
        http.get("/me")
        api.expire_all()
        http.get("/me")
        api.refresh_token = None
        api.expire_all()
        api.login_succeeds = False
        with pytest.raises(SignInError) as raised:
            http.get("/me")
    texts = [repr(auth), repr(auth._state.snapshot()[0]), str(raised.value), caplog.text]
    assert repr(auth) == "SessionAuth(signed_in=False, origin=None, token_file=None)"
    assert not any(secret in text for text in texts for secret in ("access-", "refresh-"))


def test_twenty_threads_hitting_the_expiry_cause_one_refresh() -> None:
    api, auth = FakeApi(), SessionAuth(login_request)
    with client(api, auth) as http:
        http.get("/me")
        api.expire_all()
        api.hold_expired = 20
        results: list[int] = []

        def call() -> None:
            results.append(http.get("/me").status_code)

        threads = [threading.Thread(target=call) for _ in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert results == [200] * 20
    assert api.refreshes == 1 and api.logins == 1 and api.thefts == 0


async def _fifty_tasks(api: FakeApi, auth: SessionAuth) -> list[int]:
    async with httpx.AsyncClient(base_url=ORIGIN, transport=api.async_transport(), auth=auth) as http:
        await http.get("/me")
        api.expire_all()
        api.hold_expired = 50
        responses = await asyncio.gather(*(http.get("/me") for _ in range(50)))
        return [response.status_code for response in responses]


def test_fifty_asyncio_tasks_hitting_the_expiry_cause_one_refresh() -> None:
    api, auth = FakeApi(), SessionAuth(login_request)
    assert asyncio.run(_fifty_tasks(api, auth)) == [200] * 50
    assert api.refreshes == 1 and api.logins == 1 and api.thefts == 0


def test_concurrent_first_requests_sign_in_once() -> None:
    api, auth = FakeApi(), SessionAuth(login_request)

    async def run() -> list[int]:
        async with httpx.AsyncClient(base_url=ORIGIN, transport=api.async_transport(), auth=auth) as http:
            return [r.status_code for r in await asyncio.gather(*(http.get("/me") for _ in range(30)))]

    assert asyncio.run(run()) == [200] * 30
    assert api.logins == 1


def test_the_async_client_refreshes_signs_out_and_reuses_the_auth_on_a_new_loop() -> None:
    api, auth = FakeApi(), SessionAuth(login_request)

    async def run() -> tuple[int, int | None]:
        async with httpx.AsyncClient(base_url=ORIGIN, transport=api.async_transport(), auth=auth) as http:
            await http.get("/me")
            api.expire_all()
            status = (await http.get("/me")).status_code
            signed_out = await auth.async_sign_out(http)
            return status, None if signed_out is None else signed_out.status_code

    assert asyncio.run(run()) == (200, 200)
    assert asyncio.run(run()) == (200, 200)  # a second event loop, same auth
    assert api.logins == 2 and api.refreshes == 2 and api.sign_outs == 2


def test_an_async_refresh_error_gives_the_lock_back() -> None:
    api, auth = FakeApi(refresh_status=500), SessionAuth(login_request)

    async def run() -> int:
        async with httpx.AsyncClient(base_url=ORIGIN, transport=api.async_transport(), auth=auth) as http:
            await http.get("/me")
            api.expire_all()
            with pytest.raises(RefreshError):
                await http.get("/me")
            api.refresh_status = None
            return (await http.get("/me")).status_code

    assert asyncio.run(run()) == 200
