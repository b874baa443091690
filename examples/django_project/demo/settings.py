"""Settings of the sessionward Django example.

Run it (from this directory, with Django installed: ``pip install sessionward[django]``)::

    python manage.py runserver 127.0.0.1:8000     # http://127.0.0.1:8000/

Sessions are kept in ``example-sessions.db``. No Django database, no django.contrib
sessions or auth: sessionward is the session layer here.
"""

from __future__ import annotations

import os

# Development only: a fixed key and DEBUG on. Never deploy these values.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "django-insecure-sessionward-example")
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "sessionward.django",  # checks SESSIONWARD at start-up
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Answers POST /session/refresh, maps session errors to JSON 401/503 answers and writes
    # the session cookies and headers on every response. (A CORS middleware, if you need
    # one, goes above it.) Django's CsrfViewMiddleware is left out: sessionward's cookies
    # are SameSite=Lax, and enable_anti_csrf adds the anti-csrf header check when needed.
    "sessionward.django.SessionWardMiddleware",
]

ROOT_URLCONF = "demo.urls"
WSGI_APPLICATION = "demo.wsgi.application"
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True

SESSIONWARD = {
    "store": "sqlite:///example-sessions.db",
    # Plain-http development only: browsers never send Secure cookies over http://, so the
    # cookies are not marked Secure here. Leave cookie_secure at its default (True) in
    # production, behind HTTPS.
    "cookie_secure": False,
    # Short-lived access tokens make the automatic refresh visible while you click around.
    "access_token_validity": 30,
    # A dotted path (or a callable) called with (session_handle, user_id).
    "on_token_theft_detected": "demo.views.on_token_theft_detected",
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"demo": {"handlers": ["console"], "level": "INFO"}},
}
