"""The storage backends API tests run on."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass

import sqlalchemy

from phantoscope.storage.milvus_server import LocalMilvusServer


@dataclass(frozen=True)
class Backends:
    vectors: str  # lite | server
    meta: str  # sqlite | mariadb | postgres
    objects: str  # folder | s3

    @property
    def id(self) -> str:
        return f"{self.vectors}-{self.meta}-{self.objects}"


ALL_BACKENDS = [
    Backends(vectors, meta, objects)
    for vectors in ("lite", "server")
    for meta in ("sqlite", "mariadb", "postgres")
    for objects in ("folder", "s3")
]
# Every pair of two stores' backends in 6 combinations instead of 12 (a pairwise array), for
# suites whose cases exercise each store the same way and cost a minute per combination.
PAIRWISE_BACKENDS = [
    Backends("lite", "sqlite", "folder"), Backends("lite", "mariadb", "s3"),
    Backends("lite", "postgres", "folder"), Backends("server", "sqlite", "s3"),
    Backends("server", "mariadb", "folder"), Backends("server", "postgres", "s3"),
]
DEFAULT_BACKENDS = Backends("lite", "sqlite", "folder")

ADMIN_URLS = {
    "mariadb": "mysql+pymysql://root@127.0.0.1:3306/test",
    "postgres": "postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
}
DATABASE_URLS = {
    "mariadb": "mysql+pymysql://root@127.0.0.1:3306/{name}",
    "postgres": "postgresql+psycopg://postgres@127.0.0.1:5432/{name}",
}


# The tests' Milvus servers send a time tick every 50 ms, not every 200 ms: a Strong count (the
# store counts every bad-input case takes twice) and a search just after a write wait for the
# next tick. Measured on 2 cores: a count 210 against 52 ms, a search after a write 20 against
# 8 ms; the idle server's CPU 3.0 against 6.7 % of a core.
MILVUS_TEST_CONFIG = {"proxy.timeTickInterval": 50}


def milvus_test_server(base_dir: str | os.PathLike[str], **options: float) -> LocalMilvusServer:
    """A Milvus server (not yet started) for tests, with the tests' shorter time tick."""
    return LocalMilvusServer(base_dir, config=MILVUS_TEST_CONFIG, **options)


def fresh_database(kind: str) -> str:
    """Create an empty database on the local MariaDB or PostgreSQL server; its URL."""
    name = f"phantoscope_test_{secrets.token_hex(4)}"
    engine = sqlalchemy.create_engine(ADMIN_URLS[kind], isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sqlalchemy.text(f"CREATE DATABASE {name}"))
    engine.dispose()
    return DATABASE_URLS[kind].format(name=name)


def drop_database(url: str) -> None:
    kind = "mariadb" if url.startswith("mysql") else "postgres"
    name = url.rsplit("/", 1)[1]
    engine = sqlalchemy.create_engine(ADMIN_URLS[kind], isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        if kind == "postgres":
            connection.execute(sqlalchemy.text(
                f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
        connection.execute(sqlalchemy.text(f"DROP DATABASE IF EXISTS {name}"))
    engine.dispose()


def backend_env(request, backends: Backends, databases: list[str]) -> dict[str, str]:
    """PHANTOSCOPE_* settings for ``backends``; new databases are added to ``databases``."""
    env = {}
    if backends.vectors == "server":
        env["PHANTOSCOPE_VECTORS"] = request.getfixturevalue("milvus_uri")
    if backends.meta != "sqlite":
        databases.append(fresh_database(backends.meta))
        env["PHANTOSCOPE_META"] = databases[-1]
    if backends.objects == "s3":
        env["PHANTOSCOPE_OBJECTS"] = request.getfixturevalue("s3_url")
    return env
