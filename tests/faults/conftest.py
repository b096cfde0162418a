"""Fixtures for fault tests: tally operators in child processes and API servers over them."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from api_server import ApiServer
from phantoscope.operators.process import OperatorProcess

HERE = Path(__file__).resolve().parent


class Tally(OperatorProcess):
    """A :mod:`tally` encoder process whose calls are counted in ``log_file``."""

    def __init__(self, folder: Path, endpoint: str | None = None, **env: str) -> None:
        self.log_file = folder / f"tally-{uuid.uuid4().hex[:6]}.calls"
        self.log_file.touch()
        path = os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH")) if p)
        super().__init__(
            "tally:TallyEncoder", endpoint=endpoint, log_path=folder / "operators.log",
            env={"PYTHONPATH": path, "TALLY_LOG": str(self.log_file), **env},
        )

    def calls(self) -> int:
        return len(self.log_file.read_text().splitlines())

    def restart(self) -> None:
        """Start again on the same endpoint (after it was killed)."""
        self.stop()
        self.start()
        self.wait_healthy(60)


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
