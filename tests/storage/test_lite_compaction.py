"""Milvus Lite compactions that copy no rows (`storage/lite_compaction.py`), on real
collections: the same data files, manifests and answers as milvus-lite's own merge, through
fresh keys, tombstones, upserts and a merge past the segment cap."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from milvus_lite import CollectionSchema, DataType, FieldSchema, MilvusLite, constants
from milvus_lite.engine import compaction

from phantoscope.storage import lite_compaction

DIMENSION = 8
VECTORS = np.random.default_rng(5).normal(size=(2000, DIMENSION)).astype(np.float32)
SEGMENT_CAP = 250  # milvus-lite's cap, lowered so that a merge of four files passes it


@pytest.fixture(autouse=True)
def lowered_cap(monkeypatch: pytest.MonkeyPatch, lite_swaps: None) -> None:
    monkeypatch.setattr(compaction, "MAX_SEGMENT_ROWS", SEGMENT_CAP)
    monkeypatch.setattr("milvus_lite.constants.MAX_SEGMENT_ROWS", SEGMENT_CAP)


def _rows(keys: range | list[int], generation: int) -> list[dict]:
    return [{"id": key, "vector": (VECTORS[key] * generation).tolist(),
             "generation": generation} for key in keys]


def _build(folder: Path) -> list[str]:
    """Compactions of fresh keys (one past the cap), of keys deleted before, and of upserted
    keys; what each merge was: "merged" (`merge_files`) or "milvus-lite"."""
    merges: list[str] = []
    with MilvusLite(str(folder)) as db:
        collection = db.create_collection("photos", CollectionSchema(fields=[
            FieldSchema(name="id", dtype=DataType.INT64, is_primary=True),
            FieldSchema(name="vector", dtype=DataType.FLOAT_VECTOR, dim=DIMENSION),
            FieldSchema(name="generation", dtype=DataType.INT64),
        ]))
        collection.create_index("vector", {"index_type": "HNSW", "metric_type": "IP",
                                           "params": {"M": 8, "efConstruction": 32}})
        collection.load()
        rounds = {  # one partition each: a partition compacts on its own
            "fresh": lambda start: None,
            "deleted": lambda start: collection.delete(list(range(start - 75, start - 60))),
            "upserted": lambda start: collection.upsert(
                _rows(range(start - 70, start - 60), 2), partition_name="upserted"),
        }
        start = 0
        for partition, step in rounds.items():
            collection.create_partition(partition)
            for _ in range(4):
                collection.insert(_rows(range(start, start + 80), 1), partition_name=partition)
                step(start)
                collection.flush()
                start += 80
            collection._wait_for_bg(timeout=120)
            merges.append(_files(collection, partition))
        collection.insert(_rows(range(start, start + 30), 1))  # never flushed
        answers = [collection.search(VECTORS[:5].tolist(), top_k=50,
                                     output_fields=["generation"]),
                   collection.query("id >= 0", output_fields=["generation", "vector"])]
        merges.append(repr(answers))
    return merges


def _files(collection, partition: str) -> str:
    return f"{partition}: {len(collection._manifest.get_data_files(partition))} files"


def _data_files(folder: Path) -> dict[str, list]:
    """Every data file's rows, by its path in the folder."""
    return {str(path.relative_to(folder)): pq.read_table(path).to_pylist()
            for path in sorted(folder.rglob("data_*.parquet"))}


def test_merging_without_a_copy_leaves_what_milvus_lite_s_merge_leaves(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ways: list[bool] = []
    merge_files = lite_compaction.merge_files

    def recorded(*args):
        ways.append(merge_files(*args))
        return ways[-1]

    monkeypatch.setattr(lite_compaction, "merge_files", recorded)
    merged = _build(tmp_path / "merged")
    lite_compaction.uninstall()
    own = _build(tmp_path / "own")

    assert merged == own
    assert _data_files(tmp_path / "merged") == _data_files(tmp_path / "own")
    # fresh keys (split at the cap), then fresh keys beside tombstones: merged without a
    # copy; upserted keys: milvus-lite's merge
    assert ways == [True, True, False]
    assert any(len(rows) == SEGMENT_CAP for rows in _data_files(tmp_path / "own").values())


@pytest.mark.parametrize("ours", [True, False])
def test_a_merge_holds_one_files_rows_at_a_time(tmp_path: Path, ours: bool,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import pyarrow as pa

    (lite_compaction.install if ours else lite_compaction.uninstall)()
    files, rows, dimension = 12, 5000, 256  # a file's vectors: 5 MB
    vectors = np.random.default_rng(3).normal(size=(files * rows, dimension))
    for holder in (compaction, constants):  # milvus-lite's own cap: one segment
        monkeypatch.setattr(holder, "MAX_SEGMENT_ROWS", 100_000)
    monkeypatch.setattr(compaction, "COMPACTION_MIN_FILES_PER_BUCKET", 99)  # not yet
    with MilvusLite(str(tmp_path)) as db:
        collection = db.create_collection("photos", CollectionSchema(fields=[
            FieldSchema(name="id", dtype=DataType.INT64, is_primary=True),
            FieldSchema(name="vector", dtype=DataType.FLOAT_VECTOR, dim=dimension)]))
        for start in range(0, files * rows, rows):
            collection.insert([{"id": key, "vector": vectors[key].tolist()}
                               for key in range(start, start + rows)])
            collection.flush()
        collection._wait_for_bg(timeout=60)
        monkeypatch.setattr(compaction, "COMPACTION_MIN_FILES_PER_BUCKET", 4)
        default = pa.default_memory_pool()
        pool = pa.proxy_memory_pool(default)  # the merge's allocations, and their peak
        pa.set_memory_pool(pool)
        try:
            assert collection._compaction_mgr.maybe_compact(
                "_default", collection._manifest, collection._delta_index)
        finally:
            pa.set_memory_pool(default)
        all_vectors = files * rows * dimension * 4
        # milvus-lite's merge holds all it merges at once (and copies it); ours one file
        assert (pool.max_memory() < all_vectors) if ours else (
            pool.max_memory() > 2 * all_vectors)
        collection._refresh_segment_cache()
        (segment,) = collection._segments_snapshot()
        assert np.array_equal(segment.vectors, vectors.astype(np.float32))
