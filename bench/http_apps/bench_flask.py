"""Flask benchmark app: /plain, /floor (bare crypto), /protected (verify_session)."""

from __future__ import annotations

from typing import Any

import common
import floor
from flask import Flask, jsonify, request

from sessionward.flask import current_session, init, verify_session

app = Flask(__name__)
init(app, common.config())
KEY = common.floor_key()


@app.get("/plain")
def plain() -> Any:
    return jsonify(ok=True, user=None)


@app.get("/floor")
def floor_endpoint() -> Any:
    token = floor.cookie_value(request.headers.get("Cookie", "")) or ""
    return jsonify(ok=True, user=floor.verify(token, KEY)["sub"])


@app.get("/protected")
@verify_session()
def protected() -> Any:
    return jsonify(ok=True, user=current_session.user_id)
