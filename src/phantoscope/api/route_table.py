"""Which route template a request falls under, before routing: for access rules, metric
labels and logs."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from fastapi import APIRouter, FastAPI
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.types import Scope

SCOPE_KEY = "phantoscope.route"


@dataclass(frozen=True)
class RouteMatch:
    template: str | None  # e.g. `/v1/application/{name}/search`; None when no route's path fits
    method_allowed: bool  # False when the path fits but not the method (a 405)


class RouteTable:
    """The app's own routes and those of the routers it includes, in one flat list."""

    def __init__(self, app: FastAPI, routers: Iterable[APIRouter]) -> None:
        own = [route for route in app.routes if isinstance(route, (Route, Mount))]
        self.routes: list[BaseRoute] = own + [route for r in routers for route in r.routes]

    def templates(self) -> list[str]:
        return [_template(route) for route in self.routes]

    def match(self, scope: Scope) -> RouteMatch:
        """The first route whose path fits ``scope``, preferring one that takes its method;
        found once per request (kept in the scope for the other middleware that asks)."""
        found = scope.get(SCOPE_KEY)
        if found is None:
            found = scope[SCOPE_KEY] = self._match(scope)
        return found

    def _match(self, scope: Scope) -> RouteMatch:
        partial: str | None = None
        for route in self.routes:
            found, _ = route.matches(scope)
            if found is Match.FULL:
                return RouteMatch(_template(route), True)
            if found is Match.PARTIAL and partial is None:
                partial = _template(route)
        return RouteMatch(partial, partial is None)


def _template(route: BaseRoute) -> str:
    if isinstance(route, Mount):
        return f"{route.path}/{{path}}"
    return getattr(route, "path", "")
