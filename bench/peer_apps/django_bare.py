"""Django with no session library (no middleware, no apps): the reference of every Django ratio."""

from __future__ import annotations

import _django_setup

_django_setup.configure(__name__, INSTALLED_APPS=[], MIDDLEWARE=[])

from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import HttpRequest, JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402


def plain(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True, "user": None})


urlpatterns = [path("plain", plain)]
app = get_wsgi_application()
