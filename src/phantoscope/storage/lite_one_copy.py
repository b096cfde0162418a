"""Milvus Lite segments that hold their vectors once.

milvus-lite 3.2.2 keeps a flushed segment's vectors in the Arrow table it read from the
segment's data file and, once the segment's HNSW index is attached, again in the storage of
faiss's `IndexHNSWFlat`: 1M 1280-d vectors are 4.8 GB each (bench/README.md). Where faiss
stores the vectors exactly as the table holds them (metric IP or L2: faiss adds them as they
are; for COSINE it stores them normalised), `share` points the segment's vector column and its
numpy vectors at faiss's storage, and the table's own buffer is freed. Whatever reads a
segment's vectors (searches and exact scans, `get`/`query` of the vector field, a new index
built on the segment) reads the same floats from there, kept alive by the column; compaction
and restarts read the data files on disk, which stay as milvus-lite wrote them.

`install` makes every index milvus-lite attaches from then on (built, or loaded from its
sidecar file at start-up) share this way, and then hands the memory Arrow's pool holds freed
(the table's copy among it) back to the system (`lite_pool.release_freed`);
`lite_search.install` calls it over the milvus-lite versions it was checked against.
`uninstall` puts milvus-lite's own `attach_index` (two copies) back for indexes attached
later; segments already sharing keep reading faiss's storage.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from phantoscope.storage.lite_pool import release_freed
from phantoscope.storage.lite_swap import MethodSwap

__all__ = ["install", "installed", "share", "shares", "uninstall"]

SHARED_METRICS = frozenset({"IP", "L2"})
_COMPARE_ROWS = 4096  # rows compared at a time: a bounded temporary, not one bool a float


def _segment() -> type:
    from milvus_lite.storage.segment import Segment

    return Segment


def _sharing(original: Callable[..., None]) -> Callable[..., None]:
    def attach_index(segment: Any, index: Any, field_name: str | None = None) -> None:
        original(segment, index, field_name)
        share(segment, field_name or segment._vector_field, index)
        release_freed()

    return attach_index


_swap = MethodSwap(_segment, "attach_index", _sharing)
install, uninstall, installed = _swap.install, _swap.uninstall, _swap.installed


def share(segment: Any, field: str, index: Any) -> bool:
    """Point ``segment``'s vectors of ``field`` at ``index``'s storage when it holds the same
    floats in the same rows; whether it did. Checked float for float, so a sidecar index that
    does not match its data file is left alone (and the segment keeps its own copy)."""
    stored = _flat_storage(index)
    if stored is None:
        return False
    vectors, present = segment.vector_data(field)
    if present is not None or vectors.shape != stored.shape or not _equal(vectors, stored):
        return False
    import pyarrow as pa

    table = segment.table
    position = table.schema.get_field_index(field)
    if position < 0:
        return False
    kind = table.schema.field(position).type
    if not pa.types.is_fixed_size_list(kind) or kind.value_type != pa.float32():
        return False
    buffer = pa.foreign_buffer(stored.ctypes.data, stored.nbytes, base=index._index)
    values = pa.Array.from_buffers(pa.float32(), stored.size, [None, buffer])
    column = pa.FixedSizeListArray.from_arrays(values, type=kind)
    shared = np.frombuffer(buffer, dtype=np.float32).reshape(stored.shape)
    segment.table = table.set_column(position, table.schema.field(position), column)
    segment._vector_data_by_field[field] = (shared, None)
    if field == segment._vector_field:
        segment.vectors = shared
    return True


def shares(segment: Any, field: str) -> bool:
    """Whether ``segment``'s vectors of ``field`` are read from its index's storage."""
    index = segment.indexes.get(field)
    stored = None if index is None else _flat_storage(index)
    if stored is None:
        return False
    vectors, _ = segment.vector_data(field)
    return bool(vectors.size) and vectors.ctypes.data == stored.ctypes.data


def _flat_storage(index: Any) -> np.ndarray | None:
    """An HNSW index's stored vectors as an (n, d) view, where they are the vectors the
    segment holds (IP, L2); None for any other index or metric."""
    from milvus_lite.index.faiss_hnsw import FaissHnswIndex

    if type(index) is not FaissHnswIndex or index.metric not in SHARED_METRICS:
        return None
    import faiss

    hnsw = index._index
    storage = faiss.downcast_index(hnsw.storage) if isinstance(hnsw, faiss.IndexHNSW) else None
    if not isinstance(storage, faiss.IndexFlat) or storage.code_size != 4 * storage.d:
        return None
    rows, dimension = int(storage.ntotal), int(storage.d)
    if not rows:
        return None
    return faiss.rev_swig_ptr(storage.get_xb(), rows * dimension).reshape(rows, dimension)


def _equal(a: np.ndarray, b: np.ndarray) -> bool:
    """Bit for bit (so -0.0 is not 0.0 and NaN is itself)."""
    a, b = a.view(np.uint32), b.view(np.uint32)
    return all(np.array_equal(a[start:start + _COMPARE_ROWS], b[start:start + _COMPARE_ROWS])
               for start in range(0, len(a), _COMPARE_ROWS))
