"""The Django adapter through Django's own test clients (``Client``, ``AsyncClient``), plus
the real WSGI and ASGI handlers (through httpx transports) for what crosses the wire."""

from __future__ import annotations

import asyncio
import base64
import email.utils
import json
from collections.abc import Iterator
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from frameworks.apps import django_app
from frameworks.wire import SetCookie
from sessionward import Config, ConfigError, TryRefreshTokenError
from sessionward.transport import ErrorResponse

django_app.ensure_configured()

from django.core.asgi import get_asgi_application  # type: ignore[import-untyped]  # noqa: E402
from django.core.exceptions import ImproperlyConfigured  # type: ignore[import-untyped]  # noqa: E402
from django.core.wsgi import get_wsgi_application  # type: ignore[import-untyped]  # noqa: E402
from django.http import HttpResponse  # type: ignore[import-untyped]  # noqa: E402
from django.test import AsyncClient, Client, override_settings  # type: ignore[import-untyped]  # noqa: E402

import sessionward.django as sw  # noqa: E402

SESSION_COOKIES = ("sAccessToken", "sRefreshToken", "sIdRefreshToken")
COOKIE_SAFE = "!#$&'()*+-./:<=>?@[]^_`{|}~"


@pytest.fixture(autouse=True, scope="module")
def _close_engines() -> Iterator[None]:
    yield
    sw.reset_engine()


# -- helpers ---------------------------------------------------------------------------------------


def wire_set_cookies(response: Any) -> list[str]:
    """The Set-Cookie values Django's handlers would send for this response."""
    raw = [value for key, value in response.items() if key.lower() == "set-cookie"]
    return raw + [morsel.output(header="").strip() for morsel in response.cookies.values()]


def cookies_of(response: Any) -> dict[str, SetCookie]:
    parsed: dict[str, SetCookie] = {}
    for raw in wire_set_cookies(response):
        cookie = SetCookie.parse(raw)
        assert cookie.name not in parsed, f"two Set-Cookie for {cookie.name}"
        parsed[cookie.name] = cookie
    return parsed


def claims_of(token: str) -> dict[str, Any]:
    segment = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    return decoded


def front_token(response: Any) -> Any:
    return json.loads(base64.b64decode(response.headers["front-token"]))


def expected_set_cookie(config: Config, name: str, value: str, expires_ms: int | None) -> str:
    path = config.refresh_api_path if name == "sRefreshToken" else config.access_token_path
    expires = (
        "Thu, 01 Jan 1970 00:00:00 GMT"
        if expires_ms is None
        else email.utils.formatdate(expires_ms / 1000, usegmt=True)
    )
    parts = [f"{name}={quote(value, safe=COOKIE_SAFE)}", f"Path={path}", f"Expires={expires}"]
    if config.cookie_domain is not None:
        parts.append(f"Domain={config.cookie_domain}")
    if config.cookie_secure:
        parts.append("Secure")
    parts += ["HttpOnly", f"SameSite={config.cookie_same_site.capitalize()}"]
    return "; ".join(parts)


class Browser:
    """Django's test ``Client`` with a path-aware jar that forgets cleared cookies (the
    test client itself ignores Path and Expires) and the frontend's anti-CSRF memory."""

    def __init__(self, client: Client | None = None) -> None:
        self.client = client or Client()
        self.jar: dict[str, SetCookie] = {}
        self.anti_csrf: str | None = None

    def cookie_for(self, path: str) -> str:
        return "; ".join(
            f"{c.name}={c.value}" for c in self.jar.values() if path.startswith(c.attributes.get("path", "/"))
        )

    def request(
        self,
        method: str,
        path: str,
        json_body: Any = None,
        *,
        cookie: str | None = None,
        headers: dict[str, str] | None = None,
        send_anti_csrf: bool = True,
        update: bool = True,
    ) -> Any:
        self.client.cookies = SimpleCookie()
        all_headers = dict(headers or {})
        chosen = self.cookie_for(path) if cookie is None else cookie
        if chosen:
            all_headers["cookie"] = chosen
        if send_anti_csrf and self.anti_csrf and "anti-csrf" not in all_headers:
            all_headers["anti-csrf"] = self.anti_csrf
        body = b"" if json_body is None else json.dumps(json_body).encode()
        response = self.client.generic(
            method, path, data=body, content_type="application/json", headers=all_headers
        )
        if update:
            for name, parsed in cookies_of(response).items():
                if parsed.cleared:
                    self.jar.pop(name, None)
                else:
                    self.jar[name] = parsed
            if "anti-csrf" in response.headers:
                self.anti_csrf = response.headers["anti-csrf"]
            if response.headers.get("id-refresh-token") == "remove":
                self.anti_csrf = None
        return response

    def only(self, name: str) -> str:
        return f"{name}={self.jar[name].value}"

    def login(self, user_id: str = "alice", payload: Any = None, data: Any = None) -> Any:
        response = self.request("POST", "/login", {"user_id": user_id, "payload": payload, "data": data})
        assert response.status_code == 200, response.content
        return response


@pytest.fixture
def store(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/sessions.db"


def make_config(store: str, **options: Any) -> Config:
    options.setdefault("cookie_secure", False)
    options.setdefault("access_token_algorithm", "HS256")
    return Config(store=store, **options)


@pytest.fixture
def app(store: str) -> Iterator[django_app.TestApp]:
    with django_app.configured(make_config(store)) as test_app:
        yield test_app


def assert_untouched(response: Any) -> None:
    assert wire_set_cookies(response) == []
    assert "id-refresh-token" not in response.headers


def assert_cleared(response: Any) -> None:
    cookies = cookies_of(response)
    assert set(cookies) == set(SESSION_COOKIES)
    assert all(cookie.cleared for cookie in cookies.values())
    assert response.headers["id-refresh-token"] == "remove"


def assert_message(response: Any, status: int, message: str) -> None:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    assert json.loads(response.content) == {"message": message}


# -- login: exact cookies and headers -------------------------------------------------------------


def test_cookie_morsels_carry_the_attributes(app: django_app.TestApp) -> None:
    response = Browser().login()
    morsel = response.cookies["sRefreshToken"]
    assert isinstance(morsel, sw.SetCookieMorsel)
    assert morsel["path"] == "/session/refresh"
    assert morsel["httponly"] is True
    assert morsel["samesite"] == "Lax"
    assert morsel["secure"] == ""
    assert morsel.coded_value == quote(morsel.value, safe=COOKIE_SAFE)
    # Changing an attribute afterwards is honoured (standard Morsel output then).
    morsel["samesite"] = "Strict"
    assert "SameSite=Strict" in morsel.OutputString()


def test_wsgi_handler_sends_one_set_cookie_per_name_exactly(app: django_app.TestApp) -> None:
    with httpx.Client(transport=httpx.WSGITransport(app=get_wsgi_application()), base_url="http://t") as http:
        login = http.post("/login", json={"user_id": "w", "payload": None, "data": None})
        assert login.status_code == 200
        # Django's WSGI handler writes "Set-Cookie:  value" (one space more): HTTP strips it.
        raw = [value.strip() for value in login.headers.get_list("set-cookie")]
        names = [SetCookie.parse(value).name for value in raw]
        assert sorted(names) == sorted(SESSION_COOKIES)
        access = SetCookie.parse(next(v for v in raw if v.startswith("sAccessToken=")))
        assert next(v for v in raw if v.startswith("sAccessToken=")) == expected_set_cookie(
            make_config("sqlite:///:memory:"), "sAccessToken", access.value, access.expires_ms
        )
        http.cookies.clear()
        cookie = "; ".join(f"{SetCookie.parse(v).name}={SetCookie.parse(v).value}" for v in raw)
        protected = http.get("/protected", headers={"cookie": cookie})
        assert protected.status_code == 200
        assert protected.json()["user_id"] == "w"


def test_asgi_handler_sends_one_set_cookie_per_name_and_reads_split_cookie_headers(
    app: django_app.TestApp,
) -> None:
    async def scenario() -> None:
        transport = httpx.ASGITransport(app=get_asgi_application())
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            login = await http.post("/login", json={"user_id": "a", "payload": None, "data": None})
            raw = login.headers.get_list("set-cookie")
            assert sorted(SetCookie.parse(v).name for v in raw) == sorted(SESSION_COOKIES)
            pairs = {SetCookie.parse(v).name: SetCookie.parse(v).value for v in raw}
            http.cookies.clear()
            # Two Cookie headers (as HTTP/2 sends them) are joined with "; ", not ",".
            split = [
                ("cookie", f"sAccessToken={pairs['sAccessToken']}"),
                ("cookie", f"sIdRefreshToken={pairs['sIdRefreshToken']}"),
            ]
            ok = await http.get("/protected", headers=split)
            assert ok.status_code == 200, ok.text
            # A second copy of a session cookie in another header is a duplicate: rejected.
            tossed = [*split, ("cookie", "sIdRefreshToken=attacker")]
            rejected = await http.get("/protected", headers=tossed)
            assert rejected.status_code == 401
            assert rejected.json() == {"message": "unauthorised"}
            assert rejected.headers.get_list("set-cookie") == []

    asyncio.run(scenario())


# -- verification -----------------------------------------------------------------------------------


# -- refresh, promotion, theft ----------------------------------------------------------------------


def test_custom_refresh_path_and_status(store: str) -> None:
    config = make_config(store, refresh_api_path="/auth/session/refresh", session_expired_status_code=440)
    with django_app.configured(config):
        browser = Browser()
        browser.login()
        assert browser.request("POST", "/auth/session/refresh").status_code == 200
        assert browser.request("POST", "/session/refresh").status_code == 404
        assert_message(browser.request("GET", "/protected", cookie=""), 440, "unauthorised")


# -- anti-CSRF --------------------------------------------------------------------------------------


# -- payload, data, logout ------------------------------------------------------------------------


def test_logout_everywhere_and_management_calls(app: django_app.TestApp) -> None:
    phone, laptop = Browser(), Browser()
    first = json.loads(phone.login("carol", None, {"k": 1}).content)["handle"]
    second = json.loads(laptop.login("carol").content)["handle"]
    assert sorted(sw.get_all_session_handles_for_user("carol")) == sorted([first, second])
    assert sw.get_session_data(first) == {"k": 1}
    sw.update_session_data(first, {"k": 2})
    assert sw.get_session_information(first).session_data == {"k": 2}
    sw.update_jwt_payload(first, {"p": 1})
    assert sw.get_jwt_payload(first) == {"p": 1}
    response = laptop.request("POST", "/logout-all")
    assert sorted(json.loads(response.content)["revoked"]) == sorted([first, second])
    assert_message(phone.request("POST", "/session/refresh"), 401, "unauthorised")
    assert sw.revoke_session(first) is False
    assert sw.revoke_multiple_sessions([first]) == []
    assert sw.revoke_all_sessions_for_user("carol") == []


# -- responses passed explicitly or returned --------------------------------------------------------


def _promotable(browser: Browser) -> None:
    browser.login("erin")
    assert browser.request("POST", "/session/refresh").status_code == 200


def test_get_session_with_explicit_response(app: django_app.TestApp) -> None:
    browser = Browser()
    _promotable(browser)
    response = browser.request("GET", "/django/explicit-response")
    assert json.loads(response.content) == {"user_id": "erin"}
    assert set(cookies_of(response)) == {"sAccessToken"}
    assert len(wire_set_cookies(response)) == 1


def test_effects_reach_the_response_actually_returned(app: django_app.TestApp) -> None:
    browser = Browser()
    _promotable(browser)
    response = browser.request("GET", "/django/other-response")
    assert json.loads(response.content) == {"user_id": "erin"}
    assert set(cookies_of(response)) == {"sAccessToken"}
    assert "front-token" in response.headers
    assert response.headers["Cache-Control"] == "no-store"


def test_unhandled_exception_drops_pending_cookies(app: django_app.TestApp) -> None:
    response = Client(raise_request_exception=False).post("/django/login-then-crash")
    assert response.status_code == 500
    assert response.cookies == SimpleCookie()
    assert "front-token" not in response.headers
    assert "id-refresh-token" not in response.headers


def test_create_then_update_on_the_same_response_is_not_duplicated(app: django_app.TestApp) -> None:
    response = Browser().request("POST", "/django/login-then-update")
    assert len(wire_set_cookies(response)) == 3
    cookies = cookies_of(response)
    assert claims_of(cookies["sAccessToken"].value)["userData"] == {"v": 2}
    assert front_token(response)["up"] == {"v": 2}
    exposed = [item.strip() for item in response.headers["Access-Control-Expose-Headers"].split(",")]
    assert len(exposed) == len(set(exposed))


def test_apply_effects_is_idempotent_and_merges_expose_headers(app: django_app.TestApp) -> None:
    response = HttpResponse()
    response.headers["Access-Control-Expose-Headers"] = "x-app"
    session = sw.create_new_session(response, "fay")
    sw.apply_effects(response, response._sessionward_effects)
    assert len(response.cookies) == 3
    assert response.headers["Access-Control-Expose-Headers"] == "x-app, id-refresh-token, front-token"
    assert session.user_id == "fay"


# -- errors -----------------------------------------------------------------------------------------


def teapot_handler(error: Exception, default: ErrorResponse) -> ErrorResponse:
    if isinstance(error, TryRefreshTokenError):
        return default._replace(status=418, body=b'{"message": "refresh please"}')
    return default


def test_error_handler_override_by_dotted_path(store: str) -> None:
    with django_app.configured(make_config(store)):
        options = {
            **django_app.sessionward_settings(make_config(store)),
            "error_handler": f"{__name__}.teapot_handler",
        }
        with override_settings(SESSIONWARD=options):
            browser = Browser()
            browser.login()
            response = browser.request("GET", "/protected", cookie=browser.only("sIdRefreshToken"))
            assert response.status_code == 418
            assert json.loads(response.content) == {"message": "refresh please"}
            assert_message(browser.request("GET", "/protected", cookie=""), 401, "unauthorised")


def test_error_handler_override_by_callable_can_clear_cookies(store: str) -> None:
    def clear_on_refresh(error: Exception, default: ErrorResponse) -> ErrorResponse:
        return default._replace(clear_cookies=True) if isinstance(error, TryRefreshTokenError) else default

    with django_app.configured(make_config(store), error_handler=clear_on_refresh):
        browser = Browser()
        browser.login()
        response = browser.request("GET", "/protected", cookie=browser.only("sIdRefreshToken"))
        assert_message(response, 401, "try refresh token")
        assert_cleared(response)


def test_general_error_is_a_500_without_internals(app: django_app.TestApp) -> None:
    huge = {"blob": "x" * 5000}  # the access cookie would exceed 4096 bytes
    response = Browser().request("POST", "/login", {"user_id": "gus", "payload": huge, "data": None})
    assert_message(response, 500, "internal error")
    assert_untouched(response)


# -- preflight --------------------------------------------------------------------------------------


def test_preflight_route_and_helper(app: django_app.TestApp) -> None:
    response = Browser().request("OPTIONS", "/protected")
    assert response.status_code == 204
    allowed = {item.strip() for item in response.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"anti-csrf", "fdi-version", "supertokens-sdk-name", "supertokens-sdk-version"} <= allowed
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    existing = HttpResponse()
    existing.headers["Access-Control-Allow-Headers"] = "Content-Type, anti-csrf"
    assert sw.preflight(existing) is existing
    assert existing.headers["Access-Control-Allow-Headers"] == (
        "Content-Type, anti-csrf, fdi-version, supertokens-sdk-name, supertokens-sdk-version, "
        "rid, st-auth-mode, authorization"
    )


# -- async views ------------------------------------------------------------------------------------


def test_async_views_with_async_client(app: django_app.TestApp) -> None:
    browser = Browser()
    browser.login("ada", {"v": 1})
    cookie = browser.cookie_for("/django/async-protected")
    before = claims_of(browser.jar["sAccessToken"].value)

    async def scenario() -> None:
        client = AsyncClient()
        ok = await client.get("/django/async-protected", headers={"cookie": cookie})
        assert ok.status_code == 200
        assert json.loads(ok.content)["user_id"] == "ada"
        assert wire_set_cookies(ok) == []
        anonymous = await client.get("/django/async-optional")
        assert json.loads(anonymous.content) == {"user_id": None}
        denied = await client.get("/django/async-protected")
        assert_message(denied, 401, "unauthorised")
        assert_untouched(denied)
        updated = await client.post(
            "/django/async-update-payload",
            {"v": 2},
            content_type="application/json",
            headers={"cookie": cookie},
        )
        assert updated.status_code == 200
        cookies = cookies_of(updated)
        assert set(cookies) == {"sAccessToken"}
        assert claims_of(cookies["sAccessToken"].value)["exp"] == before["exp"]
        assert front_token(updated)["up"] == {"v": 2}
        # A sync view served by the async handler (middleware in async mode).
        # The test client's own jar would add a second Cookie header (a duplicate: rejected).
        duplicated = await client.get("/protected", headers={"cookie": cookie})
        assert_message(duplicated, 401, "try refresh token")
        client.cookies = SimpleCookie()
        sync_view = await client.get("/protected", headers={"cookie": cookie})
        assert sync_view.status_code == 200
        refresh_cookie = browser.cookie_for("/session/refresh")
        refresh = await client.post("/session/refresh", headers={"cookie": refresh_cookie})
        assert refresh.status_code == 200
        assert set(cookies_of(refresh)) == set(SESSION_COOKIES)

    asyncio.run(scenario())


# -- settings and set-up ----------------------------------------------------------------------------


def test_engine_follows_the_settings(store: str) -> None:
    with django_app.configured(make_config(store)):
        first = sw.get_engine()
        assert sw.get_engine() is first
        with django_app.configured(make_config(store, access_token_validity=60)):
            second = sw.get_engine()
            assert second is not first
            assert second.config.access_token_validity == 60
        assert sw.get_engine().config.access_token_validity == 3600


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        ({"access_token_validity": 0}, "access_token_validity"),
        ({"no_such_option": 1}, "no_such_option"),
        ({"error_handler": "no.such.module.handler"}, "error_handler"),
        ({"on_token_theft_detected": 42}, "on_token_theft_detected"),
    ],
)
def test_invalid_settings_raise_config_error(options: dict[str, Any], needle: str) -> None:
    with override_settings(SESSIONWARD={"store": "sqlite:///:memory:", **options}):
        with pytest.raises(ConfigError, match=needle):
            sw.get_engine()
        with pytest.raises(ConfigError, match=needle):
            from sessionward.django.apps import SessionWardConfig

            SessionWardConfig.ready(None)  # type: ignore[arg-type]


def test_verify_session_needs_the_middleware(app: django_app.TestApp) -> None:
    with override_settings(MIDDLEWARE=[]), pytest.raises(ImproperlyConfigured, match="SessionWardMiddleware"):
        Client().get("/protected")


def test_cookie_header_reading() -> None:
    from sessionward.django.api import cookie_header

    class AsgiLike:
        def __init__(self) -> None:
            self.scope = {"headers": [(b"cookie", b"a=1"), (b"x", b"y"), (b"Cookie", b"b=2")]}
            self.META = {"HTTP_COOKIE": "a=1,b=2"}

    class WsgiLike:
        def __init__(self) -> None:
            self.META = {"HTTP_COOKIE": "a=1; b=2"}

    assert cookie_header(AsgiLike()) == "a=1; b=2"
    assert cookie_header(WsgiLike()) == "a=1; b=2"
