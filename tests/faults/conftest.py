"""Fixtures for fault tests: tally operators in child processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from tally_process import Tally


@pytest.fixture
def tally(tmp_path) -> Iterator[Callable[..., Tally]]:
    """``tally(endpoint=None, **env)``: a started, healthy tally encoder (stopped at the end)."""
    started: list[Tally] = []

    def start(endpoint: str | None = None, **env: str) -> Tally:
        operator = Tally(tmp_path, endpoint, **env)
        started.append(operator)
        operator.start()
        operator.wait_healthy(60)
        return operator

    yield start
    for operator in started:
        if operator.process is not None and operator.process.poll() is None:
            operator.process.kill()  # also frees a SIGSTOPped one
            operator.process.wait()
