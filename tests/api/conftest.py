"""Fixtures for API tests: operator processes, backends, and API servers over them."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy

from api_server import ApiServer
from backends import DEFAULT_BACKENDS, Backends
from helpers import OperatorProcess
from phantoscope.storage.milvus_server import LocalMilvusServer
from phantoscope.storage.s3_test_server import s3_test_server

ADMIN_URLS = {
    "mariadb": "mysql+pymysql://root@127.0.0.1:3306/test",
    "postgres": "postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
}
DATABASE_URLS = {
    "mariadb": "mysql+pymysql://root@127.0.0.1:3306/{name}",
    "postgres": "postgresql+psycopg://postgres@127.0.0.1:5432/{name}",
}


@pytest.fixture(scope="session")
def encoder_endpoint() -> Iterator[str]:
    with OperatorProcess("efficientnet-lite0-encoder") as server:
        yield server.endpoint


@pytest.fixture(scope="session")
def face_endpoints() -> Iterator[tuple[str, str]]:
    with OperatorProcess("face-detector") as detector, OperatorProcess("face-encoder") as coder:
        yield detector.endpoint, coder.endpoint


@pytest.fixture(scope="session")
def milvus_uri(tmp_path_factory) -> Iterator[str]:
    with LocalMilvusServer(tmp_path_factory.mktemp("milvus-server")) as server:
        yield server.uri


@pytest.fixture(scope="session")
def s3_url() -> Iterator[str]:
    with s3_test_server() as server:
        yield server.url


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


@pytest.fixture
def start_server(request, tmp_path) -> Iterator:
    """A function that starts an API server over the given backends (stopped afterwards)."""
    started: list[ApiServer] = []
    databases: list[str] = []

    def start(backends: Backends = DEFAULT_BACKENDS, **settings: str) -> ApiServer:
        env = {key.upper(): value for key, value in settings.items()}
        if backends.vectors == "server":
            env["PHANTOSCOPE_VECTORS"] = request.getfixturevalue("milvus_uri")
        if backends.meta != "sqlite":
            databases.append(fresh_database(backends.meta))
            env["PHANTOSCOPE_META"] = databases[-1]
        if backends.objects == "s3":
            env["PHANTOSCOPE_OBJECTS"] = request.getfixturevalue("s3_url")
        server = ApiServer(tmp_path / f"home-{uuid.uuid4().hex[:6]}", env).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
    for url in databases:
        drop_database(url)
