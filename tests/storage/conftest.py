"""Fixtures for the storage tests.

`milvus_server_uri` (session scope) is a real Milvus server for the whole test session: the
one the API tests share (`milvus_uri`, tests/conftest.py: 2-10 s to start, ~1.2 GB, free
ports, so parallel sessions do not collide), or the one ``$PHANTOSCOPE_TEST_MILVUS_URI``
names when it names a running server.
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
def milvus_server_uri(request: pytest.FixtureRequest) -> str:
    """The URI of a Milvus server shared by the test session (``http://127.0.0.1:PORT``)."""
    return os.environ.get("PHANTOSCOPE_TEST_MILVUS_URI") or request.getfixturevalue("milvus_uri")


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
