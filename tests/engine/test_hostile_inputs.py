"""Hostile inputs against the engine (attacks A1-A16, A26, A28, A29, A32 of docs/design/security.md).

Every forged, malformed, oversized or confusing access token must end in
``TryRefreshTokenError`` and every bad refresh token in ``UnauthorizedError``: never another
exception, and never a lost session for the victim. Tokens whose only defect is the
property under test are signed with the engine's real key by a raw signer, so a rejection
cannot be explained by a bad signature.
"""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from support.stores import RecordingStore

from sessionward import (
    Config,
    SessionTokens,
    SessionWard,
    TokenTheftDetectedError,
    TryRefreshTokenError,
    UnauthorizedError,
)
from sessionward.stores.sqlite import SQLiteStore
from sessionward.tokens.encoding import b64url_decode, b64url_encode
from sessionward.tokens.keys import SigningKey, generate_signing_key

P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
MEMORY = "sqlite:///:memory:"
ALGORITHMS = ["RS256", "ES256", "EdDSA", "HS256"]

# -- helpers -----------------------------------------------------------------------------


def b64(data: bytes) -> str:
    return b64url_encode(data)


def compact(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def signing_key(engine: SessionWard) -> SigningKey:
    state = engine._core.keys.state
    assert state is not None, "the engine has not started"
    return state.signing_key


def segments(token: str) -> list[str]:
    return token.split(".")


def claims_of(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = json.loads(b64url_decode(segments(token)[1]))
    return claims


def header_for(engine: SessionWard, **changes: Any) -> dict[str, Any]:
    key = signing_key(engine)
    header: dict[str, Any] = {"alg": key.alg, "typ": "JWT", "kid": key.kid}
    header.update(changes)
    return header


def sign_raw(engine: SessionWard, header: Any, payload: Any, key: SigningKey | None = None) -> str:
    """A token over exactly these header/payload bytes, validly signed with the engine key."""
    key = key or signing_key(engine)
    head = b64(header if isinstance(header, bytes) else compact(header))
    body = b64(payload if isinstance(payload, bytes) else compact(payload))
    signing_input = f"{head}.{body}"
    return signing_input + "." + b64(key.sign(signing_input.encode("ascii")))


def rejected(engine: SessionWard, token: Any, **kwargs: Any) -> TryRefreshTokenError:
    with pytest.raises(TryRefreshTokenError) as caught:
        engine.get_session(token, **kwargs)
    _assert_no_echo(caught.value, token)
    return caught.value


def refresh_rejected(engine: SessionWard, token: Any) -> None:
    with pytest.raises(UnauthorizedError) as caught:
        engine.refresh_session(token)
    _assert_no_echo(caught.value, token)


def _assert_no_echo(error: Exception, token: Any) -> None:
    """Error messages go to logs: they never repeat the token or a piece of it."""
    message = str(error)
    if isinstance(token, str) and len(token) >= 8:
        assert token not in message
        assert all(part not in message for part in token.split(".") if len(part) >= 8)


def assert_victim_ok(engine: SessionWard, victim: SessionTokens) -> None:
    """The victim's session still verifies and refreshes."""
    verified = engine.get_session(victim.access_token.value)
    assert verified.handle == victim.handle and verified.user_id == victim.user_id
    refreshed = engine.refresh_session(victim.refresh_token.value)
    assert refreshed.handle == victim.handle
    assert engine.get_session_information(victim.handle).user_id == victim.user_id


def make_engine(alg: str = "RS256", **options: Any) -> SessionWard:
    return SessionWard(Config(store=MEMORY, access_token_algorithm=alg, **options))


@pytest.fixture
def victim(engine: SessionWard) -> SessionTokens:
    return engine.create_new_session("victim", {"role": "user"}, {"private": 1})


@pytest.fixture(params=ALGORITHMS)
def any_engine(request: pytest.FixtureRequest) -> Iterator[SessionWard]:
    with make_engine(request.param) as ward:
        yield ward


@pytest.fixture
def es_engine() -> Iterator[SessionWard]:
    with make_engine("ES256") as ward:
        yield ward


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the engine opened a network connection")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


# -- sanity of the raw signer ------------------------------------------------------------


def test_raw_signer_produces_accepted_tokens(any_engine: SessionWard) -> None:
    tokens = any_engine.create_new_session("alice", {"k": "v"})
    claims = claims_of(tokens.access_token.value)
    # Re-signing the same header and claims with the raw signer gives a token the engine
    # accepts, so every rejection below is due to the property under test alone.
    token = sign_raw(any_engine, header_for(any_engine), claims)
    verified = any_engine.get_session(token)
    assert verified.user_id == "alice" and verified.jwt_payload == {"k": "v"}
    # Same for a header in another member order (not the engine's cached header bytes).
    key = signing_key(any_engine)
    reordered = sign_raw(any_engine, {"kid": key.kid, "typ": "JWT", "alg": key.alg}, claims)
    assert any_engine.get_session(reordered).handle == tokens.handle


# -- A1/A2: alg none, signature stripping --------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE", "NoNe", "none ", ""])
def test_alg_none_in_any_casing(engine: SessionWard, victim: SessionTokens, alg: str) -> None:
    claims = claims_of(victim.access_token.value)
    kid = signing_key(engine).kid
    for header in ({"alg": alg, "typ": "JWT", "kid": kid}, {"alg": alg}, {"alg": alg, "typ": "JWT"}):
        head, body = b64(compact(header)), b64(compact(claims))
        for signature in ("", "AAAA", segments(victim.access_token.value)[2], b64(b"\x00" * 256)):
            rejected(engine, f"{head}.{body}.{signature}")
        rejected(engine, f"{head}.{body}")
        # Even validly signed with our key, "none" is not the configured algorithm.
        rejected(engine, sign_raw(engine, header, claims))
    assert_victim_ok(engine, victim)


def test_signature_stripping(any_engine: SessionWard) -> None:
    victim = any_engine.create_new_session("victim")
    head, body, signature = segments(victim.access_token.value)
    other = segments(any_engine.create_new_session("other").access_token.value)[2]
    for token in (
        f"{head}.{body}.",
        f"{head}.{body}",
        f"{head}.{body}.AAAA",
        f"{head}.{body}.{b64(bytes(len(b64url_decode(signature))))}",
        f"{head}.{body}.{signature[:-4]}",
        f"{head}.{body}.{signature}AAAA",
        f"{head}.{body}.{other}",
    ):
        rejected(any_engine, token)
    assert_victim_ok(any_engine, victim)


# -- A4: alg other than configured -----------------------------------------------------------


@pytest.mark.parametrize(
    "alg",
    [
        "HS256",
        "HS384",
        "RS384",
        "RS512",
        "PS256",
        "ES256",
        "ES384",
        "EdDSA",
        "Ed25519",
        "rs256",
        "RS256 ",
        "rS256",
        "RSA256",
    ],
)
def test_alg_other_than_configured(engine: SessionWard, victim: SessionTokens, alg: str) -> None:
    # RS256 engine; the token is an RS256 signature by our real key, only labelled otherwise.
    claims = claims_of(victim.access_token.value)
    rejected(engine, sign_raw(engine, header_for(engine, alg=alg), claims))
    assert_victim_ok(engine, victim)


@pytest.mark.parametrize("alg_value", [None, 256, ["RS256"], {"name": "RS256"}, True])
def test_alg_of_wrong_type_or_missing(engine: SessionWard, victim: SessionTokens, alg_value: Any) -> None:
    claims = claims_of(victim.access_token.value)
    rejected(engine, sign_raw(engine, header_for(engine, alg=alg_value), claims))
    header = header_for(engine)
    del header["alg"]
    rejected(engine, sign_raw(engine, header, claims))


ALGORITHM_PAIRS = [(a, b) for a in ALGORITHMS for b in ALGORITHMS if a != b]


@pytest.mark.parametrize(("engine_alg", "token_alg"), ALGORITHM_PAIRS)
def test_token_of_another_configured_algorithm(engine_alg: str, token_alg: str) -> None:
    # A genuine token of an engine using another algorithm, with the victim's kid grafted in.
    with make_engine(engine_alg) as engine, make_engine(token_alg) as other:
        victim = engine.create_new_session("victim")
        other.create_new_session("x")
        claims = claims_of(victim.access_token.value)
        foreign_key = signing_key(other)
        token = sign_raw(
            other, {"alg": token_alg, "typ": "JWT", "kid": signing_key(engine).kid}, claims, foreign_key
        )
        rejected(engine, token)
        assert_victim_ok(engine, victim)


# -- A3: key confusion (HMAC keyed with our public key) -----------------------------------------


def _public_key_encodings(engine: SessionWard) -> dict[str, bytes]:
    key = signing_key(engine)
    public = key.public_key
    assert not isinstance(public, bytes)
    encodings: dict[str, bytes] = {}
    enc, fmt = serialization.Encoding, serialization.PublicFormat
    encodings["spki-pem"] = public.public_bytes(enc.PEM, fmt.SubjectPublicKeyInfo)
    encodings["spki-pem-stripped"] = encodings["spki-pem"].strip()
    encodings["spki-der"] = public.public_bytes(enc.DER, fmt.SubjectPublicKeyInfo)
    if key.alg == "RS256":
        encodings["pkcs1-pem"] = public.public_bytes(enc.PEM, fmt.PKCS1)
        encodings["pkcs1-der"] = public.public_bytes(enc.DER, fmt.PKCS1)
    if key.alg == "ES256":
        encodings["x962-point"] = public.public_bytes(enc.X962, fmt.UncompressedPoint)
    if key.alg == "EdDSA":
        encodings["raw"] = public.public_bytes(enc.Raw, fmt.Raw)
    encodings["openssh"] = public.public_bytes(enc.OpenSSH, fmt.OpenSSH)
    jwk = key.public_jwk()
    assert jwk is not None
    encodings["jwk-compact"] = compact(jwk)
    encodings["jwk-pretty"] = json.dumps(jwk, indent=2).encode()
    encodings["jwks-text"] = json.dumps(engine.jwks()).encode()
    encodings["jwk-n-or-x"] = jwk.get("n", jwk.get("x", "")).encode()
    return encodings


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
def test_hs256_keyed_with_our_public_key(alg: str) -> None:
    with make_engine(alg) as engine:
        victim = engine.create_new_session("victim", {"role": "user"})
        claims = claims_of(victim.access_token.value)
        claims["userData"] = {"role": "admin"}
        encodings = _public_key_encodings(engine)
        assert len(encodings) >= 8
        kid = signing_key(engine).kid
        for name, secret in encodings.items():
            hmac_key = SigningKey(kid, "HS256", 0, secret, secret)
            for header in ({"alg": "HS256", "typ": "JWT", "kid": kid}, {"alg": "HS256", "kid": kid}):
                token = sign_raw(engine, header, claims, hmac_key)
                with pytest.raises(TryRefreshTokenError):
                    engine.get_session(token)
                    pytest.fail(f"accepted HS256 keyed with {name}")
        assert_victim_ok(engine, victim)


# -- A6/A7/A8: key material and extension headers ----------------------------------------------


def _extension_headers(engine: SessionWard) -> list[dict[str, Any]]:
    key = signing_key(engine)
    jwk = key.public_jwk()
    cert_like = base64.b64encode(b"0\x82\x01\x00" + b"\x00" * 64).decode()
    base = header_for(engine)
    return [
        {**base, "jwk": jwk},
        {**base, "jku": "http://127.0.0.1:9/jwks"},
        {**base, "jku": "https://attacker.example/.well-known/jwks.json"},
        {**base, "x5u": "http://127.0.0.1:9/cert.pem"},
        {**base, "x5c": [cert_like]},
        {**base, "x5t": "AAAA"},
        {**base, "x5t#S256": "AAAA"},
        {**base, "crit": ["exp"]},
        {**base, "crit": ["x-policy"], "x-policy": 1},
        {**base, "crit": []},
        {**base, "crit": "x"},
        {**base, "b64": False, "crit": ["b64"]},
        {**base, "b64": False},
        {**base, "b64": True},
        {**base, "zip": "DEF"},
        {**base, "enc": "A256GCM"},
        {**base, "p2c": 2147483647, "p2s": "AAAA"},
        {**base, "cty": "JWT"},
        {**base, "iss": "x"},
        {**base, "typ": "at+jwt"},
        {**base, "typ": "jwt"},
        {**base, "typ": None},
        {**base, "typ": ["JWT"]},
    ]


def test_key_material_and_extension_headers(
    engine: SessionWard, victim: SessionTokens, no_network: None
) -> None:
    claims = claims_of(victim.access_token.value)
    headers = _extension_headers(engine)
    for header in headers:
        token = sign_raw(engine, header, claims)
        with pytest.raises(TryRefreshTokenError):
            engine.get_session(token)
            pytest.fail(f"accepted header {sorted(header)}")
    assert_victim_ok(engine, victim)


def test_embedded_attacker_jwk_signed_with_attacker_key(es_engine: SessionWard, no_network: None) -> None:
    victim = es_engine.create_new_session("victim")
    attacker = generate_signing_key("ES256", 0)
    jwk = attacker.public_jwk()
    claims = claims_of(victim.access_token.value)
    claims["sub"] = "admin"
    kid = signing_key(es_engine).kid
    for header in (
        {"alg": "ES256", "typ": "JWT", "kid": kid, "jwk": jwk},
        {"alg": "ES256", "typ": "JWT", "jwk": jwk},
        {"alg": "ES256", "typ": "JWT", "kid": attacker.kid, "jwk": jwk},
        {"alg": "ES256", "typ": "JWT", "kid": kid},
    ):
        rejected(es_engine, sign_raw(es_engine, header, claims, attacker))
    assert_victim_ok(es_engine, victim)


def test_unencoded_payload_b64_false(engine: SessionWard, victim: SessionTokens) -> None:
    # RFC 7797: with b64=false the payload travels and is signed unencoded.
    payload = compact(claims_of(victim.access_token.value))
    key = signing_key(engine)
    for header in (
        {"alg": "RS256", "typ": "JWT", "kid": key.kid, "b64": False, "crit": ["b64"]},
        {"alg": "RS256", "typ": "JWT", "kid": key.kid, "b64": False},
    ):
        head = b64(compact(header))
        signing_input = head.encode() + b"." + payload
        signature = b64(key.sign(signing_input))
        rejected(engine, f"{head}.{payload.decode()}.{signature}")
        rejected(engine, f"{head}..{signature}")  # detached payload
        rejected(engine, sign_raw(engine, header, payload))
    assert_victim_ok(engine, victim)


# -- A5: hostile kid ---------------------------------------------------------------------------------


HOSTILE_KIDS: list[Any] = [
    "",
    "../../../../dev/null",
    "/dev/null",
    "..\\..\\windows\\win.ini",
    "x' UNION SELECT 'secret'--",
    "'; DROP TABLE key_value; --",
    "access_token_signing_key/RS256/%",
    "%",
    "_",
    "$(sleep 10)",
    "`sleep 10`",
    "|sleep 10",
    "k" * 10_000,
    "k" * 65,
    "kid\x00",
    "kid\n",
    "k\u00efd",
    "\ud800",
    123,
    0,
    1.5,
    None,
    True,
    [],
    ["kid"],
    {},
    {"kid": "x"},
]


@pytest.mark.parametrize("kid", HOSTILE_KIDS, ids=lambda k: repr(k)[:24])
def test_hostile_kid_values(engine: SessionWard, victim: SessionTokens, kid: Any) -> None:
    claims = claims_of(victim.access_token.value)
    header = header_for(engine, kid=kid)
    started = time.perf_counter()
    error = rejected(engine, sign_raw(engine, header, claims))
    if isinstance(kid, str) and len(kid) >= 8:
        assert kid not in str(error)
    # Also with an HMAC "signature" over the empty key (the /dev/null trick).
    empty_key = SigningKey("x", "HS256", 0, b"", b"")
    rejected(engine, sign_raw(engine, {**header, "alg": "HS256"}, claims, empty_key))
    assert time.perf_counter() - started < 5, "a kid made verification slow (command execution?)"
    without_kid = header_for(engine)
    del without_kid["kid"]
    rejected(engine, sign_raw(engine, without_kid, claims))
    assert_victim_ok(engine, victim)
    assert len(engine.store.load_keys("")) >= 1  # the key table is intact


def test_kid_of_a_key_from_another_engine(engine: SessionWard, victim: SessionTokens) -> None:
    with make_engine() as other:
        stranger = other.create_new_session("stranger")
        rejected(engine, stranger.access_token.value)
        # Their token with our kid: signature mismatch.
        claims = claims_of(stranger.access_token.value)
        rejected(engine, sign_raw(other, header_for(engine), claims, signing_key(other)))
    assert_victim_ok(engine, victim)


def test_unknown_kid_flood_reloads_keys_at_most_once() -> None:
    real = SQLiteStore(MEMORY)
    proxy = RecordingStore(real)
    try:
        engine = SessionWard(Config(store=MEMORY), store=proxy)
        victim = engine.create_new_session("victim")
        claims = claims_of(victim.access_token.value)
        before = proxy.calls["load_keys"]
        assert before >= 1  # the real store really is behind the proxy
        # Built up front (the signature is never reached for an unknown kid), so the flood
        # itself takes far less than the reload interval.
        body, signature = segments(victim.access_token.value)[1:]
        flood = [
            f"{b64(compact(header_for(engine, kid=f'unknown{index:05d}')))}.{body}.{signature}"
            for index in range(1000)
        ]
        for token in flood:
            rejected(engine, token)
        assert proxy.calls["load_keys"] - before <= 1
        # Malformed kids never reach the store at all.
        for index in range(200):
            rejected(engine, f"{b64(compact(header_for(engine, kid=f'../{index}')))}.{body}.{signature}")
        # Validly signed tokens under an unknown kid: the same verdict, still no extra reload.
        for index in range(20):
            rejected(engine, sign_raw(engine, header_for(engine, kid=f"signed{index}"), claims))
        assert proxy.calls["load_keys"] - before <= 1
        assert_victim_ok(engine, victim)
    finally:
        real.close()


# -- A9: duplicate JSON members ------------------------------------------------------------------


def test_duplicate_members_in_header(engine: SessionWard, victim: SessionTokens) -> None:
    claims = claims_of(victim.access_token.value)
    kid = signing_key(engine).kid
    for raw in (
        f'{{"alg":"none","alg":"RS256","typ":"JWT","kid":"{kid}"}}',
        f'{{"alg":"RS256","alg":"RS256","typ":"JWT","kid":"{kid}"}}',
        f'{{"alg":"RS256","typ":"JWT","kid":"unknown","kid":"{kid}"}}',
        f'{{"alg":"RS256","typ":"JWT","typ":"JWT","kid":"{kid}"}}',
        f'{{"alg":"RS256","typ":"JWT","kid":"{kid}","kid":"{kid}"}}',
    ):
        rejected(engine, sign_raw(engine, raw.encode(), claims))
    assert_victim_ok(engine, victim)


def _raw_claims(claims: dict[str, Any], extra: str, skip: tuple[str, ...] = ()) -> bytes:
    """Claims as raw JSON text with ``extra`` members inserted verbatim (before the rest)."""
    members = [
        f"{json.dumps(k)}:{json.dumps(v, separators=(',', ':'))}" for k, v in claims.items() if k not in skip
    ]
    inner = ",".join(([extra] if extra else []) + members)
    return ("{" + inner + "}").encode()


@pytest.mark.parametrize(
    "duplicate",
    [
        ("sub", '"sub":"attacker"'),
        ("sessionHandle", '"sessionHandle":"00000000-0000-4000-8000-000000000000"'),
        ("exp", '"exp":1'),
        ("exp", '"exp":99999999999'),
        ("iat", '"iat":1'),
        ("userData", '"userData":{"role":"admin"}'),
        ("refreshTokenHash1", '"refreshTokenHash1":"' + "0" * 64 + '"'),
    ],
    ids=lambda d: d[1][:20],
)
def test_duplicate_members_in_payload(
    engine: SessionWard, victim: SessionTokens, duplicate: tuple[str, str]
) -> None:
    claims = claims_of(victim.access_token.value)
    # The duplicate before and after the genuine member: neither "first" nor "last" wins.
    rejected(engine, sign_raw(engine, header_for(engine), _raw_claims(claims, duplicate[1])))
    after = _raw_claims(claims, "")[:-1] + b"," + duplicate[1].encode() + b"}"
    rejected(engine, sign_raw(engine, header_for(engine), after))
    nested = dict(claims, userData={"role": "user"})
    raw_nested = _raw_claims(nested, "", skip=("userData",))[:-1] + b',"userData":{"a":1,"a":2}}'
    rejected(engine, sign_raw(engine, header_for(engine), raw_nested))
    assert_victim_ok(engine, victim)


# -- A10: encoding and type confusion in claims ----------------------------------------------------


HOSTILE_TIMES = [
    "NaN",
    "-NaN",
    "Infinity",
    "-Infinity",
    "1e400",
    "-1e400",
    "1e20",
    "1e10",
    "4102444800.0",
    "true",
    "false",
    "null",
    '"9999999999"',
    '"4102444800"',
    "[1]",
    "[4102444800]",
    "{}",
    '{"$date":4102444800}',
    "9" * 5000,
]


@pytest.mark.parametrize("claim", ["exp", "iat", "nbf"])
@pytest.mark.parametrize("value", HOSTILE_TIMES, ids=lambda v: v[:16])
def test_hostile_time_claims(engine: SessionWard, victim: SessionTokens, claim: str, value: str) -> None:
    claims = claims_of(victim.access_token.value)
    raw = _raw_claims(claims, f'"{claim}":{value}', skip=(claim,))
    token = sign_raw(engine, header_for(engine), raw)
    head, body, signature = segments(token)
    assert signing_key(engine).verify(f"{head}.{body}".encode(), b64url_decode(signature))
    rejected(engine, token)


OUT_OF_RANGE_TIMES = [10**20, int("9" * 4000), 2**53 + 1, 253_402_300_800, -1, -(2**63)]


@pytest.mark.parametrize("claim", ["exp", "iat", "nbf"])
@pytest.mark.parametrize("value", OUT_OF_RANGE_TIMES, ids=lambda v: str(v)[:16])
def test_validly_signed_huge_or_negative_times_are_malformed(
    engine: SessionWard, victim: SessionTokens, claim: str, value: int
) -> None:
    claims = claims_of(victim.access_token.value)
    token = sign_raw(engine, header_for(engine), dict(claims, **{claim: value}))
    error = rejected(engine, token)
    assert "range" in str(error) or "future" in str(error) or "expired" in str(error)
    # The payload-update path re-signs a copy of a still-valid token: it must see the
    # token as invalid, never overflow while formatting its expiry.
    assert engine.regenerate_access_token(token, {"role": "x"}) is None
    assert_victim_ok(engine, victim)


def test_hostile_time_claims_leave_victim_intact(engine: SessionWard, victim: SessionTokens) -> None:
    claims = claims_of(victim.access_token.value)
    for value in HOSTILE_TIMES:
        for claim in ("exp", "iat"):
            rejected(
                engine,
                sign_raw(
                    engine, header_for(engine), _raw_claims(claims, f'"{claim}":{value}', skip=(claim,))
                ),
            )
    assert_victim_ok(engine, victim)


@pytest.mark.parametrize("missing", ["exp", "iat", "sub", "sessionHandle", "refreshTokenHash1", "userData"])
def test_missing_required_claims(engine: SessionWard, victim: SessionTokens, missing: str) -> None:
    claims = claims_of(victim.access_token.value)
    del claims[missing]
    rejected(engine, sign_raw(engine, header_for(engine), claims))
    assert_victim_ok(engine, victim)


@pytest.mark.parametrize(
    ("claim", "value"),
    [
        ("sub", 1),
        ("sub", None),
        ("sub", ["victim"]),
        ("sessionHandle", 5),
        ("refreshTokenHash1", "short"),
        ("refreshTokenHash1", None),
        ("userData", []),
        ("userData", "x"),
        ("userData", None),
        ("parentRefreshTokenHash1", "nothex"),
        ("parentRefreshTokenHash1", 1),
        ("parentRefreshTokenHash1", "A" * 64),
        ("antiCsrfToken", 1),
        ("antiCsrfToken", ["x"]),
    ],
)
def test_claims_of_wrong_type(engine: SessionWard, victim: SessionTokens, claim: str, value: Any) -> None:
    claims = claims_of(victim.access_token.value)
    claims[claim] = value
    rejected(engine, sign_raw(engine, header_for(engine), claims))


def test_generic_jwt_signed_with_our_key_is_not_an_access_token(
    engine: SessionWard, victim: SessionTokens
) -> None:
    # A15: a JWT of another shape (another recipe, an ID token...) signed with the same key.
    now = int(time.time())
    for claims in (
        {"sub": "victim", "iat": now, "exp": now + 3600},
        {
            "sub": "victim",
            "iss": "https://api.example.com.evil",
            "aud": ["x", "ours"],
            "iat": now,
            "exp": now + 3600,
        },
        {"sub": "victim", "sessionHandle": victim.handle, "iat": now, "exp": now + 3600, "userData": {}},
        {
            "sub": "victim",
            "sessionHandle": victim.handle,
            "refreshTokenHash1": "x" * 64,
            "iat": now,
            "exp": now + 3600,
        },
    ):
        rejected(engine, sign_raw(engine, header_for(engine), claims))
    assert_victim_ok(engine, victim)


@pytest.mark.parametrize("payload", [b"[]", b'"x"', b"1", b"null", b"true", b"", b" ", b"{}"])
def test_payload_that_is_not_a_claims_object(
    engine: SessionWard, victim: SessionTokens, payload: bytes
) -> None:
    rejected(engine, sign_raw(engine, header_for(engine), payload))
    assert_victim_ok(engine, victim)


def test_iat_in_the_future() -> None:
    fake_now = [1_700_000_000.0]
    with SessionWard(Config(store=MEMORY), clock=lambda: fake_now[0]) as engine:
        victim = engine.create_new_session("victim")
        claims = claims_of(victim.access_token.value)
        now = int(fake_now[0])
        for iat in (now + 1, now + 60, now + 365 * 86400):
            rejected(engine, sign_raw(engine, header_for(engine), dict(claims, iat=iat, exp=iat + 3600)))
        # iat after exp.
        rejected(engine, sign_raw(engine, header_for(engine), dict(claims, iat=now, exp=now - 1)))
        assert engine.get_session(sign_raw(engine, header_for(engine), dict(claims, iat=now))).handle
        assert_victim_ok(engine, victim)


def test_nbf_in_the_future() -> None:
    fake_now = [1_700_000_000.0]
    with SessionWard(Config(store=MEMORY, clock_skew_leeway=10), clock=lambda: fake_now[0]) as engine:
        victim = engine.create_new_session("victim")
        claims = claims_of(victim.access_token.value)
        now = int(fake_now[0])
        rejected(engine, sign_raw(engine, header_for(engine), dict(claims, nbf=now + 11)))
        rejected(engine, sign_raw(engine, header_for(engine), dict(claims, nbf=now + 10 + 5)))
        assert engine.get_session(sign_raw(engine, header_for(engine), dict(claims, nbf=now + 10))).handle


@pytest.mark.parametrize(
    "encode",
    [
        lambda text, word: text.encode("utf-16"),
        lambda text, word: text.encode("utf-16-le"),
        lambda text, word: text.encode("utf-16-be"),
        lambda text, word: text.encode("utf-32"),
        lambda text, word: b"\xef\xbb\xbf" + text.encode(),
        lambda text, word: text.encode().replace(word, word[:2] + b"\xff" + word[2:]),
        lambda text, word: text.encode().replace(word, word[:2] + b"\xc3" + word[2:]),
        lambda text, word: text.encode().replace(word, word[:2] + b"\xed\xa0\x80" + word[2:]),
        lambda text, word: text.encode().replace(word, word[:2] + b"\xc0\xaf" + word[2:]),
    ],
    ids=[
        "utf16",
        "utf16le",
        "utf16be",
        "utf32",
        "utf8bom",
        "latin1",
        "truncated-utf8",
        "utf8-surrogate",
        "overlong-utf8",
    ],
)
def test_non_utf8_and_utf16_segments(
    engine: SessionWard, victim: SessionTokens, encode: Callable[[str, bytes], bytes]
) -> None:
    claims_text = compact(claims_of(victim.access_token.value)).decode()
    header_text = compact(header_for(engine)).decode()
    assert '"victim"' in claims_text and '"JWT"' in header_text
    bad_claims = encode(claims_text, b'"victim"')
    bad_header = encode(header_text, b'"JWT"')
    assert bad_claims != claims_text.encode() and bad_header != header_text.encode()
    rejected(engine, sign_raw(engine, header_for(engine), bad_claims))
    rejected(engine, sign_raw(engine, bad_header, claims_text.encode()))
    assert_victim_ok(engine, victim)


def test_lone_surrogate_escapes_do_not_crash(engine: SessionWard, victim: SessionTokens) -> None:
    claims = claims_of(victim.access_token.value)
    raw = _raw_claims(claims, r'"x":"\ud800"')
    # Genuinely signed JSON with a lone-surrogate escape is still JSON: accepted or rejected,
    # but only with the contract's exceptions.
    with contextlib.suppress(TryRefreshTokenError):
        engine.get_session(sign_raw(engine, header_for(engine), raw))
    header = compact(header_for(engine))[:-1] + rb',"\ud800":1}'
    rejected(engine, sign_raw(engine, header, claims))
    assert_victim_ok(engine, victim)


def test_deep_nesting(engine: SessionWard, victim: SessionTokens) -> None:
    claims = claims_of(victim.access_token.value)
    deep = b"[" * 100_000
    # Over the size limit: rejected before decoding.
    rejected(engine, sign_raw(engine, header_for(engine), deep))
    rejected(engine, f"{b64(deep)}.{b64(compact(claims))}.AAAA")
    # Within the size limit: deep enough to overflow a naive recursive parser.
    for depth in (1_000, 3_000, 5_000):
        assert len(sign_raw(engine, header_for(engine), b"[" * depth)) <= 8192
        rejected(engine, sign_raw(engine, header_for(engine), b"[" * depth))
        rejected(engine, sign_raw(engine, header_for(engine), b"[" * depth + b"]" * depth))
        nested = _raw_claims(claims, "", skip=("userData",))[:-1] + b',"userData":{"a":' + b"[" * depth + b"}"
        rejected(engine, sign_raw(engine, header_for(engine), nested))
        rejected(engine, sign_raw(engine, b'{"a":' * depth, claims))
    assert_victim_ok(engine, victim)


# -- A11: lenient base64, segments, serialisation form -----------------------------------------


def _noisy_variants(segment: str) -> list[str]:
    variants = [
        segment + "=",
        segment + "==",
        segment + "===",
        "=" + segment,
        " " + segment,
        segment + " ",
        segment[:3] + " " + segment[3:],
        segment[:3] + "\n" + segment[3:],
        segment[:3] + "\t" + segment[3:],
        segment[:3] + "\r\n" + segment[3:],
        segment[:3] + "?" + segment[3:],
        segment[:3] + "#" + segment[3:],
        segment[:3] + "+" + segment[3:],
        segment[:3] + "/" + segment[3:],
        segment[:3] + "%" + segment[3:],
        segment[:3] + "\u00e9" + segment[3:],
        segment[:3] + "\x00" + segment[3:],
        segment.translate(str.maketrans("-_", "+/")) + "+/",
        segment + "A",  # changes the length class
    ]
    padded = segment + "=" * (-len(segment) % 4)
    variants.append(padded + "=" * 4)
    variants.append(base64.b64encode(base64.urlsafe_b64decode(padded)).decode())
    if len(segment) % 4 in (2, 3):
        # Same bytes under a lenient decoder, but non-canonical trailing bits.
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        last = alphabet.index(segment[-1])
        variants.append(segment[:-1] + alphabet[last | 1])
    return [v for v in variants if v != segment]


@pytest.mark.parametrize("position", [0, 1, 2], ids=["header", "payload", "signature"])
def test_padding_and_non_alphabet_base64_in_each_segment(any_engine: SessionWard, position: int) -> None:
    victim = any_engine.create_new_session("victim")
    parts = segments(victim.access_token.value)
    variants = _noisy_variants(parts[position])
    assert len(variants) >= 20
    for variant in variants:
        forged = list(parts)
        forged[position] = variant
        with pytest.raises(TryRefreshTokenError):
            any_engine.get_session(".".join(forged))
            pytest.fail(f"accepted {variant!r} in segment {position}")
    assert_victim_ok(any_engine, victim)


def test_segment_count(engine: SessionWard, victim: SessionTokens) -> None:
    head, body, signature = segments(victim.access_token.value)
    for token in (
        head,
        f"{head}.{body}",
        f"{head}.{body}.{signature}.",
        f"{head}.{body}.{signature}.{signature}",
        f"{head}.{body}.{signature}.AAAA.AAAA",
        f"{head}.{head}.{body}.{signature}",
        f"{head}.{b64(b'{}')}.{b64(b'x' * 16)}.{body}.{signature}",  # JWE-shaped
        f".{head}.{body}.{signature}",
        f"{head}..{body}.{signature}",
        "..",
        "...",
        ".",
        "....",
    ):
        rejected(engine, token)
    assert_victim_ok(engine, victim)


def test_empty_and_whitespace_tokens(engine: SessionWard, victim: SessionTokens) -> None:
    token = victim.access_token.value
    for value in (
        "",
        " ",
        "\n",
        "\x00",
        "null",
        "undefined",
        "Bearer " + token,
        token + "\n",
        " " + token,
        token + ";",
        '"' + token + '"',
    ):
        rejected(engine, value)
    assert_victim_ok(engine, victim)


def test_json_serialization_form(engine: SessionWard, victim: SessionTokens) -> None:
    head, body, signature = segments(victim.access_token.value)
    general = json.dumps({"payload": body, "signatures": [{"protected": head, "signature": signature}]})
    flattened = json.dumps({"payload": body, "protected": head, "signature": signature})
    for token in (general, flattened, b64(general.encode()), compact([head, body, signature]).decode()):
        rejected(engine, token)
    assert_victim_ok(engine, victim)


# -- A12: oversize ---------------------------------------------------------------------------------


def test_token_over_8kb_rejected_even_if_validly_signed(engine: SessionWard, victim: SessionTokens) -> None:
    claims = claims_of(victim.access_token.value)
    largest_ok: str | None = None
    smallest_over: str | None = None
    for pad in range(5_500, 6_400):
        token = sign_raw(engine, header_for(engine), dict(claims, userData={"pad": "x" * pad}))
        if len(token) <= 8192:
            largest_ok = token
        elif smallest_over is None:
            smallest_over = token
    assert largest_ok is not None and smallest_over is not None
    assert len(largest_ok) >= 8188 and 8192 < len(smallest_over) <= 8196
    assert engine.get_session(largest_ok).handle == victim.handle
    rejected(engine, smallest_over)
    rejected(engine, sign_raw(engine, header_for(engine), dict(claims, userData={"pad": "x" * 20_000})))
    assert_victim_ok(engine, victim)


@pytest.mark.parametrize("size", [8_193, 300_000, 1_000_000, 10_000_000])
def test_huge_tokens_rejected_fast(engine: SessionWard, victim: SessionTokens, size: int) -> None:
    head, body, signature = segments(victim.access_token.value)
    candidates = [
        "a" * size,
        "." * size,
        b64(b"[" * (size * 3 // 4)) + f".{body}.{signature}",
        f"{head}." + "A" * size + f".{signature}",
        f"{head}.{body}." + "A" * size,
    ]
    for token in candidates:
        # Time the engine call alone (not the message checks of the helpers).
        started = time.perf_counter()
        with pytest.raises(TryRefreshTokenError):
            engine.get_session(token)
        assert time.perf_counter() - started < 0.25, f"{len(token)}-char token took too long to reject"
        started = time.perf_counter()
        with pytest.raises(UnauthorizedError) as caught:
            engine.refresh_session(token)
        assert time.perf_counter() - started < 0.25, f"{len(token)}-char refresh token took too long"
        assert not isinstance(caught.value, TokenTheftDetectedError)
    assert_victim_ok(engine, victim)


# -- A15: cross-token confusion ------------------------------------------------------------------


def test_refresh_and_other_tokens_in_the_access_position(engine: SessionWard, victim: SessionTokens) -> None:
    assert victim.id_refresh_token.value
    child = engine.refresh_session(victim.refresh_token.value).refresh_token.value
    for value in (
        victim.refresh_token.value,
        victim.id_refresh_token.value,
        victim.front_token,
        victim.handle,
        child,
    ):
        rejected(engine, value)
    assert_victim_ok(engine, victim)


def _tampered_variants(token: str) -> list[str]:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    variants = []
    for position in (0, 1, len(token) // 2, len(token) - 2, len(token) - 1):
        current = alphabet.index(token[position])
        for delta in (1, 32):
            replacement = alphabet[(current + delta) % 64]
            variants.append(token[:position] + replacement + token[position + 1 :])
    variants += [
        token[:-1],
        token[:-2],
        token[:-4],
        token + "A",
        token + "AA",
        token + "AAAA",
        token[4:],
        token + "=",
        token + "==",
        token.upper(),
        token[::-1],
        token + ".",
        " " + token,
    ]
    return [v for v in variants if v != token]


def test_wrong_tokens_in_the_refresh_position(engine: SessionWard, victim: SessionTokens) -> None:
    with make_engine() as other:
        foreign = other.create_new_session("victim").refresh_token.value
    refreshed = engine.refresh_session(victim.refresh_token.value)
    candidates = [
        victim.access_token.value,
        refreshed.access_token.value,
        victim.id_refresh_token.value,
        victim.anti_csrf_token or "",
        victim.front_token,
        victim.handle,
        foreign,
        "",
        "A",
        "AAAA",
        "A" * 1000,
        "A" * 1025,
        "\u00e9" * 40,
        "\ud800" * 40,
        b64(b"\x00" * 64),
        b64(b"\x01\x00" + b"\x00" * 60),
        *_tampered_variants(victim.refresh_token.value),
    ]
    for value in candidates:
        with pytest.raises(UnauthorizedError) as caught:
            engine.refresh_session(value)
        # A forged value is never mistaken for a replayed genuine token.
        assert not isinstance(caught.value, TokenTheftDetectedError)
    assert_victim_ok(engine, victim)
    # The genuine child still works after the barrage.
    assert engine.get_session(refreshed.access_token.value).handle == victim.handle


# -- A28: payload tampering --------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"sub": "attacker"},
        {"sub": "admin"},
        {"userData": {"role": "admin"}},
        {"exp": 4102444800},
        {"iat": 0},
        {"sessionHandle": "00000000-0000-4000-8000-000000000000"},
        {"refreshTokenHash1": "0" * 64},
        {"extra": 1},
    ],
    ids=lambda c: next(iter(c)),
)
def test_payload_tampering_keeps_signature(any_engine: SessionWard, change: dict[str, Any]) -> None:
    victim = any_engine.create_new_session("victim", {"role": "user"})
    head, _, signature = segments(victim.access_token.value)
    claims = dict(claims_of(victim.access_token.value), **change)
    rejected(any_engine, f"{head}.{b64(compact(claims))}.{signature}")
    # Semantically identical JSON in other bytes is not the signed message either.
    original = claims_of(victim.access_token.value)
    rejected(any_engine, f"{head}.{b64(json.dumps(original).encode())}.{signature}")
    # The header swapped for an equivalent one, signature kept.
    key = signing_key(any_engine)
    other_head = b64(compact({"kid": key.kid, "alg": key.alg, "typ": "JWT"}))
    rejected(any_engine, f"{other_head}.{segments(victim.access_token.value)[1]}.{signature}")
    assert_victim_ok(any_engine, victim)


def test_payload_of_another_session_with_victim_signature(engine: SessionWard, victim: SessionTokens) -> None:
    attacker = engine.create_new_session("attacker")
    head, body, _ = segments(attacker.access_token.value)
    rejected(engine, f"{head}.{body}.{segments(victim.access_token.value)[2]}")
    head, body, _ = segments(victim.access_token.value)
    rejected(engine, f"{head}.{body}.{segments(attacker.access_token.value)[2]}")
    assert_victim_ok(engine, victim)


# -- A29: ECDSA special signatures -----------------------------------------------------------------


def _rs(r: int, s: int) -> str:
    return b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


def test_ecdsa_special_signatures(es_engine: SessionWard) -> None:
    victim = es_engine.create_new_session("victim")
    head, body, signature = segments(victim.access_token.value)
    raw = b64url_decode(signature)
    assert len(raw) == 64
    r, s = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
    n = P256_ORDER
    forged = [
        _rs(0, 0),
        _rs(0, s),
        _rs(r, 0),
        _rs(n, n),
        _rs(n, s),
        _rs(r, n),
        _rs(1, 1),
        _rs(n - 1, n - 1),
        _rs(s, r),
        b64(b"\xff" * 64),
        b64(encode_dss_signature(r, s)),  # DER instead of raw r||s
        b64(encode_dss_signature(0, 0)),
        b64(raw + b"\x00"),
        b64(raw + b"\x00\x00"),
        b64(b"\x00" + raw),
        b64(raw[:63]),
        b64(raw[:32]),
        b64(b"\x00" + raw[:32] + b"\x00" + raw[32:]),  # 33-byte integers
        "",
    ]
    if r + n < 2**256:
        forged.append(_rs(r + n, s))
    if s + n < 2**256:
        forged.append(_rs(r, s + n))
    for value in forged:
        rejected(es_engine, f"{head}.{body}.{value}")
    # An ECDSA signature by a key on another curve, or for another message.
    other = ec.generate_private_key(ec.SECP256R1())
    r2, s2 = decode_dss_signature(other.sign(f"{head}.{body}".encode(), ec.ECDSA(hashes.SHA256())))
    rejected(es_engine, f"{head}.{body}.{_rs(r2, s2)}")
    assert_victim_ok(es_engine, victim)


def test_ecdsa_high_s_is_valid_ecdsa_and_only_verifies(es_engine: SessionWard) -> None:
    # (r, n - s) is a valid signature of the same message (ECDSA malleability). Accepting it
    # is correct; it must simply verify as the same session, never as anything else.
    victim = es_engine.create_new_session("victim", {"role": "user"})
    head, body, signature = segments(victim.access_token.value)
    raw = b64url_decode(signature)
    r, s = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
    mirrored = f"{head}.{body}.{_rs(r, P256_ORDER - s)}"
    verified = es_engine.get_session(mirrored)
    assert verified.handle == victim.handle and verified.jwt_payload == {"role": "user"}
    assert_victim_ok(es_engine, victim)


# -- A32: anti-CSRF ------------------------------------------------------------------------------


def test_anti_csrf_missing_wrong_or_from_another_session() -> None:
    with make_engine(enable_anti_csrf=True) as engine:
        victim = engine.create_new_session("victim")
        other = engine.create_new_session("attacker")
        token = victim.access_token.value
        assert victim.anti_csrf_token and other.anti_csrf_token
        assert victim.anti_csrf_token != other.anti_csrf_token
        right = victim.anti_csrf_token
        assert engine.get_session(token, right, True).handle == victim.handle  # now cached
        for presented in (
            None,
            "",
            other.anti_csrf_token,
            right[:-1],
            right + "x",
            right.upper(),
            " " + right,
            right.encode(),
            1,
            ["x"],
            "\u00e9" * 32,
            "\ud800" * 32,
        ):
            with pytest.raises(TryRefreshTokenError):
                engine.get_session(token, presented, True)  # type: ignore[arg-type]
                pytest.fail(f"accepted anti-CSRF {presented!r}")
        # Fresh (uncached) tokens get the same checks.
        fresh = engine.create_new_session("victim2")
        rejected(engine, fresh.access_token.value, anti_csrf_token=None, do_anti_csrf_check=True)
        rejected(
            engine, fresh.access_token.value, anti_csrf_token=other.anti_csrf_token, do_anti_csrf_check=True
        )
        # No check requested: no header needed.
        assert engine.get_session(token).handle == victim.handle
        # A genuinely signed token without the claim cannot pass a requested check.
        claims = claims_of(token)
        del claims["antiCsrfToken"]
        bare = sign_raw(engine, header_for(engine), claims)
        rejected(engine, bare, anti_csrf_token=right, do_anti_csrf_check=True)
        rejected(engine, bare, anti_csrf_token="", do_anti_csrf_check=True)
        # The refreshed session carries a new anti-CSRF token; the old one fails on the new token.
        refreshed = engine.refresh_session(victim.refresh_token.value)
        assert refreshed.anti_csrf_token and refreshed.anti_csrf_token != right
        rejected(engine, refreshed.access_token.value, anti_csrf_token=right, do_anti_csrf_check=True)
        assert engine.get_session(refreshed.access_token.value, refreshed.anti_csrf_token, True).handle
        assert_victim_ok(engine, victim)


# -- A14: expiry and clock skew -----------------------------------------------------------------


def test_expired_token_then_refresh_still_works() -> None:
    fake_now = [1_700_000_000.0]
    with SessionWard(Config(store=MEMORY), clock=lambda: fake_now[0]) as engine:
        victim = engine.create_new_session("victim")
        exp = claims_of(victim.access_token.value)["exp"]
        assert engine.get_session(victim.access_token.value).handle == victim.handle  # cached
        fake_now[0] = exp - 0.001
        assert engine.get_session(victim.access_token.value).handle == victim.handle
        fake_now[0] = exp
        rejected(engine, victim.access_token.value)
        fake_now[0] = exp + 86_400
        rejected(engine, victim.access_token.value)
        refreshed = engine.refresh_session(victim.refresh_token.value)
        assert engine.get_session(refreshed.access_token.value).handle == victim.handle
        # Expired yet otherwise hostile: still the same verdict.
        claims = claims_of(victim.access_token.value)
        rejected(engine, sign_raw(engine, header_for(engine), dict(claims, exp=int(fake_now[0]) - 1)))


@pytest.mark.parametrize("leeway", [0, 1, 30, 60])
def test_clock_skew_leeway_boundaries(leeway: int) -> None:
    fake_now = [1_700_000_000.0]
    config = Config(store=MEMORY, clock_skew_leeway=leeway)
    with SessionWard(config, clock=lambda: fake_now[0]) as engine:
        victim = engine.create_new_session("victim")
        claims = claims_of(victim.access_token.value)
        now = int(fake_now[0])
        late = [
            sign_raw(engine, header_for(engine), dict(claims, exp=now - leeway + delta, iat=now - 7200))
            for delta in (1, 0, -1)
        ]
        assert engine.get_session(late[0]).handle == victim.handle  # exp = now - L + 1
        rejected(engine, late[1])  # exp = now - L
        rejected(engine, late[2])  # exp = now - L - 1
        early = [
            sign_raw(engine, header_for(engine), dict(claims, iat=now + leeway + delta)) for delta in (0, 1)
        ]
        assert engine.get_session(early[0]).handle == victim.handle  # iat = now + L
        rejected(engine, early[1])  # iat = now + L + 1
        # A cached token stops verifying exactly at exp + L.
        exp = claims["exp"]
        assert engine.get_session(victim.access_token.value).handle == victim.handle
        fake_now[0] = exp + leeway - 0.5
        assert engine.get_session(victim.access_token.value).handle == victim.handle
        fake_now[0] = exp + leeway
        rejected(engine, victim.access_token.value)
        assert engine.refresh_session(victim.refresh_token.value).handle == victim.handle


# -- non-string inputs ---------------------------------------------------------------------------


NON_STRINGS: list[Any] = [
    None,
    b"",
    b"a.b.c",
    0,
    1,
    1.5,
    True,
    [],
    ["a.b.c"],
    {},
    {"token": "x"},
    (),
    object(),
    bytearray(b"a.b.c"),
]


@pytest.mark.parametrize("value", NON_STRINGS, ids=lambda v: type(v).__name__)
def test_non_str_inputs_to_get_session(engine: SessionWard, victim: SessionTokens, value: Any) -> None:
    rejected(engine, value)
    rejected(engine, value, anti_csrf_token=value, do_anti_csrf_check=True)


def test_genuine_token_as_bytes_is_rejected(engine: SessionWard, victim: SessionTokens) -> None:
    rejected(engine, victim.access_token.value.encode())
    refresh_rejected(engine, victim.refresh_token.value.encode())
    assert_victim_ok(engine, victim)


@pytest.mark.parametrize("value", NON_STRINGS, ids=lambda v: type(v).__name__)
def test_non_str_inputs_to_refresh_session(engine: SessionWard, victim: SessionTokens, value: Any) -> None:
    refresh_rejected(engine, value)
    with pytest.raises(UnauthorizedError):
        engine.refresh_session(value, anti_csrf_token=value)
    assert_victim_ok(engine, victim)
