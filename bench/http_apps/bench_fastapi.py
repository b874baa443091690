"""FastAPI benchmark app: /plain, /floor (bare crypto), /protected (verify_session), and
/noop-depends (a dependency doing nothing: what FastAPI charges for any ``Depends``)."""

from __future__ import annotations

from typing import Any

import common
import floor
from fastapi import Depends, FastAPI, Request

from sessionward.fastapi import get_session, init, verify_session

app = FastAPI()
init(app, common.config())
KEY = common.floor_key()


@app.get("/plain")
async def plain() -> dict[str, Any]:
    return {"ok": True, "user": None}


@app.get("/floor")
async def floor_endpoint(request: Request) -> dict[str, Any]:
    token = floor.cookie_value(request.headers.get("cookie", "")) or ""
    return {"ok": True, "user": floor.verify(token, KEY)["sub"]}


@app.get("/protected")
async def protected(session: Any = Depends(verify_session())) -> dict[str, Any]:  # noqa: B008
    return {"ok": True, "user": session.user_id}


@app.get("/protected-direct")
async def protected_direct(request: Request) -> dict[str, Any]:
    session = await get_session(request)
    return {"ok": True, "user": session.user_id}


async def noop_dependency(request: Request) -> None:
    return None


@app.get("/noop-depends")
async def noop_depends(nothing: None = Depends(noop_dependency)) -> dict[str, Any]:
    return {"ok": True, "user": None}
