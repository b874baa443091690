"""``cookie_domain`` across sub-domains of one site, in a real browser.

Chromium resolves every ``*.example.test`` host to 127.0.0.1 (``--host-resolver-rules``,
conftest.py), so the page served from ``http://www.example.test:<page port>`` and the API on
``http://api.example.test:<api port>`` are two origins of ONE site (registrable domain
``example.test``), the way ``www.example.com`` and ``api.example.com`` are. The API sets its
session cookies with ``Domain=.example.test`` (``cookie_domain``); CORS with credentials for
the page origin; anti-CSRF on. Results and the clients' frontend-cookie options are in
docs/interop.md. The last tests give sessionward.js's ``cookieDomain`` a session used from
pages on two sub-domains.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from browser.browser_env import (
    ACCESS_TOKEN_VALIDITY,
    CLIENTS,
    EXAMPLE_SITE,
    FRAMEWORKS,
    ClientPage,
    PageServer,
    Server,
    ServerPool,
    require_client,
)

EXPIRY_WAIT = ACCESS_TOKEN_VALIDITY + 0.3
COOKIE_DOMAIN = "." + EXAMPLE_SITE
SESSION_COOKIES = ("sAccessToken", "sIdRefreshToken", "sRefreshToken")
# The cookies each client writes itself with document.cookie (4.2.0 keeps the anti-CSRF
# token in localStorage and has no front-token; sessionward.js keeps it in localStorage,
# or in the cookie sAntiCsrf with `cookieDomain`).
FRONT_COOKIES = {
    "sessionward": ("sFrontToken", "sIRTFrontend"),
    "st-4.2.0": ("sIRTFrontend",),
    "st-5.0.10": ("sAntiCsrf", "sFrontToken", "sIRTFrontend"),
}
SCOPED_FRONT_COOKIES = {**FRONT_COOKIES, "sessionward": ("sAntiCsrf", "sFrontToken", "sIRTFrontend")}
ANTI_CSRF_STORAGE = "sessionward.antiCsrf:"  # sessionward.js's localStorage key prefix
# The domain Chromium stores those cookies under (Playwright's notation: a leading dot is a
# Domain cookie, none is host-only) when the client is left with its default scope. 4.2.0
# always writes `domain=<websiteRootDomain>` (default: the page's host name), so its cookie
# is a Domain cookie of the page host; 5.0.10 and sessionward.js write host-only cookies.
DEFAULT_FRONT_DOMAIN = {
    "sessionward": f"www.{EXAMPLE_SITE}",
    "st-4.2.0": f".www.{EXAMPLE_SITE}",
    "st-5.0.10": f"www.{EXAMPLE_SITE}",
}
# (client, the scope given to the client for its frontend cookies): 4.2.0 `websiteRootDomain`,
# 5.0.10 `sessionScope`, sessionward.js `cookieDomain`.
SCOPED = [(client, None) for client in CLIENTS] + [(client, COOKIE_DOMAIN) for client in CLIENTS]


def front_cookies(client: str, scope: str | None) -> tuple[str, ...]:
    return (SCOPED_FRONT_COOKIES if scope else FRONT_COOKIES)[client]


def host_origin(origin: str, host: str) -> str:
    """``origin`` (``http://127.0.0.1:<port>``) with another host name, same port."""
    port = origin.rsplit(":", 1)[1]
    return f"http://{host}.{EXAMPLE_SITE}:{port}"


@pytest.fixture(scope="module")
def site_servers(
    assets: list[Path], page_server: PageServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerPool]:
    """API servers whose CORS allows the page server under its www. and app. names."""
    origins = [host_origin(page_server.origin, host) for host in ("www", "app")]
    pool = ServerPool(assets, origins, tmp_path_factory.mktemp("site-stores"))
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture
def open_site_page(
    request: pytest.FixtureRequest, context: Any, page_server: PageServer, site_servers: ServerPool
) -> Iterator[Any]:
    """Opens ``client``'s page on ``<host>.example.test`` talking to ``api.example.test``."""
    pages: list[ClientPage] = []

    def opener(client: str, framework: str, host: str = "www", scope: str | None = None) -> ClientPage:
        require_client(request, client)
        server = site_servers.get(framework, cookie_domain=COOKIE_DOMAIN, enable_anti_csrf=True)
        tab = ClientPage(context.new_page(), server, client)
        tab.page.goto(f"{host_origin(page_server.origin, host)}/test/page/{client}.html")
        tab.page.wait_for_function("window.harnessReady === true")
        init = {"apiBase": api_origin(server), "refreshPath": server.config.refresh_api_path}
        if scope is not None:
            init["sessionScope"] = scope
        tab.run("init", init)
        pages.append(tab)
        return tab

    yield opener
    for tab in pages:
        assert not tab.errors, f"uncaught errors in the page: {tab.errors}"


def api_origin(server: Server) -> str:
    return host_origin(server.base, "api")


def anti_csrf_records(tab: ClientPage) -> list[str]:
    """The localStorage keys of sessionward.js's anti-CSRF records on the tab's origin."""
    keys: list[str] = tab.page.evaluate(
        "(prefix) => Object.keys(localStorage).filter((key) => key.startsWith(prefix))", ANTI_CSRF_STORAGE
    )
    return keys


def stored(context: Any, names: tuple[str, ...]) -> dict[str, list[str]]:
    """name -> the domains of the cookies of that name Chromium holds (all of them)."""
    result: dict[str, list[str]] = {}
    for cookie in context.cookies():
        if cookie["name"] in names:
            result.setdefault(cookie["name"], []).append(cookie["domain"])
    return {name: sorted(domains) for name, domains in sorted(result.items())}


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize(
    ("client", "scope"),
    SCOPED,
    ids=[f"{client}-{'scope' if scope else 'default'}" for client, scope in SCOPED],
)
def test_cookie_domain_api_on_a_sibling_subdomain(
    open_site_page: Any, context: Any, client: str, scope: str | None, framework: str
) -> None:
    tab = open_site_page(client, framework, scope=scope)
    tab.server.reset()
    tab.login("erin", {"team": "green"})
    # The session cookies: one of each, Domain=.example.test, HttpOnly.
    assert stored(context, SESSION_COOKIES) == {name: [COOKIE_DOMAIN] for name in SESSION_COOKIES}
    assert all(cookie["httpOnly"] for cookie in context.cookies() if cookie["name"] in SESSION_COOKIES)
    front_domain = scope or DEFAULT_FRONT_DOMAIN[client]
    front = front_cookies(client, scope)
    assert stored(context, front) == {name: [front_domain] for name in front}
    if client == "sessionward":
        assert len(anti_csrf_records(tab)) == (0 if scope else 1)

    answer = tab.protected()
    assert answer["status"] == 200, answer
    assert answer["body"]["user_id"] == "erin" and answer["body"]["payload"] == {"team": "green"}
    assert tab.protected("POST")["status"] == 200
    bare = tab.run("raw", "/protected", "POST")  # cookies, no anti-csrf header
    assert bare["status"] == 401, bare

    # A page on another sub-domain: the session cookies reach the API from there too; the
    # client sees the session only if its frontend cookies were written for the whole site.
    other = open_site_page(client, framework, host="app", scope=scope)
    assert other.run("doesSessionExist") is (scope is not None)
    seen = other.protected()
    assert seen["status"] == 200 and seen["body"]["user_id"] == "erin", seen
    other.page.close()

    update = tab.run("call", "/update-payload", "POST", {"team": "green", "level": 2})
    assert update["status"] == 200, update
    time.sleep(EXPIRY_WAIT)
    tab.server.reset()
    answers = tab.run("parallel", 4, "/protected", "POST")
    assert [answer["status"] for answer in answers] == [200] * 4, answers
    assert tab.refreshes() == 1
    assert all(answer["body"]["payload"] == {"team": "green", "level": 2} for answer in answers), answers
    if tab.run("supports")["getJWTPayload"]:
        assert tab.run("getJWTPayload") == {"team": "green", "level": 2}
    # The refresh replaced the cookies in place: still one of each, on the same domain.
    assert stored(context, SESSION_COOKIES) == {name: [COOKIE_DOMAIN] for name in SESSION_COOKIES}
    assert stored(context, front) == {name: [front_domain] for name in front}

    assert tab.run("signOut") == 200
    assert tab.run("doesSessionExist") is False
    # Clearing repeated Domain=.example.test: nothing of the session is left in the browser.
    assert stored(context, SESSION_COOKIES + front) == {}
    answer = tab.protected()
    assert answer["status"] == 401, answer
    assert tab.refreshes() == 1


# -- sessionward.js with cookieDomain: one session for every page of the site ----------------------

SITE_FRONT = SCOPED_FRONT_COOKIES["sessionward"]


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_sessionward_cookie_domain_session_on_every_subdomain(
    open_site_page: Any, context: Any, framework: str
) -> None:
    www = open_site_page("sessionward", framework, scope=COOKIE_DOMAIN)
    www.server.reset()
    www.login("frank", {"team": "blue"})
    assert stored(context, SITE_FRONT) == {name: [COOKIE_DOMAIN] for name in SITE_FRONT}

    # A page on app.example.test, same browser: it sees the session signed in on www. and
    # sends the anti-CSRF token (from the sAntiCsrf cookie) on a protected POST.
    app = open_site_page("sessionward", framework, host="app", scope=COOKIE_DOMAIN)
    assert app.run("doesSessionExist") is True
    assert app.run("getUserId") == "frank"
    assert app.run("getJWTPayload") == {"team": "blue"}
    answer = app.protected("POST")
    assert answer["status"] == 200 and answer["body"]["user_id"] == "frank", answer
    assert app.run("raw", "/protected", "POST")["status"] == 401  # anti-CSRF is enforced

    # The access token expires: app. refreshes once, and www. uses the new state as is.
    time.sleep(EXPIRY_WAIT)
    answer = app.protected("POST")
    assert answer["status"] == 200 and answer["body"]["user_id"] == "frank", answer
    assert app.refreshes() == 1
    answer = www.protected("POST")
    assert answer["status"] == 200 and answer["body"]["payload"] == {"team": "blue"}, answer
    assert www.refreshes() == 1
    assert stored(context, SESSION_COOKIES) == {name: [COOKIE_DOMAIN] for name in SESSION_COOKIES}
    assert stored(context, SITE_FRONT) == {name: [COOKIE_DOMAIN] for name in SITE_FRONT}
    assert anti_csrf_records(www) == [] and anti_csrf_records(app) == []

    # Signing out on app. ends it for www. too.
    assert app.run("signOut") == 200
    assert app.run("doesSessionExist") is False
    assert www.run("doesSessionExist") is False
    assert www.run("getUserId") is None
    assert stored(context, SESSION_COOKIES + SITE_FRONT) == {}
    answer = www.protected()
    assert answer["status"] == 401, answer
    assert www.refreshes() == 1


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_sessionward_cookie_domain_turned_on_over_a_session(
    open_site_page: Any, context: Any, framework: str
) -> None:
    tab = open_site_page("sessionward", framework)
    tab.server.reset()
    tab.login("gina")
    host_only, front = DEFAULT_FRONT_DOMAIN["sessionward"], FRONT_COOKIES["sessionward"]
    assert stored(context, front) == {name: [host_only] for name in front}
    assert len(anti_csrf_records(tab)) == 1

    # The page is configured with cookieDomain: the host-only cookies still tell who is signed
    # in; the anti-CSRF token is now looked up in sAntiCsrf (absent), so the first POST gets
    # "try refresh", and the refresh writes the site-wide cookies in place of the old ones.
    tab.run(
        "init",
        {
            "apiBase": api_origin(tab.server),
            "refreshPath": tab.server.config.refresh_api_path,
            "sessionScope": COOKIE_DOMAIN,
        },
    )
    assert tab.run("doesSessionExist") is True and tab.run("getUserId") == "gina"
    answer = tab.protected("POST")
    assert answer["status"] == 200 and answer["body"]["user_id"] == "gina", answer
    assert tab.refreshes() == 1
    assert stored(context, SITE_FRONT) == {name: [COOKIE_DOMAIN] for name in SITE_FRONT}
    assert anti_csrf_records(tab) == []

    assert tab.run("signOut") == 200
    assert stored(context, SESSION_COOKIES + SITE_FRONT) == {}
