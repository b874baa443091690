"""The Flask adapter through Flask's own test client.

The client runs with ``use_cookies=False``: each test keeps its cookies in a small jar that
reads the raw ``Set-Cookie`` headers, so every attribute is checked as sent and every
request carries exactly the ``Cookie`` header the test means.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, current_app, request
from flask.testing import FlaskClient
from werkzeug.local import LocalProxy
from werkzeug.test import TestResponse

from frameworks.apps.flask_app import create_app
from sessionward import Config, GeneralError, SessionWardError, TryRefreshTokenError
from sessionward.flask import (
    create_new_session,
    current_session,
    get_all_session_handles_for_user,
    get_jwt_payload,
    get_session,
    get_session_data,
    get_session_information,
    init,
    preflight,
    revoke_multiple_sessions,
    revoke_session,
    update_jwt_payload,
    update_session_data,
    verify_session,
)
from sessionward.transport import ErrorResponse

ACCESS, REFRESH, ID_REFRESH = "sAccessToken", "sRefreshToken", "sIdRefreshToken"
EXPIRED = "Thu, 01 Jan 1970 00:00:00 GMT"


# -- helpers -----------------------------------------------------------------------------


def parse_set_cookie(header: str) -> tuple[str, str, dict[str, str]]:
    """(name, raw value, attributes with lower-cased names; flags map to "")."""
    first, *rest = header.split(";")
    name, _, value = first.partition("=")
    attributes: dict[str, str] = {}
    for part in rest:
        key, _, attr_value = part.strip().partition("=")
        attributes[key.lower()] = attr_value
    return name.strip(), value.strip(), attributes


def set_cookies(response: TestResponse) -> dict[str, tuple[str, dict[str, str]]]:
    """The response's Set-Cookie headers by name; fails on two for one name."""
    found: dict[str, tuple[str, dict[str, str]]] = {}
    for header in response.headers.getlist("Set-Cookie"):
        name, value, attributes = parse_set_cookie(header)
        assert name not in found, f"two Set-Cookie headers for {name}"
        found[name] = (value, attributes)
    return found


def assert_cleared(response: TestResponse) -> None:
    cookies = set_cookies(response)
    assert set(cookies) == {ACCESS, REFRESH, ID_REFRESH}
    for value, attributes in cookies.values():
        assert value == ""
        assert attributes["expires"] == EXPIRED
    assert response.headers["id-refresh-token"] == "remove"
    assert "front-token" not in response.headers


class Browser:
    """A cookie jar honouring each cookie's Path, over a cookie-less Flask test client."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        self.jar: dict[str, tuple[str, str]] = {}  # name -> (raw value, path)
        self.anti_csrf: str | None = None

    def cookie_header(self, path: str) -> str:
        return "; ".join(
            f"{name}={value}"
            for name, (value, cookie_path) in self.jar.items()
            if path.startswith(cookie_path)
        )

    def request(self, method: str, path: str, *, send_anti_csrf: bool = True, **kwargs: Any) -> TestResponse:
        headers = dict(kwargs.pop("headers", {}))
        cookie = self.cookie_header(path)
        if cookie:
            headers["Cookie"] = cookie
        if send_anti_csrf and self.anti_csrf is not None:
            headers["anti-csrf"] = self.anti_csrf
        response = self.client.open(path, method=method, headers=headers, **kwargs)
        for name, (value, attributes) in set_cookies(response).items():
            if attributes.get("expires") == EXPIRED:
                self.jar.pop(name, None)
            else:
                self.jar[name] = (value, attributes["path"])
        if "anti-csrf" in response.headers:
            self.anti_csrf = response.headers["anti-csrf"]
        return response

    def login(self, user_id: str = "alice", payload: dict[str, Any] | None = None) -> TestResponse:
        response = self.request("POST", "/login", json={"user_id": user_id, "payload": payload, "data": None})
        assert response.status_code == 200
        return response

    def refresh(self, **kwargs: Any) -> TestResponse:
        return self.request("POST", "/session/refresh", **kwargs)


def base_config(**options: Any) -> Config:
    values: dict[str, Any] = {"store": "sqlite:///:memory:", "access_token_algorithm": "ES256"}
    values.update(options)
    return Config(**values)


@pytest.fixture
def make_app() -> Iterator[Callable[..., Flask]]:
    """Builds test apps and closes their engines afterwards."""
    apps: list[Flask] = []

    def make(config: Config | None = None, store: str | None = None, **options: Any) -> Flask:
        app = create_app(config if config is not None else base_config(**options), store)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions["sessionward"].close()


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture
def browser(app: Flask) -> Browser:
    return Browser(app.test_client(use_cookies=False))


@pytest.fixture
def custom_apps() -> Iterator[list[Flask]]:
    """Apps a test builds by hand with ``init``; their engines are closed afterwards."""
    apps: list[Flask] = []
    yield apps
    for app in apps:
        app.extensions["sessionward"].close()


# -- login ------------------------------------------------------------------------------


# -- verification -----------------------------------------------------------------------


# -- refresh ---------------------------------------------------------------------------


def test_refresh_path_follows_config(make_app: Callable[..., Flask]) -> None:
    browser = Browser(make_app(refresh_api_path="/auth/session/refresh").test_client(use_cookies=False))
    login = browser.login()
    assert set_cookies(login)[REFRESH][1]["path"] == "/auth/session/refresh"
    assert browser.request("POST", "/auth/session/refresh").status_code == 200
    assert browser.request("POST", "/session/refresh").status_code == 404


# -- anti-CSRF --------------------------------------------------------------------------


def test_anti_csrf_check_can_be_forced_per_view(custom_apps: list[Flask]) -> None:
    app = Flask(__name__)
    init(app, base_config(enable_anti_csrf=True))
    custom_apps.append(app)

    @app.post("/login")
    def login() -> Any:
        create_new_session(None, "u")
        return {}

    @app.get("/strict")
    @verify_session(anti_csrf_check=True)
    def strict() -> Any:
        return {"ok": True}

    @app.post("/lenient")
    @verify_session(anti_csrf_check=False)
    def lenient() -> Any:
        return {"ok": True}

    browser = Browser(app.test_client(use_cookies=False))
    browser.request("POST", "/login")
    assert browser.request("GET", "/strict", send_anti_csrf=False).status_code == 401
    assert browser.request("GET", "/strict").status_code == 200
    assert browser.request("POST", "/lenient", send_anti_csrf=False).status_code == 200


# -- session methods ---------------------------------------------------------------------


# -- responses: explicit vs returned -------------------------------------------------------


def test_cookies_reach_a_returned_response_other_than_the_one_passed(custom_apps: list[Flask]) -> None:
    app = Flask(__name__)
    init(app, base_config())
    custom_apps.append(app)

    @app.post("/login-other")
    def login_other() -> Any:
        create_new_session(current_app.response_class(), "alice")
        return {"other": True}  # a different response: the after_request hook delivers

    @app.post("/login-none")
    def login_none() -> Any:
        session = create_new_session(None, "alice")
        return {"handle": session.handle, "current": current_session.handle}

    @app.post("/login-same")
    def login_same() -> Any:
        response = current_app.response_class("{}", mimetype="application/json")
        response.headers["Access-Control-Expose-Headers"] = "x-app-header"
        create_new_session(response, "alice")
        return response  # already carries them: the hook replaces, never duplicates

    client = app.test_client(use_cookies=False)
    for path in ("/login-other", "/login-none", "/login-same"):
        response = client.post(path)
        assert response.status_code == 200
        assert set(set_cookies(response)) == {ACCESS, REFRESH, ID_REFRESH}
        assert len(response.headers.getlist("id-refresh-token")) == 1
        assert len(response.headers.getlist("front-token")) == 1
        assert len(response.headers.getlist("Access-Control-Expose-Headers")) == 1
        assert len(response.headers.getlist("Cache-Control")) == 1
    body = client.post("/login-none").get_json()
    assert body["handle"] == body["current"]
    exposed = client.post("/login-same").headers["Access-Control-Expose-Headers"]
    assert [h.strip() for h in exposed.split(",")] == ["x-app-header", "id-refresh-token", "front-token"]


def test_get_session_with_an_explicit_response(custom_apps: list[Flask]) -> None:
    app = Flask(__name__)
    init(app, base_config())
    custom_apps.append(app)

    @app.post("/login")
    def login() -> Any:
        create_new_session(None, "alice")
        return {}

    @app.get("/explicit")
    def explicit() -> Any:
        response = current_app.response_class("{}", mimetype="application/json")
        session = get_session(request, response)
        # Before the hook runs, a promoted token is already on the explicit response.
        response.headers["x-had-cookie"] = str(bool(response.headers.getlist("Set-Cookie")))
        response.set_data(json.dumps({"user_id": session.user_id}))
        return response

    browser = Browser(app.test_client(use_cookies=False))
    browser.request("POST", "/login")
    browser.refresh()
    response = browser.request("GET", "/explicit")
    assert response.status_code == 200
    assert response.get_json() == {"user_id": "alice"}
    assert response.headers["x-had-cookie"] == "True"
    assert set(set_cookies(response)) == {ACCESS}
    assert len(response.headers.getlist("front-token")) == 1
    # Without cookies get_session raises, and the error handler answers.
    assert app.test_client(use_cookies=False).get("/explicit").status_code == 401


def test_user_set_cookie_of_same_name_is_replaced_not_duplicated(custom_apps: list[Flask]) -> None:
    app = Flask(__name__)
    init(app, base_config())
    custom_apps.append(app)

    @app.post("/login")
    def login() -> Any:
        response = current_app.response_class("{}", mimetype="application/json")
        response.set_cookie(ACCESS, "stale")
        response.set_cookie("theme", "dark")
        create_new_session(None, "alice")
        return response

    response = app.test_client(use_cookies=False).post("/login")
    cookies = set_cookies(response)
    assert set(cookies) == {ACCESS, REFRESH, ID_REFRESH, "theme"}
    assert cookies[ACCESS][0] != "stale"


# -- errors ------------------------------------------------------------------------------


def test_general_error_is_500_without_internals(custom_apps: list[Flask]) -> None:
    app = Flask(__name__)
    init(app, base_config())
    custom_apps.append(app)

    @app.post("/boom")
    def boom() -> Any:
        create_new_session(None, "alice")
        raise GeneralError("secret internals")

    @app.post("/huge")
    def huge() -> Any:
        create_new_session(None, "alice", {"blob": "x" * 5000})
        return {}

    client = app.test_client(use_cookies=False)
    for path in ("/boom", "/huge"):
        response = client.post(path)
        assert response.status_code == 500
        assert response.get_json() == {"message": "internal error"}
        assert b"secret" not in response.data
        assert response.headers.getlist("Set-Cookie") == []


def test_unhandled_exception_drops_pending_cookies(custom_apps: list[Flask]) -> None:
    app = Flask(__name__)
    init(app, base_config())
    custom_apps.append(app)

    @app.post("/crash")
    def crash() -> Any:
        create_new_session(None, "alice")
        raise ValueError("bug")

    response = app.test_client(use_cookies=False).post("/crash")
    assert response.status_code == 500
    assert response.headers.getlist("Set-Cookie") == []


def test_error_handler_override_and_theft_hook(custom_apps: list[Flask]) -> None:
    seen: list[tuple[str, int]] = []

    def answer(error: SessionWardError, default: ErrorResponse) -> ErrorResponse:
        seen.append((type(error).__name__, default.status))
        if isinstance(error, TryRefreshTokenError):
            return default._replace(
                status=419, body=b'{"message": "refresh please"}', headers=(("x-why", "expired"),)
            )
        return default

    thefts: list[tuple[str, str]] = []
    app = Flask(__name__)
    init(
        app,
        store="sqlite:///:memory:",
        access_token_algorithm="ES256",
        refresh_token_reuse_grace_period=0,
        error_handler=answer,
        on_token_theft_detected=lambda handle, user_id: thefts.append((handle, user_id)),
    )
    custom_apps.append(app)

    @app.post("/login")
    def login() -> Any:
        return {"handle": create_new_session(None, "carol").handle}

    @app.get("/p")
    @verify_session()
    def protected() -> Any:
        return {"user_id": current_session.user_id}

    browser = Browser(app.test_client(use_cookies=False))
    handle = browser.request("POST", "/login").get_json()["handle"]
    stolen = dict(browser.jar)
    del browser.jar[ACCESS]
    response = browser.request("GET", "/p")
    assert response.status_code == 419
    assert response.get_json() == {"message": "refresh please"}
    assert response.headers["x-why"] == "expired"
    assert seen == [("TryRefreshTokenError", 401)]

    browser.refresh()
    assert browser.request("GET", "/p").status_code == 200
    browser.jar = stolen
    theft = browser.refresh()
    assert theft.status_code == 401
    assert theft.get_json() == {"message": "token theft detected"}
    assert_cleared(theft)
    assert thefts == [(handle, "carol")]


# -- preflight ----------------------------------------------------------------------------


def test_preflight_merges_with_app_allow_headers(app: Flask) -> None:
    with app.test_request_context():
        response = app.response_class(status=204)
        response.headers["Access-Control-Allow-Headers"] = "Content-Type, anti-csrf"
        preflight(response)
    assert response.headers["Access-Control-Allow-Headers"] == (
        "Content-Type, anti-csrf, fdi-version, supertokens-sdk-name, supertokens-sdk-version, "
        "rid, st-auth-mode, authorization"
    )


def test_verify_session_skips_options(custom_apps: list[Flask]) -> None:
    app = Flask(__name__)
    init(app, base_config())
    custom_apps.append(app)

    @app.route("/both", methods=["GET", "OPTIONS"])
    @verify_session()
    def both() -> Any:
        if request.method == "OPTIONS":
            return preflight(current_app.response_class(status=204))
        return {"user_id": current_session.user_id}

    client = app.test_client(use_cookies=False)
    assert client.options("/both").status_code == 204
    assert client.get("/both").status_code == 401


# -- set-up and management ---------------------------------------------------------------


def test_management_calls_use_the_current_app(browser: Browser, app: Flask) -> None:
    handle = browser.login("alice", {"p": 1}).get_json()["handle"]
    with app.app_context():
        assert get_all_session_handles_for_user("alice") == [handle]
        assert get_jwt_payload(handle) == {"p": 1}
        update_jwt_payload(handle, {"p": 2})
        assert get_jwt_payload(handle) == {"p": 2}
        assert get_session_data(handle) == {}
        update_session_data(handle, {"d": True})
        info = get_session_information(handle)
        assert (info.handle, info.user_id, info.session_data, info.jwt_payload) == (
            handle,
            "alice",
            {"d": True},
            {"p": 2},
        )
        assert revoke_multiple_sessions([handle, "nope"]) == [handle]
        assert revoke_session(handle) is False
    assert browser.refresh().status_code == 401


def test_management_call_without_init_is_a_clear_error() -> None:
    app = Flask(__name__)
    with app.app_context(), pytest.raises(GeneralError, match="init"):
        revoke_session("x")


def test_init_twice_is_refused(app: Flask) -> None:
    with pytest.raises(GeneralError, match="already"):
        init(app, base_config())


def test_init_reads_app_config_and_options(custom_apps: list[Flask]) -> None:
    app = Flask(__name__)
    app.config["SESSIONWARD"] = {
        "store": "sqlite:///:memory:",
        "refresh_api_path": "/r",
        "cookie_secure": False,
    }
    extension = init(app)
    custom_apps.append(app)
    assert extension is app.extensions["sessionward"]
    assert extension.config.refresh_api_path == "/r"
    assert extension.engine.config is extension.config

    other = Flask(__name__)
    extension = init(other, base_config(), access_token_validity=60)
    custom_apps.append(other)
    assert extension.config.access_token_validity == 60
    assert extension.config.access_token_algorithm == "ES256"


def test_current_session_is_none_outside_a_verified_request(app: Flask) -> None:
    with app.test_request_context():
        assert not current_session


def test_current_session_proxy_reads_the_request_session(browser: Browser, app: Flask) -> None:
    """The proxy's attribute fast path answers exactly what a plain ``LocalProxy`` would."""
    browser.login()
    cookie = browser.cookie_header("/protected")
    assert isinstance(current_session, LocalProxy)
    names = ("user_id", "handle", "jwt_payload", "access_token")
    with app.test_request_context("/protected", headers={"Cookie": cookie}):
        plain = LocalProxy(lambda: current_session._get_current_object())
        for name in names:
            with pytest.raises(AttributeError) as fast:
                getattr(current_session, name)
            with pytest.raises(AttributeError) as slow:
                getattr(plain, name)
            assert str(fast.value) == str(slow.value)
        session = get_session(request)
        assert current_session._get_current_object() is session
        for name in names:
            assert getattr(current_session, name) is getattr(session, name) is getattr(plain, name)
        current_session.jwt_payload = {"set": "through the proxy"}
        assert session.jwt_payload == {"set": "through the proxy"}
        assert repr(current_session) == repr(session)
        assert current_session.get_session_data() == {}


def test_app_context_around_several_requests_does_not_leak(browser: Browser, app: Flask) -> None:
    with app.app_context():
        assert set(set_cookies(browser.login())) == {ACCESS, REFRESH, ID_REFRESH}
        response = browser.request("GET", "/protected")
        assert response.status_code == 200
        assert response.headers.getlist("Set-Cookie") == []
        assert browser.request("GET", "/optional").get_json() == {"user_id": "alice"}
        assert app.test_client(use_cookies=False).get("/optional").get_json() == {"user_id": None}


def test_async_view(custom_apps: list[Flask]) -> None:
    pytest.importorskip("asgiref", reason="Flask async views need asgiref")
    app = Flask(__name__)
    init(app, base_config())
    custom_apps.append(app)

    @app.post("/login")
    def login() -> Any:
        create_new_session(None, "dave")
        return {}

    @app.get("/async")
    @verify_session()
    async def async_view() -> Any:
        return {"user_id": current_session.user_id}

    browser = Browser(app.test_client(use_cookies=False))
    browser.request("POST", "/login")
    assert browser.request("GET", "/async").get_json() == {"user_id": "dave"}
    browser.refresh()
    promoted = browser.request("GET", "/async")
    assert promoted.status_code == 200
    assert set(set_cookies(promoted)) == {ACCESS}


def test_example_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the example keeps its sessions in ./example-sessions.db
    path = Path(__file__).resolve().parents[2] / "examples" / "flask_app.py"
    spec = importlib.util.spec_from_file_location("sessionward_flask_example", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    app: Flask = module.app
    try:
        browser = Browser(app.test_client(use_cookies=False))
        assert browser.request("GET", "/").status_code == 200
        assert browser.request("GET", "/api/me").status_code == 401
        assert browser.request("POST", "/api/login", json={"name": ""}).status_code == 400
        login = browser.request("POST", "/api/login", json={"name": "eve"})
        assert login.status_code == 200
        assert "secure" not in set_cookies(login)[ACCESS][1]
        me = browser.request("GET", "/api/me").get_json()
        payload = {"name": "eve", "role": "reader"}
        assert me == {"user_id": "eve", "payload": payload, "visits": 1, "sessions": 1}
        promoted = browser.request("POST", "/api/promote")
        assert promoted.get_json()["payload"]["role"] == "editor"
        assert set(set_cookies(promoted)) == {ACCESS}
        assert browser.request("GET", "/api/me").get_json()["visits"] == 2
        assert browser.request("OPTIONS", "/api/me").status_code == 204
        other = Browser(app.test_client(use_cookies=False))
        other.request("POST", "/api/login", json={"name": "eve"})
        everywhere = browser.request("POST", "/api/logout-everywhere")
        assert everywhere.get_json() == {"revoked": 2}
        assert_cleared(everywhere)
        assert other.refresh().status_code == 401
        browser.request("POST", "/api/login", json={"name": "eve"})
        assert_cleared(browser.request("POST", "/api/logout"))
    finally:
        app.extensions["sessionward"].close()
