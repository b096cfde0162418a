"""Ingest rate and search latency of `phantoscope up` (what `make run` starts), embedded
defaults (Milvus Lite, SQLite, a folder), on N photos made from scikit-image's samples.

    .venv/bin/python bench/api_ingest_search.py [--images 1000] [--searches 200]

Ingest is measured two ways in the same run: one JSON request per image (the original's
shape) and the batch endpoint (32 images a request, 2 concurrent requests).
"""

from __future__ import annotations

import argparse
import base64
import os
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
from common import engine, make_photos


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--searches", type=int, default=200)
    args = parser.parse_args()
    images = [base64.b64encode(data).decode() for data in make_photos(args.images)]
    half = len(images) // 2
    with engine() as running:
        api = httpx.Client(base_url=running.url, timeout=600)
        try:
            started = time.perf_counter()
            for data in images[:half]:
                answer = api.post("/v1/application/default/upload",
                                  json={"fields": {"image": {"data": data}}})
                answer.raise_for_status()
            single_rate = half / (time.perf_counter() - started)

            batches = [images[i:i + 32] for i in range(half, len(images), 32)]

            def send(batch: list[str]) -> int:
                answer = api.post("/v1/application/default/upload/batch",
                                  json={"images": [{"data": data} for data in batch]})
                answer.raise_for_status()
                return answer.json()["imported"]

            started = time.perf_counter()
            with ThreadPoolExecutor(2) as pool:
                imported = sum(pool.map(send, batches))
            batch_rate = imported / (time.perf_counter() - started)
            count = api.get("/v1/application/default/entity/count").json()["count"]

            latencies = []
            for index in range(args.searches):
                query = images[(index * 37) % len(images)]
                started = time.perf_counter()
                answer = api.post("/v1/application/default/search",
                                  json={"fields": {"image": {"data": query}}, "topk": 10})
                latencies.append((time.perf_counter() - started) * 1000)
                answer.raise_for_status()
        finally:
            api.close()
    print(f"phantoscope up (Milvus Lite, SQLite, folder), {count} images stored, "
          f"{os.cpu_count()} CPUs")
    print(f"{'ingest, one JSON request per image':44} {single_rate:8.1f} images/s  1.00x")
    print(f"{'ingest, batch endpoint (32/request, 2 at once)':44} {batch_rate:8.1f} images/s "
          f"{batch_rate / single_rate:5.2f}x")
    print(f"search by image, topk 10, {args.searches} queries: p50 "
          f"{statistics.median(latencies):.1f} ms, p95 {percentile(latencies, 95):.1f} ms, "
          f"p99 {percentile(latencies, 99):.1f} ms")


if __name__ == "__main__":
    main()
