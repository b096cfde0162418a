"""The preview web UI: static files (plain HTML, CSS and ES modules) served by the API."""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from starlette.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parent / "static"

log = logging.getLogger(__name__)


class _UiFiles(StaticFiles):
    """Static files that the browser revalidates, so an upgraded server serves fresh modules."""

    def file_response(self, *args, **kwargs):
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "no-cache"
        return response


def mount_ui(app: FastAPI) -> None:
    """Serve the UI: its page at `/`, its assets under `/ui/`. API routes are untouched."""
    if not (STATIC / "index.html").is_file():  # an install without the package's static files
        log.warning("the web UI's files are missing from %s; serving the API only", STATIC)
        return
    app.mount("/ui", _UiFiles(directory=STATIC), name="ui")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})
