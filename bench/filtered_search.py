"""Filtered vector search beside unfiltered, on Milvus Lite (the default) or a Milvus server,
with the insert rate, index build time and memory it took to get there (issue 16).

    .venv/bin/python bench/filtered_search.py [--vectors 100000] [--checkpoints N,N...]
                                              [--dimension 1280] [--queries 200]
                                              [--baseline-queries 5] [--no-recall]
                                              [--encoder-ms 9.9] [--rss-target-gb 8]
                                              [--min-free-gb 3] [--two-copies]
                                              [--uri http://HOST:19530 | --server]

Data: --vectors vectors of --dimension around 200 Gaussian cluster centres, normalised,
metric IP (as bench/vector_store.py), made chunk by chunk (10,000 rows, each chunk seeded by
its number, so the bench can make it again instead of keeping it: at 1M of 1280-d the data is
5.1 GB) and written with `MilvusVectorStore.insert` one chunk a call into one partition, each
row with a payload as the engine writes it: a name (``photos/<i>.jpg``), attributes
``{"bucket": 0-99, "half": "even"|"odd", "tags": [...]}`` and EXIF ``{"taken_at": ...,
"camera": ...}``, drawn at random (not tied to the clusters). The bench keeps only each
filter's rows (a bool a row) and the query vectors (stored rows from the first checkpoint,
moved a little). At each of --checkpoints and at --vectors, flushed and indexed (HNSW, the
store's default), then measured:

- insert rate (time in the store's insert calls only; Milvus Lite builds indexes on a
  background thread meanwhile), then the time the index builds still take after the last
  insert; on Milvus Lite, the background thread's own totals (index builds, compactions)
  from milvus-lite's log, its segments and where their memory goes (Arrow tables, faiss
  indexes);
- memory: for Milvus Lite the bench process's VmRSS / VmHWM (Milvus Lite runs in it) after
  the insert, after indexing and after searching, beside the bench's own arrays, and its
  highest VmRSS sampled every 0.1 s with milvus-lite's last log lines before it (what the
  peak came with); for a server started with --server, the server process tree's VmRSS (and
  summed VmHWM);
- Milvus Lite: an indexed segment's vectors are held once, in faiss's HNSW storage
  (`storage/lite_one_copy.py`); --two-copies keeps milvus-lite's own way (the segment's Arrow
  table holds them too), the "before" of that change;
- the searches below, then issue 16's targets: search p50 ≤ --encoder-ms + 25 ms and peak
  RSS ≤ --rss-target-gb. --min-free-gb stops the run before the machine runs out of memory.

Filters, built as the engine builds them (`engine.filters.parse_filter` +
`milvus_expression(..., FILTER_FIELDS)`): 1 % selectivity ``{"attributes.bucket": 7}``,
50 % ``{"attributes.half": "even"}``, and 1 % on EXIF and a list (``taken_at`` in a range
and ``attributes.tags`` containing a value). Measured, one query vector a search, top 10:

- unfiltered `MilvusVectorStore.search` (the baseline: the target is filtered p50 ≤ this
  p50 + 10 ms on Milvus Lite);
- each filter; the first filtered search after the index is built is reported apart
  (Milvus Lite decodes a segment's JSON column once, then caches it);
- recall@10 of each against an exact search over the rows the filter selects
  (`engine.filters.matches`), streamed over the regenerated chunks (--no-recall skips it);
- Milvus Lite only: the same filtered searches through milvus-lite 3.2.2's own executor
  (--baseline-queries of them: it evaluates JSON filters row by row), as the ratio's
  baseline.

A server is started with `LocalMilvusServer` with --server, or named with --uri. Other
processes share this machine: compare ratios within one run.
"""

from __future__ import annotations

import argparse
import collections
import ctypes
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from common import Latency, descendants, print_table, status_mb, timed_ms

from phantoscope.engine.filters import matches, milvus_expression, parse_filter
from phantoscope.storage import lite_compaction, lite_one_copy, lite_search
from phantoscope.storage.milvus_vectors import MilvusVectorStore
from phantoscope.storage.vectors import FILTER_FIELDS, VectorPayload

TOPK = 10
CHUNK = 10_000
PEAK_SAMPLE_S = 0.1
PEAK_DESCRIBED_MB = 64  # the peak is described again once it has grown this much
PROGRESS_ROWS = 100_000
CENTRES = 200
DATA_SEED, PAYLOAD_SEED, QUERY_SEED = 0, 1, 2
PARTITION = "app_default"
COLLECTION = "bench_filtered"
VECTOR_FIELD = "vector"
TAGS = ("red", "green", "blue", "cat", "dog", "car", "tree", "sea", "sky", "snow")
START = 1_577_836_800  # 2020-01-01
UNFILTERED = "unfiltered"
FILTERS: dict[str, dict[str, Any]] = {
    "1 % (attributes.bucket == 7)": {"attributes.bucket": 7},
    "50 % (attributes.half == even)": {"attributes.half": "even"},
    "≈1 % (taken_at range, tags contain)": {
        "taken_at": {"gte": "2021-01-01", "lt": "2021-03-01"}, "attributes.tags": "snow"},
}


# -- data, regenerated chunk by chunk ------------------------------------------------------------


def chunks(total: int) -> Iterator[tuple[int, int, int]]:
    """(chunk number, first row, end row) over ``total`` rows in CHUNK-row chunks."""
    for number, start in enumerate(range(0, total, CHUNK)):
        yield number, start, min(start + CHUNK, total)


def cluster_centres(dimension: int) -> np.ndarray:
    return np.random.default_rng(DATA_SEED).standard_normal((CENTRES, dimension)).astype(
        np.float32)


def chunk_vectors(centres: np.ndarray, number: int, rows: int) -> np.ndarray:
    """Chunk ``number``'s normalised vectors around ``centres``: the same on every call."""
    rng = np.random.default_rng([DATA_SEED, number])
    data = centres[rng.integers(0, CENTRES, rows)]
    data += 0.6 * rng.standard_normal(data.shape, dtype=np.float32)
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    return data


def chunk_payloads(number: int, start: int, rows: int) -> list[VectorPayload]:
    """Chunk ``number``'s payloads (rows ``start``...): the same on every call."""
    rng = np.random.default_rng([PAYLOAD_SEED, number])
    buckets = rng.integers(0, 100, rows)
    halves = rng.integers(0, 2, rows)
    tag_counts = rng.integers(0, 4, rows)
    taken = START + rng.integers(0, 5 * 365 * 86400, rows)
    made = []
    for i in range(rows):
        tags = [TAGS[t] for t in rng.choice(len(TAGS), tag_counts[i], replace=False)]
        made.append(VectorPayload(
            name=f"photos/{start + i}.jpg",
            attributes={"bucket": int(buckets[i]), "half": "even" if halves[i] else "odd",
                        "tags": tags},
            exif={"taken_at": int(taken[i]),
                  "camera": "X100V" if (start + i) % 3 else "iPhone 15"}))
    return made


def query_rows(total: int, queries: int) -> np.ndarray:
    return np.sort(np.random.default_rng(QUERY_SEED).choice(total, queries, replace=False))


def noisy(picked: np.ndarray) -> np.ndarray:
    """Queries: stored vectors plus noise (standard deviation 0.02 a coordinate), normalised."""
    rng = np.random.default_rng(QUERY_SEED + 1)
    moved = picked + 0.02 * rng.standard_normal(picked.shape, dtype=np.float32)
    return moved / np.linalg.norm(moved, axis=1, keepdims=True)


def record(payload: VectorPayload) -> dict[str, Any]:
    """A payload as `engine.filters.matches` reads an entity."""
    return {"name": payload.name or None, "attributes": payload.attributes, **payload.exif}


# -- memory ----------------------------------------------------------------------------------


def available_gb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024**2
    raise RuntimeError("no MemAvailable in /proc/meminfo")


@dataclass
class MemoryWatch:
    """The machine's free memory: stops the run before it pushes others' work into the OOM
    killer, and remembers the lowest MemAvailable seen."""

    min_free_gb: float
    lowest_gb: float = float("inf")

    def check(self, when: str) -> None:
        free = available_gb()
        self.lowest_gb = min(self.lowest_gb, free)
        if free < self.min_free_gb:
            raise SystemExit(f"stopped {when}: MemAvailable {free:.1f} GB < --min-free-gb "
                             f"{self.min_free_gb} GB")


def server_tree_mb(pid: int) -> tuple[float, float]:
    """VmRSS and VmHWM summed over ``pid`` and its descendants (a Milvus server's tree)."""
    tree = descendants(pid)
    return (sum(status_mb(p, "VmRSS") for p in tree), sum(status_mb(p, "VmHWM") for p in tree))


def memory(server_pid: int | None) -> str:
    if server_pid is None:
        return (f"bench process (Milvus Lite in it) VmRSS {status_mb('self', 'VmRSS'):,.0f} MB, "
                f"VmHWM {status_mb('self', 'VmHWM'):,.0f} MB")
    rss, hwm = server_tree_mb(server_pid)
    return (f"Milvus server tree VmRSS {rss:,.0f} MB (sum of VmHWM {hwm:,.0f} MB); bench "
            f"process VmRSS {status_mb('self', 'VmRSS'):,.0f} MB")


def lite_breakdown(store: MilvusVectorStore) -> list[str]:
    """Where Milvus Lite's memory goes and what a search walks: its segments, their Arrow
    tables (a vector column read from faiss's storage counted once, with faiss), their numpy
    vectors (when not a view of the table) and their faiss indexes (private APIs; benchmark
    only)."""
    collection = lite_search.local_collection(store.uri, COLLECTION)
    segments = list(collection._segment_cache.values())
    rows = sorted(segment.num_rows for segment in segments)
    sharing = [lite_one_copy.shares(segment, VECTOR_FIELD) for segment in segments]
    arrow = sum(segment.table.nbytes - (segment.vectors.nbytes if shared else 0)
                for segment, shared in zip(segments, sharing, strict=True))
    copies = sum(segment.vectors.nbytes for segment in segments if not _is_view(segment))
    stored = graph = 0
    for segment in segments:
        index = getattr(segment.indexes.get(VECTOR_FIELD), "_index", None)
        if index is not None:
            stored += index.ntotal * index.d * 4
            graph += index.hnsw.neighbors.size() * 4 + index.hnsw.levels.size() * 4
    mb = 1024**2
    return [f"{len(segments)} segments ({rows[0]:,}-{rows[-1]:,} rows, median "
            f"{rows[len(rows) // 2]:,}), searched one after another; {sum(sharing)} of them "
            "read their vectors from faiss's storage (one copy)",
            f"Arrow tables {arrow / mb:,.0f} MB; numpy vector copies beside them "
            f"{copies / mb:,.0f} MB; faiss HNSW vectors {stored / mb:,.0f} MB + graph "
            f"{graph / mb:,.0f} MB"]


def _is_view(segment: Any) -> bool:
    """Whether the segment's numpy vectors share the Arrow table's buffer."""
    column = segment.table.column(VECTOR_FIELD)
    address = segment.vectors.ctypes.data
    for chunk in column.chunks:
        buffer = chunk.values.buffers()[1]
        if buffer.address <= address < buffer.address + buffer.size:
            return True
    return False


class BackgroundLog(logging.Handler):
    """Sums milvus-lite's own log lines for its background index builds and compactions, and
    `lite_compaction`'s for the merges it does in milvus-lite's place."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.index_s = self.compaction_s = 0.0
        self.indexes = self.compactions = 0
        self.recent: collections.deque[str] = collections.deque(maxlen=3)
        self.started = time.perf_counter()

    def emit(self, record: logging.LogRecord) -> None:
        self.recent.append(f"{time.perf_counter() - self.started:.0f} s "
                           f"{record.getMessage()[:90]}")
        if record.msg.startswith("bg: built"):
            self.indexes += int(record.args[0])
            self.index_s += float(record.args[1])
        elif record.msg.startswith("compaction: partition=%s done"):
            self.compactions += 1
            self.compaction_s += float(record.args[1])
        elif record.msg == lite_compaction.MERGED:
            self.compactions += 1
            self.compaction_s += float(record.args[-1])

    def __str__(self) -> str:
        return (f"milvus-lite's background thread: {self.indexes} segment index builds in "
                f"{self.index_s:.0f} s, {self.compactions} compactions in "
                f"{self.compaction_s:.0f} s")


class PeakWatch(threading.Thread):
    """VmRSS sampled every PEAK_SAMPLE_S: the highest seen, when, and the background's last
    log lines before it (what the process was doing at its peak)."""

    def __init__(self, background: BackgroundLog, collection: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self.background = background
        self.collection = collection
        self.highest_mb = self.described_mb = 0.0
        self.at = self.held = ""

    def run(self) -> None:
        while True:
            rss = status_mb("self", "VmRSS")
            if rss > self.highest_mb:
                elapsed = time.perf_counter() - self.background.started
                self.highest_mb = rss
                self.at = (f"{elapsed:.0f} s after the store opened; the background's last "
                           f"lines before it: {' | '.join(self.background.recent) or 'none'}")
                if rss > self.described_mb + PEAK_DESCRIBED_MB:
                    self.described_mb = rss
                    self.held = held_at(self.collection)
            time.sleep(PEAK_SAMPLE_S)

    def __str__(self) -> str:
        return (f"highest VmRSS sampled every {PEAK_SAMPLE_S} s: {self.highest_mb:,.0f} MB, "
                f"{self.at}; near it ({self.described_mb:,.0f} MB): {self.held or '—'}")


def _vectors_in_table(segment: Any) -> bool:
    """Whether ``segment``'s numpy vectors are a view of its table's vector column."""
    if not segment.vectors.size:
        return True
    column = segment.table.column(VECTOR_FIELD)
    if column.num_chunks != 1:
        return False
    values = column.chunk(0).flatten()
    return segment.vectors.ctypes.data == values.buffers()[1].address + 4 * values.offset


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


def held_at(find: Callable[[], Any]) -> str:
    """What holds memory now (private APIs; benchmark only): the cached segments' Arrow
    tables (their vectors where not read from faiss's storage), numpy vectors that are not a
    view of their table (milvus-lite joins a vector column of several chunks into a copy),
    their faiss indexes, Arrow's pool, and glibc's heap (in use, and freed but kept)."""
    import pyarrow as pa

    mb = 1024**2
    try:
        segments = tuple(find()._segment_cache.values())
    except Exception as error:  # no collection yet, or the cache changed while read
        return f"segments not read ({type(error).__name__})"
    unindexed = [s for s in segments if VECTOR_FIELD not in s.indexes]
    shared = [s for s in segments if lite_one_copy.shares(s, VECTOR_FIELD)]
    tables = sum(s.table.nbytes for s in segments) - sum(s.vectors.nbytes for s in shared)
    apart = sum(s.vectors.nbytes for s in segments if not _vectors_in_table(s))
    stored = sum(index.ntotal * index.d * 4 for s in segments
                 if (index := getattr(s.indexes.get(VECTOR_FIELD), "_index", None)) is not None)
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = _Mallinfo2
    heap = libc.mallinfo2()
    pool = pa.default_memory_pool()
    return (f"{len(segments)} segments, {len(unindexed)} unindexed "
            f"({sum(s.num_rows for s in unindexed):,} rows); Arrow tables {tables / mb:,.0f} MB; "
            f"numpy vectors apart from their tables {apart / mb:,.0f} MB; "
            f"faiss vectors {stored / mb:,.0f} MB; Arrow pool ({pool.backend_name}) "
            f"{pool.bytes_allocated() / mb:,.0f} MB allocated; glibc heap in use "
            f"{(heap.uordblks + heap.hblkhd) / mb:,.0f} MB, freed and kept "
            f"{heap.fordblks / mb:,.0f} MB")


# -- store -----------------------------------------------------------------------------------


@dataclass
class Loaded:
    """What the store holds so far, and what the bench keeps of it: each filter's rows
    (UNFILTERED: all) and the stored vectors the queries are made from."""

    masks: dict[str, np.ndarray]
    wanted: np.ndarray  # the rows the queries are made from, all among the first checkpoint's
    picked: np.ndarray
    rows: int = 0
    seconds: float = 0.0  # in the store's insert calls

    @classmethod
    def empty(cls, args: argparse.Namespace, first: int) -> Loaded:
        masks = {label: np.zeros(args.vectors, dtype=bool) for label in [UNFILTERED, *FILTERS]}
        wanted = query_rows(first, args.queries)
        return cls(masks, wanted, np.empty((len(wanted), args.dimension), dtype=np.float32))

    def queries(self) -> np.ndarray:
        return noisy(self.picked)

    def nbytes(self) -> int:
        return self.picked.nbytes + sum(mask.nbytes for mask in self.masks.values())


def insert_up_to(store: MilvusVectorStore, loaded: Loaded, end_row: int, centres: np.ndarray,
                 watch: MemoryWatch) -> None:
    """Insert rows up to ``end_row`` chunk by chunk (only the store's insert is timed), noting
    each filter's rows and the query rows on the way; a line of progress every
    PROGRESS_ROWS."""
    parsed = {label: parse_filter(spec) for label, spec in FILTERS.items()}
    for number, start, end in chunks(end_row):
        if start < loaded.rows:
            continue
        vectors = chunk_vectors(centres, number, end - start)
        made = chunk_payloads(number, start, end - start)
        records = [record(p) for p in made]
        loaded.masks[UNFILTERED][start:end] = True
        for label, spec in parsed.items():
            loaded.masks[label][start:end] = [matches(spec, r) for r in records]
        inside = (loaded.wanted >= start) & (loaded.wanted < end)
        loaded.picked[inside] = vectors[loaded.wanted[inside] - start]
        began = time.perf_counter()
        store.insert(COLLECTION, list(range(start, end)), vectors, partition=PARTITION,
                     payloads=made)
        loaded.seconds += time.perf_counter() - began
        loaded.rows = end
        watch.check(f"after {end:,} rows")
        if end % PROGRESS_ROWS == 0:
            print(f"  {end:,} rows: insert {loaded.seconds:.0f} s "
                  f"({end / loaded.seconds:,.0f} vectors/s); {memory_note(store)}; "
                  f"MemAvailable {available_gb():.1f} GB", flush=True)


def memory_note(store: MilvusVectorStore) -> str:
    return f"VmRSS {status_mb('self', 'VmRSS'):,.0f} MB" if store.is_lite else "server"


def wait_indexed(store: MilvusVectorStore, watch: MemoryWatch) -> None:
    """Flush, then wait for the index builds (private APIs; benchmark only)."""
    store.flush(COLLECTION)
    if store.is_lite:
        collection = lite_search.local_collection(store.uri, COLLECTION)
        drained = collection._bg_executor.submit(lambda: None)
        while not drained.done():
            watch.check("while indexing")
            time.sleep(2)
        return
    client = store._client
    while client.describe_index(COLLECTION, client.list_indexes(COLLECTION)[0]).get(
            "pending_index_rows", 0):
        watch.check("while indexing")
        time.sleep(2)


def exact_neighbours(centres: np.ndarray, total: int, queries: np.ndarray,
                     masks: dict[str, np.ndarray]) -> dict[str, list[set[int]]]:
    """Each query's exact top-k among each mask's rows, streamed over regenerated chunks."""
    best = {label: (np.full((len(queries), TOPK), -np.inf, dtype=np.float32),
                    np.full((len(queries), TOPK), -1)) for label in masks}
    for number, start, end in chunks(total):
        scores = queries @ chunk_vectors(centres, number, end - start).T
        for label, mask in masks.items():
            rows = np.flatnonzero(mask[start:end])
            top_scores, top_ids = best[label]
            merged = np.concatenate([top_scores, scores[:, rows]], axis=1)
            ids = np.concatenate([top_ids, np.broadcast_to(rows + start,
                                                          (len(queries), len(rows)))], axis=1)
            keep = np.argpartition(-merged, TOPK - 1, axis=1)[:, :TOPK]
            best[label] = (np.take_along_axis(merged, keep, 1), np.take_along_axis(ids, keep, 1))
    return {label: [set(row[row >= 0].tolist()) for row in ids]
            for label, (_, ids) in best.items()}


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
    parser.add_argument("--checkpoints", type=lambda text: [int(n) for n in text.split(",")],
                        default=[], help="also measure at these sizes on the way "
                        "(comma-separated), e.g. 200000,500000")
    parser.add_argument("--no-recall", action="store_true",
                        help="skip the exact top-k (a pass over regenerated vectors)")
    parser.add_argument("--encoder-ms", type=float, default=9.9,
                        help="encoder p50 for the search target p50 ≤ encoder + 25 ms")
    parser.add_argument("--rss-target-gb", type=float, default=8.0)
    parser.add_argument("--min-free-gb", type=float, default=3.0,
                        help="stop when the machine's MemAvailable falls below this")
    parser.add_argument("--two-copies", action="store_true",
                        help="Milvus Lite: segments keep their own vectors beside faiss's "
                        "(milvus-lite's way, before `lite_one_copy`), for a before/after")
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
            run(uri or str(Path(folder) / "vectors.db"), args,
                server.pid if server is not None else None)
        finally:
            if server is not None:
                server.stop()


def run(uri: str, args: argparse.Namespace, server_pid: int | None) -> None:
    watch = MemoryWatch(args.min_free_gb)
    centres = cluster_centres(args.dimension)
    sizes = sorted({*args.checkpoints, args.vectors})
    before = status_mb("self", "VmRSS")
    store = MilvusVectorStore(uri, timeout_s=600)
    if args.two_copies:
        lite_one_copy.uninstall()
    background = BackgroundLog()
    for name in ("milvus_lite.engine", lite_compaction.__name__):
        logging.getLogger(name).addHandler(background)
        logging.getLogger(name).setLevel(logging.INFO)
    peak = PeakWatch(background, lambda: lite_search.local_collection(store.uri, COLLECTION)
                     if store.is_lite else None)
    peak.start()
    backend = "Milvus Lite" if store.is_lite else "Milvus server"
    print(f"{backend}: up to {args.vectors:,} vectors of {args.dimension}-d, measured at "
          f"{', '.join(f'{n:,}' for n in sizes)}; {args.queries} queries, top {TOPK}; "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, MemAvailable "
          f"{available_gb():.1f} GB; bench process before the store: VmRSS {before:,.0f} MB; "
          f"indexed segments' vectors held {'twice' if args.two_copies else 'once'}",
          flush=True)
    try:
        store.drop_collection(COLLECTION)
        store.create_collection(COLLECTION, args.dimension, "IP")
        loaded = Loaded.empty(args, sizes[0])
        started = time.perf_counter()
        for size in sizes:
            insert_up_to(store, loaded, size, centres, watch)
            print(f"\n== {size:,} vectors ==", flush=True)
            measure_at(store, loaded, args, centres, watch, server_pid, background, peak)
            print(f"elapsed since the first insert: {time.perf_counter() - started:.0f} s",
                  flush=True)
    except SystemExit as stop:  # said before the clean-up, which can fail and hide it
        print(stop, flush=True)
        raise
    finally:
        store.drop_collection(COLLECTION)
        store.close()


def measure_at(store: MilvusVectorStore, loaded: Loaded, args: argparse.Namespace,
               centres: np.ndarray, watch: MemoryWatch, server_pid: int | None,
               background: BackgroundLog, peak: PeakWatch) -> None:
    """Figures at the store's current size: insert, indexing, memory, searches, targets."""
    notes = [f"insert so far: {loaded.seconds:.0f} s, {loaded.rows / loaded.seconds:,.0f} "
             f"vectors/s (index builds overlap it); after it: {memory(server_pid)}"]
    started = time.perf_counter()
    wait_indexed(store, watch)
    notes.append(f"flush + index builds still running after the last insert: "
                 f"{time.perf_counter() - started:.0f} s; after them: {memory(server_pid)}")
    if store.is_lite:
        notes += [f"{background} (so far)", str(peak), *lite_breakdown(store)]
    notes.append(f"the bench's own arrays: {loaded.nbytes() / 1024**2:.0f} MB held (query "
                 f"vectors, filter masks), one chunk of {CHUNK:,} vectors at a time")
    for note in notes:
        print(note, flush=True)
    queries = loaded.queries()
    masks = {label: mask[:loaded.rows] for label, mask in loaded.masks.items()}
    truth: dict[str, list[set[int]]] = {}
    if not args.no_recall:
        truth = exact_neighbours(centres, loaded.rows, queries, masks)
    rows, p50s = search_rows(store, args, queries, masks, truth)
    after = memory(server_pid)
    print()
    print_table(["search", "latency", "p50 - unfiltered", "recall@10", "notes"], rows)
    print(f"\nafter searching: {after}; lowest MemAvailable seen {watch.lowest_gb:.1f} GB")
    print_targets(args, p50s, server_pid)


def search_rows(store: MilvusVectorStore, args: argparse.Namespace, queries: np.ndarray,
                masks: dict[str, np.ndarray], truth: dict[str, list[set[int]]]
                ) -> tuple[list[list[str]], dict[str, float]]:
    """The table's rows, and each search's p50 by label."""
    measure(store, queries[:20], None, None)  # warm-up
    plain, recall = measure(store, queries, None, truth.get(UNFILTERED))
    rows = [[UNFILTERED, plain.summary(), "", f"{recall:.3f}", ""]]
    p50s = {UNFILTERED: plain.p50}
    for label, spec in FILTERS.items():
        expression = milvus_expression(parse_filter(spec), FILTER_FIELDS)
        first = timed_ms(lambda e=expression: store.search(
            COLLECTION, queries[0][None, :], TOPK, partition=PARTITION, filter=e))
        latency, recall = measure(store, queries, expression, truth.get(label))
        baseline = ""
        if store.is_lite and args.baseline_queries:
            theirs, _ = with_original_executor(lambda e=expression: measure(
                store, queries[:args.baseline_queries], e, None))
            baseline = f"p50 {theirs.p50:.1f} ms ({theirs.p50 / latency.p50:.0f}x ours)"
        rows.append([f"{label}: {masks[label].mean() * 100:.2f} % of rows",
                     latency.summary(), f"{latency.p50 - plain.p50:+.1f} ms", f"{recall:.3f}",
                     f"first {first:.0f} ms; milvus-lite's own: {baseline or '—'}"])
        p50s[label] = latency.p50
        print(f"  {label} done", flush=True)
    return rows, p50s


def print_targets(args: argparse.Namespace, p50s: dict[str, float], server_pid: int | None
                  ) -> None:
    """Issue 16's targets: search p50 ≤ encoder + 25 ms, RSS ≤ --rss-target-gb."""
    limit = args.encoder_ms + 25
    for label, p50 in p50s.items():
        verdict = "met" if p50 <= limit else "not met"
        print(f"target p50 ≤ {args.encoder_ms} + 25 = {limit:.1f} ms, {label}: "
              f"{p50:.1f} ms, {verdict}")
    peak = (status_mb("self", "VmHWM") if server_pid is None
            else server_tree_mb(server_pid)[1]) / 1024
    verdict = "met" if peak <= args.rss_target_gb else "not met"
    print(f"target RSS ≤ {args.rss_target_gb} GB: peak {peak:.1f} GB "
          f"({'bench process VmHWM' if server_pid is None else 'server tree, sum of VmHWM'}), "
          f"{verdict}")


if __name__ == "__main__":
    main()
