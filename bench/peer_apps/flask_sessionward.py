"""Flask + sessionward: /protected (verify_session), /login (create), the refresh route."""

from __future__ import annotations

from typing import Any

import _env
import _sessionward_env
from flask import Flask, jsonify, make_response

from sessionward.flask import create_new_session, current_session, init, verify_session

flask_app = Flask(__name__)
init(flask_app, _sessionward_env.config())


@flask_app.get("/protected")
@verify_session()
def protected() -> Any:
    return jsonify(ok=True, user=current_session.user_id)


@flask_app.post("/login")
def login() -> Any:
    response = make_response(jsonify(ok=True))
    create_new_session(response, _env.USER_ID)
    return response


app = _sessionward_env.wsgi_echo(flask_app.wsgi_app)
