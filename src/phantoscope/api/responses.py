"""What the OpenAPI document says a route may answer besides its success: the error body."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

REASONS = {
    400: "Bad input: a malformed body, name, image or parameter",
    403: "The server's settings do not allow it (a folder outside PHANTOSCOPE_IMPORT_ROOTS)",
    404: "No operator, pipeline, application or entity of that name or id",
    409: "A duplicate name, or the thing is in use",
    413: "The request or an image is too large",
    422: "The body does not fit the request's schema",
    502: "The operator failed on the request",
    503: "An operator or a store is unreachable",
}


class ErrorBody(BaseModel):
    """Every error answer."""

    code: str = Field(description="A stable code, e.g. APPLICATION_NOT_FOUND")
    error: str = Field(description="The error class the original API named")
    message: str = Field(description="What went wrong, for people")


ERROR_CONTENT = {"application/json": {"schema": ErrorBody.model_json_schema()}}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for the given error statuses, each with the error body as JSON (spelt
    out rather than as a `model`, which FastAPI would give the route's own media type, such
    as text/plain)."""
    return {
        status: {"description": REASONS[status], "content": ERROR_CONTENT}
        for status in statuses
    }


# What any route of the v1 routers may answer: a bad name (400), an unknown one (404), a
# body or parameter of the wrong shape (422), a store that cannot be reached (503).
COMMON = errors(400, 404, 422, 503)
