"""``sessionward.testing``: log test clients in and expire access tokens, per framework."""

from __future__ import annotations

from pathlib import Path

from sessionward import Config
from sessionward.testing import (
    expire_access_token,
    login_django_client,
    login_flask_client,
    login_starlette_client,
)


def config(tmp_path: Path) -> Config:
    return Config(store=f"sqlite:///{tmp_path}/t.db", cookie_secure=False, access_token_algorithm="HS256")


def test_flask_client_login_and_expiry(tmp_path: Path) -> None:
    from frameworks.apps import flask_app

    app = flask_app.create_app(config(tmp_path))
    try:
        client = app.test_client()
        tokens = login_flask_client(client, "alice", {"role": "admin"})
        response = client.get("/protected")
        assert response.status_code == 200
        assert response.get_json()["handle"] == tokens.handle
        expire_access_token(client)
        expired = client.get("/protected")
        assert (expired.status_code, expired.get_json()) == (401, {"message": "try refresh token"})
        assert client.post("/session/refresh").status_code == 200
        assert client.get("/protected").status_code == 200
    finally:
        app.extensions["sessionward"].engine.close()


def test_starlette_client_login_and_expiry(tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    from frameworks.apps import fastapi_app

    with TestClient(fastapi_app.create_app(config(tmp_path))) as client:
        tokens = login_starlette_client(client, "bob", {"n": 1})
        response = client.get("/protected")
        assert response.status_code == 200
        assert response.json()["handle"] == tokens.handle
        expire_access_token(client)
        expired = client.get("/protected")
        assert (expired.status_code, expired.json()) == (401, {"message": "try refresh token"})
        assert client.post("/session/refresh").status_code == 200
        assert client.get("/protected").status_code == 200


def test_django_client_login_and_expiry(tmp_path: Path) -> None:
    from django.test import Client  # type: ignore[import-untyped]

    from frameworks.apps import django_app

    with django_app.configured(config(tmp_path)):
        client = Client()
        tokens = login_django_client(client, "carol")
        response = client.get("/protected")
        assert response.status_code == 200
        assert response.json()["handle"] == tokens.handle
        expire_access_token(client)
        expired = client.get("/protected")
        assert (expired.status_code, expired.json()) == (401, {"message": "try refresh token"})
        assert client.post("/session/refresh").status_code == 200
        assert client.get("/protected").status_code == 200
