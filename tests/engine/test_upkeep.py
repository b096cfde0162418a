"""A server's upkeep thread: it works at its pace, logs a failure and goes on at the next
turn, and stops when told."""

from __future__ import annotations

import itertools
import logging
import time

from phantoscope.engine.upkeep import Upkeep
from phantoscope.storage.store_error import StoreError


def test_upkeep_goes_on_after_failures_and_stops_when_told(caplog):
    caplog.set_level(logging.WARNING, logger="phantoscope.engine.upkeep")
    calls: list[float] = []

    def work() -> None:
        calls.append(time.monotonic())
        if len(calls) == 1:
            raise StoreError("the database is away")
        if len(calls) == 2:
            raise KeyError("a bug")

    upkeep = Upkeep("test-upkeep", 0.02, work, "could not tidy up")
    upkeep.start()
    deadline = time.monotonic() + 10
    while len(calls) < 4:
        assert time.monotonic() < deadline, calls
        time.sleep(0.01)
    upkeep.stop()
    done = len(calls)
    time.sleep(0.1)
    assert len(calls) == done  # stopped
    assert all(later - earlier >= 0.015 for earlier, later in itertools.pairwise(calls))
    messages = [(record.levelname, record.getMessage()) for record in caplog.records]
    assert ("WARNING", "could not tidy up: the database is away") in messages
    [logged] = [record for record in caplog.records if record.exc_info]
    assert logged.getMessage() == "could not tidy up" and "a bug" in str(logged.exc_info[1])
