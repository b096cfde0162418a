"""Fixtures for API tests: operator processes, backends, and API servers over them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from api_server import ApiServer
from backends import DEFAULT_BACKENDS, Backends, backend_env, drop_database
from helpers import OperatorProcess


@pytest.fixture(scope="session")
def encoder_endpoint() -> Iterator[str]:
    with OperatorProcess("efficientnet-lite0-encoder") as server:
        yield server.endpoint


@pytest.fixture(scope="session")
def face_endpoints() -> Iterator[tuple[str, str]]:
    with OperatorProcess("face-detector") as detector, OperatorProcess("face-encoder") as coder:
        yield detector.endpoint, coder.endpoint


@pytest.fixture
def start_server(request, tmp_path) -> Iterator:
    """A function that starts an API server over the given backends (stopped afterwards)."""
    started: list[ApiServer] = []
    databases: list[str] = []

    def start(backends: Backends = DEFAULT_BACKENDS, **settings: str) -> ApiServer:
        env = {key.upper(): value for key, value in settings.items()}
        env.update(backend_env(request, backends, databases))
        server = ApiServer(tmp_path / f"home-{uuid.uuid4().hex[:6]}", env).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
    for url in databases:
        drop_database(url)
