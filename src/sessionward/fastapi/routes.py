"""The session routes' one entry in the app's router, and where it goes at start-up."""

from __future__ import annotations

import sys
from typing import Any

from starlette.datastructures import URLPath
from starlette.routing import BaseRoute, Match, Mount, NoMatchFound, Route, WebSocketRoute
from starlette.types import Receive, Scope, Send

__all__ = ["_SessionRoutes", "place_session_routes"]

_NONE = Match.NONE
_FULL = Match.FULL


class _SessionRoutes(BaseRoute):
    """The session routes (refresh, sign-out, JWKS, client script) as one entry of the router.

    ``init`` puts the entry first in the router, so that no route defined earlier (a
    catch-all) shadows it, and :func:`place_session_routes` moves it, when the app starts,
    after the routes that cannot. Wherever it is, the router tries it on the requests
    that reach it: one entry that turns away, with one ``str.endswith``, every path that
    cannot be one of its routes costs a request a quarter of four routes tried in turn.
    A request path matching a route ends with the route's path (the path matched is
    ``scope["path"]`` less any ``root_path``; ``Route``'s pattern also accepts one
    trailing ``"\\n"``); other paths are given to each route's own ``matches``, in order
    (a full match wins over a partial one, as in the router). ``routes`` holds the
    :class:`~starlette.routing.Route` objects, named ``sessionward_jwks``,
    ``sessionward_refresh``, ``sessionward_sign_out`` and ``sessionward_client_script``
    for ``url_path_for``.
    """

    def __init__(self, routes: list[Route]) -> None:
        self.routes = routes
        paths = [route.path for route in routes]
        # A path with parameters has no fixed suffix: "" lets every path through.
        self._suffixes = (
            ("",) if any("{" in path for path in paths) else tuple(paths) + tuple(f"{p}\n" for p in paths)
        )

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        path = scope.get("path")
        if type(path) is str and not path.endswith(self._suffixes):
            return _NONE, {}
        return self._match(scope)[:2]

    def _match(self, scope: Scope) -> tuple[Match, Scope, Route | None]:
        partial: tuple[Match, Scope, Route | None] = (_NONE, {}, None)
        for route in self.routes:
            match, child_scope = route.matches(scope)
            if match is _FULL:
                return match, child_scope, route
            if match is not _NONE and partial[2] is None:
                partial = (match, child_scope, route)
        return partial

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        for route in self.routes:
            try:
                return route.url_path_for(name, **path_params)
            except NoMatchFound:
                pass
        raise NoMatchFound(name, path_params)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self._match(scope)[2]
        if route is None:  # pragma: no cover - the router calls handle after a match only
            raise NoMatchFound(str(scope.get("path")), {})
        await route.handle(scope, receive, send)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.routes!r})"


def place_session_routes(routes: list[BaseRoute], entry: _SessionRoutes) -> None:
    """Move ``entry`` (in the router's ``routes``) after every route that precedes it and
    cannot match a request for one of its paths, so that requests for those routes no
    longer try it; it stays before the first route that could (a catch-all, a mount or an
    included router whose prefix covers one of its paths, a ``Host``, any kind of route
    this cannot tell), so no route shadows it that did not before.

    Routes that cannot: websocket routes (the session routes answer HTTP), and ``Route``,
    FastAPI's ``APIRoute`` and ``Mount`` (exactly these classes: a subclass may match
    otherwise) whose pattern matches none of the entry's paths. Called when the app builds
    its middleware stack (its first ASGI call, lifespan included); a route added later is
    appended after the entry anyway. Nothing moves when a session route's path has
    parameters, or when the entry is no longer in ``routes``.
    """
    try:
        position = next(index for index, route in enumerate(routes) if route is entry)
    except StopIteration:
        return
    paths = [route.path for route in entry.routes]
    if any("{" in path for path in paths):
        return
    probes = [*paths, *(f"{path}\n" for path in paths)]
    harmless_websocket, pattern_only = _route_kinds()
    index = position + 1
    while index < len(routes):
        route = routes[index]
        kind = type(route)
        if kind in harmless_websocket:
            index += 1
            continue
        if kind not in pattern_only:
            break
        regex = getattr(route, "path_regex", None)
        if regex is None or any(regex.match(probe) for probe in probes):
            break
        index += 1
    if index > position + 1:
        del routes[position]
        routes.insert(index - 1, entry)


def _route_kinds() -> tuple[frozenset[type], frozenset[type]]:
    """The websocket route classes, and the classes whose matching is their pattern (and
    methods) alone: Starlette's, and FastAPI's when FastAPI is in use."""
    websocket: set[type] = {WebSocketRoute}
    pattern_only: set[type] = {Route, Mount}
    fastapi_routing = sys.modules.get("fastapi.routing")
    if fastapi_routing is not None:
        for name, kinds in (("APIWebSocketRoute", websocket), ("APIRoute", pattern_only)):
            kind = getattr(fastapi_routing, name, None)
            if isinstance(kind, type):
                kinds.add(kind)
    return frozenset(websocket), frozenset(pattern_only)
