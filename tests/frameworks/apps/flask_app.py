"""The Flask app the shared protocol suite drives (routes fixed by the adapter contract).

``app.config["SESSIONWARD_THEFTS"]`` records ``(handle, user_id)`` for every token theft
the ``on_token_theft_detected`` hook saw. Close the engine when done:
``app.extensions["sessionward"].close()``.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Flask, current_app, request

from frameworks.apps.metadata import MAX_AUTH_AGE, describe_sessions, login_options
from sessionward import Config, GeneralError, StorageUnavailableError
from sessionward.flask import (
    create_new_session,
    current_session,
    get_all_sessions_for_user,
    init,
    preflight,
    revoke_all_sessions_for_user,
    revoke_other_sessions,
    verify_session,
)


def create_app(config: Config, store: str | None = None, **flask_config: Any) -> Flask:
    app = Flask(__name__)
    app.config.update(flask_config)
    thefts: list[tuple[str, str]] = []
    app.config["SESSIONWARD_THEFTS"] = thefts
    init(
        app,
        None if "SESSIONWARD" in flask_config else config,
        store=store,
        on_token_theft_detected=lambda handle, user_id: thefts.append((handle, user_id)),
    )

    @app.post("/login")
    def login() -> Any:
        body = request.get_json()
        response = current_app.response_class(mimetype="application/json")
        session = create_new_session(
            response, body["user_id"], body.get("payload"), body.get("data"), **login_options(body)
        )
        response.set_data(json.dumps({"handle": session.handle}))
        return response

    @app.get("/sensitive")
    @verify_session(max_auth_age=MAX_AUTH_AGE)
    def sensitive() -> Any:
        return {"user_id": current_session.user_id, "auth_time": current_session.auth_time}

    @app.post("/reauthenticate")
    @verify_session()
    def reauthenticate() -> Any:
        before = current_session.auth_time
        current_session.mark_reauthenticated()
        return {"before": before, "auth_time": current_session.auth_time}

    @app.get("/checked")
    @verify_session(check_database=True)
    def checked() -> Any:
        return {"user_id": current_session.user_id}

    @app.get("/devices")
    @verify_session()
    def devices() -> Any:
        return {"sessions": describe_sessions(get_all_sessions_for_user(current_session.user_id))}

    @app.post("/logout-others")
    @verify_session()
    def logout_others() -> Any:
        return {"revoked": current_session.revoke_other_sessions()}

    @app.post("/logout-others-by-handle")
    @verify_session()
    def logout_others_by_handle() -> Any:
        return {"revoked": revoke_other_sessions(current_session.user_id, current_session.handle)}

    # The preflight route comes first and the protected rule provides no automatic OPTIONS,
    # so OPTIONS /protected reaches the preflight helper.
    @app.route("/protected", methods=["OPTIONS"])
    def protected_preflight() -> Any:
        return preflight(current_app.response_class(status=204))

    @verify_session()
    def protected() -> Any:
        return {
            "user_id": current_session.user_id,
            "handle": current_session.handle,
            "payload": current_session.jwt_payload,
        }

    app.add_url_rule(
        "/protected", view_func=protected, methods=["GET", "POST"], provide_automatic_options=False
    )

    @app.get("/optional")
    @verify_session(session_required=False)
    def optional() -> Any:
        return {"user_id": current_session.user_id if current_session else None}

    @app.post("/update-payload")
    @verify_session()
    def update_payload() -> Any:
        try:
            current_session.update_jwt_payload(request.get_json())
        except StorageUnavailableError:
            raise
        except GeneralError:
            return {"message": "payload too large"}, 400
        return {"payload": current_session.jwt_payload}

    @app.post("/login-then-logout")
    def login_then_logout() -> Any:
        response = current_app.response_class(b"{}", mimetype="application/json")
        create_new_session(response, "carol", {"v": 1}).revoke_session()
        return response

    @app.post("/relogin-then-revoke-old")
    @verify_session()
    def relogin_then_revoke_old() -> Any:
        old = current_session._get_current_object()  # type: ignore[attr-defined]
        response = current_app.response_class(b"{}", mimetype="application/json")
        create_new_session(response, "dave", {"v": 3})
        old.revoke_session()
        return response

    @app.post("/update-then-logout")
    @verify_session()
    def update_then_logout() -> Any:
        current_session.update_jwt_payload({"v": 2})
        current_session.revoke_session()
        return {}

    @app.get("/data")
    @verify_session()
    def get_data() -> Any:
        return current_session.get_session_data()

    @app.post("/data")
    @verify_session()
    def set_data() -> Any:
        data = request.get_json()
        current_session.update_session_data(data)
        return data

    @app.post("/logout")
    @verify_session()
    def logout() -> Any:
        current_session.revoke_session()
        return {}

    @app.post("/logout-all")
    @verify_session()
    def logout_all() -> Any:
        return {"revoked": revoke_all_sessions_for_user(current_session.user_id)}

    @app.get("/health")
    def health() -> Any:
        return {"ok": True}

    return app
