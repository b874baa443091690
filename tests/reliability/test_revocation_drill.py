"""The change feed end to end, across processes (``feed_drill.py``): on every store, four
verifier processes — a Flask/gunicorn, a Django/gunicorn and a FastAPI/uvicorn server and a
plain engine process — each verify one session in a tight loop while this process makes the
change:

- ``revoke_session``: every verifier answers 401 (``unauthorised``) within the bound, and
  the plain engine process reads the store not once while verifying;
- ``update_jwt_payload``: every verifier asks for a refresh (401 ``try refresh token``),
  then serves the new payload from the refreshed token;
- ``retire_signing_key``: a token signed by the retired key is refused everywhere at once
  (``try refresh token``); the refreshed token, signed by a live key, passes everywhere;
- revocations while the listeners' connections are cut again and again (PostgreSQL,
  Redis; a SQLite listener has no connection to cut): none is missed.

The bound is 5 s (a loaded CI machine); the real figures are printed (captured or not) — see
``bench/revocation_drill.py`` for the full measurement.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from functools import partial

import pytest
from reliability.feed_drill import Drill, Outcome, cutting, kid_of, table, wrong
from support.backends import POSTGRES_URL, REDIS_URL, isolated_store_url

pytestmark = pytest.mark.slow

REVOCATIONS = 30
PAYLOAD_UPDATES = 10
RETIREMENTS = 5
CUT_REVOCATIONS = 30
MIN_CUTS = 8
BOUND_MS = 5000.0


@pytest.fixture(scope="module", params=["sqlite", "postgres", "redis"])
def drill(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Drill]:
    tmp = tmp_path_factory.mktemp(f"drill-{request.param}")
    with isolated_store_url(str(request.param), tmp) as url:
        made = Drill(url, tmp)
        try:
            # The first verifications start every process's listener; let them catch up.
            tokens = made.session()
            made.change(tokens, lambda: made.engine.revoke_session(tokens.handle))
            time.sleep(1.5)
            yield made
        finally:
            made.close()


def backend_of(drill: Drill) -> str:
    return drill.url.split(":", 1)[0].replace("postgresql", "postgres")


def show(capsys: pytest.CaptureFixture[str], text: str) -> None:
    """Print the measured figures even when the output is captured."""
    with capsys.disabled():
        print(text)


def assert_all(outcomes: list[Outcome], error: str) -> None:
    bad = wrong(outcomes, error, BOUND_MS)
    assert not bad, f"{len(bad)} refusals missing, late or wrong (first ones): {bad[:8]}"


def test_revocation_reaches_every_verifier_without_store_reads(
    drill: Drill, capsys: pytest.CaptureFixture[str]
) -> None:
    drill.reset_counts()
    outcomes: list[Outcome] = []
    tokens_seen: list[str] = []
    for _ in range(REVOCATIONS):
        tokens = drill.session()
        tokens_seen.append(tokens.access_token.value)
        outcomes.append(drill.change(tokens, partial(drill.engine.revoke_session, tokens.handle)))
    calls = drill.store_calls()
    verifications = drill.verifications()
    show(capsys, "\n" + table("revoke_session", {backend_of(drill): outcomes}, "UnauthorizedError"))
    show(capsys, f"verifications: {verifications}; store calls meanwhile: {calls}")
    assert_all(outcomes, "UnauthorizedError")
    # Live feed: not one store call to verify, neither the valid tokens nor the revoked ones.
    assert all(count > REVOCATIONS * 5 for count in verifications.values()), verifications
    assert all(made == {} for made in calls.values()), calls
    for kind, answers in drill.check_all(tokens_seen).items():
        assert all(answer == ["err", "UnauthorizedError"] for answer in answers), (kind, answers)


def test_payload_update_asks_for_a_refresh_then_serves_the_new_payload(
    drill: Drill, capsys: pytest.CaptureFixture[str]
) -> None:
    if not hasattr(drill.engine, "change_feed_state"):
        pytest.fail("the engine has no change feed (change_feed_state is missing)")
    outcomes = []
    for round_ in range(PAYLOAD_UPDATES):
        tokens = drill.session({"round": round_, "version": 1})
        new = {"round": round_, "version": 2}
        outcomes.append(drill.change(tokens, partial(drill.engine.update_jwt_payload, tokens.handle, new)))
        refreshed = drill.engine.refresh_session(tokens.refresh_token.value)
        for kind, answers in drill.check_all([refreshed.access_token.value]).items():
            assert answers == [["ok", new]], (kind, answers)
    show(capsys, "\n" + table("update_jwt_payload", {backend_of(drill): outcomes}, "TryRefreshTokenError"))
    assert_all(outcomes, "TryRefreshTokenError")


def test_a_retired_key_is_refused_everywhere_at_once(
    drill: Drill, capsys: pytest.CaptureFixture[str]
) -> None:
    retire = getattr(drill.engine, "retire_signing_key", None)
    if retire is None:
        pytest.fail("the engine has no retire_signing_key")
    outcomes = []
    for _ in range(RETIREMENTS):
        tokens = drill.session()
        kid = kid_of(tokens.access_token.value)
        outcomes.append(drill.change(tokens, partial(retire, kid)))
        refreshed = drill.engine.refresh_session(tokens.refresh_token.value)
        assert kid_of(refreshed.access_token.value) != kid
        for kind, answers in drill.check_all(
            [tokens.access_token.value, refreshed.access_token.value]
        ).items():
            assert answers[0] == ["err", "TryRefreshTokenError"], (kind, answers)
            assert answers[1][0] == "ok", (kind, answers)
    show(capsys, "\n" + table("retire_signing_key", {backend_of(drill): outcomes}, "TryRefreshTokenError"))
    assert_all(outcomes, "TryRefreshTokenError")


def test_no_revocation_is_missed_while_the_listeners_are_cut(
    drill: Drill, capsys: pytest.CaptureFixture[str]
) -> None:
    backend = backend_of(drill)
    if backend == "sqlite":
        pytest.skip("not applicable: a SQLite listener reads the database file, it has no connection to cut")
    admin = POSTGRES_URL if backend == "postgres" else REDIS_URL
    outcomes: list[Outcome] = []
    revoked: list[str] = []
    with cutting(drill.url, admin, every=0.25) as cuts:
        while len(revoked) < CUT_REVOCATIONS or len(cuts) < MIN_CUTS:
            tokens = drill.session()
            revoked.append(tokens.access_token.value)
            outcomes.append(drill.change(tokens, partial(drill.engine.revoke_session, tokens.handle)))
            time.sleep(0.02)
    feed = (drill.by_kind("engine").counts() or {}).get("feed")
    show(
        capsys,
        "\n"
        + table(
            f"revoke_session, listeners cut every 0.25 s ({sum(cuts)} connections cut)",
            {backend: outcomes},
            "UnauthorizedError",
        ),
    )
    show(capsys, f"plain engine process's feed after the cuts: {feed}")
    assert sum(cuts) >= MIN_CUTS // 2, cuts
    assert_all(outcomes, "UnauthorizedError")
    # Once the listeners are back, the feed alone refuses every revoked token: no change
    # was lost across the reconnections (and no store call is made to answer).
    assert drill.wait_live()
    drill.reset_counts()
    for kind, answers in drill.check_all(revoked).items():
        assert all(answer == ["err", "UnauthorizedError"] for answer in answers), (kind, answers)
    calls = drill.store_calls()
    assert all(made == {} for made in calls.values()), calls
