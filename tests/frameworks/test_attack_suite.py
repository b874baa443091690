"""The HTTP attack suite: one table of attack classes, each run against the real servers of
all three frameworks (uvicorn for FastAPI, gunicorn for Flask and Django).

For every class and every server it asserts: the expected status (identical on all
three); identical normalised ``Set-Cookie`` headers (values masked) and protocol headers;
no 5xx; no token, traceback or file path in the body; a bystander logged in on the same
server still verifies and refreshes; and, where the protocol says the victim's session
survives the attack, that it still refreshes. One server per framework serves the whole
module; every class logs in its own victim and bystander.

Validly signed tokens with hostile content are signed with the server's own key: the test
opens an engine on the store the server uses and signs with that engine's current key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from frameworks.clients import SERVERS, open_client
from frameworks.wire import SetCookie, WireClient, WireResponse
from sessionward import Config, SessionWard
from sessionward.tokens.keys import SigningKey

REFRESH = "/session/refresh"
COMPARED_HEADERS = (
    "front-token",
    "id-refresh-token",
    "anti-csrf",
    "access-control-expose-headers",
    "cache-control",
    "access-control-allow-headers",
    "access-control-allow-credentials",
    "access-control-allow-origin",
    "st-access-token",
    "st-refresh-token",
)
FORBIDDEN_IN_BODY = ("Traceback", 'File "', "sessionward/", "site-packages", ".py", "eyJ")
BUDGET = 4096  # the largest access-token Set-Cookie the engine may issue (bytes)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


class Signer:
    """Signs arbitrary header and payload bytes with the server's current signing key."""

    def __init__(self, config: Config) -> None:
        self.engine = SessionWard(config)
        self.engine.signing_keys()  # starts the engine: loads the keys the server uses
        state = self.engine._core.keys.state
        assert state is not None
        self.key: SigningKey = state.signing_key
        self.header = self.engine._core.access_codec.header_segment(self.key)

    def sign(self, header: str | bytes | dict[str, Any], payload: str | bytes | dict[str, Any]) -> str:
        head = header if isinstance(header, str) else b64(_raw(header))
        body = payload if isinstance(payload, str) else b64(_raw(payload))
        signing_input = f"{head}.{body}"
        return signing_input + "." + b64(self.key.sign(signing_input.encode()))

    def claims(self, token: str, **changes: Any) -> bytes:
        """The claims of ``token`` with ``changes`` applied (a value of ``...`` removes)."""
        claims: dict[str, Any] = json.loads(unb64(token.split(".")[1]))
        for name, value in changes.items():
            if value is ...:
                claims.pop(name, None)
            else:
                claims[name] = value
        return json.dumps(claims, separators=(",", ":")).encode()

    def public_pem(self) -> bytes:
        public = self.key.public_key
        assert not isinstance(public, bytes)
        pem = serialization.Encoding.PEM
        return public.public_bytes(pem, serialization.PublicFormat.SubjectPublicKeyInfo)


def _raw(value: bytes | dict[str, Any]) -> bytes:
    return value if isinstance(value, bytes) else json.dumps(value, separators=(",", ":")).encode()


@dataclass
class Ctx:
    """One class on one server: the victim (logged in), a bystander and the signer."""

    victim: WireClient
    bystander: WireClient
    signer: Signer

    @property
    def access(self) -> str:
        return self.victim.jar.value("sAccessToken") or ""

    @property
    def id_refresh(self) -> str:
        return self.victim.jar.value("sIdRefreshToken") or ""

    @property
    def refresh(self) -> str:
        return self.victim.jar.value("sRefreshToken") or ""

    def secrets(self) -> list[str]:
        values = [self.access, self.id_refresh, self.refresh, self.victim.anti_csrf or ""]
        values += [self.bystander.jar.value(name) or "" for name in ("sAccessToken", "sRefreshToken")]
        return [value for value in values if len(value) > 16]

    def protected(
        self, access: str, method: str = "GET", path: str = "/protected", **kw: Any
    ) -> WireResponse:
        """``path`` with ``access`` as the access cookie beside the victim's idRefresh cookie."""
        cookie = f"sAccessToken={access}; sIdRefreshToken={self.id_refresh}"
        return self.victim.request(method, path, cookie=cookie, update_jar=False, **kw)

    def signed(self, payload: str | bytes | dict[str, Any], header: Any = None) -> WireResponse:
        return self.protected(self.signer.sign(self.signer.header if header is None else header, payload))

    def refresh_with(self, cookie: str, **kw: Any) -> WireResponse:
        return self.victim.request("POST", REFRESH, cookie=cookie, update_jar=False, **kw)


@dataclass
class Attack:
    name: str
    run: Callable[[Ctx], WireResponse]
    status: int
    message: str | None = None
    # "none": no Set-Cookie at all; "cleared": the three cookies cleared; None: not checked
    # (still compared across frameworks).
    cookies: str | None = "none"
    victim_survives: bool = True
    after: Callable[[Ctx], None] | None = None
    marks: list[Any] = field(default_factory=list)


# -- attack helpers ----------------------------------------------------------------------


def _header(token: str, **changes: Any) -> dict[str, Any]:
    header: dict[str, Any] = json.loads(unb64(token.split(".")[0]))
    header.update(changes)
    return header


def _genuine(ctx: Ctx) -> tuple[str, str, str]:
    head, payload, signature = ctx.access.split(".")
    return head, payload, signature


def _alg_none(alg: str) -> Callable[[Ctx], WireResponse]:
    def run(ctx: Ctx) -> WireResponse:
        _, payload, _ = _genuine(ctx)
        return ctx.protected(b64(json.dumps({"alg": alg, "typ": "JWT"}).encode()) + "." + payload + ".")

    return run


def _hs256_with_public_key(ctx: Ctx) -> WireResponse:
    _, payload, _ = _genuine(ctx)
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": ctx.signer.key.kid}).encode())
    mac = hmac.new(ctx.signer.public_pem(), f"{head}.{payload}".encode(), hashlib.sha256).digest()
    return ctx.protected(f"{head}.{payload}.{b64(mac)}")


def _with_header(**members: Any) -> Callable[[Ctx], WireResponse]:
    """A token whose header carries ``members``, validly signed with the server's key."""

    def run(ctx: Ctx) -> WireResponse:
        _, payload, _ = _genuine(ctx)
        return ctx.signed(payload, header=_header(ctx.access, **members))

    return run


def _raw_header(raw: bytes) -> Callable[[Ctx], WireResponse]:
    def run(ctx: Ctx) -> WireResponse:
        _, payload, _ = _genuine(ctx)
        return ctx.signed(payload, header=raw)

    return run


def _claims(**changes: Any) -> Callable[[Ctx], WireResponse]:
    """A validly signed token: the victim's claims with ``changes``."""

    def run(ctx: Ctx) -> WireResponse:
        return ctx.signed(ctx.signer.claims(ctx.access, **changes))

    return run


def _raw_claim(name: str, literal: str) -> Callable[[Ctx], WireResponse]:
    """A validly signed token whose claim ``name`` is the raw JSON text ``literal``."""

    def run(ctx: Ctx) -> WireResponse:
        text = ctx.signer.claims(ctx.access, **{name: ...}).decode()
        return ctx.signed((text[:-1] + f',"{name}":{literal}}}').encode())

    return run


def _bad_signature(ctx: Ctx) -> WireResponse:
    head, payload, signature = _genuine(ctx)
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    return ctx.protected(f"{head}.{payload}.{flipped}")


def _tampered(ctx: Ctx) -> WireResponse:
    head, _, signature = _genuine(ctx)
    return ctx.protected(f"{head}.{b64(ctx.signer.claims(ctx.access, sub='mallory'))}.{signature}")


def _non_alphabet(ctx: Ctx) -> WireResponse:
    head, payload, signature = _genuine(ctx)
    return ctx.protected(f"{head}.{payload}.{signature[:-2]}+/")


def _deep_payload(ctx: Ctx) -> WireResponse:
    text = ctx.signer.claims(ctx.access, userData=...).decode()
    return ctx.signed((text[:-1] + ',"userData":' + "[" * 5000 + "]" * 5000 + "}").encode())


def _huge_exp_update(ctx: Ctx) -> WireResponse:
    token = ctx.signer.sign(ctx.signer.header, ctx.signer.claims(ctx.access, exp=10**20))
    return ctx.protected(token, "POST", "/update-payload", json_body={"v": 2})


def _cookie(value: str) -> Callable[[Ctx], WireResponse]:
    """``/protected`` with the raw Cookie header ``value`` (``{a}``/``{i}`` are the victim's)."""

    def run(ctx: Ctx) -> WireResponse:
        cookie = value.format(a=ctx.access, i=ctx.id_refresh)
        return ctx.victim.request("GET", "/protected", cookie=cookie, update_jar=False)

    return run


def _duplicate_refresh(ctx: Ctx) -> WireResponse:
    return ctx.refresh_with(f"sRefreshToken={ctx.refresh}; sRefreshToken={ctx.refresh}")


def _split_cookie_headers(ctx: Ctx) -> WireResponse:
    return ctx.victim.request(
        "GET",
        "/protected",
        headers=[("cookie", "sAccessToken=attacker")],
        cookie=f"sAccessToken={ctx.access}; sIdRefreshToken={ctx.id_refresh}",
        update_jar=False,
    )


def _duplicate_header(name: str, method: str) -> Callable[[Ctx], WireResponse]:
    def run(ctx: Ctx) -> WireResponse:
        csrf = ctx.victim.anti_csrf or ""
        headers = [(name, csrf), (name, csrf)] if name == "anti-csrf" else [(name, "x"), (name, "y")]
        return ctx.victim.request(method, "/protected", headers=headers, update_jar=False)

    return run


def _foreign_anti_csrf(ctx: Ctx) -> WireResponse:
    return ctx.victim.request(
        "POST", "/protected", headers={"anti-csrf": ctx.bystander.anti_csrf or ""}, update_jar=False
    )


def _pad_for(ctx: Ctx, cookie_bytes: int) -> int:
    """The length of a ``{"pad": "x" * n}`` payload giving the victim's largest access
    cookie (the one issued with the parent claim, right after a refresh) about
    ``cookie_bytes`` bytes."""
    response = ctx.victim.request("POST", REFRESH)
    assert response.status == 200, response.body
    cookie = next(v for v in response.header_values("set-cookie") if v.startswith("sAccessToken="))
    base = len(cookie.encode())  # each payload byte adds 4/3 cookie bytes
    # The first use commits the rotation (and mints a token without the parent claim), so
    # the update request itself sets no cookie but the one it is about.
    assert ctx.victim.request("GET", "/protected").status == 200
    return (cookie_bytes - base) * 3 // 4 - len('"pad":""')


def _update_to(cookie_bytes: int) -> Callable[[Ctx], WireResponse]:
    """A payload update whose largest access cookie would be about ``cookie_bytes``."""

    def run(ctx: Ctx) -> WireResponse:
        pad = _pad_for(ctx, cookie_bytes)
        return ctx.victim.request("POST", "/update-payload", json_body={"pad": "x" * pad})

    return run


def _update_raw(body: bytes) -> Callable[[Ctx], WireResponse]:
    def run(ctx: Ctx) -> WireResponse:
        headers = {"content-type": "application/json", "anti-csrf": ctx.victim.anti_csrf or ""}
        cookie = f"sAccessToken={ctx.access}; sIdRefreshToken={ctx.id_refresh}"
        return ctx.victim.transport("POST", "/update-payload", [*headers.items(), ("cookie", cookie)], body)

    return run


def _keeps_payload(expected: dict[str, Any]) -> Callable[[Ctx], None]:
    def check(ctx: Ctx) -> None:
        response = ctx.victim.request("GET", "/protected")
        assert (response.status, response.json()["payload"]) == (200, expected)

    return check


def _holds_pad(ctx: Ctx) -> None:
    response = ctx.victim.request("GET", "/protected")
    assert response.status == 200
    assert set(response.json()["payload"]) == {"pad"}


def _method(method: str, path: str = REFRESH, **kw: Any) -> Callable[[Ctx], WireResponse]:
    def run(ctx: Ctx) -> WireResponse:
        return ctx.victim.request(method, path, update_jar=False, **kw)

    return run


def _preflight(path: str, origin: str, request_headers: str) -> Callable[[Ctx], WireResponse]:
    def run(ctx: Ctx) -> WireResponse:
        headers = {
            "origin": origin,
            "access-control-request-method": "POST",
            "access-control-request-headers": request_headers,
        }
        return ctx.victim.request("OPTIONS", path, headers=headers, cookie=None, send_anti_csrf=False)

    return run


def _tokens_in_query(ctx: Ctx) -> WireResponse:
    query = f"sAccessToken={ctx.access}&sIdRefreshToken={ctx.id_refresh}&accessToken={ctx.access}"
    return ctx.victim.request("GET", f"/protected?{query}", cookie=None, update_jar=False)


def _tokens_in_body(ctx: Ctx) -> WireResponse:
    body = f"sRefreshToken={ctx.refresh}&refreshToken={ctx.refresh}".encode()
    return ctx.victim.transport(
        "POST", REFRESH, [("content-type", "application/x-www-form-urlencoded")], body
    )


def _refresh_with_body(content_type: str, body: bytes) -> Callable[[Ctx], WireResponse]:
    def run(ctx: Ctx) -> WireResponse:
        headers = [("content-type", content_type), ("cookie", f"sRefreshToken={ctx.refresh}")]
        return ctx.victim.transport("POST", REFRESH, headers, body)

    return run


def _theft(ctx: Ctx) -> WireResponse:
    stale = ctx.refresh
    assert ctx.victim.request("POST", REFRESH).status == 200
    assert ctx.victim.request("GET", "/protected").status == 200  # the successor is in use
    return ctx.refresh_with(f"sRefreshToken={stale}")


def _current(
    method: str, path: str, headers: Callable[[Ctx], list[tuple[str, str]]], cookie: str | None = None
) -> Callable[[Ctx], WireResponse]:
    """A current-protocol request: ``headers(ctx)``, and the raw Cookie ``cookie``
    (``{a}``/``{i}`` are the victim's) or none; never the anti-CSRF header."""

    def run(ctx: Ctx) -> WireResponse:
        raw = None if cookie is None else cookie.format(a=ctx.access, i=ctx.id_refresh)
        return ctx.victim.request(
            method, path, headers=headers(ctx), cookie=raw, send_anti_csrf=False, update_jar=False
        )

    return run


def _bearer(value: Callable[[Ctx], str], *extra: tuple[str, str]) -> Callable[[Ctx], list[tuple[str, str]]]:
    return lambda ctx: [("st-auth-mode", "header"), ("authorization", value(ctx)), *extra]


GARBAGE_TYPE = "garbage/\u00e9; ;;=; charset=\xff"
TRY = "try refresh token"
SESSION = "sAccessToken={a}; sIdRefreshToken={i}"
UNAUTHORISED = "unauthorised"
LONG_ORIGIN = "https://" + "a" * 2000 + ".example"
HOSTILE_REQUEST_HEADERS = ", ".join(
    ["cookie", "anti-csrf", "ANTI-CSRF", "front-token", "x-\u00e9".encode("utf-8").decode("latin-1")]
    + [f"x-h{i}" for i in range(200)]
)

ATTACKS = [
    # -- forged tokens (no valid signature, or a header the codec must refuse) ---------------
    Attack("bad-signature", _bad_signature, 401, TRY),
    Attack("tampered-payload", _tampered, 401, TRY),
    Attack("alg-none", _alg_none("none"), 401, TRY),
    Attack("alg-None", _alg_none("None"), 401, TRY),
    Attack("alg-NONE", _alg_none("NONE"), 401, TRY),
    Attack("hs256-keyed-with-public-key", _hs256_with_public_key, 401, TRY),
    Attack("unknown-kid", _with_header(kid="k" * 40), 401, TRY),
    Attack("kid-path-traversal", _with_header(kid="../../../../dev/null"), 401, TRY),
    Attack("kid-sql", _with_header(kid="x' UNION SELECT value FROM key_value--"), 401, TRY),
    Attack("kid-oversized", _with_header(kid="k" * 5000), 401, TRY),
    Attack("header-jwk", _with_header(jwk={"kty": "oct", "k": "AAAA"}), 401, TRY),
    Attack("header-jku", _with_header(jku="http://127.0.0.1:9/jwks.json"), 401, TRY),
    Attack("header-x5u", _with_header(x5u="http://127.0.0.1:9/cert.pem"), 401, TRY),
    Attack("header-x5c", _with_header(x5c=["MIIB"]), 401, TRY),
    Attack("header-crit", _with_header(crit=["exp"]), 401, TRY),
    Attack("header-b64-false", _with_header(b64=False), 401, TRY),
    Attack("header-duplicate-alg", _raw_header(b'{"alg":"none","alg":"RS256","typ":"JWT"}'), 401, TRY),
    Attack("header-non-utf8", _raw_header(b'{"alg":"RS256","typ":"\xff\xfe"}'), 401, TRY),
    Attack("header-deep-nesting", _raw_header(b"[" * 5000 + b"]" * 5000), 401, TRY),
    Attack("stripped-signature", lambda ctx: ctx.protected(".".join(_genuine(ctx)[:2])), 401, TRY),
    Attack("extra-segment", lambda ctx: ctx.protected(ctx.access + ".AAAA"), 401, TRY),
    Attack("base64-padding", lambda ctx: ctx.protected(ctx.access + "=="), 401, TRY),
    Attack("base64-non-alphabet", _non_alphabet, 401, TRY),
    Attack("token-over-8kb", _claims(userData={"p": "x" * 7000}), 401, TRY),
    # -- validly signed tokens with hostile claims --------------------------------------------
    Attack("exp-NaN", _raw_claim("exp", "NaN"), 401, TRY),
    Attack("exp-Infinity", _raw_claim("exp", "Infinity"), 401, TRY),
    Attack("exp-boolean", _claims(exp=True), 401, TRY),
    Attack("exp-string", _claims(exp="99999999999"), 401, TRY),
    Attack("exp-float", _raw_claim("exp", "1e20"), 401, TRY),
    Attack("exp-1e20-integer", _claims(exp=10**20), 401, TRY),
    Attack("exp-4000-digits", _raw_claim("exp", "9" * 4000), 401, TRY),
    Attack("exp-negative", _claims(exp=-1), 401, TRY),
    Attack("exp-expired", _claims(exp=1_000_000_000, iat=999_999_000), 401, TRY),
    Attack("exp-missing", _claims(exp=...), 401, TRY),
    Attack("sub-missing", _claims(sub=...), 401, TRY),
    Attack("sub-wrong-type", _claims(sub=42), 401, TRY),
    Attack("userData-wrong-type", _claims(userData=[1, 2]), 401, TRY),
    Attack("iat-in-the-future", _claims(iat=4_000_000_000), 401, TRY),
    Attack("claims-duplicate-member", _raw_claim("sub", '"victim","sub":"mallory"'), 401, TRY),
    Attack("claims-non-utf8", lambda ctx: ctx.signed(b'{"sub":"\xff\xfe"}'), 401, TRY),
    Attack("claims-not-an-object", lambda ctx: ctx.signed(b"[1,2,3]"), 401, TRY),
    Attack("claims-deep-nesting", _deep_payload, 401, TRY),
    Attack("update-payload-with-huge-exp", _huge_exp_update, 401, TRY),
    # -- token confusion -----------------------------------------------------------------------
    Attack("refresh-token-as-access", lambda ctx: ctx.protected(ctx.refresh), 401, TRY),
    Attack(
        "access-token-as-refresh",
        lambda ctx: ctx.refresh_with(f"sRefreshToken={ctx.access}"),
        401,
        UNAUTHORISED,
        cookies="cleared",
    ),
    Attack(
        "id-refresh-token-as-refresh",
        lambda ctx: ctx.refresh_with(f"sRefreshToken={ctx.id_refresh}"),
        401,
        UNAUTHORISED,
        cookies="cleared",
    ),
    # -- oversized cookies ---------------------------------------------------------------------
    Attack("oversized-cookie-header", _cookie("junk=" + "j" * 11000 + "; " + SESSION), 200),
    Attack("oversized-access-cookie", lambda ctx: ctx.protected("a" * 9000), 401, TRY),
    Attack(
        "oversized-refresh-cookie",
        lambda ctx: ctx.refresh_with("sRefreshToken=" + "r" * 9000),
        401,
        UNAUTHORISED,
        cookies="cleared",
    ),
    # -- duplicates ----------------------------------------------------------------------------
    Attack("duplicate-access-cookie", _cookie("sAccessToken={a}; " + SESSION), 401, TRY),
    Attack("duplicate-id-refresh-cookie", _cookie(SESSION + "; sIdRefreshToken={i}"), 401, UNAUTHORISED),
    Attack(
        "duplicate-id-refresh-cookie-optional",
        lambda ctx: ctx.victim.request(
            "GET",
            "/optional",
            cookie=f"sAccessToken={ctx.access}; sIdRefreshToken={ctx.id_refresh}; "
            f"sIdRefreshToken={ctx.id_refresh}",
            update_jar=False,
        ),
        200,
    ),
    Attack("duplicate-refresh-cookie", _duplicate_refresh, 401, UNAUTHORISED),
    Attack("duplicate-across-cookie-headers", _split_cookie_headers, 401, TRY),
    Attack("duplicate-anti-csrf-header", _duplicate_header("anti-csrf", "POST"), 401, TRY),
    Attack("duplicate-id-refresh-token-header", _duplicate_header("id-refresh-token", "GET"), 200),
    Attack("anti-csrf-of-another-session", _foreign_anti_csrf, 401, TRY),
    Attack(
        "anti-csrf-non-ascii", _method("POST", "/protected", headers={"anti-csrf": "\u00e9" * 32}), 401, TRY
    ),
    # -- the current protocol: st-auth-mode, Authorization, the sign-out route ------------------
    Attack(
        "st-auth-mode-twice",
        _current("GET", "/protected", lambda ctx: [("st-auth-mode", "header")] * 2, SESSION),
        200,
    ),
    Attack(
        "st-auth-mode-unknown",
        _current("GET", "/protected", lambda ctx: [("st-auth-mode", "HEADER\u00e9")], SESSION),
        200,
    ),
    Attack(
        "authorization-twice",
        _current(
            "GET",
            "/protected",
            _bearer(lambda ctx: f"Bearer {ctx.access}", ("authorization", "Bearer x")),
        ),
        401,
        UNAUTHORISED,
    ),
    Attack(
        "authorization-two-spaces",
        _current("GET", "/protected", _bearer(lambda ctx: f"Bearer  {ctx.access}")),
        401,
        UNAUTHORISED,
    ),
    Attack(
        "authorization-other-scheme",
        _current("GET", "/protected", _bearer(lambda ctx: f"Basic {ctx.access}")),
        401,
        UNAUTHORISED,
    ),
    Attack(
        "bearer-refresh-token-as-access",
        _current("POST", "/protected", _bearer(lambda ctx: f"Bearer {ctx.refresh}")),
        401,
        TRY,
    ),
    Attack(
        "bearer-oversized",
        _current("GET", "/protected", _bearer(lambda ctx: "Bearer " + "a" * 9000)),
        401,
        TRY,
    ),
    Attack(
        "bearer-tampered",
        _current("GET", "/protected", _bearer(lambda ctx: f"Bearer {ctx.access[:-4]}AAAA")),
        401,
        TRY,
    ),
    Attack(
        "bearer-access-token-as-refresh",
        _current("POST", REFRESH, _bearer(lambda ctx: f"Bearer {ctx.access}")),
        401,
        UNAUTHORISED,
    ),
    Attack(
        "header-mode-ignores-access-cookie",
        _current("GET", "/protected", lambda ctx: [("st-auth-mode", "header")], "sAccessToken={a}"),
        401,
        UNAUTHORISED,
    ),
    Attack(
        "cookie-mode-with-2020-session-refreshes",
        _current("GET", "/protected", lambda ctx: [("st-auth-mode", "cookie")], SESSION),
        401,
        TRY,
    ),
    Attack("sign-out-without-anti-csrf", _current("POST", "/signout", lambda ctx: [], SESSION), 401, TRY),
    Attack("sign-out-without-session", _current("POST", "/signout", lambda ctx: []), 401, UNAUTHORISED),
    # -- payload updates and the size budget ---------------------------------------------------
    Attack("payload-update-near-budget", _update_to(BUDGET - 200), 200, cookies=None, after=_holds_pad),
    Attack(
        "payload-update-past-budget",
        _update_to(BUDGET + 60),
        400,
        "payload too large",
        after=_keeps_payload({"v": 1}),
    ),
    Attack(
        "payload-update-far-past-budget",
        _update_to(4 * BUDGET),
        400,
        "payload too large",
        after=_keeps_payload({"v": 1}),
    ),
    Attack(
        "payload-update-NaN",
        _update_raw(b'{"v": NaN}'),
        400,
        "payload too large",
        after=_keeps_payload({"v": 1}),
    ),
    Attack(
        "payload-update-deep-nesting",
        _update_raw(b'{"v":' + b"[" * 40 + b"]" * 40 + b"}"),
        400,
        "payload too large",
        after=_keeps_payload({"v": 1}),
    ),
    # -- method confusion ----------------------------------------------------------------------
    Attack("refresh-GET", _method("GET"), 405),
    Attack("refresh-PUT", _method("PUT"), 405),
    Attack("refresh-DELETE", _method("DELETE"), 405),
    Attack("refresh-PATCH", _method("PATCH"), 405),
    Attack("refresh-HEAD", _method("HEAD"), 405),
    Attack("preflight-refresh", _preflight(REFRESH, "https://app.example", "anti-csrf"), 204),
    Attack("preflight-protected", _preflight("/protected", "https://app.example", "anti-csrf"), 204),
    # -- CORS confusion ------------------------------------------------------------------------
    Attack("preflight-hostile-origin", _preflight(REFRESH, "null", "anti-csrf, cookie"), 204),
    Attack("preflight-oversized-origin", _preflight("/protected", LONG_ORIGIN, "anti-csrf"), 204),
    Attack(
        "preflight-hostile-request-headers",
        _preflight(REFRESH, "https://evil.example", HOSTILE_REQUEST_HEADERS),
        204,
    ),
    # -- tokens in the wrong place, garbage on the refresh route -------------------------------
    Attack("tokens-in-query-string", _tokens_in_query, 401, UNAUTHORISED),
    Attack("tokens-in-body", _tokens_in_body, 401, UNAUTHORISED),
    Attack(
        "refresh-garbage-content-type", _refresh_with_body(GARBAGE_TYPE, b"\x00\xff" * 99), 200, cookies="set"
    ),
    Attack(
        "refresh-malformed-multipart",
        _refresh_with_body("multipart/form-data; boundary=", b"--\r\n--"),
        200,
        cookies="set",
    ),
    Attack(
        "refresh-broken-json",
        _refresh_with_body("application/json", b'{"sRefreshToken": '),
        200,
        cookies="set",
    ),
    Attack(
        "refresh-token-replayed",
        _theft,
        401,
        "token theft detected",
        cookies="cleared",
        victim_survives=False,
    ),
]


# -- the servers -------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    client: WireClient
    signer: Signer


@dataclass
class Tally:
    classes: set[str] = field(default_factory=set)
    exchanges: int = 0
    server_errors: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def tally(request: pytest.FixtureRequest) -> Iterator[Tally]:
    counts = Tally()
    yield counts
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    line = (
        f"attack suite: {len(counts.classes)} classes x {len(SERVERS)} servers = "
        f"{len(counts.classes) * len(SERVERS)} runs, {counts.exchanges} attack requests, "
        f"{len(counts.server_errors)} 5xx {counts.server_errors}"
    )
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():  # shown on success too, for quoting
            reporter.write_line("")
            reporter.write_line(line)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Server]]:
    directory: Path = tmp_path_factory.mktemp("attacks")
    with ExitStack() as stack:
        opened = []
        for name in SERVERS:
            config = Config(
                store=f"sqlite:///{directory}/{name}.db",
                cookie_secure=False,
                access_token_algorithm="RS256",
                enable_anti_csrf=True,
                refresh_token_reuse_grace_period=0,  # a replayed refresh token is a theft at once
            )
            client = stack.enter_context(open_client(name, config))
            client.login("warm-up")  # the server's engine creates the keys and the schema
            signer = Signer(config)
            stack.callback(signer.engine.close)
            opened.append(Server(name, client, signer))
        yield opened


# -- assertions --------------------------------------------------------------------------


def normalised(response: WireResponse) -> dict[str, Any]:
    """What must be identical across frameworks: cookies with values masked, and the
    protocol and CORS headers (token values masked, lists as sets)."""

    def cookie(set_cookie: SetCookie) -> tuple[Any, ...]:
        attributes = dict(set_cookie.attributes)
        attributes["expires"] = "1970" if set_cookie.cleared else "<date>"
        value = "" if set_cookie.value == "" else "<value>"
        return set_cookie.name, value, sorted(attributes.items()), sorted(set_cookie.flags)

    headers: dict[str, Any] = {}
    for name in COMPARED_HEADERS:
        value = response.header(name)
        if value is None:
            continue
        masked = name in ("front-token", "anti-csrf") or (name.startswith("st-") and bool(value))
        if masked or (name == "id-refresh-token" and value != "remove"):
            headers[name] = "<token>"
        elif name.startswith("access-control-") and "," in value:
            headers[name] = sorted(item.strip().lower() for item in value.split(","))
        else:
            headers[name] = value
    return {"cookies": sorted(cookie(c) for c in response.set_cookies().values()), "headers": headers}


def check_body(response: WireResponse, secrets: list[str]) -> None:
    text = response.body.decode("utf-8", "replace")
    for needle in [*FORBIDDEN_IN_BODY, *secrets]:
        assert needle not in text, (needle, text[:300])


def check_cookies(attack: Attack, response: WireResponse) -> None:
    cookies = response.set_cookies()
    if attack.cookies == "none":
        assert cookies == {}, cookies
        assert response.header("id-refresh-token") is None
    elif attack.cookies == "cleared":
        assert set(cookies) == {"sAccessToken", "sRefreshToken", "sIdRefreshToken"}
        assert all(c.cleared for c in cookies.values())
        assert response.header("id-refresh-token") == "remove"
    elif attack.cookies == "set":
        assert set(cookies) == {"sAccessToken", "sRefreshToken", "sIdRefreshToken"}
        assert not any(c.cleared for c in cookies.values())


def still_works(client: WireClient, user_id: str) -> None:
    for method, path in (("GET", "/protected"), ("POST", REFRESH), ("GET", "/protected")):
        response = client.request(method, path)
        assert response.status == 200, (user_id, method, path, response.status, response.body[:200])
    assert client.request("GET", "/protected").json()["user_id"] == user_id


# -- the suite ---------------------------------------------------------------------------


@pytest.mark.parametrize("attack", [pytest.param(a, id=a.name, marks=a.marks) for a in ATTACKS])
def test_attack(attack: Attack, servers: list[Server], tally: Tally) -> None:
    tally.classes.add(attack.name)
    seen: dict[str, WireResponse] = {}
    contexts: dict[str, Ctx] = {}
    tag = uuid.uuid4().hex[:8]
    for server in servers:
        victim = WireClient(server.client.transport)
        victim.login(f"victim-{tag}", {"v": 1})
        bystander = WireClient(server.client.transport)
        bystander.login(f"bystander-{tag}", {"b": 1})
        ctx = Ctx(victim, bystander, server.signer)
        secrets = ctx.secrets()
        response = attack.run(ctx)
        tally.exchanges += 1
        if response.status >= 500:
            tally.server_errors.append(f"{attack.name}@{server.name}")
        seen[server.name] = response
        contexts[server.name] = ctx
        assert response.status < 500, (server.name, response.status, response.body[:300])
        check_body(response, secrets)
    statuses = {name: response.status for name, response in seen.items()}
    assert set(statuses.values()) == {attack.status}, statuses
    shapes = {name: normalised(response) for name, response in seen.items()}
    first = next(iter(shapes.values()))
    assert all(shape == first for shape in shapes.values()), shapes
    for name, response in seen.items():
        if attack.message is not None:
            assert response.json() == {"message": attack.message}, (name, response.body[:200])
        check_cookies(attack, response)
        if attack.status == 204:
            assert response.header("access-control-allow-origin") is None  # the app's CORS decides
            assert response.header("access-control-allow-credentials") == "true"
    for name, ctx in contexts.items():
        still_works(ctx.bystander, f"bystander-{tag}")
        if attack.victim_survives:
            if attack.after is not None:
                attack.after(ctx)
            still_works(ctx.victim, f"victim-{tag}")
        else:
            assert ctx.victim.request("POST", REFRESH).status == 401, name
