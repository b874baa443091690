"""sessionward.fastapi through Starlette's own TestClient, on FastAPI and on plain Starlette."""

from __future__ import annotations

import asyncio
import functools
import warnings
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request, Response
from starlette.applications import Starlette
from starlette.exceptions import StarletteDeprecationWarning
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from frameworks.apps.fastapi_app import create_app, create_starlette_app
from frameworks.wire import Headers, Transport, WireClient, WireResponse
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


def assert_untouched(response: WireResponse) -> None:
    assert response.header_values("set-cookie") == []
    for header in ("id-refresh-token", "front-token", "anti-csrf"):
        assert response.header(header) is None


def assert_message(response: WireResponse, status: int, message: str) -> None:
    assert response.status == status, (response.status, response.body)
    assert response.json() == {"message": message}


# -- login: cookies and headers --------------------------------------------------------------------


# -- missing cookies ------------------------------------------------------------------------------------


# -- refresh, promotion, theft -----------------------------------------------------------------------


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


# -- anti-CSRF --------------------------------------------------------------------------------------------


def test_verification_headers_are_read_in_one_pass() -> None:
    scope: dict[str, Any] = {
        "headers": [
            (b"Cookie", b"a=1"),
            (b"anti-csrf", b"c1"),
            (b"cookie", b"b=\xe9"),
            (b"ANTI-CSRF", b"c2"),
            (b"st-auth-mode", b"cookie"),
            (b"Authorization", b"Bearer t"),
            (b"authorization", b"Bearer u"),
        ]
    }
    assert _verification_headers(scope) == ("a=1; b=\xe9", "c1,c2", "cookie", "Bearer t,Bearer u")
    # One Cookie header is handed on as received (the cookie parser reads bytes as latin-1).
    assert _verification_headers({"headers": [(b"cookie", b"a=1")]}) == (b"a=1", None, None, None)
    assert _verification_headers({"headers": [(b"COOKIE", bytearray(b"a=\xe9"))]}) == (
        b"a=\xe9",
        None,
        None,
        None,
    )
    assert _verification_headers({"headers": [(b"x-cookie", b"a=1"), (b"123", b"")]}) == (
        None,
        None,
        None,
        None,
    )
    assert _verification_headers({}) == (None, None, None, None)


# -- payload, data, logout ---------------------------------------------------------------------------


def test_preflight_merges_existing_allow_headers() -> None:
    response = sw.preflight(Response(headers={"Access-Control-Allow-Headers": "Content-Type, anti-csrf"}))
    assert response.headers.getlist("access-control-allow-headers") == [
        "Content-Type, anti-csrf, fdi-version, supertokens-sdk-name, supertokens-sdk-version, "
        "rid, st-auth-mode, authorization"
    ]
    assert response.headers["access-control-allow-credentials"] == "true"


# -- store unavailable ----------------------------------------------------------------------------------


# -- error handling overrides -------------------------------------------------------------------------


def test_error_handler_override(start: Callable[..., WireClient]) -> None:
    def handler(error: SessionWardError, default: ErrorResponse) -> ErrorResponse:
        if isinstance(error, UnauthorizedError):
            return default._replace(
                status=403, body=b'{"message": "please log in"}', headers=(("x-login", "/login"),)
            )
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


def test_general_error_is_a_500_without_internals(
    app_factory: AppFactory, tmp_path: Path, open_app: Opener
) -> None:
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
        # Documented signature: the injected Response as first argument; FastAPI merges it.
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
        reply = JSONResponse(
            {"ok": True},
            headers={"Cache-Control": "public, max-age=60", "Access-Control-Expose-Headers": "X-Trace"},
        )
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


def test_fastapi_routes_go_before_the_session_routes_included_routers_after(tmp_path: Path) -> None:
    from fastapi import APIRouter

    from sessionward.fastapi.routes import _SessionRoutes

    app = FastAPI()
    sw.init(app, make_config(tmp_path))

    @app.get("/a")
    async def first() -> dict[str, str]:
        return {"route": "a"}

    api = APIRouter(prefix="/api")

    @api.get("/b")
    async def second() -> dict[str, str]:
        return {"route": "b"}

    app.include_router(api)

    @app.post("/session/refresh")
    async def shadowing() -> dict[str, str]:  # defined after init: never reached
        return {"route": "app's"}

    with TestClient(app) as client:
        kinds = [type(route).__name__ for route in app.router.routes]
        # FastAPI's own routes (docs, /a) cannot match the session paths: the entry moved
        # after them, and stays before the included router (this cannot tell its routes).
        entry = next(
            index for index, route in enumerate(app.router.routes) if isinstance(route, _SessionRoutes)
        )
        assert kinds[entry - 1] == "APIRoute" and kinds[entry + 1] != "APIRoute"
        assert client.get("/a").json() == {"route": "a"}
        assert client.get("/api/b").json() == {"route": "b"}
        assert client.post("/session/refresh").status_code == 401


def test_request_functions_outside_the_middleware_are_a_clear_error() -> None:
    with pytest.raises(GeneralError, match=r"init\(app\)"):
        asyncio.run(sw.create_new_session(Response(), "alice"))
