"""The ``front-token`` header: what a browser client may read about its session."""

from __future__ import annotations

import binascii
from typing import Any

from .encoding import dumps_compact, json_string

__all__ = ["front_token"]


def front_token(
    user_id: str, access_expires_at_ms: int, payload: dict[str, Any], payload_json: str | None = None
) -> str:
    """The ``front-token`` header value: standard base64 of ASCII-escaped compact JSON
    (``payload_json``, when given, must be ``dumps_compact(payload)``: not serialised again)."""
    if payload_json is None:
        body = dumps_compact({"uid": user_id, "ate": access_expires_at_ms, "up": payload})
    else:
        body = f'{{"uid":{json_string(user_id)},"ate":{int(access_expires_at_ms)},"up":{payload_json}}}'
    return binascii.b2a_base64(body.encode("ascii"), newline=False).decode("ascii")
