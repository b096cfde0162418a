"""Prometheus metrics the server exposes at `/metrics`, defined in one place."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

OPERATOR_CALL_SECONDS = Histogram(
    "phantoscope_operator_call_seconds",
    "Time of one Execute call to an operator, by operator and outcome (ok or a gRPC code).",
    ["operator", "outcome"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
OPERATOR_BATCH_IMAGES = Histogram(
    "phantoscope_operator_batch_images",
    "Images sent in one Execute call, by operator.",
    ["operator"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
INGESTED_IMAGES = Counter(
    "phantoscope_ingested_images",
    "Images stored, by application (its rate is the ingest throughput).",
    ["application"],
)
