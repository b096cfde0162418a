"""Fixtures for fault tests: tally operators in child processes and API servers over them."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
from tally_process import Tally

from api_server import ApiServer


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


@pytest.fixture
def api_server(tmp_path) -> Iterator[Callable[..., ApiServer]]:
    """``api_server(**settings)``: an API server process with PHANTOSCOPE_<SETTING>s."""
    started: list[ApiServer] = []

    def start(**settings: str) -> ApiServer:
        env = {f"PHANTOSCOPE_{key.upper()}": value for key, value in settings.items()}
        server = ApiServer(tmp_path / f"home-{uuid.uuid4().hex[:6]}", env).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
