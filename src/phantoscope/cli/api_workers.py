"""The API worker processes of `phantoscope up --api-workers N`: each a `phantoscope api` that
accepts connections on a socket `up` bound for it, one of an ``SO_REUSEPORT`` group on the API's
port (the kernel hands each new connection to one of them; `api/listen.py`),
with its own stores on the same data: SQL and the object store are shared as by API replicas;
a Milvus Lite database, which one process must own, is served to them all by a Lite host
process (`storage/lite_host.py`). A worker that dies is started again by `up`'s process group;
what its cut-short uploads wrote is removed by the journal repair, as after a crash. Its socket
stays open in `up` meanwhile: connections the kernel hands to it wait in its queue for the
process started in its place, rather than being refused.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

from phantoscope.operators.process import PHANTOSCOPE, stop_process
from phantoscope.operators.process_group import ProcessGroup

PARENT_POLL_S = 0.5


class ApiWorker:
    """One `phantoscope api` child serving on an inherited listening socket.

    It touches ``ready_file`` once its stores are open and it serves; it stops by itself
    (gracefully, as on SIGTERM) when the process that started it is gone."""

    def __init__(
        self, index: int, sock: socket.socket, logs: Path, env: dict[str, str],
    ) -> None:
        host, port = sock.getsockname()[:2]
        self.endpoint = f"{host}:{port} (worker {index + 1})"
        self.socket = sock
        self.ready_file = logs / f"api-{index + 1}.ready"
        self.log_path = logs / ("api.log" if index == 0 else f"api-{index + 1}.log")
        self.env = {**os.environ, **env}
        self.process: subprocess.Popen | None = None

    @property
    def command(self) -> list[str]:
        return [PHANTOSCOPE, "api", "--socket-fd", str(self.socket.fileno()),
                "--ready-file", str(self.ready_file)]

    def start(self) -> ApiWorker:
        self.ready_file.unlink(missing_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                pass_fds=(self.socket.fileno(),),
            )
        return self

    def wait_healthy(self, timeout_s: float = 300) -> None:
        """Block until it serves; raise if it exits first or never does."""
        assert self.process is not None, "start() first"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"API worker {self.endpoint} exited with {self.process.returncode}; "
                    f"see {self.log_path}")
            if self.ready_file.exists():
                return
            time.sleep(0.1)
        raise TimeoutError(f"API worker {self.endpoint} not serving after {timeout_s} s")

    def stop(self, timeout_s: float = 30) -> None:
        """SIGTERM (uvicorn finishes the requests in flight), then SIGKILL after
        ``timeout_s``."""
        stop_process(self.process, timeout_s)


def api_group(sockets: list[socket.socket], logs: Path, env: dict[str, str]) -> ProcessGroup:
    """An API worker on each of ``sockets``, with ``env`` over this process's environment."""
    workers = [ApiWorker(index, sock, logs, env) for index, sock in enumerate(sockets)]
    return ProcessGroup(
        [worker.endpoint for worker in workers], lambda _endpoint, index: workers[index],
        kind="API worker",
    )


def stop_with_parent() -> None:
    """In an API worker: SIGTERM this process (a graceful stop) once the process that started
    it is gone, so that a `phantoscope up` killed outright leaves no worker behind."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_S)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
