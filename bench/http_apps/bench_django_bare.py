"""Bare Django benchmark app: the endpoints of ``bench_django`` without sessionward (no
sessionward import, no middleware), the reference the sessionward app is measured against."""

from __future__ import annotations

import os

import django
import floor
from django.conf import settings

settings.configure(
    DEBUG=False,
    ALLOWED_HOSTS=["*"],
    SECRET_KEY="bench-only-not-secret",
    ROOT_URLCONF=__name__,
    INSTALLED_APPS=[],
    MIDDLEWARE=[],
)
django.setup()

from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import HttpRequest, JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402

KEY = floor.load_public_key(os.environ["BENCH_FLOOR_PUBLIC_KEY"].encode())


def plain(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True, "user": None})


def floor_view(request: HttpRequest) -> JsonResponse:
    token = floor.cookie_value(request.headers.get("Cookie", "")) or ""
    return JsonResponse({"ok": True, "user": floor.verify(token, KEY)["sub"]})


def protected(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True, "user": "user-0"})


urlpatterns = [path("plain", plain), path("floor", floor_view), path("protected", protected)]
application = get_wsgi_application()
