"""Locks named in a database and held across every process that uses it: the migrations take
turns with one (:data:`MIGRATIONS`), `storage/meta_lock` names others.

- PostgreSQL: a session advisory lock (``pg_try_advisory_lock``, per database);
- MySQL / MariaDB: ``GET_LOCK`` (per server, so the name holds the database's);
- SQLite file: an exclusive ``flock`` on a file beside the database (the processes sharing a
  SQLite file share its folder); an in-memory database, or a system without ``fcntl``, has
  none.

Each is tried without waiting, again every ``poll_s`` (MariaDB takes a negative wait as none
at all), and is released when the block ends, or with its connection or file when the
process dies.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

try:
    import fcntl
except ImportError:  # Windows: no file locks
    fcntl = None  # type: ignore[assignment]

_SERVER_NAME = "SHA1(CONCAT(:name, DATABASE()))"


@dataclass(frozen=True)
class DbLock:
    """One lock's name in each kind of database."""

    advisory_key: int  # PostgreSQL: a positive bigint
    server_name: str  # MySQL / MariaDB: hashed with the database's name
    file_suffix: str  # SQLite: the locked file is the database's path with this added

    @classmethod
    def named(cls, name: str) -> DbLock:
        """The lock called ``name`` (any text)."""
        digest = hashlib.sha256(name.encode()).hexdigest()
        return cls(int(digest[:15], 16), f"phantoscope {name} ", f".locks/{digest[:32]}")


# The names the releases before this module used for their migrations, kept so that an older
# and a newer process opening one database still take turns.
MIGRATIONS = DbLock(0x70686E746F6D6967, "phantoscope migrations ", ".migrate-lock")


@contextmanager
def holding(engine: Engine, lock: DbLock, *, wait_s: float, poll_s: float,
            timeout: type[Exception]) -> Iterator[Connection]:
    """A connection of ``engine`` while this process holds ``lock``; raises ``timeout``
    (built from a message) when others kept it over ``wait_s``. On PostgreSQL and MySQL the
    lock belongs to the connection given: leave it open for the block."""
    backend = engine.dialect.name
    if backend == "sqlite":
        with _flocked(engine.url.database, lock, wait_s, poll_s, timeout), \
                engine.connect() as connection:
            yield connection
        return
    if backend == "postgresql":
        take, give = "SELECT pg_try_advisory_lock(:key)", "SELECT pg_advisory_unlock(:key)"
        values: dict[str, object] = {"key": lock.advisory_key}
    elif backend in ("mysql", "mariadb"):
        take, give = f"SELECT GET_LOCK({_SERVER_NAME}, 0)", f"SELECT RELEASE_LOCK({_SERVER_NAME})"
        values = {"name": lock.server_name}
    else:
        with engine.connect() as connection:
            yield connection
        return
    with engine.connect() as connection:
        deadline = time.monotonic() + wait_s
        while not connection.execute(text(take), values).scalar():
            connection.commit()
            if time.monotonic() > deadline:
                raise timeout(_held_too_long(engine, wait_s))
            time.sleep(poll_s)
        connection.commit()
        try:
            yield connection
        finally:
            try:
                connection.rollback()
                connection.execute(text(give), values)
                connection.commit()
            except SQLAlchemyError:
                connection.invalidate()  # closed, not pooled: the server drops its lock


@contextmanager
def _flocked(database: str | None, lock: DbLock, wait_s: float, poll_s: float,
             timeout: type[Exception]) -> Iterator[None]:
    if fcntl is None or database in (None, "", ":memory:") or database.startswith("file:"):
        yield
        return
    path = Path(database + lock.file_suffix)
    path.parent.mkdir(exist_ok=True)
    with open(path, "a+b") as file:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise timeout(_held_too_long(database, wait_s)) from None
                time.sleep(poll_s)
        try:
            yield
        finally:
            fcntl.flock(file, fcntl.LOCK_UN)


def _held_too_long(database: object, wait_s: float) -> str:
    where = database.url.render_as_string() if isinstance(database, Engine) else database
    return f"another process has held a lock of {where} for over {wait_s:g} s"
