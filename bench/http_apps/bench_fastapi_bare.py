"""Bare FastAPI benchmark app: the endpoints of ``bench_fastapi`` without sessionward.

No sessionward import at all (not even its config): the reference that the sessionward app
is measured against. ``/protected`` and ``/protected-direct`` answer what their sessionward
counterparts answer, without verifying anything; ``/floor`` verifies the cookie's access
token with bare primitives, as in the sessionward app.
"""

from __future__ import annotations

import os
from typing import Any

import floor
from fastapi import Depends, FastAPI, Request

app = FastAPI()
KEY = floor.load_public_key(os.environ["BENCH_FLOOR_PUBLIC_KEY"].encode())
USER = "user-0"


@app.get("/plain")
async def plain() -> dict[str, Any]:
    return {"ok": True, "user": None}


@app.get("/floor")
async def floor_endpoint(request: Request) -> dict[str, Any]:
    token = floor.cookie_value(request.headers.get("cookie", "")) or ""
    return {"ok": True, "user": floor.verify(token, KEY)["sub"]}


@app.get("/protected")
async def protected() -> dict[str, Any]:
    return {"ok": True, "user": USER}


@app.get("/protected-direct")
async def protected_direct(request: Request) -> dict[str, Any]:
    return {"ok": True, "user": USER}


async def noop_dependency(request: Request) -> None:
    return None


@app.get("/noop-depends")
async def noop_depends(nothing: None = Depends(noop_dependency)) -> dict[str, Any]:
    return {"ok": True, "user": None}
