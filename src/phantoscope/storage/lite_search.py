"""A vectorised search executor for Milvus Lite, put in place of milvus-lite's own.

Before faiss runs, milvus-lite 3.2 decides which stored rows a search may return (the newest
row of each key across segments and the unflushed memtable, less the deleted ones) with a
Python loop over every row: ≈ 30 ms a search at 100k rows on a fast core and ≈ 110 ms on a
slow one, growing with the collection, while faiss's HNSW search takes about 1 ms.

`search_with_index` computes the same rows with numpy: each segment's keys as a sorted
array (cached: a segment is an immutable data file), the newest row per key across segments
(cached per set of segments), then the memtable and the tombstones looked up by binary
search. The memtable's rows are gathered in one pass (`memtable_snapshot`; milvus-lite
turns each vector into a Python list). faiss, row materialisation and projection stay
milvus-lite's.
Filter expressions are applied inside the search: per segment, the rows the filter selects
(`lite_filter.segment_mask`: milvus-lite's own vectorised evaluator for scalar columns, and
typed columns cached per segment for JSON paths, where milvus-lite parses every row's JSON
on every search) are ANDed with the current rows before faiss runs, and the memtable's rows
are filtered the same way (`lite_filter.table_mask`), so the top-k is complete.
`local_collection` lets a store in the process that serves a Lite database search it
directly rather than through Lite's loopback gRPC server (≈ 3 ms a search on 2 slow cores).
Anything it does not handle (keys that are not integers, a caller without a projection)
goes to the original. `install` puts it in place, makes indexed segments hold their
vectors once (`lite_one_copy`), merges of fresh keys copy no rows (`lite_compaction`),
what Arrow's pool holds freed goes back to the system after each refresh of the segments
(`lite_pool`) and segments read from files of several row groups hold their vectors once
(`lite_file_read`), only over versions it was checked against (`TESTED_VERSIONS`;
tests/storage/test_lite_search.py compares both executors on real collections with upserts,
deletes, partitions and unflushed rows).
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import numpy as np

from phantoscope.storage import (
    lite_compaction,
    lite_file_read,
    lite_filter,
    lite_one_copy,
    lite_pool,
)

__all__ = ["TESTED_VERSIONS", "install", "installed", "is_lite_error", "local_collection",
           "memtable_snapshot", "search_with_index"]

log = logging.getLogger(__name__)

TESTED_VERSIONS = frozenset({"3.2.2"})
_KEY_CACHE_SEGMENTS = 256
# Filtered searches of an indexed segment (see `_recall`): exact below this share of its
# rows allowed, a wider graph search (ef ≥ WIDER_EF) below WIDER_BELOW.
EXACT_BELOW = 0.1
WIDER_BELOW = 0.3
WIDER_EF = 256
_WINNER_CACHE_SETS = 16

# What `install` puts in place beside the executor, each with its own install/uninstall.
SWAPS = (lite_one_copy, lite_compaction, lite_pool, lite_file_read)

_original: Callable[..., list[list[dict]]] | None = None
_install_lock = threading.Lock()


def install() -> bool:
    """Use `search_with_index` for Milvus Lite searches in this process.

    Returns False, leaving milvus-lite as it is, when the installed milvus-lite is not a
    version this executor was checked against.
    """
    global _original
    from milvus_lite.engine import collection as lite_collection

    with _install_lock:
        if lite_collection.execute_search_with_index is search_with_index:
            return True
        version = metadata.version("milvus-lite")
        if version not in TESTED_VERSIONS:
            log.warning("milvus-lite %s is not one the vectorised search was checked against "
                        "(%s): Milvus Lite searches use its own executor, slower on large "
                        "collections", version, ", ".join(sorted(TESTED_VERSIONS)))
            return False
        _original = lite_collection.execute_search_with_index
        lite_collection.execute_search_with_index = search_with_index
        for swap in SWAPS:
            swap.install()
        return True


def installed() -> bool:
    """Whether Milvus Lite searches in this process go through `search_with_index`."""
    from milvus_lite.engine import collection as lite_collection

    return lite_collection.execute_search_with_index is search_with_index


def local_collection(path: str, name: str) -> Any | None:
    """Milvus Lite's own object for collection ``name`` of the database at ``path`` that this
    process serves (what pymilvus reaches through Lite's loopback gRPC server), so that a
    search can skip the round trip; None unless this executor is installed."""
    if not installed():
        return None
    from milvus_lite.server_manager import server_manager_instance

    entry = server_manager_instance._servers.get(os.path.abspath(path))
    return None if entry is None else entry[1].get_collection(name)


def is_lite_error(error: BaseException) -> bool:
    from milvus_lite.exceptions import MilvusLiteError

    return isinstance(error, MilvusLiteError)


def original_executor() -> Callable[..., list[list[dict]]]:
    """milvus-lite's own executor (for comparisons)."""
    from milvus_lite.search import executor_indexed

    return executor_indexed.execute_search_with_index


@dataclass(frozen=True)
class _SortedKeys:
    """One source's integer keys, sorted by (key, seq) with the row each came from."""

    keys: np.ndarray  # int64, in row order
    sorted_keys: np.ndarray  # int64, ascending; equal keys by ascending seq
    order: np.ndarray  # row of each sorted position

    @classmethod
    def of(cls, keys: np.ndarray, seqs: np.ndarray) -> _SortedKeys:
        order = np.lexsort((seqs, keys))
        return cls(keys=keys, sorted_keys=keys[order], order=order)

    def newest_rows(self, probe: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each probe key, whether it is here and, if so, the row holding its newest seq."""
        if not len(self.sorted_keys) or not len(probe):
            return np.zeros(len(probe), dtype=bool), np.zeros(0, dtype=np.int64)
        position = np.searchsorted(self.sorted_keys, probe, side="right") - 1
        found = (position >= 0) & (self.sorted_keys[np.maximum(position, 0)] == probe)
        return found, self.order[position[found]]


class _KeyCache:
    """Sorted keys per segment (by data file) and newest-row masks per set of segments."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: OrderedDict[str, tuple[np.ndarray, _SortedKeys]] = OrderedDict()
        self._winners: OrderedDict[tuple[str, ...], tuple[tuple[np.ndarray, ...],
                                                          list[np.ndarray]]] = OrderedDict()

    def segment_keys(self, segment: Any) -> _SortedKeys | None:
        with self._lock:
            cached = self._keys.get(segment.file_path)
            if cached is not None and cached[0] is segment.seqs:
                self._keys.move_to_end(segment.file_path)
                return cached[1]
        keys = _integer_keys(segment.pks)
        if keys is None:
            return None
        sorted_keys = _SortedKeys.of(keys, segment.seqs)
        with self._lock:
            self._keys[segment.file_path] = (segment.seqs, sorted_keys)
            while len(self._keys) > _KEY_CACHE_SEGMENTS:
                self._keys.popitem(last=False)
        return sorted_keys

    def newest_masks(self, segments: Sequence[Any],
                     keys: Sequence[_SortedKeys]) -> list[np.ndarray]:
        """Per segment, which rows hold their key's newest seq among these segments."""
        if not segments:
            return []
        if len(segments) == 1:
            return [_newest_in_one(keys[0], segments[0].seqs)]
        files = tuple(segment.file_path for segment in segments)
        seqs = tuple(segment.seqs for segment in segments)
        with self._lock:
            cached = self._winners.get(files)
            if cached is not None and all(a is b for a, b in zip(cached[0], seqs, strict=True)):
                self._winners.move_to_end(files)
                return cached[1]
        masks = _newest_across([k.keys for k in keys], list(seqs))
        with self._lock:
            self._winners[files] = (seqs, masks)
            while len(self._winners) > _WINNER_CACHE_SETS:
                self._winners.popitem(last=False)
        return masks


_cache = _KeyCache()


def _integer_keys(pks: Sequence[Any]) -> np.ndarray | None:
    keys = np.asarray(pks)
    if keys.dtype.kind not in "iu":
        return None if len(keys) else np.zeros(0, dtype=np.int64)
    return keys.astype(np.int64, copy=False)


def _newest_in_one(keys: _SortedKeys, seqs: np.ndarray) -> np.ndarray:
    sorted_keys = keys.sorted_keys
    if len(sorted_keys) < 2 or bool(np.all(sorted_keys[1:] != sorted_keys[:-1])):
        return np.ones(len(sorted_keys), dtype=bool)
    return _newest_across([keys.keys], [seqs])[0]


def _newest_across(keys: Sequence[np.ndarray], seqs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Per source, which rows carry the largest seq of their key over all sources."""
    all_keys = np.concatenate(keys)
    all_seqs = np.concatenate([np.asarray(s, dtype=np.uint64) for s in seqs])
    order = np.lexsort((all_seqs, all_keys))
    sorted_keys, sorted_seqs = all_keys[order], all_seqs[order]
    last_of_key = np.ones(len(order), dtype=bool)
    last_of_key[:-1] = sorted_keys[1:] != sorted_keys[:-1]
    key_number = np.cumsum(np.concatenate(([True], last_of_key[:-1]))) - 1
    newest = np.empty(len(order), dtype=bool)
    newest[order] = sorted_seqs == sorted_seqs[last_of_key][key_number]
    return np.split(newest, np.cumsum([len(k) for k in keys])[:-1])


def _tombstones(delta_index: Any, memtable_deletes: dict[Any, tuple[int, Any]],
                ) -> tuple[_SortedKeys, np.ndarray] | None:
    """Every deleted key with its newest delete seq (flushed deltas and the memtable's own)."""
    deleted: dict[Any, int] = dict(delta_index._map)
    for key, (seq, _partition) in memtable_deletes.items():
        if seq > deleted.get(key, -1):
            deleted[key] = seq
    keys = _integer_keys(list(deleted))
    if keys is None:
        return None
    seqs = np.fromiter(deleted.values(), dtype=np.uint64, count=len(deleted))
    return _SortedKeys.of(keys, seqs), seqs


def _drop_deleted(mask: np.ndarray, keys: np.ndarray, seqs: np.ndarray,
                  tombstones: _SortedKeys, delete_seqs: np.ndarray) -> None:
    found, tomb_rows = tombstones.newest_rows(keys)
    rows = np.flatnonzero(found)
    mask[rows[delete_seqs[tomb_rows] > seqs[rows]]] = False


def _drop_shadowed(segment_mask: np.ndarray, segment_keys: _SortedKeys,
                   segment_seqs: np.ndarray, memtable_mask: np.ndarray,
                   memtable_keys: np.ndarray, memtable_seqs: np.ndarray) -> None:
    """Between a segment and the memtable, only the newer row of a shared key stays."""
    found, segment_rows = segment_keys.newest_rows(memtable_keys)
    memtable_rows = np.flatnonzero(found)
    older_segment = memtable_seqs[memtable_rows] > segment_seqs[segment_rows]
    segment_mask[segment_rows[older_segment]] = False
    older_memtable = segment_seqs[segment_rows] > memtable_seqs[memtable_rows]
    memtable_mask[memtable_rows[older_memtable]] = False


def search_with_index(
    query_vectors: np.ndarray,
    segments: Any,
    memtable: Any,
    delta_index: Any,
    top_k: int,
    metric_type: str,
    pk_field: str,
    vector_field: str,
    partition_names: list[str] | None = None,
    compiled_filter: Any = None,
    output_fields: list[str] | None = None,
    indexed_filter_plan: Any = None,
    project_record_fn: Callable[[dict], dict] | None = None,
    search_params: dict[str, Any] | None = None,
) -> list[list[dict]]:
    """milvus-lite's `execute_search_with_index`, same arguments and results."""
    arguments = dict(
        query_vectors=query_vectors, segments=segments, memtable=memtable,
        delta_index=delta_index, top_k=top_k, metric_type=metric_type, pk_field=pk_field,
        vector_field=vector_field, partition_names=partition_names,
        compiled_filter=compiled_filter, output_fields=output_fields,
        indexed_filter_plan=indexed_filter_plan, project_record_fn=project_record_fn,
        search_params=search_params)
    fallback = _original or original_executor()
    if project_record_fn is None:
        return fallback(**arguments)
    queries = np.asarray(query_vectors, dtype=np.float32)
    if queries.ndim == 1:
        queries = queries.reshape(1, -1)
    if len(queries) == 0 or top_k <= 0:
        return [[] for _ in range(len(queries))]

    wanted = set(partition_names) if partition_names else None
    in_scope = [s for s in segments
                if s.num_rows > 0 and (wanted is None or s.partition in wanted)]
    snapshot, mt_table = _memtable_snapshot(memtable, vector_field, partition_names,
                                            with_table=compiled_filter is not None)
    if snapshot is None:
        return fallback(**arguments)
    mt_pks, mt_seqs, mt_vectors, mt_rows = snapshot
    if not in_scope and not mt_pks:
        return [[] for _ in range(len(queries))]
    segment_keys = [_cache.segment_keys(segment) for segment in in_scope]
    mt_keys = _integer_keys(mt_pks)
    deleted = _tombstones(delta_index, memtable.delete_index_snapshot())
    if mt_keys is None or deleted is None or any(keys is None for keys in segment_keys):
        return fallback(**arguments)

    masks = [mask.copy() for mask in _cache.newest_masks(in_scope, segment_keys)]
    mt_mask = np.ones(len(mt_keys), dtype=bool)
    for segment, keys, mask in zip(in_scope, segment_keys, masks, strict=True):
        _drop_shadowed(mask, keys, segment.seqs, mt_mask, mt_keys, mt_seqs)
    tombstones, delete_seqs = deleted
    if len(delete_seqs):
        for segment, keys, mask in zip(in_scope, segment_keys, masks, strict=True):
            _drop_deleted(mask, keys.keys, segment.seqs, tombstones, delete_seqs)
        _drop_deleted(mt_mask, mt_keys, mt_seqs, tombstones, delete_seqs)
    if compiled_filter is not None:
        for segment, mask in zip(in_scope, masks, strict=True):
            if mask.any():
                mask &= lite_filter.segment_mask(segment, compiled_filter, indexed_filter_plan)
        if mt_mask.any() and mt_table is not None:
            mt_mask &= lite_filter.table_mask(compiled_filter, mt_table)

    recalled: list[tuple[int, np.ndarray, np.ndarray]] = []
    for number, (segment, mask) in enumerate(zip(in_scope, masks, strict=True)):
        vectors, present = segment.vector_data(vector_field)
        if present is not None:
            mask &= present
        recalled += _recall(number, mask, vectors, segment.indexes.get(vector_field),
                            queries, top_k, metric_type, search_params)
    if len(mt_keys):
        recalled += _recall(len(in_scope), mt_mask, mt_vectors, None,
                            queries, top_k, metric_type, search_params)

    # asked for the key alone (as our vector store always is): the hit's row is not read in
    # whole, vector and payload, only to be projected away
    keys_only = bool(output_fields) and set(output_fields) <= {pk_field}

    def materialise(source: int, row: int, distance: float) -> dict:
        if source < len(in_scope):
            key = in_scope[source].pks[row]
            record = {pk_field: key} if keys_only else in_scope[source].row_to_dict(row)
        else:
            key = mt_pks[row]
            record = {pk_field: key} if keys_only else memtable.materialize_row(*mt_rows[row])
        return {"id": record.get(pk_field, key), "distance": distance,
                "entity": project_record_fn(record)}

    return _merge(recalled, len(queries), top_k, materialise)


_Snapshot = tuple[list[Any], np.ndarray, np.ndarray, list[tuple[int, int]]]


def _empty_snapshot() -> _Snapshot:
    return [], np.zeros(0, dtype=np.uint64), np.zeros((0, 0), dtype=np.float32), []


def memtable_snapshot(
    memtable: Any, vector_field: str, partition_names: list[str] | None
) -> _Snapshot | None:
    """What milvus-lite's ``MemTable.to_search_snapshot`` gives a search: keys, seqs, vectors
    and each row's (batch, row), in the same order. The vectors are gathered from the insert
    batches in one pass rather than turned into Python lists row by row (≈ 60 µs a 1280-d
    row there), so a search pays little for a large memtable. None where a vector is null
    (left to milvus-lite).

    What it allocates comes from the C library's allocator, not pyarrow's default mimalloc
    pool: there each of a server's many request threads kept its own freed blocks, and with
    32 clients searching while 4 uploaded the API's memory swung by up to 270 MB (tests/load)."""
    return _memtable_snapshot(memtable, vector_field, partition_names, with_table=False)[0]


def _memtable_snapshot(
    memtable: Any, vector_field: str, partition_names: list[str] | None, with_table: bool
) -> tuple[_Snapshot | None, Any]:
    """`memtable_snapshot`, and with ``with_table`` its rows' other columns as an Arrow
    table in the same order (what a filter is evaluated on)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    pool = pa.system_memory_pool()

    with memtable._lock:
        batches = list(memtable._insert_batches)
        positions = list(memtable._pk_index.items())
    if not positions:
        return _empty_snapshot(), None
    table = pa.Table.from_batches(batches)
    references = np.array([position for _, position in positions], dtype=np.int64)
    starts = np.cumsum([0] + [batch.num_rows for batch in batches])
    table_rows = starts[references[:, 0]] + references[:, 1]
    if partition_names is not None:
        partitions = _take(table.column("_partition"), table_rows, pool)
        in_scope = pc.is_in(partitions, memory_pool=pool, value_set=pa.array(
            partition_names, type=pa.string(), memory_pool=pool))
        kept = np.flatnonzero(pc.cast(in_scope, pa.uint8(), memory_pool=pool).to_numpy())
        if not len(kept):
            return _empty_snapshot(), None
        positions = [positions[i] for i in kept]
        references, table_rows = references[kept], table_rows[kept]
    column = _take(table.column(vector_field), table_rows, pool)
    if column.null_count:
        return None, None
    vectors = column.flatten().to_numpy().reshape(len(column), -1)
    scalars = None
    if with_table:
        others = table.drop_columns([vector_field])
        scalars = pc.take(others, pa.array(table_rows, memory_pool=pool), memory_pool=pool)
    return ([key for key, _ in positions], references[:, 2].astype(np.uint64),
            vectors.astype(np.float32, copy=False),
            [(batch, row) for _, (batch, row, _) in positions]), scalars


def _take(column: Any, rows: np.ndarray, pool: Any) -> Any:
    """``column``'s values at ``rows`` as one Arrow array, allocated from ``pool``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    taken = pc.take(column, pa.array(rows, memory_pool=pool), memory_pool=pool)
    return (taken.chunk(0) if taken.num_chunks == 1
            else pa.concat_arrays(taken.chunks, memory_pool=pool))


def _recall(source: int, mask: np.ndarray, vectors: np.ndarray, index: Any,
            queries: np.ndarray, top_k: int, metric_type: str,
            search_params: dict[str, Any] | None) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """One source's top-k rows per query among the rows `mask` allows.

    A graph index searched with a mask that allows few of its rows loses recall (faiss HNSW,
    ef 64, clustered 1280-d: recall@10 0.29 at 1 % allowed, 0.79 at 5 %, 0.985 at 10 %,
    0.998 at 20 %): below `EXACT_BELOW` of the rows the allowed ones are compared one by one
    (exact, and cheap: 1 % of 100k rows is 1,000), and below `WIDER_BELOW` the search
    explores more (ef ≥ `WIDER_EF`: 0.998 at 10 %)."""
    allowed = int(np.count_nonzero(mask))
    if not allowed:
        return []
    if index is None or allowed < EXACT_BELOW * len(mask):
        from milvus_lite.index.brute_force import BruteForceIndex

        index = BruteForceIndex.build(vectors, metric_type)
    elif allowed < WIDER_BELOW * len(mask) and "ef" in (search_params or {}):
        search_params = {**search_params, "ef": max(WIDER_EF, search_params["ef"])}
    if allowed == len(mask):
        rows, distances = index.search(queries, top_k, params=search_params)
    elif _is_hnsw(index):
        rows, distances = _hnsw_search_in(mask, index, queries, top_k, search_params)
    else:
        rows, distances = index.search(queries, top_k, valid_mask=mask, params=search_params)
    return [(source, np.asarray(rows), np.asarray(distances))]


def _is_hnsw(index: Any) -> bool:
    from milvus_lite.index.faiss_hnsw import FaissHnswIndex

    return isinstance(index, FaissHnswIndex)


def _hnsw_search_in(mask: np.ndarray, index: Any, queries: np.ndarray, top_k: int,
                    search_params: dict[str, Any] | None) -> tuple[np.ndarray, np.ndarray]:
    """`FaissHnswIndex.search(..., valid_mask=mask)` with the mask as a bitmap selector.

    milvus-lite 3.2.2 hands faiss an `IDSelectorBatch`, a hash set of every allowed row built
    on every search: 3.6 ms a search of a 90k-row 1280-d segment with half its rows allowed,
    against 0.4 ms for `IDSelectorBitmap`, with the same hits (bench/README.md). Answers as
    milvus-lite's does: rows with -1 and distances with +inf where fewer than `top_k` rows
    were found, distances in its "smaller is nearer" convention."""
    import faiss
    from milvus_lite.index.faiss_hnsw import _l2_normalize

    queries = np.ascontiguousarray(queries.reshape(len(queries), -1), dtype=np.float32)
    if index.metric == "COSINE":
        queries = np.ascontiguousarray(_l2_normalize(queries), dtype=np.float32)
    bitmap = np.packbits(mask.astype(bool), bitorder="little")  # bit i: row i (faiss's order)
    selector = faiss.IDSelectorBitmap(len(mask), faiss.swig_ptr(bitmap))
    ef = int((search_params or {}).get("ef", 64))
    found, rows = index._index.search(
        queries, top_k, params=faiss.SearchParametersHNSW(sel=selector, efSearch=ef))
    rows = np.where((rows >= 0) & (found < 1e30), rows, -1).astype(np.int64)
    distances = np.full(rows.shape, np.inf, dtype=np.float32)
    kept = rows >= 0
    distances[kept] = [index._normalize_distance(float(value)) for value in found[kept]]
    return rows, distances


def _merge(recalled: list[tuple[int, np.ndarray, np.ndarray]], queries: int, top_k: int,
           materialise: Callable[[int, int, float], dict]) -> list[list[dict]]:
    """Each query's best `top_k` over all sources, ties by source then row."""
    if not recalled:
        return [[] for _ in range(queries)]
    rows = np.concatenate([r for _, r, _ in recalled], axis=1)
    distances = np.concatenate([d for _, _, d in recalled], axis=1).astype(np.float64)
    sources = np.concatenate([np.full(r.shape, s) for s, r, _ in recalled], axis=1)
    widths = [r.shape[1] for _, r, _ in recalled]
    results: list[list[dict]] = []
    for query in range(queries):
        valid = _before_padding(rows[query], widths)
        query_rows, query_sources = rows[query][valid], sources[query][valid]
        query_distances = distances[query][valid]
        best = np.lexsort((query_rows, query_sources, query_distances))[:top_k]
        results.append([materialise(int(query_sources[position]), int(query_rows[position]),
                                    float(query_distances[position])) for position in best])
    return results


def _before_padding(rows: np.ndarray, widths: list[int]) -> np.ndarray:
    """Each source's rows up to its first -1 (faiss pads a short result with -1)."""
    valid = np.zeros(len(rows), dtype=bool)
    start = 0
    for width in widths:
        source_rows = rows[start:start + width]
        padding = np.flatnonzero(source_rows < 0)
        valid[start:start + (padding[0] if len(padding) else width)] = True
        start += width
    return valid
