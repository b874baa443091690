"""The demo's readable device names, parsed from ``User-Agent`` headers (a pure function)."""

from __future__ import annotations

import pytest

from sessionward.demo.devices import MAX_DESCRIPTION_LENGTH, UNKNOWN_DEVICE, describe_user_agent

CHROME_LINUX = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
HEADLESS_CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/131.0.6778.85 Safari/537.36"
)
EDGE_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86"
)
FIREFOX_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
FIREFOX_MAC = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.7; rv:133.0) Gecko/20100101 Firefox/133.0"
SAFARI_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Safari/605.1.15"
)
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Mobile/15E148 Safari/604.1"
)
CHROME_IPAD = (
    "Mozilla/5.0 (iPad; CPU OS 17_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1"
)
CHROME_ANDROID = (
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36"
)
SAMSUNG_ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36"
)
OPERA_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36 OPR/115.0.0.0"
)
CHROME_OS = (
    "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


@pytest.mark.parametrize(
    ("user_agent", "expected"),
    [
        (CHROME_LINUX, "Chrome on Linux"),
        (HEADLESS_CHROME, "Chrome on Linux"),
        (EDGE_WINDOWS, "Edge on Windows"),
        (FIREFOX_WINDOWS, "Firefox on Windows"),
        (FIREFOX_MAC, "Firefox on macOS"),
        (SAFARI_MAC, "Safari on macOS"),
        (SAFARI_IPHONE, "Safari on iOS"),
        (CHROME_IPAD, "Chrome on iOS"),
        (CHROME_ANDROID, "Chrome on Android"),
        (SAMSUNG_ANDROID, "Samsung Internet on Android"),
        (OPERA_WINDOWS, "Opera on Windows"),
        (CHROME_OS, "Chrome on ChromeOS"),
        ("Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 (KHTML, like Gecko)", "Browser on Windows"),
        ("Mozilla/5.0 Firefox/133.0", "Firefox"),
        ("Mozilla/5.0 (Linux) AppleWebKit/537.36 (KHTML, like Gecko) Safari/537.36", "Browser on Linux"),
    ],
)
def test_browsers_and_systems(user_agent: str, expected: str) -> None:
    assert describe_user_agent(user_agent) == expected


@pytest.mark.parametrize(
    ("user_agent", "expected"),
    [
        ("curl/8.11.0", "curl"),
        ("python-httpx/0.28.1", "python-httpx"),
        ("testclient", "testclient"),
        ("okhttp/4.12.0", "okhttp"),
        ("  Wget/1.21.4 ", "Wget"),
    ],
)
def test_other_clients_are_named_by_their_product(user_agent: str, expected: str) -> None:
    assert describe_user_agent(user_agent) == expected


@pytest.mark.parametrize(
    "user_agent",
    [None, "", "   ", "Mozilla/5.0 (compatible; Googlebot/2.1)", "<script>alert(1)</script>", "/1.0", "☃"],
)
def test_nothing_usable_is_an_unknown_device(user_agent: str | None) -> None:
    assert describe_user_agent(user_agent) == UNKNOWN_DEVICE


def test_hostile_headers_give_short_plain_names() -> None:
    long_product = "x" * 5000 + "/1.0"
    assert describe_user_agent(long_product) == "x" * MAX_DESCRIPTION_LENGTH
    injected = "evil<img src=x onerror=alert(1)>/1.0 (Windows NT 10.0)"
    assert describe_user_agent(injected) == "Browser on Windows"
    assert describe_user_agent("a\r\nSet-Cookie: x=1") == "a"
    for user_agent in (long_product, injected, "\x00\x01", "Mozilla/5.0 " + "(" * 10_000):
        description = describe_user_agent(user_agent)
        assert len(description) <= MAX_DESCRIPTION_LENGTH
        assert all(char.isalnum() or char in " ._-" for char in description)
