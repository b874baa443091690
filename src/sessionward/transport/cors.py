"""CORS for the session protocol: the headers a preflight answer needs, and the
``Access-Control-Expose-Headers`` list that lets a browser client read the protocol
headers of a response."""

from __future__ import annotations

from collections.abc import Collection, Iterable

from .headers import PROTOCOL_HEADERS

__all__ = ["PREFLIGHT_ALLOW_HEADERS", "exposed_headers", "merge_header_list", "preflight_headers"]

PREFLIGHT_ALLOW_HEADERS = (
    "anti-csrf",
    "fdi-version",
    "supertokens-sdk-name",
    "supertokens-sdk-version",
    "rid",
    "st-auth-mode",
    "authorization",
    "content-type",
)


def merge_header_list(existing: str | None, names: Iterable[str]) -> str:
    """Merge comma-separated header list values without duplicates (case-insensitive)."""
    merged: list[str] = []
    seen: set[str] = set()
    for item in [*(existing or "").split(","), *names]:
        item = item.strip()
        if item and item.lower() not in seen:
            seen.add(item.lower())
            merged.append(item)
    return ", ".join(merged)


def _without(header_list: str, names: Iterable[str]) -> str:
    dropped = {name.lower() for name in names}
    items = (item.strip() for item in header_list.split(","))
    return ", ".join(item for item in items if item and item.lower() not in dropped)


def exposed_headers(existing: Iterable[str], sent: Collection[str]) -> str:
    """The ``Access-Control-Expose-Headers`` value of a response: the application's names
    (``existing``, every value it set) and exactly the protocol headers in ``sent``, without
    duplicates; empty when nothing is left to expose."""
    exposed = [name for name in PROTOCOL_HEADERS if name in sent]
    not_sent = [name for name in PROTOCOL_HEADERS if name not in sent]
    return merge_header_list(_without(", ".join(existing), not_sent), exposed)


def preflight_headers(existing_allow_headers: str | None) -> list[tuple[str, str]]:
    """Headers a CORS preflight (OPTIONS) response needs for the session protocol."""
    return [
        ("access-control-allow-headers", merge_header_list(existing_allow_headers, PREFLIGHT_ALLOW_HEADERS)),
        ("access-control-allow-credentials", "true"),
    ]
