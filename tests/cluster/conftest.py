"""A cluster for replica tests: one operator, one Milvus server, one S3 server and one
PostgreSQL database, with any number of `phantoscope api` processes over them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from api_server import ApiServer
from backends import drop_database, fresh_database, milvus_test_server
from helpers import OperatorProcess, run_cli
from s3_server import s3_test_server


@pytest.fixture(scope="session")
def encoder_endpoint() -> Iterator[str]:
    with OperatorProcess("efficientnet-lite0-encoder") as server:
        yield server.endpoint


@pytest.fixture(scope="session")
def histogram_endpoint(tmp_path_factory) -> Iterator[str]:
    """The scaffold's colour-histogram encoder: a second encoder, of another dimension."""
    folder = tmp_path_factory.mktemp("operators")
    made = run_cli("operator", "new", "histogram-encoder", cwd=folder)
    assert made.returncode == 0, made.stderr
    with OperatorProcess(str(folder / "histogram-encoder")) as server:
        yield server.endpoint


@pytest.fixture(scope="module")
def cluster_env(tmp_path_factory) -> Iterator[dict[str, str]]:
    """PHANTOSCOPE_* settings naming one fresh PostgreSQL database, one Milvus server and
    one S3 server."""
    with milvus_test_server(tmp_path_factory.mktemp("milvus")) as milvus, \
            s3_test_server() as s3:
        database = fresh_database("postgres")
        try:
            yield {
                "PHANTOSCOPE_META": database,
                "PHANTOSCOPE_VECTORS": milvus.uri,
                "PHANTOSCOPE_OBJECTS": s3.url,
            }
        finally:
            drop_database(database)


@pytest.fixture(scope="module")
def replicas(cluster_env, tmp_path_factory) -> Iterator[tuple[ApiServer, ApiServer]]:
    """Two API servers, A and B, over the same stores."""
    started: list[ApiServer] = []
    try:
        for name in ("a", "b"):
            home = tmp_path_factory.mktemp(f"replica-{name}")
            started.append(ApiServer(home, cluster_env).start())
        yield started[0], started[1]
    finally:
        for server in started:
            server.stop()
