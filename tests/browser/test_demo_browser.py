"""``sessionward demo`` in a real browser: the real command on a free port, its page driven
through the UI as a user would (fill the forms, click the buttons, read what the page shows).

The demo runs with ``--access-token-validity 3`` so that an expiry takes seconds, not the
default 15. Refresh requests are counted in the browser (``page.on("request")``); whether
sessions are still live is asked of the store with ``sessionward sessions list``.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.processes import free_port
from support.services import skip_or_fail

VALIDITY = 3  # seconds: the demo's --access-token-validity
TIMEOUT_MS = 20_000
EXPIRY_TIMEOUT_MS = (VALIDITY + 5) * 1000
REFRESH_PATH = "/session/refresh"
CLIENT_URL = "/sessionward/sessionward.js"
SERVER_COOKIES = ("sAccessToken", "sRefreshToken", "sIdRefreshToken")  # HttpOnly, set by the server


class Demo:
    def __init__(self, base: str, store: str, process: subprocess.Popen[bytes], log: Path) -> None:
        self.base = base
        self.store = store
        self.process = process
        self.log = log

    def live_sessions(self, user_id: str) -> list[str]:
        """The handles of ``user_id``'s live sessions, from the store (the CLI)."""
        command = [
            sys.executable,
            "-m",
            "sessionward",
            "sessions",
            "list",
            "--user",
            user_id,
            "--json",
            "--store",
            self.store,
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
        return [row["handle"] for row in json.loads(done.stdout)]


@pytest.fixture(scope="module")
def demo(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        skip_or_fail(f"the demo needs the fastapi extra ({exc.name} is missing)")
    tmp = tmp_path_factory.mktemp("demo")
    store = f"sqlite:///{tmp / 'demo.db'}"
    port = free_port()
    log = tmp / "demo.log"
    command = [
        sys.executable,
        "-m",
        "sessionward",
        "demo",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--store",
        store,
        "--access-token-validity",
        str(VALIDITY),
    ]
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    server = Demo(f"http://127.0.0.1:{port}", store, process, log)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(server.base + "/", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the demo did not start:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.05)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def expect(target: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


class DemoPage:
    """One browser tab on the demo page, counting the refresh requests it sends."""

    def __init__(self, page: Any, demo: Demo) -> None:
        self.page = page
        self.demo = demo
        self.errors: list[str] = []
        self.refreshes = 0
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("request", self._count)

    def _count(self, request: Any) -> None:
        if request.method == "POST" and urllib.parse.urlsplit(request.url).path == REFRESH_PATH:
            self.refreshes += 1

    def open(self) -> DemoPage:
        self.page.goto(self.demo.base + "/")
        return self

    def element(self, selector: str) -> Any:
        return self.page.locator(selector)

    def text(self, selector: str) -> str:
        value: str = self.element(selector).inner_text()
        return value

    def shows_json(self, selector: str, value: Any) -> None:
        expect(self.element(selector)).to_have_text(json.dumps(value, indent=2), timeout=TIMEOUT_MS)

    def sign_in(self, name: str) -> None:
        expect(self.element("#signin")).to_be_visible(timeout=TIMEOUT_MS)
        self.element("#name").fill(name)
        self.page.get_by_role("button", name="Sign in").click()
        expect(self.element("#dashboard")).to_be_visible(timeout=TIMEOUT_MS)
        expect(self.element("#user-id")).to_have_text(name.strip(), timeout=TIMEOUT_MS)

    def shows_signed_out(self) -> None:
        expect(self.element("#signin")).to_be_visible(timeout=TIMEOUT_MS)
        expect(self.element("#dashboard")).to_be_hidden(timeout=TIMEOUT_MS)

    def call_api(self) -> str:
        """Click "Call the protected API"; the verdict line the page writes (also when the
        answer signed the user out, which hides the dashboard around it)."""
        self.page.evaluate("document.getElementById('refresh-verdict').hidden = true")
        self.element("#call-api").click()
        self.page.wait_for_function("!document.getElementById('refresh-verdict').hidden")
        verdict: str = self.element("#refresh-verdict").text_content()
        return verdict

    def wait_for_expiry(self) -> None:
        """Until the page's countdown says the access token has expired."""
        expect(self.element("#countdown")).to_have_text("expired", timeout=EXPIRY_TIMEOUT_MS)

    def client_call(self, path: str) -> int:
        """A call through the page's own sessionward.js (the demo's configured instance)."""
        status: int = self.page.evaluate(
            "async ([client, path]) => (await (await import(client)).fetch(path)).status", [CLIENT_URL, path]
        )
        return status

    def front_token(self) -> dict[str, Any] | None:
        for cookie in self.page.context.cookies(self.demo.base):
            if cookie["name"] == "sFrontToken":
                decoded: dict[str, Any] = json.loads(base64.b64decode(urllib.parse.unquote(cookie["value"])))
                return decoded
        return None


@pytest.fixture
def open_demo(browser: Any, demo: Demo) -> Iterator[Any]:
    """Opens the demo in a new browser profile (a fresh context: another "browser")."""
    contexts: list[Any] = []
    pages: list[DemoPage] = []

    def opener() -> DemoPage:
        context = browser.new_context()
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = DemoPage(context.new_page(), demo).open()
        pages.append(page)
        return page

    yield opener
    for context in contexts:
        context.close()
    for page in pages:
        assert not page.errors, f"uncaught errors in the demo page: {page.errors}"


def test_the_page_shows_the_configured_validity(open_demo: Any) -> None:
    tab = open_demo()
    expect(tab.element("#validity")).to_have_text(f"{VALIDITY}\u00a0s")
    tab.shows_signed_out()
    expect(tab.element("#log")).to_contain_text("no session: sign in")


def test_sign_in_call_refresh_payload_data_and_sessions(open_demo: Any, demo: Demo) -> None:
    tab = open_demo()
    tab.sign_in("alice")
    tab.shows_json("#payload", {"name": "alice", "role": "reader"})
    handle = tab.text("#handle")
    assert demo.live_sessions("alice") == [handle]

    # The protected API with a fresh access token: no refresh.
    assert tab.call_api() == "200 — the access token was valid: no refresh"
    answer = json.loads(tab.text("#api-answer"))
    assert answer == {
        "user_id": "alice",
        "handle": handle,
        "jwt_payload": {"name": "alice", "role": "reader"},
    }
    assert tab.refreshes == 0

    # After expiry: exactly one refresh, then the retried call succeeds.
    tab.wait_for_expiry()
    assert tab.call_api() == "200 — the access token had expired: the client refreshed it and retried"
    assert tab.refreshes == 1
    assert json.loads(tab.text("#api-answer"))["user_id"] == "alice"
    expect(tab.element("#countdown")).not_to_have_text("expired")
    expect(tab.element("#log")).to_contain_text("refreshed: new access and refresh tokens")

    # A new JWT payload: shown at once, read from the front-token of the answer.
    tab.element("#payload-input").fill('{"role": "editor", "level": 2}')
    tab.page.get_by_role("button", name="Update payload").click()
    tab.shows_json("#payload", {"role": "editor", "level": 2})
    expect(tab.element("#payload-error")).to_be_hidden()
    front = tab.front_token()
    assert front is not None and front["uid"] == "alice" and front["up"] == {"role": "editor", "level": 2}
    assert tab.call_api().startswith("200")
    assert json.loads(tab.text("#api-answer"))["jwt_payload"] == {"role": "editor", "level": 2}

    # Private session data: saved, then read back.
    tab.element("#data-input").fill('{"cart": ["book", "pen"]}')
    tab.page.get_by_role("button", name="Save").click()
    expect(tab.element("#data-answer")).to_have_text(
        "saved:\n" + json.dumps({"cart": ["book", "pen"]}, indent=2)
    )
    tab.element("#data-input").fill("")
    tab.page.get_by_role("button", name="Read back").click()
    expect(tab.element("#data-answer")).to_have_text(
        "read back:\n" + json.dumps({"cart": ["book", "pen"]}, indent=2)
    )
    assert json.loads(tab.element("#data-input").input_value()) == {"cart": ["book", "pen"]}

    # The devices panel: this session, marked as this device.
    tab.page.get_by_role("button", name="Refresh devices").click()
    rows = tab.element("#devices tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("this device")
    assert rows.first.get_attribute("data-handle") == handle
    expect(tab.element("#persistence")).to_have_text("remembered (kept across browser restarts)")
    assert tab.refreshes == 1


def test_sign_out_then_sign_out_everywhere(open_demo: Any, demo: Demo) -> None:
    tab = open_demo()
    tab.sign_in("bob")
    first_handle = tab.text("#handle")
    tab.page.get_by_role("button", name="Sign out", exact=True).click()
    tab.shows_signed_out()
    expect(tab.element("#log")).to_contain_text("signed out")
    assert tab.front_token() is None
    refreshes = tab.refreshes
    assert tab.client_call("/api/me") == 401
    assert tab.refreshes == refreshes  # no session: the client does not try a refresh
    assert first_handle not in demo.live_sessions("bob")

    # Two "browsers" signed in as bob; one signs out everywhere, which ends both.
    tab.sign_in("bob")
    other = open_demo()
    other.sign_in("bob")
    tab.page.get_by_role("button", name="Refresh devices").click()
    rows = tab.element("#devices tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text="this device")).to_have_count(1)
    assert len(demo.live_sessions("bob")) == 2
    tab.page.get_by_role("button", name="Sign out everywhere").click()
    tab.shows_signed_out()
    expect(tab.element("#log")).to_contain_text("signed out everywhere (2 session(s) revoked)")
    assert demo.live_sessions("bob") == []
    # The other browser's next call fails at once (its access token is blacklisted: the
    # answer is a plain 401 that removes the session cookies, so nothing is left to refresh)
    # and its page falls back to the sign-in form.
    assert other.call_api().startswith("401")
    other.shows_signed_out()
    expect(other.element("#log")).to_contain_text("GET /api/me → 401")
    # On a loaded machine the other browser's 3-second token may have expired before this
    # call: it then tries one refresh, which the revocation answers with 401 as well.
    assert other.refreshes <= 1
    assert demo.live_sessions("bob") == []


def test_theft_simulation_revokes_the_session(open_demo: Any, demo: Demo) -> None:
    tab = open_demo()
    tab.sign_in("carol")
    handle = tab.text("#handle")
    assert demo.live_sessions("carol") == [handle]
    tab.page.get_by_role("button", name="Simulate theft").click()
    steps = tab.element("#theft-steps li")
    expect(steps).to_have_count(5)
    expect(steps.nth(0)).to_contain_text("The attacker copies your refresh token")
    expect(steps.nth(3)).to_contain_text("The attacker replays the old copy → token theft detected.")
    expect(steps.nth(4)).to_contain_text("5. Your next call: 401")
    expect(steps.nth(4)).to_contain_text("you are signed out, and so is the attacker.")
    expect(tab.element("#simulate-theft")).to_be_enabled()
    tab.shows_signed_out()
    expect(tab.element("#log")).to_contain_text("theft simulation: token theft detected")
    # The two rotations; the call after the verdict gets a plain 401 (the session is gone,
    # its cookies are removed), so the client does not even try a refresh.
    assert tab.refreshes == 2
    assert demo.live_sessions("carol") == []
    refreshes = tab.refreshes
    assert tab.client_call("/api/me") == 401
    assert tab.refreshes == refreshes
    assert "token theft detected" in demo.log.read_text(errors="replace")


def test_sign_out_other_devices_from_a_second_profile(open_demo: Any, demo: Demo) -> None:
    # Two browser profiles (two devices) signed in as dave; the second is not remembered.
    laptop = open_demo()
    laptop.sign_in("dave")
    kept = laptop.text("#handle")
    phone = open_demo()
    phone.element("#remember").uncheck()
    expect(phone.element("#remember-hint")).to_contain_text(
        "cookies end with this browser session", timeout=TIMEOUT_MS
    )
    phone.sign_in("dave")
    other = phone.text("#handle")
    assert other != kept
    expect(phone.element("#persistence")).to_have_text(
        "not remembered: they end with this browser session", timeout=TIMEOUT_MS
    )
    # The server's cookies come without Expires/Max-Age: Chromium keeps them for the browser
    # session only. (The cookies sessionward.js writes itself, the front token and the
    # anti-CSRF token, are copies of response headers, not credentials.)
    server_cookies = [cookie for cookie in phone.page.context.cookies() if cookie["httpOnly"]]
    assert {cookie["name"] for cookie in server_cookies} == set(SERVER_COOKIES)
    assert all(cookie["expires"] == -1 for cookie in server_cookies), server_cookies
    remembered = [cookie for cookie in laptop.page.context.cookies() if cookie["httpOnly"]]
    assert len(remembered) == 3 and all(cookie["expires"] > time.time() for cookie in remembered), remembered

    # The laptop's devices panel lists both, the laptop being "this device".
    laptop.page.get_by_role("button", name="Refresh devices").click()
    rows = laptop.element("#devices tbody tr")
    expect(rows).to_have_count(2, timeout=TIMEOUT_MS)
    this_device = laptop.element(f'#devices tbody tr[data-handle="{kept}"]')
    phone_row = laptop.element(f'#devices tbody tr[data-handle="{other}"]')
    expect(this_device).to_contain_text("this device", timeout=TIMEOUT_MS)
    expect(phone_row).not_to_contain_text("this device", timeout=TIMEOUT_MS)
    expect(phone_row).to_contain_text("until the browser closes", timeout=TIMEOUT_MS)
    for row in (this_device, phone_row):
        expect(row).to_contain_text("Chrome on Linux", timeout=TIMEOUT_MS)
        expect(row).to_contain_text("127.0.0.1", timeout=TIMEOUT_MS)
        expect(row.locator("td").nth(2)).to_contain_text(
            re.compile(r"just now|\d+ s ago|\d+ min ago"), timeout=TIMEOUT_MS
        )
    assert sorted(demo.live_sessions("dave")) == sorted([kept, other])

    laptop.page.get_by_role("button", name="Sign out other devices").click()
    expect(laptop.element("#log")).to_contain_text("signed out 1 other device(s)", timeout=TIMEOUT_MS)
    expect(rows).to_have_count(1, timeout=TIMEOUT_MS)
    expect(rows.first).to_contain_text("this device", timeout=TIMEOUT_MS)
    assert demo.live_sessions("dave") == [kept]

    # The phone's next protected call ends signed out (its access token is blacklisted; on a
    # loaded machine it may have expired first, and the refresh is refused as well).
    assert phone.call_api().startswith("401")
    phone.shows_signed_out()
    assert phone.front_token() is None
    # The laptop stays signed in.
    assert laptop.call_api().startswith("200")
    expect(laptop.element("#dashboard")).to_be_visible(timeout=TIMEOUT_MS)
    assert json.loads(laptop.text("#api-answer"))["handle"] == kept
    assert demo.live_sessions("dave") == [kept]


def test_recovery_codes_ask_for_the_name_again_when_the_sign_in_is_old(open_demo: Any, demo: Demo) -> None:
    from sessionward import Config, SessionWard

    tab = open_demo()
    tab.sign_in("erin")
    handle = tab.text("#handle")
    tab.page.get_by_role("button", name="View recovery codes").click()
    expect(tab.element("#codes")).to_be_visible(timeout=TIMEOUT_MS)
    codes = tab.text("#codes").split("\n")
    assert len(codes) == 8
    expect(tab.element("#reauth-form")).to_be_hidden(timeout=TIMEOUT_MS)

    # Make the sign-in an hour old in the store; the next access token (after the expiry of
    # this one) carries it.
    with SessionWard(Config(store=demo.store)) as ward:
        assert ward.store.update_auth_time(handle, int((time.time() - 3600) * 1000))
    tab.wait_for_expiry()
    refreshes = tab.refreshes
    tab.page.get_by_role("button", name="View recovery codes").click()
    expect(tab.element("#reauth-form")).to_be_visible(timeout=TIMEOUT_MS)
    expect(tab.element("#codes")).to_be_hidden(timeout=TIMEOUT_MS)
    expect(tab.element("#log")).to_contain_text(
        "GET /api/recovery-codes → 403 re-authentication required", timeout=TIMEOUT_MS
    )
    assert tab.refreshes == refreshes + 1  # the expired token; the 403 itself is never refreshed

    tab.element("#reauth-name").fill("mallory")
    tab.page.get_by_role("button", name="Confirm").click()
    expect(tab.element("#codes-error")).to_contain_text("not the name", timeout=TIMEOUT_MS)
    expect(tab.element("#reauth-form")).to_be_visible(timeout=TIMEOUT_MS)

    tab.element("#reauth-name").fill("erin")
    tab.page.get_by_role("button", name="Confirm").click()
    expect(tab.element("#codes")).to_be_visible(timeout=TIMEOUT_MS)
    expect(tab.element("#reauth-form")).to_be_hidden(timeout=TIMEOUT_MS)
    assert tab.text("#codes").split("\n") == codes
    expect(tab.element("#log")).to_contain_text("re-authenticated", timeout=TIMEOUT_MS)
    expect(tab.element("#dashboard")).to_be_visible(timeout=TIMEOUT_MS)
