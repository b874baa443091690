"""sessionward on FastAPI: login (a name, no password), a protected route, a JWT payload
update, logout and logout everywhere.

Run:   uvicorn examples.fastapi_app:app --port 8000        (from the repository root)
Try:   curl -i -c jar -b jar -X POST localhost:8000/login -H 'content-type: application/json' \\
            -d '{"name": "alice"}'
       curl -i -c jar -b jar localhost:8000/me
       curl -i -c jar -b jar -X POST localhost:8000/session/refresh

This is a demo: there is no password check. A real app authenticates the user first and only
then calls ``create_new_session``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Body, Depends, FastAPI, Request, Response
from fastapi.responses import HTMLResponse

from sessionward.fastapi import (
    AsyncSession,
    create_new_session,
    init,
    preflight,
    revoke_all_sessions_for_user,
    verify_session,
)

app = FastAPI(title="sessionward FastAPI example")

# cookie_secure=False because this example is served over plain http on localhost: browsers
# (and httpx) never send Secure cookies over http. Keep the default (True) in production,
# behind https.
init(
    app,
    store="sqlite:///example-sessions.db",
    cookie_secure=False,
    access_token_validity=60,  # short, so that refreshes are visible while you try it
    enable_anti_csrf=False,
    on_token_theft_detected=lambda handle, user_id: print(f"token theft: {user_id} ({handle})"),
)

Session = Annotated[AsyncSession, Depends(verify_session())]


@app.get("/", response_class=HTMLResponse)
async def index() -> str:
    return (
        '<h1>sessionward FastAPI example</h1><p>POST /login {"name": ...}, GET /me, '
        "POST /payload {...}, POST /logout, POST /logout-everywhere, POST /session/refresh</p>"
    )


@app.post("/login")
async def login(request: Request, name: Annotated[str, Body(embed=True)]) -> dict[str, Any]:
    # No password: the demo trusts the name. Authenticate for real before this call.
    session = await create_new_session(request, name, jwt_payload={"name": name}, session_data={"visits": 0})
    return {"user_id": session.user_id, "handle": session.handle}


@app.get("/me")
async def me(session: Session) -> dict[str, Any]:
    data = await session.get_session_data()
    data["visits"] = data.get("visits", 0) + 1
    await session.update_session_data(data)
    return {"user_id": session.user_id, "payload": session.jwt_payload, "visits": data["visits"]}


@app.options("/me")
async def me_preflight() -> Response:
    # CORS preflight for cross-origin frontends (add your own CORS allow-list as well).
    return preflight(Response(status_code=204))


@app.post("/payload")
async def update_payload(payload: Annotated[dict[str, Any], Body()], session: Session) -> dict[str, Any]:
    await session.update_jwt_payload(payload)  # the new access token goes out on this response
    return {"payload": session.jwt_payload}


@app.post("/logout")
async def logout(session: Session) -> dict[str, Any]:
    await session.revoke_session()  # clears the cookies on this response
    return {}


@app.post("/logout-everywhere")
async def logout_everywhere(session: Session) -> dict[str, Any]:
    revoked = await revoke_all_sessions_for_user(session.user_id)
    await session.revoke_session()  # this device's cookies too
    return {"revoked": revoked}
