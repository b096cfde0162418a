"""A server's upkeep in a daemon thread of its own: one piece of work at a fixed pace until
stopped, a failure logged and tried again at the next turn."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from phantoscope.engine.errors import EngineError
from phantoscope.storage.store_error import StoreError

log = logging.getLogger(__name__)


class Upkeep:
    """``work`` every ``every_s`` seconds in a thread called ``name``; ``failing`` says in
    the log what could not be done."""

    def __init__(self, name: str, every_s: float, work: Callable[[], object],
                 failing: str) -> None:
        self.every_s, self.work, self.failing = every_s, work, failing
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(30)

    def _run(self) -> None:
        while not self._stopping.wait(self.every_s):
            try:
                self.work()
            except (StoreError, EngineError) as exc:
                log.warning("%s: %s", self.failing, exc)
            except Exception:  # the thread stays for the next turn
                log.exception(self.failing)
