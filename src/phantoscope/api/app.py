"""The FastAPI application: routers, middleware, error handlers and the stores it opens."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool
from starlette.middleware.cors import CORSMiddleware

from phantoscope import __version__
from phantoscope.api import (
    application_routes,
    duplicate_routes,
    entity_routes,
    field_routes,
    health_routes,
    job_routes,
    operator_routes,
    pipeline_routes,
    prometheus,
)
from phantoscope.api.auth import ApiKeyMiddleware, ApiKeys, document_security
from phantoscope.api.cors_notice import ForeignOriginNotice
from phantoscope.api.error_handlers import install_error_handlers
from phantoscope.api.limits import BodySizeLimit
from phantoscope.api.observability import REQUEST_ID_HEADER, RequestObserver
from phantoscope.api.route_table import RouteTable
from phantoscope.config import ServerSettings, is_loopback
from phantoscope.engine.context import Stores
from phantoscope.engine.duplicate_leveller import duplicate_leveller
from phantoscope.engine.job_runner import JobRunner
from phantoscope.engine.journal import repair_logged
from phantoscope.engine.standby_sweep import standby_sweeper
from phantoscope.engine.stats import store_counts
from phantoscope.web import mount_ui

log = logging.getLogger(__name__)

CORS_HEADERS = ["Authorization", "X-API-Key", "Content-Type", REQUEST_ID_HEADER]


def cors_origins(setting: str) -> list[str]:
    return [origin.strip() for origin in setting.split(",") if origin.strip()]


async def _repair_forever(stores: Stores, settings: ServerSettings) -> None:
    """Repair interrupted uploads every ``repair_interval_s`` while the server runs, so what a
    crashed replica left goes without waiting for the next restart."""
    if not settings.repair_interval_s:
        return
    while True:
        await asyncio.sleep(settings.repair_interval_s)
        await run_in_threadpool(repair_logged, stores)


def create_app(
    settings: ServerSettings | None = None, on_start: Callable[[Stores], None] | None = None
) -> FastAPI:
    """An app that opens its stores on start-up (then calls ``on_start``) and closes them on
    shutdown. ValueError for bad API keys in the settings."""
    settings = settings or ServerSettings()
    keys = ApiKeys.parse(settings.api_keys)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if keys is None and not is_loopback(settings.host):
            log.warning(
                "listening on %s without API keys: anyone who reaches the port may change or "
                "delete everything; set PHANTOSCOPE_API_KEYS", settings.host,
            )
        app.state.stores = Stores.open(settings)
        repair_logged(app.state.stores)  # what uploads cut short by a crash left
        repairs = asyncio.create_task(_repair_forever(app.state.stores, settings))
        jobs = app.state.job_runner = JobRunner(app.state.stores)  # resumes what was left
        jobs.start()
        sweeper = standby_sweeper(app.state.stores)  # old pipelines' vectors after a switch
        sweeper.start()
        leveller = duplicate_leveller(app.state.stores)  # listed duplicates, kept ready
        leveller.start()
        try:
            if on_start is not None:
                on_start(app.state.stores)
            yield
        finally:
            repairs.cancel()
            await run_in_threadpool(jobs.stop)
            await run_in_threadpool(sweeper.stop)
            await run_in_threadpool(leveller.stop)
            app.state.stores.close()

    app = FastAPI(
        title="Phantoscope",
        version=__version__,
        description="Search images with images: the Phantoscope v1 REST API.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    routers = (
        health_routes.router, prometheus.router, operator_routes.router, pipeline_routes.router,
        application_routes.router, entity_routes.router, duplicate_routes.router,
        job_routes.router, field_routes.router,
    )
    for router in routers:
        app.include_router(router)
    prometheus.install_store_gauges(app)

    @app.get("/v1/settings/ping", response_class=PlainTextResponse, tags=["settings"])
    def ping() -> str:
        return "pong"

    @app.get("/v1/settings/stats", tags=["settings"])
    def stats(request: Request) -> dict[str, int]:
        """How much each store holds: SQL rows, Milvus vectors, stored images."""
        return store_counts(request.app.state.stores)

    mount_ui(app)  # the preview UI at `/`, its files under `/ui/`

    # Outermost last: observe (id, log, metrics) > CORS > keys > body size > the routes.
    routes = RouteTable(app, routers)
    app.state.route_table = routes
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    if keys is not None:
        app.add_middleware(ApiKeyMiddleware, keys=keys, routes=routes)
    origins = cors_origins(settings.cors_origins)
    if origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=origins, allow_methods=["*"],
            allow_headers=CORS_HEADERS, expose_headers=[REQUEST_ID_HEADER],
        )
    app.add_middleware(ForeignOriginNotice, allowed=origins)  # outside CORS: sees preflights
    app.add_middleware(RequestObserver, routes=routes)
    document_security(app, keys_required=keys is not None)
    return app
