"""The wire protocol, framework-neutral: reading tokens from a request, writing cookies and
headers, mapping errors to status codes and bodies.

Adapters hand this package plain strings (the raw ``Cookie`` header, a few request
headers, the method) and convert what it returns: the final header list of a response
(:func:`final_response_headers`) to their framework's header container. One module per
concern:

- :mod:`~sessionward.transport.protocol`: which protocol generation and mode a request
  speaks (2020, current cookie mode, current header mode);
- :mod:`~sessionward.transport.request`: the session cookies and protocol headers of a
  request, and the token each kind of route needs;
- :mod:`~sessionward.transport.response`: :class:`ResponseEffects` and the final header
  list of a response;
- :mod:`~sessionward.transport.client_address`: the client's IP address (through trusted
  proxies) and user agent;
- :mod:`~sessionward.transport.cors`: preflight headers and the exposed-headers list;
- :mod:`~sessionward.transport.error_responses`: the answer to a session error and its
  log line;
- :mod:`~sessionward.transport.headers`: the protocol header names;
- :mod:`~sessionward.transport.jwks`: the JWKS route's body and headers.

Every public name of those modules (and the cookie names of :mod:`sessionward.cookies`)
is importable from here.
"""

from ..cookies import ACCESS_TOKEN_COOKIE, ID_REFRESH_TOKEN_COOKIE, MAX_COOKIE_BYTES, REFRESH_TOKEN_COOKIE
from .client_address import (
    FORWARDED_FOR_HEADER,
    MAX_FORWARDED_HOPS,
    MAX_USER_AGENT_LENGTH,
    USER_AGENT_HEADER,
    TrustedProxies,
    client_ip,
    user_agent,
)
from .cors import PREFLIGHT_ALLOW_HEADERS, exposed_headers, merge_header_list, preflight_headers
from .error_responses import (
    REAUTHENTICATION_STATUS,
    RETRY_AFTER_SECONDS,
    ErrorResponse,
    bare_factory_error,
    error_response,
    log_error_answer,
)
from .headers import (
    ACCESS_TOKEN_HEADER,
    ANTI_CSRF_HEADER,
    AUTH_MODE_HEADER,
    AUTHORIZATION_HEADER,
    FRONT_TOKEN_HEADER,
    ID_REFRESH_TOKEN_HEADER,
    PROTOCOL_HEADERS,
    REFRESH_TOKEN_HEADER,
)
from .jwks import JWKS_CONTENT_TYPE, jwks_answer
from .protocol import (
    SIGN_OUT_BODY,
    Operation,
    WireMode,
    bearer_token,
    choose_mode,
    migrating,
    session_present,
    sign_out_path,
)
from .request import (
    DUPLICATE,
    SAFE_METHODS,
    RequestTokens,
    parse_session_cookies,
    path_matches,
    session_cookie_present,
    single_header,
    stale_cookies_on_refresh,
    tokens_for_refresh,
    tokens_for_verification,
)
from .response import ResponseEffects, final_response_headers, set_cookie_name

__all__ = [
    "ACCESS_TOKEN_COOKIE",
    "ACCESS_TOKEN_HEADER",
    "ANTI_CSRF_HEADER",
    "AUTHORIZATION_HEADER",
    "AUTH_MODE_HEADER",
    "DUPLICATE",
    "FORWARDED_FOR_HEADER",
    "FRONT_TOKEN_HEADER",
    "ID_REFRESH_TOKEN_COOKIE",
    "ID_REFRESH_TOKEN_HEADER",
    "JWKS_CONTENT_TYPE",
    "MAX_COOKIE_BYTES",
    "MAX_FORWARDED_HOPS",
    "MAX_USER_AGENT_LENGTH",
    "PREFLIGHT_ALLOW_HEADERS",
    "PROTOCOL_HEADERS",
    "REAUTHENTICATION_STATUS",
    "REFRESH_TOKEN_COOKIE",
    "REFRESH_TOKEN_HEADER",
    "RETRY_AFTER_SECONDS",
    "SAFE_METHODS",
    "SIGN_OUT_BODY",
    "USER_AGENT_HEADER",
    "ErrorResponse",
    "Operation",
    "RequestTokens",
    "ResponseEffects",
    "TrustedProxies",
    "WireMode",
    "bare_factory_error",
    "bearer_token",
    "choose_mode",
    "client_ip",
    "error_response",
    "exposed_headers",
    "final_response_headers",
    "jwks_answer",
    "log_error_answer",
    "merge_header_list",
    "migrating",
    "parse_session_cookies",
    "path_matches",
    "preflight_headers",
    "session_cookie_present",
    "session_present",
    "set_cookie_name",
    "sign_out_path",
    "single_header",
    "stale_cookies_on_refresh",
    "tokens_for_refresh",
    "tokens_for_verification",
    "user_agent",
]
