"""Logging for the server commands, configured in one place: JSON lines or readable text, every
record tagged with the id of the HTTP request it was emitted for."""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import datetime, timezone

# The id of the request being served, set by the API's request middleware.
request_id: ContextVar[str | None] = ContextVar("phantoscope_request_id", default=None)

# Attributes every LogRecord has; any other attribute came from `extra=` and is logged too.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {
    "message", "asctime", "request_id", "request_tag",
}


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` (None outside a request) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, request_id and any extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if getattr(record, "request_id", None):
            entry["request_id"] = record.request_id
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """``time LEVEL logger [request id] message``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(request_tag)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        rid = getattr(record, "request_id", None)
        record.request_tag = f" [{rid}]" if rid else ""
        return super().format(record)


def log_level(name: str) -> int:
    """The numeric level of a name such as ``info``; ValueError for an unknown one."""
    levels = logging.getLevelNamesMapping()
    if name.upper() not in levels:
        raise ValueError(f"log level {name!r} is not one of {', '.join(sorted(levels))}")
    return levels[name.upper()]


class _DropMessages(logging.Filter):
    """Drops records whose message starts with one of ``prefixes``."""

    def __init__(self, *prefixes: str) -> None:
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefixes)


# Libraries' lines that read like errors but are not: faiss (loaded by Milvus Lite) says
# "Could not load library with AVX512 support" (or AVX2) on every CPU without it, at INFO,
# before falling back to its generic build; pymilvus warns "failed to get mvccTs from milvus
# server" on each query iterator over Milvus Lite, which has no such timestamps.
FAISS_LOADER = "faiss.loader"
PYMILVUS_QUERY_ITERATOR = "pymilvus.client.iterator.query_iterator"
MVCC_TS_WARNING = "failed to get mvccTs from milvus server"


def quiet_library_noise() -> None:
    """Silence exactly those lines; anything else those libraries log still shows."""
    logging.getLogger(FAISS_LOADER).setLevel(logging.WARNING)
    iterator_log = logging.getLogger(PYMILVUS_QUERY_ITERATOR)
    if not any(isinstance(f, _DropMessages) for f in iterator_log.filters):
        iterator_log.addFilter(_DropMessages(MVCC_TS_WARNING))


def configure_logging(log_format: str, level: str) -> None:
    """Send every logger's records (uvicorn's included) to stderr in ``log_format``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(log_level(level))
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    quiet_library_noise()
