"""A real API server and encoder for the client and CLI tests, and a gallery on them."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from api_server import ApiServer
from helpers import OperatorProcess, folder_server
from phantoscope.client import PhantoscopeClient


@pytest.fixture(scope="session")
def encoder_endpoint() -> Iterator[str]:
    with OperatorProcess("efficientnet-lite0-encoder") as server:
        yield server.endpoint


@pytest.fixture(scope="session")
def server(tmp_path_factory) -> Iterator[ApiServer]:
    """One server for the session (tests use names of their own). It may fetch loopback URLs,
    so that tests can serve images to it."""
    home = tmp_path_factory.mktemp("client-api")
    api = ApiServer(home, {"PHANTOSCOPE_ALLOW_PRIVATE_URLS": "true"}).start()
    yield api
    api.stop()


@pytest.fixture
def client(server) -> Iterator[PhantoscopeClient]:
    with PhantoscopeClient(server.url) as api:
        yield api


@dataclass(frozen=True)
class Gallery:
    operator: str
    pipeline: str
    app: str


@pytest.fixture
def gallery(client, encoder_endpoint) -> Iterator[Gallery]:
    """An operator, a pipeline and an application (image field `image`), removed afterwards."""
    suffix = secrets.token_hex(3)
    names = Gallery(f"encoder-{suffix}", f"pipe-{suffix}", f"app-{suffix}")
    client.operators.register(names.operator, encoder_endpoint)
    client.pipelines.create(names.pipeline, names.operator)
    client.applications.create(names.app, pipeline=names.pipeline)
    yield names
    client.applications.delete(names.app, force=True)
    client.pipelines.delete(names.pipeline)
    client.operators.delete(names.operator)


@pytest.fixture
def image_host(tmp_path) -> Iterator[str]:
    """An HTTP server on loopback serving ``tmp_path``; its base URL."""
    with folder_server(tmp_path) as url:
        yield url
