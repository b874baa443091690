"""The session engine: sans-IO decisions (``core``) and the sync/async drivers."""

from .aio import AsyncSessionWard
from .sync import SessionWard
from .types import (
    ChangeFeedState,
    ClientInfo,
    KeyInfo,
    SessionInformation,
    SessionTokens,
    Token,
    VerifiedSession,
)

__all__ = [
    "AsyncSessionWard",
    "ChangeFeedState",
    "ClientInfo",
    "KeyInfo",
    "SessionInformation",
    "SessionTokens",
    "SessionWard",
    "Token",
    "VerifiedSession",
]
