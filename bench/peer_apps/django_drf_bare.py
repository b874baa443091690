"""Django REST framework's own unprotected APIView: what DRF costs before any authentication."""

from __future__ import annotations

import _django_setup

_django_setup.configure(
    __name__,
    INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "rest_framework"],
    MIDDLEWARE=[],
    REST_FRAMEWORK={
        "DEFAULT_AUTHENTICATION_CLASSES": [],
        "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
        "UNAUTHENTICATED_USER": None,
    },
)

from typing import Any  # noqa: E402

from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.urls import path  # noqa: E402
from rest_framework.response import Response  # noqa: E402
from rest_framework.views import APIView  # noqa: E402


class Plain(APIView):
    def get(self, request: Any) -> Response:
        return Response({"ok": True, "user": None})


urlpatterns = [path("plain", Plain.as_view())]
app = get_wsgi_application()
