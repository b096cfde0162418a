"""A lock named in the metadata database, held across every process that shares it.

Several API processes (`phantoscope up --api-workers`, API replicas on one database) serve
the same applications; where two of them must not do a thing at once (check an upload for
copies, then store it), they take the same named lock: an advisory lock on PostgreSQL,
``GET_LOCK`` on MySQL / MariaDB, a file lock beside an SQLite database
(`storage/migrations/db_lock`, as the migrations take turns). Within one process it also
excludes other threads, without polling.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from phantoscope.storage.meta import MetaStore, MetaStoreError
from phantoscope.storage.migrations.db_lock import DbLock, holding

WAIT_S = 3600  # a lock held this long is taken to be stuck
POLL_S = 0.01

_threads: dict[str, threading.Lock] = {}
_threads_lock = threading.Lock()


class MetaLockTimeout(MetaStoreError):
    """A named lock was not given back within ``WAIT_S``."""


def _thread_lock(key: str) -> threading.Lock:
    with _threads_lock:
        return _threads.setdefault(key, threading.Lock())


@contextmanager
def meta_lock(meta: MetaStore, name: str) -> Iterator[None]:
    """Hold the lock ``name`` (any text) of ``meta``'s database for the block; raises
    :class:`MetaLockTimeout` when another holder keeps it past ``WAIT_S``."""
    with _thread_lock(f"{meta.engine.url}\n{name}"), \
            holding(meta.engine, DbLock.named(name), wait_s=WAIT_S, poll_s=POLL_S,
                    timeout=MetaLockTimeout):
        yield
