"""Strict encodings shared by every token: base64url without padding, JSON, SHA-256 hex.

Parsing here is deliberately strict: base64url must use the URL-safe alphabet,
no padding and canonical trailing bits; JSON must be UTF-8, without duplicate members and
without NaN/Infinity. Objects sessionward writes are nested at most :data:`MAX_JSON_DEPTH`
deep. Every violation
raises :class:`MalformedError`, which callers map to the error the protocol asks for.
"""

from __future__ import annotations

import binascii
import hashlib
import json
from collections.abc import Callable
from json.encoder import encode_basestring_ascii
from typing import Any

__all__ = [
    "MAX_JSON_DEPTH",
    "STRICT_JSON_DECODER",
    "MalformedError",
    "b64url_decode",
    "b64url_encode",
    "dumps_compact",
    "json_string",
    "loads_strict",
    "sha256_hex",
]

MAX_JSON_DEPTH = 32
_B64URL_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
_FROM_STANDARD = bytes.maketrans(b"+/", b"-_")
# Index of each alphabet character, used to check that unused trailing bits are zero.
_SEXTET = {c: i for i, c in enumerate(_B64URL_ALPHABET)}
_PADDING = {2: b"==", 3: b"="}


class MalformedError(ValueError):
    """An encoded value is not in the strict form sessionward accepts."""


def b64url_encode(data: bytes) -> str:
    """Encode ``data`` as base64url without padding."""
    # binascii directly: what base64.b64encode calls, without its wrapper.
    return binascii.b2a_base64(data, newline=False).translate(_FROM_STANDARD).rstrip(b"=").decode("ascii")


def b64url_decode(text: str | bytes) -> bytes:
    """Decode unpadded base64url strictly: alphabet, length and trailing bits are checked."""
    try:
        raw = text.encode("ascii", "strict") if isinstance(text, str) else text
    except UnicodeEncodeError:
        raise MalformedError("characters outside the base64url alphabet") from None
    if raw.translate(None, _B64URL_ALPHABET):
        raise MalformedError("characters outside the base64url alphabet")
    remainder = len(raw) % 4
    if remainder == 1:
        raise MalformedError("impossible base64url length")
    if remainder:
        # Non-canonical encodings (non-zero unused bits) would make tokens malleable.
        if _SEXTET[raw[-1]] & (0b1111 if remainder == 2 else 0b11):
            raise MalformedError("non-canonical base64url")
        raw += _PADDING[remainder]
    # The alphabet and padding were checked above, so the lenient decoder is exact here.
    return binascii.a2b_base64(raw.translate(_TO_STANDARD))


def sha256_hex(text: str) -> str:
    """Lowercase hex SHA-256 of the UTF-8 bytes of ``text``."""
    return hashlib.sha256(text.encode()).hexdigest()


_COMPACT_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True, allow_nan=False)


#: The JSON text of a string, exactly as :func:`dumps_compact` writes it (ASCII-escaped):
#: the encoder's C function for strings, without its per-call dispatch.
json_string: Callable[[str], str] = encode_basestring_ascii


# What ``_COMPACT_ENCODER.encode`` hands the C encoder (``JSONEncoder.iterencode``), after
# the markers of circular references: building the C encoder directly skips two Python
# calls and a closure per value (this runs on every login and refresh).
_C_MAKE_ENCODER: Callable[..., Callable[[Any, int], list[str]]] | None = getattr(
    json.encoder, "c_make_encoder", None
)
_C_ENCODER_ARGS = (_COMPACT_ENCODER.default, encode_basestring_ascii, None, ":", ",", False, False, False)


def dumps_compact(value: Any) -> str:
    """Serialise ``value`` as compact, ASCII-only JSON (non-ASCII escaped as ``\\uXXXX``)."""
    make_encoder = _C_MAKE_ENCODER
    if make_encoder is None:  # an interpreter without the C accelerator
        return _COMPACT_ENCODER.encode(value)
    # Fresh markers per call, as JSONEncoder does: the C encoder leaves an object's marker
    # behind when it fails inside it, and one dict shared between threads would report
    # circular references that are not.
    return "".join(make_encoder({}, *_C_ENCODER_ARGS)(value, 0))


def _reject_constant(name: str) -> Any:
    raise MalformedError(f"JSON constant {name} is not allowed")


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise MalformedError("duplicate JSON member")
    return result


STRICT_JSON_DECODER = json.JSONDecoder(
    object_pairs_hook=_object_without_duplicates, parse_constant=_reject_constant
)


def loads_strict(data: bytes) -> Any:
    """Parse UTF-8 JSON strictly (see the module docstring)."""
    try:
        return STRICT_JSON_DECODER.decode(data.decode("utf-8", "strict"))
    except MalformedError:
        raise
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        # ValueError covers JSONDecodeError and integers over the digit limit; the C
        # scanner raises RecursionError (no crash) on deep nesting, and inputs are capped
        # in size before they get here.
        raise MalformedError(f"invalid JSON ({type(exc).__name__})") from None
