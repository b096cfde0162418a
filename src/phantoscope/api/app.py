"""The FastAPI application: routers, error handlers and the stores it opens."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse

from phantoscope import __version__
from phantoscope.api import applications, operators, pipelines
from phantoscope.api.errors import install_error_handlers
from phantoscope.config import ServerSettings
from phantoscope.engine.context import Stores
from phantoscope.engine.stats import store_counts
from phantoscope.web import mount_ui


def create_app(
    settings: ServerSettings | None = None, on_start: Callable[[Stores], None] | None = None
) -> FastAPI:
    """An app that opens its stores on start-up (then calls ``on_start``) and closes them on
    shutdown."""
    settings = settings or ServerSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.stores = Stores.open(settings)
        try:
            if on_start is not None:
                on_start(app.state.stores)
            yield
        finally:
            app.state.stores.close()

    app = FastAPI(
        title="Phantoscope",
        version=__version__,
        description="Search images with images: the Phantoscope v1 REST API.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.include_router(operators.router)
    app.include_router(pipelines.router)
    app.include_router(applications.router)

    @app.get("/v1/settings/ping", response_class=PlainTextResponse, tags=["settings"])
    def ping() -> str:
        return "pong"

    @app.get("/v1/settings/stats", tags=["settings"])
    def stats(request: Request) -> dict[str, int]:
        """How much each store holds: SQL rows, Milvus vectors, stored images."""
        return store_counts(request.app.state.stores)

    mount_ui(app)  # the preview UI at `/`, its files under `/ui/`
    return app
