"""The Django app the shared protocol suite drives: this module is the URLconf.

Django settings are process-wide, so the app is configured once per process
(:func:`ensure_configured`: ``ROOT_URLCONF`` is this module, ``INSTALLED_APPS`` and
``MIDDLEWARE`` hold sessionward's app and middleware) and each test picks its
``sessionward.Config`` with :func:`configured`, an ``override_settings`` of ``SESSIONWARD``
(leaving it closes that config's engine). Real servers use :func:`wsgi_application`.

Routes (the adapter contract): POST /login, GET|POST|OPTIONS /protected, GET /optional,
POST /update-payload, POST /login-then-logout, POST /relogin-then-revoke-old,
POST /update-then-logout, GET|POST /data, POST /logout, POST /logout-all, GET /health; the
refresh route is answered by the middleware. Extra, Django-specific routes under
/django/... serve ``test_django_adapter.py``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import django  # type: ignore[import-untyped]
from asgiref.sync import sync_to_async
from django.conf import settings  # type: ignore[import-untyped]
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse  # type: ignore[import-untyped]
from django.test import override_settings  # type: ignore[import-untyped]
from django.urls import path  # type: ignore[import-untyped]

from frameworks.apps.metadata import MAX_AUTH_AGE, describe_sessions, login_options
from sessionward import Config, GeneralError, StorageUnavailableError
from sessionward.django import (
    create_new_session,
    get_all_sessions_for_user,
    get_session,
    preflight,
    revoke_all_sessions_for_user,
    revoke_other_sessions,
    verify_session,
)
from sessionward.session import ErrorHandler

BASE_SETTINGS: dict[str, Any] = {
    "DEBUG": False,
    "SECRET_KEY": "sessionward-tests-only",
    "ALLOWED_HOSTS": ["*"],
    "ROOT_URLCONF": __name__,
    "INSTALLED_APPS": ["sessionward.django"],
    "MIDDLEWARE": ["sessionward.django.SessionWardMiddleware"],
    "USE_TZ": True,
    "DATABASES": {},
    # Never used by a test: every test overrides SESSIONWARD through configured().
    "SESSIONWARD": {"store": "sqlite:///:memory:", "cookie_secure": False},
}


def ensure_configured(sessionward: dict[str, Any] | None = None) -> None:
    """Configure Django for this process (once) with this module as the URLconf."""
    if not settings.configured:
        options = dict(BASE_SETTINGS)
        if sessionward is not None:
            options["SESSIONWARD"] = sessionward
        settings.configure(**options)
        django.setup()


def sessionward_settings(config: Config, store: str | None = None, **hooks: Any) -> dict[str, Any]:
    """The ``SESSIONWARD`` settings dict for ``config`` (plus hooks, callables or paths)."""
    options = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    if store is not None:
        options["store"] = store
    options.update({name: value for name, value in hooks.items() if value is not None})
    return options


@dataclass
class TestApp:
    """What :func:`configured` yields: the thefts the hook saw, as ``(handle, user_id)``."""

    __test__ = False
    thefts: list[tuple[str, str]] = field(default_factory=list)


@contextmanager
def configured(
    config: Config,
    store: str | None = None,
    *,
    on_token_theft_detected: Callable[[str, str], Any] | None = None,
    error_handler: ErrorHandler | None = None,
) -> Iterator[TestApp]:
    """Serve this module's routes with ``config`` while the block runs."""
    ensure_configured()
    app = TestApp()

    def record(handle: str, user_id: str) -> None:
        app.thefts.append((handle, user_id))
        if on_token_theft_detected is not None:
            on_token_theft_detected(handle, user_id)

    options = sessionward_settings(config, store, on_token_theft_detected=record, error_handler=error_handler)
    with override_settings(SESSIONWARD=options):
        yield app


def wsgi_application(config: Config) -> Any:
    """A WSGI app serving these routes with ``config`` (for a real server process)."""
    ensure_configured(sessionward_settings(config))
    from django.core.wsgi import get_wsgi_application  # type: ignore[import-untyped]

    return get_wsgi_application()


# -- views -------------------------------------------------------------------------------------


def _body(request: HttpRequest) -> Any:
    return json.loads(request.body or b"null")


def login(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    body = _body(request)
    response = HttpResponse(content_type="application/json")
    session = create_new_session(
        response, body["user_id"], body.get("payload"), body.get("data"), **login_options(body)
    )
    response.content = json.dumps({"handle": session.handle}).encode()
    return response


@verify_session(max_auth_age=MAX_AUTH_AGE)
def sensitive(request: HttpRequest) -> HttpResponse:
    session = request.sessionward
    return JsonResponse({"user_id": session.user_id, "auth_time": session.auth_time})


@verify_session()
def reauthenticate(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    session = request.sessionward
    before = session.auth_time
    session.mark_reauthenticated()
    return JsonResponse({"before": before, "auth_time": session.auth_time})


@verify_session(check_database=True)
def checked(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"user_id": request.sessionward.user_id})


@verify_session()
def devices(request: HttpRequest) -> HttpResponse:
    return JsonResponse(
        {"sessions": describe_sessions(get_all_sessions_for_user(request.sessionward.user_id))}
    )


@verify_session()
def logout_others(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    return JsonResponse({"revoked": request.sessionward.revoke_other_sessions()})


@verify_session()
def logout_others_by_handle(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    session = request.sessionward
    return JsonResponse({"revoked": revoke_other_sessions(session.user_id, session.handle)})


def _describe(session: Any) -> dict[str, Any]:
    return {"user_id": session.user_id, "handle": session.handle, "payload": session.jwt_payload}


@verify_session()
def _protected(request: HttpRequest) -> HttpResponse:
    session = request.sessionward
    return JsonResponse(_describe(session))


def protected(request: HttpRequest) -> HttpResponse:
    if request.method == "OPTIONS":
        return preflight(HttpResponse(status=204))
    if request.method not in ("GET", "POST"):
        return HttpResponseNotAllowed(["GET", "POST", "OPTIONS"])
    return _protected(request)


@verify_session(session_required=False)
def optional(request: HttpRequest) -> HttpResponse:
    session = request.sessionward
    return JsonResponse({"user_id": session.user_id if session is not None else None})


@verify_session()
def update_payload(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    session = request.sessionward
    try:
        session.update_jwt_payload(_body(request))
    except StorageUnavailableError:
        raise
    except GeneralError:
        return JsonResponse({"message": "payload too large"}, status=400)
    return JsonResponse({"payload": session.jwt_payload})


def login_then_logout(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    response = JsonResponse({})
    create_new_session(response, "carol", {"v": 1}).revoke_session()
    return response


@verify_session()
def relogin_then_revoke_old(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    old = request.sessionward
    response = JsonResponse({})
    create_new_session(response, "dave", {"v": 3})
    old.revoke_session()
    return response


@verify_session()
def update_then_logout(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    session = request.sessionward
    session.update_jwt_payload({"v": 2})
    session.revoke_session()
    return JsonResponse({})


@verify_session()
def data(request: HttpRequest) -> HttpResponse:
    session = request.sessionward
    if request.method == "POST":
        new_data = _body(request)
        session.update_session_data(new_data)
        return JsonResponse(new_data)
    return JsonResponse(session.get_session_data())


@verify_session()
def logout(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    request.sessionward.revoke_session()
    return JsonResponse({})


@verify_session()
def logout_all(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    return JsonResponse({"revoked": revoke_all_sessions_for_user(request.sessionward.user_id)})


def health(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"ok": True})


# -- Django-specific routes (test_django_adapter.py) ---------------------------------------------


@verify_session()
async def async_protected(request: HttpRequest) -> HttpResponse:
    session = request.sessionward
    return JsonResponse(_describe(session))


@verify_session()
async def async_update_payload(request: HttpRequest) -> HttpResponse:
    session = request.sessionward
    await sync_to_async(session.update_jwt_payload)(_body(request))
    return JsonResponse({"payload": session.jwt_payload})


@verify_session(session_required=False)
async def async_optional(request: HttpRequest) -> HttpResponse:
    session = request.sessionward
    return JsonResponse({"user_id": session.user_id if session is not None else None})


def explicit_response(request: HttpRequest) -> HttpResponse:
    """get_session with the response passed explicitly (no decorator)."""
    response = JsonResponse({"explicit": True})
    session = get_session(request, response)
    response.content = json.dumps({"user_id": session.user_id}).encode()
    return response


def other_response(request: HttpRequest) -> HttpResponse:
    """Effects written to one response, another returned: the middleware still applies them."""
    discarded = HttpResponse()
    session = get_session(request, discarded)
    return JsonResponse({"user_id": session.user_id})


def login_then_crash(request: HttpRequest) -> HttpResponse:
    """A session created, then an unhandled exception: Django's 500 page follows."""
    create_new_session(HttpResponse(), "gus")
    raise RuntimeError("the view crashed")


def login_then_update(request: HttpRequest) -> HttpResponse:
    """create_new_session, then a Session method changing the same cookies."""
    response = JsonResponse({})
    session = create_new_session(response, "dora", {"v": 1})
    session.update_jwt_payload({"v": 2})
    return response


urlpatterns = [
    path("login", login),
    path("protected", protected),
    path("optional", optional),
    path("update-payload", update_payload),
    path("login-then-logout", login_then_logout),
    path("relogin-then-revoke-old", relogin_then_revoke_old),
    path("update-then-logout", update_then_logout),
    path("data", data),
    path("logout", logout),
    path("logout-all", logout_all),
    path("health", health),
    path("sensitive", sensitive),
    path("reauthenticate", reauthenticate),
    path("checked", checked),
    path("devices", devices),
    path("logout-others", logout_others),
    path("logout-others-by-handle", logout_others_by_handle),
    path("django/async-protected", async_protected),
    path("django/async-update-payload", async_update_payload),
    path("django/async-optional", async_optional),
    path("django/explicit-response", explicit_response),
    path("django/other-response", other_response),
    path("django/login-then-update", login_then_update),
    path("django/login-then-crash", login_then_crash),
]
