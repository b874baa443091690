"""sessionward: secure, fast session management for Python web backends."""

from .config import Config
from .engine import (
    AsyncSessionWard,
    ChangeFeedState,
    ClientInfo,
    SessionInformation,
    SessionTokens,
    SessionWard,
    Token,
    VerifiedSession,
)
from .errors import (
    ConfigError,
    GeneralError,
    PayloadTooLargeError,
    ReauthenticationRequiredError,
    SessionWardError,
    StorageUnavailableError,
    TokenTheftDetectedError,
    TryRefreshTokenError,
    UnauthorizedError,
)

__version__ = "0.1.0"

__all__ = [
    "AsyncSessionWard",
    "ChangeFeedState",
    "ClientInfo",
    "Config",
    "ConfigError",
    "GeneralError",
    "PayloadTooLargeError",
    "ReauthenticationRequiredError",
    "SessionInformation",
    "SessionTokens",
    "SessionWard",
    "SessionWardError",
    "StorageUnavailableError",
    "Token",
    "TokenTheftDetectedError",
    "TryRefreshTokenError",
    "UnauthorizedError",
    "VerifiedSession",
]
