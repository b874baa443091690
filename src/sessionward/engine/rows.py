"""Reading a session's row, and promoting it: the one place where a row the store cannot
decode becomes the end of that session (``UnauthorizedError`` and a log line) rather than a
failure of every request that touches it."""

from __future__ import annotations

import logging

from ..errors import UnauthorizedError
from ..stores.base import CorruptSessionRowError, Promoted, Promotion, SessionRow, Store
from .flow import Flow, call

__all__ = ["promote_row", "read_row"]

logger = logging.getLogger("sessionward.engine")


def read_row(handle: str) -> Flow[SessionRow | None]:
    """The session's row, ``None`` when there is none; ``UnauthorizedError`` when it is corrupt."""
    try:
        row = yield from call(Store.get_session, handle)
    except CorruptSessionRowError as exc:
        logger.error("session %s is unusable: %s", handle, exc)
        raise UnauthorizedError("the session's stored row is corrupt") from None
    return row


def promote_row(promotion: Promotion) -> Flow[Promoted]:
    """The store's compare-and-set of ``promotion``, with the row it answers; a corrupt row
    is ``UnauthorizedError`` as in :func:`read_row`."""
    try:
        return (yield from call(Store.promote_returning, promotion))
    except CorruptSessionRowError as exc:
        logger.error("session %s is unusable: %s", promotion.handle, exc)
        raise UnauthorizedError("the session's stored row is corrupt") from None
