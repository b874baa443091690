"""FastAPI + Starlette's SessionMiddleware (a signed cookie holding the session dict)."""

from __future__ import annotations

from typing import Any

import _env
from fastapi import FastAPI, HTTPException, Request
from starlette.middleware.sessions import SessionMiddleware

app = FastAPI()
app.add_middleware(SessionMiddleware, secret_key=_env.HS_SECRET)


@app.get("/protected")
async def protected(request: Request) -> dict[str, Any]:
    user = request.session.get("user")
    if user is None:
        raise HTTPException(status_code=401, detail="not logged in")
    return {"ok": True, "user": user}


@app.post("/login")
async def login(request: Request) -> dict[str, Any]:
    request.session["user"] = _env.USER_ID
    return {"ok": True}
