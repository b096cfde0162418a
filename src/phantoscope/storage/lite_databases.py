"""Milvus Lite databases in this process: which path a database may have (`database_path`),
and one lock and a use count per open database (`LITE`), since Milvus Lite is not safe for
concurrent writes (see `milvus_vectors`). The vectorised search executor put in place of
Milvus Lite's own, and direct access to the collections of a database this process serves,
are in `lite_search`.

A database served by another process (`lite_host`) is used by the stores of several
processes: its lock (`ProcessesLock`) is also a `flock` on `CLIENTS_LOCK` in its data
folder, so that a store call made of several requests (check then create a partition, read
then rewrite payloads, page through ids) is never interleaved with another process's, as
it is never interleaved with another thread's.
"""

from __future__ import annotations

import fcntl
import os
import threading
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from phantoscope.storage.vectors import VectorStoreError

__all__ = ["CLIENTS_LOCK", "LITE", "LiteRegistry", "ProcessesLock", "database_path"]

CLIENTS_LOCK = "CLIENTS_LOCK"  # in the data folder of a hosted database (see above)


def database_path(uri: str) -> str:
    """The absolute path of the Milvus Lite database ``uri`` names (a path ending in ``.db``,
    a folder in Milvus Lite 3.x), its parent folder created."""
    path = Path(uri).expanduser()
    if path.suffix != ".db":
        raise ValueError(
            f"vector store URI {uri!r} is neither a Milvus Lite path ending in .db "
            "nor a server URI (http://, https://, tcp://)")
    path = path.resolve()
    if path.is_file():
        raise VectorStoreError(
            f"cannot open Milvus Lite at {path}: it is a file, probably from Milvus Lite "
            "2.x; Milvus Lite 3.x keeps a database in a folder of that name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise VectorStoreError(
            f"cannot create the folder for Milvus Lite at {path}: {exc}") from exc
    return str(path)


class ProcessesLock(AbstractContextManager["ProcessesLock"]):
    """A re-entrant lock held by one thread of all the processes that open it on one file
    (a thread lock, then an exclusive `flock` on the file while the thread holds it).

    One per file per process: two open files in one process would exclude each other."""

    def __init__(self, path: str) -> None:
        self._thread = threading.RLock()
        self._depth = 0
        self._fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)

    def __enter__(self) -> ProcessesLock:
        self._thread.acquire()
        if self._depth == 0:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            except BaseException:
                self._thread.release()
                raise
        self._depth += 1
        return self

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        if self._depth == 0:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._thread.release()

    def close(self) -> None:
        os.close(self._fd)  # releases the flock too


class LiteRegistry:
    """Milvus Lite databases open in this process: one lock and a use count per path.

    pymilvus starts one in-process Milvus Lite server per path and shares it between clients;
    we stop it (releasing the data folder's lock) when the last store on that path closes.
    A hosted database (``hosted=True``: served by another process) has a `ProcessesLock`
    instead, closed when the last store on that path closes.
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        # (path, hosted) -> [lock, use count]
        self._entries: dict[tuple[str, bool], list[Any]] = {}

    def acquire(self, path: str, hosted: bool = False) -> AbstractContextManager[Any]:
        with self._guard:
            entry = self._entries.get((path, hosted))
            if entry is None:
                entry = [self._new_lock(path) if hosted else threading.RLock(), 0]
                self._entries[(path, hosted)] = entry
            entry[1] += 1
            return entry[0]

    def release(self, path: str, hosted: bool = False) -> None:
        with self._guard:
            entry = self._entries.get((path, hosted))
            if entry is None:
                return
            entry[1] -= 1
            if entry[1] > 0:
                return
            del self._entries[(path, hosted)]
        if hosted:
            entry[0].close()
            return
        from milvus_lite.server_manager import server_manager_instance

        server_manager_instance.release_server(path)

    @staticmethod
    def _new_lock(path: str) -> ProcessesLock:
        try:
            return ProcessesLock(os.path.join(path, CLIENTS_LOCK))
        except OSError as exc:
            raise VectorStoreError(
                f"cannot use Milvus Lite at {path} through its host: {exc.strerror} "
                "(does a host serve this folder?)") from exc


LITE = LiteRegistry()
