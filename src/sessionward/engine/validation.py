"""Validation of what applications hand to the engine: user ids, JWT payloads and session
data (JSON objects the engine can serialise, sign and store without surprises), session
lifetimes and client information."""

from __future__ import annotations

import math
from typing import Any

from ..config import Config
from ..errors import GeneralError
from ..tokens.encoding import MAX_JSON_DEPTH
from ..tokens.refresh import MAX_USER_ID_BYTES
from .types import MAX_IP_LENGTH, MAX_USER_AGENT_LENGTH

__all__ = ["check_client", "check_json_object", "check_lifetime", "check_user_id"]

_MAX_PAYLOAD_DEPTH = MAX_JSON_DEPTH - 4
_MAX_INT_BITS = 1024


def check_user_id(user_id: Any) -> str:
    """Validate a user id given to ``create_new_session``."""
    if not isinstance(user_id, str):
        raise GeneralError(f"user_id: expected a non-empty string, got {type(user_id).__name__}")
    if not user_id:
        raise GeneralError("user_id: expected a non-empty string, got an empty string")
    if user_id.isascii():  # the usual case: one byte per character, nothing to encode
        if len(user_id) > MAX_USER_ID_BYTES:
            raise GeneralError(f"user_id: longer than {MAX_USER_ID_BYTES} UTF-8 bytes")
        return user_id
    if len(user_id.encode("utf-8", "surrogatepass")) > MAX_USER_ID_BYTES:
        raise GeneralError(f"user_id: longer than {MAX_USER_ID_BYTES} UTF-8 bytes")
    try:
        user_id.encode("utf-8")
    except UnicodeEncodeError:
        raise GeneralError("user_id: contains lone surrogates (not valid UTF-8)") from None
    return user_id


def check_json_object(name: str, value: Any) -> dict[str, Any]:
    """Validate a JWT payload or session data object (``None`` means empty)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise GeneralError(f"{name}: expected a dict, got {type(value).__name__}")
    if value:
        _check_json_value(name, value, 0)
    return value


def _check_json_value(name: str, value: Any, depth: int) -> None:
    # Runs for every login: members that are ASCII strings (the usual case) are checked in
    # the loops without a call, and keys without one either. Checks keep document order
    # (each key before its value), so a value with several faults reports the first.
    if depth > _MAX_PAYLOAD_DEPTH:
        raise GeneralError(f"{name}: nested deeper than {_MAX_PAYLOAD_DEPTH} levels")
    kind = type(value)
    if kind is str:
        if not value.isascii():
            _check_text(name, value)
    elif kind is dict:
        child = depth + 1
        for key, item in value.items():
            if type(key) is not str:
                raise GeneralError(f"{name}: object keys must be strings, got {key!r}")
            if child > _MAX_PAYLOAD_DEPTH:
                raise GeneralError(f"{name}: nested deeper than {_MAX_PAYLOAD_DEPTH} levels")
            if not key.isascii():
                _check_text(name, key)
            if type(item) is not str or not item.isascii():
                _check_json_value(name, item, child)
    elif kind is list:
        child = depth + 1
        if value and child > _MAX_PAYLOAD_DEPTH:
            raise GeneralError(f"{name}: nested deeper than {_MAX_PAYLOAD_DEPTH} levels")
        for item in value:
            if type(item) is not str or not item.isascii():
                _check_json_value(name, item, child)
    elif kind is float:
        if not math.isfinite(value):
            raise GeneralError(f"{name}: NaN and infinities are not JSON")
    elif kind is int:
        if value.bit_length() > _MAX_INT_BITS:
            raise GeneralError(f"{name}: integers are limited to {_MAX_INT_BITS} bits")
    elif value is not None and kind is not bool:
        raise GeneralError(f"{name}: {kind.__name__} values are not JSON-serialisable")


def _check_text(name: str, text: str) -> None:
    """A non-ASCII string must encode as UTF-8 (no lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise GeneralError(f"{name}: strings must be valid Unicode") from None


def check_lifetime(config: Config, persistent: Any, refresh_token_validity: Any) -> int | None:
    """The session's own idle lifetime in seconds from ``create_new_session``'s keywords,
    or ``None`` for the configured one. ``refresh_token_validity`` may only shorten it."""
    if type(persistent) is not bool:
        raise GeneralError(f"persistent: expected True or False, got {type(persistent).__name__}")
    configured = config.refresh_token_validity
    if refresh_token_validity is not None and (
        type(refresh_token_validity) is not int or not 1 <= refresh_token_validity <= configured
    ):
        raise GeneralError(
            f"refresh_token_validity: expected None or an integer from 1 to the configured "
            f"refresh_token_validity ({configured} s; it can only shorten a session), "
            f"got {refresh_token_validity!r}"[:300]
        )
    if persistent:
        return refresh_token_validity
    own = configured if refresh_token_validity is None else refresh_token_validity
    return min(own, config.non_persistent_refresh_token_validity)


def check_client(client: Any) -> tuple[str | None, str | None]:
    """The IP address and user agent to record from a ``ClientInfo`` (or ``None``): strings
    or ``None``, without control characters, cut to their maximum lengths; an empty string
    is ``None``."""
    if client is None:
        return None, None
    if not isinstance(client, tuple) or len(client) != 2:
        raise GeneralError(f"client: expected a ClientInfo or None, got {type(client).__name__}")
    return _client_text("client.ip", client[0], MAX_IP_LENGTH), _client_text(
        "client.user_agent", client[1], MAX_USER_AGENT_LENGTH
    )


def _client_text(name: str, value: Any, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise GeneralError(f"{name}: expected a string or None, got {type(value).__name__}")
    if not value.isprintable():  # control characters, lone surrogates: not worth keeping
        value = "".join(char for char in value if char.isprintable())
    return value[:limit] or None
