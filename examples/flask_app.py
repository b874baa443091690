"""A small Flask app using sessionward: login by name, a protected call, JWT payload update,
logout and logout everywhere.

Run it (from the repository root, with Flask installed: ``pip install sessionward[flask]``)::

    python examples/flask_app.py            # http://127.0.0.1:5000/
    # or: flask --app examples/flask_app run

and open http://127.0.0.1:5000/ in a browser. Sessions are kept in ``example-sessions.db``.

There is no password: this example shows what happens *after* authentication, which is
the application's job (a password check, OAuth, a magic link...).
"""

from __future__ import annotations

import atexit
from typing import Any

from flask import Flask, jsonify, make_response, request

from sessionward.flask import (
    create_new_session,
    current_session,
    get_all_session_handles_for_user,
    init,
    preflight,
    revoke_all_sessions_for_user,
    verify_session,
)

app = Flask(__name__)

sessionward = init(
    app,
    store="sqlite:///example-sessions.db",
    # Plain-http development only: browsers never send Secure cookies over http://, so the
    # cookies are not marked Secure here. Leave cookie_secure at its default (True) in
    # production, behind HTTPS.
    cookie_secure=False,
    # Short-lived access tokens make the automatic refresh visible while you click around.
    access_token_validity=30,
    on_token_theft_detected=lambda handle, user_id: app.logger.warning(
        "token theft detected: session %s of user %s revoked", handle, user_id
    ),
)
atexit.register(sessionward.close)


@app.post("/api/login")
def login() -> Any:
    name = str((request.get_json(silent=True) or {}).get("name", "")).strip()
    if not name or len(name) > 64:
        return {"message": "give a name of 1 to 64 characters"}, 400
    response = make_response(jsonify(ok=True))
    session = create_new_session(
        response, name, jwt_payload={"name": name, "role": "reader"}, session_data={"visits": 0}
    )
    app.logger.info("session %s created for %s", session.handle, name)
    return response


# Registered before GET /api/me, so that this view, not Flask's automatic OPTIONS, answers.
@app.route("/api/me", methods=["OPTIONS"])
def me_preflight() -> Any:
    # Only needed when a frontend on another origin calls this API (add your own
    # Access-Control-Allow-Origin for an exact allow-list of origins).
    return preflight(make_response("", 204))


@app.get("/api/me")
@verify_session()
def me() -> Any:
    data = current_session.get_session_data()
    data["visits"] = data.get("visits", 0) + 1
    current_session.update_session_data(data)
    return {
        "user_id": current_session.user_id,
        "payload": current_session.jwt_payload,
        "visits": data["visits"],
        "sessions": len(get_all_session_handles_for_user(current_session.user_id)),
    }


@app.post("/api/promote")
@verify_session()
def promote() -> Any:
    # The new payload is in the access token at once (new cookie + front-token header).
    current_session.update_jwt_payload({**current_session.jwt_payload, "role": "editor"})
    return {"payload": current_session.jwt_payload}


@app.post("/api/logout")
@verify_session()
def logout() -> Any:
    current_session.revoke_session()  # also clears the cookies on this response
    return {}


@app.post("/api/logout-everywhere")
@verify_session()
def logout_everywhere() -> Any:
    revoked = revoke_all_sessions_for_user(current_session.user_id)
    current_session.revoke_session()  # clear this browser's cookies too
    return {"revoked": len(revoked)}


PAGE = """<!doctype html>
<meta charset="utf-8">
<title>sessionward + Flask</title>
<style>
  body {font: 16px system-ui; margin: 2em; max-width: 40em}
  button {margin: .2em}
  pre {background: #eee; padding: 1em}
</style>
<h1>sessionward + Flask</h1>
<p><input id="name" placeholder="your name"> <button onclick="login()">Log in</button></p>
<p>
  <button onclick="call('GET', '/api/me')">Protected call</button>
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


@app.get("/")
def index() -> Any:
    return PAGE


if __name__ == "__main__":
    print("sessionward Flask example on http://127.0.0.1:5000/ (plain http: cookie_secure=False)")
    app.run(host="127.0.0.1", port=5000)
