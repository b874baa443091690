"""The Flask adapter through Flask's own test client.

The client runs with ``use_cookies=False``: each test keeps its cookies in a small jar that
reads the raw ``Set-Cookie`` headers, so every attribute is checked as sent and every
request carries exactly the ``Cookie`` header the test means.
"""

from __future__ import annotations

import base64
import email.utils
import importlib.util
import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from apps.flask_app import create_app
from flask import Flask, current_app, request
from flask.testing import FlaskClient
from werkzeug.local import LocalProxy
from werkzeug.test import TestResponse

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


def decode_front_token(value: str) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(base64.b64decode(value))
    return decoded


def claims(token: str) -> dict[str, Any]:
    segment = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    return decoded


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


def _decoded_access(browser: Browser) -> str:
    return unquote(browser.jar[ACCESS][0])


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


@pytest.mark.parametrize("secure", [True, False])
def test_login_sets_three_cookies_with_exact_attributes(make_app: Callable[..., Flask], secure: bool) -> None:
    app = make_app(cookie_secure=secure, access_token_algorithm="RS256")
    browser = Browser(app.test_client(use_cookies=False))
    before_ms = int(time.time() * 1000)
    response = browser.login("alice", {"role": "admin"})
    cookies = set_cookies(response)
    assert set(cookies) == {ACCESS, REFRESH, ID_REFRESH}
    for name, (value, attributes) in cookies.items():
        assert value
        assert attributes["path"] == ("/session/refresh" if name == REFRESH else "/")
        assert "httponly" in attributes
        assert attributes["samesite"] == "Lax"
        assert ("secure" in attributes) is secure
        assert "domain" not in attributes
        expires = email.utils.parsedate_to_datetime(attributes["expires"]).timestamp()
        validity = 3600 if name == ACCESS else 8_640_000
        assert abs(expires - (before_ms / 1000 + validity)) < 5
    # Percent-encoded on the wire; no raw base64 specials in the refresh cookie.
    assert not set("+/=") & set(cookies[REFRESH][0])

    id_value, _, expiry_ms = response.headers["id-refresh-token"].partition(";")
    assert id_value == cookies[ID_REFRESH][0]
    assert abs(int(expiry_ms) - (before_ms + 8_640_000_000)) < 5000
    front = decode_front_token(response.headers["front-token"])
    exp = claims(_decoded_access(browser))["exp"]
    assert front == {"uid": "alice", "ate": exp * 1000, "up": {"role": "admin"}}
    assert list(front) == ["uid", "ate", "up"]
    assert "anti-csrf" not in response.headers
    exposed = {h.strip() for h in response.headers["Access-Control-Expose-Headers"].split(",")}
    assert exposed == {"id-refresh-token", "front-token"}
    assert response.headers["Cache-Control"] == "no-store"
    engine = app.extensions["sessionward"].engine
    assert response.get_json() == {"handle": engine.get_all_session_handles_for_user("alice")[0]}


def test_login_with_anti_csrf_and_domain(make_app: Callable[..., Flask]) -> None:
    app = make_app(enable_anti_csrf=True, cookie_domain="example.com", cookie_same_site="strict")
    response = Browser(app.test_client(use_cookies=False)).login()
    for _value, attributes in set_cookies(response).values():
        assert attributes["domain"] == "example.com"
        assert attributes["samesite"] == "Strict"
    assert response.headers["anti-csrf"]
    exposed = {h.strip() for h in response.headers["Access-Control-Expose-Headers"].split(",")}
    assert exposed == {"id-refresh-token", "front-token", "anti-csrf"}


def test_non_ascii_front_token_is_ascii_escaped(browser: Browser) -> None:
    response = browser.login("zoë", {"name": "Jürgen"})
    raw = base64.b64decode(response.headers["front-token"])
    assert raw.isascii()
    assert json.loads(raw)["uid"] == "zoë"


# -- verification -----------------------------------------------------------------------


def test_protected_route_ok_without_set_cookie(browser: Browser) -> None:
    login = browser.login("alice", {"k": 1})
    response = browser.request("GET", "/protected")
    assert response.status_code == 200
    handle = login.get_json()["handle"]
    assert response.get_json() == {"user_id": "alice", "handle": handle, "payload": {"k": 1}}
    assert response.headers.getlist("Set-Cookie") == []
    assert "front-token" not in response.headers


def test_missing_id_refresh_cookie_is_unauthorised_and_touches_nothing(browser: Browser) -> None:
    browser.login()
    del browser.jar[ID_REFRESH]
    response = browser.request("GET", "/protected")
    assert response.status_code == 401
    assert response.get_json() == {"message": "unauthorised"}
    assert response.headers.getlist("Set-Cookie") == []
    assert "id-refresh-token" not in response.headers


def test_no_cookies_at_all_is_unauthorised(browser: Browser) -> None:
    response = browser.request("POST", "/protected")
    assert response.status_code == 401
    assert response.get_json() == {"message": "unauthorised"}
    assert response.headers.getlist("Set-Cookie") == []


def test_missing_access_cookie_says_try_refresh(browser: Browser) -> None:
    browser.login()
    del browser.jar[ACCESS]
    response = browser.request("GET", "/protected")
    assert response.status_code == 401
    assert response.get_json() == {"message": "try refresh token"}
    assert response.headers.getlist("Set-Cookie") == []
    assert "id-refresh-token" not in response.headers


def test_garbage_access_token_says_try_refresh(browser: Browser) -> None:
    browser.login()
    browser.jar[ACCESS] = ("not.a.jwt", "/")
    response = browser.request("GET", "/protected")
    assert response.status_code == 401
    assert response.get_json() == {"message": "try refresh token"}
    assert response.headers.getlist("Set-Cookie") == []
    assert b"not.a.jwt" not in response.data


@pytest.mark.parametrize(
    ("duplicate", "message"), [(ID_REFRESH, "unauthorised"), (ACCESS, "try refresh token")]
)
def test_duplicate_cookie_names_are_refused(
    browser: Browser, app: Flask, duplicate: str, message: str
) -> None:
    browser.login()
    header = browser.cookie_header("/protected") + f"; {duplicate}={browser.jar[duplicate][0]}"
    response = app.test_client(use_cookies=False).get("/protected", headers={"Cookie": header})
    assert response.status_code == 401
    assert response.get_json() == {"message": message}
    assert response.headers.getlist("Set-Cookie") == []


def test_repeated_cookie_headers_count_as_duplicates(browser: Browser, app: Flask) -> None:
    """WSGI joins repeated Cookie headers with a comma; the verdict matches ASGI's."""
    browser.login()
    client = app.test_client(use_cookies=False)
    cookie = browser.cookie_header("/protected")
    ok = client.get("/protected", headers=[("Cookie", cookie)])
    assert ok.status_code == 200
    doubled = client.get("/protected", headers=[("Cookie", cookie), ("Cookie", "sIdRefreshToken=x")])
    assert doubled.status_code == 401
    assert doubled.get_json() == {"message": "unauthorised"}
    assert doubled.headers.getlist("Set-Cookie") == []
    access = f"sAccessToken={browser.jar[ACCESS][0]}"
    split = client.get("/protected", headers=[("Cookie", cookie), ("Cookie", access)])
    assert split.get_json() == {"message": "try refresh token"}


def test_session_expired_status_code_is_configurable(make_app: Callable[..., Flask]) -> None:
    browser = Browser(make_app(session_expired_status_code=440).test_client(use_cookies=False))
    assert browser.request("GET", "/protected").status_code == 440


def test_optional_session(browser: Browser) -> None:
    response = browser.request("GET", "/optional")
    assert response.status_code == 200
    assert response.get_json() == {"user_id": None}
    browser.login("bob")
    assert browser.request("GET", "/optional").get_json() == {"user_id": "bob"}
    # A session whose access token is missing is still told to refresh.
    del browser.jar[ACCESS]
    response = browser.request("GET", "/optional")
    assert response.status_code == 401
    assert response.get_json() == {"message": "try refresh token"}


def test_health_route_without_session(browser: Browser) -> None:
    response = browser.request("GET", "/health")
    assert response.status_code == 200
    assert response.headers.getlist("Set-Cookie") == []


# -- refresh ---------------------------------------------------------------------------


def test_refresh_rotates_and_first_use_promotes(browser: Browser) -> None:
    browser.login("alice", {"p": 1})
    old = dict(browser.jar)
    response = browser.refresh()
    assert response.status_code == 200
    assert response.get_json() == {}
    cookies = set_cookies(response)
    assert set(cookies) == {ACCESS, REFRESH, ID_REFRESH}
    assert cookies[ACCESS][0] != old[ACCESS][0]
    assert cookies[REFRESH][0] != old[REFRESH][0]
    assert response.headers["id-refresh-token"].startswith(cookies[ID_REFRESH][0] + ";")
    assert decode_front_token(response.headers["front-token"])["up"] == {"p": 1}
    assert response.headers["Cache-Control"] == "no-store"

    # First use of the new access token commits the rotation and re-issues the access token.
    first_use = browser.request("GET", "/protected")
    assert first_use.status_code == 200
    promoted = set_cookies(first_use)
    assert set(promoted) == {ACCESS}
    assert promoted[ACCESS][0] != cookies[ACCESS][0]
    front = decode_front_token(first_use.headers["front-token"])
    assert front["uid"] == "alice"
    assert "front-token" in first_use.headers["Access-Control-Expose-Headers"]
    assert first_use.headers["Cache-Control"] == "no-store"
    # Later uses carry nothing new.
    again = browser.request("GET", "/protected")
    assert again.status_code == 200
    assert again.headers.getlist("Set-Cookie") == []


def test_refresh_without_refresh_cookie_touches_nothing(browser: Browser) -> None:
    browser.login()
    del browser.jar[REFRESH]
    response = browser.refresh()
    assert response.status_code == 401
    assert response.get_json() == {"message": "unauthorised"}
    assert response.headers.getlist("Set-Cookie") == []
    assert "id-refresh-token" not in response.headers


def test_refresh_with_garbage_clears_cookies(browser: Browser) -> None:
    browser.login()
    browser.jar[REFRESH] = ("garbage", "/session/refresh")
    response = browser.refresh()
    assert response.status_code == 401
    assert response.get_json() == {"message": "unauthorised"}
    assert_cleared(response)


def test_refresh_route_is_post_only(browser: Browser) -> None:
    assert browser.request("GET", "/session/refresh").status_code == 405


def test_refresh_route_answers_its_preflight(browser: Browser) -> None:
    response = browser.request("OPTIONS", "/session/refresh")
    assert response.status_code == 204
    allowed = {h.strip() for h in response.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"anti-csrf", "fdi-version"} <= allowed


def test_refresh_path_follows_config(make_app: Callable[..., Flask]) -> None:
    browser = Browser(make_app(refresh_api_path="/auth/session/refresh").test_client(use_cookies=False))
    login = browser.login()
    assert set_cookies(login)[REFRESH][1]["path"] == "/auth/session/refresh"
    assert browser.request("POST", "/auth/session/refresh").status_code == 200
    assert browser.request("POST", "/session/refresh").status_code == 404


def test_predecessor_within_grace_gets_the_same_successor(browser: Browser) -> None:
    browser.login()
    old = dict(browser.jar)
    browser.refresh()
    browser.request("GET", "/protected")  # promotion
    successor = browser.jar[REFRESH]
    browser.jar = dict(old)
    response = browser.refresh()
    assert response.status_code == 200
    assert set_cookies(response)[REFRESH][0] == successor[0]


def test_old_refresh_token_after_grace_is_theft(make_app: Callable[..., Flask]) -> None:
    app = make_app(refresh_token_reuse_grace_period=0)
    browser = Browser(app.test_client(use_cookies=False))
    handle = browser.login("alice").get_json()["handle"]
    stolen = dict(browser.jar)
    assert browser.refresh().status_code == 200
    assert browser.request("GET", "/protected").status_code == 200  # promotion commits R1

    thief = Browser(app.test_client(use_cookies=False))
    thief.jar = stolen
    response = thief.refresh()
    assert response.status_code == 401
    assert response.get_json() == {"message": "token theft detected"}
    assert_cleared(response)
    assert app.config["SESSIONWARD_THEFTS"] == [(handle, "alice")]
    # The session is revoked for the victim too: its access token stays valid until it
    # expires (blacklisting off, the documented bound), its next refresh fails.
    assert browser.request("GET", "/protected").status_code == 200
    assert browser.refresh().status_code == 401


# -- anti-CSRF --------------------------------------------------------------------------


def test_anti_csrf_required_on_post_not_on_get(make_app: Callable[..., Flask]) -> None:
    browser = Browser(make_app(enable_anti_csrf=True).test_client(use_cookies=False))
    browser.login()
    assert browser.anti_csrf
    response = browser.request("POST", "/protected", send_anti_csrf=False)
    assert response.status_code == 401
    assert response.get_json() == {"message": "try refresh token"}
    assert response.headers.getlist("Set-Cookie") == []
    wrong = browser.request("POST", "/protected", send_anti_csrf=False, headers={"anti-csrf": "wrong"})
    assert wrong.status_code == 401
    assert browser.request("POST", "/protected").status_code == 200
    assert browser.request("GET", "/protected", send_anti_csrf=False).status_code == 200
    # The refresh route does not require it (supertokens-website 4.2.0 never sends it).
    refreshed = browser.refresh(send_anti_csrf=False)
    assert refreshed.status_code == 200
    assert refreshed.headers["anti-csrf"]
    assert browser.request("POST", "/protected").status_code == 200


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


def test_update_jwt_payload_reissues_access_token_with_same_expiry(browser: Browser) -> None:
    browser.login("alice", {"v": 1})
    before = claims(_decoded_access(browser))
    response = browser.request("POST", "/update-payload", json={"v": 2})
    assert response.status_code == 200
    assert response.get_json() == {"payload": {"v": 2}}
    cookies = set_cookies(response)
    assert set(cookies) == {ACCESS}
    after = claims(_decoded_access(browser))
    assert after["exp"] == before["exp"]
    assert after["userData"] == {"v": 2}
    front = decode_front_token(response.headers["front-token"])
    assert front["up"] == {"v": 2}
    assert front["ate"] == before["exp"] * 1000
    assert browser.request("GET", "/protected").get_json()["payload"] == {"v": 2}
    # The next refresh carries the new payload as well.
    assert decode_front_token(browser.refresh().headers["front-token"])["up"] == {"v": 2}


def test_session_data_round_trip(browser: Browser) -> None:
    browser.login()
    assert browser.request("GET", "/data").get_json() == {}
    assert browser.request("POST", "/data", json={"cart": [1, 2]}).status_code == 200
    response = browser.request("GET", "/data")
    assert response.get_json() == {"cart": [1, 2]}
    assert response.headers.getlist("Set-Cookie") == []


def test_logout_clears_cookies(browser: Browser, app: Flask) -> None:
    handle = browser.login().get_json()["handle"]
    cookies_before = dict(browser.jar)
    response = browser.request("POST", "/logout")
    assert response.status_code == 200
    assert response.get_json() == {}
    assert_cleared(response)
    assert response.headers["Cache-Control"] == "no-store"
    assert "id-refresh-token" in response.headers["Access-Control-Expose-Headers"]
    with app.app_context():
        assert get_all_session_handles_for_user("alice") == []
    # The session's data is gone: its methods answer "unauthorised" and clear cookies.
    browser.jar = cookies_before
    response = browser.request("GET", "/data")
    assert response.status_code == 401
    assert_cleared(response)
    assert handle


def test_logout_all(browser: Browser, app: Flask) -> None:
    first = browser.login("alice").get_json()["handle"]
    other = Browser(app.test_client(use_cookies=False))
    second = other.login("alice").get_json()["handle"]
    response = browser.request("POST", "/logout-all")
    assert response.status_code == 200
    assert sorted(response.get_json()["revoked"]) == sorted([first, second])
    assert other.refresh().status_code == 401


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


def test_login_then_revoke_in_one_request_sends_only_the_clearing(custom_apps: list[Flask]) -> None:
    app = Flask(__name__)
    init(app, base_config())
    custom_apps.append(app)

    @app.post("/flip")
    def flip() -> Any:
        response = current_app.response_class("{}", mimetype="application/json")
        session = create_new_session(response, "alice")
        session.revoke_session()
        return response

    response = app.test_client(use_cookies=False).post("/flip")
    assert response.status_code == 200
    assert_cleared(response)


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


def test_storage_unavailable_is_503_without_cookies(make_app: Callable[..., Flask], tmp_path: Path) -> None:
    db = tmp_path / "sessions.db"
    app = make_app(base_config(store=f"sqlite:///{db}?timeout=0.2"))
    browser = Browser(app.test_client(use_cookies=False))
    browser.login()
    browser.refresh()
    saved = dict(browser.jar)

    locker = sqlite3.connect(db, isolation_level=None)
    try:
        locker.execute("BEGIN EXCLUSIVE")
        # The first use of the refreshed access token must write (promotion): 503.
        response = browser.request("GET", "/protected")
        assert response.status_code == 503
        assert response.get_json() == {"message": "session store unavailable"}
        assert response.headers["Retry-After"]
        assert response.headers.getlist("Set-Cookie") == []
        assert "id-refresh-token" not in response.headers
        login = browser.request("POST", "/login", json={"user_id": "bob"})
        assert login.status_code == 503
        assert login.headers.getlist("Set-Cookie") == []
        assert b"Traceback" not in login.data
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    # The session survived: the same request succeeds once the store is back.
    assert browser.jar == saved
    assert browser.request("GET", "/protected").status_code == 200


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


def test_preflight_helper(browser: Browser) -> None:
    response = browser.request("OPTIONS", "/protected")
    assert response.status_code == 204
    allowed = [h.strip() for h in response.headers["Access-Control-Allow-Headers"].split(",")]
    assert allowed == ["anti-csrf", "fdi-version", "supertokens-sdk-name", "supertokens-sdk-version"]
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert response.headers.getlist("Set-Cookie") == []


def test_preflight_merges_with_app_allow_headers(app: Flask) -> None:
    with app.test_request_context():
        response = app.response_class(status=204)
        response.headers["Access-Control-Allow-Headers"] = "Content-Type, anti-csrf"
        preflight(response)
    assert response.headers["Access-Control-Allow-Headers"] == (
        "Content-Type, anti-csrf, fdi-version, supertokens-sdk-name, supertokens-sdk-version"
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
            handle, "alice", {"d": True}, {"p": 2},
        )
        assert revoke_multiple_sessions([handle, "nope"]) == [handle]
        assert revoke_session(handle) is False
    assert browser.refresh().status_code == 401


def test_management_call_without_init_is_a_clear_error() -> None:
    app = Flask(__name__)
    with app.app_context(), pytest.raises(RuntimeError, match="init"):
        revoke_session("x")


def test_init_twice_is_refused(app: Flask) -> None:
    with pytest.raises(RuntimeError, match="already"):
        init(app, base_config())


def test_init_reads_app_config_and_options(custom_apps: list[Flask]) -> None:
    app = Flask(__name__)
    app.config["SESSIONWARD"] = {
        "store": "sqlite:///:memory:", "refresh_api_path": "/r", "cookie_secure": False,
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
        plain = LocalProxy(lambda: current_session._get_current_object())  # type: ignore[attr-defined]
        for name in names:
            with pytest.raises(AttributeError) as fast:
                getattr(current_session, name)
            with pytest.raises(AttributeError) as slow:
                getattr(plain, name)
            assert str(fast.value) == str(slow.value)
        session = get_session(request)
        assert current_session._get_current_object() is session  # type: ignore[attr-defined]
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
