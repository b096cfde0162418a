"""Running an operator as a child process and waiting until it can serve."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from phantoscope.operators.proto import HEALTHY
from phantoscope.operators.rpc_client import OperatorCallError, OperatorClient

PHANTOSCOPE = str(Path(sys.executable).parent / "phantoscope")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def stop_process(process: subprocess.Popen | None, timeout_s: float) -> None:
    """SIGTERM, then SIGKILL when ``process`` has not exited after ``timeout_s``; nothing
    for one not started or already gone."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class OperatorProcess:
    """A child process serving an operator at ``endpoint``.

    By default it runs `phantoscope operator serve TARGET [OPTIONS]` on a free loopback port
    (listening on ``host``);
    ``command`` runs anything else that serves at ``endpoint`` (e.g. `python server.py`).
    The child stops by itself if this process dies without stopping it
    (``PHANTOSCOPE_STOP_WITH_PARENT``).
    """

    def __init__(
        self,
        target: str | None = None,
        *,
        endpoint: str | None = None,
        command: list[str] | None = None,
        options: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        log_path: Path | None = None,
        host: str = "127.0.0.1",
        show_output: bool = False,
    ) -> None:
        if (target is None) == (command is None):
            raise ValueError("give either a target or a command")
        self.endpoint = endpoint or f"127.0.0.1:{free_port()}"
        port = self.endpoint.rpartition(":")[2]
        self.command = command or [
            PHANTOSCOPE, "operator", "serve", str(target), "--host", host,
            "--port", port, *options,
        ]
        self.env = {**os.environ, "OP_ENDPOINT": self.endpoint,
                    "PHANTOSCOPE_STOP_WITH_PARENT": "true", **(env or {})}
        self.cwd = cwd
        self.log_path = log_path
        self.show_output = show_output  # without a log_path: on this process's stdout/stderr
        self.process: subprocess.Popen | None = None

    def start(self) -> OperatorProcess:
        log = (
            open(self.log_path, "ab") if self.log_path  # noqa: SIM115
            else None if self.show_output else subprocess.DEVNULL
        )
        try:
            self.process = subprocess.Popen(
                self.command, env=self.env, cwd=self.cwd, stdout=log,
                stderr=None if log is None else subprocess.STDOUT,
            )
        finally:
            if self.log_path:
                log.close()
        return self

    def wait_healthy(self, timeout_s: float = 300) -> None:
        """Block until the operator answers Healthy; raise if it exits or never does."""
        assert self.process is not None, "start() first"
        deadline = time.monotonic() + timeout_s
        with OperatorClient(self.endpoint, timeout_s=2) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    where = f"; see {self.log_path}" if self.log_path else ""
                    raise RuntimeError(
                        f"operator process {' '.join(self.command)} exited with "
                        f"{self.process.returncode}{where}"
                    )
                try:
                    if client.health() == HEALTHY:
                        return
                except OperatorCallError:
                    pass
                time.sleep(0.2)
        raise TimeoutError(f"operator at {self.endpoint} not healthy after {timeout_s} s")

    def stop(self, timeout_s: float = 10) -> None:
        stop_process(self.process, timeout_s)

    def __enter__(self) -> OperatorProcess:
        self.start()
        try:
            self.wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
