"""Prometheus metrics the server exposes at `/metrics`, defined in one place."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

OPERATOR_CALL_SECONDS = Histogram(
    "phantoscope_operator_call_seconds",
    "Time of one Execute call to an operator, by operator and outcome (ok or a gRPC code).",
    ["operator", "outcome"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
OPERATOR_BATCH_IMAGES = Histogram(
    "phantoscope_operator_batch_images",
    "Images (texts, for a text encoder) sent in one Execute call, by operator.",
    ["operator"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
INGESTED_IMAGES = Counter(
    "phantoscope_ingested_images",
    "Images stored, by application (its rate is the ingest throughput).",
    ["application"],
)
DESCRIBED_IMAGES = Counter(
    "phantoscope_described_images",
    "Uploaded images described for duplicate detection, by where their thumbnail was made: "
    "operator (from the image its encoder decoded) or api (the image decoded in the API).",
    ["thumbnail"],
)
ALIGNED_PAIRS = Counter(
    "phantoscope_aligned_pairs",
    "Candidate pairs (a new image and a stored or earlier one that look alike) that uploads' "
    "duplicate checks aligned, a few milliseconds of CPU each: against "
    "phantoscope_ingested_images, what the check costs an upload.",
)
JUDGED_IN_BACKGROUND = Counter(
    "phantoscope_judged_in_background",
    "Stored images (imported unchecked, or stored by other processes) whose duplicate pairs "
    "were judged while uploads paused, ahead of the next listing.",
)
HTTP_REQUESTS = Counter(
    "phantoscope_http_requests",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
)
HTTP_REQUEST_SECONDS = Histogram(
    "phantoscope_http_request_seconds",
    "Time to answer one HTTP request, by method and route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)


@dataclass(frozen=True)
class Holdings:
    """What the stores hold: entities by application, vectors by pipeline."""

    entities: dict[str, int]
    vectors: dict[str, int]


class HoldingsCollector(Collector):
    """Gauges of what the stores hold, read when scraped and kept ``ttl_s`` seconds, so that
    frequent scrapes or several scrapers do not each count every store."""

    def __init__(self, read: Callable[[], Holdings], ttl_s: float = 15.0) -> None:
        self._read = read
        self._ttl_s = ttl_s
        self._lock = threading.Lock()
        self._cached: tuple[float, Holdings | None] | None = None

    def _holdings(self) -> Holdings | None:
        with self._lock:
            now = time.monotonic()
            if self._cached is None or now - self._cached[0] > self._ttl_s:
                try:
                    self._cached = (now, self._read())
                except Exception as exc:  # a store down: the gauge below says so
                    log.warning("cannot count what the stores hold: %s", exc)
                    self._cached = (now, None)
            return self._cached[1]

    def collect(self) -> Iterator[Metric]:
        holdings = self._holdings()
        yield GaugeMetricFamily(
            "phantoscope_store_counts_ok",
            "1 when the last count of the stores succeeded, else 0.",
            value=int(holdings is not None),
        )
        if holdings is None:
            return
        entities = GaugeMetricFamily(
            "phantoscope_entities", "Entities (stored images), by application.",
            labels=["application"],
        )
        for application, count in sorted(holdings.entities.items()):
            entities.add_metric([application], count)
        vectors = GaugeMetricFamily(
            "phantoscope_vectors", "Vectors in the vector store, by pipeline.", labels=["pipeline"]
        )
        for pipeline, count in sorted(holdings.vectors.items()):
            vectors.add_metric([pipeline], count)
        yield entities
        yield vectors
