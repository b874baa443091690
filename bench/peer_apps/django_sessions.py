"""Django's own sessions: ``django.contrib.sessions`` with the database backend (SQLite) and
``django.contrib.auth``'s ``login()``; the protected view answers 401 (an API, not a redirect)
unless ``request.user`` is authenticated (one session read and one user read per request)."""

from __future__ import annotations

import _django_setup

_django_setup.configure(
    __name__,
    db_name="django-sessions",
    INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "django.contrib.sessions"],
    MIDDLEWARE=[
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
    ],
    SESSION_ENGINE="django.contrib.sessions.backends.db",
)

from django.contrib.auth import login as django_login  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import HttpRequest, JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402
from django.views.decorators.csrf import csrf_exempt  # noqa: E402

USER = _django_setup.fixed_user()


def protected(request: HttpRequest) -> JsonResponse:
    if not request.user.is_authenticated:
        return JsonResponse({"message": "not logged in"}, status=401)
    return JsonResponse({"ok": True, "user": request.user.get_username()})


@csrf_exempt
def login(request: HttpRequest) -> JsonResponse:
    django_login(request, USER, backend="django.contrib.auth.backends.ModelBackend")
    return JsonResponse({"ok": True})


urlpatterns = [path("protected", protected), path("login", login)]
app = get_wsgi_application()
