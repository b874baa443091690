""":class:`SessionAuth`: an ``httpx.Auth`` that keeps a header-mode session."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import AsyncGenerator, Generator
from typing import Any

import anyio
import httpx

from ..errors import ConfigError
from .errors import SessionExpiredError
from .flow import Command, Flow, FlowOptions, Internal, SignIn, session_flow
from .state import TokenState
from .storage import TokenFile
from .tokens import FrontToken, decode_front_token

__all__ = ["SessionAuth"]

_REFRESH_SUFFIX = "/session/refresh"
_PATH = re.compile(r"/[!-~]*")


class SessionAuth(httpx.Auth):
    """Authenticate ``httpx`` requests with a sessionward (or SuperTokens) session in header
    mode, refreshing it when it expires.

    Use one instance per API (per origin) and pass it to a client,
    ``httpx.Client(auth=auth)`` or ``httpx.AsyncClient(auth=auth)``; the same instance may
    serve both, and any number of threads or tasks at once. For each request to the
    session's origin it:

    - sends ``st-auth-mode: header`` and, with a session, ``Authorization: Bearer <access
      token>``; requests to any other origin are sent untouched (the tokens never leave
      the origin that issued them);
    - stores the tokens of every response carrying ``st-access-token`` /
      ``st-refresh-token`` / ``front-token``, and drops them on ``front-token: remove`` or
      empty token headers;
    - without a session, calls ``sign_in`` once first, if given;
    - on the session-expired status, refreshes once (one refresh for all the requests that
      hit the expiry together) and retries the request once; when the refresh route refuses
      the session, clears the tokens and signs in again (with ``sign_in``) or raises
      :class:`~sessionward.client.SessionExpiredError`.

    Request bodies are read into memory before sending (as with ``requires_request_body``)
    so that the retry can send them again.

    Args:
        sign_in: builds the sign-in request, given the request that needs a session
            (``lambda request: httpx.Request("POST", request.url.join("/login"), json=...)``).
            The flow sends it with ``st-auth-mode: header`` and stores the tokens of its
            answer; an answer without tokens raises
            :class:`~sessionward.client.SignInError`. ``None`` (the default): requests
            without a session go out without a token; sign in by calling your login route
            through the client.
        refresh_path: the backend's ``refresh_api_path``, including any prefix the app is
            mounted under.
        sign_out_path: the sign-out route for :meth:`sign_out`. ``None`` (the default): the
            refresh path with ``/session/refresh`` replaced by ``/signout`` (``/signout``
            for the default, ``/auth/signout`` for ``/auth/session/refresh``), as the
            backend mounts it; a refresh path without that ending gives no sign-out route
            (:meth:`sign_out` then only clears the local session).
        session_expired_status_code: the backend's ``session_expired_status_code``.
        token_file: where to keep the tokens between runs of the program; ``None`` (the
            default) keeps them in memory. See :mod:`sessionward.client.storage` for how
            the file is protected; an unsafe existing file raises
            :class:`~sessionward.client.TokenFileError` here.
    """

    requires_request_body = True

    def __init__(
        self,
        sign_in: SignIn | None = None,
        *,
        refresh_path: str = "/session/refresh",
        sign_out_path: str | None = None,
        session_expired_status_code: int = 401,
        token_file: str | os.PathLike[str] | None = None,
    ) -> None:
        if sign_in is not None and not callable(sign_in):
            raise ConfigError(f"sign_in: expected a callable or None; got {sign_in!r}")
        _check_path("refresh_path", refresh_path)
        if sign_out_path is None and refresh_path.endswith(_REFRESH_SUFFIX):
            sign_out_path = refresh_path[: -len(_REFRESH_SUFFIX)] + "/signout"
        if sign_out_path is not None:
            _check_path("sign_out_path", sign_out_path)
        code = session_expired_status_code
        if type(code) is not int or not 400 <= code <= 599:
            raise ConfigError(
                f"session_expired_status_code: expected an integer from 400 to 599; got {code!r}"
            )
        self._options = FlowOptions(sign_in, refresh_path, code)
        self._sign_out_path = sign_out_path
        self._state = TokenState(None if token_file is None else TokenFile(token_file))
        self._thread_lock = threading.Lock()
        self._async_lock: anyio.Lock | None = None

    def __repr__(self) -> str:
        tokens = self._state.snapshot()[0]
        origin = None if tokens is None else tokens.origin
        file = self._state.file
        return (
            f"SessionAuth(signed_in={tokens is not None}, origin={origin!r}, "
            f"token_file={None if file is None else file.path!r})"
        )

    @property
    def signed_in(self) -> bool:
        """Whether a session is stored (it may still be refused by the server)."""
        return self._state.snapshot()[0] is not None

    @property
    def origin(self) -> str | None:
        """The origin (``scheme://host[:port]``) the stored session belongs to."""
        tokens = self._state.snapshot()[0]
        return None if tokens is None else tokens.origin

    @property
    def user_id(self) -> str | None:
        """The user id of the last ``front-token`` received, or ``None`` without a session."""
        front = self._front_token()
        return None if front is None else front.user_id

    @property
    def jwt_payload(self) -> dict[str, Any] | None:
        """The public JWT payload of the last ``front-token`` received, or ``None``."""
        front = self._front_token()
        return None if front is None else front.jwt_payload

    @property
    def access_token_expires_at(self) -> int | None:
        """When the stored access token expires (ms since the epoch, from the last
        ``front-token``), or ``None``."""
        front = self._front_token()
        return None if front is None else front.access_token_expires_at

    def clear(self) -> None:
        """Forget the session here (and delete the token file) without telling the server."""
        self._state.clear()

    def sign_out(self, client: httpx.Client) -> httpx.Response | None:
        """``POST`` the sign-out route with ``client`` and clear the stored session.

        An expired access token is refreshed first. The tokens are cleared whatever the
        answer, or if sending fails. Returns the answer (a session the server had already
        ended gives its session-expired answer, which counts as signed out), or ``None``
        when no session was stored or there is no sign-out route (nothing is sent).
        """
        tokens = self._state.snapshot()[0]
        if tokens is None or self._sign_out_path is None:
            self._state.clear()
            return None
        request = client.build_request("POST", tokens.origin + self._sign_out_path)
        try:
            return client.send(request, auth=_WithoutSignIn(self))
        except SessionExpiredError as ended:
            return ended.response
        finally:
            self._state.clear()

    async def async_sign_out(self, client: httpx.AsyncClient) -> httpx.Response | None:
        """:meth:`sign_out` for an ``httpx.AsyncClient``."""
        tokens = self._state.snapshot()[0]
        if tokens is None or self._sign_out_path is None:
            self._state.clear()
            return None
        request = client.build_request("POST", tokens.origin + self._sign_out_path)
        try:
            return await client.send(request, auth=_WithoutSignIn(self))
        except SessionExpiredError as ended:
            return ended.response
        finally:
            self._state.clear()

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """The flow for ``httpx.Client``: the refresh lock is a ``threading.Lock``."""
        return self._drive_sync(request, may_sign_in=True)

    def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """The flow for ``httpx.AsyncClient``: the refresh lock is an ``anyio.Lock`` (asyncio
        or trio), shared by the tasks of one event loop."""
        return self._drive_async(request, may_sign_in=True)

    def _flow(self, request: httpx.Request, may_sign_in: bool) -> Flow:
        return session_flow(self._state, self._options, request, may_sign_in=may_sign_in)

    def _must_read(self, step: httpx.Request | Internal, response: httpx.Response) -> bool:
        # The session-expired answer is small; it is read so an error can carry it.
        expired = response.status_code == self._options.session_expired_status_code
        return isinstance(step, Internal) or expired

    def _drive_sync(
        self, request: httpx.Request, *, may_sign_in: bool
    ) -> Generator[httpx.Request, httpx.Response, None]:
        request.read()
        flow = self._flow(request, may_sign_in)
        held = False
        try:
            step = next(flow)
            while True:
                if step is Command.ACQUIRE:
                    self._thread_lock.acquire()
                    held = True
                    step = flow.send(None)
                elif step is Command.RELEASE:
                    self._thread_lock.release()
                    held = False
                    step = flow.send(None)
                else:
                    assert not isinstance(step, Command)
                    response = yield step.request if isinstance(step, Internal) else step
                    if self._must_read(step, response):
                        response.read()
                    step = flow.send(response)
        except StopIteration:
            return
        finally:
            flow.close()
            if held:
                self._thread_lock.release()

    async def _drive_async(
        self, request: httpx.Request, *, may_sign_in: bool
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        await request.aread()
        if self._async_lock is None:
            self._async_lock = anyio.Lock()
        lock = self._async_lock
        flow = self._flow(request, may_sign_in)
        held = False
        try:
            step = next(flow)
            while True:
                if step is Command.ACQUIRE:
                    await lock.acquire()
                    held = True
                    step = flow.send(None)
                elif step is Command.RELEASE:
                    lock.release()
                    held = False
                    step = flow.send(None)
                else:
                    assert not isinstance(step, Command)
                    response = yield step.request if isinstance(step, Internal) else step
                    if self._must_read(step, response):
                        await response.aread()
                    step = flow.send(response)
        except StopIteration:
            return
        finally:
            flow.close()
            if held:
                lock.release()

    def _front_token(self) -> FrontToken | None:
        tokens = self._state.snapshot()[0]
        return None if tokens is None else decode_front_token(tokens.front_token)


class _WithoutSignIn(httpx.Auth):
    """The flow of a :class:`SessionAuth` that never signs in (for the sign-out request)."""

    requires_request_body = True

    def __init__(self, owner: SessionAuth) -> None:
        self._owner = owner

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        return self._owner._drive_sync(request, may_sign_in=False)

    def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        return self._owner._drive_async(request, may_sign_in=False)


def _check_path(name: str, value: object) -> None:
    if not isinstance(value, str) or _PATH.fullmatch(value) is None:
        raise ConfigError(f"{name}: expected a path starting with '/' without spaces; got {value!r}")
