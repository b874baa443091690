"""``sessionward.js`` driven by node against a scripted fake backend (``harness.mjs``): the
refresh rules of the client, without a browser. Real-browser tests live in tests/browser/."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from store_backends import skip_or_fail

SCRIPT = Path(__file__).resolve().parents[2] / "src" / "sessionward" / "static" / "sessionward.js"
HARNESS = Path(__file__).resolve().parent / "harness.mjs"


@pytest.fixture(scope="module")
def results(request: pytest.FixtureRequest) -> dict[str, Any]:
    node = shutil.which("node")
    if node is None:
        skip_or_fail(request.config, "node is not installed: cannot run the JavaScript client's tests")
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
        "http://127.0.0.1:8001/login", "http://elsewhere.test/x", "http://127.0.0.1:8001/logout",
    ]
    assert (outcome["before"], outcome["after"], outcome["storageKeys"]) == (True, False, [])


def test_id_refresh_remove_clears_everything(results: dict[str, Any]) -> None:
    assert results["idRefreshRemoveClearsState"] == {
        "status": 200, "exists": False, "payload": None, "cookies": "", "refreshCalls": 0,
    }
