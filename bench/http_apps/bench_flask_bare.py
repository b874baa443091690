"""Bare Flask benchmark app: the endpoints of ``bench_flask`` without sessionward (no
sessionward import), the reference the sessionward app is measured against."""

from __future__ import annotations

import os
from typing import Any

import floor
from flask import Flask, jsonify, request

app = Flask(__name__)
KEY = floor.load_public_key(os.environ["BENCH_FLOOR_PUBLIC_KEY"].encode())


@app.get("/plain")
def plain() -> Any:
    return jsonify(ok=True, user=None)


@app.get("/floor")
def floor_endpoint() -> Any:
    token = floor.cookie_value(request.headers.get("Cookie", "")) or ""
    return jsonify(ok=True, user=floor.verify(token, KEY)["sub"])


@app.get("/protected")
def protected() -> Any:
    return jsonify(ok=True, user="user-0")
