"""The FastAPI/Starlette middleware at the ASGI level: what it leaves alone, what it writes,
and the session routes' cheap path matching."""

from __future__ import annotations

import asyncio
import json
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.exceptions import StarletteDeprecationWarning
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Host, Match, Mount, NoMatchFound, Route, WebSocketRoute
from starlette.types import Message, Receive, Scope, Send

from sessionward import Config
from sessionward import fastapi as sw
from sessionward.fastapi.middleware import STATE_CONTEXT_KEY, _current
from sessionward.fastapi.routes import _SessionRoutes
from sessionward.transport.protocol import WireMode

with warnings.catch_warnings():
    # Starlette >= 1.0 prefers httpx2 and warns when its TestClient falls back to httpx.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

SESSION_COOKIES = ("sAccessToken", "sRefreshToken", "sIdRefreshToken")

# What a raw ASGI endpoint sends, headers included that the middleware would replace if the
# request had session effects (a session cookie, a protocol header, exposed headers).
RAW_HEADERS = [
    (b"content-type", b"text/plain"),
    (b"set-cookie", b"sAccessToken=not-ours; Path=/"),
    (b"front-token", b"app-value"),
    (b"access-control-expose-headers", b"x-one, X-One"),
    (b"x-latin1", "caf\xe9".encode("latin-1")),
]


def mode_of(context: Any) -> WireMode:
    """The context's mode, read anew (not narrowed by an earlier assertion)."""
    mode: WireMode = context.mode
    return mode


def raw_messages() -> list[Message]:
    return [
        {"type": "http.response.start", "status": 200, "headers": list(RAW_HEADERS)},
        {"type": "http.response.body", "body": b"part 1", "more_body": True},
        {"type": "http.response.body", "body": b"part 2", "more_body": False},
    ]


class RawEndpoint:
    """A raw ASGI app that records the messages it sends and the context it saw."""

    def __init__(self) -> None:
        self.sent: list[Message] = []
        self.scope: Scope | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scope = scope
        for message in raw_messages():
            self.sent.append(message)
            await send(message)


def make_app(tmp_path: Path, endpoint: RawEndpoint) -> Starlette:
    async def login(request: Request) -> Response:
        await sw.create_new_session(request, "alice")
        return JSONResponse({})

    async def login_streaming(request: Request) -> Response:
        await sw.create_new_session(request, "alice")

        async def chunks() -> AsyncIterator[bytes]:
            for number in range(3):
                yield f"chunk {number};".encode()

        return StreamingResponse(chunks(), media_type="text/plain")

    async def plain_streaming(request: Request) -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            for number in range(3):
                yield f"chunk {number};".encode()

        return StreamingResponse(chunks(), media_type="text/plain")

    async def fails(request: Request) -> Response:
        await sw.create_new_session(request, "alice")
        raise RuntimeError("endpoint failure")

    app = Starlette(
        routes=[
            Route("/login", login, methods=["POST"]),
            Route("/login-streaming", login_streaming, methods=["POST"]),
            Route("/plain-streaming", plain_streaming),
            Route("/fails", fails, methods=["POST"]),
            Mount("/raw", app=endpoint),
        ]
    )
    sw.init(app, Config(store=f"sqlite:///{tmp_path}/sessions.db", cookie_secure=False))
    return app


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    event_loop = asyncio.new_event_loop()
    yield event_loop
    event_loop.close()


def http_scope(method: str, path: str, headers: list[tuple[bytes, bytes | bytearray]]) -> dict[str, Any]:
    """The scope of an HTTP request to ``testserver`` with ``headers`` after ``Host``."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }


def call(
    loop: asyncio.AbstractEventLoop,
    app: Starlette,
    method: str,
    path: str,
    *,
    raise_app_exceptions: bool = True,
) -> list[Message]:
    """One request through the whole app (lifespan not run: the engine opens lazily)."""
    scope = http_scope(method, path, [])
    received: list[Message] = []

    requests = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> Message:
        if requests:
            return requests.pop()
        await asyncio.Event().wait()  # no disconnect: the app cancels this wait when done
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        received.append(message)

    async def run() -> None:
        try:
            await app(scope, receive, send)
        except RuntimeError:
            if raise_app_exceptions:
                raise

    loop.run_until_complete(run())
    return received


def set_cookie_names(message: Message) -> list[str]:
    return [
        value.decode("latin-1").split("=", 1)[0]
        for name, value in message["headers"]
        if name.lower() == b"set-cookie"
    ]


def test_a_request_without_session_work_passes_every_message_through_unmodified(
    tmp_path: Path, loop: asyncio.AbstractEventLoop
) -> None:
    endpoint = RawEndpoint()
    received = call(loop, make_app(tmp_path, endpoint), "GET", "/raw/anything")
    # The very message objects the endpoint sent, unchanged byte for byte.
    assert len(received) == len(endpoint.sent) == 3
    assert all(got is sent for got, sent in zip(received, endpoint.sent, strict=True))
    assert received == raw_messages()
    # The request context was there, and no effects object was ever made for it.
    assert endpoint.scope is not None
    context = endpoint.scope["state"][STATE_CONTEXT_KEY]
    assert context._effects is None and not context.pending
    assert endpoint.scope["state"]["sessionward_session"] is None


def test_session_cookies_go_on_the_start_message_only(
    tmp_path: Path, loop: asyncio.AbstractEventLoop
) -> None:
    received = call(loop, make_app(tmp_path, RawEndpoint()), "POST", "/login")
    start, *body = received
    assert start["type"] == "http.response.start" and start["status"] == 200
    assert sorted(set_cookie_names(start)) == sorted(SESSION_COOKIES)
    assert [message["type"] for message in body] == ["http.response.body"]
    assert body[0]["body"] == b"{}"


def test_streaming_response_gets_the_cookies_and_keeps_its_chunks(
    tmp_path: Path, loop: asyncio.AbstractEventLoop
) -> None:
    app = make_app(tmp_path, RawEndpoint())
    start, *body = call(loop, app, "POST", "/login-streaming")
    assert sorted(set_cookie_names(start)) == sorted(SESSION_COOKIES)
    assert b"".join(message.get("body", b"") for message in body) == b"chunk 0;chunk 1;chunk 2;"

    start, *body = call(loop, app, "GET", "/plain-streaming")
    assert set_cookie_names(start) == []
    assert b"".join(message.get("body", b"") for message in body) == b"chunk 0;chunk 1;chunk 2;"


def test_an_endpoint_exception_leaves_no_context_behind(
    tmp_path: Path, loop: asyncio.AbstractEventLoop
) -> None:
    received = call(loop, make_app(tmp_path, RawEndpoint()), "POST", "/fails", raise_app_exceptions=False)
    assert received[0]["type"] == "http.response.start" and received[0]["status"] == 500
    # The context variable set for the request is reset however the request ended.
    assert _current.get() is None


def test_websocket_and_lifespan_scopes_pass(tmp_path: Path, loop: asyncio.AbstractEventLoop) -> None:
    seen: list[Any] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append((scope["type"], _current.get() is not None, send is outer_send))

    async def outer_send(message: Message) -> None:
        raise AssertionError("not called")

    async def receive() -> Message:
        return {}

    middleware = sw.SessionWardMiddleware(
        inner, binding=make_app(tmp_path, RawEndpoint()).state.sessionward_binding
    )
    loop.run_until_complete(middleware({"type": "websocket", "path": "/ws"}, receive, outer_send))
    loop.run_until_complete(middleware({"type": "lifespan"}, receive, outer_send))
    # A websocket gets the context (and the server's own send); lifespan gets nothing.
    assert seen == [("websocket", True, True), ("lifespan", False, True)]


ROUTE_PATHS = ["/session/refresh", "/sessionward/sessionward.js", "/auth/{name}", "/session"]
REQUEST_PATHS = [
    "/session/refresh",
    "/session/refresh/",
    "/session/refresh\n",
    "/x/session/refresh",
    "/session/refreshing",
    "/sessionward/sessionward.js",
    "/auth/alice",
    "/session",
    "/plain",
    "",
    "/",
]


@pytest.mark.parametrize(
    "route_paths", [[path] for path in ROUTE_PATHS] + [ROUTE_PATHS[:2], ROUTE_PATHS[::-1], ROUTE_PATHS[1:]]
)
@pytest.mark.parametrize("path", REQUEST_PATHS)
@pytest.mark.parametrize("method", ["GET", "POST", "OPTIONS"])
@pytest.mark.parametrize("root_path", ["", "/prefix"])
def test_session_routes_match_exactly_as_their_routes_in_turn(
    route_paths: list[str], path: str, method: str, root_path: str
) -> None:
    """The session routes' one router entry answers what the same routes tried in turn by
    the router answer: the first full match, else the first partial one, else none."""

    async def endpoint(request: Request) -> Response:
        return Response()

    # Different methods per route, so that a path can match one route partially and a
    # later one fully.
    routes = [
        Route(route_path, endpoint, methods=["POST", "OPTIONS"] if index % 2 == 0 else ["GET"])
        for index, route_path in enumerate(route_paths)
    ]
    entry = _SessionRoutes(routes)
    for full_path in (path, root_path + path):
        scope = {"type": "http", "path": full_path, "root_path": root_path, "method": method}
        expected: tuple[Match, Scope] = (Match.NONE, {})
        for route in routes:
            match, child = route.matches(dict(scope))
            if match == Match.FULL:
                expected = (match, child)
                break
            if match == Match.PARTIAL and expected[0] == Match.NONE:
                expected = (match, child)
        assert entry.matches(dict(scope)) == expected
    assert entry.matches({"type": "websocket", "path": route_paths[0], "root_path": ""})[0] == Match.NONE


def test_session_routes_keep_their_names_and_answer_through_the_app(
    tmp_path: Path, loop: asyncio.AbstractEventLoop
) -> None:
    app = make_app(tmp_path, RawEndpoint())
    entries = [route for route in app.router.routes if isinstance(route, _SessionRoutes)]
    assert len(entries) == 1 and app.router.routes[0] is entries[0]
    assert [route.name for route in entries[0].routes] == [
        "sessionward_jwks",
        "sessionward_refresh",
        "sessionward_sign_out",
        "sessionward_client_script",
    ]
    assert app.url_path_for("sessionward_refresh") == "/session/refresh"
    assert app.url_path_for("sessionward_sign_out") == "/signout"
    assert app.url_path_for("sessionward_jwks") == "/.well-known/jwks.json"
    with pytest.raises(NoMatchFound):
        entries[0].url_path_for("login")
    start = call(loop, app, "GET", "/session/refresh")[0]
    assert start["status"] == 405
    assert set(dict(start["headers"])[b"allow"].split(b", ")) == {b"POST", b"OPTIONS"}
    assert call(loop, app, "POST", "/session/refresh")[0]["status"] == 401
    assert call(loop, app, "GET", "/.well-known/jwks.json")[0]["status"] == 200
    assert call(loop, app, "HEAD", "/.well-known/jwks.json")[0]["status"] == 200
    assert call(loop, app, "GET", "/sessionward/sessionward.js")[0]["status"] == 200
    assert call(loop, app, "GET", "/nowhere")[0]["status"] == 404
    # Started: the entry went after the app's routes, none of which can match its paths.
    assert app.router.routes[-1] is entries[0]


def _endpoint(request: Request) -> Response:
    return PlainTextResponse("app")


class _OwnRoute(Route):
    """A Route subclass: it may match otherwise, so the entry stays before it."""


async def _websocket_endpoint(websocket: Any) -> None:
    await websocket.close()


@pytest.mark.parametrize(
    ("shadow", "stays_before"),
    [
        (None, False),
        (Route("/{path:path}", _endpoint, methods=["GET", "POST"]), True),
        (Route("/session/{name}", _endpoint, methods=["POST"]), True),
        (Route("/signout", _endpoint, methods=["GET"]), True),  # same path, other method
        (Route("/session/refresh/extra", _endpoint), False),
        (Mount("", app=Starlette()), True),
        (Mount("/session", app=Starlette()), True),
        (Mount("/static", app=Starlette()), False),
        (Host("api.example.org", app=Starlette()), True),
        (_OwnRoute("/other", _endpoint), True),
        (WebSocketRoute("/session/refresh", _websocket_endpoint), False),
    ],
)
def test_session_routes_move_after_the_routes_that_cannot_shadow_them(
    tmp_path: Path, shadow: BaseRoute | None, stays_before: bool
) -> None:
    harmless = [Route("/a", _endpoint), Route("/b/{id:int}", _endpoint), Mount("/raw", app=Starlette())]
    routes: list[BaseRoute] = [*harmless, *([] if shadow is None else [shadow]), Route("/z", _endpoint)]
    app = Starlette(routes=list(routes))
    sw.init(app, Config(store=f"sqlite:///{tmp_path}/sessions.db", cookie_secure=False))
    entry = app.router.routes[0]
    assert isinstance(entry, _SessionRoutes)
    with TestClient(app) as client:
        if shadow is None:
            assert app.router.routes == [*routes, entry]
        elif stays_before:
            assert app.router.routes == [*harmless, entry, shadow, routes[-1]]
        else:
            assert app.router.routes == [*harmless, shadow, routes[-1], entry]
        # Never shadowed: the refresh route answers its own 401, the app's routes theirs.
        answer = client.post("/session/refresh")
        assert answer.status_code == 401 and answer.json() == {"message": "unauthorised"}
        assert client.get("/a").text == "app"
        if shadow is not None and isinstance(shadow, Route) and shadow.path == "/signout":
            assert client.post("/signout").status_code == 401  # the session route's own answer

        async def later(request: Request) -> Response:
            return PlainTextResponse("later")

        app.router.routes.append(Route("/later", later))
        probe = {"type": "http", "path": "/later", "root_path": "", "method": "GET", "headers": []}
        if shadow is None or shadow.matches(probe)[0] == Match.NONE:
            assert client.get("/later").text == "later"


def test_session_routes_stay_first_when_a_path_has_parameters_or_they_were_removed(tmp_path: Path) -> None:
    app = Starlette(routes=[Route("/a", _endpoint)])
    sw.init(app, Config(store=f"sqlite:///{tmp_path}/a.db", refresh_api_path="/s/{tenant}/session/refresh"))
    entry = app.router.routes[0]
    with TestClient(app):
        assert app.router.routes[0] is entry
    removed = Starlette(routes=[Route("/a", _endpoint)])
    sw.init(removed, Config(store=f"sqlite:///{tmp_path}/b.db"))
    del removed.router.routes[0]
    with TestClient(removed):
        assert not any(isinstance(route, _SessionRoutes) for route in removed.router.routes)


def test_a_verification_that_writes_nothing_makes_no_effects_and_a_later_write_keeps_its_mode(
    tmp_path: Path,
) -> None:
    contexts: list[Any] = []

    async def login(request: Request) -> Response:
        await sw.create_new_session(request, "alice")
        return JSONResponse({})

    async def check(request: Request) -> Response:
        session = await sw.get_session(request)
        contexts.append(request.state.sessionward_context)
        return JSONResponse({"user": session.user_id})

    async def revoke(request: Request) -> Response:
        session = await sw.get_session(request)
        assert request.state.sessionward_context._effects is None
        await session.revoke_session()
        return JSONResponse({})

    app = Starlette(
        routes=[
            Route("/login", login, methods=["POST"]),
            Route("/check", check),
            Route("/revoke", revoke),
        ]
    )
    sw.init(app, Config(store=f"sqlite:///{tmp_path}/sessions.db", cookie_secure=False))
    with TestClient(app) as client:

        def login_as(auth_mode: str | None) -> Any:
            headers = {} if auth_mode is None else {"st-auth-mode": auth_mode}
            return client.post("/login", headers=headers)

        def cookie_of(answer: Any, *names: str) -> str:
            return "; ".join(f"{name}={answer.cookies[name]}" for name in names)

        legacy = login_as(None)
        legacy_cookie = cookie_of(legacy, "sAccessToken", "sIdRefreshToken")
        client.cookies.clear()
        answer = client.get("/check", headers={"cookie": legacy_cookie})
        assert answer.status_code == 200 and answer.json() == {"user": "alice"}
        assert "set-cookie" not in answer.headers and "front-token" not in answer.headers
        assert contexts[-1]._effects is None and mode_of(contexts[-1]) is WireMode.LEGACY
        # The mode the verification chose reaches the effects made later: 2020 clearing.
        answer = client.get("/revoke", headers={"cookie": legacy_cookie})
        assert answer.headers["id-refresh-token"] == "remove"
        assert "front-token" not in answer.headers
        assert len(answer.headers.get_list("set-cookie")) == 3

        current = login_as("cookie")
        current_cookie = cookie_of(current, "sAccessToken")
        client.cookies.clear()
        answer = client.get("/check", headers={"cookie": current_cookie})
        assert answer.status_code == 200 and mode_of(contexts[-1]) is WireMode.INFERRED_COOKIE
        answer = client.get("/revoke", headers={"cookie": current_cookie})
        # Inferred cookie mode: the cookies expire, no front-token (the client may be a 2020 one).
        assert "front-token" not in answer.headers and "id-refresh-token" not in answer.headers
        assert len(answer.headers.get_list("set-cookie")) == 2

        header = login_as("header")
        bearer = {"authorization": f"Bearer {header.headers['st-access-token']}"}
        client.cookies.clear()
        answer = client.get("/check", headers=bearer)
        assert answer.status_code == 200 and mode_of(contexts[-1]) is WireMode.HEADER
        assert contexts[-1]._effects is None
        answer = client.get("/revoke", headers=bearer)
        assert answer.headers["front-token"] == "remove"
        assert answer.headers["st-access-token"] == "" and answer.headers["st-refresh-token"] == ""
        assert "set-cookie" not in answer.headers


def test_get_session_and_the_dependency_read_the_request_headers_alike(
    tmp_path: Path, loop: asyncio.AbstractEventLoop
) -> None:
    """get_session reads a lone lowercase Cookie header inline, and any other header it
    needs through _verification_headers: each request below is answered as by the
    dependency (which always takes the general path's verdicts too)."""

    async def direct(request: Request) -> Response:
        session = await sw.get_session(request)
        return JSONResponse(
            {"user": session.user_id, "mode": mode_of(request.state.sessionward_context).name}
        )

    async def dependency(request: Request) -> Response:
        session = await sw.verify_session()(request)
        assert session is not None
        return JSONResponse(
            {"user": session.user_id, "mode": mode_of(request.state.sessionward_context).name}
        )

    app = Starlette(
        routes=[
            Route("/direct", direct, methods=["GET", "POST"]),
            Route("/dep", dependency, methods=["GET", "POST"]),
        ]
    )
    config = Config(store=f"sqlite:///{tmp_path}/sessions.db", cookie_secure=False, enable_anti_csrf=True)
    engine = sw.init(app, config)
    tokens = loop.run_until_complete(engine.create_new_session("alice"))
    access = f"sAccessToken={tokens.access_token.value}".encode()
    id_refresh = f"sIdRefreshToken={tokens.id_refresh_token.value}".encode()
    anti_csrf = (tokens.anti_csrf_token or "").encode()

    def answer(path: str, method: str, headers: list[tuple[bytes, bytes | bytearray]]) -> tuple[int, bytes]:
        scope = http_scope(method, path, headers)
        sent: list[Message] = []

        async def receive() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Message) -> None:
            sent.append(message)

        loop.run_until_complete(app(scope, receive, send))
        return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])

    both = access + b"; " + id_refresh
    cases: list[tuple[str, list[tuple[bytes, bytes | bytearray]], tuple[int, str]]] = [
        ("GET", [(b"cookie", both)], (200, "LEGACY")),
        ("GET", [(b"cookie", access)], (200, "INFERRED_COOKIE")),
        ("GET", [(b"Cookie", both)], (200, "LEGACY")),  # a name not in lowercase
        ("GET", [(b"cookie", access), (b"cookie", id_refresh)], (200, "LEGACY")),  # two headers
        ("GET", [(b"cookie", both), (b"st-auth-mode", b"cookie")], (401, "")),  # 2020 cookie: migrate
        ("GET", [(b"st-auth-mode", b"cookie"), (b"cookie", access)], (200, "COOKIE")),
        (
            "GET",
            [(b"cookie", access), (b"authorization", b"Bearer " + tokens.access_token.value.encode())],
            (200, "HEADER"),
        ),
        ("POST", [(b"cookie", both)], (401, "")),  # no anti-csrf header
        ("POST", [(b"cookie", both), (b"anti-csrf", anti_csrf)], (200, "LEGACY")),
        ("POST", [(b"anti-csrf", anti_csrf), (b"cookie", both)], (200, "LEGACY")),
        ("GET", [(b"cookie", bytearray(both))], (200, "LEGACY")),  # not bytes
        ("GET", [], (401, "")),
    ]
    for method, headers, (status, mode) in cases:
        for path in ("/direct", "/dep"):
            got_status, body = answer(path, method, headers)
            assert got_status == status, (path, method, headers, body)
            if status == 200:
                assert json.loads(body) == {"user": "alice", "mode": mode}, (path, headers)
