"""Validation of what applications hand to the engine: user ids, JWT payloads and session
data (JSON objects the engine can serialise, sign and store without surprises)."""

from __future__ import annotations

import math
from typing import Any

from ..errors import GeneralError
from ..tokens.encoding import MAX_JSON_DEPTH
from ..tokens.refresh import MAX_USER_ID_BYTES

__all__ = ["check_json_object", "check_user_id"]

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
