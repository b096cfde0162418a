"""`/metrics`: the process's Prometheus metrics and gauges of what the stores hold."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

from phantoscope.engine.stats import holdings
from phantoscope.metrics import HoldingsCollector

router = APIRouter(tags=["operations"])


def install_store_gauges(app: FastAPI, ttl_s: float = 15.0) -> None:
    """Gauges of what ``app``'s stores hold for its `/metrics` (``router``), read at most
    every ``ttl_s``; each app has its own."""
    own = CollectorRegistry()
    own.register(HoldingsCollector(lambda: holdings(app.state.stores), ttl_s))
    app.state.metrics_registry = own


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
def metrics(request: Request) -> Response:
    """Prometheus text format: requests, operator calls, ingest, entities and vectors."""
    own = request.app.state.metrics_registry
    body = generate_latest(REGISTRY) + generate_latest(own)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
