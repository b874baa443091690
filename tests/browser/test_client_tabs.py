"""Two tabs, one refresh: ``sessionward.js`` in two pages (tabs) of the same browser profile,
sharing the session cookies and storage, against the FastAPI test app (``harness.py``) with
2-second access tokens and anti-CSRF on.

The calls of both tabs are scheduled in the browser for the same instant, just after the
access token's expiry (read from the front-token), so no test waits in Python. Refresh
requests are counted on the server (``/test/counters``).
"""

from __future__ import annotations

from typing import Any

from browser.browser_env import ClientPage

FRAMEWORK = "fastapi"
OPTIONS = {"enable_anti_csrf": True}
AFTER_EXPIRY_MS = 150  # fire this long after the access token's expiry


def expiry(tab: ClientPage) -> int | None:
    """``getAccessTokenExpiry()`` of the tab's client (the module instance the adapter loaded)."""
    value: int | None = tab.page.evaluate(
        "async (base) => (await import(base + '/sessionward/sessionward.js')).getAccessTokenExpiry()",
        tab.server.base,
    )
    return value


def schedule(tab: ClientPage, at_ms: int, calls: int, method: str = "POST") -> None:
    """Make the tab fire ``calls`` parallel protected calls at ``at_ms`` (browser clock)."""
    tab.page.evaluate(
        """([at, calls, method]) => {
          window.batch = new Promise((resolve) => setTimeout(resolve, Math.max(0, at - Date.now())))
            .then(async () => {
              const firedAt = Date.now();
              return { firedAt, answers: await window.harness.parallel(calls, "/protected", method) };
            });
        }""",
        [at_ms, calls, method],
    )


def outcome(tab: ClientPage) -> dict[str, Any]:
    """The scheduled batch's answers (waits for them)."""
    result: dict[str, Any] = tab.page.evaluate("window.batch")
    return result


def two_signed_in_tabs(open_page: Any) -> tuple[ClientPage, ClientPage, int]:
    first = open_page("sessionward", FRAMEWORK, **OPTIONS)
    second = open_page("sessionward", FRAMEWORK, **OPTIONS)
    assert first.page.context is second.page.context
    first.login("alice", {"role": "reader"})
    assert second.run("doesSessionExist") is True  # same profile: same cookies
    expires = expiry(first)
    assert expires is not None and expiry(second) == expires
    first.server.reset()
    return first, second, expires


def test_two_tabs_with_an_expired_token_refresh_once(open_page: Any) -> None:
    first, second, expires = two_signed_in_tabs(open_page)
    # Both tabs fire 4 parallel calls at the same moment, just after the expiry: 8 calls
    # get "try refresh", one refresh is made for all of them.
    at = expires + AFTER_EXPIRY_MS
    schedule(first, at, 4)
    schedule(second, at, 4)
    results = [outcome(first), outcome(second)]
    for result in results:
        assert result["firedAt"] >= expires, results
        assert [answer["status"] for answer in result["answers"]] == [200] * 4, results
        assert all(answer["body"]["user_id"] == "alice" for answer in result["answers"]), results
    assert first.refreshes() == 1
    # Both tabs see the same, new session state.
    renewed = expiry(first)
    assert renewed is not None and renewed > expires
    assert expiry(second) == renewed
    assert first.run("getJWTPayload") == second.run("getJWTPayload") == {"role": "reader"}
    assert first.protected("POST")["status"] == 200 and second.protected("POST")["status"] == 200
    assert first.refreshes() == 1


def test_a_refresh_in_one_tab_serves_the_other(open_page: Any) -> None:
    first, second, expires = two_signed_in_tabs(open_page)
    schedule(first, expires + AFTER_EXPIRY_MS, 1)
    (answer,) = outcome(first)["answers"]
    assert answer["status"] == 200, answer
    assert first.refreshes() == 1
    renewed = expiry(second)
    assert renewed is not None and renewed > expires and renewed == expiry(first)
    # The other tab's next calls use the new tokens: no second refresh.
    answers = second.run("parallel", 3, "/protected", "POST")
    assert [answer["status"] for answer in answers] == [200] * 3, answers
    assert second.protected()["status"] == 200
    assert first.refreshes() == 1
