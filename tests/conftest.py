import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from api_server import ApiServer
from backends import DEFAULT_BACKENDS, Backends, backend_env, drop_database
from helpers import SPEC_PROTO
from phantoscope.storage.milvus_server import LocalMilvusServer
from s3_server import s3_test_server


@pytest.fixture(scope="session")
def original_stubs(tmp_path_factory) -> Path:
    """Python stubs generated from the original protocol (`../shared/spec/omnisearch.proto`).

    Loaded only in subprocesses: its messages share full names with ours, and one process
    cannot hold both in protobuf's default pool.
    """
    assert SPEC_PROTO.is_file(), f"the original protocol is missing: {SPEC_PROTO}"
    out = tmp_path_factory.mktemp("original_stubs")
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{SPEC_PROTO.parent}",
         f"--python_out={out}", f"--grpc_python_out={out}", SPEC_PROTO.name],
        check=True,
    )
    return out


@pytest.fixture(scope="session")
def milvus_uri(tmp_path_factory) -> Iterator[str]:
    """One Milvus server (PyPI `milvus`) for the whole run, shared by the suites over it."""
    with LocalMilvusServer(tmp_path_factory.mktemp("milvus-server")) as server:
        yield server.uri


@pytest.fixture(scope="session")
def s3_url() -> Iterator[str]:
    """One S3 server (moto) on loopback for the whole run."""
    with s3_test_server() as server:
        yield server.url


@pytest.fixture
def start_server(request, tmp_path) -> Iterator:
    """``start_server(backends=DEFAULT_BACKENDS, **settings)``: an API server process over
    those backends with ``PHANTOSCOPE_<SETTING>`` set from ``settings`` (stopped, and the
    databases it got dropped, afterwards)."""
    started: list[ApiServer] = []
    databases: list[str] = []

    def start(backends: Backends = DEFAULT_BACKENDS, **settings: str) -> ApiServer:
        env = {f"PHANTOSCOPE_{key.upper()}": value for key, value in settings.items()}
        env.update(backend_env(request, backends, databases))
        server = ApiServer(tmp_path / f"home-{uuid.uuid4().hex[:6]}", env).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
    for url in databases:
        drop_database(url)
