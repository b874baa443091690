"""``INSTALLED_APPS += ["sessionward.django"]``."""

from __future__ import annotations

from django.apps import AppConfig  # type: ignore[import-untyped]

from .settings import load_options


class SessionWardConfig(AppConfig):  # type: ignore[misc]
    """Checks ``settings.SESSIONWARD`` at start-up (``ConfigError`` naming the option).

    The engine itself (and its store connection) is opened lazily, on first use.
    """

    name = "sessionward.django"
    label = "sessionward"
    verbose_name = "sessionward"

    def ready(self) -> None:
        load_options()
