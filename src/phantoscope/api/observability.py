"""Every request: an id (the caller's `X-Request-ID` when sane, else a new one) returned in
`X-Request-ID` and attached to its log records, one access log line, and its metrics."""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from phantoscope.api.route_table import RouteTable
from phantoscope.logging_setup import request_id
from phantoscope.metrics import HTTP_REQUEST_SECONDS, HTTP_REQUESTS

REQUEST_ID_HEADER = "X-Request-ID"
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:@+=/-]{1,128}")
UNMATCHED = "unmatched"  # the route label of requests no route fits: bounded cardinality
UNMEASURED = frozenset({"/metrics"})

access_log = logging.getLogger("phantoscope.access")


def incoming_request_id(headers: Headers) -> str:
    given = headers.get(REQUEST_ID_HEADER, "")
    return given if SANE_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


class RequestObserver:
    def __init__(self, app: ASGIApp, routes: RouteTable) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = incoming_request_id(Headers(scope=scope))
        # Left set if the app raises: the error handler outside this middleware logs with it.
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500
        recorded = False

        def record() -> None:
            nonlocal recorded
            if not recorded:
                recorded = True
                self._record(scope, status, time.perf_counter() - started, rid)

        async def tagged(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = rid
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                record()  # before the last byte leaves: a client with its answer finds it logged
            await send(message)

        try:
            await self.app(scope, receive, tagged)
        finally:
            record()
        request_id.reset(token)

    def _record(self, scope: Scope, status: int, seconds: float, rid: str) -> None:
        method, path = scope["method"], scope["path"]
        route = self.routes.match(scope).template or UNMATCHED
        if route not in UNMEASURED:
            HTTP_REQUESTS.labels(method, route, str(status)).inc()
            HTTP_REQUEST_SECONDS.labels(method, route).observe(seconds)
        client = scope.get("client")
        access_log.info(
            "%s %s %d %.1f ms", method, path, status, seconds * 1000,
            extra={
                "method": method, "route": route, "path": path, "status": status,
                "duration_ms": round(seconds * 1000, 3), "request_id": rid,
                "client": client[0] if client else None,
            },
        )
