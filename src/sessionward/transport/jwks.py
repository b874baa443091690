"""The JWKS route's answer: the public key set as JSON with the headers every adapter sends.

The route (``GET`` at ``config.jwks_api_path``) needs no session and touches no cookie;
see ``docs/jwks.md``.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["JWKS_CONTENT_TYPE", "jwks_answer"]

JWKS_CONTENT_TYPE = "application/json"
"""``Content-Type`` of the key set."""


def jwks_answer(jwks: dict[str, Any], max_age: int) -> tuple[bytes, tuple[tuple[str, str], ...]]:
    """The body and headers of a ``200`` answering ``jwks`` (from
    :meth:`~sessionward.SessionWard.jwks_with_max_age`), cacheable for ``max_age`` seconds.

    The key set is public and fetched without credentials, so any origin may read it.
    """
    body = json.dumps(jwks, separators=(",", ":")).encode()
    headers = (
        ("Content-Type", JWKS_CONTENT_TYPE),
        ("Cache-Control", f"public, max-age={max(0, int(max_age))}"),
        ("X-Content-Type-Options", "nosniff"),
        ("Access-Control-Allow-Origin", "*"),
    )
    return body, headers
