"""Importing a folder of images into an application: find, hash, skip what is there, upload.

Each image is named by its path relative to the folder, with ``/`` between folders
(``2019/summer/beach.jpg``), and carries the attributes given for the whole import.

Resuming relies on the server alone: an image counts as imported when the application holds
an entity with the same SHA-256 in the same field. So a run cut short, an entity deleted since,
or another machine's import are all seen as they are, with no local state to go stale.

A server that may read the folder itself (it lies under its PHANTOSCOPE_IMPORT_ROOTS: the
same machine, or a disk they share) is sent each file's path and SHA-256 instead of its bytes,
and reads the file only if it holds those bytes; a file it does not read is sent. That spares
the copy through HTTP on both sides.

Images go up without the server's copy check (``check_duplicates=false``): an import stores
what the folder holds, and ``phantoscope duplicates`` finds the copies among it afterwards.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from phantoscope.client import BatchResult, PhantoscopeClient, PhantoscopeError, ServerFile, Upload

# Below the server's default request limit (twice its 32 MiB image limit).
MAX_BATCH_BYTES = 32 * 1024 * 1024
BATCH_SIZE = 32  # images a request: 3 % more images/s than 16 on 2 cores (bench/README.md)
# Requests in flight: two for each replica of the field's encoder, at least CONCURRENCY. A
# request spends most of its time in the API (reading, checking, storing), and its images go
# to the replicas in parts of at most 16 MiB (two parts for 12 phone photos), so a replica
# waits unless about two requests are in flight for it. On 2 cores with 2 replicas, 512
# photos of 12 MP: 1 request in flight 24.4 images/s, 4 28.6-33.0, 8 29.8-30.1. With 4, the
# 16 replicas of a 16-core machine would get at most 8 parts at once.
CONCURRENCY = 4
REQUESTS_PER_REPLICA = 2
MAX_CONCURRENCY = 64
# What a server answers for a file it reads from no disk (no roots set; INVALID_REQUEST: a
# release that takes no `path`), and for one it does not read from its own: not under its
# roots, not there, not readable by it, other bytes there. Such a file is sent.
READS_NONE = frozenset({"IMPORT_ROOTS_UNSET", "INVALID_REQUEST"})
SENT_INSTEAD = READS_NONE | {"PATH_NOT_ALLOWED", "FILE_NOT_FOUND", "NOT_A_FILE", "READ_ERROR",
                             "CONTENT_DIFFERS"}


@dataclass(frozen=True)
class ImageFile:
    path: Path
    size: int
    sha256: str


@dataclass(frozen=True)
class Failure:
    path: Path
    code: str
    message: str


@dataclass
class Plan:
    """What a run will do with each file it found."""

    upload: list[ImageFile] = field(default_factory=list)
    existing: list[ImageFile] = field(default_factory=list)  # already in the application
    duplicates: list[ImageFile] = field(default_factory=list)  # same bytes as a file before
    unreadable: list[Failure] = field(default_factory=list)


def hash_file(path: Path) -> ImageFile:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return ImageFile(path, size, digest.hexdigest())


def existing_hashes(client: PhantoscopeClient, app: str, image_field: str) -> set[str]:
    """SHA-256 of every image the application holds in ``image_field``."""
    return {entity.sha256 for entity in client.entities.iterate(app) if entity.field == image_field}


def plan_import(
    paths: list[Path], existing: set[str], workers: int, plan: Plan,
    on_sorted: Callable[[], None],
) -> Iterator[ImageFile]:
    """Hash the files (``workers`` at a time, in order) and sort each into ``plan``'s upload,
    existing, duplicate or unreadable, keeping the first of several files with the same bytes;
    ``on_sorted()`` after each. Yields each file to upload once it is sorted, so that uploads
    start while the rest are hashed."""
    seen: set[str] = set()

    def hashed(path: Path) -> ImageFile | Failure:
        try:
            return hash_file(path)
        except OSError as exc:
            return Failure(path, "READ_ERROR", exc.strerror or str(exc))

    pool = ThreadPoolExecutor(workers)
    try:
        for result in pool.map(hashed, paths):
            new = False
            if isinstance(result, Failure):
                plan.unreadable.append(result)
            elif result.sha256 in existing:
                plan.existing.append(result)
            elif result.sha256 in seen:
                plan.duplicates.append(result)
            else:
                seen.add(result.sha256)
                plan.upload.append(result)
                new = True
            on_sorted()
            if new:
                yield result
    finally:  # on Ctrl-C, hash no more
        pool.shutdown(wait=True, cancel_futures=True)


def batches(
    files: Iterable[ImageFile], size: int, max_bytes: int = MAX_BATCH_BYTES
) -> Iterator[list[ImageFile]]:
    """Groups of at most ``size`` files and ``max_bytes`` bytes (a bigger file goes alone)."""
    batch: list[ImageFile] = []
    total = 0
    for file in files:
        if batch and (len(batch) == size or total + file.size > max_bytes):
            yield batch
            batch, total = [], 0
        batch.append(file)
        total += file.size
    if batch:
        yield batch


@dataclass(frozen=True)
class Target:
    """Where the images go, and what each carries besides its name."""

    app: str
    field: str
    folder: Path  # names are paths relative to it
    attributes: dict[str, Any] | None = None

    def name(self, path: Path) -> str:
        return path.relative_to(self.folder).as_posix()


class ServerReads:
    """Whether the server is still asked to read files from its own disk, and how many it
    read. It is asked until it says it reads no files at all; ``roots_unset``: it said so
    for want of import roots."""

    def __init__(self) -> None:
        self.asked = True
        self.read = 0
        self.roots_unset = False
        self._lock = threading.Lock()

    def count(self, read: int) -> None:
        with self._lock:
            self.read += read


def _failures(batch: list[ImageFile], result: BatchResult, labels: list[str]) -> list[Failure]:
    """The batch's images the server refused, each with its path and the server's message
    without the label it gave the image (``labels[index]``)."""
    return [Failure(batch[item.index].path, item.error.code,
                    item.error.message.removeprefix(f"{labels[item.index]}: "))
            for item in result.results if item.error is not None]


def _sent(client: PhantoscopeClient, target: Target, batch: list[ImageFile]
          ) -> tuple[int, list[Failure]]:
    """Send one batch's files in one request: how many were imported, and what failed."""
    names = [target.name(file.path) for file in batch]
    try:
        result = client.upload_batch(
            target.app,
            [Upload(file.path, name) for file, name in zip(batch, names, strict=True)],
            field=target.field,
            attributes=target.attributes,
            check_duplicates=False,
        )
    except OSError as exc:  # a file went away since it was hashed: find out which
        if len(batch) == 1:
            return 0, [Failure(batch[0].path, "READ_ERROR", exc.strerror or str(exc))]
        outcomes = [_sent(client, target, [file]) for file in batch]
        return sum(n for n, _ in outcomes), [f for _, failures in outcomes for f in failures]
    except PhantoscopeError as exc:
        return 0, [Failure(file.path, exc.code, exc.message) for file in batch]
    # The server labels its message with the part's file name (the image's name); the report
    # shows the path.
    return result.imported, _failures(batch, result, names)


def _read_by_server(client: PhantoscopeClient, target: Target, batch: list[ImageFile],
                    reads: ServerReads) -> tuple[int, list[Failure], list[ImageFile]]:
    """Ask the server to read one batch's files itself: how many it imported, what failed,
    and the files it did not read (to send)."""
    try:
        result = client.upload_batch(
            target.app,
            [Upload(ServerFile(str(file.path.absolute()), file.sha256), target.name(file.path))
             for file in batch],
            field=target.field,
            attributes=target.attributes,
            check_duplicates=False,
        )
    except PhantoscopeError:  # the bytes get the server's verdict
        reads.asked = False
        return 0, [], batch
    codes = {item.index: item.error.code for item in result.results if item.error is not None}
    declined = sorted(index for index, code in codes.items() if code in SENT_INSTEAD)
    if READS_NONE & set(codes.values()):
        reads.asked = False
        reads.roots_unset = "IMPORT_ROOTS_UNSET" in codes.values()
    reads.count(result.imported)
    labels = [f"images[{index}]" for index in range(len(batch))]  # the JSON batch's labels
    failures = [failure for failure in _failures(batch, result, labels)
                if failure.code not in SENT_INSTEAD]
    return result.imported, failures, [batch[index] for index in declined]


def upload_batch(
    client: PhantoscopeClient, target: Target, batch: list[ImageFile], reads: ServerReads
) -> tuple[int, list[Failure]]:
    """Import one batch, read by the server where it may, else sent: how many were imported,
    and what failed."""
    if not reads.asked:
        return _sent(client, target, batch)
    imported, failures, rest = _read_by_server(client, target, batch, reads)
    if rest:
        sent, failed = _sent(client, target, rest)
        imported, failures = imported + sent, failures + failed
    return imported, failures


def requests_in_flight(replicas: int) -> int:
    """Requests in flight for an encoder of ``replicas`` replicas: two for each, at least
    CONCURRENCY, at most MAX_CONCURRENCY."""
    return min(MAX_CONCURRENCY, max(CONCURRENCY, REQUESTS_PER_REPLICA * replicas))


def default_concurrency(client: PhantoscopeClient, pipeline: str) -> int:
    """Requests in flight for an import through ``pipeline`` when none is given
    (:func:`requests_in_flight` of its encoder's replicas, the endpoints its operator lists);
    CONCURRENCY when the server does not say."""
    try:
        encoder = client.pipelines.get(pipeline).encoder
        endpoints = client.operators.get(encoder).endpoint.split(",")
    except PhantoscopeError:
        return CONCURRENCY
    return requests_in_flight(sum(1 for endpoint in endpoints if endpoint.strip()))


def upload_all(
    client: PhantoscopeClient,
    target: Target,
    batched: Iterable[list[ImageFile]],
    concurrency: int,
    on_done: Callable[[int], None],
    reads: ServerReads,
) -> tuple[int, list[Failure]]:
    """Import the batches, ``concurrency`` at a time, each as soon as ``batched`` gives it;
    ``on_done(n)`` after each (in the thread that imported it)."""

    def imported_batch(batch: list[ImageFile]) -> tuple[int, list[Failure]]:
        outcome = upload_batch(client, target, batch, reads)
        on_done(len(batch))
        return outcome

    imported = 0
    failures: list[Failure] = []
    pool = ThreadPoolExecutor(concurrency)
    try:
        futures = [pool.submit(imported_batch, batch) for batch in batched]
        for future in futures:
            done, failed = future.result()
            imported += done
            failures.extend(failed)
    finally:  # on Ctrl-C, finish the requests in flight but start no more
        pool.shutdown(wait=True, cancel_futures=True)
    return imported, failures
