"""Flask + flask-jwt-extended, configured as its docs show (tokens in headers)."""

from __future__ import annotations

from typing import Any

import _env
from flask import Flask, jsonify
from flask_jwt_extended import (
    JWTManager,
    create_access_token,
    create_refresh_token,
    get_jwt_identity,
    jwt_required,
)

app = Flask(__name__)
app.config["JWT_ALGORITHM"] = _env.ALG
if _env.ALG == "RS256":
    app.config["JWT_PRIVATE_KEY"] = _env.signing_key()
    app.config["JWT_PUBLIC_KEY"] = _env.verifying_key()
else:
    app.config["JWT_SECRET_KEY"] = _env.HS_SECRET
JWTManager(app)


@app.get("/protected")
@jwt_required()
def protected() -> Any:
    return jsonify(ok=True, user=get_jwt_identity())


@app.post("/login")
def login() -> Any:
    return jsonify(
        access=create_access_token(identity=_env.USER_ID), refresh=create_refresh_token(identity=_env.USER_ID)
    )


@app.post("/refresh")
@jwt_required(refresh=True)
def refresh() -> Any:
    """The docs' refresh route: a new access token; the refresh token is not rotated."""
    return jsonify(access=create_access_token(identity=get_jwt_identity()))
