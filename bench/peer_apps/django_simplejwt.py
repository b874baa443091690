"""Django REST framework + djangorestframework-simplejwt, with rotation and the blacklist app.

As its docs show: ``JWTAuthentication`` (it loads the user from the database on every
request), ``TokenRefreshView`` with ``ROTATE_REFRESH_TOKENS`` and
``BLACKLIST_AFTER_ROTATION`` (the used refresh token is blacklisted, a reused one refused).
RS256 takes the keys as PEM strings, as its docs show. The login view issues a pair for a
fixed user without a password check.
"""

from __future__ import annotations

import datetime

import _django_setup
import _env

_django_setup.configure(
    __name__,
    db_name="simplejwt",
    INSTALLED_APPS=[
        "django.contrib.contenttypes",
        "django.contrib.auth",
        "rest_framework",
        "rest_framework_simplejwt.token_blacklist",
    ],
    MIDDLEWARE=[],
    REST_FRAMEWORK={
        "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework_simplejwt.authentication.JWTAuthentication"],
        "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    },
    SIMPLE_JWT={
        "ACCESS_TOKEN_LIFETIME": datetime.timedelta(hours=1),
        "ROTATE_REFRESH_TOKENS": True,
        "BLACKLIST_AFTER_ROTATION": True,
        "UPDATE_LAST_LOGIN": False,
        "ALGORITHM": _env.ALG,
        "SIGNING_KEY": _env.signing_key(),
        "VERIFYING_KEY": _env.verifying_key() if _env.ALG == "RS256" else "",
    },
)

from typing import Any  # noqa: E402

from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.urls import path  # noqa: E402
from rest_framework.permissions import AllowAny  # noqa: E402
from rest_framework.response import Response  # noqa: E402
from rest_framework.views import APIView  # noqa: E402
from rest_framework_simplejwt.tokens import RefreshToken  # noqa: E402
from rest_framework_simplejwt.views import TokenRefreshView  # noqa: E402

USER = _django_setup.fixed_user()


class Protected(APIView):
    def get(self, request: Any) -> Response:
        return Response({"ok": True, "user": request.user.username})


class Login(APIView):
    authentication_classes = ()
    permission_classes = (AllowAny,)

    def post(self, request: Any) -> Response:
        refresh = RefreshToken.for_user(USER)
        return Response({"refresh": str(refresh), "access": str(refresh.access_token)})


urlpatterns = [
    path("protected", Protected.as_view()),
    path("login", Login.as_view()),
    path("api/token/refresh/", TokenRefreshView.as_view()),
]
app = get_wsgi_application()
