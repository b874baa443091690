"""``sessionward.js`` driven by node against a scripted fake backend (``harness.mjs``): the
refresh rules of the client, without a browser. Real-browser tests live in tests/browser/."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from support.services import skip_or_fail

SCRIPT = Path(__file__).resolve().parents[2] / "src" / "sessionward" / "static" / "sessionward.js"
HARNESS = Path(__file__).resolve().parent / "harness.mjs"


@pytest.fixture(scope="module")
def results(request: pytest.FixtureRequest) -> dict[str, Any]:
    node = shutil.which("node")
    if node is None:
        skip_or_fail("node is not installed: cannot run the JavaScript client's tests")
    assert node is not None
    done = subprocess.run([node, str(HARNESS), str(SCRIPT)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    found: dict[str, Any] = json.loads(done.stdout)
    errors = {name: value["error"] for name, value in found.items() if "error" in value}
    assert not errors, errors
    return found


def test_no_session_means_no_refresh(results: dict[str, Any]) -> None:
    assert results["noSessionNoRefresh"] == {"status": 401, "refreshCalls": 0, "exists": False}


def test_front_token_anti_csrf_and_credentials(results: dict[str, Any]) -> None:
    info = results["sessionInformation"]
    assert info["exists"] is True and info["userId"] == "alice" and info["expiryIsNumber"] is True
    assert info["payload"] == {"role": "reader", "generation": 1}
    assert info["antiCsrfSent"] == ["csrf1"]
    assert info["credentials"] == ["include", "include"]


@pytest.mark.parametrize("scenario", ["concurrentCallsShareOneRefresh", "concurrentCallsWithWebLocks"])
def test_concurrent_expired_calls_share_one_refresh(results: dict[str, Any], scenario: str) -> None:
    outcome = results[scenario]
    assert outcome["statuses"] == [200] * 6
    assert outcome["refreshCalls"] == 1


def test_refreshed_state_is_used(results: dict[str, Any]) -> None:
    outcome = results["concurrentCallsShareOneRefresh"]
    assert outcome["payloadGeneration"] == 2 and outcome["lastAntiCsrf"] == "csrf2"
    assert outcome["events"] == ["refresh-started", "refreshed"]
    assert results["concurrentCallsWithWebLocks"]["lockRequests"] == 1


@pytest.mark.parametrize("scenario", ["twoTabsStorageLock", "twoTabsWebLocks"])
def test_two_tabs_refresh_once(results: dict[str, Any], scenario: str) -> None:
    assert results[scenario] == {"statuses": [200] * 4, "refreshCalls": 1}


def test_a_refresh_by_another_tab_is_reused(results: dict[str, Any]) -> None:
    assert results["anotherTabAlreadyRefreshed"] == {"status": 200, "refreshCalls": 0, "apiCalls": 2}


def test_a_refused_refresh_ends_the_session(results: dict[str, Any]) -> None:
    outcome = results["refreshRefusedEndsTheSession"]
    assert outcome["status"] == 401 and outcome["body"] == {"message": "try refresh token"}
    assert (outcome["refreshCalls"], outcome["apiCalls"]) == (1, 1)
    assert outcome["exists"] is False and outcome["userId"] is None and outcome["antiCsrfLeft"] == 0
    assert outcome["events"] == ["refresh-started", "session-expired"]


def test_the_request_is_retried_once(results: dict[str, Any]) -> None:
    assert results["retriesOnlyOnce"] == {"status": 401, "refreshCalls": 1, "apiCalls": 2}


def test_an_expired_storage_lock_does_not_block(results: dict[str, Any]) -> None:
    assert results["storageLockFallback"] == {"statuses": [200, 200], "refreshCalls": 1, "lockLeft": None}


def test_api_base_and_sign_out(results: dict[str, Any]) -> None:
    outcome = results["apiBaseAndSignOut"]
    assert outcome["requests"] == [
        "http://127.0.0.1:8001/login",
        "http://elsewhere.test/x",
        "http://127.0.0.1:8001/logout",
    ]
    assert (outcome["before"], outcome["after"], outcome["storageKeys"]) == (True, False, [])


def test_id_refresh_remove_clears_everything(results: dict[str, Any]) -> None:
    assert results["idRefreshRemoveClearsState"] == {
        "status": 200,
        "exists": False,
        "payload": None,
        "cookies": "",
        "refreshCalls": 0,
    }


# -- cookieDomain: the frontend state shared by every sub-domain ----------------------------------

SITE = ".example.test"
SITE_COOKIES = [f"{name}@{SITE}" for name in ("sAntiCsrf", "sFrontToken", "sIRTFrontend")]
HOST_COOKIES = ["sFrontToken@www.example.test", "sIRTFrontend@www.example.test"]
WWW_RECORD_KEY = "sessionward.antiCsrf:http://www.example.test:8000"


def test_cookie_domain_accepts_domains_covering_the_page(results: dict[str, Any]) -> None:
    outcome = results["cookieDomainValidation"]
    assert [attempt["accepted"] for attempt in outcome["good"]] == [True] * len(outcome["good"])
    assert outcome["address"][0]["accepted"] is True  # an IP address host: only itself


def test_cookie_domain_refuses_hostile_or_foreign_values(results: dict[str, Any]) -> None:
    outcome = results["cookieDomainValidation"]
    refused = outcome["bad"] + outcome["address"][1:]
    assert len(refused) == 26
    for attempt in refused:
        assert attempt["accepted"] is False, attempt
        value, message = attempt["value"], attempt["message"]
        # The value as the message shows it (JSON.stringify's escapes: no ASCII escaping).
        named = isinstance(value, dict) or json.dumps(value, ensure_ascii=False) in message
        assert "cookieDomain" in message and named, attempt
    # A refused init keeps the previous configuration.
    assert outcome["afterRefused"] == {"refused": False, "stored": SITE_COOKIES}


def test_cookie_domain_writes_site_cookies_and_no_local_storage(results: dict[str, Any]) -> None:
    outcome = results["cookieDomainWritesDomainCookies"]
    assert outcome["status"] == 200 and outcome["userId"] == "alice"
    assert outcome["stored"] == SITE_COOKIES
    assert outcome["antiCsrfCookie"] == {"token": "csrf1", "idRefresh": "irt1"}
    assert outcome["antiCsrfSent"] == ["csrf1"]
    assert outcome["localStorageKeys"] == []
    # Each write drops a host-only copy, then writes the Domain cookie.
    assert outcome["writes"] == [
        line
        for name, value in (
            ("sIRTFrontend", "irt1"),
            ("sFrontToken", "<front-token>"),
            ("sAntiCsrf", "%7B%22token%22%3A%22csrf1%22%2C%22idRefresh%22%3A%22irt1%22%7D"),
        )
        for line in (
            f"{name}=; expires=<past>; path=/; samesite=lax",
            f"{name}={value}; expires=<future>; path=/; domain={SITE}; samesite=lax",
        )
    ]


def test_without_cookie_domain_nothing_changes(results: dict[str, Any]) -> None:
    outcome = results["cookieDomainDefaultUnchanged"]
    assert outcome["status"] == 200 and outcome["antiCsrfSent"] == ["csrf1"]
    assert outcome["signedIn"] == {"stored": HOST_COOKIES, "record": {"token": "csrf1", "idRefresh": "irt1"}}
    assert outcome["writes"] == [
        "sIRTFrontend=irt1; expires=<future>; path=/; samesite=lax",
        "sFrontToken=<front-token>; expires=<future>; path=/; samesite=lax",
        "sIRTFrontend=; expires=<past>; path=/; samesite=lax",
        "sFrontToken=; expires=<past>; path=/; samesite=lax",
    ]
    assert (outcome["storedAfter"], outcome["localStorageAfter"]) == ([], [])


def test_cookie_domain_shares_the_session_with_a_sibling_host(results: dict[str, Any]) -> None:
    outcome = results["cookieDomainSiblingHostSharesSession"]
    assert outcome["onApp"] == {
        "exists": True,
        "userId": "alice",
        "post": 200,
        "afterExpiry": 200,
        "refreshCalls": 1,
    }
    # The refresh done on app. serves www.: new anti-CSRF token, no refresh of its own.
    assert outcome["onWww"] == {
        "post": 200,
        "refreshCalls": 1,
        "payloadGeneration": 2,
        "afterSignOut": {"exists": False, "userId": None, "cookie": ""},
    }
    assert outcome["antiCsrfSent"] == ["csrf1", "csrf1", "csrf2", "csrf2"]
    assert outcome["stored"] == []


def test_cookie_domain_replaces_host_only_copies_when_writing(results: dict[str, Any]) -> None:
    outcome = results["cookieDomainReplacesHostOnlyCopies"]
    assert outcome["before"] == {"stored": HOST_COOKIES, "localStorageKeys": [WWW_RECORD_KEY]}
    assert outcome["existsWithLeftovers"] is True
    assert outcome["stored"] == SITE_COOKIES and outcome["idRefresh"] == ["sIRTFrontend=irt2"]
    assert outcome["antiCsrfCookie"] == {"token": "csrf2", "idRefresh": "irt2"}
    assert outcome["localStorageKeys"] == []


@pytest.mark.parametrize(
    "scenario", ["cookieDomainSignOutClearsBothCopies", "cookieDomainSessionGoneClearsBothCopies"]
)
def test_cookie_domain_deletion_clears_both_copies(results: dict[str, Any], scenario: str) -> None:
    outcome = results[scenario]
    assert outcome["before"] == {"stored": HOST_COOKIES, "localStorageKeys": [WWW_RECORD_KEY]}
    assert (outcome["stored"], outcome["cookie"], outcome["localStorageKeys"]) == ([], "", [])
    assert outcome["exists"] is False
    for name in ("sIRTFrontend", "sFrontToken", "sAntiCsrf"):
        assert f"{name}=; expires=<past>; path=/; samesite=lax" in outcome["writes"]
        assert f"{name}=; expires=<past>; path=/; domain={SITE}; samesite=lax" in outcome["writes"]


def test_cookie_domain_init_drops_host_only_copies_hiding_the_site_session(results: dict[str, Any]) -> None:
    outcome = results["cookieDomainInitDropsShadowingCopies"]
    assert outcome["before"] == {
        "stored": sorted(SITE_COOKIES + HOST_COOKIES),
        "idRefresh": ["sIRTFrontend=irt1", "sIRTFrontend=irt2"],  # the older, host-only one first
    }
    assert outcome["stored"] == SITE_COOKIES and outcome["idRefresh"] == ["sIRTFrontend=irt2"]
    assert (outcome["status"], outcome["quick"], outcome["antiCsrfSent"], outcome["refreshCalls"]) == (
        200,
        True,
        ["csrf2"],
        0,
    )
