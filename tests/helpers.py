"""Shared test helpers: free ports, the `phantoscope` command, processes serving operators."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from phantoscope.operators.client import OperatorCallError, OperatorClient

REPO = Path(__file__).resolve().parents[1]
SPEC_PROTO = REPO.parent / "shared" / "spec" / "omnisearch.proto"
PHANTOSCOPE = str(Path(sys.executable).parent / "phantoscope")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run `phantoscope ARGS...` to completion and return what it printed."""
    return subprocess.run(
        [PHANTOSCOPE, *args], capture_output=True, text=True, timeout=timeout,
        env={**os.environ, **(env or {})}, cwd=cwd,
    )


def wait_healthy(endpoint: str, process: subprocess.Popen, timeout: float = 300) -> None:
    """Wait until the operator at ``endpoint`` answers Healthy, or fail with its output."""
    deadline = time.monotonic() + timeout
    with OperatorClient(endpoint, timeout_s=2) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                output = process.stdout.read() if process.stdout else ""
                raise AssertionError(f"operator process exited {process.returncode}:\n{output}")
            try:
                if client.health() == "healthy":
                    return
            except OperatorCallError:
                pass
            time.sleep(0.2)
    raise AssertionError(f"operator at {endpoint} not healthy after {timeout} s")


@contextmanager
def serving(command: list[str], endpoint: str, *, env: dict[str, str] | None = None,
            cwd: Path | None = None) -> Iterator[subprocess.Popen]:
    """Run a command that serves an operator at ``endpoint`` for the duration of a block."""
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, **(env or {})}, cwd=cwd,
    )
    try:
        wait_healthy(endpoint, process)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
