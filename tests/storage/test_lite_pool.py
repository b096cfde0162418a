"""Milvus Lite hands Arrow's freed memory back after each segment cache refresh
(`storage/lite_pool.py`), on a real collection and the real pool."""

from __future__ import annotations

import gc
import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from milvus_lite import CollectionSchema, DataType, FieldSchema, MilvusLite
from milvus_lite.storage.segment import Segment

from helpers import resident_mb
from phantoscope.storage import lite_pool

FREED_MB = 256  # what the test leaves freed in the pool


pytestmark = pytest.mark.usefixtures("lite_swaps")


def _collection(db: MilvusLite) -> Any:
    return db.create_collection("photos", CollectionSchema(fields=[
        FieldSchema(name="id", dtype=DataType.INT64, is_primary=True),
        FieldSchema(name="vector", dtype=DataType.FLOAT_VECTOR, dim=4)]))


def _held_after_a_flush(folder: Path) -> tuple[float, float]:
    """MB resident above the start once FREED_MB of Arrow buffers are freed, and after a
    flush (which refreshes the segment cache) of a collection without an index (so that no
    index is attached, which releases too)."""
    with MilvusLite(str(folder)) as db:
        collection = _collection(db)
        collection.insert([{"id": 1, "vector": [1.0, 0.0, 0.0, 0.0]}])
        gc.collect()
        lite_pool.release_freed()
        start = resident_mb()
        ones = pa.array(np.ones(1 << 18, dtype=np.float32))  # 1 MB
        buffers = [pc.multiply(ones, 2.0) for _ in range(FREED_MB)]  # from the pool
        del buffers
        gc.collect()
        freed = resident_mb() - start
        collection.flush()
        return freed, resident_mb() - start


def test_a_refresh_hands_the_pools_freed_memory_back(tmp_path: Path) -> None:
    freed, after = _held_after_a_flush(tmp_path)
    assert freed >= 0.8 * FREED_MB  # the pool keeps what was freed ...
    assert after <= 0.2 * FREED_MB  # ... until the refresh


def test_without_it_the_pool_keeps_it(tmp_path: Path) -> None:
    lite_pool.uninstall()
    freed, after = _held_after_a_flush(tmp_path)
    assert after >= 0.8 * freed >= 0.8 * 0.8 * FREED_MB


@pytest.mark.parametrize("dropping_first", [True, False])
def test_merged_segments_go_before_the_merge_loads(tmp_path: Path, dropping_first: bool,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    (lite_pool.install if dropping_first else lite_pool.uninstall)()
    loads: list[tuple[str, set[str]]] = []  # each segment loaded, and the ones held then
    load = Segment.load.__func__

    def watched(cls: type, file_path: str, *args: Any, **kwargs: Any) -> Segment:
        loads.append((os.path.basename(file_path),
                      {os.path.basename(name) for _, name in collection._segment_cache}))
        return load(cls, file_path, *args, **kwargs)

    monkeypatch.setattr(Segment, "load", classmethod(watched))
    with MilvusLite(str(tmp_path)) as db:
        collection = _collection(db)
        for start in range(0, 40, 10):  # four flushed files: milvus-lite merges them
            collection.insert([{"id": key, "vector": [float(key), 1.0, 0.0, 0.0]}
                               for key in range(start, start + 10)])
            collection.flush()
        collection._wait_for_bg(timeout=60)
        assert collection.num_entities == 40
        merged = {name for name, _ in loads[:4]}
        (merge, held), = loads[4:]
        assert merge not in merged and len(collection._segment_cache) == 1
        assert not held & merged if dropping_first else held == merged
        hits = collection.search([[39.0, 1.0, 0.0, 0.0]], top_k=1, metric_type="IP")
        assert hits[0][0]["id"] == 39
