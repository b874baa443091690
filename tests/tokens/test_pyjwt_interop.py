"""Interoperability with PyJWT (any RFC 7515 library given our JWKS verifies our tokens).

Both directions: PyJWT verifies tokens minted by the engine, using only the published JWKS;
and the engine accepts a token that PyJWT signed with the engine's own key, while rejecting
one signed with another key or announcing another algorithm.
"""

from __future__ import annotations

import hashlib
import time
import warnings
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.warnings import InsecureKeyLengthWarning

from sessionward import Config, SessionWard, TryRefreshTokenError
from sessionward.tokens.keys import SigningKey

ASYMMETRIC = ["RS256", "ES256", "EdDSA"]


@pytest.fixture(params=ASYMMETRIC)
def asym_engine(request: pytest.FixtureRequest) -> Iterator[SessionWard]:
    with SessionWard(Config(store="sqlite:///:memory:", access_token_algorithm=request.param)) as ward:
        yield ward


@pytest.fixture
def hs_engine() -> Iterator[SessionWard]:
    with SessionWard(Config(store="sqlite:///:memory:", access_token_algorithm="HS256")) as ward:
        yield ward


def _signing_key(engine: SessionWard) -> SigningKey:
    state = engine._core.keys.state
    assert state is not None, "engine not started"
    return state.signing_key


def _check_claims(claims: dict[str, Any], tokens: Any, user_id: str, payload: dict[str, Any]) -> None:
    assert claims["sub"] == user_id
    assert claims["sessionHandle"] == tokens.handle
    assert claims["refreshTokenHash1"] == hashlib.sha256(tokens.refresh_token.value.encode()).hexdigest()
    assert claims["userData"] == payload
    assert type(claims["iat"]) is int and type(claims["exp"]) is int
    assert claims["iat"] <= time.time() + 1
    assert claims["exp"] * 1000 == tokens.access_token.expires_at
    assert claims["exp"] - claims["iat"] == 3600
    assert "parentRefreshTokenHash1" not in claims


def test_pyjwt_verifies_engine_tokens_with_published_jwks(asym_engine: SessionWard) -> None:
    alg = asym_engine.config.access_token_algorithm
    payload = {"role": "admin", "n": [1, 2], "name": "J\u00fcrgen"}
    tokens = asym_engine.create_new_session("user-\u00e9", payload)
    token = tokens.access_token.value
    jwks = asym_engine.jwks()
    assert len(jwks["keys"]) >= 1
    assert all(k["alg"] == alg and k["use"] == "sig" for k in jwks["keys"])
    assert all("d" not in k and "p" not in k for k in jwks["keys"])

    header = jwt.get_unverified_header(token)
    assert header == {"alg": alg, "typ": "JWT", "kid": header["kid"]}
    key_set = jwt.PyJWKSet.from_dict(jwks)
    selected = key_set[header["kid"]]
    assert selected.key_id == header["kid"]

    claims = jwt.decode(token, key=selected, algorithms=[alg])
    _check_claims(claims, tokens, "user-\u00e9", payload)
    # Also through a PyJWK built from the single JWK dictionary.
    jwk_dict = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    assert jwt.decode(token, key=jwt.PyJWK(jwk_dict), algorithms=[alg]) == claims


def test_pyjwt_rejects_engine_token_under_another_kid(asym_engine: SessionWard) -> None:
    alg = asym_engine.config.access_token_algorithm
    tokens = asym_engine.create_new_session("alice")
    old_kid = jwt.get_unverified_header(tokens.access_token.value)["kid"]
    new_kid = asym_engine.rotate_signing_key()
    assert new_kid != old_kid
    key_set = jwt.PyJWKSet.from_dict(asym_engine.jwks())
    # Both keys are published; only the token's kid verifies it.
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(tokens.access_token.value, key=key_set[new_kid], algorithms=[alg])
    assert jwt.decode(tokens.access_token.value, key=key_set[old_kid], algorithms=[alg])["sub"] == "alice"
    fresh = asym_engine.create_new_session("bob").access_token.value
    assert jwt.get_unverified_header(fresh)["kid"] == new_kid
    assert jwt.decode(fresh, key=key_set[new_kid], algorithms=[alg])["sub"] == "bob"


def test_pyjwt_verifies_refreshed_token_with_parent_claim(asym_engine: SessionWard) -> None:
    alg = asym_engine.config.access_token_algorithm
    tokens = asym_engine.create_new_session("carol", {"v": 1})
    refreshed = asym_engine.refresh_session(tokens.refresh_token.value)
    token = refreshed.access_token.value
    key_set = jwt.PyJWKSet.from_dict(asym_engine.jwks())
    claims = jwt.decode(token, key=key_set[jwt.get_unverified_header(token)["kid"]], algorithms=[alg])
    assert claims["parentRefreshTokenHash1"] == claims_hash(tokens.refresh_token.value)
    assert claims["refreshTokenHash1"] == claims_hash(refreshed.refresh_token.value)


def claims_hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def test_hs256_jwks_is_empty_and_pyjwt_verifies_with_the_secret(hs_engine: SessionWard) -> None:
    tokens = hs_engine.create_new_session("dave", {"x": True})
    assert hs_engine.jwks() == {"keys": []}
    key = _signing_key(hs_engine)
    assert isinstance(key.private_key, bytes) and len(key.private_key) >= 32
    header = jwt.get_unverified_header(tokens.access_token.value)
    assert header == {"alg": "HS256", "typ": "JWT", "kid": key.kid}
    claims = jwt.decode(tokens.access_token.value, key=key.private_key, algorithms=["HS256"])
    _check_claims(claims, tokens, "dave", {"x": True})
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(tokens.access_token.value, key=b"\x00" * 32, algorithms=["HS256"])


def _pyjwt_key(key: SigningKey) -> Any:
    return key.private_key


@pytest.mark.parametrize("alg", [*ASYMMETRIC, "HS256"])
def test_engine_accepts_token_signed_by_pyjwt_with_engine_key(alg: str) -> None:
    with SessionWard(Config(store="sqlite:///:memory:", access_token_algorithm=alg)) as engine:
        tokens = engine.create_new_session("erin", {"plan": "pro"})
        genuine = jwt.decode(tokens.access_token.value, options={"verify_signature": False})
        key = _signing_key(engine)
        assert key.kid in engine._core.access_codec._by_kid
        forged = jwt.encode(genuine, _pyjwt_key(key), algorithm=alg, headers={"kid": key.kid, "typ": "JWT"})
        # PyJWT orders header members differently: the engine parses this header afresh.
        assert forged.split(".")[0] != tokens.access_token.value.split(".")[0]
        verified = engine.get_session(forged)
        assert verified.user_id == "erin"
        assert verified.handle == tokens.handle
        assert verified.jwt_payload == {"plan": "pro"}
        assert verified.new_access_token is None


def _other_private_key(alg: str) -> Any:
    if alg == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    return b"\x07" * 32


@pytest.mark.parametrize("alg", [*ASYMMETRIC, "HS256"])
def test_engine_rejects_pyjwt_token_signed_with_another_key(alg: str) -> None:
    with SessionWard(Config(store="sqlite:///:memory:", access_token_algorithm=alg)) as engine:
        tokens = engine.create_new_session("frank")
        genuine = jwt.decode(tokens.access_token.value, options={"verify_signature": False})
        kid = _signing_key(engine).kid
        headers = {"kid": kid, "typ": "JWT"}
        forged = jwt.encode(genuine, _other_private_key(alg), algorithm=alg, headers=headers)
        with pytest.raises(TryRefreshTokenError):
            engine.get_session(forged)
        assert engine.get_session(tokens.access_token.value).user_id == "frank"


@pytest.mark.parametrize(
    ("engine_alg", "token_alg"),
    [
        ("RS256", "PS256"),
        ("RS256", "RS384"),
        ("RS256", "RS512"),
        ("ES256", "ES384"),
        ("ES256", "ES512"),
        ("HS256", "HS384"),
        ("HS256", "HS512"),
    ],
)
def test_engine_rejects_pyjwt_token_with_another_algorithm(engine_alg: str, token_alg: str) -> None:
    with SessionWard(Config(store="sqlite:///:memory:", access_token_algorithm=engine_alg)) as engine:
        tokens = engine.create_new_session("grace")
        genuine = jwt.decode(tokens.access_token.value, options={"verify_signature": False})
        key = _signing_key(engine)
        signing_key: Any = key.private_key
        if token_alg in ("ES384", "ES512"):
            # PyJWT checks the curve against the algorithm; a P-256 key cannot sign ES384.
            signing_key = ec.generate_private_key(ec.SECP384R1() if token_alg == "ES384" else ec.SECP521R1())
        with warnings.catch_warnings():
            # Our 32-byte HS256 secret is "short" for HS384/HS512; irrelevant to this test.
            warnings.simplefilter("ignore", InsecureKeyLengthWarning)
            forged = jwt.encode(
                genuine, signing_key, algorithm=token_alg, headers={"kid": key.kid, "typ": "JWT"}
            )
        with pytest.raises(TryRefreshTokenError):
            engine.get_session(forged)
        assert engine.get_session(tokens.access_token.value).user_id == "grace"


def test_engine_rejects_pyjwt_token_with_other_typ_or_extra_header() -> None:
    with SessionWard(Config(store="sqlite:///:memory:")) as engine:
        tokens = engine.create_new_session("heidi")
        genuine = jwt.decode(tokens.access_token.value, options={"verify_signature": False})
        key = _signing_key(engine)
        for headers in (
            {"kid": key.kid, "typ": "at+jwt"},
            {"kid": key.kid, "typ": "JWT", "cty": "JWT"},
            {"kid": key.kid, "typ": "JWT", "x5t": "abc"},
        ):
            forged = jwt.encode(genuine, key.private_key, algorithm="RS256", headers=headers)
            with pytest.raises(TryRefreshTokenError):
                engine.get_session(forged)
