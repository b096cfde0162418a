"""`LiteHostProcess`: a Milvus Lite host (`lite_host`) in a child process, started with this
process's Python, stopped with it (it watches that its parent is alive), its output in a
log file."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from phantoscope.storage.lite_databases import database_path

__all__ = ["LiteHostError", "LiteHostProcess"]

STARTUP_TIMEOUT_S = 60.0
STOP_GRACE_S = 30.0  # closing flushes what is unflushed, which may take seconds
_READY = re.compile(r"^serving Milvus Lite .* at (http://127\.0\.0\.1:\d+) "
                    r"\(vectorised search: (on|off)\)$", re.MULTILINE)
_POLL_S = 0.05
_TAIL_LINES = 1  # the reason (a traceback ends with it)


class LiteHostError(RuntimeError):
    """The host could not be started (the message says why and where its log is)."""


class LiteHostProcess:
    """Serves the Milvus Lite database at ``path`` from a child process.

    ``start()`` returns the address stores connect to (``MilvusVectorStore(path,
    lite_host=address)``); ``log_path`` defaults to ``PATH-host.log`` beside the database.
    """

    def __init__(self, path: str, *, port: int = 0, log_path: Path | None = None,
                 startup_timeout_s: float = STARTUP_TIMEOUT_S) -> None:
        self.path = database_path(path)
        self.port = port
        self.log_path = log_path or Path(f"{self.path}-host.log")
        self.startup_timeout_s = startup_timeout_s
        self.address: str | None = None
        self.vectorised = False  # whether its searches use lite_search's executor
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> str:
        if self._process is not None:
            raise LiteHostError(f"the Milvus Lite host of {self.path} is already started")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            offset = log.tell()
            self._process = subprocess.Popen(
                [sys.executable, "-m", "phantoscope.storage.lite_host", self.path,
                 "--port", str(self.port), "--parent", str(os.getpid())],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        try:
            self.address, self.vectorised = self._wait_ready(offset)
        except BaseException:
            self.stop()
            raise
        return self.address

    def stop(self) -> None:
        """SIGTERM (the host closes the database), then SIGKILL after `STOP_GRACE_S`."""
        process, self._process = self._process, None
        self.address = None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> LiteHostProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _wait_ready(self, offset: int) -> tuple[str, bool]:
        assert self._process is not None
        deadline = time.monotonic() + self.startup_timeout_s
        while True:
            text = self._log_since(offset)
            ready = _READY.search(text)
            if ready:
                return ready.group(1), ready.group(2) == "on"
            code = self._process.poll()
            if code is not None:
                raise LiteHostError(
                    f"the Milvus Lite host of {self.path} exited ({code}) before serving: "
                    f"{_tail(self._log_since(offset))} (log: {self.log_path})")
            if time.monotonic() > deadline:
                raise LiteHostError(
                    f"the Milvus Lite host of {self.path} did not serve within "
                    f"{self.startup_timeout_s:g} s (log: {self.log_path})")
            time.sleep(_POLL_S)

    def _log_since(self, offset: int) -> str:
        with open(self.log_path, "rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")


def _tail(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return " / ".join(lines[-_TAIL_LINES:]) or "no output"
