"""Django + supertokens-jwt-ref (the reference SuperTokens session library for Django, 2020).

It needs Django 4.2 (not 5), so it runs from its own virtualenv,
``bench/.venv-supertokens-ref``, which ``bench/peers.py`` creates. Its access tokens are
HMAC-SHA256 with a signing key kept in the database (no RS256); anti-CSRF is off, as in
sessionward's default. The refresh route needs ``sRefreshToken`` and ``sIdRefreshToken``.
"""

from __future__ import annotations

import _django_setup
import _env
import _refresh_echo

_django_setup.configure(
    __name__,
    db_name="supertokens-ref",
    INSTALLED_APPS=["supertokens_jwt_ref"],
    MIDDLEWARE=[],
    SUPER_TOKENS={
        "ANTI_CSRF_ENABLE": False,
        "COOKIE_SECURE": False,
        "COOKIE_DOMAIN": None,
        "REFRESH_TOKEN_PATH": "/session/refresh",
    },
)

from typing import Any  # noqa: E402

from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import HttpRequest, JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402
from django.views.decorators.csrf import csrf_exempt  # noqa: E402
from supertokens_jwt_ref import supertokens  # noqa: E402


def protected(request: HttpRequest) -> JsonResponse:
    response = JsonResponse({"ok": True})
    try:
        session = supertokens.get_session(request, response, True)
    except Exception:  # a missing cookie is a KeyError there, the rest its own exceptions
        return JsonResponse({"message": "unauthorised"}, status=401)
    response.content = JsonResponse({"ok": True, "user": session.get_user_id()}).content
    return response


@csrf_exempt
def login(request: HttpRequest) -> JsonResponse:
    response = JsonResponse({"ok": True})
    supertokens.create_new_session(response, _env.USER_ID)
    return response


@csrf_exempt
def refresh(request: Any) -> JsonResponse:
    response = JsonResponse({})
    try:
        supertokens.refresh_session(request, response)
    except Exception:
        return JsonResponse({"message": "unauthorised"}, status=401)
    return response


urlpatterns = [path("protected", protected), path("login", login), path("session/refresh", refresh)]
app = _refresh_echo.wsgi_echo(get_wsgi_application(), names=("sRefreshToken", "sIdRefreshToken"))
