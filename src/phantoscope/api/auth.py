"""Optional API keys: `read` keys may do what changes nothing, `admin` keys anything.

Keys come from ``PHANTOSCOPE_API_KEYS`` (``role:key,role:key``) and are sent as
``Authorization: Bearer KEY`` or ``X-API-Key: KEY``. Without keys the API is open.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from phantoscope.api.error_handlers import error_response
from phantoscope.api.route_table import RouteTable

READ, ADMIN = "read", "admin"
MIN_KEY_LENGTH = 16
# Open to anyone: probes, the page and its files, the docs.
OPEN_ROUTES = frozenset({
    "/healthz", "/readyz", "/v1/settings/ping", "/", "/ui/{path}", "/docs",
    "/docs/oauth2-redirect", "/redoc", "/openapi.json",
})
# POST routes that change nothing: a read key may call them.
READ_ONLY_POSTS = frozenset({"/v1/application/{name}/search", "/v1/pipeline/{name}/test"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

SECURITY_SCHEMES = {
    "bearerKey": {"type": "http", "scheme": "bearer", "description": "an API key"},
    "headerKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}
KEY_REQUIRED = [{"bearerKey": []}, {"headerKey": []}]


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


@dataclass(frozen=True)
class ApiKeys:
    """The configured keys, kept as digests with their roles."""

    entries: tuple[tuple[bytes, str], ...]

    @classmethod
    def parse(cls, text: str | None) -> ApiKeys | None:
        """The keys of a ``role:key,...`` setting; None when it is empty. ValueError names
        the bad entry by position (never printing a key)."""
        if text is None or not text.strip():
            return None
        entries: list[tuple[bytes, str]] = []
        for position, entry in enumerate(text.split(","), start=1):
            role, sep, key = entry.strip().partition(":")
            where = f"PHANTOSCOPE_API_KEYS entry {position}"
            if not sep or role not in (READ, ADMIN):
                raise ValueError(f"{where} is not `read:KEY` or `admin:KEY`")
            if len(key) < MIN_KEY_LENGTH or not key.isprintable() or any(c.isspace() for c in key):
                raise ValueError(
                    f"{where} ({role}): a key needs at least {MIN_KEY_LENGTH} printable "
                    "characters without spaces"
                )
            digest = _digest(key)
            if any(digest == known for known, _ in entries):
                raise ValueError(f"{where} ({role}): the same key is given twice")
            entries.append((digest, role))
        return cls(tuple(entries))

    def role_of(self, key: str) -> str | None:
        """The role of ``key``, compared in constant time with every configured key."""
        digest = _digest(key)
        role = None
        for known, known_role in self.entries:
            if hmac.compare_digest(digest, known):
                role = known_role
        return role


def presented_key(headers: Headers) -> str | None:
    """The key a request carries: ``X-API-Key``, or an ``Authorization: Bearer`` token."""
    key = headers.get("x-api-key")
    if key:
        return key.strip()
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def required_role(routes: RouteTable, scope: Scope) -> str | None:
    """The role a request needs: None for open routes, READ for what changes nothing."""
    route = routes.match(scope)
    if route.template in OPEN_ROUTES:
        return None
    method = scope["method"]
    if method in SAFE_METHODS or (method == "POST" and route.template in READ_ONLY_POSTS):
        return READ
    return ADMIN


class ApiKeyMiddleware:
    """Answers 401 without a known key, 403 for a read key on a route that changes things."""

    def __init__(self, app: ASGIApp, keys: ApiKeys, routes: RouteTable) -> None:
        self.app = app
        self.keys = keys
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        needed = required_role(self.routes, scope)
        if needed is None:
            await self.app(scope, receive, send)
            return
        key = presented_key(Headers(scope=scope))
        role = self.keys.role_of(key) if key else None
        if key is None:
            answer = error_response(
                401, "API_KEY_REQUIRED",
                "an API key is required: `Authorization: Bearer KEY` or `X-API-Key: KEY`",
            )
            answer.headers["WWW-Authenticate"] = 'Bearer realm="phantoscope"'
        elif role is None:
            answer = error_response(401, "API_KEY_INVALID", "the API key is not known")
            answer.headers["WWW-Authenticate"] = 'Bearer realm="phantoscope", error="invalid_token"'
        elif needed == ADMIN and role != ADMIN:
            answer = error_response(403, "API_KEY_FORBIDDEN", "this needs an admin key")
        else:
            await self.app(scope, receive, send)
            return
        await answer(scope, receive, send)


def document_security(app: FastAPI, keys_required: bool) -> None:
    """Declare the key schemes in the OpenAPI document, and (with keys) which operations
    need one and the 401/403 answers they may give."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = build()
        schema.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
        if keys_required:
            for path, operations in schema.get("paths", {}).items():
                for method, operation in operations.items():
                    _secure(operation, path, method.upper())
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _secure(operation: dict[str, Any], path: str, method: str) -> None:
    if path in OPEN_ROUTES:
        operation["security"] = []
        return
    operation["security"] = KEY_REQUIRED
    responses = operation.setdefault("responses", {})
    responses["401"] = {"description": "no API key, or an unknown one"}
    if method not in SAFE_METHODS and path not in READ_ONLY_POSTS:
        responses["403"] = {"description": "a read key on an operation that changes things"}
