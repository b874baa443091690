"""A framework-neutral view of HTTP exchanges for the protocol suite.

Each framework's own test client (and httpx against real servers) is wrapped so that the
suite sends an explicit ``Cookie`` header from its own jar and reads raw response headers:
what is asserted is what crosses the wire, identically for every framework.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Protocol


@dataclass
class WireResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header_values(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]

    def header(self, name: str) -> str | None:
        values = self.header_values(name)
        assert len(values) <= 1, f"header {name} sent {len(values)} times: {values}"
        return values[0] if values else None

    def json(self) -> Any:
        return json.loads(self.body)

    def set_cookies(self) -> dict[str, SetCookie]:
        cookies: dict[str, SetCookie] = {}
        for raw in self.header_values("set-cookie"):
            parsed = SetCookie.parse(raw)
            assert parsed.name not in cookies, f"two Set-Cookie for {parsed.name}"
            cookies[parsed.name] = parsed
        return cookies

    def front_token(self) -> dict[str, Any] | None:
        value = self.header("front-token")
        if value is None:
            return None
        decoded: dict[str, Any] = json.loads(base64.b64decode(value, validate=True))
        return decoded


@dataclass
class SetCookie:
    name: str
    value: str
    attributes: dict[str, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)

    @classmethod
    def parse(cls, raw: str) -> SetCookie:
        first, *rest = [part.strip() for part in raw.split(";")]
        name, _, value = first.partition("=")
        cookie = cls(name, value)
        for part in rest:
            if "=" in part:
                key, _, val = part.partition("=")
                cookie.attributes[key.lower()] = val
            elif part:
                cookie.flags.add(part.lower())
        return cookie

    @property
    def expires_ms(self) -> int:
        return int(parsedate_to_datetime(self.attributes["expires"]).timestamp() * 1000)

    @property
    def cleared(self) -> bool:
        return self.value == "" and self.expires_ms == 0


Headers = list[tuple[str, str]]
"""Request headers in order; a name may repeat (each copy is sent as its own header line)."""


class Transport(Protocol):
    def __call__(self, method: str, path: str, headers: Headers, body: bytes | None) -> WireResponse: ...


class CookieJar:
    """The browser side: stores cookies by name with their Path and replays them."""

    def __init__(self) -> None:
        self.cookies: dict[str, SetCookie] = {}

    def update(self, response: WireResponse) -> None:
        for name, cookie in response.set_cookies().items():
            if cookie.cleared:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = cookie

    def header_for(self, path: str) -> str | None:
        pairs = [
            f"{c.name}={c.value}"
            for c in self.cookies.values()
            if path.startswith(c.attributes.get("path", "/"))
        ]
        return "; ".join(pairs) or None

    def value(self, name: str) -> str | None:
        cookie = self.cookies.get(name)
        return None if cookie is None else cookie.value


class WireClient:
    """Drives one app through a transport, with a jar and the frontend's anti-CSRF memory.

    ``base_url`` is the real server's ``http://127.0.0.1:PORT`` (for other HTTP clients),
    ``None`` in process.
    """

    def __init__(self, transport: Transport, base_url: str | None = None) -> None:
        self.transport = transport
        self.base_url = base_url
        self.jar = CookieJar()
        self.anti_csrf: str | None = None

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        headers: dict[str, str] | Headers | None = None,
        cookie: str | Callable[[str | None], str | None] | None = "jar",
        send_anti_csrf: bool = True,
        update_jar: bool = True,
    ) -> WireResponse:
        all_headers = list(headers.items() if isinstance(headers, dict) else headers or ())
        given = {name.lower() for name, _ in all_headers}
        jar_cookie = self.jar.header_for(path)
        chosen = cookie(jar_cookie) if callable(cookie) else (jar_cookie if cookie == "jar" else cookie)
        if chosen:
            all_headers.append(("cookie", chosen))
        if send_anti_csrf and self.anti_csrf and "anti-csrf" not in given:
            all_headers.append(("anti-csrf", self.anti_csrf))
        body = None
        if json_body is not None:
            body = json.dumps(json_body).encode()
            all_headers.append(("content-type", "application/json"))
        response = self.transport(method, path, all_headers, body)
        if update_jar:
            self.jar.update(response)
            csrf = response.header("anti-csrf")
            if csrf is not None:
                self.anti_csrf = csrf
            if response.header("id-refresh-token") == "remove":
                self.anti_csrf = None
        return response

    def login(
        self,
        user_id: str = "alice",
        payload: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
    ) -> WireResponse:
        response = self.request(
            "POST", "/login", json_body={"user_id": user_id, "payload": payload, "data": data}
        )
        assert response.status == 200, response.body
        return response


def iter_headers(items: Any) -> Iterator[tuple[str, str]]:
    for key, value in items:
        yield str(key), str(value)
