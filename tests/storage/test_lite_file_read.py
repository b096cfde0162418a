"""Milvus Lite segments read from data files of several row groups hold their vectors once
(`storage/lite_file_read.py`), on real files and a real collection."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from milvus_lite import CollectionSchema, DataType, FieldSchema, MilvusLite

from phantoscope.storage import lite_file_read

ROWS, GROUP = 1000, 300  # four row groups, the last one short


pytestmark = pytest.mark.usefixtures("lite_swaps")


def _vectors(rows: int, width: int, seed: int) -> pa.FixedSizeListArray:
    flat = np.random.default_rng(seed).standard_normal(rows * width).astype(np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(flat), width)


def _file(path: Path, vector: pa.Array | None = None) -> None:
    """A data file of several row groups with two vector columns between scalar ones."""
    table = pa.table({"id": np.arange(ROWS), "vector": vector or _vectors(ROWS, 8, 0),
                      "_seq": np.arange(ROWS, dtype=np.uint64),
                      "other": _vectors(ROWS, 3, 1)},
                     metadata={b"written": b"by the test"})
    pq.write_table(table, path, row_group_size=GROUP)
    assert pq.ParquetFile(path).metadata.num_row_groups == 4


def _fail(path: str) -> Any:
    raise AssertionError(f"{path} fell back")


def test_several_row_groups_read_into_one_chunk_per_vector_column(tmp_path: Path) -> None:
    _file(tmp_path / "data.parquet")
    read = lite_file_read.read(str(tmp_path / "data.parquet"), _fail)
    assert read.equals(pq.read_table(tmp_path / "data.parquet"), check_metadata=True)
    assert read.schema.names == ["id", "vector", "_seq", "other"]
    assert read.column("vector").num_chunks == read.column("other").num_chunks == 1


def test_one_row_group_or_null_vectors_read_as_milvus_lite_reads_them(tmp_path: Path) -> None:
    fallen: list[str] = []

    def fallback(path: str) -> str:
        fallen.append(path)
        return "milvus-lite's table"

    pq.write_table(pa.table({"id": np.arange(3), "vector": _vectors(3, 8, 0)}),
                   tmp_path / "one.parquet")
    with_null = _vectors(ROWS, 8, 0)
    with_null = pa.FixedSizeListArray.from_arrays(
        with_null.values, 8, mask=pa.array(np.arange(ROWS) == ROWS - 1))
    _file(tmp_path / "null.parquet", with_null)
    for name in ("one.parquet", "null.parquet"):
        assert lite_file_read.read(str(tmp_path / name), fallback) == "milvus-lite's table"
    assert fallen == [str(tmp_path / "one.parquet"), str(tmp_path / "null.parquet")]


@pytest.mark.parametrize("reading_once", [True, False])
def test_a_merged_segment_holds_its_vectors_once(tmp_path: Path, reading_once: bool) -> None:
    (lite_file_read.install if reading_once else lite_file_read.uninstall)()
    with MilvusLite(str(tmp_path)) as db:
        collection = db.create_collection("photos", CollectionSchema(fields=[
            FieldSchema(name="id", dtype=DataType.INT64, is_primary=True),
            FieldSchema(name="vector", dtype=DataType.FLOAT_VECTOR, dim=4)]))
        for start in range(0, 40, 10):  # four flushed files, merged into one by lite_compaction
            collection.insert([{"id": key, "vector": [float(key), 1.0, 0.0, 0.0]}
                               for key in range(start, start + 10)])
            collection.flush()
        collection._wait_for_bg(timeout=60)
        (segment,) = collection._segment_cache.values()
        assert pq.ParquetFile(segment.file_path).metadata.num_row_groups == 4
        column = segment.table.column("vector")
        start = column.chunk(0).flatten().buffers()[1].address
        assert (column.num_chunks, segment.vectors.ctypes.data == start) == (
            (1, True) if reading_once else (4, False))
        assert segment.vectors[:, 0].tolist() == [float(key) for key in range(40)]
        hits = collection.search([[39.0, 1.0, 0.0, 0.0]], top_k=1, metric_type="IP")
        assert hits[0][0]["id"] == 39
