"""Refresh tokens (deterministic authenticated encryption), anti-CSRF and idRefresh tokens.

A refresh token is AES-SIV (RFC 5297) over a small binary record::

    version (1) | kind (1) | session handle (16) | link (32) | user id (UTF-8)

where ``link`` is 32 random bytes for a session's first token (``kind`` 0) and the raw
SHA-256 of the parent token for every later one (``kind`` 1). AES-SIV is safe for
deterministic encryption, so a child's bytes are a pure function of its parent: the same
parent always yields the same child in every process holding the key, which is what makes
refresh idempotent. The encoding is unpadded base64url, without dots, so it can
never be mistaken for an access token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESSIV

from .encoding import MalformedError, b64url_decode, b64url_encode

__all__ = [
    "ANTI_CSRF_BYTES",
    "ID_REFRESH_BYTES",
    "MAX_USER_ID_BYTES",
    "ROOT_LINK_BYTES",
    "InvalidRefreshToken",
    "RefreshTokenCodec",
    "RefreshTokenContent",
    "new_id_refresh_token",
]

MAX_USER_ID_BYTES = 256
#: Bytes of HMAC output in an anti-CSRF token (192 bits; 32 base64url characters).
ANTI_CSRF_BYTES = 24
MAX_REFRESH_TOKEN_LENGTH = 1024
_VERSION = 1
_ROOT, _CHILD = 0, 1
_HEADER_BYTES = 2 + 16 + 32
_ASSOCIATED_DATA = [b"sessionward refresh token v1"]
MASTER_SECRET_BYTES = 64


class InvalidRefreshToken(Exception):
    """The value is not a refresh token issued under this server key."""


@dataclass(frozen=True, slots=True)
class RefreshTokenContent:
    """What a refresh token says about itself once decrypted.

    ``parent_hash1`` is the hex SHA-256 of the parent token, ``None`` for a session's first
    token.
    """

    session_handle: str
    user_id: str
    parent_hash1: str | None


#: Random bytes in an idRefresh token (192 bits; 32 base64url characters).
ID_REFRESH_BYTES = 24
#: Random bytes of a session's first refresh token (its ``link``).
ROOT_LINK_BYTES = 32


def new_id_refresh_token(random: bytes | None = None) -> str:
    """A fresh idRefresh token: 192 random bits, base64url (``secrets.token_urlsafe(24)``).

    ``random``: :data:`ID_REFRESH_BYTES` bytes from ``os.urandom`` to use instead of reading
    new ones (a caller that needs several random values reads them in one call)."""
    if random is None:
        random = secrets.token_bytes(ID_REFRESH_BYTES)
    elif len(random) != ID_REFRESH_BYTES:
        raise ValueError(f"an idRefresh token takes {ID_REFRESH_BYTES} random bytes")
    return b64url_encode(random)


class RefreshTokenCodec:
    """Encrypts, decrypts and derives refresh tokens under one master secret.

    The master secret (64 random bytes kept in the store) is expanded with HMAC into an
    AES-SIV key and an anti-CSRF key, so the two uses never share key material.
    """

    def __init__(self, master_secret: bytes) -> None:
        if len(master_secret) < 32:
            raise ValueError("refresh-token master secret must be at least 32 bytes")
        encryption_key = hmac.digest(master_secret, b"sessionward/refresh-token/aes-siv", "sha512")
        self._siv = AESSIV(encryption_key)
        self._csrf_key = hmac.digest(master_secret, b"sessionward/anti-csrf", "sha256")

    def new_root(
        self,
        session_handle: str,
        user_id: str,
        handle_bytes: bytes | None = None,
        link: bytes | None = None,
    ) -> str:
        """The first refresh token of a session (carries 256 random bits); ``handle_bytes``,
        when the caller has them, are the 16 bytes of the ``session_handle`` UUID; ``link``,
        :data:`ROOT_LINK_BYTES` bytes from ``os.urandom`` to use instead of reading new ones."""
        if link is None:
            link = secrets.token_bytes(ROOT_LINK_BYTES)
        elif len(link) != ROOT_LINK_BYTES:
            raise ValueError(f"a root refresh token takes {ROOT_LINK_BYTES} random bytes")
        return self._seal(_ROOT, session_handle, link, user_id, handle_bytes)

    def child_of(self, parent: str, content: RefreshTokenContent) -> str:
        """The unique successor of ``parent`` (whose decrypted content is ``content``)."""
        link = hashlib.sha256(parent.encode()).digest()
        return self._seal(_CHILD, content.session_handle, link, content.user_id)

    def anti_csrf_token(self, refresh_token_hash1: str) -> str:
        """The anti-CSRF token bound to the refresh token whose hex SHA-256 is given."""
        digest = hmac.digest(self._csrf_key, refresh_token_hash1.encode(), "sha256")
        return b64url_encode(digest[:ANTI_CSRF_BYTES])

    def decrypt(self, token: str) -> RefreshTokenContent:
        """Authenticate and decode ``token``; raises :class:`InvalidRefreshToken`."""
        if not isinstance(token, str) or not 0 < len(token) <= MAX_REFRESH_TOKEN_LENGTH:
            raise InvalidRefreshToken("not a string of acceptable length")
        try:
            record = self._siv.decrypt(b64url_decode(token), _ASSOCIATED_DATA)
        except (MalformedError, UnicodeEncodeError, InvalidTag, ValueError):
            raise InvalidRefreshToken("cannot be decrypted with the server key") from None
        if len(record) <= _HEADER_BYTES or record[0] != _VERSION or record[1] not in (0, 1):
            raise InvalidRefreshToken("unknown record layout")
        try:
            user_id = record[_HEADER_BYTES:].decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidRefreshToken("unknown record layout") from None
        handle = str(uuid.UUID(bytes=record[2:18]))
        parent = record[18:50].hex() if record[1] == _CHILD else None
        return RefreshTokenContent(handle, user_id, parent)

    def _seal(
        self, kind: int, session_handle: str, link: bytes, user_id: str, handle_bytes: bytes | None = None
    ) -> str:
        user_bytes = user_id.encode("utf-8")
        if handle_bytes is None:
            handle_bytes = uuid.UUID(session_handle).bytes
        record = bytes((_VERSION, kind)) + handle_bytes + link + user_bytes
        return b64url_encode(self._siv.encrypt(record, _ASSOCIATED_DATA))
