"""A local Milvus server never outlives the process that started it (Linux)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's"),
]

# Started from a thread that ends at once: the server must outlive that thread (the death
# signal follows the thread that forked) but not the process.
STARTING_PROCESS = """
import sys, threading, time
from phantoscope.storage.milvus_server import LocalMilvusServer
server = LocalMilvusServer(sys.argv[1], grace_s=1)
starter = threading.Thread(target=server.start)
starter.start()
starter.join()
time.sleep(1)
print(server.pid, server.port, server.running, flush=True)
time.sleep(600)
"""


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie counts as gone: its parent may never reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def accepts(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_the_server_dies_with_its_process_even_one_killed_with_sigkill(tmp_path: Path) -> None:
    pytest.importorskip("milvus", reason="the `milvus` package (dev extra) runs a Milvus server")
    starting = subprocess.Popen([sys.executable, "-c", STARTING_PROCESS, str(tmp_path)],
                                stdout=subprocess.PIPE, text=True)
    pid = None
    try:
        pid_text, port_text, running = starting.stdout.readline().split()
        pid, port = int(pid_text), int(port_text)
        assert running == "True", "the server died with the thread that started it"
        assert alive(pid) and accepts(port)

        starting.kill()
        starting.wait(timeout=10)
        deadline = time.monotonic() + 10
        while (alive(pid) or accepts(port)) and time.monotonic() < deadline:
            time.sleep(0.1)  # a killed leader shows as a zombie while its threads still exit
        assert not alive(pid), "the Milvus server outlived the process that started it"
        assert not accepts(port), "the Milvus server's port still answers"
    finally:
        starting.kill()
        starting.wait(timeout=10)
        if pid is not None and alive(pid):
            os.kill(pid, signal.SIGKILL)
