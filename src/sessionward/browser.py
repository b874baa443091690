"""The browser client shipped with the package (``sessionward/static/sessionward.js``).

Every framework integration serves it at :data:`CLIENT_SCRIPT_PATH`, with the headers of
:data:`CLIENT_SCRIPT_HEADERS`, so a page can load it with::

    <script type="module">
      import * as sessionward from "/sessionward/sessionward.js";
      sessionward.init({ refreshPath: "/session/refresh" });
    </script>

Applications that serve static files themselves (a CDN, a bundler) can take the bytes
from :func:`client_script`. See ``docs/client.md``.
"""

from __future__ import annotations

import functools
from importlib import resources

__all__ = [
    "CLIENT_SCRIPT_CACHE_CONTROL",
    "CLIENT_SCRIPT_CONTENT_TYPE",
    "CLIENT_SCRIPT_HEADERS",
    "CLIENT_SCRIPT_PATH",
    "client_script",
]

CLIENT_SCRIPT_PATH = "/sessionward/sessionward.js"
"""The URL path at which the Flask, FastAPI/Starlette and Django integrations serve the
client (``GET`` and ``HEAD``)."""

CLIENT_SCRIPT_CONTENT_TYPE = "text/javascript; charset=utf-8"
"""``Content-Type`` of the client script."""

CLIENT_SCRIPT_CACHE_CONTROL = "public, max-age=3600"
"""``Cache-Control`` of the client script: browsers and proxies may keep it for an hour."""

CLIENT_SCRIPT_HEADERS: tuple[tuple[str, str], ...] = (
    ("Content-Type", CLIENT_SCRIPT_CONTENT_TYPE),
    ("Cache-Control", CLIENT_SCRIPT_CACHE_CONTROL),
    ("X-Content-Type-Options", "nosniff"),
    ("Access-Control-Allow-Origin", "*"),
)
"""Every header the integrations send with the client script. The script is public and is
fetched without credentials, so any origin may load it: a page can ``import()`` it from an
API on another origin (module scripts are fetched with CORS)."""


@functools.cache
def client_script() -> bytes:
    """The bytes of ``sessionward.js`` (read from the package once, then cached)."""
    return resources.files("sessionward").joinpath("static", "sessionward.js").read_bytes()
