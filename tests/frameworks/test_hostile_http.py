"""Hostile inputs over HTTP (docs/design/security.md) on every framework: a 401 (or 405/503 where the
protocol says), never a 500, never a token or a traceback in the body, and the same verdict on
every framework."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from frameworks.clients import FRAMEWORKS, open_client
from frameworks.wire import WireClient, WireResponse
from sessionward import Config

FORBIDDEN_IN_BODY = ("Traceback", 'File "', "sessionward/", "eyJ")


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture(params=FRAMEWORKS)
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[WireClient]:
    config = Config(
        store=f"sqlite:///{tmp_path}/s.db",
        cookie_secure=False,
        access_token_algorithm="RS256",
        enable_anti_csrf=True,
    )
    with open_client(str(request.param), config) as wire:
        yield wire


def assert_safe(response: WireResponse, *secrets: str, status: int = 401) -> None:
    assert response.status == status, (response.status, response.body[:200])
    text = response.body.decode("utf-8", "replace")
    for needle in FORBIDDEN_IN_BODY:
        assert needle not in text, text[:200]
    for secret in secrets:
        if secret:
            assert secret not in text
    assert set(json.loads(response.body)) == {"message"}


def with_access(client: WireClient, token: str) -> Callable[[str | None], str]:
    id_refresh = client.jar.value("sIdRefreshToken")
    return lambda _jar: f"sAccessToken={token}; sIdRefreshToken={id_refresh}"


def forged_tokens(client: WireClient) -> dict[str, str]:
    genuine = client.jar.value("sAccessToken") or ""
    header, payload, signature = genuine.split(".")
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=="))
    tampered = b64(json.dumps({**claims, "sub": "mallory"}).encode())
    return {
        "alg-none": b64(b'{"alg":"none","typ":"JWT"}') + "." + payload + ".",
        "alg-NONE": b64(b'{"alg":"NONE","typ":"JWT"}') + "." + payload + ".",
        "alg-HS256": b64(b'{"alg":"HS256","typ":"JWT","kid":"x"}') + "." + payload + "." + signature,
        "tampered-payload": header + "." + tampered + "." + signature,
        "stripped-signature": header + "." + payload,
        "extra-segment": genuine + ".AAAA",
        "padding": genuine + "==",
        "non-alphabet": genuine.replace("-", "+", 1) if "-" in genuine else genuine[:-1] + "+",
        "jku-header": b64(b'{"alg":"RS256","jku":"http://127.0.0.1:9/jwks","kid":"x"}')
        + "."
        + payload
        + "."
        + signature,
        "kid-traversal": b64(b'{"alg":"RS256","kid":"../../../../dev/null"}')
        + "."
        + payload
        + "."
        + signature,
        "kid-sql": b64(b'{"alg":"RS256","kid":"x\' UNION SELECT 1--"}') + "." + payload + "." + signature,
        "nan-exp": header + "." + b64(json.dumps({**claims, "exp": "NaN"}).encode()) + "." + signature,
        "refresh-token-as-access": client.jar.value("sRefreshToken") or "",
        "empty": "",
        "percent-garbage": "%ff%fe%00",
        "huge": "a" * 9000,
        "deep-nesting": b64(b"[" * 5000) + "." + payload + "." + signature,
    }


def test_forged_access_tokens_are_try_refresh(client: WireClient) -> None:
    client.login("victim")
    for name, token in forged_tokens(client).items():
        response = client.request("GET", "/protected", cookie=with_access(client, token), update_jar=False)
        assert_safe(response, token if len(token) > 20 else "")
        assert response.json() == {"message": "try refresh token"}, name
        assert response.header_values("set-cookie") == [], name
    assert client.request("GET", "/protected").status == 200  # the victim's session survived


def test_hostile_refresh_tokens_are_unauthorised(client: WireClient) -> None:
    client.login("victim")
    access = client.jar.value("sAccessToken") or ""
    for token in (access, client.jar.value("sIdRefreshToken") or "", "garbage", "%ff%fe", "A" * 5000, ""):
        response = client.request(
            "POST", "/session/refresh", cookie=f"sRefreshToken={token}", update_jar=False
        )
        assert_safe(response, token if len(token) > 20 else "")
        assert response.json() == {"message": "unauthorised"}
    assert client.request("POST", "/session/refresh").status == 200


def test_duplicate_cookie_names_get_one_verdict(client: WireClient) -> None:
    client.login("victim")
    mine = client.jar.value("sAccessToken") or ""
    ident = client.jar.value("sIdRefreshToken") or ""
    for cookie in (
        f"sAccessToken={mine}; sAccessToken=attacker; sIdRefreshToken={ident}",
        f"sAccessToken=attacker; sAccessToken={mine}; sIdRefreshToken={ident}",
    ):
        response = client.request("GET", "/protected", cookie=cookie, update_jar=False)
        assert_safe(response, mine)
        assert response.json() == {"message": "try refresh token"}
    doubled_id = f"sAccessToken={mine}; sIdRefreshToken={ident}; sIdRefreshToken=x"
    response = client.request("GET", "/protected", cookie=doubled_id, update_jar=False)
    assert_safe(response, mine)
    assert response.json() == {"message": "unauthorised"}
    assert response.header_values("set-cookie") == []
    refresh = client.jar.value("sRefreshToken") or ""
    response = client.request(
        "POST", "/session/refresh", cookie=f"sRefreshToken={refresh}; sRefreshToken=x", update_jar=False
    )
    assert_safe(response, refresh)
    assert response.header_values("set-cookie") == []


def test_tokens_in_the_url_are_ignored(client: WireClient) -> None:
    client.login("victim")
    token = client.jar.value("sAccessToken") or ""
    response = client.request("GET", f"/protected?sAccessToken={token}&accessToken={token}", cookie=None)
    assert_safe(response, token)
    assert response.json() == {"message": "unauthorised"}


def test_anti_csrf_of_another_session_is_refused(client: WireClient) -> None:
    other = WireClient(client.transport)
    other.login("other")
    client.login("victim")
    response = client.request("POST", "/protected", headers={"anti-csrf": other.anti_csrf or ""})
    assert_safe(response)
    assert response.json() == {"message": "try refresh token"}


def test_malformed_bodies_and_headers_never_500(client: WireClient) -> None:
    client.login("victim")
    for headers in ({"anti-csrf": "\u00e9" * 10}, {"anti-csrf": ""}, {"cookie": ";;;=;sAccessToken"}):
        response = client.request("POST", "/protected", headers=headers, cookie=None, update_jar=False)
        assert response.status == 401, response.body


@pytest.mark.parametrize("name", ["anti-csrf", "id-refresh-token"])
def test_duplicated_protocol_headers_count_as_absent(client: WireClient, name: str) -> None:
    client.login("victim")
    csrf = client.anti_csrf or ""
    for copies in ((csrf, csrf), (csrf, "x"), ("x", csrf), (csrf, "")):
        headers = [(name, value) for value in copies]
        if name != "anti-csrf":
            headers.append(("anti-csrf", csrf))
        response = client.request("POST", "/protected", headers=headers, update_jar=False)
        if name == "anti-csrf":
            assert_safe(response, csrf)
            assert response.json() == {"message": "try refresh token"}
            assert response.header_values("set-cookie") == []
        else:  # a request header the server never reads
            assert response.status == 200, response.body
        # A safe method does not check the header: absent or not, the answer is the same.
        assert client.request("GET", "/protected", headers=headers[:2]).status == 200
    assert client.request("POST", "/protected").status == 200


def test_duplicated_session_cookies_on_an_optional_route(client: WireClient) -> None:
    client.login("victim")
    access = client.jar.value("sAccessToken") or ""
    ident = client.jar.value("sIdRefreshToken") or ""
    refresh = client.jar.value("sRefreshToken") or ""
    doubled_id = f"sAccessToken={access}; sIdRefreshToken={ident}; sIdRefreshToken={ident}"
    response = client.request("GET", "/optional", cookie=doubled_id, update_jar=False)
    assert (response.status, response.json()) == (200, {"user_id": None})
    assert response.header_values("set-cookie") == []
    doubled_access = f"sAccessToken={access}; sAccessToken=x; sIdRefreshToken={ident}"
    response = client.request("GET", "/optional", cookie=doubled_access, update_jar=False)
    assert_safe(response, access)
    assert response.json() == {"message": "try refresh token"}
    doubled_refresh = (
        f"sAccessToken={access}; sIdRefreshToken={ident}; sRefreshToken={refresh}; sRefreshToken=x"
    )
    response = client.request("GET", "/optional", cookie=doubled_refresh, update_jar=False)
    assert (response.status, response.json()) == (200, {"user_id": "victim"})
    # The same cookies split over two Cookie headers get the same verdicts.
    response = client.request(
        "GET",
        "/optional",
        headers=[("cookie", f"sIdRefreshToken={ident}")],
        cookie=f"sAccessToken={access}; sIdRefreshToken={ident}",
        update_jar=False,
    )
    assert (response.status, response.json()) == (200, {"user_id": None})


def test_split_cookie_headers_are_read_as_one_list(client: WireClient) -> None:
    """Cookie headers sent on several lines (as HTTP/2 clients do) are read together, and a
    name repeated across them is a duplicate: the same verdict on every framework."""
    client.login("alice")
    access = client.jar.value("sAccessToken") or ""
    ident = client.jar.value("sIdRefreshToken") or ""
    split = [("cookie", f"sAccessToken={access}"), ("cookie", f"other=1; sIdRefreshToken={ident}")]
    ok = client.request("GET", "/protected", headers=split, cookie=None, update_jar=False)
    assert ok.status == 200 and ok.json()["user_id"] == "alice"
    forged = [*split, ("cookie", "sAccessToken=forged")]
    tossed = client.request("GET", "/protected", headers=forged, cookie=None, update_jar=False)
    assert_safe(tossed, access)
    assert tossed.json() == {"message": "try refresh token"}
    doubled = client.request(
        "GET", "/protected", headers=[*split, ("cookie", "sIdRefreshToken=x")], cookie=None, update_jar=False
    )
    assert_safe(doubled, access)
    assert doubled.json() == {"message": "unauthorised"}
    assert doubled.header_values("set-cookie") == []


def test_current_protocol_headers_sent_twice_count_as_absent(client: WireClient) -> None:
    """``st-auth-mode`` and ``Authorization`` sent twice count as absent, like any protocol
    header: the 2020 cookies then decide, and without them the answer is unauthorised."""
    client.login("victim")
    access = client.jar.value("sAccessToken") or ""
    for headers in (
        [("st-auth-mode", "header"), ("st-auth-mode", "header")],
        [("st-auth-mode", "cookie"), ("st-auth-mode", "header")],
        [("authorization", f"Bearer {access}"), ("authorization", f"Bearer {access}")],
        [("authorization", "Bearer x"), ("authorization", f"Bearer {access}")],
    ):
        response = client.request("GET", "/protected", headers=headers, update_jar=False)
        assert response.status == 200, (headers, response.body)
        assert response.json()["user_id"] == "victim"
        bare = client.request("GET", "/protected", headers=headers, cookie=None, update_jar=False)
        assert_safe(bare, access)
        assert bare.json() == {"message": "unauthorised"}
        assert bare.header_values("set-cookie") == []


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer",
        "Bearer:abc",
        "bearer \u00e9",
        "Bearer " + "%" * 100,
        "Basic dXNlcjpwYXNz",
        ", , ,",
        "Bearer a b",
    ],
)
def test_malformed_authorization_is_no_token(client: WireClient, authorization: str) -> None:
    for path in ("/protected", "/session/refresh"):
        response = client.request(
            "POST",
            path,
            headers=[("st-auth-mode", "header"), ("authorization", authorization)],
            cookie=None,
            update_jar=False,
        )
        assert_safe(response)
        assert response.json() == {"message": "unauthorised"}
        assert response.header_values("set-cookie") == []
        assert response.header("front-token") is None
