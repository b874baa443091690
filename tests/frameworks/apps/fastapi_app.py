"""The protocol-suite app on FastAPI (``create_app``) and on plain Starlette
(``create_starlette_app``): the same routes, the same answers."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Body, Depends, FastAPI, Request, Response
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from frameworks.apps.metadata import MAX_AUTH_AGE, describe_sessions, login_options
from sessionward import Config, GeneralError, StorageUnavailableError
from sessionward.fastapi import (
    AsyncSession,
    create_new_session,
    get_all_sessions_for_user,
    get_session,
    init,
    preflight,
    revoke_all_sessions_for_user,
    revoke_other_sessions,
    verify_session,
)

RequiredSession = Annotated[AsyncSession, Depends(verify_session())]
OptionalSession = Annotated[AsyncSession | None, Depends(verify_session(session_required=False))]
JSONBody = Annotated[dict[str, Any], Body()]


def create_app(config: Config, store: str | None = None, **init_options: Any) -> FastAPI:
    """The protocol-suite routes on FastAPI; ``init_options`` go to ``init`` (hooks)."""
    app = FastAPI()
    init(app, config, store=store, **init_options)

    @app.post("/login")
    async def login(request: Request) -> dict[str, Any]:
        body = await request.json()
        session = await create_new_session(
            request, body["user_id"], body.get("payload"), body.get("data"), **login_options(body)
        )
        return {"handle": session.handle}

    @app.get("/sensitive")
    async def sensitive(
        session: Annotated[AsyncSession, Depends(verify_session(max_auth_age=MAX_AUTH_AGE))],
    ) -> dict[str, Any]:
        return {"user_id": session.user_id, "auth_time": session.auth_time}

    @app.post("/reauthenticate")
    async def reauthenticate(session: RequiredSession) -> dict[str, Any]:
        before = session.auth_time
        await session.mark_reauthenticated()
        return {"before": before, "auth_time": session.auth_time}

    @app.get("/checked")
    async def checked(
        session: Annotated[AsyncSession, Depends(verify_session(check_database=True))],
    ) -> dict[str, Any]:
        return {"user_id": session.user_id}

    @app.get("/devices")
    async def devices(session: RequiredSession) -> dict[str, Any]:
        return {"sessions": describe_sessions(await get_all_sessions_for_user(session.user_id))}

    @app.post("/logout-others")
    async def logout_others(session: RequiredSession) -> dict[str, Any]:
        return {"revoked": await session.revoke_other_sessions()}

    @app.post("/logout-others-by-handle")
    async def logout_others_by_handle(session: RequiredSession) -> dict[str, Any]:
        return {"revoked": await revoke_other_sessions(session.user_id, session.handle)}

    @app.get("/protected")
    @app.post("/protected")
    async def protected(session: RequiredSession) -> dict[str, Any]:
        return {"user_id": session.user_id, "handle": session.handle, "payload": session.jwt_payload}

    @app.options("/protected")
    async def protected_preflight() -> Response:
        return preflight(Response(status_code=204))

    @app.get("/optional")
    async def optional(
        session: OptionalSession,
    ) -> dict[str, Any]:
        return {"user_id": None if session is None else session.user_id}

    @app.post("/update-payload")
    async def update_payload(payload: JSONBody, session: RequiredSession) -> Any:
        try:
            await session.update_jwt_payload(payload)
        except StorageUnavailableError:
            raise
        except GeneralError:
            return JSONResponse({"message": "payload too large"}, status_code=400)
        return {"payload": session.jwt_payload}

    @app.post("/login-then-logout")
    async def login_then_logout(request: Request, response: Response) -> dict[str, Any]:
        # The injected response receives the new session's headers at once; the revocation
        # must still win on the response finally sent.
        session = await create_new_session(request, "carol", {"v": 1}, response=response)
        await session.revoke_session()
        return {}

    @app.post("/relogin-then-revoke-old")
    async def relogin_then_revoke_old(old: RequiredSession, response: Response) -> dict[str, Any]:
        await create_new_session(response, "dave", {"v": 3})
        await old.revoke_session()
        return {}

    @app.post("/update-then-logout")
    async def update_then_logout(session: RequiredSession) -> dict[str, Any]:
        await session.update_jwt_payload({"v": 2})
        await session.revoke_session()
        return {}

    @app.get("/data")
    async def read_data(session: RequiredSession) -> dict[str, Any]:
        return await session.get_session_data()

    @app.post("/data")
    async def write_data(data: JSONBody, session: RequiredSession) -> dict[str, Any]:
        await session.update_session_data(data)
        return {}

    @app.post("/logout")
    async def logout(session: RequiredSession) -> dict[str, Any]:
        await session.revoke_session()
        return {}

    @app.post("/logout-all")
    async def logout_all(session: RequiredSession) -> dict[str, Any]:
        return {"revoked": await revoke_all_sessions_for_user(session.user_id)}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def create_starlette_app(config: Config, store: str | None = None, **init_options: Any) -> Starlette:
    """The same routes on plain Starlette (no dependency injection: ``get_session``)."""

    async def login(request: Request) -> Response:
        body = await request.json()
        session = await create_new_session(
            request, body["user_id"], body.get("payload"), body.get("data"), **login_options(body)
        )
        return JSONResponse({"handle": session.handle})

    async def sensitive(request: Request) -> Response:
        session = await get_session(request, max_auth_age=MAX_AUTH_AGE)
        return JSONResponse({"user_id": session.user_id, "auth_time": session.auth_time})

    async def reauthenticate(request: Request) -> Response:
        session = await get_session(request)
        before = session.auth_time
        await session.mark_reauthenticated()
        return JSONResponse({"before": before, "auth_time": session.auth_time})

    async def checked(request: Request) -> Response:
        session = await get_session(request, check_database=True)
        return JSONResponse({"user_id": session.user_id})

    async def devices(request: Request) -> Response:
        session = await get_session(request)
        return JSONResponse({"sessions": describe_sessions(await get_all_sessions_for_user(session.user_id))})

    async def logout_others(request: Request) -> Response:
        session = await get_session(request)
        return JSONResponse({"revoked": await session.revoke_other_sessions()})

    async def logout_others_by_handle(request: Request) -> Response:
        session = await get_session(request)
        return JSONResponse({"revoked": await revoke_other_sessions(session.user_id, session.handle)})

    async def protected(request: Request) -> Response:
        if request.method == "OPTIONS":
            return preflight(Response(status_code=204))
        session = await get_session(request)
        return JSONResponse(
            {"user_id": session.user_id, "handle": session.handle, "payload": session.jwt_payload}
        )

    async def optional(request: Request) -> Response:
        session = await verify_session(session_required=False)(request)
        return JSONResponse({"user_id": None if session is None else session.user_id})

    async def update_payload(request: Request) -> Response:
        session = await get_session(request)
        try:
            await session.update_jwt_payload(await request.json())
        except StorageUnavailableError:
            raise
        except GeneralError:
            return JSONResponse({"message": "payload too large"}, status_code=400)
        return JSONResponse({"payload": session.jwt_payload})

    async def login_then_logout(request: Request) -> Response:
        response = JSONResponse({})
        session = await create_new_session(request, "carol", {"v": 1}, response=response)
        await session.revoke_session()
        return response

    async def relogin_then_revoke_old(request: Request) -> Response:
        old = await get_session(request)
        response = JSONResponse({})
        await create_new_session(response, "dave", {"v": 3})
        await old.revoke_session()
        return response

    async def update_then_logout(request: Request) -> Response:
        session = await get_session(request)
        await session.update_jwt_payload({"v": 2})
        await session.revoke_session()
        return JSONResponse({})

    async def data(request: Request) -> Response:
        session = await get_session(request)
        if request.method == "GET":
            return JSONResponse(await session.get_session_data())
        await session.update_session_data(await request.json())
        return JSONResponse({})

    async def logout(request: Request) -> Response:
        session = await get_session(request)
        await session.revoke_session()
        return JSONResponse({})

    async def logout_all(request: Request) -> Response:
        session = await get_session(request)
        return JSONResponse({"revoked": await revoke_all_sessions_for_user(session.user_id)})

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    app = Starlette(
        routes=[
            Route("/login", login, methods=["POST"]),
            Route("/protected", protected, methods=["GET", "POST", "OPTIONS"]),
            Route("/optional", optional, methods=["GET"]),
            Route("/update-payload", update_payload, methods=["POST"]),
            Route("/login-then-logout", login_then_logout, methods=["POST"]),
            Route("/relogin-then-revoke-old", relogin_then_revoke_old, methods=["POST"]),
            Route("/update-then-logout", update_then_logout, methods=["POST"]),
            Route("/data", data, methods=["GET", "POST"]),
            Route("/logout", logout, methods=["POST"]),
            Route("/logout-all", logout_all, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
            Route("/sensitive", sensitive, methods=["GET"]),
            Route("/reauthenticate", reauthenticate, methods=["POST"]),
            Route("/checked", checked, methods=["GET"]),
            Route("/devices", devices, methods=["GET"]),
            Route("/logout-others", logout_others, methods=["POST"]),
            Route("/logout-others-by-handle", logout_others_by_handle, methods=["POST"]),
        ]
    )
    init(app, config, store=store, **init_options)
    return app
