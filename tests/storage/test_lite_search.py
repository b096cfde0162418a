"""The vectorised Milvus Lite executor against milvus-lite's own, on real collections.

Each collection is built through milvus-lite's public API into the states its executor has
to get right: several flushed segments, keys upserted into newer segments and into the
memtable, deletes flushed and unflushed, partitions, rows never flushed, an index on some
segments only. Every search runs twice, once through each executor, and must agree exactly:
ids, distances and entities, in order.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from milvus_lite import CollectionSchema, DataType, FieldSchema, MilvusLite
from milvus_lite.engine import collection as lite_collection

from phantoscope.storage import lite_search

DIMENSION = 16


def _schema(key_type: DataType) -> CollectionSchema:
    key = (FieldSchema(name="id", dtype=DataType.INT64, is_primary=True)
           if key_type == DataType.INT64 else
           FieldSchema(name="id", dtype=DataType.VARCHAR, is_primary=True, max_length=32))
    return CollectionSchema(fields=[
        key,
        FieldSchema(name="vector", dtype=DataType.FLOAT_VECTOR, dim=DIMENSION),
        FieldSchema(name="generation", dtype=DataType.INT64),
    ])


def _rows(keys: range | list, generation: int, rng: np.random.Generator,
          key_type: DataType = DataType.INT64) -> list[dict]:
    vectors = rng.normal(size=(len(keys), DIMENSION)).astype(np.float32)
    return [{"id": key if key_type == DataType.INT64 else f"k{key}", "vector": vector.tolist(),
             "generation": generation} for key, vector in zip(keys, vectors, strict=True)]


@pytest.fixture
def database(tmp_path: Path) -> Iterator[MilvusLite]:
    with MilvusLite(str(tmp_path / "lite")) as db:
        yield db


def _build(db: MilvusLite, metric: str, key_type: DataType = DataType.INT64):
    """A collection in every state the executor must handle."""
    rng = np.random.default_rng(7)
    collection = db.create_collection(f"c_{metric.lower()}_{key_type.name.lower()}",
                                      _schema(key_type))
    collection.create_partition("left")
    collection.create_partition("right")
    collection.create_index("vector", {"index_type": "HNSW", "metric_type": metric,
                                       "params": {"M": 8, "efConstruction": 64}})
    collection.load()
    collection.insert(_rows(range(0, 300), 1, rng, key_type), partition_name="left")
    collection.flush()
    collection.insert(_rows(range(300, 500), 1, rng, key_type), partition_name="right")
    collection.flush()
    key = (lambda k: k) if key_type == DataType.INT64 else (lambda k: f"k{k}")
    # newer rows for old keys, one segment later and in the memtable
    collection.upsert(_rows(range(100, 160), 2, rng, key_type), partition_name="left")
    collection.flush()
    collection.upsert(_rows(range(140, 180), 3, rng, key_type), partition_name="left")
    # deletes: some flushed into delta files, some only in the memtable
    collection.delete([key(k) for k in range(20, 60)])
    collection.flush()
    collection.delete([key(k) for k in [*range(150, 155), *range(320, 330)]])
    # rows never flushed: new keys, a key deleted and then inserted again, newer rows for
    # flushed keys (upserted, and inserted again without an upsert)
    collection.insert(_rows(range(500, 530), 1, rng, key_type), partition_name="right")
    collection.insert(_rows([25], 4, rng, key_type), partition_name="left")
    collection.upsert(_rows(range(180, 200), 5, rng, key_type), partition_name="left")
    collection.insert(_rows(range(400, 410), 6, rng, key_type), partition_name="right")
    assert len(collection._memtable.to_search_snapshot(vector_field="vector")[0]) == 61
    # Indexes are built in the background: wait, so both executors search the same indexes.
    collection._wait_for_bg(timeout=60)
    return collection


def _search_both(collection, queries: np.ndarray, output_fields: tuple[str, ...] = ("generation",),
                 **options) -> tuple[list, list]:
    original = lite_search.original_executor()
    results = []
    for executor in (original, lite_search.search_with_index):
        previous = lite_collection.execute_search_with_index
        lite_collection.execute_search_with_index = executor
        try:
            results.append(collection.search(queries.tolist(), output_fields=list(output_fields),
                                             **options))
        finally:
            lite_collection.execute_search_with_index = previous
    return results[0], results[1]


@pytest.mark.parametrize("metric", ["IP", "L2", "COSINE"])
def test_same_hits_as_milvus_lite(database: MilvusLite, metric: str) -> None:
    collection = _build(database, metric)
    queries = np.random.default_rng(11).normal(size=(12, DIMENSION)).astype(np.float32)
    compared = 0
    for partitions in (None, ["left"], ["right"], ["left", "right"]):
        for top_k in (1, 10, 600):
            # a payload field; the key alone (rows not read in whole, as the store asks)
            for fields in (("generation",), ("id",)):
                theirs, ours = _search_both(collection, queries, fields, top_k=top_k,
                                            partition_names=partitions)
                assert ours == theirs, (partitions, top_k, fields)
                compared += sum(len(hits) for hits in ours)
    assert compared > 2 * 12 * (1 + 10) * 4  # the searches found rows to compare


def test_rows_not_yet_flushed_only(database: MilvusLite) -> None:
    rng = np.random.default_rng(5)
    collection = database.create_collection("fresh", _schema(DataType.INT64))
    collection.load()
    queries = rng.normal(size=(4, DIMENSION)).astype(np.float32)
    assert _search_both(collection, queries, top_k=5) == ([[]] * 4, [[]] * 4)
    collection.insert(_rows(range(40), 1, rng))
    collection.delete([3, 4])
    collection.upsert(_rows(range(10, 15), 2, rng))
    theirs, ours = _search_both(collection, queries, top_k=50)
    assert ours == theirs
    assert sorted(hit["id"] for hit in ours[0]) == [k for k in range(40) if k not in (3, 4)]


@pytest.mark.parametrize("partitions", [None, ["left"], ["right"], ["left", "right"],
                                        ["_default"]])
def test_memtable_snapshot_is_milvus_lites_own_from_the_c_allocator(
        database: MilvusLite, partitions: list[str] | None) -> None:
    """Nothing from pyarrow's default pool (mimalloc), which keeps freed blocks per thread:
    allocated there by a server's request threads, a search's temporary columns swung its
    memory by up to 270 MB."""
    memtable = _build(database, "IP")._memtable
    keys, seqs, vectors, rows, _ = memtable.to_search_snapshot(
        vector_field="vector", partition_names=partitions)
    default_pool = pa.default_memory_pool()
    before = default_pool.num_allocations()
    ours = lite_search.memtable_snapshot(memtable, "vector", partitions)
    assert default_pool.num_allocations() == before
    assert ours is not None
    assert ours[0] == keys and ours[3] == rows
    assert ours[1].dtype == seqs.dtype and np.array_equal(ours[1], seqs)
    assert ours[2].dtype == np.float32 and np.array_equal(ours[2], vectors)
    assert len(keys) == {None: 61, "left": 21, "right": 40, "left,right": 61,
                         "_default": 0}[partitions and ",".join(partitions)]


def test_memtable_snapshot_of_an_empty_memtable(database: MilvusLite) -> None:
    collection = database.create_collection("empty", _schema(DataType.INT64))
    keys, seqs, vectors, rows = lite_search.memtable_snapshot(collection._memtable, "vector",
                                                              None)
    assert (keys, rows, seqs.size, vectors.size) == ([], [], 0, 0)


def test_deleted_and_replaced_rows_are_not_returned(database: MilvusLite) -> None:
    collection = _build(database, "L2")
    stored = collection.get([*range(0, 530)])
    queries = np.array([row["vector"] for row in stored], dtype=np.float32)
    _, ours = _search_both(collection, queries, top_k=600)
    found = {hit["id"]: hit["entity"]["generation"] for hits in ours for hit in hits}
    assert not set(found) & {*range(20, 25), *range(26, 60), *range(150, 155),
                             *range(320, 330)}
    assert found[25] == 4  # deleted, then inserted again
    assert {found[k] for k in range(100, 140)} == {2}
    assert {found[k] for k in (*range(140, 150), *range(155, 180))} == {3}
    assert {found[k] for k in range(180, 200)} == {5}
    assert {found[k] for k in range(400, 410)} == {6}
    assert all(len({hit["id"] for hit in hits}) == len(hits) for hits in ours)
    assert len(found) == 530 - 40 - 5 - 10 + 1


def test_string_keys_and_filters_use_milvus_lites_executor(database: MilvusLite) -> None:
    collection = _build(database, "IP", DataType.VARCHAR)
    queries = np.random.default_rng(3).normal(size=(5, DIMENSION)).astype(np.float32)
    theirs, ours = _search_both(collection, queries, top_k=20)
    assert ours == theirs
    keyed = _build(database, "L2")
    theirs, ours = _search_both(keyed, queries, top_k=20, expr="generation >= 2")
    assert ours == theirs
    assert min(hit["entity"]["generation"] for hits in ours for hit in hits) == 2


def test_a_store_on_lite_installs_it(tmp_path: Path) -> None:
    from phantoscope.storage.milvus_vectors import MilvusVectorStore

    store = MilvusVectorStore(str(tmp_path / "vectors.db"))
    try:
        assert lite_search.installed()
    finally:
        store.close()


def test_an_unchecked_version_keeps_milvus_lites_executor(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(lite_collection, "execute_search_with_index",
                        lite_search.original_executor())
    monkeypatch.setattr(lite_search.metadata, "version", lambda name: "99.0.0")
    with caplog.at_level(logging.WARNING, logger=lite_search.__name__):
        assert lite_search.install() is False
    assert not lite_search.installed()
    assert "milvus-lite 99.0.0" in caplog.text


def test_a_store_searches_lite_in_process_with_the_same_hits(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from phantoscope.storage.milvus_vectors import MilvusVectorStore
    from phantoscope.storage.vectors import VectorStoreError

    rng = np.random.default_rng(9)
    vectors = rng.normal(size=(300, DIMENSION)).astype(np.float32)
    store = MilvusVectorStore(str(tmp_path / "vectors.db"))
    try:
        store.create_collection("c", DIMENSION, "L2")
        store.insert("c", list(range(200)), vectors[:200], partition="p")
        store.insert("c", list(range(200, 300)), vectors[200:], partition="q")
        queries = vectors[:20] + 0.01
        assert lite_search.local_collection(store.uri, "c") is not None
        direct = store.search("c", queries, 7, partition="p")
        monkeypatch.setattr(lite_search, "local_collection", lambda path, name: None)
        through_grpc = store.search("c", queries, 7, partition="p")
        monkeypatch.undo()
        assert [[h.id for h in hits] for hits in direct] == [
            [h.id for h in hits] for hits in through_grpc]
        assert [hits[0].id for hits in direct] == list(range(20))
        assert all(hit.id < 200 for hits in direct for hit in hits)
        np.testing.assert_allclose([[h.distance for h in hits] for hits in direct],
                                   [[h.distance for h in hits] for hits in through_grpc],
                                   rtol=1e-5)
        lite_search.local_collection(store.uri, "c").release()  # behind the store's back
        with pytest.raises(VectorStoreError, match="cannot search 1 vectors in 'c'"):
            store.search("c", queries[:1], 7, partition="p")
    finally:
        store.close()


# -- filtered searches ------------------------------------------------------------------

def _payload_schema() -> CollectionSchema:
    return CollectionSchema(fields=[
        FieldSchema(name="id", dtype=DataType.INT64, is_primary=True),
        FieldSchema(name="vector", dtype=DataType.FLOAT_VECTOR, dim=DIMENSION),
        FieldSchema(name="name", dtype=DataType.VARCHAR, max_length=4096),
        FieldSchema(name="attributes", dtype=DataType.JSON),
        FieldSchema(name="exif", dtype=DataType.JSON),
        FieldSchema(name="generation", dtype=DataType.INT64),
    ])


_TAGS = ["red", "blue", "green", "Red", "bl\u00e9"]


def _attributes(rng: np.random.Generator, key: int) -> dict:
    """Random attributes with every kind of value a filter meets: missing keys, numbers,
    booleans, strings, lists, mixed kinds under one key, JSON text of a list, huge ints."""
    attributes: dict = {}
    if rng.random() < 0.8:
        attributes["category"] = ["shoes", "hats", "bags", 3, "Shoes"][rng.integers(5)]
    price = rng.integers(6)
    if price < 3:
        attributes["price"] = int(rng.integers(0, 100))
    elif price == 3:
        attributes["price"] = float(rng.integers(0, 1000)) / 10
    elif price == 4:
        attributes["price"] = bool(rng.integers(2))
    tags = rng.integers(5)
    if tags < 3:
        attributes["tags"] = [_TAGS[i] for i in rng.choice(5, size=tags + 1, replace=False)]
    elif tags == 3:
        attributes["tags"] = _TAGS[rng.integers(5)]
    elif key % 50 == 0:
        attributes["tags"] = '["red"]'  # text that json_contains parses as a list
    if key % 37 == 0:
        attributes["big"] = 2**60 + key
    elif rng.random() < 0.5:
        attributes["big"] = int(rng.integers(0, 10))
    if rng.random() < 0.5:
        attributes["flag"] = bool(rng.integers(2))
    return attributes


def _exif(rng: np.random.Generator) -> dict:
    exif: dict = {}
    if rng.random() < 0.85:
        exif["taken_at"] = int(1_672_531_200 + rng.integers(0, 3 * 365 * 86400))
    if rng.random() < 0.7:
        exif["camera"] = ["Canon EOS 5D", "iPhone 15", "X100V"][rng.integers(3)]
        exif["width"] = int(rng.choice([640, 1024, 4000]))
    return exif


def _payload_rows(keys: range | list, generation: int, rng: np.random.Generator) -> list[dict]:
    vectors = rng.normal(size=(len(keys), DIMENSION)).astype(np.float32)
    names = ["holidays/", "holidays0", "work/", "", "\u00e9t\u00e9/"]
    return [{"id": key, "vector": vector.tolist(), "generation": generation,
             "name": f"{names[key % 5]}{key}.jpg" if key % 5 != 3 else "",
             "attributes": _attributes(rng, key), "exif": _exif(rng)}
            for key, vector in zip(keys, vectors, strict=True)]


def _build_with_payloads(db: MilvusLite):
    """`_build`'s states (segments, upserts, deletes, partitions, unflushed rows) with
    payloads."""
    rng = np.random.default_rng(17)
    collection = db.create_collection("payloads", _payload_schema())
    collection.create_partition("left")
    collection.create_partition("right")
    collection.create_index("vector", {"index_type": "HNSW", "metric_type": "IP",
                                       "params": {"M": 8, "efConstruction": 64}})
    collection.load()
    collection.insert(_payload_rows(range(0, 300), 1, rng), partition_name="left")
    collection.flush()
    collection.insert(_payload_rows(range(300, 500), 1, rng), partition_name="right")
    collection.flush()
    collection.upsert(_payload_rows(range(100, 160), 2, rng), partition_name="left")
    collection.flush()
    collection.upsert(_payload_rows(range(140, 180), 3, rng), partition_name="left")
    collection.delete(list(range(20, 60)))
    collection.flush()
    collection.delete([*range(150, 155), *range(320, 330)])
    collection.insert(_payload_rows(range(500, 530), 1, rng), partition_name="right")
    collection.insert(_payload_rows([25], 4, rng), partition_name="left")
    collection.upsert(_payload_rows(range(180, 200), 5, rng), partition_name="left")
    collection.insert(_payload_rows(range(400, 410), 6, rng), partition_name="right")
    collection._wait_for_bg(timeout=60)
    return collection


FILTERS = [
    {"attributes.category": "shoes"},
    {"attributes.category": {"ne": "shoes"}},
    {"attributes.category": {"in": ["shoes", 3]}},
    {"attributes.category": {"gte": "hats"}},
    {"attributes.price": {"gte": 10, "lt": 50}},
    {"attributes.price": {"gt": 10.5}},
    {"attributes.price": True},
    {"attributes.price": {"lte": 0}},
    {"attributes.tags": {"in": ["red", "blue"]}},
    {"attributes.tags": "red"},
    {"not": {"attributes.tags": "red"}},
    {"attributes.tags": {"exists": False}},
    {"attributes.big": {"gt": 5}},
    {"attributes.big": {"lt": 2**62}},
    {"attributes.flag": True, "attributes.category": {"ne": "bags"}},
    {"taken_at": {"gte": "2024-01-01", "lt": "2025-01-01"}},
    {"taken_at": {"gt": "2024-06-01T12:30:00.5+02:00"}},
    {"camera": {"exists": False}},
    {"camera": {"prefix": "i"}, "width": {"gte": 1024}},
    {"name": {"prefix": "holidays/"}},
    {"name": {"ne": ""}},
    {"name": {"in": ["holidays/0.jpg", "work/2.jpg", "\u00e9t\u00e9/4.jpg"]}},
    {"or": [{"width": {"gt": 1000}}, {"attributes.flag": True}]},
    {"not": {"or": [{"width": {"gt": 1000}}, {"attributes.flag": True}]}},
    {"not": {"attributes.category": "hats", "name": {"prefix": "work/"}}},
    {"attributes.nothing": {"gt": 1}},
]


def _expressions() -> list[str]:
    from phantoscope.engine.filters import milvus_expression, parse_filter
    from phantoscope.storage.vectors import FILTER_FIELDS

    built = [milvus_expression(parse_filter(f), FILTER_FIELDS) for f in FILTERS]
    # and what the engine's fallback for legacy collections and milvus-lite itself take
    return [*built, "id in [0, 7, 25, 150, 199, 320, 405, 529, 999]",
            'name like "work/%"', 'name like "work/%" or attributes["price"] > 90',
            "generation >= 2 and attributes[\"price\"] > 20"]


@pytest.fixture(scope="module")
def payloads(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    with MilvusLite(str(tmp_path_factory.mktemp("payloads"))) as db:
        yield _build_with_payloads(db)


@pytest.mark.parametrize("expression", _expressions())
def test_filtered_searches_same_hits_as_milvus_lite(
        payloads, expression: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Row for row milvus-lite's results, with the switch to an exact search for selective
    filters turned off (milvus-lite searches the graph whatever the filter allows)."""
    monkeypatch.setattr(lite_search, "EXACT_BELOW", 0.0)
    monkeypatch.setattr(lite_search, "WIDER_BELOW", 0.0)
    queries = np.random.default_rng(23).normal(size=(6, DIMENSION)).astype(np.float32)
    for partitions in (None, ["left"], ["right"]):
        for top_k in (5, 600):
            theirs, ours = _search_both(payloads, queries, top_k=top_k,
                                        partition_names=partitions, expr=expression)
            assert ours == theirs, (partitions, top_k)
    everything = payloads.query(expr=expression, output_fields=["id"])
    assert {hit["id"] for hit in ours[0]} <= {row["id"] for row in everything}


def test_filtered_searches_find_the_exact_top_k(
        payloads, monkeypatch: pytest.MonkeyPatch) -> None:
    """Against numpy over the rows milvus-lite's query selects: the same hits, in order."""
    monkeypatch.setattr(lite_collection, "execute_search_with_index",
                        lite_search.search_with_index)
    queries = np.random.default_rng(29).normal(size=(8, DIMENSION)).astype(np.float32)
    for expression in _expressions():
        for partitions in (None, ["left"], ["right"]):
            rows = payloads.query(expr=expression, partition_names=partitions,
                                  output_fields=["id", "vector"])
            keys = np.array([row["id"] for row in rows], dtype=np.int64)
            vectors = np.array([row["vector"] for row in rows], dtype=np.float32)
            found = payloads.search(queries.tolist(), top_k=10, expr=expression,
                                    partition_names=partitions, output_fields=["id"])
            for query, hits in zip(queries, found, strict=True):
                scores = vectors @ query if len(rows) else np.zeros(0)
                best = np.argsort(-scores)[:10]
                assert [hit["id"] for hit in hits] == keys[best].tolist(), (expression,
                                                                             partitions)
                np.testing.assert_allclose([hit["distance"] for hit in hits], scores[best],
                                           rtol=1e-4, atol=1e-4)


def test_filters_on_json_paths_are_not_evaluated_row_by_row(
        payloads, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only rows that plain float64 and string columns cannot answer exactly go to
    milvus-lite's row-wise evaluator: integers beyond 2**53 (key % 37 == 0 holds one) and
    text of a JSON list (key % 50 == 0); an expression it does not handle (``like``, an
    integer literal beyond 2**53) goes there whole."""
    from milvus_lite.search.filter.eval import python_backend

    evaluated: list[int] = []
    real = python_backend._eval_row

    def counting(node, row):
        evaluated.append(row["id"])
        return real(node, row)

    monkeypatch.setattr(python_backend, "_eval_row", counting)
    monkeypatch.setattr(lite_collection, "execute_search_with_index",
                        lite_search.search_with_index)
    queries = np.random.default_rng(2).normal(size=(2, DIMENSION)).astype(np.float32)
    expressions = _expressions()
    for expression in expressions:
        evaluated.clear()
        payloads.search(queries.tolist(), top_k=10, expr=expression, output_fields=["id"])
        if (("like" in expression and "attributes" in expression)
                or str(2**62) in expression):
            assert len(set(evaluated)) > 300
        elif "big" in expression or "tags" in expression:
            assert evaluated and all(key % 37 == 0 or key % 50 == 0 for key in evaluated)
        else:
            assert not evaluated, expression
