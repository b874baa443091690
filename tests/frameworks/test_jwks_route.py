"""The JWKS route (docs/jwks.md) on every framework, in process and on real servers: the
public key set with a ``Cache-Control`` that never outlives the key schedule, no session and
no cookies, switched off with ``jwks_api_path=None``; and PyJWT's ``PyJWKClient`` verifying
the backend's tokens through it, across a manual key rotation."""

from __future__ import annotations

import base64
import inspect
import json
import math
import re
import sqlite3
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import jwt
import pytest

from frameworks.clients import FRAMEWORKS, IN_PROCESS, SERVERS, WITH_STARLETTE, open_client
from frameworks.wire import WireResponse
from sessionward import Config, SessionWard

INTERVAL = 3600
DEFAULT_PATH = "/.well-known/jwks.json"
ASYMMETRIC = ("RS256", "ES256", "EdDSA")
KTY = {"RS256": "RSA", "ES256": "EC", "EdDSA": "OKP"}


def config_for(tmp_path: Path, algorithm: str = "ES256", **options: Any) -> Config:
    options.setdefault("store", f"sqlite:///{tmp_path / 'sessions.db'}")
    return Config(
        cookie_secure=False,
        access_token_algorithm=algorithm,
        access_token_signing_key_update_interval=INTERVAL,
        **options,
    )


def max_age_of(response: WireResponse) -> int:
    value = response.header("cache-control")
    assert value is not None
    found = re.fullmatch(r"public, max-age=(\d+)", value)
    assert found, value
    return int(found[1])


def seconds_to_next_key(before: float, after: float) -> float:
    """An upper bound of the time from the answer to the next key's creation, for an answer
    made between ``before`` and ``after`` (wall clock): the next interval starts then."""
    if before // INTERVAL != after // INTERVAL:  # a boundary passed during the request
        return INTERVAL
    return (before // INTERVAL + 1) * INTERVAL - before


def kid_of(token: str) -> str:
    segment = token.split(".")[0]
    return str(json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))["kid"])


# -- the route on every framework --------------------------------------------------------------------


@pytest.mark.parametrize("framework", WITH_STARLETTE)
def test_the_route_answers_the_key_set_with_its_max_age(framework: str, tmp_path: Path) -> None:
    config = config_for(tmp_path)
    with open_client(framework, config) as client:
        before = time.time()
        response = client.request("GET", DEFAULT_PATH)
        after = time.time()
    assert response.status == 200, response.body
    assert response.header("content-type") == "application/json"
    assert response.header("x-content-type-options") == "nosniff"
    assert response.header("access-control-allow-origin") == "*"
    assert not response.header_values("set-cookie")
    max_age = max_age_of(response)
    assert 0 <= max_age <= min(3600, seconds_to_next_key(before, after))
    jwks = response.json()
    assert set(jwks) == {"keys"}
    with SessionWard(config) as engine:  # the same store: the keys every process serves
        served = [key for key in engine.jwks()["keys"] if key in jwks["keys"]]
    assert served == jwks["keys"]
    # The signing key and the next one, published ahead (and a third if an interval began
    # during the request).
    assert 2 <= len(jwks["keys"]) <= 3
    for key in jwks["keys"]:
        assert key["kty"] == "EC" and key["alg"] == "ES256" and key["use"] == "sig"
        assert "d" not in key  # never private material


@pytest.mark.parametrize("framework", [*IN_PROCESS, "starlette"])
def test_head_reads_and_other_methods_are_refused(framework: str, tmp_path: Path) -> None:
    with open_client(framework, config_for(tmp_path)) as client:
        head = client.request("HEAD", DEFAULT_PATH)
        refused = [client.request(method, DEFAULT_PATH).status for method in ("POST", "PUT", "DELETE")]
    assert head.status == 200
    assert head.header("content-type") == "application/json"
    assert max_age_of(head) <= 3600
    assert refused == [405, 405, 405]


@pytest.mark.parametrize("framework", [*IN_PROCESS, "starlette"])
def test_no_session_is_needed_and_none_is_touched(framework: str, tmp_path: Path) -> None:
    with open_client(framework, config_for(tmp_path)) as client:
        client.login("alice")
        cookies = dict(client.jar.cookies)
        # With the session cookies, and with garbage in them: the same answer, no cookie.
        for cookie in ("jar", "sAccessToken=garbage; sIdRefreshToken=x"):
            response = client.request("GET", DEFAULT_PATH, cookie=cookie)
            assert response.status == 200
            assert not response.header_values("set-cookie")
            assert response.header("front-token") is None
            assert response.json()["keys"]
        assert client.jar.cookies == cookies


@pytest.mark.parametrize("framework", [*IN_PROCESS, "starlette"])
def test_the_path_follows_the_option(framework: str, tmp_path: Path) -> None:
    with open_client(framework, config_for(tmp_path, jwks_api_path="/auth/keys")) as client:
        moved = client.request("GET", "/auth/keys")
        default = client.request("GET", DEFAULT_PATH)
    assert moved.status == 200 and moved.json()["keys"]
    assert default.status == 404


@pytest.mark.parametrize("framework", [*FRAMEWORKS, "starlette"])
def test_switched_off_the_path_is_the_apps_own_404(framework: str, tmp_path: Path) -> None:
    # Servers read the config from SESSIONWARD_* variables: None travels as the empty value.
    with open_client(framework, config_for(tmp_path, jwks_api_path=None)) as client:
        response = client.request("GET", DEFAULT_PATH)
        unknown = client.request("GET", "/no-such-route")
    assert response.status == 404
    assert b'"keys"' not in response.body
    assert (response.header("content-type"), response.body) == (unknown.header("content-type"), unknown.body)


@pytest.mark.parametrize("framework", [*IN_PROCESS, "starlette"])
def test_hs256_publishes_an_empty_key_set(framework: str, tmp_path: Path) -> None:
    with open_client(framework, config_for(tmp_path, "HS256")) as client:
        response = client.request("GET", DEFAULT_PATH)
    assert response.status == 200
    assert response.json() == {"keys": []}  # the HMAC secret is never published
    assert 0 <= max_age_of(response) <= 3600


@pytest.mark.parametrize("framework", [*IN_PROCESS, "starlette"])
def test_a_store_outage_is_a_503_then_the_route_recovers(framework: str, tmp_path: Path) -> None:
    db = tmp_path / "down.db"
    config = config_for(tmp_path, store=f"sqlite:///{db}?timeout=0.2")
    with open_client(framework, config) as client:
        with closing(sqlite3.connect(db, timeout=1)) as blocker:
            blocker.execute("BEGIN EXCLUSIVE")  # the engine's first use must write (schema, keys)
            down = client.request("GET", DEFAULT_PATH)
            blocker.execute("ROLLBACK")
        assert down.status == 503, down.body
        assert down.json() == {"message": "session store unavailable"}
        assert down.header("retry-after") is not None
        assert "max-age" not in (down.header("cache-control") or "")  # an outage is never cached
        assert not down.header_values("set-cookie")
        up = client.request("GET", DEFAULT_PATH)
    assert up.status == 200 and up.json()["keys"]


def test_django_under_asgi_answers_off_the_event_loop(tmp_path: Path) -> None:
    import asyncio

    from django.test import AsyncClient  # type: ignore[import-untyped]

    from frameworks.apps import django_app

    async def fetch() -> Any:
        return await AsyncClient().get(DEFAULT_PATH)

    config = config_for(tmp_path, "EdDSA")
    with django_app.configured(config):
        before = time.time()
        response = asyncio.run(fetch())
        after = time.time()
        head = asyncio.run(AsyncClient().head(DEFAULT_PATH))
        post = asyncio.run(AsyncClient().post(DEFAULT_PATH))
    assert response.status_code == 200
    assert json.loads(response.content)["keys"][0]["kty"] == "OKP"
    found = re.fullmatch(r"public, max-age=(\d+)", response.headers["cache-control"])
    assert found and int(found[1]) <= seconds_to_next_key(before, after)
    assert not response.cookies
    assert head.status_code == 200 and head.content == b""
    assert post.status_code == 405 and post.headers["allow"] == "GET, HEAD"


# -- a verifier in another service: PyJWT's PyJWKClient ----------------------------------------------


class CountingJWKClient(jwt.PyJWKClient):
    """A ``PyJWKClient`` that counts its fetches of the key set."""

    def __init__(self, uri: str) -> None:
        # Recent PyJWT releases refetch on an unknown kid at most once per cooldown_duration
        # (30 s); the scenario rotates right after the first fetch (docs/jwks.md says so).
        options: dict[str, Any] = {}
        if "cooldown_duration" in inspect.signature(jwt.PyJWKClient).parameters:
            options["cooldown_duration"] = 0
        super().__init__(uri, cache_jwk_set=True, lifespan=3600, **options)
        self.fetches = 0

    def fetch_data(self) -> Any:
        self.fetches += 1
        return super().fetch_data()


def verified_claims(client: jwt.PyJWKClient, token: str, algorithm: str) -> dict[str, Any]:
    key = client.get_signing_key_from_jwt(token)
    claims: dict[str, Any] = jwt.decode(token, key.key, algorithms=[algorithm], options={"require": ["exp"]})
    return claims


@pytest.mark.parametrize("algorithm", ASYMMETRIC)
@pytest.mark.parametrize("framework", SERVERS)
def test_pyjwt_verifies_tokens_through_the_route_across_a_rotation(
    framework: str, algorithm: str, tmp_path: Path
) -> None:
    config = config_for(tmp_path, algorithm)
    with open_client(framework, config) as client:
        assert client.base_url is not None
        verifier = CountingJWKClient(client.base_url + DEFAULT_PATH)
        client.login("alice", {"role": "admin"})
        first = client.jar.value("sAccessToken")
        assert first is not None
        claims = verified_claims(verifier, first, algorithm)
        assert (claims["sub"], claims["userData"]) == ("alice", {"role": "admin"})
        assert verifier.fetches == 1

        # Another process of the backend rotates the key (as `sessionward keys rotate`
        # does) and signs with the new key at once: unforeseeable, so the verifier's
        # cached set lacks the kid and PyJWKClient fetches the set again.
        with SessionWard(config) as other_process:
            new_kid = other_process.rotate_signing_key()
            second = other_process.create_new_session("bob").access_token.value
        assert kid_of(second) == new_kid != kid_of(first)
        assert verified_claims(verifier, second, algorithm)["sub"] == "bob"
        assert verifier.fetches == 2
        jwks = verifier.get_jwk_set()
        assert {key.key_type for key in jwks.keys} == {KTY[algorithm]}

        # The server picked the new key up while answering that fetch; its next token is
        # signed with it, and the cached set verifies that and the old token alike.
        client.login("carol")
        third = client.jar.value("sAccessToken")
        assert third is not None and kid_of(third) == new_kid
        assert verified_claims(verifier, third, algorithm)["sub"] == "carol"
        assert verified_claims(verifier, first, algorithm)["sub"] == "alice"
        assert verifier.fetches == 2
        # The server verifies the other process's token too.
        client.jar.cookies.clear()
        protected = client.request("GET", "/protected", cookie=f"sAccessToken={second}; sIdRefreshToken=x")
        assert protected.status == 200, protected.body


def test_the_bound_helper_handles_a_boundary_inside_the_request() -> None:
    start = 1_700_002_800.0  # an interval start
    assert seconds_to_next_key(start, start + 1) == INTERVAL
    assert seconds_to_next_key(start - 1, start + 1) == INTERVAL
    assert seconds_to_next_key(start - 1, start - 0.5) == 1
    assert math.isclose(seconds_to_next_key(start + 0.25, start + 0.5), INTERVAL - 0.25)
