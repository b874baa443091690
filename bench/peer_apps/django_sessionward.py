"""Django + sessionward: /protected (verify_session), /login (create), the refresh route
(answered by the middleware)."""

from __future__ import annotations

import dataclasses

import _django_setup
import _env
import _sessionward_env

_django_setup.configure(
    __name__,
    INSTALLED_APPS=["sessionward.django"],
    MIDDLEWARE=["sessionward.django.SessionWardMiddleware"],
    SESSIONWARD=dataclasses.asdict(_sessionward_env.config()),
)

from typing import Any  # noqa: E402

from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import HttpRequest, JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402
from django.views.decorators.csrf import csrf_exempt  # noqa: E402

from sessionward.django import create_new_session, verify_session  # noqa: E402


@verify_session()
def protected(request: Any) -> JsonResponse:
    return JsonResponse({"ok": True, "user": request.sessionward.user_id})


@csrf_exempt
def login(request: HttpRequest) -> JsonResponse:
    response = JsonResponse({"ok": True})
    create_new_session(response, _env.USER_ID)
    return response


urlpatterns = [path("protected", protected), path("login", login)]
app = _sessionward_env.wsgi_echo(get_wsgi_application())
