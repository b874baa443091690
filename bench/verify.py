"""Access-token verification: sessionward's ``get_session`` against the crypto floor.

Run: ``.venv/bin/python bench/verify.py [--rounds N] [--pool N] [--algs RS256,HS256]``.

For each algorithm one token is minted by ``SessionWard.create_new_session`` and every case
verifies that same token string:

- ``floor``: bare ``cryptography`` signature check (``hmac.digest`` + ``compare_digest`` for
  HS256), pinned-header compare, ``base64.urlsafe_b64decode`` of signature and payload,
  ``json.loads`` of the payload and an ``exp`` check against ``time.time()``;
- ``get_session (cache off)``: an engine with ``verified_token_cache_size=0``;
- ``get_session (cache hit)``: the default engine, the same token again and again;
- ``get_session miss, cache C``: an engine with cache size C verifying a pool of distinct
  tokens (distinct sessions) in a cycle longer than C, so every call misses and evicts;
  compared with ``floor (pool)``, the floor cycling the same pool;
- ``PyJWT jwt.decode``: the peer reference, with a pre-loaded key object;
- ``... feed off``: the same engines with ``change_feed=False`` (the others follow the
  SQLite store's change feed, live before the first round), for the feed's cost on the
  hot path: cache hit, cache off, and misses cycling the pool.

Then the pieces of the engine's path are timed one by one (the same way) for HS256 and
RS256, to show where the time over the floor goes. Blacklisting and anti-CSRF are off.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import dataclasses
import hmac
import itertools
import json
import sys
import tempfile
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from _harness import cycled, machine_info, median, run_interleaved, spread, table, timed_loop
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from sessionward import Config, SessionWard
from sessionward.engine.cache import VerifiedTokenCache
from sessionward.tokens.encoding import b64url_decode, loads_strict
from sessionward.tokens.keys import SigningKey

ALGS = ("RS256", "HS256", "ES256", "EdDSA")
TARGET_UNCACHED = 1.25
TARGET_HIT_US = 5.0
MISS_CACHE_SIZES = (1_000, 10_000)
# A JWT payload of five members, so the claims are about 400 B as in a real app.
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


def _b64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def make_floor(alg: str, key: SigningKey, header: str) -> Callable[[str], dict[str, Any]]:
    """The hand-rolled verifier on raw primitives (see the module docstring)."""
    urlsafe_b64decode = base64.urlsafe_b64decode
    loads = json.loads
    now = time.time
    pub: Any = key.public_key

    if alg == "HS256":
        secret = pub

        def check(message: bytes, signature: bytes) -> None:
            if not hmac.compare_digest(hmac.digest(secret, message, "sha256"), signature):
                raise ValueError("bad signature")

    elif alg == "RS256":

        def check(message: bytes, signature: bytes) -> None:
            pub.verify(signature, message, PKCS1, SHA256)

    elif alg == "ES256":

        def check(message: bytes, signature: bytes) -> None:
            r = int.from_bytes(signature[:32], "big")
            s = int.from_bytes(signature[32:], "big")
            pub.verify(encode_dss_signature(r, s), message, ECDSA_SHA256)

    else:

        def check(message: bytes, signature: bytes) -> None:
            pub.verify(signature, message)

    def floor(token: str) -> dict[str, Any]:
        signing_input, _, sig = token.rpartition(".")
        head, _, payload = signing_input.partition(".")
        if head != header:
            raise ValueError("unexpected header")
        check(signing_input.encode(), urlsafe_b64decode(sig + "=" * (-len(sig) % 4)))
        claims: dict[str, Any] = loads(urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        if claims["exp"] <= now():
            raise ValueError("expired")
        return claims

    return floor


@dataclass
class AlgSetup:
    alg: str
    token: str
    pool: list[str]
    key: SigningKey
    engines: dict[str, SessionWard]
    floor: Callable[[str], dict[str, Any]]


def setup_alg(alg: str, directory: Path, pool_size: int) -> AlgSetup:
    url = f"sqlite:///{directory / (alg + '.db')}"
    base = Config(store=url, access_token_algorithm=alg)
    engines = {}
    for suffix, feed in (("", True), ("_off", False)):
        engines["hit" + suffix] = SessionWard(dataclasses.replace(base, change_feed=feed))
        engines["uncached" + suffix] = SessionWard(
            dataclasses.replace(base, verified_token_cache_size=0, change_feed=feed)
        )
        for size in MISS_CACHE_SIZES:
            engines[f"miss{size}{suffix}"] = SessionWard(
                dataclasses.replace(base, verified_token_cache_size=size, change_feed=feed)
            )
    creator = engines["hit"]
    token = creator.create_new_session("user-000000", JWT_PAYLOAD).access_token.value
    print(f"  {alg}: minting a pool of {pool_size} tokens ...", file=sys.stderr, flush=True)
    pool = [
        creator.create_new_session(f"user-{i:06d}", JWT_PAYLOAD).access_token.value
        for i in range(1, pool_size + 1)
    ]
    # The signing key, loaded from the store as raw cryptography objects.
    header_segment = token.split(".", 1)[0]
    kid = json.loads(_b64(header_segment))["kid"]
    stored = creator.store.load_keys(f"access_token_signing_key/{alg}/")
    key = next(k for k in (SigningKey.from_stored(s.value) for s in stored) if k.kid == kid)
    floor = make_floor(alg, key, header_segment)
    # Cross-check: every verifier accepts the token and agrees on the user.
    assert floor(token)["sub"] == "user-000000"
    for engine in engines.values():
        assert engine.get_session(token).user_id == "user-000000"
    for name, engine in engines.items():
        state = engine.change_feed_state()
        deadline = time.monotonic() + 5
        while state.enabled and not state.live and time.monotonic() < deadline:
            time.sleep(0.01)
            state = engine.change_feed_state()
        if state.live != (not name.endswith("_off")):
            raise SystemExit(f"{alg}/{name}: change feed live={state.live}, not as the case needs")
    assert pyjwt_decoder(alg, key)(token)["sub"] == "user-000000"
    assert floor(pool[-1])["sub"] == f"user-{pool_size:06d}"
    return AlgSetup(alg, token, pool, key, engines, floor)


def pyjwt_decoder(alg: str, key: SigningKey) -> Callable[[str], dict[str, Any]]:
    decode = jwt.decode
    verification_key = key.public_key
    algorithms = [alg]

    def decoder(token: str) -> dict[str, Any]:
        return decode(token, verification_key, algorithms=algorithms)

    return decoder


def single(func: Callable[[str], object], token: str) -> Callable[[int], float]:
    def batch(n: int) -> float:
        return timed_loop(func, [token] * n)

    return batch


def pooled(func: Callable[[str], object], pool: list[str]) -> Callable[[int], float]:
    """Cycle through ``pool``, continuing where the previous batch stopped."""
    position = [0]

    def batch(n: int) -> float:
        items = cycled(pool, n, position[0])
        position[0] = (position[0] + n) % len(pool)
        return timed_loop(func, items)

    return batch


CASES = [
    ("floor", "floor"),
    ("uncached", "get_session (cache off)"),
    ("hit", "get_session (cache hit)"),
    ("pyjwt", "PyJWT jwt.decode"),
    ("floor_pool", "floor (pool)"),
    *[(f"miss{size}", f"get_session miss, cache {size:,}") for size in MISS_CACHE_SIZES],
    ("hit_off", "get_session (cache hit), feed off"),
    ("uncached_off", "get_session (cache off), feed off"),
    *[(f"miss{size}_off", f"get_session miss, cache {size:,}, feed off") for size in MISS_CACHE_SIZES],
]
# Feed on / feed off pairs for the change-feed table.
FEED_PAIRS = [
    ("hit", "cache hit"),
    ("uncached", "cache off"),
    *[(f"miss{size}", f"miss, cache {size:,}") for size in MISS_CACHE_SIZES],
]
TARGET_FEED = 1.05


def verify_cases(setup: AlgSetup) -> list[tuple[str, Callable[[int], float]]]:
    e = setup.engines
    funcs: dict[str, Callable[[int], float]] = {
        "floor": single(setup.floor, setup.token),
        "uncached": single(e["uncached"].get_session, setup.token),
        "hit": single(e["hit"].get_session, setup.token),
        "pyjwt": single(pyjwt_decoder(setup.alg, setup.key), setup.token),
        "floor_pool": pooled(setup.floor, setup.pool),
    }
    for suffix in ("", "_off"):
        for size in MISS_CACHE_SIZES:
            funcs[f"miss{size}{suffix}"] = pooled(e[f"miss{size}{suffix}"].get_session, setup.pool)
    funcs["hit_off"] = single(e["hit_off"].get_session, setup.token)
    funcs["uncached_off"] = single(e["uncached_off"].get_session, setup.token)
    return [(f"{setup.alg}/{name}", funcs[name]) for name, _ in CASES]


def piece_cases(setup: AlgSetup) -> list[tuple[str, str, Callable[[int], float]]]:
    """The engine's verification path cut into pieces, each timed on the same token."""
    token = setup.token
    engine = setup.engines["uncached"]
    core = engine._core  # internal: only to time the pieces
    codec = core.access_codec
    head, payload_seg, sig_seg = token.split(".")
    signing_input = token[: len(head) + len(payload_seg) + 1].encode("ascii")
    signature = b64url_decode(sig_seg)
    payload_bytes = b64url_decode(payload_seg)
    payload = loads_strict(payload_bytes)
    verify = codec._by_header[head.encode("ascii")].verify
    now = time.time()

    def b(fn: Callable[[], object]) -> Callable[[int], float]:
        def batch(n: int) -> float:
            rng = range(n)
            start = time.perf_counter()
            for _ in rng:
                fn()
            return time.perf_counter() - start

        return batch

    pieces: list[tuple[str, str, Callable[[], object]]] = [
        ("empty", "empty loop + call (harness overhead)", lambda: None),
        (
            "sigcheck",
            "signature check (library closure `key.verify`)",
            lambda: verify(signing_input, signature),
        ),
        ("b64sig_lib", "strict `b64url_decode` of the signature", lambda: b64url_decode(sig_seg)),
        ("b64sig_std", "stdlib `urlsafe_b64decode` of the signature", lambda: _b64(sig_seg)),
        ("b64pay_lib", "strict `b64url_decode` of the payload", lambda: b64url_decode(payload_seg)),
        ("b64pay_std", "stdlib `urlsafe_b64decode` of the payload", lambda: _b64(payload_seg)),
        (
            "a2b",
            "`binascii.a2b_base64` of the payload (padded, no checks)",
            lambda: binascii.a2b_base64(payload_seg + "=" * (-len(payload_seg) % 4)),
        ),
        ("json_lib", "`loads_strict` (object_pairs_hook, no dupes)", lambda: loads_strict(payload_bytes)),
        ("json_std", "stdlib `json.loads`", lambda: json.loads(payload_bytes)),
        (
            "claims",
            "`_claims` (claim type checks + AccessTokenClaims)",
            lambda: codec._claims(payload, "k", now),
        ),
        ("decode", "`AccessTokenCodec.decode` (all of the above)", lambda: codec.decode(token, now)),
        (
            "core",
            "`SessionCore.verify` (+ clock, cache probe, VerifiedSession)",
            lambda: core.verify(token, None, False),
        ),
        (
            "get_session",
            "`SessionWard.get_session` (+ ready check, type check)",
            lambda: engine.get_session(token),
        ),
        ("floor", "floor (for reference)", lambda: setup.floor(token)),
    ]
    # The verified-token cache on the miss path: one put (with eviction) per verification.
    keys = [f"{i:06d}{token}" for i in range(12_000)]
    for capacity in MISS_CACHE_SIZES:
        cache = VerifiedTokenCache(capacity)
        next_key = itertools.cycle(keys).__next__
        for _ in range(capacity):
            cache.put(next_key(), None, 0.0, None)  # type: ignore[arg-type]
        pieces.append(
            (
                f"put{capacity}",
                f"cache miss bookkeeping: `VerifiedTokenCache.put`, capacity {capacity:,}, full",
                lambda c=cache, k=next_key: c.put(k(), None, 0.0, None),  # type: ignore[misc]
            )
        )
        ordered: OrderedDict[str, None] = OrderedDict((next_key(), None) for _ in range(capacity))

        def ordered_put(o: OrderedDict[str, None] = ordered, k: Callable[[], str] = next_key) -> None:
            o.popitem(last=False)
            o[k()] = None

        pieces.append(
            (
                f"odict{capacity}",
                f"alternative: `OrderedDict` put + `popitem(last=False)`, capacity {capacity:,}",
                ordered_put,
            )
        )
    return [(f"{setup.alg}/piece/{key}", label, b(fn)) for key, label, fn in pieces]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--pool", type=int, default=12_000, help="distinct tokens for the miss path")
    parser.add_argument("--algs", default=",".join(ALGS))
    parser.add_argument("--batch", type=float, default=0.1, help="seconds per case per round")
    args = parser.parse_args()
    algs = [a for a in args.algs.split(",") if a]
    if args.pool <= max(MISS_CACHE_SIZES):
        parser.error(f"--pool must exceed the largest cache size ({max(MISS_CACHE_SIZES)})")

    print("# sessionward verify benchmark\n")
    for line in machine_info():
        print(f"- {line}")
    print(
        f"- method: {args.rounds} interleaved rounds, each case a ~{args.batch:g} s batch per round; "
        "median µs/op (min-max over rounds); ratios against the floor of the same run\n"
    )

    with tempfile.TemporaryDirectory(prefix="sessionward-bench-") as tmp:
        setups = [setup_alg(alg, Path(tmp), args.pool) for alg in algs]
        try:
            for s in setups:
                claims_len = len(_b64(s.token.split(".")[1]))
                print(f"- {s.alg} token: {len(s.token)} chars, claims JSON {claims_len} B")
            print()
            cases = [case for s in setups for case in verify_cases(s)]
            print("running verify cases ...", file=sys.stderr, flush=True)
            results = run_interleaved(cases, args.rounds, args.batch)
            report_verify(setups, results)

            piece_setups = [s for s in setups if s.alg in ("HS256", "RS256")]
            if piece_setups:
                pieces = [p for s in piece_setups for p in piece_cases(s)]
                print("running pieces ...", file=sys.stderr, flush=True)
                piece_results = run_interleaved([(k, fn) for k, _, fn in pieces], args.rounds, args.batch)
                report_pieces(piece_setups, pieces, piece_results)
        finally:
            for s in setups:
                for engine in s.engines.values():
                    engine.close()


def report_verify(setups: list[AlgSetup], results: dict[str, list[float]]) -> None:
    print("## Verification, µs/op (median; ratio to the floor of the same token)\n")
    rows = []
    for s in setups:
        floor = median(results[f"{s.alg}/floor"])
        floor_pool = median(results[f"{s.alg}/floor_pool"])
        for name, label in CASES:
            values = results[f"{s.alg}/{name}"]
            med = median(values)
            reference = floor_pool if name.startswith("miss") or name == "floor_pool" else floor
            ratio = f"{med / reference:.2f}x"
            ref_name = "floor (pool)" if reference is floor_pool else "floor"
            rows.append([s.alg, label, f"{med:.2f}", spread(values), f"{ratio} {ref_name}"])
    print(table(["alg", "case", "µs/op", "min-max", "ratio"], rows))
    print("\n## Targets\n")
    rows = []
    for s in setups:
        floor = median(results[f"{s.alg}/floor"])
        floor_pool = median(results[f"{s.alg}/floor_pool"])
        uncached = median(results[f"{s.alg}/uncached"]) / floor
        hit = median(results[f"{s.alg}/hit"])
        primary = s.alg in ("RS256", "HS256")
        tag = "" if primary else " (extra)"
        rows.append(
            [
                s.alg + tag,
                f"{uncached:.2f}x (≤ {TARGET_UNCACHED}x)",
                "met" if uncached <= TARGET_UNCACHED else "MISSED",
                *[f"{median(results[f'{s.alg}/miss{size}']) / floor_pool:.2f}x" for size in MISS_CACHE_SIZES],
                f"{hit:.2f} µs (≤ {TARGET_HIT_US:g})",
                "met" if hit <= TARGET_HIT_US else "MISSED",
                f"{median(results[f'{s.alg}/pyjwt']) / floor:.2f}x",
            ]
        )
    print(
        table(
            [
                "alg",
                "get_session cache off / floor",
                "",
                *[f"miss c={size:,} / floor(pool)" for size in MISS_CACHE_SIZES],
                "cache hit",
                "",
                "PyJWT / floor",
            ],
            rows,
        )
    )
    print()
    report_feed(setups, results)


def report_feed(setups: list[AlgSetup], results: dict[str, list[float]]) -> None:
    """Feed on against feed off: the median of the per-round ratios (both ran in each round)."""
    print("## The change feed on the hot path: feed on / feed off (median of per-round ratios)\n")
    rows = []
    for s in setups:
        for name, label in FEED_PAIRS:
            on, off = results[f"{s.alg}/{name}"], results[f"{s.alg}/{name}_off"]
            ratios = [a / b for a, b in zip(on, off, strict=True)]
            ratio = median(ratios)
            rows.append(
                [
                    s.alg,
                    label,
                    f"{median(on):.2f}",
                    f"{median(off):.2f}",
                    f"{ratio:.3f}x",
                    f"{min(ratios):.2f}-{max(ratios):.2f}",
                    "met" if ratio <= TARGET_FEED else "MISSED",
                ]
            )
    print(table(["alg", "case", "on µs", "off µs", f"on/off (≤ {TARGET_FEED}x)", "min-max", ""], rows))
    print()


def report_pieces(
    setups: list[AlgSetup],
    pieces: list[tuple[str, str, Callable[[int], float]]],
    results: dict[str, list[float]],
) -> None:
    print("## Where the time goes: the engine's path in pieces, µs/op (median)\n")
    labels = {}
    for key, label, _ in pieces:
        labels.setdefault(key.split("/", 2)[2], label)
    rows = []
    for key, label in labels.items():
        row = [label]
        for s in setups:
            row.append(f"{median(results[f'{s.alg}/piece/{key}']):.2f}")
        rows.append(row)
    print(table(["piece", *[f"{s.alg} µs" for s in setups]], rows))
    print()


if __name__ == "__main__":
    warnings.simplefilter("error")
    main()
