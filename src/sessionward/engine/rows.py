"""Reading a session's row: the one place where a row the store cannot decode becomes the
end of that session (``UnauthorizedError`` and a log line) rather than a failure of every
request that touches it."""

from __future__ import annotations

import logging

from ..errors import UnauthorizedError
from ..stores.base import CorruptSessionRowError, SessionRow, Store
from .flow import Flow, call

__all__ = ["read_row"]

logger = logging.getLogger("sessionward.engine")


def read_row(handle: str) -> Flow[SessionRow | None]:
    """The session's row, ``None`` when there is none; ``UnauthorizedError`` when it is corrupt."""
    try:
        row = yield from call(Store.get_session, handle)
    except CorruptSessionRowError as exc:
        logger.error("session %s is unusable: %s", handle, exc)
        raise UnauthorizedError("the session's stored row is corrupt") from None
    return row
