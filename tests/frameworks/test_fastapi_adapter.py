"""sessionward.fastapi through Starlette's own TestClient, on FastAPI and on plain Starlette."""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import sqlite3
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import ExitStack, closing
from pathlib import Path
from typing import Any

import pytest
from apps.fastapi_app import create_app, create_starlette_app
from fastapi import FastAPI, Request, Response
from starlette.applications import Starlette
from starlette.exceptions import StarletteDeprecationWarning
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route
from wire import Headers, SetCookie, Transport, WireClient, WireResponse

from sessionward import AsyncSessionWard, Config, GeneralError, SessionInformation
from sessionward import fastapi as sw
from sessionward.errors import SessionWardError, UnauthorizedError
from sessionward.fastapi.middleware import _verification_headers
from sessionward.transport import ErrorResponse

with warnings.catch_warnings():
    # Starlette >= 1.0 prefers httpx2 and warns when its TestClient falls back to httpx.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

SESSION_COOKIES = ("sAccessToken", "sRefreshToken", "sIdRefreshToken")
AppFactory = Callable[..., Starlette]
Opener = Callable[..., tuple[WireClient, TestClient]]


def wire_transport(client: TestClient) -> Transport:
    def call(method: str, path: str, headers: Headers, body: bytes | None) -> WireResponse:
        response = client.request(method, path, headers=headers, content=body)
        client.cookies.clear()  # the WireClient's jar is the only browser here
        return WireResponse(response.status_code, list(response.headers.multi_items()), response.content)

    return call


@pytest.fixture(params=["fastapi", "starlette"])
def app_factory(request: pytest.FixtureRequest) -> AppFactory:
    return create_app if request.param == "fastapi" else create_starlette_app


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    with ExitStack() as exits:
        yield exits


@pytest.fixture
def open_app(stack: ExitStack, tmp_path: Path) -> Opener:
    """Start an app (lifespan included) and wrap its TestClient for the wire helpers."""

    def opener(app: Starlette) -> tuple[WireClient, TestClient]:
        client = stack.enter_context(TestClient(app))
        return WireClient(wire_transport(client)), client

    return opener


def portal_call(client: TestClient, function: Callable[..., Any], *args: Any) -> Any:
    """Run a coroutine function on the running app's event loop (outside any request)."""
    assert client.portal is not None
    return client.portal.call(function, *args)


def make_config(tmp_path: Path, **options: Any) -> Config:
    options.setdefault("store", f"sqlite:///{tmp_path}/sessions.db")
    options.setdefault("cookie_secure", False)
    options.setdefault("access_token_algorithm", "HS256")
    return Config(**options)


@pytest.fixture
def start(app_factory: AppFactory, open_app: Opener, tmp_path: Path) -> Callable[..., WireClient]:
    def starter(init_options: dict[str, Any] | None = None, **options: Any) -> WireClient:
        app = app_factory(make_config(tmp_path, **options), **(init_options or {}))
        return open_app(app)[0]

    return starter


def claims_of(token: str) -> dict[str, Any]:
    segment = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    return decoded


def assert_untouched(response: WireResponse) -> None:
    assert response.header_values("set-cookie") == []
    for header in ("id-refresh-token", "front-token", "anti-csrf"):
        assert response.header(header) is None


def assert_cleared(response: WireResponse, config: Config) -> None:
    cookies = response.set_cookies()
    assert set(cookies) == set(SESSION_COOKIES)
    for name, cookie in cookies.items():
        assert cookie.cleared
        assert cookie.attributes["path"] == (
            config.refresh_api_path if name == "sRefreshToken" else config.access_token_path
        )
    assert response.header("id-refresh-token") == "remove"
    assert response.header("front-token") is None


def assert_message(response: WireResponse, status: int, message: str) -> None:
    assert response.status == status, (response.status, response.body)
    assert response.json() == {"message": message}


# -- login: cookies and headers --------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"cookie_secure": True, "cookie_same_site": "strict", "enable_anti_csrf": True},
        {"cookie_domain": "example.test", "access_token_path": "/api",
         "refresh_api_path": "/api/auth/refresh"},
    ],
    ids=["defaults", "secure-strict-csrf", "domain-paths"],
)
def test_login_sets_cookies_with_exact_attributes_and_headers(
    start: Callable[..., WireClient], tmp_path: Path, options: dict[str, Any]
) -> None:
    client = start(**options)
    config = make_config(tmp_path, **options)
    before_ms = int(time.time()) * 1000
    response = client.login("alice", {"role": "admin"})
    cookies = response.set_cookies()
    assert set(cookies) == set(SESSION_COOKIES)
    for name, cookie in cookies.items():
        assert "httponly" in cookie.flags
        assert ("secure" in cookie.flags) is config.cookie_secure
        assert cookie.attributes["samesite"] == config.cookie_same_site.capitalize()
        assert cookie.attributes.get("domain") == config.cookie_domain
        assert cookie.attributes["path"] == (
            config.refresh_api_path if name == "sRefreshToken" else config.access_token_path
        )
    access = cookies["sAccessToken"]
    exp_ms = claims_of(access.value)["exp"] * 1000
    assert access.expires_ms == exp_ms
    assert before_ms <= exp_ms - config.access_token_validity * 1000 <= before_ms + 2000
    id_value, _, id_expiry = (response.header("id-refresh-token") or "").partition(";")
    assert id_value == cookies["sIdRefreshToken"].value
    assert int(id_expiry) // 1000 == cookies["sIdRefreshToken"].expires_ms // 1000
    assert cookies["sRefreshToken"].expires_ms == cookies["sIdRefreshToken"].expires_ms
    assert response.front_token() == {"uid": "alice", "ate": exp_ms, "up": {"role": "admin"}}
    anti_csrf = response.header("anti-csrf")
    assert (anti_csrf is not None) is config.enable_anti_csrf
    exposed = [h.strip() for h in (response.header("access-control-expose-headers") or "").split(",")]
    expected = {"id-refresh-token", "front-token"} | ({"anti-csrf"} if config.enable_anti_csrf else set())
    assert set(exposed) == expected and len(exposed) == len(set(exposed))
    assert response.header("cache-control") == "no-store"
    assert response.json()["handle"]


def test_protected_route_answers_with_the_session_and_sets_nothing(start: Callable[..., WireClient]) -> None:
    client = start()
    handle = client.login("alice", {"role": "admin"}).json()["handle"]
    response = client.request("GET", "/protected")
    assert response.status == 200
    assert response.json() == {"user_id": "alice", "handle": handle, "payload": {"role": "admin"}}
    assert_untouched(response)
    assert client.request("GET", "/health").json() == {"status": "ok"}


def test_optional_session(start: Callable[..., WireClient]) -> None:
    client = start()
    assert client.request("GET", "/optional").json() == {"user_id": None}
    client.login("bob")
    assert client.request("GET", "/optional").json() == {"user_id": "bob"}
    # A session that is present but whose access token is missing still asks for a refresh.
    only_id = client.request(
        "GET", "/optional", cookie=lambda _jar: f"sIdRefreshToken={client.jar.value('sIdRefreshToken')}"
    )
    assert_message(only_id, 401, "try refresh token")


# -- missing cookies ------------------------------------------------------------------------------------


def test_missing_id_refresh_cookie_is_unauthorised_touching_nothing(start: Callable[..., WireClient]) -> None:
    client = start()
    client.login()
    response = client.request(
        "GET", "/protected", cookie=lambda _jar: f"sAccessToken={client.jar.value('sAccessToken')}"
    )
    assert_message(response, 401, "unauthorised")
    assert_untouched(response)


def test_missing_access_cookie_is_try_refresh_touching_nothing(start: Callable[..., WireClient]) -> None:
    client = start()
    client.login()
    response = client.request(
        "GET", "/protected", cookie=lambda _jar: f"sIdRefreshToken={client.jar.value('sIdRefreshToken')}"
    )
    assert_message(response, 401, "try refresh token")
    assert_untouched(response)


def test_duplicate_cookie_names_are_refused(start: Callable[..., WireClient]) -> None:
    client = start()
    client.login()
    response = client.request("GET", "/protected", cookie=lambda jar: f"{jar}; sAccessToken=forged")
    assert_message(response, 401, "try refresh token")
    assert_untouched(response)


def test_custom_session_expired_status(start: Callable[..., WireClient]) -> None:
    assert start(session_expired_status_code=440).request("GET", "/protected").status == 440


# -- refresh, promotion, theft -----------------------------------------------------------------------


def test_refresh_promotion_and_theft(start: Callable[..., WireClient]) -> None:
    thefts: list[tuple[str, str]] = []
    client = start({"on_token_theft_detected": lambda h, u: thefts.append((h, u))},
                   refresh_token_reuse_grace_period=0)
    handle = client.login("alice").json()["handle"]
    old_refresh = client.jar.value("sRefreshToken")
    refreshed = client.request("POST", "/session/refresh")
    assert refreshed.status == 200 and refreshed.json() == {}
    cookies = refreshed.set_cookies()
    assert set(cookies) == set(SESSION_COOKIES)
    assert cookies["sRefreshToken"].value != old_refresh
    assert refreshed.header("id-refresh-token", ).startswith(cookies["sIdRefreshToken"].value + ";")  # type: ignore[union-attr]
    assert refreshed.front_token()["uid"] == "alice"  # type: ignore[index]
    assert refreshed.header("cache-control") == "no-store"
    first_use = client.request("GET", "/protected")
    assert first_use.status == 200
    assert set(first_use.set_cookies()) == {"sAccessToken"}
    assert "parentRefreshTokenHash1" not in claims_of(first_use.set_cookies()["sAccessToken"].value)
    assert first_use.front_token()["uid"] == "alice"  # type: ignore[index]
    assert "front-token" in (first_use.header("access-control-expose-headers") or "")
    second_use = client.request("GET", "/protected")
    assert_untouched(second_use)
    theft = client.request("POST", "/session/refresh", cookie=f"sRefreshToken={old_refresh}")
    assert_message(theft, 401, "token theft detected")
    assert_cleared(theft, Config(cookie_secure=False))
    assert thefts == [(handle, "alice")]
    assert_message(client.request("POST", "/session/refresh"), 401, "unauthorised")


def test_async_theft_hook_is_awaited(start: Callable[..., WireClient]) -> None:
    seen: list[str] = []

    async def hook(handle: str, user_id: str) -> None:
        seen.append(user_id)

    client = start({"on_token_theft_detected": hook}, refresh_token_reuse_grace_period=0)
    client.login("mallory-victim")
    old = client.jar.value("sRefreshToken")
    client.request("POST", "/session/refresh")
    client.request("GET", "/protected")
    assert client.request("POST", "/session/refresh", cookie=f"sRefreshToken={old}").status == 401
    assert seen == ["mallory-victim"]


def test_refresh_without_cookie_touches_nothing_and_other_methods_are_405(
    start: Callable[..., WireClient],
) -> None:
    client = start()
    client.login()
    response = client.request("POST", "/session/refresh", cookie=None)
    assert_message(response, 401, "unauthorised")
    assert_untouched(response)
    wrong_method = client.request("GET", "/session/refresh")
    assert wrong_method.status == 405
    assert_untouched(wrong_method)


# -- anti-CSRF --------------------------------------------------------------------------------------------


def test_anti_csrf_required_on_post_not_on_get(start: Callable[..., WireClient]) -> None:
    client = start(enable_anti_csrf=True)
    client.login()
    assert client.anti_csrf
    assert client.request("GET", "/protected", send_anti_csrf=False).status == 200
    without = client.request("POST", "/protected", send_anti_csrf=False)
    assert_message(without, 401, "try refresh token")
    assert_untouched(without)
    wrong = client.request("POST", "/protected", headers={"anti-csrf": "x" * 32})
    assert_message(wrong, 401, "try refresh token")
    assert client.request("POST", "/protected").status == 200
    refreshed = client.request("POST", "/session/refresh", send_anti_csrf=False)
    assert refreshed.status == 200 and refreshed.header("anti-csrf")


def test_split_cookie_headers_and_repeated_anti_csrf_headers(
    app_factory: AppFactory, open_app: Opener, tmp_path: Path
) -> None:
    """Repeated Cookie headers (HTTP/2) are read as one; a name repeated across them is a
    duplicate; repeated anti-csrf headers count as absent, whichever copy is right."""
    wire, client = open_app(app_factory(make_config(tmp_path, enable_anti_csrf=True)))
    wire.login("alice")
    split = [("cookie", f"sAccessToken={wire.jar.value('sAccessToken')}"),
             ("cookie", f"other=1; sIdRefreshToken={wire.jar.value('sIdRefreshToken')}")]
    assert client.get("/protected", headers=split).json()["user_id"] == "alice"
    tossed = client.get("/protected", headers=[*split, ("cookie", "sAccessToken=forged")])
    assert (tossed.status_code, tossed.json()) == (401, {"message": "try refresh token"})
    csrf = wire.anti_csrf or ""
    assert client.post("/protected", headers=[*split, ("anti-csrf", csrf)]).status_code == 200
    for copies in ((csrf, "x"), ("x", csrf), (csrf, csrf)):
        repeated = client.post("/protected", headers=[*split, *(("anti-csrf", c) for c in copies)])
        assert (repeated.status_code, repeated.json()) == (401, {"message": "try refresh token"})


def test_verification_headers_are_read_in_one_pass() -> None:
    scope: dict[str, Any] = {"headers": [(b"Cookie", b"a=1"), (b"anti-csrf", b"c1"), (b"cookie", b"b=\xe9"),
                                         (b"ANTI-CSRF", b"c2")]}
    assert _verification_headers(scope) == ("a=1; b=\xe9", "c1,c2")
    assert _verification_headers({"headers": [(b"cookie", b"a=1")]}) == ("a=1", None)
    assert _verification_headers({}) == (None, None)


# -- payload, data, logout ---------------------------------------------------------------------------


def test_update_jwt_payload_reissues_the_access_token_with_the_same_expiry(
    start: Callable[..., WireClient],
) -> None:
    client = start()
    client.login("alice", {"v": 1})
    before = claims_of(client.jar.value("sAccessToken") or "")
    response = client.request("POST", "/update-payload", json_body={"v": 2})
    assert response.status == 200 and response.json() == {"payload": {"v": 2}}
    cookies = response.set_cookies()
    assert set(cookies) == {"sAccessToken"}
    after = claims_of(cookies["sAccessToken"].value)
    assert after["exp"] == before["exp"]
    assert cookies["sAccessToken"].expires_ms == before["exp"] * 1000
    assert response.front_token() == {"uid": "alice", "ate": before["exp"] * 1000, "up": {"v": 2}}
    assert response.header("cache-control") == "no-store"
    assert client.request("GET", "/protected").json()["payload"] == {"v": 2}


def test_session_data_round_trip(start: Callable[..., WireClient]) -> None:
    client = start()
    client.login("alice", None, {"cart": []})
    assert client.request("GET", "/data").json() == {"cart": []}
    assert client.request("POST", "/data", json_body={"cart": ["book"]}).status == 200
    assert client.request("GET", "/data").json() == {"cart": ["book"]}


def test_logout_clears_cookies_and_ends_the_session(start: Callable[..., WireClient]) -> None:
    client = start()
    client.login()
    refresh_cookie = client.jar.value("sRefreshToken")
    response = client.request("POST", "/logout")
    assert response.status == 200 and response.json() == {}
    assert_cleared(response, Config(cookie_secure=False))
    assert_message(client.request("POST", "/session/refresh", cookie=f"sRefreshToken={refresh_cookie}"),
                   401, "unauthorised")


def test_logout_everywhere(start: Callable[..., WireClient]) -> None:
    phone = start()
    phone.login("carol")
    laptop = WireClient(phone.transport)
    laptop.login("carol")
    response = laptop.request("POST", "/logout-all")
    assert len(response.json()["revoked"]) == 2
    assert_message(phone.request("POST", "/session/refresh"), 401, "unauthorised")


def test_never_two_set_cookie_or_protocol_headers(start: Callable[..., WireClient]) -> None:
    client = start(enable_anti_csrf=True)
    for response in (
        client.login(),
        client.request("POST", "/session/refresh"),
        client.request("GET", "/protected"),
        client.request("POST", "/update-payload", json_body={"x": 1}),
        client.request("POST", "/logout"),
    ):
        names = [SetCookie.parse(raw).name for raw in response.header_values("set-cookie")]
        assert len(names) == len(set(names)), names
        for header in ("id-refresh-token", "front-token", "anti-csrf", "access-control-expose-headers",
                       "cache-control"):
            assert len(response.header_values(header)) <= 1, header


def test_preflight_helper(start: Callable[..., WireClient]) -> None:
    response = start().request("OPTIONS", "/protected")
    assert response.status == 204
    allowed = {h.strip() for h in (response.header("access-control-allow-headers") or "").split(",")}
    assert {"anti-csrf", "fdi-version", "supertokens-sdk-name", "supertokens-sdk-version"} <= allowed
    assert response.header("access-control-allow-credentials") == "true"


def test_preflight_merges_existing_allow_headers() -> None:
    response = sw.preflight(Response(headers={"Access-Control-Allow-Headers": "Content-Type, anti-csrf"}))
    assert response.headers.getlist("access-control-allow-headers") == [
        "Content-Type, anti-csrf, fdi-version, supertokens-sdk-name, supertokens-sdk-version"
    ]
    assert response.headers["access-control-allow-credentials"] == "true"


# -- store unavailable ----------------------------------------------------------------------------------


def test_store_unavailable_is_503_without_set_cookie(
    start: Callable[..., WireClient], tmp_path: Path
) -> None:
    db = tmp_path / "down.db"
    client = start(store=f"sqlite:///{db}?timeout=0.2")
    client.login("alice")
    with closing(sqlite3.connect(db, timeout=1)) as blocker:
        blocker.execute("BEGIN EXCLUSIVE")
        down = client.request("POST", "/login", json_body={"user_id": "bob"}, update_jar=False)
        assert_message(down, 503, "session store unavailable")
        assert down.header("retry-after") is not None
        assert_untouched(down)
        refresh = client.request("POST", "/session/refresh", update_jar=False)
        assert refresh.status == 200
        first_use = client.request(
            "GET", "/protected", update_jar=False,
            cookie=lambda _jar: "; ".join(
                f"{c.name}={c.value}" for c in refresh.set_cookies().values() if c.name != "sRefreshToken"
            ),
        )
        assert_message(first_use, 503, "session store unavailable")
        assert_untouched(first_use)
        blocker.execute("ROLLBACK")
    assert client.request("GET", "/protected").status == 200


# -- error handling overrides -------------------------------------------------------------------------


def test_error_handler_override(start: Callable[..., WireClient]) -> None:
    def handler(error: SessionWardError, default: ErrorResponse) -> ErrorResponse:
        if isinstance(error, UnauthorizedError):
            return default._replace(status=403, body=b'{"message": "please log in"}',
                                    headers=(("x-login", "/login"),))
        return default

    client = start({"error_handler": handler})
    response = client.request("GET", "/protected")
    assert response.status == 403
    assert response.json() == {"message": "please log in"}
    assert response.header("x-login") == "/login"
    assert response.header("content-type") == "application/json"
    assert_untouched(response)


def test_framework_exception_handler_can_be_replaced(tmp_path: Path, open_app: Opener) -> None:
    app = create_app(make_config(tmp_path))

    async def custom(request: Request, exc: Exception) -> Response:
        return PlainTextResponse("custom", status_code=418)

    app.add_exception_handler(SessionWardError, custom)  # the app's own handler wins
    client, _ = open_app(app)
    response = client.request("GET", "/protected")
    assert (response.status, response.body) == (418, b"custom")


def test_general_error_is_a_500_without_internals(app_factory: AppFactory, tmp_path: Path,
                                                    open_app: Opener) -> None:
    app = app_factory(make_config(tmp_path))

    async def broken(request: Request) -> Response:
        await sw.create_new_session(request, "alice")
        raise GeneralError("database password is hunter2")

    app.router.routes.append(Route("/broken", broken, methods=["POST"]))
    client, _ = open_app(app)
    response = client.request("POST", "/broken")
    assert_message(response, 500, "internal error")
    assert b"hunter2" not in response.body
    assert_untouched(response)  # the session created before the failure is not half-delivered


# -- the response the endpoint returns ------------------------------------------------------------------


def exchange_app(tmp_path: Path) -> FastAPI:
    app = create_app(make_config(tmp_path))

    @app.post("/login/injected")
    async def injected(response: Response) -> dict[str, str]:
        # SPEC signature: the injected Response as first argument; FastAPI merges it.
        session = await sw.create_new_session(response, "alice")
        assert len(response.headers.getlist("set-cookie")) == 3  # applied at once as well
        return {"handle": session.handle}

    @app.post("/login/injected-but-own-response")
    async def injected_own(response: Response) -> JSONResponse:
        # The injected Response is dropped by FastAPI here; the middleware still delivers.
        session = await sw.create_new_session(response, "alice")
        return JSONResponse({"handle": session.handle})

    @app.post("/login/own-response")
    async def own(request: Request) -> JSONResponse:
        reply = JSONResponse({"ok": True}, headers={"Cache-Control": "public, max-age=60",
                                                     "Access-Control-Expose-Headers": "X-Trace"})
        reply.set_cookie("theme", "dark")
        await sw.create_new_session(request, "alice", response=reply)
        return reply

    @app.post("/login/then-logout")
    async def then_logout(request: Request) -> dict[str, bool]:
        session = await sw.create_new_session(request, "alice")
        await session.revoke_session()
        return {"ok": True}

    @app.get("/who")
    async def who(request: Request, response: Response) -> dict[str, Any]:
        session = await sw.get_session(request, response)
        info = await sw.get_session_information(session.handle)
        assert request.state.sessionward_session is session
        return {"user_id": info.user_id, "handles": await sw.get_all_session_handles_for_user("alice")}

    return app


@pytest.mark.parametrize(
    "path", ["/login/injected", "/login/injected-but-own-response", "/login/own-response"]
)
def test_cookies_arrive_once_whatever_response_the_endpoint_returns(
    tmp_path: Path, open_app: Opener, path: str
) -> None:
    client, _ = open_app(exchange_app(tmp_path))
    response = client.request("POST", path)
    assert response.status == 200
    cookies = response.set_cookies()  # asserts one Set-Cookie per name
    assert set(SESSION_COOKIES) <= set(cookies)
    assert response.front_token()["uid"] == "alice"  # type: ignore[index]
    assert response.header("id-refresh-token")
    assert response.header("cache-control") == "no-store"
    assert client.request("GET", "/protected").json()["user_id"] == "alice"


def test_own_response_keeps_its_other_cookies_and_merges_expose_headers(
    tmp_path: Path, open_app: Opener
) -> None:
    client, _ = open_app(exchange_app(tmp_path))
    response = client.request("POST", "/login/own-response")
    assert set(response.set_cookies()) == {*SESSION_COOKIES, "theme"}
    exposed = [h.strip() for h in (response.header("access-control-expose-headers") or "").split(",")]
    assert exposed[0] == "X-Trace" and {"id-refresh-token", "front-token"} <= set(exposed)
    assert len(exposed) == len(set(exposed))
    assert response.header("cache-control") == "no-store"


def test_create_then_revoke_in_one_request_sends_only_the_clearing(tmp_path: Path, open_app: Opener) -> None:
    client, _ = open_app(exchange_app(tmp_path))
    response = client.request("POST", "/login/then-logout")
    assert_cleared(response, Config(cookie_secure=False))
    assert response.header("anti-csrf") is None


def test_management_calls_inside_a_request_use_the_request_app(tmp_path: Path, open_app: Opener) -> None:
    other = create_app(make_config(tmp_path, store=f"sqlite:///{tmp_path}/other.db"))
    open_app(other)  # two running apps: only the request context can tell them apart
    client, _ = open_app(exchange_app(tmp_path))
    handle = client.login("alice").json()["handle"]
    assert client.request("GET", "/who").json() == {"user_id": "alice", "handles": [handle]}


# -- management calls outside requests ------------------------------------------------------------------


def test_management_calls_outside_a_request(tmp_path: Path, open_app: Opener) -> None:
    app = create_app(make_config(tmp_path))
    client, test_client = open_app(app)
    handle = client.login("dave", {"p": 1}, {"d": 2}).json()["handle"]
    call = functools.partial(portal_call, test_client)
    assert call(sw.get_all_session_handles_for_user, "dave") == [handle]
    assert call(sw.get_jwt_payload, handle) == {"p": 1}
    assert call(sw.get_session_data, handle) == {"d": 2}
    call(sw.update_session_data, handle, {"d": 3})
    call(sw.update_jwt_payload, handle, {"p": 4})
    info = call(sw.get_session_information, handle)
    assert isinstance(info, SessionInformation)
    assert (info.user_id, info.session_data, info.jwt_payload) == ("dave", {"d": 3}, {"p": 4})
    assert call(functools.partial(sw.revoke_session, handle, app=app)) is True
    assert call(sw.revoke_session, handle) is False
    second = client.login("dave").json()["handle"]
    assert call(sw.revoke_multiple_sessions, [second, "nope"]) == [second]
    client.login("dave")
    assert len(call(sw.revoke_all_sessions_for_user, "dave")) == 1
    with pytest.raises(UnauthorizedError):
        call(sw.update_session_data, handle, {})


def test_management_calls_refuse_to_guess_between_two_running_apps(tmp_path: Path, open_app: Opener) -> None:
    first = create_app(make_config(tmp_path))
    second = create_app(make_config(tmp_path, store=f"sqlite:///{tmp_path}/second.db"))
    _, first_client = open_app(first)
    open_app(second)
    with pytest.raises(GeneralError, match="app="):
        portal_call(first_client, sw.get_all_session_handles_for_user, "x")
    explicit = functools.partial(sw.get_all_session_handles_for_user, "x", app=first)
    assert portal_call(first_client, explicit) == []


# -- set-up ------------------------------------------------------------------------------------------------


def test_init_builds_the_engine_from_options_and_stores_it_on_app_state(tmp_path: Path) -> None:
    app = Starlette()
    engine = sw.init(app, make_config(tmp_path), access_token_validity=120)
    assert isinstance(engine, AsyncSessionWard)
    assert app.state.sessionward is engine
    assert engine.config.access_token_validity == 120
    assert engine.config.cookie_secure is False
    with pytest.raises(GeneralError, match="already"):
        sw.init(app, make_config(tmp_path))
    with TestClient(app) as client:
        portal_call(client, engine.get_all_session_handles_for_user, "x")  # opens the store
    with pytest.raises(GeneralError, match="closed"):
        asyncio.run(engine.get_all_session_handles_for_user("x"))  # shutdown closed it


def test_init_with_keyword_options_only(tmp_path: Path, open_app: Opener) -> None:
    app = FastAPI()
    sw.init(app, store=f"sqlite:///{tmp_path}/kw.db", cookie_secure=False, access_token_algorithm="HS256")
    with pytest.raises(Exception, match="unknown option"):
        sw.init(FastAPI(), cookie_secur=False)

    @app.post("/login")
    async def login(request: Request) -> dict[str, str]:
        return {"handle": (await sw.create_new_session(request, "kw")).handle}

    client, _ = open_app(app)
    assert "secure" not in client.login("kw").set_cookies()["sAccessToken"].flags


def test_app_can_be_started_again_after_shutdown(tmp_path: Path) -> None:
    app = create_app(make_config(tmp_path))
    for _ in range(2):
        with TestClient(app) as test_client:
            client = WireClient(wire_transport(test_client))
            client.login("again")
            assert client.request("GET", "/protected").status == 200


def test_refresh_route_is_not_shadowed_by_a_catch_all(tmp_path: Path, open_app: Opener) -> None:
    async def catch_all(request: Request) -> Response:
        return PlainTextResponse("page")

    app = Starlette(routes=[Route("/{path:path}", catch_all, methods=["GET", "POST"])])
    sw.init(app, make_config(tmp_path))
    client, _ = open_app(app)
    assert_message(client.request("POST", "/session/refresh"), 401, "unauthorised")


def test_request_functions_outside_the_middleware_are_a_clear_error() -> None:
    with pytest.raises(GeneralError, match=r"init\(app\)"):
        asyncio.run(sw.create_new_session(Response(), "alice"))
