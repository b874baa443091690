"""A stateful property test of the session engine (docs/design/decision-tables.md).

The machine keeps an exact model of every stored row (current and previous committed
refresh token, commit time, idle deadline) and of every token ever handed out, predicts
the outcome of each call from the decision tables, and checks the engine against it.

On top of the exact prediction it asserts the guarantees of docs/design/security.md ("Promises") directly:

- an honest client — it keeps the last response it received, and its requests reach the
  server within the grace window of being sent — is never flagged as a thief;
- a superseded refresh token replayed outside the grace window is always theft;
- a revoked session never comes back: no later call succeeds (with blacklisting), and
  without blacklisting only access tokens issued before the revocation verify, until
  they expire.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from support.clock import FakeClock
from support.tokens import claims, h

from sessionward import (
    Config,
    SessionTokens,
    SessionWard,
    TokenTheftDetectedError,
    TryRefreshTokenError,
    UnauthorizedError,
    VerifiedSession,
)

VALIDITY = 60
IDLE = 200
GRACE = 10
GRACE_MS = GRACE * 1000
USERS = ("alice", "bob")
# Smaller and larger than the grace window, than access-token validity, than the idle
# timeout, and than a signing-key interval (3600 s).
SMALL_JUMPS = (0.5, 1, 3, 9, 10, 10.5, 11, 30)
LARGE_JUMPS = (59, 60, 61, 120, IDLE - 1, IDLE + 1, 700, 4000)
PAYLOADS: tuple[dict[str, Any], ...] = ({}, {"role": "user"}, {"role": "admin", "n": [1, 2]}, {"é": "ü"})


@dataclass
class Client:
    """What an honest client holds: the tokens of the last response it received."""

    refresh: str
    access: str
    csrf: str | None


@dataclass(eq=False)
class SessionModel:
    number: int
    handle: str
    user_id: str
    created_ms: int
    expires_ms: int
    current: str
    payload: dict[str, Any]
    client: Client
    prev: str | None = None
    rotated_ms: int | None = None
    exists: bool = True
    revoked: bool = False
    # Someone other than the honest client advanced the session (committed a token): from
    # then on the client's tokens may be superseded behind its back, as after a real theft.
    compromised: bool = False
    committed: list[str] = field(default_factory=list)
    refresh_tokens: list[str] = field(default_factory=list)
    access_tokens: list[str] = field(default_factory=list)

    def __repr__(self) -> str:
        return f"S{self.number}"


@dataclass(frozen=True)
class AccessInfo:
    session: SessionModel
    refresh: str  # the refresh token it belongs to (refreshTokenHash1)
    parent: str | None  # parentRefreshTokenHash1's token, if any
    exp: int
    payload: dict[str, Any]
    issued_while_revoked: bool


class SessionMachine(RuleBasedStateMachine):
    BLACKLISTING = True
    ANTI_CSRF = True
    MAX_LIFETIME: int | None = None

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.config = Config(
            store="sqlite:///:memory:",
            access_token_algorithm="HS256",
            access_token_validity=VALIDITY,
            refresh_token_validity=IDLE,
            refresh_token_reuse_grace_period=GRACE,
            access_token_blacklisting=self.BLACKLISTING,
            enable_anti_csrf=self.ANTI_CSRF,
            session_max_lifetime=self.MAX_LIFETIME,
            access_token_signing_key_update_interval=3600,
            cookie_secure=False,
            # The model is the decision tables without the change feed (its checks are
            # tested in test_change_feed_engine.py).
            change_feed=False,
        )
        self.engine = SessionWard(self.config, clock=self.clock)
        self.sessions: list[SessionModel] = []
        self.parent_of: dict[str, str | None] = {}
        self.child_of: dict[str, str] = {}
        self.csrf_of: dict[str, str | None] = {}
        self.access: dict[str, AccessInfo] = {}

    def teardown(self) -> None:
        self.engine.close()

    # -- the model -----------------------------------------------------------------------

    @property
    def now_ms(self) -> int:
        return int(self.clock.now * 1000)

    def alive(self, m: SessionModel) -> bool:
        now_ms = self.now_ms
        return (
            m.exists
            and now_ms <= m.expires_ms
            and (self.MAX_LIFETIME is None or now_ms <= m.created_ms + self.MAX_LIFETIME * 1000)
        )

    def deadline(self, m: SessionModel) -> int:
        deadline = self.now_ms + IDLE * 1000
        if self.MAX_LIFETIME is not None:
            deadline = min(deadline, m.created_ms + self.MAX_LIFETIME * 1000)
        return deadline

    def commit(self, m: SessionModel, token: str) -> None:
        m.prev = m.current
        m.current = token
        m.rotated_ms = self.now_ms
        m.expires_ms = self.deadline(m)
        m.committed.append(token)

    def predict_refresh(self, m: SessionModel, token: str) -> str:
        if not self.alive(m):
            return "R0/R1"
        if token == m.current:
            return "R2"
        if self.parent_of.get(token) is not None and self.parent_of[token] == m.current:
            return "R3"
        if token == m.prev and m.rotated_ms is not None and 0 <= self.now_ms - m.rotated_ms <= GRACE_MS:
            return "R4"
        return "R5"

    def record_access(
        self, m: SessionModel, value: str, refresh: str, parent: str | None, exp: int, payload: dict[str, Any]
    ) -> None:
        assert value not in self.access or self.access[value].refresh == refresh
        self.access[value] = AccessInfo(m, refresh, parent, exp, dict(payload), m.revoked)
        m.access_tokens.append(value)

    def check_issued(self, m: SessionModel, tokens: SessionTokens, refresh: str, parent: str | None) -> None:
        """Check a create/refresh response against the model and record its tokens."""
        now = self.clock.now
        assert not m.revoked, "a revoked session produced tokens"
        assert tokens.handle == m.handle
        assert tokens.user_id == m.user_id
        assert tokens.jwt_payload == m.payload
        assert tokens.refresh_token.value == refresh
        expected_refresh_expiry = self.now_ms + IDLE * 1000
        if self.MAX_LIFETIME is not None:
            expected_refresh_expiry = min(expected_refresh_expiry, m.created_ms + self.MAX_LIFETIME * 1000)
        if parent is None and m.rotated_ms is not None:
            # R4 hands back an already committed token: its cookie ends with the row.
            expected_refresh_expiry = m.expires_ms
        assert tokens.refresh_token.expires_at == expected_refresh_expiry
        access = claims(tokens.access_token.value)
        exp = int(now) + VALIDITY
        assert access["exp"] == exp
        assert tokens.access_token.expires_at == exp * 1000
        assert access["sub"] == m.user_id
        assert access["sessionHandle"] == m.handle
        assert access["refreshTokenHash1"] == h(refresh)
        assert access.get("parentRefreshTokenHash1") == (None if parent is None else h(parent))
        assert access["userData"] == m.payload
        if self.ANTI_CSRF:
            assert tokens.anti_csrf_token is not None
            # One anti-CSRF token per refresh token, whichever response carries it.
            assert self.csrf_of.setdefault(refresh, tokens.anti_csrf_token) == tokens.anti_csrf_token
            assert access["antiCsrfToken"] == tokens.anti_csrf_token
        else:
            assert tokens.anti_csrf_token is None
            assert "antiCsrfToken" not in access
            self.csrf_of[refresh] = None
        front = json.loads(base64.b64decode(tokens.front_token))
        assert front == {"uid": m.user_id, "ate": exp * 1000, "up": m.payload}
        if refresh not in m.refresh_tokens:
            m.refresh_tokens.append(refresh)
        self.record_access(m, tokens.access_token.value, refresh, parent, exp, m.payload)

    # -- checked operations --------------------------------------------------------------

    def do_refresh(self, m: SessionModel, token: str, honest: bool) -> SessionTokens | None:
        case = self.predict_refresh(m, token)
        event(f"refresh {case} ({'client' if honest else 'replay'})")
        if honest and not m.compromised:
            assert case != "R5", "the model's honest client would be flagged as a thief"
        superseded = token in m.committed[:-1]
        in_window = token == m.prev and m.rotated_ms is not None and self.now_ms - m.rotated_ms <= GRACE_MS
        if self.alive(m) and superseded and not in_window:
            assert case == "R5"
        try:
            tokens = self.engine.refresh_session(token)
        except UnauthorizedError:
            assert case == "R0/R1", f"UnauthorizedError, expected {case}"
            return None
        except TokenTheftDetectedError as theft:
            assert not honest or m.compromised, "an honest client was flagged as a thief"
            assert case == "R5", f"TokenTheftDetectedError, expected {case}"
            assert theft.session_handle == m.handle
            assert theft.user_id == m.user_id
            m.exists = False
            m.revoked = True
            return None
        assert case in ("R2", "R3", "R4"), f"refresh succeeded, expected {case}"
        if case == "R4":
            # The immediate predecessor inside the window gets the committed token back.
            assert self.parent_of[m.current] == token
            self.check_issued(m, tokens, m.current, None)
            return tokens
        if case == "R3":
            self.commit(m, token)
            m.compromised |= not honest
        child = tokens.refresh_token.value
        assert self.child_of.setdefault(token, child) == child, "two successors for one token"
        assert child not in self.parent_of or self.parent_of[child] == token
        self.parent_of[child] = token
        self.check_issued(m, tokens, child, token)
        return tokens

    def do_verify(self, access: str, csrf_ok: bool = True, honest: bool = False) -> VerifiedSession | None:
        info = self.access[access]
        m = info.session
        now = self.clock.now
        csrf = self.csrf_of[info.refresh]
        presented = csrf if csrf_ok else (csrf or "") + "x"
        if now >= info.exp or (self.ANTI_CSRF and not csrf_ok):
            case = "token"
        elif info.parent is None:
            case = "V-cached" if not self.BLACKLISTING or self.alive(m) else "V4"
        elif not self.alive(m):
            case = "V4"
        elif m.current == info.parent:
            case = "V1"
        elif m.current == info.refresh:
            case = "V2"
        else:
            case = "V3"
        event(f"verify {case}")
        try:
            verified = self.engine.get_session(access, presented, do_anti_csrf_check=True)
        except TryRefreshTokenError:
            assert case == "token", f"TryRefreshTokenError, expected {case}"
            return None
        except UnauthorizedError:
            assert case == "V4", f"UnauthorizedError, expected {case}"
            return None
        assert case in ("V-cached", "V1", "V2", "V3"), f"verification succeeded, expected {case}"
        if m.revoked:
            assert not self.BLACKLISTING, "a revoked session verified with blacklisting on"
            assert info.parent is None and not info.issued_while_revoked
        assert verified.handle == m.handle
        assert verified.user_id == m.user_id
        if case in ("V-cached", "V3"):
            assert verified.new_access_token is None
            assert verified.front_token is None
            assert verified.jwt_payload == info.payload
            return verified
        if case == "V1":
            self.commit(m, info.refresh)
            m.compromised |= not honest
        replacement = verified.new_access_token
        assert replacement is not None
        assert verified.jwt_payload == m.payload
        new = claims(replacement.value)
        exp = int(now) + VALIDITY
        assert new["exp"] == exp
        assert replacement.expires_at == exp * 1000
        assert "parentRefreshTokenHash1" not in new
        assert new["refreshTokenHash1"] == h(info.refresh)
        assert new["userData"] == m.payload
        assert new.get("antiCsrfToken") == csrf
        assert verified.front_token is not None
        front = json.loads(base64.b64decode(verified.front_token))
        assert front == {"uid": m.user_id, "ate": exp * 1000, "up": m.payload}
        self.record_access(m, replacement.value, info.refresh, None, exp, m.payload)
        return verified

    def client_refresh(self, m: SessionModel) -> SessionTokens | None:
        tokens = self.do_refresh(m, m.client.refresh, honest=True)
        if tokens is not None:
            m.client = Client(tokens.refresh_token.value, tokens.access_token.value, tokens.anti_csrf_token)
        return tokens

    def client_verify(self, m: SessionModel) -> None:
        verified = self.do_verify(m.client.access, honest=True)
        if verified is not None and verified.new_access_token is not None:
            m.client.access = verified.new_access_token.value

    # -- rules ---------------------------------------------------------------------------

    @initialize(payload=st.sampled_from(PAYLOADS))
    def first_session(self, payload: dict[str, Any]) -> None:
        self.create(USERS[0], payload)

    @precondition(lambda self: len(self.sessions) < 4)
    @rule(user=st.sampled_from(USERS), payload=st.sampled_from(PAYLOADS))
    def create(self, user: str, payload: dict[str, Any]) -> None:
        tokens = self.engine.create_new_session(user, payload, {"n": len(self.sessions)})
        refresh = tokens.refresh_token.value
        m = SessionModel(
            number=len(self.sessions),
            handle=tokens.handle,
            user_id=user,
            created_ms=self.now_ms,
            expires_ms=0,
            current=refresh,
            payload=dict(payload),
            client=Client(refresh, tokens.access_token.value, tokens.anti_csrf_token),
            committed=[refresh],
        )
        m.expires_ms = self.deadline(m)
        assert all(s.handle != m.handle for s in self.sessions)
        self.parent_of[refresh] = None
        self.check_issued(m, tokens, refresh, None)
        self.sessions.append(m)

    @precondition(lambda self: self.sessions)
    @rule(data=st.data())
    def honest_verify(self, data: st.DataObject) -> None:
        self.client_verify(data.draw(st.sampled_from(self.sessions)))

    @precondition(lambda self: self.sessions)
    @rule(data=st.data())
    def honest_refresh(self, data: st.DataObject) -> None:
        self.client_refresh(data.draw(st.sampled_from(self.sessions)))

    @precondition(lambda self: self.sessions)
    @rule(data=st.data())
    def refresh_then_first_use_of_child(self, data: st.DataObject) -> None:
        m = data.draw(st.sampled_from(self.sessions))
        if self.client_refresh(m) is not None:
            self.client_verify(m)

    @precondition(lambda self: self.sessions)
    @rule(data=st.data(), verify=st.booleans())
    def lost_response(self, data: st.DataObject, verify: bool) -> None:
        """The server processed the request; the response never reached the client."""
        m = data.draw(st.sampled_from(self.sessions))
        if verify:
            self.do_verify(m.client.access, honest=True)
        else:
            self.do_refresh(m, m.client.refresh, honest=True)

    @precondition(lambda self: self.sessions)
    @rule(data=st.data(), count=st.integers(2, 5))
    def concurrent_refreshes(self, data: st.DataObject, count: int) -> None:
        """``count`` refreshes sent at once with the client's token, processed in any order
        within the grace window, their responses received in any order (some lost), while
        the client keeps using whatever access token it last received."""
        m = data.draw(st.sampled_from(self.sessions))
        token = m.client.refresh
        sent_at = self.clock.now
        unprocessed = list(range(count))
        in_flight: dict[int, SessionTokens | None] = {}
        steps = 0
        while unprocessed or in_flight:
            steps += 1
            actions = []
            if unprocessed:
                actions.append("process")
            if in_flight:
                actions.append("receive")
            if steps < 4 * count:
                actions += ["use", "tick"]
            action = data.draw(st.sampled_from(actions))
            if action == "process":
                request = data.draw(st.sampled_from(unprocessed))
                unprocessed.remove(request)
                in_flight[request] = self.do_refresh(m, token, honest=True)
            elif action == "receive":
                request = data.draw(st.sampled_from(sorted(in_flight)))
                tokens = in_flight.pop(request)
                lost = data.draw(st.booleans())
                if tokens is not None and not lost:
                    m.client = Client(
                        tokens.refresh_token.value, tokens.access_token.value, tokens.anti_csrf_token
                    )
            elif action == "use":
                self.client_verify(m)
            else:
                step = data.draw(st.sampled_from((0.5, 1, 2, 4)))
                if self.clock.now + step - sent_at <= GRACE:
                    self.clock.now += step

    @precondition(lambda self: any(self.parent_of.get(m.client.refresh) for m in self.sessions))
    @rule(data=st.data())
    def replay_parent(self, data: st.DataObject) -> None:
        m = data.draw(st.sampled_from([m for m in self.sessions if self.parent_of.get(m.client.refresh)]))
        parent = self.parent_of[m.client.refresh]
        assert parent is not None
        self.do_refresh(m, parent, honest=False)

    @precondition(
        lambda self: any(
            self.parent_of.get(self.parent_of.get(m.client.refresh) or "") for m in self.sessions
        )
    )
    @rule(data=st.data())
    def replay_grandparent(self, data: st.DataObject) -> None:
        candidates = [
            m for m in self.sessions if self.parent_of.get(self.parent_of.get(m.client.refresh) or "")
        ]
        m = data.draw(st.sampled_from(candidates))
        grandparent = self.parent_of[self.parent_of[m.client.refresh] or ""]
        assert grandparent is not None
        self.do_refresh(m, grandparent, honest=False)

    @precondition(lambda self: self.sessions)
    @rule(data=st.data())
    def replay_any_refresh_token(self, data: st.DataObject) -> None:
        m = data.draw(st.sampled_from(self.sessions))
        self.do_refresh(m, data.draw(st.sampled_from(m.refresh_tokens)), honest=False)

    @precondition(lambda self: self.sessions)
    @rule(data=st.data(), csrf_ok=st.booleans(), recent=st.booleans())
    def verify_any_access_token(self, data: st.DataObject, csrf_ok: bool, recent: bool) -> None:
        """Another tab, or an attacker, presents any access token ever issued."""
        m = data.draw(st.sampled_from(self.sessions))
        pool = m.access_tokens[-4:] if recent else m.access_tokens
        self.do_verify(data.draw(st.sampled_from(pool)), csrf_ok)

    @precondition(lambda self: any(self.access[a].parent for m in self.sessions for a in m.access_tokens))
    @rule(data=st.data())
    def verify_stale_child_access_token(self, data: st.DataObject) -> None:
        """A first-use access token (with a parent claim) presented again, maybe late."""
        pool = [a for m in self.sessions for a in m.access_tokens if self.access[a].parent]
        self.do_verify(data.draw(st.sampled_from(pool[-6:])))

    @precondition(lambda self: self.sessions)
    @rule(data=st.data())
    def revoke(self, data: st.DataObject) -> None:
        m = data.draw(st.sampled_from(self.sessions))
        assert self.engine.revoke_session(m.handle) is m.exists
        m.exists = False
        m.revoked = True

    @rule(user=st.sampled_from(USERS))
    def revoke_all_for_user(self, user: str) -> None:
        expected = {m.handle for m in self.sessions if m.user_id == user and m.exists}
        assert set(self.engine.revoke_all_sessions_for_user(user)) == expected
        for m in self.sessions:
            if m.user_id == user:
                m.exists = False
                m.revoked = True

    @rule(user=st.sampled_from(USERS))
    def list_handles(self, user: str) -> None:
        live = [m for m in self.sessions if m.user_id == user and self.alive(m)]
        live.sort(key=lambda m: (m.created_ms, m.handle))
        assert self.engine.get_all_session_handles_for_user(user) == [m.handle for m in live]

    @precondition(lambda self: self.sessions)
    @rule(data=st.data())
    def information(self, data: st.DataObject) -> None:
        m = data.draw(st.sampled_from(self.sessions))
        if not self.alive(m):
            with pytest.raises(UnauthorizedError):
                self.engine.get_session_information(m.handle)
            return
        info = self.engine.get_session_information(m.handle)
        assert (info.handle, info.user_id, info.jwt_payload) == (m.handle, m.user_id, m.payload)
        assert (info.created_at, info.expires_at) == (m.created_ms, m.expires_ms)

    @precondition(lambda self: self.sessions)
    @rule(data=st.data(), payload=st.sampled_from(PAYLOADS))
    def update_payload(self, data: st.DataObject, payload: dict[str, Any]) -> None:
        m = data.draw(st.sampled_from(self.sessions))
        if not self.alive(m):
            with pytest.raises(UnauthorizedError):
                self.engine.update_jwt_payload(m.handle, payload)
            return
        self.engine.update_jwt_payload(m.handle, payload)
        m.payload = dict(payload)

    @rule()
    def sweep(self) -> None:
        now_ms = self.now_ms
        expired = [m for m in self.sessions if m.exists and m.expires_ms < now_ms]
        assert self.engine.delete_expired_sessions() == len(expired)
        for m in expired:
            m.exists = False
            m.revoked = True

    @rule(seconds=st.sampled_from(SMALL_JUMPS))
    def small_time_jump(self, seconds: float) -> None:
        self.clock.now += seconds

    @rule(seconds=st.sampled_from(LARGE_JUMPS))
    def large_time_jump(self, seconds: float) -> None:
        self.clock.now += seconds

    # -- invariants ----------------------------------------------------------------------

    @invariant()
    def revoked_sessions_never_come_back(self) -> None:
        for m in self.sessions:
            if m.revoked:
                with pytest.raises(UnauthorizedError):
                    self.engine.refresh_session(m.client.refresh)
                if self.BLACKLISTING:
                    with pytest.raises((UnauthorizedError, TryRefreshTokenError)):
                        self.engine.get_session(m.client.access, m.client.csrf, True)


MACHINE_SETTINGS = settings(
    max_examples=200,
    stateful_step_count=35,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


class BlacklistingCsrfMachine(SessionMachine):
    """Blacklisting and anti-CSRF on: a revoked session never verifies again."""


class PlainMaxLifetimeMachine(SessionMachine):
    """Defaults for blacklisting and anti-CSRF, plus an absolute session lifetime."""

    BLACKLISTING = False
    ANTI_CSRF = False
    MAX_LIFETIME = 700


TestBlacklistingCsrfMachine = BlacklistingCsrfMachine.TestCase
TestBlacklistingCsrfMachine.settings = MACHINE_SETTINGS
TestPlainMaxLifetimeMachine = PlainMaxLifetimeMachine.TestCase
TestPlainMaxLifetimeMachine.settings = MACHINE_SETTINGS
