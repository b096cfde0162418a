"""Filtered vector search beside unfiltered, on Milvus Lite (the default) or a Milvus server.

    .venv/bin/python bench/filtered_search.py [--vectors 100000] [--dimension 1280]
                                              [--queries 200] [--baseline-queries 5]
                                              [--uri http://HOST:19530 | --server]

Data: --vectors vectors of --dimension around 200 Gaussian cluster centres, normalised,
metric IP (as bench/vector_store.py), written with `MilvusVectorStore.insert` in calls of
10,000 into one partition, each with a payload as the engine writes it: a name
(``photos/<i>.jpg``), attributes ``{"bucket": 0-99, "half": "even"|"odd", "tags": [...]}``
and EXIF ``{"taken_at": ..., "camera": ...}``, drawn at random (not tied to the clusters).
Then flushed and indexed (HNSW, the store's default).

Filters, built as the engine builds them (`engine.filters.parse_filter` +
`milvus_expression(..., FILTER_FIELDS)`): 1 % selectivity ``{"attributes.bucket": 7}``,
50 % ``{"attributes.half": "even"}``, and 1 % on EXIF and a list (``taken_at`` in a range
and ``attributes.tags`` containing a value). Measured, one query vector a search, top 10:

- unfiltered `MilvusVectorStore.search` (the baseline: the target is filtered p50 ≤ this
  p50 + 10 ms on Milvus Lite);
- each filter; the first filtered search after the index is built is reported apart
  (Milvus Lite decodes a segment's JSON column once, then caches it);
- recall@10 of each against an exact filtered search (numpy over the rows the filter
  selects, `engine.filters.matches`);
- Milvus Lite only: the same filtered searches through milvus-lite 3.2.2's own executor
  (--baseline-queries of them: it evaluates JSON filters row by row), as the ratio's
  baseline.

A server is started with `LocalMilvusServer` with --server, or named with --uri. Other
processes share this machine: compare ratios within one run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from common import Latency, print_table, timed_ms

from phantoscope.engine.filters import matches, milvus_expression, parse_filter
from phantoscope.storage import lite_search
from phantoscope.storage.milvus_vectors import MilvusVectorStore
from phantoscope.storage.vectors import FILTER_FIELDS, VectorPayload

TOPK = 10
CHUNK = 10_000
PARTITION = "app_default"
COLLECTION = "bench_filtered"
TAGS = ("red", "green", "blue", "cat", "dog", "car", "tree", "sea", "sky", "snow")
START = 1_577_836_800  # 2020-01-01
FILTERS: dict[str, dict[str, Any]] = {
    "1 % (attributes.bucket == 7)": {"attributes.bucket": 7},
    "50 % (attributes.half == even)": {"attributes.half": "even"},
    "≈1 % (taken_at range, tags contain)": {
        "taken_at": {"gte": "2021-01-01", "lt": "2021-03-01"}, "attributes.tags": "snow"},
}


def clustered(rows: int, dimension: int, queries: int, seed: int = 0
              ) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((200, dimension)).astype(np.float32)
    data = centres[rng.integers(0, 200, rows)]
    data += 0.6 * rng.standard_normal((rows, dimension)).astype(np.float32)
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    picked = data[rng.choice(rows, queries, replace=False)]
    picked = picked + 0.02 * rng.standard_normal(picked.shape).astype(np.float32)
    picked /= np.linalg.norm(picked, axis=1, keepdims=True)
    return data, picked


def payloads(rows: int, seed: int = 1) -> list[VectorPayload]:
    rng = np.random.default_rng(seed)
    buckets = rng.integers(0, 100, rows)
    halves = rng.integers(0, 2, rows)
    tag_counts = rng.integers(0, 4, rows)
    taken = START + rng.integers(0, 5 * 365 * 86400, rows)
    made = []
    for i in range(rows):
        tags = [TAGS[t] for t in rng.choice(len(TAGS), tag_counts[i], replace=False)]
        made.append(VectorPayload(
            name=f"photos/{i}.jpg",
            attributes={"bucket": int(buckets[i]), "half": "even" if halves[i] else "odd",
                        "tags": tags},
            exif={"taken_at": int(taken[i]), "camera": "X100V" if i % 3 else "iPhone 15"}))
    return made


def record(payload: VectorPayload) -> dict[str, Any]:
    """A payload as `engine.filters.matches` reads an entity."""
    return {"name": payload.name or None, "attributes": payload.attributes, **payload.exif}


def wait_indexed(store: MilvusVectorStore) -> None:
    """Flush, then wait for the index builds (private APIs; benchmark only)."""
    store.flush(COLLECTION)
    if store.is_lite:
        lite_search.local_collection(store.uri, COLLECTION)._wait_for_bg()
        return
    client = store._client
    while client.describe_index(COLLECTION, client.list_indexes(COLLECTION)[0]).get(
            "pending_index_rows", 0):
        time.sleep(1)


def exact(data: np.ndarray, allowed: np.ndarray, queries: np.ndarray) -> list[set[int]]:
    rows = np.flatnonzero(allowed)
    scores = queries @ data[rows].T
    best = np.argsort(-scores, axis=1)[:, :TOPK]
    return [set(rows[b].tolist()) for b in best]


def measure(store: MilvusVectorStore, queries: np.ndarray, expression: str | None,
            truth: list[set[int]] | None) -> tuple[Latency, float]:
    samples, recalls = [], []
    for index, query in enumerate(queries):
        found: list[Any] = []

        def one(query: np.ndarray = query, found: list[Any] = found) -> None:
            found.extend(store.search(COLLECTION, query[None, :], TOPK, partition=PARTITION,
                                      filter=expression)[0])

        samples.append(timed_ms(one))
        if truth is not None:
            recalls.append(len({hit.id for hit in found} & truth[index]) / TOPK)
    return Latency(tuple(samples)), float(np.mean(recalls)) if recalls else float("nan")


def with_original_executor(run: Callable[[], Any]) -> Any:
    from milvus_lite.engine import collection as lite_collection

    previous = lite_collection.execute_search_with_index
    lite_collection.execute_search_with_index = lite_search.original_executor()
    try:
        return run()
    finally:
        lite_collection.execute_search_with_index = previous


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vectors", type=int, default=100_000)
    parser.add_argument("--dimension", type=int, default=1280)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--baseline-queries", type=int, default=5)
    parser.add_argument("--uri", help="a Milvus server (default: Milvus Lite in a temp dir)")
    parser.add_argument("--server", action="store_true",
                        help="start a local Milvus server (LocalMilvusServer) and use it")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="phantoscope-filtered-") as folder:
        server = None
        uri = args.uri
        if args.server:
            from phantoscope.storage.milvus_server import LocalMilvusServer

            server = LocalMilvusServer(Path(folder) / "milvus-server", grace_s=1)
            server.start()
            uri = server.uri
        try:
            run(uri or str(Path(folder) / "vectors.db"), args)
        finally:
            if server is not None:
                server.stop()


def run(uri: str, args: argparse.Namespace) -> None:
    data, queries = clustered(args.vectors, args.dimension, args.queries)
    made = payloads(args.vectors)
    records = [record(p) for p in made]
    store = MilvusVectorStore(uri, timeout_s=600)
    backend = "Milvus Lite" if store.is_lite else "Milvus server"
    print(f"{backend}: {args.vectors:,} vectors of {args.dimension}-d, {args.queries} queries, "
          f"top {TOPK}", flush=True)
    try:
        store.drop_collection(COLLECTION)
        store.create_collection(COLLECTION, args.dimension, "IP")
        started = time.perf_counter()
        for start in range(0, args.vectors, CHUNK):
            end = min(start + CHUNK, args.vectors)
            store.insert(COLLECTION, list(range(start, end)), data[start:end],
                         partition=PARTITION, payloads=made[start:end])
        inserted = time.perf_counter() - started
        wait_indexed(store)
        print(f"inserted in {inserted:.0f} s ({args.vectors / inserted:,.0f} vectors/s), "
              f"indexed after {time.perf_counter() - started:.0f} s", flush=True)

        plain, _ = measure(store, queries[:20], None, None)  # warm-up
        plain, _ = measure(store, queries, None, None)
        rows = [["unfiltered", plain.summary(), "", "", ""]]
        for label, spec in FILTERS.items():
            parsed = parse_filter(spec)
            expression = milvus_expression(parsed, FILTER_FIELDS)
            allowed = np.array([matches(parsed, r) for r in records])
            truth = exact(data, allowed, queries)
            first = timed_ms(lambda e=expression: store.search(
                COLLECTION, queries[0][None, :], TOPK, partition=PARTITION, filter=e))
            latency, recall = measure(store, queries, expression, truth)
            baseline = ""
            if store.is_lite and args.baseline_queries:
                theirs, _ = with_original_executor(lambda e=expression: measure(
                    store, queries[:args.baseline_queries], e, None))
                baseline = f"p50 {theirs.p50:.1f} ms ({theirs.p50 / latency.p50:.0f}x ours)"
            rows.append([f"{label}: {allowed.mean() * 100:.2f} % of rows", latency.summary(),
                         f"{latency.p50 - plain.p50:+.1f} ms", f"{recall:.3f}",
                         f"first {first:.0f} ms; milvus-lite's own: {baseline or '—'}"])
            print(f"  {label} done", flush=True)
        print()
        print_table(["search", "latency", "p50 - unfiltered", "recall@10", "notes"], rows)
    finally:
        store.drop_collection(COLLECTION)
        store.close()


if __name__ == "__main__":
    main()
