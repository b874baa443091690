"""Views of the sessionward Django example: login by name, protected calls (sync and
async), JWT payload update, logout and logout everywhere.

There is no password: this example shows what happens *after* authentication, which is the
application's job (a password check, OAuth, a magic link...).
"""

from __future__ import annotations

import json
import logging

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from sessionward.django import (
    create_new_session,
    get_all_session_handles_for_user,
    preflight,
    revoke_all_sessions_for_user,
    verify_session,
)

logger = logging.getLogger("demo")


def on_token_theft_detected(handle: str, user_id: str) -> None:
    """Named in settings.SESSIONWARD; called when a replayed refresh token ends a session."""
    logger.warning("token theft detected: session %s of user %s revoked", handle, user_id)


@require_POST
def login(request: HttpRequest) -> HttpResponse:
    try:
        name = str(json.loads(request.body or b"{}").get("name", "")).strip()
    except (ValueError, AttributeError):
        name = ""
    if not name or len(name) > 64:
        return JsonResponse({"message": "give a name of 1 to 64 characters"}, status=400)
    response = JsonResponse({"ok": True})
    # Django's create_new_session takes the response: return this one.
    session = create_new_session(
        response, name, jwt_payload={"name": name, "role": "reader"}, session_data={"visits": 0}
    )
    logger.info("session %s created for %s", session.handle, name)
    return response


@verify_session()
def _me(request: HttpRequest) -> HttpResponse:
    session = request.sessionward
    data = session.get_session_data()
    data["visits"] = data.get("visits", 0) + 1
    session.update_session_data(data)
    return JsonResponse(
        {
            "user_id": session.user_id,
            "payload": session.jwt_payload,
            "visits": data["visits"],
            "sessions": len(get_all_session_handles_for_user(session.user_id)),
        }
    )


@require_http_methods(["GET", "OPTIONS"])
def me(request: HttpRequest) -> HttpResponse:
    if request.method == "OPTIONS":
        # Only needed when a frontend on another origin calls this API (add your own
        # Access-Control-Allow-Origin for an exact allow-list of origins).
        return preflight(HttpResponse(status=204))
    return _me(request)


@require_GET
@verify_session()
async def whoami(request: HttpRequest) -> HttpResponse:
    # An async view: the decorator verifies in a worker thread. Attributes need no I/O;
    # the session's I/O methods are blocking, so call them through sync_to_async.
    session = request.sessionward
    data = await sync_to_async(session.get_session_data)()
    return JsonResponse({"user_id": session.user_id, "payload": session.jwt_payload, "data": data})


@require_POST
@verify_session()
def promote(request: HttpRequest) -> HttpResponse:
    session = request.sessionward
    # The new payload is in the access token at once (new cookie + front-token header).
    session.update_jwt_payload({**session.jwt_payload, "role": "editor"})
    return JsonResponse({"payload": session.jwt_payload})


@require_POST
@verify_session()
def logout(request: HttpRequest) -> HttpResponse:
    request.sessionward.revoke_session()  # also clears the cookies on this response
    return JsonResponse({})


@require_POST
@verify_session()
def logout_everywhere(request: HttpRequest) -> HttpResponse:
    session = request.sessionward
    revoked = revoke_all_sessions_for_user(session.user_id)
    session.revoke_session()  # clear this browser's cookies too
    return JsonResponse({"revoked": len(revoked)})


PAGE = """<!doctype html>
<meta charset="utf-8">
<title>sessionward + Django</title>
<style>
  body {font: 16px system-ui; margin: 2em; max-width: 40em}
  button {margin: .2em}
  pre {background: #eee; padding: 1em}
</style>
<h1>sessionward + Django</h1>
<p><input id="name" placeholder="your name"> <button onclick="login()">Log in</button></p>
<p>
  <button onclick="call('GET', '/api/me')">Protected call</button>
  <button onclick="call('GET', '/api/whoami')">Async view</button>
  <button onclick="call('POST', '/api/promote')">Update JWT payload</button>
  <button onclick="call('POST', '/api/logout')">Log out</button>
  <button onclick="call('POST', '/api/logout-everywhere')">Log out everywhere</button>
</p>
<pre id="out">Log in, then make protected calls. The access token lives 30 s: after that the page
refreshes the session (POST /session/refresh) and retries, once.</pre>
<script>
const out = document.getElementById("out");
let antiCsrf = null;
function show(text) { out.textContent = text; }
async function send(method, path, body) {
  const headers = {"content-type": "application/json"};
  if (antiCsrf) headers["anti-csrf"] = antiCsrf;
  const response = await fetch(path, {method, headers, credentials: "include",
                                      body: body === undefined ? undefined : JSON.stringify(body)});
  if (response.headers.get("anti-csrf")) antiCsrf = response.headers.get("anti-csrf");
  return response;
}
async function call(method, path, body) {
  let response = await send(method, path, body);
  let log = "";
  if (response.status === 401) {
    const refresh = await send("POST", "/session/refresh");
    log += "401 -> refresh: " + refresh.status + "\\n";
    if (refresh.status === 200) response = await send(method, path, body);
  }
  const front = response.headers.get("front-token");
  if (front) log += "front-token: " + atob(front) + "\\n";
  show(log + method + " " + path + " -> " + response.status + "\\n" + await response.text());
}
function login() { call("POST", "/api/login", {name: document.getElementById("name").value}); }
</script>
"""


@require_GET
def index(request: HttpRequest) -> HttpResponse:
    return HttpResponse(PAGE)
