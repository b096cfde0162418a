"""Dynamic batching: many concurrent callers, one model, few large calls.

Callers hand in their items and block; one worker thread gathers items from all waiting
callers into batches of at most ``max_batch_size`` — taking whatever is queued, and waiting
at most ``max_wait_s`` for more once the queue runs dry — runs the model once per batch and
hands each caller its own results.

The wait is for company that is on its way (requests still decoding their images), so it is
only worth paying under load: when the previous batch held one request and nothing else is
queued, a request runs at once. The first burst after a quiet spell thus runs its first
request alone and the rest, which queued meanwhile, together; from then on batches wait.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

_STOP = object()


class BatcherClosedError(RuntimeError):
    """The batcher was stopped while a request was waiting."""


@dataclass
class _Request:
    results: list[Any]
    remaining: int
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None

    def fail(self, error: BaseException) -> None:
        if not self.done.is_set():
            self.error = error
            self.done.set()


@dataclass(frozen=True)
class _Item:
    value: Any
    request: _Request
    index: int


@dataclass
class BatchStats:
    """Counters a benchmark or test can read: model calls made and items they carried."""

    calls: int = 0
    items: int = 0
    largest_batch: int = 0


class Batcher:
    """Serialises calls to ``run_batch`` and merges concurrent callers' items into batches."""

    def __init__(
        self,
        run_batch: Callable[[list[Any]], Sequence[Any]],
        *,
        max_batch_size: int,
        max_wait_s: float,
        name: str = "batcher",
    ) -> None:
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be at least 1")
        self._run_batch = run_batch
        self.max_batch_size = max_batch_size
        self.max_wait_s = max(0.0, max_wait_s)
        self.stats = BatchStats()
        self._busy = False  # the previous batch served more than one request
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._closed = False
        self._closing = threading.Lock()  # makes "check closed, then enqueue" atomic
        self._worker = threading.Thread(target=self._work, name=name, daemon=True)
        self._worker.start()

    def submit(self, values: Sequence[Any]) -> list[Any]:
        """Run ``values`` through the model (within shared batches); return results in order."""
        if not values:
            return []
        request = _Request(results=[None] * len(values), remaining=len(values))
        with self._closing:
            if self._closed:
                raise BatcherClosedError("the operator is shutting down")
            for index, value in enumerate(values):
                self._queue.put(_Item(value, request, index))
        request.done.wait()
        if request.error is not None:
            raise request.error
        return request.results

    def close(self) -> None:
        """Stop the worker; requests still queued fail with :class:`BatcherClosedError`."""
        with self._closing:
            self._closed = True
            self._queue.put(_STOP)
        self._worker.join()
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not _STOP:
                item.request.fail(BatcherClosedError("the operator is shutting down"))

    def _gather(self, first: _Item) -> tuple[list[_Item], bool]:
        """Collect a batch starting with ``first``; also say whether a stop was seen."""
        batch = [first]
        deadline = time.monotonic() + (self.max_wait_s if self._busy else 0.0)
        while len(batch) < self.max_batch_size:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    item = self._queue.get(timeout=left)
                except queue.Empty:
                    break
            if item is _STOP:
                return batch, True
            batch.append(item)
        return batch, False

    def _work(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch, stopping = self._gather(first)
            self._busy = len({id(item.request) for item in batch}) > 1
            self._run(batch)
            if stopping:
                return

    def _run(self, batch: list[_Item]) -> None:
        live = [item for item in batch if not item.request.done.is_set()]
        if self._closed:
            for item in live:
                item.request.fail(BatcherClosedError("the operator is shutting down"))
            return
        if not live:
            return
        self.stats.calls += 1
        self.stats.items += len(live)
        self.stats.largest_batch = max(self.stats.largest_batch, len(live))
        try:
            results = list(self._run_batch([item.value for item in live]))
            if len(results) != len(live):
                raise RuntimeError(
                    f"the operator returned {len(results)} results for {len(live)} images"
                )
        except BaseException as exc:  # delivered to every caller in this batch
            for item in live:
                item.request.fail(exc)
            return
        for item, result in zip(live, results, strict=True):
            request = item.request
            request.results[item.index] = result
            request.remaining -= 1
            if request.remaining == 0:
                request.done.set()
