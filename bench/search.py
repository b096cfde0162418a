"""Search-by-image latency and QPS over 10k and 100k stored vectors, on Milvus Lite (the
default) and a Milvus server, each beside the bare vector-store call.

    .venv/bin/python bench/search.py [--sizes 10000,100000] [--backends lite,server]
                                     [--queries 200] [--profile]

Data: the default encoder (EfficientNet-Lite0) encodes --seeds real photos (scikit-image's
samples, cropped, recoloured, scaled); every other stored vector is one of those plus
Gaussian noise scaled per dimension by the seeds' spread, clipped at 0 (the features are
post-ReLU averages) and re-normalised (--sigma 0.5 puts them at cosine 0.944 from their
seed on average, as close as the real edited photos lie to their nearest other one: 0.943).
The vectors and their entity and vector rows are
written with the engine's own stores (MetaStore, MilvusVectorStore) into the default
application of a fresh PHANTOSCOPE_HOME, exactly where uploads would put them (the original
images themselves are not stored: search never reads them). Queries are other real photos of
the same subjects, 320-2400 px, sent as multipart files.

Layers measured, each at concurrency 1, 8 and 32 (threads in this process):

- store: `MilvusVectorStore.search` (top 10, the application's partition), query vectors
  made beforehand;
- encoder: decode + preprocess + ONNX Runtime for one query image in this process (what a
  search cannot avoid), concurrency 1 only;
- engine: `check_image` + `phantoscope.engine.search.search` in this process (gRPC to the
  operator, vector search, metadata join), no HTTP;
- HTTP: `POST /v1/application/default/search` to `phantoscope up` on the same home.

Milvus Lite lives in one process: the store and engine rows are measured first, then the
stores are closed and `phantoscope up` reopens the same database. A Milvus server is started
with `LocalMilvusServer` unless --server-uri names one. --profile adds, per configuration, a
cProfile breakdown of `check_image` + `engine.search` by part and, for Milvus Lite, its own
`Collection.search` called in this thread, by function.

Other processes share this machine: latencies are percentiles over --queries searches (and at
least 4 per client), after 20 warm-up searches.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import os
import pstats
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from common import Latency, engine, make_photos, print_table, timed_ms
from sqlalchemy import insert

from phantoscope.cli.launcher import (
    DEFAULT_APPLICATION,
    DEFAULT_FIELD,
    DEFAULT_PIPELINE,
    ensure_defaults,
)
from phantoscope.config import ServerSettings
from phantoscope.engine.context import Stores
from phantoscope.engine.intake import check_image
from phantoscope.engine.names import collection_name, partition_name
from phantoscope.engine.search import search as engine_search
from phantoscope.imaging.codec import decode_image
from phantoscope.operators.process import OperatorProcess
from phantoscope.storage.meta import EntityRow, VectorRow
from phantoscope.storage.milvus_vectors import MilvusVectorStore
from phantoscope.zoo import DEFAULT_ENCODER
from phantoscope.zoo.efficientnet import EfficientNetLite0Encoder

TOPK = 10
CONCURRENCY = (1, 8, 32)
WRITE_CHUNK = 10_000
TARGET_EXTRA_MS = 15.0


# -- data ----------------------------------------------------------------------------------------


def encode_photos(encoder: EfficientNetLite0Encoder, photos: Sequence[bytes]) -> np.ndarray:
    images = [decode_image(data, min_side=encoder.min_image_side) for data in photos]
    return np.concatenate([encoder.run(images[i:i + 16]) for i in range(0, len(images), 16)])


def synthetic(seeds: np.ndarray, rows: int, sigma: float, seed: int = 0) -> np.ndarray:
    """``rows`` vectors: the seeds first, then noisy copies of random seeds, unit length."""
    rng = np.random.default_rng(seed)
    spread = seeds.std(axis=0, keepdims=True)
    picks = rng.integers(0, len(seeds), rows - len(seeds))
    noise = rng.standard_normal((len(picks), seeds.shape[1]), dtype=np.float32)
    extra = np.maximum(seeds[picks] + sigma * spread * noise, 0)
    vectors = np.concatenate([seeds, extra]).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def mean_cosine_to_seed(seeds: np.ndarray, vectors: np.ndarray) -> float:
    """How close the made vectors lie to their nearest seed (1.0: copies)."""
    sample = vectors[len(seeds):len(seeds) + 2000]
    return float((sample @ seeds.T).max(axis=1).mean())


def write_rows(stores: Stores, collection: str, vectors: np.ndarray) -> None:
    """Vectors, then entity and vector rows, as `engine.entities` writes an upload (rows in
    bulk with SQLAlchemy Core: the same tables and values, far faster than the ORM)."""
    ids = np.arange(1, len(vectors) + 1, dtype=np.int64) + 10**12
    partition = partition_name(DEFAULT_APPLICATION)
    for start in range(0, len(vectors), WRITE_CHUNK):
        chunk = ids[start:start + WRITE_CHUNK]
        stores.vectors.insert(collection, chunk.tolist(), vectors[start:start + WRITE_CHUNK],
                              partition=partition)
        entities = [{"id": int(i), "application": DEFAULT_APPLICATION, "field": DEFAULT_FIELD,
                     "object_key": f"default-{i:x}", "content_type": "image/jpeg",
                     "sha256": hashlib.sha256(str(i).encode()).hexdigest(), "size": 100_000}
                    for i in chunk]
        rows = [{"id": int(i), "entity_id": int(i), "pipeline": DEFAULT_PIPELINE} for i in chunk]
        with stores.meta.engine.begin() as connection:
            connection.execute(insert(EntityRow), entities)
            connection.execute(insert(VectorRow), rows)


def wait_indexed(store: MilvusVectorStore, collection: str) -> None:
    """Flush, then wait for the backend's index builds (private APIs; benchmark only)."""
    store.flush(collection)
    if store.is_lite:
        from milvus_lite.server_manager import server_manager_instance

        _server, db, _port = server_manager_instance._servers[store.uri]
        db.get_collection(collection)._wait_for_bg()
        return
    client = store._client
    while True:
        info = client.describe_index(collection, client.list_indexes(collection)[0])
        if not info.get("pending_index_rows", 0):
            return
        time.sleep(1)


# -- measuring -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measured:
    latency: Latency
    qps: float


def run_concurrently(call: Callable[[int], object], count: int, concurrency: int) -> Measured:
    """``count`` calls ``call(i)``, ``concurrency`` at a time: latencies and throughput."""
    samples = [0.0] * count

    def one(index: int) -> None:
        samples[index] = timed_ms(lambda: call(index))

    with ThreadPoolExecutor(concurrency) as pool:
        started = time.perf_counter()
        list(pool.map(one, range(count)))
        elapsed = time.perf_counter() - started
    return Measured(Latency(tuple(samples)), count / elapsed)


def measure_levels(call: Callable[[int], object], queries: int,
                   levels: Sequence[int] = CONCURRENCY) -> dict[int, Measured]:
    for index in range(min(queries, 20)):  # warm-up
        call(index)
    return {level: run_concurrently(call, max(queries, 4 * level), level) for level in levels}


@dataclass
class Result:
    backend: str
    rows: int
    layers: dict[str, dict[int, Measured]]


def in_process_layers(stores: Stores, collection: str, query_vectors: np.ndarray,
                      photos: Sequence[bytes], encoder: EfficientNetLite0Encoder,
                      queries: int) -> dict[str, dict[int, Measured]]:
    partition = partition_name(DEFAULT_APPLICATION)

    def store_call(index: int) -> object:
        vector = query_vectors[index % len(query_vectors)]
        return stores.vectors.search(collection, vector[None, :], TOPK, partition=partition)

    def encode_call(index: int) -> object:
        return encode_photos(encoder, [photos[index % len(photos)]])

    def engine_call(index: int) -> object:
        image = check_image(photos[index % len(photos)], stores.limits, "query")
        return engine_search(stores, DEFAULT_APPLICATION, None, image, TOPK)

    return {
        "store: MilvusVectorStore.search": measure_levels(store_call, queries),
        "encoder: decode + ORT, 1 image": measure_levels(encode_call, queries, (1,)),
        "engine: check_image + engine.search": measure_levels(engine_call, queries),
    }


def http_layer(url: str, photos: Sequence[bytes], queries: int) -> dict[int, Measured]:
    with httpx.Client(base_url=url, timeout=120,
                      limits=httpx.Limits(max_connections=64)) as http:

        def call(index: int) -> object:
            answer = http.post(f"/v1/application/{DEFAULT_APPLICATION}/search",
                               files={"file": ("query.jpg", photos[index % len(photos)])},
                               data={"topk": str(TOPK)})
            answer.raise_for_status()
            return answer

        return measure_levels(call, queries)


# -- profiling ----------------------------------------------------------------------------------

# Where the engine's search spends its time: functions of the calling thread, by cProfile.
ENGINE_PARTS = {
    "check_image (API-side decode check)": ("engine/intake.py", "check_image"),
    "metadata: application, pipeline, operators": ("engine/search.py", "plan_search"),
    "embed: operator Execute over gRPC": ("operators/client.py", "execute"),
    "vector store search": ("storage/vectors.py", "search"),
    "metadata join: entities_for_vectors": ("storage/meta.py", "entities_for_vectors"),
}


def profiled(calls: Callable[[], object]) -> dict:
    """cProfile's raw table: (file, line, function) -> (cc, calls, self s, cumulative s, _)."""
    profile = cProfile.Profile()
    profile.enable()
    calls()
    profile.disable()
    return pstats.Stats(profile).stats  # type: ignore[attr-defined]


def cumulative(stats: dict, file: str, function: str) -> tuple[int, float]:
    """Calls and cumulative seconds of ``function`` in a file whose path ends with ``file``."""
    found = [(calls, seconds) for (path, _, name), (_, calls, _, seconds, _) in stats.items()
             if path.endswith(file) and name == function]
    return sum(c for c, _ in found), sum(s for _, s in found)


def profile_engine(stores: Stores, photos: Sequence[bytes]) -> None:
    """cProfile of `engine.search` one query at a time: milliseconds per search by part."""

    def searches() -> None:
        for data in photos:
            image = check_image(data, stores.limits, "query")
            engine_search(stores, DEFAULT_APPLICATION, None, image, TOPK)

    stats = profiled(searches)
    whole = (cumulative(stats, "engine/search.py", "search")[1]
             + cumulative(stats, "engine/intake.py", "check_image")[1])
    rows = []
    for label, (file, function) in ENGINE_PARTS.items():
        calls, seconds = cumulative(stats, file, function)
        rows.append((label, f"{calls / len(photos):.0f}", f"{1000 * seconds / len(photos):.2f}",
                     f"{100 * seconds / whole:.0f}"))
    print(f"\ncheck_image + engine.search by part (cProfile, {len(photos)} searches one at a "
          f"time: {1000 * whole / len(photos):.1f} ms a search under the profiler)")
    print_table(("part (inclusive)", "calls/search", "ms/search", "%"), rows)


def lite_collection(store: MilvusVectorStore, collection: str) -> Any:
    """Milvus Lite's own Collection object behind ``store`` (private API; benchmark only)."""
    from milvus_lite.server_manager import server_manager_instance

    _server, db, _port = server_manager_instance._servers[store.uri]
    return db.get_collection(collection)


def profile_lite(store: MilvusVectorStore, collection: str, query_vectors: np.ndarray) -> None:
    """Milvus Lite's search called in this thread, without pymilvus or gRPC: its time beside
    the store's, and where it goes (cProfile, functions by self time)."""
    partition = partition_name(DEFAULT_APPLICATION)
    lite = lite_collection(store, collection)

    def direct(index: int) -> object:
        vector = query_vectors[index % len(query_vectors)]
        return lite.search([vector.tolist()], top_k=TOPK, metric_type="IP",
                           partition_names=[partition], search_params={"ef": 64})

    def through_store(index: int) -> object:
        vector = query_vectors[index % len(query_vectors)]
        return store.search(collection, vector[None, :], TOPK, partition=partition)

    count = len(query_vectors)
    bare = Latency(tuple(timed_ms(lambda i=i: direct(i)) for i in range(count)))
    full = Latency(tuple(timed_ms(lambda i=i: through_store(i)) for i in range(count)))
    print(f"\nMilvus Lite search p50: Collection.search in this thread {bare.p50:.1f} ms; "
          f"through MilvusVectorStore {full.p50:.1f} ms")
    stats = profiled(lambda: [direct(i) for i in range(count)])
    total = sum(entry[2] for entry in stats.values())
    top = sorted(stats.items(), key=lambda item: -item[1][2])[:10]
    print_table(("Collection.search: function (by self time)", "calls/search", "ms/search", "%"),
                [(f"{Path(path).name}:{name}", f"{nc / count:.0f}",
                  f"{1000 * tt / count:.2f}", f"{100 * tt / total:.0f}")
                 for (path, _, name), (_, nc, tt, _, _) in top])


# -- one configuration ---------------------------------------------------------------------------


def populate_and_measure(backend: str, home: Path, vectors: np.ndarray, server_uri: str | None,
                         query_vectors: np.ndarray, photos: Sequence[bytes],
                         encoder: EfficientNetLite0Encoder, queries: int,
                         profile: bool) -> Result:
    env = {"PHANTOSCOPE_VECTORS": server_uri} if server_uri else {}
    if server_uri:  # one server holds every run's collection: start from none
        with MilvusVectorStore(server_uri) as store:
            store.drop_collection(collection_name(DEFAULT_PIPELINE))
    settings = ServerSettings(home=home, vectors=server_uri, storage_timeout_s=600)
    with OperatorProcess(DEFAULT_ENCODER) as operator:
        stores = Stores.open(settings)
        try:
            ensure_defaults(stores, operator.endpoint)
            pipeline = stores.meta.get_pipeline(DEFAULT_PIPELINE)
            assert pipeline is not None
            started = time.perf_counter()
            write_rows(stores, pipeline.collection, vectors)
            assert isinstance(stores.vectors, MilvusVectorStore)
            wait_indexed(stores.vectors, pipeline.collection)
            print(f"  wrote and indexed {len(vectors):,} vectors + rows in "
                  f"{time.perf_counter() - started:.0f} s", flush=True)
            layers = in_process_layers(stores, pipeline.collection, query_vectors, photos,
                                       encoder, queries)
            if profile:
                profile_engine(stores, photos)
                if backend == "lite":
                    profile_lite(stores.vectors, pipeline.collection, query_vectors)
        finally:
            stores.close()
    with engine(home=home, env=env) as eng:
        layers["HTTP: POST .../search (phantoscope up)"] = http_layer(eng.url, photos, queries)
    return Result(backend, len(vectors), layers)


# -- report --------------------------------------------------------------------------------------


def report(result: Result) -> None:
    print(f"\n{result.backend}, {result.rows:,} vectors (1280-d, IP, HNSW), top {TOPK}")
    rows = []
    for layer, levels in result.layers.items():
        for level, measured in levels.items():
            latency = measured.latency
            rows.append((layer, str(level), f"{latency.pct(50):.1f}", f"{latency.pct(95):.1f}",
                         f"{latency.pct(99):.1f}", f"{measured.qps:.1f}"))
    print_table(("layer", "conc.", "p50 ms", "p95 ms", "p99 ms", "QPS"), rows)
    layers = result.layers
    store = layers["store: MilvusVectorStore.search"][1].latency.p50
    encoder = layers["encoder: decode + ORT, 1 image"][1].latency.p50
    http = layers["HTTP: POST .../search (phantoscope up)"][1]
    overhead = http.latency.p50 - encoder - store
    verdict = "met" if http.latency.p50 <= encoder + TARGET_EXTRA_MS else "NOT met"
    print(f"HTTP p50 {http.latency.p50:.1f} ms = encoder {encoder:.1f} + store {store:.1f} + "
          f"the rest {overhead:.1f} ms; target p50 <= encoder + {TARGET_EXTRA_MS:.0f} ms = "
          f"{encoder + TARGET_EXTRA_MS:.1f} ms: {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="stored vectors, comma-separated")
    parser.add_argument("--backends", default="lite,server", help="lite, server or both")
    parser.add_argument("--queries", type=int, default=200, help="searches per measurement")
    parser.add_argument("--seeds", type=int, default=400, help="real photos encoded")
    parser.add_argument("--sigma", type=float, default=0.5,
                        help="noise around the seeds, in units of each dimension's spread")
    parser.add_argument("--server-uri", help="a running Milvus server (else one is started)")
    parser.add_argument("--profile", action="store_true", help="profile bare Lite searches")
    args = parser.parse_args()

    encoder = EfficientNetLite0Encoder()
    encoder.load()
    seeds = encode_photos(encoder, make_photos(args.seeds, seed=1))
    photos = make_photos(min(args.queries, 100), seed=2)
    query_vectors = encode_photos(encoder, photos)
    backends = args.backends.split(",")
    print(f"{args.seeds} real seed vectors; queries: {len(photos)} other photos, "
          f"{os.cpu_count()} CPUs", flush=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="phantoscope-bench-") as tmp:
        server = None
        server_uri = args.server_uri
        if "server" in backends and not server_uri:
            from phantoscope.storage.milvus_server import LocalMilvusServer

            server = LocalMilvusServer(Path(tmp) / "milvus-server", grace_s=1)
            server_uri = server.start()
        try:
            for rows in (int(size) for size in args.sizes.split(",")):
                vectors = synthetic(seeds, rows, args.sigma)
                print(f"{rows:,} vectors: mean cosine to the nearest seed "
                      f"{mean_cosine_to_seed(seeds, vectors):.3f}", flush=True)
                for backend in backends:
                    print(f"running {backend} {rows:,} ...", flush=True)
                    home = Path(tmp) / f"{backend}-{rows}"
                    result = populate_and_measure(
                        backend, home, vectors, server_uri if backend == "server" else None,
                        query_vectors, photos, encoder, args.queries, args.profile)
                    report(result)
                    results.append(result)
        finally:
            if server is not None:
                server.stop()


if __name__ == "__main__":
    main()
