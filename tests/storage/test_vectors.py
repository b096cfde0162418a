"""The vector store against real Milvus: Milvus Lite in a temporary folder and a Milvus server.

Every behavioural test runs on both backends (`store` is parametrized); the server is
started once per session (see conftest.py).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from phantoscope.storage.milvus_vectors import MilvusVectorStore
from phantoscope.storage.open_stores import open_vector_store
from phantoscope.storage.vectors import (
    VectorHit,
    VectorStore,
    VectorStoreError,
)

DIM = 128


def unit_vectors(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


BACKENDS = ["lite", "server"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def store_uri(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "lite":
        return str(tmp_path / "vectors.db")
    return request.getfixturevalue("milvus_server_uri")


@pytest.fixture(scope="module", params=BACKENDS)
def shared(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[VectorStore, str, np.ndarray]]:
    """A read-only collection of 1,000 random unit vectors (IP), ids 0..999, made once per
    module and backend (a server takes ~2 s to load a new collection). Tests that use it
    must leave it as they found it."""
    if request.param == "lite":
        uri = str(tmp_path_factory.mktemp("shared") / "vectors.db")
    else:
        uri = request.getfixturevalue("milvus_server_uri")
    name = f"shared_{uuid.uuid4().hex[:12]}"
    vectors = unit_vectors(1000)
    store = open_vector_store(uri)
    store.create_collection(name, DIM, "IP")
    store.insert(name, list(range(1000)), vectors)
    yield store, name, vectors
    store.drop_collection(name)
    store.close()


@pytest.fixture
def store(store_uri: str, backend: str, collection_name: str) -> Iterator[VectorStore]:
    store = open_vector_store(store_uri)
    yield store
    if backend == "server":  # the server outlives the test: leave nothing behind
        with open_vector_store(store_uri) as cleaner:
            for name in cleaner._client.list_collections():
                if name.startswith(collection_name):
                    cleaner.drop_collection(name)
    store.close()


@pytest.fixture
def filled(store: VectorStore, collection_name: str) -> tuple[VectorStore, str, np.ndarray]:
    """A collection of 1,000 random unit vectors (IP), ids 0..999."""
    vectors = unit_vectors(1000)
    store.create_collection(collection_name, DIM, "IP")
    store.insert(collection_name, list(range(1000)), vectors)
    return store, collection_name, vectors


# -- collections ----------------------------------------------------------------------


def test_create_has_drop(store: VectorStore, collection_name: str) -> None:
    assert not store.has_collection(collection_name)
    store.create_collection(collection_name, DIM, "IP")
    assert store.has_collection(collection_name)
    assert store.count(collection_name) == 0
    assert store.search(collection_name, unit_vectors(1), 5) == [[]]
    store.drop_collection(collection_name)
    assert not store.has_collection(collection_name)
    store.drop_collection(collection_name)  # absent: no error


def test_create_again_same_shape_is_a_no_op_other_shape_fails(
        store: VectorStore, collection_name: str) -> None:
    store.create_collection(collection_name, DIM, "L2")
    store.insert(collection_name, [1], unit_vectors(1))
    store.create_collection(collection_name, DIM, "l2")
    assert store.count(collection_name) == 1
    with pytest.raises(VectorStoreError, match=r"already exists with 128-d vectors and metric L2"):
        store.create_collection(collection_name, 64, "L2")
    with pytest.raises(VectorStoreError, match="metric L2, not 128-d and IP"):
        store.create_collection(collection_name, DIM, "IP")


@pytest.mark.parametrize("metric", ["DOT", "hamming", "", None])
def test_bad_metric_is_a_value_error(store: VectorStore, collection_name: str,
                                     metric: object) -> None:
    with pytest.raises(ValueError, match="is not one of IP, L2, COSINE"):
        store.create_collection(collection_name, DIM, metric)  # type: ignore[arg-type]
    assert not store.has_collection(collection_name)


@pytest.mark.parametrize("dimension", [0, -1, 40000, 1.5, True])
def test_bad_dimension_is_a_value_error(store: VectorStore, collection_name: str,
                                        dimension: object) -> None:
    with pytest.raises(ValueError, match="dimension must be an integer"):
        store.create_collection(collection_name, dimension, "IP")  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["not valid!", "../escape", "1abc", "", "x" * 256])
def test_bad_collection_name_is_a_value_error(store: VectorStore, name: str) -> None:
    with pytest.raises(ValueError, match="must start with a letter or underscore"):
        store.create_collection(name, DIM, "IP")


def test_milvus_errors_are_readable(store: VectorStore, collection_name: str) -> None:
    from pymilvus.exceptions import MilvusException

    def fail() -> None:
        raise MilvusException(code=65535, message="segment is gone")

    with pytest.raises(VectorStoreError) as caught:
        store._call(f"search {collection_name!r}", fail)  # type: ignore[attr-defined]
    assert str(caught.value) == f"cannot search {collection_name!r}: segment is gone (code 65535)"
    assert isinstance(caught.value.__cause__, MilvusException)


# -- insert, search, count -------------------------------------------------------------


def test_search_finds_each_vector_first_ip(shared) -> None:
    store, name, vectors = shared
    assert store.count(name) == 1000
    for i in (0, 17, 999):
        [hits] = store.search(name, vectors[i:i + 1], 10)
        assert len(hits) == 10
        assert all(isinstance(h, VectorHit) and isinstance(h.id, int) for h in hits)
        assert hits[0].id == i
        assert hits[0].distance == pytest.approx(1.0, abs=1e-4)
        distances = [h.distance for h in hits]
        assert distances == sorted(distances, reverse=True)  # best (largest IP) first
        assert len({h.id for h in hits}) == 10


def test_vectors_of_gives_the_stored_vectors_by_id(shared) -> None:
    store, name, vectors = shared
    found = store.vectors_of(name, [999, 3, 5000, 17])  # 5000: not stored, left out
    assert sorted(found) == [3, 17, 999]
    for i in (3, 17, 999):
        assert np.allclose(found[i], vectors[i], atol=1e-6)
    assert store.vectors_of(name, []) == {}


def test_search_l2_distance_is_zero_for_itself(store: VectorStore, collection_name: str) -> None:
    vectors = unit_vectors(1000, seed=1)
    store.create_collection(collection_name, DIM, "L2")
    store.insert(collection_name, list(range(5000, 6000)), vectors)
    [hits] = store.search(collection_name, vectors[42], 5)
    assert hits[0].id == 5042
    assert hits[0].distance == pytest.approx(0.0, abs=1e-4)
    distances = [h.distance for h in hits]
    assert distances == sorted(distances)  # best (smallest L2) first
    assert distances[1] > 0.5


def test_search_cosine_ignores_length(store: VectorStore, collection_name: str) -> None:
    vectors = unit_vectors(200, seed=2) * np.linspace(0.5, 5, 200, dtype=np.float32)[:, None]
    store.create_collection(collection_name, DIM, "COSINE")
    store.insert(collection_name, list(range(200)), vectors)
    [hits] = store.search(collection_name, vectors[7] * 3, 3)
    assert hits[0].id == 7
    assert hits[0].distance == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("topk", [1, 3, 50])
def test_topk_is_respected(shared, topk: int) -> None:
    store, name, vectors = shared
    [hits] = store.search(name, vectors[5], topk)
    assert len(hits) == topk


def test_topk_larger_than_the_collection(store: VectorStore, collection_name: str) -> None:
    store.create_collection(collection_name, DIM, "IP")
    store.insert(collection_name, [1, 2, 3], unit_vectors(3))
    [hits] = store.search(collection_name, unit_vectors(1, seed=9), 10)
    assert sorted(h.id for h in hits) == [1, 2, 3]


@pytest.mark.parametrize("topk", [0, -3, 16385, 2.0])
def test_bad_topk_is_a_value_error(shared, topk: object) -> None:
    store, name, vectors = shared
    with pytest.raises(ValueError, match="topk"):
        store.search(name, vectors[:1], topk)  # type: ignore[arg-type]


def test_several_query_vectors_give_one_list_each(shared) -> None:
    store, name, vectors = shared
    picks = [3, 500, 3, 998, 64, 65, 700]
    results = store.search(name, vectors[picks], 4)
    assert len(results) == len(picks)
    assert [hits[0].id for hits in results] == picks
    assert all(len(hits) == 4 for hits in results)
    assert store.search(name, np.zeros((0, DIM), np.float32), 4) == []


def test_a_single_insert_is_visible_at_once(filled) -> None:
    """Read-your-writes for the upload path: one row, then search and count right away."""
    store, name, _ = filled
    for k, vector in enumerate(unit_vectors(3, seed=7)):
        store.insert(name, [10_000 + k], vector[None, :])
        assert store.count(name) == 1001 + k
        [hits] = store.search(name, vector, 1)
        assert hits[0].id == 10_000 + k


def test_empty_insert_and_delete_are_no_ops(shared) -> None:
    store, name, _ = shared
    store.insert(name, [], np.zeros((0, DIM), np.float32))
    store.insert(name, [], [])
    store.delete(name, [])
    assert store.count(name) == 1000


def test_ids_and_vectors_must_agree(shared) -> None:
    store, name, vectors = shared
    with pytest.raises(ValueError, match="2 ids for 3 vectors"):
        store.insert(name, [1, 2], vectors[:3])
    with pytest.raises(ValueError, match="NaN"):
        store.insert(name, [1], np.full((1, DIM), np.nan, np.float32))
    with pytest.raises(ValueError, match="integers"):
        store.insert(name, ["a"], vectors[:1])  # type: ignore[list-item]


def test_dimension_mismatch_is_explained(shared) -> None:
    store, name, _ = shared
    with pytest.raises(VectorStoreError) as caught:
        store.insert(name, [5000], unit_vectors(1, dim=64))
    assert str(caught.value) == (
        f"cannot insert 64-d vectors: collection '{name}' holds 128-d vectors")
    with pytest.raises(VectorStoreError, match=r"cannot search 256-d vectors.*holds 128-d"):
        store.search(name, unit_vectors(1, dim=256), 3)
    assert store.count(name) == 1000


def test_unknown_collection(store: VectorStore, collection_name: str) -> None:
    missing = f"{collection_name}_missing"
    expected = f"no vector collection named '{missing}'"
    with pytest.raises(VectorStoreError, match=expected):
        store.insert(missing, [1], unit_vectors(1))
    with pytest.raises(VectorStoreError, match=expected):
        store.search(missing, unit_vectors(1), 3)
    with pytest.raises(VectorStoreError, match=expected):
        store.count(missing)
    with pytest.raises(VectorStoreError, match=expected):
        store.delete(missing, [1])
    assert not store.has_collection(missing)


def test_a_collection_dropped_by_another_client(store_uri: str, filled) -> None:
    store, name, vectors = filled
    with open_vector_store(store_uri) as other:
        other.drop_collection(name)
    with pytest.raises(VectorStoreError, match=name):
        store.search(name, vectors[:1], 3)
    store.create_collection(name, DIM, "L2")  # the store forgot the old shape
    assert store.count(name) == 0


# -- delete ----------------------------------------------------------------------------


def test_deleted_ids_never_come_back(filled) -> None:
    store, name, vectors = filled
    gone = list(range(0, 1000, 10))
    store.delete(name, gone)
    assert store.count(name) == 900
    results = store.search(name, vectors[gone], 10)
    assert len(results) == len(gone)
    found = {h.id for hits in results for h in hits}
    assert found.isdisjoint(gone)
    assert all(len(hits) == 10 for hits in results)
    store.delete(name, gone)  # again: nothing changes
    store.delete(name, [123_456])  # never inserted
    assert store.count(name) == 900


# -- partitions ------------------------------------------------------------------------


def test_partitions_keep_searches_and_counts_apart(store: VectorStore,
                                                   collection_name: str) -> None:
    vectors = unit_vectors(300, seed=6)
    store.create_collection(collection_name, DIM, "IP")
    store.insert(collection_name, list(range(100)), vectors[:100], partition="app_a")
    store.insert(collection_name, list(range(100, 300)), vectors[100:], partition="app_b")
    assert store.count(collection_name) == 300
    assert store.count(collection_name, partition="app_a") == 100
    assert store.count(collection_name, partition="app_b") == 200
    assert store.count(collection_name, partition="app_none") == 0

    [in_a] = store.search(collection_name, vectors[150], 10, partition="app_a")
    assert len(in_a) == 10 and all(h.id < 100 for h in in_a)
    [in_b] = store.search(collection_name, vectors[150], 10, partition="app_b")
    assert in_b[0].id == 150
    [anywhere] = store.search(collection_name, vectors[5], 1)
    assert anywhere[0].id == 5
    assert store.search(collection_name, vectors[:2], 5, partition="app_none") == [[], []]

    store.delete(collection_name, [0, 1])
    assert store.count(collection_name, partition="app_a") == 98
    store.drop_partition(collection_name, "app_b")
    store.drop_partition(collection_name, "app_b")  # absent: no error
    assert store.count(collection_name) == 98
    assert store.search(collection_name, vectors[150], 3, partition="app_b") == [[]]
    [left] = store.search(collection_name, vectors[150], 50)
    assert all(h.id < 100 for h in left)
    store.insert(collection_name, [500], vectors[150][None, :], partition="app_b")  # again
    assert store.count(collection_name, partition="app_b") == 1


# -- several threads -------------------------------------------------------------------


def test_concurrent_inserts_and_searches(store: VectorStore, collection_name: str) -> None:
    """The API server calls one store from several threads (Milvus Lite needs the lock)."""
    store.create_collection(collection_name, DIM, "IP")
    vectors = unit_vectors(400, seed=3)
    errors: list[BaseException] = []

    def writer(part: int) -> None:
        try:
            for i in range(part * 100, part * 100 + 100, 20):
                store.insert(collection_name, list(range(i, i + 20)), vectors[i:i + 20])
                [hits] = store.search(collection_name, vectors[i], 1)
                assert hits[0].id == i
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(p,)) for p in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert store.count(collection_name) == 400


# -- opening ---------------------------------------------------------------------------


def test_lite_persists_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "folder" / "vectors.db"
    vectors = unit_vectors(1000, seed=4)
    with open_vector_store(str(path)) as store:
        store.create_collection("images", DIM, "IP")
        store.insert("images", list(range(1000)), vectors)
        store.insert("images", [5000], unit_vectors(1, seed=5))  # left unflushed until close
        store.delete("images", [1, 2])
    assert path.is_dir()
    with open_vector_store(str(path)) as store:
        assert store.has_collection("images")
        assert store.count("images") == 999
        [hits] = store.search("images", vectors[10], 3)
        assert hits[0].id == 10 and hits[0].distance == pytest.approx(1.0, abs=1e-4)
        [hits] = store.search("images", unit_vectors(1, seed=5), 1)
        assert hits[0].id == 5000
        found = {h.id for hits in store.search("images", vectors[[1, 2]], 5) for h in hits}
        assert found.isdisjoint({1, 2})


def test_lite_relative_path_and_two_stores_on_one_file(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    first = open_vector_store("data/v.db")
    second = open_vector_store(str(tmp_path / "data" / "v.db"))
    try:
        assert isinstance(first, MilvusVectorStore) and first.is_lite
        first.create_collection("c", 8, "L2")
        second.insert("c", [1], np.ones((1, 8), np.float32))
        assert first.count("c") == 1
        first.close()
        assert second.count("c") == 1  # the shared Lite server stays up for `second`
    finally:
        first.close()
        second.close()
    assert (tmp_path / "data" / "v.db").is_dir()
    with open_vector_store("data/v.db") as again:
        assert again.count("c") == 1


def test_lite_database_held_by_another_process(tmp_path: Path) -> None:
    path = tmp_path / "held.db"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\n"
         "from phantoscope.storage.open_stores import open_vector_store\n"
         "store = open_vector_store(sys.argv[1])\n"
         "print('open', flush=True)\n"
         "sys.stdin.read()\n"
         "store.close()\n",
         str(path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        with pytest.raises(VectorStoreError,
                           match=rf"cannot open Milvus Lite at {path} \(is another process"):
            open_vector_store(str(path))
    finally:
        holder.communicate("", timeout=30)
    with open_vector_store(str(path)) as store:  # free again once the other process is done
        assert not store.has_collection("x")


def test_closed_store_refuses_calls(tmp_path: Path) -> None:
    store = open_vector_store(str(tmp_path / "v.db"))
    store.close()
    store.close()  # twice is fine
    with pytest.raises(VectorStoreError, match="closed"):
        store.has_collection("x")


def test_lite_file_from_an_older_milvus_lite(tmp_path: Path) -> None:
    old = tmp_path / "old.db"
    old.write_bytes(b"SQLite format 3\x00")
    with pytest.raises(VectorStoreError, match="it is a file"):
        open_vector_store(str(old))


@pytest.mark.parametrize("uri", ["vectors.sqlite", "ftp://host/x", "  "])
def test_uri_that_is_neither_lite_nor_server(uri: str) -> None:
    with pytest.raises(ValueError):
        open_vector_store(uri)


def test_unreachable_server_fails_quickly() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(VectorStoreError, match=rf"cannot connect to the Milvus server at "
                                               rf"http://127.0.0.1:{port}"):
        open_vector_store(f"http://127.0.0.1:{port}", timeout_s=1)
    assert time.monotonic() - started < 15


def test_password_is_not_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(VectorStoreError) as caught:
        open_vector_store(f"http://root:s3cret@127.0.0.1:{port}", timeout_s=1)
    assert "s3cret" not in str(caught.value) and "root:***@" in str(caught.value)


def test_opening_a_store_loads_scipy_sparse_before_any_call(tmp_path: Path) -> None:
    """pymilvus loads scipy.sparse by hand on its first insert or search, without a lock;
    two threads making their first call at once once saw it half loaded in CI. A fresh
    process that only opens a store must find that load already done."""
    check = ("import sys\n"
             "from phantoscope.storage.open_stores import open_vector_store\n"
             "from pymilvus.client.utils import SciPyHelper\n"
             "store = open_vector_store(sys.argv[1])\n"
             "print(SciPyHelper._checked, 'scipy.sparse' in sys.modules)\n"
             "store.close()\n")
    shown = subprocess.run([sys.executable, "-c", check, str(tmp_path / "v.db")],
                           capture_output=True, text=True, timeout=120, check=True)
    assert shown.stdout.split() == ["True", "True"]
