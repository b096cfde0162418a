"""Several child processes kept running: the processes serving one operator, each on a port of
its own (`phantoscope up --workers`, `operator serve --processes`), or the API worker processes
of `phantoscope up --api-workers`.

Why ports of their own rather than one port shared with ``SO_REUSEPORT``: a gRPC client holds
one connection per endpoint, and the kernel hands a connection to one process, so behind one
shared port every call of the engine reached the same process (measured with two processes on
2 cores: all of the CPU time in one, none in the other, even with four clients in the calling
process, since gRPC shares the connection between them). On ports of their own they are the
replicas the engine already balances, health-checks and retries across
(`engine/replicas.py`).

A process that exits while the group runs is started again on its port, after a pause that
grows while it keeps dying soon after starting.
"""

from __future__ import annotations

import logging
import os
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

log = logging.getLogger("phantoscope.operators")

THREADS_VARIABLE = "PHANTOSCOPE_ORT_THREADS"
WATCH_INTERVAL_S = 0.25
FIRST_RESTART_DELAY_S = 0.5
MAX_RESTART_DELAY_S = 30.0
STABLE_AFTER_S = 30.0  # a process that ran this long restarts without delay next time
INTERRUPT_POLL_S = 0.5


def wait_for_interrupt() -> None:
    """Block until Ctrl-C (or a SIGTERM turned into one) raises KeyboardInterrupt here, in
    the main thread. In steps: a signal the kernel hands to another thread (the group's
    watcher, a gRPC thread) never wakes a wait without a timeout, and Python runs its handler
    only in the main thread, so an unbounded `threading.Event().wait()` could miss Ctrl-C
    for good; a step's end lets the handler run."""
    while True:
        time.sleep(INTERRUPT_POLL_S)


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, as a container limits it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def threads_per_process(processes: int, cores: int) -> int | None:
    """ONNX Runtime's intra-op threads for each of ``processes`` operator processes: None
    (one per core) for a single process, else the cores shared out, at least one.

    Measured on 2 cores (EfficientNet-Lite0, batches of 16 JPEGs of 0.8 and 2.5 MP): 2
    processes of 1 thread 67.4 images/s, of 2 threads 53.3 (their threads fight for the
    cores), 1 process of 2 threads 63.9; on 16 cores (issue 20) 16 x 1 631, 8 x 2 617."""
    return None if processes <= 1 else max(1, cores // processes)


class ChildProcess(Protocol):
    """What a group runs: a child started and stopped on demand (`OperatorProcess`, an API
    worker); ``endpoint`` names it in logs."""

    endpoint: str
    process: subprocess.Popen | None

    def start(self) -> object: ...

    def wait_healthy(self, timeout_s: float) -> None: ...

    def stop(self, timeout_s: float) -> None: ...


class _Member:
    """One process of the group and its restart bookkeeping."""

    def __init__(self, process: ChildProcess) -> None:
        self.process = process
        self.started_at = 0.0
        self.delay_s = 0.0
        self.restart_at: float | None = None
        self.restarts = 0

    def start(self) -> None:
        self.process.start()
        self.started_at = time.monotonic()
        self.restart_at = None


class ProcessGroup:
    """``len(endpoints)`` processes, one per endpoint.

    ``make(endpoint, index)`` builds each child (unstarted). ``start()`` starts the first,
    waits until it serves (a first operator start may export the model into the cache the
    others then read), then the others; from then on a watcher thread restarts any that
    exits, until ``stop()``. ``kind`` names the processes in logs.
    """

    def __init__(
        self, endpoints: Sequence[str], make: Callable[[str, int], ChildProcess],
        kind: str = "operator",
    ) -> None:
        if not endpoints:
            raise ValueError("a process group needs at least one endpoint")
        self.kind = kind
        self._members = [_Member(make(endpoint, i)) for i, endpoint in enumerate(endpoints)]
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None

    @property
    def endpoints(self) -> list[str]:
        return [member.process.endpoint for member in self._members]

    @property
    def endpoint_list(self) -> str:
        """The endpoints as the engine registers replicas: ``host:port,host:port``."""
        return ",".join(self.endpoints)

    @property
    def processes(self) -> list[ChildProcess]:
        return [member.process for member in self._members]

    @property
    def restarts(self) -> int:
        return sum(member.restarts for member in self._members)

    def start(self, timeout_s: float = 900) -> None:
        """Start every process and wait until each serves; raise (having stopped them) if
        one exits or does not serve in time."""
        first, *others = self._members
        try:
            first.start()
            first.process.wait_healthy(timeout_s)
            for member in others:
                member.start()
            for member in others:
                member.process.wait_healthy(timeout_s)
        except BaseException:
            self.stop()
            raise
        self._watcher = threading.Thread(
            target=self._watch, name=f"{self.kind}-watch", daemon=True)
        self._watcher.start()

    def stop(self, timeout_s: float = 10) -> None:
        """Stop watching, then every process: all asked at once, then waited for."""
        self._stopping.set()
        if self._watcher is not None and self._watcher is not threading.current_thread():
            self._watcher.join()
        for member in self._members:
            if member.process.process is not None and member.process.process.poll() is None:
                member.process.process.terminate()
        for member in self._members:
            member.process.stop(timeout_s)

    def __enter__(self) -> ProcessGroup:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- the watcher --------------------------------------------------------------------

    def _watch(self) -> None:
        while not self._stopping.wait(WATCH_INTERVAL_S):
            for member in self._members:
                self._tend(member)

    def _tend(self, member: _Member) -> None:
        child = member.process.process
        if child is None or child.poll() is None:
            return
        now = time.monotonic()
        if member.restart_at is None:
            lived = now - member.started_at
            member.delay_s = (
                0.0 if lived >= STABLE_AFTER_S
                else min(max(member.delay_s * 2, FIRST_RESTART_DELAY_S), MAX_RESTART_DELAY_S)
            )
            member.restart_at = now + member.delay_s
            log.warning(
                "%s process at %s (pid %d) exited with %s after %.0f s; restarting it"
                "%s", self.kind, member.process.endpoint, child.pid, child.returncode, lived,
                f" in {member.delay_s:.1f} s" if member.delay_s else "",
            )
        if now >= member.restart_at and not self._stopping.is_set():
            member.restarts += 1
            member.start()
            log.info("%s process at %s started again (pid %d)",
                     self.kind, member.process.endpoint, member.process.process.pid)


def log_path(folder: Path, index: int) -> Path:
    """``operator.log`` for the first process of a group, ``operator-2.log`` and on for the
    others."""
    return folder / ("operator.log" if index == 0 else f"operator-{index + 1}.log")
