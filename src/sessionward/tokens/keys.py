"""Signing keys: generation, the raw signature primitives, JWK export and stored form.

A :class:`SigningKey` binds one algorithm to one key; the algorithm comes from
configuration, never from a token header. ``verify`` answers ``True``/``False`` for any
input and never raises, which is what the Wycheproof tests exercise.
"""

from __future__ import annotations

import hmac
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from .encoding import b64url_decode, b64url_encode

__all__ = ["PublicKey", "SigningKey", "Verifier", "generate_signing_key", "make_verifier", "verify_signature"]

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | bytes
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | bytes

_PKCS1 = padding.PKCS1v15()
_SHA256 = hashes.SHA256()
_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())
_P256_ORDER_BYTES = 32
HMAC_SECRET_BYTES = 32
_SUPPORTED_PRIVATE_KEYS = (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey)
_PRIVATE_KEY_TYPES: dict[str, type] = {
    "RS256": rsa.RSAPrivateKey,
    "ES256": ec.EllipticCurvePrivateKey,
    "EdDSA": ed25519.Ed25519PrivateKey,
}


Verifier = Callable[[bytes, bytes], bool]


def make_verifier(alg: str, public_key: PublicKey) -> Verifier:
    """A function ``(message, signature) -> bool`` for one key; never raises on bad input.

    Built once per key so the per-token check does no dispatch on the algorithm.
    """
    if alg == "HS256" and isinstance(public_key, bytes):
        secret = public_key

        def verify_hs256(message: bytes, signature: bytes) -> bool:
            return hmac.compare_digest(hmac.digest(secret, message, "sha256"), signature)

        return verify_hs256
    if alg == "RS256" and isinstance(public_key, rsa.RSAPublicKey):
        rsa_key = public_key

        def verify_rs256(message: bytes, signature: bytes) -> bool:
            try:
                rsa_key.verify(signature, message, _PKCS1, _SHA256)
            except (InvalidSignature, ValueError):
                return False
            return True

        return verify_rs256
    if alg == "ES256" and isinstance(public_key, ec.EllipticCurvePublicKey):
        ec_key = public_key

        def verify_es256(message: bytes, signature: bytes) -> bool:
            if len(signature) != 2 * _P256_ORDER_BYTES:
                return False
            r = int.from_bytes(signature[:_P256_ORDER_BYTES], "big")
            s = int.from_bytes(signature[_P256_ORDER_BYTES:], "big")
            try:
                ec_key.verify(encode_dss_signature(r, s), message, _ECDSA_SHA256)
            except (InvalidSignature, ValueError):
                return False
            return True

        return verify_es256
    if alg == "EdDSA" and isinstance(public_key, ed25519.Ed25519PublicKey):
        ed_key = public_key

        def verify_eddsa(message: bytes, signature: bytes) -> bool:
            try:
                ed_key.verify(signature, message)
            except (InvalidSignature, ValueError):
                return False
            return True

        return verify_eddsa
    raise ValueError(f"key type does not match algorithm {alg!r}")


def verify_signature(alg: str, public_key: PublicKey, message: bytes, signature: bytes) -> bool:
    """Check a JWS signature (RFC 7518 encoding) of ``message``; never raises on bad input."""
    return make_verifier(alg, public_key)(message, signature)


def _sign(alg: str, private_key: PrivateKey, message: bytes) -> bytes:
    if alg == "RS256":
        assert isinstance(private_key, rsa.RSAPrivateKey)
        return private_key.sign(message, _PKCS1, _SHA256)
    if alg == "HS256":
        assert isinstance(private_key, bytes)
        return hmac.digest(private_key, message, "sha256")
    if alg == "ES256":
        assert isinstance(private_key, ec.EllipticCurvePrivateKey)
        r, s = decode_dss_signature(private_key.sign(message, _ECDSA_SHA256))
        return r.to_bytes(_P256_ORDER_BYTES, "big") + s.to_bytes(_P256_ORDER_BYTES, "big")
    assert isinstance(private_key, ed25519.Ed25519PrivateKey)
    return private_key.sign(message)


@dataclass(frozen=True, slots=True, eq=False)
class SigningKey:
    """One access-token signing key.

    Attributes:
        kid: the key id placed in token headers and the JWKS.
        alg: ``RS256``, ``ES256``, ``EdDSA`` or ``HS256``.
        not_before: seconds since the epoch from which the key may sign.
        private_key: the private key object (the secret bytes for HS256).
        public_key: the verification key (the same secret bytes for HS256).
        verify: ``verify(message, signature) -> bool`` under this key.
    """

    kid: str
    alg: str
    not_before: int
    private_key: PrivateKey
    public_key: PublicKey
    verify: Verifier = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "verify", make_verifier(self.alg, self.public_key))

    def sign(self, message: bytes) -> bytes:
        """Sign ``message`` and return the JWS signature bytes."""
        return _sign(self.alg, self.private_key, message)

    @property
    def signature_length(self) -> int:
        """Bytes of every signature this key makes (JWS signatures have a fixed size)."""
        if isinstance(self.private_key, rsa.RSAPrivateKey):
            return (self.private_key.key_size + 7) // 8
        if self.alg == "HS256":
            return 32
        return 2 * _P256_ORDER_BYTES if self.alg == "ES256" else 64

    def public_jwk(self) -> dict[str, str] | None:
        """The public key as an RFC 7517 JWK, or ``None`` for HS256 (never published)."""
        key = self.public_key
        common = {"kid": self.kid, "alg": self.alg, "use": "sig"}
        if isinstance(key, rsa.RSAPublicKey):
            numbers = key.public_numbers()
            return {
                "kty": "RSA",
                **common,
                "n": b64url_encode(_int_bytes(numbers.n)),
                "e": b64url_encode(_int_bytes(numbers.e)),
            }
        if isinstance(key, ec.EllipticCurvePublicKey):
            point = key.public_numbers()
            return {
                "kty": "EC",
                **common,
                "crv": "P-256",
                "x": b64url_encode(point.x.to_bytes(_P256_ORDER_BYTES, "big")),
                "y": b64url_encode(point.y.to_bytes(_P256_ORDER_BYTES, "big")),
            }
        if isinstance(key, ed25519.Ed25519PublicKey):
            raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            return {"kty": "OKP", **common, "crv": "Ed25519", "x": b64url_encode(raw)}
        return None

    def to_stored(self) -> str:
        """Serialise the key (private part included) for the ``key_value`` table."""
        if isinstance(self.private_key, bytes):
            material = self.private_key
        else:
            material = self.private_key.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        return json.dumps(
            {
                "kid": self.kid,
                "alg": self.alg,
                "not_before": self.not_before,
                "key": b64url_encode(material),
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_stored(cls, value: str) -> SigningKey:
        """Load a key written by :meth:`to_stored`; raises ``ValueError`` if it is corrupt."""
        data: Any = json.loads(value)
        alg = data["alg"]
        material = b64url_decode(data["key"])
        private: PrivateKey
        public: PublicKey
        if alg == "HS256":
            private = public = material
        else:
            loaded = serialization.load_der_private_key(material, password=None)
            expected = _PRIVATE_KEY_TYPES.get(alg)
            if (
                expected is None
                or not isinstance(loaded, _SUPPORTED_PRIVATE_KEYS)
                or not isinstance(loaded, expected)
            ):
                raise ValueError(f"stored key does not match its algorithm {alg!r}")
            private, public = loaded, loaded.public_key()
        return cls(str(data["kid"]), alg, int(data["not_before"]), private, public)


def generate_signing_key(alg: str, not_before: int) -> SigningKey:
    """Create a fresh key for ``alg`` with a random ``kid``."""
    kid = secrets.token_urlsafe(12)
    private: PrivateKey
    if alg == "RS256":
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    elif alg == "ES256":
        private = ec.generate_private_key(ec.SECP256R1())
    elif alg == "EdDSA":
        private = ed25519.Ed25519PrivateKey.generate()
    elif alg == "HS256":
        private = secrets.token_bytes(HMAC_SECRET_BYTES)
        return SigningKey(kid, alg, not_before, private, private)
    else:
        raise ValueError(f"unsupported algorithm {alg!r}")
    return SigningKey(kid, alg, not_before, private, private.public_key())


def _int_bytes(value: int) -> bytes:
    return value.to_bytes((value.bit_length() + 7) // 8, "big")
