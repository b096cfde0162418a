"""A lock named in the metadata database, held across every process that shares it.

Several API processes (`phantoscope up --api-workers`, API replicas on one database) serve
the same applications; where two of them must not do a thing at once (check an upload for
copies, then store it), they take the same named lock:

- PostgreSQL: a session advisory lock (``pg_try_advisory_lock``), MariaDB / MySQL:
  ``GET_LOCK``, each tried on a connection of its own until taken (MariaDB takes a negative
  wait as none at all, so both are tried the same way);
- SQLite file: an exclusive ``flock`` on a file beside the database (the processes sharing
  a SQLite file share its folder); an in-memory database has one process only.

The lock is released when the block ends, or with the connection or file when the process
dies. Within one process it also excludes other threads. The migrations take turns the same
way (`storage/migrations._locked`), under names of their own.
"""

from __future__ import annotations

import fcntl
import hashlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from phantoscope.storage.meta import MetaStore, MetaStoreError

WAIT_S = 3600  # a lock held this long is taken to be stuck
POLL_S = 0.01

_threads: dict[str, threading.Lock] = {}
_threads_lock = threading.Lock()


class MetaLockTimeout(MetaStoreError):
    """A named lock was not given back within ``WAIT_S``."""


def _thread_lock(key: str) -> threading.Lock:
    with _threads_lock:
        return _threads.setdefault(key, threading.Lock())


def _digest(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


@contextmanager
def meta_lock(meta: MetaStore, name: str) -> Iterator[None]:
    """Hold the lock ``name`` (any text) of ``meta``'s database for the block; raises
    :class:`MetaLockTimeout` when another holder keeps it past ``WAIT_S``."""
    url = meta.engine.url
    with _thread_lock(f"{url}\n{name}"):
        dialect = url.get_backend_name()
        if dialect == "postgresql":
            key = int(_digest(name)[:15], 16)  # 60 bits: a positive bigint
            with _held(meta, "SELECT pg_try_advisory_lock(:key)",
                       "SELECT pg_advisory_unlock(:key)", key):
                yield
        elif dialect in ("mysql", "mariadb"):
            # lock names are per server, as the migrations' are: the database's name goes in
            named = "SHA1(CONCAT(:key, DATABASE()))"
            with _held(meta, f"SELECT GET_LOCK({named}, 0)", f"SELECT RELEASE_LOCK({named})",
                       f"phantoscope {name} "):
                yield
        elif url.database and url.database != ":memory:":
            with _flocked(Path(f"{url.database}.locks") / _digest(name)[:32]):
                yield
        else:
            yield


@contextmanager
def _held(meta: MetaStore, take: str, give: str, key: object) -> Iterator[None]:
    """Try ``take`` (answers true once taken) on a connection of its own every ``POLL_S``
    until it is taken, hold it for the block, then ``give``."""
    with meta.engine.connect() as connection:
        deadline = time.monotonic() + WAIT_S
        while not connection.execute(text(take), {"key": key}).scalar():
            connection.commit()
            if time.monotonic() > deadline:
                raise MetaLockTimeout(f"the lock {key} was held for over {WAIT_S} s")
            time.sleep(POLL_S)
        connection.commit()
        try:
            yield
        finally:
            try:
                connection.execute(text(give), {"key": key})
                connection.commit()
            except SQLAlchemyError:
                connection.invalidate()  # closed, not pooled: the server drops its lock


@contextmanager
def _flocked(path: Path) -> Iterator[None]:
    path.parent.mkdir(exist_ok=True)
    with open(path, "a+b") as file:
        fcntl.flock(file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(file, fcntl.LOCK_UN)
