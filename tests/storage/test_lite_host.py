"""One Milvus Lite database shared by several processes through a host process (`lite_host`):
real processes, real gRPC, no mocks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from lite_client import COLLECTION, DIM, payload_of, vector_of
from pydantic import ValidationError

from phantoscope.config import ServerSettings
from phantoscope.storage.lite_host_process import LiteHostError, LiteHostProcess
from phantoscope.storage.milvus_vectors import MilvusVectorStore
from phantoscope.storage.vectors import VectorStoreError

CLIENT = Path(__file__).with_name("lite_client.py")


class Client:
    """A `lite_client.py` process: a store of its own on the hosted database."""

    def __init__(self, path: Path, address: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(CLIENT), str(path), address],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.answer() == "ready"

    def send(self, **command: Any) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()

    def answer(self) -> Any:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line, f"the client exited ({self.process.wait()})"
        answer = json.loads(line)
        assert not (isinstance(answer, dict) and "error" in answer), answer["error"]
        return answer

    def ask(self, **command: Any) -> Any:
        self.send(**command)
        return self.answer()

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(30)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "vectors.db"


@pytest.fixture
def host(db_path: Path) -> Iterator[LiteHostProcess]:
    with LiteHostProcess(str(db_path)) as started:
        yield started


def hits(answer: list[list[list[float]]]) -> list[list[int]]:
    return [[int(hit[0]) for hit in row] for row in answer]


QUERIES = [dict(topk=5), dict(topk=5, partition="app_b"),
           dict(topk=5, filter='attributes["group"] == 1')]


def test_two_processes_write_and_read_one_database(host: LiteHostProcess,
                                                   db_path: Path) -> None:
    assert host.address is not None and host.vectorised  # the host searches with ours
    first, second = Client(db_path, host.address), Client(db_path, host.address)
    try:
        ids = {first: list(range(0, 300)), second: list(range(1000, 1300))}
        for client, mine in ids.items():  # both at once: creating, inserting, flushing
            client.send(op="insert", ids=mine, batch=25, partitions=["app_a", "app_b"])
        assert [first.answer(), second.answer()] == ["inserted", "inserted"]
        everything = ids[first] + ids[second]

        with MilvusVectorStore(str(db_path), lite_host=host.address) as third:
            listed = third.ids(COLLECTION)
            assert sorted(listed) == everything  # each row once
            assert third.count(COLLECTION) == 600
            assert third.count(COLLECTION, partition="app_a") == 300

        for client in (first, second):  # each process finds every row, its own or not
            assert hits(client.ask(op="search", ids=everything, topk=1)) == [
                [i] for i in everything]
        queries = ids[first][:10] + ids[second][:10]
        before = [second.ask(op="search", ids=queries, **q) for q in QUERIES]
        assert all(payload_of(i).attributes["group"] == 1
                   for row in hits(before[2]) for i in row)

        gone = ids[second][:10]
        assert first.ask(op="delete", ids=gone) == "deleted"  # seen by the other process
        assert second.ask(op="count") == 590
        assert not set(gone) & {i for row in hits(second.ask(op="search", ids=gone, topk=5))
                                for i in row}
        answers = [second.ask(op="search", ids=queries, **q) for q in QUERIES]
    finally:
        first.close()
        second.close()
    host.stop()

    # The folder the host wrote opens in this process as it is, with the same answers.
    with MilvusVectorStore(str(db_path)) as local:
        assert local.count(COLLECTION) == 590
        for query, hosted in zip(QUERIES, answers, strict=True):
            found = local.search(COLLECTION, vector_of(queries), query["topk"],
                                 partition=query.get("partition"), filter=query.get("filter"))
            assert [[h.id for h in row] for row in found] == hits(hosted)
            assert np.allclose([[h.distance for h in row] for row in found],
                               [[hit[1] for hit in row] for row in hosted], atol=1e-5)


def _insert_and_flush_from_two_clients(address: str, rounds: int) -> list[BaseException]:
    """Two pymilvus clients (no store, no lock of ours) inserting and flushing at once."""
    from pymilvus import DataType, MilvusClient

    setup = MilvusClient(uri=address)
    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=DIM)
    index = setup.prepare_index_params()
    index.add_index(field_name="vector", index_type="FLAT", metric_type="IP")
    setup.create_collection("race", schema=schema)
    setup.create_index("race", index)
    setup.load_collection("race")
    setup.close()
    errors: list[BaseException] = []

    def work(first_id: int) -> None:
        client = MilvusClient(uri=address)
        try:
            for n in range(rounds):
                ids = list(range(first_id + 50 * n, first_id + 50 * n + 50))
                client.insert("race", [{"id": i, "vector": v}
                                       for i, v in zip(ids, vector_of(ids), strict=True)])
                client.flush("race")
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            client.close()

    threads = [threading.Thread(target=work, args=(k * 1_000_000,)) for k in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_the_host_runs_one_request_at_a_time(tmp_path: Path) -> None:
    """Without the host's lock (milvus-lite's own server) concurrent insert + flush breaks
    Milvus Lite; through the host the same requests succeed."""
    from milvus_lite.adapter.grpc.server import start_server_in_thread

    server, db, port = start_server_in_thread(str(tmp_path / "unlocked.db"))
    try:
        errors = _insert_and_flush_from_two_clients(f"http://127.0.0.1:{port}", rounds=30)
    finally:
        server.stop(0)
        db.close()
    assert any("current_seq is monotonic" in str(e) for e in errors), errors

    with LiteHostProcess(str(tmp_path / "hosted.db")) as host:
        assert host.address is not None
        assert _insert_and_flush_from_two_clients(host.address, rounds=30) == []


def test_a_folder_in_use_is_refused_clearly(tmp_path: Path) -> None:
    path = tmp_path / "held.db"
    refused = (rf"cannot serve Milvus Lite at {path}: another process is using its data "
               r"folder; stop that process .*\(log: ")
    # This process holds the folder.
    with MilvusVectorStore(str(path)), pytest.raises(LiteHostError, match=refused):
        LiteHostProcess(str(path)).start()
    with LiteHostProcess(str(path)), pytest.raises(LiteHostError, match="stop that process"):
        LiteHostProcess(str(path), log_path=tmp_path / "second.log").start()


def test_a_killed_host_fails_calls_then_a_new_one_serves_the_flushed_rows(
        host: LiteHostProcess, db_path: Path) -> None:
    assert host.address is not None and host.pid is not None
    port = int(host.address.rsplit(":", 1)[1])
    store = MilvusVectorStore(str(db_path), lite_host=host.address, timeout_s=2)
    try:
        store.create_collection("kept", DIM, "IP")
        store.insert("kept", list(range(100)), vector_of(list(range(100))))
        store.flush("kept")
        os.kill(host.pid, signal.SIGKILL)
        started = time.monotonic()
        with pytest.raises(VectorStoreError, match="cannot"):
            store.count("kept")
        assert time.monotonic() - started < 10
        # A new host on the same port: the store carries on by itself.
        with LiteHostProcess(str(db_path), port=port, log_path=db_path.parent / "again.log"):
            assert store.count("kept") == 100
            [found] = store.search("kept", vector_of([7]), 1)
            assert found[0].id == 7
    finally:
        store.close()
        host.stop()


def test_the_host_stops_when_its_parent_dies(db_path: Path) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\n"
         "from phantoscope.storage.lite_host_process import LiteHostProcess\n"
         "host = LiteHostProcess(sys.argv[1])\n"
         "host.start()\n"
         "print(host.pid, flush=True)\n"
         "time.sleep(600)\n",
         str(db_path)], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 15
    try:
        while _alive(child):
            assert time.monotonic() < deadline, "the host outlived its parent"
            time.sleep(0.1)
    finally:
        if _alive(child):
            os.kill(child, signal.SIGKILL)
    with MilvusVectorStore(str(db_path)) as store:  # the folder is free again
        assert not store.has_collection("x")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie has stopped; init reaps it


def test_a_host_address_only_with_a_lite_path(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match=r"serves a \.db path"):
        MilvusVectorStore("http://127.0.0.1:19530", lite_host="http://127.0.0.1:1")
    with pytest.raises(ValueError, match="http://HOST:PORT"):
        MilvusVectorStore(str(tmp_path / "v.db"), lite_host="grpc://127.0.0.1:1")
    with pytest.raises(ValidationError, match="PHANTOSCOPE_LITE_HOST"):
        ServerSettings(vectors="http://milvus:19530", lite_host="http://127.0.0.1:1")
    with pytest.raises(ValidationError, match="PHANTOSCOPE_LITE_HOST"):
        ServerSettings(vectors="milvus-server", lite_host="http://127.0.0.1:1")
    monkeypatch.setenv("PHANTOSCOPE_LITE_HOST", "http://127.0.0.1:1")
    assert ServerSettings(home=tmp_path).lite_host == "http://127.0.0.1:1"
