import subprocess
import sys
from pathlib import Path

import pytest

from helpers import SPEC_PROTO


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
