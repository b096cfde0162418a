"""Shared test helpers: the `phantoscope` command, where the original protocol lies, the
lock of the fixed operator ports, this process's resident memory, and a folder served over
HTTP on loopback."""

from __future__ import annotations

import fcntl
import functools
import os
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from phantoscope.cli.worker_processes import OPERATOR_PORT
from phantoscope.operators.process import PHANTOSCOPE, OperatorProcess, free_port

REPO = Path(__file__).resolve().parents[1]
SPEC_PROTO = REPO.parent / "shared" / "spec" / "omnisearch.proto"

__all__ = ["PHANTOSCOPE", "REPO", "SPEC_PROTO", "OperatorProcess", "fixed_ports_lock",
           "folder_server", "free_port", "run_cli"]


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run `phantoscope ARGS...` to completion and return what it printed."""
    return subprocess.run(
        [PHANTOSCOPE, *args], capture_output=True, text=True, timeout=timeout,
        env={**os.environ, **(env or {})}, cwd=cwd,
    )


@contextmanager
def fixed_ports_lock() -> Iterator[None]:
    """Held while something may take the machine's fixed operator ports (50001, 50002, ...:
    what `phantoscope up` starts its operators on when they are free): one holder at a time
    on this machine, whichever pytest process or xdist worker it runs in (an advisory lock on
    a file in the system's temporary folder; the kernel releases it if the holder dies)."""
    path = Path(tempfile.gettempdir()) / f"phantoscope-tests-ports-{OPERATOR_PORT}.lock"
    # Read-only is enough for flock, and works on a file another user created.
    descriptor = os.open(path, os.O_RDONLY | os.O_CREAT, 0o666)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # releases the lock


def child_commands(pid: int) -> list[tuple[int, list[bytes]]]:
    """The processes ``pid`` started (those still there), with their command lines split."""
    pids = set()
    for task in Path(f"/proc/{pid}/task").iterdir():  # a child is listed under its thread
        try:
            pids.update((task / "children").read_text().split())
        except FileNotFoundError:  # a thread that ended meanwhile
            continue
    found = []
    for child in pids:
        try:
            found.append((int(child), Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")))
        except FileNotFoundError:
            continue
    return found


def resident_mb() -> float:
    """This process's VmRSS, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def folder_server(folder: Path) -> Iterator[str]:
    """``folder`` served over HTTP on loopback while the block runs; its base URL."""
    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
