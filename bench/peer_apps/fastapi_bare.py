"""FastAPI with no session library: the reference every FastAPI ratio is taken against."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

app = FastAPI()


@app.get("/plain")
async def plain() -> dict[str, Any]:
    return {"ok": True, "user": None}
