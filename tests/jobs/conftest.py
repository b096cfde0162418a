"""Fixtures for background jobs and files read from the server's disk: an encoder process its
tests can stop and start again, and a folder a server may read beside one it may not."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from faults.tally_process import Tally
from job_world import photo_bytes


@pytest.fixture(scope="session")
def tally(tmp_path_factory) -> Iterator[Tally]:
    """A small encoder process (each call takes 20 ms), restartable on its endpoint."""
    encoder = Tally(tmp_path_factory.mktemp("tally"), TALLY_DELAY_S="0.02")
    with encoder:
        yield encoder


@pytest.fixture(scope="module")
def roots(tmp_path_factory) -> Path:
    """The one folder a module's server may read from; ``outside`` is beside it, holding
    ``secret.jpg``."""
    base = tmp_path_factory.mktemp("import")
    (base / "outside").mkdir()
    (base / "outside" / "secret.jpg").write_bytes(photo_bytes(999))
    (base / "roots").mkdir()
    return base / "roots"
