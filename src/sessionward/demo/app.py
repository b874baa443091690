"""The demo web app: one page (sign-in form, then a session dashboard) and a JSON API,
on Starlette with :mod:`sessionward.fastapi`.

Routes (``POST``/``PUT``/``DELETE`` need the ``anti-csrf`` header, which ``sessionward.js``
sends):

=============================================  ===============================================
``GET /``                                      the page (``assets/index.html``)
``GET /assets/{name}``                         its script and style sheet
``GET /sessionward/sessionward.js``            the browser client (mounted by ``init``)
``POST /session/refresh``                      the refresh route (mounted by ``init``)
``POST /api/signin`` ``{"name", "remember"}``  create a session for that name (no password);
                                               ``"remember": false``: cookies end with the
                                               browser session (``persistent=False``)
``GET /api/me``                                the verified session: user id, handle, payload
``POST /api/payload`` ``{"payload"}``          replace the JWT payload (new access token now)
``GET /api/data``, ``PUT /api/data`` ``{"data"}``  read / replace the private session data
``GET /api/sessions``                          this user's devices: every live session,
                                               newest activity first, with browser, IP,
                                               last activity and which one is this one
``DELETE /api/sessions/{handle}``              sign one of them out
``POST /api/signout``                          revoke this session
``POST /api/signout-others``                   revoke every other session of this user
``POST /api/signout-everywhere``               revoke every session of this user
``GET /api/recovery-codes``                    a protected action behind ``max_auth_age``:
                                               ``403 {"message": "re-authentication
                                               required"}`` when the sign-in is older
``POST /api/reauthenticate`` ``{"name"}``      confirm the user's name again: the session
                                               counts as freshly authenticated
``POST /session/refresh/demo-steal``           theft simulation, step 1: copy the refresh
                                               cookie (it is scoped to the refresh path, so
                                               only routes below it receive it)
``POST /api/demo-replay``                      step 2: replay the copy, answer the verdict
=============================================  ===============================================
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..config import Config
from ..engine.aio import AsyncSessionWard
from ..errors import UnauthorizedError
from ..fastapi import create_new_session as create_session
from ..fastapi import (
    get_all_sessions_for_user,
    get_session,
    get_session_information,
    init,
    revoke_all_sessions_for_user,
    revoke_session,
)
from ..transport.request import parse_session_cookies
from .devices import describe_user_agent
from .theft import StolenTokens

__all__ = ["ACCESS_TOKEN_VALIDITY", "MAX_AUTH_AGE", "create_app", "demo_config"]

ACCESS_TOKEN_VALIDITY = 15
"""Seconds an access token of the demo lives by default: short, so that refreshes happen in
view (``sessionward demo --access-token-validity SECONDS`` changes it)."""

MAX_AUTH_AGE = 60
"""Seconds after a sign-in (or a re-authentication) during which the demo's protected action,
"view recovery codes", is allowed without confirming the name again
(``sessionward demo --max-auth-age SECONDS`` changes it)."""

MAX_NAME_LENGTH = 64
RECOVERY_CODES = 8
_ASSETS = {
    "demo.js": "text/javascript; charset=utf-8",
    "demo.css": "text/css; charset=utf-8",
}
_NO_STORE = {"Cache-Control": "no-store"}


def demo_config(store: str, access_token_validity: int = ACCESS_TOKEN_VALIDITY) -> Config:
    """The demo's configuration on ``store``: plain http (``cookie_secure=False``), short
    access tokens (``access_token_validity`` seconds), anti-CSRF on, and access-token
    blacklisting so that a revoked session stops working at once (by default a revoked
    session's access token stays valid until it expires)."""
    return Config(
        store=store,
        access_token_validity=access_token_validity,
        cookie_secure=False,
        enable_anti_csrf=True,
        access_token_blacklisting=True,
    )


def _asset(name: str) -> bytes:
    return resources.files("sessionward.demo").joinpath("assets", name).read_bytes()


class _BadRequest(Exception):
    pass


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        raise _BadRequest("the body is not JSON") from None
    if not isinstance(body, dict):
        raise _BadRequest("the body must be a JSON object")
    return body


def _object_field(body: dict[str, Any], name: str) -> dict[str, Any]:
    value = body.get(name)
    if not isinstance(value, dict):
        raise _BadRequest(f"{name!r} must be a JSON object")
    return value


async def _bad_request(request: Request, exc: Exception) -> Response:
    return JSONResponse({"message": str(exc)}, status_code=400)


# -- pages -------------------------------------------------------------------------------------


async def page(request: Request) -> Response:
    validity: int = request.app.state.demo_access_token_validity
    max_auth_age: int = request.app.state.demo_max_auth_age
    html = (
        _asset("index.html")
        .replace(b"{{ACCESS_TOKEN_VALIDITY}}", str(validity).encode())
        .replace(b"{{MAX_AUTH_AGE}}", str(max_auth_age).encode())
    )
    return Response(html, media_type="text/html; charset=utf-8", headers=_NO_STORE)


async def asset(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in _ASSETS:
        return JSONResponse({"message": "not found"}, status_code=404)
    return Response(_asset(name), media_type=_ASSETS[name], headers=_NO_STORE)


# -- the API -------------------------------------------------------------------------------------


def _name(body: dict[str, Any]) -> str:
    name = body.get("name")
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > MAX_NAME_LENGTH:
        raise _BadRequest(f"give a name of 1 to {MAX_NAME_LENGTH} characters")
    return name.strip()


async def sign_in(request: Request) -> Response:
    body = await _json_body(request)
    user_id = _name(body)
    remember = body.get("remember", True)
    if not isinstance(remember, bool):
        raise _BadRequest("'remember' must be true or false")
    session = await create_session(
        request,
        user_id,
        jwt_payload={"name": user_id, "role": "reader"},
        session_data={"note": "private: only the server sees session data"},
        persistent=remember,
    )
    return JSONResponse({"user_id": session.user_id, "handle": session.handle, "persistent": remember})


async def me(request: Request) -> Response:
    session = await get_session(request)
    return JSONResponse(
        {"user_id": session.user_id, "handle": session.handle, "jwt_payload": session.jwt_payload}
    )


async def update_payload(request: Request) -> Response:
    session = await get_session(request)
    payload = _object_field(await _json_body(request), "payload")
    await session.update_jwt_payload(payload)
    return JSONResponse({"jwt_payload": session.jwt_payload})


async def session_data(request: Request) -> Response:
    session = await get_session(request)
    if request.method == "PUT":
        await session.update_session_data(_object_field(await _json_body(request), "data"))
    return JSONResponse({"data": await session.get_session_data()})


async def list_sessions(request: Request) -> Response:
    """The "your devices" panel: every live session of the user, newest activity first."""
    session = await get_session(request)
    rows = [
        {
            "handle": info.handle,
            "device": describe_user_agent(info.user_agent),
            "user_agent": info.user_agent,
            "ip": info.ip,
            "last_active_at": info.last_active_at,
            "created_at": info.created_at,
            "expires_at": info.expires_at,
            "persistent": info.persistent,
            "current": info.handle == session.handle,
        }
        for info in await get_all_sessions_for_user(session.user_id)
    ]
    # "now" by the server's clock: the page shows "last active 2 min ago" against it.
    return JSONResponse({"now": int(time.time() * 1000), "sessions": rows})


async def revoke_one(request: Request) -> Response:
    session = await get_session(request)
    handle = request.path_params["handle"]
    if handle == session.handle:
        await session.revoke_session()  # also clears this browser's cookies
        return JSONResponse({"revoked": True, "current": True})
    try:
        owner = (await get_session_information(handle)).user_id
    except UnauthorizedError:
        owner = None
    if owner != session.user_id:
        return JSONResponse({"message": "no such session of yours"}, status_code=404)
    return JSONResponse({"revoked": await revoke_session(handle), "current": False})


async def sign_out(request: Request) -> Response:
    session = await get_session(request)
    await session.revoke_session()
    return JSONResponse({"signed_out": True})


async def sign_out_others(request: Request) -> Response:
    session = await get_session(request)
    revoked = await session.revoke_other_sessions()
    return JSONResponse({"revoked": len(revoked)})


async def sign_out_everywhere(request: Request) -> Response:
    session = await get_session(request)
    await session.revoke_session()
    others = await revoke_all_sessions_for_user(session.user_id)
    return JSONResponse({"revoked": 1 + len(others)})


# -- step-up: a protected action behind max_auth_age ----------------------------------------------


def recovery_codes(secret: bytes, user_id: str) -> list[str]:
    """The demo's stand-in for a sensitive page: :data:`RECOVERY_CODES` codes derived from
    ``user_id`` with this demo process's ``secret`` (stable while the demo runs)."""
    codes = []
    for index in range(RECOVERY_CODES):
        digest = hmac.new(secret, f"{index}:{user_id}".encode(), hashlib.sha256).digest()
        text = base64.b32encode(digest[:5]).decode().lower()
        codes.append(f"{text[:4]}-{text[4:]}")
    return codes


async def show_recovery_codes(request: Request) -> Response:
    max_auth_age: int = request.app.state.demo_max_auth_age
    # An old sign-in raises ReauthenticationRequiredError: the adapter answers it
    # 403 {"message": "re-authentication required"} (never a refresh).
    session = await get_session(request, max_auth_age=max_auth_age)
    return JSONResponse(
        {
            "codes": recovery_codes(request.app.state.demo_secret, session.user_id),
            "auth_time": session.auth_time,
            "max_auth_age": max_auth_age,
        }
    )


async def reauthenticate(request: Request) -> Response:
    session = await get_session(request)
    # The demo's "credential check": the name again. An application checks a password, a
    # passkey or a one-time code here.
    if not hmac.compare_digest(_name(await _json_body(request)).encode(), session.user_id.encode()):
        return JSONResponse({"message": "that is not the name this session signed in with"}, status_code=403)
    await session.mark_reauthenticated()
    return JSONResponse({"auth_time": session.auth_time})


# -- the theft simulation ---------------------------------------------------------------------------


def _stolen(request: Request) -> StolenTokens:
    stolen: StolenTokens = request.app.state.demo_stolen_tokens
    return stolen


async def steal(request: Request) -> Response:
    session = await get_session(request)
    refresh_token = parse_session_cookies(request.headers.get("cookie")).refresh_token
    if not isinstance(refresh_token, str):
        raise _BadRequest("no refresh cookie reached this route")
    return JSONResponse({"fingerprint": _stolen(request).steal(session.handle, refresh_token)})


async def replay(request: Request) -> Response:
    session = await get_session(request)
    stolen = _stolen(request)
    if not stolen.has(session.handle):
        raise _BadRequest("no copied refresh token for this session: steal one first")
    engine: AsyncSessionWard = request.app.state.sessionward
    verdict = await stolen.replay(engine, session.handle)
    print(
        f"sessionward demo: replayed a copied refresh token of session {session.handle}: {verdict.verdict}",
        flush=True,
    )
    return JSONResponse(
        {
            "verdict": verdict.verdict,
            "explanation": verdict.explanation,
            "session_revoked": verdict.session_revoked,
            "handle": session.handle,
        }
    )


def create_app(store: str, config: Config | None = None, *, max_auth_age: int = MAX_AUTH_AGE) -> Starlette:
    """The demo app on ``store`` (a store URL), configured by :func:`demo_config` unless
    ``config`` is given; its protected action needs a sign-in (or re-authentication) at most
    ``max_auth_age`` seconds old."""
    config = config or demo_config(store)
    steal_path = config.refresh_api_path.rstrip("/") + "/demo-steal"
    app = Starlette(
        routes=[
            Route("/", page, methods=["GET"]),
            Route("/assets/{name}", asset, methods=["GET"]),
            Route("/api/signin", sign_in, methods=["POST"]),
            Route("/api/me", me, methods=["GET"]),
            Route("/api/payload", update_payload, methods=["POST"]),
            Route("/api/data", session_data, methods=["GET", "PUT"]),
            Route("/api/sessions", list_sessions, methods=["GET"]),
            Route("/api/sessions/{handle}", revoke_one, methods=["DELETE"]),
            Route("/api/signout", sign_out, methods=["POST"]),
            Route("/api/signout-others", sign_out_others, methods=["POST"]),
            Route("/api/signout-everywhere", sign_out_everywhere, methods=["POST"]),
            Route("/api/recovery-codes", show_recovery_codes, methods=["GET"]),
            Route("/api/reauthenticate", reauthenticate, methods=["POST"]),
            Route(steal_path, steal, methods=["POST"]),
            Route("/api/demo-replay", replay, methods=["POST"]),
        ],
        exception_handlers={_BadRequest: _bad_request},
    )
    app.state.demo_stolen_tokens = StolenTokens()
    app.state.demo_access_token_validity = config.access_token_validity
    app.state.demo_max_auth_age = max_auth_age
    app.state.demo_secret = secrets.token_bytes(32)
    init(app, config)
    return app
