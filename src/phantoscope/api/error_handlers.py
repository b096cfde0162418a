"""Every error answer is JSON: ``{"code", "error", "message"}`` with an honest status."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from phantoscope.engine.errors import EngineError, StorageError
from phantoscope.logging_setup import request_id

log = logging.getLogger(__name__)

HTTP_CODES = {
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "REQUEST_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
}


def error_response(status: int, code: str, message: str, error: str = "RequestError"):
    return JSONResponse({"code": code, "error": error, "message": message}, status_code=status)


def _describe(errors: list[dict]) -> str:
    parts = []
    for error in errors[:5]:
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
        parts.append(f"{where or 'body'}: {error.get('msg', 'invalid')}")
    return "; ".join(parts)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(EngineError)
    async def engine_error(_: Request, exc: EngineError):
        if isinstance(exc, StorageError):
            log.error("storage failure: %s", exc.message)
        return error_response(exc.status, exc.code, exc.message, exc.error)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError):
        errors = list(exc.errors())
        if any(error.get("type") == "json_invalid" for error in errors):
            return error_response(400, "MALFORMED_JSON", "the request body is not valid JSON")
        return error_response(422, "INVALID_REQUEST", _describe(errors))

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException):
        code = HTTP_CODES.get(exc.status_code, "HTTP_ERROR")
        return error_response(exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        answer = error_response(500, "INTERNAL", "internal error; see the server log", "Error")
        rid = request_id.get()  # this handler runs outside the middleware that sets the header
        if rid:
            answer.headers["X-Request-ID"] = rid
        return answer
