"""Dynamic batching: the Batcher on its own, and concurrent Execute calls merged into few runs."""

from __future__ import annotations

import base64
import io
import threading
import time
from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image

from phantoscope.operators.base import Encoder
from phantoscope.operators.batching import Batcher, BatcherClosedError

DIMENSION = 8


def run_threads(count: int, target: Callable[[int], object]) -> list[object]:
    """Run ``target(i)`` in ``count`` threads started together; return results or exceptions."""
    barrier = threading.Barrier(count)
    results: list[object] = [None] * count

    def body(index: int) -> None:
        barrier.wait()
        try:
            results[index] = target(index)
        except BaseException as exc:
            results[index] = exc

    threads = [threading.Thread(target=body, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
        assert not thread.is_alive(), "a caller never got an answer"
    return results


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.002)


def queued(batcher: Batcher) -> int:
    """How many entries wait in the batcher's queue (white-box: used to sequence threads)."""
    return batcher._queue.qsize()


class Gate:
    """A run_batch that blocks on its first call until released, recording every batch."""

    def __init__(self, fail_on: object = None, short_on: object = None) -> None:
        self.batches: list[list[object]] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self.fail_on, self.short_on = fail_on, short_on

    def __call__(self, values: list[object]) -> list[object]:
        self.batches.append(list(values))
        if len(self.batches) == 1:
            self.entered.set()
            assert self.release.wait(10)
        if self.fail_on in values:
            raise ValueError(f"cannot handle {self.fail_on!r}")
        results = [("done", value) for value in values]
        return results[:-1] if self.short_on in values else results


# -- Batcher ---------------------------------------------------------------------------------


def test_many_callers_get_their_own_results_in_order() -> None:
    seen: list[int] = []

    def run_batch(values: list[tuple[int, int]]) -> list[str]:
        seen.append(len(values))
        time.sleep(0.002)
        return [f"{caller}:{index}" for caller, index in values]

    batcher = Batcher(run_batch, max_batch_size=5, max_wait_s=0.005)
    try:
        lengths = [1 + (i * 7) % 13 for i in range(24)]  # 1..13 items, some over a batch

        def call(caller: int) -> list[str]:
            return batcher.submit([(caller, index) for index in range(lengths[caller])])

        results = run_threads(24, call)
    finally:
        batcher.close()
    for caller, result in enumerate(results):
        assert result == [f"{caller}:{index}" for index in range(lengths[caller])]
    assert max(seen) <= 5
    assert sum(seen) == sum(lengths)
    assert len(seen) < sum(lengths)  # callers' items were merged
    assert batcher.stats.calls == len(seen)
    assert batcher.stats.items == sum(lengths)
    assert batcher.stats.largest_batch == max(seen)


def test_a_lone_request_runs_without_waiting_for_company() -> None:
    batcher = Batcher(lambda values: values, max_batch_size=8, max_wait_s=3600)
    try:
        assert run_threads(1, lambda _: batcher.submit(["alone"])) == [["alone"]]
        assert run_threads(1, lambda _: batcher.submit(["again"])) == [["again"]]
    finally:
        batcher.close()
    assert batcher.stats.calls == 2


def test_under_load_a_batch_waits_for_company() -> None:
    """After a batch that served several requests, the next one waits (here up to an hour,
    so only a full batch can end the wait) instead of running its first request alone."""
    gate = Gate()
    batcher = Batcher(gate, max_batch_size=2, max_wait_s=3600)
    out: dict[str, object] = {}

    def submit(value: str) -> threading.Thread:
        thread = threading.Thread(target=lambda: out.update({value: batcher.submit([value])}))
        thread.start()
        return thread

    try:
        threads = [submit("a")]
        assert gate.entered.wait(10)
        threads += [submit("b"), submit("c")]
        wait_until(lambda: queued(batcher) == 2, "b and c to queue")
        gate.release.set()
        wait_until(lambda: len(gate.batches) == 2, "the batch of b and c")
        threads.append(submit("d"))
        wait_until(lambda: queued(batcher) == 0, "d to be taken")
        threads.append(submit("e"))
        for thread in threads:
            thread.join(10)
            assert not thread.is_alive()
    finally:
        batcher.close()
    assert gate.batches[0] == ["a"] and sorted(gate.batches[1]) == ["b", "c"]
    assert [sorted(batch) for batch in gate.batches[2:]] == [["d", "e"]]
    assert out["e"] == [("done", "e")]


def test_one_long_request_is_split_into_batches() -> None:
    seen: list[list[int]] = []

    def run_batch(values: list[int]) -> list[int]:
        seen.append(list(values))
        return [value * 10 for value in values]

    batcher = Batcher(run_batch, max_batch_size=4, max_wait_s=0)
    try:
        assert batcher.submit(list(range(10))) == [value * 10 for value in range(10)]
    finally:
        batcher.close()
    assert all(len(batch) <= 4 for batch in seen)
    assert [value for batch in seen for value in batch] == list(range(10))


def test_empty_submit_runs_nothing() -> None:
    calls: list[object] = []
    batcher = Batcher(calls.append, max_batch_size=4, max_wait_s=0)
    try:
        assert batcher.submit([]) == []
    finally:
        batcher.close()
    assert calls == [] and batcher.stats.calls == 0


def test_max_batch_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_batch_size"):
        Batcher(list, max_batch_size=0, max_wait_s=0)


def _start(batcher: Batcher, values: list[object], out: dict[str, object], key: str):
    def body() -> None:
        try:
            out[key] = batcher.submit(values)
        except BaseException as exc:
            out[key] = exc

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    return thread


def test_error_reaches_every_caller_in_the_batch_and_batcher_recovers() -> None:
    gate = Gate(fail_on="boom")
    batcher = Batcher(gate, max_batch_size=8, max_wait_s=0)
    out: dict[str, object] = {}
    try:
        threads = [_start(batcher, ["first"], out, "first")]
        assert gate.entered.wait(10)
        threads.append(_start(batcher, ["a", "boom"], out, "a"))
        wait_until(lambda: queued(batcher) == 2, "caller a to queue")
        threads.append(_start(batcher, ["b"], out, "b"))
        wait_until(lambda: queued(batcher) == 3, "caller b to queue")
        gate.release.set()
        for thread in threads:
            thread.join(10)
            assert not thread.is_alive(), "a caller never got an answer"
        assert out["first"] == [("done", "first")]
        assert gate.batches[1] == ["a", "boom", "b"]
        for key in ("a", "b"):
            assert isinstance(out[key], ValueError), out[key]
            assert str(out[key]) == "cannot handle 'boom'"
        # The worker survived: later calls are served.
        assert batcher.submit(["c", "d"]) == [("done", "c"), ("done", "d")]
    finally:
        gate.release.set()
        batcher.close()


def test_wrong_number_of_results_is_an_error_for_callers() -> None:
    gate = Gate(short_on="short")
    batcher = Batcher(gate, max_batch_size=8, max_wait_s=0)
    out: dict[str, object] = {}
    try:
        threads = [_start(batcher, ["first"], out, "first")]
        assert gate.entered.wait(10)
        threads.append(_start(batcher, ["x", "short"], out, "x"))
        wait_until(lambda: queued(batcher) == 2, "caller x to queue")
        threads.append(_start(batcher, ["y"], out, "y"))
        wait_until(lambda: queued(batcher) == 3, "caller y to queue")
        gate.release.set()
        for thread in threads:
            thread.join(10)
            assert not thread.is_alive(), "a caller never got an answer"
        for key in ("x", "y"):
            assert isinstance(out[key], RuntimeError), out[key]
            assert "returned 2 results for 3 images" in str(out[key])
        assert batcher.submit(["z"]) == [("done", "z")]
    finally:
        gate.release.set()
        batcher.close()


def test_failed_request_split_over_batches_fails_once() -> None:
    """A request whose first batch failed is not run again in later batches."""
    seen: list[list[int]] = []

    def run_batch(values: list[int]) -> list[int]:
        seen.append(list(values))
        if 0 in values:
            raise KeyError("zero")
        return values

    batcher = Batcher(run_batch, max_batch_size=2, max_wait_s=0)
    try:
        with pytest.raises(KeyError):
            batcher.submit([0, 1, 2, 3, 4])
        assert batcher.submit([5]) == [5]
    finally:
        batcher.close()
    flattened = [value for batch in seen for value in batch]
    assert flattened.count(5) == 1 and 0 in flattened
    # Items of the failed request only ever ran in the batch that failed.
    assert all(0 in batch for batch in seen if set(batch) & {1, 2, 3, 4})


def test_close_fails_waiting_requests_and_later_submits() -> None:
    gate = Gate()
    batcher = Batcher(gate, max_batch_size=8, max_wait_s=0)
    out: dict[str, object] = {}
    threads = [_start(batcher, ["running"], out, "running")]
    assert gate.entered.wait(10)
    threads.append(_start(batcher, ["waiting"], out, "waiting"))
    wait_until(lambda: queued(batcher) == 1, "the second caller to queue")
    closer = threading.Thread(target=batcher.close)
    closer.start()
    wait_until(lambda: queued(batcher) == 2, "close() to signal the worker")
    gate.release.set()
    closer.join(10)
    assert not closer.is_alive()
    for thread in threads:
        thread.join(10)
        assert not thread.is_alive()
    assert out["running"] == [("done", "running")]  # the batch in flight finishes
    assert isinstance(out["waiting"], BatcherClosedError), out["waiting"]
    with pytest.raises(BatcherClosedError):
        batcher.submit(["late"])
    assert all("late" not in batch for batch in gate.batches)


def test_close_idle_batcher_then_submit_raises() -> None:
    batcher = Batcher(lambda values: values, max_batch_size=4, max_wait_s=0)
    assert batcher.submit([1, 2]) == [1, 2]
    batcher.close()
    with pytest.raises(BatcherClosedError, match="shutting down"):
        batcher.submit([3])


# -- through gRPC ----------------------------------------------------------------------------


class MeanColourEncoder(Encoder):
    """Vector: the image's mean colour, normalised, zero-padded to DIMENSION. Counts runs."""

    name = "mean-colour"
    dimension = DIMENSION

    def __init__(self, delay_s: float = 0.025) -> None:
        self.delay_s = delay_s
        self.calls = 0
        self.batch_sizes: list[int] = []

    def run(self, images: list[Image.Image]) -> np.ndarray:
        self.calls += 1
        self.batch_sizes.append(len(images))
        time.sleep(self.delay_s)  # a model's work: lets concurrent requests pile up
        return np.stack([mean_colour_vector(image) for image in images])


def mean_colour_vector(image: Image.Image) -> np.ndarray:
    vector = np.zeros(DIMENSION, dtype=np.float32)
    vector[:3] = np.asarray(image, dtype=np.float32).reshape(-1, 3).mean(axis=0)
    return vector / np.linalg.norm(vector)


def colour(index: int) -> tuple[int, int, int]:
    """Sixteen colours pointing in clearly different directions."""
    return (40 + 13 * index, 250 - 12 * index, 30 + (index * 97) % 200)


def png_b64(rgb: tuple[int, int, int], size: tuple[int, int] = (24, 16)) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", size, rgb).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _fire_16(client) -> list[object]:
    requests = [png_b64(colour(i)) for i in range(16)]
    return run_threads(16, lambda i: client.execute(datas=[requests[i]]).vectors)


def test_expected_vectors_are_distinct() -> None:
    vectors = np.stack([mean_colour_vector(Image.new("RGB", (2, 2), colour(i))) for i in range(16)])
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, 0)
    assert similarity.max() < 0.9999


def test_concurrent_execute_calls_are_batched(serve_operator) -> None:
    operator = MeanColourEncoder()
    server, client = serve_operator(operator)
    results = _fire_16(client)
    for index, vectors in enumerate(results):
        assert isinstance(vectors, np.ndarray), vectors
        assert vectors.shape == (1, DIMENSION)
        expected = mean_colour_vector(Image.new("RGB", (2, 2), colour(index)))
        np.testing.assert_allclose(vectors[0], expected, atol=1e-6)
    assert operator.calls < 16, operator.batch_sizes
    assert server.servicer.stats.calls == operator.calls
    assert server.servicer.stats.items == 16
    assert sum(operator.batch_sizes) == 16
    assert server.servicer.stats.largest_batch == max(operator.batch_sizes) > 1


def test_max_batch_size_one_runs_every_call_alone(serve_operator) -> None:
    operator = MeanColourEncoder()
    server, client = serve_operator(operator, max_batch_size=1)
    results = _fire_16(client)
    for index, vectors in enumerate(results):
        expected = mean_colour_vector(Image.new("RGB", (2, 2), colour(index)))
        np.testing.assert_allclose(vectors[0], expected, atol=1e-6)
    assert operator.calls == 16
    assert operator.batch_sizes == [1] * 16
    assert server.servicer.stats.calls == 16
    assert server.servicer.stats.largest_batch == 1


def test_operator_max_batch_size_caps_batches(serve_operator) -> None:
    class SmallBatches(MeanColourEncoder):
        max_batch_size = 3

    operator = SmallBatches()
    server, client = serve_operator(operator)
    results = _fire_16(client)
    assert all(isinstance(vectors, np.ndarray) for vectors in results), results
    assert max(operator.batch_sizes) <= 3
    assert sum(operator.batch_sizes) == 16
    assert server.servicer.stats.largest_batch <= 3


def test_multi_image_request_keeps_order(serve_operator) -> None:
    operator = MeanColourEncoder(delay_s=0)
    _server, client = serve_operator(operator, max_batch_size=4)
    datas = [png_b64(colour(i)) for i in range(11)]
    vectors = client.execute(datas=datas).vectors
    assert vectors.shape == (11, DIMENSION)
    for index in range(11):
        expected = mean_colour_vector(Image.new("RGB", (2, 2), colour(index)))
        np.testing.assert_allclose(vectors[index], expected, atol=1e-6)
    assert max(operator.batch_sizes) <= 4
