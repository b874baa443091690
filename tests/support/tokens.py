"""Peeks at tokens the way the engine stores and signs them."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any


def h(value: str) -> str:
    """Hex SHA-256, as the engine hashes tokens."""
    return hashlib.sha256(value.encode()).hexdigest()


def claims(token: str) -> dict[str, Any]:
    """The (unverified) claims of an access token."""
    segment = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    return decoded


def kid_of(token: str) -> str:
    """The ``kid`` of an access token's (unverified) header."""
    segment = token.split(".")[0]
    header: dict[str, Any] = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    return str(header["kid"])
