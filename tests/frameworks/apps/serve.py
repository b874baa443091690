"""Entry points for the real-server tests: each framework's test app, configured from the
``SESSIONWARD_*`` environment (``Config.from_env``)."""

from __future__ import annotations

from typing import Any

from sessionward import Config


def flask_app() -> Any:
    from frameworks.apps import flask_app as module

    return module.create_app(Config.from_env())


def fastapi_app() -> Any:
    from frameworks.apps import fastapi_app as module

    return module.create_app(Config.from_env())


def django_app() -> Any:
    from frameworks.apps import django_app as module

    return module.wsgi_application(Config.from_env())
