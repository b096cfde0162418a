"""The metadata store's pooled connections: one a database server dropped is replaced before
a request uses it; on SQLite (a file, nothing to drop) no request pays for that test."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy
from sqlalchemy import event

from backends import ADMIN_URLS, drop_database, fresh_database
from phantoscope.storage.meta import MetaStore

KILL_OTHER_CONNECTIONS = {
    "postgres": "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :name AND pid <> pg_backend_pid()",
    "mariadb": "SELECT id FROM information_schema.processlist "
               "WHERE db = :name AND id <> CONNECTION_ID()",
}


@pytest.fixture(params=["mariadb", "postgres"])
def server_database(request) -> Iterator[tuple[str, str]]:
    url = fresh_database(request.param)
    try:
        yield request.param, url
    finally:
        drop_database(url)


def _drop_connections(kind: str, database: str) -> int:
    """Close, from the server's side, every connection to ``database``; how many."""
    admin = sqlalchemy.create_engine(ADMIN_URLS[kind], isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            rows = connection.execute(sqlalchemy.text(KILL_OTHER_CONNECTIONS[kind]),
                                      {"name": database}).all()
            if kind == "mariadb":
                for (thread,) in rows:
                    connection.execute(sqlalchemy.text(f"KILL CONNECTION {int(thread)}"))
            return len(rows)
    finally:
        admin.dispose()


def test_a_connection_the_server_dropped_is_replaced_before_a_request_uses_it(
        server_database: tuple[str, str]) -> None:
    kind, url = server_database
    meta = MetaStore(url)
    try:
        assert meta.list_applications() == []  # leaves a connection in the pool
        assert _drop_connections(kind, url.rsplit("/", 1)[1]) >= 1
        assert meta.list_applications() == []
        meta.ping()
    finally:
        meta.close()


def test_sqlite_requests_run_no_connection_test(tmp_path: Path) -> None:
    meta = MetaStore(f"sqlite:///{tmp_path / 'meta.db'}")
    statements: list[str] = []

    @event.listens_for(meta.engine, "connect")
    def _trace(connection: sqlite3.Connection, _record) -> None:
        connection.set_trace_callback(statements.append)

    try:
        meta.engine.dispose()  # new connections, traced from their first statement
        for _ in range(3):
            assert meta.list_applications() == []
        assert statements, "the trace saw nothing"
        assert not [s for s in statements if s.strip().upper() == "SELECT 1"], statements
    finally:
        meta.close()
