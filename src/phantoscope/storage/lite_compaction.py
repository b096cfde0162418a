"""Milvus Lite compactions that hold the merged rows once.

milvus-lite 3.2.2 merges a partition's small data files (up to twice its 100k-row segment
cap: 1 GB of 1280-d vectors) by laying them end to end, sorting by key and taking the rows
in that order (a copy), keeping the newest row of each key (a second copy), then sorting by
seq and taking again (a third), while the segments being merged stay loaded beside them.
Where no key repeats across the files (the files of an import: every key new), that merge
is the files' rows in seq order, which they already are when laid end to end by their
first seq, less the rows a newer tombstone deletes. `merge_files` writes that
concatenation, cut into segments at milvus-lite's cap, without copying a row (once, where
tombstones drop some); files whose keys repeat or whose seqs interleave go to milvus-lite's
own merge. The files it writes hold the same rows in the same order
(tests/storage/test_lite_compaction.py), so a data folder is the same either way.
`lite_search.install` installs it over the milvus-lite versions it was checked against.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from phantoscope.storage.lite_swap import MethodSwap

__all__ = ["MERGED", "install", "installed", "merge_files", "uninstall"]

log = logging.getLogger(__name__)

MERGED = ("compaction: partition %s, %d files (%d rows) merged into %d files (%d rows) "
          "without a copy in %.2f s")


def _compaction_manager() -> type:
    from milvus_lite.engine.compaction import CompactionManager

    return CompactionManager


def _merging(original: Callable[..., None]) -> Callable[..., None]:
    def compact_files(manager: Any, partition: str, partition_dir: str, files: list[str],
                      manifest: Any, delta_index: Any) -> None:
        if not merge_files(manager, partition, partition_dir, files, manifest, delta_index):
            original(manager, partition, partition_dir, files, manifest, delta_index)

    return compact_files


_swap = MethodSwap(_compaction_manager, "_compact_files", _merging)
install, uninstall, installed = _swap.install, _swap.uninstall, _swap.installed


def merge_files(manager: Any, partition: str, partition_dir: str, files: Sequence[str],
                manifest: Any, delta_index: Any) -> bool:
    """Merge ``files`` of ``partition`` as milvus-lite's compaction would, without copying
    their rows (but once where tombstones drop some); False, having changed nothing, where a
    key repeats or the files' seqs interleave (milvus-lite's own merge handles those)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    from milvus_lite.storage.data_file import read_data_file

    started = time.monotonic()
    tables = [read_data_file(os.path.join(partition_dir, name)) for name in files]
    tables = sorted((table for table in tables if table.num_rows),
                    key=lambda table: pc.min(table.column("_seq")).as_py())
    if not tables:
        return False
    merged = pa.concat_tables(tables)
    if (np.diff(merged.column("_seq").to_numpy()) <= 0).any():
        return False
    if pc.count_distinct(merged.column(manager._pk_name)).as_py() != merged.num_rows:
        return False
    kept = manager._filter_deleted(merged, delta_index)  # keeps the order
    written = _write_segments(manager, partition_dir, kept)
    _replace_files(manager, partition, partition_dir, files, manifest, written)
    log.info(MERGED, partition, len(files), merged.num_rows, len(written), kept.num_rows,
             time.monotonic() - started)
    return True


def _write_segments(manager: Any, partition_dir: str, rows: Any) -> list[str]:
    """``rows`` (in seq order) as data files of at most milvus-lite's segment cap."""
    from milvus_lite.constants import MAX_SEGMENT_ROWS
    from milvus_lite.storage.data_file import write_data_file

    seqs = rows.column("_seq").to_numpy()
    written = []
    for start in range(0, rows.num_rows, MAX_SEGMENT_ROWS):
        part = rows.slice(start, MAX_SEGMENT_ROWS)
        first, last = int(seqs[start]), int(seqs[start + part.num_rows - 1])
        seq_min, seq_max = manager._pick_unique_seq_range(partition_dir, first, last)
        written.append(write_data_file(part, partition_dir, seq_min=seq_min, seq_max=seq_max))
    return written


def _replace_files(manager: Any, partition: str, partition_dir: str, old: Sequence[str],
                   manifest: Any, new: list[str]) -> None:
    """Commit ``new`` in place of ``old`` in the manifest, then delete the old files that no
    snapshot holds (a crash between the two leaves orphans, which recovery removes)."""
    from milvus_lite.storage.snapshots import snapshot_references

    manifest.remove_data_files(partition, list(old))
    for name in new:
        manifest.add_data_file(partition, name)
    manifest.save()
    pinned = snapshot_references(manager._data_dir)[0].get(partition, set())
    for name in old:
        if name in pinned:
            continue
        try:
            os.remove(os.path.join(partition_dir, name))
        except FileNotFoundError:
            pass
        except OSError as error:
            log.warning("compaction: could not remove %s: %s", name, error)
