"""Milvus Lite's segment cache refreshed with the least memory: segments whose data files
left the manifest are dropped before new ones load, and what Arrow's pool holds freed goes
back to the system once they have.

After a merge, milvus-lite loads the merged segments while the segments merged into them
are still held (with their indexes), and only then drops those: the merged rows twice at
once. Dropping first is safe: both happen under the collection's maintenance lock, under
which every reader takes its snapshot of the segments, and a reader holding a snapshot keeps
its segments alive.

milvus-lite reads and writes data files with Arrow's default pool (mimalloc), which keeps
freed blocks for reuse: writing a 100k-row 1280-d data file (512 MB of vectors) and reading
it back left 1.9 GB resident after both tables were dropped, 0.1 GB once released. After a
merge, that is the merge's read of its files and the cache's read of the merged segments,
held through the minutes the merged segments' HNSW indexes take to build: at 200k rows,
1.3 GB above what the segments themselves hold (bench/README.md). `release_freed` hands it
back.

`install` makes every refresh of a collection's segment cache (after each flush and each
merge) drop first and release after; `lite_one_copy` releases after every index it
attaches; `lite_search.install` installs both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from phantoscope.storage.lite_swap import MethodSwap

__all__ = ["install", "installed", "release_freed", "uninstall"]


def release_freed() -> None:
    """Hand what Arrow's default pool holds freed back to the system."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()


def _collection() -> type:
    from milvus_lite.engine.collection import Collection

    return Collection


def _dropping_first(original: Callable[..., None]) -> Callable[..., None]:
    def refresh_segment_cache(collection: Any) -> None:
        current = {(partition, name) for partition, names
                   in collection._manifest.get_all_data_files().items() for name in names}
        for key in [key for key in collection._segment_cache if key not in current]:
            del collection._segment_cache[key]
        original(collection)  # loads the new segments; none is left for it to drop
        release_freed()

    return refresh_segment_cache


_swap = MethodSwap(_collection, "_refresh_segment_cache", _dropping_first)
install, uninstall, installed = _swap.install, _swap.uninstall, _swap.installed
