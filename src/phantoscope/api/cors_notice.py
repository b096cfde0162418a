"""A warning in the server's log when a browser calls the API from an origin CORS refuses.

A UI served on another port (the original Phantoscope's preview UI, a front end in
development) calls the API from the browser; without its origin in PHANTOSCOPE_CORS_ORIGINS
the browser hides every answer, and nothing on the server side said why. This logs one
warning per such origin, naming the setting to change. Requests from the API's own pages
(Origin = the server's own scheme and host) are never reported.
"""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger("phantoscope.api.cors")

SETTING = "PHANTOSCOPE_CORS_ORIGINS"
MAX_REPORTED = 256  # origins remembered (and reported) at most, whatever a client sends


class ForeignOriginNotice:
    """ASGI middleware: log once per origin that the CORS settings do not allow."""

    def __init__(self, app: ASGIApp, allowed: list[str]) -> None:
        self.app = app
        self.allow_all = "*" in allowed
        self.allowed = {origin.rstrip("/") for origin in allowed}
        self.reported: set[str] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self.allow_all:
            self._check(scope)
        await self.app(scope, receive, send)

    def _check(self, scope: Scope) -> None:
        headers = dict(scope.get("headers") or [])
        origin = headers.get(b"origin", b"").decode("latin-1").strip().rstrip("/")
        if not origin or origin == "null" or origin in self.allowed:
            return
        own = f"{scope.get('scheme', 'http')}://{headers.get(b'host', b'').decode('latin-1')}"
        if origin == own or origin in self.reported or len(self.reported) >= MAX_REPORTED:
            return
        self.reported.add(origin)
        log.warning(
            "a browser called the API from origin %s, which CORS does not allow, so the "
            "browser hides the answers: add it to %s (comma-separated), and set "
            "PHANTOSCOPE_HOST (or --host) if the browser is on another machine",
            origin, SETTING, extra={"origin": origin},
        )
