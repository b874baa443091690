"""How long a published key set may be cached (docs/jwks.md): ``KeySchedule.jwks_max_age``
at interval boundaries, and the engine's promise behind it: a key set fetched at any moment
verifies every token signed before its max-age runs out."""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterator

import pytest
from support.clock import FakeClock

from sessionward import AsyncSessionWard, Config, SessionWard
from sessionward.engine.keyring import JWKS_MAX_AGE_CAP, KeySchedule

HOUR = 3600
DAY = 86_400


def schedule(interval: int = HOUR, dynamic: bool = True) -> KeySchedule:
    return KeySchedule("ES256", dynamic, interval, access_token_validity=900, leeway=0)


def boundary(interval: int, after: float = 1_700_000_000) -> float:
    """The first interval start after ``after``."""
    return (math.floor(after / interval) + 1) * interval


def kid_of(token: str) -> str:
    segment = token.split(".")[0]
    return str(json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))["kid"])


# -- the pure schedule -----------------------------------------------------------------------------


def test_the_cap_is_an_hour() -> None:
    assert JWKS_MAX_AGE_CAP == 3600


@pytest.mark.parametrize(
    ("offset", "expected"),
    [
        (0.0, HOUR),  # at the boundary: a whole interval until the next key
        (0.001, HOUR - 1),  # rounded down, never up
        (1.0, HOUR - 1),
        (HOUR / 2, HOUR / 2),
        (HOUR - 1.0, 1),
        (HOUR - 0.5, 0),
        (HOUR - 0.001, 0),
    ],
)
def test_hourly_keys_are_cached_until_the_next_interval_starts(offset: float, expected: int) -> None:
    clock = FakeClock(boundary(HOUR) + offset)
    assert schedule(HOUR).jwks_max_age(clock(), clock()) == expected


@pytest.mark.parametrize(
    ("offset", "expected"),
    [
        (0.0, JWKS_MAX_AGE_CAP),
        (DAY - HOUR - 1, JWKS_MAX_AGE_CAP),
        (DAY - HOUR, JWKS_MAX_AGE_CAP),
        (DAY - HOUR + 0.25, HOUR - 1),
        (DAY - 10.0, 10),
        (DAY - 0.25, 0),
    ],
)
def test_long_intervals_are_capped_and_then_count_down(offset: float, expected: int) -> None:
    clock = FakeClock(boundary(DAY) + offset)
    assert schedule(DAY).jwks_max_age(clock(), clock()) == expected


def test_a_read_that_crosses_a_boundary_may_not_be_cached() -> None:
    # Read just before the boundary, answered after it: the set lacks the key created at the
    # boundary, so it must not be cached at all (and never a negative max-age).
    read_at = boundary(HOUR) - 0.2
    assert schedule(HOUR).jwks_max_age(read_at, read_at + 0.5) == 0
    assert schedule(HOUR).jwks_max_age(read_at, read_at + 2 * HOUR) == 0


def test_time_spent_reading_is_taken_off() -> None:
    read_at = boundary(HOUR) + 100.0
    assert schedule(HOUR).jwks_max_age(read_at, read_at + 3.0) == HOUR - 103


def test_static_keys_get_the_cap() -> None:
    static = schedule(HOUR, dynamic=False)
    for offset in (0.0, 0.5, HOUR - 0.5, 10 * DAY):
        now = boundary(HOUR) + offset
        assert static.next_publication(now) == math.inf
        assert static.jwks_max_age(now, now) == JWKS_MAX_AGE_CAP


@pytest.mark.parametrize("interval", [HOUR, 2 * HOUR + 7, DAY, 30 * DAY])
def test_never_past_the_next_publication_never_negative(interval: int) -> None:
    clock = FakeClock(boundary(interval) - 3 * interval)
    sched = schedule(interval)
    step = interval / 97 + 0.37  # lands on many different offsets in the intervals
    for _ in range(400):
        max_age = sched.jwks_max_age(clock(), clock())
        assert 0 <= max_age <= JWKS_MAX_AGE_CAP
        assert clock() + max_age <= sched.next_publication(clock())
        clock.advance(step)


# -- the engine ------------------------------------------------------------------------------------


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(boundary(HOUR) + 1800.0)


@pytest.fixture
def engine(clock: FakeClock) -> Iterator[SessionWard]:
    config = Config(
        store="sqlite:///:memory:",
        access_token_algorithm="ES256",
        access_token_validity=900,
        access_token_signing_key_update_interval=HOUR,
    )
    with SessionWard(config, clock=clock) as ward:
        yield ward


def test_the_engine_answers_the_set_and_its_max_age(engine: SessionWard, clock: FakeClock) -> None:
    jwks, max_age = engine.jwks_with_max_age()
    assert max_age == 1800
    assert jwks == engine.jwks()
    # The signing key and the next one (published an interval ahead).
    assert len(jwks["keys"]) == 2
    assert all(key["kty"] == "EC" and "d" not in key for key in jwks["keys"])


@pytest.mark.parametrize("offset", [0.0, 1.0, 1799.5, 1800.0, 3599.5])
def test_a_cached_set_verifies_every_token_signed_before_it_expires(
    engine: SessionWard, clock: FakeClock, offset: float
) -> None:
    clock.now = boundary(HOUR) + offset
    jwks, max_age = engine.jwks_with_max_age()
    cached = {key["kid"] for key in jwks["keys"]}
    fetched_at = clock.now
    # Tokens signed any time until the copy expires, and beyond: up to the end of the next
    # interval (the margin that covers a verifier whose clock runs late).
    for moment in (fetched_at, fetched_at + max_age, boundary(HOUR, fetched_at) + HOUR - 0.5):
        clock.now = moment
        assert kid_of(engine.create_new_session("u").access_token.value) in cached, moment


def test_the_set_changes_only_when_the_max_age_runs_out(engine: SessionWard, clock: FakeClock) -> None:
    first, max_age = engine.jwks_with_max_age()
    clock.advance(max_age - 0.5)
    assert engine.jwks() == first  # still valid: nothing published meanwhile
    clock.advance(0.5)
    later = {key["kid"] for key in engine.jwks()["keys"]}
    assert later > {key["kid"] for key in first["keys"]}  # the next key appeared on time


def test_a_manual_rotation_is_not_foreseen(engine: SessionWard) -> None:
    jwks, _ = engine.jwks_with_max_age()
    kid = engine.rotate_signing_key()
    assert kid not in {key["kid"] for key in jwks["keys"]}  # verifiers must refetch on it
    assert kid in {key["kid"] for key in engine.jwks_with_max_age()[0]["keys"]}


def test_the_async_engine_answers_the_same(clock: FakeClock) -> None:
    import asyncio

    async def main() -> tuple[dict[str, object], int]:
        config = Config(store="sqlite:///:memory:", access_token_algorithm="EdDSA")
        async with AsyncSessionWard(config, clock=clock) as ward:
            return await ward.jwks_with_max_age()

    jwks, max_age = asyncio.run(main())
    assert max_age == min(JWKS_MAX_AGE_CAP, math.floor(boundary(DAY, clock.now) - clock.now))
    assert isinstance(jwks["keys"], list) and len(jwks["keys"]) == 2


def test_hs256_publishes_an_empty_set(clock: FakeClock) -> None:
    with SessionWard(Config(store="sqlite:///:memory:", access_token_algorithm="HS256"), clock=clock) as ward:
        assert ward.jwks_with_max_age()[0] == {"keys": []}
