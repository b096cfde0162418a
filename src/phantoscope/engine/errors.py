"""Every failure the engine reports, each with an HTTP status, a stable code and a message
saying what to fix. ``error`` keeps the original Phantoscope's error class names."""

from __future__ import annotations


class EngineError(Exception):
    status = 400
    error = "RequestError"

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class BadRequestError(EngineError):
    status, error = 400, "RequestError"


class SchemaError(EngineError):
    """The request does not have the shape the endpoint takes."""

    status, error = 422, "RequestError"


class ForbiddenError(EngineError):
    """The server's settings do not allow what was asked."""

    status, error = 403, "PermissionError"


class NotFoundError(EngineError):
    status, error = 404, "NotExistError"


class ConflictError(EngineError):
    status, error = 409, "ExistError"


class TooLargeError(EngineError):
    status, error = 413, "RequestError"


class OperatorFailedError(EngineError):
    """The operator answered with an error of its own."""

    status, error = 502, "OperatorError"


class OperatorUnavailableError(EngineError):
    """The operator could not be reached or timed out."""

    status, error = 503, "OperatorError"


class StorageError(EngineError):
    """A store (Milvus, SQL, objects) failed; nothing the caller did."""

    status, error = 503, "StorageError"
