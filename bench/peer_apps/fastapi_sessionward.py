"""FastAPI + sessionward: /protected (verify_session), /login (create), the refresh route."""

from __future__ import annotations

from typing import Any

import _env
import _sessionward_env
from fastapi import Depends, FastAPI, Request

from sessionward.fastapi import create_new_session, init, verify_session

fastapi_app = FastAPI()
init(fastapi_app, _sessionward_env.config())


@fastapi_app.get("/protected")
async def protected(session: Any = Depends(verify_session())) -> dict[str, Any]:  # noqa: B008
    return {"ok": True, "user": session.user_id}


@fastapi_app.post("/login")
async def login(request: Request) -> dict[str, Any]:
    await create_new_session(request, _env.USER_ID)
    return {"ok": True}


app = _sessionward_env.AsgiEcho(fastapi_app)
