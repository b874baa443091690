"""Skipping tests whose external service (PostgreSQL, Redis, Chromium, Node) is missing."""

from __future__ import annotations

import os
import socket
from typing import NoReturn
from urllib.parse import urlsplit

import pytest

REQUIRE_SERVICES = os.environ.get("SESSIONWARD_REQUIRE_SERVICES") == "1"
_REACHABLE: dict[tuple[str, int], bool] = {}


def skip_or_fail(reason: str) -> NoReturn:
    """Skip a test whose service is missing, or fail when CI requires every service."""
    if REQUIRE_SERVICES:
        pytest.fail(f"required service missing (SESSIONWARD_REQUIRE_SERVICES=1): {reason}")
    pytest.skip(reason)


def reachable(url: str) -> bool:
    """Whether a TCP connection to the URL's host and port succeeds (cached per run)."""
    parts = urlsplit(url)
    default = 5432 if parts.scheme.startswith("postgres") else 6379
    address = (parts.hostname or "127.0.0.1", parts.port or default)
    if address not in _REACHABLE:
        try:
            socket.create_connection(address, timeout=2).close()
            _REACHABLE[address] = True
        except OSError:
            _REACHABLE[address] = False
    return _REACHABLE[address]
