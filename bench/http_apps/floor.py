"""The crypto floor of one request: read the cookie, verify the JWS with bare primitives."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

_PKCS1 = padding.PKCS1v15()
_SHA256 = hashes.SHA256()


def load_public_key(pem: bytes) -> rsa.RSAPublicKey:
    key = serialization.load_pem_public_key(pem)
    assert isinstance(key, rsa.RSAPublicKey)
    return key


def cookie_value(header: str, name: str = "sAccessToken") -> str | None:
    for pair in header.split(";"):
        key, _, value = pair.strip().partition("=")
        if key == name:
            return value
    return None


def verify(token: str, public_key: rsa.RSAPublicKey) -> dict[str, Any]:
    header, payload, signature = token.split(".")
    public_key.verify(
        base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)),
        f"{header}.{payload}".encode(),
        _PKCS1,
        _SHA256,
    )
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    if claims["exp"] < time.time():
        raise ValueError("expired")
    return claims
