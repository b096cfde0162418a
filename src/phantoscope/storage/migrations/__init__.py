"""Versioned schema migrations of the metadata database: Alembic, configured here in code.

The revisions are the modules of ``versions/`` (``0001``: the tables as the releases before
migrations made them; ``0002``: an entity's name, attributes, EXIF and capture time;
``0003``: entity labels and operators' label vocabularies; ``0004``: a pipeline's text
encoder; ``0005``: entities' copy descriptors and duplicate decisions; ``0006``: background
jobs and their items). A new one:
``alembic.command.revision(migrations.config(), "what it does", rev_id="0007")`` writes its
file from ``script.py.mako``; the models in :mod:`phantoscope.storage.meta` change with it,
and tests/storage/test_migrations.py checks that both agree.

:func:`upgrade` brings a database to the newest revision: an empty one is built by the
revisions, one made by an earlier release (tables, no ``alembic_version``) first gets the
tables it lacks and is marked at ``0001``, then the caller's ``legacy`` step (a change made
before revisions existed) runs, then the remaining revisions. Processes opening the same
database at once (API replicas) take turns: an advisory lock on PostgreSQL, ``GET_LOCK`` on
MySQL/MariaDB, a lock file beside an SQLite database; each re-reads the revision once it
holds the lock, so the second finds nothing to do. Where no lock can be had, a failed run is
retried once from the revision the database is then at.

Imports nothing of ours but its lock (:mod:`.db_lock`): the storage modules call it.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect
from sqlalchemy.exc import SQLAlchemyError

from phantoscope.storage.migrations.db_lock import MIGRATIONS, holding

HERE = Path(__file__).resolve().parent
FIRST = "0001"
LOCK_WAIT_S = 120


class MigrationLockTimeout(SQLAlchemyError):
    """Another process held the migration lock longer than :data:`LOCK_WAIT_S`."""


@dataclass(frozen=True)
class Revision:
    id: str
    title: str  # the first line of its docstring


@dataclass(frozen=True)
class Status:
    """Where a database stands, read without changing it."""

    current: str | None  # None: no alembic_version table (empty, or an earlier release's)
    head: str
    pending: tuple[Revision, ...]  # what an upgrade would apply, oldest first
    legacy: bool  # tables made by a release before versioned migrations

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


@dataclass(frozen=True)
class Migration:
    """What :func:`upgrade` did."""

    before: str | None
    after: str
    applied: tuple[Revision, ...]  # oldest first; empty when it was already up to date
    legacy: bool  # it was an earlier release's database


def config() -> Config:
    """Alembic's configuration, without an ini file."""
    settings = Config()
    settings.set_main_option("script_location", str(HERE))
    return settings


@functools.cache
def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(config())


def head() -> str:
    head = _script().get_current_head()
    assert head is not None, "no revisions"
    return head


def pending(current: str | None) -> tuple[Revision, ...]:
    """The revisions an upgrade from ``current`` applies (None: an empty database)."""
    return _pending(_script(), current)


def _pending(script: ScriptDirectory, current: str | None) -> tuple[Revision, ...]:
    revisions = script.iterate_revisions("head", current or "base")
    return tuple(
        Revision(each.revision, (each.doc or "").strip().splitlines()[0] if each.doc else "")
        for each in reversed(list(revisions))
    )


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _has_tables(connection: Connection) -> bool:
    return "operators" in inspect(connection).get_table_names()


def status(engine: Engine) -> Status:
    """The database's revision and what an upgrade would apply; changes nothing."""
    script = _script()
    with engine.connect() as connection:
        current = _current(connection)
        legacy = current is None and _has_tables(connection)
    return Status(current, head(), _pending(script, current), legacy)


def upgrade(engine: Engine, legacy: Callable[[Engine], object] | None = None) -> Migration:
    """Bring the database to the newest revision (see the module's docstring); what it did.

    ``legacy(engine)`` runs whenever revisions are pending, after ``0001``: it must be
    idempotent (a run cut short finishes it next time) and use its own connections.
    """
    try:
        return _upgrade(engine, legacy)
    except MigrationLockTimeout:
        raise
    except SQLAlchemyError:
        # Without a lock (an unknown backend, an SQLite file we cannot lock) another process
        # may have been migrating at the same time: once more, from where it now stands.
        return _upgrade(engine, legacy)


def _upgrade(engine: Engine, legacy: Callable[[Engine], object] | None) -> Migration:
    script = _script()
    target = head()
    with engine.connect() as connection:  # the usual case, without waiting for a lock
        if _current(connection) == target:
            return Migration(target, target, (), False)
    with _locked(engine) as connection:
        before = _current(connection)
        was_legacy = before is None and _has_tables(connection)
        connection.commit()  # alembic runs its own transactions on this connection
        pending = _pending(script, before)
        if not pending:
            return Migration(before, target, (), False)
        settings = config()
        settings.attributes["connection"] = connection
        if before is None:
            command.upgrade(settings, FIRST)
            _end_transaction(connection)
        if legacy is not None:
            legacy(engine)
        command.upgrade(settings, target)
        _end_transaction(connection)
        after = _current(connection)
        connection.commit()
    assert after == target, f"the database is at {after} after upgrading to {target}"
    return Migration(before, target, pending, was_legacy)


def _end_transaction(connection: Connection) -> None:
    if connection.in_transaction():
        connection.commit()


def _locked(engine: Engine) -> contextlib.AbstractContextManager[Connection]:
    """A connection, while this process alone migrates the database."""
    return holding(engine, MIGRATIONS, wait_s=LOCK_WAIT_S, poll_s=0.1,
                   timeout=MigrationLockTimeout)
