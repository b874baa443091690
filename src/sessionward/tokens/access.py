"""Access tokens: compact JWS (RFC 7515) with sessionward's claims, signed and verified on
raw ``cryptography`` primitives.

Verification order: size, shape, header, signature, and only then the payload JSON, so
that no attacker-controlled JSON is parsed before the signature is known to be ours. The
algorithm is pinned by configuration; a header naming anything else is rejected. Header
segments already seen with a valid signature are remembered, so the usual token skips
header parsing entirely.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, NamedTuple

from .encoding import (
    STRICT_JSON_DECODER,
    MalformedError,
    b64url_decode,
    b64url_encode,
    dumps_compact,
    json_string,
    loads_strict,
)
from .keys import SigningKey

__all__ = [
    "MAX_ACCESS_TOKEN_LENGTH",
    "MAX_TIME_CLAIM",
    "AccessTokenClaims",
    "AccessTokenCodec",
    "InvalidAccessToken",
    "UnknownKeyId",
]

MAX_ACCESS_TOKEN_LENGTH = 8192
#: The last second of the year 9999: time claims beyond it (or negative) are malformed.
MAX_TIME_CLAIM = 253_402_300_799
_ALLOWED_HEADER_MEMBERS = frozenset({"alg", "typ", "kid"})
_KID_PATTERN = re.compile(r"[A-Za-z0-9_\-]{1,64}")
_HASH_PATTERN = re.compile(r"[0-9a-f]{64}")
_KNOWN_HEADERS_LIMIT = 256


class InvalidAccessToken(Exception):
    """The token is not a valid access token; ``str(exc)`` says why (never the token)."""


class UnknownKeyId(InvalidAccessToken):
    """The header names a ``kid`` this process does not know (yet)."""

    def __init__(self, kid: str) -> None:
        super().__init__("unknown key id")
        self.kid = kid


class AccessTokenClaims(NamedTuple):
    """The verified content of an access token (a tuple: cheap to build per request)."""

    user_id: str
    session_handle: str
    refresh_token_hash1: str
    parent_refresh_token_hash1: str | None
    user_data: dict[str, Any]
    anti_csrf_token: str | None
    issued_at: int
    expires_at: int
    kid: str
    #: The ``auth_time`` claim (seconds): when the user last authenticated; ``None`` for a
    #: token without it.
    auth_time: int | None = None


def _header_segment(key: SigningKey) -> str:
    return b64url_encode(dumps_compact({"alg": key.alg, "typ": "JWT", "kid": key.kid}).encode())


class AccessTokenCodec:
    """Signs and verifies access tokens with a set of keys of one algorithm.

    ``set_keys`` replaces the verification keys atomically (a single attribute swap), so
    readers in other threads see either the old or the new set, never a mix.
    """

    def __init__(self, alg: str, leeway: int) -> None:
        self.alg = alg
        self.leeway = leeway
        self._by_kid: dict[str, SigningKey] = {}
        self._by_header: dict[bytes, SigningKey] = {}
        self._header_by_kid: dict[str, str] = {}

    def set_keys(self, keys: Iterable[SigningKey]) -> None:
        """Make exactly ``keys`` (of this codec's algorithm) the verification keys."""
        by_kid = {key.kid: key for key in keys if key.alg == self.alg}
        self._header_by_kid = {kid: _header_segment(key) for kid, key in by_kid.items()}
        self._by_header = {
            segment.encode("ascii"): by_kid[kid] for kid, segment in self._header_by_kid.items()
        }
        self._by_kid = by_kid

    def has_kid(self, kid: str) -> bool:
        """Whether ``kid`` is currently a verification key."""
        return kid in self._by_kid

    def header_segment(self, key: SigningKey) -> str:
        """The encoded protected header this codec writes for ``key``."""
        return self._header_by_kid.get(key.kid) or _header_segment(key)

    def encode(
        self,
        key: SigningKey,
        *,
        user_id: str,
        session_handle: str,
        refresh_token_hash1: str,
        parent_refresh_token_hash1: str | None,
        user_data: dict[str, Any],
        anti_csrf_token: str | None,
        issued_at: int,
        expires_at: int,
        user_data_json: str | None = None,
        auth_time: int | None = None,
    ) -> str:
        """Sign a token with ``key``; ``issued_at``/``expires_at`` in seconds.

        ``user_data_json``, when given, must be ``dumps_compact(user_data)``: callers that
        serialised the payload already (create) pass it so it is not serialised again.
        ``auth_time`` (seconds), when given, is the ``auth_time`` claim (the OpenID Connect
        claim: when the user last authenticated).
        """
        if user_data_json is None:
            claims: dict[str, Any] = {
                "sub": user_id,
                "sessionHandle": session_handle,
                "refreshTokenHash1": refresh_token_hash1,
            }
            if parent_refresh_token_hash1 is not None:
                claims["parentRefreshTokenHash1"] = parent_refresh_token_hash1
            claims["userData"] = user_data
            if anti_csrf_token is not None:
                claims["antiCsrfToken"] = anti_csrf_token
            claims["iat"] = issued_at
            claims["exp"] = expires_at
            if auth_time is not None:
                claims["auth_time"] = auth_time
            body = dumps_compact(claims)
        else:
            # Exactly dumps_compact of the same claims, assembled around the payload's JSON
            # (each string through the encoder's fast path for strings).
            parent = (
                ""
                if parent_refresh_token_hash1 is None
                else f',"parentRefreshTokenHash1":{json_string(parent_refresh_token_hash1)}'
            )
            csrf = "" if anti_csrf_token is None else f',"antiCsrfToken":{json_string(anti_csrf_token)}'
            auth = "" if auth_time is None else f',"auth_time":{int(auth_time)}'
            body = (
                f'{{"sub":{json_string(user_id)},"sessionHandle":{json_string(session_handle)},'
                f'"refreshTokenHash1":{json_string(refresh_token_hash1)}{parent},'
                f'"userData":{user_data_json}{csrf},"iat":{int(issued_at)},"exp":{int(expires_at)}{auth}}}'
            )
        header = self._header_by_kid.get(key.kid) or _header_segment(key)
        signing_input = header + "." + b64url_encode(body.encode())
        return signing_input + "." + b64url_encode(key.sign(signing_input.encode("ascii")))

    def decode(self, token: str, now: float) -> AccessTokenClaims:
        """Verify ``token`` at time ``now`` (seconds) and return its claims.

        Raises :class:`UnknownKeyId` for a well-formed header naming an unknown ``kid`` and
        :class:`InvalidAccessToken` for everything else that is wrong.
        """
        if not isinstance(token, str) or len(token) > MAX_ACCESS_TOKEN_LENGTH:
            raise InvalidAccessToken("not a string of acceptable length")
        try:
            raw = token.encode("ascii")
        except UnicodeEncodeError:
            raise InvalidAccessToken("non-ASCII characters") from None
        # Work on bytes from here: one encode instead of one per segment.
        parts = raw.split(b".")
        if len(parts) != 3:
            raise InvalidAccessToken("not three segments")
        header_segment, payload_segment, signature_segment = parts
        key = self._by_header.get(header_segment)
        known_header = key is not None
        if key is None:
            key = self._key_from_header(header_segment)
        try:
            signature = b64url_decode(signature_segment)
        except MalformedError:
            raise InvalidAccessToken("malformed signature segment") from None
        if not key.verify(raw[: len(header_segment) + len(payload_segment) + 1], signature):
            raise InvalidAccessToken("bad signature")
        if not known_header and len(self._by_header) < _KNOWN_HEADERS_LIMIT:
            self._by_header[header_segment] = key
        try:
            # loads_strict inlined (hot path); MalformedError and UnicodeDecodeError are
            # ValueErrors, and the C scanner raises RecursionError on deep nesting.
            payload = STRICT_JSON_DECODER.decode(b64url_decode(payload_segment).decode("utf-8"))
        except (ValueError, RecursionError):
            raise InvalidAccessToken("malformed payload") from None
        return self._claims(payload, key.kid, now)

    def _key_from_header(self, segment: bytes) -> SigningKey:
        try:
            header = loads_strict(b64url_decode(segment))
        except MalformedError:
            raise InvalidAccessToken("malformed header") from None
        if not isinstance(header, dict) or not header.keys() <= _ALLOWED_HEADER_MEMBERS:
            raise InvalidAccessToken("unexpected header members")
        if header.get("alg") != self.alg:
            raise InvalidAccessToken("algorithm not allowed")
        if header.get("typ", "JWT") != "JWT":
            raise InvalidAccessToken("unexpected typ")
        kid = header.get("kid")
        if not isinstance(kid, str) or not _KID_PATTERN.fullmatch(kid):
            raise InvalidAccessToken("missing or malformed kid")
        key = self._by_kid.get(kid)
        if key is None:
            raise UnknownKeyId(kid)
        return key

    def _claims(self, payload: Any, kid: str, now: float) -> AccessTokenClaims:
        if type(payload) is not dict:
            raise InvalidAccessToken("payload is not an object")
        try:
            exp = payload["exp"]
            iat = payload["iat"]
            sub = payload["sub"]
            handle = payload["sessionHandle"]
            rth = payload["refreshTokenHash1"]
            user_data = payload["userData"]
        except KeyError:
            raise InvalidAccessToken("missing claims") from None
        # `type(x) is int` rejects booleans, floats (NaN, 1e400) and strings; the range
        # check rejects times no clock reaches, which would overflow date arithmetic later.
        if type(exp) is not int or type(iat) is not int:
            raise InvalidAccessToken("exp and iat must be integers")
        if not (0 <= iat <= MAX_TIME_CLAIM and 0 <= exp <= MAX_TIME_CLAIM):
            raise InvalidAccessToken("exp or iat out of range")
        leeway = self.leeway
        if now >= exp + leeway:
            raise InvalidAccessToken("expired")
        if iat > now + leeway or iat > exp:
            raise InvalidAccessToken("issued in the future")
        if (
            type(sub) is not str
            or type(handle) is not str
            or type(rth) is not str
            or type(user_data) is not dict
            or len(rth) != 64
        ):
            raise InvalidAccessToken("malformed session claims")
        prth = payload.get("parentRefreshTokenHash1")
        csrf = payload.get("antiCsrfToken")
        if prth is not None and (
            type(prth) is not str or not _HASH_PATTERN.fullmatch(prth) or not _HASH_PATTERN.fullmatch(rth)
        ):
            raise InvalidAccessToken("malformed refresh token hashes")
        if csrf is not None and type(csrf) is not str:
            raise InvalidAccessToken("malformed antiCsrfToken")
        auth_time = payload.get("auth_time")
        if auth_time is not None and (type(auth_time) is not int or not 0 <= auth_time <= MAX_TIME_CLAIM):
            raise InvalidAccessToken("auth_time out of range")
        if "nbf" in payload:
            nbf = payload["nbf"]
            if type(nbf) is not int or not 0 <= nbf <= MAX_TIME_CLAIM:
                raise InvalidAccessToken("nbf out of range")
            if nbf > now + leeway:
                raise InvalidAccessToken("not yet valid")
        return AccessTokenClaims(sub, handle, rth, prth, user_data, csrf, iat, exp, kid, auth_time)
