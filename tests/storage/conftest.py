"""Fixtures for the storage tests.

`milvus_server_uri` (session scope) is a real Milvus server for the whole test session:
started once with `phantoscope.storage.milvus_server.LocalMilvusServer` (2-10 s, ~1.2 GB,
free ports, so parallel sessions do not collide), or taken from
``$PHANTOSCOPE_TEST_MILVUS_URI`` when that names a running server. Fixtures here are seen
only under tests/storage/; to share it with the API tests, move it to tests/conftest.py.
`lite_swaps` installs our Milvus Lite executor and swaps for a test that takes some out.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from backends import drop_database, fresh_database
from phantoscope.storage import lite_search


@pytest.fixture(scope="session")
def milvus_server_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URI of a Milvus server shared by the test session (``http://127.0.0.1:PORT``)."""
    if uri := os.environ.get("PHANTOSCOPE_TEST_MILVUS_URI"):
        yield uri
        return
    pytest.importorskip("milvus", reason="the `milvus` package (dev extra) runs a Milvus server")
    from phantoscope.storage.milvus_server import LocalMilvusServer

    server = LocalMilvusServer(tmp_path_factory.mktemp("milvus-server"), grace_s=1)
    server.start()
    try:
        yield server.uri
    finally:
        server.stop()


@pytest.fixture
def collection_name() -> str:
    """A collection name no other test (or test session on a shared server) uses."""
    return f"t_{uuid.uuid4().hex[:16]}"


@pytest.fixture(params=["sqlite", "mariadb", "postgres"])
def database(request, tmp_path) -> Iterator[tuple[str, str]]:
    """(kind, URL) of an empty database on SQLite or the local MariaDB or PostgreSQL."""
    kind = request.param
    if kind == "sqlite":
        yield kind, f"sqlite:///{tmp_path / 'meta.db'}"
        return
    url = fresh_database(kind)
    try:
        yield kind, url
    finally:
        drop_database(url)


@pytest.fixture
def lite_swaps() -> Iterator[None]:
    """`lite_search.install()` before the test, and after it every swap that installs put
    back, whichever the test uninstalled (as a store on Lite runs)."""
    assert lite_search.install()
    try:
        yield
    finally:
        for swap in lite_search.SWAPS:
            swap.install()
