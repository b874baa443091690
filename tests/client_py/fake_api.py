"""A scripted header-mode API for the unit tests of ``sessionward.client``, served through
``httpx.MockTransport``: sign-in, a protected route, refresh with rotation and theft
detection, sign-out. It counts what it was asked, and can hold expired requests until a
number of them arrived (to make concurrent requests hit the expiry together)."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from dataclasses import dataclass, field
from typing import Any

import httpx

ORIGIN = "http://api.test"


def front_token(
    user_id: str, expires_at: int = 1_700_000_000_000, payload: dict[str, Any] | None = None
) -> str:
    body = json.dumps({"uid": user_id, "ate": expires_at, "up": payload or {}})
    return base64.b64encode(body.encode()).decode()


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


@dataclass
class FakeApi:
    """The server's state: valid and expired access tokens, the current refresh token of the
    one session, the refresh tokens already used, and counters."""

    status: int = 401
    refresh_status: int | None = None  # forces the refresh route's answer
    login_succeeds: bool = True
    access: set[str] = field(default_factory=set)
    expired: set[str] = field(default_factory=set)
    refresh_token: str | None = None
    used_refresh_tokens: set[str] = field(default_factory=set)
    counter: int = 0
    logins: int = 0
    refreshes: int = 0
    sign_outs: int = 0
    thefts: int = 0
    requests: list[httpx.Request] = field(default_factory=list)
    # Hold every request answered "try refresh token" until this many arrived.
    hold_expired: int = 0
    _arrived: int = 0
    _barrier: threading.Barrier | None = None
    _event: asyncio.Event | None = None

    # -- helpers for the tests ---------------------------------------------------------------

    def new_tokens(self) -> dict[str, str]:
        self.counter += 1
        access, refresh = f"access-{self.counter}", f"refresh-{self.counter}"
        self.access.add(access)
        self.refresh_token = refresh
        return {
            "st-access-token": access,
            "st-refresh-token": refresh,
            "front-token": front_token("alice", 1_700_000_000_000 + self.counter, {"n": self.counter}),
        }

    def expire_all(self) -> None:
        self.expired |= self.access
        self.access.clear()

    def end_session(self) -> None:
        self.access.clear()
        self.expired.clear()
        self.refresh_token = None

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def async_transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle_async)

    # -- the routes ---------------------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        if self._waits(request):
            if self._barrier is None:
                self._barrier = threading.Barrier(self.hold_expired, timeout=30)
            self._barrier.wait()
        return self._answer(request)

    async def handle_async(self, request: httpx.Request) -> httpx.Response:
        if self._waits(request):
            if self._event is None:
                self._event = asyncio.Event()
            self._arrived += 1
            if self._arrived >= self.hold_expired:
                self._event.set()
            await asyncio.wait_for(self._event.wait(), 30)
        return self._answer(request)

    def _waits(self, request: httpx.Request) -> bool:
        return bool(self.hold_expired) and request.url.path == "/me" and self._bearer(request) in self.expired

    @staticmethod
    def _bearer(request: httpx.Request) -> str | None:
        value = request.headers.get("authorization", "")
        return value[len("Bearer ") :] if value.startswith("Bearer ") else None

    def _answer(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if request.method == "POST" and path == "/login":
            self.logins += 1
            if not self.login_succeeds:
                return _json(403, {"message": "wrong password"})
            return _json(200, {"ok": True}, self.new_tokens())
        if path == "/session/refresh":
            return self._refresh(request)
        if request.method == "POST" and path == "/signout":
            return self._sign_out(request)
        if path in ("/me", "/upload"):
            token = self._bearer(request)
            if token in self.access:
                return _json(200, {"user": "alice", "body": request.content.decode()})
            if token in self.expired:
                return _json(self.status, {"message": "try refresh token"})
            return _json(self.status, {"message": "unauthorised"})
        if path == "/public":
            return _json(200, {"public": True})
        return _json(404, {"message": "not found"})

    def _refresh(self, request: httpx.Request) -> httpx.Response:
        self.refreshes += 1
        if self.refresh_status is not None:
            return _json(self.refresh_status, {"message": "forced"})
        token = self._bearer(request)
        if token is not None and token == self.refresh_token:
            self.used_refresh_tokens.add(token)
            self.expire_all()
            return _json(200, {}, self.new_tokens())
        if token in self.used_refresh_tokens:
            self.thefts += 1
            self.end_session()
            return _json(
                self.status,
                {"message": "token theft detected"},
                {"front-token": "remove", "st-access-token": "", "st-refresh-token": ""},
            )
        return _json(self.status, {"message": "unauthorised"})

    def _sign_out(self, request: httpx.Request) -> httpx.Response:
        token = self._bearer(request)
        if token in self.expired:
            return _json(self.status, {"message": "try refresh token"})
        if token not in self.access:
            return _json(self.status, {"message": "unauthorised"})
        self.sign_outs += 1
        self.end_session()
        return _json(
            200, {"status": "OK"}, {"front-token": "remove", "st-access-token": "", "st-refresh-token": ""}
        )


def login_request(request: httpx.Request) -> httpx.Request:
    """The sign-in callable of the tests."""
    return httpx.Request("POST", request.url.join("/login"), json={"user": "alice", "password": "pw"})
