"""Milvus Lite segments that hold their vectors once (`storage/lite_one_copy.py`), on real
collections: the same searches, reads and restarts as with milvus-lite's two copies, the
table's own copy freed, the data folder unchanged, and no sharing where faiss's floats are
not the segment's."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import faiss
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from milvus_lite import CollectionSchema, DataType, FieldSchema, MilvusLite
from milvus_lite.index.faiss_hnsw import FaissHnswIndex
from milvus_lite.storage.segment import Segment

from helpers import resident_mb
from phantoscope.storage import lite_one_copy

DIMENSION = 24
VECTORS = np.random.default_rng(3).normal(size=(1200, DIMENSION)).astype(np.float32)
QUERIES = np.random.default_rng(4).normal(size=(8, DIMENSION)).astype(np.float32)


@pytest.fixture(autouse=True)
def one_thread(lite_swaps: None) -> Iterator[None]:
    """One faiss thread, so that two collections built from the same rows get the same HNSW
    graphs; the sharing installed (`lite_swaps`, as a store on Lite installs it)."""
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(threads)


def _schema() -> CollectionSchema:
    return CollectionSchema(fields=[
        FieldSchema(name="id", dtype=DataType.INT64, is_primary=True),
        FieldSchema(name="vector", dtype=DataType.FLOAT_VECTOR, dim=DIMENSION),
        FieldSchema(name="generation", dtype=DataType.INT64),
    ])


def _rows(keys: range | list[int], generation: int) -> list[dict]:
    return [{"id": key, "vector": (VECTORS[key] * generation).tolist(),
             "generation": generation} for key in keys]


def _build(db: MilvusLite, name: str, metric: str = "IP", index_type: str = "HNSW"):
    """A collection with segments compacted and not, upserts, deletes, two partitions and rows
    never flushed; its indexes built."""
    collection = db.create_collection(name, _schema())
    collection.create_partition("left")
    collection.create_partition("right")
    params = {"M": 8, "efConstruction": 64} if index_type == "HNSW" else {}
    collection.create_index("vector", {"index_type": index_type, "metric_type": metric,
                                       "params": params})
    collection.load()
    for start in range(0, 600, 100):  # six small segments: milvus-lite compacts four of them
        collection.insert(_rows(range(start, start + 100), 1), partition_name="left")
        collection.flush()
    collection.insert(_rows(range(600, 1000), 1), partition_name="right")
    collection.flush()
    collection.upsert(_rows(range(50, 90), 2), partition_name="left")
    collection.delete(list(range(100, 130)))
    collection.flush()
    collection.delete(list(range(700, 710)))
    collection.insert(_rows(range(1000, 1040), 1), partition_name="right")
    collection._wait_for_bg(timeout=120)
    return collection


def _segments(collection) -> list[Segment]:
    return list(collection._segment_cache.values())


def _expected(key: int) -> np.ndarray:
    return VECTORS[key] * (2 if 50 <= key < 90 else 1)


def _answers(collection) -> list:
    """Searches (with and without a filter, by partition, top-k past the rows) and reads."""
    answers = []
    for partitions in (None, ["left"], ["right"]):
        for top_k in (1, 10, 2000):
            for expression in (None, "generation == 2", "id < 300"):
                answers.append(collection.search(
                    QUERIES.tolist(), top_k=top_k, partition_names=partitions,
                    expr=expression, output_fields=["generation", "vector"]))
    answers.append(collection.get(list(range(0, 1040, 7))))
    answers.append(collection.query("id >= 40 and id < 140", output_fields=["vector"]))
    return answers


def _assert_vectors_are_the_inserted_ones(collection) -> None:
    found = collection.get(list(range(1040)))
    assert len(found) == 1040 - 40
    for row in found:
        assert np.array_equal(np.asarray(row["vector"], dtype=np.float32), _expected(row["id"]))


def test_indexed_segments_read_their_vectors_from_faiss(tmp_path: Path) -> None:
    with MilvusLite(str(tmp_path / "lite")) as db:
        collection = _build(db, "once")
        segments = _segments(collection)
        assert any(s.partition == "left" and s.num_rows > 100 for s in segments)  # compacted
        assert any(s.partition == "right" for s in segments)
        for segment in segments:
            assert lite_one_copy.shares(segment, "vector")
            stored = faiss.downcast_index(segment.indexes["vector"]._index.storage)
            address = faiss.rev_swig_ptr(stored.get_xb(), 1).ctypes.data
            column = segment.table.column("vector").chunk(0)
            assert column.values.buffers()[1].address == address
            assert segment.vectors.ctypes.data == address
            generations = segment.table.column("generation").to_numpy()[:, None]
            assert np.array_equal(segment.vectors,
                                  VECTORS[segment.pks] * generations.astype(np.float32))
        _assert_vectors_are_the_inserted_ones(collection)


def _reopened(folder: str, once: bool):
    """The collection of the database at ``folder``, its indexes loaded from their sidecar
    files, with vectors held once or twice."""
    (lite_one_copy.install if once else lite_one_copy.uninstall)()
    db = MilvusLite(folder)
    collection = db.get_collection("c")
    collection.load()
    assert all(lite_one_copy.shares(s, "vector") == once for s in _segments(collection))
    return db, collection


def _delete(collection, keys: range) -> None:
    collection.delete(list(keys))
    collection.flush()
    collection._wait_for_bg(timeout=60)


def test_same_answers_as_two_copies(tmp_path: Path) -> None:
    """One collection's own graphs (loaded from its sidecar files) searched with its vectors
    held once and twice, turn and turn about, deleting on either side: written by either, the
    folder answers the same to both (milvus-lite compacts on its own schedule, so two
    collections built alike need not have the same segments)."""
    folder = str(tmp_path / "lite")
    with MilvusLite(folder) as db:
        collection = _build(db, "c")
        _delete(collection, range(0))  # the memtable flushed (and compacted), as closing does
        assert all(lite_one_copy.shares(s, "vector") for s in _segments(collection))
        answers = _answers(collection)
    assert sum(len(hits) for answer in answers[:-2] for hits in answer) > 1000
    for once, deleted in ((False, range(700, 730)), (True, range(60, 70)), (False, None)):
        db, collection = _reopened(folder, once)
        with db:
            assert _answers(collection) == answers
            if deleted is not None:
                _delete(collection, deleted)
                answers = _answers(collection)


def test_a_restart_shares_again_and_the_folder_is_unchanged(tmp_path: Path) -> None:
    folder = str(tmp_path / "lite")
    with MilvusLite(folder) as db:
        collection = _build(db, "c")
        _delete(collection, range(0))  # the memtable flushed (and compacted), as closing does
        before = _answers(collection)
    db, collection = _reopened(folder, once=True)
    with db:
        assert _answers(collection) == before
        _assert_vectors_are_the_inserted_ones(collection)
    for data_file in Path(folder).rglob("data_*.parquet"):
        table = pq.read_table(data_file)
        assert table.schema.field("vector").type == pa.list_(pa.float32(), DIMENSION)
        vectors = table.column("vector").combine_chunks().values.to_numpy().reshape(
            -1, DIMENSION)
        keys = table.column("id").to_pylist()
        generations = table.column("generation").to_numpy()
        assert np.array_equal(vectors, VECTORS[keys] * generations[:, None].astype(np.float32))


def test_the_tables_own_copy_is_freed(tmp_path: Path) -> None:
    with MilvusLite(str(tmp_path / "lite")) as db:
        lite_one_copy.uninstall()
        collection = _build(db, "twice")
        data_file = _segments(collection)[-1].file_path
    segment = Segment.load(data_file, "right", "id", "vector")
    index = FaissHnswIndex.build(segment.vectors, "IP", {"M": 8, "efConstruction": 32})
    gc.collect()  # what earlier tests left in cycles is freed before, not during
    held = pa.total_allocated_bytes()
    assert lite_one_copy.share(segment, "vector", index)
    gc.collect()
    assert held - pa.total_allocated_bytes() >= segment.vectors.nbytes


def test_attaching_an_index_hands_the_copy_back_to_the_system(tmp_path: Path) -> None:
    vectors = np.random.default_rng(5).normal(size=(320_000, DIMENSION)).astype(np.float32)
    data_file = tmp_path / "data_000001_000001.parquet"
    pq.write_table(pa.table({
        "_seq": pa.array(np.arange(len(vectors), dtype=np.uint64)),
        "id": pa.array(np.arange(len(vectors), dtype=np.int64)),
        "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), DIMENSION)}),
        data_file)
    segment = Segment.load(str(data_file), "_default", "id", "vector")
    index = FaissHnswIndex.build(vectors, "IP", {"M": 4, "efConstruction": 8})
    del vectors
    before = resident_mb()
    segment.attach_index(index)
    assert lite_one_copy.shares(segment, "vector")
    assert before - resident_mb() >= 0.8 * segment.vectors.nbytes / 1024**2


@pytest.mark.parametrize(("metric", "index_type"), [("COSINE", "HNSW"), ("IP", "FLAT"),
                                                     ("L2", "IVF_FLAT")])
def test_no_sharing_where_faiss_does_not_hold_the_segments_floats(
        tmp_path: Path, metric: str, index_type: str) -> None:
    with MilvusLite(str(tmp_path / "lite")) as db:
        collection = _build(db, "other", metric, index_type)
        assert not any(lite_one_copy.shares(s, "vector") for s in _segments(collection))
        _assert_vectors_are_the_inserted_ones(collection)


def test_an_index_of_other_vectors_is_not_shared(tmp_path: Path) -> None:
    with MilvusLite(str(tmp_path / "lite")) as db:
        lite_one_copy.uninstall()
        collection = _build(db, "twice")
        segment = _segments(collection)[-1]
    own = segment.vectors
    moved = own.copy()
    moved[len(moved) // 2, 3] = np.nextafter(moved[len(moved) // 2, 3], np.inf)
    assert not lite_one_copy.share(segment, "vector", FaissHnswIndex.build(moved, "IP"))
    assert not lite_one_copy.share(segment, "vector", FaissHnswIndex.build(own[:-1], "IP"))
    assert segment.vectors is own
    assert lite_one_copy.share(segment, "vector", FaissHnswIndex.build(own.copy(), "IP"))
