"""Insert rate, search latency and recall of the vector store on Milvus Lite and a Milvus server.

    .venv/bin/python bench/vector_store.py [--rows 10000] [--large] [--index HNSW,FLAT]
                                           [--backends lite,server] [--server-uri URI]

Data: 1280-d vectors (the default encoder's size) drawn around 200 Gaussian cluster centres
and normalised, metric IP; queries are 200 of them with a little noise (a near-duplicate
photo). Phases, per backend and index type:

- bulk insert in calls of 1,000 rows (vectors/s, the store's own flush policy included);
- 200 single-vector searches right after the bulk insert, then again after `settle_s`
  (Lite indexes new segments in the background; the server seals and indexes on flush);
- the upload path: 200 times, insert one vector and at once search for it (read-your-writes);
- Milvus Lite only: close and reopen, time to the first answer (loads the collection).

A server is started with `LocalMilvusServer` unless --server-uri names one.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from phantoscope.storage.milvus_vectors import MilvusVectorStore

DIM = 1280
QUERIES = 200
TOPK = 10


def clustered(rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((200, DIM)).astype(np.float32)
    data = centres[rng.integers(0, 200, rows)]
    data += 0.6 * rng.standard_normal((rows, DIM)).astype(np.float32)
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    queries = data[rng.choice(rows, QUERIES, replace=False)]
    queries = queries + 0.02 * rng.standard_normal(queries.shape).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    return data, queries


def exact_topk(data: np.ndarray, queries: np.ndarray) -> np.ndarray:
    return np.argsort(-(queries @ data.T), axis=1)[:, :TOPK]


def pct(samples: list[float], q: float) -> float:
    return float(np.percentile(samples, q) * 1000)


def search_phase(store: MilvusVectorStore, name: str, queries: np.ndarray,
                 truth: np.ndarray) -> tuple[float, float, float]:
    lat, recall = [], []
    for query, expected in zip(queries, truth, strict=True):
        started = time.perf_counter()
        [hits] = store.search(name, query[None, :], TOPK)
        lat.append(time.perf_counter() - started)
        recall.append(len({h.id for h in hits} & set(expected.tolist())) / TOPK)
    return pct(lat, 50), pct(lat, 95), float(np.mean(recall))


def run(uri: str, index: str, data: np.ndarray, queries: np.ndarray, truth: np.ndarray,
        settle_s: float, is_lite: bool, options: dict) -> dict[str, str]:
    row: dict[str, str] = {}
    name = f"bench_{index.lower()}_{len(data)}"
    store = MilvusVectorStore(uri, index_type=index, timeout_s=600, **options)
    store.drop_collection(name)
    store.create_collection(name, DIM, "IP")

    started = time.perf_counter()
    for i in range(0, len(data), 1000):
        store.insert(name, list(range(i, min(i + 1000, len(data)))), data[i:i + 1000])
    row["insert /s"] = f"{len(data) / (time.perf_counter() - started):,.0f}"
    assert store.count(name) == len(data)

    p50, p95, recall = search_phase(store, name, queries, truth)
    row["search now p50/p95 ms"] = f"{p50:.1f} / {p95:.1f}"
    if not is_lite:
        store.flush(name)  # seal the growing segment so the server builds the real index
    time.sleep(settle_s)
    p50, p95, recall = search_phase(store, name, queries, truth)
    row[f"search +{settle_s:.0f}s p50/p95 ms"] = f"{p50:.1f} / {p95:.1f}"
    row["recall@10"] = f"{recall:.3f}"

    ins, srch = [], []
    fresh, _ = clustered(QUERIES, seed=99)
    for k, vector in enumerate(fresh):
        started = time.perf_counter()
        store.insert(name, [10_000_000 + k], vector[None, :])
        ins.append(time.perf_counter() - started)
        started = time.perf_counter()
        [hits] = store.search(name, vector[None, :], TOPK)
        srch.append(time.perf_counter() - started)
        assert hits[0].id == 10_000_000 + k, "a fresh insert was not found"
    row["upload: insert p50/p95 ms"] = f"{pct(ins, 50):.1f} / {pct(ins, 95):.1f}"
    row["upload: then search p50/p95 ms"] = f"{pct(srch, 50):.1f} / {pct(srch, 95):.1f}"

    if is_lite:
        store.close()
        started = time.perf_counter()
        store = MilvusVectorStore(uri, index_type=index, timeout_s=600, **options)
        store.search(name, queries[:1], TOPK)
        row["reopen: first answer s"] = f"{time.perf_counter() - started:.1f}"
        p50, p95, _ = search_phase(store, name, queries, truth)
        row["reopen: search p50/p95 ms"] = f"{p50:.1f} / {p95:.1f}"
    store.drop_collection(name)
    store.close()
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--large", action="store_true", help="also 100,000 rows")
    parser.add_argument("--index", default="HNSW", help="comma-separated: HNSW,FLAT,IVF_FLAT,"
                                                        "AUTOINDEX")
    parser.add_argument("--backends", default="lite,server")
    parser.add_argument("--server-uri", help="a running Milvus server (else one is started)")
    parser.add_argument("--settle", type=float, default=15.0,
                        help="seconds to wait before the second search phase")
    parser.add_argument("--lite-flush-bytes", type=int,
                        help="the store's Milvus Lite flush threshold (default: the store's)")
    args = parser.parse_args()
    options = {} if args.lite_flush_bytes is None else {"lite_flush_bytes": args.lite_flush_bytes}

    sizes = [args.rows] + ([100_000] if args.large and args.rows != 100_000 else [])
    backends = args.backends.split(",")
    results: list[tuple[str, dict[str, str]]] = []
    with tempfile.TemporaryDirectory(prefix="phantoscope-bench-") as tmp:
        server = None
        server_uri = args.server_uri
        if "server" in backends and not server_uri:
            from phantoscope.storage.milvus_server import LocalMilvusServer

            started = time.perf_counter()
            server = LocalMilvusServer(Path(tmp) / "milvus-server", grace_s=1)
            server_uri = server.start()
            print(f"Milvus server started in {time.perf_counter() - started:.1f} s "
                  f"at {server_uri}", flush=True)
        try:
            for rows in sizes:
                data, queries = clustered(rows)
                truth = exact_topk(data, queries)
                for backend in backends:
                    for index in args.index.split(","):
                        uri = (str(Path(tmp) / f"lite-{index}-{rows}.db") if backend == "lite"
                               else server_uri)
                        label = f"{backend} {index} {rows:,}"
                        print(f"running {label} ...", flush=True)
                        results.append((label, run(uri, index, data, queries, truth,
                                                   args.settle, backend == "lite", options)))
        finally:
            if server is not None:
                server.stop()

    keys = list(dict.fromkeys(k for _, row in results for k in row))
    width = max(len(k) for k in keys)
    cols = [label for label, _ in results]
    colw = [max(len(c), 16) for c in cols]
    print()
    print(" " * width + " | " + " | ".join(c.rjust(w) for c, w in zip(cols, colw, strict=True)))
    print("-" * (width + sum(w + 3 for w in colw)))
    for key in keys:
        cells = [row.get(key, "-").rjust(w) for (_, row), w in zip(results, colw, strict=True)]
        print(key.ljust(width) + " | " + " | ".join(cells))


if __name__ == "__main__":
    main()
