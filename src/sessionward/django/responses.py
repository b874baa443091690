"""Writing effects onto a Django response, error answers, the preflight helper.

Cookies are emitted through ``response.cookies`` (Django serialises that ``SimpleCookie``
into one ``Set-Cookie`` header per name, on WSGI and ASGI alike): each session cookie is a
:class:`SetCookieMorsel` whose serialised form is exactly the ``Set-Cookie`` value
:mod:`sessionward.transport` wrote. A ``SimpleCookie`` is keyed by name, so a response can
never carry two ``Set-Cookie`` headers for one session cookie.
"""

from __future__ import annotations

import logging
from collections.abc import Container
from http.cookies import Morsel
from typing import Any
from urllib.parse import unquote

from django.http import HttpResponse  # type: ignore[import-untyped]

from ..errors import SessionWardError
from ..session import SessionHandler
from ..transport.cors import preflight_headers
from ..transport.error_responses import log_error_answer
from ..transport.response import ResponseEffects, final_response_headers, set_cookie_name

__all__ = ["SetCookieMorsel", "apply_effects", "error_response", "preflight"]

logger = logging.getLogger("sessionward.django")


class SetCookieMorsel(Morsel[str]):
    """A ``Morsel`` that serialises to the exact ``Set-Cookie`` value transport wrote.

    Its key, value and attributes (``path``, ``expires``, ``domain``, ``secure``,
    ``httponly``, ``samesite``) are filled in from that value too, so code reading
    ``response.cookies[name]["path"]`` sees the truth; if anything changes them afterwards,
    the standard ``Morsel`` serialisation of the changed attributes is used instead.
    """

    def __init__(self, name: str, set_cookie: str) -> None:
        super().__init__()
        first, *attributes = set_cookie.split("; ")
        coded = first.partition("=")[2]
        self.set(name, unquote(coded), coded)
        for attribute in attributes:
            key, sep, value = attribute.partition("=")
            self[key.lower()] = value if sep else True
        self._set_cookie = set_cookie
        self._snapshot = self._state()

    def _state(self) -> tuple[Any, ...]:
        return (self.key, self.value, self.coded_value, sorted(self.items()))

    def OutputString(self, attrs: Container[str] | None = None) -> str:
        header: str | None = getattr(self, "_set_cookie", None)
        if attrs is None and header is not None and self._state() == self._snapshot:
            return header
        return super().OutputString(attrs)


def apply_effects(
    response: HttpResponse, effects: ResponseEffects, secure_request: bool | None = None
) -> None:
    """Write pending cookies and headers onto ``response``, replacing earlier values.

    Safe to call repeatedly with the same effects: a cookie replaces the one of the same
    name in ``response.cookies``, protocol headers are overwritten or removed and the
    expose list is merged without duplicates. ``secure_request`` is ``request.is_secure()``
    when known (Secure cookies on a plain-http request are then logged once).
    """
    if not effects.pending:
        return
    headers = response.headers
    current = [*headers.items(), *(("Set-Cookie", m.OutputString()) for m in response.cookies.values())]
    kept: set[str] = set()
    for name, value in final_response_headers(effects, current, secure_request):
        lower = name.lower()
        if lower != "set-cookie":
            kept.add(lower)
            headers[name] = value
            continue
        cookie = set_cookie_name(value)
        if cookie in effects.cookies:
            response.cookies[cookie] = SetCookieMorsel(cookie, value)
    for name in [name for name in headers if name.lower() not in kept]:
        del headers[name]


def error_response(
    handler: SessionHandler, effects: ResponseEffects, error: SessionWardError
) -> HttpResponse:
    """The JSON response to a session error, via ``handler.answer_error``.

    Work recorded for the failed request (for instance a replacement access token) is
    dropped first, so an error answer carries only what the error itself dictates: nothing,
    or the cleared cookies with ``id-refresh-token: remove``.
    """
    effects.discard()
    answer = handler.answer_error(effects, error)
    log_error_answer(logger, error, answer.status)
    response = HttpResponse(answer.body, status=answer.status, content_type="application/json")
    for name, value in answer.headers:
        response.headers[name] = value
    return response


def preflight(response: HttpResponse) -> HttpResponse:
    """Add the session protocol's CORS preflight headers to ``response`` and return it.

    ``Access-Control-Allow-Headers`` gains ``anti-csrf, fdi-version, supertokens-sdk-name,
    supertokens-sdk-version`` (merged with what is there) and
    ``Access-Control-Allow-Credentials: true`` is set. Origins stay the application's job.
    """
    for name, value in preflight_headers(response.headers.get("Access-Control-Allow-Headers")):
        response.headers[name] = value
    return response
