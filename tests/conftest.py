import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import SPEC_PROTO
from phantoscope.storage.milvus_server import LocalMilvusServer
from phantoscope.storage.s3_test_server import s3_test_server


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
