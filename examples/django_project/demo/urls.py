"""Routes of the example. The refresh route (POST /session/refresh) needs no entry here:
SessionWardMiddleware answers it."""

from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("", views.index),
    path("api/login", views.login),
    path("api/me", views.me),
    path("api/whoami", views.whoami),
    path("api/promote", views.promote),
    path("api/logout", views.logout),
    path("api/logout-everywhere", views.logout_everywhere),
]
