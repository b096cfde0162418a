"""`MilvusVectorStore`: the `VectorStore` on Milvus, embedded Milvus Lite (a `.db` path) or a
server (`http://`). One class serves both; only the URI differs.

A collection holds an INT64 primary key `id` (given by the caller, never generated) and a
FLOAT_VECTOR `vector` of a fixed dimension, searched with one metric (IP, L2 or COSINE),
and, since filtered search, each row's payload: `name` (VARCHAR, 4096 bytes: 1024
characters of any UTF-8), `attributes` and `exif` (JSON). A collection made by an earlier
release has only `id` and `vector`: it is used as it is (`filterable` False, payloads
dropped on insert, filters on `id` only), never altered.

Filtering: `search(filter=...)` passes the Milvus expression to the search itself, so the
top-k is the best k among the rows it selects (never a post-filter of an unfiltered top-k).

- Milvus Lite: through `lite_search`'s executor, which ANDs each segment's filter mask
  (`lite_filter`) with its current rows; HNSW with a mask that allows few rows loses recall,
  so a segment where the filter allows under 10 % of the rows is searched exactly over
  those rows, and under 30 % with ef ≥ 256 (bench/filtered_search.py).
- Server: Milvus applies the expression as a bitset inside the index search (recall@10
  1.000 at 1 % and 0.998 at 50 % of 100k rows with the default ef, bench/filtered_search.py
  --server; it parses JSON filters on every search: +5 to +22 ms there).
- `set_payloads` reads each row's vector back (partition by partition: Milvus keeps no
  partition among a row's fields) and upserts it with the new payload into the partition it
  was in.

How each backend is driven (measured with bench/vector_store.py, 10k clustered 1280-d, IP,
milvus-lite 3.2.2 and Milvus 2.3.5 on 2 cores):

- Index: HNSW (M=16, efConstruction=200; ef = max(64, topk) at search) on both backends,
  so results and tuning are the same from laptop to cluster (recall@10 1.000 at 10k, 0.998
  at 100k). Lite search 5.7 ms (FLAT 9.2, IVF_FLAT 4.8 but faiss warns on small segments);
  server 1.6 ms (FLAT 3.6, AUTOINDEX 2.0 with recall 0.981). `index_type` can pick FLAT,
  IVF_FLAT or AUTOINDEX instead.
- Read-your-writes, server: searches use `Session` consistency (this process sees its own
  writes; 1.6 ms, but ~200 ms, one time tick, when this process has just written) and
  `count` uses `Strong` (sees every client's writes; always waits for a time tick, ~200 ms).
  Another process (an API replica) sees this one's writes in searches within about one
  time tick (measured: a median of 194 ms); `Strong` searches would cost that on every call.
- Read-your-writes, Milvus Lite: rows are visible as soon as `insert` returns, but unflushed
  rows are searched without an index, and milvus-lite gathers them row by row (~0.06 ms per
  1280-d row: 660 ms a search with 10k rows unflushed; `lite_search` gathers them in one
  pass, 0.24 ms for 48 rows against 2.7) until a `flush` makes them an indexed segment. So
  the store flushes after an insert once the unflushed rows reach `lite_flush_bytes` (256
  KiB: 51 rows of 1280-d) and flushes the rest on `close()`. Bulk inserts cost for it:
  2,500 vectors/s instead of 4,450; API ingest did not measurably gain from 2 or 4 MiB.
- Milvus Lite is not safe for concurrent writes (its insert path takes no lock: concurrent
  insert + flush fails with "current_seq is monotonic"), so every call on one Lite database
  goes through one lock shared by all stores on that path in this process
  (`lite_databases`). The server's
  gRPC client is thread-safe and takes no lock.
- Milvus Lite 3.2 spends most of a search in a Python loop over every stored row (which
  rows are current); `lite_search` replaces that executor with a vectorised one (110 ms →
  a few ms a search at 100k rows here, bench/search.py).
- A store in the process that serves a Lite database searches Lite's collection directly,
  not through Lite's loopback gRPC server (3 ms less a search on 2 slow cores).
- After reopening a Lite database its collections are released; the first call on each one
  loads it (reads the saved indexes: 0.1 s at 10k, 2.5 s at 100k).

Several processes (API workers) share one Lite database through a host process that serves
it over loopback gRPC (`lite_host`; the `lite_host` option gives its address). Such a store
keeps Lite's behaviours (flushes after `lite_flush_bytes` and on `close()`, exact counts, no
consistency levels) and names the Lite path in its messages; the host runs one request at a
time and searches with `lite_search`'s executor. Its lock is shared by the stores on that
path in every process (`lite_databases.ProcessesLock`, a `flock`), so that a call made of
several requests is never interleaved with another process's; it remembers no partitions
(another process may drop them) and never searches Lite's collections directly.
"""

from __future__ import annotations

import gc
import logging
import os
import re
import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from phantoscope.storage import lite_search
from phantoscope.storage.lite_databases import LITE, database_path
from phantoscope.storage.vectors import (
    EMPTY_PAYLOAD,
    METRICS,
    VectorHit,
    VectorPayload,
    VectorStore,
    VectorStoreError,
)

__all__ = ["INDEX_TYPES", "MilvusVectorStore"]

log = logging.getLogger(__name__)

INDEX_TYPES = ("HNSW", "FLAT", "IVF_FLAT", "AUTOINDEX")
MAX_DIMENSION = 32768  # Milvus's limit for FLOAT_VECTOR
MAX_TOPK = 16384  # Milvus's limit for a search's limit
SERVER_SCHEMES = ("http://", "https://", "tcp://")
TOKEN_ENV = "PHANTOSCOPE_MILVUS_TOKEN"

_INDEX_PARAMS: dict[str, dict[str, int]] = {
    "HNSW": {"M": 16, "efConstruction": 200},
    "IVF_FLAT": {"nlist": 128},
    "FLAT": {},
    "AUTOINDEX": {},
}
HNSW_MIN_EF = 64
IVF_NPROBE = 16
INSERT_BATCH_BYTES = 16 * 1024 * 1024  # well under the server's 64 MiB gRPC message limit
LITE_FLUSH_BYTES = 256 * 1024
CALL_TIMEOUT_S = 60.0
PING_TIMEOUT_S = 2.0  # a health check
CONNECT_TIMEOUT_S = 60.0  # at start: the server may still be starting beside us
# gRPC waits up to 120 s between reconnection attempts by default; a restarted server
# should be used within about a second.
RECONNECT_OPTIONS = {"grpc.initial_reconnect_backoff_ms": 100,
                     "grpc.min_reconnect_backoff_ms": 100,
                     "grpc.max_reconnect_backoff_ms": 1000}
LOAD_TIMEOUT_S = 600.0
ID_PAGE = 10_000  # ids read per call when listing a collection
PAYLOAD_FIELDS = ("name", "attributes", "exif")
NAME_MAX_BYTES = 4096  # a name is up to 1024 characters, each up to 4 bytes of UTF-8
PAYLOAD_PAGE = 1000  # ids looked up per query when rewriting payloads

T = TypeVar("T")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}")


@dataclass(frozen=True)
class _Collection:
    dimension: int
    metric: str
    index_type: str
    filterable: bool  # has the payload fields (an earlier release's collection has not)


def _reason(exc: BaseException) -> str:
    """A readable reason from a pymilvus or gRPC error (never its repr)."""
    message = getattr(exc, "message", None)
    if isinstance(message, str) and message:
        code = getattr(exc, "code", None)
        return f"{message} (code {code})" if code not in (None, 0, 1, -1) else message
    details = getattr(exc, "details", None)
    if callable(details):
        try:
            text = details()
        except Exception:  # pragma: no cover - defensive: a broken error object
            text = None
        if text:
            return str(text)
    return str(exc) or type(exc).__name__


def _load_scipy_sparse_once() -> None:
    """pymilvus loads scipy.sparse on its first insert or search, by hand and without a lock:
    two threads doing their first call at once could see it half loaded ("partially
    initialized module 'scipy.sparse._bsr'"). One load here, before any call, settles it."""
    from pymilvus.client.utils import SciPyHelper

    SciPyHelper.is_scipy_sparse(None)


def _is_server_uri(uri: str) -> bool:
    return uri.lower().startswith(SERVER_SCHEMES)


class MilvusVectorStore(VectorStore):
    """A `VectorStore` on Milvus Lite (`uri` is a path ending in `.db`) or a Milvus server."""

    def __init__(self, uri: str, *, token: str | None = None, index_type: str = "HNSW",
                 lite_flush_bytes: int = LITE_FLUSH_BYTES,
                 timeout_s: float = CALL_TIMEOUT_S, lite_host: str | None = None) -> None:
        """``lite_host``: the address (``http://127.0.0.1:PORT``) of the process serving the
        Lite database ``uri`` names (`lite_host.LiteHostProcess`); None: this process opens it."""
        from pymilvus import MilvusClient

        _load_scipy_sparse_once()
        index_type = index_type.upper()
        if index_type not in INDEX_TYPES:
            raise ValueError(f"index type {index_type!r} is not one of {', '.join(INDEX_TYPES)}")
        self.index_type = index_type
        self.lite_flush_bytes = lite_flush_bytes
        self.timeout_s = timeout_s
        self.is_lite = not _is_server_uri(uri)
        if lite_host is not None and not self.is_lite:
            raise ValueError(f"a Milvus Lite host serves a .db path, not the server {_redact(uri)}")
        self.lite_host = _host_address(lite_host) if lite_host is not None else None
        self._collections: dict[str, _Collection] = {}
        self._unflushed_bytes: dict[str, int] = {}
        self._partitions: dict[str, set[str]] = {}  # known to exist, by collection
        self._state_lock = threading.Lock()
        self._closed = False

        self._lock: AbstractContextManager[Any] | None
        if self.lite_host is not None:
            self.uri = database_path(uri)
            self._lock = LITE.acquire(self.uri, hosted=True)
            try:
                with self._lock:
                    self._client = self._call(
                        f"connect to Milvus Lite at {self.uri} served at {self.lite_host}",
                        lambda: MilvusClient(uri=self.lite_host, dedicated=True,
                                             timeout=timeout_s, grpc_options=RECONNECT_OPTIONS))
            except BaseException:
                LITE.release(self.uri, hosted=True)
                raise
        elif self.is_lite:
            self.uri = database_path(uri)
            lite_search.install()
            self._lock = LITE.acquire(self.uri)
            try:
                with self._lock:
                    self._client = self._call(
                        f"open Milvus Lite at {self.uri} (is another process using it?)",
                        lambda: MilvusClient(self.uri, dedicated=True, timeout=timeout_s))
            except BaseException:
                LITE.release(self.uri)
                raise
        else:
            self.uri = uri
            self._lock = None
            token = token if token is not None else os.environ.get(TOKEN_ENV, "")
            # Every call has its own time-out (a server that went away fails it in
            # `timeout_s`); pymilvus reconnects by itself once the server is back.
            self._client = self._call(
                f"connect to the Milvus server at {_redact(uri)}",
                lambda: MilvusClient(uri=uri, token=token, dedicated=True,
                                     timeout=max(timeout_s, CONNECT_TIMEOUT_S),
                                     grpc_options=RECONNECT_OPTIONS))

    def __repr__(self) -> str:
        where = self.uri if self.is_lite else _redact(self.uri)
        host = f", lite_host={self.lite_host!r}" if self.lite_host else ""
        return f"MilvusVectorStore({where!r}, index_type={self.index_type!r}{host})"

    # -- the contract -------------------------------------------------------------------

    def create_collection(self, name: str, dimension: int, metric: str) -> None:
        _check_name(name)
        metric = _check_metric(metric)
        dimension = _check_dimension(dimension)
        with self._serial():
            if self._call(f"check for vector collection {name!r}",
                          lambda: self._client.has_collection(name, timeout=self.timeout_s)):
                info = self._describe(name)
                if (info.dimension, info.metric) != (dimension, metric):
                    raise VectorStoreError(
                        f"vector collection {name!r} already exists with {info.dimension}-d "
                        f"vectors and metric {info.metric}, not {dimension}-d and {metric}")
                self._ensure_loaded(name)
                return
            self._call(f"create vector collection {name!r} ({dimension}-d, {metric})",
                       lambda: self._create(name, dimension, metric))
            self._ensure_loaded(name)
            with self._state_lock:
                self._collections[name] = _Collection(dimension, metric, self.index_type,
                                                      filterable=True)
                self._unflushed_bytes[name] = 0

    def drop_collection(self, name: str) -> None:
        with self._serial():
            self._forget(name)

            def drop() -> None:
                if self._client.has_collection(name, timeout=self.timeout_s):
                    self._client.drop_collection(name, timeout=self.timeout_s)

            self._call(f"drop vector collection {name!r}", drop)

    def has_collection(self, name: str) -> bool:
        with self._serial():
            return bool(self._call(
                f"check for vector collection {name!r}",
                lambda: self._client.has_collection(name, timeout=self.timeout_s)))

    def insert(self, name: str, ids: Sequence[int], vectors: np.ndarray,
               partition: str | None = None,
               payloads: Sequence[VectorPayload] | None = None) -> None:
        id_array = _check_ids(ids)
        matrix = _as_matrix(vectors, "vectors")
        if len(id_array) != len(matrix):
            raise ValueError(f"{len(id_array)} ids for {len(matrix)} vectors")
        if payloads is not None and len(payloads) != len(id_array):
            raise ValueError(f"{len(payloads)} payloads for {len(id_array)} ids")
        if len(id_array) == 0:
            return
        if not np.isfinite(matrix).all():
            raise ValueError("vectors contain NaN or infinity")
        with self._serial():
            info = self._ready(name, matrix.shape[1])
            _check_width(name, info, matrix, "insert")
            target = {}
            if partition is not None:
                self._ensure_partition(name, partition)
                target = {"partition_name": partition}
            rows_per_call = max(1, INSERT_BATCH_BYTES // (4 * info.dimension))
            for start in range(0, len(matrix), rows_per_call):
                chunk_ids = id_array[start:start + rows_per_call].tolist()
                chunk = matrix[start:start + rows_per_call]
                rows = [{"id": i, "vector": v} for i, v in zip(chunk_ids, chunk, strict=True)]
                if info.filterable:
                    chunk_payloads = (payloads[start:start + rows_per_call]
                                      if payloads is not None else [EMPTY_PAYLOAD] * len(rows))
                    for row, payload in zip(rows, chunk_payloads, strict=True):
                        row.update(_payload_fields(payload))
                self._call(f"insert {len(rows)} vectors into {name!r}",
                           lambda rows=rows: self._client.insert(
                               name, rows, timeout=self.timeout_s, **target), collection=name)
            if self.is_lite:
                self._after_lite_write(name, matrix.nbytes)

    def delete(self, name: str, ids: Sequence[int]) -> None:
        id_array = _check_ids(ids)
        if len(id_array) == 0:
            return
        with self._serial():
            self._ready(name)
            self._call(f"delete {len(id_array)} vectors from {name!r}",
                       lambda: self._client.delete(name, ids=id_array.tolist(),
                                                   timeout=self.timeout_s), collection=name)

    def search(self, name: str, vectors: np.ndarray, topk: int,
               partition: str | None = None,
               filter: str | None = None) -> list[list[VectorHit]]:
        if filter is not None and not isinstance(filter, str):
            raise ValueError(f"filter must be a Milvus expression (a string), not {filter!r}")
        expression = filter.strip() if filter else ""
        matrix = _as_matrix(vectors, "query vectors", allow_1d=True)
        if not isinstance(topk, int | np.integer) or not 1 <= topk <= MAX_TOPK:
            raise ValueError(f"topk must be an integer from 1 to {MAX_TOPK}, not {topk!r}")
        topk = int(topk)
        if len(matrix) == 0:
            return []
        if not np.isfinite(matrix).all():
            raise ValueError("query vectors contain NaN or infinity")
        with self._serial():
            info = self._ready(name, matrix.shape[1])
            _check_width(name, info, matrix, "search")
            params: dict[str, Any] = {"metric_type": info.metric, "params": {}}
            if info.index_type == "HNSW":
                params["params"]["ef"] = max(HNSW_MIN_EF, topk)
            elif info.index_type == "IVF_FLAT":
                params["params"]["nprobe"] = IVF_NPROBE
            extra: dict[str, Any] = {} if self.is_lite else {"consistency_level": "Session"}
            if partition is not None:
                if not self._has_partition(name, partition):
                    return [[] for _ in matrix]
                extra["partition_names"] = [partition]
        larger_is_better = info.metric != "L2"

        def call() -> Any:
            # The key only: Milvus Lite reads an empty list as "every field" and sends each
            # hit's vector back (1280 floats a hit, 3 ms a search at topk 10 here).
            local = lite_search.local_collection(self.uri, name) if self._owns_lite else None
            if local is not None:  # this process serves the Lite database: no gRPC
                return local.search(
                    matrix.tolist(), top_k=topk, metric_type=info.metric, anns_field="vector",
                    search_params=params["params"], output_fields=["id"],
                    partition_names=extra.get("partition_names"), expr=expression or None)
            return self._client.search(
                name, data=list(matrix), limit=topk, anns_field="vector", search_params=params,
                filter=expression, output_fields=["id"], timeout=self.timeout_s, **extra)

        with self._serial():
            result = self._call(f"search {len(matrix)} vectors in {name!r}", call,
                                collection=name)
        out = []
        for hits in result:
            row = [VectorHit(int(h["id"]), float(h["distance"])) for h in hits]
            row.sort(key=lambda h: -h.distance if larger_is_better else h.distance)
            out.append(row)
        return out

    def vectors_of(self, name: str, ids: Sequence[int]) -> dict[int, np.ndarray]:
        id_array = _check_ids(ids)
        found: dict[int, np.ndarray] = {}
        with self._serial():
            self._ready(name)
            for start in range(0, len(id_array), ID_PAGE):
                chunk = id_array[start:start + ID_PAGE].tolist()
                rows = self._call(f"read {len(chunk)} vectors of {name!r}",
                                  lambda chunk=chunk: self._client.get(
                                      name, ids=chunk, output_fields=["vector"],
                                      timeout=self.timeout_s), collection=name)
                found.update((int(row["id"]), np.asarray(row["vector"], dtype=np.float32))
                             for row in rows)
        return found

    def filterable(self, name: str) -> bool:
        with self._serial():
            return self._ready(name).filterable

    def set_payloads(self, name: str, ids: Sequence[int],
                     payloads: Sequence[VectorPayload]) -> None:
        id_array = _check_ids(ids)
        if len(payloads) != len(id_array):
            raise ValueError(f"{len(payloads)} payloads for {len(id_array)} ids")
        if len(id_array) == 0:
            return
        wanted = dict(zip(id_array.tolist(), payloads, strict=True))  # the last one wins
        keys = list(wanted)
        # Milvus keeps no partition in a row's fields: look the rows up partition by
        # partition and write each back where it was (an upsert elsewhere would leave a
        # search of its own partition without it on Milvus Lite).
        consistency = {} if self.is_lite else {"consistency_level": "Strong"}
        with self._serial():
            info = self._ready(name)
            if not info.filterable:
                return
            partitions = self._call(
                f"list the partitions of {name!r}",
                lambda: self._client.list_partitions(name, timeout=self.timeout_s),
                collection=name)
            written = 0
            for partition in partitions:
                for start in range(0, len(keys), PAYLOAD_PAGE):
                    page = keys[start:start + PAYLOAD_PAGE]
                    found = self._call(
                        f"read {len(page)} vectors of {name!r}",
                        lambda page=page, partition=partition: self._client.query(
                            name, filter=f"id in [{', '.join(map(str, page))}]",
                            output_fields=["id", "vector"], partition_names=[partition],
                            timeout=self.timeout_s, **consistency), collection=name)
                    if not found:
                        continue
                    rows = [{"id": int(row["id"]),
                             "vector": np.asarray(row["vector"], dtype=np.float32),
                             **_payload_fields(wanted[int(row["id"])])} for row in found]
                    self._call(f"rewrite the payloads of {len(rows)} vectors in {name!r}",
                               lambda rows=rows, partition=partition: self._client.upsert(
                                   name, rows, partition_name=partition,
                                   timeout=self.timeout_s), collection=name)
                    written += len(rows) * 4 * info.dimension
            if self.is_lite and written:
                self._after_lite_write(name, written)

    def count(self, name: str, partition: str | None = None) -> int:
        with self._serial():
            self._ready(name)
            if partition is not None and not self._has_partition(name, partition):
                return 0
            if self.is_lite:
                # Exact on Milvus Lite: counts unflushed rows and applies deletes.
                def stats() -> dict:
                    if partition is None:
                        return self._client.get_collection_stats(name, timeout=self.timeout_s)
                    return self._client.get_partition_stats(name, partition,
                                                            timeout=self.timeout_s)

                return int(self._call(f"count vectors in {name!r}", stats,
                                      collection=name)["row_count"])
            # On a server the statistics lag and ignore deletes; count(*) with Strong is exact.
            within = {} if partition is None else {"partition_names": [partition]}
            rows = self._call(
                f"count vectors in {name!r}",
                lambda: self._client.query(name, filter="", output_fields=["count(*)"],
                                           consistency_level="Strong",
                                           timeout=self.timeout_s, **within), collection=name)
            return int(rows[0]["count(*)"])

    def ids(self, name: str) -> list[int]:
        # Strong on a server: a row committed elsewhere before this call is seen.
        consistency = {} if self.is_lite else {"consistency_level": "Strong"}
        found: list[int] = []
        with self._serial():
            self._ready(name)

            def read() -> None:
                pages = self._client.query_iterator(
                    name, batch_size=ID_PAGE, filter="", output_fields=["id"],
                    timeout=self.timeout_s, **consistency)
                try:
                    while page := pages.next():
                        found.extend(int(row["id"]) for row in page)
                finally:
                    pages.close()

            self._call(f"list the vector ids of {name!r}", read, collection=name)
        return found

    def drop_partition(self, name: str, partition: str) -> None:
        with self._serial():
            self._ready(name)
            if not self._has_partition(name, partition):
                return

            def drop() -> None:
                if not self.is_lite:  # a server refuses to drop a loaded partition
                    self._client.release_partitions(name, [partition], timeout=self.timeout_s)
                self._client.drop_partition(name, partition, timeout=self.timeout_s)

            self._call(f"drop partition {partition!r} of {name!r}", drop, collection=name)
            with self._state_lock:
                self._partitions.get(name, set()).discard(partition)

    def flush(self, name: str) -> None:
        """Persist unflushed rows as a sealed segment (and index it). Rarely needed."""
        with self._serial():
            self._ready(name)
            self._call(f"flush {name!r}",
                       lambda: self._client.flush(name, timeout=LOAD_TIMEOUT_S),
                       collection=name)
            with self._state_lock:
                self._unflushed_bytes[name] = 0

    def close(self) -> None:
        if self._closed:
            return
        try:
            with self._serial():
                self._closed = True
                if self.is_lite:
                    # A reopened database replays unflushed rows into the slow unindexed
                    # buffer; flushing now keeps the next start fast.
                    for name, pending in list(self._unflushed_bytes.items()):
                        if pending:
                            try:
                                self._client.flush(name, timeout=LOAD_TIMEOUT_S)
                            except Exception as exc:  # the data is in the WAL either way
                                log.warning("could not flush %r on close: %s", name,
                                            _reason(exc))
                try:
                    self._client.close()
                except Exception as exc:  # pragma: no cover - closing a channel rarely fails
                    log.warning("closing the Milvus client failed: %s", _reason(exc))
        finally:
            if self.is_lite:
                LITE.release(self.uri, hosted=self.lite_host is not None)

    def ping(self) -> None:
        with self._serial():
            self._call("list vector collections",
                       lambda: self._client.list_collections(timeout=PING_TIMEOUT_S))

    def __enter__(self) -> MilvusVectorStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ----------------------------------------------------------------------

    @property
    def _owns_lite(self) -> bool:
        """Whether this process serves the Lite database (no other process uses it)."""
        return self.is_lite and self.lite_host is None

    def _serial(self) -> AbstractContextManager[Any]:
        if self._closed:
            raise VectorStoreError("the vector store is closed")
        return self._lock if self._lock is not None else _NO_LOCK

    def _call(self, what: str, fn: Callable[[], T], collection: str | None = None) -> T:
        """Run one pymilvus or Milvus Lite call; its failures become `VectorStoreError("cannot
        WHAT: ...")`."""
        from pymilvus.exceptions import MilvusException

        try:
            return fn()
        except (MilvusException, OSError) as exc:
            failure = exc
        except Exception as exc:
            import grpc

            if not (isinstance(exc, grpc.RpcError)
                    or (self.is_lite and lite_search.is_lite_error(exc))):
                raise
            failure = exc
        if collection is not None:
            self._forget(collection)  # it may have been dropped or changed elsewhere
        raise VectorStoreError(f"cannot {what}: {_reason(failure)}") from failure

    def _create(self, name: str, dimension: int, metric: str) -> None:
        from pymilvus import DataType, MilvusClient

        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dimension)
        schema.add_field("name", DataType.VARCHAR, max_length=NAME_MAX_BYTES)
        schema.add_field("attributes", DataType.JSON)
        schema.add_field("exif", DataType.JSON)
        index = self._client.prepare_index_params()
        index.add_index(field_name="vector", index_type=self.index_type, metric_type=metric,
                        params=dict(_INDEX_PARAMS[self.index_type]))
        # Created, indexed and loaded in three calls rather than one: MilvusClient's
        # create_collection(index_params=...) waits for the index with a 0.5 s poll.
        self._client.create_collection(name, schema=schema, consistency_level="Session",
                                       timeout=self.timeout_s)
        self._client.create_index(name, index, sync=False, timeout=self.timeout_s)
        self._client.load_collection(name, timeout=LOAD_TIMEOUT_S)

    def _describe(self, name: str) -> _Collection:
        def describe() -> _Collection:
            if not self._client.has_collection(name, timeout=self.timeout_s):
                raise VectorStoreError(f"there is no vector collection named {name!r}")
            desc = self._client.describe_collection(name, timeout=self.timeout_s)
            fields = {f["name"]: f for f in desc["fields"]}
            vector = fields.get("vector")
            if vector is None or "id" not in fields:
                raise VectorStoreError(
                    f"collection {name!r} was not made by Phantoscope "
                    "(it has no `id` and `vector` fields)")
            dim = int(vector.get("params", {}).get("dim", 0))
            names = self._client.list_indexes(name, field_name="vector",
                                              timeout=self.timeout_s)
            index = self._client.describe_index(
                name, index_name=names[0], timeout=self.timeout_s) if names else {}
            index = index or {}
            metric = str(index.get("metric_type", "")).upper()
            index_type = str(index.get("index_type", "")).upper()
            if metric not in METRICS:
                raise VectorStoreError(
                    f"vector collection {name!r} has no index with a known metric "
                    f"(found {metric or 'none'})")
            filterable = all(field in fields for field in PAYLOAD_FIELDS)
            return _Collection(dim, metric, index_type, filterable=filterable)

        return self._call(f"describe vector collection {name!r}", describe)

    def _ensure_loaded(self, name: str) -> None:
        from pymilvus.client.types import LoadState

        def load() -> bool:
            state = self._client.get_load_state(name, timeout=self.timeout_s).get("state")
            if state == LoadState.Loaded:
                return False
            self._client.load_collection(name, timeout=LOAD_TIMEOUT_S)
            return True

        if self._call(f"load vector collection {name!r}", load) and self._owns_lite:
            # A loaded Lite collection is hundreds of thousands of Python objects in this
            # process, alive as long as it is: keep them out of the garbage collector's
            # scans (a full collection over them took 50-120 ms, in the middle of a search).
            gc.freeze()

    def _ready(self, name: str, dimension: int | None = None) -> _Collection:
        """The collection's shape, describing and loading it on first use by this store, and
        again when ``dimension`` (of the vectors at hand) differs from the remembered one:
        another process (an API replica) may have dropped and remade it."""
        with self._state_lock:
            info = self._collections.get(name)
        if info is not None and dimension not in (None, info.dimension):
            self._forget(name)
            info = None
        if info is not None:
            return info
        info = self._describe(name)
        self._ensure_loaded(name)
        with self._state_lock:
            self._collections[name] = info
            self._unflushed_bytes.setdefault(name, 0)
        return info

    def _forget(self, name: str) -> None:
        with self._state_lock:
            self._collections.pop(name, None)
            self._unflushed_bytes.pop(name, None)
            self._partitions.pop(name, None)

    def _has_partition(self, name: str, partition: str) -> bool:
        _check_name(partition)
        # A Lite database of this process's own belongs to it, so what it remembers stays
        # true; elsewhere other processes (API replicas) drop and make partitions: ask every
        # time.
        with self._state_lock:
            if self._owns_lite and partition in self._partitions.get(name, ()):
                return True
        exists = bool(self._call(
            f"check for partition {partition!r} of {name!r}",
            lambda: self._client.has_partition(name, partition, timeout=self.timeout_s),
            collection=name))
        if exists:
            with self._state_lock:
                self._partitions.setdefault(name, set()).add(partition)
        return exists

    def _ensure_partition(self, name: str, partition: str) -> None:
        if self._has_partition(name, partition):
            return

        def create() -> None:
            self._client.create_partition(name, partition, timeout=self.timeout_s)
            if not self.is_lite:  # a partition made after the collection was loaded is not
                self._client.load_partitions(name, [partition], timeout=LOAD_TIMEOUT_S)

        self._call(f"create partition {partition!r} of {name!r}", create, collection=name)
        with self._state_lock:
            self._partitions.setdefault(name, set()).add(partition)

    def _after_lite_write(self, name: str, nbytes: int) -> None:
        with self._state_lock:
            pending = self._unflushed_bytes.get(name, 0) + nbytes
            self._unflushed_bytes[name] = pending
        if pending >= self.lite_flush_bytes:
            self._call(f"flush {name!r}",
                       lambda: self._client.flush(name, timeout=LOAD_TIMEOUT_S),
                       collection=name)
            with self._state_lock:
                self._unflushed_bytes[name] = 0


class _NoLock:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


_NO_LOCK = _NoLock()


def _host_address(address: str) -> str:
    """A Lite host's address as pymilvus takes it: ``http://host:port`` (``host:port`` too)."""
    address = address.strip()
    if "://" not in address:
        address = f"http://{address}"
    if not re.fullmatch(r"http://[^/:]+:\d+/?", address):
        raise ValueError(f"a Milvus Lite host address is http://HOST:PORT, not {address!r}")
    return address.rstrip("/")


def _redact(uri: str) -> str:
    """The URI without a password (``https://user:secret@host`` → ``https://user:***@host``)."""
    scheme, sep, rest = uri.partition("://")
    creds, at, host = rest.rpartition("@")
    if not at or ":" not in creds:
        return uri
    return f"{scheme}{sep}{creds.split(':', 1)[0]}:***@{host}"


def _check_name(name: str) -> None:
    # Milvus's rule for collection names; Milvus Lite does not check it (and makes a folder
    # of that name), so check here for both.
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(
            f"collection name {name!r} must start with a letter or underscore and hold only "
            "letters, digits and underscores (at most 255)")


def _check_metric(metric: str) -> str:
    upper = metric.upper() if isinstance(metric, str) else metric
    if upper not in METRICS:
        raise ValueError(f"metric {metric!r} is not one of {', '.join(METRICS)}")
    return upper


def _check_dimension(dimension: int) -> int:
    if (isinstance(dimension, bool) or not isinstance(dimension, int | np.integer)
            or not 1 <= dimension <= MAX_DIMENSION):
        raise ValueError(f"dimension must be an integer from 1 to {MAX_DIMENSION}, "
                         f"not {dimension!r}")
    return int(dimension)


def _check_ids(ids: Sequence[int]) -> np.ndarray:
    array = np.asarray(ids)
    if array.size == 0:
        return np.zeros(0, dtype=np.int64)
    if array.ndim != 1 or array.dtype.kind not in "iu":
        raise ValueError("ids must be a flat sequence of integers")
    if array.dtype.kind == "u" and array.max() > np.iinfo(np.int64).max:
        raise ValueError("ids must fit in a signed 64-bit integer")
    return array.astype(np.int64, copy=False)


def _as_matrix(vectors: np.ndarray, what: str, allow_1d: bool = False) -> np.ndarray:
    matrix = np.asarray(vectors, dtype=np.float32)
    if matrix.ndim == 1 and allow_1d:
        matrix = matrix[None, :]
    if matrix.size == 0:
        return matrix.reshape(0, matrix.shape[-1] if matrix.ndim == 2 else 0)
    if matrix.ndim != 2:
        raise ValueError(f"{what} must be a 2-D array (one row per vector), "
                         f"not shape {matrix.shape}")
    return np.ascontiguousarray(matrix)


def _payload_fields(payload: VectorPayload) -> dict[str, Any]:
    if not isinstance(payload, VectorPayload):
        raise ValueError(f"a payload must be a VectorPayload, not {type(payload).__name__}")
    return {"name": payload.name, "attributes": dict(payload.attributes),
            "exif": dict(payload.exif)}


def _check_width(name: str, info: _Collection, matrix: np.ndarray, action: str) -> None:
    if matrix.shape[1] != info.dimension:
        raise VectorStoreError(
            f"cannot {action} {matrix.shape[1]}-d vectors: collection {name!r} holds "
            f"{info.dimension}-d vectors")

