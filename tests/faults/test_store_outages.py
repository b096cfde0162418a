"""Stores that go away (Milvus server, PostgreSQL, S3) give quick 503s, never a 500 or a
hang, and the server recovers by itself when they return, with nothing half-written."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fault_world import SEARCH, UPLOAD, set_up, timed
from moto.server import ThreadedMotoServer
from tally_process import Tally
from tcp_proxy import TcpProxy

from api_server import ApiServer
from backends import drop_database, fresh_database, milvus_test_server
from phantoscope.operators.process import free_port

STORAGE_TIMEOUT_S = 3.0
OUTAGE_BOUND_S = 20.0  # every answer during an outage comes sooner than this
RECOVERY_S = 90.0  # a Milvus server restart included
S3_KEYS = "phantoscope-test:phantoscope-test-secret"


class Moto:
    """moto's S3 server on a fixed port, stopped and started again (its data stays in this
    process)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.server: ThreadedMotoServer | None = None

    def start(self) -> None:
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


class Milvus:
    """A Milvus server behind a proxy: the API keeps one address while the server is stopped
    and started again (on a new port: the old one stays in TIME_WAIT for a minute)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.server = milvus_test_server(folder)
        self.server.start()
        self.proxy = TcpProxy("127.0.0.1", self.server.port).start()

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.proxy.port}"

    def stop(self) -> None:
        self.server.stop()

    def start(self) -> None:
        self.server = milvus_test_server(self.folder)  # same data
        self.server.start()
        self.proxy.target = ("127.0.0.1", self.server.port)

    def close(self) -> None:
        self.proxy.close()
        self.server.stop()


@dataclass
class World:
    server: ApiServer
    milvus: Milvus
    moto: Moto
    database: TcpProxy


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[World]:
    home = tmp_path_factory.mktemp("outages")
    milvus = Milvus(home / "milvus")
    moto = Moto()
    moto.start()
    database = TcpProxy("127.0.0.1", 5432).start()
    url = fresh_database("postgres")
    operator = Tally(home)
    operator.start()
    server = None
    try:
        operator.wait_healthy(60)
        server = ApiServer(home / "api", {
            "PHANTOSCOPE_VECTORS": milvus.uri,
            "PHANTOSCOPE_META": url.replace(":5432/", f":{database.port}/"),
            "PHANTOSCOPE_OBJECTS": f"s3://{S3_KEYS}@127.0.0.1:{moto.port}?region=us-east-1",
            "PHANTOSCOPE_STORAGE_TIMEOUT_S": str(STORAGE_TIMEOUT_S),
        }).start()
        set_up(server.client, operator.endpoint)
        yield World(server, milvus, moto, database)
    finally:
        if server is not None:
            server.stop()
        operator.stop()
        database.close()
        drop_database(url)
        moto.stop()
        milvus.close()


def _during_outage(world: World, what: str) -> dict[str, tuple[int, str]]:
    """Upload, search and list while a store is away: each answer's status and code."""
    api = world.server.client
    calls = {
        "upload": (api.post, "/v1/application/app/upload", {"json": UPLOAD}),
        "search": (api.post, "/v1/application/app/search", {"json": SEARCH}),
        "list": (api.get, "/v1/application/app/entity", {"params": {"num": 5}}),
    }
    seen = {}
    for name, (call, path, kwargs) in calls.items():
        answer, elapsed = timed(call, path, **kwargs)
        code = answer.json().get("code", "") if answer.status_code != 200 else ""
        print(f"\n{what} away: {name} -> {answer.status_code} {code} in {elapsed:.2f} s")
        assert answer.status_code in (200, 503), answer.text
        assert elapsed < OUTAGE_BOUND_S
        seen[name] = (answer.status_code, code)
    assert seen["upload"] == (503, "STORAGE_UNAVAILABLE")
    return seen


def _recovers(world: World, before: dict[str, int]) -> None:
    """Uploads and searches work again, with no server restart; one more image stored and
    nothing else (the failed upload left nothing)."""
    api = world.server.client
    deadline = time.monotonic() + RECOVERY_S
    while True:
        answer = api.post("/v1/application/app/upload", json=UPLOAD)
        if answer.status_code == 200 or time.monotonic() > deadline:
            break
        assert answer.status_code == 503, answer.text
        time.sleep(1)
    assert answer.status_code == 200, answer.text
    assert api.post("/v1/application/app/search", json=SEARCH).status_code == 200
    after = world.server.counts()
    assert (after["entities"], after["vectors"], after["objects"]) == (
        before["entities"] + 1, before["vectors"] + 1, before["objects"] + 1)


# Each store: the part of the world that stops and starts it, and the calls besides the
# upload that must answer 503 STORAGE_UNAVAILABLE while it is away.
OUTAGES = {
    "S3": ("moto", ()),
    "Milvus": ("milvus", ("search",)),
    "PostgreSQL": ("database", ("list",)),
}


@pytest.mark.parametrize("store", OUTAGES)
def test_store_away_and_back(world, store):
    part, also_unavailable = OUTAGES[store]
    service = getattr(world, part)
    before = world.server.counts()
    service.stop()
    try:
        seen = _during_outage(world, store)
    finally:
        service.start()
    for call in also_unavailable:
        assert seen[call] == (503, "STORAGE_UNAVAILABLE"), call
    _recovers(world, before)
