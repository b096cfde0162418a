"""Milvus Lite compactions that hold one merged file's rows at a time.

milvus-lite 3.2.2 merges a partition's small data files (up to twice its 100k-row segment
cap: 1 GB of 1280-d vectors) by laying them end to end, sorting by key and taking the rows
in that order (a copy), keeping the newest row of each key (a second copy), then sorting by
seq and taking again (a third), while the segments being merged stay loaded beside them.
Where no key repeats across the files (the files of an import: every key new), that merge
is the files' rows in seq order, which they already are when laid end to end by their
first seq, less the rows a newer tombstone deletes. `merge_files` checks that from the
files' seq and key columns alone, then writes that concatenation, cut into segments at
milvus-lite's cap, reading and writing one file at a time: the merge holds one file's rows
(10k rows, 50 MB, from an import's flushes) beside the loaded segments rather than all it
merges, and copies none (but once where tombstones drop some). Files whose keys repeat or
whose seqs interleave go to milvus-lite's own merge. The files it writes hold the same rows
in the same order (tests/storage/test_lite_compaction.py; in more row groups), so a data
folder is the same either way. `lite_search.install` installs it over the milvus-lite
versions it was checked against.
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
    their rows (but once where tombstones drop some) and holding one file's rows at a time;
    False, having changed nothing, where a key repeats or the files' seqs interleave
    (milvus-lite's own merge handles those)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    started = time.monotonic()
    key = manager._pk_name
    paths = [os.path.join(partition_dir, name) for name in files]
    heads = [pq.read_table(path, columns=["_seq", key]) for path in paths]  # small
    order = sorted((at for at, head in enumerate(heads) if head.num_rows),
                   key=lambda at: pc.min(heads[at].column("_seq")).as_py())
    if not order:
        return False
    file_seqs = [heads[at].column("_seq").to_numpy() for at in order]
    seqs = np.concatenate(file_seqs)
    if (np.diff(seqs) <= 0).any():
        return False
    keys = np.concatenate([heads[at].column(key).to_numpy() for at in order])
    if len(np.unique(keys)) != len(keys):
        return False
    kept = [_kept_rows(heads[at], key, delta_index) for at in order]
    kept_seqs = np.concatenate([these if mask is None else these[mask]
                                for these, mask in zip(file_seqs, kept, strict=True)])
    written = _write_segments(manager, partition_dir, [paths[at] for at in order], kept,
                              kept_seqs)
    _replace_files(manager, partition, partition_dir, files, manifest, written)
    log.info(MERGED, partition, len(files), len(seqs), len(written), len(kept_seqs),
             time.monotonic() - started)
    return True


def _kept_rows(head: Any, key: str, delta_index: Any) -> np.ndarray | None:
    """Which rows of a file's (seq, key) columns no newer tombstone deletes (milvus-lite's
    rule); None where that is all of them."""
    if not len(delta_index):
        return None
    kept = np.array([not delta_index.is_deleted(pk, seq) for pk, seq in zip(
        head.column(key).to_pylist(), head.column("_seq").to_pylist(), strict=True)],
        dtype=bool)
    return None if kept.all() else kept


def _write_segments(manager: Any, partition_dir: str, paths: Sequence[str],
                    kept: Sequence[np.ndarray | None], seqs: np.ndarray) -> list[str]:
    """The kept rows of the data files at ``paths`` (in seq order; their seqs ``seqs``), end
    to end in data files of at most milvus-lite's segment cap, read and written one input
    file at a time."""
    import pyarrow.parquet as pq
    from milvus_lite.constants import MAX_SEGMENT_ROWS
    from milvus_lite.storage.data_file import read_data_file

    written: list[str] = []
    writer, room = None, 0
    try:
        for path, mask in zip(paths, kept, strict=True):
            rows = read_data_file(path)
            if mask is not None:
                rows = rows.filter(mask)
            done = 0
            while done < rows.num_rows:
                if not room:
                    if writer is not None:
                        writer.close()
                    first = len(written) * MAX_SEGMENT_ROWS
                    part = seqs[first:first + MAX_SEGMENT_ROWS]
                    name, place = _data_file(manager, partition_dir, part)
                    writer, room = pq.ParquetWriter(place, rows.schema), len(part)
                    written.append(name)
                piece = rows.slice(done, room)
                writer.write_table(piece)
                done, room = done + piece.num_rows, room - piece.num_rows
    finally:
        if writer is not None:
            writer.close()
    return written


def _data_file(manager: Any, partition_dir: str, seqs: np.ndarray) -> tuple[str, str]:
    """A new data file's name in the manifest and its path, for rows of ``seqs``, named as
    milvus-lite's `write_data_file` names one."""
    from milvus_lite.constants import DATA_FILE_TEMPLATE, SEQ_FORMAT_WIDTH
    from milvus_lite.storage.paths import persisted_rel_path

    seq_min, seq_max = manager._pick_unique_seq_range(partition_dir, int(seqs[0]),
                                                      int(seqs[-1]))
    filename = DATA_FILE_TEMPLATE.format(min=seq_min, max=seq_max, w=SEQ_FORMAT_WIDTH)
    os.makedirs(os.path.join(partition_dir, "data"), exist_ok=True)
    return persisted_rel_path("data", filename), os.path.join(partition_dir, "data", filename)


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
