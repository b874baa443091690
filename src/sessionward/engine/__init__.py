"""The session engine: sans-IO decisions (``core``) and the sync/async drivers."""

from .aio import AsyncSessionWard
from .sync import SessionWard
from .types import ClientInfo, KeyInfo, SessionInformation, SessionTokens, Token, VerifiedSession

__all__ = [
    "AsyncSessionWard",
    "ClientInfo",
    "KeyInfo",
    "SessionInformation",
    "SessionTokens",
    "SessionWard",
    "Token",
    "VerifiedSession",
]
