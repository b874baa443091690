"""The refresh decision table, as a pure function of the stored row, the presented token
and the time (no I/O).

Cases (the row is the session's stored row, read before the clock):

====  ==============================================  ======================================
case  condition                                       outcome
====  ==============================================  ======================================
R0    no row, or another user's                       ``UnauthorizedError``
R1    row past its idle deadline or absolute lifetime ``UnauthorizedError``
R2    ``H(H(token)) == hash2``: the current token     its child, nothing written
R3    ``H(parent) == hash2``: first use of a child    compare-and-set hash2, then as R2
R4    the immediate predecessor, within the grace     the committed child again
      window of the commit
R5    anything else                                   theft: the session is revoked
====  ==============================================  ======================================

The grace window's age is ``now - rotated_at``. It may come out negative when the rotation
was stamped by a host whose clock runs ahead; up to ``clock_skew_leeway`` +
:data:`SKEW_ALLOWANCE` seconds of negative age count as zero age, never as theft.
"""

from __future__ import annotations

import hmac
from enum import Enum

from ..config import Config
from ..stores.base import SessionRow
from ..tokens.encoding import sha256_hex as hash_hex
from ..tokens.refresh import RefreshTokenContent

__all__ = ["SKEW_ALLOWANCE", "RefreshCase", "decide_refresh", "row_alive"]

#: Seconds of negative age (a rotation stamped by a host whose clock runs ahead, on top of
#: ``clock_skew_leeway``) that still count as zero age rather than theft.
SKEW_ALLOWANCE = 5


class RefreshCase(Enum):
    """The cases of the refresh decision table (see the module docstring)."""

    NO_SESSION = "R0"
    EXPIRED = "R1"
    CURRENT = "R2"
    FIRST_USE_OF_CHILD = "R3"
    PREDECESSOR_IN_GRACE = "R4"
    THEFT = "R5"


def decide_refresh(
    row: SessionRow | None,
    content: RefreshTokenContent,
    hash2: str,
    now_ms: int,
    config: Config,
) -> RefreshCase:
    """Classify a presented refresh token against the stored row (pure)."""
    if row is None or row.user_id != content.user_id:
        return RefreshCase.NO_SESSION
    if not row_alive(row, now_ms, config):
        return RefreshCase.EXPIRED
    if hmac.compare_digest(hash2, row.refresh_token_hash_2):
        return RefreshCase.CURRENT
    if content.parent_hash1 is not None and hmac.compare_digest(
        hash_hex(content.parent_hash1), row.refresh_token_hash_2
    ):
        return RefreshCase.FIRST_USE_OF_CHILD
    grace_ms = config.refresh_token_reuse_grace_period * 1000
    # A negative age means the rotation was stamped by a clock ahead of ours (another
    # host): up to the tolerance it counts as zero, never as theft.
    tolerance_ms = (config.clock_skew_leeway + SKEW_ALLOWANCE) * 1000
    if (
        grace_ms > 0
        and row.prev_refresh_token_hash_2 is not None
        and row.rotated_at is not None
        and hmac.compare_digest(hash2, row.prev_refresh_token_hash_2)
        and -tolerance_ms <= now_ms - row.rotated_at <= grace_ms
    ):
        return RefreshCase.PREDECESSOR_IN_GRACE
    return RefreshCase.THEFT


def row_alive(row: SessionRow, now_ms: int, config: Config) -> bool:
    """Whether the session is within its idle deadline and its absolute lifetime."""
    max_life = config.session_max_lifetime
    return now_ms <= row.expires_at and (max_life is None or now_ms <= row.created_at_time + max_life * 1000)
