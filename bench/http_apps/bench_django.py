"""Django benchmark app (WSGI): /plain, /floor (bare crypto), /protected (verify_session)."""

from __future__ import annotations

import dataclasses
from typing import Any

import common
import django
import floor
from django.conf import settings

settings.configure(
    DEBUG=False,
    ALLOWED_HOSTS=["*"],
    SECRET_KEY="bench-only-not-secret",
    ROOT_URLCONF=__name__,
    INSTALLED_APPS=["sessionward.django"],
    MIDDLEWARE=["sessionward.django.SessionWardMiddleware"],
    SESSIONWARD=dataclasses.asdict(common.config()),
)
django.setup()

from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import HttpRequest, JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402

from sessionward.django import verify_session  # noqa: E402

KEY = common.floor_key()


def plain(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True, "user": None})


def floor_view(request: HttpRequest) -> JsonResponse:
    token = floor.cookie_value(request.headers.get("Cookie", "")) or ""
    return JsonResponse({"ok": True, "user": floor.verify(token, KEY)["sub"]})


@verify_session()
def protected(request: Any) -> JsonResponse:
    return JsonResponse({"ok": True, "user": request.sessionward.user_id})


urlpatterns = [path("plain", plain), path("floor", floor_view), path("protected", protected)]
application = get_wsgi_application()
