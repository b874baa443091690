"""Session creation and refresh on a SQLite file against "one signature + one store write".

Run: ``.venv/bin/python bench/engine.py [--rounds N] [--algs RS256,HS256]``.

Cases, per algorithm, on a fresh SQLite file in a temporary directory (WAL, synchronous=NORMAL,
which is what ``SQLiteStore`` sets):

- ``floor``: mint an access token of the same size with the same key on raw ``cryptography``
  (compact ``json.dumps`` of the claims, base64url, sign, base64url) plus one autocommit
  ``INSERT`` of a session row (fresh uuid4 handle) into a table with the package's own
  schema, on a separate SQLite file in WAL/NORMAL;
- ``create_new_session``;
- ``refresh_session``: our refresh writes nothing (one ``SELECT``, AES-SIV, one signature);
  the rotation is committed by the first use of the child access token;
- ``promotion``: that first use, ``get_session`` of a just-refreshed access token (verify,
  one compare-and-set ``UPDATE … RETURNING`` that answers with the row, and a replacement
  access token is signed);
- ``refresh + promotion``: the whole rotation, the honest counterpart of a write-on-refresh
  design.

Every ratio is against the floor of the same algorithm in the same run. The pieces of
``create_new_session`` and ``refresh_session`` are then timed one by one for HS256/RS256.
"""

from __future__ import annotations

import argparse
import base64
import hmac
import json
import sqlite3
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _harness import machine_info, median, run_interleaved, spread, table
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from sessionward import Config, SessionWard
from sessionward.engine.core import new_handle
from sessionward.stores.base import Promotion, SessionRow
from sessionward.stores.schema import migrations_for
from sessionward.tokens.encoding import dumps_compact, sha256_hex
from sessionward.tokens.front import front_token
from sessionward.tokens.keys import SigningKey
from sessionward.tokens.refresh import new_id_refresh_token

ALGS = ("RS256", "HS256", "ES256", "EdDSA")
TARGET = 1.3
CREATE_TARGET = 1.25
POOL = 8_000
JWT_PAYLOAD = {
    "role": "admin",
    "tenant": "acme-corporation-eu-west",
    "plan": "enterprise",
    "locale": "en-GB",
    "scopes": ["read:profile", "write:profile", "read:billing", "admin:users"],
}
PKCS1 = padding.PKCS1v15()
SHA256 = hashes.SHA256()
ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())
INSERT = (
    "INSERT INTO session_info (session_handle, user_id, refresh_token_hash_2, "
    "prev_refresh_token_hash_2, rotated_at, session_data, jwt_user_payload, created_at_time, "
    "expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def raw_signer(alg: str, key: SigningKey) -> Callable[[bytes], bytes]:
    private: Any = key.private_key
    if alg == "HS256":
        return lambda message: hmac.digest(private, message, "sha256")
    if alg == "RS256":
        return lambda message: private.sign(message, PKCS1, SHA256)
    if alg == "ES256":

        def sign_es256(message: bytes) -> bytes:
            r, s = decode_dss_signature(private.sign(message, ECDSA_SHA256))
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")

        return sign_es256
    return lambda message: private.sign(message)


def open_floor_db(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    for migration in migrations_for("sqlite"):
        for statement in migration.statements:
            connection.execute(statement)
    return connection


@dataclass
class AlgSetup:
    alg: str
    engine: SessionWard
    floor_db: sqlite3.Connection
    floor_token: Callable[[str, int], str]
    sign: Callable[[bytes], bytes]
    refresh_tokens: list[str]
    created: list[int] = field(default_factory=lambda: [0])
    position: list[int] = field(default_factory=lambda: [0])


def setup_alg(alg: str, directory: Path) -> AlgSetup:
    url = f"sqlite:///{directory / (alg + '-engine.db')}"
    engine = SessionWard(Config(store=url, access_token_algorithm=alg))
    sample = engine.create_new_session("user-0000000", JWT_PAYLOAD)
    header = sample.access_token.value.split(".", 1)[0]
    kid = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]
    stored = engine.store.load_keys(f"access_token_signing_key/{alg}/")
    key = next(k for k in (SigningKey.from_stored(s.value) for s in stored) if k.kid == kid)
    sign = raw_signer(alg, key)
    refresh_hash1 = sha256_hex(sample.refresh_token.value)

    def floor_token(handle: str, now: int) -> str:
        claims = {
            "sub": "user-0000000",
            "sessionHandle": handle,
            "refreshTokenHash1": refresh_hash1,
            "userData": JWT_PAYLOAD,
            "iat": now,
            "exp": now + 3600,
            "auth_time": now,
        }
        signing_input = header + "." + b64url(json.dumps(claims, separators=(",", ":")).encode())
        return signing_input + "." + b64url(sign(signing_input.encode("ascii")))

    assert len(floor_token(str(uuid.uuid4()), int(time.time()))) == len(sample.access_token.value)
    print(f"  {alg}: creating {POOL} sessions for the refresh pool ...", file=sys.stderr, flush=True)
    refresh_tokens = [
        engine.create_new_session(f"user-{i:07d}", JWT_PAYLOAD).refresh_token.value
        for i in range(1, POOL + 1)
    ]
    floor_db = open_floor_db(directory / f"{alg}-floor.db")
    return AlgSetup(alg, engine, floor_db, floor_token, sign, refresh_tokens)


def cases_for(s: AlgSetup) -> list[tuple[str, Callable[[int], float]]]:
    engine = s.engine
    db = s.floor_db
    payload_json = json.dumps(JWT_PAYLOAD)
    hash2 = "0" * 64
    rts = s.refresh_tokens

    def floor(n: int) -> float:
        execute = db.execute
        mint = s.floor_token
        start = time.perf_counter()
        for _ in range(n):
            handle = str(uuid.uuid4())
            now = time.time()
            now_ms = int(now * 1000)
            mint(handle, int(now))
            execute(INSERT, (handle, "user-0000000", hash2, None, None, "{}", payload_json, now_ms, now_ms))
        return time.perf_counter() - start

    def create(n: int) -> float:
        first = s.created[0]
        users = [f"new-{i:08d}" for i in range(first, first + n)]
        s.created[0] += n
        create_new_session = engine.create_new_session
        start = time.perf_counter()
        for user in users:
            create_new_session(user, JWT_PAYLOAD)
        return time.perf_counter() - start

    def take(n: int) -> list[int]:
        if n > len(rts):
            raise RuntimeError(f"batch of {n} exceeds the pool of {len(rts)} sessions; raise POOL")
        first = s.position[0]
        s.position[0] = (first + n) % len(rts)
        return [(first + i) % len(rts) for i in range(n)]

    def refresh(n: int) -> float:
        tokens = [rts[i] for i in take(n)]
        refresh_session = engine.refresh_session
        start = time.perf_counter()
        for token in tokens:
            refresh_session(token)
        return time.perf_counter() - start

    def promotion(n: int) -> float:
        indices = take(n)
        issued = [engine.refresh_session(rts[i]) for i in indices]  # untimed preparation
        access = [t.access_token.value for t in issued]
        get_session = engine.get_session
        start = time.perf_counter()
        for token in access:
            get_session(token)
        elapsed = time.perf_counter() - start
        for i, t in zip(indices, issued, strict=True):
            rts[i] = t.refresh_token.value
        row = engine.store.get_session(issued[-1].handle)
        assert row is not None  # promoted: the child refresh token is now the current one
        assert row.refresh_token_hash_2 == sha256_hex(sha256_hex(issued[-1].refresh_token.value))
        return elapsed

    def refresh_and_promotion(n: int) -> float:
        indices = take(n)
        refresh_session = engine.refresh_session
        get_session = engine.get_session
        start = time.perf_counter()
        for i in indices:
            tokens = refresh_session(rts[i])
            get_session(tokens.access_token.value)
            rts[i] = tokens.refresh_token.value
        return time.perf_counter() - start

    def sign_only(n: int) -> float:
        mint = s.floor_token
        handle = str(uuid.uuid4())
        now = int(time.time())
        start = time.perf_counter()
        for _ in range(n):
            mint(handle, now)
        return time.perf_counter() - start

    def insert_only(n: int) -> float:
        execute = db.execute
        start = time.perf_counter()
        for _ in range(n):
            handle = str(uuid.uuid4())
            now_ms = int(time.time() * 1000)
            execute(INSERT, (handle, "user-0000000", hash2, None, None, "{}", payload_json, now_ms, now_ms))
        return time.perf_counter() - start

    named = [
        ("floor", floor),
        ("create", create),
        ("refresh", refresh),
        ("promotion", promotion),
        ("refresh_promotion", refresh_and_promotion),
        ("sign_only", sign_only),
        ("insert_only", insert_only),
    ]
    return [(f"{s.alg}/{name}", fn) for name, fn in named]


LABELS = {
    "floor": "floor: one signature + one INSERT",
    "create": "create_new_session",
    "refresh": "refresh_session (no write)",
    "promotion": "promotion (first get_session of the child)",
    "refresh_promotion": "refresh + promotion (full rotation)",
    "sign_only": "floor part: mint + sign only",
    "insert_only": "floor part: uuid4 + INSERT only",
}


def piece_cases(s: AlgSetup) -> list[tuple[str, str, Callable[[int], float]]]:
    """create_new_session and refresh_session cut into pieces (internal APIs, timing only)."""
    engine = s.engine
    core = engine._core
    store = engine.store
    codec = core.refresh_codec
    key = core.keys.state.signing_key if core.keys.state is not None else None
    assert key is not None
    rt = s.refresh_tokens[0]
    content = codec.decrypt(rt)
    row = store.get_session(content.session_handle)
    assert row is not None
    now = time.time()
    counter = [0]
    connection = store._connection
    assert connection is not None
    payload_json = json.dumps(JWT_PAYLOAD)

    def raw_insert(handle: str) -> None:
        connection.execute(INSERT, (handle, "piece-user", "0" * 64, None, None, "{}", payload_json, 0, 0))

    def new_row() -> SessionRow:
        counter[0] += 1
        return SessionRow(str(uuid.uuid4()), "piece-user", "0" * 64, None, None, {}, JWT_PAYLOAD, 0, 0)

    def create_row() -> SessionRow:
        # As create builds it: the JSON texts at hand, activity and authentication times set.
        return SessionRow(
            str(uuid.uuid4()),
            "piece-user",
            "0" * 64,
            None,
            None,
            {},
            JWT_PAYLOAD,
            0,
            0,
            "{}",
            payload_json,
            0,
            0,
        )

    def b(fn: Callable[[], object]) -> Callable[[int], float]:
        def batch(n: int) -> float:
            start = time.perf_counter()
            for _ in range(n):
                fn()
            return time.perf_counter() - start

        return batch

    pieces: list[tuple[str, str, Callable[[], object]]] = [
        ("uuid", "`str(uuid.uuid4())` (reference)", lambda: str(uuid.uuid4())),
        ("handle", "`new_handle()` (the same text and bytes from 16 random bytes)", new_handle),
        (
            "new_root",
            "refresh token: `RefreshTokenCodec.new_root` (AES-SIV)",
            lambda: codec.new_root(content.session_handle, "user-0000001"),
        ),
        ("hash2", "two `sha256_hex` (H(H(refresh token)))", lambda: sha256_hex(sha256_hex(rt))),
        (
            "check_json",
            "`check_json_object` of the JWT payload",
            lambda: core_check_json("jwt_payload", JWT_PAYLOAD),
        ),
        (
            "tokens",
            "`TokenMinter.session_tokens` (access token incl. signature, front token, idRefresh)",
            lambda: core.minter.session_tokens(key, row, rt, None, now),
        ),
        (
            "access",
            "  of which `TokenMinter.access_token` (claims, JSON, base64url, signature)",
            lambda: core.minter.access_token(
                key, row.user_id, row.session_handle, "0" * 64, None, JWT_PAYLOAD, now
            ),
        ),
        ("sign", "    of which the bare signature of the signing input", lambda: s.sign(b"x" * 560)),
        ("front", "  of which `front_token`", lambda: front_token(row.user_id, 0, JWT_PAYLOAD)),
        ("idrt", "  of which `new_id_refresh_token`", new_id_refresh_token),
        (
            "insert",
            "`SQLiteStore.insert_session` (+ uuid4 for the row)",
            lambda: store.insert_session(new_row()),
        ),
        (
            "insert_create",
            "  the same with the row as create builds it (JSON texts, times set)",
            lambda: store.insert_session(create_row()),
        ),
        (
            "dumps",
            "`dumps_compact` of the JWT payload (once per create)",
            lambda: dumps_compact(JWT_PAYLOAD),
        ),
        (
            "rawinsert",
            "bare `INSERT` autocommit on the engine's own connection (+ uuid4)",
            lambda: raw_insert(str(uuid.uuid4())),
        ),
        ("decrypt", "refresh: `RefreshTokenCodec.decrypt` (AES-SIV)", lambda: codec.decrypt(rt)),
        (
            "select",
            "refresh: `SQLiteStore.get_session` (SELECT + 2 json.loads)",
            lambda: store.get_session(content.session_handle),
        ),
        ("child", "refresh: `child_of` (AES-SIV)", lambda: codec.child_of(rt, content)),
        (
            "promote_returning",
            "promotion: `SQLiteStore.promote_returning`, refused (UPDATE … RETURNING + SELECT)",
            lambda: store.promote_returning(
                Promotion(content.session_handle, row.user_id, "no-match", "x", 0, 0)
            ),
        ),
    ]
    return [(f"{s.alg}/piece/{k}", label, b(fn)) for k, label, fn in pieces]


def core_check_json(name: str, value: dict[str, Any]) -> object:
    from sessionward.engine.validation import check_json_object

    return check_json_object(name, value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--algs", default=",".join(ALGS))
    parser.add_argument("--batch", type=float, default=0.1, help="seconds per case per round")
    args = parser.parse_args()
    algs = [a for a in args.algs.split(",") if a]

    print("# sessionward create / refresh benchmark (SQLite file)\n")
    for line in machine_info():
        print(f"- {line}")
    print(
        f"- method: {args.rounds} interleaved rounds, each case a ~{args.batch:g} s batch per round; "
        "median µs/op (min-max over rounds); ratios against the floor of the same run"
    )
    with tempfile.TemporaryDirectory(prefix="sessionward-bench-") as tmp:
        print(f"- databases in {tmp} (WAL, synchronous=NORMAL)\n")
        setups = [setup_alg(alg, Path(tmp)) for alg in algs]
        try:
            cases = [c for s in setups for c in cases_for(s)]
            print("running cases ...", file=sys.stderr, flush=True)
            results = run_interleaved(cases, args.rounds, args.batch)
            report(setups, results)
            piece_setups = [s for s in setups if s.alg in ("HS256", "RS256")]
            if piece_setups:
                pieces = [p for s in piece_setups for p in piece_cases(s)]
                print("running pieces ...", file=sys.stderr, flush=True)
                piece_results = run_interleaved([(k, fn) for k, _, fn in pieces], args.rounds, args.batch)
                report_pieces(piece_setups, pieces, piece_results)
        finally:
            for s in setups:
                s.engine.close()
                s.floor_db.close()


def report(setups: list[AlgSetup], results: dict[str, list[float]]) -> None:
    print("## Create and refresh, µs/op (median; ratio to the floor of the same algorithm)\n")
    rows = []
    for s in setups:
        floor = median(results[f"{s.alg}/floor"])
        for name, label in LABELS.items():
            values = results[f"{s.alg}/{name}"]
            med = median(values)
            rows.append([s.alg, label, f"{med:.1f}", spread(values), f"{med / floor:.2f}x"])
    print(table(["alg", "case", "µs/op", "min-max", "/ floor"], rows))
    print(f"\n## Targets (create ≤ {CREATE_TARGET}x, refresh ≤ {TARGET}x one signature + one store write)\n")
    rows = []
    for s in setups:
        floor = median(results[f"{s.alg}/floor"])
        ratio = {name: median(results[f"{s.alg}/{name}"]) / floor for name in LABELS}

        def verdict(value: float, target: float = TARGET) -> str:
            return f"{value:.2f}x " + ("met" if value <= target else "MISSED")

        rows.append(
            [
                s.alg + ("" if s.alg in ("RS256", "HS256") else " (extra)"),
                verdict(ratio["create"], CREATE_TARGET),
                verdict(ratio["refresh"]),
                f"{ratio['promotion']:.2f}x",
                verdict(ratio["refresh_promotion"]),
            ]
        )
    print(
        table(
            ["alg", "create", "refresh alone (writes nothing)", "promotion alone", "refresh + promotion"],
            rows,
        )
    )
    print()


def report_pieces(
    setups: list[AlgSetup],
    pieces: list[tuple[str, str, Callable[[int], float]]],
    results: dict[str, list[float]],
) -> None:
    print("## Where the time goes: pieces of create / refresh, µs/op (median)\n")
    labels: dict[str, str] = {}
    for key, label, _ in pieces:
        labels.setdefault(key.split("/", 2)[2], label)
    rows = [
        [label, *[f"{median(results[f'{s.alg}/piece/{key}']):.1f}" for s in setups]]
        for key, label in labels.items()
    ]
    print(table(["piece", *[f"{s.alg} µs" for s in setups]], rows))
    print()


if __name__ == "__main__":
    warnings.simplefilter("error")
    main()
