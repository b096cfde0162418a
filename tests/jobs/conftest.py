"""Fixtures for background jobs: an encoder process its tests can stop and start again."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from faults.tally_process import Tally


@pytest.fixture(scope="session")
def tally(tmp_path_factory) -> Iterator[Tally]:
    """A small encoder process (each call takes 20 ms), restartable on its endpoint."""
    encoder = Tally(tmp_path_factory.mktemp("tally"), TALLY_DELAY_S="0.02")
    with encoder:
        yield encoder
