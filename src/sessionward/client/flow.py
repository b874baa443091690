"""The request flow of :class:`~sessionward.client.SessionAuth`, written once for both
``httpx.Client`` and ``httpx.AsyncClient``.

:func:`session_flow` is a generator in the style of ``httpx.Auth.auth_flow``: it yields what
to send and receives the responses. Besides requests it yields two commands, to take and
give back the refresh lock, because a plain generator can neither block on a
``threading.Lock`` nor await an async one: the sync and async drivers in
:mod:`sessionward.client.auth` carry those out with their own kind of lock. A request the
flow makes for itself (sign-in, refresh) is yielded as :class:`Internal`, which tells the
driver to read its body.

The steps, for a request to the session's origin (others pass through untouched):

1. No tokens and a sign-in callable: under the lock, sign in (unless another request just
   did). A sign-in answered without tokens raises :class:`SignInError`.
2. Send with ``st-auth-mode: header`` and, with a session, ``Authorization: Bearer``. Every
   response's token headers are stored (or end the session).
3. An answer other than the session-expired status, or one to a request sent without a
   token, is returned.
4. Otherwise, under the lock: if the access token was replaced since the request left
   (the generation changed and the token with it), retry with the new one; else ``POST``
   the refresh route with the refresh token. 2xx with tokens: retry
   once. The session-expired status: the session is over, the tokens are cleared, and the
   flow signs in again (with a sign-in callable) and retries, or raises
   :class:`SessionExpiredError`. Anything else raises :class:`RefreshError` and keeps the
   session.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Generator
from dataclasses import dataclass

import httpx

from .errors import RefreshError, SessionExpiredError, SignInError
from .state import TokenState
from .tokens import AUTH_MODE_HEADER, StoredTokens, origin_of

__all__ = ["Command", "Flow", "FlowOptions", "Internal", "SignIn", "Step", "session_flow"]

SignIn = Callable[[httpx.Request], httpx.Request]
"""Builds the sign-in request, given the request that needs a session."""


class Command(enum.Enum):
    """What the flow asks its driver to do with the refresh lock."""

    ACQUIRE = "acquire"
    RELEASE = "release"


@dataclass(frozen=True, slots=True)
class Internal:
    """A request the flow makes for itself: the driver reads the whole answer."""

    request: httpx.Request


@dataclass(frozen=True, slots=True)
class FlowOptions:
    """The flow's settings (validated by ``SessionAuth``)."""

    sign_in: SignIn | None
    refresh_path: str
    session_expired_status_code: int


Step = httpx.Request | Internal | Command
Flow = Generator[Step, httpx.Response | None, None]
_HEADER_MODE = "header"


def session_flow(
    state: TokenState, options: FlowOptions, request: httpx.Request, *, may_sign_in: bool
) -> Flow:
    """The flow of one request; ``may_sign_in=False`` never calls the sign-in callable (for
    the sign-out request)."""
    origin = origin_of(request.url)
    tokens, generation = state.snapshot()
    if tokens is not None and tokens.origin != origin:
        yield request
        return
    request.headers[AUTH_MODE_HEADER] = _HEADER_MODE
    sign_in = options.sign_in if may_sign_in else None
    if tokens is None and sign_in is not None:
        yield Command.ACQUIRE
        tokens, generation = state.snapshot()
        if tokens is None:
            yield from _sign_in(state, sign_in, request)
            tokens, generation = state.snapshot()
        yield Command.RELEASE
    if tokens is None or tokens.origin != origin:
        # No session (or one signed in elsewhere): a login route called through this client
        # hands its tokens over here.
        response = _received((yield request))
        state.apply_response(response)
        return
    response = _received((yield _authorized(request, tokens)))
    state.apply_response(response)
    if response.status_code != options.session_expired_status_code:
        return
    yield Command.ACQUIRE
    current, current_generation = state.snapshot()
    if current is not None and (
        current_generation == generation or current.access_token == tokens.access_token
    ):
        # Nobody replaced the access token that was refused: refresh it.
        current = yield from _refresh(state, options, current)
    if current is None and sign_in is not None:
        yield from _sign_in(state, sign_in, request)
        current = state.snapshot()[0]
    yield Command.RELEASE
    if current is None or current.origin != origin:
        raise SessionExpiredError(response)
    state.apply_response(_received((yield _authorized(request, current))))


def _authorized(request: httpx.Request, tokens: StoredTokens) -> httpx.Request:
    request.headers["authorization"] = f"Bearer {tokens.access_token}"
    return request


def _received(response: httpx.Response | None) -> httpx.Response:
    if response is None:
        raise RuntimeError("the auth flow's driver sent no response for a request")
    return response


def _sign_in(
    state: TokenState, sign_in: SignIn, request: httpx.Request
) -> Generator[Step, httpx.Response | None, None]:
    sign_in_request = sign_in(request)
    if not isinstance(sign_in_request, httpx.Request):
        raise TypeError(
            f"the sign_in callable must return an httpx.Request; got {type(sign_in_request).__name__}"
        )
    sign_in_request.headers[AUTH_MODE_HEADER] = _HEADER_MODE
    response = _received((yield Internal(sign_in_request)))
    state.apply_response(response)
    if state.snapshot()[0] is None:
        raise SignInError(response)


def _refresh(
    state: TokenState, options: FlowOptions, tokens: StoredTokens
) -> Generator[Step, httpx.Response | None, StoredTokens | None]:
    """Refresh ``tokens``: the new tokens, or ``None`` when the session is over."""
    if tokens.refresh_token is None:
        state.clear()
        return None
    refresh_request = httpx.Request(
        "POST",
        tokens.origin + options.refresh_path,
        headers={
            "authorization": f"Bearer {tokens.refresh_token}",
            AUTH_MODE_HEADER: _HEADER_MODE,
            "rid": "session",
        },
    )
    response = _received((yield Internal(refresh_request)))
    state.apply_response(response)
    if response.status_code == options.session_expired_status_code:
        state.clear()
        return None
    if not 200 <= response.status_code < 300:
        raise RefreshError(response)
    refreshed = state.snapshot()[0]
    if refreshed is None or refreshed.access_token == tokens.access_token:
        raise RefreshError(response, "the answer carried no new access token")
    return refreshed
