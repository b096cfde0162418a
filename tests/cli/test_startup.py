"""The `phantoscope` command starts without loading what only some commands need: every
`phantoscope import` or `search` pays its start-up, so gRPC, model runtimes and the server's
stores load only in the commands that use them."""

from __future__ import annotations

import subprocess
import sys

SERVER_SIDE = ("grpc", "numpy", "onnxruntime", "torch", "PIL", "sqlalchemy", "pymilvus", "fastapi")


def test_the_command_loads_no_server_side_module():
    probe = ("import sys, phantoscope.cli.main; "
             f"print(' '.join(m for m in {SERVER_SIDE!r} if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == ""
