"""An HTTP client for sessionward's header mode: :class:`SessionAuth`, an ``httpx.Auth``
that signs in, sends ``Authorization: Bearer``, refreshes once on expiry and retries, and
can keep the session in a private token file between runs (command-line tools,
service-to-service calls, tests).

Needs ``httpx`` (``pip install 'sessionward[client]'``); the rest of sessionward does not.
Modules: :mod:`~sessionward.client.auth` (the ``httpx.Auth``),
:mod:`~sessionward.client.flow` (its request flow, shared by sync and async clients),
:mod:`~sessionward.client.state` (the tokens and their generation),
:mod:`~sessionward.client.storage` (the token file), :mod:`~sessionward.client.tokens`
(the wire headers), :mod:`~sessionward.client.errors`.
"""

try:
    import anyio  # noqa: F401
    import httpx  # noqa: F401
except ImportError as missing:  # pragma: no cover - exercised in a subprocess
    raise ImportError(
        f"sessionward.client needs httpx and anyio ({missing.name} is missing): "
        "pip install 'sessionward[client]'"
    ) from missing

from .auth import SessionAuth
from .errors import RefreshError, SessionExpiredError, SignInError, TokenFileError

__all__ = ["RefreshError", "SessionAuth", "SessionExpiredError", "SignInError", "TokenFileError"]
