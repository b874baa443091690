"""The peer apps of ``bench/peers.py``: what each serves, and a check that it answers right.

Every app (a module of this directory exposing ``app``, WSGI or ASGI) serves
``POST /login`` (issues a session or token for a fixed user, no password check) and
``GET /protected`` (200 with the credentials, 401 without), except the bare apps, which
serve ``GET /plain`` only. ``check`` runs through them with any ``httpx.Client`` (a real
server or an in-process transport), so neither the test nor the benchmark measures an
error page.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import httpx

BOTH = ("HS256", "RS256")
NO_ALGORITHM = ("-",)


@dataclass(frozen=True)
class Refresh:
    """The refresh route: ``mode`` is ``cookie`` (sessionward: the ``cookies`` named, the new
    ones echoed in a header), ``json`` (simplejwt: ``{"refresh": ...}`` in and out) or
    ``bearer`` (flask-jwt-extended: ``Authorization: Bearer``, no rotation)."""

    path: str
    mode: str
    cookies: tuple[str, ...] = ("sRefreshToken",)


@dataclass(frozen=True)
class PeerApp:
    framework: str
    label: str
    module: str
    algorithms: tuple[str, ...] = BOTH
    operations: tuple[str, ...] = ("verify", "create")
    refresh: Refresh | None = None
    bare: bool = False
    python: str | None = None  # another interpreter (a virtualenv of the app's own), relative to bench/
    notes: tuple[str, ...] = field(default=())


SUPERTOKENS_REF_PYTHON = ".venv-supertokens-ref/bin/python"
SESSIONWARD_OPERATIONS = ("verify", "verify, cache miss", "refresh", "create")
SW_REFRESH = Refresh("/session/refresh", "cookie")

APPS: tuple[PeerApp, ...] = (
    PeerApp("fastapi", "bare FastAPI", "fastapi_bare", NO_ALGORITHM, (), bare=True),
    PeerApp("fastapi", "sessionward", "fastapi_sessionward", BOTH, SESSIONWARD_OPERATIONS, SW_REFRESH),
    PeerApp("fastapi", "Starlette SessionMiddleware", "fastapi_starlette_session", NO_ALGORITHM),
    PeerApp("fastapi", "fastapi-users (JWT, SQLite)", "fastapi_users_jwt"),
    PeerApp("flask", "bare Flask", "flask_bare", NO_ALGORITHM, (), bare=True),
    PeerApp("flask", "sessionward", "flask_sessionward", BOTH, SESSIONWARD_OPERATIONS, SW_REFRESH),
    PeerApp("flask", "PyJWT by hand", "flask_pyjwt"),
    PeerApp("flask", "PyJWT by hand, keys loaded once", "flask_pyjwt_loaded", ("RS256",)),
    PeerApp(
        "flask",
        "flask-jwt-extended",
        "flask_jwtx",
        BOTH,
        ("verify", "refresh", "create"),
        Refresh("/refresh", "bearer"),
    ),
    PeerApp("django", "bare Django", "django_bare", NO_ALGORITHM, (), bare=True),
    PeerApp("django", "sessionward", "django_sessionward", BOTH, SESSIONWARD_OPERATIONS, SW_REFRESH),
    PeerApp("django", "DRF APIView, unprotected", "django_drf_bare", NO_ALGORITHM, ("plain",)),
    PeerApp(
        "django",
        "DRF + simplejwt (rotation, blacklist)",
        "django_simplejwt",
        BOTH,
        ("verify", "refresh", "create"),
        Refresh("/api/token/refresh/", "json"),
    ),
    PeerApp("django", "Django DB sessions (SQLite)", "django_sessions", NO_ALGORITHM),
    # supertokens-jwt-ref runs on Django 4.2, the other Django apps on the Django installed
    # (5.x): the bare app again under 4.2 shows what the older Django alone accounts for.
    PeerApp(
        "django",
        "bare Django 4.2 (supertokens-jwt-ref's virtualenv)",
        "django_bare",
        NO_ALGORITHM,
        ("plain",),
        python=SUPERTOKENS_REF_PYTHON,
    ),
    PeerApp(
        "django",
        "supertokens-jwt-ref (Django 4.2)",
        "django_supertokens_ref",
        ("HS256",),
        ("verify", "refresh", "create"),
        Refresh("/session/refresh", "cookie", ("sRefreshToken", "sIdRefreshToken")),
        python=SUPERTOKENS_REF_PYTHON,
    ),
)


@dataclass(frozen=True)
class Credentials:
    """What a login handed out: the headers that authenticate ``/protected``, and the
    refresh token if any."""

    headers: dict[str, str]
    refresh_token: str | None


def credentials(response: httpx.Response, refresh: Refresh | None = None) -> Credentials:
    """Read a login answer: session cookies (all but ``sRefreshToken``, which only goes to the
    refresh route; the refresh token is then the ``Cookie`` value of a refresh) or a JSON
    body with an access token."""
    cookies: dict[str, str] = {}
    for header in response.headers.get_list("set-cookie"):
        name, _, value = header.split(";", 1)[0].partition("=")
        cookies[name.strip()] = value.strip()
    if cookies:
        names = refresh.cookies if refresh is not None else ()
        refresh_cookie = "; ".join(f"{name}={cookies[name]}" for name in names if name in cookies) or None
        cookies.pop("sRefreshToken", None)
        return Credentials({"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())}, refresh_cookie)
    body = response.json()
    access = body.get("access") or body.get("access_token")
    return Credentials({"Authorization": f"Bearer {access}"}, body.get("refresh"))


def refresh_request(client: httpx.Client, refresh: Refresh, token: str | None) -> httpx.Response:
    """One refresh with ``token`` (``None``: without any)."""
    if refresh.mode == "cookie":
        return client.post(refresh.path, headers={"Cookie": token} if token else {})
    if refresh.mode == "json":
        return client.post(refresh.path, json={"refresh": token} if token else {})
    return client.post(refresh.path, headers={"Authorization": f"Bearer {token}"} if token else {})


def new_refresh_token(refresh: Refresh, response: httpx.Response, old: str) -> str:
    """The refresh token to use next (the same one where the peer does not rotate)."""
    if refresh.mode == "cookie":
        return response.headers["x-bench-refresh-token"]
    if refresh.mode == "json":
        return str(json.loads(response.content)["refresh"])
    return old


def check(client: httpx.Client, app: PeerApp) -> list[str]:
    """Every endpoint of ``app`` answers 200 when it should and 401 without credentials;
    returns the problems found (empty: all good). A refusal may be 400 where the peer
    answers a missing field so (simplejwt's refresh without a token)."""
    problems: list[str] = []

    def expect(what: str, response: httpx.Response, status: int) -> bool:
        client.cookies.clear()  # each request carries only the credentials it is given
        if response.status_code != status and not (status == 401 and response.status_code == 400):
            problems.append(f"{app.module}: {what}: {response.status_code}, expected {status}")
            return False
        return True

    if app.bare or "plain" in app.operations:
        expect("GET /plain", client.get("/plain"), 200)
        return problems
    login = client.post("/login")
    if not expect("POST /login", login, 200):
        return problems
    creds = credentials(login, app.refresh)
    expect("GET /protected with the token", client.get("/protected", headers=creds.headers), 200)
    expect("GET /protected without", client.get("/protected"), 401)
    if app.refresh is not None:
        if creds.refresh_token is None:
            problems.append(f"{app.module}: login gave no refresh token")
            return problems
        first = refresh_request(client, app.refresh, creds.refresh_token)
        if expect("refresh", first, 200):
            token = new_refresh_token(app.refresh, first, creds.refresh_token)
            expect("refresh with the new token", refresh_request(client, app.refresh, token), 200)
            if app.refresh.mode == "json":  # rotation with blacklist: the used token is refused
                reuse = refresh_request(client, app.refresh, creds.refresh_token)
                expect("refresh reusing a rotated token", reuse, 401)
        expect("refresh without a token", refresh_request(client, app.refresh, None), 401)
    return problems


def rsa_pems() -> tuple[str, str]:
    """A fresh RSA-2048 key pair as PEM text: (private PKCS#8, public SubjectPublicKeyInfo)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public
