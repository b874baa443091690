"""What the demo's "your devices" panel shows of a session: a short, readable name for the
browser that holds it, parsed from its ``User-Agent`` header.

:func:`describe_user_agent` is deliberately small: it recognises the common browsers and
operating systems by their tokens and falls back to the client's product name. The header is
chosen by the client, so the answer is a hint for people, never an identity.
"""

from __future__ import annotations

import re

__all__ = ["MAX_DESCRIPTION_LENGTH", "UNKNOWN_DEVICE", "describe_user_agent"]

UNKNOWN_DEVICE = "Unknown device"
"""The description of a session without a (usable) ``User-Agent``."""

MAX_DESCRIPTION_LENGTH = 40
"""The longest description :func:`describe_user_agent` returns (a product name is cut)."""

# Order matters: Edge, Opera and Samsung Internet also send "Chrome/" and "Safari/"; Chrome
# also sends "Safari/".
_BROWSERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Edge", ("Edg/", "EdgA/", "EdgiOS/", "Edge/")),
    ("Opera", ("OPR/", "OPiOS/", "Opera")),
    ("Samsung Internet", ("SamsungBrowser/",)),
    ("Firefox", ("Firefox/", "FxiOS/")),
    ("Chrome", ("HeadlessChrome/", "Chrome/", "CriOS/", "Chromium/")),
    ("Safari", ("Safari/",)),
)
# iOS and Android before macOS and Linux: iPads and Android phones name those too.
_SYSTEMS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("iOS", ("iPhone", "iPad", "iPod")),
    ("Android", ("Android",)),
    ("Windows", ("Windows",)),
    ("ChromeOS", ("CrOS",)),
    ("macOS", ("Macintosh", "Mac OS X")),
    ("Linux", ("Linux", "X11")),
)
_PRODUCT = re.compile(r"[A-Za-z][A-Za-z0-9._-]*")


def _first(user_agent: str, table: tuple[tuple[str, tuple[str, ...]], ...]) -> str | None:
    for name, tokens in table:
        if any(token in user_agent for token in tokens):
            return name
    return None


def describe_user_agent(user_agent: str | None) -> str:
    """A short readable name for the client that sent ``user_agent``: ``"Chrome on Linux"``,
    ``"Safari on iOS"``, ``"Firefox"`` (system unknown), ``"Browser on Windows"`` (browser
    unknown), the product name of other clients (``"curl"``, ``"python-httpx"``), or
    :data:`UNKNOWN_DEVICE`. Never longer than :data:`MAX_DESCRIPTION_LENGTH` characters, and
    made only of characters taken from fixed names or the header's leading product token
    (letters, digits, ``._-``)."""
    if not user_agent or not user_agent.strip():
        return UNKNOWN_DEVICE
    system = _first(user_agent, _SYSTEMS)
    browser = _first(user_agent, _BROWSERS) if user_agent.startswith("Mozilla/") or system else None
    if browser == "Safari" and "Version/" not in user_agent and system not in ("iOS", "macOS"):
        browser = None  # "Safari/" alone is WebKit's token, sent by many embedded browsers
    if browser and system:
        return f"{browser} on {system}"
    if browser:
        return browser
    if system:
        return f"Browser on {system}"
    product = _PRODUCT.match(user_agent.strip())
    if product is None or product.group() == "Mozilla":
        return UNKNOWN_DEVICE
    return product.group()[:MAX_DESCRIPTION_LENGTH]
