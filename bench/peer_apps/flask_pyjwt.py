"""Flask + PyJWT by hand: a decorator decoding ``Authorization: Bearer`` (or a cookie).

``app`` passes the keys as PyJWT's docs show (a PEM string for RS256: PyJWT parses it again
on every call); ``make_app`` also serves ``flask_pyjwt_loaded``, the same with key objects
loaded once.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

import _env
import jwt
from flask import Flask, g, jsonify, request


def make_app(signing_key: Any, verifying_key: Any) -> Flask:
    """The app signing and verifying with the keys given (strings or key objects)."""
    app = Flask(__name__)

    def token_required(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            header = request.headers.get("Authorization", "")
            token = header[7:] if header.startswith("Bearer ") else request.cookies.get("access_token")
            if not token:
                return jsonify(message="missing token"), 401
            try:
                g.claims = jwt.decode(token, verifying_key, algorithms=[_env.ALG])
            except jwt.InvalidTokenError:
                return jsonify(message="invalid token"), 401
            return view(*args, **kwargs)

        return wrapper

    @app.get("/protected")
    @token_required
    def protected() -> Any:
        return jsonify(ok=True, user=g.claims["sub"])

    @app.post("/login")
    def login() -> Any:
        now = int(time.time())
        claims = {"sub": _env.USER_ID, "iat": now, "exp": now + 3600}
        return jsonify(access=jwt.encode(claims, signing_key, algorithm=_env.ALG))

    return app


app = make_app(_env.signing_key(), _env.verifying_key())
