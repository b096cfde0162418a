"""Concurrent searches merged into one call: `SearchCoalescer` on its own, then through
`MilvusVectorStore` on a real Milvus Lite database."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from phantoscope.storage.coalesce import SearchCoalescer
from phantoscope.storage.vectors import MilvusVectorStore, VectorHit

DIM = 64


def unit_vectors(n: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def run_threads(calls: list[Callable[[], object]]) -> list[object]:
    """Each call in its own thread, all released together; results (or errors) in order."""
    out: list[object] = [None] * len(calls)
    start = threading.Barrier(len(calls))

    def one(index: int) -> None:
        start.wait()
        try:
            out[index] = calls[index]()
        except BaseException as exc:  # compared by the test
            out[index] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive(), "a search never returned"
    return out


# -- the coalescer alone ---------------------------------------------------------------


class GatedSearch:
    """A search that records each call's query rows and blocks its first call until
    released; each result is the query row's first value."""

    def __init__(self, fail_on: float | None = None) -> None:
        self.calls: list[list[float]] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self.fail_on = fail_on

    def __call__(self, queries: np.ndarray) -> list[float]:
        self.calls.append([float(q[0]) for q in queries])
        if len(self.calls) == 1:
            self.entered.set()
            assert self.release.wait(10)
        if self.fail_on is not None and self.fail_on in self.calls[-1]:
            raise ValueError(f"cannot search {self.fail_on}")
        return [float(q[0]) for q in queries]


def wait_queued(coalescer: SearchCoalescer, count: int) -> None:
    deadline = time.monotonic() + 10
    while sum(len(q) for q in coalescer._queues.values()) < count:
        assert time.monotonic() < deadline, "the searches never queued"
        time.sleep(0.001)


def start(call: Callable[[], object], out: dict, key: str) -> threading.Thread:
    def target() -> None:
        try:
            out[key] = call()
        except BaseException as exc:  # checked by the test
            out[key] = exc

    thread = threading.Thread(target=target)
    thread.start()
    return thread


def rows(*values: float) -> np.ndarray:
    return np.asarray([[v, 0.0] for v in values], dtype=np.float32)


def test_searches_queued_behind_a_running_one_go_together_by_key() -> None:
    lock = threading.RLock()
    coalescer: SearchCoalescer[float] = SearchCoalescer(lambda: lock)
    search = GatedSearch()
    out: dict[str, object] = {}
    threads = [start(lambda: coalescer.search("a", rows(1), search), out, "first")]
    assert search.entered.wait(10)
    threads += [
        start(lambda: coalescer.search("a", rows(2, 3), search), out, "a23"),
        start(lambda: coalescer.search("b", rows(4), search), out, "b4"),
        start(lambda: coalescer.search("a", rows(5), search), out, "a5"),
    ]
    wait_queued(coalescer, 3)
    search.release.set()
    for thread in threads:
        thread.join(timeout=10)
        assert not thread.is_alive()
    assert out == {"first": [1.0], "a23": [2.0, 3.0], "b4": [4.0], "a5": [5.0]}
    assert search.calls[0] == [1.0]
    merged = sorted(sorted(call) for call in search.calls[1:])
    assert merged == [[2.0, 3.0, 5.0], [4.0]]  # same key in one call, the other key apart


def test_a_call_carries_at_most_max_vectors() -> None:
    lock = threading.RLock()
    coalescer: SearchCoalescer[float] = SearchCoalescer(lambda: lock, max_vectors=2)
    search = GatedSearch()
    out: dict[str, object] = {}
    threads = [start(lambda: coalescer.search("a", rows(0), search), out, "first")]
    assert search.entered.wait(10)
    for value in (1, 2, 3):
        threads.append(start(lambda v=value: coalescer.search("a", rows(v), search), out,
                                 str(value)))
    wait_queued(coalescer, 3)
    search.release.set()
    for thread in threads:
        thread.join(timeout=10)
        assert not thread.is_alive()
    assert {key: out[key] for key in "123"} == {"1": [1.0], "2": [2.0], "3": [3.0]}
    assert sorted(len(call) for call in search.calls[1:]) == [1, 2]


def test_an_error_reaches_every_caller_of_that_call_and_no_other() -> None:
    lock = threading.RLock()
    coalescer: SearchCoalescer[float] = SearchCoalescer(lambda: lock)
    search = GatedSearch(fail_on=7.0)
    out: dict[str, object] = {}
    threads = [start(lambda: coalescer.search("a", rows(1), search), out, "first")]
    assert search.entered.wait(10)
    threads += [
        start(lambda: coalescer.search("a", rows(7), search), out, "bad"),
        start(lambda: coalescer.search("a", rows(8), search), out, "merged"),
        start(lambda: coalescer.search("b", rows(9), search), out, "other"),
    ]
    wait_queued(coalescer, 3)
    search.release.set()
    for thread in threads:
        thread.join(timeout=10)
        assert not thread.is_alive()
    assert out["first"] == [1.0] and out["other"] == [9.0]
    for key in ("bad", "merged"):
        assert isinstance(out[key], ValueError) and str(out[key]) == "cannot search 7.0"
    assert coalescer.search("a", rows(6), search) == [6.0]  # it recovers
    assert coalescer._queues == {}


# -- through Milvus Lite ---------------------------------------------------------------


@pytest.fixture(scope="module")
def lite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MilvusVectorStore, str]]:
    """Two partitions of 600 vectors each, most flushed into indexed segments, the last
    rows still in Milvus Lite's unflushed buffer. FLAT, so that every search is exact and
    Milvus Lite's index builds in the background cannot change an answer between runs."""
    store = MilvusVectorStore(str(tmp_path_factory.mktemp("coalesce") / "vectors.db"),
                              index_type="FLAT")
    name = "coalesced"
    store.create_collection(name, DIM, "IP")
    vectors = unit_vectors(1200, seed=1)
    for part, partition in enumerate(("p_one", "p_two")):
        ids = list(range(part * 600, part * 600 + 600))
        store.insert(name, ids[:500], vectors[ids[0]:ids[0] + 500], partition=partition)
        store.flush(name)
        store.insert(name, ids[500:], vectors[ids[0] + 500:ids[0] + 600], partition=partition)
    yield store, name
    store.close()


def same_hits(got: list, expected: list) -> bool:
    """The same ids in the same order; distances equal up to float32 rounding (a batch of
    query vectors goes through one matrix product, which may round the last bit apart)."""
    if not all(isinstance(hits, list) for hits in got):
        raise AssertionError(got)
    pairs = [(g, e) for hits, want in zip(got, expected, strict=True)
             for row, wanted in zip(hits, want, strict=True)
             for g, e in zip(row, wanted, strict=True)]
    return all(len(h) == len(w) for hits, want in zip(got, expected, strict=True)
               for h, w in zip(hits, want, strict=True)) and all(
        g.id == e.id and abs(g.distance - e.distance) < 1e-6 for g, e in pairs)


def test_concurrent_lite_searches_equal_serial_ones(lite: tuple[MilvusVectorStore, str]) -> None:
    store, name = lite
    queries = unit_vectors(24, seed=2)
    # Mixed keys: topk 3, 10 and 50; partition one, two or none; one or two query vectors.
    plans = [
        (queries[i:i + 1 + i % 2], (3, 10, 50)[i % 3], (None, "p_one", "p_two")[(i // 3) % 3])
        for i in range(24)
    ]

    def searcher(plan: tuple[np.ndarray, int, str | None]) -> Callable[[], object]:
        vectors, topk, partition = plan
        return lambda: store.search(name, vectors, topk, partition=partition)

    serial = [searcher(plan)() for plan in plans]
    for _round in range(3):
        concurrent = run_threads([searcher(plan) for plan in plans])
        assert same_hits(concurrent, serial)
    for (vectors, topk, partition), hits in zip(plans, serial, strict=True):
        assert len(hits) == len(vectors)
        for row in hits:
            assert len(row) == topk
            assert all(isinstance(hit, VectorHit) for hit in row)
            if partition == "p_one":
                assert all(hit.id < 600 for hit in row)
            elif partition == "p_two":
                assert all(hit.id >= 600 for hit in row)
