"""The one size budget of a session: how large its JWT payload may be.

Browsers drop a cookie over 4096 bytes, name and attributes included. A session's largest
access token is the one a refresh issues: it carries the parent claim on top of the
session's user id, handle, hashes, payload, anti-CSRF token and times (``iat``, ``exp``
and ``auth_time``, each counted at its widest). The budget is
decided here, once, and checked before any store write: at create, at every payload
update (engine and request API alike) and before minting at refresh, so a payload that
fits at login can never make a later refresh fail.

The size is computed, not measured on a signed token: a JWS has a fixed-size header and
signature for a given key, and the claims' JSON grows exactly by the JSON of the user id
and of the payload, so the arithmetic is exact without signing anything twice.
"""

from __future__ import annotations

from typing import Any

from ..config import Config
from ..cookies import ACCESS_TOKEN_COOKIE, MAX_COOKIE_BYTES, set_cookie_header
from ..errors import PayloadTooLargeError
from ..tokens.access import MAX_TIME_CLAIM
from ..tokens.encoding import dumps_compact, json_string
from ..tokens.keys import SigningKey
from ..tokens.refresh import ANTI_CSRF_BYTES

__all__ = ["PayloadBudget"]

_HANDLE_LENGTH = 36  # a UUID in its canonical text form
_HASH_LENGTH = 64  # hex SHA-256
_FAR_FUTURE_MS = MAX_TIME_CLAIM * 1000


def _b64_length(size: int) -> int:
    """Characters of unpadded base64url for ``size`` bytes."""
    return (4 * size + 2) // 3


class PayloadBudget:
    """Computes the largest access cookie a session can get, for one configuration."""

    def __init__(self, config: Config) -> None:
        self.limit = MAX_COOKIE_BYTES
        # Everything of the Set-Cookie value except the token itself (the longest Expires
        # form; a token is base64url and dots, never percent-encoded).
        self.cookie_overhead = len(
            set_cookie_header(
                config, ACCESS_TOKEN_COOKIE, "", config.access_token_path, _FAR_FUTURE_MS
            ).encode()
        )
        skeleton: dict[str, Any] = {
            "sub": "",
            "sessionHandle": "0" * _HANDLE_LENGTH,
            "refreshTokenHash1": "0" * _HASH_LENGTH,
            "parentRefreshTokenHash1": "0" * _HASH_LENGTH,
            "userData": {},
        }
        if config.enable_anti_csrf:
            skeleton["antiCsrfToken"] = "0" * _b64_length(ANTI_CSRF_BYTES)
        skeleton["iat"] = skeleton["exp"] = skeleton["auth_time"] = MAX_TIME_CLAIM
        # The skeleton holds `""` and `{}`: their 4 characters are replaced by the real ones.
        self.claims_overhead = len(dumps_compact(skeleton)) - 4

    def largest_cookie(self, header_segment: str, key: SigningKey, user_id: str, payload_json: str) -> int:
        """Bytes of the largest access cookie of a session with this user id and payload
        (``payload_json`` is the compact JSON of the payload), signed with ``key``."""
        claims = self.claims_overhead + len(json_string(user_id)) + len(payload_json)
        token = len(header_segment) + 1 + _b64_length(claims) + 1 + _b64_length(key.signature_length)
        return self.cookie_overhead + token

    def max_payload_json(self, header_segment: str, key: SigningKey, user_id: str) -> int:
        """The largest payload JSON (characters of compact JSON) that fits the budget with
        this user id and key: :meth:`check_json` passes exactly when
        ``len(payload_json) <= max_payload_json(...)`` (negative when nothing fits)."""
        # largest_cookie <= limit  <=>  _b64_length(claims) <= room  <=>  claims <= 3 * room // 4
        room = self.limit - self.cookie_overhead - len(header_segment) - 2 - _b64_length(key.signature_length)
        return 3 * room // 4 - self.claims_overhead - len(json_string(user_id))

    def check(self, header_segment: str, key: SigningKey, user_id: str, payload: dict[str, Any]) -> None:
        """Raise :class:`~sessionward.errors.PayloadTooLargeError` naming the size and the
        limit when ``payload`` does not fit the budget."""
        self.check_json(header_segment, key, user_id, dumps_compact(payload))

    def check_json(self, header_segment: str, key: SigningKey, user_id: str, payload_json: str) -> None:
        """:meth:`check` for a payload already serialised (``payload_json`` is its compact JSON)."""
        size = self.largest_cookie(header_segment, key, user_id, payload_json)
        if size > self.limit:
            room = len(payload_json) - 2 - (size - self.limit) * 3 // 4
            raise PayloadTooLargeError(
                f"jwt_payload: {len(payload_json)} bytes of JSON would make this session's "
                f"access-token cookie {size} bytes, over the {self.limit}-byte limit browsers "
                f"enforce (with this user id and configuration, about {max(room, 0)} bytes of "
                f"payload JSON fit); keep large data in session_data",
                size,
                self.limit,
            )
