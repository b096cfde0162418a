"""Fixtures for API tests: the operator processes their API servers use."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from helpers import OperatorProcess


@pytest.fixture(scope="session")
def encoder_endpoint() -> Iterator[str]:
    with OperatorProcess("efficientnet-lite0-encoder") as server:
        yield server.endpoint


@pytest.fixture(scope="session")
def face_endpoints() -> Iterator[tuple[str, str]]:
    with OperatorProcess("face-detector") as detector, OperatorProcess("face-encoder") as coder:
        yield detector.endpoint, coder.endpoint
